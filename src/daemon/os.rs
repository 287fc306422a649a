//! The operating-system calls of daemon mode (sockets, identity, limits,
//! signals), through nix's safe wrappers: daemon mode has no unsafe code of
//! its own. What must touch raw process state inherited from httpd (its
//! signal handlers, its descriptors, its argv) is done in `apache::process`.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::socket::{self, MsgFlags, sockopt};
use nix::unistd::{Gid, Pid, Uid};

fn os_error(e: nix::Error) -> io::Error {
    io::Error::from(e)
}

/// Creates the group's listening socket at `path` (mode 0600 through the
/// umask), owned by `owner` when we are root, so only Apache's children connect.
pub fn listen_unix(path: &str, backlog: u32, owner: Option<(u32, u32)>, buffers: BufferSizes) -> io::Result<UnixListener> {
    use nix::sys::stat::{Mode, umask};
    let _ = std::fs::remove_file(path);
    let old = umask(Mode::from_bits_truncate(0o077));
    let bound = UnixListener::bind(path);
    umask(old);
    let listener = bound?;
    // std listens with its own backlog; listen again with the configured one.
    let backlog = socket::Backlog::new(i32::try_from(backlog).unwrap_or(i32::MAX).min(nix::libc::SOMAXCONN)).map_err(os_error)?;
    socket::listen(&listener, backlog).map_err(os_error)?;
    // The processes of a group accept from it together; those that lose the
    // race must not block in accept().
    listener.set_nonblocking(true)?;
    set_buffer_sizes(&listener, buffers)?;
    if let Some((uid, gid)) = owner {
        nix::unistd::chown(path, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).map_err(os_error)?;
    }
    Ok(listener)
}

/// A listening socket kept from the previous configuration, made reachable
/// at `path` too (a hard link to the socket file at `linked_from`: both
/// names reach it), with this configuration's backlog, buffers and owner.
pub fn reuse_listener(listener: UnixListener, linked_from: Option<&str>, path: &str, backlog: u32, owner: Option<(u32, u32)>, buffers: BufferSizes) -> io::Result<UnixListener> {
    if let Some(from) = linked_from {
        let _ = std::fs::remove_file(path);
        std::fs::hard_link(from, path)?;
    }
    let backlog = socket::Backlog::new(i32::try_from(backlog).unwrap_or(i32::MAX).min(nix::libc::SOMAXCONN)).map_err(os_error)?;
    socket::listen(&listener, backlog).map_err(os_error)?;
    set_buffer_sizes(&listener, buffers)?;
    if let Some((uid, gid)) = owner {
        nix::unistd::chown(path, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).map_err(os_error)?;
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
pub fn set_buffer_sizes(socket: &impl AsFd, sizes: BufferSizes) -> io::Result<()> {
    if sizes.send > 0 {
        socket::setsockopt(socket, sockopt::SndBuf, &(sizes.send as usize)).map_err(os_error)?;
    }
    if sizes.receive > 0 {
        socket::setsockopt(socket, sockopt::RcvBuf, &(sizes.receive as usize)).map_err(os_error)?;
    }
    Ok(())
}

/// Who is at the other end of a UNIX socket, as the kernel saw it connect.
#[derive(Clone, Copy, Debug, Default)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
}

pub fn peer(stream: &UnixStream) -> Peer {
    socket::getsockopt(stream, sockopt::PeerCredentials).map_or(Peer { pid: 0, uid: u32::MAX }, |c| Peer { pid: c.pid(), uid: c.uid() })
}

/// Waits up to `timeout` for something to read on `stream` (or its end).
pub fn wait_readable(stream: &UnixStream, timeout: std::time::Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    poll(&mut [PollFd::new(stream.as_fd(), PollFlags::POLLIN)], PollTimeout::from(ms)).is_ok_and(|n| n > 0)
}

/// Reads what has arrived without waiting: `WouldBlock` when nothing has.
pub fn recv_now(stream: &UnixStream, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    socket::recv(stream.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT).map_err(os_error)
}

/// Sends `bytes` with `file` attached (SCM_RIGHTS): the peer receives its
/// own descriptor of the open file.
pub fn send_with_file(stream: &UnixStream, bytes: &[u8], file: std::os::fd::BorrowedFd<'_>) -> io::Result<usize> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let files = [file];
    control.push(SendAncillaryMessage::ScmRights(&files));
    Ok(rustix::net::sendmsg(stream, &[io::IoSlice::new(bytes)], &mut control, SendFlags::NOSIGNAL)?)
}

/// Reads into `buf` (blocking as the socket's timeouts allow), keeping any
/// descriptors that came with the bytes in `files`.
pub fn recv_with_files(stream: &UnixStream, buf: &mut [u8], files: &mut Vec<std::os::fd::OwnedFd>) -> io::Result<usize> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = rustix::net::recvmsg(stream, &mut [io::IoSliceMut::new(buf)], &mut control, RecvFlags::CMSG_CLOEXEC)?;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            files.extend(fds);
        }
    }
    Ok(received.bytes)
}

