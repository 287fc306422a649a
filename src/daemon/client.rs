//! The Apache child's side of daemon mode: forwards a request over the
//! group's socket and relays the daemon's response to the client. No Python
//! runs here. A request body is read ahead, up to request-buffer-size=,
//! before a daemon is involved, so a slow client holds no daemon thread;
//! the rest of a larger body, and every response, stream through in bounded
//! pieces.

use std::ffi::c_int;
use std::io::{ErrorKind, Write};
use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::cgi_response;
use super::origin::Challenge;
use super::pieces::Piece;
use super::protocol::{self, Incoming, RequestHead, ResponseFrame};
use super::groups::Group;
use super::wire::{PIECE, Wire};
use crate::apache::ffi;
use crate::apache::request::{ClientWriteError, Request};
use crate::python::RequestIo;

/// Sends `head` and the request body to `group`, then relays the response.
/// Returns the handler's status (OK, or an HTTP error status).
/// With `error_override` (WSGIErrorOverride On) an error status from the
/// application is answered by Apache (its ErrorDocument) instead.
pub fn forward(req: &mut Request, head: &mut RequestHead, group: &Group, error_override: bool) -> c_int {
    // response-socket-timeout= (else socket-timeout=, else Apache's Timeout)
    // bounds each write to the client, so a client that stops reading frees
    // the daemon thread feeding it.
    let timeout = group.config.response_socket_timeout;
    let restore = if timeout.is_zero() { None } else { req.swap_client_timeout(timeout.as_micros() as i64) };
    let status = forward_once_or_again(req, head, group, error_override);
    if let Some(previous) = restore {
        req.swap_client_timeout(previous);
    }
    status
}

fn forward_once_or_again(req: &mut Request, head: &mut RequestHead, group: &Group, error_override: bool) -> c_int {
    // Before a connection is taken: nothing is sent on a read error.
    let reading = Instant::now();
    let body = match read_ahead(req, group.config.request_buffer_size as usize) {
        Ok(body) => body,
        Err(e) => {
            log_read_error(req, &e);
            return ffi::AP_FILTER_ERROR;
        }
    };
    head.body_read_ahead = reading.elapsed().as_micros().try_into().unwrap_or(i64::MAX);
    let target = Target { group, error_override, timeout: socket_timeout(req, group) };
    let mut relayed = loop {
        let kept = kept_connection(group);
        let pooled = kept.is_some();
        let conn = kept.map_or_else(|| connect(group, target.timeout), Ok);
        head.queue_start = crate::daemon::monitor::now_micros();
        head.daemon_connects = 1;
        match exchange(req, head, &body, &target, conn, pooled) {
            // A kept connection whose daemon had closed it: the next one, or a new one.
            Relayed::Stale => continue,
            relayed => break relayed,
        }
    };
    // The request never ran and can go again on a new connection: the
    // daemon handed it back (it is restarting for a changed script), or a
    // kept connection turned out closed (its daemon had just ended). A
    // script changed twice in quick succession hands it back twice.
    for _ in 0..RETRIES {
        match relayed {
            Relayed::Done(status) => return status,
            Relayed::Again | Relayed::Stale => relayed = exchange(req, again(req, head), &body, &target, connect(group, target.timeout), false),
        }
    }
    match relayed {
        Relayed::Done(status) => status,
        Relayed::Again | Relayed::Stale => ffi::HTTP_SERVICE_UNAVAILABLE as c_int,
    }
}

/// How many times a request that never ran is sent again.
const RETRIES: usize = 3;

/// The head of a request about to be sent a second time.
fn again<'h>(req: &Request, head: &'h mut RequestHead) -> &'h RequestHead {
    req.log_info(&format!("mod_wsgi (pid={}): Connect after WSGI daemon process restart, attempt #{}.", std::process::id(), head.daemon_restarts + 1));
    head.queue_start = crate::daemon::monitor::now_micros();
    head.daemon_connects += 1;
    head.daemon_restarts += 1;
    head
}

enum Relayed {
    Done(c_int),
    /// The request never ran: it goes again, on a new connection.
    Again,
    /// A kept connection turned out closed before any of the request went
    /// out (its daemon stopped meanwhile): the request takes another.
    Stale,
}

/// Where a request goes and how its response is treated.
struct Target<'a> {
    group: &'a Group,
    error_override: bool,
    /// How long each read and write on the hop may wait.
    timeout: Duration,
}

