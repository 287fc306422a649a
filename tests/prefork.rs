//! Embedded mode under mpm_prefork: single-threaded children, several of them.

mod support;

use support::server;

#[test]
fn prefork_children_are_single_threaded_and_multiprocess() {
    let s = server()
        .prefork()
        .app("environ.wsgi")
        .app("input.wsgi")
        .config("WSGIScriptAlias /app @DIR@/environ.wsgi\nWSGIScriptAlias /in @DIR@/input.wsgi\n")
        .start();
    let env = s.get_kv("/app/x");
    assert_eq!(env["wsgi.multithread"], "False");
    // MaxRequestWorkers 3: more than one child may serve, so the app is told multiprocess.
    assert_eq!(env["wsgi.multiprocess"], "True");
    assert_eq!(env["wsgi.run_once"], "False");
    assert_eq!(env["PATH_INFO"], "'/x'");

    // Requests work the same way: a body read in a prefork child.
    let r = s.request("POST", "/in/read", &[], b"prefork body");
    assert_eq!(r.status, 200);
    assert!(r.text().contains(r"data=b'prefork body'"), "{}", r.text());
}
