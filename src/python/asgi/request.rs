//! The relay side of one ASGI request: the socket I/O its task asks for,
//! done with the GIL released. The GIL is taken only to hand the task what
//! it waits for (a request body piece, http.disconnect, a send() past the
//! high-water mark): a response that only goes out needs none.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyModule};

use super::super::context::RequestContext;
use super::super::wsgi::Outcome;
use super::super::{Level, RequestIo, application_groups};
use super::channel::{Failure, Message, Shared, Waker, gone};

/// Largest body piece one `http.request` event carries.
const BODY_PIECE: usize = 64 * 1024;

/// Where the response stands, as far as the relay has got.
#[derive(Default)]
struct Progress {
    /// The status and headers, until the first body piece takes them.
    head: Option<(u16, Vec<(String, String)>)>,
    /// The head went out.
    head_sent: bool,
    /// The last body piece went out.
    complete: bool,
    /// A write to the client failed.
    gone: bool,
    /// The request body has been read to its end.
    body_read: bool,
    /// Request body bytes read so far.
    body_received: u64,
    /// Response body bytes written.
    body_sent: u64,
    /// The key of a receive() waiting for http.disconnect.
    waiting: Option<u64>,
    /// The Apache child has been asked to tell when the client goes.
    watching: bool,
}

/// An ASGI request whose task runs on the loop. Whoever holds it calls
/// `pump` when woken (see `on_message`), then `finish`.
pub struct AsgiRequest {
    pub(super) relay: Receiver<Message>,
    /// This request's key in the helper module (to cancel its task).
    pub(super) key: u64,
    /// The interpreter's helper module (kept for the life of the process).
    pub(super) helper: Arc<Py<PyModule>>,
    pub(super) shared: Arc<Shared>,
    pub(super) wake: Arc<OnceLock<Waker>>,
    pub(super) context: Arc<RequestContext>,
    pub(super) group: String,
    pub(super) timeout: Duration,
    pub(super) deadline: Option<Instant>,
    /// The request's Content-Length: the piece that completes it says so
    /// (more_body false), with no empty event after it.
    body_length: Option<u64>,
    progress: Progress,
    /// A message `pump_here` took and left for a relay thread.
    deferred: Option<Message>,
    /// Response body bytes that go out without a wait (`pump_here` sends
    /// no more).
    sends_at_once: u64,
}

