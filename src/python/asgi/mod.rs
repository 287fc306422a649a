//! ASGI 3.0 applications (HTTP scope, spec 2.4, and lifespan) in a daemon
//! process.
//!
//! Each application group has one asyncio loop on a thread of its own
//! (`event_loop.py`, started with the group's first ASGI application). A
//! request's task runs there. The first request for an application takes
//! the GIL on its worker (to load the script, run lifespan startup and see
//! that the callable is ASGI); every request, that one included, is queued
//! to the loop (`inbox`), later ones without the GIL. What a task's receive() and send() ask for goes to
//! whoever holds its [`AsgiRequest`]: the loop's own thread, with the GIL
//! released, writes a small response and ends its exchange; the daemon's
//! relay threads do the rest of the socket I/O and complete the futures the
//! task awaits. The worker that started the request need not wait for it.

mod bell;
mod channel;
mod inbox;
mod piece;
mod request;
mod scope;

pub use request::AsgiRequest;

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

use super::context::RequestContext;
use super::wsgi::{Outcome, OwnedRequest, RequestInfo, log_exception};
use super::{Level, application_groups};
use crate::config::Interface;
use inbox::Inbox;

/// Name of the helper module in each interpreter's sys.modules.
const HELPER: &str = "_mod_wsgi_asgi";

/// An application group's event loop: the helper module that runs it, and
/// its queue of requests to start.
struct EventLoop {
    helper: Arc<Py<PyModule>>,
    inbox: Py<Inbox>,
}

/// The event loop of each application group whose interpreter runs one;
/// kept for the life of the process (so dropping a reference to one never
/// needs the GIL).
static HELPERS: Mutex<Option<HashMap<String, Arc<EventLoop>>>> = Mutex::new(None);

/// How long the first request waits for its application's lifespan startup.
const STARTUP_WAIT: f64 = 60.0;

/// Set once an application's lifespan startup has failed in this process,
/// which is then to be replaced (the daemon's monitor sees to it).
static STARTUP_FAILED: AtomicBool = AtomicBool::new(false);

/// Whether an application's lifespan startup has failed in this process.
pub fn startup_failed() -> bool {
    STARTUP_FAILED.load(Ordering::Acquire)
}

/// Why the helper's `app_state` refused.
enum NotStarted {
    /// The application said its startup failed; `first` the first time told.
    Failed { message: String, first: bool },
    /// Startup has not completed in time, or something else went wrong.
    Other(String),
}

fn not_started(py: Python<'_>, err: &PyErr) -> Option<NotStarted> {
    if !err.is_instance_of::<PyRuntimeError>(py) {
        return None;
    }
    let value = err.value(py);
    match value.getattr("args").and_then(|args| args.extract::<(String, bool)>()) {
        Ok((message, first)) => Some(NotStarted::Failed { message, first }),
        Err(_) => Some(NotStarted::Other(value.to_string())),
    }
}

/// A failed startup, the first time it is told: logged in full (a message may be a
/// traceback, a line at a time), and the process marked to be replaced.
fn report_failure(script: &str, message: &str) {
    let pid = std::process::id();
    let mut lines = message.lines();
    let first = lines.next().unwrap_or("");
    super::server_log(Level::Error, &format!("mod_wsgi (pid={pid}): ASGI lifespan startup of '{script}' failed: {first}"));
    for line in lines {
        super::server_log(Level::Error, line);
    }
    STARTUP_FAILED.store(true, Ordering::Release);
}

/// A failure's message in one line, for each request refused meanwhile: its
/// last line (an exception's type and text when it is a traceback).
fn in_one_line(message: &str) -> &str {
    message.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or(message).trim_end()
}

/// Whether the callable is to be served as ASGI.
pub fn wanted(interface: Interface, app: &Bound<'_, PyAny>) -> PyResult<bool> {
    match interface {
        Interface::Wsgi => Ok(false),
        Interface::Asgi => Ok(true),
        Interface::Auto => is_asgi(app),
    }
}

