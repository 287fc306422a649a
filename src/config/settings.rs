//! Settings valid per directory as well as per server: each is unset until a
//! directive sets it, so nested scopes can be merged (the more specific one
//! wins) before the defaults are applied once per request.

use super::group::GroupSpec;
use super::proxies::TrustedProxy;
use super::script_alias::ScriptOptions;
use super::scripts::ScriptFile;
use super::values::MapHeadToGet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// WSGIProcessGroup.
    pub process_group: Option<GroupSpec>,
    /// WSGIApplicationGroup.
    pub application_group: Option<GroupSpec>,
    /// WSGICallableObject (may be `%{ENV:var}`).
    pub callable_object: Option<String>,
    pub pass_authorization: Option<bool>,
    pub script_reloading: Option<bool>,
    pub error_override: Option<bool>,
    pub chunked_request: Option<bool>,
    pub map_head_to_get: Option<MapHeadToGet>,
    pub ignore_activity: Option<bool>,
    pub enable_sendfile: Option<bool>,
    pub pass_apache_request: Option<bool>,
    /// WSGIRestrictProcess: the daemon groups selectable here ("" = embedded).
    pub restrict_process: Option<Vec<String>>,
    /// WSGITrustedProxyHeaders, as CGI names (X-Forwarded-For -> HTTP_X_FORWARDED_FOR).
    pub trusted_proxy_headers: Option<Vec<String>>,
    pub trusted_proxies: Option<Vec<TrustedProxy>>,
    pub dispatch_script: Option<ScriptFile>,
    /// WSGIHandlerScript entries by handler name.
    pub handler_scripts: Vec<(String, ScriptFile)>,
    /// Directory (and .htaccess) only, OR_AUTHCFG in C.
    pub access_script: Option<ScriptFile>,
    pub auth_user_script: Option<ScriptFile>,
    pub auth_group_script: Option<ScriptFile>,
    pub group_authoritative: Option<bool>,
}

/// Settings with every default applied, for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveSettings {
    pub process_group: GroupSpec,
    pub application_group: GroupSpec,
    /// `application` unless set. A WSGICallableObject of `%{ENV:var}` is
    /// left as written for [`super::expand_callable_object`]; the
    /// callable-object= of WSGIScriptAlias is used as is, as in C.
    pub callable_object: String,
    pub pass_authorization: bool,
    pub script_reloading: bool,
    pub error_override: bool,
    pub chunked_request: bool,
    pub map_head_to_get: MapHeadToGet,
    pub ignore_activity: bool,
    pub enable_sendfile: bool,
    pub pass_apache_request: bool,
    pub group_authoritative: bool,
    /// WSGITrustedProxyHeaders as CGI names, in the order given.
    pub trusted_proxy_headers: Vec<String>,
    /// WSGITrustedProxies; None trusts every client.
    pub trusted_proxies: Option<Vec<TrustedProxy>>,
    /// WSGIRestrictProcess; None allows every group.
    pub restrict_process: Option<Vec<String>>,
    pub dispatch_script: Option<ScriptFile>,
}

fn pick<T: Clone>(add: &Option<T>, base: &Option<T>) -> Option<T> {
    add.clone().or_else(|| base.clone())
}

impl Settings {
    /// `add` (the more specific scope) wins field by field; handler scripts
    /// are overlaid by name, as C's apr_hash_overlay.
    pub fn merge(base: &Settings, add: &Settings) -> Settings {
        let mut handler_scripts = add.handler_scripts.clone();
        for (name, script) in &base.handler_scripts {
            if !handler_scripts.iter().any(|(n, _)| n == name) {
                handler_scripts.push((name.clone(), script.clone()));
            }
        }
        Settings {
            process_group: pick(&add.process_group, &base.process_group),
            application_group: pick(&add.application_group, &base.application_group),
            callable_object: pick(&add.callable_object, &base.callable_object),
            pass_authorization: pick(&add.pass_authorization, &base.pass_authorization),
            script_reloading: pick(&add.script_reloading, &base.script_reloading),
            error_override: pick(&add.error_override, &base.error_override),
            chunked_request: pick(&add.chunked_request, &base.chunked_request),
            map_head_to_get: pick(&add.map_head_to_get, &base.map_head_to_get),
            ignore_activity: pick(&add.ignore_activity, &base.ignore_activity),
            enable_sendfile: pick(&add.enable_sendfile, &base.enable_sendfile),
            pass_apache_request: pick(&add.pass_apache_request, &base.pass_apache_request),
            restrict_process: pick(&add.restrict_process, &base.restrict_process),
            trusted_proxy_headers: pick(&add.trusted_proxy_headers, &base.trusted_proxy_headers),
            trusted_proxies: pick(&add.trusted_proxies, &base.trusted_proxies),
            dispatch_script: pick(&add.dispatch_script, &base.dispatch_script),
            handler_scripts,
            access_script: pick(&add.access_script, &base.access_script),
            auth_user_script: pick(&add.auth_user_script, &base.auth_user_script),
            auth_group_script: pick(&add.auth_group_script, &base.auth_group_script),
            group_authoritative: pick(&add.group_authoritative, &base.group_authoritative),
        }
    }

