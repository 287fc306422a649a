//! The command line, defined once with clap: every command, option, default and help text
//! (names and defaults as the C mod_wsgi-express's). Clap's errors are turned into one line.

use clap::builder::PossibleValuesParser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const APP: &str = "Application";
const SERVER: &str = "Server";
const HTTPS: &str = "HTTPS";
const CAPACITY: &str = "Processes and capacity";
const TIMEOUTS: &str = "Timeouts (seconds)";
const REQUESTS: &str = "Requests and responses";
const LOGGING: &str = "Logging";

/// Apache's LogLevel names.
const LOG_LEVELS: [&str; 16] = [
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug", "trace1", "trace2",
    "trace3", "trace4", "trace5", "trace6", "trace7", "trace8",
];

/// mod_wsgi-express's defaults that the generated configuration always writes.
pub const STARTUP_TIMEOUT: u32 = 15;
pub const GRACEFUL_TIMEOUT: u32 = 15;
pub const DEFAULT_LOCALE: &str = "C.UTF-8";

#[derive(Parser, Debug)]
#[command(
    name = "mod_wsgi-express",
    about = "Serve a WSGI application with Apache and this mod_wsgi, without writing any \
             Apache configuration.",
    subcommand_required = true,
    disable_version_flag = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A command and its options.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a server root and run Apache in the foreground (Ctrl-C or SIGTERM stops it)
    StartServer(Options),
    /// Write the server root only; run it with its apachectl (start, stop, configtest…)
    SetupServer(Options),
    /// Print the LoadModule line (and WSGIPythonHome for an active venv)
    ModuleConfig(ModuleArgs),
    /// Print the path of the module
    ModuleLocation(ModuleArgs),
    /// Copy the module into Apache's module directory and write its .load file
    InstallModule(InstallArgs),
}

#[derive(Args, Debug)]
pub struct ModuleArgs {
    /// The built module to use [default: libmod_wsgi.so beside this program]
    #[arg(long, value_name = "FILE.so")]
    pub module_path: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    #[command(flatten)]
    pub module: ModuleArgs,
    /// Apache's module directory [default: apxs -q LIBEXECDIR]
    #[arg(long, value_name = "DIR")]
    pub libexecdir: Option<PathBuf>,
    /// Where to write wsgi_rs.load [default: /etc/apache2/mods-available]
    #[arg(long, value_name = "DIR")]
    pub mods_available: Option<PathBuf>,
}

/// How the WSGI application is named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AppType {
    // Plain comments: doc comments would become help text, and turn --help into its long form.
    // A `.wsgi` / `.py` file defining `application`.
    Script,
    // `package.module:callable` (callable defaults to `application`).
    Module,
}

/// Everything the server root of start-server / setup-server is generated from.
#[derive(Args, Debug, Clone)]
pub struct Options {
    /// The WSGI script file; with --application-type module, pkg.mod[:callable]
    #[arg(value_name = "SCRIPT", value_parser = text)]
    pub target: String,

    // --- Application ---
    /// How SCRIPT names the application
    #[arg(long = "application-type", value_name = "TYPE", value_enum, default_value_t = AppType::Script, help_heading = APP)]
    pub app_type: AppType,
    /// The URL the application is mounted at
    #[arg(long, value_name = "URL-PATH", default_value = "/", value_parser = url_path, help_heading = APP)]
    pub mount_point: String,
    /// Serve a file or directory at a sub URL (repeatable)
    #[arg(long = "url-alias", num_args = 2, value_names = ["URL-PATH", "PATH"], value_parser = text, help_heading = APP)]
    pub url_alias: Vec<String>,
    /// Serve the static files of this directory; other URLs go to the application
    #[arg(long, value_name = "DIR", value_parser = path, help_heading = APP)]
    pub document_root: Option<PathBuf>,
    /// The file served for a directory of the document root (DirectoryIndex)
    #[arg(long, value_name = "FILE-NAME", value_parser = file_name, help_heading = APP)]
    pub directory_index: Option<String>,
    /// The Python virtual environment to use [default: the venv mod_wsgi-express is installed in, else $VIRTUAL_ENV]
    #[arg(long, value_name = "DIR", value_parser = path, help_heading = APP)]
    pub python_home: Option<PathBuf>,
    /// A directory added to sys.path (repeatable)
    #[arg(long = "python-path", value_name = "DIR", value_parser = path, help_heading = APP)]
    pub python_path: Vec<PathBuf>,
    /// The current directory of the application's processes
    #[arg(long, value_name = "DIR", value_parser = path, help_heading = APP)]
    pub working_directory: Option<PathBuf>,
    /// Add NAME=VALUE to every request's WSGI environ (SetEnv; repeatable)
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"], value_parser = text, help_heading = APP)]
    pub setenv: Vec<String>,
    /// Pass the server's environment variable NAME into every WSGI environ (PassEnv; repeatable)
    #[arg(long, value_name = "NAME", value_parser = env_name, help_heading = APP)]
    pub passenv: Vec<String>,
    /// Restart the application's processes when a Python file they loaded changes
    #[arg(long, conflicts_with = "embedded_mode", help_heading = APP)]
    pub reload_on_changes: bool,

