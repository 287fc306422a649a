//! Processes the Apache parent forks and watches for the module (daemon
//! process groups), through APR's "other child" registry: the MPM reaps them
//! and tells us when one dies, and clearing the configuration pool tells us
//! to stop them.

use std::ffi::{c_int, c_void};
use std::os::fd::RawFd;

use super::{ffi, guard, log, pool};

/// Why the MPM called back about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// It exited (and has been reaped), with this wait status.
    Died(c_int),
    /// The MPM is stopping its processes: a full restart or a stop.
    Reclaim,
    /// The registration is going away with the configuration (any restart, or the stop).
    Unregister,
    /// Anything else (a health check); nothing to do.
    Other,
}

/// What the parent does when the MPM reports on a watched process.
pub type OnEvent = Box<dyn Fn(&mut Watched, Event) + Send + Sync>;

/// A forked process registered with the MPM. Lives in the configuration pool.
pub struct Watched {
    proc_: ffi::apr_proc_t,
    pool: *mut ffi::apr_pool_t,
    on_event: OnEvent,
    /// The parent's descriptors the process keeps (besides standard
    /// input, output and error, and the error log).
    keep: Vec<RawFd>,
}

impl Watched {
    pub fn pid(&self) -> i32 {
        self.proc_.pid
    }
}

/// Runs the child side of a fork and ends the process with its exit code,
/// without the parent's exit handlers (they would tear down its pools).
fn run_child(keep: &[RawFd], child: impl FnOnce() -> i32) -> ! {
    leave_parent(keep);
    let code = guard::catch("daemon process", child).unwrap_or(1);
    exit_now(code)
}

/// The signals httpd's parent handles itself.
const PARENT_SIGNALS: [c_int; 8] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2, libc::SIGCHLD, libc::SIGALRM, libc::SIGXCPU];

