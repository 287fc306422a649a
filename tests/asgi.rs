//! ASGI applications in daemon process groups: `interface=auto` sees a coroutine callable and
//! serves it as ASGI 3.0 from the group's event loop. A plain ASGI callable (Debian's Python)
//! gets the HTTP scope (path decoded, raw_path, query string as bytes, root_path the mount
//! point, headers lower-cased in order, client, server, lifespan state), streamed request
//! bodies (8 MiB) and streamed responses (100 MiB, in bounded daemon memory); a server-sent-events stream whose client
//! leaves sees its send() fail and http.disconnect; 100 event streams stay open on a group
//! of threads=5, each getting its events, and each sees http.disconnect when its client goes; http.response.pathsend hands the file to
//! Apache (which answers Range from it); exceptions before and after the response start, a
//! callable that never starts a response and an invalid header end as WSGI ones do;
//! request-timeout cancels the task and answers 504; lifespan startup runs as the daemon
//! starts (a preloaded script) and shutdown when it stops, a stream still open then being
//! cancelled first; a failed startup is a 500 with its message, and the process is replaced
//! after a back-off that doubles with each failing generation, until a startup succeeds;
//! subscribers of mod_wsgi.subscribe_events() hear request_started, response_started,
//! request_exception and request_finished for ASGI requests; a changed script is served by a
//! fresh process; in embedded mode an ASGI callable is a 500 with a line saying to add
//! process-group=. Starlette, FastAPI and
//! Django's get_asgi_application(), installed from PyPI into a venv used with python-home=,
//! serve their apps, and uvicorn from that venv gives the plain app the same scope (but for
//! the slashes httpd merges); this needs network access to PyPI once: the venv is kept in
//! /tmp between runs.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use support::{Server, is_reference, md5_hex, parse_kv, py_str, server};

/// The plain app in group `plain` (request-timeout=3) at /plain, and embedded at /embedded.
/// Group `other` serves /failing (its lifespan startup fails) and /reload (a script the test
/// rewrites), each in an interpreter of its own.
/// The C module has no ASGI (nor `interface=`): against it there is nothing to compare.
fn no_asgi_in_the_reference() -> bool {
    if is_reference() {
        println!("skipped: the C mod_wsgi under test (MOD_WSGI_SO) serves no ASGI");
    }
    is_reference()
}

fn plain_server() -> Server {
    server()
        .app("asgi_plain.py")
        .file("failing.py", FAILING_APP.as_bytes())
        .file("reload.py", &reload_app("one"))
        .config(
            "WSGIDaemonProcess plain threads=5 request-timeout=3 graceful-timeout=5\n\
             WSGIScriptAlias /plain @DIR@/asgi_plain.py process-group=plain application-group=%{GLOBAL}\n\
             WSGIScriptAlias /embedded @DIR@/asgi_plain.py\n\
             WSGIDaemonProcess other threads=2\n\
             WSGIScriptAlias /failing @DIR@/failing.py process-group=other\n\
             WSGIScriptAlias /reload @DIR@/reload.py process-group=other\n",
        )
        .start()
}

const FAILING_APP: &str = r#"
async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database today"})
        return
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": b"served"})
"#;

/// An ASGI app that answers `version` and the pid serving it.
fn reload_app(version: &str) -> Vec<u8> {
    format!(
        "import os\n\
         async def application(scope, receive, send):\n\
         \x20   await send({{'type': 'http.response.start', 'status': 200}})\n\
         \x20   await send({{'type': 'http.response.body', 'body': b'{version} %d' % os.getpid()}})\n"
    )
    .into_bytes()
}

