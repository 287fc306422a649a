//! The daemon's workers: each takes the next request whose head has arrived
//! (see `reactor`), runs it, and hands its connection back to wait for the
//! next one.

use std::io::Write;
use std::sync::{Arc, Once, OnceLock};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::time::Duration;

use super::connection::DaemonIo;
use super::monitor::{self, Busy, now_micros};
use super::os;
use super::protocol::{self, RequestHead};
use super::reactor::{Conn, Reactor, Ready};
use super::relay::{Held, Relays};
use super::groups::Group;
use super::succession;
use crate::apache::{log, process};
use parking_lot::Mutex;
use crate::python::{self, AsgiRequest, DaemonArrival, Level, Outcome, Ran, RequestInfo};

/// Stops the process taking connections: the workers finish what they have
/// read; then `serve` returns.
struct StopSwitch {
    stopping: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
    pipe: Mutex<std::io::PipeWriter>,
}

static SWITCH: OnceLock<StopSwitch> = OnceLock::new();

/// When this process started serving (µs).
static STARTED: AtomicI64 = AtomicI64::new(0);

/// Stops taking connections (what is queued on the group socket waits for
/// the successor); the running requests finish.
pub fn stop_accepting() {
    if let Some(switch) = SWITCH.get() {
        switch.stopping.store(true, Ordering::Release);
        let _ = switch.pipe.lock().write_all(&[1]);
    }
}

/// Stops taking connections now and asks for the successor at once.
pub(super) fn give_way() {
    succession::give_way();
    stop_accepting();
}

/// Stops the process: with `drain` (the supervisor stopping the group,
/// no successor to come) it first answers what is queued; otherwise it
/// leaves that to the successor, asked for now. Requests still running
/// after shutdown-timeout are cut off.
fn shut_down(name: &str, grace: Duration, drain: bool) -> ! {
    if drain {
        drain_and_stop();
    } else {
        give_way();
    }
    log::server(Level::Info, &format!("mod_wsgi (pid={}): Shutdown requested '{name}'.", std::process::id()));
    std::thread::sleep(grace);
    process::exit_now(0)
}

/// Stops with no successor to come (Apache is stopping, or restarting
/// fully): what is queued on the group socket, requests of Apache children
/// that are about to exit, is served first, then the process stops.
fn drain_and_stop() {
    if let Some(switch) = SWITCH.get()
        && !switch.stopping.load(Ordering::Acquire)
    {
        switch.draining.store(true, Ordering::Release);
    }
    stop_accepting();
}