    // --- Server ---
    /// The address to listen on
    #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1", value_parser = text, help_heading = SERVER)]
    pub host: String,
    /// The HTTP port
    #[arg(long, value_name = "NUMBER", default_value_t = 8000, value_parser = clap::value_parser!(u16).range(1..), help_heading = SERVER)]
    pub port: u16,
    /// The site's host name: a name-based virtual host; other names are refused
    #[arg(long, value_name = "HOSTNAME", value_parser = host_name, help_heading = SERVER)]
    pub server_name: Option<String>,
    /// Another host name of the site; may contain wildcards (repeatable)
    #[arg(long = "server-alias", value_name = "HOSTNAME", value_parser = host_name, help_heading = SERVER)]
    pub server_alias: Vec<String>,
    /// With --server-name, still answer requests from this machine under any name
    #[arg(long, help_heading = SERVER)]
    pub allow_localhost: bool,
    /// Where the configuration, scripts and logs are written [default: /tmp/mod_wsgi-HOST:PORT:UID]
    #[arg(long, value_name = "DIR", value_parser = path, help_heading = SERVER)]
    pub server_root: Option<PathBuf>,
    /// The user Apache's children and the daemon processes run as, when started as root [default: www-data]
    #[arg(long, value_name = "NAME", value_parser = text, help_heading = SERVER)]
    pub user: Option<String>,
    /// Their group, when started as root [default: www-data]
    #[arg(long, value_name = "NAME", value_parser = text, help_heading = SERVER)]
    pub group: Option<String>,
    /// Apache's PID file [default: SERVER-ROOT/httpd.pid]
    #[arg(long, value_name = "FILE", value_parser = path, help_heading = SERVER)]
    pub pid_file: Option<PathBuf>,
    /// A shell script sourced by apachectl before it starts Apache (environment variables)
    #[arg(long, value_name = "FILE", value_parser = path, help_heading = SERVER)]
    pub envvars_script: Option<PathBuf>,
    /// LANG of the server and its processes [default: the --locale]
    #[arg(long, value_name = "NAME", value_parser = locale_name, help_heading = SERVER)]
    pub lang: Option<String>,
    /// LC_ALL of the server and its processes [default: --lang, else C.UTF-8]
    #[arg(long, value_name = "NAME", value_parser = locale_name, help_heading = SERVER)]
    pub locale: Option<String>,
    /// An Apache configuration file included at the end (repeatable)
    #[arg(long = "include-file", value_name = "FILE", value_parser = path, help_heading = SERVER)]
    pub include_files: Vec<PathBuf>,
    /// The mod_wsgi module to load [default: libmod_wsgi.so beside this program]
    #[arg(long, value_name = "FILE.so", help_heading = SERVER)]
    pub module_path: Option<PathBuf>,

    // --- HTTPS ---
    /// The HTTPS port (needs the certificate and key files)
    #[arg(long, value_name = "NUMBER", value_parser = clap::value_parser!(u16).range(1..), help_heading = HTTPS)]
    pub https_port: Option<u16>,
    /// The server certificate (PEM)
    #[arg(long, value_name = "FILE", value_parser = path, help_heading = HTTPS)]
    pub ssl_certificate_file: Option<PathBuf>,
    /// The certificate's private key (PEM, unencrypted)
    #[arg(long, value_name = "FILE", value_parser = path, help_heading = HTTPS)]
    pub ssl_certificate_key_file: Option<PathBuf>,
    /// The intermediate CA certificates of the chain (PEM)
    #[arg(long, value_name = "FILE", value_parser = path, help_heading = HTTPS)]
    pub ssl_certificate_chain_file: Option<PathBuf>,
    /// Redirect every plain HTTP request to HTTPS
    #[arg(long, help_heading = HTTPS)]
    pub https_only: bool,

