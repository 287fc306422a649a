//! Framing on the wire, in embedded and daemon mode, read as raw bytes off a kept-alive
//! connection: a response's Content-Length and body agree, or the connection closes after
//! it; a second request on the connection is answered intact. Content-Length values the
//! C module cannot use answer 500; two Content-Length headers; bodies short of or beyond
//! their length from iterables and from wsgi.file_wrapper; Range requests on files.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::{Server, is_reference, pseudo_random_bytes, server};

/// data.bin, sent through wsgi.file_wrapper.
const FILE_LEN: usize = 1000;
/// big.bin: a file larger than any buffer on the way.
const BIG_LEN: usize = 9 << 20;
/// How long the client waits for more of a body before calling the response stalled.
const STALL: Duration = Duration::from_millis(1500);

/// `/e` runs the app embedded, `/d` in the daemon group `g`; KeepAlive On.
fn wire_server(big: bool) -> (Server, Vec<u8>) {
    let data = pseudo_random_bytes(FILE_LEN, 11);
    let mut b = server()
        .app("wire_length.wsgi")
        .file("data.bin", &data)
        .log_level("info wsgi:debug")
        .config(
            "KeepAlive On\n\
             WSGIDaemonProcess g threads=2\n\
             WSGIScriptAlias /e @DIR@/wire_length.wsgi\n\
             WSGIScriptAlias /d @DIR@/wire_length.wsgi process-group=g\n",
        );
    if big {
        b = b.file("big.bin", &pseudo_random_bytes(BIG_LEN, 12));
    }
    (b.start(), data)
}

/// How a response's body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// All its Content-Length bytes arrived.
    Complete,
    /// The server closed the connection first.
    Closed,
    /// Nothing more came for `STALL`, with the connection open: a client would wait on,
    /// and read the next response on the connection as the rest of this one.
    Stalled,
}

struct Reply {
    status: u16,
    head: String,
    /// The body as framed by Content-Length (what arrived of it).
    body: Vec<u8>,
    end: End,
}

impl Reply {
    fn headers(&self, name: &str) -> Vec<&str> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).first().copied()
    }
}

/// A client connection that reads responses byte for byte, framed by Content-Length.
struct Conn {
    stream: TcpStream,
    /// Bytes received beyond the last response's Content-Length.
    extra: Vec<u8>,
}

impl Conn {
    fn new(s: &Server) -> Conn {
        let stream = s.connect();
        stream.set_read_timeout(Some(STALL)).unwrap();
        Conn { stream, extra: Vec::new() }
    }

