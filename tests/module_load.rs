//! Loading the module: the LoadModule line works, `<IfModule>` sections see the module, and it
//! announces itself in the server version.

mod support;

use support::server;

#[test]
fn ifmodule_sections_see_the_module() {
    // Both spellings of the module test: source file name and module name.
    let s = server()
        .app("hello.wsgi")
        .config(
            "<IfModule mod_wsgi.c>\n  WSGIScriptAlias /by-file @DIR@/hello.wsgi\n</IfModule>\n\
             <IfModule wsgi_module>\n  WSGIScriptAlias /by-name @DIR@/hello.wsgi\n</IfModule>\n\
             <IfModule !mod_wsgi.c>\n  Alias /not-loaded @DIR@/hello.wsgi\n</IfModule>\n",
        )
        .start();
    for path in ["/by-file", "/by-name"] {
        let r = s.get(path);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "hello from wsgi\n"),
            "{path}"
        );
    }
    assert_eq!(s.get("/not-loaded").status, 404);
}

#[test]
fn ifmodule_sections_are_skipped_without_the_module() {
    // Control for the test above: the same <IfModule> is skipped when the module is not loaded.
    let (ok, out) = server()
        .without_wsgi()
        .config("<IfModule mod_wsgi.c>\n  WSGIScriptAlias /x /tmp/x.wsgi\n</IfModule>\n")
        .configtest();
    assert!(ok, "{out}");
    let (ok, _) = server()
        .without_wsgi()
        .config("WSGIScriptAlias /x /tmp/x.wsgi\n")
        .configtest();
    assert!(!ok, "WSGIScriptAlias accepted without the module");
}

#[test]
fn module_announces_itself_in_the_server_version() {
    // SERVER_SOFTWARE, and the `configured -- resuming normal operations` line, carry mod_wsgi/x.y.z.
    let s = server()
        .app("environ.wsgi")
        .config("WSGIScriptAlias /app @DIR@/environ.wsgi\n")
        .start();
    let env = s.get_kv("/app");
    assert!(
        env["SERVER_SOFTWARE"].contains(" mod_wsgi/"),
        "{}",
        env["SERVER_SOFTWARE"]
    );
    s.expect_log("resuming normal operations");
    assert!(s.error_log().contains(" mod_wsgi/"), "{}", s.error_log());
}
