//! The httpd hooks: each is short, catches panics, and delegates.

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering};

use super::config::server_state;
use super::request::Request;
use super::{ffi, guard, log, pool};
use crate::python::{self, Level};

pub fn register() {
    // SAFETY: plain hook registration from register_hooks.
    unsafe {
        ffi::ap_hook_pre_config(Some(pre_config), std::ptr::null(), std::ptr::null(), ffi::APR_HOOK_MIDDLE as c_int);
        ffi::ap_hook_post_config(Some(post_config), std::ptr::null(), std::ptr::null(), ffi::APR_HOOK_MIDDLE as c_int);
        ffi::ap_hook_test_config(Some(test_config), std::ptr::null(), std::ptr::null(), ffi::APR_HOOK_MIDDLE as c_int);
        ffi::ap_hook_child_init(Some(child_init), std::ptr::null(), std::ptr::null(), ffi::APR_HOOK_MIDDLE as c_int);
        ffi::ap_hook_translate_name(Some(translate_name), std::ptr::null(), std::ptr::null(), ffi::APR_HOOK_MIDDLE as c_int);
        ffi::ap_hook_handler(Some(handler), std::ptr::null(), std::ptr::null(), ffi::APR_HOOK_MIDDLE as c_int);
    }
}

/// Every server record of the configuration, main server first.
fn servers(s: *mut ffi::server_rec) -> Vec<*mut ffi::server_rec> {
    let mut out = Vec::new();
    let mut cur = s;
    while !cur.is_null() {
        out.push(cur);
        // SAFETY: httpd links server records through `next`.
        cur = unsafe { (*cur).next };
    }
    out
}

/// Checks that need the whole configuration (e.g. process groups named
/// before or without their WSGIDaemonProcess).
fn check_configuration(s: *mut ffi::server_rec) -> Result<(), String> {
    let configs: Vec<_> = servers(s).into_iter().map(|s| &server_state(s).config).collect();
    crate::config::check(&configs).map_err(|e| e.to_string())
}

unsafe extern "C" fn pre_config(_pconf: *mut ffi::apr_pool_t, _plog: *mut ffi::apr_pool_t, _ptemp: *mut ffi::apr_pool_t) -> c_int {
    // Each reading of the configuration (restarts included) starts afresh.
    guard::catch("pre_config", crate::config::forget_embedded_hook_scripts);
    ffi::OK as c_int
}

unsafe extern "C" fn test_config(_pconf: *mut ffi::apr_pool_t, s: *mut ffi::server_rec) {
    guard::catch("test_config", || {
        if let Err(msg) = check_configuration(s) {
            // test_config cannot fail by its return value; configtest must.
            eprintln!("mod_wsgi: {msg}");
            std::process::exit(1);
        }
    });
}

unsafe extern "C" fn post_config(pconf: *mut ffi::apr_pool_t, _plog: *mut ffi::apr_pool_t, _ptemp: *mut ffi::apr_pool_t, s: *mut ffi::server_rec) -> c_int {
    guard::catch("post_config", || {
        log::set_main_server(s);
        let component = format!("mod_wsgi/{} Python/{}", python::MOD_WSGI_VERSION_STRING, python::interpreter::version());
        // SAFETY: httpd copies nothing; the string is placed in pconf, which outlives its use.
        unsafe { ffi::ap_add_version_component(pconf, pool::pstrdup(pconf, component.as_bytes())) };
        let started = check_configuration(s).and_then(|()| {
            // httpd reads its configuration twice at startup; daemon processes
            // belong to the real run, not the first (pre-config) pass.
            // SAFETY: a plain state query.
            let pre_config = unsafe { ffi::ap_state_query(ffi::AP_SQ_MAIN_STATE as c_int) } == ffi::AP_SQ_MS_CREATE_PRE_CONFIG as c_int;
            if pre_config {
                return Ok(());
            }
            let configs: Vec<&'static crate::config::ServerConfig> = servers(s).into_iter().map(|s| &server_state(s).config).collect();
            crate::daemon::groups::start_all(pconf, s, &server_state(s).config, &configs)
        });
        match started {
            Ok(()) => ffi::OK as c_int,
            Err(msg) => {
                log::server(Level::Error, &format!("mod_wsgi: {msg}"));
                ffi::HTTP_INTERNAL_SERVER_ERROR as c_int
            }
        }
    })
    .unwrap_or(ffi::HTTP_INTERNAL_SERVER_ERROR as c_int)
}