impl AsgiRequest {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        relay: Receiver<Message>,
        key: u64,
        helper: Arc<Py<PyModule>>,
        shared: Arc<Shared>,
        wake: Arc<OnceLock<Waker>>,
        context: Arc<RequestContext>,
        group: String,
        timeout: Duration,
        body_length: Option<u64>,
    ) -> AsgiRequest {
        let deadline = (!timeout.is_zero()).then(|| Instant::now() + timeout);
        let sends_at_once = context.io.lock().as_ref().map_or(0, |io| io.sends_at_once()) as u64;
        AsgiRequest { relay, key, helper, shared, wake, context, group, timeout, deadline, body_length, progress: Progress::default(), deferred: None, sends_at_once }
    }

    /// Has `wake` called whenever the task sends something that needs
    /// relaying now (and once now, if it has sent something already), or
    /// `here` first when the task's thread may relay it itself (which calls
    /// `pump_here`, and says false when it could not).
    pub fn on_message(&self, wake: impl Fn() + Send + Sync + 'static, here: impl Fn() -> bool + Send + Sync + 'static) {
        if self.wake.set(Waker { relay: Box::new(wake), here: Box::new(here) }).is_ok()
            && !self.relay.is_empty()
            && let Some(waker) = self.wake.get()
        {
            (waker.relay)();
        }
    }

    /// Whether the Apache child watches for the client going: what it
    /// then sends on the connection is for `client_gone`.
    pub fn watching(&self) -> bool {
        self.progress.watching && !self.progress.gone
    }

    /// The Apache child says the client has gone: a waiting receive() gets
    /// http.disconnect, and send() raises from now on.
    pub fn client_gone(&mut self) {
        self.left("The client went away while the ASGI application awaited.");
        self.settle(None);
    }

    /// When request-timeout= ends it.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Relays what the task has sent so far, without waiting for more;
    /// Some once the request is over.
    pub fn pump(&mut self) -> Option<Outcome> {
        if let Some(message) = self.deferred.take()
            && let Some(outcome) = self.handle(message)
        {
            return Some(outcome);
        }
        loop {
            match self.relay.try_recv() {
                Ok(message) => {
                    if let Some(outcome) = self.handle(message) {
                        return Some(outcome);
                    }
                }
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => return Some(Outcome::Failed),
            }
        }
    }

    /// As `pump`, on the task's own thread: only what needs neither a wait
    /// (a body to read, a large piece to write, a file to open) nor the GIL
    /// (a future to complete). Err when a relay thread is to do the rest;
    /// what was taken and not done is left for its `pump`.
    pub fn pump_here(&mut self) -> Result<Option<Outcome>, ()> {
        if self.deferred.is_some() {
            return Err(());
        }
        loop {
            match self.relay.try_recv() {
                Ok(message) if self.quick(&message) => {
                    if let Some(outcome) = self.handle(message) {
                        return Ok(Some(outcome));
                    }
                }
                Ok(message) => {
                    self.deferred = Some(message);
                    return Err(());
                }
                Err(TryRecvError::Empty) => return Ok(None),
                Err(TryRecvError::Disconnected) => return Ok(Some(Outcome::Failed)),
            }
        }
    }

    /// Whether `pump_here` may act on `message`.
    fn quick(&self, message: &Message) -> bool {
        // Settling a waiting receive(), or publishing request_finished, takes the GIL.
        let calm = self.progress.waiting.is_none() && self.shared.events.lock().is_none();
        calm && match message {
            Message::Start { .. } => true,
            Message::Done(_) => self.body_is_here(),
            Message::Body { data, more, future: None } => {
                // The head goes out with the first piece.
                let head = self.progress.head.as_ref().map_or(0, |(_, headers)| headers.iter().map(|(name, value)| name.len() + value.len() + 4).sum::<usize>() + 16);
                // The last piece ends the exchange too (see `over`).
                self.progress.body_sent + (head + data.len()) as u64 <= self.sends_at_once && (*more || self.body_is_here())
            }
            _ => false,
        }
    }

    /// Whether ending the exchange, which reads what is left of the request
    /// body, cannot wait.
    fn body_is_here(&self) -> bool {
        with_io(&self.context, |io| Ok(io.body_is_here())).unwrap_or(false)
    }

    /// request-timeout= has passed: the task is cancelled, and the client
    /// gets 504 unless the response has begun.
    pub fn expire(&mut self) -> Outcome {
        let why = format!("Request timeout of {:?} expired for ASGI application '{}'", self.timeout, self.context.script);
        self.cancel(Level::Error, &why)
    }

    /// The process is stopping and the request still runs (a stream that
    /// would not end): its task is cancelled, so that lifespan shutdown can run.
    pub fn stop(&mut self) -> Outcome {
        let why = format!("Process stopping with ASGI application '{}' still running", self.context.script);
        self.cancel(Level::Info, &why)
    }

    fn cancel(&mut self, level: Level, why: &str) -> Outcome {
        // A task not yet started (still on its way to the loop) never starts.
        self.shared.gone.store(true, Ordering::Release);
        self.context.log(level, &format!("mod_wsgi (pid={}): {why}, its task is cancelled.", std::process::id()));
        application_groups::with_group(&self.group, |py| {
            if let Err(err) = self.helper.bind(py).call_method1("cancel", (self.key,)) {
                self.context.log(Level::Error, &format!("mod_wsgi (pid={}): Couldn't cancel an ASGI task: {err}", std::process::id()));
            }
        });
        if self.progress.head_sent { Outcome::Aborted } else { Outcome::TimedOut }
    }

    /// Ends the request: a waiting receive() gets http.disconnect, what
    /// the task sends from now on raises, and subscribers hear
    /// request_finished.
    pub fn finish(mut self) {
        // Under `closing`, so that what the task passes from now on comes
        // back to it (see `Channel::offer`) rather than into a queue nobody reads.
        let left: Vec<Message> = {
            let _closing = self.shared.closing.lock();
            self.shared.gone.store(true, Ordering::Release);
            self.shared.over.store(true, Ordering::Release);
            self.relay.try_iter().collect()
        };
        // What the task sent that the exchange did not get to (it ran on
        // after its response was complete): a receive() gets http.disconnect,
        // a send() waiting for its piece hears the client is gone, and how the
        // task ended is logged.
        let mut disconnect: Vec<u64> = self.progress.waiting.take().into_iter().collect();
        let mut refused = Vec::new();
        for message in left {
            match message {
                Message::Receive(key) => disconnect.push(key),
                Message::Body { future: Some(key), .. } | Message::PathSend { future: key, .. } => refused.push(key),
                Message::Done(Some(failure)) => failure.log(&self.context),
                _ => {}
            }
        }
        let events = self.shared.events.lock().take();
        if !disconnect.is_empty() || !refused.is_empty() || events.is_some() {
            application_groups::with_group(&self.group, |py| {
                for key in disconnect {
                    self.resolve_disconnect(py, key);
                }
                for key in refused {
                    self.resolve(py, key, gone().value(py));
                }
                if let Some(events) = events {
                    events.end(py, self.progress.body_sent);
                    // Its Python objects go with the GIL held.
                    drop(events);
                }
            });
        }
        self.context.close();
    }

    /// Acts on one message; Some when the request is over.
    fn handle(&mut self, message: Message) -> Option<Outcome> {
        match message {
            Message::Receive(key) => {
                self.receive(key);
                None
            }
            Message::Start { status, headers } => {
                self.progress.head = Some((status, headers));
                None
            }
            Message::Body { data, more, future } => {
                let head = self.progress.head.take();
                let since = Instant::now();
                let sent = if self.progress.gone {
                    Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))
                } else {
                    with_io(&self.context, |io| {
                        if let Some((status, headers)) = &head {
                            io.send_headers(*status, &status.to_string(), headers)?;
                        }
                        // An empty piece that carries the head sends it now: a
                        // stream's first event may be long in coming.
                        if !data.is_empty() || (more && head.is_some()) {
                            io.write_body(&data, more)?;
                        }
                        if !more { io.finish() } else { Ok(()) }
                    })
                };
                if sent.is_ok() {
                    self.context.counters.wrote(since);
                    self.progress.body_sent += data.len() as u64;
                }
                self.shared.in_flight.fetch_sub(data.len(), Ordering::AcqRel);
                self.progress.head_sent |= head.is_some() && sent.is_ok();
                self.sent(sent, !more, future);
                self.over()
            }
            Message::PathSend { path, future } => {
                let head = self.progress.head.take();
                let since = Instant::now();
                let sent = send_path(&self.context, head.as_ref(), &path);
                if let Ok(length) = &sent {
                    self.context.counters.wrote(since);
                    self.progress.body_sent += length;
                }
                let sent = sent.map(drop);
                if let Err(err) = &sent
                    && matches!(err.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied)
                {
                    // Nothing went out: the task hears why, and may answer otherwise.
                    self.progress.head = head;
                    let problem = format!("http.response.pathsend cannot open {}: {err}", path.display());
                    application_groups::with_group(&self.group, |py| self.resolve(py, future, PyOSError::new_err(problem).value(py)));
                    return None;
                }
                self.progress.head_sent |= head.is_some() && sent.is_ok();
                self.sent(sent, true, Some(future));
                self.over()
            }
            Message::Done(failure) => Some(self.done(failure)),
        }
    }

    /// Once the response is complete the exchange is over, whether or not
    /// the task is: work it does after (a background task) holds up neither
    /// the connection nor the next request on it. Its receive() then gives
    /// http.disconnect, and an exception it ends with is still logged.
    fn over(&self) -> Option<Outcome> {
        self.progress.complete.then_some(Outcome::Sent)
    }

    /// After a write: the response is complete (`last`) or the client gone,
    /// and the send() awaiting it, if any, and a receive() waiting for
    /// http.disconnect hear so.
    fn sent(&mut self, sent: std::io::Result<()>, last: bool, future: Option<u64>) {
        match sent {
            Ok(()) => self.progress.complete |= last,
            Err(err) => self.left(&format!("Apache/mod_wsgi failed to write response data: {err}")),
        }
        self.settle(future);
    }

    /// The client has gone (`why`, logged once): what the task sends raises from now on.
    fn left(&mut self, why: &str) {
        if !self.progress.gone {
            self.context.log(Level::Debug, &format!("mod_wsgi (pid={}): {why}", std::process::id()));
        }
        self.progress.gone = true;
        self.shared.gone.store(true, Ordering::Release);
    }

    /// Hands the task what it waits for now: the send() awaiting `future`,
    /// and, once the response is over, a receive() waiting for http.disconnect.
    fn settle(&mut self, future: Option<u64>) {
        let disconnect = if self.progress.complete || self.progress.gone { self.progress.waiting.take() } else { None };
        if future.is_none() && disconnect.is_none() {
            return;
        }
        let gone_now = self.progress.gone;
        application_groups::with_group(&self.group, |py| {
            if let Some(future) = future {
                if gone_now { self.resolve(py, future, gone().value(py)) } else { self.resolve(py, future, &py.None().into_bound(py)) }
            }
            if let Some(waiting) = disconnect {
                self.resolve_disconnect(py, waiting);
            }
        });
    }

    /// receive(): the next body piece, or (once the body is read) http.disconnect
    /// when the response is done or the client gone.
    fn receive(&mut self, key: u64) {
        if self.progress.body_read {
            if self.progress.complete || self.progress.gone {
                application_groups::with_group(&self.group, |py| self.resolve_disconnect(py, key));
            } else {
                // Only the latest receive() waits; an earlier one is left to its task.
                self.progress.waiting = Some(key);
                if !self.progress.watching {
                    // So that it hears of the client going while it only awaits.
                    self.progress.watching = with_io(&self.context, |io| io.watch_client()).unwrap_or(false);
                }
            }
            return;
        }
        // A piece of BODY_PIECE bytes unless the body ends first (as WSGI's
        // read(n) fills its n): fewer events, each taking the GIL once.
        let mut piece = Vec::with_capacity(BODY_PIECE);
        let since = Instant::now();
        let left = self.body_length.map_or(u64::MAX, |length| length.saturating_sub(self.progress.body_received));
        let want = BODY_PIECE.min(usize::try_from(left).unwrap_or(usize::MAX));
        let read = with_io(&self.context, |io| {
            while piece.len() < want {
                let filled = piece.len();
                let n = io.read_body(&mut piece.spare_capacity_mut()[..want - filled])?;
                // SAFETY: read_body initialised the first n bytes after `filled`.
                unsafe { piece.set_len(filled + n) };
                if n == 0 {
                    break;
                }
            }
            Ok(piece.len())
        });
        if let Ok(n) = read {
            self.context.counters.read(n, since);
            self.progress.body_received += n as u64;
            self.progress.body_read = n == 0 || self.body_length.is_some_and(|length| self.progress.body_received >= length);
        }
        let more = !self.progress.body_read;
        application_groups::with_group(&self.group, |py| {
            let event = match read {
                Ok(_) => request_event(py, &piece, more),
                Err(err) => Err(PyOSError::new_err(format!("Apache/mod_wsgi request data read error: {err}."))),
            };
            match event {
                Ok(event) => self.resolve(py, key, &event),
                Err(err) => self.resolve(py, key, err.value(py)),
            }
        });
    }

    /// The task ended before its response was complete (once it is, the
    /// exchange is over: see `over`): how the request ends.
    fn done(&mut self, failure: Option<Failure>) -> Outcome {
        // Only for the log: getpid is a system call, and this runs for every request.
        let pid = std::process::id;
        let script = &self.context.script;
        let progress = &self.progress;
        match failure {
            Some(failure) => {
                failure.log(&self.context);
                if progress.head_sent { Outcome::Aborted } else { Outcome::Failed }
            }
            // Its response was on its way when the client left.
            None if progress.gone => Outcome::Aborted,
            None if progress.head_sent => {
                self.context.log(Level::Error, &format!("mod_wsgi (pid={}): ASGI application '{script}' returned without completing its response.", pid()));
                Outcome::Aborted
            }
            None => {
                self.context.log(Level::Error, &format!("mod_wsgi (pid={}): ASGI application '{script}' returned without starting a response.", pid()));
                Outcome::Failed
            }
        }
    }

    fn resolve(&self, py: Python<'_>, key: u64, value: &Bound<'_, PyAny>) {
        if let Err(err) = self.helper.bind(py).call_method1("resolve", (key, value)) {
            super::super::server_log(Level::Error, &format!("mod_wsgi (pid={}): Couldn't hand an ASGI event to the event loop: {err}", std::process::id()));
        }
    }

    fn resolve_disconnect(&self, py: Python<'_>, key: u64) {
        let event = PyDict::new(py);
        let _ = event.set_item("type", "http.disconnect");
        self.resolve(py, key, &event);
    }
}

