//! Where the logs go: files in the log directory (optionally through rotatelogs), or the
//! terminal.

use super::options::Options;
use std::path::{Path, PathBuf};

pub const ROTATELOGS: &str = "/usr/bin/rotatelogs";
/// rotatelogs starts a new file when one reaches this size, as mod_wsgi-express's default.
const ROTATE_SIZE: &str = "5M";
const STARTUP_LOG_NAME: &str = "startup_log";

/// The resolved log destinations.
pub struct Logs {
    /// The directory the log files are written to (created by setup), when logging to files.
    pub directory: Option<PathBuf>,
    /// The ErrorLog target: a file, /dev/stderr, or a rotatelogs pipe.
    pub error_log: String,
    /// The CustomLog target, with --access-log.
    pub access_log: Option<String>,
    /// httpd's -E file, with --startup-log.
    pub startup_log: Option<String>,
    /// What setup-server prints for the error log: the file (or its name pattern).
    pub error_log_shown: String,
    pub access_log_shown: Option<String>,
}

pub fn plan(o: &Options, server_root: &Path) -> Result<Logs, String> {
    if !o.logs_to_files() {
        return Ok(Logs {
            directory: None,
            error_log: "/dev/stderr".into(),
            access_log: o.access_log.then(|| "/dev/stdout".into()),
            startup_log: o.startup_log.then(|| "/dev/stderr".into()),
            error_log_shown: "(the terminal)".into(),
            access_log_shown: o.access_log.then(|| "(the terminal)".into()),
        });
    }
    let dir = o
        .log_directory
        .clone()
        .unwrap_or_else(|| server_root.to_path_buf());
    if o.rotate_logs && dir.to_string_lossy().contains(char::is_whitespace) {
        return Err(format!(
            "--rotate-logs cannot write to {} (a path with spaces): choose another --log-directory",
            dir.display()
        ));
    }
    let file = |name: &str| dir.join(name).display().to_string();
    // rotatelogs appends the time the file was started to each file's name.
    let target = |name: &str| {
        if o.rotate_logs {
            format!(
                "|{ROTATELOGS} {}.%Y-%m-%d-%H_%M_%S {ROTATE_SIZE}",
                file(name)
            )
        } else {
            file(name)
        }
    };
    let shown = |name: &str| {
        if o.rotate_logs {
            format!("{}.<time started>", file(name))
        } else {
            file(name)
        }
    };
    Ok(Logs {
        error_log: target(&o.error_log_name),
        access_log: o.access_log.then(|| target(&o.access_log_name)),
        startup_log: o.startup_log.then(|| file(STARTUP_LOG_NAME)),
        error_log_shown: shown(&o.error_log_name),
        access_log_shown: o.access_log.then(|| shown(&o.access_log_name)),
        directory: Some(dir),
    })
}

#[cfg(test)]
mod tests {
    use super::super::options::server;
    use super::*;

    #[test]
    fn files_in_the_server_root_by_default() {
        let l = plan(&server("a").unwrap(), Path::new("/r")).unwrap();
        assert_eq!(l.error_log, "/r/error_log");
        assert_eq!(l.access_log, None);
        assert_eq!(l.directory, Some(PathBuf::from("/r")));
    }

    #[test]
    fn directory_names_and_rotation() {
        let o = server("a --log-directory /l --access-log --access-log-name acc --error-log-name err --rotate-logs --startup-log")
            .unwrap();
        let l = plan(&o, Path::new("/r")).unwrap();
        assert_eq!(
            l.error_log,
            "|/usr/bin/rotatelogs /l/err.%Y-%m-%d-%H_%M_%S 5M"
        );
        assert_eq!(
            l.access_log.as_deref(),
            Some("|/usr/bin/rotatelogs /l/acc.%Y-%m-%d-%H_%M_%S 5M")
        );
        assert_eq!(l.startup_log.as_deref(), Some("/l/startup_log"));
    }

    #[test]
    fn terminal() {
        let l = plan(
            &server("a --log-to-terminal --access-log").unwrap(),
            Path::new("/r"),
        )
        .unwrap();
        assert_eq!(
            (l.error_log.as_str(), l.access_log.as_deref()),
            ("/dev/stderr", Some("/dev/stdout"))
        );
        assert_eq!(l.directory, None);
    }
}
