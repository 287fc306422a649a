//! The WSGI call: build environ, run the application, send what it returns.

use std::sync::Arc;

use pyo3::exceptions::{PyOSError, PyRuntimeError, PySystemExit, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::context::{Current, RequestContext};
use super::environ_keys::{Keys, position};
use super::events::Tracked;
use super::file_wrapper::FileWrapper;
use super::input::InputStream;
use super::log_stream::{LogStream, type_name};
use super::response::StartResponse;
use super::script::{self, LoadError};
use super::{Level, RequestIo, application_groups, asgi};

/// The mod_wsgi release whose behaviour this module follows (mod_wsgi.version).
pub const MOD_WSGI_VERSION: (u32, u32, u32) = (4, 9, 4);
/// The server-version token: that release, marked as this implementation.
pub const MOD_WSGI_VERSION_STRING: &str = "4.9.4+rs";

/// Everything about one request the WSGI layer needs besides its I/O.
pub struct RequestInfo<'a> {
    /// CGI variables (name, value) as bytes; values become latin-1 str.
    pub cgi: Vec<(&'a [u8], &'a [u8])>,
    pub script_filename: &'a str,
    /// Script mtime in microseconds, compared when reloading.
    pub script_mtime: i64,
    pub script_reloading: bool,
    pub callable_object: &'a str,
    pub process_group: &'a str,
    pub application_group: &'a str,
    pub url_scheme: &'static str,
    pub multithread: bool,
    pub multiprocess: bool,
    pub server_version: (u32, u32, u32),
    pub listener_host: &'a str,
    pub listener_port: u16,
    pub request_id: String,
    /// When the request arrived, in microseconds since the epoch.
    pub request_start: i64,
    pub enable_sendfile: bool,
    pub ignore_activity: bool,
    /// `wsgi-script`, or the WSGIHandlerScript name that took the request.
    pub request_handler: &'a str,
    /// That WSGIHandlerScript's script (what `script_filename` loads); "" otherwise.
    pub handler_script: &'a str,
    /// WSGIPassApacheRequest On, in an Apache child: the request_rec's address,
    /// for C extensions that use Apache's API; valid while the request runs.
    pub apache_request: Option<usize>,
    /// In a daemon: how the request got there, for the request_started event.
    pub daemon: Option<DaemonArrival>,
    /// interface= of the script's mount.
    pub interface: crate::config::Interface,
    /// The request's header lines as sent (for an ASGI scope; daemon mode only).
    pub headers: Vec<(&'a [u8], &'a [u8])>,
    /// request-timeout= of the daemon group (an ASGI request's task is
    /// cancelled then); zero for none.
    pub request_timeout: std::time::Duration,
}

impl RequestInfo<'_> {
    /// A CGI variable as the environ ends up with it: the last of its name.
    pub fn cgi_var(&self, name: &[u8]) -> Option<&[u8]> {
        self.cgi.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    /// The request body's length, when the request says it.
    pub fn content_length(&self) -> Option<u64> {
        self.cgi_var(b"CONTENT_LENGTH").and_then(|value| std::str::from_utf8(value).ok()?.parse().ok())
    }
}

/// A request that owns what its [`RequestInfo`] borrows, so that it can be
/// handed to another thread (an ASGI application's event loop).
pub trait OwnedRequest: Send {
    fn info(&self) -> RequestInfo<'_>;
    /// `info().script_filename`, without the rest.
    fn script_filename(&self) -> &str;
}

/// When an Apache child sent a request to this daemon and when the daemon
/// took it (µs), with the connection attempts and resends it needed.
#[derive(Clone, Copy, Default)]
pub struct DaemonArrival {
    pub queue_start: i64,
    pub daemon_start: i64,
    pub connects: u32,
    pub restarts: u32,
}

/// Requests this process has started, for mod_wsgi.total_requests.
static TOTAL_REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static NEXT_THREAD_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

