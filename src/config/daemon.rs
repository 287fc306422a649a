//! WSGIDaemonProcess: one daemon process group and all its options.

use std::collections::HashSet;
use std::time::Duration;

use super::error::{ConfigError, msg};
use super::identity::{group_name, resolve_group, resolve_user, user_name};
use super::tokenize::split_option;

/// header-buffer-size when unset or 0.
pub const DEFAULT_HEADER_BUFFER_SIZE: u32 = 32768;
/// response-buffer-size when unset or 0.
pub const DEFAULT_RESPONSE_BUFFER_SIZE: u32 = 65536;
/// request-buffer-size when unset.
pub const DEFAULT_REQUEST_BUFFER_SIZE: u32 = 1 << 20;
/// Largest request-buffer-size: each request in an Apache child may hold this much.
pub const MAX_REQUEST_BUFFER_SIZE: u32 = 1 << 30;
/// Largest threads= C 4.9.4 accepts (its thread stack index is 16 bits).
pub const MAX_THREADS: u32 = 65533;

const DEFINITION: &str = "daemon process";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonProcess {
    pub name: String,

    /// user=: None runs as Apache's User. `#uid` is stored as the user's name.
    pub user: Option<String>,
    pub uid: Option<u32>,
    /// group=: None runs as Apache's Group.
    pub group: Option<String>,
    pub gid: Option<u32>,
    /// supplementary-groups=: Some(empty) means "no supplementary groups",
    /// None means initgroups() for the user.
    pub supplementary_groups: Option<Vec<String>>,
    pub supplementary_gids: Vec<u32>,

    pub processes: u32,
    /// processes= was given at all: wsgi.multiprocess is then True even for 1.
    pub multiprocess: bool,
    /// 0 is C's "managed process" mode (no request threads).
    pub threads: u32,

    /// umask= (octal); None inherits Apache's.
    pub umask: Option<u32>,
    pub chroot: Option<String>,
    /// home=: working directory (absolute); None is the user's home when the
    /// daemon runs as a different user than Apache.
    pub home: Option<String>,
    /// lang= (LANG) and locale= (LC_ALL).
    pub lang: Option<String>,
    pub locale: Option<String>,
    /// display-name=: see [`DaemonProcess::process_title`].
    pub display_name: Option<String>,

    pub python_home: Option<String>,
    /// python-path=, split on ':'.
    pub python_path: Vec<String>,
    pub python_eggs: Option<String>,

    /// stack-size= in bytes; None is the system default.
    pub stack_size: Option<u32>,
    /// 0 disables each of these limits.
    pub maximum_requests: u32,
    pub cpu_time_limit: Duration,
    pub cpu_priority: i32,
    pub memory_limit: u64,
    pub virtual_memory_limit: u64,

    pub startup_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub deadlock_timeout: Duration,
    pub inactivity_timeout: Duration,
    pub request_timeout: Duration,
    pub graceful_timeout: Duration,
    pub eviction_timeout: Duration,
    pub restart_interval: Duration,
    pub connect_timeout: Duration,
    /// ZERO means Apache's Timeout directive.
    pub socket_timeout: Duration,
    pub queue_timeout: Duration,
    /// Already falls back to socket_timeout when 0, as in C.
    pub response_socket_timeout: Duration,

    pub listen_backlog: u32,
    /// 0 is the system default for the two socket buffers.
    pub send_buffer_size: u32,
    pub receive_buffer_size: u32,
    /// Default applied: never 0.
    pub header_buffer_size: u32,
    pub response_buffer_size: u32,
    /// How much of a request body an Apache child reads before it takes a
    /// daemon thread; 0 streams the body from the start.
    pub request_buffer_size: u32,

    /// socket-user=, script-user=, script-group= (as names).
    pub socket_user: Option<String>,
    pub script_user: Option<String>,
    pub script_group: Option<String>,

    pub server_metrics: bool,
    pub newrelic_config_file: Option<String>,
    pub newrelic_environment: Option<String>,
}

impl DaemonProcess {
    /// A group with the C defaults.
    pub fn new(name: &str) -> Self {
        DaemonProcess {
            name: name.to_string(),
            user: None,
            uid: None,
            group: None,
            gid: None,
            supplementary_groups: None,
            supplementary_gids: Vec::new(),
            processes: 1,
            multiprocess: false,
            threads: 15,
            umask: None,
            chroot: None,
            home: None,
            lang: None,
            locale: None,
            display_name: None,
            python_home: None,
            python_path: Vec::new(),
            python_eggs: None,
            stack_size: None,
            maximum_requests: 0,
            cpu_time_limit: Duration::ZERO,
            cpu_priority: 0,
            memory_limit: 0,
            virtual_memory_limit: 0,
            startup_timeout: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(5),
            deadlock_timeout: Duration::from_secs(300),
            inactivity_timeout: Duration::ZERO,
            request_timeout: Duration::ZERO,
            // C 4.9.4 defaults graceful-timeout to 0 (off); 15 is only
            // mod_wsgi-express's default.
            graceful_timeout: Duration::ZERO,
            eviction_timeout: Duration::ZERO,
            restart_interval: Duration::ZERO,
            connect_timeout: Duration::from_secs(15),
            socket_timeout: Duration::ZERO,
            queue_timeout: Duration::ZERO,
            response_socket_timeout: Duration::ZERO,
            listen_backlog: 100,
            send_buffer_size: 0,
            receive_buffer_size: 0,
            header_buffer_size: DEFAULT_HEADER_BUFFER_SIZE,
            response_buffer_size: DEFAULT_RESPONSE_BUFFER_SIZE,
            request_buffer_size: DEFAULT_REQUEST_BUFFER_SIZE,
            socket_user: None,
            script_user: None,
            script_group: None,
            server_metrics: false,
            newrelic_config_file: None,
            newrelic_environment: None,
        }
    }

