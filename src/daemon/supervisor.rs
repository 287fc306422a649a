//! The Apache parent's side of daemon mode: one listening socket per
//! WSGIDaemonProcess group, its processes forked after configuration and
//! forked again when they die, and stopped when the configuration goes
//! (graceful restart, restart, stop).

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use nix::sys::signal::Signal;

use super::{origin, os};
use crate::apache::process::{self, Event, Watched};
use crate::apache::{ffi, log, pool};
use crate::config::{DaemonProcess, ServerConfig};
use crate::python::Level;

/// A daemon process group as the parent runs it.
pub struct Group {
    pub config: DaemonProcess,
    pub socket: String,
    /// None when the socket could not be created: requests then get 503.
    pub listener: Option<UnixListener>,
    /// How long a connection may take to deliver a request head, and each
    /// read or write of an exchange may wait: socket-timeout=, else Apache's Timeout.
    pub socket_timeout: Duration,
    /// The main server's configuration (interpreter-wide settings).
    pub server: &'static ServerConfig,
    /// Every server's configuration (for the scripts to preload).
    pub configs: Vec<&'static ServerConfig>,
    pub main_server: usize,
}

// SAFETY note: `main_server` is a server_rec address kept as an integer so the
// group can cross threads; it is only dereferenced through apache::log.

/// Where Apache's children find each group: name -> (socket path, group).
/// Filled in the parent before the MPM forks its children, who inherit it.
static ENDPOINTS: OnceLock<Mutex<HashMap<String, Arc<Group>>>> = OnceLock::new();

fn endpoints() -> &'static Mutex<HashMap<String, Arc<Group>>> {
    ENDPOINTS.get_or_init(Default::default)
}

/// The group an Apache child forwards `name`'s requests to.
pub fn endpoint(name: &str) -> Option<Arc<Group>> {
    endpoints().lock().get(name).cloned()
}

/// Set while the configuration is going away: dead daemons are not replaced.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// The daemon processes running now, so a stop can signal them all at once.
static RUNNING: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// `<prefix>.<parent pid>.<generation>.<n>.sock`. With WSGISocketRotation Off
/// the generation gives way to `u<daemon uid>`: the path then survives a
/// graceful restart, so Apache children of the old generation still finishing
/// their connections reach the new daemons.
fn socket_path(pconf: *mut ffi::apr_pool_t, server: &ServerConfig, generation: i32, daemon_uid: u32, id: usize) -> String {
    let prefix = match &server.socket_prefix {
        Some(prefix) => process::server_root_path(pconf, prefix),
        None => process::runtime_path(pconf, "wsgi"),
    };
    let pid = std::process::id();
    if server.socket_rotation() {
        format!("{prefix}.{pid}.{generation}.{id}.sock")
    } else {
        format!("{prefix}.{pid}.u{daemon_uid}.{id}.sock")
    }
}

/// send-buffer-size= and receive-buffer-size= of a group, for its sockets.
pub fn buffer_sizes(config: &DaemonProcess) -> os::BufferSizes {
    os::BufferSizes { send: config.send_buffer_size, receive: config.receive_buffer_size }
}

/// Starts every group of the configuration (parent, after configuration).
pub fn start_all(pconf: *mut ffi::apr_pool_t, main: *mut ffi::server_rec, main_config: &'static ServerConfig, configs: &[&'static ServerConfig]) -> Result<(), String> {
    STOPPING.store(false, Ordering::Release);
    let generation = process::generation();
    let (apache_uid, apache_gid) = process::apache_identity();
    let apache_timeout = process::server_timeout(main).max(Duration::from_secs(1));
    endpoints().lock().clear();
    let names: Vec<&str> = configs.iter().flat_map(|s| s.daemons.iter().map(|d| d.name.as_str())).collect();
    origin::renew(&names).map_err(|e| format!("Unable to make keys for the daemon process groups: {e}"))?;
    let mut id = 0;
    for server in configs {
        for config in &server.daemons {
            if endpoints().lock().contains_key(&config.name) {
                continue; // inherited by a virtual host's merged record
            }
            id += 1;
            let socket = socket_path(pconf, main_config, generation, config.uid.unwrap_or(apache_uid), id);
            // socket-user= hands the socket to another user (for Apache children running as one).
            let socket_uid = config.socket_user.as_deref().and_then(|name| crate::config::resolve_user(name).ok());
            let owner = os::is_root().then_some((socket_uid.unwrap_or(apache_uid), apache_gid));
            // A group whose socket cannot be made is logged and left out, as
            // mod_wsgi does: the server runs, and the group's requests get 503.
            let listener = os::listen_unix(&socket, config.listen_backlog, owner, buffer_sizes(config))
                .map_err(|e| log::server(Level::Error, &format!("mod_wsgi (pid={}): Couldn't bind unix domain socket '{socket}': {e}.", std::process::id())))
                .ok();
            let started = listener.is_some();
            let socket_timeout = if config.socket_timeout.is_zero() { apache_timeout } else { config.socket_timeout };
            let group = Arc::new(Group {
                config: config.clone(),
                socket,
                listener,
                socket_timeout,
                server: main_config,
                configs: configs.to_vec(),
                main_server: main as usize,
            });
            // In the table before forking: no lock is held while the parent forks.
            endpoints().lock().insert(config.name.clone(), group.clone());
            for index in 0..config.processes.max(1) {
                if started {
                    spawn(pconf, group.clone(), index)?;
                }
            }
        }
    }
    pool::on_destroy(pconf, stop_all);
    Ok(())
}