/// Whether `file` is a regular file with `len` bytes at `offset`: what a
/// daemon hands over must be something Apache can send.
pub fn regular_file_holds(file: &impl AsFd, offset: u64, len: u64) -> bool {
    use nix::sys::stat::{SFlag, fstat};
    fstat(file.as_fd()).is_ok_and(|st| {
        SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFREG && offset.checked_add(len).is_some_and(|end| end <= st.st_size as u64)
    })
}

/// What `await_response` saw first.
pub enum Awaited {
    /// The daemon's side has something to read.
    Readable,
    /// The client closed its connection (or stopped sending on it).
    ClientGone,
}

/// Waits up to `timeout` for `stream` to have something to read, or for the
/// client connection `client` to close. Err(TimedOut) when neither came.
pub fn await_response(stream: &UnixStream, client: std::os::fd::RawFd, timeout: std::time::Duration) -> io::Result<Awaited> {
    use std::os::fd::AsRawFd;
    let deadline = std::time::Instant::now() + timeout;
    let mut client = client;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut fds = [
            libc::pollfd { fd: stream.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            // Not POLLIN: a pipelined next request is no sign of leaving.
            libc::pollfd { fd: client, events: libc::POLLRDHUP, revents: 0 },
        ];
        let ms = left.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `fds` is a live array of two pollfd, as its length says.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if fds[1].revents & libc::POLLNVAL != 0 {
            // Not a descriptor to watch after all: the daemon's side alone
            // (poll skips a negative one).
            client = -1;
        } else if fds[1].revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
            return Ok(Awaited::ClientGone);
        }
        if fds[0].revents != 0 {
            return Ok(Awaited::Readable);
        }
        if n == 0 && left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
    }
}

/// True when a read on `stream` would block: the peer has sent nothing,
/// not even end-of-file, so an idle connection is still usable.
pub fn nothing_pending(stream: &UnixStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut probe = [0u8; 1];
    matches!(socket::recv(stream.as_raw_fd(), &mut probe, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT), Err(nix::Error::EAGAIN))
}

/// The process's (uid, gid).
pub fn ids() -> (u32, u32) {
    (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw())
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Switches to `uid`/`gid` with `user`'s supplementary groups, or with
/// `gid` and `groups` only when `groups` is not empty.
pub fn become_user(user: &str, uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    let gid = Gid::from_raw(gid);
    nix::unistd::setgid(gid).map_err(os_error)?;
    if groups.is_empty() {
        let name = std::ffi::CString::new(user).map_err(io::Error::other)?;
        nix::unistd::initgroups(&name, gid).map_err(os_error)?;
    } else {
        let listed: Vec<Gid> = std::iter::once(gid).chain(groups.iter().map(|&g| Gid::from_raw(g))).collect();
        nix::unistd::setgroups(&listed).map_err(os_error)?;
    }
    nix::unistd::setuid(Uid::from_raw(uid)).map_err(os_error)
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
        Limit::CpuSeconds => Resource::RLIMIT_CPU,
        Limit::DataBytes => Resource::RLIMIT_DATA,
        Limit::AddressSpaceBytes => Resource::RLIMIT_AS,
    };
    setrlimit(resource, soft, hard).map_err(os_error)
}

