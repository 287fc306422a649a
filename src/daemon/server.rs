//! The daemon's request loop. Apache's children keep their connections open
//! between requests, so an idle connection must not hold a worker thread:
//! every worker waits on one epoll set holding the group socket and the idle
//! connections, each readiness goes to one worker, and that worker serves
//! the request then puts the connection back in the set.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::connection::{Connection, DaemonIo};
use super::protocol::{self, BodyCursor, RequestHead};
use super::monitor::{self, Busy, now_micros};
use super::supervisor::Group;
use super::os;
use crate::apache::log;
use crate::python::{self, DaemonArrival, Level, Outcome, RequestInfo};

type Conn = Arc<Mutex<Connection>>;

/// Epoll tokens of the group socket and the stop pipe; connections count up from FIRST_CONNECTION.
const LISTENER: u64 = 0;
const STOP: u64 = 1;
const FIRST_CONNECTION: u64 = 2;

/// What the workers wait on, and the idle connections by token.
struct Waiting {
    epoll: os::Epoll,
    connections: Mutex<HashMap<u64, Conn>>,
    next_token: AtomicU64,
}

/// Serves until a stop signal or maximum-requests; returns the exit code.
pub fn serve(group: &Arc<Group>) -> i32 {
    let Some(listener) = group.listener.as_ref() else { return 1 };
    let stopping = Arc::new(AtomicBool::new(false));
    let heartbeat = (!group.config.deadlock_timeout.is_zero()).then(monitor::Heartbeat::start);
    monitor::watch(group, stopping.clone());
    let (Ok(epoll), Ok((stop_rx, stop_tx))) = (os::Epoll::new(), std::io::pipe()) else { return 1 };
    // The stop pipe is never read: once written it stays readable and wakes
    // every worker, each of which then sees `stopping`.
    if epoll.add(os::raw_fd(listener), LISTENER, false).is_err() || epoll.add(os::raw_fd(&stop_rx), STOP, true).is_err() {
        return 1;
    }
    {
        let stopping = stopping.clone();
        let mut stop_tx = stop_tx;
        let grace = group.config.shutdown_timeout;
        let name = group.config.name.clone();
        std::thread::spawn(move || {
            let mut told = false;
            loop {
                let pid = std::process::id();
                match os::wait_for_stop() {
                    os::StopRequest::Stop => break,
                    // The running requests finish (within graceful-timeout, as for
                    // maximum-requests), then the process exits and is replaced.
                    os::StopRequest::CpuTimeLimit if !std::mem::replace(&mut told, true) => {
                        log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Exceeded CPU time limit, waiting for requests to complete '{name}'."));
                        stopping.store(true, Ordering::Release);
                        let _ = stop_tx.write_all(&[1]);
                    }
                    os::StopRequest::CpuTimeLimit => {}
                    os::StopRequest::Evict if monitor::active_requests() == 0 => {
                        log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Process eviction requested, triggering immediate shutdown '{name}'."));
                        break;
                    }
                    // The monitor stops the process once it is idle or the wait is over.
                    os::StopRequest::Evict => {
                        if monitor::start_eviction() {
                            log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Process eviction requested, waiting for requests to complete '{name}'."));
                        }
                    }
                }
            }
            log::server(Level::Info, &format!("mod_wsgi (pid={}): Shutdown requested '{name}'.", std::process::id()));
            stopping.store(true, Ordering::Release);
            let _ = stop_tx.write_all(&[1]);
            // Requests still running after shutdown-timeout are cut off.
            std::thread::sleep(grace);
            os::exit_now(0);
        });
    }
    let waiting = Waiting { epoll, connections: Mutex::new(HashMap::new()), next_token: AtomicU64::new(FIRST_CONNECTION) };
    let served = AtomicU32::new(0);
    // stack-size=, else what threads get by default (the stack rlimit, as for
    // Apache's own threads), not Rust's smaller default: deep recursion in an
    // application must not fail here when it works in embedded mode.
    let stack = group.config.stack_size.map(|n| n as usize).or_else(os::stack_limit).unwrap_or(8 << 20);
    std::thread::scope(|scope| {
        for _ in 0..group.config.threads.max(1) {
            let spawned = std::thread::Builder::new().stack_size(stack).spawn_scoped(scope, || worker(group, &waiting, &stopping, &served));
            if let Err(e) = spawned {
                log::server(Level::Error, &format!("mod_wsgi (pid={}): Couldn't create worker thread in daemon process '{}': {e}", std::process::id(), group.config.name));
            }
        }
    });
    drop(stop_rx);
    drop(heartbeat);
    0
}

