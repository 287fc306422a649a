//! Process and application group names, and their `%{...}` substitutions.
//!
//! C mod_wsgi keeps group names as strings and expands `%{...}` per request;
//! here the directive value is parsed once into a [`GroupSpec`] and expanded
//! with a [`GroupContext`] describing the request.

use std::fmt;

use super::error::{ConfigError, msg};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupSpec {
    /// `%{GLOBAL}`: the empty name (embedded mode / main interpreter).
    Global,
    /// `%{SERVER}`: ServerName, plus `:port` unless the port is 80 or 443.
    Server,
    /// `%{HOST}`: the request's Host (falling back to ServerName), same port rule.
    Host,
    /// `%{RESOURCE}`: `%{SERVER}|SCRIPT_NAME`; the default application group.
    Resource,
    /// `%{ENV:name}`: request notes, then subprocess_env, then the process environment.
    Env(String),
    /// A literal name.
    Named(String),
}

impl GroupSpec {
    /// True for names known when the configuration is read.
    pub fn is_literal(&self) -> bool {
        matches!(self, GroupSpec::Global | GroupSpec::Named(_))
    }

    /// Reads a name the way C does at request time (a value from the
    /// environment or a dispatch script): anything unrecognised is a name.
    pub fn from_runtime(value: &str) -> GroupSpec {
        match value {
            "%{GLOBAL}" => GroupSpec::Global,
            "%{SERVER}" => GroupSpec::Server,
            "%{HOST}" => GroupSpec::Host,
            "%{RESOURCE}" => GroupSpec::Resource,
            _ => match env_name(value) {
                Some(name) if !name.is_empty() => GroupSpec::Env(name.to_string()),
                _ => GroupSpec::Named(value.to_string()),
            },
        }
    }
}

impl fmt::Display for GroupSpec {
    /// The spec as written in the configuration.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupSpec::Global => f.write_str("%{GLOBAL}"),
            GroupSpec::Server => f.write_str("%{SERVER}"),
            GroupSpec::Host => f.write_str("%{HOST}"),
            GroupSpec::Resource => f.write_str("%{RESOURCE}"),
            GroupSpec::Env(name) => write!(f, "%{{ENV:{name}}}"),
            GroupSpec::Named(name) => f.write_str(name),
        }
    }
}

fn env_name(value: &str) -> Option<&str> {
    value.strip_prefix("%{ENV:")?.strip_suffix('}')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Process,
    Application,
}

fn kind_of(directive: &str) -> Kind {
    let process = ["WSGIProcessGroup", "process-group", "WSGIRestrictProcess"];
    if process.iter().any(|d| d.eq_ignore_ascii_case(directive)) {
        Kind::Process
    } else {
        Kind::Application
    }
}

/// Parses a group value given to `directive` (`WSGIProcessGroup`,
/// `WSGIApplicationGroup`, or the `process-group` / `application-group`
/// options).
///
/// Both kinds take `%{GLOBAL}`, `%{SERVER}`, `%{HOST}`, `%{ENV:var}` and
/// literal names. `%{RESOURCE}` is only for application groups: as a process
/// group it expands to `host|/path`, which never names a daemon group. C
/// treats an unknown `%{...}` as a literal name; here it is an error, since no
/// daemon or interpreter is meant to be called `%{SERVERNAME}`.
pub fn parse_group_spec(directive: &str, value: &str) -> Result<GroupSpec, ConfigError> {
    let kind = kind_of(directive);
    if value.is_empty() {
        return Err(ConfigError::Fixed(match kind {
            Kind::Process => msg::PROCESS_GROUP_NAME,
            Kind::Application => msg::APPLICATION_GROUP_NAME,
        }));
    }
    if !value.starts_with("%{") {
        return Ok(GroupSpec::Named(value.to_string()));
    }
    let bad = |problem| ConfigError::BadGroup {
        directive: directive.to_string(),
        value: value.to_string(),
        problem,
    };
    match GroupSpec::from_runtime(value) {
        GroupSpec::Resource if kind == Kind::Process => {
            Err(bad("%{RESOURCE} cannot name a daemon process group"))
        }
        GroupSpec::Named(_) if env_name(value) == Some("") => Err(bad("empty variable name in")),
        GroupSpec::Named(_) => Err(bad("unknown substitution")),
        spec => Ok(spec),
    }
}

