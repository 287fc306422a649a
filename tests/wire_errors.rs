//! Failures on the wire, read as raw bytes off the socket, in embedded and daemon mode: a
//! response that breaks off after it began reaches the client as far as it went and then is
//! cut (no final chunk, or short of its Content-Length) on a closed connection; request
//! bodies that cannot be read (chunked where not allowed, malformed, or a client that goes
//! away mid-upload) get one answer and a log line that says what happened.

mod support;

use std::io::{Read, Write};
use std::net::Shutdown;
use support::{Server, is_reference, server};

fn wire_server() -> Server {
    server()
        .app("wire_errors.wsgi")
        .config(
            "KeepAlive On\n\
             WSGIDaemonProcess d threads=2\n\
             WSGIScriptAlias /e @DIR@/wire_errors.wsgi\n\
             WSGIScriptAlias /d @DIR@/wire_errors.wsgi process-group=d\n\
             WSGIScriptAlias /ce @DIR@/wire_errors.wsgi\n\
             WSGIScriptAlias /cd @DIR@/wire_errors.wsgi process-group=d\n\
             <Location /ce>\n  WSGIChunkedRequest On\n</Location>\n\
             <Location /cd>\n  WSGIChunkedRequest On\n</Location>\n",
        )
        .start()
}

/// A GET on a connection kept alive (unless `close`), read until the server closes it.
fn get(s: &Server, path: &str, close: bool) -> Vec<u8> {
    let connection = if close { "Connection: close\r\n" } else { "" };
    s.raw_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{connection}\r\n", s.port()).as_bytes())
}

fn split_head(response: &[u8]) -> (String, &[u8]) {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    (String::from_utf8_lossy(&response[..end]).into_owned(), &response[end + 4..])
}

#[test]
fn a_response_that_breaks_off_reaches_the_client_as_far_as_it_went_and_is_cut() {
    let s = wire_server();
    for mount in ["/e", "/d"] {
        // The C module's daemon mode ends such a response as if it were whole (a final chunk):
        // the client cannot tell it failed. Ours cuts it there too.
        let whole_looking = is_reference() && mount == "/d";
        // The loss was intermittent: try it often. Ours closes a connection it cut short, so
        // reading to the end shows that; the C module keeps it open until KeepAliveTimeout.
        let close = is_reference();
        for _ in 0..20 {
            let response = get(&s, &format!("{mount}/yield-raise"), close);
            let (head, body) = split_head(&response);
            assert!(head.starts_with("HTTP/1.1 200 OK"), "{mount}: {head:?}");
            assert!(head.contains("Transfer-Encoding: chunked"), "{mount}: {head:?}");
            let expected: &[u8] = if whole_looking { b"6\r\nfirst;\r\n0\r\n\r\n" } else { b"6\r\nfirst;\r\n" };
            assert_eq!(body, expected, "{mount}: no final chunk after the first");

            let response = get(&s, &format!("{mount}/yield-raise-cl"), close);
            let (head, body) = split_head(&response);
            assert!(head.starts_with("HTTP/1.1 200 OK"), "{mount}: {head:?}");
            assert!(head.contains("Content-Length: 100"), "{mount}: {head:?}");
            assert_eq!(body, b"first;", "{mount}: short of its Content-Length");
        }
    }
    s.expect_log("RuntimeError: broken after the first chunk");
}

#[test]
fn a_chunked_body_where_it_is_not_allowed_is_refused_with_a_reason() {
    let s = wire_server();
    for mount in ["/e", "/d"] {
        let r = s.post_chunked(&format!("{mount}/read"), &[b"abc"]);
        assert_eq!(r.status, 411, "{mount}");
    }
    s.expect_log(&format!(
        "Received request requiring chunked transfer encoding, but optional support for chunked transfer encoding has not been enabled.: {}/wire_errors.wsgi",
        s.dir().display()
    ));
    // Allowed, it reaches the application.
    for mount in ["/ce", "/cd"] {
        let r = s.post_chunked(&format!("{mount}/read"), &[b"abc", b"defg"]);
        assert_eq!((r.status, r.text()), (200, "read 7".to_string()), "{mount}");
    }
}

#[test]
fn a_malformed_chunked_body_gets_one_error_page() {
    let s = wire_server();
    for mount in ["/ce", "/cd"] {
        let request = format!(
            "POST {mount}/read HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
            s.port()
        );
        let response = s.raw_all(request.as_bytes());
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 400 Bad Request"), "{mount}: {text}");
        assert_eq!(text.matches("<title>400 Bad Request</title>").count(), 1, "{mount}: {text}");
    }
}

#[test]
fn a_client_that_goes_away_mid_upload_is_logged_with_what_happened() {
    let s = wire_server();
    for mount in ["/e", "/d"] {
        let mut c = s.connect();
        let head = format!("POST {mount}/read HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 100000\r\n\r\n", s.port());
        c.write_all(head.as_bytes()).unwrap();
        c.write_all(&[b'x'; 1000]).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
    }
    s.expect_log("[wsgi:error]");
    s.expect_log("Apache/mod_wsgi request data read error: ");
    s.expect_log("Request data read error when proxying data to daemon process: ");
    if !is_reference() {
        // The C module gives APR's words only ("Partial results are valid but processing is
        // incomplete"); ours also says how far the body got.
        s.expect_log("the client went away after 1000 of 100000 bytes");
    }
    let log = s.error_log();
    assert!(!log.lines().any(|l| l.contains("request data read error") && l.contains("[wsgi:info]")), "{log}");
}
