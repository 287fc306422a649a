//! What the `mod_wsgi` module tells applications about their requests and
//! their process, as the C module does: `request_data()` and
//! `active_requests`, the events published to `subscribe_events()` and
//! `subscribe_shutdown()` callbacks (request_started, response_started,
//! request_exception, request_finished, process_stopping), and
//! `process_metrics()`.
//!
//! A request with no subscriber costs a dict and two entries in
//! `active_requests`; events are built only when someone listens.
//!
//! A WSGI request runs on one thread from start to finish ([`Tracked`],
//! found by `request_data()` as that thread's). An ASGI request does not
//! ([`AsgiTracked`]): its events come from whichever thread works for it at
//! the time, and `request_data()` finds it in its task's context.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyModule, PyString, PyTuple};

use super::context::RequestContext;
use super::environ_keys::Keys;
use super::file_wrapper::FileWrapper;
use super::wsgi::{RequestInfo, put_cgi};

/// Requests finished in this process, and the time they took (µs).
static REQUESTS_DONE: AtomicU64 = AtomicU64::new(0);
static BUSY_MICROS: AtomicU64 = AtomicU64::new(0);
static ACTIVE: AtomicU64 = AtomicU64::new(0);
/// Requests each request thread has run, by mod_wsgi.thread_id - 1.
static THREAD_REQUESTS: Mutex<Vec<u64>> = Mutex::new(Vec::new());
/// When Python started in this process (seconds since the epoch).
static RESTART_TIME: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

thread_local! {
    /// The request this thread runs, while it runs (in its interpreter).
    static CURRENT: RefCell<Option<Active>> = const { RefCell::new(None) };
}

struct Active {
    id: Py<PyString>,
    data: Py<PyDict>,
    /// The interpreter's event_callbacks, when it has any.
    callbacks: Option<Py<PyList>>,
}

fn epoch_seconds() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Notes when Python started here, for process_metrics().
pub fn process_started() {
    let _ = RESTART_TIME.set(epoch_seconds());
}

/// Adds the attributes and functions to an interpreter's `mod_wsgi` module.
pub fn install(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("active_requests", PyDict::new(py))?;
    module.add("event_callbacks", PyList::empty(py))?;
    module.add("shutdown_callbacks", PyList::empty(py))?;
    module.add("FileWrapper", py.get_type::<FileWrapper>())?;
    module.add_function(wrap_pyfunction!(subscribe_events, module)?)?;
    module.add_function(wrap_pyfunction!(subscribe_shutdown, module)?)?;
    module.add_function(wrap_pyfunction!(request_data, module)?)?;
    module.add_function(wrap_pyfunction!(process_metrics, module)?)?;
    module.add_function(wrap_pyfunction!(server_metrics, module)?)?;
    Ok(())
}

/// Registers a callback for every event: `callback(name, **event)`.
#[pyfunction]
#[pyo3(pass_module)]
fn subscribe_events(module: &Bound<'_, PyModule>, callback: Bound<'_, PyAny>) -> PyResult<()> {
    module.getattr("event_callbacks")?.cast_into::<PyList>()?.append(callback)
}

/// Registers a callback for process_stopping only.
#[pyfunction]
#[pyo3(pass_module)]
fn subscribe_shutdown(module: &Bound<'_, PyModule>, callback: Bound<'_, PyAny>) -> PyResult<()> {
    module.getattr("shutdown_callbacks")?.cast_into::<PyList>()?.append(callback)
}

/// The dict that lives as long as this thread's request (or, on an ASGI
/// event loop, the running task's), for the application's own use.
#[pyfunction]
fn request_data(py: Python<'_>) -> PyResult<Py<PyDict>> {
    CURRENT
        .with(|c| c.borrow().as_ref().map(|a| a.data.clone_ref(py)))
        .or_else(|| super::asgi::task_request_data(py))
        .ok_or_else(|| PyRuntimeError::new_err("no active request for thread"))
}

