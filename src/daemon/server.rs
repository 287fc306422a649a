//! The daemon's request loop: worker threads accept connections from Apache's
//! children on the group socket and run each request through the WSGI layer.

use std::io::{BufReader, BufWriter, Write};
use std::mem::MaybeUninit;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Weak};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::os;
use super::protocol::{self, BodyCursor, RequestHead};
use super::supervisor::Group;
use crate::apache::log;
use crate::python::{self, Level, Outcome, RequestInfo, RequestIo};

const BUFFER: usize = 64 * 1024;

fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// The requests running now (start time in µs, connection), for request-timeout.
static RUNNING: Mutex<Vec<(i64, Weak<Mutex<Connection>>)>> = Mutex::new(Vec::new());

/// Marks a request as running for as long as it lives.
struct Busy(Arc<Mutex<Connection>>);

impl Busy {
    fn start(conn: &Arc<Mutex<Connection>>) -> Busy {
        RUNNING.lock().push((now_micros(), Arc::downgrade(conn)));
        Busy(conn.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        RUNNING.lock().retain(|(_, c)| !std::ptr::eq(c.as_ptr(), Arc::as_ptr(&self.0)));
    }
}

/// request-timeout: a request running longer than this means the process is
/// stuck (or overloaded); it exits and the parent starts a fresh one.
fn watch_request_time(group: &Arc<Group>) {
    let limit = group.config.request_timeout;
    if limit.is_zero() {
        return;
    }
    let group = group.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let oldest = RUNNING.lock().iter().map(|(t, _)| *t).min();
            if let Some(started) = oldest
                && now_micros() - started > limit.as_micros() as i64
            {
                log::server(
                    Level::Error,
                    &format!("mod_wsgi (pid={}): Daemon process request time limit exceeded, stopping process '{}'.", std::process::id(), group.config.name),
                );
                // Tell the clients still waiting for a response start why it will not come.
                for (_, conn) in RUNNING.lock().iter() {
                    if let Some(conn) = conn.upgrade()
                        && let Some(mut c) = conn.try_lock_for(Duration::from_millis(50))
                        && !c.started
                    {
                        let _ = protocol::write_response_fail(&mut c.writer, 504);
                    }
                }
                os::exit_now(0);
            }
        }
    });
}

/// Serves until a stop signal or maximum-requests; returns the exit code.
pub fn serve(group: &Arc<Group>) -> i32 {
    watch_request_time(group);
    let stopping = Arc::new(AtomicBool::new(false));
    {
        let stopping = stopping.clone();
        let grace = group.config.shutdown_timeout;
        std::thread::spawn(move || {
            os::wait_for_stop();
            stopping.store(true, Ordering::Release);
            // Requests still running after shutdown-timeout are cut off.
            std::thread::sleep(grace);
            os::exit_now(0);
        });
    }
    let served = AtomicU32::new(0);
    std::thread::scope(|scope| {
        for _ in 0..group.config.threads.max(1) {
            scope.spawn(|| worker(group, &stopping, &served));
        }
    });
    0
}