fn kv(s: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> BTreeMap<String, String> {
    let r = s.request(method, path, headers, body);
    assert_eq!(r.status, 200, "{method} {path}: {}\n{}", r.text(), s.error_log());
    parse_kv(&r.text())
}

#[test]
fn the_http_scope_is_as_the_spec_gives_it() {
    if no_asgi_in_the_reference() {
        return;
    }
    let s = plain_server();
    let got = kv(&s, "GET", "/plain/scope/caf%C3%A9%20x?a=1&b=%C3%A9&a=2", &[("X-Dup", "one"), ("x-dup", "two"), ("X-Other", "o")], b"");
    assert_eq!(got["type"], "'http'");
    assert_eq!(got["asgi"], "{'version': '3.0', 'spec_version': '2.4'}");
    assert_eq!(got["http_version"], "'1.1'");
    assert_eq!(got["method"], "'GET'");
    assert_eq!(got["scheme"], "'http'");
    assert_eq!(got["root_path"], "'/plain'");
    assert_eq!(got["path"], py_str("/plain/scope/café x"));
    assert_eq!(got["raw_path"], "b'/plain/scope/caf%C3%A9%20x'");
    assert_eq!(got["query_string"], "b'a=1&b=%C3%A9&a=2'");
    // Lower-cased, in the order sent. httpd itself joins a repeated request header into one
    // line (as every module, mod_proxy included, then sees it).
    let headers = &got["headers"];
    assert_eq!(headers, &format!("[(b'host', b'127.0.0.1:{}'), (b'connection', b'close'), (b'x-dup', b'one, two'), (b'x-other', b'o')]", s.port()));
    assert!(got["client"].starts_with("('127.0.0.1', "), "{}", got["client"]);
    assert_eq!(got["server"], format!("('127.0.0.1', {})", s.port()));
    // Copied from what lifespan startup set.
    assert_eq!(got["state"], "{'greeting': 'hello from startup'}");
    assert_eq!(got["body_length"], "0");
    // A process of its own, not the Apache child.
    let pid: u32 = got["pid"].parse().unwrap();
    assert!(support::children_of(s.parent_pid()).iter().all(|&child| child != pid), "{pid}");

    // POST: the body, in pieces of at most 64 KiB.
    let body = support::pseudo_random_bytes(200_000, 3);
    let got = kv(&s, "POST", "/plain/scope?x=y", &[("Content-Type", "application/octet-stream")], &body);
    assert_eq!(got["method"], "'POST'");
    assert_eq!(got["query_string"], "b'x=y'");
    assert_eq!(got["body_length"], "200000");
    assert_eq!(got["body_md5"], format!("'{}'", md5_hex(&body)));
    // 200,000 bytes: four pieces, the last with more_body false.
    assert_eq!(got["body_events"], "4", "{got:?}");
    // After the response: receive() gives http.disconnect.
    let log = s.var_dir().join("lifespan.log");
    wait_for(|| fs::read_to_string(&log).unwrap_or_default().contains("after-response http.disconnect"), "http.disconnect after the response");
}

/// VmHWM (peak resident memory) of a process, in KiB.
fn peak_kib(pid: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("the daemon's /proc status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn an_8_mib_upload_and_a_100_mib_streamed_download_in_bounded_memory() {
    if no_asgi_in_the_reference() {
        return;
    }
    let s = plain_server();
    let pid = kv(&s, "GET", "/plain/scope", &[], b"")["pid"].clone();
    let before = peak_kib(&pid);
    let started = Instant::now();
    let r = s.get("/plain/stream?chunks=1600");
    assert_eq!(r.status, 200, "{}", s.error_log());
    assert_eq!(r.body.len(), 1600 * 65536);
    for (i, chunk) in r.body.chunks(65536).enumerate() {
        assert!(chunk.iter().all(|&b| b == (i % 256) as u8), "chunk {i} has other bytes");
    }
    let grown = peak_kib(&pid).saturating_sub(before);
    eprintln!("100 MiB download: {:?}, daemon peak memory grew {grown} KiB", started.elapsed());
    // send() waits once 1 MiB is on its way: the daemon never holds much of the body.
    assert!(grown < 16 * 1024, "the daemon's peak memory grew by {grown} KiB");

    let body = support::pseudo_random_bytes(8 << 20, 11);
    let started = Instant::now();
    let got = kv(&s, "PUT", "/plain/scope", &[], &body);
    assert_eq!(got["body_length"], (8 << 20).to_string());
    assert_eq!(got["body_md5"], format!("'{}'", md5_hex(&body)));
    eprintln!("8 MiB upload: {:?}", started.elapsed());
}

/// What /pieces answers for `sizes`: piece j is the app's PATTERN[j..j + size].
fn pieces(sizes: &[usize]) -> Vec<u8> {
    let pattern: Vec<u8> = (0..251u8).cycle().take(251 * 4200).collect();
    sizes.iter().enumerate().flat_map(|(j, &size)| pattern[j..j + size].to_vec()).collect()
}

#[test]
fn response_bodies_of_every_size_reach_the_client_byte_exact() {
    if no_asgi_in_the_reference() {
        return;
    }
    // A small response goes out from the event loop's thread, a larger one from a relay
    // thread; a large piece is written from the app's bytes object itself. With a tiny send
    // buffer less goes out from the loop's thread, so that its writes never wait.
    let s = server()
        .app("asgi_plain.py")
        .config(
            "WSGIDaemonProcess roomy threads=5\n\
             WSGIScriptAlias /roomy @DIR@/asgi_plain.py process-group=roomy application-group=%{GLOBAL}\n\
             WSGIDaemonProcess tight threads=5 send-buffer-size=512\n\
             WSGIScriptAlias /tight @DIR@/asgi_plain.py process-group=tight application-group=%{GLOBAL}\n",
        )
        .start();
    let cases: &[&[usize]] = &[
        &[],
        &[0],
        &[1],
        &[200],
        &[16 * 1024 - 200],
        &[16 * 1024],
        &[16 * 1024 + 1],
        &[64 * 1024 - 1],
        &[64 * 1024],
        &[(1 << 20) + 7],
        &[1, 0, 2, 0, 3],
        &[8000, 8000, 8000],
        &[100, 64 * 1024, 100, 64 * 1024 + 3, 0, 5],
        &[70_000, 1 << 20, 9],
    ];
    for mount in ["/roomy", "/tight"] {
        std::thread::scope(|scope| {
            for worker in 0..4 {
                let s = &s;
                scope.spawn(move || {
                    for round in 0..5 {
                        for (n, sizes) in cases.iter().enumerate() {
                            let list: Vec<String> = sizes.iter().map(usize::to_string).collect();
                            let length = if (n + round + worker) % 2 == 0 { "&length" } else { "" };
                            let path = format!("{mount}/pieces?sizes={}{length}", list.join(","));
                            let r = s.get(&path);
                            assert_eq!(r.status, 200, "{path}: {}", s.error_log());
                            let want = pieces(sizes);
                            assert_eq!(r.body.len(), want.len(), "{path}");
                            assert!(r.body == want, "{path}: other bytes");
                        }
                    }
                });
            }
        });
    }
    // The bytes objects written in place are let go of: a hundred 1 MiB responses more leave
    // the daemon's memory where it was.
    let pid = kv(&s, "GET", "/roomy/scope", &[], b"")["pid"].clone();
    let rss = || -> u64 {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("the daemon's /proc status");
        status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).expect("VmRSS")
    };
    let before = rss();
    for _ in 0..100 {
        assert_eq!(s.get("/roomy/pieces?sizes=1048576").body.len(), 1 << 20);
    }
    let grown = rss().saturating_sub(before);
    eprintln!("RSS {before} KiB, grew {grown} KiB");
    assert!(grown < 16 * 1024, "the daemon's memory grew by {grown} KiB over 100 MiB of responses");
    assert!(!s.error_log().contains("Exception"), "{}", s.error_log());
}

#[test]
fn a_response_before_a_slow_body_has_come_holds_up_no_other_request() {
    if no_asgi_in_the_reference() {
        return;
    }
    use std::io::{Read, Write};
    // The app answers without reading the body; ending the exchange then reads the rest of
    // it as the client sends it, which is not the event loop's to wait for.
    let s = plain_server();
    assert_eq!(s.get("/plain/ignore-body").status, 200);
    let total = 3 << 20;
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", s.port())).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(slow, "POST /plain/ignore-body HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {total}\r\n\r\n").unwrap();
    // Past request-buffer-size (1 MiB): the request goes to the daemon with its body under way.
    let first = 3 << 19;
    slow.write_all(&vec![b'x'; first]).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        let started = Instant::now();
        let r = s.get("/plain/scope");
        assert_eq!(r.status, 200, "{}", s.error_log());
        assert!(started.elapsed() < Duration::from_secs(1), "a request took {:?} while a body trickled in", started.elapsed());
        std::thread::sleep(Duration::from_millis(300));
    }
    slow.write_all(&vec![b'x'; total - first]).unwrap();
    let mut response = Vec::new();
    slow.read_to_end(&mut response).expect("the slow request's response");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("ignored"), "{text}");
}

