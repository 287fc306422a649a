//! WSGIScriptAlias and WSGIScriptAliasMatch: URL mounts for WSGI scripts.

use std::collections::HashSet;

use super::error::{ConfigError, msg};
use super::group::{GroupSpec, parse_group_spec};
use super::scripts::parse_pass_authorization;
use super::tokenize::split_option;
use super::values::Interface;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliasPattern {
    /// WSGIScriptAlias: a URL prefix, matched by [`match_prefix`].
    Prefix(String),
    /// WSGIScriptAliasMatch: an extended regex, compiled by the glue (PCRE).
    Regex(String),
}

/// The options after the target path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptOptions {
    pub process_group: Option<GroupSpec>,
    pub application_group: Option<GroupSpec>,
    /// Used as given (C does not expand `%{ENV:...}` here).
    pub callable_object: Option<String>,
    pub pass_authorization: Option<bool>,
    pub interface: Interface,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptAlias {
    pub pattern: AliasPattern,
    /// Script file or directory; for a regex it may hold `$1`-style references.
    pub target: String,
    pub options: ScriptOptions,
}

impl ScriptAlias {
    /// Whether the script is loaded when its daemon process starts: C does so
    /// when both groups are given literally and, for a regex, the target
    /// does not depend on the match.
    pub fn preload(&self) -> bool {
        let literal = |g: &Option<GroupSpec>| g.as_ref().is_some_and(GroupSpec::is_literal);
        let fixed_target = match self.pattern {
            AliasPattern::Prefix(_) => true,
            AliasPattern::Regex(_) => !self.target.contains('$'),
        };
        literal(&self.options.process_group) && literal(&self.options.application_group) && fixed_target
    }

    /// r->filename for a URI a Prefix alias matched (`matched` from
    /// [`match_prefix`]): the target plus the rest of the URI, or plus the
    /// whole URI when mounted at "/".
    /// URIs are bytes: httpd has already percent-decoded them.
    pub fn filename_for(&self, uri: impl AsRef<[u8]>, matched: usize) -> Vec<u8> {
        let uri = uri.as_ref();
        let rest = match &self.pattern {
            AliasPattern::Prefix(p) if p == "/" => uri,
            _ => &uri[matched.min(uri.len())..],
        };
        [self.target.as_bytes(), rest].concat()
    }
}

/// mod_alias-style prefix match: any run of `/` in the alias matches any
/// non-empty run of `/` in the URI, and the alias must end at a path segment
/// boundary of the URI. Returns how many bytes of `uri` matched.
pub fn match_prefix(alias: &str, uri: impl AsRef<[u8]>) -> Option<usize> {
    let a = alias.as_bytes();
    let u = uri.as_ref();
    let (mut i, mut j) = (0, 0);
    while i < a.len() {
        if a[i] == b'/' {
            if u.get(j) != Some(&b'/') {
                return None;
            }
            while i < a.len() && a[i] == b'/' {
                i += 1;
            }
            while j < u.len() && u[j] == b'/' {
                j += 1;
            }
        } else {
            if u.get(j) != Some(&a[i]) {
                return None;
            }
            i += 1;
            j += 1;
        }
    }
    let ends_with_slash = a.last() == Some(&b'/');
    if !ends_with_slash && j < u.len() && u[j] != b'/' {
        return None;
    }
    // An empty alias matches nothing (C treats a 0-byte match as no match).
    (j > 0).then_some(j)
}

const DEFINITION: &str = "script alias";