/// Scoreboard figures need WSGIServerMetrics, which this module does not
/// gather: None, as the C module answers without it.
#[pyfunction]
fn server_metrics() -> Option<()> {
    None
}

/// What this process has done and uses.
#[pyfunction]
fn process_metrics(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let metrics = PyDict::new(py);
    let now = epoch_seconds();
    let restart = RESTART_TIME.get().copied().unwrap_or(now);
    let usage = resource_usage(libc::RUSAGE_SELF);
    metrics.set_item("pid", std::process::id())?;
    metrics.set_item("request_busy_time", BUSY_MICROS.load(Ordering::Relaxed) as f64 / 1e6)?;
    metrics.set_item("request_count", REQUESTS_DONE.load(Ordering::Relaxed))?;
    metrics.set_item("memory_max_rss", usage.max_rss)?;
    metrics.set_item("memory_rss", resident_bytes())?;
    metrics.set_item("cpu_user_time", usage.user)?;
    metrics.set_item("cpu_system_time", usage.system)?;
    metrics.set_item("restart_time", restart)?;
    metrics.set_item("current_time", now)?;
    metrics.set_item("running_time", (now - restart).max(0.0) as u64)?;
    let threads = THREAD_REQUESTS.lock().clone();
    metrics.set_item("request_threads", threads.len())?;
    metrics.set_item("active_requests", ACTIVE.load(Ordering::Relaxed))?;
    let list = PyList::empty(py);
    for (index, count) in threads.iter().enumerate() {
        let thread = PyDict::new(py);
        thread.set_item("thread_id", index + 1)?;
        thread.set_item("request_count", count)?;
        list.append(thread)?;
    }
    metrics.set_item("threads", list)?;
    Ok(metrics)
}

#[derive(Default)]
struct Usage {
    user: f64,
    system: f64,
    max_rss: u64,
}

fn resource_usage(who: libc::c_int) -> Usage {
    // SAFETY: getrusage fills a plain-data struct.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage { user: seconds(usage.ru_utime), system: seconds(usage.ru_stime), max_rss: usage.ru_maxrss as u64 * 1024 }
}

/// Resident set size now, from /proc/self/statm.
fn resident_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm").ok().and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok())).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64
}

/// One request as the mod_wsgi module sees it, from its start to its end.
pub struct Tracked {
    module: Option<Py<PyModule>>,
    id: Py<PyString>,
    started: Instant,
    application_start: f64,
    cpu: Usage,
    thread_id: u64,
}

/// The interpreter's mod_wsgi module (present unless an application removed it).
fn module(py: Python<'_>) -> Option<Bound<'_, PyModule>> {
    // (Not interned: a cached string would be shared between interpreters.)
    super::sys_modules(py).get_item("mod_wsgi").ok()??.cast_into::<PyModule>().ok()
}

fn callbacks<'py>(module: &Bound<'py, PyModule>) -> Option<Bound<'py, PyList>> {
    module.getattr("event_callbacks").ok()?.cast_into::<PyList>().ok().filter(|l| !l.is_empty())
}

/// Calls each callback with `name` and the event; a dict a callback returns
/// is merged into the event the next ones see. Errors are logged.
fn publish(py: Python<'_>, callbacks: &Bound<'_, PyList>, name: &str, event: &Bound<'_, PyDict>, context: &RequestContext) {
    for callback in callbacks.iter() {
        match callback.call((name,), Some(event)) {
            Ok(returned) => {
                if let Ok(extra) = returned.cast::<PyDict>() {
                    let _ = event.update(extra.as_mapping());
                }
            }
            Err(err) => {
                context.log(super::Level::Error, &format!("mod_wsgi (pid={}): Exception occurred within event callback.", std::process::id()));
                super::wsgi::log_traceback(py, context, &err);
            }
        }
    }
}

/// A request entered in active_requests: the interpreter's mod_wsgi
/// module, the request's id and data, and the event callbacks when there
/// are any.
struct Entered<'py> {
    module: Option<Bound<'py, PyModule>>,
    id: Bound<'py, PyString>,
    data: Bound<'py, PyDict>,
    callbacks: Option<Bound<'py, PyList>>,
}

