//! Memory that outlives a restart. httpd unloads and loads its modules
//! again at every restart, and every static goes with them; what one
//! configuration hands to the next (sockets kept open, supervisors still
//! running, keys) is written to a region of the process pool, which httpd
//! keeps for the life of the process, and found again there by name.

use std::ffi::c_void;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicPtr, Ordering};

use super::ffi;

const NAME: &std::ffi::CStr = c"mod_wsgi_rs:retained";
/// Room for the hand-over: a length (4 bytes), then that many bytes.
const SIZE: usize = 64 << 10;
/// The most bytes the hand-over can hold.
pub const CAPACITY: usize = SIZE - 4;

static REGION: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

/// Finds the region in the process pool, or makes it (zeroed).
pub fn attach(server: *const ffi::server_rec) {
    // SAFETY: the server record and its process record live for the whole
    // process; the region is SIZE bytes of the process pool, which is never
    // cleared, and only this module uses the name.
    unsafe {
        let pool = (*(*server).process).pool;
        let mut data: *mut c_void = std::ptr::null_mut();
        ffi::apr_pool_userdata_get(&mut data, NAME.as_ptr(), pool);
        if data.is_null() {
            data = ffi::apr_palloc(pool, SIZE as ffi::apr_size_t);
            if data.is_null() {
                return;
            }
            std::ptr::write_bytes(data.cast::<u8>(), 0, SIZE);
            ffi::apr_pool_userdata_setn(data, NAME.as_ptr(), None, pool);
        }
        REGION.store(data.cast(), Ordering::Release);
    }
}

fn region() -> Option<&'static mut [u8]> {
    let p = REGION.load(Ordering::Acquire);
    // SAFETY: set by `attach` to SIZE bytes that live as long as the process;
    // only the parent's one thread touches it, between configurations.
    (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts_mut(p, SIZE) })
}

/// What the previous configuration left, and wipes it.
pub fn take() -> zeroize::Zeroizing<Vec<u8>> {
    let mut out = zeroize::Zeroizing::new(Vec::new());
    if let Some(region) = region() {
        let len = (u32::from_ne_bytes([region[0], region[1], region[2], region[3]]) as usize).min(CAPACITY);
        // Allocated once at its size: no copy of the keys left behind by a grown vector.
        out.reserve_exact(len);
        out.extend_from_slice(&region[4..4 + len]);
        zeroize::Zeroize::zeroize(&mut region[..]);
    }
    out
}

/// Leaves `bytes` for the next configuration; false if they do not fit.
pub fn put(bytes: &[u8]) -> bool {
    let Some(region) = region() else { return false };
    if bytes.len() > CAPACITY {
        return false;
    }
    zeroize::Zeroize::zeroize(&mut region[..]);
    region[..4].copy_from_slice(&(bytes.len() as u32).to_ne_bytes());
    region[4..4 + bytes.len()].copy_from_slice(bytes);
    true
}

/// In a process forked from the parent: nothing of the hand-over (keys
/// among it) stays in its memory.
pub fn wipe() {
    if let Some(region) = region() {
        zeroize::Zeroize::zeroize(&mut region[..]);
    }
}

/// Takes ownership of a descriptor the previous configuration left open
/// and named in the hand-over; None if it is not open.
pub fn adopt(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only asks whether the descriptor is open.
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the previous configuration gave up this open descriptor
    // (into_raw_fd) when it wrote the hand-over, which is read once.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}
