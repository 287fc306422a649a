//! Daemon process supervision: a killed daemon is replaced, requests in flight fail fast,
//! SIGUSR1 replaces a daemon once it is idle (eviction-timeout bounds the wait),
//! startup-timeout replaces one whose application never loaded,
//! maximum-requests and inactivity-timeout recycle, a changed script restarts the daemon
//! (WSGIScriptReloading), graceful restart and stop leave no daemon behind (socket names
//! follow WSGISocketRotation), an unreachable or
//! uncreatable socket gives 503, and request-timeout / queue-timeout end requests that take
//! too long.
//!
//! Error-level log lines users search for are checked; info-level chatter is not.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};
use support::{Server, children_of, cmdline_of, descendants_of, is_reference, kill, process_alive, server};

/// One daemon group `g` (display-name `(wsgi:g)`, main interpreter) serving daemon.wsgi at
/// `/d`, plus `extra` configuration. Embedded Python is off, so only daemons run Python.
fn supervised(options: &str, extra: &str) -> Server {
    server()
        .app("daemon.wsgi")
        .config(&format!(
            "WSGIRestrictEmbedded On\n\
             WSGIDaemonProcess g threads=2 display-name=%{{GROUP}} {options}\n\
             WSGIScriptAlias /d @DIR@/daemon.wsgi process-group=g application-group=%{{GLOBAL}}\n\
             {extra}"
        ))
        .start()
}

/// The pid of the daemon process serving `/d` (or `prefix`).
fn daemon_pid(s: &Server, prefix: &str) -> u32 {
    let r = s.get(&format!("{prefix}/pid"));
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    parse_pid(&r.text())
}

fn parse_pid(text: &str) -> u32 {
    text.trim()
        .rsplit("pid=")
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {text:?}"))
}

/// Sends a GET on its own thread; yields (status line, full response, time taken).
fn background_get(s: &Server, path: &str) -> JoinHandle<(String, String, Duration)> {
    let port = s.port();
    let path = path.to_string();
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        c.write_all(req.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        let out = String::from_utf8_lossy(&out).into_owned();
        let status = out.lines().next().unwrap_or("").to_string();
        (status, out, start.elapsed())
    })
}

fn wait_for_marker(s: &Server, name: &str) -> String {
    s.marker(name).unwrap_or_else(|| panic!("marker {name} did not appear:\n{}", s.error_log()))
}

/// Daemon processes of group `g` below the Apache parent (found by display-name).
fn group_daemons(s: &Server) -> Vec<u32> {
    descendants_of(s.parent_pid())
        .into_iter()
        .filter(|&p| cmdline_of(p).starts_with("(wsgi:g)"))
        .collect()
}

#[test]
fn killed_daemon_is_replaced_and_the_next_request_succeeds() {
    let s = supervised("", "");
    let old = daemon_pid(&s, "/d");
    assert_eq!(group_daemons(&s), [old]);
    kill("KILL", old);
    // The listening socket belongs to the Apache parent, so the next request waits for the
    // replacement daemon instead of failing.
    let start = Instant::now();
    let new = daemon_pid(&s, "/d");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert_ne!(new, old);
    assert!(!process_alive(old));
    assert_eq!(group_daemons(&s), [new]);
    // And it keeps serving.
    assert_eq!(daemon_pid(&s, "/d"), new);
    s.expect_log(&format!("mod_wsgi (pid={old}): Process 'g' has died, deregister and restart it."));
    s.expect_log(&format!("mod_wsgi (pid={old}): Process 'g' terminated by signal 9"));
}

#[test]
fn connections_kept_to_a_killed_daemon_are_passed_over_quietly() {
    kept_connections_of_a_killed_daemon_are_passed_over("");
}

#[test]
fn connections_kept_to_a_killed_daemon_are_passed_over_with_a_streamed_body() {
    if is_reference() {
        // request-buffer-size= is ours: the C module's children always stream the body.
        println!("skipped: the C module has no request-buffer-size= (it streams every body)");
        return;
    }
    // No read-ahead: the body streams from the client as the request goes out, so a dead
    // connection must be found before any of it is taken.
    kept_connections_of_a_killed_daemon_are_passed_over("request-buffer-size=0");
}

