//! ASGI 3.0 applications (HTTP scope, spec 2.4, and lifespan) in a daemon
//! process.
//!
//! Each application group has one asyncio loop on a thread of its own
//! (`asgi_loop.py`, started with the group's first ASGI request). A request's
//! task runs there; its receive() and send() are relayed to the daemon
//! worker that took the request, which does the socket I/O with the GIL
//! released and then resolves the future the task awaits. The worker waits
//! on the relay for the whole request, so an awaiting request holds a worker
//! thread: the I/O is already apart from the task, ready to move to the
//! daemon's reactor.

use std::ffi::CString;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use parking_lot::Mutex;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyModule, PyString};

use super::context::RequestContext;
use super::response::check_header;
use super::wsgi::{ClientGone, Outcome, RequestInfo, log_exception};
use super::{Level, application_groups};
use crate::config::Interface;

/// Name of the helper module in each interpreter's sys.modules.
const HELPER: &str = "_mod_wsgi_asgi";

/// Application groups whose interpreter runs an event loop, for `stop_all`.
static LOOPS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// How long the first request waits for its application's lifespan startup.
const STARTUP_WAIT: f64 = 60.0;

/// Largest body piece one `http.request` event carries.
const BODY_PIECE: usize = 64 * 1024;

/// Whether the callable is to be served as ASGI.
/// `group` is the application group whose interpreter runs it.
pub fn wanted(py: Python<'_>, interface: Interface, app: &Bound<'_, PyAny>, group: &str) -> PyResult<bool> {
    match interface {
        Interface::Wsgi => Ok(false),
        Interface::Asgi => Ok(true),
        Interface::Auto => helper(py, group)?.call_method1("is_asgi", (app,))?.is_truthy(),
    }
}

/// The helper module of this interpreter (application group `group`),
/// made, and its loop started, on first use.
fn helper<'py>(py: Python<'py>, group: &str) -> PyResult<Bound<'py, PyModule>> {
    let modules = py.import("sys")?.getattr("modules")?;
    if let Ok(module) = modules.get_item(HELPER) {
        return Ok(module.cast_into::<PyModule>()?);
    }
    let code = CString::new(include_str!("asgi_loop.py")).expect("no NUL in asgi_loop.py");
    // The loop thread starts as the module runs; `_log` is there first.
    let module = PyModule::new(py, HELPER)?;
    module.add_function(wrap_pyfunction!(_log, &module)?)?;
    let builtins = py.import("builtins")?;
    module.setattr("__builtins__", &builtins)?;
    let compiled = builtins.call_method1("compile", (code.to_str().expect("UTF-8"), "mod_wsgi/asgi_loop.py", "exec"))?;
    builtins.call_method1("exec", (compiled, module.dict()))?;
    modules.set_item(HELPER, &module)?;
    let mut loops = LOOPS.lock();
    if !loops.iter().any(|g| g == group) {
        loops.push(group.to_owned());
    }
    Ok(module)
}

#[pyfunction]
fn _log(level: u8, text: &str) {
    let level = match level {
        0 => Level::Error,
        1 => Level::Warning,
        _ => Level::Info,
    };
    super::context::log_for_thread(level, text);
}

/// Runs every application's lifespan shutdown and stops the loops, within
/// `timeout` for each application group.
pub fn stop_all(timeout: Duration) {
    let groups = std::mem::take(&mut *LOOPS.lock());
    for group in groups {
        application_groups::with_group(&group, |py| {
            let stopped = py.import("sys").and_then(|sys| sys.getattr("modules")?.get_item(HELPER)).and_then(|m| m.call_method1("stop", (timeout.as_secs_f64(),)));
            if let Err(err) = stopped {
                super::server_log(Level::Error, &format!("mod_wsgi (pid={}): Couldn't stop the ASGI event loop of '{group}': {err}", std::process::id()));
            }
        });
    }
}

/// A request's task, started on the loop, and the relay it talks through.
struct Running {
    relay: Receiver<Message>,
    task: Py<PyAny>,
    helper: Py<PyModule>,
}

