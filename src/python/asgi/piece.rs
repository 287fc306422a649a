//! A response body piece on its way from a task to a relay. A small one is
//! copied out of Python; a large one is written from the bytes object
//! itself, which is kept alive meanwhile and let go of on the loop's thread
//! (a copy of a large body costs a fresh mapping, its page faults and a
//! pass over every byte).

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::bell::Bell;

/// Pieces at least this large are not copied.
const IN_PLACE: usize = 64 * 1024;

pub(super) enum Piece {
    Copied(Vec<u8>),
    InPlace(InPlace),
}

pub(super) struct InPlace {
    /// Some until dropped.
    bytes: Option<Py<PyBytes>>,
    start: *const u8,
    len: usize,
    bell: Arc<Bell>,
}

// SAFETY: the pointer is into the buffer of `bytes`, which is immutable and
// lives while `bytes` holds it; reading it needs no GIL, and `bytes` itself
// is only dropped with the GIL held (through `bell`).
unsafe impl Send for InPlace {}

impl Piece {
    pub fn new(bytes: &Bound<'_, PyBytes>, bell: &Arc<Bell>) -> Piece {
        let data = bytes.as_bytes();
        if data.len() < IN_PLACE {
            return Piece::Copied(data.to_vec());
        }
        Piece::InPlace(InPlace { start: data.as_ptr(), len: data.len(), bytes: Some(bytes.clone().unbind()), bell: bell.clone() })
    }
}

impl Default for Piece {
    fn default() -> Piece {
        Piece::Copied(Vec::new())
    }
}

impl std::ops::Deref for Piece {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Piece::Copied(data) => data,
            // SAFETY: see `InPlace`'s Send: the buffer outlives the borrow of self.
            Piece::InPlace(held) => unsafe { std::slice::from_raw_parts(held.start, held.len) },
        }
    }
}

impl Drop for InPlace {
    fn drop(&mut self) {
        if let Some(bytes) = self.bytes.take() {
                self.bell.let_go(bytes.into_any());
        }
    }
}