/// Kept connections whose daemon was killed: requests that find one closed take another,
/// with or without a body, and nothing is logged for it.
fn kept_connections_of_a_killed_daemon_are_passed_over(options: &str) {
    let s = supervised(options, "");
    let old = daemon_pid(&s, "/d");
    // Concurrent requests leave several connections kept by the Apache children.
    let kept: Vec<_> = (0..6).map(|_| background_get(&s, "/d/pid")).collect();
    for request in kept {
        let (status, out, _) = request.join().unwrap();
        assert!(status.contains(" 200 "), "{out}");
    }
    kill("KILL", old);
    // Reaped, so every thread of it is gone and its sockets are closed: a request sent
    // while it was still dying would be retried, with a log line.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !s.error_log().contains(&format!("mod_wsgi (pid={old}): Process 'g' has died")) {
        assert!(Instant::now() < deadline, "daemon {old} not reaped:\n{}", s.error_log());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Requests with a body first (a request passes over every closed connection it finds).
    let body = vec![b'x'; 100_000];
    for _ in 0..4 {
        let r = s.request("POST", "/d/md5", &[], &body);
        assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
        assert!(r.text().starts_with("length=100000\n"), "{}", r.text());
    }
    for _ in 0..4 {
        assert_ne!(daemon_pid(&s, "/d"), old);
    }
    let log = s.error_log();
    for unwanted in ["Connect after WSGI daemon process restart", "Unable to send request", "Truncated"] {
        assert!(!log.contains(unwanted), "{unwanted:?} in\n{log}");
    }
}

#[test]
fn request_in_flight_when_the_daemon_dies_gets_500_not_a_hang() {
    let s = supervised("", "");
    let slow = background_get(&s, "/d/sleep/20/inflight");
    let pid: u32 = wait_for_marker(&s, "started-inflight").parse().unwrap();
    kill("KILL", pid);
    let (status, _, took) = slow.join().unwrap();
    assert!(status.starts_with("HTTP/1.1 500 "), "{status}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    s.expect_log(&format!(
        "Truncated or oversized response headers received from daemon process 'g': {}/daemon.wsgi",
        s.dir().display()
    ));
    // The replacement serves.
    assert_ne!(daemon_pid(&s, "/d"), pid);
}

#[test]
fn deadlock_timeout_replaces_a_process_whose_gil_is_held() {
    let s = supervised("deadlock-timeout=2", "");
    let held = background_get(&s, "/d/hold-gil/30/deadlock");
    let pid: u32 = wait_for_marker(&s, "started-deadlock").parse().unwrap();
    let (status, _, took) = held.join().unwrap();
    // Not retried elsewhere: the request had run, and may have done something.
    assert!(status.starts_with("HTTP/1.1 500 "), "{status}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    s.expect_log(&format!(
        "mod_wsgi (pid={pid}): Daemon process deadlock timer expired, stopping process 'g'."
    ));
    assert_ne!(daemon_pid(&s, "/d"), pid);
}

