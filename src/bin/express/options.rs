//! Command-line options of `start-server` / `setup-server`, parsed by hand (names as the C
//! mod_wsgi-express's).

use std::path::PathBuf;

/// How the WSGI application is named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppType {
    /// A `.wsgi` / `.py` file defining `application`.
    Script,
    /// `package.module:callable` (callable defaults to `application`).
    Module,
}

/// Everything the server root is generated from.
#[derive(Debug, Clone)]
pub struct Options {
    pub target: String,
    pub app_type: AppType,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub group: Option<String>,
    pub processes: u32,
    pub threads: u32,
    pub python_home: Option<PathBuf>,
    pub python_path: Vec<PathBuf>,
    pub url_aliases: Vec<(String, PathBuf)>,
    pub mount_point: String,
    pub reload_on_changes: bool,
    pub maximum_requests: Option<u32>,
    pub request_timeout: u32,
    pub queue_timeout: u32,
    pub server_root: Option<PathBuf>,
    pub include_files: Vec<PathBuf>,
    pub log_to_terminal: bool,
    pub embedded_mode: bool,
    pub module_path: Option<PathBuf>,
}

impl Options {
    fn new(target: String) -> Options {
        Options {
            target,
            app_type: AppType::Script,
            host: "127.0.0.1".into(),
            port: 8000,
            user: None,
            group: None,
            processes: 1,
            threads: 5,
            python_home: super::python_env::default_python_home(),
            python_path: Vec::new(),
            url_aliases: Vec::new(),
            mount_point: "/".into(),
            reload_on_changes: false,
            maximum_requests: None,
            request_timeout: 60,
            queue_timeout: 45,
            server_root: None,
            include_files: Vec::new(),
            log_to_terminal: false,
            embedded_mode: false,
            module_path: None,
        }
    }

    /// The daemon process group's name (and the server root's tag): `host:port`.
    pub fn group_name(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Parses the arguments after the subcommand: one SCRIPT (or module) and options, each
/// option as `--name value` or `--name=value`.
pub fn parse(args: &[String]) -> Result<Options, String> {
    let mut target = None;
    let mut opts = Options::new(String::new());
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let Some(name) = arg.strip_prefix("--") else {
            if target.replace(arg.clone()).is_some() {
                return Err(format!("unexpected argument {arg:?}: give one SCRIPT"));
            }
            continue;
        };
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name, None),
        };
        // Flags take no value.
        let flag = match name {
            "log-to-terminal" => Some(&mut opts.log_to_terminal),
            "embedded-mode" => Some(&mut opts.embedded_mode),
            "reload-on-changes" => Some(&mut opts.reload_on_changes),
            _ => None,
        };
        if let Some(flag) = flag {
            if inline.is_some() {
                return Err(format!("--{name} takes no value"));
            }
            *flag = true;
            continue;
        }
        let mut value = || -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            let v = args
                .get(i)
                .cloned()
                .ok_or(format!("--{name} needs a value"))?;
            i += 1;
            Ok(v)
        };
        match name {
            "port" => opts.port = number(name, &value()?)?,
            "host" => opts.host = value()?,
            "user" => opts.user = Some(value()?),
            "group" => opts.group = Some(value()?),
            "processes" => opts.processes = positive(name, &value()?)?,
            "threads" => opts.threads = positive(name, &value()?)?,
            "python-home" => opts.python_home = Some(PathBuf::from(value()?)),
            "python-path" => opts.python_path.push(PathBuf::from(value()?)),
            "url-alias" => {
                let url = value()?;
                let dir = value()?;
                opts.url_aliases.push((url, PathBuf::from(dir)));
            }
            "mount-point" => {
                let m = value()?;
                if !m.starts_with('/') {
                    return Err(format!("--mount-point must start with '/', got {m:?}"));
                }
                opts.mount_point = m;
            }
            "maximum-requests" => opts.maximum_requests = Some(number(name, &value()?)?),
            "request-timeout" => opts.request_timeout = number(name, &value()?)?,
            "queue-timeout" => opts.queue_timeout = number(name, &value()?)?,
            "server-root" => opts.server_root = Some(PathBuf::from(value()?)),
            "include-file" => opts.include_files.push(PathBuf::from(value()?)),
            "module-path" => opts.module_path = Some(PathBuf::from(value()?)),
            "application-type" => {
                opts.app_type = match value()?.as_str() {
                    "script" => AppType::Script,
                    "module" => AppType::Module,
                    other => {
                        return Err(format!(
                            "--application-type must be script or module, got {other:?}"
                        ));
                    }
                }
            }
            _ => return Err(format!("unknown option --{name} (see --help)")),
        }
    }
    opts.target = target.ok_or("missing SCRIPT: give the WSGI script file (or pkg.mod:app)")?;
    Ok(opts)
}

fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("--{name} needs a number, got {v:?}"))
}

fn positive(name: &str, v: &str) -> Result<u32, String> {
    match number(name, v)? {
        0 => Err(format!("--{name} must be at least 1")),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn defaults_and_options() {
        let o = parse(&args(
            "app.wsgi --port=9000 --threads 3 --python-path /a --python-path /b",
        ))
        .unwrap();
        assert_eq!(o.target, "app.wsgi");
        assert_eq!((o.port, o.threads, o.processes), (9000, 3, 1));
        assert_eq!(
            o.python_path,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!((o.request_timeout, o.queue_timeout), (60, 45));
        assert_eq!(o.group_name(), "127.0.0.1:9000");
    }

    #[test]
    fn url_alias_takes_two_values() {
        let o = parse(&args(
            "--url-alias /static /srv/static app.wsgi --embedded-mode",
        ))
        .unwrap();
        assert_eq!(
            o.url_aliases,
            vec![("/static".into(), PathBuf::from("/srv/static"))]
        );
        assert!(o.embedded_mode);
    }

    #[test]
    fn errors() {
        assert!(
            parse(&args("--port"))
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(parse(&args("a b")).unwrap_err().contains("unexpected"));
        assert!(
            parse(&args("--bogus 1 a"))
                .unwrap_err()
                .contains("unknown option")
        );
        assert!(parse(&args("--port x a")).unwrap_err().contains("number"));
        assert!(parse(&args("")).unwrap_err().contains("missing SCRIPT"));
    }
}