/// Serves until stopped; returns the exit code.
pub fn serve(group: &Arc<Group>) -> i32 {
    if group.listener.is_none() {
        return 1;
    }
    STARTED.store(now_micros(), Ordering::Relaxed);
    let descriptors = os::raise_descriptor_limit();
    let stopping = Arc::new(AtomicBool::new(false));
    let heartbeat = (!group.config.deadlock_timeout.is_zero()).then(monitor::Heartbeat::start);
    monitor::watch(group, stopping.clone());
    let Ok((stop_rx, stop_tx)) = std::io::pipe() else { return 1 };
    let draining = Arc::new(AtomicBool::new(false));
    let _ = SWITCH.set(StopSwitch { stopping: stopping.clone(), draining: draining.clone(), pipe: Mutex::new(stop_tx) });
    let reactor = match Reactor::new(group.clone(), stopping.clone(), draining, descriptors, stop_rx) {
        Ok(reactor) => reactor,
        Err(e) => {
            log::server(Level::Error, &format!("mod_wsgi (pid={}): Couldn't start daemon process '{}': {e}", std::process::id(), group.config.name));
            return 1;
        }
    };
    {
        let grace = group.config.shutdown_timeout;
        let name = group.config.name.clone();
        std::thread::spawn(move || {
            let mut told = false;
            loop {
                let pid = std::process::id();
                match os::wait_for_stop() {
                    os::StopRequest::Stop => break,
                    // The running requests finish (within graceful-timeout, as for
                    // maximum-requests) once a successor is ready.
                    os::StopRequest::CpuTimeLimit if !std::mem::replace(&mut told, true) => {
                        log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Exceeded CPU time limit, waiting for requests to complete '{name}'."));
                        succession::hand_over();
                    }
                    os::StopRequest::CpuTimeLimit => {}
                    os::StopRequest::Evict if monitor::active_requests() == 0 => {
                        log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Process eviction requested, triggering immediate shutdown '{name}'."));
                        break;
                    }
                    // The successor takes over; the monitor stops this process
                    // once idle or when the wait is over.
                    os::StopRequest::Evict => {
                        if monitor::start_eviction() {
                            log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Process eviction requested, waiting for requests to complete '{name}'."));
                            succession::hand_over();
                        }
                    }
                }
            }
            // A stop signal from outside (an admin, the supervisor gone) or
            // from the monitor: the successor serves what is queued.
            shut_down(&name, grace, false);
        });
    }
    {
        let name = group.config.name.clone();
        let grace = group.config.shutdown_timeout;
        succession::take_release(
            move || {
                log::server(Level::Info, &format!("mod_wsgi (pid={}): Successor of process '{name}' is ready, waiting for requests to complete.", std::process::id()));
                stop_accepting();
            },
            move |name: &str| shut_down(name, grace, true),
            group.config.name.clone(),
        );
    }
    let exchanges = Arc::new(Exchanges { group: group.clone(), reactor, served: AtomicU32::new(0), stopping: stopping.clone() });
    // stack-size=, else what threads get by default (the stack rlimit, as for
    // Apache's own threads), not Rust's smaller default: deep recursion in an
    // application must not fail here when it works in embedded mode.
    let stack = group.config.stack_size.map(|n| n as usize).or_else(os::stack_limit).unwrap_or(8 << 20);
    let workers_done = AtomicBool::new(false);
    let relays = {
        let exchanges = exchanges.clone();
        Arc::new(Relays::new(Box::new(move |conn: Conn, token: u64, outcome: Outcome| exchanges.finish(conn, token, outcome))))
    };
    // ASGI requests still running once the workers are done (streams) end
    // within half of shutdown-timeout, leaving the rest to lifespan shutdown.
    let linger = group.config.shutdown_timeout / 2;
    let relays_started = Once::new();
    std::thread::scope(|scope| {
        scope.spawn(|| exchanges.reactor.accept_and_sweep(&workers_done));
        let (relays, relays_started, workers_done) = (&relays, &relays_started, &workers_done);
        // The relay threads start with the first ASGI request: a daemon
        // serving only WSGI has none.
        let adopt = move |held: Held| {
            relays_started.call_once(|| {
                spawn(scope, stack, "client watcher", group, move || relays.watch_clients(workers_done));
                for _ in 0..group.config.threads.max(1) {
                    spawn(scope, stack, "relay", group, move || relays.run(workers_done, linger));
                }
            });
            relays.adopt(held);
        };
        let workers: Vec<_> = (0..group.config.threads.max(1))
            .filter_map(|_| {
                let exchanges = &exchanges;
                spawn(scope, stack, "worker", group, move || worker(exchanges, &adopt))
            })
            .collect();
        succession::ready();
        for worker in workers {
            let _ = worker.join();
        }
        workers_done.store(true, Ordering::Release);
    });
    drop(heartbeat);
    0
}

/// Starts a thread of the process in `scope`, with `stack` bytes of stack;
/// None (and a log line naming `what`) if it cannot be had.
fn spawn<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    stack: usize,
    what: &str,
    group: &Group,
    f: impl FnOnce() -> T + Send + 'scope,
) -> Option<std::thread::ScopedJoinHandle<'scope, T>> {
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn_scoped(scope, f)
        .map_err(|e| log::server(Level::Error, &format!("mod_wsgi (pid={}): Couldn't create {what} thread in daemon process '{}': {e}", std::process::id(), group.config.name)))
        .ok()
}

