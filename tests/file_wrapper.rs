//! wsgi.file_wrapper: a file returned through it arrives byte for byte, from the file's current
//! position, cut at a declared Content-Length.

mod support;

use support::{Server, pseudo_random_bytes, server};

const SIZE: usize = 1024 * 1024 + 17;

fn file_server() -> (Server, Vec<u8>) {
    let data = pseudo_random_bytes(SIZE, 3);
    let s = server()
        .app("file_wrapper.wsgi")
        .file("data.bin", &data)
        .config("WSGIScriptAlias /f @DIR@/file_wrapper.wsgi\n")
        .start();
    (s, data)
}

#[test]
fn whole_file_is_sent_intact() {
    let (s, data) = file_server();
    for path in ["/f/full", "/f/blksize"] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body.len(), data.len(), "{path}");
        assert!(r.body == data, "{path}: body differs from the file");
    }
}

#[test]
fn sending_starts_at_the_current_file_position() {
    let (s, data) = file_server();
    let r = s.get("/f/seek");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), data.len() - 1000);
    assert!(
        r.body == data[1000..],
        "body differs from the file after offset 1000"
    );
}

#[test]
fn declared_content_length_cuts_the_file() {
    let (s, data) = file_server();
    let r = s.get("/f/cut");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some("4096"));
    assert!(r.body == data[..4096]);

    let r = s.get("/f/seek_and_length");
    assert_eq!(r.header("Content-Length"), Some("100"));
    assert!(r.body == data[10..110]);
}
