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
pub fn listen_unix(path: &str, backlog: u32, owner: Option<(u32, u32)>) -> io::Result<UnixListener> {
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
    // accept() gives up after this long, so idle workers notice a stop request
    // (the socket is shared with the parent and the group's other processes,
    // so it cannot be shut down to wake them).
    let wake = libc::timeval { tv_sec: 0, tv_usec: 250_000 };
    // SAFETY: setsockopt with a correctly sized timeval.
    check(unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&listener),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&wake as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    })?;
    if let Some((uid, gid)) = owner {
        let c = CString::new(path).map_err(io::Error::other)?;
        // SAFETY: chown of the path we just created.
        check(unsafe { libc::chown(c.as_ptr(), uid, gid) })?;
    }
    Ok(listener)
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

/// Switches to `uid`/`gid` with `user`'s supplementary groups.
pub fn become_user(user: &str, uid: u32, gid: u32) -> io::Result<()> {
    let name = CString::new(user).map_err(io::Error::other)?;
    // SAFETY: plain credential calls, in the order that keeps the right to make them.
    unsafe {
        check(libc::setgid(gid))?;
        check(libc::initgroups(name.as_ptr(), gid))?;
        check(libc::setuid(uid))?;
    }
    Ok(())
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

/// The signals a daemon handles itself: its supervisor's stop requests.
const STOP_SIGNALS: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1];

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
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2, libc::SIGCHLD, libc::SIGALRM] {
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

/// Blocks until a stop signal arrives; returns it.
pub fn wait_for_stop() -> i32 {
    let set = stop_set();
    let mut sig: libc::c_int = 0;
    // SAFETY: sigwait on signals blocked in every thread of the process.
    unsafe { libc::sigwait(&set, &mut sig) };
    sig
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

/// Waits up to `timeout_ms` for any of `fds` to be readable (or closed);
/// returns which are.
pub fn poll_readable(fds: &[i32], timeout_ms: i32) -> io::Result<Vec<bool>> {
    let mut polls: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: `polls` is a valid array of pollfd of the given length.
    let rv = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, timeout_ms) };
    if rv < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(err);
    }
    Ok(polls.iter().map(|p| p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0).collect())
}

/// True when a read on `stream` would block: the peer has sent nothing,
/// not even end-of-file, so an idle connection is still usable.
pub fn nothing_pending(stream: &std::os::unix::net::UnixStream) -> bool {
    let mut probe = [0u8; 1];
    // SAFETY: recv into a 1-byte buffer, peeking without blocking.
    let rv = unsafe { libc::recv(raw_fd(stream), probe.as_mut_ptr().cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    rv < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}
