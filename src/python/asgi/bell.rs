//! What other threads ring to have an event loop look at its inbox: new
//! requests to start (see `inbox`), and Python objects they are done with,
//! which only a thread holding the GIL may let go of.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::eventfd::{EfdFlags, EventFd};
use parking_lot::Mutex;
use pyo3::prelude::*;

pub(super) struct Bell {
    /// Readable once rung; the loop watches it (add_reader).
    fd: EventFd,
    /// Rung and not yet answered: ringing again is needless.
    rung: AtomicBool,
    /// Objects to be dropped on the loop's thread.
    done_with: Mutex<Vec<Py<PyAny>>>,
}

impl Bell {
    pub fn new() -> std::io::Result<Bell> {
        let fd = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC).map_err(std::io::Error::from)?;
        Ok(Bell { fd, rung: AtomicBool::new(false), done_with: Mutex::new(Vec::new()) })
    }

    pub fn fileno(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }

    /// Has the loop look, unless it is to already.
    pub fn ring(&self) {
        if !self.rung.swap(true, Ordering::AcqRel) {
            let _ = self.fd.write(1);
        }
    }

    /// The loop looks now (its thread, holding the GIL): after this, what
    /// arrives rings again. Drops what others were done with.
    pub fn answer(&self, _py: Python<'_>) {
        let _ = self.fd.read();
        self.rung.store(false, Ordering::Release);
        let done_with = std::mem::take(&mut *self.done_with.lock());
        drop(done_with);
    }

    /// Leaves `object` for the loop's thread to drop.
    pub fn let_go(&self, object: Py<PyAny>) {
        self.done_with.lock().push(object);
        self.ring();
    }
}
