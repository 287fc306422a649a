//! ASGI requests hold no worker while their task awaits: the worker that
//! started one hands it here and goes back for the next request. Whenever
//! the task sends something (a receive(), a piece of its response, its
//! end), one of a few relay threads does that I/O on the request's
//! connection; when the request is over, it ends the exchange as the worker
//! would have. So `threads=` bounds the requests being worked on, not the
//! streams held open. What needs neither a wait nor the GIL (a small
//! response, the end of the exchange) the task's own thread does first,
//! sparing a relay thread's wake-up (`pump_here`).
//!
//! A task that awaits http.disconnect has the Apache child asked to say
//! when its client goes (see `AsgiRequest::watching`); a watcher thread
//! waits for that word on those connections, and a relay thread reads it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::monitor::Busy;
use super::os::{self, Epoll, Event};
use super::protocol::{self, HEADER_LEN};
use super::reactor::Conn;
use crate::python::{AsgiRequest, Outcome};

/// How often relay threads look for requests past their request-timeout=.
const TICK: Duration = Duration::from_millis(100);

/// A request handed over by its worker, with what ending its exchange needs.
pub struct Held {
    pub request: Box<AsgiRequest>,
    pub conn: Conn,
    pub token: u64,
    /// Keeps the request among the process's running ones until it ends.
    pub busy: Busy,
}

struct Detached {
    held: Mutex<Option<Held>>,
    deadline: Option<Instant>,
    /// Its connection's token in `Relays::watched` (0: not watched).
    watch: AtomicU64,
    /// The Apache child has sent something on the connection (its client went).
    heard: AtomicBool,
    /// A relay thread found the request held by another (writing a large
    /// body, say): the holder looks once more before it lets go.
    again: AtomicBool,
}

/// Requests with something to relay, for the relay threads in turn. (A
/// thread waiting here sleeps at once: a channel's spinning wait costs a
/// busy process more than it saves.)
#[derive(Default)]
struct Woken {
    queue: Mutex<VecDeque<Arc<Detached>>>,
    ready: Condvar,
}

impl Woken {
    fn push(&self, detached: Arc<Detached>) {
        self.queue.lock().push_back(detached);
        self.ready.notify_one();
    }

    /// The next request woken, waiting up to `within` for one.
    fn next(&self, within: Duration) -> Option<Arc<Detached>> {
        let mut queue = self.queue.lock();
        if queue.is_empty() {
            self.ready.wait_for(&mut queue, within);
        }
        queue.pop_front()
    }
}

pub struct Relays {
    finish: Box<Finish>,
    woken: Woken,
    live: Mutex<Vec<Arc<Detached>>>,
    /// The connections of requests whose Apache child watches for the
    /// client going (None if the set could not be made: nobody hears of it).
    watched: Option<Epoll>,
    watching: Mutex<HashMap<u64, Weak<Detached>>>,
    next_watch: AtomicU64,
}

/// Ends an exchange whose request is over (its outcome).
pub type Finish = dyn Fn(Conn, u64, Outcome) + Send + Sync;

impl Relays {
    pub fn new(finish: Box<Finish>) -> Relays {
        Relays { finish, woken: Woken::default(), live: Mutex::new(Vec::new()), watched: Epoll::new().ok(), watching: Mutex::new(HashMap::new()), next_watch: AtomicU64::new(1) }
    }

    /// Takes over a request its worker started.
    pub fn adopt(self: &Arc<Self>, held: Held) {
        let deadline = held.request.deadline();
        let detached = Arc::new(Detached { held: Mutex::new(None), deadline, watch: AtomicU64::new(0), heard: AtomicBool::new(false), again: AtomicBool::new(false) });
        self.live.lock().push(detached.clone());
        let (weak, relays) = (Arc::downgrade(&detached), Arc::downgrade(self));
        let mut slot = detached.held.lock();
        let held = slot.insert(held);
        let both = move || Some((relays.upgrade()?, weak.upgrade()?));
        let wake = {
            let both = both.clone();
            move || {
                if let Some((relays, detached)) = both() {
                    relays.woken.push(detached);
                }
            }
        };
        let here = move || both().is_some_and(|(relays, detached)| relays.pump_here(&detached));
        held.request.on_message(wake, here);
        self.let_go(&detached, slot);
    }

    /// Lets go of a request held other than by `pump` (which looks again
    /// itself): a relay thread that found it held meanwhile left word, and
    /// one is woken to look.
    fn let_go(&self, detached: &Arc<Detached>, slot: parking_lot::MutexGuard<'_, Option<Held>>) {
        drop(slot);
        if detached.again.load(Ordering::SeqCst) {
            self.woken.push(detached.clone());
        }
    }

    /// A relay thread's life: until `done` (no worker left) and no request
    /// left. Requests still running `linger` after the workers are done have
    /// their task cancelled: the process is stopping.
    pub fn run(&self, done: &AtomicBool, linger: Duration) {
        let mut done_at = None;
        loop {
            match self.woken.next(TICK) {
                Some(detached) => self.pump(&detached),
                None => {
                    self.expire_due();
                    if done.load(Ordering::Acquire) {
                        if self.live.lock().is_empty() {
                            return;
                        }
                        if done_at.get_or_insert_with(Instant::now).elapsed() > linger {
                            self.stop_all();
                        }
                    }
                }
            }
        }
    }

