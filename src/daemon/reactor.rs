//! How a daemon's workers come by requests. The workers take turns waiting
//! on one epoll set holding the connections from Apache's children;
//! whichever is woken reads what arrived, without blocking. A head that
//! arrived whole and proves its origin is served by the worker that read
//! it; anything less goes back to wait. So no worker is held by a
//! connection until it has delivered a whole, genuine head.
//!
//! Requests are served first come, first served, whatever connection they
//! came on. The epoll set is the queue: its ready list keeps the order in
//! which connections became ready (each is reported once, then watched again
//! when parked), so workers take heads in the order they arrived, and
//! nothing is read before a worker is free for it (a request the process
//! never read can go to another, whole, if this one dies). A new connection
//! takes its place in the same queue: the sweeper thread accepts it at once
//! and queues it (a new socket is writable at once); at its turn a worker
//! sends the challenge and waits briefly for the head the Apache child then
//! sends, and serves it. So it is neither accepted late, behind every head
//! queued meanwhile, and then queued again for its head, nor sent a
//! challenge before a worker is on it: its Apache child sends nothing until
//! then, and takes the request elsewhere if this process goes first. A head
//! that came with the previous exchange goes to the back of the queue, not
//! ahead of those that came meanwhile.
//!
//! Connections are hostile until a head verifies, so every wait and size is
//! bounded here: a head not complete within socket-timeout= closes its
//! connection (a sweeper thread checks, ten times a second); the connections
//! held are bounded (idle ones, oldest first, make room); running out of
//! descriptors pauses accepting instead of dropping what was accepted; and
//! the bytes of unfinished heads have a budget.
//!
//! In a group of several processes, a process accepts new connections only
//! while it has a worker to spare, as the C module's threads do, so that the
//! processes share the load; a new connection holds that spare worker only
//! briefly, so silent ones cannot keep real requests out. A lone process
//! accepts whatever comes.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::connection::{Connection, open_connections};
use super::monitor::now_micros;
use super::origin;
use super::os::{self, Epoll, Event};
use super::protocol::{self, HEADER_LEN, RequestHead, SealedHead};
use super::groups::Group;
use super::wire::PIECE;
use crate::apache::log;
use crate::python::Level;

pub type Conn = Arc<Mutex<Connection>>;

/// A request whose head has arrived and verified.
pub struct Ready {
    pub conn: Conn,
    pub token: u64,
    pub head: RequestHead,
}

/// Epoll tokens of the group socket (in `accepts`), the stop pipe and the
/// turns of requests read ahead (`queued`); connections count up from FIRST.
const LISTENER: u64 = 0;
const STOP: u64 = 1;
const QUEUED: u64 = 2;
const FIRST: u64 = 3;

/// How often the sweeper checks deadlines and a paused listener.
pub const TICK: Duration = Duration::from_millis(100);

/// The bytes all unfinished heads may hold together.
const PENDING_BUDGET: usize = 64 << 20;

/// How long a new connection counts as a request about to arrive, when
/// deciding whether to accept more: an Apache child sends its head as soon
/// as it has the challenge.
const FRESH: Duration = Duration::from_millis(100);

/// How long a worker that sent a challenge waits for the head (it comes in
/// well under a millisecond); a head not there by then queues when it comes.
const HEAD_WAIT: Duration = Duration::from_millis(10);

/// How long a stopping process still takes heads under way on connections
/// it accepted before the stop.
const WIND_DOWN: Duration = Duration::from_secs(1);

/// A process stopped with no successor (Apache is stopping or restarting
/// fully) serves what is queued on the group socket, the requests of
/// Apache children about to exit, until nothing has come for this long.
const DRAIN_QUIET: Duration = Duration::from_millis(100);

