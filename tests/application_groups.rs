//! Which Python interpreter serves a request: WSGIApplicationGroup and application-group=
//! (%{RESOURCE} default, %{GLOBAL}, %{SERVER}, %{ENV:var}, a plain name), module state kept
//! between requests, WSGIPythonPath, and WSGIImportScript preloading.

mod support;

use support::{Server, server};

fn groups_server() -> Server {
    server()
        .module("env")
        .app("state.wsgi")
        .app_as("state.wsgi", "other.wsgi")
        .app_as("state.wsgi", "preload.wsgi")
        .file("lib/extra_module.py", b"VALUE = 'from python path'\n")
        .config(
            "WSGIPythonPath @DIR@/lib\n\
             WSGIImportScript @DIR@/preload.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}\n\
             WSGIScriptAlias /res @DIR@/state.wsgi\n\
             WSGIScriptAlias /res-other @DIR@/other.wsgi\n\
             WSGIScriptAlias /glob @DIR@/state.wsgi application-group=%{GLOBAL}\n\
             WSGIScriptAlias /glob-other @DIR@/other.wsgi\n\
             <Location /glob-other>\n  WSGIApplicationGroup %{GLOBAL}\n</Location>\n\
             WSGIScriptAlias /pre @DIR@/preload.wsgi application-group=%{GLOBAL}\n\
             WSGIScriptAlias /srv @DIR@/state.wsgi\n\
             <Location /srv>\n  WSGIApplicationGroup %{SERVER}\n</Location>\n\
             WSGIScriptAlias /named @DIR@/state.wsgi application-group=mygroup\n\
             WSGIScriptAlias /env @DIR@/state.wsgi\n\
             <Location /env>\n  SetEnv WSGI_GROUP fromenv\n  WSGIApplicationGroup %{ENV:WSGI_GROUP}\n</Location>\n",
        )
        .start()
}

fn kv(s: &Server, path: &str) -> std::collections::BTreeMap<String, String> {
    s.get_kv(path)
}

#[test]
fn default_group_is_one_interpreter_per_resource() {
    let s = groups_server();
    let first = kv(&s, "/res");
    assert_eq!(
        first["application_group"],
        format!("'127.0.0.1:{}|/res'", s.port())
    );
    // mod_wsgi.application_group inside the interpreter agrees with the environ.
    assert_eq!(first["interpreter"], first["application_group"]);
    assert_eq!(first["counter"], "1");
    assert_eq!(first["shared"], "False");
    // Module state survives between requests.
    let second = kv(&s, "/res");
    assert_eq!(second["counter"], "2");
    assert_eq!(second["shared"], "True");
    // Another resource gets its own interpreter: it does not see the marker set by /res.
    let other = kv(&s, "/res-other");
    assert_eq!(
        other["application_group"],
        format!("'127.0.0.1:{}|/res-other'", s.port())
    );
    assert_eq!(other["shared"], "False");
}

#[test]
fn global_group_is_the_main_interpreter_shared_by_scripts() {
    let s = groups_server();
    let a = kv(&s, "/glob");
    assert_eq!(a["application_group"], "''");
    assert_eq!(a["interpreter"], "''");
    // A second script in %{GLOBAL} (set by the directive this time) shares the interpreter.
    let b = kv(&s, "/glob-other");
    assert_eq!(b["application_group"], "''");
    assert_eq!(b["shared"], "True");
    assert_eq!(b["counter"], "1");
}

#[test]
fn server_env_and_named_groups() {
    let s = groups_server();
    assert_eq!(
        kv(&s, "/srv")["application_group"],
        format!("'127.0.0.1:{}'", s.port())
    );
    assert_eq!(kv(&s, "/named")["application_group"], "'mygroup'");
    assert_eq!(kv(&s, "/env")["application_group"], "'fromenv'");
    for path in ["/srv", "/named", "/env"] {
        let env = kv(&s, path);
        assert_eq!(env["interpreter"], env["application_group"], "{path}");
    }
}

#[test]
fn python_path_directive_extends_sys_path_in_every_interpreter() {
    let s = groups_server();
    for path in ["/res", "/glob", "/named"] {
        assert_eq!(kv(&s, path)["extra_module"], "'from python path'", "{path}");
    }
}

#[test]
fn import_script_is_loaded_at_child_start_and_reused() {
    let s = groups_server();
    let loaded = format!("marker-state-loaded {}/preload.wsgi", s.dir().display());
    // Loaded before any request, outside any request (no client in the log line).
    s.expect_log(&loaded);
    let log = s.error_log();
    let line = log.lines().find(|l| l.contains(&loaded)).unwrap();
    assert!(!line.contains("[client "), "{line}");
    // The request to the same script in the same group uses the preloaded module.
    let env = kv(&s, "/pre");
    assert_eq!(env["counter"], "1");
    assert_eq!(
        s.error_log().matches(&loaded).count(),
        1,
        "{}",
        s.error_log()
    );
}

#[test]
fn application_groups_are_separate_interpreters_in_a_daemon_process_too() {
    let s = server()
        .app("state.wsgi")
        .app_as("state.wsgi", "other.wsgi")
        .config(
            "WSGIDaemonProcess g threads=2\n\
             WSGIScriptAlias /a @DIR@/state.wsgi process-group=g application-group=one\n\
             WSGIScriptAlias /b @DIR@/other.wsgi process-group=g application-group=one\n\
             WSGIScriptAlias /c @DIR@/state.wsgi process-group=g application-group=two\n",
        )
        .start();
    let a = kv(&s, "/a");
    assert_eq!((a["interpreter"].as_str(), a["shared"].as_str()), ("'one'", "False"));
    // Same group, another script: the interpreter (and its sys.modules) is shared.
    let b = kv(&s, "/b");
    assert_eq!((b["interpreter"].as_str(), b["shared"].as_str()), ("'one'", "True"));
    // Another group in the same daemon process: a fresh interpreter.
    let c = kv(&s, "/c");
    assert_eq!((c["interpreter"].as_str(), c["shared"].as_str(), c["counter"].as_str()), ("'two'", "False", "1"));
}
