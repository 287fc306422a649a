//! A daemon process group's supervisor: a small single-threaded process
//! between the Apache parent and the group's daemons, without Python. It
//! forks the daemons, replaces one that dies the moment it is reaped (not on
//! the parent's one-second maintenance tick), and replaces a daemon that
//! has to go (maximum-requests, a changed script, restart-interval, ...)
//! by starting its successor first.
//!
//! Each daemon has a line to its supervisor (a socket pair). The daemon
//! sends `READY` once it accepts connections, and `SUCCESSOR_WANTED` when
//! it has to go but keeps serving, or `GIVING_WAY` when it has already
//! stopped accepting; the supervisor forks the successor at once and, when
//! the successor is ready, sends the old daemon `RELEASE`: it stops
//! accepting and finishes what it has. What is queued on the group socket
//! meanwhile waits there for whichever process accepts next. When the group
//! stops (Apache stops, or restarts fully) the supervisor sends `STOP`: with
//! no successor to come, a daemon first answers what is queued.
//!
//! Across a graceful restart of Apache, the old configuration's supervisor
//! keeps serving until the new one's daemons are all ready, which then say
//! so down the pipe the old supervisor reads (`release`).
//!
//! A daemon whose ASGI application failed its lifespan startup says so
//! (`STARTUP_FAILED`) before it gives way: each daemon is forked knowing how
//! many generations before it in its slot failed so in a row, and waits the
//! longer before giving way (see `monitor`).

use std::io::{PipeReader, PipeWriter, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::groups::Group;
use super::os::{self, Signalled};
use crate::apache::{log, process};
use crate::python::Level;

/// Daemon to supervisor: accepting connections.
pub const READY: u8 = b'R';
/// Daemon to supervisor: a successor is wanted; serving until released.
pub const SUCCESSOR_WANTED: u8 = b'G';
/// Daemon to supervisor: a successor is wanted; no longer accepting.
pub const GIVING_WAY: u8 = b'N';
/// Daemon to supervisor: an application's lifespan startup failed here;
/// the successor counts one more failed generation.
pub const STARTUP_FAILED: u8 = b'F';
/// Supervisor to daemon: stop accepting, finish what is running, exit.
pub const RELEASE: u8 = b'S';
/// Supervisor to daemon: the group stops (Apache stops or restarts fully);
/// answer what is queued on the socket, finish, exit.
pub const STOP: u8 = b'T';

/// How long a new configuration's daemons may take to become ready before
/// the old configuration's are released anyway.
const HANDOVER_LIMIT: Duration = Duration::from_secs(10);
/// A daemon that lived shorter than this before dying counts as failing to
/// start: it is forked again after a growing pause, not in a tight loop.
const SHORT_LIFE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

const SIGNALS: u64 = 0;
const RELEASED: u64 = 1;
/// A daemon's line is watched under its pid plus this.
const LINE: u64 = 16;

struct Daemon {
    pid: i32,
    slot: u32,
    line: UnixStream,
    started: Instant,
    ready: bool,
    /// Its successor has been forked; it goes once that one is ready.
    retiring: bool,
    /// When it was released to go.
    released: Option<Instant>,
    /// Generations before it in its slot whose startup failed, in a row.
    failed_generations: u32,
    /// It said its startup failed.
    startup_failed: bool,
}

impl Daemon {
    /// What its successor is forked with: one more failed generation, or
    /// none once a generation got by without a failed startup.
    fn successor_failed_generations(&self) -> u32 {
        if self.startup_failed { self.failed_generations.saturating_add(1) } else { 0 }
    }
}

struct Supervisor<'g> {
    group: &'g Arc<Group>,
    epoll: os::Epoll,
    signals: os::Signals,
    release: PipeReader,
    /// What Apache's processes show in ps; a daemon without display-name= shows it too.
    apache_title: process::Title,
    daemons: Vec<Daemon>,
    /// Slots to fork a daemon for (with its failed generations), and when.
    pending: Vec<(u32, u32, Instant)>,
    /// Per slot: deaths in a row of daemons that lived shorter than SHORT_LIFE.
    failures: Vec<u32>,
    /// The previous configuration's supervisor of this group, waiting for
    /// this one's daemons to be ready; and until when it waits at most.
    predecessor: Option<(PipeWriter, Instant)>,
    /// Released: the daemons finish and are not replaced; then it exits.
    released_at: Option<Instant>,
}

/// The supervisor's main; returns its exit code.
pub fn run(group: &Arc<Group>, release: PipeReader, predecessor: Option<PipeWriter>) -> i32 {
    os::die_with_parent();
    let name = &group.config.name;
    let apache_title = process::current_title();
    process::set_title(group.main_server as *const _, &format!("mod_wsgi supervisor ({name})"));
    let started = (|| -> std::io::Result<Supervisor<'_>> {
        let signals = os::Signals::take()?;
        let epoll = os::Epoll::new()?;
        epoll.add(&signals, SIGNALS, false)?;
        epoll.add(&release, RELEASED, false)?;
        let slots = group.config.processes.max(1);
        Ok(Supervisor {
            group,
            epoll,
            signals,
            release,
            apache_title,
            daemons: Vec::new(),
            pending: (0..slots).map(|slot| (slot, 0, Instant::now())).collect(),
            failures: vec![0; slots as usize],
            predecessor: predecessor.map(|p| (p, Instant::now() + HANDOVER_LIMIT)),
            released_at: None,
        })
    })();
    match started {
        Ok(mut supervisor) => supervisor.serve(),
        Err(e) => {
            log::server(Level::Error, &format!("mod_wsgi (pid={}): Unable to supervise daemon process group '{name}': {e}", std::process::id()));
            1
        }
    }
}

