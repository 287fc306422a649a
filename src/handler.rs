//! One request: map its URL to a WSGI script, then run the script's
//! application in this process (embedded mode) or forward the request to
//! its daemon process group.

use std::ffi::c_int;

use crate::apache::config::{dir_settings, main_server_state, server_state};
use crate::apache::hooks::{mpm_is_multiprocess, mpm_is_multithread};
use crate::apache::request::{FileKind, Request};
use crate::apache::ffi;
use crate::config::{AliasPattern, EffectiveSettings, GroupContext, MapHeadToGet, ScriptAlias, ScriptFile};
use crate::daemon::protocol::{Environ, RequestHead};
use crate::daemon::{client, groups};
use crate::python::{self, Outcome, RequestInfo};

const HANDLER: &[u8] = b"wsgi-script";
const HANDLER_MIME: &[u8] = b"application/x-httpd-wsgi";

/// translate_name: the first WSGIScriptAlias(Match) that matches the URL
/// names the script; the rest of the URL follows it, for PATH_INFO.
pub fn translate(req: &mut Request) -> c_int {
    let state = server_state(req.server());
    let uri = req.uri().to_vec();
    if uri.first() != Some(&b'/') {
        return ffi::DECLINED;
    }
    for alias in &state.config.script_aliases {
        let found = match &alias.pattern {
            AliasPattern::Prefix(prefix) => crate::config::match_prefix(prefix, &uri).map(|n| alias.filename_for(&uri, n)),
            AliasPattern::Regex(pattern) => state.regexes.get(pattern).and_then(|re| {
                let (mut target, matched) = re.substitute(req.pool(), &uri, &alias.target)?;
                target.extend_from_slice(&uri[matched.min(uri.len())..]);
                Some(target)
            }),
        };
        if let Some(target) = found {
            req.set_filename(&target);
            req.set_handler(c"wsgi-script");
            // SAFETY: aliases live in the configuration pool, which outlives every request.
            let alias: &'static ScriptAlias = unsafe { &*(alias as *const ScriptAlias) };
            req.set_module_note(alias);
            return ffi::OK as c_int;
        }
    }
    ffi::DECLINED
}

fn http(status: u32) -> c_int {
    status as c_int
}

pub fn handle(req: &mut Request) -> c_int {
    let handler = req.handler();
    let served = if handler == HANDLER || handler == HANDLER_MIME {
        serve(req, None)
    } else {
        // Every request httpd serves passes here: look the handler up in the
        // directory's scripts, then the server's (the order Settings::merge
        // gives them), without building merged settings.
        let Ok(name) = std::str::from_utf8(handler) else { return ffi::DECLINED };
        let server = &server_state(req.server()).config.settings;
        let script = dir_settings(req.per_dir_config()).handler_script(name).or_else(|| server.handler_script(name));
        let Some(script) = script else { return ffi::DECLINED };
        // The name outlives the borrow of `req` it came from.
        let name = name.to_owned();
        serve(req, Some((&name, script)))
    };
    match served {
        Ok(status) | Err(status) => status,
    }
}

