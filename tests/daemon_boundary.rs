//! Daemon mode as a privilege boundary. Only requests from Apache's own children run in a
//! daemon: a request head forged by another process of Apache's user, or replayed, or edited,
//! runs nothing. Each daemon process holds only its own descriptors. Connections that send
//! nothing, or a byte, cannot hold its threads; running short of descriptors loses no request;
//! and response heads of any size get the C module's answer, at once.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Server, is_reference, kill, server, sockets};

/// Group `g` (with `options`) serving origin.wsgi at /app; forged.wsgi lies next to it,
/// named by nothing in the configuration.
fn origin_server(options: &str) -> Server {
    server()
        .app("origin.wsgi")
        .app("forged.wsgi")
        .app("forge_head.py")
        .config(&format!(
            "WSGISocketPrefix @DIR@/wsgi\n\
             WSGIDaemonProcess g {options}\n\
             WSGIScriptAlias /app @DIR@/origin.wsgi process-group=g application-group=%{{GLOBAL}}\n"
        ))
        .start()
}

fn only_socket(s: &Server) -> PathBuf {
    let mut found = sockets(s.dir());
    assert_eq!(found.len(), 1, "{found:?}");
    found.pop().unwrap()
}

/// Whether `var/<name>` appears within `wait`.
fn marker_appears(s: &Server, name: &str, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if s.var_dir().join(name).exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn a_head_forged_by_apaches_user_runs_nothing() {
    let s = origin_server("threads=2");
    assert_eq!(s.get("/app/").status, 200);
    // As a CGI script or PHP would: www-data, straight to the group's socket, naming a
    // script of its own.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=www-data", "--regid=www-data", "--clear-groups", "/usr/bin/python3"])
        .arg(s.dir().join("forge_head.py"))
        .arg(only_socket(&s))
        .arg(s.dir().join("forged.wsgi"))
        .output()
        .expect("run forge_head.py");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{printed}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!marker_appears(&s, "forged", Duration::from_secs(1)), "the forged script ran");
    if !is_reference() {
        // The C module reads our frames as garbage and answers with an error page.
        assert!(printed.contains("uid=33 answered=0"), "{printed}");
        s.expect_log("Request origin could not be validated.");
        assert!(s.error_log().contains(", uid=33: its MAC does not verify."), "{}", s.error_log());
    }
    assert_eq!(s.get("/app/").status, 200, "the daemon still serves");
}

/// Relays the Apache child's connections to the group socket, now at `real`, keeping what the
/// first one sent the daemon.
fn man_in_the_middle(socket: &Path, real: PathBuf) -> Arc<Mutex<Vec<u8>>> {
    let listener = UnixListener::bind(socket).unwrap();
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let captured = Arc::new(Mutex::new(Vec::new()));
    let kept = captured.clone();
    std::thread::spawn(move || {
        for (n, client) in listener.incoming().enumerate() {
            let Ok(mut client) = client else { return };
            let mut daemon = UnixStream::connect(&real).unwrap();
            let (mut client_in, mut daemon_out) = (client.try_clone().unwrap(), daemon.try_clone().unwrap());
            let kept = kept.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(len @ 1..) = client_in.read(&mut buf) {
                    if n == 0 {
                        kept.lock().unwrap().extend_from_slice(&buf[..len]);
                    }
                    if daemon_out.write_all(&buf[..len]).is_err() {
                        break;
                    }
                }
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut daemon, &mut client);
            });
        }
    });
    captured
}

/// Sends `head` on a new connection to the daemon at `real` (after its challenge, if it sends
/// one); what came back after the challenge.
fn send_raw(real: &Path, head: &[u8]) -> Vec<u8> {
    let mut c = UnixStream::connect(real).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    c.write_all(head).unwrap();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    if got.first() == Some(&0x18) { got.split_off(21) } else { got }
}

fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let at = out.windows(from.len()).position(|w| w == from).expect("pattern in the captured head");
    out[at..at + from.len()].copy_from_slice(to);
    out
}