    // --- Processes and capacity ---
    /// Daemon processes of the application
    #[arg(long, value_name = "NUMBER", default_value_t = 1, value_parser = count, help_heading = CAPACITY)]
    pub processes: u32,
    /// Request threads in each process
    #[arg(long, value_name = "NUMBER", default_value_t = 5, value_parser = count, help_heading = CAPACITY)]
    pub threads: u32,
    /// Run the application in Apache's children rather than in daemon processes
    #[arg(long, help_heading = CAPACITY)]
    pub embedded_mode: bool,
    /// Simultaneous client connections Apache accepts [default: 1.5 x processes x threads + 10, at least 20]
    #[arg(long, value_name = "NUMBER", value_parser = count, conflicts_with = "embedded_mode", help_heading = CAPACITY)]
    pub max_clients: Option<u32>,
    /// Restart a process (with --embedded-mode, an Apache child) after this many requests [default: never]
    #[arg(long, value_name = "NUMBER", value_parser = count, help_heading = CAPACITY)]
    pub maximum_requests: Option<u32>,
    /// Restart each process after this many seconds [default: never]
    #[arg(long, value_name = "SECONDS", value_parser = seconds, conflicts_with = "embedded_mode", help_heading = CAPACITY)]
    pub restart_interval: Option<u32>,
    /// Restart a process after this many seconds of CPU time [default: no limit]
    #[arg(long, value_name = "SECONDS", value_parser = seconds, conflicts_with = "embedded_mode", help_heading = CAPACITY)]
    pub cpu_time_limit: Option<u32>,
    /// Limit each process's data memory to this many bytes (RLIMIT_DATA) [default: no limit]
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(..=i64::MAX as u64), conflicts_with = "embedded_mode", help_heading = CAPACITY)]
    pub memory_limit: Option<u64>,

    // --- Timeouts ---
    /// Restart a process whose request has run this long (per thread)
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = seconds, conflicts_with = "embedded_mode",
        help_heading = TIMEOUTS)]
    pub request_timeout: u32,
    /// Answer 504 to a request that waited this long for a free thread
    #[arg(long, value_name = "SECONDS", default_value_t = 45, value_parser = seconds, conflicts_with = "embedded_mode",
        help_heading = TIMEOUTS)]
    pub queue_timeout: u32,
    /// Give up a read or write on a socket after this long (Timeout)
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = seconds, help_heading = TIMEOUTS)]
    pub socket_timeout: u32,
    /// Give up connecting to a daemon process after this long [default: 15]
    #[arg(long, value_name = "SECONDS", value_parser = seconds, conflicts_with = "embedded_mode", help_heading = TIMEOUTS)]
    pub connect_timeout: Option<u32>,
    /// Restart a process that has not loaded the application after this long [default: 15]
    #[arg(long, value_name = "SECONDS", value_parser = seconds, conflicts_with = "embedded_mode", help_heading = TIMEOUTS)]
    pub startup_timeout: Option<u32>,
    /// Restart a process that has served no request for this long [default: never]
    #[arg(long, value_name = "SECONDS", value_parser = seconds, conflicts_with = "embedded_mode", help_heading = TIMEOUTS)]
    pub inactivity_timeout: Option<u32>,
    /// Time running requests get to finish before a planned restart [default: 15]
    #[arg(long, value_name = "SECONDS", value_parser = seconds, conflicts_with = "embedded_mode", help_heading = TIMEOUTS)]
    pub graceful_timeout: Option<u32>,
    /// Time a stopping process gets before it is killed [default: 5]
    #[arg(long, value_name = "SECONDS", value_parser = seconds, conflicts_with = "embedded_mode", help_heading = TIMEOUTS)]
    pub shutdown_timeout: Option<u32>,
    /// Keep idle client connections open this long; 0 turns keep-alive off
    #[arg(long, value_name = "SECONDS", default_value_t = 2, value_parser = seconds, help_heading = TIMEOUTS)]
    pub keep_alive_timeout: u32,

    // --- Requests and responses ---
    /// Largest request body accepted, in bytes (LimitRequestBody)
    #[arg(long, value_name = "BYTES", default_value_t = 10485760, value_parser = clap::value_parser!(u64).range(..=2147483647), help_heading = REQUESTS)]
    pub limit_request_body: u64,
    /// Buffer for a daemon's response headers, in bytes (0 or at least 8192) [default: 32768]
    #[arg(long, value_name = "BYTES", value_parser = header_buffer, conflicts_with = "embedded_mode", help_heading = REQUESTS)]
    pub header_buffer_size: Option<u32>,
    /// Compress text, HTML, XML, CSS, JavaScript and JSON responses (mod_deflate)
    #[arg(long, help_heading = REQUESTS)]
    pub compress_responses: bool,
    /// Serve Apache's status page at /server-status, to this machine only (mod_status)
    #[arg(long, help_heading = REQUESTS)]
    pub server_status: bool,
    /// A header a trusted proxy sets (X-Forwarded-For, X-Forwarded-Proto…; repeatable)
    #[arg(long = "trust-proxy-header", value_name = "HEADER-NAME", value_parser = header_name, help_heading = REQUESTS)]
    pub trust_proxy_header: Vec<String>,
    /// The address or subnet of a trusted proxy (repeatable)
    #[arg(long = "trust-proxy", value_name = "IP-ADDRESS/SUBNET", value_parser = ip_or_subnet, help_heading = REQUESTS)]
    pub trust_proxy: Vec<String>,

    // --- Logging ---
    /// Log to the terminal instead of files (unless --log-directory is given)
    #[arg(long, help_heading = LOGGING)]
    pub log_to_terminal: bool,
    /// Where the log files go [default: SERVER-ROOT]
    #[arg(long, value_name = "DIR", value_parser = path, help_heading = LOGGING)]
    pub log_directory: Option<PathBuf>,
    /// Apache's LogLevel
    #[arg(long, value_name = "NAME", default_value = "warn", value_parser = PossibleValuesParser::new(LOG_LEVELS), hide_possible_values = true, help_heading = LOGGING)]
    pub log_level: String,
    /// Write an access log (common log format)
    #[arg(long, help_heading = LOGGING)]
    pub access_log: bool,
    /// The error log's file name in the log directory
    #[arg(long, value_name = "FILE-NAME", default_value = "error_log", value_parser = file_name, help_heading = LOGGING)]
    pub error_log_name: String,
    /// The access log's file name in the log directory
    #[arg(long, value_name = "FILE-NAME", default_value = "access_log", value_parser = file_name, help_heading = LOGGING)]
    pub access_log_name: String,
    /// Rotate the log files at 5 MB (rotatelogs; names get a timestamp suffix)
    #[arg(long, help_heading = LOGGING)]
    pub rotate_logs: bool,
    /// Write Apache's startup messages to startup_log in the log directory
    #[arg(long, help_heading = LOGGING)]
    pub startup_log: bool,
}