fn enter<'py>(py: Python<'py>, request_id: &str) -> Entered<'py> {
    let module = module(py);
    let id = PyString::new(py, request_id);
    let data = PyDict::new(py);
    if let Some(module) = &module
        && let Ok(active) = module.getattr("active_requests")
    {
        let _ = active.set_item(&id, &data);
    }
    ACTIVE.fetch_add(1, Ordering::Relaxed);
    let callbacks = module.as_ref().and_then(callbacks);
    Entered { module, id, data, callbacks }
}

/// Takes a request out of active_requests and counts it done, `elapsed`
/// after it started, for the request thread `thread_id`.
fn leave(py: Python<'_>, module: Option<&Py<PyModule>>, id: &Py<PyString>, elapsed: Duration, thread_id: u64) {
    if let Some(module) = module
        && let Ok(active) = module.bind(py).getattr("active_requests")
    {
        let _ = active.del_item(id.bind(py));
    }
    ACTIVE.fetch_sub(1, Ordering::Relaxed);
    REQUESTS_DONE.fetch_add(1, Ordering::Relaxed);
    BUSY_MICROS.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    let mut threads = THREAD_REQUESTS.lock();
    let index = thread_id.saturating_sub(1) as usize;
    if threads.len() <= index {
        threads.resize(index + 1, 0);
    }
    threads[index] += 1;
}

/// request_started's payload.
fn started_event<'py>(
    entered: &Entered<'py>,
    info: &RequestInfo<'_>,
    environ: &Bound<'py, PyDict>,
    application: &Bound<'py, PyAny>,
    application_start: f64,
    thread_id: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let event = PyDict::new(entered.id.py());
    event.set_item("request_id", &entered.id)?;
    event.set_item("request_data", &entered.data)?;
    event.set_item("request_environ", environ)?;
    event.set_item("application_object", application)?;
    event.set_item("request_start", info.request_start as f64 / 1e6)?;
    event.set_item("application_start", application_start)?;
    event.set_item("thread_id", thread_id)?;
    // Zero outside a daemon, as in the C module.
    let daemon = info.daemon.unwrap_or_default();
    event.set_item("queue_start", daemon.queue_start as f64 / 1e6)?;
    event.set_item("daemon_start", daemon.daemon_start as f64 / 1e6)?;
    event.set_item("daemon_connects", daemon.connects)?;
    event.set_item("daemon_restarts", daemon.restarts)?;
    Ok(event)
}

/// request_finished's payload: the request's reads and writes, `output_length`
/// body bytes sent, `cpu` (user, system) seconds, and its time.
fn finished_event<'py>(
    py: Python<'py>,
    context: &RequestContext,
    (id, data): (&Bound<'py, PyString>, &Bound<'py, PyDict>),
    output_length: u64,
    cpu: (f64, f64),
    application_start: f64,
    elapsed: Duration,
) -> PyResult<Bound<'py, PyDict>> {
    let io = &context.counters;
    let micros = |n: &AtomicU64| n.load(Ordering::Relaxed) as f64 / 1e6;
    let event = PyDict::new(py);
    event.set_item("request_id", id)?;
    event.set_item("request_data", data)?;
    event.set_item("input_reads", io.input_reads.load(Ordering::Relaxed))?;
    event.set_item("input_length", io.input_length.load(Ordering::Relaxed))?;
    event.set_item("input_time", micros(&io.input_micros))?;
    event.set_item("output_length", output_length)?;
    event.set_item("output_writes", io.output_writes.load(Ordering::Relaxed))?;
    event.set_item("output_time", micros(&io.output_micros))?;
    event.set_item("cpu_user_time", cpu.0)?;
    event.set_item("cpu_system_time", cpu.1)?;
    event.set_item("application_finish", application_start + elapsed.as_secs_f64())?;
    event.set_item("application_time", elapsed.as_secs_f64())?;
    Ok(event)
}