/// Raises the soft limit on open descriptors to the hard one (idle
/// connections from Apache's children each hold one); the new soft limit.
pub fn raise_descriptor_limit() -> u64 {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() => hard,
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    }
}

/// The soft stack limit, which sizes threads by default; None when unlimited.
pub fn stack_limit() -> Option<usize> {
    let (soft, _) = getrlimit(Resource::RLIMIT_STACK).ok()?;
    (soft != nix::libc::RLIM_INFINITY).then_some(soft as usize)
}

/// The process's scheduling priority (nice value). nix has no setpriority;
/// rustix has.
pub fn set_priority(nice: i32) -> io::Result<()> {
    rustix::process::setpriority_process(None, nice).map_err(io::Error::from)
}

pub fn set_umask(mask: u32) {
    use nix::sys::stat::{Mode, umask};
    umask(Mode::from_bits_truncate(mask as nix::libc::mode_t));
}

/// Dies with the Apache parent (SIGTERM when it goes away).
pub fn die_with_parent() {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
}

/// The signals a daemon handles itself: its supervisor's stop requests, and
/// SIGXCPU for cpu-time-limit=.
fn stop_set() -> SigSet {
    let mut set = SigSet::empty();
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGUSR1, Signal::SIGXCPU] {
        set.add(sig);
    }
    set
}

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

/// Unblocks every signal but the stop signals, which are blocked so that
/// threads created afterwards inherit the mask and only [`wait_for_stop`]
/// receives them.
pub fn block_stop_signals() {
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&stop_set()), None);
}

/// Blocks until a stop signal arrives.
pub fn wait_for_stop() -> StopRequest {
    match stop_set().wait() {
        Ok(Signal::SIGXCPU) => StopRequest::CpuTimeLimit,
        Ok(Signal::SIGUSR1) => StopRequest::Evict,
        _ => StopRequest::Stop,
    }
}

/// Asks this process to stop (SIGTERM to itself, which the signal-waiting
/// thread takes: the successor is asked for, and accepting stops).
pub fn request_stop() {
    let _ = nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGTERM);
}

/// Sends `sig` to `pid`.
pub fn kill(pid: i32, sig: Signal) {
    if pid > 0 {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
    }
}

/// Reaps the children `pids` as they exit, calling `exited` for each; those
/// still running at `deadline` are killed (and reaped, without the call).
pub fn reap_until(mut pids: Vec<i32>, deadline: std::time::Instant, mut exited: impl FnMut(i32)) {
    while !pids.is_empty() {
        pids.retain(|&pid| {
            let gone = reap(pid);
            if gone {
                exited(pid);
            }
            !gone
        });
        if std::time::Instant::now() > deadline {
            for &pid in &pids {
                kill(pid, Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
            }
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A child that exited, and how.
pub struct Exit {
    pub pid: i32,
    /// The C module's wording: "terminated normally, exit code N" or "terminated by signal N".
    pub how: String,
}

/// Reaps one child of this process that has exited, if any.
pub fn reap_any() -> Option<Exit> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(pid, code)) => Some(Exit { pid: pid.as_raw(), how: format!("terminated normally, exit code {code}") }),
        Ok(WaitStatus::Signaled(pid, signal, _)) => Some(Exit { pid: pid.as_raw(), how: format!("terminated by signal {}", signal as i32) }),
        Ok(WaitStatus::StillAlive) | Err(_) => None,
        // Stopped or continued: not an exit; look again.
        Ok(_) => reap_any(),
    }
}

/// The signals a supervisor takes from a descriptor instead of handlers:
/// its children's exits and its own stop requests.
pub struct Signals(nix::sys::signalfd::SignalFd);

/// What a supervisor was signalled.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Signalled {
    ChildExited,
    Stop,
    Other,
}

