//! The error streams in embedded mode: wsgi.errors, sys.stderr and sys.stdout end up in Apache's
//! error log; WSGIRestrictStdout / WSGIRestrictStdin turn stdout / stdin use into OSError.

mod support;

use support::{Server, server};

fn logging_server(extra: &str) -> Server {
    server()
        .app("logging.wsgi")
        .config(&format!("WSGIScriptAlias /log @DIR@/logging.wsgi\n{extra}"))
        .start()
}

/// A log line carrying `marker`, at level error and tied to the request's client.
fn assert_logged_for_request(s: &Server, marker: &str) {
    s.expect_log(marker);
    let log = s.error_log();
    let line = log.lines().find(|l| l.contains(marker)).unwrap();
    assert!(line.contains(":error]"), "not at level error: {line}");
    assert!(
        line.contains("[client 127.0.0.1:"),
        "not tied to the request: {line}"
    );
}

#[test]
fn wsgi_errors_writes_reach_the_error_log() {
    let s = logging_server("");
    assert_eq!(s.get("/log/wsgi_errors_print").status, 200);
    assert_logged_for_request(&s, "marker-wsgi-errors-print");
    assert_eq!(s.get("/log/wsgi_errors_write").status, 200);
    assert_logged_for_request(&s, "marker-wsgi-errors-write");
    // writelines(): each line becomes its own log line.
    assert_logged_for_request(&s, "marker-writelines-1");
    assert_logged_for_request(&s, "marker-writelines-2");
}

#[test]
fn sys_stderr_writes_reach_the_error_log() {
    let s = logging_server("");
    assert_eq!(s.get("/log/stderr").status, 200);
    assert_logged_for_request(&s, "marker-sys-stderr");
}

#[test]
fn stdout_goes_to_the_error_log_by_default() {
    // mod_wsgi 4.x: WSGIRestrictStdout defaults to Off, print() is logged.
    let s = logging_server("");
    let r = s.get("/log/stdout");
    assert_eq!((r.status, r.text().as_str()), (200, "printed"));
    assert_logged_for_request(&s, "marker-sys-stdout");
    // Reading stdin is allowed too (WSGIRestrictStdin defaults to Off).
    assert_eq!(s.get("/log/stdin").text(), "read");
}

#[test]
fn restricted_stdout_and_stdin_raise_oserror() {
    let s = logging_server("WSGIRestrictStdout On\nWSGIRestrictStdin On\n");
    let r = s.get("/log/stdout");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        "OSError: sys.stdout access restricted by mod_wsgi"
    );
    let r = s.get("/log/stdin");
    assert_eq!(r.text(), "OSError: sys.stdin access restricted by mod_wsgi");

    // Uncaught, it is an ordinary application error: 500 and a traceback in the log.
    let r = s.get("/log/stdout_uncaught");
    assert_eq!(r.status, 500);
    s.expect_log("OSError: sys.stdout access restricted by mod_wsgi");
    let log = s.error_log();
    assert!(log.contains("Traceback (most recent call last):"), "{log}");
    assert!(
        log.contains("Exception occurred processing WSGI script"),
        "{log}"
    );
    // The print itself wrote nothing (the marker only appears quoted in the traceback).
    assert!(
        !log.lines().any(|l| l.ends_with("] marker-uncaught-stdout")),
        "restricted stdout still written: {log}"
    );
}
