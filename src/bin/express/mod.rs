//! mod_wsgi-express: generates a standalone Apache configuration for one WSGI application
//! and runs Apache with it. One file per concern:
//!
//! - `options.rs`: the command line (clap): commands, options, defaults, help, errors
//! - `checks.rs`: preflight checks with one-line errors (Apache, ports, files, venv)
//! - `httpd_conf.rs`: the httpd.conf text
//! - `virtual_hosts.rs`: its HTTPS and name-based virtual hosts
//! - `mpm.rs`: its event MPM sizing
//! - `logs.rs`: where the logs go
//! - `control_script.rs`: the apachectl and envvars scripts
//! - `reloader.rs`: the file watcher of --reload-on-changes
//! - `server_root.rs`: writing the server root
//! - `module_file.rs`: finding and installing the built module
//! - `python_env.rs`: the (virtual) environment pip installed this binary and module into

pub mod checks;
pub mod control_script;
pub mod httpd_conf;
pub mod logs;
pub mod module_file;
pub mod mpm;
pub mod options;
pub mod python_env;
pub mod reloader;
pub mod server_root;
pub mod virtual_hosts;