/// request_exception's payload, with (type, value, traceback).
fn exception_event<'py>(py: Python<'py>, (id, data): (&Bound<'py, PyString>, &Bound<'py, PyDict>), err: &PyErr) -> PyResult<Bound<'py, PyDict>> {
    let info = PyTuple::new(py, [err.get_type(py).into_any(), err.value(py).clone().into_any(), err.traceback(py).map_or_else(|| py.None().into_bound(py), Bound::into_any)])?;
    let event = PyDict::new(py);
    event.set_item("request_id", id)?;
    event.set_item("request_data", data)?;
    event.set_item("exception_info", info)?;
    Ok(event)
}

/// response_started's payload.
fn response_event<'py>(
    py: Python<'py>,
    (id, data): (&Bound<'py, PyString>, &Bound<'py, PyDict>),
    status: &str,
    headers: &Bound<'py, PyAny>,
    exc_info: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let event = PyDict::new(py);
    event.set_item("request_id", id)?;
    event.set_item("request_data", data)?;
    event.set_item("response_status", status)?;
    event.set_item("response_headers", headers)?;
    event.set_item("exception_info", exc_info)?;
    Ok(event)
}

impl Tracked {
    /// Registers the request in `active_requests` and as this thread's;
    /// publishes request_started; returns the application to call, which a
    /// subscriber may have replaced (`application_object`).
    pub fn begin<'py>(
        py: Python<'py>,
        context: &RequestContext,
        info: &RequestInfo<'_>,
        thread_id: u64,
        environ: &Bound<'py, PyDict>,
        application: Bound<'py, PyAny>,
    ) -> (Tracked, Bound<'py, PyAny>) {
        let entered = enter(py, &info.request_id);
        let callbacks = &entered.callbacks;
        // Subscribers may call request_data() already.
        CURRENT.with(|c| {
            *c.borrow_mut() = Some(Active { id: entered.id.clone().unbind(), data: entered.data.clone().unbind(), callbacks: callbacks.as_ref().map(|l| l.clone().unbind()) })
        });
        let application_start = epoch_seconds();
        let mut application = application;
        if let Some(callbacks) = callbacks
            && let Ok(event) = started_event(&entered, info, environ, &application, application_start, thread_id)
        {
            publish(py, callbacks, "request_started", &event, context);
            if let Ok(Some(replaced)) = event.get_item("application_object") {
                application = replaced;
            }
        }
        let tracked = Tracked {
            // Only request_finished's subscribers want the thread's CPU time.
            cpu: if callbacks.is_some() { resource_usage(libc::RUSAGE_THREAD) } else { Usage::default() },
            module: entered.module.map(Bound::unbind),
            id: entered.id.unbind(),
            started: Instant::now(),
            application_start,
            thread_id,
        };
        (tracked, application)
    }

    /// The application raised: request_exception, with (type, value, traceback).
    pub fn exception(&self, py: Python<'_>, context: &RequestContext, err: &PyErr) {
        with_subscribers(py, |callbacks, id, data| {
            publish(py, callbacks, "request_exception", &exception_event(py, (id, data), err)?, context);
            Ok(())
        });
    }

    /// The request is over: request_finished, then it leaves active_requests.
    pub fn end(self, py: Python<'_>, context: &RequestContext) {
        let elapsed = self.started.elapsed();
        with_subscribers(py, |callbacks, id, data| {
            let cpu = resource_usage(libc::RUSAGE_THREAD);
            let cpu = ((cpu.user - self.cpu.user).max(0.0), (cpu.system - self.cpu.system).max(0.0));
            let output_length = context.response.lock().body_sent;
            let event = finished_event(py, context, (id, data), output_length, cpu, self.application_start, elapsed)?;
            publish(py, callbacks, "request_finished", &event, context);
            Ok(())
        });
        CURRENT.with(|c| c.borrow_mut().take());
        leave(py, self.module.as_ref(), &self.id, elapsed, self.thread_id);
    }
}