/// As uvicorn's --interface auto: a coroutine function, or an object whose
/// `__call__` is one. Asked of every request's callable, so it is answered
/// here rather than by `inspect` (whose import alone made each daemon 1.8
/// MiB larger) and without starting an event loop for WSGI applications.
fn is_asgi(app: &Bound<'_, PyAny>) -> PyResult<bool> {
    if is_coroutine_function(app)? {
        return Ok(true);
    }
    // A plain function, a method or a class is WSGI (a class's __call__ is for its instances).
    if is_function(app) || is_method(app) || app.is_instance_of::<pyo3::types::PyType>() {
        return Ok(false);
    }
    match app.getattr("__call__") {
        Ok(call) => is_coroutine_function(&call),
        Err(_) => Ok(false),
    }
}

/// inspect.iscoroutinefunction: through bound methods and functools.partial
/// to a function whose code is flagged as a coroutine.
fn is_coroutine_function(callable: &Bound<'_, PyAny>) -> PyResult<bool> {
    /// CPython's CO_COROUTINE code flag (`async def`).
    const CO_COROUTINE: u32 = 0x80;
    let mut f = callable.clone();
    // Bounded: a partial of a partial of … ends somewhere in practice, and here surely.
    for _ in 0..32 {
        if is_method(&f) {
            f = f.getattr("__func__")?;
        } else if f.get_type().name()? == "partial" && f.get_type().module()? == "functools" {
            f = f.getattr("func")?;
        } else {
            break;
        }
    }
    if !is_function(&f) {
        return Ok(false);
    }
    let flags: u32 = f.getattr("__code__")?.getattr("co_flags")?.extract()?;
    Ok(flags & CO_COROUTINE != 0)
}

fn is_function(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: a type check on a live object; the GIL is held.
    unsafe { pyo3::ffi::PyFunction_Check(obj.as_ptr()) != 0 }
}

/// A bound method (CPython's `method` type, which the C API checks by identity).
fn is_method(obj: &Bound<'_, PyAny>) -> bool {
    unsafe extern "C" {
        static mut PyMethod_Type: pyo3::ffi::PyTypeObject;
    }
    // Only the address of CPython's static type object is taken (no read, no write).
    obj.get_type().as_type_ptr() == &raw mut PyMethod_Type
}

/// The helper module of this interpreter (application group `group`),
/// made, and its loop started, on first use.
fn helper(py: Python<'_>, group: &str) -> PyResult<Arc<EventLoop>> {
    if let Some(event_loop) = HELPERS.lock().as_ref().and_then(|h| h.get(group)) {
        return Ok(event_loop.clone());
    }
    let modules = super::sys_modules(py);
    let code = CString::new(include_str!("event_loop.py")).expect("no NUL in event_loop.py");
    // The loop thread starts as the module runs; `_log` is there first.
    let module = PyModule::new(py, HELPER)?;
    module.add_function(wrap_pyfunction!(_log, &module)?)?;
    let inbox = Bound::new(py, Inbox::new()?)?;
    module.setattr("_inbox", &inbox)?;
    let builtins = py.import("builtins")?;
    module.setattr("__builtins__", &builtins)?;
    let compiled = builtins.call_method1("compile", (code.to_str().expect("UTF-8"), "mod_wsgi/event_loop.py", "exec"))?;
    builtins.call_method1("exec", (compiled, module.dict()))?;
    modules.set_item(HELPER, &module)?;
    // The GIL is held: no other thread of this interpreter made one meanwhile.
    let event_loop = Arc::new(EventLoop { helper: Arc::new(module.unbind()), inbox: inbox.unbind() });
    HELPERS.lock().get_or_insert_with(HashMap::new).insert(group.to_owned(), event_loop.clone());
    Ok(event_loop)
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
    let helpers: Vec<_> = HELPERS.lock().as_ref().map(|h| h.iter().map(|(g, m)| (g.clone(), m.clone())).collect()).unwrap_or_default();
    for (group, event_loop) in helpers {
        application_groups::with_group(&group, |py| {
            let stopped = event_loop.helper.bind(py).call_method1("stop", (timeout.as_secs_f64(),));
            if let Err(err) = stopped {
                super::server_log(Level::Error, &format!("mod_wsgi (pid={}): Couldn't stop the ASGI event loop of '{group}': {err}", std::process::id()));
            }
        });
    }
}