impl Signals {
    /// Blocks the signals (for this single-threaded process) and opens the descriptor.
    pub fn take() -> io::Result<Signals> {
        use nix::sys::signalfd::{SfdFlags, SignalFd};
        let mut set = SigSet::empty();
        for sig in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGUSR1, Signal::SIGUSR2] {
            set.add(sig);
        }
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(os_error)?;
        SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).map(Signals).map_err(os_error)
    }

    /// The next signal waiting, if any.
    pub fn next(&mut self) -> Option<Signalled> {
        let info = self.0.read_signal().ok()??;
        Some(match Signal::try_from(info.ssi_signo as i32) {
            Ok(Signal::SIGCHLD) => Signalled::ChildExited,
            Ok(Signal::SIGTERM | Signal::SIGINT | Signal::SIGHUP) => Signalled::Stop,
            _ => Signalled::Other,
        })
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Reaps `pid` if it has exited; true once it is gone.
pub fn reap(pid: i32) -> bool {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    !matches!(waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)), Ok(WaitStatus::StillAlive))
}

/// A count that is readable while above zero (an eventfd): each `give`
/// adds one, each `take` takes one.
pub struct Turns(nix::sys::eventfd::EventFd);

impl Turns {
    pub fn new() -> io::Result<Turns> {
        use nix::sys::eventfd::{EfdFlags, EventFd};
        EventFd::from_flags(EfdFlags::EFD_SEMAPHORE | EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC).map(Turns).map_err(os_error)
    }

    pub fn give(&self) {
        let _ = self.0.write(1);
    }

    /// Whether one was taken (none is left when another thread took the last).
    pub fn take(&self) -> bool {
        self.0.read().is_ok()
    }
}

impl AsFd for Turns {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// An epoll set: the daemon's reactor waits on one for request heads (and
/// new connections' turns), and on another for new connections.
pub struct Epoll(nix::sys::epoll::Epoll);

pub use nix::sys::epoll::EpollEvent as Event;

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        use nix::sys::epoll::EpollCreateFlags;
        nix::sys::epoll::Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map(Epoll).map_err(os_error)
    }

    fn interest(once: bool) -> nix::sys::epoll::EpollFlags {
        use nix::sys::epoll::EpollFlags;
        if once { EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT } else { EpollFlags::EPOLLIN }
    }

    /// Watches `fd` for input (or hang-up): with `once`, until it is
    /// reported, then again after `rearm`; otherwise for as long as it is
    /// readable.
    pub fn add(&self, fd: &impl AsFd, token: u64, once: bool) -> io::Result<()> {
        self.0.add(fd.as_fd(), Event::new(Self::interest(once), token)).map_err(os_error)
    }

    /// Queues `fd` (a new socket, writable at once) to be reported once, for
    /// its turn; `rearm` then watches it for input.
    pub fn add_turn(&self, fd: &impl AsFd, token: u64) -> io::Result<()> {
        use nix::sys::epoll::EpollFlags;
        self.0.add(fd.as_fd(), Event::new(EpollFlags::EPOLLOUT | EpollFlags::EPOLLONESHOT, token)).map_err(os_error)
    }

    pub fn rearm(&self, fd: &impl AsFd, token: u64) -> io::Result<()> {
        self.0.modify(fd.as_fd(), &mut Event::new(Self::interest(true), token)).map_err(os_error)
    }

    pub fn remove(&self, fd: &impl AsFd) -> io::Result<()> {
        self.0.delete(fd.as_fd()).map_err(os_error)
    }

    /// Waits up to `timeout_ms` for readiness; how many of `events` were filled.
    pub fn wait(&self, events: &mut [Event], timeout_ms: u16) -> io::Result<usize> {
        match self.0.wait(events, timeout_ms) {
            Ok(n) => Ok(n),
            Err(nix::Error::EINTR) => Ok(0),
            Err(e) => Err(os_error(e)),
        }
    }
}
