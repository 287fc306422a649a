//! The `mod_wsgi` module's request and process API, in embedded and daemon
//! mode: request_data(), active_requests, subscribe_events() with the
//! request_started / response_started / request_exception / request_finished
//! events, subscribe_shutdown() and process_stopping, process_metrics().

mod support;

use std::time::Duration;
use support::{Server, server};

fn events_server() -> Server {
    server()
        .app("events.wsgi")
        .config(
            "WSGIDaemonProcess g threads=2\n\
             WSGIScriptAlias /d @DIR@/events.wsgi process-group=g\n\
             WSGIScriptAlias /e @DIR@/events.wsgi\n",
        )
        .start()
}

/// Every line the app recorded, from all its processes.
fn recorded(s: &Server) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(s.var_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("events-") {
            all += &std::fs::read_to_string(&path).unwrap();
        }
    }
    all
}

fn forget_recorded(s: &Server) {
    for entry in std::fs::read_dir(s.var_dir()).unwrap() {
        let _ = std::fs::remove_file(entry.unwrap().path());
    }
}

const STARTED_KEYS: &str = "application_object,application_start,daemon_connects,daemon_restarts,daemon_start,queue_start,request_data,request_environ,request_id,request_start,thread_id";
const FINISHED_KEYS: &str = "application_finish,application_time,cpu_system_time,cpu_user_time,input_length,input_reads,input_time,output_length,output_time,output_writes,request_data,request_id";

#[test]
fn subscribers_see_each_request_from_start_to_finish() {
    let s = events_server();
    for mount in ["/d", "/e"] {
        forget_recorded(&s);
        let r = s.request("POST", &format!("{mount}/"), &[], b"12345");
        assert_eq!((r.status, r.text()), (200, "ok".to_string()), "{mount}");
        let log = recorded(&s);
        // A daemon tells how the request reached it; embedded mode gives zeros.
        let arrival = if mount == "/d" { "connects=1 restarts=0 queued=True" } else { "connects=0 restarts=0 queued=False" };
        assert!(log.contains(&format!("EVENT request_started {STARTED_KEYS} same_data=True active=True {arrival}")), "{mount}: {log}");
        assert!(
            log.contains("EVENT response_started exception_info,request_data,request_id,response_headers,response_status status='200 OK' headers=[('Content-Type', 'text/plain')]"),
            "{mount}: {log}"
        );
        assert!(log.contains(&format!("EVENT request_finished {FINISHED_KEYS} output_length=2 input_length=5 seen=True")), "{mount}: {log}");

        // An exception is published before the request finishes.
        assert_eq!(s.get(&format!("{mount}/raise")).status, 500);
        let log = recorded(&s);
        let exception = log.find("EVENT request_exception exception_info,request_data,request_id exception=ValueError");
        assert!(exception.is_some_and(|at| log[at..].contains("EVENT request_finished")), "{mount}: {log}");

        // A subscriber may swap the application for a wrapper.
        assert_eq!(s.get(&format!("{mount}/wrap")).text(), "wrapped:ok", "{mount}");
    }
}

#[test]
fn process_metrics_and_request_data_describe_the_process_and_request() {
    let s = events_server();
    for mount in ["/d", "/e"] {
        let first = s.get_kv(&format!("{mount}/metrics"));
        assert_eq!(
            first["keys"],
            "active_requests,cpu_system_time,cpu_user_time,current_time,memory_max_rss,memory_rss,pid,request_busy_time,request_count,request_threads,restart_time,running_time,threads",
            "{mount}"
        );
        assert_eq!(first["file_wrapper"], "True");
        assert_eq!(first["request_data"], "{'seen': True}");
        let later = s.get_kv(&format!("{mount}/metrics"));
        let count = |kv: &std::collections::BTreeMap<String, String>| kv["request_count"].parse::<u64>().unwrap();
        assert!(count(&later) > count(&first) || mount == "/e", "{mount}: {first:?} {later:?}");
    }
    // Daemon processes gather no scoreboard figures (WSGIServerMetrics).
    assert_eq!(s.get_kv("/d/metrics")["server_metrics"], "None");
}

#[test]
fn shutdown_subscribers_hear_process_stopping() {
    let mut s = events_server();
    assert_eq!(s.get("/d/").status, 200);
    assert_eq!(s.get("/e/").status, 200);
    assert!(s.terminate(Duration::from_secs(20)), "{}", s.error_log());
    let log = recorded(&s);
    // Each process that loaded the app (its daemon and an Apache child) tells
    // both its event and its shutdown subscribers.
    assert!(log.matches("EVENT process_stopping shutdown_reason").count() >= 2, "{log}");
    assert!(log.matches("SHUTDOWN process_stopping shutdown_reason").count() >= 2, "{log}");
}

#[test]
fn a_failing_subscriber_is_logged_and_the_request_goes_on() {
    let app = b"import mod_wsgi\n\
def handler(name, **event):\n    raise KeyError('marker-' + name)\n\
mod_wsgi.subscribe_events(handler)\n\
def application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'ok']\n";
    let mut s = server()
        .file("failing.wsgi", app)
        .config(
            "WSGIDaemonProcess g threads=1\n\
             WSGIScriptAlias /d @DIR@/failing.wsgi process-group=g\n\
             WSGIScriptAlias /e @DIR@/failing.wsgi\n",
        )
        .start();
    assert_eq!(s.get("/d").text(), "ok");
    assert_eq!(s.get("/e").text(), "ok");
    for event in ["request_started", "response_started", "request_finished"] {
        s.expect_log(&format!("KeyError: 'marker-{event}'"));
    }
    s.expect_log("): Exception occurred within event callback.");
    assert!(s.terminate(Duration::from_secs(20)), "{}", s.error_log());
    s.expect_log("KeyError: 'marker-process_stopping'");
}