/// The part of a request body read before a daemon was involved, in pieces
/// (memory follows the bytes that came, and goes back with the request).
struct ReadAhead {
    pieces: Vec<Piece>,
    len: usize,
    /// Whether that is the whole body; else the rest is still to be read.
    whole: bool,
}

impl ReadAhead {
    /// The bytes read, a piece at a time.
    fn slices(&self) -> impl Iterator<Item = &[u8]> {
        self.pieces.iter().enumerate().map(|(i, piece)| &piece[..(self.len - i * PIECE).min(PIECE)])
    }
}

/// Reads the request body into memory, up to `limit` bytes, so that a
/// daemon thread is taken only once the body (or that much of it) is here.
/// A request without a body allocates nothing.
fn read_ahead(req: &mut Request, limit: usize) -> std::io::Result<ReadAhead> {
    let mut body = ReadAhead { pieces: Vec::new(), len: 0, whole: !req.has_body() };
    if limit == 0 || !req.has_body() {
        return Ok(body);
    }
    while body.len < limit {
        let at = body.len % PIECE;
        if at == 0 {
            body.pieces.push(Piece::take()?);
        }
        let Some(piece) = body.pieces.last_mut() else { break };
        let room = (PIECE - at).min(limit - body.len).min(READ_STEP);
        let n = req.read_body_bytes(&mut piece[at..at + room])?;
        body.len += n;
        if n == 0 || !req.has_body() {
            body.whole = true;
            break;
        }
    }
    Ok(body)
}

/// The most asked of Apache per read of the request body. Its input filter
/// reads as much as asked for at once, into 8 KB blocks of the connection's
/// allocator, which keeps freed blocks for the connection's next request (up
/// to MaxMemFree): asked for 64 KiB, each connection kept eight of them.
const READ_STEP: usize = 16 * 1024;

/// Reads body bytes into `buf` a READ_STEP at a time until it is full, the
/// body ends (0), or a read comes back short: what came then goes on at
/// once rather than waiting for a slow client to fill the piece.
fn read_piece(req: &mut Request, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let want = (buf.len() - filled).min(READ_STEP);
        let n = req.read_body_bytes(&mut buf[filled..filled + want])?;
        filled += n;
        if n < want || !req.has_body() {
            break;
        }
    }
    Ok(filled)
}

fn log_read_error(req: &Request, e: &std::io::Error) {
    req.log_error(&format!("mod_wsgi (pid={}): Request data read error when proxying data to daemon process: {e}.", std::process::id()));
}

/// What of the body went out in one exchange.
#[derive(Default)]
struct BodySent {
    /// Body bytes sent to the daemon.
    bytes: usize,
    /// Of those, bytes read from the client during the exchange: once there
    /// are any, the request cannot be sent again.
    streamed: usize,
}

fn exchange(req: &mut Request, head: &RequestHead, body: &ReadAhead, target: &Target<'_>, conn: std::io::Result<Conn>, pooled: bool) -> Relayed {
    let group = target.group;
    let name = &group.config.name;
    let mut conn = match conn {
        Ok(conn) => conn,
        Err(e) if e.kind() == ErrorKind::TimedOut => {
            // As the C module words it, whose children send the request into
            // the socket's backlog and then wait for the response.
            req.log_error(&format!(
                "mod_wsgi (pid={}): Timeout when reading response headers from daemon process '{name}': {}",
                std::process::id(),
                String::from_utf8_lossy(req.filename())
            ));
            return Relayed::Done(ffi::HTTP_GATEWAY_TIME_OUT as c_int);
        }
        Err(e) => {
            let uid = super::os::ids().0;
            req.log_os_error(
                e.raw_os_error().unwrap_or(0),
                &format!("mod_wsgi (pid={}): Unable to connect to WSGI daemon process '{name}' on '{}' as user with uid={uid}.", std::process::id(), group.socket),
            );
            return Relayed::Done(ffi::HTTP_SERVICE_UNAVAILABLE as c_int);
        }
    };
    conn.set_timeout(target.timeout);

    let mut sent = BodySent::default();
    let before = conn.wire.sent();
    match send_request(req, head, body, &mut conn, group, &mut sent) {
        Ok(()) => {}
        // A kept connection its daemon had closed (a broken pipe before any
        // of the request went out, and none of the body taken from the
        // client): the request takes another, unnoticed.
        Err(SendError::Daemon(protocol::ProtocolError::Io(e)))
            if pooled && conn.wire.sent() == before && sent.streamed == 0 && matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) =>
        {
            return Relayed::Stale;
        }
        // A kept connection found closed can take the request again on a new
        // one, if the body is still to hand (none was read from the client
        // meanwhile) and the daemon cannot have started it: the request has
        // no body, or none of it reached the daemon.
        Err(SendError::Daemon(_)) if pooled && sent.streamed == 0 && (sent.bytes == 0 || conn.wire.sent() == before) => return Relayed::Again,
        Err(SendError::Client(e)) => {
            log_read_error(req, &e);
            // The application learns the same from wsgi.input; the connection is not reused.
            let _ = protocol::write_body_abort(&mut conn.wire, &e.to_string());
            // httpd has answered the client already (the input filters' error).
            return Relayed::Done(ffi::AP_FILTER_ERROR);
        }
        Err(SendError::Daemon(e)) => {
            req.log_error(&format!("mod_wsgi (pid={}): Unable to send request to WSGI daemon process '{name}' on '{}': {e}.", std::process::id(), group.socket));
            return Relayed::Done(ffi::HTTP_SERVICE_UNAVAILABLE as c_int);
        }
    }
    // A reset is taken as a request never read only when it had no body: a
    // daemon that read a head and died with some of its body unread resets
    // the connection too.
    match relay_response(req, &mut conn.wire, target, pooled && sent.bytes == 0) {
        Some((status, reusable)) => {
            if reusable {
                conn.wire.release_buffers();
                checkin(group, conn);
            }
            Relayed::Done(status)
        }
        None => Relayed::Again,
    }
}