impl Options {
    /// The daemon process group's name (and the server root's tag): `host:port`.
    pub fn group_name(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// `--url-alias URL PATH` pairs.
    pub fn url_aliases(&self) -> Vec<(String, PathBuf)> {
        self.url_alias
            .chunks_exact(2)
            .map(|p| (p[0].clone(), PathBuf::from(&p[1])))
            .collect()
    }

    /// `--setenv NAME VALUE` pairs.
    pub fn setenv_pairs(&self) -> Vec<(&str, &str)> {
        self.setenv
            .chunks_exact(2)
            .map(|p| (p[0].as_str(), p[1].as_str()))
            .collect()
    }

    /// LC_ALL (and LANG, as the C tool sets both to one value).
    pub fn locale(&self) -> &str {
        self.locale
            .as_deref()
            .or(self.lang.as_deref())
            .unwrap_or(DEFAULT_LOCALE)
    }

    /// True when the logs go to files (--log-directory overrides --log-to-terminal).
    pub fn logs_to_files(&self) -> bool {
        !self.log_to_terminal || self.log_directory.is_some()
    }

    /// True when requests for existing files of the document root are served as files.
    pub fn static_files(&self) -> bool {
        self.document_root.is_some() || self.directory_index.is_some()
    }

    /// Checks what clap cannot: options that only work together, and values checked
    /// against each other. Each error names the option and the fix.
    fn validate(&self) -> Result<(), String> {
        // clap gives --setenv (and --url-alias) values in pairs.
        for pair in self.setenv.chunks_exact(2) {
            let name = &pair[0];
            env_name(name).map_err(|e| format!("invalid value '{name}' for '--setenv': {e}"))?;
        }
        let https = self.https_port.is_some();
        for (name, given) in [
            (
                "--ssl-certificate-file",
                self.ssl_certificate_file.is_some(),
            ),
            (
                "--ssl-certificate-key-file",
                self.ssl_certificate_key_file.is_some(),
            ),
            (
                "--ssl-certificate-chain-file",
                self.ssl_certificate_chain_file.is_some(),
            ),
            ("--https-only", self.https_only),
        ] {
            if given && !https {
                return Err(format!(
                    "{name} needs --https-port: give the HTTPS port too"
                ));
            }
        }
        if https && (self.ssl_certificate_file.is_none() || self.ssl_certificate_key_file.is_none())
        {
            return Err(
                "--https-port needs --ssl-certificate-file and --ssl-certificate-key-file".into(),
            );
        }
        if self.https_port == Some(self.port) {
            return Err(format!(
                "--https-port {} is also the HTTP --port: choose another",
                self.port
            ));
        }
        for (name, given) in [
            ("--server-alias", !self.server_alias.is_empty()),
            ("--allow-localhost", self.allow_localhost),
        ] {
            if given && self.server_name.is_none() {
                return Err(format!(
                    "{name} needs --server-name: give the site's host name"
                ));
            }
        }
        let to_files = self.logs_to_files();
        for (name, given) in [
            ("--rotate-logs", self.rotate_logs),
            ("--error-log-name", self.error_log_name != "error_log"),
            ("--access-log-name", self.access_log_name != "access_log"),
        ] {
            if given && !to_files {
                return Err(format!(
                    "{name} applies to log files, but --log-to-terminal sends the logs to the terminal: \
                     drop one, or give --log-directory"
                ));
            }
        }
        if self.access_log_name != "access_log" && !self.access_log {
            return Err("--access-log-name needs --access-log: add it".into());
        }
        Ok(())
    }

    /// Makes the path options absolute (relative to the current directory), as Apache
    /// resolves relative paths against its ServerRoot instead.
    fn absolutize(&mut self) -> Result<(), String> {
        let cwd = std::env::current_dir()
            .map_err(|e| format!("cannot read the current directory: {e}"))?;
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = cwd.join(&*p);
            }
        };
        for p in [
            &mut self.server_root,
            &mut self.document_root,
            &mut self.working_directory,
            &mut self.pid_file,
            &mut self.envvars_script,
            &mut self.ssl_certificate_file,
            &mut self.ssl_certificate_key_file,
            &mut self.ssl_certificate_chain_file,
            &mut self.log_directory,
        ]
        .into_iter()
        .flatten()
        {
            abs(p);
        }
        self.include_files.iter_mut().for_each(abs);
        Ok(())
    }
}

