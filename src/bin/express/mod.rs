//! mod_wsgi-express: generates a standalone Apache configuration for one WSGI application
//! and runs Apache with it. One file per concern:
//!
//! - `options.rs`: the command line of start-server / setup-server
//! - `checks.rs`: preflight checks with one-line errors (Apache, port, script, venv)
//! - `httpd_conf.rs`: the httpd.conf text
//! - `server_root.rs`: writing the server root (httpd.conf, apachectl, module .wsgi)
//! - `module_file.rs`: finding and installing the built module
//! - `python_env.rs`: the (virtual) environment pip installed this binary and module into

pub mod checks;
pub mod httpd_conf;
pub mod module_file;
pub mod options;
pub mod python_env;
pub mod server_root;