/// Whether this Apache child runs requests on several threads / processes.
static MULTITHREAD: AtomicBool = AtomicBool::new(false);
static MULTIPROCESS: AtomicBool = AtomicBool::new(false);

pub fn mpm_is_multithread() -> bool {
    MULTITHREAD.load(Ordering::Relaxed)
}
pub fn mpm_is_multiprocess() -> bool {
    MULTIPROCESS.load(Ordering::Relaxed)
}

fn mpm_query(code: u32) -> c_int {
    let mut value: c_int = 0;
    // SAFETY: ap_mpm_query writes one int.
    unsafe { ffi::ap_mpm_query(code as c_int, &mut value) };
    value
}

unsafe extern "C" fn child_init(p: *mut ffi::apr_pool_t, s: *mut ffi::server_rec) {
    guard::catch("child_init", || {
        log::set_main_server(s);
        crate::daemon::groups::close_listeners_in_child();
        super::retained::wipe();
        super::malloc_arenas::limit_in_child();
        python::set_server_log(log::server);
        let threaded = mpm_query(ffi::AP_MPMQ_IS_THREADED);
        MULTITHREAD.store(threaded == ffi::AP_MPMQ_STATIC as c_int || threaded == ffi::AP_MPMQ_DYNAMIC as c_int, Ordering::Relaxed);
        MULTIPROCESS.store(mpm_query(ffi::AP_MPMQ_MAX_DAEMONS) > 1, Ordering::Relaxed);

        let config = &server_state(s).config;
        // Access, auth and dispatch scripts run here even when applications may not.
        if config.restrict_embedded() && !crate::config::embedded_hook_scripts() {
            return;
        }
        let options = python::interpreter::Options {
            maximum_processes: mpm_query(ffi::AP_MPMQ_MAX_DAEMONS).max(1) as u32,
            threads_per_process: mpm_query(ffi::AP_MPMQ_MAX_THREADS).max(1) as u32,
            ..crate::interpreter_options::for_server(config)
        };
        match python::interpreter::start(&options) {
            Ok(()) => {
                // WSGIDestroyInterpreter Off: the child exits without finalising Python.
                if config.destroy_interpreter() {
                    pool::on_destroy(p, python::interpreter::stop);
                }
                let configs: Vec<_> = servers(s).into_iter().map(|s| &server_state(s).config).collect();
                crate::preload::run(&configs, "");
            }
            Err(msg) => log::server(Level::Error, &format!("mod_wsgi (pid={}): {msg}", std::process::id())),
        }
    });
}

unsafe extern "C" fn translate_name(r: *mut ffi::request_rec) -> c_int {
    guard::catch("translate_name", || {
        // SAFETY: httpd passes a live request.
        let Some(mut req) = (unsafe { Request::from_raw(r) }) else { return ffi::DECLINED };
        crate::handler::translate(&mut req)
    })
    .unwrap_or(ffi::HTTP_INTERNAL_SERVER_ERROR as c_int)
}

unsafe extern "C" fn handler(r: *mut ffi::request_rec) -> c_int {
    guard::catch("handler", || {
        // SAFETY: httpd passes a live request.
        let Some(mut req) = (unsafe { Request::from_raw(r) }) else { return ffi::DECLINED };
        crate::handler::handle(&mut req)
    })
    .unwrap_or(ffi::HTTP_INTERNAL_SERVER_ERROR as c_int)
}
