//! The daemon's request loop. Apache's children keep their connections open
//! between requests, so an idle connection must not hold a worker thread:
//! the workers take turns as the one that waits (leader/follower) for a new
//! connection or a request on an idle one, and the waiter that sees a request
//! serves it itself after handing the waiting over to another worker.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::connection::{Connection, DaemonIo};
use super::protocol::{self, BodyCursor, RequestHead};
use super::monitor::{self, Busy, now_micros};
use super::supervisor::Group;
use super::os;
use crate::apache::log;
use crate::python::{self, Level, Outcome, RequestInfo};

type Conn = Arc<Mutex<Connection>>;

/// The connections waiting for their next request, and whether a worker is
/// currently the waiter.
struct Idle {
    state: Mutex<IdleState>,
    turn: Condvar,
    /// Written when a connection goes back to the idle set, so the waiter
    /// includes it in what it waits on.
    wake_tx: Mutex<std::io::PipeWriter>,
    wake_rx: Mutex<std::io::PipeReader>,
}

#[derive(Default)]
struct IdleState {
    connections: Vec<Conn>,
    waiter: bool,
}

/// Serves until a stop signal or maximum-requests; returns the exit code.
pub fn serve(group: &Arc<Group>) -> i32 {
    let stopping = Arc::new(AtomicBool::new(false));
    monitor::watch(group, stopping.clone());
    let Ok((wake_rx, wake_tx)) = std::io::pipe() else { return 1 };
    if let Ok(mut wake) = wake_tx.try_clone() {
        let stopping = stopping.clone();
        let grace = group.config.shutdown_timeout;
        std::thread::spawn(move || {
            os::wait_for_stop();
            stopping.store(true, Ordering::Release);
            // Wake the waiter so the process stops taking requests now.
            let _ = wake.write_all(&[1]);
            // Requests still running after shutdown-timeout are cut off.
            std::thread::sleep(grace);
            os::exit_now(0);
        });
    }
    let idle = Idle { state: Mutex::new(IdleState::default()), turn: Condvar::new(), wake_tx: Mutex::new(wake_tx), wake_rx: Mutex::new(wake_rx) };
    let served = AtomicU32::new(0);
    std::thread::scope(|scope| {
        for _ in 0..group.config.threads.max(1) {
            scope.spawn(|| worker(group, &idle, &stopping, &served));
        }
    });
    0
}

fn worker(group: &Group, idle: &Idle, stopping: &Arc<AtomicBool>, served: &AtomicU32) {
    let max = group.config.maximum_requests;
    loop {
        if max > 0 && served.load(Ordering::Acquire) >= max {
            // maximum-requests: finish what is running, then exit; the parent forks a fresh process.
            stopping.store(true, Ordering::Release);
        }
        if stopping.load(Ordering::Acquire) {
            idle.turn.notify_all();
            return;
        }
        let Some(conn) = wait_for_request(group, idle, stopping) else { continue };
        if serve_exchange(group, &conn, stopping, served) {
            let mut state = idle.state.lock();
            state.connections.push(conn);
            // A waiter must add the connection to what it waits on; with
            // none, this worker becomes the waiter next and sees it anyway.
            if state.waiter {
                drop(state);
                let _ = idle.wake_tx.lock().write_all(&[1]);
            }
        }
    }
}

/// Becomes the waiter (or waits its turn), then waits for a request; returns
/// the connection it arrived on, having passed the waiting on.
fn wait_for_request(group: &Group, idle: &Idle, stopping: &Arc<AtomicBool>) -> Option<Conn> {
    let mut state = idle.state.lock();
    while state.waiter {
        idle.turn.wait_for(&mut state, Duration::from_millis(250));
        if stopping.load(Ordering::Acquire) {
            return None;
        }
    }
    state.waiter = true;
    drop(state);
    let found = wait_as_waiter(group, idle, stopping);
    idle.state.lock().waiter = false;
    idle.turn.notify_one();
    found
}