/// A connection between requests, or with a head under way.
struct Parked {
    conn: Conn,
    /// When its head must be complete: set for a new connection, and once a
    /// head has begun; None for a connection idle between requests.
    deadline: Option<Instant>,
    /// Since when it has waited here, to close the longest idle first.
    since: Instant,
    /// Bytes of an unfinished head it holds, counted against the budget.
    held: usize,
    /// A new connection whose first head has not come: until when it
    /// counts as a request about to arrive.
    fresh_until: Option<Instant>,
    /// A new connection waiting for its turn, its challenge not yet sent.
    turn: bool,
}

/// Whether the group socket is watched, and why not.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listening {
    /// In the epoll set, to be reported to one worker.
    Armed,
    /// Reported: a worker is accepting.
    Accepting,
    /// Every worker is taken; the next to finish arms it again.
    NoWorker,
    /// No connection or descriptor to spare; the sweeper retries.
    NoRoom,
    /// The process is stopping.
    Stopped,
}

/// Why accepting stopped.
enum Accepted {
    /// Nothing more is waiting.
    All,
    Paused(Listening),
}

pub struct Reactor {
    group: Arc<Group>,
    /// The connections (and the stop pipe): the queue of requests.
    epoll: Epoll,
    /// The group socket alone, waited on by the sweeper thread.
    accepts: Epoll,
    /// Requests whose head was already read when their connection came back
    /// from an exchange; each counts one in `turns`, which the epoll set
    /// reports, in its turn, while any wait.
    queued: Mutex<VecDeque<Ready>>,
    turns: os::Turns,
    /// Becomes readable when the process is asked to stop.
    stop: std::io::PipeReader,
    parked: Mutex<HashMap<u64, Parked>>,
    listening: Mutex<Listening>,
    next_token: AtomicU64,
    stopping: Arc<AtomicBool>,
    /// Stopping with no successor: what is queued is served first.
    draining: Arc<AtomicBool>,
    /// When a connection was last accepted or a head last arrived.
    last_arrival: Mutex<Instant>,
    /// Set once the first worker saw the stop: until when heads under way
    /// are still taken.
    winding_down: Mutex<Option<Instant>>,
    /// How many connections the process holds at most.
    max_connections: usize,
    /// Bytes held by unfinished heads.
    pending: Mutex<usize>,
    /// When accepting last failed for want of descriptors, and when the
    /// bound on connections was last met (µs), to log each once a second.
    starved_logged: AtomicI64,
    full_logged: AtomicI64,
    /// Whether the group has other processes to leave connections to; its
    /// worker threads, the requests being served, and the new connections
    /// still counting as requests about to arrive.
    share_load: bool,
    threads: usize,
    load: AtomicUsize,
    fresh: AtomicUsize,
}

/// What the bytes buffered on a connection amount to. Returned once per
/// request and unpacked at once: boxing the head would only add an
/// allocation per request.
#[allow(clippy::large_enum_variant)]
enum Head {
    Ready(RequestHead),
    Partial,
    Refused,
}

impl Reactor {
    pub fn new(group: Arc<Group>, stopping: Arc<AtomicBool>, draining: Arc<AtomicBool>, descriptors: u64, stop: std::io::PipeReader) -> io::Result<Reactor> {
        let listener = group.listener.as_ref().ok_or_else(|| io::Error::other("no group socket"))?;
        // Room is left for what the application opens itself.
        let max_connections = (descriptors.saturating_sub(descriptors / 4).saturating_sub(16) as usize).clamp(8, 16_384);
        let epoll = Epoll::new()?;
        // The stop pipe is never read: once written it stays readable and
        // wakes every worker, which then sees `stopping`.
        epoll.add(&stop, STOP, false)?;
        let accepts = Epoll::new()?;
        accepts.add(listener, LISTENER, true)?;
        let turns = os::Turns::new()?;
        // Readable while a request read ahead waits; reported again (at the
        // back) after each report while more wait.
        epoll.add(&turns, QUEUED, false)?;
        let (share_load, threads) = (group.config.processes > 1, group.config.threads.max(1) as usize);
        Ok(Reactor {
            group,
            epoll,
            accepts,
            queued: Mutex::new(VecDeque::new()),
            turns,
            stop,
            parked: Mutex::new(HashMap::new()),
            listening: Mutex::new(Listening::Armed),
            next_token: AtomicU64::new(FIRST),
            stopping,
            draining,
            last_arrival: Mutex::new(Instant::now()),
            winding_down: Mutex::new(None),
            max_connections,
            pending: Mutex::new(0),
            starved_logged: AtomicI64::new(0),
            full_logged: AtomicI64::new(0),
            share_load,
            threads,
            load: AtomicUsize::new(0),
            fresh: AtomicUsize::new(0),
        })
    }

