//! The Apache parent's side of daemon mode: one listening socket per
//! WSGIDaemonProcess group and one supervisor process per group (see
//! `supervisor`), which forks the group's daemons and replaces them.
//!
//! A group whose name and identity stay the same across a restart keeps its
//! socket: connections waiting in its backlog are served by whichever
//! generation of daemons is accepting, and Apache children of the old
//! generation, finishing their connections after a graceful restart, still
//! reach a daemon. On a graceful restart the old supervisor keeps its
//! daemons serving until the new supervisor's are ready; on a full restart
//! it is told to stop at once, and nobody waits for it.

use std::collections::HashMap;
use std::io::{PipeReader, PipeWriter, Write};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use nix::sys::signal::Signal;

use super::handover::{Handover, SocketRecord, SupervisorRecord};
use super::{origin, os};
use crate::apache::process::{self, Event, Watched};
use crate::apache::{ffi, log, pool, retained};
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

/// Set while the configuration is going away: a dead supervisor is not replaced.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// A supervisor process and the pipe by which it is told that its
/// successor is ready (or that its group is gone): then its daemons finish
/// what they have and it exits.
struct Supervisor {
    pid: i32,
    group: String,
    /// The supervisor holds the reading end; the parent keeps it too, to
    /// fork a supervisor that died again with the same descriptors.
    release: Option<(PipeReader, PipeWriter)>,
    /// Told to stop at once (a full restart): nothing to hand over.
    stopped: bool,
}

/// This configuration's supervisors.
static CURRENT: Mutex<Vec<Supervisor>> = Mutex::new(Vec::new());
/// Supervisors of earlier configurations, not yet exited.
static RETIRING: Mutex<Vec<Supervisor>> = Mutex::new(Vec::new());

/// A group's socket across a restart, with the paths it is reachable at.
/// After a full restart it is not kept (None): the old daemons finish what
/// Apache children of the old configuration queued on it, and the new ones
/// take a socket of their own.
struct Kept {
    listener: Option<UnixListener>,
    identity: Identity,
    /// Newest first: the last configuration's path, and the one before.
    paths: Vec<String>,
}

static KEPT: Mutex<Option<HashMap<String, Kept>>> = Mutex::new(None);

/// Who a group's daemons run as: a socket (and its keys) pass to the next
/// configuration only when this is unchanged.
#[derive(Clone, PartialEq, Eq)]
struct Identity {
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Vec<u32>,
}

impl Identity {
    fn of(config: &DaemonProcess) -> Identity {
        Identity { uid: config.uid, gid: config.gid, groups: config.supplementary_gids.clone() }
    }
}

/// `<prefix>.<parent pid>.<generation>.<n>.sock`. With WSGISocketRotation Off
/// the generation gives way to `u<daemon uid>`: the path is then the same
/// in every configuration.
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
    retained::attach(main);
    let mut kept = take_handover();
    // Who each group ran as, for keys; a socket not kept is forgotten.
    let succeeded: HashMap<String, Identity> = kept.iter().map(|(name, k)| (name.clone(), k.identity.clone())).collect();
    let mut unique: Vec<&DaemonProcess> = Vec::new();
    for config in configs.iter().flat_map(|s| s.daemons.iter()) {
        // A virtual host's merged record repeats its parent's groups.
        if !unique.iter().any(|c| c.name == config.name) {
            unique.push(config);
        }
    }
    // A socket whose group changed identity is not handed to the new
    // daemons, nor one left by a full restart.
    kept.retain(|name, k| (k.listener.is_some() && unique.iter().any(|c| &c.name == name && Identity::of(c) == k.identity)) || forget(k));
    let names: Vec<&str> = unique.iter().map(|c| c.name.as_str()).collect();
    let carry = |name: &str| match (kept.get(name), succeeded.get(name)) {
        (Some(_), _) => origin::Carry::Handover,
        (None, Some(identity)) if unique.iter().any(|c| c.name == name && Identity::of(c) == *identity) => origin::Carry::Succeed,
        _ => origin::Carry::Fresh,
    };
    origin::renew(&names, &carry).map_err(|e| format!("Unable to make keys for the daemon process groups: {e}"))?;
    watch_retiring(pconf);
    let mut next_kept = HashMap::new();
    for (index, config) in unique.into_iter().enumerate() {
        let id = index + 1;
        let socket = socket_path(pconf, main_config, generation, config.uid.unwrap_or(apache_uid), id);
        // socket-user= hands the socket to another user (for Apache children running as one).
        let socket_uid = config.socket_user.as_deref().and_then(|name| crate::config::resolve_user(name).ok());
        let owner = os::is_root().then_some((socket_uid.unwrap_or(apache_uid), apache_gid));
        let previous = kept.remove(&config.name);
        let mut paths = vec![socket.clone()];
        let made = match previous {
            Some(Kept { listener: Some(listener), paths: old, .. }) => {
                for path in old.iter().skip(1).filter(|&p| *p != socket) {
                    let _ = std::fs::remove_file(path);
                }
                paths.extend(old.into_iter().take(1).filter(|p| *p != socket));
                os::reuse_listener(listener, paths.get(1).map(String::as_str), &socket, config.listen_backlog, owner, buffer_sizes(config))
            }
            _ => os::listen_unix(&socket, config.listen_backlog, owner, buffer_sizes(config)),
        };
        // A group whose socket cannot be made is logged and left out, as
        // mod_wsgi does: the server runs, and the group's requests get 503.
        let listener = made
            .map_err(|e| log::server(Level::Error, &format!("mod_wsgi (pid={}): Couldn't bind unix domain socket '{socket}': {e}.", std::process::id())))
            .ok();
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
        if let Some(listener) = &group.listener {
            if let Ok(copy) = listener.try_clone() {
                next_kept.insert(config.name.clone(), Kept { listener: Some(copy), identity: Identity::of(config), paths });
            }
            spawn(pconf, group.clone())?;
        }
    }
    // Groups gone from the configuration: their sockets go, and their old
    // supervisors finish what they have.
    for (_, k) in kept {
        forget(&k);
    }
    release_unclaimed();
    *KEPT.lock() = Some(next_kept);
    pool::on_destroy(pconf, stop_all);
    Ok(())
}

