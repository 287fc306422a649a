//! The state one request shares between the WSGI call and the objects Python sees.

use std::cell::RefCell;
use std::sync::Arc;

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
}

impl RequestContext {
    pub fn new(io: Box<dyn RequestIo>, script: String) -> Arc<Self> {
        Arc::new(RequestContext { io: Mutex::new(Some(io)), response: Mutex::new(ResponseState::default()), script })
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
