//! The daemon's time limits. request-timeout: a process whose oldest request
//! has run too long is stuck (or overloaded); it tells the waiting clients 504
//! and exits. inactivity-timeout: a process with no request for that long
//! exits (freeing its memory). deadlock-timeout: a process whose GIL nobody
//! could take for that long (C code holding it forever) exits. startup-timeout:
//! a process whose application has not loaded that long after the first try
//! stops. An evicted process (SIGUSR1) stops once idle. Either way the Apache
//! parent starts a fresh one. An ASGI application whose lifespan startup
//! failed: the process answers 500 for a back-off that grows with each
//! generation in a row that failed so, then gives way to a fresh one.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use super::connection::Connection;
use super::groups::Group;
use super::{os, protocol, server, succession};
use crate::apache::log;
use crate::python::{self, Level};

pub fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// The requests running now (start time in µs, connection), for request-timeout.
static RUNNING: Mutex<Vec<(i64, Weak<Mutex<Connection>>)>> = Mutex::new(Vec::new());

/// Marks a request as running for as long as it lives.
pub struct Busy(Arc<Mutex<Connection>>);

/// How many requests are running now.
pub fn active_requests() -> usize {
    RUNNING.lock().len()
}

/// When SIGUSR1 asked this process to go once idle (µs; 0: not asked).
static EVICTING_SINCE: AtomicI64 = AtomicI64::new(0);

/// Starts waiting for the process to be idle; false when already waiting.
pub fn start_eviction() -> bool {
    EVICTING_SINCE.compare_exchange(0, now_micros(), Ordering::AcqRel, Ordering::Acquire).is_ok()
}

/// startup-timeout=: when a request first set out to load an application (µs; 0: not yet).
static STARTUP_SINCE: AtomicI64 = AtomicI64::new(0);

/// A request is about to load its application: until one has loaded, the
/// startup timer runs from the first such request.
pub fn application_wanted(name: &str) {
    if STARTUP_SINCE.load(Ordering::Relaxed) == 0
        && !python::any_script_loaded()
        && STARTUP_SINCE.compare_exchange(0, now_micros(), Ordering::AcqRel, Ordering::Acquire).is_ok()
    {
        log::server(Level::Info, &format!("mod_wsgi (pid={}): Application startup timer triggered '{name}'.", std::process::id()));
    }
}

/// How long a process whose lifespan startup failed serves on (answering
/// 500) before it gives way: 1 s after the first failed generation in a
/// row, doubling with each further one, at most 60 s. A dependency briefly
/// down (a database still starting) is tried again soon; an application
/// that cannot start costs a fresh process (its interpreter and imports, the
/// expensive part) at most once a minute. Not configurable: the growth
/// bounds the cost whatever the base.
fn startup_backoff(failed_before: u32) -> Duration {
    const FIRST: Duration = Duration::from_secs(1);
    const LONGEST: Duration = Duration::from_secs(60);
    FIRST.saturating_mul(1 << failed_before.min(6)).min(LONGEST)
}

/// When the last request started or ended (µs), for inactivity-timeout.
static LAST_ACTIVITY: AtomicI64 = AtomicI64::new(0);
/// When the heartbeat thread last held the GIL (µs), for deadlock-timeout.
static LAST_GIL: AtomicI64 = AtomicI64::new(0);

/// Takes the GIL once a second to show Python is not deadlocked; stopped and
/// joined when dropped, which must happen before Python is finalised.
pub struct Heartbeat {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    pub fn start() -> Heartbeat {
        LAST_GIL.store(now_micros(), Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Acquire) {
                for _ in 0..10 {
                    std::thread::sleep(Duration::from_millis(100));
                    if stopped.load(Ordering::Acquire) {
                        return;
                    }
                }
                python::interpreter::with_gil(|_| LAST_GIL.store(now_micros(), Ordering::Relaxed));
            }
        });
        Heartbeat { stop, thread: Some(thread) }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Busy {
    pub fn start(conn: &Arc<Mutex<Connection>>) -> Busy {
        let now = now_micros();
        LAST_ACTIVITY.store(now, Ordering::Relaxed);
        RUNNING.lock().push((now, Arc::downgrade(conn)));
        Busy(conn.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        RUNNING.lock().retain(|(_, c)| !std::ptr::eq(c.as_ptr(), Arc::as_ptr(&self.0)));
        LAST_ACTIVITY.store(now_micros(), Ordering::Relaxed);
    }
}

/// Takes the request on `conn` out of request-timeout's watch (it keeps it
/// from counting as idle): it ends itself at its deadline.
pub fn untimed(conn: &Arc<Mutex<Connection>>) {
    for (since, c) in RUNNING.lock().iter_mut() {
        if std::ptr::eq(c.as_ptr(), Arc::as_ptr(conn)) {
            *since = i64::MAX;
        }
    }
}

/// Logs where the Python threads are, for finding what held up a request;
/// gives up after a second if the GIL cannot be had (then it is deadlocked).
fn log_thread_stacks(pid: u32) {
    log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Dumping stack trace for active Python threads."));
    let (sender, receiver) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = sender.send(python::interpreter::thread_stacks());
    });
    if let Ok(lines) = receiver.recv_timeout(Duration::from_secs(1)) {
        for line in lines {
            log::server(Level::Info, &format!("mod_wsgi (pid={pid}): {line}"));
        }
    }
}

