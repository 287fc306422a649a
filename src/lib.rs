//! mod_wsgi: an Apache httpd 2.4 module that hosts Python WSGI applications.
//!
//! This file holds the module symbol httpd looks up and the hook
//! registration; the hooks themselves live in `apache::hooks`.

mod access;
mod apache;
pub mod config;
pub mod daemon;
mod handler;
mod interpreter_options;
mod preload;
mod python;
mod trusted_proxies;

use apache::ffi;

/// The module record httpd finds with `dlsym(…, "wsgi_module")`.
/// httpd writes module_index, next and dynamic_load_handle into it.
#[unsafe(no_mangle)]
pub static mut wsgi_module: ffi::module = ffi::module {
    version: ffi::MODULE_MAGIC_NUMBER_MAJOR as i32,
    minor_version: ffi::MODULE_MAGIC_NUMBER_MINOR as i32,
    module_index: -1,
    name: c"mod_wsgi.c".as_ptr(),
    dynamic_load_handle: std::ptr::null_mut(),
    next: std::ptr::null_mut(),
    magic: ffi::MODULE_MAGIC_COOKIE as std::ffi::c_ulong,
    rewrite_args: None,
    create_dir_config: Some(apache::config::create_dir_config),
    merge_dir_config: Some(apache::config::merge_dir_config),
    create_server_config: Some(apache::config::create_server_config),
    merge_server_config: Some(apache::config::merge_server_config),
    cmds: apache::commands::COMMANDS.as_ptr(),
    register_hooks: Some(register_hooks),
    flags: 0,
};

unsafe extern "C" fn register_hooks(pool: *mut ffi::apr_pool_t) {
    apache::hooks::register();
    apache::auth::register(pool);
}
