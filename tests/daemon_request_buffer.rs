//! Request bodies in daemon mode are read by the Apache child, up to request-buffer-size=
//! (1 MiB by default), before a daemon thread is taken: slow uploads do not starve a group
//! of few threads, a body larger than the buffer streams on after the part read ahead, 0
//! streams from the start, and wsgi.input sees the same bytes every way. A client that breaks
//! off while its body is read ahead reaches no daemon.
//!
//! The C module connects to its daemon and sends the request head before it reads the body,
//! so each upload holds a daemon thread for as long as the client takes, and it knows no
//! request-buffer-size=; under it these tests check what both share (bodies intact, the log
//! line) and that its threads are held, and leave the option out.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};
use support::{Server, is_reference, md5_hex, parse_kv, pseudo_random_bytes, server};

/// Group `g` (threads=2) with the default buffer: `/g` uploads, `/hello` answers at once,
/// `/c/g` accepts chunked bodies.
fn plain_server() -> Server {
    with_groups("")
}

/// Also groups `small` (request-buffer-size=65536) and `streaming` (request-buffer-size=0),
/// at `/small`, `/streaming`, `/c/small` and `/c/streaming`.
fn buffer_server() -> Server {
    // The C module refuses the option it does not have.
    let (small, streaming) = if is_reference() { ("", "") } else { (" request-buffer-size=65536", " request-buffer-size=0") };
    with_groups(&format!(
        "WSGIDaemonProcess small threads=2{small}\n\
         WSGIDaemonProcess streaming threads=2{streaming}\n\
         WSGIScriptAlias /small @DIR@/upload.wsgi process-group=small\n\
         WSGIScriptAlias /streaming @DIR@/upload.wsgi process-group=streaming\n\
         WSGIScriptAlias /c/small @DIR@/upload.wsgi process-group=small\n\
         WSGIScriptAlias /c/streaming @DIR@/upload.wsgi process-group=streaming\n"
    ))
}

fn with_groups(more: &str) -> Server {
    server()
        .workers(1, 16)
        .app("upload.wsgi")
        .app("hello.wsgi")
        .config(
            "WSGIDaemonProcess g threads=2\n\
             WSGIScriptAlias /g @DIR@/upload.wsgi process-group=g\n\
             WSGIScriptAlias /hello @DIR@/hello.wsgi process-group=g\n\
             WSGIScriptAlias /c/g @DIR@/upload.wsgi process-group=g\n\
             <Location /c>\n  WSGIChunkedRequest On\n</Location>\n",
        )
        .config(more)
        .start()
}

/// Sends a POST head (with `Content-Length` or chunked), then each of `parts` after its
/// pause, and reads the whole response: (status, `key=value` lines of its body).
fn post_in_parts(s: &Server, path: &str, length: Option<usize>, parts: &[(Duration, &[u8])]) -> (u16, BTreeMap<String, String>) {
    let mut c = s.connect();
    let framing = match length {
        Some(n) => format!("Content-Length: {n}"),
        None => "Transfer-Encoding: chunked".to_string(),
    };
    write!(c, "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n{framing}\r\n\r\n", s.port()).unwrap();
    for (pause, bytes) in parts {
        thread::sleep(*pause);
        if length.is_some() {
            c.write_all(bytes).unwrap();
        } else if !bytes.is_empty() {
            write!(c, "{:x}\r\n", bytes.len()).unwrap();
            c.write_all(bytes).unwrap();
            c.write_all(b"\r\n").unwrap();
        }
    }
    if length.is_none() {
        c.write_all(b"0\r\n\r\n").unwrap();
    }
    let mut response = Vec::new();
    c.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, parse_kv(body))
}

/// POSTs `body` in one go, with `Content-Length`, or chunked in pieces of `chunk` bytes.
fn post(s: &Server, path: &str, body: &[u8], chunk: Option<usize>) -> BTreeMap<String, String> {
    let (status, out) = match chunk {
        None => post_in_parts(s, path, Some(body.len()), &[(Duration::ZERO, body)]),
        Some(n) => {
            let parts: Vec<(Duration, &[u8])> = body.chunks(n).map(|piece| (Duration::ZERO, piece)).collect();
            post_in_parts(s, path, None, &parts)
        }
    };
    assert_eq!(status, 200, "{path}: {out:?}\n{}", s.error_log());
    out
}

