//! Daemon mode basics: WSGIDaemonProcess + WSGIProcessGroup (or process-group= of
//! WSGIScriptAlias) run the app in a separate process forked by the Apache parent; the
//! environ, request bodies, responses, streaming, file_wrapper, close() and errors all cross
//! the hop between the Apache child and the daemon intact; a Status header and a local
//! Location on a 200 act as for a CGI script there.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::{Server, assert_cgi_variables, md5_hex, parse_kv, pseudo_random_bytes, py_str, server};

/// Groups: `g` (threads=5) via WSGIProcessGroup and via process-group=, `one` (threads=1),
/// `multi` (processes=2), `defaults` (no options); `/emb` is embedded, `/glob` is
/// process-group=%{GLOBAL}.
fn daemon_server() -> Server {
    server()
        .app("daemon.wsgi")
        .app("environ.wsgi")
        .file("data.bin", &pseudo_random_bytes(FILE_SIZE, 7))
        .config(
            "WSGIDaemonProcess g threads=5\n\
             WSGIDaemonProcess one threads=1\n\
             WSGIDaemonProcess multi processes=2 threads=2\n\
             WSGIDaemonProcess single processes=1 threads=2\n\
             WSGIDaemonProcess defaults\n\
             WSGIScriptAlias /d @DIR@/daemon.wsgi\n\
             <Location /d>\n  WSGIProcessGroup g\n</Location>\n\
             WSGIScriptAlias /opt @DIR@/daemon.wsgi process-group=g\n\
             WSGIScriptAlias /env @DIR@/environ.wsgi process-group=g\n\
             WSGIScriptAlias /one @DIR@/daemon.wsgi process-group=one\n\
             WSGIScriptAlias /multi @DIR@/daemon.wsgi process-group=multi\n\
             WSGIScriptAlias /single @DIR@/daemon.wsgi process-group=single\n\
             WSGIScriptAlias /defaults @DIR@/daemon.wsgi process-group=defaults\n\
             WSGIScriptAlias /chunked @DIR@/daemon.wsgi process-group=g\n\
             <Location /chunked>\n  WSGIChunkedRequest On\n</Location>\n\
             WSGIScriptAlias /emb @DIR@/daemon.wsgi\n\
             WSGIScriptAlias /glob @DIR@/daemon.wsgi process-group=%{GLOBAL}\n",
        )
        .start()
}

const FILE_SIZE: usize = 3 * 1024 * 1024 + 5;

fn kv(s: &Server, path: &str) -> BTreeMap<String, String> {
    s.get_kv(path)
}

fn pid(env: &BTreeMap<String, String>) -> u32 {
    env["pid"].parse().expect("pid")
}

#[test]
fn app_runs_in_a_daemon_process_forked_by_the_apache_parent() {
    let s = daemon_server();
    let daemon = kv(&s, "/d/info");
    let embedded = kv(&s, "/emb/info");
    assert_eq!(daemon["env.mod_wsgi.process_group"], "'g'");
    assert_eq!(embedded["env.mod_wsgi.process_group"], "''");
    // Another process than the Apache child that served the embedded request; both are
    // children of the Apache parent, the daemon through its group's supervisor (the C
    // module forks daemons from the parent itself).
    assert_ne!(pid(&daemon), pid(&embedded), "{daemon:#?}");
    let forked_by: u32 = daemon["ppid"].parse().unwrap();
    if support::is_reference() {
        assert_eq!(forked_by, s.parent_pid(), "{daemon:#?}");
    } else {
        assert_eq!(support::parent_of(forked_by), Some(s.parent_pid()), "{daemon:#?}");
        assert!(support::cmdline_of(forked_by).starts_with("mod_wsgi supervisor (g)"), "{}", support::cmdline_of(forked_by));
    }
    assert_eq!(
        embedded["ppid"],
        s.parent_pid().to_string(),
        "{embedded:#?}"
    );
    assert_ne!(pid(&daemon), s.parent_pid());
    // The daemon runs as Apache's User / Group (www-data) when no user= is given.
    assert_eq!(
        (daemon["uid"].as_str(), daemon["gid"].as_str()),
        ("33", "33")
    );
    // Module state persists in the daemon across requests.
    assert_eq!(daemon["counter"], "1");
    let again = kv(&s, "/d/info");
    assert_eq!(
        (pid(&again), again["counter"].as_str()),
        (pid(&daemon), "2")
    );
}