    /// The watcher thread's life, as a relay thread's: wakes a relay for
    /// each watched connection the Apache child has sent something on.
    pub fn watch_clients(&self, done: &AtomicBool) {
        let Some(watched) = &self.watched else { return };
        let mut events = [Event::empty(); 16];
        while !(done.load(Ordering::Acquire) && self.live.lock().is_empty()) {
            let Ok(n) = watched.wait(&mut events, TICK.as_millis() as u16) else {
                std::thread::sleep(TICK);
                continue;
            };
            for event in &events[..n] {
                let detached = self.watching.lock().get(&event.data()).and_then(Weak::upgrade);
                if let Some(detached) = detached {
                    detached.heard.store(true, Ordering::Release);
                    self.woken.push(detached);
                }
            }
        }
    }

    fn stop_all(&self) {
        self.end_where(|_| true, AsgiRequest::stop);
    }

    /// Ends the running requests `which` picks, each as `how` cuts it short.
    fn end_where(&self, which: impl Fn(&Detached) -> bool, how: impl Fn(&mut AsgiRequest) -> Outcome) {
        let picked: Vec<_> = self.live.lock().iter().filter(|d| which(d)).cloned().collect();
        for detached in picked {
            let held = detached.held.lock().take();
            if let Some(mut held) = held {
                let outcome = how(&mut held.request);
                self.end(&detached, held, outcome);
            }
        }
    }

    /// Relays what the request's task has sent; ends the exchange once it is over.
    /// A thread that finds the request held leaves word (`again`) and goes,
    /// rather than wait while the holder writes.
    fn pump(&self, detached: &Arc<Detached>) {
        detached.again.store(true, Ordering::SeqCst);
        while detached.again.load(Ordering::SeqCst) {
            let Some(mut slot) = detached.held.try_lock() else { return };
            // From here on what is sent is seen by this pass, or leaves word for another.
            detached.again.store(false, Ordering::SeqCst);
            let Some(held) = slot.as_mut() else { return };
            if detached.heard.swap(false, Ordering::AcqRel) {
                self.hear(detached, held);
            }
            let outcome = held.request.pump();
            if outcome.is_none() && held.request.watching() && detached.watch.load(Ordering::Acquire) == 0 {
                self.watch(detached, held);
            }
            if let Some(outcome) = outcome {
                let held = slot.take().expect("checked");
                drop(slot);
                self.end(detached, held, outcome);
                return;
            }
        }
    }

    /// Relays what the request's task has sent on the task's own thread
    /// (the event loop's, with the GIL released), as far as that needs
    /// neither a wait nor the GIL: a small response goes out, and its
    /// exchange ends, without waking a relay thread. False when a relay
    /// thread is to do the rest (or is at it).
    fn pump_here(&self, detached: &Arc<Detached>) -> bool {
        let Some(mut slot) = detached.held.try_lock() else { return false };
        let Some(held) = slot.as_mut() else { return true };
        if detached.heard.load(Ordering::Acquire) {
            self.let_go(detached, slot);
            return false;
        }
        match held.request.pump_here() {
            Ok(Some(outcome)) => {
                let held = slot.take().expect("checked");
                drop(slot);
                self.end(detached, held, outcome);
                true
            }
            pumped => {
                self.let_go(detached, slot);
                pumped.is_ok()
            }
        }
    }

    /// request-timeout=: the requests past their deadline end with their task cancelled.
    fn expire_due(&self) {
        let now = Instant::now();
        self.end_where(|d| d.deadline.is_some_and(|t| t <= now), AsgiRequest::expire);
    }

    /// Watches the request's connection for the Apache child's word that
    /// the client went.
    fn watch(&self, detached: &Arc<Detached>, held: &Held) {
        let Some(watched) = &self.watched else { return };
        let token = self.next_watch.fetch_add(1, Ordering::Relaxed);
        self.watching.lock().insert(token, Arc::downgrade(detached));
        detached.watch.store(token, Ordering::Release);
        if watched.add(held.conn.lock().wire.stream(), token, true).is_err() {
            self.watching.lock().remove(&token);
        }
    }

    /// Reads what the Apache child sent on a watched connection: its client
    /// went (a ClientGone frame, or the connection closed). Anything else is
    /// not what it may send now, and ends the request as well.
    fn hear(&self, detached: &Arc<Detached>, held: &mut Held) {
        let gone = {
            let mut c = held.conn.lock();
            let c = &mut *c;
            match c.wire.receive(HEADER_LEN, os::recv_now) {
                Ok(0) => true,
                Ok(_) => {
                    let told = protocol::client_gone_frames(c.wire.buffered());
                    c.wire.consume(told);
                    told > 0 || c.wire.buffered().len() >= HEADER_LEN
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) => false,
                Err(_) => true,
            }
        };
        if gone {
            held.request.client_gone();
        } else if let Some(watched) = &self.watched {
            // Not all of it yet: watched again.
            let _ = watched.rearm(held.conn.lock().wire.stream(), detached.watch.load(Ordering::Acquire));
        }
    }

    fn end(&self, detached: &Arc<Detached>, held: Held, outcome: Outcome) {
        self.live.lock().retain(|d| !Arc::ptr_eq(d, detached));
        // Before the connection goes back to wait for its next request.
        let watch = detached.watch.swap(0, Ordering::AcqRel);
        if watch != 0 {
            self.watching.lock().remove(&watch);
            if let Some(watched) = &self.watched {
                let _ = watched.remove(held.conn.lock().wire.stream());
            }
        }
        let Held { request, conn, token, busy } = held;
        request.finish();
        // Before the connection can carry another request.
        drop(busy);
        (self.finish)(conn, token, outcome);
    }
}