/// Removes a kept socket's paths; false, to drop it from a map.
fn forget(k: &Kept) -> bool {
    for path in &k.paths {
        let _ = std::fs::remove_file(path);
    }
    false
}

/// Forks the group's supervisor. When a supervisor of the previous
/// configuration is handing over the same group, the new one gets the pipe
/// to tell it when the new daemons are ready.
fn spawn(pconf: *mut ffi::apr_pool_t, group: Arc<Group>) -> Result<(), String> {
    let name = group.config.name.clone();
    let predecessor = {
        let mut retiring = RETIRING.lock();
        // The newest: any older one is released now (`release_unclaimed`).
        retiring.iter_mut().rev().find(|s| s.group == name && !s.stopped && s.release.is_some()).and_then(|s| s.release.take()).map(|(_, writer)| writer)
    };
    let (reader, writer) = std::io::pipe().map_err(|e| format!("Unable to create a pipe for daemon process group '{name}': {e}"))?;
    let release = reader.try_clone().map_err(|e| e.to_string())?;
    let mut keep: Vec<RawFd> = group.listener.iter().map(|l| l.as_raw_fd()).collect();
    keep.push(release.as_raw_fd());
    keep.extend(predecessor.as_ref().map(|w| w.as_raw_fd()));
    let child_group = group.clone();
    let on_event = Box::new(move |watched: &mut Watched, event: Event| on_event(watched, event, &group));
    let pid = process::fork_watched(pconf, keep, move || super::supervisor::run(&child_group, release, predecessor), on_event)?;
    CURRENT.lock().push(Supervisor { pid, group: name, release: Some((reader, writer)), stopped: false });
    Ok(())
}

fn on_event(watched: &mut Watched, event: Event, group: &Arc<Group>) {
    let (pid, name) = (watched.pid(), &group.config.name);
    match event {
        Event::Died(_) if !STOPPING.load(Ordering::Acquire) && !process::server_stopping() => {
            log::server(Level::Error, &format!("mod_wsgi (pid={pid}): Supervisor of daemon process group '{name}' died, restarting it."));
            let mut current = CURRENT.lock();
            let Some(record) = current.iter_mut().find(|s| s.pid == pid) else { return };
            let Some((reader, _)) = &record.release else { return };
            let Ok(release) = reader.try_clone() else { return };
            // Its own socket and pipe only: the handover it was given is over.
            let keep = group.listener.iter().map(|l| l.as_raw_fd()).chain([release.as_raw_fd()]).collect();
            let child_group = group.clone();
            match process::refork(watched, keep, move || super::supervisor::run(&child_group, release, None)) {
                Ok(()) => record.pid = watched.pid(),
                Err(e) => log::server(Level::Error, &format!("mod_wsgi: Unable to restart the supervisor of daemon process group '{name}': {e}")),
            }
        }
        Event::Died(_) | Event::Other | Event::Unregister => {}
        Event::Reclaim => {
            // A full restart or a stop: the daemons stop at once, while the
            // MPM goes on to the next configuration (or exits, then waits in
            // `stop_all`).
            log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Process group '{name}' to be stopped, as server is restarting or being shutdown."));
            os::kill(pid, Signal::SIGTERM);
            if let Some(record) = CURRENT.lock().iter_mut().find(|s| s.pid == pid) {
                record.stopped = true;
            }
        }
    }
}

/// Registers the retiring supervisors with this configuration, so the MPM
/// reaps them and tells us when they exit.
fn watch_retiring(pconf: *mut ffi::apr_pool_t) {
    let pids: Vec<i32> = RETIRING.lock().iter().map(|s| s.pid).collect();
    for pid in pids {
        process::watch_existing(
            pconf,
            pid,
            Box::new(move |_, event| {
                if let Event::Died(_) = event {
                    RETIRING.lock().retain(|s| s.pid != pid);
                }
            }),
        );
    }
}