thread_local! {
    /// (mod_wsgi.thread_id, requests this thread ran before the current one).
    static THREAD_COUNTERS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// Counts one more request on this thread: (thread id, its earlier requests, process's earlier requests).
pub(super) fn count_request() -> (u64, u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    let total = TOTAL_REQUESTS.fetch_add(1, Relaxed);
    THREAD_COUNTERS.with(|c| {
        let (mut id, done) = c.get();
        if id == 0 {
            id = NEXT_THREAD_ID.fetch_add(1, Relaxed);
        }
        c.set((id, done + 1));
        (id, done, total)
    })
}

fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// How a request ended, for the handler to turn into an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response was sent.
    Sent,
    /// The script has no such callable (404).
    NoApplication,
    /// Nothing was sent and the request failed (500).
    Failed,
    /// The response broke off after it had begun.
    Aborted,
    /// The request waited too long to be run (504).
    TimedOut,
}

/// How a request run by `run_detachable` stands.
pub enum Ran {
    Done(Outcome),
    /// An ASGI application's task runs on: its I/O is to be relayed.
    /// (Boxed: a WSGI request's `Done` need not carry its size.)
    Asgi(Box<asgi::AsgiRequest>),
}

/// Runs one request through the application named by `info`.
pub fn run(info: &RequestInfo<'_>, io: Box<dyn RequestIo>) -> Outcome {
    let context = RequestContext::new(io, info.script_filename.to_owned());
    // An ASGI application is refused outside a daemon (`asgi::learn`), so
    // every request here ends as WSGI.
    run_here(info, &context).unwrap_or(Outcome::Failed)
}

/// Runs one request; an ASGI one is returned running, for the caller to
/// relay (so that the thread need not wait for it).
pub fn run_detachable(request: Box<dyn OwnedRequest>, io: Box<dyn RequestIo>) -> Ran {
    let context = RequestContext::new(io, request.script_filename().to_owned());
    let request = match asgi::dispatch(request, &context) {
        Ok(started) => return Ran::Asgi(started),
        Err(request) => request,
    };
    if let Some(outcome) = run_here(&request.info(), &context) {
        return Ran::Done(outcome);
    }
    // An ASGI application its event loop has just come to know.
    match asgi::dispatch(request, &context) {
        Ok(started) => Ran::Asgi(started),
        Err(_) => {
            let script = &context.script;
            context.log(Level::Error, &format!("mod_wsgi (pid={}): ASGI application '{script}' changed while its first request was started.", std::process::id()));
            context.close();
            Ran::Done(Outcome::Failed)
        }
    }
}

/// Runs the request on this thread: Some(how it ended) for a WSGI
/// application; None for an ASGI one, now known to its event loop, which
/// takes the request (`asgi::dispatch`).
fn run_here(info: &RequestInfo<'_>, context: &Arc<RequestContext>) -> Option<Outcome> {
    let _current = Current::enter(context);
    let called = application_groups::with_group(info.application_group, |py| {
        let errors = Bound::new(py, LogStream::for_request(context.clone()));
        match errors {
            Ok(errors) => {
                let result = call(py, info, context, &errors);
                errors.get().flush_pending();
                result
            }
            Err(err) => {
                log_exception(py, context, err);
                Called::Wsgi(Outcome::Failed, None)
            }
        }
    });
    match called {
        Called::Wsgi(outcome, buffered) => {
            if let Some(buffered) = buffered {
                buffered.send(context);
            }
            context.close();
            Some(outcome)
        }
        Called::Asgi => None,
    }
}

/// Loads the script at `path` into the interpreter of `application_group`
/// ahead of any request; failures are logged with their traceback. In a
/// daemon process (`process_group` not ""), an ASGI `callable` (as
/// `interface` decides) gets its lifespan startup now, before requests.
pub fn preload(path: &str, application_group: &str, process_group: &str, callable: &str, interface: crate::config::Interface) {
    let mtime = script::mtime(path);
    let pid = std::process::id();
    application_groups::with_group(application_group, |py| {
        let note = |what: &str| super::server_log(Level::Info, &format!("mod_wsgi (pid={pid}, process='{process_group}', application='{application_group}'): {what}"));
        match script::load(py, path, mtime, true, note) {
            Err(LoadError::Failed(err)) => {
                super::server_log(Level::Error, &format!("mod_wsgi (pid={pid}): Failed to exec Python script file '{path}'."));
                err.display(py);
            }
            Ok(module) if !process_group.is_empty() => {
                if let Ok(app) = module.getattr(callable) {
                    asgi::start_lifespan(py, &app, path, application_group, interface);
                }
            }
            Ok(_) => {}
        }
    });
}