/// Parses the whole command line (program name first). Help is returned as
/// `Err(Parsed::Help)` so that the caller prints it and exits 0.
pub fn parse<I, T>(args: I) -> Result<Command, Parsed>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    // Errors point to the help of the command they are about.
    let help = match args.get(1).and_then(|a| a.to_str()) {
        Some(cmd) if Cli::command().find_subcommand(cmd).is_some() => {
            format!("see mod_wsgi-express {cmd} --help")
        }
        _ => "see mod_wsgi-express --help".to_string(),
    };
    let cli = Cli::try_parse_from(&args).map_err(|e| match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Parsed::Help(e),
        _ => Parsed::Error(one_line(&e, &help)),
    })?;
    let mut command = cli.command;
    if let Command::StartServer(o) | Command::SetupServer(o) = &mut command {
        if o.python_home.is_none() {
            o.python_home = super::python_env::default_python_home();
        }
        o.validate().map_err(Parsed::Error)?;
        o.absolutize().map_err(Parsed::Error)?;
    }
    Ok(command)
}

/// Why parsing did not give a command.
pub enum Parsed {
    /// `--help` (or `help`): print it, exit 0.
    Help(clap::Error),
    /// A one-line error naming the option and the fix.
    Error(String),
}

/// Clap's error as one line: what is wrong, naming the option, and where to look.
fn one_line(e: &clap::Error, help: &str) -> String {
    let ctx = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => Some(v.join(", ")),
        _ => None,
    };
    match e.kind() {
        ErrorKind::UnknownArgument => {
            let arg = ctx(ContextKind::InvalidArg).unwrap_or_default();
            if !arg.starts_with('-') {
                return format!("unexpected argument {arg:?}: give one SCRIPT, then options");
            }
            let hint = ctx(ContextKind::SuggestedArg)
                .map(|s| format!(" (did you mean {s}?)"))
                .unwrap_or_default();
            format!("unknown option {arg}{hint}: {help}")
        }
        ErrorKind::InvalidSubcommand => {
            let cmd = ctx(ContextKind::InvalidSubcommand).unwrap_or_default();
            format!("unknown command {cmd:?}: {help}")
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            format!("no command given: {help}")
        }
        ErrorKind::MissingRequiredArgument => {
            let missing = ctx(ContextKind::InvalidArg).unwrap_or_default();
            if missing.contains("SCRIPT") {
                "missing SCRIPT: give the WSGI script file (or pkg.mod:app)".into()
            } else {
                format!("missing {missing}: {help}")
            }
        }
        _ => {
            // Clap's first line names the option and the value; the rest is usage.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid command line");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            format!("{first}: {help}")
        }
    }
}

