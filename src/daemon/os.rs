//! The operating-system calls daemon processes need (sockets, identity,
//! signals, process title): the only unsafe code of daemon mode.

use std::ffi::CString;
use std::io;
use std::os::unix::net::UnixListener;

fn check(rv: libc::c_int) -> io::Result<libc::c_int> {
    if rv < 0 { Err(io::Error::last_os_error()) } else { Ok(rv) }
}

/// Creates the group's listening socket at `path` (mode 0600 through the
/// umask), owned by `owner` when we are root, so only Apache's children connect.
pub fn listen_unix(path: &str, backlog: u32, owner: Option<(u32, u32)>, buffers: BufferSizes) -> io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    // SAFETY: umask only changes this process's file-creation mask; restored below.
    let old = unsafe { libc::umask(0o077) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let listener = bound?;
    // std listens with its own backlog; listen again with the configured one.
    // SAFETY: listen(2) on a socket we own.
    check(unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&listener), backlog as libc::c_int) })?;
    // Workers of every process of the group wait for connections together;
    // the ones that lose the race must not block in accept().
    set_nonblocking(std::os::fd::AsRawFd::as_raw_fd(&listener))?;
    set_buffer_sizes(std::os::fd::AsRawFd::as_raw_fd(&listener), buffers)?;
    if let Some((uid, gid)) = owner {
        let c = CString::new(path).map_err(io::Error::other)?;
        // SAFETY: chown of the path we just created.
        check(unsafe { libc::chown(c.as_ptr(), uid, gid) })?;
    }
    Ok(listener)
}

/// send-buffer-size= and receive-buffer-size= (0 leaves the system's default).
#[derive(Clone, Copy, Default)]
pub struct BufferSizes {
    pub send: u32,
    pub receive: u32,
}

/// Sets a socket's kernel buffer sizes, where given.
pub fn set_buffer_sizes(fd: i32, sizes: BufferSizes) -> io::Result<()> {
    for (option, size) in [(libc::SO_SNDBUF, sizes.send), (libc::SO_RCVBUF, sizes.receive)] {
        if size == 0 {
            continue;
        }
        let value = size as libc::c_int;
        // SAFETY: setsockopt reads one c_int, whose size we pass.
        check(unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, option, (&value as *const libc::c_int).cast(), std::mem::size_of::<libc::c_int>() as libc::socklen_t) })?;
    }
    Ok(())
}

/// The process's (uid, gid).
pub fn ids() -> (u32, u32) {
    // SAFETY: getuid/getgid have no preconditions.
    unsafe { (libc::getuid(), libc::getgid()) }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Switches to `uid`/`gid` with `user`'s supplementary groups, or with
/// `gid` and `groups` only when `groups` is not empty.
pub fn become_user(user: &str, uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    let name = CString::new(user).map_err(io::Error::other)?;
    let listed: Vec<libc::gid_t> = std::iter::once(gid).chain(groups.iter().copied()).collect();
    // SAFETY: plain credential calls, in the order that keeps the right to make
    // them; `listed` outlives the setgroups call that reads it.
    unsafe {
        check(libc::setgid(gid))?;
        if groups.is_empty() {
            check(libc::initgroups(name.as_ptr(), gid))?;
        } else {
            check(libc::setgroups(listed.len(), listed.as_ptr()))?;
        }
        check(libc::setuid(uid))?;
    }
    Ok(())
}

/// A resource limit of this process (and what it forks).
#[derive(Clone, Copy)]
pub enum Limit {
    CpuSeconds,
    DataBytes,
    AddressSpaceBytes,
}

pub fn set_limit(limit: Limit, soft: u64, hard: u64) -> io::Result<()> {
    let resource = match limit {
        Limit::CpuSeconds => libc::RLIMIT_CPU,
        Limit::DataBytes => libc::RLIMIT_DATA,
        Limit::AddressSpaceBytes => libc::RLIMIT_AS,
    };
    let value = libc::rlimit { rlim_cur: soft as libc::rlim_t, rlim_max: hard as libc::rlim_t };
    // SAFETY: setrlimit reads the struct we pass.
    check(unsafe { libc::setrlimit(resource, &value) }).map(drop)
}

/// The soft stack limit, which sizes threads by default; None when unlimited.
pub fn stack_limit() -> Option<usize> {
    let mut value = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct we pass.
    let rv = unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut value) };
    (rv == 0 && value.rlim_cur != libc::RLIM_INFINITY).then_some(value.rlim_cur as usize)
}