/// In a process just forked from the Apache parent: httpd's signal handlers
/// go (SIGPIPE is ignored: write errors are reported instead), and so does
/// every descriptor the parent held (its listeners, the pipe of death, other
/// groups' sockets) but `keep`, standard input, output and error, and the
/// error log.
fn leave_parent(keep: &[RawFd]) {
    super::retained::wipe();
    // SAFETY: signal dispositions of this single-threaded, just-forked process.
    unsafe {
        for sig in PARENT_SIGNALS {
            libc::signal(sig, libc::SIG_DFL);
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        // Nothing stays blocked that the parent blocked for itself (a
        // supervisor takes its signals from a signalfd).
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
    let kept = |fd: RawFd| fd <= 2 || keep.contains(&fd) || log::descriptors().contains(&fd);
    let open: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(entries) => entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect(),
        Err(_) => (3..4096).collect(),
    };
    for fd in open.into_iter().filter(|&fd| !kept(fd)) {
        // SAFETY: nothing in this process uses the parent's descriptors; the
        // one read_dir had open is already closed (EBADF is harmless).
        unsafe { libc::close(fd) };
    }
}

/// Ends the process at once, without the exit handlers inherited from httpd.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit(2) has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Forks; in the child closes what it must not inherit (see `leave_parent`),
/// runs `child` (then exits with its code); in the parent registers the
/// process so `on_event` hears of its death or of a stop.
pub fn fork_watched(
    pconf: *mut ffi::apr_pool_t,
    keep: Vec<RawFd>,
    child: impl FnOnce() -> i32,
    on_event: OnEvent,
) -> Result<i32, String> {
    let watched = pool::attach(pconf, Watched { proc_: ffi::apr_proc_t::default(), pool: pconf, on_event, keep });
    // SAFETY: `watched` lives in pconf; apr_proc_fork fills proc_.
    let rv = unsafe { ffi::apr_proc_fork(&mut (*watched).proc_, pconf) };
    if rv == ffi::APR_INCHILD as i32 {
        // SAFETY: as above; the child has its own copy of the record.
        run_child(unsafe { &(*watched).keep }, child);
    }
    if rv != ffi::APR_INPARENT as i32 {
        return Err(format!("fork failed (APR status {rv})"));
    }
    register(watched);
    // SAFETY: `watched` is the live record in pconf that apr_proc_fork filled.
    Ok(unsafe { (*watched).pid() })
}

/// Forks again for a watched process that died, keeping its callbacks;
/// the new process keeps `keep` of the parent's descriptors.
pub fn refork(watched: *mut Watched, keep: Vec<RawFd>, child: impl FnOnce() -> i32) -> Result<(), String> {
    // SAFETY: `watched` is a live registration record in the configuration pool.
    unsafe { (*watched).keep = keep };
    // SAFETY: as above.
    let rv = unsafe { ffi::apr_proc_fork(&mut (*watched).proc_, (*watched).pool) };
    if rv == ffi::APR_INCHILD as i32 {
        // SAFETY: as above.
        run_child(unsafe { &(*watched).keep }, child);
    }
    if rv != ffi::APR_INPARENT as i32 {
        return Err(format!("fork failed (APR status {rv})"));
    }
    register(watched);
    Ok(())
}

/// Watches a process forked under an earlier configuration, so the MPM
/// reaps it and `on_event` hears of its death.
pub fn watch_existing(pconf: *mut ffi::apr_pool_t, pid: i32, on_event: OnEvent) {
    let proc_ = ffi::apr_proc_t { pid, ..Default::default() };
    let watched = pool::attach(pconf, Watched { proc_, pool: pconf, on_event, keep: Vec::new() });
    register(watched);
}

/// Forks a process no MPM watches (a supervisor's daemon): the child keeps
/// `keep` of this process's descriptors, runs `child` and exits with its
/// code. Only for a single-threaded process.
pub fn fork_unwatched(keep: Vec<RawFd>, child: impl FnOnce() -> i32) -> std::io::Result<i32> {
    // SAFETY: the caller is single-threaded, so the child starts with no
    // lock held by a thread that does not exist there.
    match unsafe { nix::unistd::fork() }.map_err(std::io::Error::from)? {
        nix::unistd::ForkResult::Child => run_child(&keep, child),
        nix::unistd::ForkResult::Parent { child } => Ok(child.as_raw()),
    }
}

fn register(watched: *mut Watched) {
    // SAFETY: the registration is removed with the pool (APR registers its own
    // cleanup), which also owns `watched`.
    unsafe {
        ffi::apr_proc_other_child_register(&mut (*watched).proc_, Some(maintenance), watched.cast(), std::ptr::null_mut(), (*watched).pool);
    }
}

unsafe extern "C" fn maintenance(reason: c_int, data: *mut c_void, status: c_int) {
    guard::catch("daemon process maintenance", || {
        let watched = data.cast::<Watched>();
        let event = match reason as u32 {
            ffi::APR_OC_REASON_DEATH | ffi::APR_OC_REASON_LOST => Event::Died(status),
            ffi::APR_OC_REASON_RESTART => Event::Reclaim,
            ffi::APR_OC_REASON_UNREGISTER => Event::Unregister,
            _ => Event::Other,
        };
        // SAFETY: `data` is the Watched record registered above, alive with its pool.
        let watched = unsafe { &mut *watched };
        let on_event = std::mem::replace(&mut watched.on_event, Box::new(|_, _| {}));
        // A death, or a restart's stop, ends the registration (a dead process
        // is registered again when it is forked again), so each is reported
        // once: unregistering calls back at once (UNREGISTER), and that call
        // finds the no-op handler. An UNREGISTER is APR's own unregistering.
        if reason as u32 != ffi::APR_OC_REASON_UNREGISTER && event != Event::Other {
            // SAFETY: the registration is live; it is dropped here, once.
            unsafe { ffi::apr_proc_other_child_unregister(data) };
        }
        on_event(watched, event);
        watched.on_event = on_event;
    });
}

/// The MPM generation (bumped by every restart).
pub fn generation() -> i32 {
    let mut value: c_int = 0;
    // SAFETY: ap_mpm_query writes one int.
    unsafe { ffi::ap_mpm_query(ffi::AP_MPMQ_GENERATION as c_int, &mut value) };
    value
}

/// Apache's User and Group (what its children run as).
pub fn apache_identity() -> (u32, u32) {
    // SAFETY: mod_unixd fills ap_unixd_config while reading the configuration; read-only after.
    unsafe {
        let cfg = &*std::ptr::addr_of!(ffi::ap_unixd_config);
        (cfg.user_id, cfg.group_id)
    }
}

/// `path` made absolute against DefaultRuntimeDir.
pub fn runtime_path(pconf: *mut ffi::apr_pool_t, path: &str) -> String {
    let c = std::ffi::CString::new(path).unwrap_or_default();
    // SAFETY: returns NULL or a string in pconf.
    unsafe { pool::cstr(ffi::ap_runtime_dir_relative(pconf, c.as_ptr())) }
        .map_or_else(|| path.to_owned(), |p| p.to_string_lossy().into_owned())
}

/// `path` made absolute against ServerRoot.
pub fn server_root_path(pconf: *mut ffi::apr_pool_t, path: &str) -> String {
    let c = std::ffi::CString::new(path).unwrap_or_default();
    // SAFETY: returns NULL or a string in pconf.
    unsafe { pool::cstr(ffi::ap_server_root_relative(pconf, c.as_ptr())) }
        .map_or_else(|| path.to_owned(), |p| p.to_string_lossy().into_owned())
}

/// Overwrites the process's command line (what ps and /proc show) with
/// `title`, as far as httpd's argument area allows.
pub fn set_title(main_server: *const ffi::server_rec, title: &str) {
    write_command_line(main_server, title.as_bytes());
    set_name(title.as_bytes());
}

fn write_command_line(main_server: *const ffi::server_rec, bytes: &[u8]) {
    if let Some((start, len)) = argv_area(main_server)
        && len > 0
    {
        let n = bytes.len().min(len - 1);
        // SAFETY: `start` is the process's own argv memory, `len` bytes long.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), start, n);
            std::ptr::write_bytes(start.add(n), 0, len - n);
        }
    }
}

