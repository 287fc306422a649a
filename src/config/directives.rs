//! The directive table and [`apply`], which turns one directive line into
//! changes to a [`ServerConfig`] or per-directory [`Settings`].

use std::collections::HashSet;
use std::ffi::CStr;

use super::daemon::{DaemonRegistry, RegisteredGroup, parse_daemon_process};
use super::error::ConfigError;
use super::group::{GroupSpec, parse_group_spec};
use super::proxies::parse_trusted_proxy;
use super::script_alias::parse_script_alias;
use super::scripts::{parse_handler_script, parse_hook_script, parse_import_script};
use super::server::{HashSeed, ServerConfig};
use super::settings::Settings;
use super::tokenize::tokenize;
use super::values::{MapHeadToGet, parse_flag};

/// Where a directive may appear (what the glue registers with httpd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Main server config only: RSRC_CONF, refused inside <VirtualHost>.
    MainServer,
    /// Server config and <VirtualHost>: RSRC_CONF.
    Server,
    /// Also <Directory>/<Location>/<Files>: ACCESS_CONF|RSRC_CONF.
    ServerOrDirectory,
    /// Also .htaccess with AllowOverride FileInfo: OR_FILEINFO.
    Anywhere,
    /// <Directory>-style sections and .htaccess with AllowOverride AuthConfig,
    /// not server level: OR_AUTHCFG.
    AuthConfig,
}

/// One entry of the table; C strings so the glue can point httpd's
/// command_rec at them directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Directive {
    pub name: &'static CStr,
    pub context: Context,
    /// httpd's short help, also the tail of its arity messages.
    pub usage: &'static CStr,
}

impl Directive {
    pub fn name_str(&self) -> &'static str {
        self.name.to_str().expect("ASCII directive name")
    }

    pub fn usage_str(&self) -> &'static str {
        self.usage.to_str().expect("ASCII usage text")
    }
}

const fn d(name: &'static CStr, context: Context, usage: &'static CStr) -> Directive {
    Directive { name, context, usage }
}

use Context::*;

/// Every directive of C mod_wsgi 4.9.4 (Unix, Python 3, httpd 2.4).
pub const DIRECTIVES: &[Directive] = &[
    d(c"WSGIScriptAlias", Server, c"Map location to target WSGI script file."),
    d(c"WSGIScriptAliasMatch", Server, c"Map location pattern to target WSGI script file."),
    d(c"WSGIDaemonProcess", Server, c"Specify details of daemon processes to start."),
    d(c"WSGISocketPrefix", MainServer, c"Path prefix for the daemon process sockets."),
    d(c"WSGISocketRotation", MainServer, c"Enable/Disable rotation of daemon process sockets."),
    d(c"WSGIAcceptMutex", MainServer, c"Set accept mutex type for daemon processes."),
    d(c"WSGILazyInitialization", MainServer, c"Enable/Disable lazy Python initialization."),
    d(c"WSGIVerboseDebugging", MainServer, c"Enable/Disable verbose debugging messages."),
    d(c"WSGIDestroyInterpreter", MainServer, c"Enable/Disable destruction of Python interpreter."),
    d(c"WSGIDontWriteBytecode", MainServer, c"Enable/Disable writing of byte code."),
    d(c"WSGIPythonWarnings", MainServer, c"Control Python warning messages."),
    d(c"WSGIPythonOptimize", MainServer, c"Set level of Python compiler optimisations."),
    d(c"WSGIPythonHome", MainServer, c"Python prefix/exec_prefix absolute path names."),
    d(c"WSGIPythonPath", MainServer, c"Python module search path."),
    d(c"WSGIPythonEggs", MainServer, c"Python eggs cache directory."),
    d(c"WSGIPythonHashSeed", MainServer, c"Python hash seed."),
    d(c"WSGIRestrictEmbedded", MainServer, c"Enable/Disable use of embedded mode."),
    d(c"WSGIRestrictStdin", MainServer, c"Enable/Disable restrictions on use of STDIN."),
    d(c"WSGIRestrictStdout", MainServer, c"Enable/Disable restrictions on use of STDOUT."),
    d(c"WSGIRestrictSignal", MainServer, c"Enable/Disable restrictions on use of signal()."),
    d(c"WSGICaseSensitivity", MainServer, c"Define whether file system is case sensitive."),
    d(c"WSGIRestrictProcess", ServerOrDirectory, c"Limit selectable WSGI process groups."),
    d(c"WSGIProcessGroup", ServerOrDirectory, c"Name of the WSGI process group."),
    d(c"WSGIApplicationGroup", ServerOrDirectory, c"Application interpreter group."),
    d(c"WSGICallableObject", Anywhere, c"Name of entry point in WSGI script file."),
    d(c"WSGIImportScript", Server, c"Location of WSGI import script."),
    d(c"WSGIDispatchScript", ServerOrDirectory, c"Location of WSGI dispatch script."),
    d(c"WSGIPassApacheRequest", ServerOrDirectory, c"Enable/Disable Apache request object."),
    d(c"WSGIPassAuthorization", Anywhere, c"Enable/Disable WSGI authorization."),
    d(c"WSGIScriptReloading", Anywhere, c"Enable/Disable script reloading mechanism."),
    d(c"WSGIErrorOverride", Anywhere, c"Enable/Disable overriding of error pages."),
    d(c"WSGIChunkedRequest", Anywhere, c"Enable/Disable support for chunked requests."),
    d(c"WSGIMapHEADToGET", Anywhere, c"Enable/Disable mapping of HEAD to GET."),
    d(c"WSGIIgnoreActivity", Anywhere, c"Enable/Disable reset of inactvity timeout."),
    d(c"WSGITrustedProxyHeaders", Anywhere, c"Specify a list of trusted proxy headers."),
    d(c"WSGITrustedProxies", Anywhere, c"Specify a list of trusted proxies."),
    d(c"WSGIEnableSendfile", Anywhere, c"Enable/Disable support for kernel sendfile."),
    d(c"WSGIAccessScript", AuthConfig, c"Location of WSGI host access script file."),
    d(c"WSGIAuthUserScript", AuthConfig, c"Location of WSGI user auth script file."),
    d(c"WSGIAuthGroupScript", AuthConfig, c"Location of WSGI group auth script file."),
    d(c"WSGIGroupAuthoritative", AuthConfig, c"Enable/Disable as being authoritative on groups."),
    d(c"WSGIHandlerScript", ServerOrDirectory, c"Location of WSGI handler script file."),
    d(c"WSGIServerMetrics", MainServer, c"Enabled/Disable access to server metrics."),
    d(c"WSGINewRelicConfigFile", MainServer, c"New Relic monitoring agent configuration file."),
    d(c"WSGINewRelicEnvironment", MainServer, c"New Relic monitoring agent environment."),
];