fn request_event<'py>(py: Python<'py>, body: &[u8], more: bool) -> PyResult<Bound<'py, PyAny>> {
    let event = PyDict::new(py);
    event.set_item("type", "http.request")?;
    event.set_item("body", PyBytes::new(py, body))?;
    event.set_item("more_body", more)?;
    Ok(event.into_any())
}

/// Sends the file at `path` as the whole body, after `head` (with a
/// Content-Length added when it has none), as wsgi.file_wrapper sends a
/// file: the descriptor goes to the Apache child, not its bytes. Fails
/// before anything is sent when the file cannot be opened; else the body's
/// length.
fn send_path(context: &RequestContext, head: Option<&(u16, Vec<(String, String)>)>, path: &std::path::Path) -> std::io::Result<u64> {
    use std::os::fd::AsFd;
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    with_io(context, |io| {
        let mut len = size;
        if let Some((status, headers)) = head {
            let declared = headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("content-length")).and_then(|(_, value)| super::super::parse_content_length(value));
            let mut headers = headers.clone();
            match declared {
                Some(declared) => len = len.min(declared),
                None => headers.push(("Content-Length".into(), size.to_string())),
            }
            io.send_headers(*status, &status.to_string(), &headers)?;
        }
        if len > 0 {
            io.send_file(file.as_fd(), 0, len)?;
        }
        io.finish()?;
        Ok(len)
    })
}

fn with_io<R>(context: &RequestContext, f: impl FnOnce(&mut dyn RequestIo) -> std::io::Result<R>) -> std::io::Result<R> {
    let mut io = context.io.lock();
    let io = io.as_mut().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "request has finished"))?;
    f(io.as_mut())
}
