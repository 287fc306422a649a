//! WSGIRestrictSignal: by default `signal.signal()` is ignored with a warning and the
//! caller's stack in the error log, and returns the handler it was given, in embedded and
//! daemon mode alike; Off leaves Python's own function, which refuses request threads.

mod support;

use support::server;

const SCRIPT_LINE: &str = "registered_at_import = signal.signal(signal.SIGTERM, on_term)";
const REQUEST_LINE: &str = "result = signal.signal(signal.SIGUSR1, on_term) is on_term";

#[test]
fn signal_registration_is_ignored_with_a_warning() {
    let s = server()
        .app("signal.wsgi")
        .config(
            "WSGIDaemonProcess sig threads=2\n\
             WSGIScriptAlias /embedded @DIR@/signal.wsgi\n\
             WSGIScriptAlias /daemon @DIR@/signal.wsgi process-group=sig\n",
        )
        .start();
    for path in ["/embedded", "/daemon"] {
        let r = s.get(path);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "import=True\nrequest=True\n"),
            "{path}"
        );
    }
    // SIGTERM at import, SIGUSR1 in the request.
    for signum in [15, 10] {
        s.expect_log(&format!("): Callback registration for signal {signum} ignored."));
    }
    // Each warning is followed by the stack that made the call.
    s.expect_log(REQUEST_LINE);
    let log = s.error_log();
    let lines: Vec<&str> = log.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.contains("Callback registration for signal") {
            assert!(line.contains("[wsgi:warn]"), "not a warning: {line}");
            assert!(
                lines[i + 1].contains("File \"") && lines[i + 1].contains("signal.wsgi\", line "),
                "no stack after: {line}\n{log}"
            );
        }
    }
    assert!(log.contains(SCRIPT_LINE), "{log}");
    assert_eq!(
        log.matches("Callback registration for signal").count(),
        4,
        "one per call, two per mode: {log}"
    );
}

#[test]
fn restrict_signal_off_leaves_pythons_signal_function() {
    let s = server()
        .app("signal.wsgi")
        .config(
            "WSGIRestrictSignal Off\n\
             WSGIScriptAlias /embedded @DIR@/signal.wsgi\n",
        )
        .start();
    // Python allows signal.signal() only in the main thread; the script loads in a
    // request thread, so its import-time call fails the request.
    let r = s.get("/embedded");
    assert_eq!(r.status, 500);
    s.expect_log("ValueError: signal only works in main thread of the main interpreter");
    assert!(!s.error_log().contains("Callback registration"));
}

