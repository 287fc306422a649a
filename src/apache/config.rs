//! Per-server and per-directory configuration records, owned by httpd's pools.

use std::collections::HashMap;
use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};

use super::regex::Regex;
use super::{ffi, guard, pool};
use crate::config::{DaemonRegistry, ServerConfig, Settings};

/// What the module keeps per server: the parsed configuration, plus the
/// compiled WSGIScriptAliasMatch patterns keyed by their source.
#[derive(Default)]
pub struct ServerState {
    pub config: ServerConfig,
    pub regexes: HashMap<String, std::sync::Arc<Regex>>,
    /// Every WSGIDaemonProcess of the configuration (main server's record only).
    pub registry: DaemonRegistry,
}

/// The main server's record while the configuration is being read, so a
/// virtual host can see the daemon groups defined globally.
static MAIN_SERVER_STATE: AtomicPtr<ServerState> = AtomicPtr::new(std::ptr::null_mut());

/// The main server's record (which holds the daemon registry).
pub fn main_server_state() -> Option<&'static ServerState> {
    // SAFETY: NULL or the main server's record in the live configuration pool.
    unsafe { MAIN_SERVER_STATE.load(Ordering::Acquire).as_ref() }
}

/// The configuration-wide daemon registry, while directives are read.
pub fn main_server_registry() -> Option<&'static mut DaemonRegistry> {
    // SAFETY: NULL or the main server's record in the live configuration
    // pool; directives are read on one thread and a virtual host's
    // directive never holds the main server's record otherwise.
    unsafe { MAIN_SERVER_STATE.load(Ordering::Acquire).as_mut().map(|s| &mut s.registry) }
}

fn module() -> *const ffi::module {
    std::ptr::addr_of!(crate::wsgi_module)
}

/// The record of server `s`.
pub fn server_state(s: *const ffi::server_rec) -> &'static ServerState {
    // SAFETY: create/merge_server_config put a ServerState in every server's
    // slot; it lives as long as the configuration.
    unsafe { &*(ffi::ap_get_module_config((*s).module_config, module()) as *const ServerState) }
}

/// Mutable access while directives are read (single-threaded).
///
/// # Safety
/// Only during configuration reading, when nothing else reads the record.
pub unsafe fn server_state_mut(s: *const ffi::server_rec) -> &'static mut ServerState {
    // SAFETY: as server_state, plus the caller's exclusivity guarantee.
    unsafe { &mut *(ffi::ap_get_module_config((*s).module_config, module()) as *mut ServerState) }
}

/// The merged directory settings of a request.
pub fn dir_settings(per_dir: *mut ffi::ap_conf_vector_t) -> &'static Settings {
    // SAFETY: create/merge_dir_config put Settings in every directory slot.
    unsafe { &*(ffi::ap_get_module_config(per_dir, module()) as *const Settings) }
}

/// Runs a configuration callback; a panic there leaves no usable
/// configuration, so the process stops rather than run half-configured.
fn or_abort(what: &str, f: impl FnOnce() -> *mut c_void) -> *mut c_void {
    guard::catch(what, f).unwrap_or_else(|| std::process::abort())
}

pub unsafe extern "C" fn create_server_config(p: *mut ffi::apr_pool_t, s: *mut ffi::server_rec) -> *mut c_void {
    or_abort("create_server_config", || {
        let state = pool::attach(p, ServerState::default());
        // SAFETY: httpd passes the server being created.
        if unsafe { (*s).is_virtual } == 0 {
            MAIN_SERVER_STATE.store(state, Ordering::Release);
        }
        state.cast()
    })
}

pub unsafe extern "C" fn merge_server_config(p: *mut ffi::apr_pool_t, base: *mut c_void, add: *mut c_void) -> *mut c_void {
    or_abort("merge_server_config", || {
        // SAFETY: both records were made by create_server_config.
        let (base, add) = unsafe { (&*(base as *const ServerState), &*(add as *const ServerState)) };
        let mut regexes = base.regexes.clone();
        regexes.extend(add.regexes.iter().map(|(k, v)| (k.clone(), v.clone())));
        let config = ServerConfig::merge(&base.config, &add.config);
        pool::attach(p, ServerState { config, regexes, registry: DaemonRegistry::default() }).cast()
    })
}

pub unsafe extern "C" fn create_dir_config(p: *mut ffi::apr_pool_t, _dir: *mut c_char) -> *mut c_void {
    or_abort("create_dir_config", || pool::attach(p, Settings::default()).cast())
}

pub unsafe extern "C" fn merge_dir_config(p: *mut ffi::apr_pool_t, base: *mut c_void, add: *mut c_void) -> *mut c_void {
    or_abort("merge_dir_config", || {
        // SAFETY: both records were made by create_dir_config.
        let (base, add) = unsafe { (&*(base as *const Settings), &*(add as *const Settings)) };
        pool::attach(p, Settings::merge(base, add)).cast()
    })
}
