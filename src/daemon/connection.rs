//! One connection from an Apache child, and the WSGI layer's view of a
//! request arriving on it.

use std::io::{BufReader, BufWriter, Write};
use std::mem::MaybeUninit;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use super::os;
use super::protocol::{self, BodyCursor};
use crate::apache::log;
use crate::python::{Level, RequestIo};

const BUFFER: usize = 64 * 1024;

impl Connection {
    pub fn new(stream: UnixStream, stopping: Arc<AtomicBool>) -> Option<Connection> {
        let write_half = stream.try_clone().ok()?;
        Some(Connection {
            reader: BufReader::with_capacity(BUFFER, stream),
            writer: BufWriter::with_capacity(BUFFER, write_half),
            body: BodyCursor::new(),
            started: false,
            stopping,
        })
    }
}

/// One connection from an Apache child.
pub struct Connection {
    pub reader: BufReader<UnixStream>,
    pub writer: BufWriter<UnixStream>,
    /// Where the current request's body stands.
    pub body: BodyCursor,
    /// The response start has been written.
    pub started: bool,
    /// The process is stopping: responses end with EndClose.
    stopping: Arc<AtomicBool>,
}

/// The WSGI layer's view of a request arriving through the group socket.
pub struct DaemonIo {
    pub conn: Arc<Mutex<Connection>>,
    /// `[remote ip:port] `, which starts the request's log lines (the daemon
    /// has no connection of Apache's to name the client, as the C module's does).
    pub log_prefix: String,
}

impl RequestIo for DaemonIo {
    fn read_body(&mut self, buf: &mut [MaybeUninit<u8>]) -> std::io::Result<usize> {
        let c = &mut *self.conn.lock();
        for byte in buf.iter_mut() {
            byte.write(0);
        }
        // SAFETY: every byte was initialised just above.
        let buf = unsafe { &mut *(buf as *mut [MaybeUninit<u8>] as *mut [u8]) };
        Ok(c.body.read(&mut c.reader, buf)?)
    }

    fn send_headers(&mut self, status: u16, status_line: &str, headers: &[(String, String)]) -> std::io::Result<()> {
        let mut c = self.conn.lock();
        c.started = true;
        Ok(protocol::write_response_start(&mut c.writer, status, status_line, headers)?)
    }

    fn write_body(&mut self, data: &[u8], flush: bool) -> std::io::Result<()> {
        let mut c = self.conn.lock();
        protocol::write_response_data(&mut c.writer, data)?;
        if flush { c.writer.flush() } else { Ok(()) }
    }

    fn send_file(&mut self, fd: i32, offset: u64, len: u64) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let file = os::borrow_file(fd);
        let mut buf = vec![0u8; BUFFER];
        let (mut at, end) = (offset, offset + len);
        while at < end {
            let want = ((end - at) as usize).min(buf.len());
            let n = file.read_at(&mut buf[..want], at)?;
            if n == 0 {
                break;
            }
            self.write_body(&buf[..n], false)?;
            at += n as u64;
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        let mut c = self.conn.lock();
        if c.stopping.load(Ordering::Acquire) {
            protocol::write_response_end_close(&mut c.writer)?;
        } else {
            protocol::write_response_end(&mut c.writer)?;
        }
        c.writer.flush()
    }

    fn log(&self, level: Level, msg: &str) {
        log::server(level, &format!("{}{msg}", self.log_prefix));
    }
}