/// The process's scheduling priority (nice value).
pub fn set_priority(nice: i32) -> io::Result<()> {
    // SAFETY: setpriority on this process only.
    check(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) }).map(drop)
}

pub fn set_umask(mask: u32) {
    // SAFETY: changes only this process's file-creation mask.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// Sets LC_ALL-style locale for the C library (Python reads it at start).
pub fn set_locale(locale: &str) {
    if let Ok(c) = CString::new(locale) {
        // SAFETY: called before any other thread exists in the daemon process.
        unsafe { libc::setlocale(libc::LC_ALL, c.as_ptr()) };
    }
}

/// Dies with the Apache parent (SIGTERM when it goes away).
pub fn die_with_parent() {
    // SAFETY: prctl with a plain integer argument.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) };
}

/// The signals a daemon handles itself: its supervisor's stop requests, and
/// SIGXCPU for cpu-time-limit=.
const STOP_SIGNALS: [libc::c_int; 5] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1, libc::SIGXCPU];

/// Why a daemon is asked to stop.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum StopRequest {
    /// From the supervisor: stop now, within shutdown-timeout.
    Stop,
    /// cpu-time-limit= reached: finish the running requests first.
    CpuTimeLimit,
    /// SIGUSR1, an admin's graceful restart of this one process: keep
    /// serving until idle (within eviction-timeout or graceful-timeout).
    Evict,
}

fn stop_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data initialised by sigemptyset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in STOP_SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Resets httpd's signal handlers, ignores SIGPIPE (write errors are
/// reported instead) and blocks the stop signals so that threads created
/// afterwards inherit the mask and only [`wait_for_stop`] receives them.
pub fn prepare_signals() {
    // SAFETY: signal dispositions and the mask of this (still single-threaded) process.
    unsafe {
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2, libc::SIGCHLD, libc::SIGALRM, libc::SIGXCPU] {
            libc::signal(sig, libc::SIG_DFL);
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
        let stop = stop_set();
        libc::pthread_sigmask(libc::SIG_BLOCK, &stop, std::ptr::null_mut());
    }
}

/// Blocks until a stop signal arrives.
pub fn wait_for_stop() -> StopRequest {
    let set = stop_set();
    let mut sig: libc::c_int = 0;
    // SAFETY: sigwait on signals blocked in every thread of the process.
    unsafe { libc::sigwait(&set, &mut sig) };
    match sig {
        libc::SIGXCPU => StopRequest::CpuTimeLimit,
        libc::SIGUSR1 => StopRequest::Evict,
        _ => StopRequest::Stop,
    }
}

/// Asks this process to stop as its supervisor would (SIGTERM to itself,
/// which the signal-waiting thread takes).
pub fn request_stop() {
    kill(std::process::id() as i32, libc::SIGTERM);
}

/// Sends `sig` to `pid`.
pub fn kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) };
}

/// Reaps `pid` if it has exited; true once it is gone.
pub fn reap(pid: i32) -> bool {
    let mut status = 0;
    // SAFETY: waitpid on our own child, non-blocking.
    let rv = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    rv == pid || rv < 0
}