/// Checks the script, resolves the groups, then runs the request here or in
/// its daemon. With `handler_script` (a WSGIHandlerScript name and its
/// script), that script's `handle_request` serves the resource the URL names.
fn serve(req: &mut Request, handler_script: Option<(&str, &ScriptFile)>) -> Result<c_int, c_int> {
    let resource = String::from_utf8_lossy(req.filename()).into_owned();
    let alias: Option<&ScriptAlias> = req.module_note();
    let filename = match handler_script {
        // The resource need not exist: the handler script decides what it means.
        Some((_, script)) => script.path.clone(),
        None => {
            check_script(req, &resource, alias.is_some())?;
            resource
        }
    };

    let state = server_state(req.server());
    let mut settings = state.config.settings.effective(dir_settings(req.per_dir_config()), alias.map(|a| &a.options));
    if let Some((_, script)) = handler_script {
        settings.callable_object = "handle_request".into();
        if let Some(group) = &script.process_group {
            settings.process_group = group.clone();
        }
        if let Some(group) = &script.application_group {
            settings.application_group = group.clone();
        }
    }
    let interface = match handler_script {
        Some((_, script)) => script.interface,
        None => alias.map(|a| a.options.interface).unwrap_or_default(),
    };
    let (request_handler, handler_path) = handler_script.map_or(("wsgi-script", ""), |(name, script)| (name, script.path.as_str()));
    let script_mtime = if handler_script.is_some() { python::script_mtime(&filename) } else { req.mtime() };
    // Declared before `cgi`, which may borrow the X-Forwarded-For rewritten into it.
    let mut forwarded_for = Vec::new();
    let mut cgi = req.cgi_variables();
    let mut groups = resolve_groups(req, &settings, &cgi);
    if let Some(script) = &settings.dispatch_script {
        dispatch(req, script, &settings, &cgi, &mut groups)?;
    }
    if let Some(allowed) = &settings.restrict_process
        && !allowed.contains(&groups.process)
    {
        // WSGIRestrictProcess: e.g. a %{ENV:...} group chosen from .htaccess.
        req.log_error(&format!(
            "Daemon process called '{}' cannot be accessed by this WSGI application as not a member of allowed groups: {filename}",
            groups.process
        ));
        return Err(http(ffi::HTTP_INTERNAL_SERVER_ERROR));
    }
    let daemon = choose_daemon(req, &groups.process, &filename)?;
    if let Some(group) = &daemon {
        check_script_owner(req, &group.config, &filename)?;
    }
    req.setup_body(settings.chunked_request).inspect_err(|&status| {
        if status == http(ffi::HTTP_LENGTH_REQUIRED) {
            req.log_error(&format!(
                "Received request requiring chunked transfer encoding, but optional support for chunked transfer encoding has not been enabled.: {filename}"
            ));
        }
    })?;

    complete_cgi(req, &settings, &mut cgi);
    let listener_host = String::from_utf8_lossy(req.local_ip()).into_owned();
    // Before the scheme: a trusted scheme header sets or clears HTTPS.
    crate::trusted_proxies::apply(&mut cgi, &mut forwarded_for, &settings.trusted_proxy_headers, settings.trusted_proxies.as_deref());
    let url_scheme = url_scheme(&mut cgi);
    if let Some(group) = daemon {
        let mut head = RequestHead {
            environ: Environ::from_pairs(&cgi),
            script_filename: filename,
            callable_object: groups.callable_object,
            application_group: groups.application,
            script_reloading: settings.script_reloading,
            script_mtime,
            request_id: req.log_id(),
            request_start: req.request_time(),
            enable_sendfile: settings.enable_sendfile,
            ignore_activity: settings.ignore_activity,
            listener_host,
            listener_port: req.server_port(),
            url_scheme: url_scheme.to_owned(),
            request_handler: request_handler.to_owned(),
            handler_script: handler_path.to_owned(),
            interface: interface.code(),
            headers: Environ::from_pairs(&asgi_headers(req, &cgi)),
            ..RequestHead::default()
        };
        return Ok(client::forward(req, &mut head, &group, settings.error_override));
    }
    let info = RequestInfo {
        cgi,
        script_filename: &filename,
        script_mtime,
        script_reloading: settings.script_reloading,
        callable_object: &groups.callable_object,
        process_group: &groups.process,
        application_group: &groups.application,
        url_scheme,
        multithread: mpm_is_multithread(),
        multiprocess: mpm_is_multiprocess(),
        server_version: crate::apache::process::server_version(),
        listener_host: &listener_host,
        listener_port: req.server_port(),
        request_id: req.log_id(),
        request_start: req.request_time(),
        enable_sendfile: settings.enable_sendfile,
        ignore_activity: settings.ignore_activity,
        request_handler,
        handler_script: handler_path,
        apache_request: settings.pass_apache_request.then(|| req.as_ptr() as usize),
        daemon: None,
        interface,
        headers: Vec::new(),
        request_timeout: std::time::Duration::ZERO,
    };
    let outcome = python::run(&info, Box::new(req.handle_for_wsgi()));
    Ok(match outcome {
        Outcome::Sent => ffi::OK as c_int,
        Outcome::NoApplication => http(ffi::HTTP_NOT_FOUND),
        Outcome::Failed => http(ffi::HTTP_INTERNAL_SERVER_ERROR),
        Outcome::TimedOut => http(ffi::HTTP_GATEWAY_TIME_OUT),
        Outcome::Aborted => {
            // A response httpd ended itself (its 500 for a head it refused)
            // is on its way: only one broken off is cut.
            if !req.response_ended() {
                req.abort_connection();
            }
            ffi::OK as c_int
        }
    })
}

/// The request headers an ASGI scope lists: all of them, but Authorization
/// only where the environ has it too (pass-authorization=, WSGIPassAuthorization).
fn asgi_headers<'r>(req: &'r Request, cgi: &[(&[u8], &[u8])]) -> Vec<(&'r [u8], &'r [u8])> {
    let pass_authorization = cgi.iter().any(|(name, _)| *name == b"HTTP_AUTHORIZATION");
    req.headers_in().into_iter().filter(|(name, _)| pass_authorization || !name.eq_ignore_ascii_case(b"authorization")).collect()
}

