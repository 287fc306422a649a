//! The Python side of the access-control scripts, which run in the Apache
//! child (never in a daemon): WSGIAccessScript's allow_access(environ, host),
//! WSGIAuthUserScript's check_password(environ, user, password) and
//! get_realm_hash(environ, user, realm), WSGIAuthGroupScript's
//! groups_for_user(environ, user). The script is loaded like a WSGI script
//! (same module, reloaded when it changes), in the main interpreter unless
//! application-group= says otherwise.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyModule, PyString, PyTuple};

use super::context::{Current, RequestContext};
use super::log_stream::LogStream;
use super::script::{self, LoadError};
use super::environ_keys::Keys;
use super::wsgi::{MOD_WSGI_VERSION, log_exception, put_cgi, text};
use super::{Level, RequestIo, application_groups};

/// The request as an access-control script sees it.
pub struct HookRequest<'a> {
    pub cgi: Vec<(&'a [u8], &'a [u8])>,
    pub script: &'a str,
    pub script_mtime: i64,
    pub script_reloading: bool,
    pub application_group: &'a str,
    pub server_version: (u32, u32, u32),
}

/// check_password() / get_realm_hash(): what the script said of the user.
pub enum UserCheck {
    Granted,
    /// Granted, as this user name.
    GrantedAs(String),
    Denied,
    UserNotFound,
    RealmHash(String),
    /// The script failed (logged).
    Failed,
}

/// A str for a user name, password or realm: UTF-8, else byte for byte.
fn param<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    match std::str::from_utf8(bytes) {
        Ok(s) => PyString::new(py, s),
        Err(_) => text(py, bytes),
    }
}

pub fn check_password(req: &HookRequest<'_>, io: Box<dyn RequestIo>, user: &[u8], password: &[u8]) -> UserCheck {
    let missing = format!("Target WSGI user authentication script '{}' does not provide 'Basic' auth provider.", req.script);
    call(req, io, "check_password", &missing, |py, environ| (environ, param(py, user), param(py, password)).into_pyobject(py), |result| {
        if result.is_none() {
            Ok(UserCheck::UserNotFound)
        } else if let Ok(granted) = result.cast::<pyo3::types::PyBool>() {
            Ok(if granted.is_true() { UserCheck::Granted } else { UserCheck::Denied })
        } else if let Ok(name) = result.extract::<String>() {
            Ok(UserCheck::GrantedAs(name))
        } else {
            Err(PyTypeError::new_err("Basic auth provider must return True, False None or user name as string"))
        }
    })
    .unwrap_or(UserCheck::Failed)
}

pub fn realm_hash(req: &HookRequest<'_>, io: Box<dyn RequestIo>, user: &[u8], realm: &[u8]) -> UserCheck {
    let missing = format!("Target WSGI user authentication script '{}' does not provide 'Digest' auth provider.", req.script);
    call(req, io, "get_realm_hash", &missing, |py, environ| (environ, param(py, user), param(py, realm)).into_pyobject(py), |result| {
        const NOT_A_STRING: &str = "Digest auth provider must return None or string object";
        if result.is_none() {
            Ok(UserCheck::UserNotFound)
        } else if let Ok(hash) = result.cast::<PyBytes>() {
            Ok(UserCheck::RealmHash(String::from_utf8_lossy(hash.as_bytes()).into_owned()))
        } else if let Ok(hash) = result.extract::<String>() {
            if hash.chars().any(|c| u32::from(c) > 0xff) {
                return Err(PyTypeError::new_err(format!("{NOT_A_STRING}, value containing non 'latin-1' characters found")));
            }
            Ok(UserCheck::RealmHash(hash))
        } else {
            Err(PyTypeError::new_err(NOT_A_STRING))
        }
    })
    .unwrap_or(UserCheck::Failed)
}