fn worker(exchanges: &Exchanges, adopt: &(dyn Fn(Held) + Sync)) {
    let Exchanges { group, reactor, served, stopping } = exchanges;
    // A stopping process serves the requests it has read; what it has not
    // read waits for its successor.
    while let Some(Ready { conn, token, head }) = reactor.next_request() {
        match serve_exchange(group, &conn, head, stopping, served) {
            Exchange::Ended(reusable) => exchanges.after(conn, token, reusable),
            Exchange::Detached(request, busy) => adopt(Held { request, conn, token, busy }),
        }
    }
}

/// The process's exchanges: what ends one, from whichever thread ends it
/// (a worker, a relay, an ASGI event loop's).
struct Exchanges {
    group: Arc<Group>,
    reactor: Reactor,
    /// Requests taken, for maximum-requests.
    served: AtomicU32,
    stopping: Arc<AtomicBool>,
}

impl Exchanges {
    /// Ends the response as `outcome` says, then as `after`.
    fn finish(&self, conn: Conn, token: u64, outcome: Outcome) {
        let reusable = end_exchange(&conn, outcome, &self.stopping);
        self.after(conn, token, reusable);
    }

    /// After an exchange: the reactor counts it done and takes the
    /// connection back if it can carry another.
    fn after(&self, conn: Conn, token: u64, reusable: bool) {
        self.reactor.done();
        let max = self.group.config.maximum_requests;
        if max > 0 && self.served.load(Ordering::Acquire) >= max {
            // maximum-requests: finish what is running, then exit; the
            // successor is forked at once.
            give_way();
        }
        if reusable {
            self.reactor.park(token, conn);
        }
    }
}

/// How a worker leaves an exchange.
enum Exchange {
    /// Over; true when the connection can carry another.
    Ended(bool),
    /// An ASGI request whose task runs on: the relays see it through.
    Detached(Box<AsgiRequest>, Busy),
}

