//! WSGIAccessScript, WSGIAuthUserScript and WSGIAuthGroupScript for one
//! request: find the script the request's directory names, run it embedded
//! (these scripts never go to a daemon), and turn its answer into what
//! httpd's access, authentication and authorisation phases expect. The
//! handler's WSGIDispatchScript runs through the same `run_hook_script`.

use std::ffi::c_int;

use crate::apache::config::{dir_settings, server_state};
use crate::apache::ffi;
use crate::apache::request::Request;
use crate::config::{GroupSpec, ScriptFile, Settings};
use crate::python::access::{self, HookRequest, HostAccess, UserCheck};
use crate::python;

pub enum Authn {
    Granted,
    Denied,
    UserNotFound,
    Error,
}

pub enum RealmHash {
    Found(String),
    Result(Authn),
}

pub enum Authz {
    Granted,
    Denied,
    DeniedNoUser,
    Error,
}

/// The Basic authentication provider "wsgi": check_password().
pub fn check_password(req: &mut Request, user: &[u8], password: &[u8]) -> Authn {
    let Some(script) = user_script(req) else { return Authn::Error };
    let answer = with_hook_request(req, script, |hook, io| access::check_password(hook, io, user, password));
    match answer {
        Some(UserCheck::Granted) => Authn::Granted,
        Some(UserCheck::GrantedAs(name)) => {
            req.set_user(name.as_bytes());
            Authn::Granted
        }
        Some(UserCheck::Denied) => Authn::Denied,
        Some(UserCheck::UserNotFound) => Authn::UserNotFound,
        Some(UserCheck::RealmHash(_) | UserCheck::Failed) | None => Authn::Error,
    }
}

/// The Digest authentication provider "wsgi": get_realm_hash().
pub fn realm_hash(req: &mut Request, user: &[u8], realm: &[u8]) -> RealmHash {
    let Some(script) = user_script(req) else { return RealmHash::Result(Authn::Error) };
    match with_hook_request(req, script, |hook, io| access::realm_hash(hook, io, user, realm)) {
        Some(UserCheck::RealmHash(hash)) => RealmHash::Found(hash),
        Some(UserCheck::UserNotFound) => RealmHash::Result(Authn::UserNotFound),
        _ => RealmHash::Result(Authn::Error),
    }
}

/// The authorisation provider "wsgi-group" (`Require wsgi-group name...`):
/// the user must be in one of the named groups, by groups_for_user().
pub fn check_groups(req: &mut Request, require_line: &[u8]) -> Authz {
    let Some(user) = req.user().map(<[u8]>::to_vec) else { return Authz::DeniedNoUser };
    let Some(script) = configured(req, |s| &s.auth_group_script) else {
        req.log_error(&format!("mod_wsgi (pid={}): Location of WSGI group authorization script not provided.", std::process::id()));
        return Authz::Error;
    };
    let Some(groups) = with_hook_request(req, script, |hook, io| access::groups_for_user(hook, io, &user)).flatten() else {
        return Authz::Denied;
    };
    // Names compare without regard to case, as in mod_wsgi.
    if require_words(require_line).iter().any(|name| groups.iter().any(|g| g.eq_ignore_ascii_case(name))) {
        return Authz::Granted;
    }
    req.log_error(&format!(
        "mod_wsgi (pid={}): Authorization of user '{}' to access '{}' failed. User is not a member of {} groups.",
        std::process::id(),
        String::from_utf8_lossy(&user),
        String::from_utf8_lossy(req.uri()),
        if groups.is_empty() { "any" } else { "designated" }
    ));
    Authz::Denied
}