#[test]
fn process_group_option_of_script_alias_selects_the_same_daemon() {
    let s = daemon_server();
    let by_directive = kv(&s, "/d/info");
    let by_option = kv(&s, "/opt/info");
    assert_eq!(by_option["env.mod_wsgi.process_group"], "'g'");
    assert_eq!(pid(&by_option), pid(&by_directive));
    // Default application group: %{RESOURCE}, one per mount point, also in the daemon.
    assert_eq!(
        by_option["env.mod_wsgi.application_group"],
        py_str(&format!("127.0.0.1:{}|/opt", s.port()))
    );
}

#[test]
fn global_process_group_means_embedded() {
    let s = daemon_server();
    let glob = kv(&s, "/glob/info");
    let emb = kv(&s, "/emb/info");
    let daemon = kv(&s, "/d/info");
    assert_eq!(glob["env.mod_wsgi.process_group"], "''");
    // mpm_event with ServerLimit 1: the one Apache child serves both embedded mounts.
    assert_eq!(pid(&glob), pid(&emb));
    assert_ne!(pid(&glob), pid(&daemon));
}

#[test]
fn multithread_and_multiprocess_follow_threads_and_processes() {
    let s = daemon_server();
    let flags = |path: &str| {
        let env = kv(&s, path);
        (
            env["env.wsgi.multithread"].clone(),
            env["env.wsgi.multiprocess"].clone(),
            env["env.wsgi.run_once"].clone(),
        )
    };
    let t = || "True".to_string();
    let f = || "False".to_string();
    assert_eq!(flags("/d/info"), (t(), f(), f()), "threads=5");
    assert_eq!(flags("/one/info"), (f(), f(), f()), "threads=1");
    assert_eq!(flags("/multi/info"), (t(), t(), f()), "processes=2");
    // Giving processes= at all, even 1, makes wsgi.multiprocess True.
    assert_eq!(flags("/single/info"), (t(), t(), f()), "processes=1");
    // No options: one process of 15 threads.
    assert_eq!(flags("/defaults/info"), (t(), f(), f()), "defaults");
}

#[test]
fn processes_option_forks_that_many_daemons() {
    let s = daemon_server();
    // Each request goes to whichever process accepts first; with two listening processes,
    // a few concurrent slow requests are spread over both.
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let port = s.port();
            std::thread::spawn(move || {
                let req = format!(
                    "GET /multi/sleep/1/m{i} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
                );
                let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                use std::io::{Read, Write};
                c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                c.write_all(req.as_bytes()).unwrap();
                let mut out = String::new();
                c.read_to_string(&mut out).unwrap();
                out
            })
        })
        .collect();
    let mut pids = std::collections::BTreeSet::new();
    for h in handles {
        let out = h.join().unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        let pid = out
            .split("slept pid=")
            .nth(1)
            .expect("slept pid=")
            .trim()
            .to_string();
        pids.insert(pid);
    }
    // Four 1 s requests on 2 threads per process: at least two processes took part.
    assert_eq!(pids.len(), 2, "{pids:?}");
}

#[test]
fn request_details_travel_to_the_daemon() {
    let s = daemon_server();
    let env = assert_cgi_variables(&s, "/env");
    let port = s.port();
    let expect = [
        ("mod_wsgi.process_group", "g".to_string()),
        ("mod_wsgi.application_group", format!("127.0.0.1:{port}|/env")),
        ("mod_wsgi.callable_object", "application".to_string()),
        ("wsgi.url_scheme", "http".to_string()),
    ];
    for (key, value) in expect {
        assert_eq!(env.get(key), Some(&py_str(&value)), "{key} in {env:#?}");
    }
    assert_eq!(env["wsgi.version"], "(1, 0)");
    assert_eq!(env["wsgi.input_terminated"], "True");
    for key in ["wsgi.input", "wsgi.errors", "wsgi.file_wrapper"] {
        assert!(env.contains_key(key), "{key} missing: {env:#?}");
    }
    // How the request reached the daemon: sent (queue_start) after it arrived,
    // taken by the daemon after that, on one connection, never sent again.
    assert_eq!((env["mod_wsgi.daemon_connects"].as_str(), env["mod_wsgi.daemon_restarts"].as_str()), ("'1'", "'0'"));
    let micros = |key: &str| env[key].trim_matches('\'').parse::<i64>().unwrap_or_else(|_| panic!("{key}: {}", env[key]));
    assert!(micros("mod_wsgi.request_start") <= micros("mod_wsgi.queue_start"));
    assert!(micros("mod_wsgi.queue_start") <= micros("mod_wsgi.daemon_start"));
}