#[test]
fn work_after_a_complete_response_holds_up_no_later_request() {
    if no_asgi_in_the_reference() {
        return;
    }
    // One Apache child: its kept daemon connection is the one the next request takes.
    let s = server()
        .app("asgi_plain.py")
        .workers(1, 8)
        .config(
            "WSGIDaemonProcess plain threads=5\n\
             WSGIScriptAlias /plain @DIR@/asgi_plain.py process-group=plain application-group=%{GLOBAL}\n",
        )
        .start();
    assert_eq!(s.get("/plain/scope").status, 200);
    for round in 0..3 {
        let started = Instant::now();
        let r = s.get(["/plain/then-work", "/plain/then-work?big", "/plain/then-work?fail"][round]);
        assert_eq!((r.status, r.text().trim_end()), (200, "answered"), "{}", s.error_log());
        assert!(started.elapsed() < Duration::from_secs(1), "the response waited for the work after it: {:?}", started.elapsed());
        let started = Instant::now();
        assert_eq!(s.get("/plain/scope").status, 200);
        assert!(started.elapsed() < Duration::from_secs(1), "the next request waited {:?} for the work after a response", started.elapsed());
    }
    // The work runs on: receive() gave it http.disconnect, and how it failed is logged.
    let log = s.var_dir().join("lifespan.log");
    let count = |what: &str| fs::read_to_string(&log).unwrap_or_default().matches(what).count();
    assert_eq!(count("after the response http.disconnect"), 3);
    wait_for(|| count("background work done") == 3, "the work after each response");
    wait_for(|| s.error_log().contains("ValueError: the background work failed"), "the failed work's traceback in the error log");
    assert!(s.error_log().contains("Exception occurred processing WSGI script"), "{}", s.error_log());
}

#[test]
fn a_chunked_request_body_is_taken_as_for_wsgi() {
    if no_asgi_in_the_reference() {
        return;
    }
    // Refused with 411 unless WSGIChunkedRequest On, as for WSGI; then streamed to the app.
    let pieces: Vec<Vec<u8>> = (0..40).map(|i| support::pseudo_random_bytes(50_000 + i, i as u64)).collect();
    let chunks: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
    let whole = pieces.concat();
    let s = plain_server();
    assert_eq!(s.post_chunked("/plain/scope", &chunks).status, 411);
    let s = server()
        .app("asgi_plain.py")
        .config(
            "WSGIChunkedRequest On\n\
             WSGIDaemonProcess plain threads=5\n\
             WSGIScriptAlias /plain @DIR@/asgi_plain.py process-group=plain application-group=%{GLOBAL}\n",
        )
        .start();
    for _ in 0..3 {
        let r = s.post_chunked("/plain/scope", &chunks);
        assert_eq!(r.status, 200, "{}", s.error_log());
        let got = parse_kv(&r.text());
        assert_eq!(got["body_length"], whole.len().to_string());
        assert_eq!(got["body_md5"], format!("'{}'", md5_hex(&whole)));
    }
}

#[test]
fn a_client_leaving_an_event_stream_is_seen_by_the_app() {
    if no_asgi_in_the_reference() {
        return;
    }
    let s = plain_server();
    let log = s.var_dir().join("lifespan.log");
    let mut stream = s.stream("/plain/events");
    assert_eq!(stream.head.status, 200);
    assert_eq!(stream.head.header("Content-Type"), Some("text/event-stream"));
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("data: 3\n\n") {
        got.extend(stream.next_chunk().expect("more events"));
    }
    assert!(String::from_utf8_lossy(&got).starts_with("data: 0\n\ndata: 1\n\n"), "{got:?}");
    stream.disconnect();
    // The next send raises OSError, and the waiting receive() gets http.disconnect.
    wait_for(|| fs::read_to_string(&log).unwrap_or_default().contains("events-ended"), "the send after the client left failing");
    wait_for(|| fs::read_to_string(&log).unwrap_or_default().contains("watch http.disconnect"), "http.disconnect");
}

