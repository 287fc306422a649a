//! File-like objects that write lines to the error log: wsgi.errors,
//! sys.stderr, sys.stdout, and the restricted stand-ins for stdout and stdin.

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::exceptions::{PyOSError, PyTypeError};
use pyo3::prelude::*;

use super::Level;
use super::context::{RequestContext, log_for_thread};

/// A text stream whose complete lines each become one error-log entry.
#[pyclass(frozen, module = "mod_wsgi")]
pub struct LogStream {
    name: &'static str,
    level: Level,
    request: Option<Arc<RequestContext>>,
    pending: Mutex<String>,
}

impl LogStream {
    pub fn server(name: &'static str, level: Level) -> Self {
        LogStream { name, level, request: None, pending: Mutex::new(String::new()) }
    }

    pub fn for_request(context: Arc<RequestContext>) -> Self {
        LogStream { name: "wsgi.errors", level: Level::Error, request: Some(context), pending: Mutex::new(String::new()) }
    }

    fn emit(&self, line: &str) {
        match &self.request {
            Some(context) => context.log(self.level, line),
            None => log_for_thread(self.level, line),
        }
    }

    /// Logs what is left of a partial line.
    pub fn flush_pending(&self) {
        let rest = std::mem::take(&mut *self.pending.lock());
        if !rest.is_empty() {
            self.emit(&rest);
        }
    }
}

#[pymethods]
impl LogStream {
    fn write(&self, text: &Bound<'_, PyAny>) -> PyResult<usize> {
        let text: &str = &text
            .extract::<String>()
            .map_err(|_| PyTypeError::new_err(format!("write() argument must be str, not {}", type_name(text))))?;
        let complete: Vec<String> = {
            let mut pending = self.pending.lock();
            pending.push_str(text);
            match pending.rfind('\n') {
                Some(end) => {
                    let rest = pending.split_off(end + 1);
                    let done = std::mem::replace(&mut *pending, rest);
                    done.lines().map(str::to_owned).collect()
                }
                None => Vec::new(),
            }
        };
        for line in &complete {
            self.emit(line);
        }
        Ok(text.chars().count())
    }

    fn writelines(&self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(&line?)?;
        }
        Ok(())
    }

    fn flush(&self) {
        self.flush_pending();
    }

    fn close(&self) {
        self.flush_pending();
    }

    fn isatty(&self) -> bool {
        false
    }
    fn readable(&self) -> bool {
        false
    }
    fn writable(&self) -> bool {
        true
    }
    fn seekable(&self) -> bool {
        false
    }

    #[getter]
    fn closed(&self) -> bool {
        false
    }
    #[getter]
    fn name(&self) -> &'static str {
        self.name
    }
    #[getter]
    fn encoding(&self) -> &'static str {
        "utf-8"
    }
    #[getter]
    fn errors(&self) -> &'static str {
        "backslashreplace"
    }
    #[getter]
    fn line_buffering(&self) -> bool {
        true
    }
}

/// sys.stdout or sys.stdin under WSGIRestrictStdout / WSGIRestrictStdin On.
#[pyclass(frozen, module = "mod_wsgi")]
pub struct RestrictedStream {
    name: &'static str,
}

impl RestrictedStream {
    pub fn new(name: &'static str) -> Self {
        RestrictedStream { name }
    }

    fn refuse(&self) -> PyErr {
        PyOSError::new_err(format!("sys.{} access restricted by mod_wsgi", self.name))
    }
}

#[pymethods]
impl RestrictedStream {
    #[pyo3(signature = (*_args))]
    fn write(&self, _args: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(self.refuse())
    }
    #[pyo3(signature = (*_args))]
    fn writelines(&self, _args: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(self.refuse())
    }
    #[pyo3(signature = (*_args))]
    fn read(&self, _args: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(self.refuse())
    }
    #[pyo3(signature = (*_args))]
    fn readline(&self, _args: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(self.refuse())
    }
    #[pyo3(signature = (*_args))]
    fn readlines(&self, _args: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(self.refuse())
    }
    fn flush(&self) -> PyResult<()> {
        Err(self.refuse())
    }
    fn fileno(&self) -> PyResult<()> {
        Err(self.refuse())
    }
    fn isatty(&self) -> PyResult<()> {
        Err(self.refuse())
    }
    fn __iter__(&self) -> PyResult<()> {
        Err(self.refuse())
    }
}

pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "object".into())
}
