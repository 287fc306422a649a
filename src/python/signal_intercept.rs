//! WSGIRestrictSignal On (the default): applications must not take over
//! Apache's signals, so `signal.signal()` only logs the attempt, with the
//! caller's stack, and hands the handler back, as mod_wsgi does. Code that
//! registers handlers at import time (many libraries do) then loads fine
//! in a request thread, where the real call would raise ValueError.

use pyo3::prelude::*;

use super::Level;

/// Replaces `signal.signal` in the interpreter of `py`.
pub fn install(py: Python<'_>) -> PyResult<()> {
    let intercept = pyo3::wrap_pyfunction!(signal, py)?;
    py.import("signal")?.setattr("signal", intercept)
}

/// The stand-in for `signal.signal(signalnum, handler)`.
#[pyfunction]
fn signal<'py>(py: Python<'py>, signalnum: i32, handler: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    super::server_log(Level::Warning, &format!("mod_wsgi (pid={}): Callback registration for signal {signalnum} ignored.", std::process::id()));
    let stack: Vec<String> = py.import("traceback")?.call_method0("format_stack")?.extract()?;
    for line in stack.iter().flat_map(|entry| entry.lines()) {
        super::server_log(Level::Warning, line);
    }
    Ok(handler)
}