/// Overwrites the process's command line (what ps and /proc show) with `title`.
pub fn set_title(area: Option<(*mut u8, usize)>, title: &str) {
    if let Some((start, len)) = area
        && len > 0
    {
        let bytes = title.as_bytes();
        let n = bytes.len().min(len - 1);
        // SAFETY: `area` is the process's own argv memory, `len` bytes long.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), start, n);
            std::ptr::write_bytes(start.add(n), 0, len - n);
        }
    }
    if let Ok(c) = CString::new(title.chars().take(15).collect::<String>()) {
        // SAFETY: PR_SET_NAME copies at most 16 bytes from a NUL-terminated string.
        unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr() as libc::c_ulong) };
    }
}

/// Replaces an inherited socket with /dev/null in a process that must not
/// use it, keeping the descriptor number valid for its owner.
pub fn close_inherited(listener: &UnixListener) {
    // SAFETY: dup2 onto a descriptor we own; the temporary one is closed.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, std::os::fd::AsRawFd::as_raw_fd(listener));
            libc::close(null);
        }
    }
}

/// A file over a descriptor the caller keeps open, without taking it over.
pub fn borrow_file(fd: i32) -> std::mem::ManuallyDrop<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: the caller keeps `fd` open while the File is used, and the File
    // is never dropped (ManuallyDrop), so the descriptor is only borrowed.
    std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Ends the process at once, without the exit handlers inherited from httpd.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit(2) has no preconditions.
    unsafe { libc::_exit(code) }
}

pub fn raw_fd(fd: &impl std::os::fd::AsRawFd) -> i32 {
    fd.as_raw_fd()
}

/// An epoll instance: the daemon's workers all wait on it, and each
/// readiness is handed to one of them.
pub struct Epoll(std::os::fd::OwnedFd);

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        use std::os::fd::FromRawFd;
        // SAFETY: epoll_create1 returns a new descriptor that we then own.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` is fresh and owned by nobody else.
        Ok(Epoll(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }))
    }

    fn ctl(&self, op: libc::c_int, fd: i32, events: u32, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: token };
        // SAFETY: epoll_ctl with a valid event struct; the kernel copies it.
        check(unsafe { libc::epoll_ctl(std::os::fd::AsRawFd::as_raw_fd(&self.0), op, fd, &mut event) }).map(drop)
    }

    /// Watches `fd` for input (or hang-up) until one waiter is told of it;
    /// `rearm` watches it again. With `persistent`, every waiter is told
    /// for as long as it stays readable.
    pub fn add(&self, fd: i32, token: u64, persistent: bool) -> io::Result<()> {
        let once = if persistent { 0 } else { libc::EPOLLONESHOT as u32 };
        self.ctl(libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32 | once, token)
    }

    pub fn rearm(&self, fd: i32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, (libc::EPOLLIN | libc::EPOLLONESHOT) as u32, token)
    }

    pub fn remove(&self, fd: i32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `timeout_ms` for one readiness; its token, or None.
    pub fn wait(&self, timeout_ms: i32) -> io::Result<Option<u64>> {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: room for exactly one event, as passed.
        let rv = unsafe { libc::epoll_wait(std::os::fd::AsRawFd::as_raw_fd(&self.0), &mut event, 1, timeout_ms) };
        match rv {
            1 => Ok(Some(event.u64)),
            0 => Ok(None),
            _ => {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted { Ok(None) } else { Err(err) }
            }
        }
    }
}

/// Makes accept() on the group's socket return at once when another
/// worker or process took the connection.
pub fn set_nonblocking(fd: i32) -> io::Result<()> {
    // SAFETY: fcntl flag calls on a descriptor the caller owns.
    unsafe {
        let flags = check(libc::fcntl(fd, libc::F_GETFL))?;
        check(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK)).map(drop)
    }
}

/// True when a read on `stream` would block: the peer has sent nothing,
/// not even end-of-file, so an idle connection is still usable.
pub fn nothing_pending(stream: &std::os::unix::net::UnixStream) -> bool {
    let mut probe = [0u8; 1];
    // SAFETY: recv into a 1-byte buffer, peeking without blocking.
    let rv = unsafe { libc::recv(raw_fd(stream), probe.as_mut_ptr().cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    rv < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}
