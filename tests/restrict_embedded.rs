//! WSGIRestrictEmbedded On: embedded mode is refused, requests not in a daemon group fail,
//! and Python is not started in Apache's children at all.

mod support;

use support::server;

#[test]
fn embedded_requests_fail_when_restricted() {
    let s = server()
        .app("hello.wsgi")
        .config("WSGIRestrictEmbedded On\nWSGIScriptAlias /h @DIR@/hello.wsgi\n")
        .start();
    assert_eq!(s.get("/h").status, 500);
    s.expect_log(&format!(
        "Embedded mode of mod_wsgi disabled by runtime configuration: {}/hello.wsgi",
        s.dir().display()
    ));
    assert!(!s.error_log().contains("Initializing Python."), "{}", s.error_log());
}

#[test]
fn python_starts_in_apaches_children_unless_restricted() {
    let s = server()
        .log_level("info")
        .app("hello.wsgi")
        .config("WSGIScriptAlias /h @DIR@/hello.wsgi
")
        .start();
    assert_eq!(s.get("/h").status, 200);
    s.expect_log("Initializing Python.");
}