/// Responses up to this size are copied out of Python and sent after the
/// GIL is released, so the request takes the GIL once instead of twice.
const BUFFERED_LIMIT: usize = 64 * 1024;

/// A response's status code, status line and headers, ready to send.
type Head = (u16, String, Vec<(String, String)>);

/// A small complete response, held in Rust until the GIL is released.
struct Buffered {
    headers: Option<Head>,
    body: Vec<u8>,
}

impl Buffered {
    fn send(self, context: &RequestContext) {
        let mut io = context.io.lock();
        let Some(io) = io.as_mut() else { return };
        let sent = (|| {
            if let Some((code, line, headers)) = &self.headers {
                io.send_headers(*code, line, headers)?;
            }
            io.write_body(&self.body, false)?;
            io.finish()
        })();
        if let Err(err) = sent {
            io.log(Level::Debug, &format!("mod_wsgi (pid={}): Apache/mod_wsgi failed to write response data: {err}", std::process::id()));
        }
    }
}

/// What calling the application left to do once the GIL is released.
enum Called {
    /// A WSGI response, done or (small) buffered to send.
    Wsgi(Outcome, Option<Buffered>),
    /// An ASGI application, ready on its event loop for the request.
    Asgi,
}

fn call(py: Python<'_>, info: &RequestInfo<'_>, context: &Arc<RequestContext>, errors: &Bound<'_, LogStream>) -> Called {
    match asgi_or_wsgi(py, info, context, errors) {
        Ok(called) => called,
        Err(outcome) => Called::Wsgi(outcome, None),
    }
}

/// Loads the script and calls its application; Err is how the request ended early.
fn asgi_or_wsgi(py: Python<'_>, info: &RequestInfo<'_>, context: &Arc<RequestContext>, errors: &Bound<'_, LogStream>) -> Result<Called, Outcome> {
    // Only for the log: getpid is a system call, and this runs for every request.
    let pid = std::process::id;
    let note = |what: &str| {
        let msg = format!("mod_wsgi (pid={}, process='{}', application='{}'): {what}", pid(), info.process_group, info.application_group);
        context.log(Level::Info, &msg);
    };
    let module = match script::load(py, info.script_filename, info.script_mtime, info.script_reloading, note) {
        Ok(module) => module,
        Err(LoadError::Failed(err)) => {
            let script = info.script_filename;
            if err.is_instance_of::<PySystemExit>(py) {
                // An unguarded app.run() / sys.exit() must not end the process.
                context.log(Level::Error, &format!("mod_wsgi (pid={}): SystemExit exception raised when doing exec of Python script file '{script}'.", pid()));
                context.log(Level::Error, &format!("mod_wsgi (pid={}): SystemExit exception raised by WSGI script '{script}' ignored.", pid()));
                log_traceback(py, context, &err);
            } else {
                context.log(Level::Error, &format!("mod_wsgi (pid={}): Failed to exec Python script file '{script}'.", pid()));
                log_exception(py, context, err);
            }
            return Err(Outcome::Failed);
        }
    };
    let Ok(app) = module.getattr(info.callable_object) else {
        context.log(
            Level::Error,
            &format!("mod_wsgi (pid={}): Target WSGI script '{}' does not contain WSGI application '{}'.", pid(), info.script_filename, info.callable_object),
        );
        return Err(Outcome::NoApplication);
    };
    match asgi::wanted(info.interface, &app) {
        Ok(false) => {}
        Ok(true) => return asgi::learn(py, info, context, &app).map(|()| Called::Asgi),
        Err(err) => return Err(failure(py, context, err)),
    }
    let counts = count_request();
    let environ = match environ(py, info, context, errors, counts) {
        Ok(environ) => environ,
        Err(err) => return Err(failure(py, context, err)),
    };
    let (tracked, app) = Tracked::begin(py, context, info, counts.0, &environ, app);
    let result = app.call1((environ, StartResponse::new(context.clone())));
    let (outcome, buffered) = respond_with(py, context, &tracked, result);
    log_length_mismatch(context, outcome);
    tracked.end(py, context);
    Ok(Called::Wsgi(outcome, buffered))
}