/// An ASGI request as the mod_wsgi module sees it. request_started comes
/// from the worker that starts its task, response_started and
/// request_exception from the event loop's thread (inside the task),
/// request_finished from the relay thread that ends the exchange; each is
/// published with the request as that thread's, for request_data(). With
/// no subscriber the request leaves active_requests as its task ends, on
/// the loop's thread that holds the GIL then anyway, so that no relay
/// thread has to take it.
///
/// Holds Python objects: whoever drops an `Arc` of it holds the GIL of its
/// interpreter (the task's channel, or the request's relay inside
/// `with_group`).
pub struct AsgiTracked {
    module: Option<Py<PyModule>>,
    id: Py<PyString>,
    data: Py<PyDict>,
    callbacks: Option<Py<PyList>>,
    context: Arc<RequestContext>,
    started: Instant,
    application_start: f64,
    thread_id: u64,
    /// It has left active_requests.
    ended: AtomicBool,
}

impl AsgiTracked {
    /// Registers the request in `active_requests` and publishes
    /// request_started, before its task starts: `request_environ` holds its
    /// CGI variables (what a WSGI environ is made from) and `request_scope`
    /// the scope its application gets. Returns the application to run,
    /// which a subscriber may have replaced (`application_object`).
    pub fn begin<'py>(
        py: Python<'py>,
        context: &Arc<RequestContext>,
        info: &RequestInfo<'_>,
        thread_id: u64,
        scope: &Bound<'py, PyDict>,
        application: Bound<'py, PyAny>,
    ) -> (Arc<AsgiTracked>, Bound<'py, PyAny>) {
        let entered = enter(py, &info.request_id);
        let application_start = epoch_seconds();
        let tracked = Arc::new(AsgiTracked {
            module: entered.module.as_ref().map(|m| m.clone().unbind()),
            id: entered.id.clone().unbind(),
            data: entered.data.clone().unbind(),
            callbacks: entered.callbacks.as_ref().map(|l| l.clone().unbind()),
            context: context.clone(),
            started: Instant::now(),
            application_start,
            thread_id,
            ended: AtomicBool::new(false),
        });
        let mut application = application;
        if let Some(callbacks) = &entered.callbacks {
            let event = (|| {
                let environ = PyDict::new(py);
                put_cgi(&environ, Keys::current(py), &info.cgi)?;
                let event = started_event(&entered, info, &environ, &application, application_start, thread_id)?;
                event.set_item("request_scope", scope)?;
                Ok::<_, PyErr>(event)
            })();
            if let Ok(event) = event {
                tracked.as_current(py, || publish(py, callbacks, "request_started", &event, context));
                if let Ok(Some(replaced)) = event.get_item("application_object") {
                    application = replaced;
                }
            }
        }
        (tracked, application)
    }

    /// Whether anyone hears its events (then request_finished comes from
    /// the relay thread that ends the exchange, which takes the GIL for it).
    pub fn has_subscribers(&self) -> bool {
        self.callbacks.is_some()
    }

    /// request_data() for its task.
    pub fn request_data<'py>(&self, py: Python<'py>) -> &Bound<'py, PyDict> {
        self.data.bind(py)
    }

    /// Runs `f` with the request as this thread's, for request_data().
    fn as_current<R>(&self, py: Python<'_>, f: impl FnOnce() -> R) -> R {
        let ours = Active { id: self.id.clone_ref(py), data: self.data.clone_ref(py), callbacks: self.callbacks.as_ref().map(|l| l.clone_ref(py)) };
        let before = CURRENT.with(|c| c.replace(Some(ours)));
        let result = f();
        // What is dropped here is dropped with the GIL held.
        drop(CURRENT.with(|c| c.replace(before)));
        result
    }

    /// Publishes `name` with the event `make` builds.
    fn publish<'py>(&self, py: Python<'py>, name: &str, make: impl FnOnce((&Bound<'py, PyString>, &Bound<'py, PyDict>)) -> PyResult<Bound<'py, PyDict>>) {
        let Some(callbacks) = &self.callbacks else { return };
        if let Ok(event) = make((self.id.bind(py), self.data.bind(py))) {
            self.as_current(py, || publish(py, callbacks.bind(py), name, &event, &self.context));
        }
    }

    /// http.response.start: response_started, with the status line and
    /// headers as start_response is given them.
    pub fn response_started(&self, py: Python<'_>, status: u16, headers: &[(String, String)]) {
        if self.callbacks.is_none() || self.ended.load(Ordering::Acquire) {
            return;
        }
        self.publish(py, "response_started", |entry| {
            let list = PyList::empty(py);
            for (name, value) in headers {
                list.append((name, value))?;
            }
            response_event(py, entry, &status_line(py, status), list.as_any(), None)
        });
    }

    /// The application raised: request_exception.
    pub fn exception(&self, py: Python<'_>, err: &PyErr) {
        if !self.ended.load(Ordering::Acquire) {
            self.publish(py, "request_exception", |entry| exception_event(py, entry, err));
        }
    }

    /// The task ended: without subscribers the request leaves
    /// active_requests now (with them, at the end of the exchange).
    pub fn task_ended(&self, py: Python<'_>) {
        if self.callbacks.is_none() {
            self.end(py, 0);
        }
    }

    /// The exchange is over, `output_length` body bytes sent:
    /// request_finished, then the request leaves active_requests (once).
    /// The request's work is spread over the loop's and relay threads,
    /// between other requests': no CPU time is its own, so it says zero.
    pub fn end(&self, py: Python<'_>, output_length: u64) {
        if self.ended.swap(true, Ordering::AcqRel) {
            return;
        }
        let elapsed = self.started.elapsed();
        self.publish(py, "request_finished", |entry| finished_event(py, &self.context, entry, output_length, (0.0, 0.0), self.application_start, elapsed));
        leave(py, self.module.as_ref(), &self.id, elapsed, self.thread_id);
    }
}