    /// What a request sees, called on the server's settings: the directory
    /// settings over the server's, then the WSGIScriptAlias options that
    /// matched the request (C passes those through request notes, so they
    /// win), then C's defaults (embedded, `%{RESOURCE}`, reloading on, HEAD
    /// mapping auto, callable `application`).
    pub fn effective(&self, directory: &Settings, alias: Option<&ScriptOptions>) -> EffectiveSettings {
        let s = Settings::merge(self, directory);
        let from_alias = |f: fn(&ScriptOptions) -> Option<GroupSpec>| alias.and_then(f);
        EffectiveSettings {
            process_group: from_alias(|a| a.process_group.clone())
                .or(s.process_group)
                .unwrap_or(GroupSpec::Global),
            application_group: from_alias(|a| a.application_group.clone())
                .or(s.application_group)
                .unwrap_or(GroupSpec::Resource),
            callable_object: alias
                .and_then(|a| a.callable_object.clone())
                .or(s.callable_object)
                .unwrap_or_else(|| "application".to_string()),
            pass_authorization: alias
                .and_then(|a| a.pass_authorization)
                .or(s.pass_authorization)
                .unwrap_or(false),
            script_reloading: s.script_reloading.unwrap_or(true),
            error_override: s.error_override.unwrap_or(false),
            chunked_request: s.chunked_request.unwrap_or(false),
            map_head_to_get: s.map_head_to_get.unwrap_or_default(),
            ignore_activity: s.ignore_activity.unwrap_or(false),
            enable_sendfile: s.enable_sendfile.unwrap_or(false),
            pass_apache_request: s.pass_apache_request.unwrap_or(false),
            group_authoritative: s.group_authoritative.unwrap_or(true),
            trusted_proxy_headers: s.trusted_proxy_headers.unwrap_or_default(),
            trusted_proxies: s.trusted_proxies,
            restrict_process: s.restrict_process,
            dispatch_script: s.dispatch_script,
        }
    }

    /// The handler script registered for a handler name.
    pub fn handler_script(&self, handler: &str) -> Option<&ScriptFile> {
        self.handler_scripts.iter().find(|(n, _)| n == handler).map(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(path: &str) -> ScriptFile {
        ScriptFile { path: path.into(), process_group: None, application_group: None, pass_authorization: None, interface: Default::default() }
    }

    #[test]
    fn defaults() {
        let e = Settings::default().effective(&Settings::default(), None);
        assert_eq!(e.process_group, GroupSpec::Global);
        assert_eq!(e.application_group, GroupSpec::Resource);
        assert_eq!(e.callable_object, "application");
        assert!(!e.pass_authorization);
        assert!(e.script_reloading);
        assert!(!e.error_override);
        assert!(!e.chunked_request);
        assert_eq!(e.map_head_to_get, MapHeadToGet::Auto);
        assert!(!e.ignore_activity);
        assert!(!e.enable_sendfile);
        assert!(!e.pass_apache_request);
        assert!(e.group_authoritative);
    }

    #[test]
    fn add_wins_and_unset_inherits() {
        let base = Settings {
            process_group: Some(GroupSpec::Named("a".into())),
            callable_object: Some("app".into()),
            script_reloading: Some(false),
            restrict_process: Some(vec!["a".into()]),
            ..Settings::default()
        };
        let add = Settings {
            process_group: Some(GroupSpec::Named("b".into())),
            script_reloading: Some(true),
            ..Settings::default()
        };
        let m = Settings::merge(&base, &add);
        assert_eq!(m.process_group, Some(GroupSpec::Named("b".into())));
        assert_eq!(m.callable_object.as_deref(), Some("app"));
        assert_eq!(m.script_reloading, Some(true));
        assert_eq!(m.restrict_process, Some(vec!["a".to_string()]));
        // An explicit Off is kept, not replaced by an inherited On.
        let off = Settings { pass_authorization: Some(false), ..Settings::default() };
        let on = Settings { pass_authorization: Some(true), ..Settings::default() };
        assert_eq!(Settings::merge(&on, &off).pass_authorization, Some(false));
    }

    #[test]
    fn effective_prefers_directory() {
        let server = Settings { chunked_request: Some(true), map_head_to_get: Some(MapHeadToGet::On), ..Settings::default() };
        let dir = Settings { map_head_to_get: Some(MapHeadToGet::Off), ..Settings::default() };
        let e = server.effective(&dir, None);
        assert!(e.chunked_request);
        assert_eq!(e.map_head_to_get, MapHeadToGet::Off);
    }

    #[test]
    fn alias_options_win() {
        let server = Settings {
            process_group: Some(GroupSpec::Named("server".into())),
            callable_object: Some("srv".into()),
            pass_authorization: Some(true),
            ..Settings::default()
        };
        let dir = Settings { application_group: Some(GroupSpec::Named("dir".into())), ..Settings::default() };
        let alias = ScriptOptions {
            process_group: Some(GroupSpec::Global),
            application_group: None,
            callable_object: Some("app".into()),
            pass_authorization: Some(false),
            interface: Default::default(),
        };
        let e = server.effective(&dir, Some(&alias));
        assert_eq!(e.process_group, GroupSpec::Global);
        assert_eq!(e.application_group, GroupSpec::Named("dir".into()));
        assert_eq!(e.callable_object, "app");
        assert!(!e.pass_authorization);
        let e = server.effective(&dir, Some(&ScriptOptions::default()));
        assert_eq!(e.process_group, GroupSpec::Named("server".into()));
        assert_eq!(e.callable_object, "srv");
        assert!(e.pass_authorization);
    }

    #[test]
    fn handler_scripts_overlay_by_name() {
        let base = Settings {
            handler_scripts: vec![("a".into(), script("/base-a")), ("b".into(), script("/base-b"))],
            ..Settings::default()
        };
        let add = Settings { handler_scripts: vec![("a".into(), script("/add-a"))], ..Settings::default() };
        let m = Settings::merge(&base, &add);
        assert_eq!(m.handler_script("a").unwrap().path, "/add-a");
        assert_eq!(m.handler_script("b").unwrap().path, "/base-b");
        assert!(m.handler_script("c").is_none());
    }
}