/// What the task asks of the worker.
enum Message {
    Receive(Py<PyAny>),
    Start { status: u16, headers: Vec<(String, String)>, future: Py<PyAny> },
    Body { data: Vec<u8>, more: bool, future: Py<PyAny> },
    /// The http.response.pathsend extension: the file is the whole body.
    PathSend { path: std::path::PathBuf, future: Py<PyAny> },
    /// The task ended: with the exception it raised, if any.
    Done(Option<Py<PyAny>>),
}

/// receive() and send() of one request, on the loop's side.
#[pyclass(frozen, module = "mod_wsgi")]
struct Channel {
    relay: Sender<Message>,
    wake: Arc<OnceLock<Waker>>,
}

impl Channel {
    fn pass(&self, message: Message) -> PyResult<()> {
        self.relay.send(message).map_err(|_| gone())?;
        if let Some(wake) = self.wake.get() {
            wake();
        }
        Ok(())
    }
}

/// What send() raises once the client has gone (an OSError, as the spec asks).
fn gone() -> PyErr {
    ClientGone::new_err("the client connection is closed")
}

#[pymethods]
impl Channel {
    fn receive(&self, future: Bound<'_, PyAny>) -> PyResult<()> {
        self.pass(Message::Receive(future.unbind()))
    }

    fn send(&self, message: &Bound<'_, PyAny>, future: Bound<'_, PyAny>) -> PyResult<()> {
        let message = message.cast::<PyDict>().map_err(|_| PyTypeError::new_err("ASGI message must be a dict"))?;
        let kind: String = message.get_item("type")?.ok_or_else(|| PyValueError::new_err("ASGI message has no 'type'"))?.extract()?;
        let message = match kind.as_str() {
            "http.response.start" => {
                let status: i64 = message.get_item("status")?.ok_or_else(|| PyValueError::new_err("http.response.start has no 'status'"))?.extract()?;
                let status = u16::try_from(status).ok().filter(|s| (100..=999).contains(s)).ok_or_else(|| PyValueError::new_err(format!("invalid status {status}")))?;
                let headers = match message.get_item("headers")? {
                    Some(headers) => response_headers(&headers)?,
                    None => Vec::new(),
                };
                Message::Start { status, headers, future: future.unbind() }
            }
            "http.response.body" => {
                let data = match message.get_item("body")? {
                    Some(body) => body.cast::<PyBytes>().map_err(|_| PyTypeError::new_err("http.response.body 'body' must be bytes"))?.as_bytes().to_vec(),
                    None => Vec::new(),
                };
                let more = match message.get_item("more_body")? {
                    Some(more) => more.is_truthy()?,
                    None => false,
                };
                Message::Body { data, more, future: future.unbind() }
            }
            "http.response.pathsend" => {
                let path: std::path::PathBuf = message.get_item("path")?.ok_or_else(|| PyValueError::new_err("http.response.pathsend has no 'path'"))?.extract()?;
                if !path.is_absolute() {
                    return Err(PyValueError::new_err(format!("http.response.pathsend 'path' must be absolute, not {}", path.display())));
                }
                Message::PathSend { path, future: future.unbind() }
            }
            other => return Err(PyRuntimeError::new_err(format!("Unexpected ASGI message '{other}' sent."))),
        };
        self.pass(message)
    }

