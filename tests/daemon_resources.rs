//! What a daemon process may use: cpu-time-limit=, memory-limit= and
//! virtual-memory-limit= as resource limits, cpu-priority=, stack-size= for the
//! worker threads, supplementary-groups=, and socket-user= for the group socket.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use support::{Server, server, sockets};

#[test]
fn limits_priority_groups_and_stack_size_apply_to_the_daemon() {
    let s = server()
        .app("resources.wsgi")
        .config(
            "WSGIDaemonProcess limited threads=2 cpu-time-limit=100 memory-limit=500000000 \
             virtual-memory-limit=2000000000 stack-size=524288 cpu-priority=5 \
             supplementary-groups=audio,video\n\
             WSGIDaemonProcess plain threads=2\n\
             WSGIScriptAlias /limited @DIR@/resources.wsgi process-group=limited\n\
             WSGIScriptAlias /plain @DIR@/resources.wsgi process-group=plain\n",
        )
        .start();
    let limited = s.get_kv("/limited");
    // The CPU limit's hard value leaves shutdown-timeout (5 s) + 1 s for a graceful stop.
    assert_eq!(limited["cpu"], "(100, 106)");
    assert_eq!(limited["data"], "(500000000, 500000000)");
    assert_eq!(limited["as"], "(2000000000, 2000000000)");
    assert_eq!(limited["thread_stack"], "524288");
    assert_eq!(limited["priority"], "5");
    // Apache's group (www-data, 33) and the listed ones: audio (29), video (44).
    assert_eq!(limited["groups"], "[29, 33, 44]");

    let plain = s.get_kv("/plain");
    for key in ["cpu", "data", "as"] {
        assert_eq!(plain[key], "(-1, -1)", "{key}");
    }
    assert_eq!(plain["priority"], "0");
    assert_eq!(plain["groups"], "[33]");
    // Without stack-size=, worker threads get the default thread stack: the
    // stack rlimit, as Apache's own threads do.
    let stack_limit: i64 = plain["stack_limit"].parse().unwrap();
    let expected = if stack_limit > 0 { stack_limit } else { 8 << 20 };
    assert_eq!(plain["thread_stack"], expected.to_string());
}

#[test]
fn cpu_time_limit_lets_the_request_finish_then_replaces_the_process() {
    let s = server()
        .app("resources.wsgi")
        .config(
            "WSGIDaemonProcess g threads=2 cpu-time-limit=1\n\
             WSGIScriptAlias /r @DIR@/resources.wsgi process-group=g\n",
        )
        .start();
    // The request runs past the limit and still completes.
    let first = s.get_kv("/r/burn");
    s.expect_log("): Exceeded CPU time limit, waiting for requests to complete 'g'.");
    s.expect_log(&format!("(pid={}): Process 'g' has died", first["pid"]));
    let next = s.get_kv("/r");
    assert_ne!(next["pid"], first["pid"], "served by a fresh process");
}

/// A server whose daemon group `g` (mounted at /r) has `options`, and its socket.
fn group_socket_server(options: &str) -> (Server, PathBuf) {
    let s = server()
        .app("resources.wsgi")
        .file("sock/.keep", b"")
        .config(&format!(
            "WSGISocketPrefix @DIR@/sock/wsgi\n\
             WSGIDaemonProcess g threads=1 {options}\n\
             WSGIScriptAlias /r @DIR@/resources.wsgi process-group=g\n"
        ))
        .start();
    let socket = sockets(&s.dir().join("sock")).pop().expect("a group socket");
    (s, socket)
}

#[test]
fn socket_user_owns_the_group_socket() {
    let (s, socket) = group_socket_server("socket-user=nobody");
    assert_eq!(std::fs::metadata(&socket).unwrap().uid(), 65534, "owned by nobody");
    // Apache's children (www-data) may no longer connect: 503, naming the socket.
    assert_eq!(s.get("/r").status, 503);
    s.expect_log(&format!("Unable to connect to WSGI daemon process 'g' on '{}'", socket.display()));
}

#[test]
fn script_user_and_script_group_restrict_which_scripts_a_group_runs() {
    // The test writes its scripts as root.
    let s = server()
        .app("resources.wsgi")
        .config(
            "WSGIDaemonProcess owned threads=1 script-user=root\n\
             WSGIDaemonProcess other-user threads=1 script-user=nobody\n\
             WSGIDaemonProcess other-group threads=1 script-group=nogroup\n\
             WSGIScriptAlias /owned @DIR@/resources.wsgi process-group=owned\n\
             WSGIScriptAlias /other-user @DIR@/resources.wsgi process-group=other-user\n\
             WSGIScriptAlias /other-group @DIR@/resources.wsgi process-group=other-group\n",
        )
        .start();
    let script = format!("{}/resources.wsgi", s.dir().display());
    assert_eq!(s.get("/owned").status, 200);
    assert_eq!(s.get("/other-user").status, 403);
    s.expect_log(&format!("Owner of WSGI script file does not match required user for daemon process, user=root: {script}"));
    assert_eq!(s.get("/other-group").status, 403);
    s.expect_log(&format!("Group of WSGI script file does not match required group for daemon process, group=root: {script}"));
}

#[test]
fn buffer_sizes_apply_to_the_group_socket() {
    let (s, socket) = group_socket_server("send-buffer-size=65536 receive-buffer-size=32768");
    assert_eq!(s.get("/r").status, 200);
    // `ss` shows a listening socket's kernel buffers (the kernel doubles what is asked).
    let out = std::process::Command::new("ss").args(["-xlm", "src"]).arg(&socket).output().expect("ss (iproute2) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rb65536,") && text.contains("tb131072,"), "{text}");
}
