//! receive() and send() of one ASGI request, on the event loop's side: each
//! becomes a message for the relay threads. What ASGI forbids (a body
//! before the start, anything after the end) and what WSGI would refuse (a
//! bad header) raises in send() at once. Body pieces are not waited for
//! while less than `HIGH_WATER` bytes are on their way, as a transport's
//! write buffer is not; past it, send() waits until its piece is written.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crossbeam_channel::Sender;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::super::events::AsgiTracked;
use super::super::response::check_header;
use super::super::Level;
use super::super::context::RequestContext;
use super::super::wsgi::ClientGone;
use super::bell::Bell;
use super::piece::Piece;

/// Response bytes a request may have on their way to the client before
/// send() waits for them.
const HIGH_WATER: usize = 1024 * 1024;

/// Keys of the futures the event loop keeps for receive() and send().
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

pub(super) fn next_key() -> u64 {
    NEXT_KEY.fetch_add(1, Ordering::Relaxed)
}

/// What the task asks of the relay threads. No Python object: a message
/// may be dropped by any thread.
pub(super) enum Message {
    /// receive(): its future's key.
    Receive(u64),
    Start { status: u16, headers: Vec<(String, String)> },
    /// A body piece; with the key of the future send() awaits, if it waits.
    Body { data: Piece, more: bool, future: Option<u64> },
    /// The http.response.pathsend extension: the file is the whole body.
    PathSend { path: std::path::PathBuf, future: u64 },
    /// The task ended, with how it failed if it did.
    Done(Option<Failure>),
}

/// An exception the task ended with, ready to log.
pub(super) struct Failure {
    pub traceback: Vec<String>,
    /// The client went away (send() raised that): no fault of the application.
    pub client_gone: bool,
}

impl Failure {
    /// Logs it in the request's context (the server's once that is over):
    /// the traceback, or a line at debug level when the client went away.
    pub fn log(&self, context: &RequestContext) {
        let pid = std::process::id();
        if self.client_gone {
            context.log(Level::Debug, &format!("mod_wsgi (pid={pid}): {}", self.traceback.last().map_or("", String::as_str)));
        } else {
            context.log(Level::Error, &format!("mod_wsgi (pid={pid}): Exception occurred processing WSGI script '{}'.", context.script));
            for line in &self.traceback {
                context.log(Level::Error, line);
            }
        }
    }
}

/// Who relays what the task sends (see `AsgiRequest::on_message`).
pub(super) struct Waker {
    /// Wakes a relay thread.
    pub relay: Box<dyn Fn() + Send + Sync>,
    /// Relays on this thread what needs neither a wait nor the GIL; false
    /// when a relay thread is to do it.
    pub here: Box<dyn Fn() -> bool + Send + Sync>,
}

impl Waker {
    /// Has what was sent relayed: on this thread, with the GIL released,
    /// when `here` (the message is a small body piece or the task's end),
    /// else by a relay thread.
    pub fn wake(&self, py: Python<'_>, here: bool) {
        if !(here && py.detach(|| (self.here)())) {
            (self.relay)();
        }
    }
}

/// What the relay threads tell the loop's side.
#[derive(Default)]
pub(super) struct Shared {
    /// A write to the client failed.
    pub gone: AtomicBool,
    /// Body bytes sent and not yet written.
    pub in_flight: AtomicUsize,
    /// With event subscribers: the request in the mod_wsgi module, for
    /// request_finished as the exchange ends.
    pub events: parking_lot::Mutex<Option<Arc<AsgiTracked>>>,
    /// The exchange has ended (`AsgiRequest::finish`): nobody reads what
    /// the task passes any more.
    pub over: AtomicBool,
    /// Held while a message is passed, and while the exchange is ended: a
    /// message passed after the end comes back to the task.
    pub closing: parking_lot::Mutex<()>,
}

impl Shared {
    /// Hands over the request's events for the end of the exchange; false
    /// if the exchange has already ended (`gone` is set before `events` is
    /// looked at there).
    pub fn hand_events(&self, events: &Arc<AsgiTracked>) -> bool {
        let mut slot = self.events.lock();
        if self.gone.load(Ordering::Acquire) {
            return false;
        }
        *slot = Some(events.clone());
        true
    }
}