fn assert_intact(out: &BTreeMap<String, String>, body: &[u8], what: &str) {
    assert_eq!(out.get("length"), Some(&body.len().to_string()), "{what}: {out:?}");
    assert_eq!(out.get("md5"), Some(&md5_hex(body)), "{what}: {out:?}");
}

fn waited(out: &BTreeMap<String, String>) -> f64 {
    out["waited"].parse().expect("waited")
}

#[test]
fn slow_uploads_do_not_starve_a_group_of_two_threads() {
    let s = plain_server();
    assert_eq!(s.get("/hello").status, 200);
    // Three clients each send 32 KiB at once, then 30 bytes more, one every 100 ms: three
    // seconds each. (Unbuffered, 32 KiB reach the daemon at once and its application starts
    // reading; a few bytes alone would wait in the hop's 8 KiB write buffer.)
    let started = Instant::now();
    let (slowest, gets_done, uploads) = thread::scope(|scope| {
        let uploads: Vec<_> = (0..3u64)
            .map(|n| {
                let s = &s;
                scope.spawn(move || {
                    let body = pseudo_random_bytes(32 * 1024 + 30, 2 * n + 1);
                    let (head_start, trickle) = body.split_at(32 * 1024);
                    let parts: Vec<(Duration, &[u8])> =
                        std::iter::once((Duration::ZERO, head_start)).chain(trickle.chunks(1).map(|b| (Duration::from_millis(100), b))).collect();
                    let (status, out) = post_in_parts(s, &format!("/g?slow{n}"), Some(body.len()), &parts);
                    (status, out, body, started.elapsed())
                })
            })
            .collect();
        // While they upload, other clients are answered at once.
        thread::sleep(Duration::from_millis(300));
        let mut slowest = Duration::ZERO;
        for _ in 0..10 {
            let asked = Instant::now();
            assert_eq!(s.get("/hello").status, 200);
            slowest = slowest.max(asked.elapsed());
        }
        let gets_done = started.elapsed();
        (slowest, gets_done, uploads.into_iter().map(|u| u.join().unwrap()).collect::<Vec<_>>())
    });
    if is_reference() {
        // The uploads hold both of the C module's threads until they end.
        assert!(slowest > Duration::from_secs(1), "slowest GET took {slowest:?}");
    } else {
        assert!(slowest < Duration::from_secs(1), "slowest GET took {slowest:?}");
    }
    for (status, out, body, finished) in uploads {
        assert_eq!(status, 200, "{out:?}\n{}", s.error_log());
        assert_intact(&out, &body, "slow upload");
        assert_eq!(out["CONTENT_LENGTH"], body.len().to_string());
        assert!(finished >= Duration::from_secs(3), "uploads took {finished:?}");
        if !is_reference() {
            assert!(gets_done < finished, "the GETs ({gets_done:?}) did not overlap the uploads ({finished:?})");
        }
    }
}

#[test]
fn a_daemon_thread_is_taken_once_the_buffered_body_is_complete() {
    let s = buffer_server();
    // Loaded first, so that loading takes none of the pause.
    for path in ["/g", "/small", "/streaming"] {
        post(&s, path, b"warm-up", None);
    }
    // 70000 bytes, a pause of a second, then 10000 more: what the application sits through
    // in wsgi.input tells whether it started before the body was all there.
    let body = pseudo_random_bytes(80_000, 3);
    let parts: [(Duration, &[u8]); 2] = [(Duration::ZERO, &body[..70_000]), (Duration::from_secs(1), &body[70_000..])];
    for chunked in [false, true] {
        let length = (!chunked).then_some(body.len());
        let prefix = if chunked { "/c" } else { "" };
        let (status, out) = post_in_parts(&s, &format!("{prefix}/g"), length, &parts);
        assert_eq!(status, 200, "{out:?}");
        assert_intact(&out, &body, "default buffer");
        if is_reference() {
            assert!(waited(&out) > 0.7, "chunked={chunked}: {out:?}");
            continue;
        }
        // Within the default buffer: the application gets it whole.
        assert!(waited(&out) < 0.5, "chunked={chunked}: {out:?}");
        // Beyond a 64 KiB buffer: the first 65536 bytes go ahead, the rest streams.
        let (status, out) = post_in_parts(&s, &format!("{prefix}/small"), length, &parts);
        assert_eq!(status, 200, "{out:?}");
        assert_intact(&out, &body, "small buffer");
        assert!(waited(&out) > 0.7, "chunked={chunked}: {out:?}");
        // No buffer: the application starts with the head.
        let (status, out) = post_in_parts(&s, &format!("{prefix}/streaming"), length, &parts);
        assert_eq!(status, 200, "{out:?}");
        assert_intact(&out, &body, "no buffer");
        assert!(waited(&out) > 0.7, "chunked={chunked}: {out:?}");
    }
}