/// Sends what the application returned, and closes it.
fn respond_with(py: Python<'_>, context: &Arc<RequestContext>, tracked: &Tracked, result: PyResult<Bound<'_, PyAny>>) -> (Outcome, Option<Buffered>) {
    let failure = |err: PyErr| {
        tracked.exception(py, context, &err);
        failure(py, context, err)
    };
    match result {
        Ok(result) => {
            let buffered = buffer_small(context, &result);
            let outcome = match &buffered {
                Ok(Some(_)) => Ok(Outcome::Sent),
                Ok(None) => respond(py, context, &result),
                Err(_) => Ok(Outcome::Failed),
            };
            let closed = close(&result);
            match (buffered, outcome, closed) {
                (Err(err), _, _) => (failure(err), None),
                // The response is complete: a failing close() is logged, as it
                // would be had the response already gone out.
                (Ok(Some(buffered)), _, closed) => {
                    if let Err(err) = closed {
                        log_exception(py, context, err);
                    }
                    (Outcome::Sent, Some(buffered))
                }
                (Ok(None), Ok(outcome), Ok(())) => (outcome, None),
                (Ok(None), Err(err), _) | (Ok(None), Ok(_), Err(err)) => (failure(err), None),
            }
        }
        Err(err) => (failure(err), None),
    }
}

/// Notes, as the C module does, a body longer than its Content-Length (cut
/// there), or one of another length when nothing went wrong.
fn log_length_mismatch(context: &RequestContext, outcome: Outcome) {
    let (declared, generated) = {
        let state = context.response.lock();
        (state.content_length, state.generated)
    };
    if let Some(declared) = declared
        && (generated > declared || (outcome == Outcome::Sent && generated != declared))
    {
        context.log(
            Level::Debug,
            &format!("mod_wsgi (pid={}): Content length mismatch, expected {declared}, response generated {generated}: {}", std::process::id(), context.script),
        );
    }
}

/// Copies a small list or tuple of bytes into a [`Buffered`] response; None
/// when the result is something else or too big to copy.
fn buffer_small(context: &RequestContext, result: &Bound<'_, PyAny>) -> PyResult<Option<Buffered>> {
    let items = if let Ok(list) = result.cast::<PyList>() {
        list.as_sequence().clone()
    } else if let Ok(tuple) = result.cast::<PyTuple>() {
        tuple.as_sequence().clone()
    } else {
        return Ok(None);
    };
    let mut total = 0;
    let mut chunks = Vec::new();
    for item in items.try_iter()? {
        let item = item?;
        let Ok(bytes) = item.cast_into::<PyBytes>() else { return Ok(None) };
        total += bytes.as_bytes().len();
        if total > BUFFERED_LIMIT {
            return Ok(None);
        }
        chunks.push(bytes);
    }
    let limit = context.response.lock().content_length.map_or(usize::MAX, |n| n as usize);
    let mut body = Vec::with_capacity(total.min(limit));
    for chunk in &chunks {
        let take = chunk.as_bytes().len().min(limit - body.len());
        body.extend_from_slice(&chunk.as_bytes()[..take]);
    }
    // PEP 3333: no headers until there is a body or the application has returned.
    let headers = take_headers(context)?;
    {
        let mut state = context.response.lock();
        state.body_sent = body.len() as u64;
        state.generated = total as u64;
    }
    context.counters.wrote(std::time::Instant::now());
    Ok(Some(Buffered { headers, body }))
}

/// Logs an application error; the status depends on whether headers went out.
fn failure(py: Python<'_>, context: &RequestContext, err: PyErr) -> Outcome {
    let broken_pipe = err.is_instance_of::<ClientGone>(py);
    if broken_pipe {
        context.log(Level::Debug, &format!("mod_wsgi (pid={}): {}", std::process::id(), err.value(py)));
    } else {
        log_exception(py, context, err);
    }
    if context.response.lock().headers_sent { Outcome::Aborted } else { Outcome::Failed }
}

