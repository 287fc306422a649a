//! One connection from an Apache child, and the WSGI layer's view of a
//! request arriving on it.

use std::io::Write;
use std::mem::MaybeUninit;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::origin::Challenge;
use super::os::{self, Peer};
use super::protocol::{self, BodyCursor};
use super::cgi_response::oversized_line;
use super::wire::{PIECE, Wire};
use crate::apache::log;
use crate::python::{Level, RequestIo};

/// Connections open in this process, for the bound on them.
static OPEN: AtomicUsize = AtomicUsize::new(0);

pub fn open_connections() -> usize {
    OPEN.load(Ordering::Relaxed)
}

/// One connection from an Apache child.
pub struct Connection {
    pub wire: Wire,
    /// Where the current request's body stands.
    pub body: BodyCursor,
    /// The response start has been written.
    pub started: bool,
    /// The response head was refused (over header-buffer-size=): a failure
    /// went out instead, and the rest of the response is dropped.
    refused: bool,
    /// The challenge this connection's heads are signed against, and how
    /// many heads it has carried.
    pub challenge: Challenge,
    pub heads: u64,
    /// Who connected, for log lines about a connection refused.
    pub peer: Peer,
    /// The process is stopping: responses end with EndClose.
    stopping: Arc<AtomicBool>,
}

impl Connection {
    pub fn new(stream: UnixStream, challenge: Challenge, stopping: Arc<AtomicBool>) -> Connection {
        OPEN.fetch_add(1, Ordering::Relaxed);
        let peer = os::peer(&stream);
        Connection { wire: Wire::new(stream), body: BodyCursor::new(), started: false, refused: false, challenge, heads: 0, peer, stopping }
    }

    /// Ready for the next exchange.
    pub fn reset(&mut self) {
        self.body = BodyCursor::new();
        self.started = false;
        self.refused = false;
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The WSGI layer's view of a request arriving through the group socket.
pub struct DaemonIo {
    pub conn: Arc<Mutex<Connection>>,
    /// `[remote ip:port] `, which starts the request's log lines (the daemon
    /// has no connection of Apache's to name the client, as the C module's does).
    pub log_prefix: String,
    /// header-buffer-size=: the longest response header line.
    pub header_limit: usize,
    /// Names the request in a refusal's log line.
    pub describe: String,
    /// send-buffer-size= (0: the system's default).
    pub send_buffer: u32,
}

/// What a connection's socket takes at once by default (its send buffer
/// is some hundreds of KiB), with room to spare.
const SENDS_AT_ONCE: usize = 16 * 1024;

/// Zeros to initialise read buffers with (a piece at a time).
static ZEROS: [u8; PIECE] = [0; PIECE];

impl RequestIo for DaemonIo {
    fn read_body(&mut self, buf: &mut [MaybeUninit<u8>]) -> std::io::Result<usize> {
        let c = &mut *self.conn.lock();
        let len = buf.len().min(PIECE);
        let buf = buf[..len].write_copy_of_slice(&ZEROS[..len]);
        Ok(c.body.read(&mut c.wire, buf)?)
    }

    fn send_headers(&mut self, status: u16, status_line: &str, headers: &[(String, String)]) -> std::io::Result<()> {
        let mut c = self.conn.lock();
        if let Some(line) = oversized_line(status_line, headers, self.header_limit) {
            // The C module's Apache child refuses such a head (with this
            // log line); refusing it here answers at once and spares the hop
            // the bytes.
            log::server(
                Level::Error,
                &format!(
                    "{}mod_wsgi (pid={}): Truncated or oversized response headers received from daemon process {}; {line} exceeds header-buffer-size={}.",
                    self.log_prefix,
                    std::process::id(),
                    self.describe,
                    self.header_limit
                ),
            );
            c.refused = true;
            return Ok(protocol::write_response_fail(&mut c.wire, 500)?);
        }
        c.started = true;
        Ok(protocol::write_response_start(&mut c.wire, status, status_line, headers)?)
    }

    fn write_body(&mut self, data: &[u8], flush: bool) -> std::io::Result<()> {
        let mut c = self.conn.lock();
        if c.refused {
            return Ok(());
        }
        if !data.is_empty() {
            protocol::write_response_data(&mut c.wire, data)?;
        } else if flush {
            protocol::write_response_flush(&mut c.wire)?;
        }
        if flush { c.wire.flush() } else { Ok(()) }
    }

    fn send_file(&mut self, file: std::os::fd::BorrowedFd<'_>, offset: u64, len: u64) -> std::io::Result<()> {
        // The open file itself crosses to the Apache child, which has Apache
        // send it (sendfile, and byte ranges): no byte of it passes here.
        let mut c = self.conn.lock();
        if c.refused {
            return Ok(());
        }
        c.wire.send_with_file(&protocol::response_file_frame(offset, len), file)
    }

    fn body_is_here(&self) -> bool {
        let c = self.conn.lock();
        c.body.ends_within(c.wire.buffered())
    }

    fn watch_client(&mut self) -> std::io::Result<bool> {
        let c = &mut *self.conn.lock();
        // The body's end marker may still be on its way after its last byte:
        // what comes after it is then only the Apache child's word.
        c.body.drain(&mut c.wire)?;
        protocol::write_watch(&mut c.wire)?;
        Ok(true)
    }

    fn finish(&mut self) -> std::io::Result<()> {
        let mut c = self.conn.lock();
        if c.refused {
            return Ok(());
        }
        if c.stopping.load(Ordering::Acquire) {
            protocol::write_response_end_close(&mut c.wire)?;
        } else {
            protocol::write_response_end(&mut c.wire)?;
        }
        c.wire.flush()
    }

    fn untimed(&mut self) {
        super::monitor::untimed(&self.conn);
    }

    fn sends_at_once(&self) -> usize {
        // Linux doubles a send buffer size set; half of it leaves the other
        // half and more for the bookkeeping it counts too.
        match self.send_buffer {
            0 => SENDS_AT_ONCE,
            size => (size as usize / 2).min(SENDS_AT_ONCE),
        }
    }

    fn log(&self, level: Level, msg: &str) {
        log::server(level, &format!("{}{msg}", self.log_prefix));
    }
}