/// A connection to a daemon, kept between requests.
struct Conn {
    wire: Wire,
    /// The daemon's challenge, which this connection's heads are signed
    /// against, and how many heads it has carried.
    challenge: Challenge,
    heads: u64,
    /// The socket's send and receive timeout, as last set.
    timeout: Option<Duration>,
}

impl Conn {
    /// A new connection, once the daemon that accepted it has sent its challenge.
    fn open(stream: UnixStream, timeout: Duration) -> std::io::Result<Conn> {
        let mut conn = Conn { wire: Wire::taking_files(stream), challenge: [0; protocol::CHALLENGE_LEN], heads: 0, timeout: None };
        conn.set_timeout(timeout);
        conn.challenge = protocol::read_challenge(&mut conn.wire).map_err(|e| match std::io::Error::from(e) {
            // No daemon took the connection in time (none is running, or all are busy).
            e if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => std::io::Error::new(ErrorKind::TimedOut, e),
            e => e,
        })?;
        Ok(conn)
    }

    /// Bounds each read and write; the two system calls are made only when
    /// the timeout differs from the one the connection already has.
    fn set_timeout(&mut self, timeout: Duration) {
        if self.timeout == Some(timeout) {
            return;
        }
        let socket = self.wire.stream();
        let set = socket.set_read_timeout(Some(timeout)).and_then(|()| socket.set_write_timeout(Some(timeout)));
        self.timeout = set.ok().map(|()| timeout);
    }
}

/// Idle connections to each group's daemons, kept by this Apache child
/// between requests so a request costs no connect (keyed by socket path).
static IDLE: LazyLock<Mutex<HashMap<String, Vec<Conn>>>> = LazyLock::new(Default::default);
/// At most this many idle connections per group and Apache child.
const MAX_IDLE: usize = 64;

/// The most recently kept connection to the group, if any. Whether its
/// daemon closed it meanwhile (a restart) shows when the request is sent: a
/// broken pipe, with nothing gone out.
fn kept_connection(group: &Group) -> Option<Conn> {
    IDLE.lock().get_mut(&group.socket).and_then(Vec::pop)
}

fn checkin(group: &Group, conn: Conn) {
    let mut idle = IDLE.lock();
    // The group's entry is there but for its first connection: no key copied per request.
    let conns = match idle.get_mut(&group.socket) {
        Some(conns) => conns,
        None => idle.entry(group.socket.clone()).or_default(),
    };
    if conns.len() < MAX_IDLE {
        conns.push(conn);
    }
}

/// Connects to the group's socket, trying again while its daemons are
/// (re)starting or busy, for up to connect-timeout; then waits up to
/// `timeout` for a daemon to take the connection and send its challenge.
fn connect(group: &Group, timeout: Duration) -> std::io::Result<Conn> {
    let deadline = Instant::now() + group.config.connect_timeout.max(Duration::from_millis(100));
    let mut pause = Duration::from_millis(5);
    let mut lost = 0;
    loop {
        match UnixStream::connect(&group.socket) {
            // A daemon accepts a connection at once and sends the challenge
            // when a thread is free for it; one that stopped or died before
            // then closed it. Nothing has been sent: another daemon can
            // have the request, whole.
            Ok(stream) => match Conn::open(stream, timeout) {
                Err(e) if matches!(e.kind(), ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset) && lost < RETRIES => lost += 1,
                opened => return opened,
            },
            // Refused, or the backlog full, while daemons are (re)starting or busy: try again until connect-timeout.
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::WouldBlock) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    }
}