/// Watches the process's time limits: request-timeout ends it at once (after
/// logging where its threads are); inactivity-timeout and restart-interval
/// start a graceful stop; a graceful stop
/// (also from maximum-requests or a changed script) that has not finished
/// within graceful-timeout plus shutdown-timeout is cut short. An eviction
/// (SIGUSR1) becomes a stop once no request runs, or when eviction-timeout
/// (else graceful-timeout; neither: no limit) has passed.
pub fn watch(group: &Arc<Group>, stopping: Arc<AtomicBool>) {
    let config = &group.config;
    let (limit, idle_limit, interval, deadlock) = (config.request_timeout, config.inactivity_timeout, config.restart_interval, config.deadlock_timeout);
    let grace = config.graceful_timeout + config.shutdown_timeout;
    let startup_limit = config.startup_timeout;
    let eviction_limit = if config.eviction_timeout.is_zero() { config.graceful_timeout } else { config.eviction_timeout };
    let started = now_micros();
    let group = group.clone();
    std::thread::spawn(move || {
        let name = &group.config.name;
        let pid = std::process::id();
        let mut stopping_since = None;
        // Lifespan startup failed: when the process gives way (µs).
        let mut backoff_until = None;
        let mut startup_failed = false;
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let oldest = RUNNING.lock().iter().map(|(t, _)| *t).min();
            let now = now_micros();
            let over = |since: i64, limit: Duration| !limit.is_zero() && now - since > limit.as_micros() as i64;
            if over(LAST_GIL.load(Ordering::Relaxed), deadlock) {
                // The requests holding or waiting for the GIL cannot finish: their clients get 500.
                log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Daemon process deadlock timer expired, stopping process '{name}'."));
                crate::apache::process::exit_now(0);
            }
            // Idle since its last request (a process that has served none is
            // left alone, as in the C module): a graceful stop.
            let last = LAST_ACTIVITY.load(Ordering::Relaxed);
            if oldest.is_none() && last > 0 && over(last, idle_limit) {
                log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Daemon process idle inactivity timer expired, stopping process '{name}'."));
                LAST_ACTIVITY.store(0, Ordering::Relaxed);
                // A fresh process replaces it once ready.
                succession::hand_over();
            }
            if let Some(oldest) = oldest
                && over(oldest, limit)
            {
                log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Daemon process request time limit exceeded, stopping process '{name}'."));
                log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Shutdown requested '{name}'."));
                log_thread_stacks(pid);
                // Tell the clients still waiting for a response start why it will not come.
                for (_, conn) in RUNNING.lock().iter() {
                    if let Some(conn) = conn.upgrade()
                        && let Some(mut c) = conn.try_lock_for(Duration::from_millis(50))
                        && !c.started
                    {
                        let _ = protocol::write_response_fail(&mut c.wire, 504);
                    }
                }
                log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Aborting process '{name}'."));
                log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Exiting process '{name}'."));
                crate::apache::process::exit_now(0);
            }
            // startup-timeout: no application loaded in time (an import that keeps
            // failing); a fresh process may fare better.
            let startup = STARTUP_SINCE.load(Ordering::Acquire);
            if startup > 0 && over(startup, startup_limit) && !python::any_script_loaded() {
                log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Application startup timer expired, stopping process '{name}'."));
                STARTUP_SINCE.store(-1, Ordering::Release);
                os::request_stop();
            }
            // A failed lifespan startup: the supervisor hears of it now (the
            // successor counts one more failed generation), the process goes
            // after its back-off. A stop or release meanwhile does not wait
            // for it; a process already stopping has nothing to report.
            if !startup_failed && !stopping.load(Ordering::Acquire) && python::asgi_startup_failed() {
                startup_failed = true;
                let failed_before = succession::failed_generations();
                let pause = startup_backoff(failed_before);
                succession::startup_failed();
                let (secs, in_a_row) = (pause.as_secs(), failed_before.saturating_add(1));
                let unit = if secs == 1 { "second" } else { "seconds" };
                log::server(
                    Level::Error,
                    &format!("mod_wsgi (pid={pid}): ASGI lifespan startup failed, process '{name}' will be replaced in {secs} {unit} (failed startups in a row: {in_a_row})."),
                );
                backoff_until = Some(now + pause.as_micros() as i64);
            }
            if let Some(until) = backoff_until
                && now >= until
            {
                backoff_until = None;
                if !stopping.load(Ordering::Acquire) {
                    log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Lifespan startup back-off expired, replacing process '{name}'."));
                    log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Shutdown requested '{name}'."));
                    server::give_way();
                }
            }
            let evicting = EVICTING_SINCE.load(Ordering::Acquire);
            let eviction_over = if evicting == 0 {
                None
            } else if oldest.is_none() {
                Some("Requests have completed, triggering immediate shutdown")
            } else if over(evicting, eviction_limit) {
                Some("Daemon process graceful timer expired")
            } else {
                None
            };
            if let Some(why) = eviction_over {
                log::server(Level::Info, &format!("mod_wsgi (pid={pid}): {why} '{name}'."));
                EVICTING_SINCE.store(0, Ordering::Release);
                os::request_stop();
            }
            // restart-interval: serving on until the successor is ready.
            if over(started, interval) && !stopping.load(Ordering::Acquire) && succession::hand_over() {
                log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Application restart timer expired, stopping process '{name}'."));
            }
            if stopping.load(Ordering::Acquire) {
                let since = *stopping_since.get_or_insert(now);
                if oldest.is_some() && now - since > grace.as_micros() as i64 {
                    log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Daemon process graceful timer expired, stopping process '{name}'."));
                    crate::apache::process::exit_now(0);
                }
            }
        }
    });
}