#[test]
fn bodies_arrive_intact_whatever_their_size_against_the_buffer() {
    let s = buffer_server();
    let mib = pseudo_random_bytes(1 << 20, 5);
    for group in ["small", "streaming", "g"] {
        assert_intact(&post(&s, &format!("/{group}"), &mib, None), &mib, group);
        // Chunks of odd sizes, so the buffer's bound falls inside one.
        assert_intact(&post(&s, &format!("/c/{group}"), &mib, Some(10_007)), &mib, group);
        // Around a 64 KiB buffer's bound.
        for len in [65_535, 65_536, 65_537] {
            assert_intact(&post(&s, &format!("/{group}"), &mib[..len], None), &mib[..len], group);
            assert_intact(&post(&s, &format!("/c/{group}"), &mib[..len], Some(4096)), &mib[..len], group);
        }
        // Empty bodies.
        let out = post(&s, &format!("/{group}"), b"", None);
        assert_eq!((out["length"].as_str(), out["CONTENT_LENGTH"].as_str()), ("0", "0"), "{group}");
    }
    // Beyond the default 1 MiB, both framings.
    let big = pseudo_random_bytes(8 << 20, 9);
    let out = post(&s, "/g", &big, None);
    assert_intact(&out, &big, "8 MiB");
    assert_eq!(out["CONTENT_LENGTH"], big.len().to_string());
    assert_intact(&post(&s, "/c/g", &big[..3 << 20], Some(65_536)), &big[..3 << 20], "3 MiB chunked");
    // CONTENT_LENGTH is the same buffered or not: the header's value, or none for chunked.
    let buffered = post(&s, "/c/g", b"abc", Some(1));
    let streamed = post(&s, "/c/streaming", b"abc", Some(1));
    assert_eq!(buffered["CONTENT_LENGTH"], streamed["CONTENT_LENGTH"]);
}

#[test]
fn a_client_that_breaks_off_while_buffered_reaches_no_daemon() {
    let s = plain_server();
    for path in ["/g?broken", "/c/g?broken-chunked"] {
        let mut c = s.connect();
        let framing = if path.starts_with("/c/") { "Transfer-Encoding: chunked\r\n\r\n3e8\r\n" } else { "Content-Length: 1000\r\n\r\n" };
        write!(c, "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{framing}", s.port()).unwrap();
        c.write_all(&[b'x'; 100]).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
    }
    s.expect_log("Request data read error when proxying data to daemon process: ");
    assert_eq!(post(&s, "/g?after", b"abc", None)["length"], "3");
    let started = std::fs::read_to_string(s.var_dir().join("started")).unwrap();
    assert!(started.contains("after\n"), "{started}");
    if !is_reference() {
        // Nothing was sent: the application never ran for them. (The C module's daemon runs
        // it, and its wsgi.input fails.)
        assert!(!started.contains("broken"), "{started}");
        s.expect_log("the client went away after 100 of 1000 bytes");
    }
}

#[test]
fn time_spent_reading_the_body_ahead_is_not_queue_time() {
    let s = with_groups(
        "WSGIDaemonProcess qt threads=1 queue-timeout=1\n\
         WSGIScriptAlias /qt @DIR@/upload.wsgi process-group=qt\n",
    );
    // Two seconds' upload, twice queue-timeout: the daemon does not count it as waiting.
    let body = pseudo_random_bytes(20, 7);
    let parts: Vec<(Duration, &[u8])> = body.chunks(1).map(|b| (Duration::from_millis(100), b)).collect();
    let (status, out) = post_in_parts(&s, "/qt", Some(body.len()), &parts);
    assert_eq!(status, 200, "{out:?}\n{}", s.error_log());
    assert_intact(&out, &body, "slow upload");
    assert!(!s.error_log().contains("Queue timeout expired"), "{}", s.error_log());
}
