//! The panic boundary: nothing unwinds out of a function httpd calls.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f`, turning a panic into an error-log line and `None`.
pub fn catch<R>(what: &str, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) => {
            let detail = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            super::log::process_error(&format!("mod_wsgi (pid={}): Internal error in {what}: {detail}", std::process::id()));
            None
        }
    }
}