#[pyclass(frozen, module = "mod_wsgi")]
pub(super) struct Channel {
    relay: Sender<Message>,
    wake: Arc<OnceLock<Waker>>,
    shared: Arc<Shared>,
    /// http.response.start, and the last body piece, were sent.
    started: AtomicBool,
    complete: AtomicBool,
    /// The request in the mod_wsgi module (its events, active_requests).
    events: Arc<AsgiTracked>,
    /// The loop's, for the body pieces sent in place.
    bell: Arc<Bell>,
    /// For a failure logged once the exchange is over.
    context: Arc<RequestContext>,
}

impl Channel {
    pub fn new(relay: Sender<Message>, wake: Arc<OnceLock<Waker>>, shared: Arc<Shared>, events: Arc<AsgiTracked>, bell: Arc<Bell>, context: Arc<RequestContext>) -> Channel {
        Channel { relay, wake, shared, started: AtomicBool::new(false), complete: AtomicBool::new(false), events, bell, context }
    }

    fn pass(&self, py: Python<'_>, message: Message) -> PyResult<()> {
        self.offer(py, message).map_err(|_| gone())
    }

    /// Passes `message` on, or gives it back when the request is over.
    fn offer(&self, py: Python<'_>, message: Message) -> Result<(), Message> {
        // The head waits for the first body piece anyway: no need to wake anyone for it.
        let urgent = !matches!(message, Message::Start { .. });
        // What may go out from this thread without waiting (`pump_here`
        // decides): the task's end, a body piece.
        let here = matches!(message, Message::Body { future: None, .. } | Message::Done(_));
        {
            let _closing = self.shared.closing.lock();
            if self.shared.over.load(Ordering::Acquire) {
                return Err(message);
            }
            self.relay.send(message).map_err(|refused| refused.0)?;
        }
        if urgent && let Some(waker) = self.wake.get() {
            waker.wake(py, here);
        }
        Ok(())
    }
}

/// What send() raises once the client has gone (an OSError, as the spec asks).
pub(super) fn gone() -> PyErr {
    ClientGone::new_err("the client connection is closed")
}

fn unexpected(kind: &str, when: &str) -> PyErr {
    PyRuntimeError::new_err(format!("Unexpected ASGI message '{kind}' sent, {when}."))
}

#[pymethods]
impl Channel {
    /// Asks for the next event; returns the key its future is kept under,
    /// or None when the exchange is over (the response complete, or the
    /// client gone): http.disconnect, at once.
    fn receive(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        if self.shared.gone.load(Ordering::Acquire) {
            return Ok(None);
        }
        let key = next_key();
        match self.pass(py, Message::Receive(key)) {
            Ok(()) => Ok(Some(key)),
            Err(_) => Ok(None),
        }
    }