// --- Value parsers: each value ends up in httpd.conf or a shell script, so characters that
// would end a quoted string there, or a line, are refused. ---

fn text(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.chars()
        .any(|c| c.is_control() || matches!(c, '"' | '\'' | '\\'))
    {
        return Err("must not contain quotes, backslashes or control characters".into());
    }
    Ok(s.to_string())
}

fn path(s: &str) -> Result<PathBuf, String> {
    text(s).map(PathBuf::from)
}

fn url_path(s: &str) -> Result<String, String> {
    let s = text(s)?;
    if !s.starts_with('/') || s.contains(char::is_whitespace) {
        return Err("must start with '/' and contain no spaces".into());
    }
    Ok(s)
}

fn file_name(s: &str) -> Result<String, String> {
    let s = text(s)?;
    if s.contains('/') || s.contains(char::is_whitespace) || s == "." || s == ".." {
        return Err("must be a plain file name (no '/' or spaces)".into());
    }
    Ok(s)
}

fn env_name(s: &str) -> Result<String, String> {
    let ok = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(s.to_string())
    } else {
        Err("must be a variable name (letters, digits, '_')".into())
    }
}

fn header_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(s.to_string())
    } else {
        Err("must be an HTTP header name (letters, digits, '-')".into())
    }
}

fn host_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*' | '?' | '_'));
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err("must be a host name (letters, digits, '-', '.', wildcards '*' '?')".into())
    }
}

fn ip_or_subnet(s: &str) -> Result<String, String> {
    let (ip, prefix) = match s.split_once('/') {
        Some((ip, prefix)) => (ip, Some(prefix)),
        None => (s, None),
    };
    let bits = match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => 32,
        Ok(std::net::IpAddr::V6(_)) => 128,
        Err(_) => return Err("must be an IP address or subnet, such as 10.0.0.0/8".into()),
    };
    match prefix.map(str::parse::<u8>) {
        None => Ok(s.to_string()),
        Some(Ok(n)) if n <= bits => Ok(s.to_string()),
        Some(_) => Err(format!("the subnet's prefix length must be 0 to {bits}")),
    }
}

fn locale_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@'));
    if ok {
        Ok(s.to_string())
    } else {
        Err("must be a locale name such as C.UTF-8 or en_US.UTF-8".into())
    }
}

/// A count of at least 1 that mod_wsgi's directive parser accepts (a C int).
fn count(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if (1..=i32::MAX as u32).contains(&n) => Ok(n),
        Ok(_) => Err("must be at least 1".into()),
        Err(_) => Err("must be a whole number".into()),
    }
}

fn seconds(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n <= i32::MAX as u32 => Ok(n),
        _ => Err("must be a whole number of seconds".into()),
    }
}

fn header_buffer(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n == 0 || (8192..=i32::MAX as u32).contains(&n) => Ok(n),
        Ok(_) => Err("must be 0 (the default) or at least 8192".into()),
        Err(_) => Err("must be a whole number of bytes".into()),
    }
}