/// socket-timeout=, else Apache's Timeout.
fn socket_timeout(req: &Request, group: &Group) -> Duration {
    if !group.config.socket_timeout.is_zero() {
        return group.config.socket_timeout;
    }
    Duration::from_micros(req.server_timeout_micros().max(1_000_000) as u64)
}

/// Which side of the relay failed while the request went out.
enum SendError {
    Client(std::io::Error),
    Daemon(protocol::ProtocolError),
}

/// Sends the head and the body: what was read ahead, then the rest as it
/// comes from the client.
fn send_request(req: &mut Request, head: &RequestHead, body: &ReadAhead, conn: &mut Conn, group: &Group, sent: &mut BodySent) -> Result<(), SendError> {
    let sequence = conn.heads + 1;
    let challenge = conn.challenge;
    protocol::write_request_head(&mut conn.wire, head, |fields| super::origin::sign(&group.config.name, &challenge, sequence, fields)).map_err(SendError::Daemon)?;
    conn.heads = sequence;
    sent.bytes = body.len;
    for slice in body.slices() {
        protocol::write_body_chunk(&mut conn.wire, slice).map_err(SendError::Daemon)?;
    }
    // The rest of a body larger than what was read ahead, as it comes. What
    // is buffered goes out first: a kept connection found closed then is
    // found so before any of the body is taken from the client, and the
    // request can still go on another.
    if !body.whole && req.has_body() {
        conn.wire.flush().map_err(|e| SendError::Daemon(e.into()))?;
        let mut buf = Piece::take().map_err(SendError::Client)?;
        loop {
            let n = read_piece(req, &mut buf).map_err(SendError::Client)?;
            if n == 0 {
                break;
            }
            sent.bytes += n;
            sent.streamed += n;
            protocol::write_body_chunk(&mut conn.wire, &buf[..n]).map_err(SendError::Daemon)?;
        }
    }
    protocol::write_body_end(&mut conn.wire).map_err(SendError::Daemon)?;
    conn.wire.flush().map_err(|e| SendError::Daemon(e.into()))
}

/// Reads the rest of a response without sending it; Err leaves the connection unusable.
fn skip_response(input: &mut Wire) -> Result<(), protocol::ProtocolError> {
    let mut piece = None;
    loop {
        match protocol::read_response_incoming(input)? {
            Incoming::Frame(ResponseFrame::End) => return Ok(()),
            Incoming::Data { len } => {
                let mut left = len;
                while left > 0 {
                    let n = left.min(PIECE);
                    protocol::read_data(input, &mut piece_of(&mut piece)?[..n])?;
                    left -= n;
                }
            }
            Incoming::Frame(ResponseFrame::File { .. }) => {}
            Incoming::Frame(_) => return Err(protocol::ProtocolError::Malformed("response ended without End".into())),
        }
    }
}

/// The exchange's piece, taken on first use.
fn piece_of(piece: &mut Option<Piece>) -> std::io::Result<&mut Piece> {
    match piece {
        Some(piece) => Ok(piece),
        None => Ok(piece.insert(Piece::take()?)),
    }
}

fn frame_keeps(frame: &ResponseFrame) -> bool {
    matches!(frame, ResponseFrame::End)
}

/// Relays the daemon's response; returns the handler's status and whether
/// the exchange ended cleanly, so the connection can carry another request;
/// None when the request did not run and may go again: the daemon handed it
/// back (it is restarting), or, when `retryable`, the daemon closed the
/// connection without reading it.
fn relay_response(req: &mut Request, input: &mut Wire, target: &Target<'_>, retryable: bool) -> Option<(c_int, bool)> {
    let mut watch = ClientWatch::default();
    let relayed = relay_frames(req, input, target, retryable, &mut watch);
    // The ClientGone frame may reach the daemon after the exchange ended,
    // where the next head would be: the connection goes with the request.
    relayed.map(|(status, reusable)| (status, reusable && !watch.told))
}