/// What a request supplies to expand a [`GroupSpec`].
pub struct GroupContext<'a> {
    /// r->server->server_hostname (ServerName).
    pub server_hostname: &'a str,
    /// ap_get_server_port(r).
    pub port: u16,
    /// r->hostname (from the Host header); None or empty falls back to ServerName.
    pub request_hostname: Option<&'a str>,
    /// SCRIPT_NAME: the part of the URI the WSGI script is mounted at.
    pub script_name: &'a str,
    /// Looks a variable up in r->notes, then r->subprocess_env, then getenv().
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl GroupContext<'_> {
    fn with_port(&self, host: &str) -> String {
        if self.port == 80 || self.port == 443 {
            host.to_string()
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// C mod_wsgi 4.x folds repeated slashes and lower-cases SCRIPT_NAME before
/// using it in `%{RESOURCE}`, so /App and //app share an interpreter.
fn resource_script_name(script_name: &str) -> String {
    let mut out = String::with_capacity(script_name.len());
    for c in script_name.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn expand(spec: &GroupSpec, ctx: &GroupContext<'_>) -> String {
    match spec {
        GroupSpec::Global => String::new(),
        GroupSpec::Named(name) => name.clone(),
        GroupSpec::Server => ctx.with_port(ctx.server_hostname),
        GroupSpec::Host => match ctx.request_hostname {
            Some(h) if !h.is_empty() => ctx.with_port(h),
            _ => ctx.with_port(ctx.server_hostname),
        },
        GroupSpec::Resource => format!(
            "{}|{}",
            ctx.with_port(ctx.server_hostname),
            resource_script_name(ctx.script_name)
        ),
        GroupSpec::Env(name) => match (ctx.env)(name) {
            // A value that is itself a substitution is expanded once more,
            // but never another %{ENV:...}, so this cannot loop.
            Some(value) if value.starts_with('%') && !value.starts_with("%{ENV:") => {
                expand(&GroupSpec::from_runtime(&value), ctx)
            }
            Some(value) => value,
            // As C: an unset variable leaves the spec text itself as the name.
            None => spec.to_string(),
        },
    }
}

/// The application group (interpreter name) for a request.
pub fn expand_application_group(spec: &GroupSpec, ctx: &GroupContext<'_>) -> String {
    expand(spec, ctx)
}

/// The process group (daemon name, "" for embedded) for a request.
pub fn expand_process_group(spec: &GroupSpec, ctx: &GroupContext<'_>) -> String {
    expand(spec, ctx)
}

/// The callable object name for a request: `application` by default,
/// `%{ENV:var}` looked up, any other `%...` falling back to `application`.
pub fn expand_callable_object(value: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> String {
    const DEFAULT: &str = "application";
    let Some(value) = value else { return DEFAULT.to_string() };
    if !value.starts_with('%') {
        return value.to_string();
    }
    match env_name(value) {
        Some(name) if !name.is_empty() => env(name).unwrap_or_else(|| DEFAULT.to_string()),
        _ => DEFAULT.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn ctx<'a>(port: u16, script_name: &'a str, env: &'a dyn Fn(&str) -> Option<String>) -> GroupContext<'a> {
        GroupContext {
            server_hostname: "example.com",
            port,
            request_hostname: Some("alias.example.com"),
            script_name,
            env,
        }
    }

    #[test]
    fn parses_every_token() {
        let p = |v| parse_group_spec("WSGIApplicationGroup", v);
        assert_eq!(p("%{GLOBAL}"), Ok(GroupSpec::Global));
        assert_eq!(p("%{SERVER}"), Ok(GroupSpec::Server));
        assert_eq!(p("%{HOST}"), Ok(GroupSpec::Host));
        assert_eq!(p("%{RESOURCE}"), Ok(GroupSpec::Resource));
        assert_eq!(p("%{ENV:APP}"), Ok(GroupSpec::Env("APP".into())));
        assert_eq!(p("myapp"), Ok(GroupSpec::Named("myapp".into())));
        assert_eq!(p("%notasub"), Ok(GroupSpec::Named("%notasub".into())));
    }

    #[test]
    fn process_group_tokens() {
        let p = |v| parse_group_spec("WSGIProcessGroup", v);
        assert_eq!(p("%{GLOBAL}"), Ok(GroupSpec::Global));
        assert_eq!(p("%{ENV:PG}"), Ok(GroupSpec::Env("PG".into())));
        assert_eq!(p("%{SERVER}"), Ok(GroupSpec::Server));
        assert_eq!(p("site"), Ok(GroupSpec::Named("site".into())));
        let e = p("%{RESOURCE}").unwrap_err();
        assert_eq!(e.to_string(), "WSGIProcessGroup: %{RESOURCE} cannot name a daemon process group '%{RESOURCE}'.");
        assert!(parse_group_spec("process-group", "%{RESOURCE}").is_err());
        assert!(parse_group_spec("application-group", "%{RESOURCE}").is_ok());
    }

    #[test]
    fn bad_tokens() {
        let e = parse_group_spec("WSGIApplicationGroup", "%{FOO}").unwrap_err();
        assert_eq!(e.to_string(), "WSGIApplicationGroup: unknown substitution '%{FOO}'.");
        let e = parse_group_spec("application-group", "%{ENV:}").unwrap_err();
        assert_eq!(e.to_string(), "application-group: empty variable name in '%{ENV:}'.");
        assert!(parse_group_spec("WSGIApplicationGroup", "%{global}").is_err());
        assert!(parse_group_spec("WSGIApplicationGroup", "%{ENV:X").is_err());
    }

    #[test]
    fn empty_names_use_c_messages() {
        assert_eq!(
            parse_group_spec("process-group", "").unwrap_err().to_string(),
            "Invalid name for WSGI process group."
        );
        assert_eq!(
            parse_group_spec("application-group", "").unwrap_err().to_string(),
            "Invalid name for WSGI application group."
        );
    }

    #[test]
    fn display_round_trips() {
        for v in ["%{GLOBAL}", "%{SERVER}", "%{HOST}", "%{RESOURCE}", "%{ENV:X}", "name"] {
            assert_eq!(parse_group_spec("WSGIApplicationGroup", v).unwrap().to_string(), v);
        }
    }

    #[test]
    fn literal_specs() {
        assert!(GroupSpec::Global.is_literal());
        assert!(GroupSpec::Named("a".into()).is_literal());
        assert!(!GroupSpec::Resource.is_literal());
        assert!(!GroupSpec::Env("X".into()).is_literal());
    }

    #[test]
    fn server_leaves_out_80_and_443() {
        assert_eq!(expand_application_group(&GroupSpec::Server, &ctx(80, "/", &no_env)), "example.com");
        assert_eq!(expand_application_group(&GroupSpec::Server, &ctx(443, "/", &no_env)), "example.com");
        assert_eq!(expand_application_group(&GroupSpec::Server, &ctx(8080, "/", &no_env)), "example.com:8080");
    }

    #[test]
    fn resource_is_server_bar_script_name() {
        assert_eq!(expand_application_group(&GroupSpec::Resource, &ctx(80, "/app", &no_env)), "example.com|/app");
        assert_eq!(
            expand_application_group(&GroupSpec::Resource, &ctx(8000, "/app", &no_env)),
            "example.com:8000|/app"
        );
        // Mounted at the root SCRIPT_NAME is empty.
        assert_eq!(expand_application_group(&GroupSpec::Resource, &ctx(80, "", &no_env)), "example.com|");
        // Case and repeated slashes are folded, as C 4.x does.
        assert_eq!(expand_application_group(&GroupSpec::Resource, &ctx(80, "//My//App", &no_env)), "example.com|/my/app");
    }

    #[test]
    fn host_uses_request_host_then_server_name() {
        assert_eq!(expand_process_group(&GroupSpec::Host, &ctx(8080, "/", &no_env)), "alias.example.com:8080");
        let mut c = ctx(80, "/", &no_env);
        c.request_hostname = Some("");
        assert_eq!(expand_process_group(&GroupSpec::Host, &c), "example.com");
        c.request_hostname = None;
        assert_eq!(expand_process_group(&GroupSpec::Host, &c), "example.com");
    }

    #[test]
    fn global_and_named() {
        assert_eq!(expand_process_group(&GroupSpec::Global, &ctx(80, "/", &no_env)), "");
        assert_eq!(expand_process_group(&GroupSpec::Named("d".into()), &ctx(80, "/", &no_env)), "d");
    }

    #[test]
    fn env_lookup_and_fallback() {
        let env = |k: &str| match k {
            "PG" => Some("daemon1".to_string()),
            "SUB" => Some("%{SERVER}".to_string()),
            "LOOP" => Some("%{ENV:LOOP}".to_string()),
            "GLOBAL" => Some("%{GLOBAL}".to_string()),
            _ => None,
        };
        let c = ctx(8080, "/x", &env);
        assert_eq!(expand_process_group(&GroupSpec::Env("PG".into()), &c), "daemon1");
        assert_eq!(expand_application_group(&GroupSpec::Env("SUB".into()), &c), "example.com:8080");
        assert_eq!(expand_application_group(&GroupSpec::Env("GLOBAL".into()), &c), "");
        // A value naming another ENV is taken literally, not followed.
        assert_eq!(expand_application_group(&GroupSpec::Env("LOOP".into()), &c), "%{ENV:LOOP}");
        // Unset: the spec text itself.
        assert_eq!(expand_application_group(&GroupSpec::Env("NOPE".into()), &c), "%{ENV:NOPE}");
    }

    #[test]
    fn callable_object() {
        let env = |k: &str| (k == "CO").then(|| "app2".to_string());
        assert_eq!(expand_callable_object(None, &env), "application");
        assert_eq!(expand_callable_object(Some("app"), &env), "app");
        assert_eq!(expand_callable_object(Some("%{ENV:CO}"), &env), "app2");
        assert_eq!(expand_callable_object(Some("%{ENV:NONE}"), &env), "application");
        assert_eq!(expand_callable_object(Some("%{OTHER}"), &env), "application");
        assert_eq!(expand_callable_object(Some("%"), &env), "application");
    }
}