    /// The process title to show in ps: `%{GROUP}` becomes `(wsgi:NAME)`.
    pub fn process_title(&self) -> Option<String> {
        match self.display_name.as_deref()? {
            "%{GROUP}" => Some(format!("(wsgi:{})", self.name)),
            other => Some(other.to_string()),
        }
    }
}

const OPTIONS: &[&str] = &[
    "user", "group", "supplementary-groups", "processes", "threads", "umask", "chroot", "home",
    "lang", "locale", "python-home", "python-path", "python-eggs", "stack-size",
    "maximum-requests", "startup-timeout", "shutdown-timeout", "deadlock-timeout",
    "inactivity-timeout", "request-timeout", "graceful-timeout", "eviction-timeout",
    "restart-interval", "connect-timeout", "socket-timeout", "queue-timeout", "listen-backlog",
    "display-name", "send-buffer-size", "receive-buffer-size", "header-buffer-size",
    "response-buffer-size", "request-buffer-size", "response-socket-timeout", "socket-user", "script-user",
    "script-group", "cpu-time-limit", "cpu-priority", "memory-limit", "virtual-memory-limit",
    "server-metrics", "newrelic-config-file", "newrelic-environment",
];

/// One option's value, with the C wording for its errors at hand.
struct Value<'a> {
    option: &'static str,
    what: &'static str,
    text: &'a str,
}

impl Value<'_> {
    /// The C message (C rejects this value too).
    fn invalid(&self) -> ConfigError {
        self.problem_opt(None)
    }

    /// C would have accepted this value; say what is wrong with it.
    fn problem(&self, problem: &'static str) -> ConfigError {
        self.problem_opt(Some(problem))
    }

    fn problem_opt(&self, problem: Option<&'static str>) -> ConfigError {
        ConfigError::InvalidValue {
            what: self.what,
            option: self.option,
            value: self.text.to_string(),
            problem,
        }
    }

    /// A whole number. C uses atoi(), which reads "abc" as 0 and "5x" as 5;
    /// both are errors here.
    fn int(&self) -> Result<i64, ConfigError> {
        if self.text.is_empty() {
            return Err(self.invalid());
        }
        self.text.parse::<i64>().map_err(|e| {
            use std::num::IntErrorKind::*;
            match e.kind() {
                PosOverflow | NegOverflow => self.problem("is out of range"),
                _ => self.problem("is not a whole number"),
            }
        })
    }

    /// A count or size that C rejects below `min`.
    fn at_least(&self, min: i64) -> Result<u32, ConfigError> {
        let n = self.int()?;
        if n < min {
            return Err(self.invalid());
        }
        u32::try_from(n).map_err(|_| self.problem("is too large"))
    }

    fn seconds(&self) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(u64::from(self.at_least(0)?)))
    }

    fn bytes64(&self) -> Result<u64, ConfigError> {
        let n = self.int()?;
        u64::try_from(n).map_err(|_| self.invalid())
    }

    /// A buffer size: 0 (default) or at least `min`, else C's `message`.
    fn buffer(&self, min: i64, message: &'static str) -> Result<u32, ConfigError> {
        let n = self.int()?;
        if n != 0 && n < min {
            return Err(ConfigError::Fixed(message));
        }
        u32::try_from(n).map_err(|_| self.problem("is too large"))
    }
}

fn what_of(option: &str) -> &'static str {
    match option {
        "user" => "user",
        "group" => "group",
        "processes" => "process count",
        "threads" => "thread count",
        "umask" => "umask",
        "chroot" => "chroot directory",
        "home" => "home directory",
        "stack-size" => "stack size",
        "maximum-requests" => "request count",
        "startup-timeout" => "startup timeout",
        "shutdown-timeout" => "shutdown timeout",
        "deadlock-timeout" => "deadlock timeout",
        "inactivity-timeout" => "inactivity timeout",
        "request-timeout" => "request timeout",
        "graceful-timeout" => "graceful timeout",
        "eviction-timeout" => "eviction timeout",
        "restart-interval" => "restart interval",
        "connect-timeout" => "connect timeout",
        "socket-timeout" => "socket timeout",
        "queue-timeout" => "queue timeout",
        "listen-backlog" => "listen backlog",
        "send-buffer-size" => "send buffer size",
        "receive-buffer-size" => "receive buffer size",
        "header-buffer-size" => "header buffer size",
        "response-buffer-size" => "response buffer size",
        "request-buffer-size" => "request buffer size",
        "response-socket-timeout" => "response socket timeout",
        "socket-user" => "socket user",
        "script-user" => "script user",
        "script-group" => "script group",
        "cpu-time-limit" => "CPU time limit",
        "cpu-priority" => "CPU priority",
        "memory-limit" => "memory limit",
        "virtual-memory-limit" => "virtual memory limit",
        "server-metrics" => "server metrics flag",
        _ => "option",
    }
}