/// Whether the daemon asked to hear of the client going (`Watch`), and
/// whether it has been told.
#[derive(Default)]
struct ClientWatch {
    client: Option<std::os::fd::RawFd>,
    told: bool,
}

impl ClientWatch {
    /// Waits for the daemon's next bytes; while watching, tells the daemon
    /// if the client goes first (once), then waits on.
    fn wait(&mut self, input: &mut Wire, timeout: Duration) -> Result<(), protocol::ProtocolError> {
        let Some(client) = self.client.filter(|_| !self.told && input.buffered().is_empty()) else { return Ok(()) };
        match super::os::await_response(input.stream(), client, timeout)? {
            super::os::Awaited::Readable => Ok(()),
            super::os::Awaited::ClientGone => {
                self.told = true;
                protocol::write_client_gone(input)
            }
        }
    }
}

fn relay_frames(req: &mut Request, input: &mut Wire, target: &Target<'_>, retryable: bool, watch: &mut ClientWatch) -> Option<(c_int, bool)> {
    let group = target.group;
    let mut started = false;
    // Data larger than what is buffered crosses through this, a piece at a time.
    let mut piece = None;
    loop {
        let incoming = watch.wait(input, target.timeout).and_then(|()| protocol::read_response_incoming(input));
        let mut frame = match incoming {
            Ok(Incoming::Frame(frame)) => frame,
            Ok(Incoming::Data { len }) => match relay_data(req, input, len, &mut piece) {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => return Some(client_write_failed(req, &e)),
                Err(e) => return Some(truncated(req, group, started, &e)),
            },
            Err(protocol::ProtocolError::Io(e)) if !started && matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                req.log_error(&format!(
                    "mod_wsgi (pid={}): Timeout when reading response headers from daemon process '{}': {}",
                    std::process::id(),
                    group.config.name,
                    String::from_utf8_lossy(req.filename())
                ));
                return Some((ffi::HTTP_GATEWAY_TIME_OUT as c_int, false));
            }
            // A daemon that closes a connection with our request still unread
            // resets it: the request never ran (the process was stopping), so
            // it may go again. A plain end of file means the daemon read it
            // and then died: running it a second time could repeat what it did.
            Err(protocol::ProtocolError::Io(ref e)) if retryable && !started && e.kind() == ErrorKind::ConnectionReset => return None,
            Err(e) => return Some(truncated(req, group, started, &e)),
        };
        if let ResponseFrame::Start { status, status_line, headers } = &mut frame {
            cgi_response::apply_status_header(status, status_line, headers);
        }
        let sent = match frame {
            // A daemon refuses such heads itself; this is for one that does not.
            ResponseFrame::Start { ref status_line, ref headers, .. } if cgi_response::oversized_line(status_line, headers, group.config.header_buffer_size as usize).is_some() => {
                req.log_error(&format!(
                    "mod_wsgi (pid={}): Truncated or oversized response headers received from daemon process '{}': {}; a line exceeds header-buffer-size={}.",
                    std::process::id(),
                    group.config.name,
                    String::from_utf8_lossy(req.filename()),
                    group.config.header_buffer_size
                ));
                return Some((ffi::HTTP_INTERNAL_SERVER_ERROR as c_int, skip_response(input).is_ok()));
            }
            ResponseFrame::Start { status, .. } if target.error_override && status >= 400 => {
                // Apache answers instead: the application's body is read and dropped.
                let reusable = skip_response(input).is_ok();
                return Some((status as c_int, reusable));
            }
            ResponseFrame::Start { status, ref headers, .. } if let Some(location) = cgi_response::local_redirect(status, headers) => {
                // Apache serves the path instead; the application's body is dropped.
                let reusable = skip_response(input).is_ok();
                req.internal_redirect_as_get(location);
                return Some((ffi::OK as c_int, reusable));
            }
            ResponseFrame::Start { status, status_line, headers } => {
                if let Err(e) = req.send_headers(status, &status_line, &headers) {
                    // A head httpd cannot send (start_response refuses one:
                    // beyond latin-1, or an unusable Content-Length): nothing
                    // of it has gone out.
                    req.log_error(&format!(
                        "mod_wsgi (pid={}): Invalid response headers received from daemon process '{}': {}; {e}.",
                        std::process::id(),
                        group.config.name,
                        String::from_utf8_lossy(req.filename())
                    ));
                    return Some((ffi::HTTP_INTERNAL_SERVER_ERROR as c_int, skip_response(input).is_ok()));
                }
                started = true;
                Ok(())
            }
            // Not produced by read_response_incoming: Data goes through `relay_data`.
            ResponseFrame::Data(data) => req.write_body(&data, input.buffered().is_empty()),
            ResponseFrame::File { offset, len } => match input.take_file() {
                // Added to the response, which Apache sends with its end.
                Some(file) if super::os::regular_file_holds(&file, offset, len) => req.send_file(std::os::fd::AsFd::as_fd(&file), offset, len),
                _ => {
                    req.log_error(&format!(
                        "mod_wsgi (pid={}): Truncated response received from daemon process '{}': {} (a file frame without a file of {len} bytes at {offset})",
                        std::process::id(),
                        group.config.name,
                        String::from_utf8_lossy(req.filename())
                    ));
                    req.abort_connection();
                    return Some((ffi::OK as c_int, false));
                }
            },
            ResponseFrame::Watch => {
                watch.client = req.client_socket_fd();
                Ok(())
            }
            ResponseFrame::End | ResponseFrame::EndClose => {
                let _ = req.finish();
                return Some((ffi::OK as c_int, frame_keeps(&frame)));
            }
            ResponseFrame::Abort => {
                req.abort_connection();
                return Some((ffi::OK as c_int, true));
            }
            // A failure may come from a process about to go (request-timeout): start afresh.
            ResponseFrame::Fail { status } => return Some((status as c_int, false)),
            ResponseFrame::Restart if !started => return None,
            ResponseFrame::Restart => {
                req.abort_connection();
                return Some((ffi::OK as c_int, false));
            }
        };
        if let Err(e) = sent {
            return Some(client_write_failed(req, &e));
        }
    }
}

