//! wsgi.file_wrapper: lets a response be a file that the server sends itself.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[pyclass(frozen, module = "mod_wsgi")]
pub struct FileWrapper {
    pub filelike: Py<PyAny>,
    blksize: isize,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize=8192))]
    fn new(filelike: Py<PyAny>, blksize: isize) -> Self {
        FileWrapper { filelike, blksize }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The generic path, for file-likes that are not plain files.
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let data = self.filelike.bind(py).call_method1("read", (self.blksize,))?;
        let empty = data.cast::<PyBytes>().map(|b| b.as_bytes().is_empty()).unwrap_or(false) || data.is_truthy().map(|t| !t)?;
        Ok((!empty).then_some(data))
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let filelike = self.filelike.bind(py);
        if filelike.hasattr("close")? {
            filelike.call_method0("close")?;
        }
        Ok(())
    }
}
