//! A daemon process's line to its supervisor (see `supervisor`): it says
//! when it is ready, and asks for a successor when it has to go, so that a
//! process going away never leaves its group without one accepting.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use super::supervisor::{GIVING_WAY, READY, RELEASE, STARTUP_FAILED, STOP, SUCCESSOR_WANTED};

struct Line {
    stream: UnixStream,
    /// A successor has been asked for.
    asked: AtomicBool,
    /// Generations before this process in its slot whose startup failed, in a row.
    failed_generations: u32,
}

static LINE: OnceLock<Line> = OnceLock::new();

/// Keeps the line to the supervisor (at the daemon's start), and how many
/// generations before this process failed their startup in a row.
pub fn install(stream: UnixStream, failed_generations: u32) {
    let _ = LINE.set(Line { stream, asked: AtomicBool::new(false), failed_generations });
}

/// Generations before this process in its slot whose startup failed, in a row.
pub fn failed_generations() -> u32 {
    LINE.get().map_or(0, |line| line.failed_generations)
}

/// Watches the line, on a thread of its own: `release` runs when the
/// supervisor lets this process go for its successor, or the line breaks
/// (the supervisor is gone); `stop` when the supervisor stops the group.
pub fn take_release(release: impl FnOnce() + Send + 'static, stop: impl FnOnce(&str) + Send + 'static, group: String) {
    let Some(Ok(mut reader)) = LINE.get().map(|line| line.stream.try_clone()) else { return };
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        loop {
            match reader.read(&mut byte) {
                Ok(1) if byte[0] == STOP => return stop(&group),
                Ok(1) if byte[0] != RELEASE => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                _ => break,
            }
        }
        release();
    });
}

fn send(byte: u8) {
    if let Some(line) = LINE.get() {
        let _ = (&line.stream).write_all(&[byte]);
    }
}

/// The process accepts connections from now on.
pub fn ready() {
    send(READY);
}

/// An application's startup failed here: this process's successor is one
/// more generation in a row to have failed.
pub fn startup_failed() {
    send(STARTUP_FAILED);
}

/// This process has to go but serves on until its successor is ready
/// (the supervisor then releases it); false if a successor was asked for
/// already.
pub fn hand_over() -> bool {
    ask(SUCCESSOR_WANTED)
}

/// This process has stopped accepting: its successor is wanted now.
pub fn give_way() -> bool {
    ask(GIVING_WAY)
}

fn ask(byte: u8) -> bool {
    let Some(line) = LINE.get() else { return false };
    if line.asked.swap(true, Ordering::AcqRel) {
        return false;
    }
    let _ = (&line.stream).write_all(&[byte]);
    true
}
