//! WSGIRestrictEmbedded On: embedded mode is refused, requests not in a daemon group fail.

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
}
