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
    /// Body bytes the application produced, cut or not: compared with
    /// Content-Length for the C module's "Content length mismatch" line.
    pub generated: u64,
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

pub(super) fn check_header(name: &str, value: &str) -> PyResult<()> {
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

/// A Content-Length value as the C module reads it (strtol): leading white
/// space, an optional sign, decimal digits and nothing after them, at most
/// i64::MAX and not negative. An empty value is 0, as there.
pub fn parse_content_length(value: &str) -> Option<u64> {
    let digits = value.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    if digits.is_empty() {
        return value.is_empty().then_some(0);
    }
    let (negative, digits) = match digits.as_bytes()[0] {
        b'-' => (true, &digits[1..]),
        b'+' => (false, &digits[1..]),
        _ => (false, digits),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = digits.parse::<u64>().ok().filter(|&n| n <= i64::MAX as u64)?;
    (!negative || n == 0).then_some(n)
}

/// Checks every Content-Length header and keeps one, the last, holding its
/// number: the body is cut at the length the client is told, and an Apache
/// child never has to read a daemon's value differently from it.
fn settle_content_length(headers: &mut Vec<(String, String)>) -> PyResult<Option<u64>> {
    let mut last = None;
    for (i, (name, value)) in headers.iter_mut().enumerate() {
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_content_length(value).ok_or_else(|| PyValueError::new_err(format!("invalid content length '{value}'")))?;
            *value = n.to_string();
            last = Some((i, n));
        }
    }
    let Some((keep, n)) = last else { return Ok(None) };
    let mut i = 0;
    headers.retain(|(name, _)| {
        i += 1;
        i - 1 == keep || !name.eq_ignore_ascii_case("content-length")
    });
    Ok(Some(n))
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
        let mut headers = parse_headers(response_headers)?;
        let content_length = settle_content_length(&mut headers)?;
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

#[cfg(test)]
mod tests {
    use super::{parse_content_length, settle_content_length};

    #[test]
    fn content_length_is_read_as_the_c_module_reads_it() {
        // As strtol reads them (tests/wire_length.rs runs such values through both
        // modules): these answer 200 with that length ...
        for (value, n) in [("5", 5), (" 1", 1), ("+5", 5), ("-0", 0), ("", 0), ("007", 7), ("9223372036854775807", i64::MAX as u64)] {
            assert_eq!(parse_content_length(value), Some(n), "{value:?}");
        }
        // ... and these 500 with "ValueError: invalid content length".
        for value in [" 1 ", "1 ", "-1", "9223372036854775808", "18446744073709551615", "0x5", "5x", " ", "+", "1.0", "\u{661}"] {
            assert_eq!(parse_content_length(value), None, "{value:?}");
        }
    }

    #[test]
    fn the_last_content_length_is_kept_as_a_number() {
        let h = |pairs: &[(&str, &str)]| pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect::<Vec<_>>();
        let mut headers = h(&[("Content-Length", "1"), ("X-A", "a"), ("content-length", " 5")]);
        assert_eq!(settle_content_length(&mut headers).unwrap(), Some(5));
        assert_eq!(headers, h(&[("X-A", "a"), ("content-length", "5")]));
        let mut headers = h(&[("X-A", "a")]);
        assert_eq!(settle_content_length(&mut headers).unwrap(), None);
        assert_eq!(headers, h(&[("X-A", "a")]));
    }
}