impl Supervisor<'_> {
    fn serve(&mut self) -> i32 {
        let mut events = [os::Event::empty(); 16];
        loop {
            self.fork_due();
            self.hand_over_if_ready();
            self.kill_overdue();
            if let Some(since) = self.released_at {
                if self.daemons.is_empty() {
                    return 0;
                }
                // The daemons bound their own graceful stop; this is the backstop.
                let config = &self.group.config;
                if since.elapsed() > config.graceful_timeout + config.shutdown_timeout + Duration::from_secs(1) {
                    return self.stop();
                }
            }
            let n = match self.epoll.wait(&mut events, self.wait_ms()) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                Err(e) => {
                    log::server(Level::Error, &format!("mod_wsgi (pid={}): epoll_wait failed: {e}", std::process::id()));
                    std::thread::sleep(Duration::from_millis(100));
                    0
                }
            };
            for event in &events[..n] {
                match event.data() {
                    SIGNALS => {
                        while let Some(signal) = self.signals.next() {
                            match signal {
                                Signalled::ChildExited => self.reap(),
                                Signalled::Stop => return self.stop(),
                                Signalled::Other => {}
                            }
                        }
                    }
                    RELEASED => self.released(),
                    token => self.heard(token.saturating_sub(LINE) as i32),
                }
            }
        }
    }

    /// A released daemon bounds its own graceful stop; one still running
    /// well past that (stuck, or not heeding the release) is killed, so
    /// replaced processes cannot pile up.
    fn kill_overdue(&self) {
        let config = &self.group.config;
        // An evicted daemon may wait eviction-timeout instead.
        let limit = config.graceful_timeout.max(config.eviction_timeout) + config.shutdown_timeout + Duration::from_secs(1);
        for daemon in self.daemons.iter().filter(|d| d.released.is_some_and(|at| at.elapsed() > limit)) {
            os::kill(daemon.pid, Signal::SIGKILL);
        }
    }

    /// Milliseconds until something is due (a fork, the handover limit), at most 100.
    fn wait_ms(&self) -> u16 {
        let now = Instant::now();
        let due = self.pending.iter().map(|&(_, _, at)| at).chain(self.predecessor.as_ref().map(|(_, at)| *at)).min();
        let wait = due.map_or(Duration::from_millis(100), |at| at.saturating_duration_since(now)).min(Duration::from_millis(100));
        wait.as_millis() as u16
    }

    fn fork_due(&mut self) {
        if self.released_at.is_some() {
            self.pending.clear();
            return;
        }
        let now = Instant::now();
        let due: Vec<(u32, u32)> = self.pending.iter().filter(|&&(_, _, at)| at <= now).map(|&(slot, failed, _)| (slot, failed)).collect();
        self.pending.retain(|&(_, _, at)| at > now);
        for (slot, failed_generations) in due {
            self.fork(slot, failed_generations);
        }
    }

    /// Forks a daemon for `slot`, after `failed_generations` whose startup
    /// failed; on failure tries again in a second.
    fn fork(&mut self, slot: u32, failed_generations: u32) {
        let name = &self.group.config.name;
        let forked = UnixStream::pair().and_then(|(ours, theirs)| {
            let keep: Vec<RawFd> = self.group.listener.iter().map(|l| l.as_raw_fd()).chain([theirs.as_raw_fd()]).collect();
            let group = self.group.clone();
            let title = &self.apache_title;
            let pid = process::fork_unwatched(keep, move || {
                process::restore_title(group.main_server as *const _, title);
                super::process::run(&group, slot, theirs, failed_generations)
            })?;
            Ok((pid, ours))
        });
        match forked.and_then(|(pid, line)| {
            self.epoll.add(&line, LINE + pid as u64, false)?;
            Ok((pid, line))
        }) {
            Ok((pid, line)) => self.daemons.push(Daemon {
                pid,
                slot,
                line,
                started: Instant::now(),
                ready: false,
                retiring: false,
                released: None,
                failed_generations,
                startup_failed: false,
            }),
            Err(e) => {
                log::server(Level::Error, &format!("mod_wsgi (pid={}): Unable to start a daemon process for group '{name}': {e}", std::process::id()));
                self.pending.push((slot, failed_generations, Instant::now() + Duration::from_secs(1)));
            }
        }
    }

    /// Reaps every daemon that exited; one that was not on its way out is
    /// replaced at once (or after a pause if it keeps dying young).
    fn reap(&mut self) {
        let name = self.group.config.name.clone();
        while let Some(exit) = os::reap_any() {
            let Some(index) = self.daemons.iter().position(|d| d.pid == exit.pid) else { continue };
            let daemon = self.daemons.swap_remove(index);
            let _ = self.epoll.remove(&daemon.line);
            let pid = exit.pid;
            // The C module's lines for every exit, a planned one too (whose
            // successor is already running).
            let replaced = daemon.retiring || self.released_at.is_some();
            log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Process '{name}' has died, deregister and restart it."));
            log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Process '{name}' {}", exit.how));
            log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Process '{name}' has been deregistered and will no longer be monitored."));
            if replaced {
                continue;
            }
            let slot = daemon.slot as usize;
            let pause = if daemon.started.elapsed() < SHORT_LIFE {
                self.failures[slot] += 1;
                // The first early death is forked again at once; then 0.2 s, 0.4 s, ... up to 5 s.
                let doublings = self.failures[slot].saturating_sub(2).min(5);
                if self.failures[slot] == 1 { Duration::ZERO } else { (Duration::from_millis(200) * (1 << doublings)).min(LONGEST_PAUSE) }
            } else {
                self.failures[slot] = 0;
                Duration::ZERO
            };
            self.pending.push((daemon.slot, daemon.successor_failed_generations(), Instant::now() + pause));
        }
    }

    /// A daemon spoke on its line.
    fn heard(&mut self, pid: i32) {
        let Some(index) = self.daemons.iter().position(|d| d.pid == pid) else { return };
        let mut bytes = [0u8; 16];
        let n = match (&self.daemons[index].line).read(&mut bytes) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::Interrupted => return,
            Err(_) => 0,
        };
        if n == 0 {
            // Its end closed: it is exiting; the reaping follows.
            let _ = self.epoll.remove(&self.daemons[index].line);
            return;
        }
        for &byte in &bytes[..n] {
            match byte {
                READY => {
                    self.daemons[index].ready = true;
                    self.failures[self.daemons[index].slot as usize] = 0;
                    let slot = self.daemons[index].slot;
                    // Its predecessors in the slot now go.
                    for old in self.daemons.iter_mut().filter(|d| d.slot == slot && d.retiring && d.released.is_none()) {
                        old.released = Some(Instant::now());
                        let _ = (&old.line).write_all(&[RELEASE]);
                    }
                }
                STARTUP_FAILED => self.daemons[index].startup_failed = true,
                SUCCESSOR_WANTED | GIVING_WAY if !self.daemons[index].retiring && self.released_at.is_none() => {
                    self.daemons[index].retiring = true;
                    let (slot, failed_generations) = (self.daemons[index].slot, self.daemons[index].successor_failed_generations());
                    self.fork(slot, failed_generations);
                }
                _ => {}
            }
        }
    }

    /// This configuration's daemons are all ready (or the wait is over):
    /// the previous configuration's supervisor lets its daemons go.
    fn hand_over_if_ready(&mut self) {
        let Some((_, limit)) = &self.predecessor else { return };
        let slots = self.failures.len();
        let ready = (0..slots as u32).all(|slot| self.daemons.iter().any(|d| d.slot == slot && d.ready && !d.retiring));
        if (ready || Instant::now() >= *limit)
            && let Some((mut writer, _)) = self.predecessor.take()
        {
            let _ = writer.write_all(&[1]);
        }
    }

    /// The successor of this supervisor is ready, or its group is gone: the
    /// daemons stop accepting and finish what they have; none is replaced.
    fn released(&mut self) {
        let _ = self.epoll.remove(&self.release);
        if self.released_at.is_some() {
            return;
        }
        let mut byte = [0u8; 1];
        let _ = self.release.read(&mut byte);
        log::server(
            Level::Info,
            &format!("mod_wsgi (pid={}): Daemon process group '{}' handed over to its new configuration, its processes finish their requests.", std::process::id(), self.group.config.name),
        );
        self.released_at = Some(Instant::now());
        self.pending.clear();
        for daemon in self.daemons.iter_mut().filter(|d| d.released.is_none()) {
            daemon.released = Some(Instant::now());
            let _ = (&daemon.line).write_all(&[RELEASE]);
        }
    }

    /// Stops every daemon (each has shutdown-timeout to finish, then is
    /// killed), and exits.
    fn stop(&mut self) -> i32 {
        let name = &self.group.config.name;
        self.predecessor = None;
        for daemon in &self.daemons {
            log::server(Level::Info, &format!("mod_wsgi (pid={}): Process '{name}' to be deregistered, as server is restarting or being shutdown.", daemon.pid));
            // A daemon that cannot be told (its line is full or gone) is signalled.
            if !matches!((&daemon.line).write(&[STOP]), Ok(1)) {
                os::kill(daemon.pid, Signal::SIGTERM);
            }
        }
        let pids = self.daemons.drain(..).map(|d| d.pid).collect();
        let deadline = Instant::now() + self.group.config.shutdown_timeout + Duration::from_secs(1);
        os::reap_until(pids, deadline, |pid| {
            log::server(Level::Info, &format!("mod_wsgi (pid={pid}): Process '{name}' has been deregistered and will no longer be monitored."));
        });
        0
    }
}