/// The access checker: allow_access() of WSGIAccessScript, if one applies.
pub fn allow_access(req: &mut Request) -> c_int {
    // Runs for every request httpd serves: look the script up without merging settings.
    let Some(script) = configured(req, |s| &s.access_script) else { return ffi::DECLINED };
    let host = req.client_ip().to_vec();
    match with_hook_request(req, script, |hook, io| access::allow_access(hook, io, &host)) {
        Some(HostAccess::Abstain) => ffi::DECLINED,
        Some(HostAccess::Allow) => ffi::OK as c_int,
        Some(HostAccess::Deny) | None => {
            req.log_error(&format!("mod_wsgi (pid={}): Client denied by server configuration: '{}'.", std::process::id(), script.path));
            ffi::HTTP_FORBIDDEN as c_int
        }
    }
}

/// A setting as the request's directory sees it: the directory's own value,
/// else the server's (what `Settings::merge` picks, without building the
/// merged settings).
fn configured<T>(req: &Request, field: fn(&Settings) -> &Option<T>) -> Option<&'static T> {
    let directory: &'static Settings = dir_settings(req.per_dir_config());
    let server: &'static Settings = &server_state(req.server()).config.settings;
    field(directory).as_ref().or_else(|| field(server).as_ref())
}

/// WSGIAuthUserScript, or None having logged that it is missing.
fn user_script(req: &Request) -> Option<&'static ScriptFile> {
    let script = configured(req, |s| &s.auth_user_script);
    if script.is_none() {
        req.log_error(&format!("mod_wsgi (pid={}): Location of WSGI user authentication script not provided.", std::process::id()));
    }
    script
}

/// Runs `f` with the request as an access or auth script sees it.
fn with_hook_request<R>(req: &Request, script: &ScriptFile, f: impl FnOnce(&HookRequest<'_>, Box<dyn python::RequestIo>) -> R) -> Option<R> {
    let reloading = configured(req, |s| &s.script_reloading).copied().unwrap_or(true);
    run_hook_script(req, script, req.auth_variables(), reloading, f)
}

/// Runs `f` with `script` (an access, auth or dispatch script) placed in its
/// interpreter: application-group= (%{GLOBAL}, %{SERVER}, %{HOST} or a
/// name), the main interpreter by default. None when Python cannot run
/// here (logged).
pub fn run_hook_script<'r, R>(
    req: &Request,
    script: &ScriptFile,
    cgi: Vec<(&'r [u8], &'r [u8])>,
    script_reloading: bool,
    f: impl FnOnce(&HookRequest<'_>, Box<dyn python::RequestIo>) -> R,
) -> Option<R> {
    if !python::interpreter::is_started() {
        req.log_error(&format!("mod_wsgi (pid={}): Python is not initialised in this process: {}", std::process::id(), script.path));
        return None;
    }
    let spec = script.application_group.as_ref().unwrap_or(&GroupSpec::Global);
    let application_group = crate::handler::with_group_context(req, &cgi, |context| crate::config::expand_application_group(spec, context));
    let hook = HookRequest {
        script: &script.path,
        script_mtime: python::script_mtime(&script.path),
        script_reloading,
        application_group: &application_group,
        server_version: crate::apache::process::server_version(),
        cgi,
    };
    Some(f(&hook, Box::new(req.handle_for_wsgi())))
}

/// The group names of a Require line, each a word or a "quoted phrase".
fn require_words(line: &[u8]) -> Vec<&[u8]> {
    let mut words = Vec::new();
    let mut rest = line.trim_ascii_start();
    while !rest.is_empty() {
        let (word, after) = match rest.strip_prefix(b"\"") {
            Some(quoted) => match quoted.iter().position(|&b| b == b'"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, &[][..]),
            },
            None => {
                let end = rest.iter().position(u8::is_ascii_whitespace).unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        words.push(word);
        rest = after.trim_ascii_start();
    }
    words
}

#[cfg(test)]
mod tests {
    #[test]
    fn require_words_split_on_spaces_and_keep_quoted_phrases() {
        let words = super::require_words(br#" staff  "x y" admins"#);
        assert_eq!(words, [&b"staff"[..], b"x y", b"admins"]);
        assert!(super::require_words(b"").is_empty());
    }
}
