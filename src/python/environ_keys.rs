//! The environ's names as Python strings, made once per interpreter.
//!
//! Every request's environ has some sixty names. Made afresh each time, each
//! is decoded, hashed on insertion and freed with the dict: a third of what
//! building the environ cost. Made once, a name keeps its hash and costs a
//! reference count. Strings cannot be shared between interpreters, so each
//! interpreter gets its own table; a table lives as long as its interpreter
//! (for the life of the process) and is forgotten when Python stops.

use parking_lot::Mutex;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// The names made ahead: the keys mod_wsgi adds and the CGI variables
/// Apache sets for most requests; others are made per request. Ordered by
/// length, then bytes, so most steps of a binary search compare lengths only.
const NAMES: &[&str] = &[
    "AUTH_TYPE",
    "HTTP_HOST",
    "PATH_INFO",
    "UNIQUE_ID",
    "wsgi.input",
    "HTTP_ACCEPT",
    "HTTP_COOKIE",
    "HTTP_ORIGIN",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "REMOTE_USER",
    "REQUEST_URI",
    "SCRIPT_NAME",
    "SERVER_ADDR",
    "SERVER_NAME",
    "SERVER_PORT",
    "wsgi.errors",
    "CONTENT_TYPE",
    "HTTP_REFERER",
    "QUERY_STRING",
    "SERVER_ADMIN",
    "wsgi.version",
    "DOCUMENT_ROOT",
    "wsgi.run_once",
    "CONTENT_LENGTH",
    "CONTEXT_PREFIX",
    "REQUEST_METHOD",
    "REQUEST_SCHEME",
    "apache.version",
    "HTTP_CONNECTION",
    "HTTP_USER_AGENT",
    "PATH_TRANSLATED",
    "SCRIPT_FILENAME",
    "SERVER_PROTOCOL",
    "SERVER_SOFTWARE",
    "wsgi.url_scheme",
    "SERVER_SIGNATURE",
    "mod_wsgi.version",
    "wsgi.multithread",
    "GATEWAY_INTERFACE",
    "wsgi.file_wrapper",
    "wsgi.multiprocess",
    "HTTP_AUTHORIZATION",
    "HTTP_CACHE_CONTROL",
    "apache.request_rec",
    "mod_wsgi.path_info",
    "mod_wsgi.thread_id",
    "mod_wsgi.request_id",
    "HTTP_ACCEPT_ENCODING",
    "HTTP_ACCEPT_LANGUAGE",
    "HTTP_X_FORWARDED_FOR",
    "mod_wsgi.queue_start",
    "mod_wsgi.script_name",
    "CONTEXT_DOCUMENT_ROOT",
    "mod_wsgi.daemon_start",
    "mod_wsgi.script_start",
    "wsgi.input_terminated",
    "HTTP_X_FORWARDED_PROTO",
    "mod_wsgi.listener_host",
    "mod_wsgi.listener_port",
    "mod_wsgi.process_group",
    "mod_wsgi.request_start",
    "mod_wsgi.handler_script",
    "mod_wsgi.total_requests",
    "mod_wsgi.callable_object",
    "mod_wsgi.daemon_connects",
    "mod_wsgi.daemon_restarts",
    "mod_wsgi.enable_sendfile",
    "mod_wsgi.ignore_activity",
    "mod_wsgi.request_handler",
    "mod_wsgi.thread_requests",
    "mod_wsgi.script_reloading",
    "mod_wsgi.application_group",
    "HTTP_UPGRADE_INSECURE_REQUESTS",
];

/// Each interpreter's table: (interpreter, its strings in NAMES order), as
/// addresses. The strings are owned references never given back.
static TABLES: Mutex<Vec<(usize, &'static [usize])>> = Mutex::new(Vec::new());

/// The current interpreter's names.
#[derive(Clone, Copy)]
pub struct Keys(&'static [usize]);

impl Keys {
    /// The table of the interpreter `py` runs in, made on first use.
    pub fn current(py: Python<'_>) -> Keys {
        // SAFETY: the GIL is held, so there is a current interpreter.
        let interp = unsafe { ffi::PyInterpreterState_Get() } as usize;
        if let Some(&(_, table)) = TABLES.lock().iter().find(|(i, _)| *i == interp) {
            return Keys(table);
        }
        let mut made = Vec::with_capacity(NAMES.len());
        for name in NAMES {
            made.push(PyString::new(py, name).into_ptr() as usize);
        }
        let table: &'static [usize] = Box::leak(made.into_boxed_slice());
        TABLES.lock().push((interp, table));
        Keys(table)
    }

    /// The string for `name`, if it is one made ahead.
    pub fn get<'py>(self, py: Python<'py>, name: &[u8]) -> Option<Bound<'py, PyString>> {
        let at = NAMES.binary_search_by(|n| n.len().cmp(&name.len()).then_with(|| n.as_bytes().cmp(name))).ok()?;
        Some(self.at(py, at))
    }

    /// The string at `position(name)`.
    pub fn at<'py>(self, py: Python<'py>, at: usize) -> Bound<'py, PyString> {
        // SAFETY: the table holds a reference to each string for as long as its
        // interpreter runs, and `py` is that interpreter (Keys::current).
        unsafe { Bound::from_borrowed_ptr(py, self.0[at] as *mut ffi::PyObject).cast_into_unchecked() }
    }
}

/// Where `name` is in the table; a name not made ahead does not compile
/// (use in a `const` block).
pub const fn position(name: &str) -> usize {
    let mut i = 0;
    while i < NAMES.len() {
        if eq(NAMES[i].as_bytes(), name.as_bytes()) {
            return i;
        }
        i += 1;
    }
    panic!("not an environ name made ahead")
}

const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Forgets every table, as Python stops: its strings go with their interpreter.
pub fn forget_all() {
    TABLES.lock().clear();
}

#[cfg(test)]
mod tests {
    use super::NAMES;

    #[test]
    fn names_are_ordered_for_the_search_and_unique() {
        let key = |n: &&str| (n.len(), n.as_bytes().to_vec());
        assert!(NAMES.windows(2).all(|w| key(&w[0]) < key(&w[1])), "NAMES must be ordered by length, then bytes");
        assert_eq!(super::position("wsgi.version"), NAMES.iter().position(|n| *n == "wsgi.version").unwrap());
    }
}
