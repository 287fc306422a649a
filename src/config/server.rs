//! Per-server (main server or virtual host) configuration.

use super::daemon::DaemonProcess;
use super::script_alias::ScriptAlias;
use super::scripts::ImportScript;
use super::settings::Settings;

/// WSGIPythonHashSeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashSeed {
    Random,
    Fixed(u32),
}

/// Everything one server_rec carries. Python and process-wide directives
/// (WSGIPythonHome, WSGIRestrict*, ...) can only be set in the main server;
/// they are `Option` so the effective value (with its default) is explicit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerConfig {
    /// In directive order; earlier matches win.
    pub script_aliases: Vec<ScriptAlias>,
    /// WSGIDaemonProcess groups defined in this server (not inherited).
    pub daemons: Vec<DaemonProcess>,
    /// WSGIImportScript entries of this server (not inherited).
    pub import_scripts: Vec<ImportScript>,
    /// Server-level values of the per-directory directives.
    pub settings: Settings,

    /// WSGISocketPrefix, as written (the glue makes it ServerRoot-relative).
    pub socket_prefix: Option<String>,
    pub socket_rotation: Option<bool>,
    /// WSGIAcceptMutex, lower-cased.
    pub accept_mutex: Option<String>,
    pub python_home: Option<String>,
    /// WSGIPythonPath split on ':' (empty when unset).
    pub python_path: Vec<String>,
    pub python_eggs: Option<String>,
    /// WSGIPythonOptimize: 0, 1 or 2.
    pub python_optimize: Option<i32>,
    pub python_hash_seed: Option<HashSeed>,
    /// WSGIPythonWarnings: each occurrence adds one -W option.
    pub python_warnings: Vec<String>,
    pub dont_write_bytecode: Option<bool>,
    pub restrict_embedded: Option<bool>,
    pub restrict_stdin: Option<bool>,
    pub restrict_stdout: Option<bool>,
    pub restrict_signal: Option<bool>,
    pub case_sensitivity: Option<bool>,
    pub lazy_initialization: Option<bool>,
    pub destroy_interpreter: Option<bool>,
    pub verbose_debugging: Option<bool>,
    pub server_metrics: Option<bool>,
    pub newrelic_config_file: Option<String>,
    pub newrelic_environment: Option<String>,
}

impl ServerConfig {
    /// The configuration of a virtual host (`add`) on top of the main
    /// server's (`base`). As C: the vhost's script aliases are tried before
    /// the main server's; settings are merged field by field. Daemon groups
    /// and import scripts stay with the server that defined them (C keeps
    /// them in one global list), so collect them from the unmerged configs.
    pub fn merge(base: &ServerConfig, add: &ServerConfig) -> ServerConfig {
        let or = |a: &Option<String>, b: &Option<String>| a.clone().or_else(|| b.clone());
        let mut script_aliases = add.script_aliases.clone();
        script_aliases.extend(base.script_aliases.iter().cloned());
        ServerConfig {
            script_aliases,
            daemons: add.daemons.clone(),
            import_scripts: add.import_scripts.clone(),
            settings: Settings::merge(&base.settings, &add.settings),
            socket_prefix: or(&add.socket_prefix, &base.socket_prefix),
            socket_rotation: add.socket_rotation.or(base.socket_rotation),
            accept_mutex: or(&add.accept_mutex, &base.accept_mutex),
            python_home: or(&add.python_home, &base.python_home),
            python_path: if add.python_path.is_empty() { base.python_path.clone() } else { add.python_path.clone() },
            python_eggs: or(&add.python_eggs, &base.python_eggs),
            python_optimize: add.python_optimize.or(base.python_optimize),
            python_hash_seed: add.python_hash_seed.or(base.python_hash_seed),
            python_warnings: if add.python_warnings.is_empty() {
                base.python_warnings.clone()
            } else {
                add.python_warnings.clone()
            },
            dont_write_bytecode: add.dont_write_bytecode.or(base.dont_write_bytecode),
            restrict_embedded: add.restrict_embedded.or(base.restrict_embedded),
            restrict_stdin: add.restrict_stdin.or(base.restrict_stdin),
            restrict_stdout: add.restrict_stdout.or(base.restrict_stdout),
            restrict_signal: add.restrict_signal.or(base.restrict_signal),
            case_sensitivity: add.case_sensitivity.or(base.case_sensitivity),
            lazy_initialization: add.lazy_initialization.or(base.lazy_initialization),
            destroy_interpreter: add.destroy_interpreter.or(base.destroy_interpreter),
            verbose_debugging: add.verbose_debugging.or(base.verbose_debugging),
            server_metrics: add.server_metrics.or(base.server_metrics),
            newrelic_config_file: or(&add.newrelic_config_file, &base.newrelic_config_file),
            newrelic_environment: or(&add.newrelic_environment, &base.newrelic_environment),
        }
    }