/// Finds a directive by name; httpd matches names case-insensitively.
pub fn lookup(name: &str) -> Option<&'static Directive> {
    DIRECTIVES.iter().find(|d| d.name.to_bytes().eq_ignore_ascii_case(name.as_bytes()))
}

/// What a directive line is applied to.
pub enum Target<'a> {
    /// Main server or a <VirtualHost>.
    Server {
        config: &'a mut ServerConfig,
        in_vhost: bool,
        /// cmd->server->server_hostname at this point (ServerName seen so far).
        server_hostname: Option<&'a str>,
        /// Every WSGIDaemonProcess read so far, in any server.
        registry: &'a mut DaemonRegistry,
    },
    /// A <Directory>, <Location>, <Files> section or .htaccess.
    Directory(&'a mut Settings),
}

const ACCEPT_MUTEXES: &[&str] = &["default", "flock", "fcntl", "sysvsem", "posixsem", "pthread"];

/// The one argument of a TAKE1-style directive, with httpd's arity message.
fn one<'w>(d: &Directive, words: &'w [String]) -> Result<&'w str, ConfigError> {
    match words {
        [w] if !w.is_empty() => Ok(w),
        _ => Err(ConfigError::TakesOne { directive: d.name_str(), usage: d.usage_str() }),
    }
}

/// SCRIPT_NAME-style CGI name of a header, as C's trusted header handling uses.
/// Set once the configuration names a script that runs in Apache's children
/// (dispatch, access and auth scripts), which then need Python even under
/// WSGIRestrictEmbedded On.
static EMBEDDED_HOOK_SCRIPTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn embedded_hook_scripts() -> bool {
    EMBEDDED_HOOK_SCRIPTS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Called before each reading of the configuration.
pub fn forget_embedded_hook_scripts() {
    EMBEDDED_HOOK_SCRIPTS.store(false, std::sync::atomic::Ordering::Relaxed);
}

fn embedded_hook_script(directive: &'static str, words: &[String]) -> Result<super::ScriptFile, ConfigError> {
    let script = parse_hook_script(directive, words)?;
    EMBEDDED_HOOK_SCRIPTS.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(script)
}

fn header_to_env(header: &str) -> String {
    let mut env = String::from("HTTP_");
    env.extend(header.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }));
    env
}

/// Applies one directive. `directive` is the name as written, `raw_args` the
/// rest of the line (httpd RAW_ARGS). Errors are what httpd should print.
pub fn apply(target: Target<'_>, directive: &str, raw_args: &str) -> Result<(), ConfigError> {
    let d = lookup(directive).ok_or_else(|| ConfigError::UnknownDirective(directive.to_string()))?;

    // Contexts httpd itself enforces from the registration; checked here too
    // so the table and apply() cannot disagree.
    let refused = matches!(
        (&target, d.context),
        (Target::Server { .. }, AuthConfig) | (Target::Directory(_), MainServer | Server)
    );
    if refused {
        return Err(ConfigError::NotAllowedHere(d.name_str()));
    }

    let words = tokenize(raw_args)?;

    match target {
        Target::Directory(settings) => apply_settings(d, &words, settings),
        Target::Server { config, in_vhost, server_hostname, registry } => {
            if d.context == MainServer {
                // httpd checks a TAKE1's arity before the handler runs, and the
                // handler then refuses a virtual host.
                one(d, &words)?;
                if in_vhost {
                    return Err(ConfigError::NotInVirtualHost(d.name_str()));
                }
            }
            apply_server(d, &words, config, in_vhost, server_hostname, registry)
        }
    }
}