/// Parses `setup-server ARGS` (for unit tests).
#[cfg(test)]
pub fn server(args: &str) -> Result<Options, String> {
    let argv = ["mod_wsgi-express", "setup-server"]
        .into_iter()
        .map(String::from)
        .chain(args.split_whitespace().map(String::from));
    match parse(argv) {
        Ok(Command::SetupServer(o)) => Ok(o),
        Ok(other) => panic!("{other:?}"),
        Err(Parsed::Help(_)) => Err("help".into()),
        Err(Parsed::Error(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_options() {
        let o =
            server("app.wsgi --port=9000 --threads 3 --python-path /a --python-path /b").unwrap();
        assert_eq!(o.target, "app.wsgi");
        assert_eq!((o.port, o.threads, o.processes), (9000, 3, 1));
        assert_eq!(
            o.python_path,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!((o.request_timeout, o.queue_timeout), (60, 45));
        assert_eq!(
            (o.socket_timeout, o.keep_alive_timeout, o.limit_request_body),
            (60, 2, 10485760)
        );
        assert_eq!(o.log_level, "warn");
        assert_eq!(o.locale(), "C.UTF-8");
        assert_eq!(o.group_name(), "127.0.0.1:9000");
    }

    #[test]
    fn pairs_take_two_values() {
        let o = server(
            "--url-alias /static /srv/static app.wsgi --embedded-mode --setenv A 1 --setenv B two",
        )
        .unwrap();
        assert_eq!(
            o.url_aliases(),
            vec![("/static".into(), PathBuf::from("/srv/static"))]
        );
        assert_eq!(o.setenv_pairs(), vec![("A", "1"), ("B", "two")]);
        assert!(o.embedded_mode);
    }

    #[test]
    fn lang_and_locale() {
        assert_eq!(
            server("a --lang en_US.UTF-8").unwrap().locale(),
            "en_US.UTF-8"
        );
        assert_eq!(
            server("a --lang en_US.UTF-8 --locale de_DE.UTF-8")
                .unwrap()
                .locale(),
            "de_DE.UTF-8"
        );
    }

    #[test]
    fn errors_are_one_line_naming_the_option() {
        let err = |args: &str| server(args).unwrap_err();
        let e = err("a --port");
        assert!(e.contains("--port"), "{e}");
        assert!(
            err("a b").contains("unexpected argument \"b\""),
            "{}",
            err("a b")
        );
        assert!(err("--bogus 1 a").contains("unknown option --bogus"));
        assert!(
            err("--prot 1 a").contains("did you mean --port"),
            "{}",
            err("--prot 1 a")
        );
        assert!(
            err("--port x a").contains("'--port <NUMBER>'"),
            "{}",
            err("--port x a")
        );
        assert!(err("--threads 0 a").contains("at least 1"));
        assert!(err("").contains("missing SCRIPT"));
        assert!(err("a --mount-point app").contains("must start with '/'"));
        assert!(err("a --log-level loud").contains("--log-level"));
        assert!(err("a --setenv 1X v").contains("'--setenv'"));
        assert!(err("a --python-path /x\"y").contains("quotes"));
        assert!(err("a --https-port 8443").contains("needs --ssl-certificate-file"));
        assert!(
            err("a --ssl-certificate-file c").contains("--ssl-certificate-file needs --https-port")
        );
        assert!(err("a --https-only").contains("--https-only needs --https-port"));
        assert!(err("a --server-alias x").contains("--server-alias needs --server-name"));
        assert!(err("a --allow-localhost").contains("--allow-localhost needs --server-name"));
        assert!(err("a --embedded-mode --max-clients 9").contains("cannot be used with"));
        assert!(err("a --embedded-mode --reload-on-changes").contains("cannot be used with"));
        assert!(err("a --embedded-mode --queue-timeout 5").contains("cannot be used with"));
        assert!(err("a --embedded-mode --startup-timeout 9").contains("'--embedded-mode'"));
        assert!(err("a --log-to-terminal --rotate-logs").contains("--rotate-logs"));
        assert!(err("a --access-log-name x").contains("needs --access-log"));
        assert!(err("a --header-buffer-size 100").contains("at least 8192"));
        assert!(err("a --trust-proxy 10.0.0.0/33").contains("prefix length"));
        assert!(err("a --trust-proxy proxy.local").contains("'--trust-proxy"));
        assert!(server("a --trust-proxy ::1 --trust-proxy 10.1.0.0/16").is_ok());
        for e in ["a --port", "--bogus a", "a --https-port 8443", "a --port x"] {
            assert_eq!(err(e).lines().count(), 1, "{}", err(e));
        }
    }

    #[test]
    fn log_directory_overrides_log_to_terminal() {
        let o = server("a --log-to-terminal --log-directory /l --rotate-logs").unwrap();
        assert!(o.logs_to_files());
        assert!(!server("a --log-to-terminal").unwrap().logs_to_files());
    }
}