    /// Passes a message on; returns the key of the future to await, or
    /// None when send() need not wait.
    fn send(&self, message: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
        let message = message.cast::<PyDict>().map_err(|_| PyTypeError::new_err("ASGI message must be a dict"))?;
        let kind: String = message.get_item("type")?.ok_or_else(|| PyValueError::new_err("ASGI message has no 'type'"))?.extract()?;
        if self.complete.load(Ordering::Relaxed) {
            return Err(unexpected(&kind, "after response already completed"));
        }
        if self.shared.gone.load(Ordering::Acquire) {
            return Err(gone());
        }
        let started = self.started.load(Ordering::Relaxed);
        match kind.as_str() {
            "http.response.start" if started => Err(unexpected(&kind, "after response already started")),
            "http.response.start" => {
                let status: i64 = message.get_item("status")?.ok_or_else(|| PyValueError::new_err("http.response.start has no 'status'"))?.extract()?;
                let status = u16::try_from(status).ok().filter(|s| (100..=999).contains(s)).ok_or_else(|| PyValueError::new_err(format!("invalid status {status}")))?;
                let headers = match message.get_item("headers")? {
                    Some(headers) => response_headers(&headers)?,
                    None => Vec::new(),
                };
                self.events.response_started(message.py(), status, &headers);
                self.pass(message.py(), Message::Start { status, headers })?;
                self.started.store(true, Ordering::Relaxed);
                Ok(None)
            }
            "http.response.body" | "http.response.pathsend" if !started => Err(unexpected(&kind, "before 'http.response.start'")),
            "http.response.body" => {
                let data = match message.get_item("body")? {
                    Some(body) => Piece::new(body.cast::<PyBytes>().map_err(|_| PyTypeError::new_err("http.response.body 'body' must be bytes"))?, &self.bell),
                    None => Piece::default(),
                };
                let more = match message.get_item("more_body")? {
                    Some(more) => more.is_truthy()?,
                    None => false,
                };
                let on_its_way = self.shared.in_flight.fetch_add(data.len(), Ordering::AcqRel) + data.len();
                let future = (on_its_way > HIGH_WATER).then(next_key);
                self.pass(message.py(), Message::Body { data, more, future })?;
                self.complete.store(!more, Ordering::Relaxed);
                Ok(future)
            }
            "http.response.pathsend" => {
                let path: std::path::PathBuf = message.get_item("path")?.ok_or_else(|| PyValueError::new_err("http.response.pathsend has no 'path'"))?.extract()?;
                if !path.is_absolute() {
                    return Err(PyValueError::new_err(format!("http.response.pathsend 'path' must be absolute, not {}", path.display())));
                }
                let future = next_key();
                self.pass(message.py(), Message::PathSend { path, future })?;
                self.complete.store(true, Ordering::Relaxed);
                Ok(Some(future))
            }
            other => Err(PyRuntimeError::new_err(format!("Unexpected ASGI message '{other}' sent."))),
        }
    }

    /// The task ended, raising `exception` if not None.
    #[pyo3(signature = (exception=None))]
    fn done(&self, py: Python<'_>, exception: Option<Bound<'_, PyAny>>) {
        let failure = exception.map(|exception| {
            let err = PyErr::from_value(exception);
            self.events.exception(py, &err);
            Failure { client_gone: err.is_instance_of::<ClientGone>(py), traceback: traceback(py, &err) }
        });
        self.events.task_ended(py);
        // Once the exchange is over nobody reads what is passed: logged here.
        let unpassed = match self.offer(py, Message::Done(failure)) {
            Err(Message::Done(failure)) => failure,
            _ => None,
        };
        if let Some(failure) = unpassed {
            failure.log(&self.context);
        }
    }
}

/// An exception's traceback, a line at a time.
pub(super) fn traceback(py: Python<'_>, err: &PyErr) -> Vec<String> {
    let formatted = py
        .import("traceback")
        .and_then(|tb| tb.call_method1("format_exception", (err.get_type(py), err.value(py), err.traceback(py))))
        .and_then(|chunks| chunks.extract::<Vec<String>>());
    match formatted {
        Ok(chunks) => chunks.iter().flat_map(|chunk| chunk.lines()).map(str::to_owned).collect(),
        Err(_) => vec![err.to_string()],
    }
}

/// An ASGI header list: pairs of bytes, checked as WSGI headers are.
fn response_headers(headers: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let latin1 = |value: &Bound<'_, PyAny>| -> PyResult<String> {
        let bytes = value.cast::<PyBytes>().map_err(|_| PyTypeError::new_err("ASGI header names and values must be bytes"))?;
        Ok(bytes.as_bytes().iter().map(|&b| b as char).collect())
    };
    let mut out = Vec::new();
    for pair in headers.try_iter()? {
        let pair = pair?;
        let items: Vec<Bound<'_, PyAny>> = pair.try_iter()?.collect::<PyResult<_>>()?;
        let [name, value] = items.as_slice() else { return Err(PyValueError::new_err("ASGI header must be a pair of name and value")) };
        let (name, value) = (latin1(name)?, latin1(value)?);
        check_header(&name, &value)?;
        out.push((name, value));
    }
    Ok(out)
}