fn apply_server(
    d: &Directive,
    words: &[String],
    config: &mut ServerConfig,
    in_vhost: bool,
    server_hostname: Option<&str>,
    registry: &mut DaemonRegistry,
) -> Result<(), ConfigError> {
    let name = d.name_str();
    let flag = || parse_flag(name, &words[0]);
    match name {
        "WSGIScriptAlias" | "WSGIScriptAliasMatch" => {
            if words.len() < 2 || words[0].is_empty() || words[1].is_empty() {
                return Err(ConfigError::TwoOrMore { directive: name, usage: d.usage_str() });
            }
            let alias = parse_script_alias(name == "WSGIScriptAliasMatch", words)?;
            // C checks the daemon group only for scripts it preloads; other
            // references are checked by check() once everything is read.
            if let (true, Some(GroupSpec::Named(group))) = (alias.preload(), &alias.options.process_group) {
                registry.check_use(group, server_hostname)?;
            }
            config.script_aliases.push(alias);
        }
        "WSGIDaemonProcess" => {
            let daemon = parse_daemon_process(words)?;
            registry.register(RegisteredGroup {
                name: daemon.name.clone(),
                server_hostname: server_hostname.map(str::to_string),
                is_virtual: in_vhost,
            })?;
            config.daemons.push(daemon);
        }
        "WSGIImportScript" => {
            let script = parse_import_script(words)?;
            if let GroupSpec::Named(group) = &script.process_group {
                registry.check_use(group, server_hostname)?;
            }
            config.import_scripts.push(script);
        }
        "WSGISocketPrefix" => config.socket_prefix = Some(words[0].clone()),
        "WSGISocketRotation" => config.socket_rotation = Some(flag()?),
        "WSGIAcceptMutex" => {
            let m = words[0].to_ascii_lowercase();
            if !ACCEPT_MUTEXES.contains(&m.as_str()) {
                return Err(ConfigError::Other(format!(
                    "Accept mutex lock mechanism '{}' is invalid. Valid accept mutex mechanisms for this platform are: {}.",
                    words[0],
                    ACCEPT_MUTEXES.join(", ")
                )));
            }
            config.accept_mutex = Some(m);
        }
        "WSGILazyInitialization" => config.lazy_initialization = Some(flag()?),
        "WSGIVerboseDebugging" => config.verbose_debugging = Some(flag()?),
        "WSGIDestroyInterpreter" => config.destroy_interpreter = Some(flag()?),
        "WSGIDontWriteBytecode" => config.dont_write_bytecode = Some(flag()?),
        "WSGIPythonWarnings" => config.python_warnings.push(words[0].clone()),
        "WSGIPythonOptimize" => {
            // C reads this with atoi(); anything but a level Python knows is a mistake.
            config.python_optimize = Some(match words[0].as_str() {
                "0" => 0,
                "1" => 1,
                "2" => 2,
                other => {
                    return Err(ConfigError::Other(format!("WSGIPythonOptimize must be 0, 1 or 2, not '{other}'")));
                }
            });
        }
        "WSGIPythonHome" => config.python_home = Some(words[0].clone()),
        "WSGIPythonPath" => {
            config.python_path = words[0].split(':').filter(|s| !s.is_empty()).map(str::to_string).collect();
        }
        "WSGIPythonEggs" => config.python_eggs = Some(words[0].clone()),
        "WSGIPythonHashSeed" => {
            config.python_hash_seed = Some(if words[0] == "random" {
                HashSeed::Random
            } else {
                HashSeed::Fixed(words[0].parse().map_err(|_| {
                    ConfigError::Fixed("WSGIPythonHashSeed must be \"random\" or an integer in range [0; 4294967295]")
                })?)
            });
        }
        "WSGIRestrictEmbedded" => config.restrict_embedded = Some(flag()?),
        "WSGIRestrictStdin" => config.restrict_stdin = Some(flag()?),
        "WSGIRestrictStdout" => config.restrict_stdout = Some(flag()?),
        "WSGIRestrictSignal" => config.restrict_signal = Some(flag()?),
        "WSGICaseSensitivity" => config.case_sensitivity = Some(flag()?),
        "WSGIServerMetrics" => config.server_metrics = Some(flag()?),
        "WSGINewRelicConfigFile" => config.newrelic_config_file = Some(words[0].clone()),
        "WSGINewRelicEnvironment" => config.newrelic_environment = Some(words[0].clone()),
        _ => return apply_settings(d, words, &mut config.settings),
    }
    Ok(())
}

