//! Python lives in each Apache child: started there, and finalised (atexit
//! handlers run) when the child exits on a graceful restart or a stop; the info-level log
//! lines of each step.

mod support;

use std::time::Duration;
use support::{is_reference, server};

fn pid_of(text: &str) -> String {
    text.trim().strip_prefix("pid=").expect("pid= line").to_string()
}

#[test]
fn graceful_restart_finalises_python_and_serves_again() {
    let s = server()
        .app("lifecycle.wsgi")
        .config("WSGIScriptAlias /life @DIR@/lifecycle.wsgi application-group=%{GLOBAL}\n")
        .start();
    let first = s.get("/life");
    assert_eq!(first.status, 200);
    let old_pid = pid_of(&first.text());

    s.signal_parent("USR1");
    s.expect_log(&format!("marker-atexit pid={old_pid}"));
    let mut served = None;
    for _ in 0..100 {
        let r = s.get("/life");
        if r.status == 200 && pid_of(&r.text()) != old_pid {
            served = Some(r);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(served.is_some(), "no new child served after the graceful restart:\n{}", s.error_log());
}

#[test]
fn stop_finalises_python_and_leaves_no_process() {
    let mut s = server()
        .app("lifecycle.wsgi")
        .config("WSGIScriptAlias /life @DIR@/lifecycle.wsgi application-group=%{GLOBAL}\n")
        .start();
    let pid = pid_of(&s.get("/life").text());
    let clean = s.terminate(Duration::from_secs(10));
    let log = s.error_log();
    assert!(log.contains(&format!("marker-atexit pid={pid}")), "{log}");
    // Ours must stop without Apache having to chase its children (the C module's can hang
    // in Python's shutdown, e.g. after using a sub-interpreter, so the check is ours only).
    if !is_reference() {
        assert!(clean, "Apache needed killing to stop:\n{log}");
        assert!(!log.contains("still did not exit"), "{log}");
    }
}

#[test]
fn destroy_interpreter_off_leaves_python_unfinalised_at_stop() {
    let mut s = server()
        .app("lifecycle.wsgi")
        .config(
            "WSGIDestroyInterpreter Off
             WSGIScriptAlias /life @DIR@/lifecycle.wsgi application-group=%{GLOBAL}
",
        )
        .start();
    let pid = pid_of(&s.get("/life").text());
    s.terminate(Duration::from_secs(10));
    let log = s.error_log();
    assert!(!log.contains(&format!("marker-atexit pid={pid}")), "atexit ran:\n{log}");
}

#[test]
fn stop_ends_sub_interpreters_and_runs_their_atexit_handlers() {
    // The default application group (%{RESOURCE}) is a sub-interpreter.
    let mut s = server()
        .app("lifecycle.wsgi")
        .config("WSGIScriptAlias /life @DIR@/lifecycle.wsgi\n")
        .start();
    let pid = pid_of(&s.get("/life").text());
    let clean = s.terminate(Duration::from_secs(10));
    let log = s.error_log();
    // The C module's children hang ending sub-interpreters (Apache kills them),
    // so only ours is held to a clean stop.
    if !is_reference() {
        assert!(log.contains(&format!("marker-atexit pid={pid}")), "{log}");
        assert!(clean, "Apache needed killing to stop:\n{log}");
        assert!(!log.contains("still did not exit"), "{log}");
    }
}

#[test]
fn info_log_tells_each_step_of_an_interpreters_life() {
    let mut s = server()
        .app("hello.wsgi")
        .log_level("info")
        .config(
            "WSGIDaemonProcess g threads=2\n\
             WSGIScriptAlias /d @DIR@/hello.wsgi process-group=g\n\
             WSGIScriptAlias /e @DIR@/hello.wsgi\n",
        )
        .start();
    assert_eq!(s.get("/d").status, 200);
    assert_eq!(s.get("/e").status, 200);
    assert!(s.terminate(Duration::from_secs(20)), "{}", s.error_log());
    let port = s.port();
    // In the Apache child and in the daemon: the lines the C module writes.
    for line in [
        "): Initializing Python.".to_string(),
        "): Attach interpreter ''.".to_string(),
        format!("): Create interpreter '127.0.0.1:{port}|/e'."),
        format!("): Create interpreter '127.0.0.1:{port}|/d'."),
        "): Destroying interpreters.".to_string(),
        format!("): Destroy interpreter '127.0.0.1:{port}|/d'."),
        format!("): End interpreter '127.0.0.1:{port}|/d'."),
        "): Starting process 'g' with uid=33, gid=33 and threads=2.".to_string(),
        "): Shutdown requested 'g'.".to_string(),
        "): Stopping process 'g'.".to_string(),
        "): Process 'g' to be deregistered, as server is restarting or being shutdown.".to_string(),
        "): Process 'g' has been deregistered and will no longer be monitored.".to_string(),
    ] {
        s.expect_log(&line);
    }
    let log = s.error_log();
    assert_eq!(log.matches("): Initializing Python.").count(), 2, "{log}");
    assert_eq!(log.matches("has been deregistered").count(), 1, "{log}");
}
