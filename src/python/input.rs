//! wsgi.input: the request body as a stream, read with the GIL released.

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use super::context::RequestContext;

const CHUNK: usize = 64 * 1024;

#[pyclass(frozen, module = "mod_wsgi", name = "Input")]
pub struct InputStream {
    context: Arc<RequestContext>,
    state: Mutex<Buffered>,
}

/// Bytes read from the client but not yet handed to the application.
#[derive(Default)]
struct Buffered {
    data: Vec<u8>,
    start: usize,
    eof: bool,
}

impl Buffered {
    fn available(&self) -> &[u8] {
        &self.data[self.start..]
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.data.len() - self.start);
        let out = self.data[self.start..self.start + n].to_vec();
        self.start += n;
        if self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        }
        out
    }

    /// Reads one more piece from the client; false at the end of the body.
    fn fill(&mut self, context: &RequestContext, want: usize) -> PyResult<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 && self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        }
        let mut io = context.io.lock();
        let io = io.as_mut().ok_or_else(|| PyOSError::new_err("Apache/mod_wsgi request data read error: request has finished"))?;
        let old = self.data.len();
        self.data.reserve(want.max(1));
        let spare = &mut self.data.spare_capacity_mut()[..want.max(1)];
        let result = counted_read(context, io.as_mut(), spare);
        if let Ok(n) = result {
            // SAFETY: read_body initialised the first n bytes of the spare capacity.
            unsafe { self.data.set_len(old + n) };
        }
        match result {
            Ok(0) => {
                self.eof = true;
                Ok(false)
            }
            Ok(_) => Ok(true),
            Err(e) => Err(PyOSError::new_err(format!("Apache/mod_wsgi request data read error: {e}."))),
        }
    }
}

/// Reads body bytes into `buf`, counted for the request_finished event.
fn counted_read(context: &RequestContext, io: &mut dyn super::RequestIo, buf: &mut [std::mem::MaybeUninit<u8>]) -> std::io::Result<usize> {
    let since = std::time::Instant::now();
    let read = io.read_body(buf);
    if let Ok(n) = read {
        context.counters.read(n, since);
    }
    read
}

impl InputStream {
    pub fn new(context: Arc<RequestContext>) -> Self {
        InputStream { context, state: Mutex::new(Buffered::default()) }
    }

    /// Up to `limit` bytes (all that remain when None), blocking until that many arrive.
    fn read_bytes(&self, py: Python<'_>, limit: Option<usize>) -> PyResult<Vec<u8>> {
        py.detach(|| {
            let mut state = self.state.lock();
            loop {
                let have = state.available().len();
                match limit {
                    Some(n) if have >= n => break,
                    _ => {}
                }
                let want = limit.map_or(CHUNK, |n| (n - have).min(CHUNK));
                if !state.fill(&self.context, want)? {
                    break;
                }
            }
            let n = limit.unwrap_or(usize::MAX);
            Ok(state.take(n))
        })
    }

    /// read(n) with nothing buffered: the client's bytes go straight into
    /// the bytes object returned (one copy), as most uploads are read.
    /// None when buffered data must be served first.
    fn read_direct<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Option<Bound<'py, PyBytes>>> {
        // Uncontended unless the application shares wsgi.input across threads.
        let Some(mut state) = self.state.try_lock() else { return Ok(None) };
        if !state.available().is_empty() || n > 16 * 1024 * 1024 {
            return Ok(None);
        }
        if state.eof {
            return Ok(Some(PyBytes::new(py, b"")));
        }
        let mut eof = false;
        let bytes = new_bytes_uninit(py, n, |buf| {
            let got;
            (got, eof) = py.detach(|| -> PyResult<(usize, bool)> {
                let mut io = self.context.io.lock();
                let io = io.as_mut().ok_or_else(|| PyOSError::new_err("Apache/mod_wsgi request data read error: request has finished"))?;
                let mut filled = 0;
                while filled < buf.len() {
                    match counted_read(&self.context, io.as_mut(), &mut buf[filled..]) {
                        Ok(0) => return Ok((filled, true)),
                        Ok(k) => filled += k,
                        Err(e) => return Err(PyOSError::new_err(format!("Apache/mod_wsgi request data read error: {e}."))),
                    }
                }
                Ok((filled, false))
            })?;
            Ok(got)
        })?;
        state.eof |= eof;
        Ok(Some(bytes))
    }

    /// One line including its newline, at most `limit` bytes.
    fn read_line(&self, py: Python<'_>, limit: Option<usize>) -> PyResult<Vec<u8>> {
        py.detach(|| {
            let mut state = self.state.lock();
            let mut scanned = 0;
            loop {
                let available = state.available();
                if let Some(i) = available[scanned..].iter().position(|&b| b == b'\n') {
                    let end = scanned + i + 1;
                    return Ok(state.take(limit.map_or(end, |n| n.min(end))));
                }
                scanned = available.len();
                if limit.is_some_and(|n| scanned >= n) {
                    break;
                }
                if !state.fill(&self.context, 8192)? {
                    break;
                }
            }
            Ok(state.take(limit.unwrap_or(usize::MAX)))
        })
    }
}