#[test]
fn large_post_body_read_in_pieces_arrives_intact() {
    let s = daemon_server();
    let body = pseudo_random_bytes(8 * 1024 * 1024 + 3, 11);
    let r = s.request(
        "POST",
        "/d/md5",
        &[("Content-Type", "application/octet-stream")],
        &body,
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    let out = parse_kv(&r.text());
    assert_eq!(out["length"], body.len().to_string());
    assert_eq!(out["md5"], md5_hex(&body));
}

#[test]
fn chunked_request_body_reaches_the_daemon_only_when_enabled() {
    let s = daemon_server();
    let chunks: [&[u8]; 3] = [b"first-", b"second-", &[b'x'; 100_000]];
    let whole: Vec<u8> = chunks.concat();
    // Refused by default, as in embedded mode.
    assert_eq!(s.post_chunked("/d/md5", &chunks).status, 411);
    let r = s.post_chunked("/chunked/md5", &chunks);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    let out = parse_kv(&r.text());
    assert_eq!(out["length"], whole.len().to_string());
    assert_eq!(out["md5"], md5_hex(&whole));
}

#[test]
fn large_response_arrives_intact() {
    let s = daemon_server();
    let r = s.get("/d/big");
    assert_eq!(r.status, 200, "{}", s.error_log());
    assert_eq!(r.body.len(), 8 * 1024 * 1024);
    let sent = r.header("X-MD5").expect("X-MD5 header").to_string();
    assert_eq!(md5_hex(&r.body), sent);
}

#[test]
fn streamed_chunks_reach_the_client_before_the_app_finishes() {
    // Neither the daemon nor the Apache child holds a yielded chunk back.
    support::assert_streams(&daemon_server(), "/d/stream");
}

#[test]
fn file_wrapper_serves_a_file() {
    let s = daemon_server();
    let r = s.get("/d/file");
    assert_eq!(r.status, 200, "{}", s.error_log());
    let data = pseudo_random_bytes(FILE_SIZE, 7);
    assert_eq!(r.body.len(), data.len());
    assert!(r.body == data, "body differs from the file");
}

#[test]
fn close_is_called_in_the_daemon() {
    let s = daemon_server();
    let daemon_pid = pid(&kv(&s, "/d/info"));
    let r = s.get("/d/close");
    assert_eq!((r.status, r.text().as_str()), (200, "ab"));
    assert_eq!(
        s.marker("closed"),
        Some(daemon_pid.to_string()),
        "close() not called in the daemon"
    );
}

#[test]
fn exception_gives_500_with_the_traceback_in_the_main_error_log() {
    let s = daemon_server();
    let r = s.get("/d/error");
    assert_eq!(r.status, 500);
    s.expect_log("RuntimeError: marker-daemon-exception");
    // Each line names the client, as the C module's daemon logs do.
    let log = s.error_log();
    let line = log.lines().find(|l| l.ends_with("RuntimeError: marker-daemon-exception")).unwrap();
    assert!(line.contains("] [remote 127.0.0.1:"), "{line}");
    let log = s.error_log();
    assert!(log.contains("Traceback (most recent call last):"), "{log}");
    assert!(
        log.contains(&format!(
            "Exception occurred processing WSGI script '{}/daemon.wsgi'.",
            s.dir().display()
        )),
        "{log}"
    );
    // Logged by the daemon process, which names its group.
    let daemon_pid = pid(&kv(&s, "/d/info"));
    assert!(
        log.contains(&format!("mod_wsgi (pid={daemon_pid}): Exception occurred")),
        "{log}"
    );
}

#[test]
fn status_and_headers_are_passed_through() {
    let s = daemon_server();
    let r = s.get("/d/notfound");
    assert_eq!((r.status, r.reason.as_str()), (404, "Not Found"));
    assert_eq!(r.header("X-Custom"), Some("custom value"));
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    let all = |name: &str| -> Vec<&str> {
        r.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    };
    // The daemon hands Apache a CGI-style header block, which Apache parses like a CGI
    // script's: C mod_wsgi's repeated headers arrive merged into one ("a, b"), equivalent in
    // HTTP; so both forms are accepted, in order.
    assert_eq!(all("X-Multi").join(", "), "a, b", "{:?}", r.headers);
    // Set-Cookie is never merged.
    assert_eq!(all("Set-Cookie"), ["a=1", "b=2"], "{:?}", r.headers);
    // The app's body, not Apache's error page.
    assert_eq!(r.text(), "no such thing");
}

#[test]
fn daemon_process_is_started_at_server_start_and_logged() {
    let s = daemon_server();
    // Started with Apache, before any request.
    s.expect_log("Starting process 'g' with uid=33, gid=33 and threads=5.");
    s.expect_log("Starting process 'one' with uid=33, gid=33 and threads=1.");
    s.expect_log("Starting process 'defaults' with uid=33, gid=33 and threads=15.");
    // One line per process of processes=2 (logged by each daemon as it starts).
    let line = "Starting process 'multi' with uid=33, gid=33 and threads=2.";
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.error_log().matches(line).count() < 2 {
        assert!(Instant::now() < deadline, "{}", s.error_log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.error_log().matches(line).count(), 2);
}

#[test]
fn process_group_can_come_from_an_environment_variable() {
    let s = server()
        .module("env")
        .app("daemon.wsgi")
        .config(
            "WSGIDaemonProcess fromenv threads=2\n\
             WSGIScriptAlias /e @DIR@/daemon.wsgi\n\
             <Location /e>\n  SetEnv PICK_GROUP fromenv\n  WSGIProcessGroup %{ENV:PICK_GROUP}\n</Location>\n",
        )
        .start();
    let env = kv(&s, "/e/info");
    assert_eq!(env["env.mod_wsgi.process_group"], "'fromenv'", "{env:#?}");
}

#[test]
fn error_override_lets_apache_answer_application_errors() {
    let s = server()
        .app("daemon.wsgi")
        .config(
            "WSGIDaemonProcess g threads=2\n\
             ErrorDocument 404 \"apache-error-page\"\n\
             WSGIScriptAlias /on @DIR@/daemon.wsgi process-group=g\n\
             <Location /on>\n  WSGIErrorOverride On\n</Location>\n\
             WSGIScriptAlias /off @DIR@/daemon.wsgi process-group=g\n",
        )
        .start();
    let on = s.get("/on/notfound");
    assert_eq!((on.status, on.text().trim()), (404, "apache-error-page"));
    let off = s.get("/off/notfound");
    assert_eq!(off.status, 404);
    assert_ne!(off.text().trim(), "apache-error-page");
    // Successful responses pass through either way.
    assert_eq!(s.get("/on/info").status, 200);
}

#[test]
fn daemon_responses_honour_cgi_location_and_status_headers() {
    let s = server()
        .app("cgi_style.wsgi")
        .file("htdocs/static.txt", b"static file\n")
        .config(
            "WSGIDaemonProcess g threads=2\n\
             WSGIScriptAlias /d @DIR@/cgi_style.wsgi process-group=g\n\
             WSGIScriptAlias /e @DIR@/cgi_style.wsgi\n",
        )
        .start();
    // A 200 with a local Location: Apache serves that path instead, as a GET
    // (mod_wsgi's way of handing file serving to Apache).
    for method in ["GET", "POST"] {
        let r = s.request(method, "/d/?static", &[], b"abc");
        assert_eq!((r.status, r.text().as_str()), (200, "static file\n"), "{method}");
        assert_eq!(r.header("X-From-App"), None);
        let r = s.request(method, "/d/?app", &[], b"abc");
        assert_eq!(r.text(), "GET None /d/", "{method}");
    }
    // Not local, or not a 200: an ordinary header.
    let r = s.get("/d/?absolute");
    assert_eq!((r.status, r.header("Location"), r.text().as_str()), (200, Some("http://example.com/x"), "from app"));
    let r = s.get("/d/?created");
    assert_eq!((r.status, r.header("Location")), (201, Some("/static.txt")));
    // A Status header sets the status.
    let r = s.raw_all(b"GET /d/?status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let text = String::from_utf8_lossy(&r);
    assert!(text.starts_with("HTTP/1.1 404 Nope\r\n") && !text.contains("\r\nStatus:"), "{text}");
    assert_eq!(s.get("/d/?bad-status").status, 500);
    // Embedded mode has no such hop: both stay headers.
    let r = s.get("/e/?static");
    assert_eq!((r.status, r.header("Location"), r.text().as_str()), (200, Some("/static.txt"), "from app"));
    let r = s.get("/e/?status");
    assert_eq!((r.status, r.header("Status")), (200, Some("404 Nope")));
}

#[test]
fn script_without_the_callable_is_500_in_a_daemon() {
    // Embedded mode answers 404 (tests/embedded_failures.rs); the C module's
    // daemon answers 500, and so does ours.
    let s = server()
        .app("no_callable.wsgi")
        .config(
            "WSGIDaemonProcess g threads=1\n\
             WSGIScriptAlias /nocall @DIR@/no_callable.wsgi process-group=g\n",
        )
        .start();
    assert_eq!(s.get("/nocall").status, 500);
    s.expect_log(&format!(
        "Target WSGI script '{}/no_callable.wsgi' does not contain WSGI application 'application'.",
        s.dir().display()
    ));
}