    #[pyo3(signature = (exception=None))]
    fn done(&self, exception: Option<Bound<'_, PyAny>>) {
        let _ = self.pass(Message::Done(exception.map(Bound::unbind)));
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

/// Runs the lifespan startup of `app` when it is an ASGI application (at
/// process start, for a preloaded script); a failure is logged here and
/// again by the first request, which tries once more.
pub fn start_lifespan(py: Python<'_>, app: &Bound<'_, PyAny>, script: &str, group: &str, interface: Interface) {
    let pid = std::process::id();
    let started = wanted(py, interface, app, group).and_then(|asgi| if asgi { helper(py, group)?.call_method1("app_state", (app, script, STARTUP_WAIT)).map(drop) } else { Ok(()) });
    if let Err(err) = started {
        super::server_log(Level::Error, &format!("mod_wsgi (pid={pid}): ASGI lifespan startup failed for '{script}': {}", err.value(py)));
    }
}

/// Starts the request's task on the loop, after the application's lifespan
/// startup; Err is how the request ends instead.
pub fn start(py: Python<'_>, info: &RequestInfo<'_>, context: &Arc<RequestContext>, app: &Bound<'_, PyAny>) -> Result<AsgiRequest, Outcome> {
    let pid = std::process::id();
    if info.daemon.is_none() {
        context.log(
            Level::Error,
            &format!(
                "mod_wsgi (pid={pid}): '{}' is an ASGI application, which runs only in daemon mode: add process-group= (and a WSGIDaemonProcess) to its WSGIScriptAlias.",
                info.script_filename
            ),
        );
        return Err(Outcome::Failed);
    }
    let helper = helper(py, info.application_group).map_err(|err| {
        log_exception(py, context, err);
        Outcome::Failed
    })?;
    let state = match helper.call_method1("app_state", (app, info.script_filename, STARTUP_WAIT)) {
        Ok(state) => state,
        // Startup failed (the helper has logged the details): the next request tries again.
        Err(err) if err.is_instance_of::<PyRuntimeError>(py) => {
            context.log(Level::Error, &format!("mod_wsgi (pid={pid}): ASGI lifespan startup failed for '{}': {}", info.script_filename, err.value(py)));
            return Err(Outcome::Failed);
        }
        Err(err) => {
            log_exception(py, context, err);
            return Err(Outcome::Failed);
        }
    };
    let wake = Arc::new(OnceLock::new());
    let started = (|| -> PyResult<Running> {
        let scope = scope(py, info, &state)?;
        let (sender, relay) = crossbeam_channel::unbounded();
        let channel = Bound::new(py, Channel { relay: sender, wake: wake.clone() })?;
        let task = helper.call_method1("submit", (app, scope, channel))?;
        Ok(Running { relay, task: task.unbind(), helper: helper.clone().unbind() })
    })();
    let running = started.map_err(|err| {
        log_exception(py, context, err);
        Outcome::Failed
    })?;
    if let Some(io) = context.io.lock().as_mut() {
        // It ends itself at its deadline, not the process.
        io.untimed();
    }
    Ok(AsgiRequest {
        running: Some(running),
        progress: Progress::default(),
        context: context.clone(),
        group: info.application_group.to_owned(),
        timeout: info.request_timeout,
        deadline: (!info.request_timeout.is_zero()).then(|| Instant::now() + info.request_timeout),
        wake,
    })
}

/// The HTTP connection scope.
fn scope<'py>(py: Python<'py>, info: &RequestInfo<'_>, state: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let var = |name: &[u8]| info.cgi.iter().rev().find(|(k, _)| *k == name).map_or(&[][..], |(_, v)| *v);
    let scope = PyDict::new(py);
    scope.set_item("type", "http")?;
    let asgi = PyDict::new(py);
    asgi.set_item("version", "3.0")?;
    asgi.set_item("spec_version", "2.4")?;
    scope.set_item("asgi", asgi)?;
    let http_version = match var(b"SERVER_PROTOCOL") {
        b"HTTP/1.0" => "1.0",
        b"HTTP/2.0" | b"HTTP/2" => "2",
        _ => "1.1",
    };
    scope.set_item("http_version", http_version)?;
    scope.set_item("method", String::from_utf8_lossy(var(b"REQUEST_METHOD")))?;
    scope.set_item("scheme", info.url_scheme)?;
    // httpd has already percent-decoded the path it mapped.
    let root_path = var(b"SCRIPT_NAME");
    let path = [root_path, var(b"PATH_INFO")].concat();
    scope.set_item("path", String::from_utf8_lossy(&path))?;
    let uri = var(b"REQUEST_URI");
    let raw_path = uri.iter().position(|&b| b == b'?').map_or(uri, |end| &uri[..end]);
    scope.set_item("raw_path", PyBytes::new(py, raw_path))?;
    scope.set_item("query_string", PyBytes::new(py, var(b"QUERY_STRING")))?;
    scope.set_item("root_path", String::from_utf8_lossy(root_path))?;
    let headers = PyList::empty(py);
    for (name, value) in &info.headers {
        headers.append((PyBytes::new(py, &name.to_ascii_lowercase()), PyBytes::new(py, value)))?;
    }
    scope.set_item("headers", headers)?;
    let port = |name: &[u8]| std::str::from_utf8(var(name)).ok().and_then(|p| p.parse::<u16>().ok()).unwrap_or(0);
    scope.set_item("client", (PyString::new(py, &String::from_utf8_lossy(var(b"REMOTE_ADDR"))), port(b"REMOTE_PORT")))?;
    scope.set_item("server", (info.listener_host, info.listener_port))?;
    let extensions = PyDict::new(py);
    extensions.set_item("http.response.pathsend", PyDict::new(py))?;
    scope.set_item("extensions", extensions)?;
    if !state.is_none() {
        // A shallow copy per request, as the spec asks.
        scope.set_item("state", state.call_method0("copy")?)?;
    }
    Ok(scope)
}

/// Where the response stands.
#[derive(Default)]
struct Progress {
    /// The status and headers the task sent, until the first body piece takes them.
    head: Option<(u16, Vec<(String, String)>)>,
    /// http.response.start was sent by the task.
    started: bool,
    /// The head went out.
    head_sent: bool,
    /// The last body piece went out.
    complete: bool,
    /// A write to the client failed.
    gone: bool,
    /// The request body has been read to its end.
    body_read: bool,
    /// A receive() waiting for http.disconnect.
    waiting: Option<Py<PyAny>>,
}

/// Called when the task has sent something to relay.
type Waker = Box<dyn Fn() + Send + Sync>;

/// An ASGI request whose task runs on the loop: what relays its receive()
/// and send(), doing the I/O with the GIL released. Whoever holds it calls
/// `pump` when woken (see `on_message`), or `run_to_end`, then `finish`.
pub struct AsgiRequest {
    /// Released, in its interpreter, by `finish`.
    running: Option<Running>,
    progress: Progress,
    context: Arc<RequestContext>,
    group: String,
    timeout: Duration,
    deadline: Option<Instant>,
    wake: Arc<OnceLock<Waker>>,
}

impl AsgiRequest {
    /// Has `wake` called whenever the task sends something (and once now,
    /// for what it sent already).
    pub fn on_message(&self, wake: impl Fn() + Send + Sync + 'static) {
        if self.wake.set(Box::new(wake)).is_ok()
            && let Some(wake) = self.wake.get()
        {
            wake();
        }
    }