/// Parses the words of WSGIScriptAlias(Match): `pattern target [options]`.
/// `regex` selects WSGIScriptAliasMatch. Arity errors are the caller's
/// (they need the directive's usage text); here the first two words exist.
pub fn parse_script_alias(regex: bool, args: &[String]) -> Result<ScriptAlias, ConfigError> {
    let (pattern, target) = (&args[0], &args[1]);
    let mut options = ScriptOptions::default();
    let mut seen = HashSet::new();
    for word in &args[2..] {
        let invalid = || ConfigError::InvalidOption { definition: DEFINITION, option: Some(word.clone()) };
        let (name, value) = split_option(word).ok_or_else(invalid)?;
        let known = ["application-group", "process-group", "callable-object", "pass-authorization", "interface"];
        let name = known.iter().copied().find(|k| *k == name).ok_or_else(invalid)?;
        if !seen.insert(name) {
            return Err(ConfigError::DuplicateOption { definition: DEFINITION, option: name.to_string() });
        }
        match name {
            "application-group" => options.application_group = Some(parse_group_spec(name, value)?),
            "process-group" => options.process_group = Some(parse_group_spec(name, value)?),
            "callable-object" => {
                if value.is_empty() {
                    return Err(ConfigError::Fixed(msg::CALLABLE_OBJECT_NAME));
                }
                options.callable_object = Some(value.to_string());
            }
            "interface" => options.interface = Interface::parse(value)?,
            _ => {
                if value.is_empty() {
                    return Err(ConfigError::Fixed(msg::AUTHORIZATION_FLAG));
                }
                options.pass_authorization = Some(parse_pass_authorization(value)?);
            }
        }
    }
    let pattern = if regex { AliasPattern::Regex(pattern.clone()) } else { AliasPattern::Prefix(pattern.clone()) };
    Ok(ScriptAlias { pattern, target: target.clone(), options })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        super::super::tokenize::tokenize(s).unwrap()
    }

    #[test]
    fn mount_at_root() {
        assert_eq!(match_prefix("/", "/"), Some(1));
        assert_eq!(match_prefix("/", "/anything/here"), Some(1));
        assert_eq!(match_prefix("/", "//x"), Some(2));
        assert_eq!(match_prefix("/", ""), None);
        assert_eq!(match_prefix("/", "x"), None);
    }

    #[test]
    fn segment_boundary() {
        assert_eq!(match_prefix("/app", "/app"), Some(4));
        assert_eq!(match_prefix("/app", "/app/"), Some(4));
        assert_eq!(match_prefix("/app", "/app/x/y"), Some(4));
        assert_eq!(match_prefix("/app", "/application"), None);
        assert_eq!(match_prefix("/application", "/app"), None);
        assert_eq!(match_prefix("/app", "/ap"), None);
        assert_eq!(match_prefix("/app", "/other"), None);
        assert_eq!(match_prefix("/app", "app"), None);
    }

    #[test]
    fn trailing_slash_in_alias() {
        assert_eq!(match_prefix("/app/", "/app/"), Some(5));
        assert_eq!(match_prefix("/app/", "/app/x"), Some(5));
        assert_eq!(match_prefix("/app/", "/app"), None);
        assert_eq!(match_prefix("/app/", "/appx"), None);
    }

    #[test]
    fn runs_of_slashes_are_equivalent() {
        assert_eq!(match_prefix("/app", "//app//x"), Some(5));
        assert_eq!(match_prefix("/app/x", "//app//x"), Some(8));
        assert_eq!(match_prefix("//app", "/app"), Some(4));
        assert_eq!(match_prefix("/a//b", "/a/b/c"), Some(4));
        assert_eq!(match_prefix("/app/", "/app///x"), Some(7));
        // A slash in the alias needs at least one in the URI.
        assert_eq!(match_prefix("/a/b", "/ab"), None);
    }

    #[test]
    fn case_and_bytes_matter() {
        assert_eq!(match_prefix("/App", "/app"), None);
        assert_eq!(match_prefix("/ü", "/ü/x"), Some("/ü".len()));
        assert_eq!(match_prefix("", "/x"), None);
    }

    #[test]
    fn filename() {
        let a = parse_script_alias(false, &words("/ /srv/app.wsgi")).unwrap();
        assert_eq!(a.filename_for("/x/y", 1), b"/srv/app.wsgi/x/y");
        let a = parse_script_alias(false, &words("/app /srv/app.wsgi")).unwrap();
        assert_eq!(a.filename_for("/app/x", 4), b"/srv/app.wsgi/x");
        assert_eq!(a.filename_for("/app", 4), b"/srv/app.wsgi");
    }

    #[test]
    fn options() {
        let a = parse_script_alias(
            false,
            &words("/app /srv/app.wsgi process-group=site application-group=%{GLOBAL} callable-object=app pass-authorization=on"),
        )
        .unwrap();
        assert_eq!(a.pattern, AliasPattern::Prefix("/app".into()));
        assert_eq!(a.target, "/srv/app.wsgi");
        assert_eq!(a.options.process_group, Some(GroupSpec::Named("site".into())));
        assert_eq!(a.options.application_group, Some(GroupSpec::Global));
        assert_eq!(a.options.callable_object.as_deref(), Some("app"));
        assert_eq!(a.options.pass_authorization, Some(true));
        assert_eq!(a.options.interface, Interface::Auto);
        let a = parse_script_alias(false, &words("/app /srv/app.py interface=asgi")).unwrap();
        assert_eq!(a.options.interface, Interface::Asgi);
        let a = parse_script_alias(true, &words("^/(\\w+) /srv/$1.wsgi")).unwrap();
        assert_eq!(a.pattern, AliasPattern::Regex("^/(\\w+)".into()));
        assert_eq!(a.options, ScriptOptions::default());
    }

    #[test]
    fn option_errors() {
        let e = |s: &str| parse_script_alias(false, &words(s)).unwrap_err().to_string();
        assert_eq!(e("/ /x bogus"), "Invalid option to WSGI script alias definition: 'bogus'.");
        assert_eq!(e("/ /x a=b"), "Invalid option to WSGI script alias definition: 'a=b'.");
        assert_eq!(e("/ /x process-group="), "Invalid name for WSGI process group.");
        assert_eq!(e("/ /x application-group="), "Invalid name for WSGI application group.");
        assert_eq!(e("/ /x callable-object="), "Invalid name for WSGI callable object.");
        assert_eq!(e("/ /x pass-authorization=maybe"), "Invalid value for authorization flag.");
        assert_eq!(e("/ /x pass-authorization="), "Invalid value for authorization flag.");
        assert_eq!(e("/ /x interface=asgi2"), "Invalid value for interface, must be one of: auto | wsgi | asgi.");
        assert_eq!(
            e("/ /x callable-object=a callable-object=b"),
            "Invalid option to WSGI script alias definition: 'callable-object' given more than once."
        );
        assert!(e("/ /x process-group=%{RESOURCE}").contains("cannot name a daemon process group"));
    }

    #[test]
    fn preload_rule() {
        let p = |regex, s: &str| parse_script_alias(regex, &words(s)).unwrap().preload();
        assert!(p(false, "/ /x process-group=g application-group=%{GLOBAL}"));
        assert!(p(false, "/ /x process-group=%{GLOBAL} application-group=a"));
        assert!(!p(false, "/ /x process-group=g"));
        assert!(!p(false, "/ /x application-group=a"));
        assert!(!p(false, "/ /x process-group=g application-group=%{RESOURCE}"));
        assert!(!p(false, "/ /x process-group=%{ENV:X} application-group=a"));
        assert!(p(true, "^/a /x process-group=g application-group=a"));
        assert!(!p(true, "^/(a) /$1 process-group=g application-group=a"));
    }
}
