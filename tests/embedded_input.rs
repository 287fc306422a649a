//! wsgi.input in embedded mode: the reading methods, EOF, a large body, chunked request bodies.

mod support;

use support::{Server, md5_hex, parse_kv, pseudo_random_bytes, server};

const BODY: &[u8] = b"line1\nline2\nlast";

fn input_server(extra: &str) -> Server {
    server()
        .app("input.wsgi")
        .config(&format!("WSGIScriptAlias /in @DIR@/input.wsgi\n{extra}"))
        .start()
}

fn post(s: &Server, path: &str, body: &[u8]) -> std::collections::BTreeMap<String, String> {
    let r = s.request(
        "POST",
        path,
        &[("Content-Type", "application/octet-stream")],
        body,
    );
    assert_eq!(
        r.status,
        200,
        "POST {path}: {}\n{}",
        r.text(),
        s.error_log()
    );
    parse_kv(&r.text())
}

#[test]
fn read_methods_return_the_body() {
    let s = input_server("");
    let out = post(&s, "/in/read", BODY);
    assert_eq!(out["data"], r"b'line1\nline2\nlast'");
    assert_eq!(out["again"], "b''");

    assert_eq!(
        post(&s, "/in/read_minus_one", BODY)["data"],
        r"b'line1\nline2\nlast'"
    );

    // read(n) returns at most n bytes; the pieces add up to the body.
    assert_eq!(
        post(&s, "/in/read_n", BODY)["pieces"],
        r"[b'lin', b'e1\nl', b'ine2\nlast', b'', b'']"
    );
}

#[test]
fn readline_variants_split_at_newlines() {
    let s = input_server("");
    assert_eq!(
        post(&s, "/in/readline", BODY)["lines"],
        r"[b'line1\n', b'line2\n', b'last', b'']"
    );
    // readline(size) stops at size bytes even mid-line.
    assert_eq!(
        post(&s, "/in/readline_size", BODY)["lines"],
        r"[b'line', b'1\n', b'line2\n', b'la']"
    );
    let out = post(&s, "/in/readlines", BODY);
    assert_eq!(out["lines"], r"[b'line1\n', b'line2\n', b'last']");
    assert_eq!(out["after"], "[]");
    assert_eq!(
        post(&s, "/in/iter", BODY)["lines"],
        r"[b'line1\n', b'line2\n', b'last']"
    );
}

#[test]
fn reads_after_eof_return_empty_bytes() {
    let s = input_server("");
    let out = post(&s, "/in/eof", BODY);
    assert_eq!(out["data"], r"b'line1\nline2\nlast'");
    assert_eq!(out["eof"], "[b'', b'', b'', b'']");
    // No body at all.
    let out = post(&s, "/in/eof", b"");
    assert_eq!(out["data"], "b''");
    assert_eq!(out["eof"], "[b'', b'', b'', b'']");
}

#[test]
fn large_body_arrives_intact() {
    let s = input_server("");
    let body = pseudo_random_bytes(8 * 1024 * 1024 + 123, 7);
    let out = post(&s, "/in/md5", &body);
    assert_eq!(out["length"], body.len().to_string());
    assert_eq!(out["md5"], format!("'{}'", md5_hex(&body)));
}

#[test]
fn chunked_request_body_is_refused_by_default() {
    let s = input_server("");
    let r = s.post_chunked("/in/read", &[b"abc", b"def"]);
    assert_eq!(r.status, 411, "{}", r.text());
}

#[test]
fn chunked_request_body_is_read_when_enabled() {
    let s = input_server("WSGIChunkedRequest On\n");
    let r = s.post_chunked("/in/content_length", &[b"line1\n", b"line2\n", b"last"]);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    let out = parse_kv(&r.text());
    assert_eq!(out["data"], r"b'line1\nline2\nlast'");
    // No length is known up front.
    assert_eq!(out["CONTENT_LENGTH"], "None");

    // A large chunked body, read in 64 KiB pieces.
    let body = pseudo_random_bytes(3 * 1024 * 1024 + 5, 11);
    let chunks: Vec<&[u8]> = body.chunks(100_000).collect();
    let r = s.post_chunked("/in/md5", &chunks);
    assert_eq!(r.status, 200);
    let out = parse_kv(&r.text());
    assert_eq!(out["length"], body.len().to_string());
    assert_eq!(out["md5"], format!("'{}'", md5_hex(&body)));
}