/// The script must be a file; outside WSGIScriptAlias, its directory must allow ExecCGI.
fn check_script(req: &Request, filename: &str, aliased: bool) -> Result<(), c_int> {
    if !aliased && !req.allows_exec_cgi() {
        req.log_error(&format!("Options ExecCGI is off in this directory: {filename}"));
        return Err(http(ffi::HTTP_FORBIDDEN));
    }
    match req.file_kind() {
        FileKind::Missing => {
            req.log_error(&format!("Target WSGI script not found or unable to stat: {filename}"));
            Err(http(ffi::HTTP_NOT_FOUND))
        }
        FileKind::Directory => {
            req.log_error(&format!("Attempt to invoke directory as WSGI application: {filename}"));
            Err(http(ffi::HTTP_FORBIDDEN))
        }
        FileKind::Regular | FileKind::Other => Ok(()),
    }
}

/// The process and application groups and the callable, with their %{...} expanded.
struct Groups {
    process: String,
    application: String,
    callable_object: String,
}

fn resolve_groups(req: &Request, settings: &EffectiveSettings, cgi: &[(&[u8], &[u8])]) -> Groups {
    with_group_context(req, cgi, |context| Groups {
        process: crate::config::expand_process_group(&settings.process_group, context),
        application: crate::config::expand_application_group(&settings.application_group, context),
        callable_object: crate::config::expand_callable_object(Some(&settings.callable_object), context.env),
    })
}

/// Runs `f` with what %{SERVER}, %{RESOURCE}, %{ENV:...} and the like expand
/// from, for a request whose CGI variables are `cgi`.
pub fn with_group_context<R>(req: &Request, cgi: &[(&[u8], &[u8])], f: impl FnOnce(&GroupContext<'_>) -> R) -> R {
    let lookup = |name: &str| cgi.iter().find(|(k, _)| *k == name.as_bytes()).map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    let script_name = lookup("SCRIPT_NAME").unwrap_or_default();
    let hostname = String::from_utf8_lossy(req.server_hostname()).into_owned();
    let context = GroupContext {
        server_hostname: &hostname,
        port: req.server_port(),
        request_hostname: req.hostname().map(|h| std::str::from_utf8(h).unwrap_or_default()),
        script_name: &script_name,
        env: &|name: &str| lookup(name).or_else(|| std::env::var(name).ok()),
    };
    f(&context)
}

/// script-user= / script-group= of the daemon group: it runs only scripts
/// owned by that user (or group); others get 403.
fn check_script_owner(req: &Request, daemon: &crate::config::DaemonProcess, filename: &str) -> Result<(), c_int> {
    use std::os::unix::fs::MetadataExt;
    if daemon.script_user.is_none() && daemon.script_group.is_none() {
        return Ok(());
    }
    let (uid, gid) = std::fs::metadata(filename).map_or((u32::MAX, u32::MAX), |m| (m.uid(), m.gid()));
    let mismatch = if let Some(user) = &daemon.script_user {
        (crate::config::resolve_user(user).ok() != Some(uid)).then(|| {
            let owner = crate::config::user_name(uid).unwrap_or_else(|| uid.to_string());
            format!("Owner of WSGI script file does not match required user for daemon process, user={owner}: {filename}")
        })
    } else {
        let required = daemon.script_group.as_deref().unwrap_or_default();
        (crate::config::resolve_group(required).ok() != Some(gid)).then(|| {
            let owner = crate::config::group_name(gid).unwrap_or_else(|| gid.to_string());
            format!("Group of WSGI script file does not match required group for daemon process, group={owner}: {filename}")
        })
    };
    match mismatch {
        Some(message) => {
            req.log_error(&message);
            Err(http(ffi::HTTP_FORBIDDEN))
        }
        None => Ok(()),
    }
}

/// WSGIDispatchScript: the script's process_group(), application_group()
/// and callable_object() may override what the configuration chose; their
/// answers expand like the directives' values.
fn dispatch(req: &Request, script: &ScriptFile, settings: &EffectiveSettings, cgi: &[(&[u8], &[u8])], groups: &mut Groups) -> Result<(), c_int> {
    let pid = std::process::id();
    let answers = crate::access::run_hook_script(req, script, cgi.to_vec(), settings.script_reloading, python::access::dispatch)
        .flatten()
        .ok_or(http(ffi::HTTP_INTERNAL_SERVER_ERROR))?;
    let spec = |directive: &str, value: &str| match crate::config::parse_group_spec(directive, value) {
        Ok(spec) => Ok(spec),
        Err(e) => {
            req.log_error(&format!("mod_wsgi (pid={pid}): {e}: '{value}' from '{}'.", script.path));
            Err(http(ffi::HTTP_INTERNAL_SERVER_ERROR))
        }
    };
    let process = answers.process_group.as_deref().map(|v| spec("WSGIProcessGroup", v)).transpose()?;
    let application = answers.application_group.as_deref().map(|v| spec("WSGIApplicationGroup", v)).transpose()?;
    with_group_context(req, cgi, |context| {
        if let Some(process) = &process {
            groups.process = crate::config::expand_process_group(process, context);
        }
        if let Some(application) = &application {
            groups.application = crate::config::expand_application_group(application, context);
        }
        if let Some(callable) = &answers.callable_object {
            groups.callable_object = crate::config::expand_callable_object(Some(callable), context.env);
        }
    });
    Ok(())
}

/// The daemon group that runs the request, or None for embedded mode when
/// this process may run it.
fn choose_daemon(req: &Request, process_group: &str, filename: &str) -> Result<Option<std::sync::Arc<groups::Group>>, c_int> {
    // Only for the log: getpid is a system call, and this runs for every request.
    let pid = std::process::id;
    if process_group.is_empty() {
        if server_state(req.server()).config.restrict_embedded() {
            req.log_error(&format!("mod_wsgi (pid={}): Embedded mode of mod_wsgi disabled by runtime configuration: {filename}", pid()));
            return Err(http(ffi::HTTP_INTERNAL_SERVER_ERROR));
        }
        if !python::interpreter::is_started() {
            req.log_error(&format!("mod_wsgi (pid={}): Python is not initialised in this process: {filename}", pid()));
            return Err(http(ffi::HTTP_INTERNAL_SERVER_ERROR));
        }
        return Ok(None);
    }
    if !main_server_state().is_some_and(|m| m.registry.contains(process_group)) {
        req.log_error(&format!("mod_wsgi (pid={}): No WSGI daemon process called '{process_group}' has been configured: {filename}", pid()));
        return Err(http(ffi::HTTP_INTERNAL_SERVER_ERROR));
    }
    match groups::endpoint(process_group) {
        Some(group) => Ok(Some(group)),
        None => {
            req.log_error(&format!("mod_wsgi (pid={}): WSGI daemon process '{process_group}' is not running: {filename}", pid()));
            Err(http(ffi::HTTP_SERVICE_UNAVAILABLE))
        }
    }
}

/// wsgi.url_scheme: https when Apache says so (REQUEST_SCHEME), or when
/// HTTPS is "on" or "1": mod_ssl sets it, and admins behind a proxy that
/// ends TLS write `SetEnv HTTPS on`. HTTPS itself is not passed on, as
/// mod_wsgi drops it.
fn url_scheme(cgi: &mut Vec<(&[u8], &[u8])>) -> &'static str {
    let https_var = cgi.iter().any(|(k, v)| *k == b"HTTPS" && (v.eq_ignore_ascii_case(b"on") || *v == b"1"));
    cgi.retain(|(k, _)| *k != b"HTTPS");
    if https_var || cgi.iter().any(|(k, v)| *k == b"REQUEST_SCHEME" && *v == b"https") { "https" } else { "http" }
}