fn worker(group: &Group, waiting: &Waiting, stopping: &Arc<AtomicBool>, served: &AtomicU32) {
    let max = group.config.maximum_requests;
    loop {
        if max > 0 && served.load(Ordering::Acquire) >= max {
            // maximum-requests: finish what is running, then exit; the parent forks a fresh process.
            stopping.store(true, Ordering::Release);
        }
        if stopping.load(Ordering::Acquire) {
            return;
        }
        // A short timeout, so a worker notices maximum-requests reached elsewhere.
        let token = match waiting.epoll.wait(250) {
            Ok(Some(token)) => token,
            Ok(None) => continue,
            Err(e) => {
                log::server(Level::Error, &format!("mod_wsgi (pid={}): epoll_wait failed: {e}", std::process::id()));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if stopping.load(Ordering::Acquire) {
            // A stopping process takes no more connections; what is still
            // queued on the group socket waits for its successor.
            return;
        }
        match token {
            STOP => continue,
            LISTENER => {
                if let Some(conn) = accept(group, waiting, stopping) {
                    let token = waiting.next_token.fetch_add(1, Ordering::Relaxed);
                    serve_connection(group, waiting, conn, token, true, stopping, served);
                }
            }
            token => {
                let conn = waiting.connections.lock().get(&token).cloned();
                if let Some(conn) = conn {
                    serve_connection(group, waiting, conn, token, false, stopping, served);
                }
            }
        }
    }
}

/// Takes a new connection from the group socket, if this process gets it.
fn accept(group: &Group, waiting: &Waiting, stopping: &Arc<AtomicBool>) -> Option<Conn> {
    let listener = group.listener.as_ref()?;
    let accepted = listener.accept();
    // Watch for the next connection only now: one accept() per readiness.
    let _ = waiting.epoll.rearm(os::raw_fd(listener), LISTENER);
    match accepted {
        Ok((stream, _)) => {
            // Accepted sockets do not inherit the group socket's buffer sizes.
            let _ = os::set_buffer_sizes(os::raw_fd(&stream), super::supervisor::buffer_sizes(&group.config));
            Connection::new(stream, stopping.clone()).map(|c| Arc::new(Mutex::new(c)))
        }
        // Another worker or process of the group took it.
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
        Err(e) => {
            log::server(Level::Error, &format!("mod_wsgi (pid={}): accept on '{}' failed: {e}", std::process::id(), group.socket));
            std::thread::sleep(Duration::from_millis(100));
            None
        }
    }
}

/// Serves the requests waiting on `conn`, then leaves it watched for the
/// next one (`new`: for the first time), or drops it when it has ended.
fn serve_connection(group: &Group, waiting: &Waiting, conn: Conn, token: u64, new: bool, stopping: &AtomicBool, served: &AtomicU32) {
    let fd = os::raw_fd(conn.lock().reader.get_ref());
    loop {
        if !serve_exchange(group, &conn, stopping, served) {
            if !new {
                let _ = waiting.epoll.remove(fd);
                waiting.connections.lock().remove(&token);
            }
            return;
        }
        // A request already read into the buffer would never wake the epoll set.
        if conn.lock().reader.buffer().is_empty() {
            break;
        }
    }
    let watched = if new {
        waiting.connections.lock().insert(token, conn);
        waiting.epoll.add(fd, token, false)
    } else {
        waiting.epoll.rearm(fd, token)
    };
    if watched.is_err() {
        waiting.connections.lock().remove(&token);
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
    let daemon_start = now_micros();
    if head.script_reloading && python::script_is_stale(&head.script_filename, head.script_mtime) {
        // The script changed: a fresh process serves it, as mod_wsgi restarts
        // the daemon. A request without a body is handed back to be sent
        // again; one with a body (already on its way) is run here, on the new
        // code, before the process goes.
        script_changed(group, &head, stopping);
        if !body_follows(conn) {
            let c = &mut *conn.lock();
            c.body = BodyCursor::new();
            let _ = c.body.drain(&mut c.reader);
            let _ = protocol::write_response_restart(&mut c.writer);
            return false;
        }
    }
    let max = group.config.maximum_requests;
    let count = served.fetch_add(1, Ordering::AcqRel) + 1;
    if count == max && max > 0 {
        let (pid, name) = (std::process::id(), &group.config.name);
        log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Maximum requests reached, triggering immediate shutdown '{name}'."));
        log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Shutdown requested '{name}'."));
    }
    if count >= max && max > 0 {
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
        if !group.config.startup_timeout.is_zero() {
            monitor::application_wanted(&group.config.name);
        }
        python::run(&request_info(group, &head, daemon_start), Box::new(DaemonIo { conn: conn.clone(), log_prefix: log_prefix(&head) }))
    };
    let mut c = conn.lock();
    let ended = match outcome {
        Outcome::TimedOut => protocol::write_response_fail(&mut c.writer, 504),
        Outcome::Sent => Ok(()),
        Outcome::Aborted => protocol::write_response_abort(&mut c.writer),
        Outcome::NoApplication | Outcome::Failed if c.started => protocol::write_response_abort(&mut c.writer),
        // 404 in embedded mode, but 500 from a daemon, as in the C module.
        Outcome::NoApplication => protocol::write_response_fail(&mut c.writer, 500),
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

/// The request's script changed: this process stops (once its requests are
/// done) so that a fresh one loads the new code.
fn script_changed(group: &Group, head: &RequestHead, stopping: &AtomicBool) {
    if !stopping.swap(true, Ordering::AcqRel) {
        let (pid, name) = (std::process::id(), &group.config.name);
        log::server(Level::Info, &format!("{}mod_wsgi (pid={pid}): Force restart of process '{name}'.", log_prefix(head)));
        log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Shutdown requested '{name}'."));
    }
}

/// `[remote ip:port] ` for the request's log lines.
fn log_prefix(head: &RequestHead) -> String {
    let var = |name: &[u8]| head.environ.iter().find(|(k, _)| k == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
    format!("[remote {}:{}] ", var(b"REMOTE_ADDR"), var(b"REMOTE_PORT"))
}

fn request_info<'a>(group: &'a Group, head: &'a RequestHead, daemon_start: i64) -> RequestInfo<'a> {
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
        request_handler: &head.request_handler,
        handler_script: &head.handler_script,
        // A daemon has no request_rec to hand out (mod_wsgi passes none either).
        apache_request: None,
        daemon: Some(DaemonArrival { queue_start: head.queue_start, daemon_start, connects: head.daemon_connects, restarts: head.daemon_restarts }),
    }
}