#[test]
fn a_client_leaving_a_long_poll_is_seen_while_the_app_only_awaits() {
    if no_asgi_in_the_reference() {
        return;
    }
    let s = plain_server();
    let log = s.var_dir().join("lifespan.log");
    let mut c = s.connect();
    std::io::Write::write_all(&mut c, b"GET /plain/long-poll HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let left = Instant::now();
    c.shutdown(std::net::Shutdown::Both).unwrap();
    drop(c);
    wait_for(|| fs::read_to_string(&log).unwrap_or_default().contains("long-poll http.disconnect"), "http.disconnect for the long poll");
    assert!(left.elapsed() < Duration::from_secs(2), "seen after {:?}", left.elapsed());
    wait_for(|| fs::read_to_string(&log).unwrap_or_default().contains("long-poll send raised"), "send() raising after the client left");
    // The connections between Apache and the daemon carry on.
    for _ in 0..6 {
        assert_eq!(s.get("/plain/scope").status, 200);
    }
    let errors = s.error_log();
    assert!(!errors.contains("could not be validated") && !errors.contains("in the middle of a request head"), "{errors}");
}

#[test]
fn an_empty_body_piece_sends_the_head_at_once() {
    if no_asgi_in_the_reference() {
        return;
    }
    let s = plain_server();
    let started = Instant::now();
    let mut stream = s.stream("/plain/head-first");
    let head_after = started.elapsed();
    assert_eq!(stream.head.status, 200);
    assert!(head_after < Duration::from_millis(1500), "the head came after {head_after:?}, with the body");
    let mut body = Vec::new();
    while let Some(chunk) = stream.next_chunk() {
        body.extend(chunk);
    }
    assert_eq!(body, b"late");
}

#[test]
fn a_handler_script_serves_asgi_and_its_output_reaches_the_error_log() {
    if no_asgi_in_the_reference() {
        return;
    }
    let users = std::process::Command::new("htpasswd").args(["-nbB", "bob", "pw"]).output().expect("htpasswd (apache2-utils) runs");
    let s = server()
        .app("asgi_handler.py")
        .file("docs/page.md", b"# hello\n")
        .file("docs/private.md", b"# mine\n")
        .file("users", users.stdout.trim_ascii())
        .module("authn_core")
        .module("authn_file")
        .module("authz_user")
        .module("auth_basic")
        .config(
            "WSGIDaemonProcess h threads=2\n\
             WSGIHandlerScript asgi-md @DIR@/asgi_handler.py process-group=h application-group=%{GLOBAL} interface=asgi\n\
             Alias /docs @DIR@/docs\n\
             <Directory @DIR@/docs>\n  Require all granted\n  AddHandler asgi-md .md\n</Directory>\n\
             <Location /docs/private.md>\n  AuthType Basic\n  AuthName mine\n  AuthBasicProvider file\n  \
             AuthUserFile @DIR@/users\n  Require valid-user\n</Location>\n",
        )
        .start();
    let got = s.get_kv("/docs/page.md");
    let dir = s.dir().display().to_string();
    assert_eq!(got["script_filename"], format!("'{dir}/docs/page.md'"), "the resource");
    assert_eq!(got["handler_script"], format!("'{dir}/asgi_handler.py'"));
    assert_eq!(got["request_handler"], "'asgi-md'");
    assert_eq!(got["callable_object"], "'handle_request'");
    assert_eq!((got["process_group"].as_str(), got["application_group"].as_str()), ("'h'", "''"));
    assert!(!got.contains_key("remote_user"), "no user was authenticated");
    // The user Apache authenticated.
    assert_eq!(s.get("/docs/private.md").status, 401);
    let r = s.request("GET", "/docs/private.md", &[("Authorization", "Basic Ym9iOnB3")], b"");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    let got = support::parse_kv(&r.text());
    assert_eq!((got["remote_user"].as_str(), got["auth_type"].as_str()), ("'bob'", "'Basic'"));
    // print() and sys.stderr in a task, and the logging module, go to Apache's error log.
    assert_eq!(s.get("/docs/page.md?log").status, 200);
    for line in ["printed by the task", "written to stderr by the task", "logged by the task"] {
        wait_for(|| s.error_log().contains(line), line);
    }
}

#[test]
fn pathsend_hands_the_file_to_apache() {
    if no_asgi_in_the_reference() {
        return;
    }
    let s = plain_server();
    let data = support::pseudo_random_bytes(3 << 20, 9);
    support::write_file(&s.dir().join("data.bin"), &data);
    let r = s.get("/plain/file");
    assert_eq!(r.status, 200, "{}", s.error_log());
    assert_eq!(r.header("Content-Length"), Some(&*data.len().to_string()));
    assert!(r.body == data, "the file's bytes differ");
    // Apache answers a Range request from the file, as for wsgi.file_wrapper.
    let r = s.request("GET", "/plain/file", &[("Range", "bytes=10-19")], b"");
    assert_eq!(r.status, 206, "{}", s.error_log());
    assert_eq!(r.body, &data[10..20]);
}

#[test]
fn a_hundred_event_streams_on_five_threads() {
    if no_asgi_in_the_reference() {
        return;
    }
    // Apache's own workers are the limit, as with mod_proxy: enough of them for 100 streams.
    let s = server()
        .app("asgi_plain.py")
        .workers(2, 64)
        .config(
            "WSGIDaemonProcess streams threads=5\n\
             WSGIScriptAlias /streams @DIR@/asgi_plain.py process-group=streams application-group=%{GLOBAL}\n",
        )
        .start();
    let log = s.var_dir().join("lifespan.log");
    let count = |what: &str| fs::read_to_string(&log).unwrap_or_default().matches(what).count();
    // Each stream's head comes with its first event, while the 5 workers are free for the next.
    let started = Instant::now();
    let mut streams: Vec<_> = (0..100).map(|_| s.stream("/streams/events")).collect();
    for stream in &mut streams {
        assert_eq!(stream.head.status, 200);
        let mut got = Vec::new();
        while !String::from_utf8_lossy(&got).contains("data: 2\n\n") {
            got.extend(stream.next_chunk().expect("more events"));
        }
    }
    eprintln!("100 streams open, 3 events each: {:?}", started.elapsed());
    assert_eq!(count("watch http.disconnect"), 0);
    let closed = Instant::now();
    for stream in streams {
        stream.disconnect();
    }
    // Each task sees the client gone at its next event (every 50 ms).
    wait_for(|| count("watch http.disconnect") == 100, "http.disconnect for each of 100 streams");
    assert!(closed.elapsed() < Duration::from_secs(2), "{:?}", closed.elapsed());
    // And the workers serve on.
    assert_eq!(s.get("/streams/scope").status, 200);
}

#[test]
fn errors_end_the_response_as_for_wsgi() {
    if no_asgi_in_the_reference() {
        return;
    }
    let s = plain_server();
    // Before the start: 500, with the traceback in the error log.
    assert_eq!(s.get("/plain/raise-before").status, 500);
    s.expect_log("ValueError: raised before the response start");
    s.expect_log("Exception occurred processing WSGI script");
    // After it: the body is cut short (the connection closes before the promised 1000 bytes).
    let all = s.raw_all(b"GET /plain/raise-after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let text = String::from_utf8_lossy(&all);
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    assert!(head.starts_with("HTTP/1.1 200") && head.contains("Content-Length: 1000"), "{head}");
    assert_eq!(body, "partial");
    s.expect_log("ValueError: raised after the response start");
    // Returning without starting a response: 500 and a line saying so.
    assert_eq!(s.get("/plain/no-start").status, 500);
    s.expect_log("returned without starting a response");
    // A header WSGI would refuse is refused here too.
    assert_eq!(s.get("/plain/bad-header").status, 500);
    s.expect_log("ValueError: space character present in header name");
    // The process still serves, and the requests that ended (without event subscribers)
    // have left mod_wsgi.active_requests.
    assert_eq!(s.get("/plain/scope").status, 200);
    wait_for(|| s.get("/plain/active").text() == "active=1", "only the request asking in active_requests");
}

#[test]
fn request_timeout_cancels_the_task_with_504() {
    if no_asgi_in_the_reference() {
        return;
    }
    let s = plain_server();
    let before = kv(&s, "GET", "/plain/scope", &[], b"")["pid"].clone();
    let started = Instant::now();
    let r = s.get("/plain/sleep");
    assert_eq!(r.status, 504, "{}", s.error_log());
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(2900) && took < Duration::from_secs(10), "{took:?}");
    s.expect_log("its task is cancelled");
    let log = s.var_dir().join("lifespan.log");
    wait_for(|| fs::read_to_string(&log).unwrap_or_default().contains("cancelled"), "the task seeing CancelledError");
    // Only the task ended: the same process serves on.
    assert_eq!(kv(&s, "GET", "/plain/scope", &[], b"")["pid"], before);
}

#[test]
fn lifespan_startup_comes_before_the_first_request_and_shutdown_at_the_stop() {
    if no_asgi_in_the_reference() {
        return;
    }
    let mut s = plain_server();
    let log = s.var_dir().join("lifespan.log");
    // The script names both its groups, so it is loaded, and its startup run, as the daemon
    // process starts, before any request.
    wait_for(|| fs::read_to_string(&log).unwrap_or_default().starts_with("startup "), "lifespan startup before any request");
    let pid = kv(&s, "GET", "/plain/scope", &[], b"")["pid"].clone();
    let _ = kv(&s, "GET", "/plain/scope", &[], b"");
    // A stream that would never end is cancelled as the process stops, before shutdown.
    let mut stream = s.stream("/plain/events");
    assert!(stream.next_chunk().is_some());
    assert!(s.terminate(Duration::from_secs(15)), "Apache did not stop");
    drop(stream);
    let lines: Vec<String> =
        fs::read_to_string(&log).unwrap().lines().filter(|l| !l.starts_with("after-response") && !l.starts_with("events-ended") && !l.starts_with("watch")).map(String::from).collect();
    assert_eq!(lines, [format!("startup {pid}"), format!("shutdown {pid}")], "{}", s.error_log());
}

#[test]
fn across_a_graceful_restart_the_new_process_starts_up_before_the_old_one_shuts_down() {
    if no_asgi_in_the_reference() {
        return;
    }
    let s = plain_server();
    let log = s.var_dir().join("lifespan.log");
    wait_for(|| fs::read_to_string(&log).unwrap_or_default().starts_with("startup "), "lifespan startup before any request");
    let old = kv(&s, "GET", "/plain/scope", &[], b"")["pid"].clone();
    s.signal_parent("USR1");
    // Requests are served throughout; then by the new configuration's process.
    let mut new = old.clone();
    wait_for(
        || {
            new = kv(&s, "GET", "/plain/scope", &[], b"")["pid"].clone();
            new != old
        },
        "a process of the new generation",
    );
    wait_for(|| fs::read_to_string(&log).unwrap_or_default().contains(&format!("shutdown {old}")), "the old process's lifespan shutdown");
    let lines: Vec<String> = fs::read_to_string(&log).unwrap().lines().filter(|l| l.starts_with("startup") || l.starts_with("shutdown")).map(String::from).collect();
    assert_eq!(lines, [format!("startup {old}"), format!("startup {new}"), format!("shutdown {old}")], "{}", s.error_log());
}

#[test]
fn maximum_requests_and_queue_timeout_apply_to_asgi_requests() {
    if no_asgi_in_the_reference() {
        return;
    }
    let s = server()
        .app("asgi_plain.py")
        .config(
            "WSGIDaemonProcess mr threads=2 maximum-requests=3 graceful-timeout=5\n\
             WSGIScriptAlias /mr @DIR@/asgi_plain.py process-group=mr application-group=%{GLOBAL}\n\
             WSGIDaemonProcess qt threads=1 queue-timeout=1\n\
             WSGIScriptAlias /qt @DIR@/asgi_plain.py process-group=qt application-group=%{GLOBAL}\n\
             WSGIScriptAlias /wsgi-qt @DIR@/daemon.wsgi process-group=qt application-group=%{GLOBAL}\n",
        )
        .app("daemon.wsgi")
        .start();
    // maximum-requests: the third ASGI request is the process's last; a fresh one serves the fourth.
    let pids: Vec<String> = (0..4).map(|_| kv(&s, "GET", "/mr/scope", &[], b"")["pid"].clone()).collect();
    assert!(pids[0] == pids[1] && pids[1] == pids[2] && pids[2] != pids[3], "{pids:?}\n{}", s.error_log());
    s.expect_log("Maximum requests reached, triggering immediate shutdown 'mr'.");
    let log = s.var_dir().join("lifespan.log");
    wait_for(|| fs::read_to_string(&log).unwrap_or_default().contains(&format!("shutdown {}", pids[0])), "the recycled process's lifespan shutdown");
    // queue-timeout: an ASGI request that waited behind the only worker longer than it is a 504.
    let port = s.port();
    let busy = std::thread::spawn(move || fetch(port, "GET", "/wsgi-qt/sleep/3/busy", &[], b""));
    wait_for(|| s.marker("started-busy").is_some(), "the worker busy");
    let started = Instant::now();
    let (status, _) = fetch(port, "GET", "/qt/scope", &[], b"");
    assert_eq!(status, 504, "{}", s.error_log());
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
    assert_eq!(busy.join().unwrap().0, 200);
    s.expect_log("Queue timeout expired for WSGI daemon process 'qt'.");
}

#[test]
fn a_stream_open_when_the_script_changes_is_cancelled_before_lifespan_shutdown() {
    if no_asgi_in_the_reference() {
        return;
    }
    let s = plain_server();
    let log = s.var_dir().join("lifespan.log");
    let old = kv(&s, "GET", "/plain/scope", &[], b"")["pid"].clone();
    let mut stream = s.stream("/plain/events");
    assert!(stream.next_chunk().is_some());
    // A changed script: a fresh process serves the next request; this one stops once
    // its requests are done, and the stream never is: it is cancelled (within half of
    // shutdown-timeout), then lifespan shutdown runs.
    let script = s.dir().join("asgi_plain.py");
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    fs::File::options().write(true).open(&script).unwrap().set_modified(later).unwrap();
    let new = kv(&s, "GET", "/plain/scope", &[], b"")["pid"].clone();
    assert_ne!(new, old);
    wait_for(|| fs::read_to_string(&log).unwrap_or_default().contains(&format!("shutdown {old}")), "lifespan shutdown of the old process");
    s.expect_log("Process stopping with ASGI application");
    drop(stream);
}

#[test]
fn a_failed_lifespan_startup_is_a_500_with_its_message() {
    if no_asgi_in_the_reference() {
        return;
    }
    let s = plain_server();
    let r = s.get("/failing/");
    assert_eq!(r.status, 500, "{}", r.text());
    s.expect_log("ASGI lifespan startup failed for '");
    s.expect_log("failing.py': no database today");
}

#[test]
fn a_changed_script_is_served_by_a_fresh_process() {
    if no_asgi_in_the_reference() {
        return;
    }
    let s = plain_server();
    let first = s.get("/reload/");
    assert_eq!(first.status, 200, "{}", s.error_log());
    let (version, pid) = first.text().split_once(' ').map(|(v, p)| (v.to_owned(), p.to_owned())).unwrap();
    assert_eq!(version, "one");
    let script = s.dir().join("reload.py");
    support::write_file(&script, &reload_app("two"));
    // A different mtime even within the file system's timestamp granularity.
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    fs::File::options().write(true).open(&script).unwrap().set_modified(later).unwrap();
    let second = s.get("/reload/");
    assert_eq!(second.status, 200, "{}", s.error_log());
    let text = second.text();
    assert!(text.starts_with("two ") && !text.ends_with(&format!(" {pid}")), "{text} (was {pid})");
}

#[test]
fn embedded_mode_refuses_an_asgi_callable() {
    if no_asgi_in_the_reference() {
        return;
    }
    let s = plain_server();
    assert_eq!(s.get("/embedded/scope").status, 500);
    s.expect_log("is an ASGI application, which runs only in daemon mode: add process-group=");
}

/// Starts while `fail-startup` (next to it) exists: answers lifespan.startup.failed, then
/// raises, as Starlette does. var/startups.log gets `failed <pid>` or `started <pid>`.
const STARTUP_APP: &str = r#"
import os
HERE = os.path.dirname(__file__)

async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        failing = os.path.exists(os.path.join(HERE, "fail-startup"))
        with open(os.path.join(HERE, "var", "startups.log"), "a") as f:
            f.write("%s %d\n" % ("failed" if failing else "started", os.getpid()))
        if failing:
            await send({"type": "lifespan.startup.failed", "message": "marker present"})
            raise RuntimeError("startup refused")
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": b"served %d" % os.getpid()})
"#;

#[test]
fn a_failed_lifespan_startup_replaces_the_process_after_a_back_off() {
    if no_asgi_in_the_reference() {
        return;
    }
    // Preloaded (both groups named): each process tries the startup as it starts.
    let s = server()
        .file("startup.py", STARTUP_APP.as_bytes())
        .file("fail-startup", b"")
        .config(
            "WSGIDaemonProcess starting threads=2\n\
             WSGIScriptAlias /starting @DIR@/startup.py process-group=starting application-group=%{GLOBAL}\n",
        )
        .start();
    let log = s.var_dir().join("startups.log");
    let pids = |what: &str| -> Vec<String> {
        fs::read_to_string(&log).unwrap_or_default().lines().filter_map(|l| l.strip_prefix(what)).map(str::to_owned).collect()
    };
    wait_for(|| !pids("failed ").is_empty(), "a failed startup");
    // Meanwhile, each request is a 500 with a line saying why.
    let r = s.get("/starting/");
    assert_eq!(r.status, 500, "{}", r.text());
    s.expect_log("startup.py': marker present");
    // The failure, once, with its message and the traceback of what the app raised then.
    s.expect_log("ASGI lifespan startup of '");
    s.expect_log("startup.py' failed: marker present");
    s.expect_log("RuntimeError: startup refused");
    s.expect_log("process 'starting' will be replaced in 1 second (failed startups in a row: 1).");
    // After the back-off a fresh process tries again; failing too, it waits twice as long.
    let started = Instant::now();
    wait_for(|| pids("failed ").len() >= 2, "a fresh process trying the startup again");
    let failed = pids("failed ");
    assert_ne!(failed[0], failed[1]);
    assert!(started.elapsed() > Duration::from_millis(500), "replaced after {:?}", started.elapsed());
    s.expect_log("Lifespan startup back-off expired, replacing process 'starting'.");
    s.expect_log("process 'starting' will be replaced in 2 seconds (failed startups in a row: 2).");
    assert_eq!(s.get("/starting/").status, 500);
    // The cause gone, the third process starts, and serves.
    fs::remove_file(s.dir().join("fail-startup")).unwrap();
    wait_for(|| !pids("started ").is_empty(), "a startup that succeeds");
    let third = pids("started ")[0].clone();
    assert!(!failed.contains(&third), "{third} {failed:?}");
    let r = s.get("/starting/");
    assert_eq!((r.status, r.text()), (200, format!("served {third}")), "{}", s.error_log());
}

/// Every event line the ASGI events app recorded.
fn recorded_events(s: &Server) -> String {
    fs::read_to_string(s.var_dir().join("events.log")).unwrap_or_default()
}

#[test]
fn subscribers_hear_the_events_of_asgi_requests() {
    if no_asgi_in_the_reference() {
        return;
    }
    let s = server()
        .app("asgi_events.py")
        .config(
            "WSGIDaemonProcess ev threads=2\n\
             WSGIScriptAlias /ev @DIR@/asgi_events.py process-group=ev application-group=%{GLOBAL}\n",
        )
        .start();
    let r = s.request("POST", "/ev/", &[], b"12345");
    assert_eq!((r.status, r.text()), (200, "ok".to_string()), "{}", s.error_log());
    // request_finished comes as the exchange ends, which may be after the client has the response.
    wait_for(|| recorded_events(&s).contains("EVENT request_finished"), "request_finished");
    let log = recorded_events(&s);
    // The keys of WSGI's events; request_started also carries the scope, and its
    // request_environ the CGI variables.
    let started = "EVENT request_started application_object,application_start,daemon_connects,daemon_restarts,daemon_start,queue_start,request_data,request_environ,request_id,request_scope,request_start,thread_id";
    assert!(log.contains(&format!("{started} path=/ scope_path=/ev/ same_data=True active=True")), "{log}");
    assert!(
        log.contains("EVENT response_started exception_info,request_data,request_id,response_headers,response_status status='200 OK' headers=[('content-type', 'text/plain')] exception_info=None same_data=True"),
        "{log}"
    );
    let finished = "EVENT request_finished application_finish,application_time,cpu_system_time,cpu_user_time,input_length,input_reads,input_time,output_length,output_time,output_writes,request_data,request_id";
    assert!(log.contains(&format!("{finished} output_length=2 input_length=5 input_reads=1 seen=True same_data=True")), "{log}");
    let order: Vec<&str> = log.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(order, ["request_started", "response_started", "request_finished"]);

    // An exception is published before the request finishes.
    assert_eq!(s.get("/ev/raise").status, 500);
    wait_for(|| recorded_events(&s).matches("EVENT request_finished").count() == 2, "request_finished of the failing request");
    let log = recorded_events(&s);
    let exception = log.find("EVENT request_exception exception_info,request_data,request_id exception=ValueError");
    assert!(exception.is_some_and(|at| log[at..].contains("EVENT request_finished")), "{log}");

    // A subscriber may swap the application for a wrapper.
    assert_eq!(s.get("/ev/wrap").text(), "wrapped:ok");
    wait_for(|| recorded_events(&s).matches("EVENT request_finished").count() == 3, "request_finished of the wrapped request");
    // The requests that ended have left active_requests; request_data() works in the task.
    assert_eq!(s.get("/ev/active").text(), "active=1 data={'seen': True}");
}

fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "no {what} within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// Starlette from PyPI

const PYTHON: &str = "/usr/bin/python3";
/// Bumped when the requirements change, so a kept venv is made again.
const VENV: &str = "/tmp/mod_wsgi-rs-test-asgi-venv-3";
const REQUIREMENTS: &[&str] = &["starlette==0.41.3", "fastapi==0.115.6", "uvicorn==0.32.1", "httptools==0.6.4", "Django==5.1.4"];

/// A venv (Debian's Python) with Starlette, FastAPI, uvicorn and Django, made once and kept: `VENV/ready` marks it complete.
fn venv() -> &'static Path {
    static MADE: OnceLock<PathBuf> = OnceLock::new();
    MADE.get_or_init(|| made_venv(VENV, REQUIREMENTS))
}

