//! The state one request shares between the WSGI call and the objects Python sees.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use super::{Level, RequestIo};
use super::response::ResponseState;

/// Shared by wsgi.input, start_response, write() and wsgi.errors.
///
/// The I/O side is taken out when the request ends, so objects an application
/// keeps past its request fail cleanly instead of touching a finished request.
/// Lock `io` only with the GIL released: holders may block on the network.
pub struct RequestContext {
    pub io: Mutex<Option<Box<dyn RequestIo>>>,
    pub response: Mutex<ResponseState>,
    pub script: String,
    pub counters: Counters,
}

/// Reads and writes of the request's bodies, for the request_finished event.
#[derive(Default)]
pub struct Counters {
    pub input_reads: AtomicU64,
    pub input_length: AtomicU64,
    pub input_micros: AtomicU64,
    pub output_writes: AtomicU64,
    pub output_micros: AtomicU64,
}

impl Counters {
    /// Counts one read of `bytes` that started at `since`.
    pub fn read(&self, bytes: usize, since: Instant) {
        self.input_reads.fetch_add(1, Ordering::Relaxed);
        self.input_length.fetch_add(bytes as u64, Ordering::Relaxed);
        self.input_micros.fetch_add(since.elapsed().as_micros() as u64, Ordering::Relaxed);
    }

    /// Counts one write that started at `since`.
    pub fn wrote(&self, since: Instant) {
        self.output_writes.fetch_add(1, Ordering::Relaxed);
        self.output_micros.fetch_add(since.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}

impl RequestContext {
    pub fn new(io: Box<dyn RequestIo>, script: String) -> Arc<Self> {
        Arc::new(RequestContext { io: Mutex::new(Some(io)), response: Mutex::new(ResponseState::default()), script, counters: Counters::default() })
    }

    /// Logs in the request's context while it lasts, else against the server.
    pub fn log(&self, level: Level, msg: &str) {
        match self.io.try_lock() {
            Some(guard) if guard.is_some() => guard.as_ref().expect("checked").log(level, msg),
            _ => super::server_log(level, msg),
        }
    }

    /// Ends the request: later use of its Python objects raises.
    pub fn close(&self) -> Option<Box<dyn RequestIo>> {
        self.io.lock().take()
    }
}

thread_local! {
    /// The request this thread is running, so sys.stdout / sys.stderr output
    /// is logged with the client it concerns, as wsgi.errors output is.
    static CURRENT: RefCell<Option<Arc<RequestContext>>> = const { RefCell::new(None) };
}

/// Marks `context` as this thread's request until the guard drops.
pub struct Current;

impl Current {
    pub fn enter(context: &Arc<RequestContext>) -> Current {
        CURRENT.with(|c| *c.borrow_mut() = Some(context.clone()));
        Current
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().take());
    }
}

/// Logs in the context of this thread's request, if any, else against the server.
pub fn log_for_thread(level: Level, msg: &str) {
    let current = CURRENT.with(|c| c.borrow().clone());
    match current {
        Some(context) => context.log(level, msg),
        None => super::server_log(level, msg),
    }
}