/// Relays a Data payload of `len` bytes: straight from the wire's buffer
/// when it is all there (a small one), else in pieces of at most PIECE
/// through `piece`. Err: the daemon's side failed; Ok(Err): the client's.
fn relay_data(req: &mut Request, input: &mut Wire, len: usize, piece: &mut Option<Piece>) -> Result<std::io::Result<()>, protocol::ProtocolError> {
    // Flushed unless more of the response is already waiting: each chunk the
    // application yields reaches the client promptly, and small ones go out
    // together.
    if input.buffered().len() >= len {
        let flush = input.buffered().len() == len;
        let sent = req.write_body(&input.buffered()[..len], flush);
        input.consume(len);
        return Ok(sent);
    }
    let piece = piece_of(piece)?;
    let mut left = len;
    while left > 0 {
        let n = left.min(PIECE);
        let buf = &mut piece[..n];
        protocol::read_data(input, buf)?;
        left -= n;
        // Each piece is written out before the next one is read into the
        // buffer, so httpd never has to copy it.
        let flush = left > 0 || input.buffered().is_empty();
        if let Err(e) = req.write_body(buf, flush) {
            return Ok(Err(e));
        }
    }
    Ok(Ok(()))
}

/// The daemon's response broke off or could not be read.
fn truncated(req: &mut Request, group: &Group, started: bool, e: &protocol::ProtocolError) -> (c_int, bool) {
    req.log_error(&format!(
        "mod_wsgi (pid={}): {} from daemon process '{}': {} ({e})",
        std::process::id(),
        if started { "Truncated response received" } else { "Truncated or oversized response headers received" },
        group.config.name,
        String::from_utf8_lossy(req.filename())
    ));
    if started {
        req.abort_connection();
        return (ffi::OK as c_int, false);
    }
    (ffi::HTTP_INTERNAL_SERVER_ERROR as c_int, false)
}

/// A write to the client failed; the connection to the daemon goes.
fn client_write_failed(req: &mut Request, e: &std::io::Error) -> (c_int, bool) {
    if req.response_ended() {
        // httpd refused the head (a header name that is not a token,
        // a control character in a value), logged why and answered
        // 500 in its place, as it does in embedded mode. The rest of
        // the application's response is not read: the connection
        // goes, and the daemon stops writing.
        return (ffi::OK as c_int, false);
    }
    // A timed-out write is worth an error line; a client that hung
    // up is routine (mod_wsgi logs neither reset nor broken pipe).
    let status = ClientWriteError::status_of(e);
    if status != 0 && ![libc::EPIPE, libc::ECONNRESET, libc::ECONNABORTED].contains(&status) {
        req.log_os_error(status, &format!("mod_wsgi (pid={}): Failed to proxy response to client.", std::process::id()));
    }
    // The client went away; closing our end tells the daemon.
    req.abort_connection();
    (ffi::OK as c_int, false)
}