/// A venv with uvloop alone, which the event loop then runs on.
const UVLOOP_VENV: &str = "/tmp/mod_wsgi-rs-test-uvloop-venv-1";

fn uvloop_venv() -> &'static Path {
    static MADE: OnceLock<PathBuf> = OnceLock::new();
    MADE.get_or_init(|| made_venv(UVLOOP_VENV, &["uvloop==0.21.0"]))
}

/// The venv at `path` with `requirements` from PyPI, made unless `path/ready` says it is.
fn made_venv(path: &str, requirements: &[&str]) -> PathBuf {
    let venv = PathBuf::from(path);
    if venv.join("ready").exists() {
        return venv;
    }
    let building = PathBuf::from(format!("{path}.{}", std::process::id()));
    let _ = fs::remove_dir_all(&building);
    let run = |what: &str, cmd: &mut Command| {
        let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed (this test needs python3-venv and network access to PyPI):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run("python3 -m venv", Command::new(PYTHON).args(["-m", "venv"]).arg(&building));
    run(
        "pip install",
        Command::new(building.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(requirements)
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME")
            .env_remove("VIRTUAL_ENV"),
    );
    // Apache's children (www-data) read it.
    run("chmod", Command::new("chmod").args(["-R", "a+rX"]).arg(&building));
    fs::write(building.join("ready"), b"").unwrap();
    // Another test process may have made it meanwhile: either copy does.
    if fs::rename(&building, &venv).is_err() {
        let _ = fs::remove_dir_all(&building);
    }
    venv
}

const STARLETTE_APP: &str = r#"
import os
from starlette.applications import Starlette
from starlette.responses import FileResponse, PlainTextResponse
from starlette.routing import Route

async def hello(request):
    return PlainTextResponse("Hello, world! " + request.url.path + " " + request.query_params.get("q", ""))

async def file(request):
    return FileResponse(os.path.join(os.path.dirname(__file__), "data.bin"))

application = Starlette(routes=[Route("/hello", hello), Route("/file", file)])
"#;

const FASTAPI_APP: &str = r#"
from fastapi import FastAPI
from pydantic import BaseModel

application = FastAPI()

class Item(BaseModel):
    name: str
    price: float

@application.get("/items/{item_id}")
async def read_item(item_id: int, q: str = ""):
    return {"item_id": item_id, "q": q}

@application.post("/items")
async def create_item(item: Item):
    return {"name": item.name.upper(), "price": item.price * 2}
"#;

#[test]
fn starlette_and_fastapi_from_a_venv() {
    if no_asgi_in_the_reference() {
        return;
    }
    let venv = venv();
    let data = support::pseudo_random_bytes(3 << 20, 5);
    let s = server()
        .file("star.py", STARLETTE_APP.as_bytes())
        .file("fast.py", FASTAPI_APP.as_bytes())
        .file("data.bin", &data)
        .config(&format!(
            "WSGIDaemonProcess star threads=5 python-home={}\n\
             WSGIScriptAlias /star @DIR@/star.py process-group=star application-group=%{{GLOBAL}}\n\
             WSGIScriptAlias /fast @DIR@/fast.py process-group=star application-group=%{{GLOBAL}}\n",
            venv.display()
        ))
        .start();
    let r = s.get("/star/hello?q=%C3%A9t%C3%A9");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    assert_eq!(r.text(), "Hello, world! /star/hello été");
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert_eq!(s.get("/star/missing").status, 404);
    // FileResponse (this Starlette streams the file, and answers Range itself).
    let r = s.get("/star/file");
    assert_eq!(r.status, 200, "{}", s.error_log());
    assert_eq!(r.header("Content-Length"), Some(&*data.len().to_string()));
    assert!(r.body == data, "the file's bytes differ");
    let r = s.request("GET", "/star/file", &[("Range", "bytes=10-19")], b"");
    assert_eq!(r.status, 206, "{}", s.error_log());
    assert_eq!(r.body, &data[10..20]);

    let r = s.get("/fast/items/42?q=x%20y");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    assert_eq!(r.text(), r#"{"item_id":42,"q":"x y"}"#);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(s.get("/fast/items/forty-two").status, 422);
    let r = s.request("POST", "/fast/items", &[("Content-Type", "application/json")], br#"{"name": "widget", "price": 2.5}"#);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    assert_eq!(r.text(), r#"{"name":"WIDGET","price":5.0}"#);
}

const DJANGO_APP: &str = r#"
from django.conf import settings

settings.configure(
    DEBUG=False, SECRET_KEY="test", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
    DATABASES={}, INSTALLED_APPS=[], MIDDLEWARE=[],
)

from django.core.asgi import get_asgi_application
from django.http import HttpResponse
from django.urls import path

def hello(request, name):
    return HttpResponse("Hello from Django, %s: %s %s %s %s" % (name, request.method, request.path, request.path_info, request.GET.get("q", "")))

def echo(request):
    return HttpResponse(request.body[::-1], content_type="application/octet-stream")

urlpatterns = [path("hello/<str:name>", hello), path("echo", echo)]
application = get_asgi_application()
"#;

const LOOP_APP: &str = r#"
import asyncio
import os

async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.01)
    body = ("%s.%s %d" % (type(loop).__module__, type(loop).__name__, os.getpid())).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
"#;

/// uvloop where it can be imported: it is a Cython module, which loads into one interpreter
/// of a process only; the others run asyncio's own loop. Loops in several interpreters of one
/// process at once (before Python 3.12, asyncio's C half mixed them up: CPython issue 91375).
#[test]
fn event_loops_run_in_several_interpreters_of_a_process_at_once_uvloop_where_it_loads() {
    if no_asgi_in_the_reference() {
        return;
    }
    let venv = uvloop_venv();
    let s = server()
        .file("loop_app.py", LOOP_APP.as_bytes())
        .config(&format!(
            "WSGIDaemonProcess uv threads=3 python-home={}\n\
             WSGIScriptAlias /main @DIR@/loop_app.py process-group=uv application-group=%{{GLOBAL}}\n\
             WSGIScriptAlias /one @DIR@/loop_app.py process-group=uv application-group=one\n\
             WSGIScriptAlias /two @DIR@/loop_app.py process-group=uv application-group=two\n",
            venv.display()
        ))
        .start();
    // The main interpreter's loop first: uvloop loads there.
    let (status, body) = fetch(s.port(), "GET", "/main", &[], b"");
    assert_eq!((status, body.split(' ').next()), (200, Some("uvloop.Loop")), "{body}\n{}", s.error_log());
    let mut pids = std::collections::BTreeSet::new();
    for round in 0..3 {
        // The three interpreters at once, each with a loop of its own.
        let port = s.port();
        let asked: Vec<_> = ["/main", "/one", "/two"].iter().map(|path| (*path, std::thread::spawn(move || fetch(port, "GET", path, &[], b"")))).collect();
        for (path, answer) in asked {
            let (status, body) = answer.join().unwrap();
            assert_eq!(status, 200, "round {round} {path}: {body}\n{}", s.error_log());
            let (kind, pid) = body.split_once(' ').unwrap();
            let expected = if path == "/main" { "uvloop.Loop" } else { "asyncio.unix_events._UnixSelectorEventLoop" };
            assert_eq!(kind, expected, "{path}");
            pids.insert(pid.to_owned());
        }
    }
    assert_eq!(pids.len(), 1, "one daemon process served them all, never replaced: {pids:?}");
    assert!(!s.error_log().contains("Traceback"), "{}", s.error_log());
}

#[test]
fn django_get_asgi_application_from_a_venv() {
    if no_asgi_in_the_reference() {
        return;
    }
    let venv = venv();
    let s = server()
        .file("django_app.py", DJANGO_APP.as_bytes())
        .config(&format!(
            "WSGIDaemonProcess dj threads=5 python-home={}\n\
             WSGIScriptAlias /dj @DIR@/django_app.py process-group=dj application-group=%{{GLOBAL}}\n",
            venv.display()
        ))
        .start();
    let r = s.get("/dj/hello/caf%C3%A9?q=%C3%A9t%C3%A9");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    // SCRIPT_NAME from root_path: request.path has the mount point, path_info not.
    assert_eq!(r.text(), "Hello from Django, café: GET /dj/hello/café /hello/café été");
    let body = support::pseudo_random_bytes(300_000, 4);
    let r = s.request("POST", "/dj/echo", &[("Content-Type", "application/octet-stream")], &body);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    assert!(r.body.iter().eq(body.iter().rev()), "the body did not come back reversed");
    assert_eq!(s.get("/dj/missing").status, 404);
    // Django's handler refuses the lifespan scope: it runs without it.
    s.expect_log("ASGI 'lifespan' protocol appears unsupported");
}

/// One HTTP/1.1 request with `Connection: close`: the response's status and body (the
/// body must come with a Content-Length, as the plain app's /scope does).
fn fetch(port: u16, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    (head[9..12].parse().expect("status"), body.to_owned())
}

/// uvicorn (from the venv) serving the plain app at `root_path`; killed on drop.
struct Uvicorn(std::process::Child, u16);

impl Drop for Uvicorn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn uvicorn(app_dir: &Path, root_path: &str) -> Uvicorn {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(venv().join("bin/python"))
        .args(["-m", "uvicorn", "asgi_plain:application", "--http", "httptools", "--host", "127.0.0.1", "--log-level", "warning"])
        .arg("--app-dir")
        .arg(app_dir)
        .args(["--root-path", root_path, "--port", &port.to_string()])
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start uvicorn");
    let uvicorn = Uvicorn(child, port);
    wait_for(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(), "uvicorn listening");
    uvicorn
}

/// A request: method, target, headers, body.
type Exchange<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [u8]);

#[test]
fn the_scope_is_what_uvicorn_gives_the_same_app() {
    if no_asgi_in_the_reference() {
        return;
    }
    let s = plain_server();
    let uv = uvicorn(s.dir(), "/plain");
    let requests: &[Exchange] = &[
        ("GET", "/scope/caf%C3%A9%20x/%E2%82%AC?a=1&b=%C3%A9&a=2&c", &[("X-One", "1"), ("Cookie", "a=1; b=two")], b""),
        ("GET", "/scope//double//slashes/?", &[("Accept", "*/*")], b""),
        ("POST", "/scope/form?x=%2F", &[("Content-Type", "application/x-www-form-urlencoded")], b"name=caf%C3%A9&n=1"),
        ("PUT", "/scope/%7Euser/a+b", &[("X-Empty", "")], &[0, 1, 2, 255]),
    ];
    // Same for both servers, whatever the connection: the client's and server's
    // addresses and ports, the spec version (uvicorn says 2.3), the pid, and `extensions`
    // (pathsend is ours).
    let differ = ["client", "server", "asgi", "pid", "extensions", "headers"];
    for (method, target, headers, body) in requests {
        let (status, ours) = fetch(s.port(), method, &format!("/plain{target}"), headers, body);
        assert_eq!(status, 200, "{method} {target}: {ours}\n{}", s.error_log());
        let (status, theirs) = fetch(uv.1, method, target, headers, body);
        assert_eq!(status, 200, "uvicorn {method} {target}: {theirs}");
        let (mut ours, theirs) = (parse_kv(&ours), parse_kv(&theirs));
        if target.contains("//") {
            // httpd merges slashes in the path it maps (MergeSlashes On, its default), as
            // WSGI applications see it too; raw_path keeps them.
            assert_eq!(ours["path"], "'/plain/scope/double/slashes/'");
            ours.insert("path".into(), theirs["path"].clone());
        }
        for (key, value) in &theirs {
            if !differ.contains(&key.as_str()) {
                assert_eq!(ours.get(key), Some(value), "{method} {target}: {key}");
            }
        }
        // Headers: the same, but for Host (it names the port) and Connection.
        let strip = |h: &str| {
            h.split("), (")
                .filter(|pair| !pair.contains("b'host'") && !pair.contains("b'connection'") && !pair.contains("b'content-length'"))
                .map(|pair| pair.trim_matches(['[', ']', '(', ')']).to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&ours["headers"]), strip(&theirs["headers"]), "{method} {target}");
    }
}