#[test]
fn a_captured_head_replayed_or_edited_runs_nothing() {
    let s = origin_server("threads=2");
    let socket = only_socket(&s);
    let real = socket.with_extension("real");
    std::fs::rename(&socket, &real).unwrap();
    let captured = man_in_the_middle(&socket, real.clone());

    // Genuine traffic passes through the relay.
    assert_eq!(s.get("/app/mark?genuine").status, 200);
    assert!(marker_appears(&s, "genuine", Duration::from_secs(5)));
    std::fs::remove_file(s.var_dir().join("genuine")).unwrap();
    let head = captured.lock().unwrap().clone();
    assert!(!head.is_empty());

    // The same bytes again, on a connection of their own.
    let answer = send_raw(&real, &head);
    if is_reference() {
        // The C module's proof does not depend on the connection: a replay runs.
        assert!(marker_appears(&s, "genuine", Duration::from_secs(5)));
    } else {
        assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
        assert!(!marker_appears(&s, "genuine", Duration::from_secs(1)), "the replayed head ran");
        s.expect_log("Request origin could not be validated.");
    }
    // Edited to name another script (same length, so the framing still holds).
    let edited = replace(&head, b"origin.wsgi", b"forged.wsgi");
    let answer = send_raw(&real, &edited);
    assert!(!marker_appears(&s, "forged", Duration::from_secs(1)), "the edited head ran");
    if !is_reference() {
        assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
    }
    assert_eq!(s.get("/app/").status, 200, "the daemon still serves");
}

#[test]
fn graceful_and_full_restarts_keep_serving() {
    let s = origin_server("threads=2");
    assert_eq!(s.get("/app/").status, 200);
    for signal in ["USR1", "HUP"] {
        let restarts = s.error_log().matches("resuming normal operations").count();
        s.signal_parent(signal);
        // Apache answers again once the new generation runs; from then on, every request.
        let deadline = Instant::now() + Duration::from_secs(15);
        while s.error_log().matches("resuming normal operations").count() == restarts {
            assert!(Instant::now() < deadline, "no restart after SIG{signal}:\n{}", s.error_log());
            std::thread::sleep(Duration::from_millis(20));
        }
        while s.get("/app/").status != 200 {
            assert!(Instant::now() < deadline, "not serving after SIG{signal}:\n{}", s.error_log());
            std::thread::sleep(Duration::from_millis(100));
        }
        for _ in 0..20 {
            assert_eq!(s.get("/app/").status, 200, "after SIG{signal}:\n{}", s.error_log());
        }
    }
    assert!(!s.error_log().contains("Request origin could not be validated"), "{}", s.error_log());
}

/// `socket:[inode]` of each listening UNIX socket under `dir`, by path.
fn listener_inodes(dir: &Path) -> BTreeMap<PathBuf, String> {
    let table = std::fs::read_to_string("/proc/net/unix").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let path = PathBuf::from(fields.get(7)?);
            path.starts_with(dir).then(|| (path, format!("socket:[{}]", fields[6])))
        })
        .collect()
}

/// What each descriptor of `pid` points at.
fn descriptor_targets(pid: u32) -> BTreeSet<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|t| t.display().to_string())
        .collect()
}

/// A daemon's descriptors (as it lists them itself) and its pid.
fn daemon_descriptors(s: &Server, group: &str) -> (BTreeSet<String>, u32) {
    let r = s.get(&format!("/{group}/fds"));
    assert_eq!(r.status, 200, "{}", s.error_log());
    let text = r.text();
    let pid = text.lines().find_map(|l| l.strip_prefix("pid=")).unwrap().parse().unwrap();
    let targets = text.lines().filter_map(|l| l.split_once(' ')).map(|(_, target)| target.to_string()).collect();
    (targets, pid)
}

