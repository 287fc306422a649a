//! The ASGI HTTP connection scope of a request, from its CGI variables and
//! the header lines as the client sent them.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use super::super::wsgi::RequestInfo;

/// The HTTP connection scope.
pub(super) fn scope<'py>(py: Python<'py>, info: &RequestInfo<'_>, state: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let var = |name: &[u8]| info.cgi_var(name).unwrap_or_default();
    let scope = PyDict::new(py);
    scope.set_item("type", "http")?;
    let asgi = PyDict::new(py);
    asgi.set_item("version", "3.0")?;
    asgi.set_item("spec_version", "2.4")?;
    scope.set_item("asgi", asgi)?;
    let http_version = match var(b"SERVER_PROTOCOL") {
        b"HTTP/1.0" => "1.0",
        b"HTTP/2.0" | b"HTTP/2" => "2",
        _ => "1.1",
    };
    scope.set_item("http_version", http_version)?;
    scope.set_item("method", String::from_utf8_lossy(var(b"REQUEST_METHOD")))?;
    scope.set_item("scheme", info.url_scheme)?;
    // httpd has already percent-decoded the path it mapped.
    let root_path = var(b"SCRIPT_NAME");
    let path = [root_path, var(b"PATH_INFO")].concat();
    scope.set_item("path", String::from_utf8_lossy(&path))?;
    let uri = var(b"REQUEST_URI");
    let raw_path = uri.iter().position(|&b| b == b'?').map_or(uri, |end| &uri[..end]);
    scope.set_item("raw_path", PyBytes::new(py, raw_path))?;
    scope.set_item("query_string", PyBytes::new(py, var(b"QUERY_STRING")))?;
    scope.set_item("root_path", String::from_utf8_lossy(root_path))?;
    let headers = PyList::empty(py);
    for (name, value) in &info.headers {
        headers.append((PyBytes::new(py, &name.to_ascii_lowercase()), PyBytes::new(py, value)))?;
    }
    scope.set_item("headers", headers)?;
    let port = |name: &[u8]| std::str::from_utf8(var(name)).ok().and_then(|p| p.parse::<u16>().ok()).unwrap_or(0);
    scope.set_item("client", (PyString::new(py, &String::from_utf8_lossy(var(b"REMOTE_ADDR"))), port(b"REMOTE_PORT")))?;
    scope.set_item("server", (info.listener_host, info.listener_port))?;
    let extensions = PyDict::new(py);
    extensions.set_item("http.response.pathsend", PyDict::new(py))?;
    extensions.set_item("mod_wsgi", mod_wsgi_extension(py, info)?)?;
    scope.set_item("extensions", extensions)?;
    if !state.is_none() {
        // A shallow copy per request, as the spec asks.
        scope.set_item("state", state.call_method0("copy")?)?;
    }
    Ok(scope)
}

/// What Apache knows of the request that the HTTP scope has no key for, as
/// the WSGI environ gives it: the file the request maps to (the resource, for
/// a WSGIHandlerScript), the user Apache authenticated, and where mod_wsgi
/// runs the application.
fn mod_wsgi_extension<'py>(py: Python<'py>, info: &RequestInfo<'_>) -> PyResult<Bound<'py, PyDict>> {
    let ours = PyDict::new(py);
    ours.set_item("script_filename", String::from_utf8_lossy(info.cgi_var(b"SCRIPT_FILENAME").unwrap_or_default()))?;
    for (name, key) in [(&b"REMOTE_USER"[..], "remote_user"), (b"AUTH_TYPE", "auth_type")] {
        if let Some(value) = info.cgi_var(name).filter(|value| !value.is_empty()) {
            ours.set_item(key, String::from_utf8_lossy(value))?;
        }
    }
    ours.set_item("process_group", info.process_group)?;
    ours.set_item("application_group", info.application_group)?;
    ours.set_item("callable_object", info.callable_object)?;
    ours.set_item("request_handler", info.request_handler)?;
    ours.set_item("handler_script", info.handler_script)?;
    ours.set_item("request_id", &info.request_id)?;
    Ok(ours)
}
