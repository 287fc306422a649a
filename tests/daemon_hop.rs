//! The hop from Apache's children to a daemon process: who may use the socket,
//! that large bodies stream through it in bounded memory, that a client that
//! stops reading is given up on after response-socket-timeout=, and that
//! header-buffer-size= bounds each response header line.

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};
use support::{children_of, server, sockets};

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn only_apaches_user_may_connect_to_the_group_socket() {
    let s = server()
        .app("hello.wsgi")
        .file("sock/.keep", b"")
        .config(
            "WSGISocketPrefix @DIR@/sock/wsgi\n\
             WSGIDaemonProcess g threads=2\n\
             WSGIScriptAlias /h @DIR@/hello.wsgi process-group=g\n",
        )
        .start();
    assert_eq!(s.get("/h").status, 200);
    let socket = sockets(&s.dir().join("sock")).pop().expect("a group socket");
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(meta.uid(), 33, "owned by www-data, Apache's User");
    assert_eq!(meta.permissions().mode() & 0o077, 0, "no access for group or others: {:o}", meta.mode());
    // Another uid is refused by the socket's permissions.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c"])
        .arg(format!("import socket; s = socket.socket(socket.AF_UNIX); s.connect({:?})", socket.display().to_string()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PermissionError"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn hundred_mib_download_and_eight_mib_upload_use_bounded_memory() {
    let s = server()
        .app("big.wsgi")
        .config(
            "WSGIDaemonProcess g threads=2\n\
             WSGIScriptAlias /big @DIR@/big.wsgi process-group=g application-group=%{GLOBAL}\n",
        )
        .start();
    // 100 MiB down, read as it comes.
    let mut c = s.connect();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(c, "GET /big?100 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut total = 0usize;
    let mut head = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut pid = 0u32;
    loop {
        let n = c.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
        if head.len() < 4096 {
            head.extend_from_slice(&buf[..n.min(4096)]);
            let text = String::from_utf8_lossy(&head).to_string();
            if let Some(v) = text.split("X-Pid: ").nth(1) {
                pid = v.split("\r\n").next().unwrap().trim().parse().unwrap_or(0);
            }
        }
    }
    assert!(total > 100 * 1024 * 1024, "got {total} bytes");
    assert!(pid > 0);
    // 8 MiB up.
    let body = support::pseudo_random_bytes(8 << 20, 7);
    let r = s.request("POST", "/big", &[("Content-Type", "application/octet-stream")], &body);
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with(&format!("{} {} ", body.len(), support::md5_hex(&body))), "{}", r.text());

    // Neither the daemon nor Apache's children held a body whole.
    let limit = 64 * 1024;
    assert!(peak_rss_kib(pid) < limit, "daemon peaked at {} KiB", peak_rss_kib(pid));
    for child in children_of(s.parent_pid()) {
        assert!(peak_rss_kib(child) < limit, "process {child} peaked at {} KiB", peak_rss_kib(child));
    }
}

#[test]
fn client_that_stops_reading_is_dropped_after_response_socket_timeout() {
    // response-socket-timeout= bounds writes to the client; without it,
    // socket-timeout= does; without both, Apache's Timeout (30 s in tests).
    for option in ["response-socket-timeout=1", "socket-timeout=2"] {
        let s = server()
            .app("big.wsgi")
            .config(&format!(
                "WSGIDaemonProcess g threads=1 {option}\n\
                 WSGIScriptAlias /big @DIR@/big.wsgi process-group=g\n"
            ))
            .start();
        assert_eq!(s.get("/big?1").status, 200);
        // Asks for 2 GiB and reads nothing: the daemon's only thread blocks on it.
        let mut stalled = s.connect();
        stalled.write_all(b"GET /big?2048 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let next = s.get("/big?1");
        assert_eq!(next.status, 200, "{option}");
        assert!(started.elapsed() < Duration::from_secs(20), "{option}: the thread stayed taken for {:?}", started.elapsed());
        s.expect_log("(70007)The timeout specified has expired: ");
        s.expect_log("Failed to proxy response to client.");
        drop(stalled);
    }
}

#[test]
fn header_buffer_size_bounds_each_response_header_line() {
    let s = server()
        .app("big_header.wsgi")
        .config(
            "WSGIDaemonProcess g threads=1\n\
             WSGIDaemonProcess roomy threads=1 header-buffer-size=100000\n\
             WSGIScriptAlias /default @DIR@/big_header.wsgi process-group=g\n\
             WSGIScriptAlias /roomy @DIR@/big_header.wsgi process-group=roomy\n\
             WSGIScriptAlias /embedded @DIR@/big_header.wsgi\n",
        )
        .start();
    // 32768 bytes by default, for "X-Big: <value>\r\n" and a terminating NUL.
    let fits = s.get("/default?32758");
    assert_eq!(fits.status, 200);
    assert_eq!(fits.header("X-Big").map(str::len), Some(32758));
    assert_eq!(s.get("/default?32759").status, 500);
    s.expect_log(&format!(
        "Truncated or oversized response headers received from daemon process 'g': {}/big_header.wsgi",
        s.dir().display()
    ));
    // The process still serves; a larger buffer takes a larger header, and
    // embedded mode has no such hop.
    assert_eq!(s.get("/default?10").status, 200);
    assert_eq!(s.get("/roomy?70000").header("X-Big").map(str::len), Some(70000));
    assert_eq!(s.get("/embedded?70000").header("X-Big").map(str::len), Some(70000));
}

#[test]
fn requests_waiting_for_a_daemon_thread_are_served_in_the_order_they_came() {
    // One daemon thread, held by a request until the test lets it go; meanwhile
    // requests come one by one, through both Apache children, on kept
    // connections and on new ones. They are served first come, first served.
    let s = server()
        .app("turns.wsgi")
        .workers(2, 8)
        .config(
            "WSGIDaemonProcess g threads=1\n\
             WSGIScriptAlias /turns @DIR@/turns.wsgi process-group=g\n",
        )
        .start();
    for _ in 0..4 {
        assert_eq!(s.get("/turns?warm").status, 200);
    }
    let names: Vec<String> = (0..6).map(|i| format!("r{i}")).collect();
    let s = &s;
    let holder = std::thread::scope(|scope| {
        let holder = scope.spawn(|| s.get("/turns?hold"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !s.var_dir().join("holding").exists() {
            assert!(Instant::now() < deadline, "the holding request never ran:\n{}", s.error_log());
            std::thread::sleep(Duration::from_millis(20));
        }
        let waiting: Vec<_> = names
            .iter()
            .map(|name| {
                let handle = scope.spawn(move || s.get(&format!("/turns?{name}")));
                // Far apart, so that each head reaches the daemon before the next request.
                std::thread::sleep(Duration::from_millis(150));
                handle
            })
            .collect();
        std::fs::write(s.var_dir().join("release"), b"").unwrap();
        let mut last = String::new();
        for handle in waiting {
            let r = handle.join().unwrap();
            assert_eq!(r.status, 200, "{}", s.error_log());
            if r.text().len() > last.len() {
                last = r.text();
            }
        }
        let order: Vec<&str> = last.split(' ').filter(|n| n.starts_with('r')).collect();
        assert_eq!(order, names, "served in this order: {last}");
        holder.join().unwrap()
    });
    assert_eq!(holder.status, 200);
}