#[test]
fn each_daemon_holds_only_its_own_descriptors() {
    let s = server()
        .app("origin.wsgi")
        .config(
            "WSGISocketPrefix @DIR@/wsgi\n\
             WSGIDaemonProcess a user=nobody group=nogroup home=@DIR@ threads=1\n\
             WSGIDaemonProcess b user=daemon group=daemon home=@DIR@ threads=1\n\
             WSGIScriptAlias /a @DIR@/origin.wsgi process-group=a\n\
             WSGIScriptAlias /b @DIR@/origin.wsgi process-group=b\n",
        )
        .start();
    let listeners: BTreeSet<String> = listener_inodes(s.dir()).into_values().collect();
    assert_eq!(listeners.len(), 2, "{listeners:?}");
    // What a daemon may share with the Apache parent: its own listener, the error log and
    // standard output and error (the harness's stderr.log), /dev/null.
    let dir = s.dir().display().to_string();
    let shareable = |target: &str| target == format!("{dir}/error.log") || target == format!("{dir}/stderr.log") || target == "/dev/null";
    let check = |round: &str| {
        let parent = descriptor_targets(s.parent_pid());
        let mut own_listeners = BTreeSet::new();
        let mut pids = BTreeMap::new();
        for group in ["a", "b"] {
            let (targets, pid) = daemon_descriptors(&s, group);
            pids.insert(group, pid);
            let held: Vec<&String> = targets.iter().filter(|t| listeners.contains(*t)).collect();
            assert_eq!(held.len(), 1, "{round}: group {group} holds listeners {held:?}");
            own_listeners.insert(held[0].clone());
            let inherited: Vec<&String> = targets.iter().filter(|t| parent.contains(*t) && !listeners.contains(*t) && !shareable(t)).collect();
            // The C module's daemons keep the parent's pipes (the MPM's pipe of death among them).
            if !is_reference() {
                assert!(inherited.is_empty(), "{round}: group {group} (pid {pid}) holds the parent's {inherited:?}");
            }
        }
        assert_eq!(own_listeners, listeners, "{round}: each group its own listener");
        pids
    };
    let mut pids = check("first start");
    for group in ["a", "b"] {
        kill("KILL", pids[group]);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let r = s.get(&format!("/{group}/"));
            if r.status == 200 && !r.text().contains(&format!("pid={}", pids[group])) {
                break;
            }
            assert!(Instant::now() < deadline, "group {group} not replaced:\n{}", s.error_log());
            std::thread::sleep(Duration::from_millis(100));
        }
        pids = check(&format!("after SIGKILL of {group}"));
    }
}