/// Runs one exchange on `conn`.
fn serve_exchange(group: &Arc<Group>, conn: &Conn, head: RequestHead, stopping: &AtomicBool, served: &AtomicU32) -> Exchange {
    let daemon_start = now_micros();
    conn.lock().reset();
    // A request read before this process started carries what the script
    // file was then; it cannot show that the script this process loaded is
    // out of date (the script may have changed again since).
    let reloading = head.script_reloading && head.request_start >= STARTED.load(Ordering::Relaxed);
    if reloading && python::script_is_stale(&head.script_filename, head.script_mtime) {
        // The script changed: a fresh process serves it, as mod_wsgi restarts
        // the daemon. A request without a body is handed back to be sent
        // again; one with a body (already on its way) is run here, on the new
        // code, before the process goes.
        script_changed(group, &head, stopping);
        if !body_follows(conn) {
            let c = &mut *conn.lock();
            let _ = c.body.drain(&mut c.wire);
            let _ = protocol::write_response_restart(&mut c.wire);
            return Exchange::Ended(false);
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
    // Since Apache took the request, less the time its child spent reading
    // the body ahead: a slow upload is not a wait for this process.
    let waited = Duration::from_micros(now_micros().saturating_sub(head.request_start).saturating_sub(head.body_read_ahead).max(0) as u64);
    let queue_timeout = group.config.queue_timeout;
    let outcome = if !queue_timeout.is_zero() && waited > queue_timeout {
        // queue-timeout: the client has probably given up; answer 504 without running the application.
        log::server(Level::Info, &format!("mod_wsgi (pid={}): Queue timeout expired for WSGI daemon process '{}'.", std::process::id(), group.config.name));
        Outcome::TimedOut
    } else {
        let busy = Busy::start(conn);
        if !group.config.startup_timeout.is_zero() {
            monitor::application_wanted(&group.config.name);
        }
        let io = DaemonIo {
            conn: conn.clone(),
            log_prefix: log_prefix(&head),
            header_limit: group.config.header_buffer_size as usize,
            describe: format!("'{}': {}", group.config.name, head.script_filename),
            send_buffer: group.config.send_buffer_size,
        };
        let request = Box::new(Arrived { head, group: group.clone(), daemon_start, reloading });
        match python::run_detachable(request, Box::new(io)) {
            Ran::Done(outcome) => outcome,
            Ran::Asgi(request) => return Exchange::Detached(request, busy),
        }
    };
    Exchange::Ended(end_exchange(conn, outcome, stopping))
}

/// Ends the response as `outcome` says; true when the connection can carry another.
fn end_exchange(conn: &Conn, outcome: Outcome, stopping: &AtomicBool) -> bool {
    let mut c = conn.lock();
    let ended = match outcome {
        Outcome::TimedOut => protocol::write_response_fail(&mut c.wire, 504),
        Outcome::Sent => Ok(()),
        Outcome::Aborted => protocol::write_response_abort(&mut c.wire),
        Outcome::NoApplication | Outcome::Failed if c.started => protocol::write_response_abort(&mut c.wire),
        // 404 in embedded mode, but 500 from a daemon, as in the C module.
        Outcome::NoApplication => protocol::write_response_fail(&mut c.wire, 500),
        Outcome::Failed => protocol::write_response_fail(&mut c.wire, 500),
    };
    // The client sends the whole body before it reads the response, so the
    // part the application left unread is all coming: consume it, or closing
    // with unread data would reset the connection under the response.
    let c = &mut *c;
    let drained = c.body.drain(&mut c.wire).is_ok();
    ended.is_ok() && c.wire.flush().is_ok() && drained && !stopping.load(Ordering::Acquire)
}

/// Whether the request has a body: the frame after the head is not the end marker.
fn body_follows(conn: &Conn) -> bool {
    let mut c = conn.lock();
    match c.wire.fill_buf() {
        Ok(buf) => buf.first() != Some(&(protocol::FrameKind::BodyEnd as u8)),
        Err(_) => true,
    }
}

/// The request's script changed: this process stops (once its requests are
/// done) so that a fresh one loads the new code.
fn script_changed(group: &Group, head: &RequestHead, stopping: &AtomicBool) {
    if !stopping.load(Ordering::Acquire) {
        let (pid, name) = (std::process::id(), &group.config.name);
        log::server(Level::Info, &format!("{}mod_wsgi (pid={pid}): Force restart of process '{name}'.", log_prefix(head)));
        log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Shutdown requested '{name}'."));
    }
    give_way();
}

/// `[remote ip:port] ` for the request's log lines.
fn log_prefix(head: &RequestHead) -> String {
    let var = |name: &[u8]| head.environ.get(name).map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
    format!("[remote {}:{}] ", var(b"REMOTE_ADDR"), var(b"REMOTE_PORT"))
}

/// A request as it reached this process.
struct Arrived {
    head: RequestHead,
    group: Arc<Group>,
    /// When this process took it (µs).
    daemon_start: i64,
    /// Whether its script is to be reloaded when changed.
    reloading: bool,
}

impl python::OwnedRequest for Arrived {
    fn info(&self) -> RequestInfo<'_> {
        let mut info = request_info(&self.group, &self.head, self.daemon_start);
        info.script_reloading = self.reloading;
        info
    }

    fn script_filename(&self) -> &str {
        &self.head.script_filename
    }
}

fn request_info<'a>(group: &'a Group, head: &'a RequestHead, daemon_start: i64) -> RequestInfo<'a> {
    RequestInfo {
        cgi: head.environ.iter().collect(),
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
        interface: crate::config::Interface::from_code(head.interface).unwrap_or_default(),
        headers: head.headers.iter().collect(),
        request_timeout: group.config.request_timeout,
    }
}