fn wait_as_waiter(group: &Group, idle: &Idle, stopping: &Arc<AtomicBool>) -> Option<Conn> {
    let listener = group.listener.as_ref()?;
    let listener_fd = os::raw_fd(listener);
    let wake_fd = os::raw_fd(&*idle.wake_rx.lock());
    loop {
        let waiting: Vec<Conn> = idle.state.lock().connections.clone();
        let mut fds = vec![listener_fd, wake_fd];
        fds.extend(waiting.iter().map(|c| os::raw_fd(c.lock().reader.get_ref())));
        let ready = match os::poll_readable(&fds, 250) {
            Ok(ready) => ready,
            Err(e) => {
                log::server(Level::Error, &format!("mod_wsgi (pid={}): poll failed: {e}", std::process::id()));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if stopping.load(Ordering::Acquire) {
            return None;
        }
        if ready[1] {
            let mut sink = [0u8; 64];
            let _ = std::io::Read::read(&mut *idle.wake_rx.lock(), &mut sink);
        }
        // New connections first: there are at most as many as Apache has
        // threads, while idle connections with a request are always there
        // under load and would otherwise starve them.
        if ready[0] {
            match listener.accept() {
                Ok((stream, _)) => {
                    if let Some(conn) = Connection::new(stream, stopping.clone()) {
                        return Some(Arc::new(Mutex::new(conn)));
                    }
                }
                // Another process of the group took it, or the receive timeout passed.
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => {
                    log::server(Level::Error, &format!("mod_wsgi (pid={}): accept on '{}' failed: {e}", std::process::id(), group.socket));
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        // A request (or a close) on an idle connection.
        if let Some(i) = (0..waiting.len()).find(|&i| ready[2 + i]) {
            let conn = waiting[i].clone();
            idle.state.lock().connections.retain(|c| !Arc::ptr_eq(c, &conn));
            return Some(conn);
        }
    }
}

/// Runs one exchange on `conn`; true when the connection can carry another.
fn serve_exchange(group: &Group, conn: &Arc<Mutex<Connection>>, stopping: &AtomicBool, served: &AtomicU32) -> bool {
    let head = match protocol::read_request_head(&mut conn.lock().reader) {
        Ok(Some(head)) => head,
        Ok(None) => return false,
        // The Apache child went away between requests.
        Err(protocol::ProtocolError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => return false,
        Err(e) => {
            log::server(Level::Error, &format!("mod_wsgi (pid={}): bad request from Apache child: {e}", std::process::id()));
            return false;
        }
    };
    if head.script_reloading && python::script_is_stale(&head.script_filename, head.script_mtime) && !body_follows(conn) {
        // The script changed: a fresh process serves it, as mod_wsgi restarts
        // the daemon. A request without a body is handed back to be sent
        // again; one with a body (already on its way) is run here, on the new
        // code, before the process goes.
        log::server(Level::Info, &format!("mod_wsgi (pid={}): Restarting daemon process '{}': '{}' changed.", std::process::id(), group.config.name, head.script_filename));
        stopping.store(true, Ordering::Release);
        let c = &mut *conn.lock();
        c.body = BodyCursor::new();
        let _ = c.body.drain(&mut c.reader);
        let _ = protocol::write_response_restart(&mut c.writer);
        return false;
    }
    if head.script_reloading && python::script_is_stale(&head.script_filename, head.script_mtime) {
        stopping.store(true, Ordering::Release);
    }
    let max = group.config.maximum_requests;
    if served.fetch_add(1, Ordering::AcqRel) + 1 >= max && max > 0 {
        // The last request of this process (maximum-requests): its response
        // tells the client not to reuse the connection.
        stopping.store(true, Ordering::Release);
    }
    {
        let mut c = conn.lock();
        c.body = BodyCursor::new();
        c.started = false;
    }
    let waited = Duration::from_micros(now_micros().saturating_sub(head.request_start).max(0) as u64);
    let queue_timeout = group.config.queue_timeout;
    let outcome = if !queue_timeout.is_zero() && waited > queue_timeout {
        // queue-timeout: the client has probably given up; answer 504 without running the application.
        log::server(Level::Info, &format!("mod_wsgi (pid={}): Queue timeout expired for WSGI daemon process '{}'.", std::process::id(), group.config.name));
        Outcome::TimedOut
    } else {
        let _busy = Busy::start(conn);
        python::run(&request_info(group, &head), Box::new(DaemonIo(conn.clone())))
    };
    let mut c = conn.lock();
    let ended = match outcome {
        Outcome::TimedOut => protocol::write_response_fail(&mut c.writer, 504),
        Outcome::Sent => Ok(()),
        Outcome::Aborted => protocol::write_response_abort(&mut c.writer),
        Outcome::NoApplication | Outcome::Failed if c.started => protocol::write_response_abort(&mut c.writer),
        Outcome::NoApplication => protocol::write_response_fail(&mut c.writer, 404),
        Outcome::Failed => protocol::write_response_fail(&mut c.writer, 500),
    };
    // The client sends the whole body before it reads the response, so the
    // part the application left unread is all coming: consume it, or closing
    // with unread data would reset the connection under the response.
    let c = &mut *c;
    let drained = c.body.drain(&mut c.reader).is_ok();
    ended.is_ok() && c.writer.flush().is_ok() && drained && !stopping.load(Ordering::Acquire)
}

/// Whether the request has a body: the frame after the head is not the end marker.
fn body_follows(conn: &Conn) -> bool {
    use std::io::BufRead;
    let mut c = conn.lock();
    match c.reader.fill_buf() {
        Ok(buf) => buf.first() != Some(&(protocol::FrameKind::BodyEnd as u8)),
        Err(_) => true,
    }
}

fn request_info<'a>(group: &'a Group, head: &'a RequestHead) -> RequestInfo<'a> {
    RequestInfo {
        cgi: head.environ.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect(),
        script_filename: &head.script_filename,
        script_mtime: head.script_mtime,
        script_reloading: head.script_reloading,
        callable_object: &head.callable_object,
        process_group: &group.config.name,
        application_group: &head.application_group,
        url_scheme: if head.url_scheme == "https" { "https" } else { "http" },
        multithread: group.config.threads > 1,
        multiprocess: group.config.multiprocess,
        server_version: crate::apache::process::server_version(),
        listener_host: &head.listener_host,
        listener_port: head.listener_port,
        request_id: head.request_id.clone(),
        request_start: head.request_start,
        enable_sendfile: head.enable_sendfile,
        ignore_activity: head.ignore_activity,
    }
}