fn non_empty(v: &Value<'_>) -> Result<String, ConfigError> {
    if v.text.is_empty() { Err(v.invalid()) } else { Ok(v.text.to_string()) }
}

/// Resolves a user option to a name, as C does: `#uid` must have a name.
/// For user= the root check comes before that lookup, so `#0` is refused as root.
fn user_option(v: &Value<'_>, refuse_root: bool, unnamed_uid: &'static str) -> Result<(String, u32), ConfigError> {
    let name = non_empty(v)?;
    let uid = resolve_user(&name)
        .map_err(|_| ConfigError::UnknownIdentity { kind: "user", option: v.option, name: name.clone() })?;
    if refuse_root && uid == 0 {
        return Err(ConfigError::Fixed(msg::ROOT_BLOCKED));
    }
    if name.starts_with('#') {
        let real = user_name(uid).ok_or(ConfigError::Fixed(unnamed_uid))?;
        return Ok((real, uid));
    }
    Ok((name, uid))
}

fn group_option(v: &Value<'_>) -> Result<(String, u32), ConfigError> {
    let name = non_empty(v)?;
    let gid = resolve_group(&name)
        .map_err(|_| ConfigError::UnknownIdentity { kind: "group", option: v.option, name: name.clone() })?;
    Ok((name, gid))
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn max_groups() -> usize {
    use nix::unistd::{SysconfVar, sysconf};
    match sysconf(SysconfVar::NGROUPS_MAX) {
        Ok(Some(n)) if n > 0 => n as usize,
        _ => 65536,
    }
}

/// Parses `WSGIDaemonProcess name [option=value ...]` from its words.
///
/// Checks follow C's order (options left to right, then the script-user /
/// script-group clash, then supplementary groups). Stricter than C: a number
/// that is not a number, and an option given twice, are errors.
pub fn parse_daemon_process(args: &[String]) -> Result<DaemonProcess, ConfigError> {
    let name = match args.first() {
        Some(n) if !n.is_empty() => n,
        _ => return Err(ConfigError::Fixed(msg::DAEMON_NAME_MISSING)),
    };
    let mut d = DaemonProcess::new(name);
    let mut seen = HashSet::new();
    let mut response_socket_timeout = Duration::ZERO;

    for word in &args[1..] {
        let invalid = || ConfigError::InvalidOption { definition: DEFINITION, option: Some(word.clone()) };
        let (option, text) = split_option(word).ok_or_else(invalid)?;
        let option: &'static str = OPTIONS.iter().copied().find(|o| *o == option).ok_or_else(invalid)?;
        if !seen.insert(option) {
            return Err(ConfigError::DuplicateOption { definition: DEFINITION, option: option.to_string() });
        }
        let v = Value { option, what: what_of(option), text };
        let string = || Some(text.to_string());
        match option {
            "user" => {
                let (name, uid) = user_option(&v, true, "Couldn't determine user name from uid.")?;
                d.user = Some(name);
                d.uid = Some(uid);
            }
            "group" => {
                let (name, gid) = group_option(&v)?;
                d.group = Some(name);
                d.gid = Some(gid);
            }
            "supplementary-groups" => {
                // As C's ap_getword loop: the list ends at the first empty item.
                let names = text.split(',').take_while(|s| !s.is_empty()).map(str::to_string).collect();
                d.supplementary_groups = Some(names);
            }
            "processes" => {
                d.processes = v.at_least(1)?;
                d.multiprocess = true;
            }
            "threads" => {
                let n = v.at_least(0)?;
                if n > MAX_THREADS {
                    return Err(v.invalid());
                }
                d.threads = n;
            }
            "umask" => {
                if text.is_empty() || text.starts_with(['+', '-']) {
                    return Err(v.invalid());
                }
                let mask = u32::from_str_radix(text, 8).map_err(|_| v.invalid())?;
                if mask > 0o777 {
                    return Err(v.problem("is larger than 0777"));
                }
                d.umask = Some(mask);
            }
            "chroot" => {
                if !is_root() {
                    return Err(ConfigError::Fixed("Cannot chroot WSGI daemon process when not root."));
                }
                if !text.starts_with('/') {
                    return Err(v.invalid());
                }
                d.chroot = string();
            }
            "home" => {
                if !text.starts_with('/') {
                    return Err(v.invalid());
                }
                d.home = string();
            }
            "lang" => d.lang = string(),
            "locale" => d.locale = string(),
            "display-name" => d.display_name = string(),
            "python-home" => d.python_home = string(),
            "python-path" => {
                d.python_path = text.split(':').filter(|s| !s.is_empty()).map(str::to_string).collect();
            }
            "python-eggs" => d.python_eggs = string(),
            "stack-size" => d.stack_size = Some(v.at_least(1)?),
            "maximum-requests" => d.maximum_requests = v.at_least(0)?,
            "startup-timeout" => d.startup_timeout = v.seconds()?,
            "shutdown-timeout" => d.shutdown_timeout = v.seconds()?,
            "deadlock-timeout" => d.deadlock_timeout = v.seconds()?,
            "inactivity-timeout" => d.inactivity_timeout = v.seconds()?,
            "request-timeout" => d.request_timeout = v.seconds()?,
            "graceful-timeout" => d.graceful_timeout = v.seconds()?,
            "eviction-timeout" => d.eviction_timeout = v.seconds()?,
            "restart-interval" => d.restart_interval = v.seconds()?,
            "connect-timeout" => d.connect_timeout = v.seconds()?,
            "socket-timeout" => d.socket_timeout = v.seconds()?,
            "queue-timeout" => d.queue_timeout = v.seconds()?,
            "response-socket-timeout" => response_socket_timeout = v.seconds()?,
            "listen-backlog" => d.listen_backlog = v.at_least(0)?,
            "send-buffer-size" => {
                d.send_buffer_size = v.buffer(512, "Send buffer size must be >= 512 bytes, or 0 for system default.")?;
            }
            "receive-buffer-size" => {
                d.receive_buffer_size =
                    v.buffer(512, "Receive buffer size must be >= 512 bytes, or 0 for system default.")?;
            }
            "header-buffer-size" => {
                let n = v.buffer(8192, "Header buffer size must be >= 8192 bytes, or 0 for default.")?;
                d.header_buffer_size = if n == 0 { DEFAULT_HEADER_BUFFER_SIZE } else { n };
            }
            "response-buffer-size" => {
                let n = v.buffer(65536, "Response buffer size must be >= 65536 bytes, or 0 for default.")?;
                d.response_buffer_size = if n == 0 { DEFAULT_RESPONSE_BUFFER_SIZE } else { n };
            }
            "request-buffer-size" => {
                // Not a C option: 0 means no buffering rather than the default.
                let n = v.int()?;
                if n < 0 {
                    return Err(v.problem("is negative"));
                }
                if n > i64::from(MAX_REQUEST_BUFFER_SIZE) {
                    return Err(v.problem("is above 1073741824 (1 GiB)"));
                }
                d.request_buffer_size = n as u32;
            }
            "socket-user" => d.socket_user = Some(user_option(&v, false, "Couldn't determine user name from socket user.")?.0),
            "script-user" => d.script_user = Some(user_option(&v, false, "Couldn't determine uid from script user.")?.0),
            "script-group" => {
                let (name, gid) = group_option(&v)?;
                let name = if name.starts_with('#') {
                    group_name(gid).ok_or(ConfigError::Fixed("Couldn't determine gid from script group."))?
                } else {
                    name
                };
                d.script_group = Some(name);
            }
            "cpu-time-limit" => d.cpu_time_limit = v.seconds()?,
            "cpu-priority" => {
                let n = v.int()?;
                if !(-20..=20).contains(&n) {
                    return Err(v.problem("is outside -20..20"));
                }
                d.cpu_priority = n as i32;
            }
            "memory-limit" => d.memory_limit = v.bytes64()?,
            "virtual-memory-limit" => d.virtual_memory_limit = v.bytes64()?,
            "server-metrics" => {
                d.server_metrics = if text.eq_ignore_ascii_case("On") {
                    true
                } else if text.eq_ignore_ascii_case("Off") {
                    false
                } else {
                    return Err(v.invalid());
                };
            }
            "newrelic-config-file" => d.newrelic_config_file = string(),
            "newrelic-environment" => d.newrelic_environment = string(),
            _ => unreachable!("every name in OPTIONS is handled"),
        }
    }

    if d.script_user.is_some() && d.script_group.is_some() {
        return Err(ConfigError::Fixed("Only one of script-user and script-group allowed."));
    }

    if let Some(names) = &d.supplementary_groups {
        // C puts the primary group first, so it counts against the limit.
        if names.len() + 1 > max_groups() {
            return Err(ConfigError::Fixed("Too many supplementary groups WSGI daemon process"));
        }
        for name in names {
            let gid = resolve_group(name).map_err(|_| ConfigError::UnknownIdentity {
                kind: "group",
                option: "supplementary-groups",
                name: name.clone(),
            })?;
            d.supplementary_gids.push(gid);
        }
    }

    d.response_socket_timeout =
        if response_socket_timeout.is_zero() { d.socket_timeout } else { response_socket_timeout };
    Ok(d)
}

/// Where a daemon group was defined, for the checks on using it elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredGroup {
    pub name: String,
    /// ServerName of the defining server at that point (None if not set yet).
    pub server_hostname: Option<String>,
    /// Defined inside <VirtualHost>.
    pub is_virtual: bool,
}