#[test]
fn silent_connections_hold_no_thread_and_are_closed_after_socket_timeout() {
    let s = origin_server("threads=5 socket-timeout=2");
    assert_eq!(s.get("/app/").status, 200);
    let socket = only_socket(&s);
    let opened = Instant::now();
    let mut idle: Vec<UnixStream> = (0..10)
        .map(|i| {
            let mut c = UnixStream::connect(&socket).unwrap();
            if i % 2 == 1 {
                // One byte of a request head, then nothing.
                c.write_all(&[0x01]).unwrap();
            }
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // The C module's five threads each wait on one of these until socket-timeout: its real
    // requests time out meanwhile (504).
    for _ in 0..10 {
        if is_reference() {
            break;
        }
        let asked = Instant::now();
        assert_eq!(s.get("/app/").status, 200);
        assert!(asked.elapsed() < Duration::from_secs(1), "answered after {:?}", asked.elapsed());
    }
    // Each is closed once socket-timeout has passed without a whole request head.
    for c in &mut idle {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).expect("closed by the daemon, not timed out here");
        assert!(rest.len() <= 21, "{rest:?}");
    }
    let waited = opened.elapsed();
    // The C module reads them five at a time, one per thread.
    let within = if is_reference() { Duration::from_secs(10) } else { Duration::from_secs(4) };
    assert!(waited >= Duration::from_millis(1900) && waited < within, "closed after {waited:?}");
    s.expect_log("Unable to read WSGI request.");
}

#[test]
fn client_gone_frames_without_a_head_do_not_keep_a_connection_open() {
    // The word an Apache child sends when its client left (a ClientGone frame, kind 0x05,
    // no payload) may reach a daemon between requests, where it is skipped; sent again and
    // again with no head, it buys no time past socket-timeout.
    let s = origin_server("threads=2 socket-timeout=2");
    assert_eq!(s.get("/app/").status, 200);
    let socket = only_socket(&s);
    let opened = Instant::now();
    let mut c = UnixStream::connect(&socket).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut closed = false;
    while opened.elapsed() < Duration::from_secs(10) {
        if c.write_all(&[0x05, 0, 0, 0, 0]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(closed, "still open after {:?}", opened.elapsed());
    if !is_reference() {
        assert!(opened.elapsed() >= Duration::from_millis(1900) && opened.elapsed() < Duration::from_secs(4), "closed after {:?}", opened.elapsed());
    }
    assert_eq!(s.get("/app/").status, 200, "the daemon still serves");
}

#[test]
fn a_daemon_short_of_descriptors_loses_no_request() {
    // 4 x 64 Apache threads each keep a connection to the daemon; it may open 256 descriptors.
    let s = server()
        .workers(4, 64)
        .nofile(256)
        .app("origin.wsgi")
        .config("WSGIDaemonProcess g threads=15\nWSGIScriptAlias /app @DIR@/origin.wsgi process-group=g application-group=%{GLOBAL}\n")
        .start();
    assert_eq!(s.get("/app/").status, 200);
    let port = s.port();
    let clients: Vec<_> = (0..300)
        .map(|_| {
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                for _ in 0..4 {
                    let status = (|| -> std::io::Result<String> {
                        let mut c = std::net::TcpStream::connect(("127.0.0.1", port))?;
                        c.set_read_timeout(Some(Duration::from_secs(60)))?;
                        c.write_all(format!("GET /app/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").as_bytes())?;
                        let mut response = String::new();
                        c.read_to_string(&mut response)?;
                        Ok(response.lines().next().unwrap_or("").to_string())
                    })();
                    match status {
                        Ok(line) if line.starts_with("HTTP/1.1 200") => {}
                        other => failures.push(format!("{other:?}")),
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    assert!(failures.is_empty(), "{} of 1200 failed, e.g. {:?}\n{}", failures.len(), &failures[..failures.len().min(5)], s.error_log());
}

#[test]
fn large_response_heads_get_the_c_modules_answer_at_once() {
    let s = server()
        .app("origin.wsgi")
        .config(
            "WSGIDaemonProcess g threads=2\n\
             WSGIScriptAlias /d @DIR@/origin.wsgi process-group=g\n\
             WSGIScriptAlias /e @DIR@/origin.wsgi\n",
        )
        .start();
    // One header of 2 MiB: over header-buffer-size (32768) in daemon mode; embedded mode has
    // no such limit.
    let asked = Instant::now();
    assert_eq!(s.get("/d/head?one").status, 500);
    assert!(asked.elapsed() < Duration::from_secs(1), "{:?}", asked.elapsed());
    s.expect_log(&format!("Truncated or oversized response headers received from daemon process 'g': {}/origin.wsgi", s.dir().display()));
    let r = s.get("/e/head?one");
    assert_eq!((r.status, r.header("X-Big").map(str::len)), (200, Some(2 << 20)));
    // 2 MiB in 2048 headers of 1 KiB: every line fits, and the head goes through.
    let asked = Instant::now();
    let r = s.get("/d/head?many");
    assert_eq!(r.status, 200);
    assert!(asked.elapsed() < Duration::from_secs(1), "{:?}", asked.elapsed());
    assert_eq!(r.headers.iter().filter(|(k, _)| k.starts_with("X-H")).count(), 2048);
    assert_eq!(s.get("/d/").status, 200, "the daemon still serves");
}