/// Directives valid in directory context, applied to server or directory settings.
fn apply_settings(d: &Directive, words: &[String], s: &mut Settings) -> Result<(), ConfigError> {
    let name = d.name_str();
    let flag = || -> Result<bool, ConfigError> { parse_flag(name, one(d, words)?) };
    match name {
        "WSGIProcessGroup" | "WSGIApplicationGroup" => {
            let spec = parse_group_spec(name, one(d, words)?)?;
            if name == "WSGIProcessGroup" {
                s.process_group = Some(spec);
            } else {
                s.application_group = Some(spec);
            }
        }
        "WSGICallableObject" => s.callable_object = Some(one(d, words)?.to_string()),
        "WSGIPassAuthorization" => s.pass_authorization = Some(flag()?),
        "WSGIScriptReloading" => s.script_reloading = Some(flag()?),
        "WSGIErrorOverride" => s.error_override = Some(flag()?),
        "WSGIChunkedRequest" => s.chunked_request = Some(flag()?),
        "WSGIIgnoreActivity" => s.ignore_activity = Some(flag()?),
        "WSGIEnableSendfile" => s.enable_sendfile = Some(flag()?),
        "WSGIPassApacheRequest" => s.pass_apache_request = Some(flag()?),
        "WSGIGroupAuthoritative" => s.group_authoritative = Some(flag()?),
        "WSGIMapHEADToGET" => s.map_head_to_get = Some(MapHeadToGet::parse(name, one(d, words)?)?),
        "WSGIRestrictProcess" => {
            // C allows an empty list: nothing may be selected here.
            let names = words.iter().map(|w| if w == "%{GLOBAL}" { String::new() } else { w.clone() });
            s.restrict_process = Some(names.collect());
        }
        "WSGITrustedProxyHeaders" => {
            // Repeats in one scope add to the list, as in C.
            s.trusted_proxy_headers.get_or_insert_with(Vec::new).extend(words.iter().map(|w| header_to_env(w)));
        }
        "WSGITrustedProxies" => {
            let parsed = words.iter().map(|w| parse_trusted_proxy(w)).collect::<Result<Vec<_>, _>>()?;
            s.trusted_proxies.get_or_insert_with(Vec::new).extend(parsed);
        }
        "WSGIDispatchScript" => s.dispatch_script = Some(embedded_hook_script(name, words)?),
        "WSGIAccessScript" => s.access_script = Some(embedded_hook_script(name, words)?),
        "WSGIAuthUserScript" => s.auth_user_script = Some(embedded_hook_script(name, words)?),
        "WSGIAuthGroupScript" => s.auth_group_script = Some(embedded_hook_script(name, words)?),
        "WSGIHandlerScript" => {
            let (name, script) = parse_handler_script(words)?;
            s.handler_scripts.retain(|(n, _)| *n != name);
            s.handler_scripts.push((name, script));
        }
        _ => return Err(ConfigError::NotAllowedHere(name)),
    }
    Ok(())
}

/// The names of every WSGIDaemonProcess in `servers`.
fn daemon_names<'a>(servers: &[&'a ServerConfig]) -> HashSet<&'a str> {
    servers.iter().flat_map(|s| s.daemons.iter().map(|d| d.name.as_str())).collect()
}

fn check_known(known: &HashSet<&str>, directive: &'static str, spec: Option<&GroupSpec>) -> Result<(), ConfigError> {
    match spec {
        Some(GroupSpec::Named(group)) if !known.contains(group.as_str()) => {
            Err(ConfigError::UnknownProcessGroup { directive, group: group.clone() })
        }
        _ => Ok(()),
    }
}

fn check_settings(known: &HashSet<&str>, s: &Settings) -> Result<(), ConfigError> {
    check_known(known, "WSGIProcessGroup", s.process_group.as_ref())?;
    for (_, script) in &s.handler_scripts {
        check_known(known, "WSGIHandlerScript", script.process_group.as_ref())?;
    }
    Ok(())
}

/// Cross-directive checks once the whole configuration is read: every
/// literal process group at server level (WSGIProcessGroup, process-group=
/// of WSGIScriptAlias(Match) and WSGIHandlerScript) must name a
/// WSGIDaemonProcess of some server. C only finds these per request ("No
/// WSGI daemon process called '...' has been configured"). `servers` is
/// every server record, main first; merged or not, both work.
pub fn check(servers: &[&ServerConfig]) -> Result<(), ConfigError> {
    let known = daemon_names(servers);
    for server in servers {
        check_settings(&known, &server.settings)?;
        for alias in &server.script_aliases {
            let directive = match alias.pattern {
                super::AliasPattern::Prefix(_) => "WSGIScriptAlias",
                super::AliasPattern::Regex(_) => "WSGIScriptAliasMatch",
            };
            check_known(&known, directive, alias.options.process_group.as_ref())?;
        }
    }
    Ok(())
}