pyo3::create_exception!(mod_wsgi, ClientGone, PyOSError, "The client closed the connection while the response was being sent.");

/// Logs "Exception occurred processing WSGI script" and the traceback, one line per entry.
pub(super) fn log_exception(py: Python<'_>, context: &RequestContext, err: PyErr) {
    context.log(Level::Error, &format!("mod_wsgi (pid={}): Exception occurred processing WSGI script '{}'.", std::process::id(), context.script));
    log_traceback(py, context, &err);
}

pub(super) fn log_traceback(py: Python<'_>, context: &RequestContext, err: &PyErr) {
    let formatted = py
        .import("traceback")
        .and_then(|tb| tb.call_method1("format_exception", (err.get_type(py), err.value(py), err.traceback(py))))
        .and_then(|lines| lines.extract::<Vec<String>>());
    match formatted {
        Ok(chunks) => {
            for line in chunks.iter().flat_map(|chunk| chunk.lines()) {
                context.log(Level::Error, line);
            }
        }
        Err(_) => context.log(Level::Error, &err.to_string()),
    }
}

pub(super) fn text<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    // SAFETY: latin-1 decoding reads `bytes` only and cannot fail but for
    // memory, which from_owned_ptr turns into a panic caught at the hook.
    unsafe {
        let decoded = pyo3::ffi::PyUnicode_DecodeLatin1(bytes.as_ptr().cast(), bytes.len() as pyo3::ffi::Py_ssize_t, std::ptr::null());
        Bound::from_owned_ptr(py, decoded).cast_into_unchecked()
    }
}

/// Adds CGI variables to an environ, names and values as latin-1 str.
pub(super) fn put_cgi(env: &Bound<'_, PyDict>, keys: Keys, cgi: &[(&[u8], &[u8])]) -> PyResult<()> {
    let py = env.py();
    for (name, value) in cgi {
        match keys.get(py, name) {
            Some(key) => env.set_item(key, text(py, value))?,
            None => env.set_item(text(py, name), text(py, value))?,
        }
    }
    Ok(())
}

/// A dict with room for `entries` without growing: an environ would
/// otherwise be rehashed four times on its way to some sixty entries.
fn presized_dict(py: Python<'_>, entries: usize) -> Bound<'_, PyDict> {
    unsafe extern "C" {
        // CPython's own (exported, not in the limited API): PyDict_New sized ahead.
        fn _PyDict_NewPresized(minused: pyo3::ffi::Py_ssize_t) -> *mut pyo3::ffi::PyObject;
    }
    // SAFETY: returns a new empty dict, or NULL with MemoryError set.
    unsafe { Bound::from_owned_ptr_or_opt(py, _PyDict_NewPresized(entries as pyo3::ffi::Py_ssize_t)) }
        .map_or_else(|| PyDict::new(py), |d| unsafe { d.cast_into_unchecked() })
}

/// The environ; `counts` is (thread id, its earlier requests, the process's earlier requests).
fn environ<'py>(py: Python<'py>, info: &RequestInfo<'_>, context: &Arc<RequestContext>, errors: &Bound<'py, LogStream>, counts: (u64, u64, u64)) -> PyResult<Bound<'py, PyDict>> {
    let keys = Keys::current(py);
    let env = presized_dict(py, info.cgi.len() + 32);
    put_cgi(&env, keys, &info.cgi)?;
    // A name made ahead (checked when compiling), and its value.
    macro_rules! set {
        ($name:literal, $value:expr) => {
            env.set_item(keys.at(py, const { position($name) }), $value)?
        };
    }
    set!("wsgi.version", (1, 0));
    set!("wsgi.multithread", info.multithread);
    set!("wsgi.multiprocess", info.multiprocess);
    set!("wsgi.run_once", false);
    set!("wsgi.url_scheme", info.url_scheme);
    set!("wsgi.errors", errors);
    set!("wsgi.input", Bound::new(py, InputStream::new(context.clone()))?);
    set!("wsgi.input_terminated", true);
    set!("wsgi.file_wrapper", py.get_type::<FileWrapper>());
    set!("apache.version", info.server_version);
    if let Some(address) = info.apache_request {
        set!("apache.request_rec", pointer_capsule(py, address)?);
    }
    set!("mod_wsgi.version", MOD_WSGI_VERSION);
    set!("mod_wsgi.process_group", info.process_group);
    set!("mod_wsgi.application_group", info.application_group);
    set!("mod_wsgi.callable_object", info.callable_object);
    set!("mod_wsgi.request_handler", info.request_handler);
    set!("mod_wsgi.handler_script", info.handler_script);
    set!("mod_wsgi.script_reloading", if info.script_reloading { "1" } else { "0" });
    set!("mod_wsgi.listener_host", info.listener_host);
    set!("mod_wsgi.listener_port", info.listener_port.to_string());
    set!("mod_wsgi.enable_sendfile", if info.enable_sendfile { "1" } else { "0" });
    set!("mod_wsgi.ignore_activity", if info.ignore_activity { "1" } else { "0" });
    let (thread_id, thread_requests, total_requests) = counts;
    set!("mod_wsgi.request_id", &info.request_id);
    set!("mod_wsgi.request_start", info.request_start.to_string());
    if let Some(daemon) = &info.daemon {
        set!("mod_wsgi.queue_start", daemon.queue_start.to_string());
        set!("mod_wsgi.daemon_start", daemon.daemon_start.to_string());
        set!("mod_wsgi.daemon_connects", daemon.connects.to_string());
        set!("mod_wsgi.daemon_restarts", daemon.restarts.to_string());
    }
    set!("mod_wsgi.script_start", now_micros().to_string());
    set!("mod_wsgi.thread_id", thread_id);
    set!("mod_wsgi.thread_requests", thread_requests);
    set!("mod_wsgi.total_requests", total_requests);
    Ok(env)
}

