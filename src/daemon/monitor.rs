//! The daemon's time limits. request-timeout: a process whose oldest request
//! has run too long is stuck (or overloaded); it tells the waiting clients 504
//! and exits. inactivity-timeout: a process with no request for that long
//! exits (freeing its memory). Either way the Apache parent starts a fresh one.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use super::connection::Connection;
use super::supervisor::Group;
use super::{os, protocol};
use crate::apache::log;
use crate::python::Level;

pub fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// The requests running now (start time in µs, connection), for request-timeout.
static RUNNING: Mutex<Vec<(i64, Weak<Mutex<Connection>>)>> = Mutex::new(Vec::new());

/// Marks a request as running for as long as it lives.
pub struct Busy(Arc<Mutex<Connection>>);

/// When the last request started or ended (µs), for inactivity-timeout.
static LAST_ACTIVITY: AtomicI64 = AtomicI64::new(0);

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

/// Starts the watch when the group has a request-timeout or inactivity-timeout.
pub fn watch(group: &Arc<Group>) {
    let limit = group.config.request_timeout;
    let idle_limit = group.config.inactivity_timeout;
    if limit.is_zero() && idle_limit.is_zero() {
        return;
    }
    LAST_ACTIVITY.store(now_micros(), Ordering::Relaxed);
    let group = group.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let oldest = RUNNING.lock().iter().map(|(t, _)| *t).min();
            let now = now_micros();
            if oldest.is_none() && !idle_limit.is_zero() && now - LAST_ACTIVITY.load(Ordering::Relaxed) > idle_limit.as_micros() as i64 {
                log::server(
                    Level::Info,
                    &format!("mod_wsgi (pid={}): Daemon process inactivity timer expired, stopping process '{}'.", std::process::id(), group.config.name),
                );
                os::exit_now(0);
            }
            if let Some(started) = oldest
                && !limit.is_zero()
                && now - started > limit.as_micros() as i64
            {
                log::server(
                    Level::Error,
                    &format!("mod_wsgi (pid={}): Daemon process request time limit exceeded, stopping process '{}'.", std::process::id(), group.config.name),
                );
                // Tell the clients still waiting for a response start why it will not come.
                for (_, conn) in RUNNING.lock().iter() {
                    if let Some(conn) = conn.upgrade()
                        && let Some(mut c) = conn.try_lock_for(Duration::from_millis(50))
                        && !c.started
                    {
                        let _ = protocol::write_response_fail(&mut c.writer, 504);
                    }
                }
                os::exit_now(0);
            }
        }
    });
}