/// "200 OK": a status with its reason phrase, as start_response is given it.
fn status_line(py: Python<'_>, status: u16) -> String {
    let phrase = py.import("http").and_then(|http| http.getattr("HTTPStatus")?.call1((status,))?.getattr("phrase")?.extract::<String>());
    match phrase {
        Ok(phrase) => format!("{status} {phrase}"),
        Err(_) => status.to_string(),
    }
}

/// Runs `f` with this thread's request when its interpreter has subscribers.
fn with_subscribers(py: Python<'_>, f: impl FnOnce(&Bound<'_, PyList>, &Bound<'_, PyString>, &Bound<'_, PyDict>) -> PyResult<()>) {
    let current = CURRENT.with(|c| c.borrow().as_ref().and_then(|a| Some((a.callbacks.as_ref()?.clone_ref(py), a.id.clone_ref(py), a.data.clone_ref(py)))));
    if let Some((callbacks, id, data)) = current {
        let _ = f(callbacks.bind(py), id.bind(py), data.bind(py));
    }
}

/// start_response was called: response_started.
pub fn response_started(py: Python<'_>, context: &RequestContext, status: &str, headers: &Bound<'_, PyAny>, exc_info: Option<&Bound<'_, PyAny>>) {
    with_subscribers(py, |callbacks, id, data| {
        publish(py, callbacks, "response_started", &response_event(py, (id, data), status, headers, exc_info)?, context);
        Ok(())
    });
}

/// The process is going (called in each interpreter before it ends):
/// process_stopping for event subscribers, then for shutdown subscribers.
pub fn process_stopping(py: Python<'_>) {
    let Some(module) = module(py) else { return };
    for list in ["event_callbacks", "shutdown_callbacks"] {
        let Ok(callbacks) = module.getattr(list).and_then(|l| Ok(l.cast_into::<PyList>()?)) else { continue };
        for callback in callbacks.iter() {
            let event = PyDict::new(py);
            let _ = event.set_item("shutdown_reason", "");
            if let Err(err) = callback.call(("process_stopping",), Some(&event)) {
                super::server_log(super::Level::Error, &format!("mod_wsgi (pid={}): Exception occurred within event callback.", std::process::id()));
                err.display(py);
            }
        }
    }
}