    /// Reads into `buf`; Err(end) when the connection closed or stalled.
    fn fill(&mut self, buf: &mut Vec<u8>) -> Result<(), End> {
        let mut piece = [0u8; 65536];
        match self.stream.read(&mut piece) {
            Ok(0) => Err(End::Closed),
            Ok(n) => {
                buf.extend_from_slice(&piece[..n]);
                Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Err(End::Stalled),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Err(End::Closed),
            Err(e) => panic!("read: {e}"),
        }
    }

    /// GET `target` (HTTP/1.1, kept alive) with `headers` ("Name: value\r\n" lines).
    fn get(&mut self, target: &str, headers: &str) -> Reply {
        let req = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n");
        self.stream.write_all(req.as_bytes()).expect("send request");
        let mut buf = std::mem::take(&mut self.extra);
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            if let Err(end) = self.fill(&mut buf) {
                panic!("{target}: no response head ({end:?}): {:?}", String::from_utf8_lossy(&buf));
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{target}: {head}"));
        let mut reply = Reply { status, head, body: Vec::new(), end: End::Complete };
        let lengths = reply.headers("Content-Length");
        assert_eq!(lengths.len(), 1, "{target}: one Content-Length expected: {}", reply.head);
        let len: usize = lengths[0].parse().unwrap_or_else(|_| panic!("{target}: {}", reply.head));
        let mut body = buf.split_off(head_end + 4);
        while body.len() < len {
            if let Err(end) = self.fill(&mut body) {
                reply.end = end;
                break;
            }
        }
        if body.len() > len {
            self.extra = body.split_off(len);
        }
        reply.body = body;
        reply
    }

    /// After a complete response: a second request on the connection is answered intact
    /// (true), or the server has closed the connection (false). Bytes the server sent
    /// beyond the first response's length would show up as the start of this answer.
    fn next_is_answered(mut self) -> bool {
        let req = b"GET /e?ok HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        let mut out = std::mem::take(&mut self.extra);
        if self.stream.write_all(req).is_ok() {
            while self.fill(&mut out).is_ok() {}
        }
        if out.is_empty() {
            return false;
        }
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\nok"),
            "the next response on the connection is misread: {text:?}"
        );
        true
    }
}

fn mounts() -> [(&'static str, &'static str); 2] {
    [("/e", "embedded"), ("/d", "daemon")]
}

#[test]
fn two_content_lengths_the_last_frames_the_body() {
    let (s, _) = wire_server(false);
    for (mount, mode) in mounts() {
        let mut c = Conn::new(&s);
        let r = c.get(&format!("{mount}?two"), "");
        // Content-Length: 1, then 5: one header goes out, 5, and the body is cut there.
        assert_eq!((r.status, r.header("Content-Length")), (200, Some("5")), "{mode}: {}", r.head);
        assert_eq!((r.body.as_slice(), r.end), (&b"01234"[..], End::Complete), "{mode}");
        assert!(c.next_is_answered(), "{mode}: connection not kept");
    }
    s.expect_log("Content length mismatch, expected 5, response generated 10");
}

#[test]
fn unusable_content_lengths_answer_500() {
    let (s, _) = wire_server(false);
    // Read as strtol reads them, these are refused: trailing characters, negative, over
    // the largest apr_off_t.
    let refused = ["18446744073709551615", "9223372036854775808", "%201%20", "1%20", "-1", "5x", "0x5"];
    for (mount, mode) in mounts() {
        for value in refused {
            let mut c = Conn::new(&s);
            let r = c.get(&format!("{mount}?cl={value}"), "");
            assert_eq!((r.status, r.end), (500, End::Complete), "{mode} {value}: {}", r.head);
            // Apache closes after its 500 page; anything that did follow must be clean.
            c.next_is_answered();
        }
    }
    s.expect_log("ValueError: invalid content length");
    if !is_reference() {
        // Deliberately more than the C module, whose line does not say which value.
        s.expect_log("ValueError: invalid content length '18446744073709551615'");
        s.expect_log("ValueError: invalid content length ' 1 '");
    }
}

#[test]
fn usable_content_lengths_go_out_as_numbers() {
    let (s, _) = wire_server(false);
    // Leading space, a sign, -0 and even an empty value pass strtol; the number goes out.
    let accepted = [("%201", "1", &b"h"[..]), ("%2B5", "5", b"hello"), ("-0", "0", b""), ("", "0", b""), ("0005", "5", b"hello")];
    for (mount, mode) in mounts() {
        for (value, sent, body) in accepted {
            let mut c = Conn::new(&s);
            let r = c.get(&format!("{mount}?cl={value}"), "");
            assert_eq!((r.status, r.header("Content-Length")), (200, Some(sent)), "{mode} {value:?}: {}", r.head);
            assert_eq!((r.body.as_slice(), r.end), (body, End::Complete), "{mode} {value:?}");
            assert!(c.next_is_answered(), "{mode} {value:?}: connection not kept");
        }
    }
}

#[test]
fn a_body_short_of_its_content_length_closes_the_connection() {
    let (s, _) = wire_server(false);
    // A generator (streamed) and a list (sent at once) of fewer bytes than declared.
    for (case, declared, body) in [("short=10", "10", &b"abc"[..]), ("cl=7", "7", b"hello")] {
        for (mount, mode) in mounts() {
            let mut c = Conn::new(&s);
            let r = c.get(&format!("{mount}?{case}"), "");
            assert_eq!((r.status, r.header("Content-Length")), (200, Some(declared)), "{mode} {case}: {}", r.head);
            assert_eq!(r.body, body, "{mode} {case}");
            if is_reference() {
                // The C module keeps the connection open: the client waits for the rest,
                // and on this connection would take the next response for it. Ours closes it.
                assert_eq!(r.end, End::Stalled, "{mode} {case}");
            } else {
                assert_eq!(r.end, End::Closed, "{mode} {case}");
            }
        }
    }
    s.expect_log("Content length mismatch, expected 10, response generated 3");
}

#[test]
fn a_file_is_cut_at_a_shorter_content_length() {
    let (s, data) = wire_server(false);
    for (mount, mode) in mounts() {
        let mut c = Conn::new(&s);
        let r = c.get(&format!("{mount}?file=500"), "");
        assert_eq!((r.status, r.header("Content-Length")), (200, Some("500")), "{mode}: {}", r.head);
        assert_eq!(r.end, End::Complete, "{mode}");
        assert!(r.body == data[..500], "{mode}: body is not the file's first 500 bytes");
        // Not a byte more: the next response on the connection starts clean.
        assert!(c.next_is_answered(), "{mode}: connection not kept");
    }
}

#[test]
fn a_file_shorter_than_its_content_length_closes_the_connection() {
    let (s, data) = wire_server(false);
    for (mount, mode) in mounts() {
        let mut c = Conn::new(&s);
        let r = c.get(&format!("{mount}?file=2000"), "");
        assert_eq!(r.status, 200, "{mode}: {}", r.head);
        assert!(r.body[..FILE_LEN] == data[..], "{mode}: body does not start with the file");
        if is_reference() {
            // The C module sends the declared 2000 bytes: the file, then zeros (its file
            // bucket reaches past the end of the file), and keeps the connection.
            assert_eq!((r.header("Content-Length"), r.end), (Some("2000"), End::Complete), "{mode}");
            assert!(r.body[FILE_LEN..].iter().all(|&b| b == 0), "{mode}");
            assert!(c.next_is_answered(), "{mode}");
        } else {
            // Ours sends the file and closes the connection: httpd sees the whole body at
            // once (a daemon hands the Apache child the open file) and corrects the
            // length to the file's, saying `Connection: close`.
            assert_eq!((r.header("Content-Length"), r.body.len(), r.end), (Some("1000"), FILE_LEN, End::Complete), "{mode}: {}", r.head);
            assert!(!c.next_is_answered(), "{mode}: connection kept");
        }
    }
    s.expect_log("Content length mismatch, expected 2000, response generated 1000");
}

#[test]
fn range_requests_on_a_file_get_206() {
    let (s, data) = wire_server(false);
    for (mount, mode) in mounts() {
        // Without and with a Content-Length of the file's size (as Django's FileResponse sets).
        for case in ["file", "file=1000"] {
            let mut c = Conn::new(&s);
            let r = c.get(&format!("{mount}?{case}"), "Range: bytes=0-99\r\n");
            assert_eq!(r.end, End::Complete, "{mode} {case}");
            if is_reference() && mode == "daemon" {
                // The C module's Apache child relays a daemon's body as it arrives, so
                // httpd's byterange filter never sees it whole: the whole file, 200.
                assert_eq!((r.status, r.body.len()), (200, FILE_LEN), "{mode} {case}: {}", r.head);
                assert!(r.body == data, "{mode} {case}");
            } else {
                assert_eq!(r.status, 206, "{mode} {case}: {}", r.head);
                assert_eq!(r.header("Content-Range"), Some("bytes 0-99/1000"), "{mode} {case}");
                assert!(r.body == data[..100], "{mode} {case}: not the file's first 100 bytes");
            }
            assert!(c.next_is_answered(), "{mode} {case}: connection not kept");
        }
        // A suffix range, and a body that is not a file: no range of that.
        let mut c = Conn::new(&s);
        let r = c.get(&format!("{mount}?file"), "Range: bytes=-10\r\n");
        let expected = if is_reference() && mode == "daemon" { (200, &data[..]) } else { (206, &data[FILE_LEN - 10..]) };
        assert_eq!((r.status, r.body.as_slice()), expected, "{mode}: {}", r.head);
        let r = c.get(&format!("{mount}?ok"), "Range: bytes=0-0\r\n");
        assert_eq!((r.status, r.body.as_slice(), r.end), (200, &b"ok"[..], End::Complete), "{mode}");
        assert!(c.next_is_answered(), "{mode}: connection not kept");
    }
}

#[test]
fn range_requests_on_a_large_file_get_206() {
    let (s, _) = wire_server(true);
    let big = pseudo_random_bytes(BIG_LEN, 12);
    for (mount, mode) in mounts() {
        let mut c = Conn::new(&s);
        let r = c.get(&format!("{mount}?big"), "Range: bytes=100-199\r\n");
        if is_reference() && mode == "daemon" {
            // The C module's daemons answer any Range with the whole body.
            assert_eq!((r.status, r.body.len(), r.end), (200, BIG_LEN, End::Complete), "{}", r.head);
            assert!(r.body == big);
        } else {
            // Ours hand the open file to the Apache child, whose httpd sends the range.
            assert_eq!((r.status, r.header("Content-Range")), (206, Some("bytes 100-199/9437184")), "{mode}: {}", r.head);
            assert!(r.body == big[100..200], "{mode}");
        }
        assert!(c.next_is_answered(), "{mode}: connection not kept");
    }
}