/// groups_for_user(): the user's groups, or None when the script failed (logged).
pub fn groups_for_user(req: &HookRequest<'_>, io: Box<dyn RequestIo>, user: &[u8]) -> Option<Vec<Vec<u8>>> {
    let missing = format!("Target WSGI group authentication script '{}' does not provide group provider.", req.script);
    let not_groups = format!("mod_wsgi (pid={}): Groups for user returned from '{}' must be an iterable sequence of byte strings", std::process::id(), req.script);
    call(req, io, "groups_for_user", &missing, |py, environ| (environ, param(py, user)).into_pyobject(py), |result| {
        let groups = result.try_iter().map_err(|e| (Some(e), format!("{not_groups}.")))?;
        let mut names = Vec::new();
        for group in groups {
            let group = group.map_err(|e| (Some(e), format!("{not_groups}.")))?;
            if let Ok(bytes) = group.cast::<PyBytes>() {
                names.push(bytes.as_bytes().to_vec());
            } else if let Ok(name) = group.extract::<String>() {
                // Names are compared as latin-1 bytes, as httpd sees them.
                let latin1: Option<Vec<u8>> = name.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect();
                let Some(latin1) = latin1 else {
                    let err = pyo3::exceptions::PyUnicodeEncodeError::new_err(format!("'latin-1' codec can't encode group name {name:?}"));
                    return Err((Some(err), format!("{not_groups}, value containing non 'latin-1' characters found")));
                };
                names.push(latin1);
            } else {
                return Err((None, format!("{not_groups}.")));
            }
        }
        Ok(names)
    })
}

/// What allow_access() said of the client.
pub enum HostAccess {
    Allow,
    /// Refused, or the script failed (logged).
    Deny,
    /// None: other modules decide.
    Abstain,
}

pub fn allow_access(req: &HookRequest<'_>, io: Box<dyn RequestIo>, host: &[u8]) -> HostAccess {
    let missing = format!("Target WSGI host access script '{}' does not provide host validator.", req.script);
    let not_bool = format!("mod_wsgi (pid={}): Indicator of host accessibility returned from '{}' must a boolean or None.", std::process::id(), req.script);
    call(req, io, "allow_access", &missing, |py, environ| (environ, param(py, host)).into_pyobject(py), |result| {
        if result.is_none() {
            return Ok(HostAccess::Abstain);
        }
        match result.cast::<pyo3::types::PyBool>() {
            Ok(allowed) if allowed.is_true() => Ok(HostAccess::Allow),
            Ok(_) => Ok(HostAccess::Deny),
            Err(_) => Err((None, not_bool.clone())),
        }
    })
    .unwrap_or(HostAccess::Deny)
}

/// An unusable answer from the script: the line to log, then the exception
/// (with its traceback), each if any.
trait Rejection {
    fn split(self) -> (Option<PyErr>, Option<String>);
}

impl Rejection for PyErr {
    fn split(self) -> (Option<PyErr>, Option<String>) {
        (Some(self), None)
    }
}

impl Rejection for (Option<PyErr>, String) {
    fn split(self) -> (Option<PyErr>, Option<String>) {
        (self.0, Some(self.1))
    }
}

/// Loads the script, calls `function` with the environ and what `args` adds,
/// and reads the answer; None when anything failed (logged for the request).
fn call<T, E: Rejection>(
    req: &HookRequest<'_>,
    io: Box<dyn RequestIo>,
    function: &str,
    missing: &str,
    args: impl for<'py> FnOnce(Python<'py>, Bound<'py, PyDict>) -> PyResult<Bound<'py, PyTuple>>,
    read: impl for<'py> FnOnce(&Bound<'py, PyAny>) -> Result<T, E>,
) -> Option<T> {
    with_script(req, io, |py, context, module, environ| {
        let Ok(callable) = module.getattr(function) else {
            context.log(Level::Error, &format!("mod_wsgi (pid={}): {missing}", std::process::id()));
            return None;
        };
        let result = args(py, environ).and_then(|args| callable.call1(args));
        answer(py, context, result, read)
    })
}

/// WSGIDispatchScript: what process_group(), application_group() and
/// callable_object() of the script answer, each if defined and not None.
#[derive(Default)]
pub struct Dispatch {
    pub process_group: Option<String>,
    pub application_group: Option<String>,
    pub callable_object: Option<String>,
}

