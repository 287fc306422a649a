//! request-timeout: a daemon process whose oldest request has run too long is
//! stuck (or overloaded); it tells the waiting clients 504 and exits, and the
//! Apache parent starts a fresh one.

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

impl Busy {
    pub fn start(conn: &Arc<Mutex<Connection>>) -> Busy {
        RUNNING.lock().push((now_micros(), Arc::downgrade(conn)));
        Busy(conn.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        RUNNING.lock().retain(|(_, c)| !std::ptr::eq(c.as_ptr(), Arc::as_ptr(&self.0)));
    }
}

/// Starts the watch when the group has a request-timeout.
pub fn watch(group: &Arc<Group>) {
    let limit = group.config.request_timeout;
    if limit.is_zero() {
        return;
    }
    let group = group.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let oldest = RUNNING.lock().iter().map(|(t, _)| *t).min();
            if let Some(started) = oldest
                && now_micros() - started > limit.as_micros() as i64
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
