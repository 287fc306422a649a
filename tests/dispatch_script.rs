//! WSGIDispatchScript: per request, the script's process_group(), application_group() and
//! callable_object() may override the configuration; None keeps it.

mod support;

use support::{Server, server};

fn dispatching_server() -> Server {
    server()
        .app("environ.wsgi")
        .app("dispatch.wsgi")
        .module("env")
        .config(
            "WSGIDaemonProcess d threads=2\n\
             SetEnv CHOSEN_GROUP d\n\
             WSGIScriptAlias /app @DIR@/environ.wsgi\n\
             WSGIDispatchScript @DIR@/dispatch.wsgi\n",
        )
        .start()
}

fn chosen(s: &Server, query: &str) -> [String; 3] {
    let env = s.get_kv(&format!("/app?{query}"));
    ["mod_wsgi.process_group", "mod_wsgi.application_group", "callable"].map(|k| env[k].clone())
}

#[test]
fn dispatch_script_overrides_groups_and_callable() {
    let s = dispatching_server();
    let resource = format!("'127.0.0.1:{}|/app'", s.port());
    let answers = |pg: &str, ag: &str, callable: &str| [pg.to_string(), ag.to_string(), callable.to_string()];
    assert_eq!(chosen(&s, "none"), answers("''", &resource, "'application'"), "None keeps the configuration");
    assert_eq!(chosen(&s, "daemon"), answers("'d'", &resource, "'application'"));
    // Answers expand like the directives' values.
    assert_eq!(chosen(&s, "env"), answers("'d'", &resource, "'application'"));
    assert_eq!(chosen(&s, "named"), answers("''", "'chosen'", "'application'"));
    assert_eq!(chosen(&s, "global"), answers("''", "''", "'application'"));
    assert_eq!(chosen(&s, "other"), answers("''", &resource, "'other'"));
}

#[test]
fn a_failing_dispatch_script_is_a_server_error() {
    let s = dispatching_server();
    assert_eq!(s.get("/app?bad").status, 500);
    s.expect_log("TypeError: Process group must be a byte string");
    assert_eq!(s.get("/app?raise").status, 500);
    s.expect_log("RuntimeError: marker-dispatch");
    assert!(s.error_log().contains("in process_group"), "traceback: {}", s.error_log());
}
