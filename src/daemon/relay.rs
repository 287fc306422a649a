//! ASGI requests hold no worker while their task awaits: the worker that
//! started one hands it here and goes back for the next request. Whenever
//! the task sends something (a receive(), a piece of its response, its
//! end), one of a few relay threads does that I/O on the request's
//! connection; when the request is over, it ends the exchange as the worker
//! would have. So `threads=` bounds the requests being worked on, not the
//! streams held open.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use super::monitor::Busy;
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
}

pub struct Relays {
    wakes: Sender<Arc<Detached>>,
    woken: Receiver<Arc<Detached>>,
    live: Mutex<Vec<Arc<Detached>>>,
}

/// Ends an exchange whose request is over (its outcome), on a relay thread.
pub type Finish<'a> = dyn Fn(Conn, u64, Outcome) + Sync + 'a;

impl Relays {
    pub fn new() -> Relays {
        let (wakes, woken) = crossbeam_channel::unbounded();
        Relays { wakes, woken, live: Mutex::new(Vec::new()) }
    }

    /// Takes over a request its worker started.
    pub fn adopt(&self, held: Held) {
        let deadline = held.request.deadline();
        let detached = Arc::new(Detached { held: Mutex::new(None), deadline });
        self.live.lock().push(detached.clone());
        let weak = Arc::downgrade(&detached);
        let wakes = self.wakes.clone();
        let mut slot = detached.held.lock();
        let held = slot.insert(held);
        held.request.on_message(move || {
            if let Some(detached) = weak.upgrade() {
                let _ = wakes.send(detached);
            }
        });
    }

    /// A relay thread's life: until `done` (no worker left) and no request
    /// left. Requests still running `linger` after the workers are done have
    /// their task cancelled: the process is stopping.
    pub fn run(&self, done: &AtomicBool, linger: Duration, finish: &Finish<'_>) {
        let mut done_at = None;
        loop {
            match self.woken.recv_timeout(TICK) {
                Ok(detached) => self.pump(&detached, finish),
                Err(_) => {
                    self.expire_due(finish);
                    if done.load(Ordering::Acquire) {
                        if self.live.lock().is_empty() {
                            return;
                        }
                        if done_at.get_or_insert_with(Instant::now).elapsed() > linger {
                            self.stop_all(finish);
                        }
                    }
                }
            }
        }
    }

    fn stop_all(&self, finish: &Finish<'_>) {
        let live: Vec<_> = self.live.lock().clone();
        for detached in live {
            let held = detached.held.lock().take();
            if let Some(mut held) = held {
                let outcome = held.request.stop();
                self.end(&detached, held, outcome, finish);
            }
        }
    }

    /// Relays what the request's task has sent; ends the exchange once it is over.
    fn pump(&self, detached: &Arc<Detached>, finish: &Finish<'_>) {
        let mut slot = detached.held.lock();
        let Some(held) = slot.as_mut() else { return };
        if let Some(outcome) = held.request.pump() {
            let held = slot.take().expect("checked");
            drop(slot);
            self.end(detached, held, outcome, finish);
        }
    }

    /// request-timeout=: the requests past their deadline end with their task cancelled.
    fn expire_due(&self, finish: &Finish<'_>) {
        let now = Instant::now();
        let due: Vec<_> = self.live.lock().iter().filter(|d| d.deadline.is_some_and(|t| t <= now)).cloned().collect();
        for detached in due {
            let held = detached.held.lock().take();
            if let Some(mut held) = held {
                let outcome = held.request.expire();
                self.end(&detached, held, outcome, finish);
            }
        }
    }

    fn end(&self, detached: &Arc<Detached>, held: Held, outcome: Outcome, finish: &Finish<'_>) {
        self.live.lock().retain(|d| !Arc::ptr_eq(d, detached));
        let Held { request, conn, token, busy } = held;
        request.finish();
        // Before the connection can carry another request.
        drop(busy);
        finish(conn, token, outcome);
    }
}