/// The thread name (what `ps -e` and /proc/PID/comm show), cut to 15 bytes.
fn set_name(name: &[u8]) {
    let short: Vec<u8> = name.iter().copied().take_while(|&b| b != 0).take(15).collect();
    if let Ok(c) = std::ffi::CString::new(short) {
        // SAFETY: PR_SET_NAME copies at most 16 bytes from a NUL-terminated string.
        unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr() as libc::c_ulong) };
    }
}

/// A process's command line and name, to give a child forked after the
/// process took another title (a supervisor's daemons) what httpd's own
/// processes show.
pub struct Title {
    command_line: Vec<u8>,
    name: Vec<u8>,
}

/// The title this process has now.
pub fn current_title() -> Title {
    let command_line = std::fs::read("/proc/self/cmdline").unwrap_or_default();
    let mut name = std::fs::read("/proc/self/comm").unwrap_or_default();
    if name.last() == Some(&b'\n') {
        name.pop();
    }
    Title { command_line, name }
}

/// Puts back a title taken with `current_title`.
pub fn restore_title(main_server: *const ffi::server_rec, title: &Title) {
    write_command_line(main_server, &title.command_line);
    set_name(&title.name);
}

/// The memory of the process's command line, to overwrite with a title:
/// from argv[0] for as many bytes as the kernel reports in /proc/self/cmdline
/// (httpd's argv array may leave out arguments it consumed, so its last
/// element does not mark the end).
fn argv_area(s: *const ffi::server_rec) -> Option<(*mut u8, usize)> {
    let len = std::fs::read("/proc/self/cmdline").ok()?.len();
    // SAFETY: the process record and its argv strings live for the whole
    // process; argv[0] starts the kernel's contiguous argument area.
    unsafe {
        let process = (*s).process;
        if process.is_null() || (*process).argc < 1 {
            return None;
        }
        Some((*(*process).argv as *mut u8, len))
    }
}

/// The main server's Timeout.
pub fn server_timeout(s: *const ffi::server_rec) -> std::time::Duration {
    // SAFETY: the server record lives as long as the configuration.
    let micros = unsafe { (*s).timeout };
    std::time::Duration::from_micros(micros.max(0) as u64)
}

/// In an Apache child, makes a descriptor inherited from the parent that
/// the child must not use (a daemon group's listener) point at /dev/null,
/// keeping its number valid for the parent's records.
pub fn hide_descriptor(fd: RawFd) {
    // SAFETY: dup2 onto a descriptor this process holds and does not use;
    // the temporary one is closed.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, fd);
            libc::close(null);
        }
    }
}

/// httpd's own version (major, minor, patch), for apache.version.
pub fn server_version() -> (u32, u32, u32) {
    let mut v = ffi::ap_version_t::default();
    // SAFETY: fills a plain struct.
    unsafe { ffi::ap_get_server_revision(&mut v) };
    (v.major as u32, v.minor as u32, v.patch as u32)
}

/// Whether httpd is exiting (its configuration goes for good, not for a restart).
pub fn server_exiting() -> bool {
    // SAFETY: a plain state query.
    unsafe { ffi::ap_state_query(ffi::AP_SQ_MAIN_STATE as c_int) == ffi::AP_SQ_MS_EXITING as c_int }
}

/// Whether the MPM is shutting down (stop or restart under way).
pub fn server_stopping() -> bool {
    let mut value: c_int = 0;
    // SAFETY: ap_mpm_query writes one int.
    unsafe { ffi::ap_mpm_query(ffi::AP_MPMQ_MPM_STATE as c_int, &mut value) };
    value == ffi::AP_MPMQ_STOPPING as c_int
}