/// An unnamed capsule holding `address`, as mod_wsgi passes the request_rec.
fn pointer_capsule(py: Python<'_>, address: usize) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: the capsule only stores the pointer (no name, no destructor);
    // PyCapsule_New returns a new reference or NULL with an exception set.
    unsafe {
        let capsule = pyo3::ffi::PyCapsule_New(address as *mut std::ffi::c_void, std::ptr::null(), None);
        Bound::from_owned_ptr_or_err(py, capsule)
    }
}

/// Sends the application's iterable.
fn respond(py: Python<'_>, context: &RequestContext, result: &Bound<'_, PyAny>) -> PyResult<Outcome> {
    if let Ok(wrapper) = result.cast::<FileWrapper>()
        && send_file(py, context, wrapper.get())?
    {
        return Ok(Outcome::Sent);
    }
    if let Ok(list) = result.cast::<PyList>() {
        for item in list.iter() {
            send_chunk(py, context, chunk_bytes(&item)?.as_bytes(), false)?;
        }
    } else if let Ok(tuple) = result.cast::<PyTuple>() {
        for item in tuple.iter() {
            send_chunk(py, context, chunk_bytes(&item)?.as_bytes(), false)?;
        }
    } else {
        for item in result.try_iter()? {
            let item = item?;
            send_chunk(py, context, chunk_bytes(&item)?.as_bytes(), true)?;
        }
    }
    finish(py, context)?;
    Ok(Outcome::Sent)
}

fn chunk_bytes<'a, 'py>(item: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, PyBytes>> {
    item.cast::<PyBytes>()
        .map_err(|_| PyTypeError::new_err(format!("sequence of byte string values expected, value of type {} found", type_name(item))))
}

/// Takes the status and headers for sending, once; errors if start_response was not called.
fn take_headers(context: &RequestContext) -> PyResult<Option<Head>> {
    let mut state = context.response.lock();
    if state.headers_sent {
        return Ok(None);
    }
    let status = state.status.clone().ok_or_else(|| PyRuntimeError::new_err("response has not been started"))?;
    state.headers_sent = true;
    Ok(Some((status.code, status.line, state.headers.clone())))
}

fn io_error(err: std::io::Error) -> PyErr {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        ClientGone::new_err(format!("Apache/mod_wsgi failed to write response data: {err}"))
    } else {
        PyOSError::new_err(format!("Apache/mod_wsgi failed to write response data: {err}"))
    }
}

