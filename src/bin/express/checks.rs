//! Checks made before anything is written or started, each failing with a one-line message
//! that says how to fix it.

use std::fs;
use std::net::TcpListener;
use std::path::Path;

pub const APACHE: &str = "/usr/sbin/apache2";
/// The Python the module links (Debian 12's /usr/bin/python3).
const PYTHON_VERSION: &str = "3.11";

/// Apache's binary is installed.
pub fn apache_installed() -> Result<(), String> {
    httpd_at(Path::new(APACHE))
}

fn httpd_at(path: &Path) -> Result<(), String> {
    if path.is_file() {
        Ok(())
    } else {
        Err(format!(
            "Apache is not installed ({} missing): install apache2 (apt-get install apache2)",
            path.display()
        ))
    }
}

/// Nothing listens on host:port yet (checked by binding it).
pub fn port_free(host: &str, port: u16) -> Result<(), String> {
    match TcpListener::bind((host, port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(format!("port {port} is in use: choose another with --port"))
        }
        Err(e) => Err(format!(
            "cannot listen on {host}:{port} ({e}): choose another --host or --port"
        )),
    }
}

/// The WSGI script exists.
pub fn script_exists(script: &Path) -> Result<(), String> {
    if script.is_file() {
        Ok(())
    } else {
        Err(format!(
            "WSGI script {} not found: give the path of an existing .wsgi or .py file",
            script.display()
        ))
    }
}

/// A virtual environment (python-home) was made with the Python the module links: its
/// `pyvenv.cfg` `version` (venv) or `version_info` (virtualenv) is 3.11.x.
/// A python-home without pyvenv.cfg (a plain prefix) is not checked.
pub fn venv_matches(home: &Path) -> Result<(), String> {
    if !home.is_dir() {
        return Err(format!(
            "python home {} does not exist: give an existing venv with --python-home",
            home.display()
        ));
    }
    let Ok(cfg) = fs::read_to_string(home.join("pyvenv.cfg")) else {
        return Ok(());
    };
    let version = cfg.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        matches!(k.trim(), "version" | "version_info").then(|| v.trim().to_string())
    });
    match version {
        Some(v) if !same_minor(&v) => Err(format!(
            "the venv {} was made with Python {v}, but mod_wsgi uses Python {PYTHON_VERSION}: \
             recreate it with /usr/bin/python3 -m venv",
            home.display()
        )),
        _ => Ok(()),
    }
}

fn same_minor(version: &str) -> bool {
    version == PYTHON_VERSION || version.starts_with(&format!("{PYTHON_VERSION}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_httpd_says_to_install_apache2() {
        let err = httpd_at(Path::new("/nonexistent/apache2")).unwrap_err();
        assert!(err.contains("/nonexistent/apache2 missing"), "{err}");
        assert!(err.contains("install apache2"), "{err}");
        assert!(httpd_at(Path::new(APACHE)).is_ok());
    }

    #[test]
    fn versions() {
        assert!(same_minor("3.11.2"));
        assert!(same_minor("3.11.2.final.0"));
        assert!(!same_minor("3.9.2"));
        assert!(!same_minor("3.110.1"));
    }
}