fn spawn(pconf: *mut ffi::apr_pool_t, group: Arc<Group>, index: u32) -> Result<(), String> {
    let child_group = group.clone();
    // The daemon keeps its own group's listener and nothing else of the parent's.
    let keep = group.listener.iter().map(|l| l.as_raw_fd()).collect();
    let on_event = Box::new(move |watched: &mut Watched, event: Event| on_event(watched, event, &group, index));
    let pid = process::fork_watched(pconf, keep, move || super::process::run(&child_group, index), on_event)?;
    RUNNING.lock().push(pid);
    Ok(())
}

fn on_event(watched: &mut Watched, event: Event, group: &Arc<Group>, index: u32) {
    match event {
        Event::Died(status) if !STOPPING.load(Ordering::Acquire) && !process::server_stopping() => {
            let (pid, name) = (watched.pid(), &group.config.name);
            log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Process '{name}' has died, deregister and restart it."));
            let how = if libc::WIFSIGNALED(status) {
                format!("terminated by signal {}", libc::WTERMSIG(status))
            } else {
                format!("terminated normally, exit code {}", libc::WEXITSTATUS(status))
            };
            log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Process '{name}' {how}"));
            log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Process '{name}' has been deregistered and will no longer be monitored."));
            RUNNING.lock().retain(|&p| p != watched.pid());
            let child_group = group.clone();
            match process::refork(watched, move || super::process::run(&child_group, index)) {
                Ok(()) => RUNNING.lock().push(watched.pid()),
                Err(e) => log::server(Level::Error, &format!("mod_wsgi: Unable to restart daemon process '{}': {e}", group.config.name)),
            }
        }
        Event::Died(_) | Event::Other => {}
        Event::Stop => {
            let (pid, name) = (watched.pid(), &group.config.name);
            log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Process '{name}' to be deregistered, as server is restarting or being shutdown."));
            stop_process(pid, &group.config);
            log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Process '{name}' has been deregistered and will no longer be monitored."));
        }
    }
}

/// Asks a daemon process to stop, and reaps it, killing it after its shutdown-timeout.
fn stop_process(pid: i32, config: &DaemonProcess) {
    if pid <= 0 {
        return;
    }
    os::kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + config.shutdown_timeout + Duration::from_secs(1);
    while !os::reap(pid) {
        if Instant::now() > deadline {
            os::kill(pid, Signal::SIGKILL);
            let _ = os::reap(pid);
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The configuration pool is going: no more restarts; every daemon is told
/// to stop at once (each is then reaped as its registration goes); remove
/// the sockets.
fn stop_all() {
    STOPPING.store(true, Ordering::Release);
    for pid in RUNNING.lock().drain(..) {
        os::kill(pid, Signal::SIGTERM);
    }
    if let Some(table) = ENDPOINTS.get() {
        for group in table.lock().values() {
            let _ = std::fs::remove_file(&group.socket);
        }
    }
}

/// In an Apache child: the group sockets are for the daemons to accept on.
pub fn close_listeners_in_child() {
    // Dropping a group would close its listener; the table is only read
    // in children, so each descriptor is pointed at /dev/null instead.
    if let Some(table) = ENDPOINTS.get() {
        for listener in table.lock().values().filter_map(|g| g.listener.as_ref()) {
            process::hide_descriptor(listener.as_raw_fd());
        }
    }
}