/// The same check for one directory section's settings, for glue that
/// keeps track of them.
pub fn check_directory(settings: &Settings, servers: &[&ServerConfig]) -> Result<(), ConfigError> {
    check_settings(&daemon_names(servers), settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AliasPattern, DaemonProcess};
    use std::time::Duration;

    #[derive(Default)]
    struct Conf {
        main: ServerConfig,
        vhost: ServerConfig,
        registry: DaemonRegistry,
    }

    fn split(line: &str) -> (&str, &str) {
        line.split_once(' ').unwrap_or((line, ""))
    }

    impl Conf {
        fn main(&mut self, line: &str) -> Result<(), ConfigError> {
            let (name, args) = split(line);
            let target = Target::Server {
                config: &mut self.main,
                in_vhost: false,
                server_hostname: Some("localhost"),
                registry: &mut self.registry,
            };
            apply(target, name, args)
        }

        fn vhost(&mut self, host: Option<&str>, line: &str) -> Result<(), ConfigError> {
            let (name, args) = split(line);
            let target = Target::Server {
                config: &mut self.vhost,
                in_vhost: true,
                server_hostname: host,
                registry: &mut self.registry,
            };
            apply(target, name, args)
        }
    }

    fn dir(settings: &mut Settings, line: &str) -> Result<(), ConfigError> {
        let (name, args) = split(line);
        apply(Target::Directory(settings), name, args)
    }

    fn main_err(line: &str) -> String {
        Conf::default().main(line).unwrap_err().to_string()
    }

    #[test]
    fn table_is_complete_and_unique() {
        let mut names: Vec<_> = DIRECTIVES.iter().map(|d| d.name_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DIRECTIVES.len());
        for required in [
            "WSGIScriptAlias", "WSGIScriptAliasMatch", "WSGIDaemonProcess", "WSGIProcessGroup",
            "WSGIApplicationGroup", "WSGIRestrictStdout", "WSGIRestrictStdin", "WSGIRestrictSignal",
            "WSGIScriptReloading", "WSGIPythonHome", "WSGIPythonPath", "WSGIPythonOptimize",
            "WSGISocketPrefix", "WSGIPassAuthorization", "WSGIRestrictEmbedded", "WSGIImportScript",
            "WSGICallableObject", "WSGIChunkedRequest", "WSGIErrorOverride", "WSGIMapHEADToGET",
            "WSGILazyInitialization", "WSGIPythonEggs", "WSGIAcceptMutex", "WSGIRestrictProcess",
        ] {
            assert!(lookup(required).is_some(), "{required}");
        }
    }

    #[test]
    fn contexts_match_the_c_table() {
        let ctx = |n| lookup(n).unwrap().context;
        assert_eq!(ctx("WSGIScriptAlias"), Context::Server);
        assert_eq!(ctx("WSGIDaemonProcess"), Context::Server);
        assert_eq!(ctx("WSGIImportScript"), Context::Server);
        assert_eq!(ctx("WSGIPythonHome"), Context::MainServer);
        assert_eq!(ctx("WSGISocketPrefix"), Context::MainServer);
        assert_eq!(ctx("WSGIRestrictStdout"), Context::MainServer);
        assert_eq!(ctx("WSGIProcessGroup"), Context::ServerOrDirectory);
        assert_eq!(ctx("WSGIApplicationGroup"), Context::ServerOrDirectory);
        assert_eq!(ctx("WSGICallableObject"), Context::Anywhere);
        assert_eq!(ctx("WSGIPassAuthorization"), Context::Anywhere);
        assert_eq!(ctx("WSGIMapHEADToGET"), Context::Anywhere);
        assert_eq!(ctx("WSGIAccessScript"), Context::AuthConfig);
    }

    #[test]
    fn lookup_ignores_case() {
        assert_eq!(lookup("wsgiscriptalias").unwrap().name, c"WSGIScriptAlias");
        assert_eq!(lookup("WSGIProcessGroup").unwrap().usage_str(), "Name of the WSGI process group.");
        assert!(lookup("WSGINothing").is_none());
        let e = main_err("WSGIApplicationWrapper x");
        assert_eq!(
            e,
            "Invalid command 'WSGIApplicationWrapper', perhaps misspelled or defined by a module not included in the server configuration"
        );
    }

    #[test]
    fn script_alias() {
        let mut c = Conf::default();
        c.main("WSGIScriptAlias /app /srv/app.wsgi").unwrap();
        c.main(r#"WSGIScriptAliasMatch ^/(\w+) "/srv/$1 x.wsgi" callable-object=app"#).unwrap();
        assert_eq!(c.main.script_aliases.len(), 2);
        assert_eq!(c.main.script_aliases[0].pattern, AliasPattern::Prefix("/app".into()));
        assert_eq!(c.main.script_aliases[1].pattern, AliasPattern::Regex(r"^/(\w+)".into()));
        assert_eq!(c.main.script_aliases[1].target, "/srv/$1 x.wsgi");
    }

    #[test]
    fn script_alias_arity() {
        let two = "WSGIScriptAlias requires at least two arguments, Map location to target WSGI script file.";
        assert_eq!(main_err("WSGIScriptAlias"), two);
        assert_eq!(main_err("WSGIScriptAlias /"), two);
        assert_eq!(main_err(r#"WSGIScriptAlias "" /x"#), two);
        assert_eq!(main_err(r#"WSGIScriptAlias / """#), two);
        assert_eq!(
            main_err("WSGIScriptAliasMatch ^/x"),
            "WSGIScriptAliasMatch requires at least two arguments, Map location pattern to target WSGI script file."
        );
    }

    #[test]
    fn script_alias_group_checks_only_for_preload() {
        let mut c = Conf::default();
        // Like C: without application-group the reference is not checked yet.
        c.main("WSGIScriptAlias / /x.wsgi process-group=nope").unwrap();
        assert_eq!(
            c.main("WSGIScriptAlias / /x.wsgi process-group=nope application-group=x").unwrap_err().to_string(),
            "WSGI process group not yet configured."
        );
        c.main("WSGIScriptAlias / /x.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}").unwrap();
        c.main("WSGIDaemonProcess site").unwrap();
        c.main("WSGIScriptAlias / /x.wsgi process-group=site application-group=%{GLOBAL}").unwrap();
    }

    #[test]
    fn daemon_process() {
        let mut c = Conf::default();
        c.main("WSGIDaemonProcess site processes=2 threads=5 display-name=%{GROUP}").unwrap();
        let d: &DaemonProcess = &c.main.daemons[0];
        assert_eq!((d.name.as_str(), d.processes, d.threads), ("site", 2, 5));
        assert!(!c.registry.get("site").unwrap().is_virtual);
        assert_eq!(c.main("WSGIDaemonProcess").unwrap_err().to_string(), "Name of WSGI daemon process not supplied.");
        assert_eq!(c.main("WSGIDaemonProcess site").unwrap_err().to_string(), "Name duplicates previous WSGI daemon definition.");
        // Names are global: a virtual host cannot reuse one either.
        assert_eq!(
            c.vhost(Some("v1"), "WSGIDaemonProcess site").unwrap_err().to_string(),
            "Name duplicates previous WSGI daemon definition."
        );
        c.vhost(Some("v1"), "WSGIDaemonProcess v1 request-timeout=60").unwrap();
        assert_eq!(c.vhost.daemons[0].request_timeout, Duration::from_secs(60));
        assert!(c.registry.get("v1").unwrap().is_virtual);
    }

    #[test]
    fn vhost_group_access() {
        let mut c = Conf::default();
        c.vhost(Some("v1"), "WSGIDaemonProcess g1").unwrap();
        c.main("WSGIDaemonProcess global").unwrap();
        let use_g1 = "WSGIScriptAlias / /x process-group=g1 application-group=a";
        assert_eq!(c.vhost(Some("v2"), use_g1).unwrap_err().to_string(), "WSGI process group not accessible.");
        assert_eq!(c.main(use_g1).unwrap_err().to_string(), "WSGI process group not accessible.");
        assert_eq!(c.vhost(None, use_g1).unwrap_err().to_string(), "WSGI process group not matchable.");
        c.vhost(Some("v1"), use_g1).unwrap();
        c.vhost(Some("v2"), "WSGIScriptAlias / /x process-group=global application-group=a").unwrap();
        c.vhost(None, "WSGIDaemonProcess anon").unwrap();
        assert_eq!(
            c.vhost(Some("v3"), "WSGIImportScript /i.py process-group=anon application-group=%{GLOBAL}")
                .unwrap_err()
                .to_string(),
            "WSGI process group not matchable."
        );
    }

    #[test]
    fn import_script() {
        let mut c = Conf::default();
        assert_eq!(
            c.main("WSGIImportScript /i.py process-group=nope application-group=%{GLOBAL}").unwrap_err().to_string(),
            "WSGI process group not yet configured."
        );
        c.main("WSGIImportScript /i.py process-group=%{GLOBAL} application-group=%{GLOBAL}").unwrap();
        c.main("WSGIDaemonProcess d").unwrap();
        c.main("WSGIImportScript /j.py process-group=d application-group=app").unwrap();
        assert_eq!(c.main.import_scripts.len(), 2);
        assert_eq!(c.main.import_scripts[1].application_group, GroupSpec::Named("app".into()));
        assert_eq!(main_err("WSGIImportScript"), "Location of import script not supplied.");
        assert_eq!(main_err("WSGIImportScript /x.py"), "Name of WSGI application group required.");
        // Allowed in a virtual host.
        c.vhost(Some("v"), "WSGIImportScript /k.py process-group=%{GLOBAL} application-group=%{GLOBAL}").unwrap();
    }

    #[test]
    fn main_server_only_directives() {
        for line in [
            "WSGIPythonHome /venv", "WSGIPythonPath /a:/b", "WSGIPythonOptimize 1", "WSGIPythonEggs /tmp",
            "WSGISocketPrefix run/wsgi", "WSGIRestrictEmbedded On", "WSGIRestrictStdout On",
            "WSGIRestrictStdin On", "WSGIRestrictSignal Off", "WSGILazyInitialization Off",
            "WSGIDestroyInterpreter Off", "WSGIVerboseDebugging On", "WSGICaseSensitivity On",
            "WSGIAcceptMutex default", "WSGIPythonHashSeed random", "WSGIServerMetrics On",
            "WSGISocketRotation Off", "WSGIDontWriteBytecode On", "WSGIPythonWarnings ignore",
            "WSGINewRelicConfigFile /nr.ini", "WSGINewRelicEnvironment prod",
        ] {
            let mut c = Conf::default();
            c.main(line).unwrap();
            let name = split(line).0;
            assert_eq!(
                c.vhost(Some("v"), line).unwrap_err().to_string(),
                format!("{name} cannot occur within <VirtualHost> section")
            );
            let mut s = Settings::default();
            assert_eq!(dir(&mut s, line).unwrap_err().to_string(), format!("{name} not allowed here"));
        }
    }

    #[test]
    fn main_server_values() {
        let mut c = Conf::default();
        for line in [
            "WSGIPythonHome /venv", "WSGIPythonPath /a::/b", "WSGIPythonOptimize 2", "WSGIPythonEggs /eggs",
            "WSGISocketPrefix run/wsgi", "WSGIRestrictEmbedded on", "WSGIRestrictStdout On",
            "WSGIRestrictStdin On", "WSGIRestrictSignal Off", "WSGILazyInitialization Off",
            "WSGIDestroyInterpreter Off", "WSGIAcceptMutex FCNTL", "WSGIPythonHashSeed 42",
            "WSGIPythonWarnings ignore", "WSGIPythonWarnings error::DeprecationWarning",
            "WSGICaseSensitivity Off", "WSGIServerMetrics On", "WSGIVerboseDebugging Off",
        ] {
            c.main(line).unwrap();
        }
        let m = &c.main;
        assert_eq!(m.python_home.as_deref(), Some("/venv"));
        assert_eq!(m.python_path, ["/a", "/b"]);
        assert_eq!(m.python_optimize(), 2);
        assert_eq!(m.python_eggs.as_deref(), Some("/eggs"));
        assert_eq!(m.socket_prefix.as_deref(), Some("run/wsgi"));
        assert!(m.restrict_embedded() && m.restrict_stdout() && m.restrict_stdin() && !m.restrict_signal());
        assert!(!m.lazy_initialization() && !m.destroy_interpreter());
        assert_eq!(m.accept_mutex.as_deref(), Some("fcntl"));
        assert_eq!(m.python_hash_seed, Some(HashSeed::Fixed(42)));
        assert_eq!(m.python_warnings, ["ignore", "error::DeprecationWarning"]);
        assert_eq!(m.case_sensitivity, Some(false));
        assert_eq!(m.server_metrics, Some(true));
        assert_eq!(m.verbose_debugging, Some(false));
    }

    #[test]
    fn main_server_errors() {
        assert_eq!(main_err("WSGIRestrictStdout maybe"), "WSGIRestrictStdout must be one of: Off | On");
        assert_eq!(main_err("WSGIDestroyInterpreter x"), "WSGIDestroyInterpreter must be one of: Off | On");
        assert_eq!(
            main_err("WSGIPythonHome a b"),
            "WSGIPythonHome takes one argument, Python prefix/exec_prefix absolute path names."
        );
        assert_eq!(main_err("WSGIPythonPath \"/a:/b\" \"/c\""), "WSGIPythonPath takes one argument, Python module search path.");
        assert_eq!(main_err("WSGISocketPrefix \"\""), "WSGISocketPrefix takes one argument, Path prefix for the daemon process sockets.");
        assert_eq!(
            main_err("WSGIPythonHashSeed 4294967296"),
            "WSGIPythonHashSeed must be \"random\" or an integer in range [0; 4294967295]"
        );
        assert!(main_err("WSGIPythonHashSeed -1").starts_with("WSGIPythonHashSeed must be"));
        assert_eq!(
            main_err("WSGIAcceptMutex bogus"),
            "Accept mutex lock mechanism 'bogus' is invalid. Valid accept mutex mechanisms for this platform are: default, flock, fcntl, sysvsem, posixsem, pthread."
        );
        assert_eq!(main_err("WSGIPythonOptimize abc"), "WSGIPythonOptimize must be 0, 1 or 2, not 'abc'");
        assert_eq!(main_err("WSGIPythonOptimize -5"), "WSGIPythonOptimize must be 0, 1 or 2, not '-5'");
        // Arity is reported before the virtual host check, as httpd does.
        assert_eq!(
            Conf::default().vhost(Some("v"), "WSGIPythonHome").unwrap_err().to_string(),
            "WSGIPythonHome takes one argument, Python prefix/exec_prefix absolute path names."
        );
    }

    #[test]
    fn settings_directives_at_every_level() {
        let lines = [
            "WSGIProcessGroup %{GLOBAL}", "WSGIApplicationGroup %{RESOURCE}", "WSGICallableObject app",
            "WSGIPassAuthorization On", "WSGIScriptReloading Off", "WSGIErrorOverride On",
            "WSGIChunkedRequest On", "WSGIMapHEADToGET Off", "WSGIIgnoreActivity On",
            "WSGIEnableSendfile On", "WSGIPassApacheRequest On", "WSGIRestrictProcess a %{GLOBAL}",
            "WSGITrustedProxyHeaders X-Forwarded-For X-Real-IP", "WSGITrustedProxies 10.0.0.0/8 ::1",
            "WSGIDispatchScript /d.py", "WSGIHandlerScript h /h.py",
        ];
        let expect = |s: &Settings| {
            assert_eq!(s.process_group, Some(GroupSpec::Global));
            assert_eq!(s.application_group, Some(GroupSpec::Resource));
            assert_eq!(s.callable_object.as_deref(), Some("app"));
            assert_eq!(s.pass_authorization, Some(true));
            assert_eq!(s.script_reloading, Some(false));
            assert_eq!(s.error_override, Some(true));
            assert_eq!(s.chunked_request, Some(true));
            assert_eq!(s.map_head_to_get, Some(MapHeadToGet::Off));
            assert_eq!(s.ignore_activity, Some(true));
            assert_eq!(s.enable_sendfile, Some(true));
            assert_eq!(s.pass_apache_request, Some(true));
            assert_eq!(s.restrict_process, Some(vec!["a".to_string(), String::new()]));
            assert_eq!(
                s.trusted_proxy_headers,
                Some(vec!["HTTP_X_FORWARDED_FOR".to_string(), "HTTP_X_REAL_IP".to_string()])
            );
            assert_eq!(s.trusted_proxies.as_ref().map(Vec::len), Some(2));
            assert_eq!(s.dispatch_script.as_ref().unwrap().path, "/d.py");
            assert_eq!(s.handler_script("h").unwrap().path, "/h.py");
        };
        let mut c = Conf::default();
        let mut d = Settings::default();
        for line in lines {
            c.main(line).unwrap();
            c.vhost(Some("v"), line).unwrap();
            dir(&mut d, line).unwrap();
        }
        expect(&c.main.settings);
        expect(&c.vhost.settings);
        expect(&d);
    }

    #[test]
    fn settings_errors() {
        let mut s = Settings::default();
        let mut e = |line| dir(&mut s, line).unwrap_err().to_string();
        assert_eq!(e("WSGIProcessGroup"), "WSGIProcessGroup takes one argument, Name of the WSGI process group.");
        assert_eq!(e("WSGIProcessGroup a b"), "WSGIProcessGroup takes one argument, Name of the WSGI process group.");
        assert_eq!(e("WSGIApplicationGroup \"\""), "WSGIApplicationGroup takes one argument, Application interpreter group.");
        assert_eq!(e("WSGICallableObject \"\""), "WSGICallableObject takes one argument, Name of entry point in WSGI script file.");
        assert_eq!(e("WSGIPassAuthorization yes"), "WSGIPassAuthorization must be one of: Off | On");
        assert_eq!(e("WSGIScriptReloading 1"), "WSGIScriptReloading must be one of: Off | On");
        assert_eq!(e("WSGIErrorOverride x"), "WSGIErrorOverride must be one of: Off | On");
        assert_eq!(e("WSGIChunkedRequest x"), "WSGIChunkedRequest must be one of: Off | On");
        assert_eq!(e("WSGIMapHEADToGET x"), "WSGIMapHEADToGET must be one of: Off | On | Auto");
        assert_eq!(e("WSGIGroupAuthoritative x"), "WSGIGroupAuthoritative must be one of: Off | On");
        assert_eq!(e("WSGIApplicationGroup %{FOO}"), "WSGIApplicationGroup: unknown substitution '%{FOO}'.");
        assert!(e("WSGIProcessGroup %{RESOURCE}").contains("cannot name a daemon process group"));
        assert_eq!(e("WSGITrustedProxies bogus"), r#"Unable to parse trusted proxy IP address/subnet of "bogus"."#);
        assert_eq!(e("WSGIScriptAlias / /x"), "WSGIScriptAlias not allowed here");
        assert_eq!(e("WSGIDaemonProcess d"), "WSGIDaemonProcess not allowed here");
        assert_eq!(e("WSGIImportScript /x"), "WSGIImportScript not allowed here");
        assert_eq!(e("WSGIHandlerScript"), "Name for handler script not supplied.");
        assert_eq!(e("WSGIDispatchScript"), "Location of dispatch script not supplied.");
        assert!(e("WSGICallableObject 'app").starts_with("Unterminated ' quote"));
    }

    #[test]
    fn auth_directives_are_directory_only() {
        let mut s = Settings::default();
        dir(&mut s, "WSGIAccessScript /a.py application-group=x").unwrap();
        dir(&mut s, "WSGIAuthUserScript /u.py").unwrap();
        dir(&mut s, "WSGIAuthGroupScript /g.py").unwrap();
        dir(&mut s, "WSGIGroupAuthoritative Off").unwrap();
        assert_eq!(s.access_script.as_ref().unwrap().application_group, Some(GroupSpec::Named("x".into())));
        assert_eq!(s.auth_user_script.as_ref().unwrap().path, "/u.py");
        assert_eq!(s.auth_group_script.as_ref().unwrap().path, "/g.py");
        assert_eq!(s.group_authoritative, Some(false));
        let mut c = Conf::default();
        assert_eq!(c.main("WSGIAccessScript /a.py").unwrap_err().to_string(), "WSGIAccessScript not allowed here");
        assert_eq!(c.main("WSGIGroupAuthoritative On").unwrap_err().to_string(), "WSGIGroupAuthoritative not allowed here");
    }

    #[test]
    fn repeated_list_directives_accumulate() {
        let mut s = Settings::default();
        dir(&mut s, "WSGITrustedProxies 1.2.3.4").unwrap();
        dir(&mut s, "WSGITrustedProxies 5.6.7.8").unwrap();
        assert_eq!(s.trusted_proxies.as_ref().map(Vec::len), Some(2));
        dir(&mut s, "WSGIRestrictProcess").unwrap();
        assert_eq!(s.restrict_process, Some(vec![]));
        dir(&mut s, "WSGIHandlerScript h /one.py").unwrap();
        dir(&mut s, "WSGIHandlerScript h /two.py").unwrap();
        assert_eq!(s.handler_scripts.len(), 1);
        assert_eq!(s.handler_script("h").unwrap().path, "/two.py");
    }

    #[test]
    fn check_finds_unknown_process_groups() {
        let mut c = Conf::default();
        c.main("WSGIDaemonProcess site").unwrap();
        c.vhost(Some("v"), "WSGIDaemonProcess v-site").unwrap();
        c.main("WSGIProcessGroup site").unwrap();
        c.main("WSGIScriptAlias /a /a.wsgi process-group=%{GLOBAL}").unwrap();
        // A group of another server is fine here (the 80/443 virtual host pattern).
        c.main("WSGIScriptAlias /b /b.wsgi process-group=v-site").unwrap();
        c.vhost(Some("v"), "WSGIProcessGroup %{ENV:PG}").unwrap();
        assert_eq!(check(&[&c.main, &c.vhost]), Ok(()));

        let mut d = Settings::default();
        dir(&mut d, "WSGIProcessGroup site").unwrap();
        assert_eq!(check_directory(&d, &[&c.main, &c.vhost]), Ok(()));
        dir(&mut d, "WSGIProcessGroup nope").unwrap();
        assert_eq!(
            check_directory(&d, &[&c.main, &c.vhost]).unwrap_err().to_string(),
            "No WSGI daemon process called 'nope' has been configured (WSGIProcessGroup)."
        );

        c.vhost(Some("v"), "WSGIScriptAliasMatch ^/x /x.wsgi process-group=ghost").unwrap();
        assert_eq!(
            check(&[&c.main, &c.vhost]).unwrap_err().to_string(),
            "No WSGI daemon process called 'ghost' has been configured (WSGIScriptAliasMatch)."
        );

        let mut only_main = Conf::default();
        only_main.main("WSGIProcessGroup later").unwrap();
        only_main.main("WSGIDaemonProcess later").unwrap();
        assert_eq!(check(&[&only_main.main]), Ok(()));
        only_main.main("WSGIHandlerScript h /h.py process-group=ghost").unwrap();
        assert!(check(&[&only_main.main]).unwrap_err().to_string().contains("(WSGIHandlerScript)"));
    }
}