/// Runs the dispatch script's functions; None when one failed (logged).
pub fn dispatch(req: &HookRequest<'_>, io: Box<dyn RequestIo>) -> Option<Dispatch> {
    with_script(req, io, |py, context, module, environ| {
        let mut answers = Dispatch::default();
        let functions = [
            ("process_group", "Process group must be a byte string", &mut answers.process_group),
            ("application_group", "Application group must be a string object", &mut answers.application_group),
            ("callable_object", "Callable object must be a string object", &mut answers.callable_object),
        ];
        for (function, not_a_string, slot) in functions {
            let Ok(callable) = module.getattr(function) else { continue };
            let result = callable.call1((&environ,));
            *slot = answer(py, context, result, |value| {
                if value.is_none() {
                    return Ok(None);
                }
                value.extract::<String>().map(Some).map_err(|_| PyTypeError::new_err(not_a_string))
            })?;
        }
        Some(answers)
    })
}

/// Loads the script into its interpreter and runs `body` with it and a fresh
/// environ; load failures are logged and give None.
fn with_script<T>(
    req: &HookRequest<'_>,
    io: Box<dyn RequestIo>,
    body: impl for<'py> FnOnce(Python<'py>, &RequestContext, &Bound<'py, PyModule>, Bound<'py, PyDict>) -> Option<T>,
) -> Option<T> {
    let context = RequestContext::new(io, req.script.to_owned());
    let _current = Current::enter(&context);
    let pid = std::process::id();
    let answer = application_groups::with_group(req.application_group, |py| {
        let note = |what: &str| context.log(Level::Info, &format!("mod_wsgi (pid={pid}, process='', application='{}'): {what}", req.application_group));
        let module = match script::load(py, req.script, req.script_mtime, req.script_reloading, note) {
            Ok(module) => module,
            Err(LoadError::Failed(err)) => {
                context.log(Level::Error, &format!("mod_wsgi (pid={pid}): Failed to exec Python script file '{}'.", req.script));
                log_exception(py, &context, err);
                return None;
            }
        };
        let errors = match Bound::new(py, LogStream::for_request(context.clone())) {
            Ok(errors) => errors,
            Err(err) => {
                log_exception(py, &context, err);
                return None;
            }
        };
        let answer = match environ(py, req, &errors) {
            Ok(environ) => body(py, &context, &module, environ),
            Err(err) => {
                log_exception(py, &context, err);
                None
            }
        };
        errors.get().flush_pending();
        answer
    });
    context.close();
    answer
}

/// Reads what a script function returned; failures are logged and give None.
fn answer<'py, T, E: Rejection>(py: Python<'py>, context: &RequestContext, result: PyResult<Bound<'py, PyAny>>, read: impl FnOnce(&Bound<'py, PyAny>) -> Result<T, E>) -> Option<T> {
    let rejection = match result {
        Ok(value) => match read(&value) {
            Ok(answer) => return Some(answer),
            Err(e) => e.split(),
        },
        Err(err) => (Some(err), None),
    };
    if let (_, Some(line)) = &rejection {
        context.log(Level::Error, line);
    }
    if let (Some(err), _) = rejection {
        log_exception(py, context, err);
    }
    None
}

fn environ<'py>(py: Python<'py>, req: &HookRequest<'_>, errors: &Bound<'py, LogStream>) -> PyResult<Bound<'py, PyDict>> {
    let env = PyDict::new(py);
    put_cgi(&env, Keys::current(py), &req.cgi)?;
    env.set_item("wsgi.errors", errors)?;
    env.set_item("apache.version", req.server_version)?;
    env.set_item("mod_wsgi.version", MOD_WSGI_VERSION)?;
    env.set_item("mod_wsgi.process_group", "")?;
    env.set_item("mod_wsgi.application_group", req.application_group)?;
    // An int here, unlike the application's environ (as in mod_wsgi).
    env.set_item("mod_wsgi.script_reloading", i32::from(req.script_reloading))?;
    Ok(env)
}

