//! Failures in embedded mode: missing scripts, scripts that fail to load, applications that
//! raise or break the WSGI protocol. Each gives the client an error status and the log a line
//! saying what went wrong; the Apache child keeps serving.

mod support;

use support::{Server, server};

fn failures_server() -> Server {
    server()
        .app("bad_response.wsgi")
        .app("import_error.wsgi")
        .app("no_callable.wsgi")
        .app("app_exception.wsgi")
        .app("sys_exit.wsgi")
        .app("hello.wsgi")
        .config(
            "WSGIScriptAlias /bad @DIR@/bad_response.wsgi\n\
             WSGIScriptAlias /import @DIR@/import_error.wsgi\n\
             WSGIScriptAlias /nocall @DIR@/no_callable.wsgi\n\
             WSGIScriptAlias /exc @DIR@/app_exception.wsgi\n\
             WSGIScriptAlias /exit @DIR@/sys_exit.wsgi\n\
             WSGIScriptAlias /hello @DIR@/hello.wsgi\n\
             WSGIScriptAlias /missing @DIR@/missing.wsgi\n",
        )
        .start()
}

/// GETs `/bad/<mode>`, expects a 500 and `message` in the log (as the exception's last line).
fn assert_bad_response(s: &Server, mode: &str, message: &str) {
    let r = s.get(&format!("/bad/{mode}"));
    assert_eq!(r.status, 500, "{mode}: {}", r.text());
    assert!(!r.text().contains("should not be sent"), "{mode}");
    s.expect_log(message);
    assert!(
        s.error_log()
            .contains("Exception occurred processing WSGI script"),
        "{mode}: {}",
        s.error_log()
    );
}

#[test]
fn missing_script_is_404() {
    let s = failures_server();
    assert_eq!(s.get("/missing").status, 404);
    s.expect_log(&format!(
        "Target WSGI script not found or unable to stat: {}/missing.wsgi",
        s.dir().display()
    ));
}

#[test]
fn script_without_the_callable_is_404() {
    let s = failures_server();
    assert_eq!(s.get("/nocall").status, 404);
    s.expect_log(&format!(
        "Target WSGI script '{}/no_callable.wsgi' does not contain WSGI application 'application'.",
        s.dir().display()
    ));
}

#[test]
fn exception_at_import_is_500_with_traceback() {
    let s = failures_server();
    assert_eq!(s.get("/import").status, 500);
    s.expect_log("ValueError: marker-import-failure");
    let log = s.error_log();
    let script = format!("{}/import_error.wsgi", s.dir().display());
    assert!(
        log.contains(&format!("Failed to exec Python script file '{script}'.")),
        "{log}"
    );
    assert!(log.contains("Traceback (most recent call last):"), "{log}");
    assert!(
        log.contains(&format!("File \"{script}\", line 2, in <module>")),
        "{log}"
    );
    // Nothing is cached: the next request fails the same way.
    assert_eq!(s.get("/import").status, 500);
    assert_eq!(s.get("/hello").status, 200);
}

#[test]
fn exception_in_the_application_is_500_with_traceback() {
    let s = failures_server();
    assert_eq!(s.get("/exc").status, 500);
    s.expect_log("RuntimeError: marker-app-exception");
    let log = s.error_log();
    let script = format!("{}/app_exception.wsgi", s.dir().display());
    assert!(
        log.contains(&format!(
            "Exception occurred processing WSGI script '{script}'."
        )),
        "{log}"
    );
    assert!(log.contains("Traceback (most recent call last):"), "{log}");
    assert!(
        log.contains(&format!("File \"{script}\", line 3, in application")),
        "{log}"
    );
    assert_eq!(s.get("/hello").status, 200);
}

#[test]
fn sys_exit_at_import_is_logged_and_the_child_keeps_serving() {
    let s = failures_server();
    assert_eq!(s.get("/exit").status, 500);
    let script = format!("{}/sys_exit.wsgi", s.dir().display());
    s.expect_log(&format!(
        "SystemExit exception raised when doing exec of Python script file '{script}'."
    ));
    s.expect_log(&format!(
        "SystemExit exception raised by WSGI script '{script}' ignored."
    ));
    s.expect_log("SystemExit: marker-sys-exit");
    // The process did not exit: other scripts, and the same one again, still get answers.
    let r = s.get("/hello");
    assert_eq!((r.status, r.text().as_str()), (200, "hello from wsgi\n"));
    assert_eq!(s.get("/exit").status, 500);
    assert_eq!(s.get("/hello").status, 200);
}

#[test]
fn invalid_status_is_500() {
    let s = failures_server();
    assert_bad_response(
        &s,
        "status_no_reason",
        "ValueError: no space following status code",
    );
    assert_bad_response(
        &s,
        "status_not_numeric",
        "ValueError: status code is not a 3 digit integer",
    );
    assert_bad_response(
        &s,
        "status_newline",
        "ValueError: control character present in reason phrase",
    );
    assert_bad_response(
        &s,
        "status_not_str",
        "TypeError: expected unicode object, value of type int found",
    );
}

#[test]
fn invalid_headers_are_500() {
    let s = failures_server();
    assert_bad_response(
        &s,
        "header_name_space",
        "ValueError: space character present in header name",
    );
    assert_bad_response(
        &s,
        "header_value_crlf",
        "ValueError: carriage return/line feed character present in header value",
    );
    assert_bad_response(
        &s,
        "header_value_non_latin1",
        "ValueError: unicode object contains non latin-1 characters",
    );
    assert_bad_response(
        &s,
        "header_value_not_str",
        "TypeError: expected unicode object, value of type int found",
    );
    assert_bad_response(
        &s,
        "header_not_tuple",
        "TypeError: list of tuple values expected for headers, value of type str found",
    );
    assert_bad_response(
        &s,
        "headers_not_list",
        "TypeError: start_response() argument 2 must be list, not tuple",
    );
}

#[test]
fn invalid_bodies_are_500() {
    let s = failures_server();
    assert_bad_response(
        &s,
        "body_str",
        "TypeError: sequence of byte string values expected, value of type str found",
    );
    assert_bad_response(
        &s,
        "body_none",
        "TypeError: 'NoneType' object is not iterable",
    );
    assert_bad_response(
        &s,
        "no_start_response",
        "RuntimeError: response has not been started",
    );
    assert_eq!(s.get("/hello").status, 200);
}