fn with_io<R: Send>(py: Python<'_>, context: &RequestContext, f: impl FnOnce(&mut dyn RequestIo) -> std::io::Result<R> + Send) -> PyResult<R> {
    py.detach(|| {
        let mut io = context.io.lock();
        let io = io.as_mut().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "request has finished"))?;
        f(io.as_mut())
    })
    .map_err(io_error)
}

/// Sends one body chunk (headers first if they have not gone yet), cut at
/// the declared Content-Length.
pub fn send_chunk(py: Python<'_>, context: &RequestContext, data: &[u8], flush: bool) -> PyResult<()> {
    if data.is_empty() {
        return Ok(());
    }
    let headers = take_headers(context)?;
    let data = {
        let mut state = context.response.lock();
        let allowed = state.content_length.map_or(data.len() as u64, |cl| cl.saturating_sub(state.body_sent).min(data.len() as u64));
        state.body_sent += allowed;
        state.generated += data.len() as u64;
        &data[..allowed as usize]
    };
    if data.is_empty() && headers.is_none() {
        return Ok(());
    }
    let since = std::time::Instant::now();
    let sent = with_io(py, context, |io| {
        if let Some((code, line, headers)) = &headers {
            io.send_headers(*code, line, headers)?;
        }
        io.write_body(data, flush)
    });
    context.counters.wrote(since);
    sent
}

/// Ends the body, sending the headers if no chunk carried them.
fn finish(py: Python<'_>, context: &RequestContext) -> PyResult<()> {
    let headers = take_headers(context)?;
    with_io(py, context, |io| {
        if let Some((code, line, headers)) = &headers {
            io.send_headers(*code, line, headers)?;
        }
        io.finish()
    })
}

/// Sends a wrapped plain file straight from its descriptor. False when the
/// file-like is not a regular file, so the caller iterates it instead.
fn send_file(py: Python<'_>, context: &RequestContext, wrapper: &FileWrapper) -> PyResult<bool> {
    let filelike = wrapper.filelike.bind(py);
    let Some(fd) = filelike.call_method0("fileno").ok().and_then(|fd| fd.extract::<i32>().ok()) else {
        return Ok(false);
    };
    let Some(offset) = filelike.call_method0("tell").ok().and_then(|pos| pos.extract::<u64>().ok()) else {
        return Ok(false);
    };
    // SAFETY: fstat on a descriptor the file object holds open; `st` is plain data.
    let size = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 || (st.st_mode & libc::S_IFMT) != libc::S_IFREG {
            return Ok(false);
        }
        st.st_size as u64
    };
    let mut len = size.saturating_sub(offset);
    {
        let mut state = context.response.lock();
        if state.status.is_none() {
            return Err(PyRuntimeError::new_err("response has not been started"));
        }
        match state.content_length {
            Some(cl) => len = len.min(cl.saturating_sub(state.body_sent)),
            None if !state.headers_sent => {
                state.headers.push(("Content-Length".into(), len.to_string()));
                state.content_length = Some(len);
            }
            None => {}
        }
        state.body_sent += len;
        state.generated += size.saturating_sub(offset);
    }
    let headers = take_headers(context)?;
    with_io(py, context, |io| {
        if let Some((code, line, headers)) = &headers {
            io.send_headers(*code, line, headers)?;
        }
        if len > 0 {
            // SAFETY: the file object holds `fd` open until it is closed,
            // after the response has been sent.
            let file = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            io.send_file(file, offset, len)?;
        }
        io.finish()
    })?;
    Ok(true)
}

/// PEP 3333: the iterable's close() runs whatever happened.
fn close(result: &Bound<'_, PyAny>) -> PyResult<()> {
    // A plain list, tuple or bytes has none, and asking costs an AttributeError.
    if result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>() || result.is_exact_instance_of::<PyBytes>() {
        return Ok(());
    }
    if result.hasattr("close")? {
        result.call_method0("close")?;
    }
    Ok(())
}