    /// When request-timeout= ends it.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Relays what the task has sent so far, without waiting for more;
    /// Some once the request is over.
    pub fn pump(&mut self) -> Option<Outcome> {
        let running = self.running.as_ref()?;
        loop {
            let message = match running.relay.try_recv() {
                Ok(message) => message,
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => return Some(Outcome::Failed),
            };
            if let Some(outcome) = handle(&self.group, &self.context, running, &mut self.progress, message) {
                return Some(outcome);
            }
        }
    }

    /// Relays until the request is over, waiting for the task meanwhile.
    pub fn run_to_end(&mut self) -> Outcome {
        let Some(running) = self.running.as_ref() else { return Outcome::Failed };
        loop {
            let message = match self.deadline {
                Some(deadline) => running.relay.recv_deadline(deadline),
                None => running.relay.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let message = match message {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => return self.expire(),
                Err(RecvTimeoutError::Disconnected) => return Outcome::Failed,
            };
            if let Some(outcome) = handle(&self.group, &self.context, running, &mut self.progress, message) {
                return outcome;
            }
        }
    }

    /// request-timeout= has passed: the task is cancelled, and the client
    /// gets 504 unless the response has begun.
    pub fn expire(&mut self) -> Outcome {
        self.context.log(
            Level::Error,
            &format!("mod_wsgi (pid={}): Request timeout of {:?} expired for ASGI application '{}', its task is cancelled.", std::process::id(), self.timeout, self.context.script),
        );
        if let Some(running) = &self.running {
            application_groups::with_group(&self.group, |py| {
                let _ = running.task.bind(py).call_method0("cancel");
            });
        }
        if self.progress.head_sent { Outcome::Aborted } else { Outcome::TimedOut }
    }

    /// Ends the request: a waiting receive() gets http.disconnect, the
    /// task's objects are released in their interpreter, and what the task
    /// sends from now on raises.
    pub fn finish(mut self) {
        let waiting = self.progress.waiting.take();
        let running = self.running.take();
        application_groups::with_group(&self.group, |py| {
            if let (Some(waiting), Some(running)) = (waiting, &running) {
                resolve_disconnect(py, running, waiting);
            }
            drop(running);
        });
        self.context.close();
    }
}

/// Acts on one message; Some when the request is over.
fn handle(group: &str, context: &Arc<RequestContext>, running: &Running, progress: &mut Progress, message: Message) -> Option<Outcome> {
    match message {
        Message::Receive(future) => {
            if !progress.body_read {
                let mut piece = Vec::with_capacity(BODY_PIECE);
                let read = with_io(context, |io| {
                    let n = io.read_body(&mut piece.spare_capacity_mut()[..BODY_PIECE])?;
                    // SAFETY: read_body initialised the first n bytes.
                    unsafe { piece.set_len(n) };
                    Ok(n)
                });
                application_groups::with_group(group, |py| {
                    let event = match read {
                        Ok(n) => {
                            progress.body_read = n == 0;
                            request_event(py, &piece, n > 0).map(Bound::into_any)
                        }
                        Err(err) => Ok(PyOSError::new_err(format!("Apache/mod_wsgi request data read error: {err}.")).into_value(py).into_bound(py).into_any()),
                    };
                    match event {
                        Ok(event) => resolve(py, running, future, &event),
                        Err(err) => resolve(py, running, future, err.value(py)),
                    }
                });
            } else if progress.complete || progress.gone {
                application_groups::with_group(group, |py| resolve_disconnect(py, running, future));
            } else {
                // http.disconnect comes when the response is done or the client goes.
                let earlier = progress.waiting.replace(future);
                application_groups::with_group(group, |_py| drop(earlier));
            }
            None
        }
        Message::Start { status, headers, future } => {
            let problem = if progress.started { Some("Unexpected ASGI message 'http.response.start' sent, after response already started.") } else { None };
            if problem.is_none() {
                progress.started = true;
                progress.head = Some((status, headers));
            }
            application_groups::with_group(group, |py| match problem {
                Some(problem) => resolve(py, running, future, PyRuntimeError::new_err(problem).value(py)),
                None => resolve(py, running, future, &py.None().into_bound(py)),
            });
            None
        }
        Message::PathSend { path, future } => {
            let problem = if !progress.started || progress.complete || progress.gone {
                Some(PyRuntimeError::new_err("Unexpected ASGI message 'http.response.pathsend' sent, outside a started response."))
            } else {
                let head = progress.head.take();
                let sent = send_path(context, head.as_ref(), &path);
                progress.head_sent |= head.is_some();
                match sent {
                    Ok(()) => {
                        progress.complete = true;
                        None
                    }
                    // Nothing went out: the task hears why.
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound || err.kind() == std::io::ErrorKind::PermissionDenied => {
                        progress.head = head;
                        progress.head_sent = false;
                        Some(PyOSError::new_err(format!("http.response.pathsend cannot open {}: {err}", path.display())))
                    }
                    Err(err) => {
                        context.log(Level::Debug, &format!("mod_wsgi (pid={}): Apache/mod_wsgi failed to write response data: {err}", std::process::id()));
                        progress.gone = true;
                        Some(gone())
                    }
                }
            };
            let disconnect = if progress.complete || progress.gone { progress.waiting.take() } else { None };
            application_groups::with_group(group, |py| {
                match problem {
                    Some(problem) => resolve(py, running, future, problem.value(py)),
                    None => resolve(py, running, future, &py.None().into_bound(py)),
                }
                if let Some(waiting) = disconnect {
                    resolve_disconnect(py, running, waiting);
                }
            });
            None
        }
        Message::Body { data, more, future } => {
            let problem = if !progress.started {
                Some(PyRuntimeError::new_err("Unexpected ASGI message 'http.response.body' sent, before 'http.response.start'."))
            } else if progress.complete {
                Some(PyRuntimeError::new_err("Unexpected ASGI message 'http.response.body' sent, after response already completed."))
            } else if progress.gone {
                Some(gone())
            } else {
                let head = progress.head.take();
                let sent = with_io(context, |io| {
                    if let Some((status, headers)) = &head {
                        io.send_headers(*status, &status.to_string(), headers)?;
                    }
                    if !data.is_empty() {
                        io.write_body(&data, more)?;
                    }
                    if !more { io.finish() } else { Ok(()) }
                });
                progress.head_sent |= head.is_some();
                match sent {
                    Ok(()) => {
                        progress.complete = !more;
                        None
                    }
                    Err(err) => {
                        context.log(Level::Debug, &format!("mod_wsgi (pid={}): Apache/mod_wsgi failed to write response data: {err}", std::process::id()));
                        progress.gone = true;
                        Some(gone())
                    }
                }
            };
            let disconnect = if progress.complete || progress.gone { progress.waiting.take() } else { None };
            application_groups::with_group(group, |py| {
                match problem {
                    Some(problem) => resolve(py, running, future, problem.value(py)),
                    None => resolve(py, running, future, &py.None().into_bound(py)),
                }
                if let Some(waiting) = disconnect {
                    resolve_disconnect(py, running, waiting);
                }
            });
            None
        }
        Message::Done(exception) => Some(application_groups::with_group(group, |py| {
            let pid = std::process::id();
            let script = &context.script;
            match exception {
                Some(exception) => {
                    let err = PyErr::from_value(exception.into_bound(py));
                    if err.is_instance_of::<ClientGone>(py) {
                        // The client left: nothing to fix in the application.
                        context.log(Level::Debug, &format!("mod_wsgi (pid={pid}): {}", err.value(py)));
                    } else {
                        log_exception(py, context, err);
                    }
                    if progress.complete {
                        Outcome::Sent
                    } else if progress.head_sent {
                        Outcome::Aborted
                    } else {
                        Outcome::Failed
                    }
                }
                None if progress.complete => Outcome::Sent,
                None if progress.head_sent => {
                    context.log(Level::Error, &format!("mod_wsgi (pid={pid}): ASGI application '{script}' returned without completing its response."));
                    Outcome::Aborted
                }
                None => {
                    context.log(Level::Error, &format!("mod_wsgi (pid={pid}): ASGI application '{script}' returned without starting a response."));
                    Outcome::Failed
                }
            }
        })),
    }
}

/// Sends the file at `path` as the whole body, after `head` (with a
/// Content-Length added when it has none), as wsgi.file_wrapper sends a
/// file: the descriptor goes to the Apache child, not its bytes. Fails
/// before anything is sent when the file cannot be opened.
fn send_path(context: &RequestContext, head: Option<&(u16, Vec<(String, String)>)>, path: &std::path::Path) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    with_io(context, |io| {
        let mut len = size;
        if let Some((status, headers)) = head {
            let declared = headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("content-length")).and_then(|(_, value)| super::parse_content_length(value));
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
        io.finish()
    })
}

fn request_event<'py>(py: Python<'py>, body: &[u8], more: bool) -> PyResult<Bound<'py, PyDict>> {
    let event = PyDict::new(py);
    event.set_item("type", "http.request")?;
    event.set_item("body", PyBytes::new(py, body))?;
    event.set_item("more_body", more)?;
    Ok(event)
}

fn resolve(py: Python<'_>, running: &Running, future: Py<PyAny>, value: &Bound<'_, PyAny>) {
    if let Err(err) = running.helper.bind(py).call_method1("resolve", (future, value)) {
        super::server_log(Level::Error, &format!("mod_wsgi (pid={}): Couldn't hand an ASGI event to the event loop: {err}", std::process::id()));
    }
}

fn resolve_disconnect(py: Python<'_>, running: &Running, future: Py<PyAny>) {
    let event = PyDict::new(py);
    let _ = event.set_item("type", "http.disconnect");
    resolve(py, running, future, &event);
}

fn with_io<R>(context: &RequestContext, f: impl FnOnce(&mut dyn super::RequestIo) -> std::io::Result<R>) -> std::io::Result<R> {
    let mut io = context.io.lock();
    let io = io.as_mut().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "request has finished"))?;
    f(io.as_mut())
}
