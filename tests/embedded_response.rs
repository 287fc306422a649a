//! Responses in embedded mode: start_response, write(), streaming, close() of the iterable,
//! Content-Length, HEAD, start_response called again, and framing.

mod support;

use support::{Server, server};

fn response_server() -> Server {
    server()
        .app("response.wsgi")
        .config("WSGIScriptAlias /r @DIR@/response.wsgi\n")
        .start()
}

/// Splits a raw HTTP response into (head, body).
fn split_raw(raw: &[u8]) -> (String, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head");
    (
        String::from_utf8_lossy(&raw[..end]).into_owned(),
        raw[end + 4..].to_vec(),
    )
}

#[test]
fn status_and_headers_from_start_response_are_sent() {
    let s = response_server();
    let r = s.get("/r/status");
    assert_eq!((r.status, r.reason.as_str()), (201, "Created"));
    assert_eq!(r.header("X-Test"), Some("value 1"));
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    // Repeated headers are all sent, in order.
    let multi: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k == "X-Multi")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(multi, ["a", "b"]);
    assert_eq!(r.text(), "created");
}

#[test]
fn write_callable_output_precedes_the_iterable() {
    let s = response_server();
    let r = s.get("/r/write");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "part1-part2-part3");
}

#[test]
fn iterable_responses_are_sent_chunked_in_order() {
    let s = response_server();
    let r = s.get("/r/generator");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(r.text(), "one-two");
}

#[test]
fn single_element_list_body_is_sent_intact() {
    let s = response_server();
    let r = s.get("/r/single_list");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "single");
    // C mod_wsgi 4.9.4 does not derive a Content-Length from a one-element list: the body is
    // flushed as it is produced, so HTTP/1.1 gets it chunked.
    assert_eq!(r.header("Content-Length"), None);
    assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
}

#[test]
fn streamed_chunks_reach_the_client_before_the_app_finishes() {
    support::assert_streams(&response_server(), "/r/stream");
}

#[test]
fn close_is_called_after_success() {
    let s = response_server();
    assert_eq!(s.get("/r/close_ok").text(), "ab");
    assert_eq!(s.marker("closed-ok").as_deref(), Some("2"));
}

#[test]
fn close_is_called_after_an_exception_mid_iteration() {
    let s = response_server();
    // Headers and the first chunk are already out; the response is just cut short.
    let raw = s.raw_all(b"GET /r/close_exc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (head, body) = split_raw(&raw);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        body.starts_with(b"1\r\na\r\n"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert!(
        !body.ends_with(b"0\r\n\r\n"),
        "cut response must not end like a complete one"
    );
    assert_eq!(s.marker("closed-exc").as_deref(), Some("1"));
    s.expect_log("RuntimeError: marker-mid-iteration-failure");
    assert!(s.error_log().contains("Traceback (most recent call last):"));
}

#[test]
fn close_is_called_when_the_client_disconnects_mid_stream() {
    let s = response_server();
    let mut stream = s.stream("/r/close_disconnect");
    assert_eq!(stream.head.status, 200);
    assert!(stream.next_chunk().is_some());
    stream.disconnect();
    // The app would stream for 30 s; a failed write stops it and close() still runs.
    let count =
        s.marker("closed-disconnect").expect("close() not called after disconnect");
    let count: u32 = count.parse().unwrap();
    assert!(
        count < 600,
        "app ran to completion ({count} chunks) despite the disconnect"
    );
}

#[test]
fn declared_content_length_cuts_the_body() {
    let s = response_server();
    // The app declares 5 bytes and yields 10: exactly 5 go out, no chunking.
    let raw =
        s.raw_all(b"GET /r/content_length_cut HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (head, body) = split_raw(&raw);
    assert!(head.contains("\r\nContent-Length: 5"), "{head}");
    assert!(!head.contains("Transfer-Encoding"), "{head}");
    assert_eq!(body, b"01234");
}

#[test]
fn head_request_gets_headers_without_body() {
    let s = response_server();
    let raw = s.raw_all(b"HEAD /r/head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (head, body) = split_raw(&raw);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("\r\nContent-Type: text/plain"), "{head}");
    assert!(body.is_empty(), "HEAD response has a body: {body:?}");
    // WSGIMapHEADToGET Auto (default) with no output filter needing the body: the app sees HEAD.
    assert!(head.contains("\r\nX-Method: HEAD"), "{head}");
}

#[test]
fn head_is_mapped_to_get_when_configured() {
    let s = server()
        .app("response.wsgi")
        .config("WSGIScriptAlias /r @DIR@/response.wsgi\nWSGIMapHEADToGET On\n")
        .start();
    let raw = s.raw_all(b"HEAD /r/head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (head, body) = split_raw(&raw);
    assert!(head.contains("\r\nX-Method: GET"), "{head}");
    assert!(body.is_empty(), "HEAD response has a body: {body:?}");
}

#[test]
fn start_response_again_before_output_replaces_the_status() {
    let s = response_server();
    // C mod_wsgi 4.9.4 accepts a second start_response without exc_info as long as nothing has
    // been sent yet: the later status wins and no exception is raised.
    let r = s.get("/r/start_twice");
    assert_eq!((r.status, r.text().as_str()), (202, "no error"));
}

#[test]
fn start_response_with_exc_info_before_output_replaces_the_response() {
    let s = response_server();
    let r = s.get("/r/exc_info_replace");
    assert_eq!((r.status, r.reason.as_str()), (503, "Replaced"));
    assert_eq!(r.text(), "replaced");
    // Headers of the first start_response are dropped.
    assert_eq!(r.header("X-Dropped"), None);
}

#[test]
fn start_response_with_exc_info_after_output_reraises() {
    let s = response_server();
    let raw = s
        .raw_all(b"GET /r/exc_info_after_headers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (head, body) = split_raw(&raw);
    // The status already sent stays; the exception is re-raised and logged.
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("already sent"));
    assert!(!String::from_utf8_lossy(&body).contains("not reached"));
    s.expect_log("ValueError: marker-exc-info-after-headers");
}

#[test]
fn empty_204_response_has_no_body() {
    let s = response_server();
    let raw = s.raw_all(b"GET /r/empty HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (head, body) = split_raw(&raw);
    assert!(head.starts_with("HTTP/1.1 204 No Content"), "{head}");
    assert!(body.is_empty());
}
