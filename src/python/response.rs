//! start_response(), the write() callable it returns, and the checks on
//! status lines and headers that keep a response well-formed.

use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use super::context::RequestContext;
use super::log_stream::type_name;

/// What start_response recorded and what has gone out so far.
#[derive(Default)]
pub struct ResponseState {
    pub status: Option<Status>,
    pub headers: Vec<(String, String)>,
    pub headers_sent: bool,
    /// The application's Content-Length: the body is cut there.
    pub content_length: Option<u64>,
    pub body_sent: u64,
}

#[derive(Clone, Debug)]
pub struct Status {
    pub code: u16,
    pub line: String,
}

/// Takes a str that must be latin-1, as PEP 3333 requires of status and headers.
fn native_string(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    let s = obj
        .cast::<pyo3::types::PyString>()
        .map_err(|_| PyTypeError::new_err(format!("expected unicode object, value of type {} found", type_name(obj))))?;
    let text = s.to_str()?;
    if text.chars().any(|c| c as u32 > 0xff) {
        return Err(PyValueError::new_err("unicode object contains non latin-1 characters"));
    }
    Ok(text.to_owned())
}

pub fn parse_status(line: &str) -> PyResult<Status> {
    let bytes = line.as_bytes();
    if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) || bytes.get(3).is_some_and(u8::is_ascii_digit) {
        return Err(PyValueError::new_err("status code is not a 3 digit integer"));
    }
    if bytes.get(3) != Some(&b' ') {
        return Err(PyValueError::new_err("no space following status code"));
    }
    if line.chars().any(char::is_control) {
        return Err(PyValueError::new_err("control character present in reason phrase"));
    }
    Ok(Status { code: line[..3].parse().expect("three digits"), line: line.to_owned() })
}

fn check_header(name: &str, value: &str) -> PyResult<()> {
    if name.is_empty() {
        return Err(PyValueError::new_err("header name is empty"));
    }
    if name.chars().any(char::is_control) {
        return Err(PyValueError::new_err("control character present in header name"));
    }
    if name.contains(' ') {
        return Err(PyValueError::new_err("space character present in header name"));
    }
    if value.contains(['\r', '\n']) {
        return Err(PyValueError::new_err("carriage return/line feed character present in header value"));
    }
    Ok(())
}

fn parse_headers(headers: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let list = headers
        .cast::<pyo3::types::PyList>()
        .map_err(|_| PyTypeError::new_err(format!("start_response() argument 2 must be list, not {}", type_name(headers))))?;
    let mut out = Vec::with_capacity(list.len());
    for item in list.iter() {
        let pair = item
            .cast::<PyTuple>()
            .ok()
            .filter(|t| t.len() == 2)
            .ok_or_else(|| PyTypeError::new_err(format!("list of tuple values expected for headers, value of type {} found", type_name(&item))))?;
        let name = native_string(&pair.get_item(0)?)?;
        let value = native_string(&pair.get_item(1)?)?;
        check_header(&name, &value)?;
        out.push((name, value));
    }
    Ok(out)
}

/// The start_response callable handed to the application.
#[pyclass(frozen, module = "mod_wsgi")]
pub struct StartResponse {
    context: Arc<RequestContext>,
}

impl StartResponse {
    pub fn new(context: Arc<RequestContext>) -> Self {
        StartResponse { context }
    }
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, response_headers, exc_info=None))]
    fn __call__(
        &self,
        py: Python<'_>,
        status: &Bound<'_, PyAny>,
        response_headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Write> {
        let exc_info = exc_info.filter(|e| !e.is_none());
        {
            let state = self.context.response.lock();
            if state.headers_sent {
                if let Some(info) = exc_info {
                    // PEP 3333: too late to change the response; re-raise the original.
                    let info = info.cast::<PyTuple>()?;
                    let value = info.get_item(1)?;
                    let tb = info.get_item(2)?;
                    let err = PyErr::from_value(value);
                    if let Ok(tb) = tb.cast_into::<pyo3::types::PyTraceback>() {
                        err.set_traceback(py, Some(tb));
                    }
                    return Err(err);
                }
                return Err(PyRuntimeError::new_err("headers have already been sent"));
            }
        }
        let line = native_string(status)?;
        let status = parse_status(&line)?;
        let headers = parse_headers(response_headers)?;
        let content_length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.trim().parse::<u64>().map_err(|_| PyValueError::new_err(format!("invalid content length '{v}'"))))
            .transpose()?;
        super::events::response_started(py, &self.context, &line, response_headers, exc_info);
        let mut state = self.context.response.lock();
        state.status = Some(status);
        state.headers = headers;
        state.content_length = content_length;
        Ok(Write { context: self.context.clone() })
    }
}

/// The write() callable start_response returns (the legacy imperative API).
#[pyclass(frozen, module = "mod_wsgi")]
pub struct Write {
    context: Arc<RequestContext>,
}

#[pymethods]
impl Write {
    fn __call__(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = data
            .cast::<PyBytes>()
            .map_err(|_| PyTypeError::new_err(format!("byte string value expected, value of type {} found", type_name(data))))?;
        super::wsgi::send_chunk(py, &self.context, bytes.as_bytes(), true)
    }
}