/// Old supervisors whose group no new supervisor took over (the group is
/// gone, or changed identity): their daemons finish what they have now.
fn release_unclaimed() {
    for s in RETIRING.lock().iter_mut() {
        if let Some((_, mut writer)) = s.release.take() {
            let _ = writer.write_all(&[1]);
        }
    }
}

/// The configuration pool is going. On a stop, every supervisor is told to
/// stop and waited for, and the sockets are removed. On a restart they are
/// left running (told to stop already if the restart is a full one) and
/// the sockets are kept for the next configuration.
fn stop_all() {
    STOPPING.store(true, Ordering::Release);
    let ending: Vec<Supervisor> = CURRENT.lock().drain(..).collect();
    let mut retiring = RETIRING.lock();
    retiring.extend(ending);
    if !process::server_exiting() {
        drop(retiring);
        leave_handover();
        return;
    }
    let pids: Vec<i32> = retiring.drain(..).map(|s| s.pid).collect();
    drop(retiring);
    for &pid in &pids {
        os::kill(pid, Signal::SIGTERM);
    }
    // Each supervisor waits shutdown-timeout for its daemons, then kills them.
    let longest = endpoints().lock().values().map(|g| g.config.shutdown_timeout).max().unwrap_or_default();
    os::reap_until(pids, Instant::now() + longest + Duration::from_secs(2), |_| {});
    if let Some(kept) = KEPT.lock().take() {
        for k in kept.values() {
            forget(k);
        }
    }
}

/// Writes down for the next configuration (this module is reloaded before
/// it starts) the keys, the sockets and the supervisors still running; the
/// descriptors stay open, owned by the hand-over.
fn leave_handover() {
    let mut handover = Handover { keys: origin::export(), ..Default::default() };
    let retiring = RETIRING.lock();
    for (group, k) in KEPT.lock().take().unwrap_or_default() {
        let Identity { uid, gid, groups } = k.identity;
        // A full restart stopped the group's supervisor: the socket stays
        // with the old daemons only.
        let stopped = retiring.iter().any(|s| s.group == group && s.stopped);
        let fd = k.listener.filter(|_| !stopped).map_or(-1, IntoRawFd::into_raw_fd);
        handover.sockets.push(SocketRecord { group, fd, uid, gid, groups, paths: k.paths });
    }
    drop(retiring);
    for s in RETIRING.lock().drain(..) {
        let (reader, writer) = s.release.map_or((-1, -1), |(r, w)| (r.into_raw_fd(), w.into_raw_fd()));
        handover.supervisors.push(SupervisorRecord { group: s.group, pid: s.pid, reader, writer, stopped: s.stopped });
    }
    if !retained::put(handover.encode().as_bytes()) {
        log::server(Level::Error, "mod_wsgi: Too many daemon process groups to hand over across the restart; their sockets and keys start afresh.");
    }
    // The groups' own copies of their sockets close; the kept ones stay open.
    endpoints().lock().clear();
}

/// What the previous configuration left (see `leave_handover`): its keys
/// go back to the keyring, its running supervisors to RETIRING; returns
/// its sockets by group.
fn take_handover() -> HashMap<String, Kept> {
    let handover = Handover::decode(&retained::take());
    origin::import(handover.keys);
    let mut retiring = RETIRING.lock();
    for s in handover.supervisors {
        let reader = retained::adopt(s.reader).map(PipeReader::from);
        let writer = retained::adopt(s.writer).map(PipeWriter::from);
        retiring.push(Supervisor { pid: s.pid, group: s.group, release: reader.zip(writer), stopped: s.stopped });
    }
    let mut kept = HashMap::new();
    for s in handover.sockets {
        let listener = retained::adopt(s.fd).map(UnixListener::from);
        let identity = Identity { uid: s.uid, gid: s.gid, groups: s.groups };
        kept.insert(s.group, Kept { listener, identity, paths: s.paths });
    }
    kept
}

/// In an Apache child: the group sockets are for the daemons to accept on,
/// and the supervisors' pipes for the parent to write.
pub fn close_listeners_in_child() {
    // Dropping a group would close its listener; the table is only read
    // in children, so each descriptor is pointed at /dev/null instead.
    if let Some(table) = ENDPOINTS.get() {
        for listener in table.lock().values().filter_map(|g| g.listener.as_ref()) {
            process::hide_descriptor(listener.as_raw_fd());
        }
    }
    for s in CURRENT.lock().iter().chain(RETIRING.lock().iter()) {
        if let Some((reader, writer)) = &s.release {
            process::hide_descriptor(reader.as_raw_fd());
            process::hide_descriptor(writer.as_raw_fd());
        }
    }
    if let Some(kept) = KEPT.lock().as_ref() {
        for listener in kept.values().filter_map(|k| k.listener.as_ref()) {
            process::hide_descriptor(listener.as_raw_fd());
        }
    }
}