/// Every WSGIDaemonProcess of the whole configuration. C keeps one global
/// list: names are unique across virtual hosts, and a group defined in one
/// virtual host cannot be used from another with a different ServerName.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonRegistry {
    groups: Vec<RegisteredGroup>,
}

impl DaemonRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a group; a name already taken anywhere is C's duplicate error.
    pub fn register(&mut self, group: RegisteredGroup) -> Result<(), ConfigError> {
        if self.get(&group.name).is_some() {
            return Err(ConfigError::Fixed(msg::DAEMON_DUPLICATE));
        }
        self.groups.push(group);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&RegisteredGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn groups(&self) -> &[RegisteredGroup] {
        &self.groups
    }

    /// C's check when a preloaded script names a daemon group: it must exist
    /// already, and if defined in a virtual host, be used from a server with
    /// the same ServerName.
    pub fn check_use(&self, name: &str, server_hostname: Option<&str>) -> Result<(), ConfigError> {
        let group = self.get(name).ok_or(ConfigError::Fixed(msg::GROUP_NOT_CONFIGURED))?;
        if !group.is_virtual {
            return Ok(());
        }
        match (server_hostname, group.server_hostname.as_deref()) {
            (Some(here), Some(there)) if here != there => Err(ConfigError::Fixed(msg::GROUP_NOT_ACCESSIBLE)),
            (None, Some(_)) | (Some(_), None) => Err(ConfigError::Fixed(msg::GROUP_NOT_MATCHABLE)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<DaemonProcess, ConfigError> {
        parse_daemon_process(&super::super::tokenize::tokenize(line).unwrap())
    }

    fn err(line: &str) -> String {
        parse(line).unwrap_err().to_string()
    }

    #[test]
    fn defaults() {
        let d = parse("site").unwrap();
        assert_eq!(d, DaemonProcess::new("site"));
        assert_eq!(d.processes, 1);
        assert!(!d.multiprocess);
        assert_eq!(d.threads, 15);
        assert_eq!(d.shutdown_timeout, Duration::from_secs(5));
        assert_eq!(d.deadlock_timeout, Duration::from_secs(300));
        assert_eq!(d.connect_timeout, Duration::from_secs(15));
        assert_eq!(d.graceful_timeout, Duration::ZERO);
        assert_eq!(d.listen_backlog, 100);
        assert_eq!(d.header_buffer_size, 32768);
        assert_eq!(d.response_buffer_size, 65536);
        assert_eq!(d.umask, None);
        assert_eq!(d.user, None);
        assert_eq!(d.process_title(), None);
    }

    #[test]
    fn name_is_required() {
        assert_eq!(parse_daemon_process(&[]).unwrap_err().to_string(), "Name of WSGI daemon process not supplied.");
        assert_eq!(err(r#""""#), "Name of WSGI daemon process not supplied.");
    }

    #[test]
    fn every_string_option() {
        let d = parse(
            "g lang=en_US.UTF-8 locale=C.UTF-8 display-name=%{GROUP} home=/srv python-home=/venv \
             python-path=/a:/b::/c python-eggs=/tmp/eggs newrelic-config-file=/nr.ini newrelic-environment=prod",
        )
        .unwrap();
        assert_eq!(d.lang.as_deref(), Some("en_US.UTF-8"));
        assert_eq!(d.locale.as_deref(), Some("C.UTF-8"));
        assert_eq!(d.display_name.as_deref(), Some("%{GROUP}"));
        assert_eq!(d.process_title().as_deref(), Some("(wsgi:g)"));
        assert_eq!(d.home.as_deref(), Some("/srv"));
        assert_eq!(d.python_home.as_deref(), Some("/venv"));
        assert_eq!(d.python_path, ["/a", "/b", "/c"]);
        assert_eq!(d.python_eggs.as_deref(), Some("/tmp/eggs"));
        assert_eq!(d.newrelic_config_file.as_deref(), Some("/nr.ini"));
        assert_eq!(d.newrelic_environment.as_deref(), Some("prod"));
    }

    #[test]
    fn quoted_values() {
        let d = parse(r#"g display-name="my app" python-path='/a b:/c'"#).unwrap();
        assert_eq!(d.process_title().as_deref(), Some("my app"));
        assert_eq!(d.python_path, ["/a b", "/c"]);
        let d = parse(r#"g "display-name=%{GROUP}""#).unwrap();
        assert_eq!(d.process_title().as_deref(), Some("(wsgi:g)"));
    }

    #[test]
    fn counts() {
        let d = parse("g processes=1 threads=0 maximum-requests=1000 listen-backlog=0").unwrap();
        assert_eq!(d.processes, 1);
        assert!(d.multiprocess);
        assert_eq!(d.threads, 0);
        assert_eq!(d.maximum_requests, 1000);
        assert_eq!(d.listen_backlog, 0);
        assert_eq!(parse("g threads=65533").unwrap().threads, 65533);
        assert_eq!(parse("g processes=4").unwrap().processes, 4);
    }

    #[test]
    fn bad_counts_use_c_messages() {
        assert_eq!(err("g processes=0"), "Invalid process count for WSGI daemon process.");
        assert_eq!(err("g processes=-2"), "Invalid process count for WSGI daemon process.");
        assert_eq!(err("g processes="), "Invalid process count for WSGI daemon process.");
        assert_eq!(err("g threads=-1"), "Invalid thread count for WSGI daemon process.");
        assert_eq!(err("g threads=65534"), "Invalid thread count for WSGI daemon process.");
        assert_eq!(err("g threads="), "Invalid thread count for WSGI daemon process.");
        assert_eq!(err("g maximum-requests=-1"), "Invalid request count for WSGI daemon process.");
        assert_eq!(err("g listen-backlog=-1"), "Invalid listen backlog for WSGI daemon process.");
        assert_eq!(err("g stack-size=0"), "Invalid stack size for WSGI daemon process.");
    }

    #[test]
    fn non_numbers_name_the_option() {
        // C's atoi() would read these as 0 (or 5) and carry on.
        assert_eq!(err("g threads=abc"), "Invalid thread count for WSGI daemon process: threads=abc is not a whole number.");
        assert_eq!(err("g processes=5x"), "Invalid process count for WSGI daemon process: processes=5x is not a whole number.");
        assert_eq!(
            err("g request-timeout=1.5"),
            "Invalid request timeout for WSGI daemon process: request-timeout=1.5 is not a whole number."
        );
        assert_eq!(
            err("g threads=99999999999999999999"),
            "Invalid thread count for WSGI daemon process: threads=99999999999999999999 is out of range."
        );
        assert_eq!(
            err("g maximum-requests=5000000000"),
            "Invalid request count for WSGI daemon process: maximum-requests=5000000000 is too large."
        );
    }

    #[test]
    fn every_timeout() {
        let names = [
            ("startup-timeout", "startup timeout"),
            ("shutdown-timeout", "shutdown timeout"),
            ("deadlock-timeout", "deadlock timeout"),
            ("inactivity-timeout", "inactivity timeout"),
            ("request-timeout", "request timeout"),
            ("graceful-timeout", "graceful timeout"),
            ("eviction-timeout", "eviction timeout"),
            ("restart-interval", "restart interval"),
            ("connect-timeout", "connect timeout"),
            ("socket-timeout", "socket timeout"),
            ("queue-timeout", "queue timeout"),
            ("response-socket-timeout", "response socket timeout"),
            ("cpu-time-limit", "CPU time limit"),
        ];
        for (option, what) in names {
            let d = parse(&format!("g {option}=7")).unwrap();
            let got = match option {
                "startup-timeout" => d.startup_timeout,
                "shutdown-timeout" => d.shutdown_timeout,
                "deadlock-timeout" => d.deadlock_timeout,
                "inactivity-timeout" => d.inactivity_timeout,
                "request-timeout" => d.request_timeout,
                "graceful-timeout" => d.graceful_timeout,
                "eviction-timeout" => d.eviction_timeout,
                "restart-interval" => d.restart_interval,
                "connect-timeout" => d.connect_timeout,
                "socket-timeout" => d.socket_timeout,
                "queue-timeout" => d.queue_timeout,
                "response-socket-timeout" => d.response_socket_timeout,
                _ => d.cpu_time_limit,
            };
            assert_eq!(got, Duration::from_secs(7), "{option}");
            assert!(parse(&format!("g {option}=0")).is_ok(), "{option}=0");
            let expected = format!("Invalid {what} for WSGI daemon process.");
            assert_eq!(err(&format!("g {option}=-1")), expected);
            assert_eq!(err(&format!("g {option}=")), expected);
            assert!(err(&format!("g {option}=x")).starts_with(&format!("Invalid {what} for WSGI daemon process: {option}=x")));
        }
    }

    #[test]
    fn response_socket_timeout_falls_back_to_socket_timeout() {
        assert_eq!(parse("g socket-timeout=60").unwrap().response_socket_timeout, Duration::from_secs(60));
        let d = parse("g socket-timeout=60 response-socket-timeout=5").unwrap();
        assert_eq!(d.response_socket_timeout, Duration::from_secs(5));
        // Order does not matter.
        let d = parse("g response-socket-timeout=0 socket-timeout=9").unwrap();
        assert_eq!(d.response_socket_timeout, Duration::from_secs(9));
    }

    #[test]
    fn buffers() {
        let d = parse("g send-buffer-size=512 receive-buffer-size=0 header-buffer-size=8192 response-buffer-size=1048576")
            .unwrap();
        assert_eq!(d.send_buffer_size, 512);
        assert_eq!(d.receive_buffer_size, 0);
        assert_eq!(d.header_buffer_size, 8192);
        assert_eq!(d.response_buffer_size, 1048576);
        let d = parse("g header-buffer-size=0 response-buffer-size=0").unwrap();
        assert_eq!(d.header_buffer_size, DEFAULT_HEADER_BUFFER_SIZE);
        assert_eq!(d.response_buffer_size, DEFAULT_RESPONSE_BUFFER_SIZE);
        assert_eq!(err("g send-buffer-size=100"), "Send buffer size must be >= 512 bytes, or 0 for system default.");
        assert_eq!(err("g send-buffer-size=-1"), "Send buffer size must be >= 512 bytes, or 0 for system default.");
        assert_eq!(err("g receive-buffer-size=511"), "Receive buffer size must be >= 512 bytes, or 0 for system default.");
        assert_eq!(err("g header-buffer-size=8191"), "Header buffer size must be >= 8192 bytes, or 0 for default.");
        assert_eq!(err("g response-buffer-size=100"), "Response buffer size must be >= 65536 bytes, or 0 for default.");
        assert_eq!(err("g send-buffer-size="), "Invalid send buffer size for WSGI daemon process.");
        assert_eq!(err("g header-buffer-size="), "Invalid header buffer size for WSGI daemon process.");
    }

    #[test]
    fn request_buffer_size() {
        assert_eq!(parse("g").unwrap().request_buffer_size, 1048576);
        assert_eq!(parse("g request-buffer-size=0").unwrap().request_buffer_size, 0);
        assert_eq!(parse("g request-buffer-size=1").unwrap().request_buffer_size, 1);
        assert_eq!(parse("g request-buffer-size=1073741824").unwrap().request_buffer_size, 1 << 30);
        assert_eq!(
            err("g request-buffer-size=1073741825"),
            "Invalid request buffer size for WSGI daemon process: request-buffer-size=1073741825 is above 1073741824 (1 GiB)."
        );
        assert_eq!(err("g request-buffer-size=-1"), "Invalid request buffer size for WSGI daemon process: request-buffer-size=-1 is negative.");
        assert_eq!(err("g request-buffer-size=1M"), "Invalid request buffer size for WSGI daemon process: request-buffer-size=1M is not a whole number.");
        assert_eq!(err("g request-buffer-size="), "Invalid request buffer size for WSGI daemon process.");
        assert_eq!(
            err("g request-buffer-size=99999999999999999999"),
            "Invalid request buffer size for WSGI daemon process: request-buffer-size=99999999999999999999 is out of range."
        );
    }

    #[test]
    fn limits_and_priority() {
        let d = parse("g memory-limit=1073741824 virtual-memory-limit=8589934592 cpu-priority=-5 stack-size=524288")
            .unwrap();
        assert_eq!(d.memory_limit, 1 << 30);
        assert_eq!(d.virtual_memory_limit, 8 << 30);
        assert_eq!(d.cpu_priority, -5);
        assert_eq!(d.stack_size, Some(524288));
        assert_eq!(err("g memory-limit=-1"), "Invalid memory limit for WSGI daemon process.");
        assert_eq!(err("g virtual-memory-limit=-1"), "Invalid virtual memory limit for WSGI daemon process.");
        assert_eq!(err("g cpu-priority="), "Invalid CPU priority for WSGI daemon process.");
        assert_eq!(err("g cpu-priority=21"), "Invalid CPU priority for WSGI daemon process: cpu-priority=21 is outside -20..20.");
        assert_eq!(err("g cpu-priority=abc"), "Invalid CPU priority for WSGI daemon process: cpu-priority=abc is not a whole number.");
    }

    #[test]
    fn umask_is_octal() {
        assert_eq!(parse("g umask=0022").unwrap().umask, Some(0o22));
        assert_eq!(parse("g umask=007").unwrap().umask, Some(0o7));
        assert_eq!(parse("g umask=0").unwrap().umask, Some(0));
        for bad in ["089", "", "-1", "0x12", "abc", "+7"] {
            assert_eq!(err(&format!("g umask={bad}")), "Invalid umask for WSGI daemon process.", "{bad}");
        }
        assert_eq!(err("g umask=07777"), "Invalid umask for WSGI daemon process: umask=07777 is larger than 0777.");
    }

    #[test]
    fn directories_must_be_absolute() {
        assert_eq!(err("g home=relative"), "Invalid home directory for WSGI daemon process.");
        assert_eq!(err("g home="), "Invalid home directory for WSGI daemon process.");
        if is_root() {
            assert_eq!(parse("g chroot=/jail").unwrap().chroot.as_deref(), Some("/jail"));
            assert_eq!(err("g chroot=jail"), "Invalid chroot directory for WSGI daemon process.");
        } else {
            assert_eq!(err("g chroot=/jail"), "Cannot chroot WSGI daemon process when not root.");
        }
    }

    #[test]
    fn server_metrics() {
        assert!(parse("g server-metrics=On").unwrap().server_metrics);
        assert!(!parse("g server-metrics=off").unwrap().server_metrics);
        assert_eq!(err("g server-metrics=maybe"), "Invalid server metrics flag for WSGI daemon process.");
        assert_eq!(err("g server-metrics="), "Invalid server metrics flag for WSGI daemon process.");
    }

    #[test]
    fn users_and_groups() {
        let d = parse("g user=www-data group=www-data").unwrap();
        assert_eq!((d.user.as_deref(), d.uid), (Some("www-data"), Some(33)));
        assert_eq!((d.group.as_deref(), d.gid), (Some("www-data"), Some(33)));
        let d = parse("g user=#33 group=#0").unwrap();
        assert_eq!((d.user.as_deref(), d.uid), (Some("www-data"), Some(33)));
        assert_eq!(d.gid, Some(0));
    }

    #[test]
    fn root_is_refused() {
        assert_eq!(err("g user=root"), "WSGI process blocked from running as root.");
        assert_eq!(err("g user=#0"), "WSGI process blocked from running as root.");
    }

    #[test]
    fn bad_users_and_groups() {
        assert_eq!(err("g user="), "Invalid user for WSGI daemon process.");
        assert_eq!(err("g group="), "Invalid group for WSGI daemon process.");
        assert_eq!(err("g user=#99999"), "Couldn't determine user name from uid.");
        assert_eq!(
            err("g user=nosuchuser"),
            "Invalid user for WSGI daemon process: bad user name nosuchuser (user=)."
        );
        assert_eq!(
            err("g group=nosuchgroup"),
            "Invalid group for WSGI daemon process: bad group name nosuchgroup (group=)."
        );
        assert_eq!(err("g user=#abc"), "Invalid user for WSGI daemon process: bad user name #abc (user=).");
    }

    #[test]
    fn supplementary_groups() {
        let d = parse("g supplementary-groups=www-data,root").unwrap();
        assert_eq!(d.supplementary_groups, Some(vec!["www-data".to_string(), "root".to_string()]));
        assert_eq!(d.supplementary_gids, [33, 0]);
        let d = parse("g supplementary-groups=").unwrap();
        assert_eq!(d.supplementary_groups, Some(vec![]));
        // The list stops at an empty item, as C's loop does.
        assert_eq!(parse("g supplementary-groups=root,,nosuch").unwrap().supplementary_gids, [0]);
        assert_eq!(
            err("g supplementary-groups=root,nosuch"),
            "Invalid group for WSGI daemon process: bad group name nosuch (supplementary-groups=)."
        );
    }

    #[test]
    fn socket_and_script_owners() {
        let d = parse("g socket-user=#33 script-user=www-data").unwrap();
        assert_eq!(d.socket_user.as_deref(), Some("www-data"));
        assert_eq!(d.script_user.as_deref(), Some("www-data"));
        assert_eq!(parse("g script-group=#33").unwrap().script_group.as_deref(), Some("www-data"));
        assert_eq!(err("g socket-user=#99999"), "Couldn't determine user name from socket user.");
        assert_eq!(err("g script-user=#99999"), "Couldn't determine uid from script user.");
        assert_eq!(err("g script-group=#99999"), "Couldn't determine gid from script group.");
        assert_eq!(err("g socket-user="), "Invalid socket user for WSGI daemon process.");
        assert_eq!(err("g script-user="), "Invalid script user for WSGI daemon process.");
        assert_eq!(err("g script-group="), "Invalid script group for WSGI daemon process.");
        assert!(err("g socket-user=nosuch").contains("bad user name nosuch (socket-user=)"));
        assert_eq!(
            err("g script-user=www-data script-group=www-data"),
            "Only one of script-user and script-group allowed."
        );
    }

    #[test]
    fn invalid_options() {
        assert_eq!(err("g bogus=1"), "Invalid option to WSGI daemon process definition: 'bogus=1'.");
        assert_eq!(err("g threads"), "Invalid option to WSGI daemon process definition: 'threads'.");
        assert_eq!(err("g =1"), "Invalid option to WSGI daemon process definition: '=1'.");
        // Option names are case-sensitive in C.
        assert!(err("g Threads=1").starts_with("Invalid option"));
        // 6.x-only options are unknown to 4.9.4.
        assert!(err("g switch-interval=0.1").starts_with("Invalid option"));
    }

    #[test]
    fn repeated_option_is_an_error() {
        assert_eq!(
            err("g threads=1 threads=2"),
            "Invalid option to WSGI daemon process definition: 'threads' given more than once."
        );
    }

    #[test]
    fn options_are_checked_left_to_right() {
        assert_eq!(err("g threads=-1 bogus=1"), "Invalid thread count for WSGI daemon process.");
        assert_eq!(err("g bogus=1 threads=-1"), "Invalid option to WSGI daemon process definition: 'bogus=1'.");
    }

    #[test]
    fn registry_duplicates_and_access() {
        let mut r = DaemonRegistry::new();
        let g = |name: &str, host: Option<&str>, is_virtual| RegisteredGroup {
            name: name.into(),
            server_hostname: host.map(str::to_string),
            is_virtual,
        };
        r.register(g("main", Some("localhost"), false)).unwrap();
        r.register(g("v1", Some("v1.example"), true)).unwrap();
        r.register(g("anon", None, true)).unwrap();
        assert_eq!(
            r.register(g("v1", Some("other"), true)).unwrap_err().to_string(),
            "Name duplicates previous WSGI daemon definition."
        );
        assert!(r.contains("main") && !r.contains("nope"));
        assert_eq!(r.groups().len(), 3);

        assert_eq!(r.check_use("nope", Some("x")).unwrap_err().to_string(), "WSGI process group not yet configured.");
        // Global groups are usable from anywhere.
        assert!(r.check_use("main", Some("v1.example")).is_ok());
        assert!(r.check_use("main", None).is_ok());
        assert!(r.check_use("v1", Some("v1.example")).is_ok());
        assert_eq!(r.check_use("v1", Some("v2.example")).unwrap_err().to_string(), "WSGI process group not accessible.");
        assert_eq!(r.check_use("v1", None).unwrap_err().to_string(), "WSGI process group not matchable.");
        assert_eq!(r.check_use("anon", Some("v1.example")).unwrap_err().to_string(), "WSGI process group not matchable.");
        assert!(r.check_use("anon", None).is_ok());
    }
}