    /// Waits for the next request whose head has arrived and verified; None
    /// once the process stops and nothing accepted before is left to read.
    pub fn next_request(&self) -> Option<Ready> {
        let mut events = [Event::empty()];
        loop {
            if self.stopping.load(Ordering::Acquire) && self.wound_down() {
                // Read before the stop: still served.
                return self.queued.lock().pop_front();
            }
            match self.epoll.wait(&mut events, TICK.as_millis() as u16) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(e) => {
                    log::server(Level::Error, &format!("mod_wsgi (pid={}): epoll_wait failed: {e}", std::process::id()));
                    std::thread::sleep(TICK);
                    continue;
                }
            }
            match events[0].data() {
                STOP => {}
                QUEUED => {
                    // One count per request; another worker may have taken this one.
                    if self.turns.take() {
                        return self.queued.lock().pop_front();
                    }
                }
                token => {
                    if let Some(ready) = self.readable(token) {
                        return Some(ready);
                    }
                }
            }
        }
    }

    /// On the first call after the stop: no more connections (what is
    /// queued on the group socket waits for the successor), idle ones close
    /// (their Apache children send what comes next elsewhere). True once
    /// the heads under way have come, or the wind-down is over.
    fn wound_down(&self) -> bool {
        let draining = self.draining.load(Ordering::Acquire);
        let until = *self.winding_down.lock().get_or_insert_with(|| {
            if !draining {
                self.stop_listening();
            }
            // Seen: it would only wake the workers again and again.
            let _ = self.epoll.remove(&self.stop);
            // And connections waiting for their turn, unless the process
            // serves what is queued: their Apache children have sent
            // nothing and connect again, to the successor.
            self.parked.lock().retain(|_, p| p.deadline.is_some() || (draining && p.turn));
            Instant::now() + if draining { self.group.config.shutdown_timeout.max(WIND_DOWN) } else { WIND_DOWN }
        });
        let now = Instant::now();
        if draining && now < until {
            if self.last_arrival.lock().elapsed() < DRAIN_QUIET || self.parked.lock().values().any(|p| p.deadline.is_some() || p.turn) {
                return false;
            }
            self.stop_listening();
        }
        now >= until || (self.parked.lock().is_empty() && self.queued.lock().is_empty())
    }

    fn stop_listening(&self) {
        let mut listening = self.listening.lock();
        if *listening != Listening::Stopped {
            *listening = Listening::Stopped;
            if let Some(listener) = self.group.listener.as_ref() {
                let _ = self.accepts.remove(listener);
            }
        }
    }

    /// Whether connections are no longer taken.
    fn not_accepting(&self) -> bool {
        self.stopping.load(Ordering::Acquire) && !self.draining.load(Ordering::Acquire)
    }

    /// A request has been served (or dropped).
    pub fn done(&self) {
        self.load.fetch_sub(1, Ordering::AcqRel);
        let mut listening = self.listening.lock();
        if *listening == Listening::NoWorker && self.has_spare_worker() {
            self.arm(&mut listening);
        }
    }

    fn arm(&self, listening: &mut Listening) {
        if let Some(listener) = self.group.listener.as_ref()
            && self.accepts.rearm(listener, LISTENER).is_ok()
        {
            *listening = Listening::Armed;
        }
    }

    /// The sweeper thread, until `done`: accepts connections as they come
    /// (not in the workers' queue: see the module's notes), and sweeps ten
    /// times a second.
    pub fn accept_and_sweep(&self, done: &AtomicBool) {
        let mut events = [Event::empty()];
        let mut next_sweep = Instant::now() + TICK;
        while !done.load(Ordering::Acquire) {
            let wait = next_sweep.saturating_duration_since(Instant::now());
            match self.accepts.wait(&mut events, wait.as_micros().div_ceil(1000) as u16) {
                Ok(1..) => self.accept(),
                Ok(0) => {}
                Err(e) => {
                    log::server(Level::Error, &format!("mod_wsgi (pid={}): epoll_wait failed: {e}", std::process::id()));
                    std::thread::sleep(TICK);
                }
            }
            if Instant::now() >= next_sweep {
                self.sweep();
                next_sweep = Instant::now() + TICK;
            }
        }
    }

    /// Ten times a second until the process stops: closes connections
    /// whose head is overdue, lets new connections stop counting as
    /// requests about to arrive, and retries a paused listener.
    fn sweep(&self) {
        self.close_late_heads();
        self.age_fresh();
        let mut listening = self.listening.lock();
        let retry = match *listening {
            Listening::NoWorker => self.has_spare_worker(),
            Listening::NoRoom => self.has_spare_worker() && self.make_room(),
            _ => false,
        };
        if retry && !self.not_accepting() {
            self.arm(&mut listening);
        }
    }

    /// Whether there is room for another connection, closing the longest
    /// idle one if need be.
    fn make_room(&self) -> bool {
        if open_connections() < self.max_connections {
            return true;
        }
        if self.once_a_second(&self.full_logged) {
            log::server(
                Level::Info,
                &format!(
                    "mod_wsgi (pid={}): {} connections open on '{}', the most this process holds; closing idle ones to make room.",
                    std::process::id(),
                    open_connections(),
                    self.group.socket
                ),
            );
        }
        self.close_oldest_idle()
    }

    /// True at most once a second for `last` (µs of the last time).
    fn once_a_second(&self, last: &AtomicI64) -> bool {
        let now = now_micros();
        let then = last.load(Ordering::Relaxed);
        now - then >= 1_000_000 && last.compare_exchange(then, now, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }

    fn has_spare_worker(&self) -> bool {
        !self.share_load || self.load.load(Ordering::Acquire) + self.fresh.load(Ordering::Acquire) < self.threads
    }

    /// The group socket was reported readable: accepts what waits, then
    /// watches it again, unless accepting must pause.
    fn accept(&self) {
        {
            let mut listening = self.listening.lock();
            if *listening == Listening::Stopped {
                return;
            }
            *listening = Listening::Accepting;
        }
        let accepted = self.accept_some();
        if self.not_accepting() {
            // Stopping: the connections waiting are the successor's. Not
            // watched again, or it would report them again and again.
            self.stop_listening();
            return;
        }
        let mut listening = self.listening.lock();
        if *listening != Listening::Accepting {
            return; // stopped meanwhile
        }
        match accepted {
            Accepted::All => self.arm(&mut listening),
            Accepted::Paused(why) => {
                *listening = why;
                // A worker may have finished in between, finding nothing to arm.
                if why == Listening::NoWorker && self.has_spare_worker() {
                    self.arm(&mut listening);
                }
            }
        }
    }

    /// Accepts connections while a worker is free for them (a few at a
    /// time, so that the sweeps keep their pace).
    fn accept_some(&self) -> Accepted {
        for _ in 0..64 {
            if self.not_accepting() {
                return Accepted::All;
            }
            if !self.has_spare_worker() {
                return Accepted::Paused(Listening::NoWorker);
            }
            if !self.make_room() {
                return Accepted::Paused(Listening::NoRoom);
            }
            let listener = self.group.listener.as_ref().expect("checked in new");
            match listener.accept() {
                Ok((stream, _)) => {
                    *self.last_arrival.lock() = Instant::now();
                    self.admit(stream)
                }
                // Taken by another process of the group, or none left.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Accepted::All,
                Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)) => {
                    self.log_starved(&e);
                    if !self.close_oldest_idle() {
                        return Accepted::Paused(Listening::NoRoom);
                    }
                }
                Err(e) => {
                    log::server(Level::Error, &format!("mod_wsgi (pid={}): Couldn't accept connection on '{}': {e}", std::process::id(), self.group.socket));
                    return Accepted::Paused(Listening::NoRoom);
                }
            }
        }
        Accepted::All
    }

    /// At most one line a second while descriptors run out.
    fn log_starved(&self, e: &io::Error) {
        if self.once_a_second(&self.starved_logged) {
            log::server(
                Level::Error,
                &format!(
                    "mod_wsgi (pid={}): Couldn't accept connection on '{}': {e}; {} connections open. Waiting for one to close.",
                    std::process::id(),
                    self.group.socket,
                    open_connections()
                ),
            );
        }
    }

    /// Queues a new connection for its turn (see the module's notes).
    fn admit(&self, stream: std::os::unix::net::UnixStream) {
        // Accepted sockets do not inherit the group socket's buffer sizes.
        let _ = os::set_buffer_sizes(&stream, super::groups::buffer_sizes(&self.group.config));
        // Bounds every blocking read and write of the exchanges to come.
        let timeout = Some(self.group.socket_timeout);
        if stream.set_read_timeout(timeout).and_then(|()| stream.set_write_timeout(timeout)).is_err() {
            return;
        }
        let Ok(challenge) = origin::new_challenge() else { return };
        let conn = Connection::new(stream, challenge, self.stopping.clone());
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let conn = Arc::new(Mutex::new(conn));
        self.fresh.fetch_add(1, Ordering::AcqRel);
        // No deadline while it waits: the wait is not its peer's doing.
        let parked = Parked { conn: conn.clone(), deadline: None, since: now, held: 0, fresh_until: Some(now + FRESH), turn: true };
        self.parked.lock().insert(token, parked);
        if self.epoll.add_turn(conn.lock().wire.stream(), token).is_err()
            && let Some(mut parked) = self.parked.lock().remove(&token)
        {
            self.release(&mut parked);
        }
    }

    /// Reads what arrived on a parked connection: the request, once its
    /// whole head is there. A new connection's turn: its challenge, then
    /// its head, as soon as it comes.
    fn readable(&self, token: u64) -> Option<Ready> {
        let mut parked = self.parked.lock().remove(&token)?;
        if parked.deadline.is_none() && self.not_accepting() {
            // A kept connection's next request after the stop, or a new
            // connection's turn: closed unread, so its Apache child sends
            // the request to the successor.
            self.release(&mut parked);
            return None;
        }
        let conn = parked.conn.clone();
        let mut c = conn.lock();
        if std::mem::take(&mut parked.turn) {
            let challenge = c.challenge;
            // A new socket's buffer takes these few bytes at once.
            if protocol::write_challenge(&mut c.wire, &challenge).is_err() {
                drop(c);
                self.release(&mut parked);
                return None;
            }
            parked.deadline = Some(Instant::now() + self.group.socket_timeout);
            os::wait_readable(c.wire.stream(), HEAD_WAIT);
        }
        loop {
            // What the buffer has room for (the head and often the whole
            // body); a head larger than that, no more than it still needs.
            let want = match protocol::request_head_frame_len(c.wire.buffered()) {
                Ok(Some(len)) => len.saturating_sub(c.wire.buffered().len()).clamp(c.wire.room().min(PIECE), PIECE),
                _ => c.wire.room().max(HEADER_LEN),
            };
            match c.wire.receive(want, os::recv_now) {
                Ok(0) => {
                    if !c.wire.buffered().is_empty() {
                        log::server(Level::Error, &format!("mod_wsgi (pid={}): Unable to read WSGI request. The connection from {} closed in the middle of a request head.", std::process::id(), describe_peer(&c)));
                    }
                    drop(c);
                    self.release(&mut parked);
                    return None;
                }
                Ok(_) => {
                    // Word that a client went, come after its exchange ended: nothing to do.
                    let late = protocol::client_gone_frames(c.wire.buffered());
                    c.wire.consume(late);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    drop(c);
                    self.release(&mut parked);
                    return None;
                }
            }
            if !matches!(protocol::request_head_frame_len(c.wire.buffered()), Ok(Some(len)) if c.wire.buffered().len() < len) {
                break;
            }
        }
        match self.take_head(&mut c) {
            Head::Ready(head) => {
                drop(c);
                self.release(&mut parked);
                *self.last_arrival.lock() = Instant::now();
                self.load.fetch_add(1, Ordering::AcqRel);
                Some(Ready { conn, token, head })
            }
            Head::Refused => {
                drop(c);
                self.release(&mut parked);
                None
            }
            Head::Partial => {
                let held = c.wire.buffered().len();
                if !self.hold(&mut parked, held) {
                    log::server(
                        Level::Error,
                        &format!("mod_wsgi (pid={}): Unable to read WSGI request. Unfinished request heads hold over {PENDING_BUDGET} bytes; closed the connection from {}.", std::process::id(), describe_peer(&c)),
                    );
                    drop(c);
                    self.release(&mut parked);
                    return None;
                }
                parked.deadline.get_or_insert_with(|| Instant::now() + self.group.socket_timeout);
                self.watch(token, parked, &c);
                None
            }
        }
    }

    /// Waits for what comes next on a parked connection.
    fn watch(&self, token: u64, parked: Parked, c: &Connection) {
        // In the map before it is watched again: a worker woken for it must find it.
        self.parked.lock().insert(token, parked);
        if self.epoll.rearm(c.wire.stream(), token).is_err()
            && let Some(mut parked) = self.parked.lock().remove(&token)
        {
            self.release(&mut parked);
        }
    }

    /// Counts `held` bytes of an unfinished head against the budget; false
    /// when that would exceed it.
    fn hold(&self, parked: &mut Parked, held: usize) -> bool {
        let mut pending = self.pending.lock();
        let total = *pending - parked.held + held;
        if total > PENDING_BUDGET {
            return false;
        }
        *pending = total;
        parked.held = held;
        true
    }

    /// A parked connection leaves: its bytes come off the budget, and it no
    /// longer counts as a request about to arrive.
    fn release(&self, parked: &mut Parked) {
        *self.pending.lock() -= std::mem::take(&mut parked.held);
        if parked.fresh_until.take().is_some() {
            self.fresh.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// New connections that have not sent a head in time stop counting as
    /// requests about to arrive.
    fn age_fresh(&self) {
        let now = Instant::now();
        for parked in self.parked.lock().values_mut() {
            if parked.fresh_until.is_some_and(|until| until <= now) {
                parked.fresh_until = None;
                self.fresh.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Checks the head buffered on `c`, if it is all there: verified, it is
    /// taken off the buffer and decoded.
    fn take_head(&self, c: &mut Connection) -> Head {
        let len = match protocol::request_head_frame_len(c.wire.buffered()) {
            Ok(Some(len)) if c.wire.buffered().len() >= len => len,
            Ok(_) => return Head::Partial,
            Err(e) => return self.refuse(c, &e.to_string()),
        };
        let sequence = c.heads + 1;
        let verified = {
            let buffered = c.wire.buffered();
            match SealedHead::from_payload(&buffered[HEADER_LEN..len]) {
                Ok(sealed) if origin::verify(&self.group.config.name, &c.challenge, sequence, sealed.sealed, sealed.tag) => Some(sealed.open()),
                Ok(_) => None,
                Err(e) => return self.refuse(c, &e.to_string()),
            }
        };
        let Some(opened) = verified else { return self.refuse(c, "its MAC does not verify") };
        c.wire.consume(len);
        c.heads = sequence;
        match opened {
            Ok(head) => Head::Ready(head),
            Err(e) => {
                log::server(Level::Error, &format!("mod_wsgi (pid={}): Unable to read WSGI request from {}: {e}", std::process::id(), describe_peer(c)));
                Head::Refused
            }
        }
    }

    /// Logs a head that cannot have come from Apache's children; the
    /// connection is then closed without an answer.
    fn refuse(&self, c: &Connection, why: &str) -> Head {
        log::server(
            Level::Error,
            &format!(
                "mod_wsgi (pid={}): Request origin could not be validated. Refused a request head on '{}' from {}: {why}.",
                std::process::id(),
                self.group.socket,
                describe_peer(c)
            ),
        );
        Head::Refused
    }

    /// Takes back a connection after an exchange, to wait for its next head.
    pub fn park(&self, token: u64, conn: Conn) {
        let mut c = conn.lock();
        c.wire.release_buffers();
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let mut parked = Parked { conn: conn.clone(), deadline: None, since: now, held: 0, fresh_until: None, turn: false };
        if !c.wire.buffered().is_empty() {
            // Nothing would wake the epoll set for bytes already read.
            match self.take_head(&mut c) {
                Head::Ready(head) => {
                    drop(c);
                    self.load.fetch_add(1, Ordering::AcqRel);
                    // To the back of the queue: served now, it would go
                    // before the heads that arrived while this exchange ran.
                    self.queued.lock().push_back(Ready { conn, token, head });
                    self.turns.give();
                    return;
                }
                Head::Refused => return,
                Head::Partial => {
                    parked.deadline = Some(now + self.group.socket_timeout);
                    if !self.hold(&mut parked, c.wire.buffered().len()) {
                        return;
                    }
                }
            }
        }
        self.watch(token, parked, &c);
    }

    /// Closes connections whose head is overdue. One with bytes waiting
    /// unread is left to the workers (all were busy: not the peer's fault).
    fn close_late_heads(&self) {
        let now = Instant::now();
        let late: Vec<Parked> = self.parked.lock().extract_if(|_, p| p.deadline.is_some_and(|d| d <= now) && !bytes_waiting(&p.conn)).map(|(_, p)| p).collect();
        for mut parked in late {
            {
                let c = parked.conn.lock();
                let what = if c.wire.buffered().is_empty() { "No request head" } else { "No complete request head" };
                log::server(
                    Level::Error,
                    &format!(
                        "mod_wsgi (pid={}): Unable to read WSGI request. {what} within socket-timeout of {} seconds from {}; closed the connection.",
                        std::process::id(),
                        self.group.socket_timeout.as_secs(),
                        describe_peer(&c)
                    ),
                );
            }
            self.release(&mut parked);
        }
    }

    /// Closes the connection idle the longest, to make room; false when no
    /// connection is idle. One whose next request has already arrived
    /// (unread, all workers being busy) is not idle.
    fn close_oldest_idle(&self) -> bool {
        let mut parked = self.parked.lock();
        let mut idle: Vec<(Instant, u64)> = parked.iter().filter(|(_, p)| p.deadline.is_none() && !p.turn).map(|(&token, p)| (p.since, token)).collect();
        idle.sort_unstable();
        let oldest = idle.into_iter().map(|(_, token)| token).find(|token| !bytes_waiting(&parked[token].conn));
        // Idle connections hold no head bytes and are not new: nothing to release.
        oldest.and_then(|token| parked.remove(&token)).is_some()
    }
}

/// Whether the peer sent bytes (or closed) that no worker has read yet.
fn bytes_waiting(conn: &Conn) -> bool {
    conn.try_lock().is_none_or(|c| !os::nothing_pending(c.wire.stream()))
}

/// `pid=N, uid=N` of a connection's peer, for log lines.
fn describe_peer(c: &Connection) -> String {
    format!("pid={}, uid={}", c.peer.pid, c.peer.uid)
}