    // Effective values of the process-wide flags, with C 4.9.4's defaults.

    pub fn restrict_embedded(&self) -> bool {
        self.restrict_embedded.unwrap_or(false)
    }
    pub fn restrict_stdin(&self) -> bool {
        self.restrict_stdin.unwrap_or(false)
    }
    pub fn restrict_stdout(&self) -> bool {
        self.restrict_stdout.unwrap_or(false)
    }
    pub fn restrict_signal(&self) -> bool {
        self.restrict_signal.unwrap_or(true)
    }
    /// WSGISocketRotation: On by default (socket names carry the generation).
    pub fn socket_rotation(&self) -> bool {
        self.socket_rotation.unwrap_or(true)
    }
    /// WSGICaseSensitivity: On by default (Linux file systems are case sensitive).
    pub fn case_sensitivity(&self) -> bool {
        self.case_sensitivity.unwrap_or(true)
    }
    pub fn lazy_initialization(&self) -> bool {
        self.lazy_initialization.unwrap_or(true)
    }
    pub fn destroy_interpreter(&self) -> bool {
        self.destroy_interpreter.unwrap_or(true)
    }
    pub fn python_optimize(&self) -> i32 {
        self.python_optimize.unwrap_or(0)
    }

    /// WSGIPythonHashSeed as a fixed seed; None for random (Python's default).
    pub fn fixed_hash_seed(&self) -> Option<u32> {
        match self.python_hash_seed {
            Some(HashSeed::Fixed(seed)) => Some(seed),
            Some(HashSeed::Random) | None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::script_alias::{AliasPattern, ScriptOptions};

    fn alias(prefix: &str) -> ScriptAlias {
        ScriptAlias { pattern: AliasPattern::Prefix(prefix.into()), target: "/x".into(), options: ScriptOptions::default() }
    }

    #[test]
    fn vhost_aliases_come_first() {
        let base = ServerConfig { script_aliases: vec![alias("/main")], ..ServerConfig::default() };
        let add = ServerConfig { script_aliases: vec![alias("/v1"), alias("/v2")], ..ServerConfig::default() };
        let m = ServerConfig::merge(&base, &add);
        let order: Vec<_> = m
            .script_aliases
            .iter()
            .map(|a| match &a.pattern {
                AliasPattern::Prefix(p) | AliasPattern::Regex(p) => p.as_str(),
            })
            .collect();
        assert_eq!(order, ["/v1", "/v2", "/main"]);
    }

    #[test]
    fn daemons_and_imports_are_not_inherited() {
        let base = ServerConfig { daemons: vec![DaemonProcess::new("g")], ..ServerConfig::default() };
        let m = ServerConfig::merge(&base, &ServerConfig::default());
        assert!(m.daemons.is_empty());
        assert!(m.import_scripts.is_empty());
    }

    #[test]
    fn main_server_values_are_inherited() {
        let base = ServerConfig {
            python_home: Some("/venv".into()),
            restrict_stdout: Some(true),
            python_warnings: vec!["ignore".into()],
            settings: Settings { callable_object: Some("app".into()), ..Settings::default() },
            ..ServerConfig::default()
        };
        let add = ServerConfig {
            settings: Settings { pass_authorization: Some(true), ..Settings::default() },
            ..ServerConfig::default()
        };
        let m = ServerConfig::merge(&base, &add);
        assert_eq!(m.python_home.as_deref(), Some("/venv"));
        assert!(m.restrict_stdout());
        assert_eq!(m.python_warnings, ["ignore"]);
        assert_eq!(m.settings.callable_object.as_deref(), Some("app"));
        assert_eq!(m.settings.pass_authorization, Some(true));
    }

    #[test]
    fn defaults() {
        let c = ServerConfig::default();
        assert!(!c.restrict_embedded());
        assert!(!c.restrict_stdin());
        assert!(!c.restrict_stdout());
        assert!(c.restrict_signal());
        assert!(c.lazy_initialization());
        assert!(c.destroy_interpreter());
        assert_eq!(c.python_optimize(), 0);
    }
}
