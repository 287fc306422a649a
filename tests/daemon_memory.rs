//! Memory that stays in Apache's children and in the daemon after large
//! bodies went through: none follows the size of what was relayed. Each
//! server has a single Apache child of 25 threads (each thread may get a
//! malloc arena of its own), and the bodies go through four clients at once.

mod support;

use std::thread::sleep;
use std::time::{Duration, Instant};
use support::{Server, children_of, cmdline_of, server};

/// No longer than "/usr/sbin/apache2": the C module cuts display-name= to argv[0]'s length.
const DAEMON_NAME: &str = "wsgi-mem-daemon";
const EIGHT_MIB: usize = 8 << 20;
/// How much a process may hold after the bodies beyond what it held before.
const SLACK_KIB: u64 = 2 * 1024;

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The Apache child (not a daemon, not our daemons' supervisor).
fn apache_child(s: &Server) -> u32 {
    let children: Vec<u32> = children_of(s.parent_pid()).into_iter().filter(|&p| cmdline_of(p).starts_with("/usr/sbin/apache2")).collect();
    assert_eq!(children.len(), 1, "one Apache child: {children:?}");
    children[0]
}

/// The daemon process, found by its display-name.
fn daemon(s: &Server) -> u32 {
    let found: Vec<u32> = support::descendants_of(s.parent_pid()).into_iter().filter(|&p| cmdline_of(p).starts_with(DAEMON_NAME)).collect();
    assert_eq!(found.len(), 1, "one daemon: {found:?}");
    found[0]
}

/// `count` GETs of 8 MiB and `uploads` POSTs of 8 MiB, four at a time.
fn relay(s: &Server, count: usize, uploads: usize) {
    let upload = vec![b'u'; EIGHT_MIB];
    std::thread::scope(|scope| {
        for client in 0..4 {
            let upload = &upload;
            scope.spawn(move || {
                for _ in (client..count).step_by(4) {
                    let r = s.get("/m?8");
                    assert_eq!((r.status, r.body.len()), (200, EIGHT_MIB), "{}", s.error_log());
                }
                for _ in (client..uploads).step_by(4) {
                    let r = s.request("POST", "/m", &[("Content-Type", "application/octet-stream")], upload);
                    assert_eq!((r.status, r.text()), (200, EIGHT_MIB.to_string()), "{}", s.error_log());
                }
            });
        }
    });
}

/// Waits (a few seconds at most: what a process caches while busy goes
/// after a quiet second) for each process to be back within SLACK_KIB of
/// where it started; panics with the figures if one is not.
fn assert_back(processes: &[(&str, u32, u64)]) {
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let now: Vec<u64> = processes.iter().map(|&(_, pid, _)| rss_kib(pid)).collect();
        if processes.iter().zip(&now).all(|(&(_, _, before), &after)| after <= before + SLACK_KIB) {
            for (&(name, pid, before), after) in processes.iter().zip(&now) {
                eprintln!("{name} {pid}: {before} KiB before, {after} KiB after");
            }
            return;
        }
        if Instant::now() > deadline {
            let report: Vec<String> = processes.iter().zip(&now).map(|(&(name, pid, before), after)| format!("{name} {pid}: {before} KiB before, {after} KiB after")).collect();
            panic!("memory kept after the bodies went through: {}", report.join("; "));
        }
        sleep(Duration::from_millis(200));
    }
}

#[test]
fn daemon_mode_keeps_no_memory_after_large_bodies() {
    let s = server()
        .workers(1, 25)
        .app("memory.wsgi")
        .config(&format!(
            "WSGIDaemonProcess g threads=4 display-name={DAEMON_NAME}\n\
             WSGIScriptAlias /m @DIR@/memory.wsgi process-group=g application-group=%{{GLOBAL}}\n"
        ))
        .start();
    // Warm-up: the app has made its body, and each client has had a
    // response and sent an upload.
    relay(&s, 4, 4);
    sleep(Duration::from_millis(1500));
    let (child, daemon) = (apache_child(&s), daemon(&s));
    let before = [("Apache child", child, rss_kib(child)), ("daemon", daemon, rss_kib(daemon))];
    relay(&s, 100, 20);
    assert_eq!((apache_child(&s), support::process_alive(daemon)), (child, true));
    assert_back(&before);
}

#[test]
fn embedded_mode_keeps_no_memory_after_large_bodies() {
    let s = server()
        .workers(1, 25)
        .app("memory.wsgi")
        .config("WSGIScriptAlias /m @DIR@/memory.wsgi application-group=%{GLOBAL}\n")
        .start();
    // Here the application runs in the child, and Python's own memory (the
    // 64 KiB bytes each wsgi.input.read() returns, from the malloc arenas of
    // the threads that ran it) settles over the first such traffic, with the
    // C module as with ours: the warm-up is the same traffic, and the second
    // round must add nothing.
    relay(&s, 100, 20);
    sleep(Duration::from_millis(1500));
    let child = apache_child(&s);
    let before = [("Apache child", child, rss_kib(child))];
    relay(&s, 100, 20);
    assert_eq!(apache_child(&s), child);
    assert_back(&before);
}