/// Runs the lifespan startup of `app` when it is an ASGI application (at
/// process start, for a preloaded script). A failure is logged here, and
/// each request meanwhile is refused with a line saying why.
pub fn start_lifespan(py: Python<'_>, app: &Bound<'_, PyAny>, script: &str, group: &str, interface: Interface) {
    let pid = std::process::id();
    let started = wanted(interface, app).and_then(|asgi| if asgi { helper(py, group)?.helper.bind(py).call_method1("app_state", (app, script, STARTUP_WAIT)).map(drop) } else { Ok(()) });
    let Err(err) = started else { return };
    match not_started(py, &err) {
        Some(NotStarted::Failed { message, first }) => {
            if first {
                report_failure(script, &message);
            }
        }
        Some(NotStarted::Other(message)) => super::server_log(Level::Error, &format!("mod_wsgi (pid={pid}): ASGI lifespan startup failed for '{script}': {message}")),
        None => super::server_log(Level::Error, &format!("mod_wsgi (pid={pid}): ASGI lifespan startup failed for '{script}': {}", err.value(py))),
    }
}

/// Readies the application's event loop for its requests (see `inbox`):
/// lifespan startup, then the route by which they reach the loop. Err is
/// how the request ends instead.
pub fn learn(py: Python<'_>, info: &RequestInfo<'_>, context: &Arc<RequestContext>, app: &Bound<'_, PyAny>) -> Result<(), Outcome> {
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
    let event_loop = helper(py, info.application_group).map_err(|err| {
        log_exception(py, context, err);
        Outcome::Failed
    })?;
    let state = match event_loop.helper.bind(py).call_method1("app_state", (app, info.script_filename, STARTUP_WAIT)) {
        Ok(state) => state,
        Err(err) => {
            let script = info.script_filename;
            match not_started(py, &err) {
                // Until a fresh process replaces this one (which tries again), a 500 and a line each.
                Some(NotStarted::Failed { message, first }) => {
                    if first {
                        report_failure(script, &message);
                    }
                    context.log(Level::Error, &format!("mod_wsgi (pid={pid}): ASGI lifespan startup failed for '{script}': {}", in_one_line(&message)));
                }
                Some(NotStarted::Other(message)) => context.log(Level::Error, &format!("mod_wsgi (pid={pid}): ASGI lifespan startup failed for '{script}': {message}")),
                None => log_exception(py, context, err),
            }
            return Err(Outcome::Failed);
        }
    };
    event_loop.inbox.get().learn(py, info, app, &state);
    Ok(())
}

/// Starts the request on its application's event loop when that
/// application is known to be running there (see `inbox`), without the
/// GIL; else gives the request back, to go the long way.
pub fn dispatch(request: Box<dyn OwnedRequest>, context: &Arc<RequestContext>) -> Result<Box<AsgiRequest>, Box<dyn OwnedRequest>> {
    let found = {
        let helpers = HELPERS.lock();
        let Some(helpers) = helpers.as_ref() else { return Err(request) };
        let info = request.info();
        Some(helpers)
            .filter(|_| info.daemon.is_some())
            .and_then(|h| h.get(info.application_group))
            .and_then(|event_loop| Some((event_loop.clone(), event_loop.inbox.get().route(&info)?)))
    };
    match found {
        Some((event_loop, route)) => Ok(event_loop.inbox.get().deliver(route, request, context, event_loop.helper.clone())),
        None => Err(request),
    }
}

/// mod_wsgi.request_data() in an ASGI request's task (on the loop's thread).
pub(super) fn task_request_data(py: Python<'_>) -> Option<Py<PyDict>> {
    let helper = super::sys_modules(py).get_item(HELPER).ok()??;
    let data = helper.getattr("request_data").ok()?.call_method1("get", (py.None(),)).ok()?;
    data.cast_into::<PyDict>().ok().map(Bound::unbind)
}