unsafe extern "C" {
    /// CPython's in-place shrink of a fresh bytes object (not in pyo3's ffi).
    fn _PyBytes_Resize(bytes: *mut *mut pyo3::ffi::PyObject, size: pyo3::ffi::Py_ssize_t) -> std::ffi::c_int;
}

/// A bytes object of at most `n` bytes whose contents `fill` writes
/// directly (returning how many), with no zeroing or second copy.
fn new_bytes_uninit<'py>(
    py: Python<'py>,
    n: usize,
    fill: impl FnOnce(&mut [std::mem::MaybeUninit<u8>]) -> PyResult<usize>,
) -> PyResult<Bound<'py, PyBytes>> {
    // SAFETY: PyBytes_FromStringAndSize(NULL, n) returns a new, unshared bytes
    // object with n writable bytes (uninitialised) or NULL with an exception.
    let mut raw = unsafe { pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), n as pyo3::ffi::Py_ssize_t) };
    if raw.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: the buffer is n bytes long and only we hold the object.
    let buf = unsafe { std::slice::from_raw_parts_mut(pyo3::ffi::PyBytes_AsString(raw).cast::<std::mem::MaybeUninit<u8>>(), n) };
    let filled = match fill(buf) {
        Ok(k) => k.min(n),
        Err(err) => {
            // SAFETY: drop our only reference.
            unsafe { pyo3::ffi::Py_DECREF(raw) };
            return Err(err);
        }
    };
    // SAFETY: `filled` bytes are initialised; shrinking a fresh bytes object
    // that nobody else references is what _PyBytes_Resize is for (it frees
    // and NULLs `raw` on failure).
    unsafe {
        if filled < n && _PyBytes_Resize(&mut raw, filled as pyo3::ffi::Py_ssize_t) != 0 {
            return Err(PyErr::fetch(py));
        }
        Ok(Bound::from_owned_ptr(py, raw).cast_into_unchecked())
    }
}

fn size_arg(size: Option<isize>) -> Option<usize> {
    size.and_then(|n| usize::try_from(n).ok())
}

#[pymethods]
impl InputStream {
    #[pyo3(signature = (size=None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        if let Some(n) = size_arg(size).filter(|&n| n > 0)
            && let Some(bytes) = self.read_direct(py, n)?
        {
            return Ok(bytes);
        }
        let data = self.read_bytes(py, size_arg(size))?;
        Ok(PyBytes::new(py, &data))
    }

    #[pyo3(signature = (size=None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let data = self.read_line(py, size_arg(size))?;
        Ok(PyBytes::new(py, &data))
    }

    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(&self, py: Python<'py>, hint: Option<isize>) -> PyResult<Bound<'py, PyList>> {
        let lines = PyList::empty(py);
        let hint = size_arg(hint).filter(|&n| n > 0);
        let mut total = 0;
        loop {
            let line = self.read_line(py, None)?;
            if line.is_empty() {
                break;
            }
            total += line.len();
            lines.append(PyBytes::new(py, &line))?;
            if hint.is_some_and(|n| total >= n) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.read_line(py, None)?;
        Ok((!line.is_empty()).then(|| PyBytes::new(py, &line)))
    }

    fn close(&self) {}
}
