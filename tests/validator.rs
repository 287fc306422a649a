//! The server side of PEP 3333, checked by wsgiref.validate.validator wrapped around an app:
//! the validator raises AssertionError or warns WSGIWarning on any violation, which would show
//! in the error log.

mod support;

use support::server;

#[test]
fn wsgiref_validator_finds_no_violation() {
    let s = server()
        .app("validated.wsgi")
        .config("WSGIScriptAlias /v @DIR@/validated.wsgi\n")
        .start();

    let r = s.get("/v/get?x=1");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "validated GET"),
        "{}",
        s.error_log()
    );

    let body = b"first line\nsecond line\nthird";
    let r = s.request("POST", "/v/post", &[("Content-Type", "text/plain")], body);
    assert_eq!(r.status, 200, "{}", s.error_log());
    assert_eq!(r.text(), format!("got {} bytes, 0 more lines", body.len()));

    let r = s.get("/v/stream");
    assert_eq!(r.status, 200, "{}", s.error_log());
    assert_eq!(r.text(), "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");

    let r = s.request("HEAD", "/v/head", &[], b"");
    assert_eq!(r.status, 200, "{}", s.error_log());

    // The validator's complaints would be logged by the time the app's own line is.
    s.expect_log("validated request /get");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = s.error_log();
    for bad in [
        "AssertionError",
        "WSGIWarning",
        "Traceback",
        "Exception ignored",
    ] {
        assert!(!log.contains(bad), "{bad} in the error log:\n{log}");
    }
}
