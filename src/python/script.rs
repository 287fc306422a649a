//! Loading a WSGI script file as a module, and reloading it when it changes.
//!
//! The module is named `_mod_wsgi_` + md5 of the script's path (in lower case
//! unless WSGICaseSensitivity is Off, as mod_wsgi names it) and lives in
//! sys.modules, stamped with the file's mtime, as in mod_wsgi: the application
//! found there serves every request until the file changes.

use std::collections::HashMap;
use std::sync::LazyLock;

use parking_lot::Mutex;
use parking_lot::lock_api::RawMutex as _;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

/// Serialises script loading in a process; taken with the GIL released.
static LOAD_LOCK: parking_lot::RawMutex = parking_lot::RawMutex::INIT;

/// Module names by script path (an md5 per request would be waste).
static MODULE_NAMES: LazyLock<Mutex<HashMap<String, String>>> = LazyLock::new(Default::default);

struct LoadGuard;

impl LoadGuard {
    fn acquire(py: Python<'_>) -> LoadGuard {
        py.detach(|| LOAD_LOCK.lock());
        LoadGuard
    }
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        // SAFETY: a LoadGuard exists only while this thread holds LOAD_LOCK.
        unsafe { LOAD_LOCK.unlock() };
    }
}

pub fn module_name(path: &str) -> String {
    if let Some(name) = MODULE_NAMES.lock().get(path) {
        return name.clone();
    }
    let fold = super::interpreter::options().is_none_or(|o| o.fold_script_paths);
    let hashed = if fold { path.to_ascii_lowercase() } else { path.to_owned() };
    let name = format!("_mod_wsgi_{}", crate::apache::digest::md5_hex(hashed.as_bytes()));
    MODULE_NAMES.lock().insert(path.to_owned(), name.clone());
    name
}

/// Why a script could not give an application.
pub enum LoadError {
    /// Running the script raised; the error is to be logged with its traceback.
    Failed(PyErr),
}

/// Returns the script's module, executing the file when it is not loaded yet
/// or (with `reload`) when its mtime differs from the loaded one.
/// `note` hears what is about to happen ("Loading …" / "Reloading …"), for the log.
pub fn load<'py>(py: Python<'py>, path: &str, mtime: i64, reload: bool, note: impl Fn(&str)) -> Result<Bound<'py, PyModule>, LoadError> {
    let name = module_name(path);
    let modules = super::sys_modules(py);
    if let Some(module) = current(&modules, &name, mtime, reload) {
        return Ok(module);
    }
    let _guard = LoadGuard::acquire(py);
    // Another thread may have loaded it while this one waited.
    if let Some(module) = current(&modules, &name, mtime, reload) {
        return Ok(module);
    }
    if modules.contains(&name).unwrap_or(false) {
        note(&format!("Reloading WSGI script '{path}'."));
    } else {
        note(&format!("Loading Python script file '{path}'."));
    }
    let module = execute(py, &modules, &name, path, mtime).map_err(LoadError::Failed)?;
    LOADED.lock().insert(path.to_owned(), mtime);
    Ok(module)
}

/// Whether any script has loaded in this process (startup-timeout= waits for one).
pub fn any_loaded() -> bool {
    !LOADED.lock().is_empty()
}

/// A script's modification time in microseconds, as scripts are stamped
/// with; 0 when the file cannot be read (loading it then says why).
pub fn mtime(path: &str) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_micros() as i64)
}

/// The mtime of every script this process has loaded (in any interpreter).
static LOADED: LazyLock<Mutex<HashMap<String, i64>>> = LazyLock::new(Default::default);

/// True when this process runs an older version of the script at `path`
/// (a daemon process then restarts rather than reload in place).
pub fn is_stale(path: &str, mtime: i64) -> bool {
    LOADED.lock().get(path).is_some_and(|&loaded| loaded != mtime)
}

/// The loaded module, if complete (`__mtime__` is set only once the script
/// has run, so a module another thread is still executing does not count)
/// and, with `reload`, of the file's current version.
fn current<'py>(modules: &Bound<'py, PyDict>, name: &str, mtime: i64, reload: bool) -> Option<Bound<'py, PyModule>> {
    let module = modules.get_item(name).ok()??.cast_into::<PyModule>().ok()?;
    let loaded: i64 = module.getattr("__mtime__").ok()?.extract().ok()?;
    (!reload || loaded == mtime).then_some(module)
}

fn execute<'py>(py: Python<'py>, modules: &Bound<'py, PyDict>, name: &str, path: &str, mtime: i64) -> PyResult<Bound<'py, PyModule>> {
    let source = std::fs::read(path).map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("unable to read '{path}': {e}")))?;
    let module = PyModule::new(py, name)?;
    module.setattr("__file__", path)?;
    let builtins = py.import("builtins")?;
    let code = builtins.call_method1("compile", (pyo3::types::PyBytes::new(py, &source), path, "exec", 0, true))?;
    // In sys.modules while it runs, as an imported module is (the script may
    // refer to itself); complete, for other threads, once __mtime__ is set.
    modules.set_item(name, &module)?;
    if let Err(err) = builtins.call_method1("exec", (code, module.dict())) {
        let _ = modules.del_item(name);
        return Err(err);
    }
    module.setattr("__mtime__", mtime)?;
    Ok(module)
}