/// Waits (up to 15 s) for `pid` to exit.
fn wait_gone(s: &Server, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while process_alive(pid) {
        assert!(Instant::now() < deadline, "daemon {pid} still runs:\n{}", s.error_log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigusr1_replaces_a_daemon_once_its_requests_are_done() {
    let s = supervised("", "");
    // Idle: it goes at once.
    let idle = daemon_pid(&s, "/d");
    kill("USR1", idle);
    s.expect_log(&format!("mod_wsgi (pid={idle}): Process eviction requested, triggering immediate shutdown 'g'."));
    wait_gone(&s, idle);

    // Busy: it keeps serving, new requests included, until none runs.
    let busy = daemon_pid(&s, "/d");
    assert_ne!(busy, idle);
    let slow = background_get(&s, "/d/sleep/2/evict");
    wait_for_marker(&s, "started-evict");
    kill("USR1", busy);
    s.expect_log(&format!("mod_wsgi (pid={busy}): Process eviction requested, waiting for requests to complete 'g'."));
    assert_eq!(daemon_pid(&s, "/d"), busy, "still serving while a request runs");
    let (status, out, _) = slow.join().unwrap();
    assert!(status.starts_with("HTTP/1.1 200 ") && out.contains(&format!("slept pid={busy}")), "{out}");
    s.expect_log(&format!("mod_wsgi (pid={busy}): Requests have completed, triggering immediate shutdown 'g'."));
    wait_gone(&s, busy);
    assert_ne!(daemon_pid(&s, "/d"), busy);
}

#[test]
fn eviction_timeout_bounds_how_long_an_evicted_daemon_waits() {
    let s = supervised("eviction-timeout=1 graceful-timeout=30", "");
    let pid = daemon_pid(&s, "/d");
    let slow = background_get(&s, "/d/sleep/3/evict");
    wait_for_marker(&s, "started-evict");
    kill("USR1", pid);
    s.expect_log(&format!("mod_wsgi (pid={pid}): Daemon process graceful timer expired 'g'."));
    s.expect_log(&format!("mod_wsgi (pid={pid}): Shutdown requested 'g'."));
    // The running request still has shutdown-timeout (5 s) to finish.
    let (status, out, _) = slow.join().unwrap();
    assert!(status.starts_with("HTTP/1.1 200 "), "{out}");
    wait_gone(&s, pid);
    assert_ne!(daemon_pid(&s, "/d"), pid);
}

#[test]
fn startup_timeout_replaces_a_process_whose_application_never_loaded() {
    let s = server()
        .app("first_process_fails.wsgi")
        .app("daemon.wsgi")
        .config(
            "WSGIDaemonProcess g threads=2 startup-timeout=1\n\
             WSGIDaemonProcess fine threads=2 startup-timeout=1\n\
             WSGIScriptAlias /s @DIR@/first_process_fails.wsgi process-group=g application-group=%{GLOBAL}\n\
             WSGIScriptAlias /d @DIR@/daemon.wsgi process-group=fine application-group=%{GLOBAL}\n",
        )
        .start();
    let fine = daemon_pid(&s, "/d");
    assert_eq!(s.get("/s").status, 500);
    let first = wait_for_marker(&s, "first-pid");
    s.expect_log(&format!("mod_wsgi (pid={first}): Application startup timer triggered 'g'."));
    s.expect_log(&format!("mod_wsgi (pid={first}): Application startup timer expired, stopping process 'g'."));
    // Its successor loads the application.
    let deadline = Instant::now() + Duration::from_secs(15);
    let served = loop {
        let r = s.get("/s");
        if r.status == 200 {
            break parse_pid(&r.text());
        }
        assert!(Instant::now() < deadline, "no successful load:\n{}", s.error_log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_ne!(served.to_string(), first);
    // A process whose application loaded is left alone.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(daemon_pid(&s, "/d"), fine);
    assert!(!s.error_log().contains(&format!("mod_wsgi (pid={fine}): Application startup timer expired")));
}

#[test]
fn request_left_unread_by_a_stopping_daemon_runs_in_its_successor() {
    let s = supervised("", "");
    // The long request holds the Apache child's first connection to the daemon; the quick
    // one opens a second, which then waits idle in the child's pool.
    let long = background_get(&s, "/d/sleep/3/long");
    let old: u32 = wait_for_marker(&s, "started-long").parse().unwrap();
    assert_eq!(daemon_pid(&s, "/d"), old);
    kill("TERM", old);
    s.expect_log(&format!("mod_wsgi (pid={old}): Shutdown requested 'g'."));
    // Sent on the kept connection to the stopping daemon, which never reads it: when that
    // daemon exits the request goes to its successor instead of failing.
    assert_ne!(daemon_pid(&s, "/d"), old);
    let (status, body, _) = long.join().unwrap();
    assert!(status.starts_with("HTTP/1.1 200 "), "{status}");
    assert!(body.contains(&format!("slept pid={old}\n")), "{body}");
}

#[test]
fn maximum_requests_recycles_the_process() {
    // One thread: with more, an idle thread of the retiring process may still accept the
    // next request before the process stops (the C module then serves it there).
    let s = server()
        .app("daemon.wsgi")
        .config(
            "WSGIRestrictEmbedded On\n\
             WSGIDaemonProcess g threads=1 maximum-requests=3\n\
             WSGIScriptAlias /d @DIR@/daemon.wsgi process-group=g application-group=%{GLOBAL}\n",
        )
        .start();
    let first = daemon_pid(&s, "/d");
    assert_eq!(daemon_pid(&s, "/d"), first);
    assert_eq!(daemon_pid(&s, "/d"), first);
    // The third request was the last: the fourth is served by a new process.
    let second = daemon_pid(&s, "/d");
    assert_ne!(second, first);
    // The successor serves while the old process finishes exiting.
    wait_gone(&s, first);
    assert_eq!(daemon_pid(&s, "/d"), second);
    assert_eq!(daemon_pid(&s, "/d"), second);
    assert_ne!(daemon_pid(&s, "/d"), second);
    s.expect_log(&format!("mod_wsgi (pid={first}): Maximum requests reached, triggering immediate shutdown 'g'."));
    s.expect_log(&format!("mod_wsgi (pid={first}): Exiting process 'g'."));
    s.expect_log(&format!("mod_wsgi (pid={first}): Process 'g' terminated normally, exit code 0"));
}

#[test]
fn a_replaced_daemon_is_stopped_with_the_server() {
    // After a daemon died and was forked again, a stop still reaches the new one.
    let mut s = supervised("", "");
    let old = daemon_pid(&s, "/d");
    kill("KILL", old);
    let new = daemon_pid(&s, "/d");
    assert_ne!(new, old);
    assert!(s.terminate(Duration::from_secs(20)), "{}", s.error_log());
    assert!(!process_alive(new));
    s.expect_log(&format!("mod_wsgi (pid={new}): Process 'g' to be deregistered, as server is restarting or being shutdown."));
    s.expect_log(&format!("mod_wsgi (pid={new}): Exiting process 'g'."));
    // The death was not taken for a stop.
    assert!(!s.error_log().contains(&format!("mod_wsgi (pid={old}): Process 'g' to be deregistered")), "{}", s.error_log());
}

#[test]
fn inactivity_timeout_restarts_an_idle_process() {
    let s = supervised("inactivity-timeout=1", "");
    let first = daemon_pid(&s, "/d");
    // Idle for longer than the timeout: the process stops and is replaced.
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(first) {
        assert!(Instant::now() < deadline, "idle daemon {first} still runs");
        std::thread::sleep(Duration::from_millis(100));
    }
    s.expect_log(&format!("mod_wsgi (pid={first}): Daemon process idle inactivity timer expired, stopping process 'g'."));
    s.expect_log(&format!("mod_wsgi (pid={first}): Exiting process 'g'."));
    // Its successor has served nothing yet, so it has nothing to free: it stays.
    let successor = loop {
        if let Some(&pid) = group_daemons(&s).first() {
            break pid;
        }
        assert!(Instant::now() < deadline, "no successor");
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(2500));
    assert!(process_alive(successor), "an unused daemon was stopped for inactivity");
    assert_eq!(daemon_pid(&s, "/d"), successor);
}

/// Rewrites the script's VERSION and pushes its mtime forward, so no sleep is needed.
fn edit_script(s: &Server, name: &str) {
    let path = s.dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("VERSION = 'v1'", "VERSION = 'v2'");
    std::fs::write(&path, text).unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(10))
        .unwrap();
}

#[test]
fn changed_script_restarts_the_daemon_unless_reloading_is_off() {
    let s = server()
        .app_as("daemon.wsgi", "on.wsgi")
        .app_as("daemon.wsgi", "off.wsgi")
        .config(
            "WSGIRestrictEmbedded On\n\
             WSGIDaemonProcess on threads=2\n\
             WSGIDaemonProcess off threads=2\n\
             WSGIScriptAlias /on @DIR@/on.wsgi process-group=on application-group=%{GLOBAL}\n\
             WSGIScriptAlias /off @DIR@/off.wsgi process-group=off application-group=%{GLOBAL}\n\
             <Location /off>\n  WSGIScriptReloading Off\n</Location>\n",
        )
        .start();
    let mut before = Vec::new();
    for path in ["/on/info", "/off/info"] {
        let env = s.get_kv(path);
        assert_eq!(
            (env["version"].as_str(), env["counter"].as_str()),
            ("'v1'", "1"),
            "{path}"
        );
        before.push(env["pid"].clone());
    }
    assert_eq!(
        s.get_kv("/off/info")["env.mod_wsgi.script_reloading"],
        "'0'"
    );
    edit_script(&s, "on.wsgi");
    edit_script(&s, "off.wsgi");

    // On: the daemon process is restarted and the request is served by the new one, with the
    // new code and fresh state.
    let env = s.get_kv("/on/info");
    assert_eq!(
        (env["version"].as_str(), env["counter"].as_str()),
        ("'v2'", "1")
    );
    assert_ne!(env["pid"], before[0]);
    let old: u32 = before[0].parse().unwrap();
    wait_gone(&s, old);
    // Once: no restart loop on the following requests.
    let again = s.get_kv("/on/info");
    assert_eq!(
        (again["pid"].as_str(), again["counter"].as_str()),
        (env["pid"].as_str(), "2")
    );

    // Off: the same process keeps the module it loaded first.
    let env = s.get_kv("/off/info");
    assert_eq!(
        (env["version"].as_str(), env["counter"].as_str()),
        ("'v1'", "3")
    );
    assert_eq!(env["pid"], before[1]);
}

#[test]
fn graceful_restart_replaces_the_daemon_and_leaves_no_old_one() {
    let s = supervised("", "");
    let old = daemon_pid(&s, "/d");
    assert!(
        cmdline_of(old).starts_with("(wsgi:g)"),
        "{}",
        cmdline_of(old)
    );
    s.signal_parent("USR1");
    let deadline = Instant::now() + Duration::from_secs(10);
    let new = loop {
        if !process_alive(old) {
            let r = s.get("/d/pid");
            if r.status == 200 {
                break parse_pid(&r.text());
            }
        }
        assert!(
            Instant::now() < deadline,
            "old daemon {old} still runs:\n{}",
            s.error_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_ne!(new, old);
    assert_eq!(
        group_daemons(&s),
        [new],
        "exactly one daemon of group g after the restart"
    );
}

/// The daemon socket names in `<dir>/sock`, without the directory, sorted.
fn socket_names(s: &Server) -> Vec<String> {
    let mut names: Vec<String> = support::sockets(&s.dir().join("sock"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// After a graceful restart, the socket names once the new daemons serve.
fn socket_names_after_graceful_restart(s: &Server) -> Vec<String> {
    let before = socket_names(s);
    let restarts = s.error_log().matches("resuming normal operations").count();
    s.signal_parent("USR1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.error_log().matches("resuming normal operations").count() <= restarts {
        assert!(Instant::now() < deadline, "no graceful restart:\n{}", s.error_log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.get("/g").status, 200, "{}", s.error_log());
    let after = socket_names(s);
    assert!(after.len() >= before.len(), "{before:?} -> {after:?}");
    after
}

fn inode(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map(|m| m.ino()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn socket_names_carry_the_generation_unless_socket_rotation_is_off() {
    let config = |extra: &str| {
        server()
            .app("daemon.wsgi")
            .file("sock/.keep", b"")
            .config(&format!(
                "{extra}WSGISocketPrefix @DIR@/sock/wsgi\n\
                 WSGIDaemonProcess g threads=1 user=nobody home=@DIR@\n\
                 WSGIDaemonProcess h threads=1\n\
                 WSGIScriptAlias /g @DIR@/daemon.wsgi process-group=g\n"
            ))
            .start()
    };
    // Default: <prefix>.<parent pid>.<generation>.<n>.sock, new names each generation.
    let s = config("");
    let pid = s.parent_pid();
    assert_eq!(s.get("/g").status, 200);
    let names = |generation: u32| [format!("wsgi.{pid}.{generation}.1.sock"), format!("wsgi.{pid}.{generation}.2.sock")];
    assert_eq!(socket_names(&s), names(0));
    if is_reference() {
        // The C module's old names go with the restart.
        assert_eq!(socket_names_after_graceful_restart(&s), names(1));
    } else {
        // Ours keep the socket: the new name is another link to it, and the
        // old name stays one generation, for Apache children of the old
        // generation still finishing their connections.
        let both: Vec<String> = names(0).into_iter().chain(names(1)).collect();
        assert_eq!(socket_names_after_graceful_restart(&s), both);
        let sock = s.dir().join("sock");
        assert_eq!(inode(&sock.join(&names(0)[0])), inode(&sock.join(&names(1)[0])));
        let both: Vec<String> = names(1).into_iter().chain(names(2)).collect();
        assert_eq!(socket_names_after_graceful_restart(&s), both);
    }

    // Off: the daemon's uid (nobody, and Apache's www-data) replaces the
    // generation, so the names stay across a graceful restart.
    let s = config("WSGISocketRotation Off\n");
    let pid = s.parent_pid();
    let names = [format!("wsgi.{pid}.u33.2.sock"), format!("wsgi.{pid}.u65534.1.sock")];
    assert_eq!(s.get("/g").status, 200);
    assert_eq!(socket_names(&s), names);
    assert_eq!(socket_names_after_graceful_restart(&s), names);
}

#[test]
fn a_killed_apache_parent_takes_the_daemons_with_it() {
    let s = supervised("", "");
    let daemon = daemon_pid(&s, "/d");
    let below = descendants_of(s.parent_pid());
    kill("KILL", s.parent_pid());
    if is_reference() {
        // The C module's daemons are orphaned: still serving their socket minutes later.
        std::thread::sleep(Duration::from_secs(3));
        assert!(process_alive(daemon), "the C module's daemon {daemon} ended with the Apache parent");
        kill("KILL", daemon);
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(daemon) {
        assert!(Instant::now() < deadline, "daemon {daemon} outlived the Apache parent");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The supervisor too; only Apache's own children are left to Apache.
    for pid in below.into_iter().filter(|&p| cmdline_of(p).starts_with("mod_wsgi supervisor")) {
        while process_alive(pid) {
            assert!(Instant::now() < deadline, "supervisor {pid} outlived the Apache parent");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn stop_leaves_no_daemon_process() {
    let mut s = supervised("", "");
    let daemon = daemon_pid(&s, "/d");
    let parent = s.parent_pid();
    let clean = s.terminate(Duration::from_secs(10));
    assert!(
        clean,
        "Apache or its daemon needed killing to stop:\n{}",
        s.error_log()
    );
    assert!(!process_alive(daemon));
    assert!(children_of(parent).is_empty());
}

#[test]
fn unreachable_daemon_socket_gives_503_naming_the_socket() {
    // The parent (root) creates the sockets under WSGISocketPrefix; once their directory is
    // closed to Apache's User, the children cannot connect.
    let s = server()
        .app("daemon.wsgi")
        .file("sock/.keep", b"")
        .config(
            "WSGIRestrictEmbedded On\n\
             WSGISocketPrefix @DIR@/sock/wsgi\n\
             WSGIDaemonProcess g threads=2\n\
             WSGIScriptAlias /d @DIR@/daemon.wsgi process-group=g application-group=%{GLOBAL}\n",
        )
        .start();
    let sock_dir = s.dir().join("sock");
    daemon_pid(&s, "/d");
    let sockets: Vec<String> = std::fs::read_dir(&sock_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        sockets
            .iter()
            .any(|n| n.starts_with("wsgi.") && n.ends_with(".sock")),
        "{sockets:?}"
    );
    std::fs::set_permissions(&sock_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    if !is_reference() {
        // Ours keeps its connection to the daemon open between requests, so the closed
        // directory only matters for new connections: restart Apache's children (and the
        // group, whose new socket lands in the closed directory) so they must connect.
        assert_eq!(s.get("/d/pid").status, 200, "an open connection keeps serving");
        s.signal_parent("USR1");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !s.error_log().contains("SIGUSR1 received") || s.error_log().matches("resuming normal operations").nth(1).is_none() {
            assert!(Instant::now() < deadline, "no graceful restart:\n{}", s.error_log());
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let start = Instant::now();
    let r = s.get("/d/pid");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(start.elapsed() < Duration::from_secs(5));
    let prefix = format!("{}/wsgi.", sock_dir.display());
    s.expect_log("Permission denied: [client 127.0.0.1:");
    s.expect_log(&format!(
        "Unable to connect to WSGI daemon process 'g' on '{prefix}"
    ));
    let log = s.error_log();
    let line = log
        .lines()
        .find(|l| l.contains("Unable to connect to WSGI daemon process 'g'"))
        .unwrap();
    assert!(line.contains(".sock' as user with uid=33."), "{line}");
    // Reachable again: served again.
    std::fs::set_permissions(&sock_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(s.get("/d/pid").status, 200);
}

#[test]
fn request_timeout_ends_the_request_and_restarts_the_process() {
    let s = server()
        .app("daemon.wsgi")
        .config(
            "WSGIRestrictEmbedded On\n\
             WSGIDaemonProcess rt threads=1 request-timeout=2 shutdown-timeout=1\n\
             WSGIScriptAlias /rt @DIR@/daemon.wsgi process-group=rt application-group=%{GLOBAL}\n",
        )
        .start();
    let slow = background_get(&s, "/rt/sleep/10/rt");
    let pid: u32 = wait_for_marker(&s, "started-rt").parse().unwrap();
    let (status, _, took) = slow.join().unwrap();
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(
        !s.var_dir().join("finished-rt").exists(),
        "the app ran to its end"
    );
    if is_reference() {
        // The C module stops the process (after shutdown-timeout) and the Apache child sees
        // the connection end without a response: 500.
        assert!(status.starts_with("HTTP/1.1 500 "), "{status}");
        s.expect_log(&format!(
            "Truncated or oversized response headers received from daemon process 'rt': {}/daemon.wsgi",
            s.dir().display()
        ));
    } else {
        // Ours tells the waiting client why before the process goes: 504 Gateway Timeout.
        assert!(status.starts_with("HTTP/1.1 504 "), "{status}");
    }
    s.expect_log(&format!("mod_wsgi (pid={pid}): Daemon process request time limit exceeded, stopping process 'rt'."));
    // Where the request was stuck, for whoever looks into it.
    s.expect_log(&format!("mod_wsgi (pid={pid}): Dumping stack trace for active Python threads."));
    s.expect_log("/daemon.wsgi\", line ");
    let log = s.error_log();
    assert!(
        log.lines().any(|l| l.contains("executing file") && l.contains("/daemon.wsgi\", line ") && l.ends_with(", in application")),
        "{log}"
    );
    let new = daemon_pid(&s, "/rt");
    assert_ne!(new, pid);
}

#[test]
fn queue_timeout_gives_504_to_a_request_that_waited_too_long() {
    let s = server()
        .app("daemon.wsgi")
        .config(
            "WSGIRestrictEmbedded On\n\
             WSGIDaemonProcess qt threads=1 queue-timeout=1\n\
             WSGIScriptAlias /qt @DIR@/daemon.wsgi process-group=qt application-group=%{GLOBAL}\n",
        )
        .start();
    let pid = daemon_pid(&s, "/qt");
    // The only thread is busy for 3 s; the second request waits in the queue longer than
    // queue-timeout, and the daemon answers 504 when it finally takes it.
    let busy = background_get(&s, "/qt/sleep/3/busy");
    wait_for_marker(&s, "started-busy");
    let queued = background_get(&s, "/qt/pid");
    let (status, _, took) = queued.join().unwrap();
    assert!(status.starts_with("HTTP/1.1 504 "), "{status}");
    assert!(took < Duration::from_secs(6), "took {took:?}");
    let (status, body, _) = busy.join().unwrap();
    assert!(status.starts_with("HTTP/1.1 200 "), "{status}");
    assert!(body.contains(&format!("slept pid={pid}\n")), "{body}");
    s.expect_log("Queue timeout expired for WSGI daemon process 'qt'.");
    // No restart: the same process serves on.
    assert_eq!(daemon_pid(&s, "/qt"), pid);
}

#[test]
fn socket_prefix_in_a_missing_directory_gives_503_naming_the_socket() {
    // The parent cannot create the listener socket: it logs that and starts no daemon;
    // requests for the group fail at once.
    let s = server()
        .app("daemon.wsgi")
        .config(
            "WSGIRestrictEmbedded On\n\
             WSGISocketPrefix @DIR@/no-such-dir/wsgi\n\
             WSGIDaemonProcess g threads=2\n\
             WSGIScriptAlias /d @DIR@/daemon.wsgi process-group=g application-group=%{GLOBAL}\n",
        )
        .start();
    let prefix = format!("{}/no-such-dir/wsgi.", s.dir().display());
    s.expect_log(&format!("Couldn't bind unix domain socket '{prefix}"));
    let start = Instant::now();
    let r = s.get("/d/pid");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(start.elapsed() < Duration::from_secs(5));
    s.expect_log(&format!(
        "Unable to connect to WSGI daemon process 'g' on '{prefix}"
    ));
    assert!(
        s.error_log()
            .contains("No such file or directory: [client 127.0.0.1:")
    );
}

#[test]
fn restart_interval_replaces_the_process_on_schedule() {
    let s = supervised("restart-interval=1", "");
    let first = daemon_pid(&s, "/d");
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(first) {
        assert!(Instant::now() < deadline, "daemon {first} still runs after restart-interval");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_ne!(daemon_pid(&s, "/d"), first);
}
