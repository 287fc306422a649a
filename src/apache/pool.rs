//! Values whose lifetime is an APR pool's.

use std::ffi::{CStr, c_char, c_void};

use super::ffi;

/// Copies `s` into `pool` as a NUL-terminated C string.
pub fn pstrdup(pool: *mut ffi::apr_pool_t, s: &[u8]) -> *mut c_char {
    // SAFETY: apr_pstrmemdup copies exactly `len` bytes and appends a NUL; the
    // pool is live for the caller (a request or config pool handed to a hook).
    unsafe { ffi::apr_pstrmemdup(pool, s.as_ptr().cast(), s.len()) }
}

/// Moves `value` to the heap and drops it when `pool` is cleared or destroyed.
pub fn attach<T>(pool: *mut ffi::apr_pool_t, value: T) -> *mut T {
    unsafe extern "C" fn drop_box<T>(data: *mut c_void) -> ffi::apr_status_t {
        // SAFETY: `data` came from Box::into_raw below and this cleanup runs once.
        drop(unsafe { Box::from_raw(data.cast::<T>()) });
        0
    }
    let raw = Box::into_raw(Box::new(value));
    // SAFETY: the cleanup owns the box from here on; apr_pool_cleanup_null is
    // APR's no-op for the child (exec) side.
    unsafe {
        ffi::apr_pool_cleanup_register(pool, raw.cast(), Some(drop_box::<T>), Some(ffi::apr_pool_cleanup_null));
    }
    raw
}

/// Registers `f` to run when `pool` is destroyed.
pub fn on_destroy(pool: *mut ffi::apr_pool_t, f: fn()) {
    unsafe extern "C" fn run(data: *mut c_void) -> ffi::apr_status_t {
        // SAFETY: `data` is the fn pointer stored below.
        let f: fn() = unsafe { std::mem::transmute::<*mut c_void, fn()>(data) };
        crate::apache::guard::catch("pool cleanup", f);
        0
    }
    // SAFETY: a fn pointer fits in a data pointer on every platform httpd runs on.
    unsafe {
        ffi::apr_pool_cleanup_register(pool, f as *mut c_void, Some(run), Some(ffi::apr_pool_cleanup_null));
    }
}

/// Borrows a C string httpd owns, if any.
///
/// # Safety
/// `p` must be NULL or a NUL-terminated string that outlives `'a`.
pub unsafe fn cstr<'a>(p: *const c_char) -> Option<&'a CStr> {
    // SAFETY: per the function contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) })
}