/// What mod_wsgi changes in the CGI variables: HTTP_AUTHORIZATION with
/// WSGIPassAuthorization, HEAD seen as GET (WSGIMapHEADToGET), PATH_INFO
/// always present (PEP 3333), mod_wsgi.script_name and mod_wsgi.path_info
/// as Apache mapped them, and Apache's own PATH left out.
fn complete_cgi<'r>(req: &'r Request, settings: &EffectiveSettings, cgi: &mut Vec<(&'r [u8], &'r [u8])>) {
    if settings.pass_authorization
        && let Some(auth) = req.header_in(c"Authorization")
    {
        cgi.push((b"HTTP_AUTHORIZATION", auth));
    }
    if req.method() == b"HEAD" && maps_head_to_get(req, settings.map_head_to_get) {
        for (name, value) in cgi.iter_mut() {
            if *name == b"REQUEST_METHOD" {
                *value = b"GET";
            }
        }
    }
    if !cgi.iter().any(|(k, _)| *k == b"PATH_INFO") {
        cgi.push((b"PATH_INFO", b""));
    }
    // Saved before a trusted proxy header can replace SCRIPT_NAME.
    for (saved, name) in [(&b"mod_wsgi.script_name"[..], &b"SCRIPT_NAME"[..]), (b"mod_wsgi.path_info", b"PATH_INFO")] {
        let value = cgi.iter().find(|(k, _)| *k == name).map_or(&b""[..], |(_, v)| *v);
        cgi.push((saved, value));
    }
    cgi.retain(|(k, _)| *k != b"PATH");
}

/// WSGIMapHEADToGET: Auto answers HEAD as GET when output filters that may
/// need the whole body (e.g. mod_deflate) sit before the protocol filters.
fn maps_head_to_get(req: &Request, mode: MapHeadToGet) -> bool {
    match mode {
        MapHeadToGet::On => true,
        MapHeadToGet::Off => false,
        MapHeadToGet::Auto => req.has_content_filters(),
    }
}