/// A worker takes connections straight from the listener and serves each
/// until the Apache child closes it.
fn worker(group: &Group, stopping: &AtomicBool, served: &AtomicU32) {
    let max = group.config.maximum_requests;
    while !stopping.load(Ordering::Acquire) {
        if max > 0 && served.load(Ordering::Acquire) >= max {
            // maximum-requests: finish what is running, then exit; the parent forks a fresh process.
            stopping.store(true, Ordering::Release);
            break;
        }
        let stream = match group.listener.accept() {
            Ok((stream, _)) => stream,
            // The listener's receive timeout wakes idle workers to see `stopping`.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => {
                log::server(Level::Error, &format!("mod_wsgi (pid={}): accept on '{}' failed: {e}", std::process::id(), group.socket));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let Some(conn) = Connection::new(stream) else { continue };
        let conn = Arc::new(Mutex::new(conn));
        while serve_exchange(group, &conn, stopping, served) {}
    }
}

/// Runs one exchange on `conn`; true when the connection can carry another.
fn serve_exchange(group: &Group, conn: &Arc<Mutex<Connection>>, stopping: &AtomicBool, served: &AtomicU32) -> bool {
    let head = match protocol::read_request_head(&mut conn.lock().reader) {
        Ok(Some(head)) => head,
        Ok(None) => return false,
        // The Apache child went away between requests.
        Err(protocol::ProtocolError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => return false,
        Err(e) => {
            log::server(Level::Error, &format!("mod_wsgi (pid={}): bad request from Apache child: {e}", std::process::id()));
            return false;
        }
    };
    served.fetch_add(1, Ordering::AcqRel);
    {
        let mut c = conn.lock();
        c.body = BodyCursor::new();
        c.started = false;
    }
    let waited = Duration::from_micros(now_micros().saturating_sub(head.request_start).max(0) as u64);
    let queue_timeout = group.config.queue_timeout;
    let outcome = if !queue_timeout.is_zero() && waited > queue_timeout {
        // queue-timeout: the client has probably given up; answer 504 without running the application.
        log::server(Level::Info, &format!("mod_wsgi (pid={}): Queue timeout expired for WSGI daemon process '{}'.", std::process::id(), group.config.name));
        Outcome::TimedOut
    } else {
        let _busy = Busy::start(conn);
        python::run(&request_info(group, &head), Box::new(DaemonIo(conn.clone())))
    };
    let mut c = conn.lock();
    let ended = match outcome {
        Outcome::TimedOut => protocol::write_response_fail(&mut c.writer, 504),
        Outcome::Sent => Ok(()),
        Outcome::Aborted => protocol::write_response_abort(&mut c.writer),
        Outcome::NoApplication | Outcome::Failed if c.started => protocol::write_response_abort(&mut c.writer),
        Outcome::NoApplication => protocol::write_response_fail(&mut c.writer, 404),
        Outcome::Failed => protocol::write_response_fail(&mut c.writer, 500),
    };
    // The client sends the whole body before it reads the response, so the
    // part the application left unread is all coming: consume it, or closing
    // with unread data would reset the connection under the response.
    let c = &mut *c;
    let drained = c.body.drain(&mut c.reader).is_ok();
    ended.is_ok() && c.writer.flush().is_ok() && drained && !stopping.load(Ordering::Acquire)
}

fn request_info<'a>(group: &'a Group, head: &'a RequestHead) -> RequestInfo<'a> {
    RequestInfo {
        cgi: head.environ.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect(),
        script_filename: &head.script_filename,
        script_mtime: head.script_mtime,
        script_reloading: head.script_reloading,
        callable_object: &head.callable_object,
        process_group: &group.config.name,
        application_group: &head.application_group,
        url_scheme: if head.url_scheme == "https" { "https" } else { "http" },
        multithread: group.config.threads > 1,
        multiprocess: group.config.multiprocess,
        server_version: crate::apache::process::server_version(),
        listener_host: &head.listener_host,
        listener_port: head.listener_port,
        request_id: head.request_id.clone(),
        request_start: head.request_start,
        enable_sendfile: head.enable_sendfile,
        ignore_activity: head.ignore_activity,
    }
}

impl Connection {
    fn new(stream: UnixStream) -> Option<Connection> {
        let write_half = stream.try_clone().ok()?;
        Some(Connection {
            reader: BufReader::with_capacity(BUFFER, stream),
            writer: BufWriter::with_capacity(BUFFER, write_half),
            body: BodyCursor::new(),
            started: false,
        })
    }
}

/// One connection from an Apache child.
struct Connection {
    reader: BufReader<UnixStream>,
    writer: BufWriter<UnixStream>,
    /// Where the current request's body stands.
    body: BodyCursor,
    /// The response start has been written.
    started: bool,
}

/// The WSGI layer's view of a request arriving through the group socket.
struct DaemonIo(Arc<Mutex<Connection>>);

impl RequestIo for DaemonIo {
    fn read_body(&mut self, buf: &mut [MaybeUninit<u8>]) -> std::io::Result<usize> {
        let c = &mut *self.0.lock();
        // SAFETY: the cursor only writes bytes into the buffer (read(2)
        // semantics) and reports how many; none are read before written.
        let buf = unsafe { &mut *(buf as *mut [MaybeUninit<u8>] as *mut [u8]) };
        Ok(c.body.read(&mut c.reader, buf)?)
    }

    fn send_headers(&mut self, status: u16, status_line: &str, headers: &[(String, String)]) -> std::io::Result<()> {
        let mut c = self.0.lock();
        c.started = true;
        Ok(protocol::write_response_start(&mut c.writer, status, status_line, headers)?)
    }

    fn write_body(&mut self, data: &[u8], flush: bool) -> std::io::Result<()> {
        let mut c = self.0.lock();
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
        let mut c = self.0.lock();
        protocol::write_response_end(&mut c.writer)?;
        c.writer.flush()
    }

    fn log(&self, level: Level, msg: &str) {
        log::server(level, msg);
    }
}
