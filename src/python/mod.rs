//! Python: the interpreter, the loading of WSGI scripts, and the WSGI call.
//!
//! Nothing here touches httpd: a request reaches the WSGI layer as a
//! [`RequestIo`] plus the CGI variables, so embedded and daemon mode share it.

pub mod access;
pub mod application_groups;
mod asgi;
mod context;
mod environ_keys;
mod events;
mod file_wrapper;
mod input;
pub mod interpreter;
mod log_stream;
mod response;
mod script;
mod signal_intercept;
mod wsgi;

use std::io;
use std::mem::MaybeUninit;

pub use response::parse_content_length;
pub use script::{any_loaded as any_script_loaded, is_stale as script_is_stale, mtime as script_mtime};
pub use asgi::{startup_failed as asgi_startup_failed, stop_all as stop_asgi_loops};
pub use asgi::AsgiRequest;
pub use wsgi::{DaemonArrival, MOD_WSGI_VERSION_STRING, Outcome, OwnedRequest, Ran, RequestInfo, preload, run, run_detachable};

/// Error-log severity, as httpd names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
    Info,
    Debug,
}

/// How the WSGI layer talks to the client: implemented by an httpd request
/// (embedded mode) and by the daemon's connection (daemon mode).
/// Every method is called with the GIL released.
pub trait RequestIo: Send {
    /// Reads request-body bytes into `buf`; `Ok(0)` at the end of the body.
    /// On `Ok(n)` the first `n` bytes of `buf` are initialised. (The buffer
    /// may be uninitialised so that large bodies are not zeroed first.)
    fn read_body(&mut self, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize>;
    /// Sets the response status and headers (already validated).
    fn send_headers(&mut self, status: u16, status_line: &str, headers: &[(String, String)]) -> io::Result<()>;
    /// Sends body bytes, pushing them to the client now when `flush`.
    fn write_body(&mut self, data: &[u8], flush: bool) -> io::Result<()>;
    /// Sends `len` bytes of the open file `file` from `offset` as the rest of
    /// the body: only `finish` follows. Apache gets the file with the end of
    /// the response in one pass, as its byterange filter needs to answer a
    /// Range request.
    fn send_file(&mut self, file: std::os::fd::BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<()>;
    /// Ends the response body.
    fn finish(&mut self) -> io::Result<()>;
    /// The request times itself (an ASGI request cancels its own task at
    /// request-timeout): the process's watch on request-timeout skips it.
    fn untimed(&mut self) {}
    /// How many response bytes can go out on an idle connection without a
    /// write waiting for the peer to read (0: none surely can).
    fn sends_at_once(&self) -> usize {
        0
    }
    /// Whether the rest of the request body has arrived, so that ending
    /// the exchange (which reads what the application left) cannot wait.
    fn body_is_here(&self) -> bool {
        false
    }
    /// Asks to hear when the client goes before the response is done (the
    /// daemon's Apache child then says so on the connection); false where
    /// nobody can tell.
    fn watch_client(&mut self) -> io::Result<bool> {
        Ok(false)
    }
    /// Writes a line to the error log in this request's context.
    fn log(&self, level: Level, msg: &str);
}

/// Where log lines go when no request is at hand (sys.stderr, startup errors).
static SERVER_LOG: std::sync::OnceLock<fn(Level, &str)> = std::sync::OnceLock::new();

pub fn set_server_log(sink: fn(Level, &str)) {
    let _ = SERVER_LOG.set(sink);
}

pub(crate) fn server_log(level: Level, msg: &str) {
    match SERVER_LOG.get() {
        Some(sink) => sink(level, msg),
        None => eprintln!("{msg}"),
    }
}

/// The current interpreter's sys.modules. Looking a module up here rather
/// than importing it matters on the request path: PyImport_Import and
/// PyImport_GetModule also ask each module found whether it is still
/// initialising, which raises and clears an AttributeError every time.
fn sys_modules(py: pyo3::Python<'_>) -> pyo3::Bound<'_, pyo3::types::PyDict> {
    // SAFETY: with the GIL held, PyImport_GetModuleDict returns a borrowed
    // reference to the interpreter's module dict, which lives as long as it.
    unsafe { pyo3::Bound::from_borrowed_ptr(py, pyo3::ffi::PyImport_GetModuleDict()).cast_into_unchecked() }
}
