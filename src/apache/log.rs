//! Writing to httpd's error log.

use std::ffi::CString;
use std::sync::atomic::{AtomicPtr, Ordering};

use super::ffi;
use crate::python::Level;

/// The server whose log takes messages not tied to a request; set once the
/// configuration is final (post_config in the parent, child_init in children).
static MAIN_SERVER: AtomicPtr<ffi::server_rec> = AtomicPtr::new(std::ptr::null_mut());

pub fn set_main_server(s: *mut ffi::server_rec) {
    MAIN_SERVER.store(s, Ordering::Release);
}

fn apache_level(level: Level) -> i32 {
    (match level {
        Level::Error => ffi::APLOG_ERR,
        Level::Warning => ffi::APLOG_WARNING,
        Level::Notice => ffi::APLOG_NOTICE,
        Level::Info => ffi::APLOG_INFO,
        Level::Debug => ffi::APLOG_DEBUG,
    }) as i32
}

fn c_message(msg: &str) -> CString {
    CString::new(msg.replace('\0', "\\0")).expect("NULs replaced")
}

fn module_index() -> i32 {
    // SAFETY: httpd sets module_index once when the module is loaded, before any hook runs.
    unsafe { (*std::ptr::addr_of!(crate::wsgi_module)).module_index }
}

/// The descriptors the main server's error log is written through (none
/// for syslog), which a daemon process keeps.
pub fn descriptors() -> Vec<i32> {
    let s = MAIN_SERVER.load(Ordering::Acquire);
    if s.is_null() {
        return Vec::new();
    }
    let mut fd: ffi::apr_os_file_t = -1;
    // SAFETY: `s` is a server_rec of the live configuration; its error_log is
    // NULL or an open APR file, whose descriptor apr_os_file_get copies out.
    let found = unsafe { !(*s).error_log.is_null() && ffi::apr_os_file_get(&mut fd, (*s).error_log) == 0 };
    if found && fd >= 0 { vec![fd] } else { Vec::new() }
}

/// Logs against the main server (or to stderr before there is one).
pub fn server(level: Level, msg: &str) {
    let s = MAIN_SERVER.load(Ordering::Acquire);
    let text = c_message(msg);
    // SAFETY: "%s" consumes exactly the one C string passed; `s` is NULL or a
    // server_rec of the live configuration (ap_log_error_ accepts NULL).
    unsafe {
        ffi::ap_log_error_(c"wsgi".as_ptr(), 0, module_index(), apache_level(level), 0, s, c"%s".as_ptr(), text.as_ptr());
    }
}

/// Logs with the request's client and request context.
pub fn request(r: *const ffi::request_rec, level: Level, msg: &str) {
    request_with_status(r, level, 0, msg);
}

/// As [`request`], with an OS error number httpd prints before the message.
pub fn request_with_status(r: *const ffi::request_rec, level: Level, errno: i32, msg: &str) {
    let text = c_message(msg);
    // SAFETY: `r` is the live request of the calling handler; "%s" takes one
    // string; APR status codes for OS errors are the errno values.
    unsafe {
        ffi::ap_log_rerror_(c"wsgi".as_ptr(), 0, module_index(), apache_level(level), errno, r, c"%s".as_ptr(), text.as_ptr());
    }
}

/// Last-resort logging, usable even while panicking.
pub fn process_error(msg: &str) {
    server(Level::Error, msg);
}
