//! The wire protocol between an Apache child and a daemon process.
//!
//! Pure std: no httpd, no Python, no FFI, so it can be unit-tested and fuzzed
//! on its own. Both ends are built from this one file, so there is no
//! version negotiation.
//!
//! A connection carries a sequence of exchanges, one at a time:
//!
//! ```text
//! daemon -> client   Challenge                       (once, on accepting)
//! client -> daemon   RequestHead, BodyChunk*, (BodyEnd | BodyAbort)
//! daemon -> client   ResponseStart, (Data | File)*, (End | Abort)
//!                  | Fail
//! ```
//!
//! A `Watch` may come among the response frames, after the body's end: the
//! application waits for word of its client leaving (ASGI's
//! http.disconnect), and the Apache child, which alone sees the client's
//! connection, answers with one `ClientGone` when it closes. That frame can
//! reach the daemon after the exchange ended, where the next head would be,
//! so the child does not reuse such a connection, and the daemon skips it.
//!
//! A request head's payload opens with a MAC of its sealed fields (see
//! `origin` and `SealedHead`), which the daemon checks before it decodes
//! anything.
//!
//! The client sends the whole body before it reads the response, so neither
//! side ever needs to hold a body whole: bodies go over in chunks. `Abort`
//! means the response broke off after it began and must not be made to look
//! complete; `Fail` means nothing was sent yet and Apache should answer with
//! its own error page. `File` hands over a range of an open file instead of
//! its bytes: the descriptor travels with the frame (SCM_RIGHTS), and the
//! Apache child hands Apache a file bucket, which it sends with sendfile and
//! whose ranges its byterange filter can answer.
//!
//! Every frame is `kind: u8, len: u32 (big-endian), payload[len]`. The length
//! is checked against a per-kind limit before anything is allocated, so a
//! corrupt or hostile peer cannot make us reserve 4 GiB.
//!
//! Writers do not buffer. Small frames (heads, markers) go out in one
//! `write_all`; chunk frames use a vectored write of header + payload, so an
//! unbuffered `UnixStream` still sees one `writev` per frame and a caller's
//! `BufWriter` can batch as it likes. Writers of a frame after which the peer
//! waits for us (`write_body_end`, `write_response_end`, `_abort`, `_fail`)
//! flush `w`; everything else leaves flushing to the caller. Readers do not
//! read ahead past the frame they return, so a `BufReader` around the stream
//! is the caller's choice (and advisable: a frame header is 5 bytes).

use std::io::{self, IoSlice, Read, Write};

/// Largest payload of a request head. It holds the CGI environ; 1 MiB is
/// far above any real request.
pub const MAX_HEAD: usize = 1 << 20;

/// Largest payload of a response start. Each header line is bounded on its
/// own by the group's header-buffer-size=; this bounds how many there are,
/// well above the few MiB of headers clients accept.
pub const MAX_RESPONSE_HEAD: usize = 64 << 20;

/// Longest reason a `BodyAbort` gives.
pub const MAX_REASON: usize = 1024;

/// Length of the MAC that opens a request head's payload (HMAC-SHA-256).
pub const MAC_LEN: usize = 32;

/// Length of the random challenge a daemon sends on a new connection.
pub const CHALLENGE_LEN: usize = 16;

/// Largest payload of one body or data chunk. Larger writes are split.
pub const MAX_CHUNK: usize = 16 << 20;

/// Frame header: kind byte plus big-endian u32 length.
pub const HEADER_LEN: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("daemon connection I/O error: {0}")]
    Io(#[from] io::Error),

    /// The peer closed the connection in the middle of a frame (or between
    /// frames of an exchange). Distinct from `Io` so callers can log a
    /// crashed daemon or a vanished client as such.
    #[error("daemon connection closed in the middle of a frame")]
    Truncated,

    #[error("unknown daemon protocol frame type {0:#04x}")]
    UnknownFrame(u8),

    #[error("daemon protocol {kind:?} frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { kind: FrameKind, len: usize, max: usize },

    /// A known frame arriving where the protocol does not allow it.
    #[error("daemon protocol expected {expected}, got a {got:?} frame")]
    Unexpected { expected: &'static str, got: FrameKind },

    #[error("malformed daemon protocol frame: {0}")]
    Malformed(String),

    /// The request body broke off at the client's end (the payload says how).
    #[error("{0}")]
    BodyAborted(String),

    /// A `BodyReader` that already returned an error: the stream position is
    /// unknown, so the connection must not be reused.
    #[error("request body stream already failed; the connection cannot be reused")]
    BodyFailed,
}

impl From<ProtocolError> for io::Error {
    /// Lets `BodyReader` implement `Read` (e.g. for Python's `wsgi.input`).
    fn from(e: ProtocolError) -> Self {
        match e {
            ProtocolError::Io(e) => e,
            ProtocolError::Truncated => io::Error::new(io::ErrorKind::UnexpectedEof, e),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

type Result<T> = std::result::Result<T, ProtocolError>;

/// The frame types. The byte values are the wire encoding; request-direction
/// kinds are below 0x10 and response-direction kinds above, which makes hex
/// dumps easy to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    RequestHead = 0x01,
    BodyChunk = 0x02,
    BodyEnd = 0x03,
    BodyAbort = 0x04,
    ClientGone = 0x05,
    ResponseStart = 0x11,
    Data = 0x12,
    End = 0x13,
    Abort = 0x14,
    Fail = 0x15,
    Restart = 0x16,
    EndClose = 0x17,
    Challenge = 0x18,
    File = 0x19,
    Watch = 0x1A,
}

impl FrameKind {
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0x01 => Self::RequestHead,
            0x02 => Self::BodyChunk,
            0x03 => Self::BodyEnd,
            0x04 => Self::BodyAbort,
            0x05 => Self::ClientGone,
            0x11 => Self::ResponseStart,
            0x12 => Self::Data,
            0x13 => Self::End,
            0x14 => Self::Abort,
            0x15 => Self::Fail,
            0x16 => Self::Restart,
            0x17 => Self::EndClose,
            0x18 => Self::Challenge,
            0x19 => Self::File,
            0x1A => Self::Watch,
            _ => return None,
        })
    }

    /// Allowed payload lengths, inclusive. Markers are empty; `Fail` carries
    /// exactly a u16 status; a request head at least its MAC.
    pub fn len_limits(self) -> (usize, usize) {
        match self {
            Self::RequestHead => (MAC_LEN + 4, MAC_LEN + 4 + MAX_HEAD),
            Self::ResponseStart => (0, MAX_RESPONSE_HEAD),
            Self::Challenge => (CHALLENGE_LEN, CHALLENGE_LEN),
            Self::BodyAbort => (0, MAX_REASON),
            Self::BodyChunk | Self::Data => (0, MAX_CHUNK),
            Self::File => (16, 16),
            Self::BodyEnd | Self::ClientGone | Self::End | Self::EndClose | Self::Abort | Self::Restart | Self::Watch => (0, 0),
            Self::Fail => (2, 2),
        }
    }
}

/// A validated frame header: known kind, length within that kind's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: FrameKind,
    /// Payload length in bytes; at most `MAX_HEAD` or `MAX_CHUNK`.
    pub len: usize,
}

/// CGI variables as name and value byte strings (they need not be UTF-8),
/// kept in one buffer: a request's forty-odd variables cost two allocations,
/// not eighty, at each end of the hop.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Environ {
    bytes: Vec<u8>,
    /// Where each name and each value ends in `bytes`.
    ends: Vec<(usize, usize)>,
}

impl Environ {
    pub fn with_capacity(pairs: usize, bytes: usize) -> Environ {
        Environ { bytes: Vec::with_capacity(bytes), ends: Vec::with_capacity(pairs) }
    }

    /// Borrowed pairs, copied into one buffer of the size they need.
    pub fn from_pairs(pairs: &[(&[u8], &[u8])]) -> Environ {
        let mut environ = Environ::with_capacity(pairs.len(), pairs.iter().map(|(k, v)| k.len() + v.len()).sum());
        for (name, value) in pairs {
            environ.push(name, value);
        }
        environ
    }

    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        self.bytes.extend_from_slice(name);
        let name_end = self.bytes.len();
        self.bytes.extend_from_slice(value);
        self.ends.push((name_end, self.bytes.len()));
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut start = 0;
        self.ends.iter().map(move |&(name_end, value_end)| {
            let pair = (&self.bytes[start..name_end], &self.bytes[name_end..value_end]);
            start = value_end;
            pair
        })
    }

    /// The value of the first variable called `name`.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

impl<N: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(N, V)> for Environ {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> Environ {
        let mut environ = Environ::default();
        for (name, value) in pairs {
            environ.push(name.as_ref(), value.as_ref());
        }
        environ
    }
}

/// The request head: CGI/WSGI environ as byte pairs, plus a few typed fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestHead {
    pub environ: Environ,
    pub script_filename: String,
    pub callable_object: String,
    pub application_group: String,
    pub script_reloading: bool,
    /// Modification time of the script, in microseconds.
    pub script_mtime: i64,
    pub request_id: String,
    pub request_start: i64,
    pub enable_sendfile: bool,
    pub ignore_activity: bool,
    pub listener_host: String,
    pub listener_port: u16,
    pub url_scheme: String,
    /// The handler that took the request (`wsgi-script`, or a WSGIHandlerScript name).
    pub request_handler: String,
    /// A WSGIHandlerScript's script; empty for WSGI scripts themselves.
    pub handler_script: String,
    /// When the Apache child sent the request to the daemon (µs).
    pub queue_start: i64,
    /// Connection attempts made for it, and how often it was sent again.
    pub daemon_connects: u32,
    pub daemon_restarts: u32,
    /// How long the Apache child spent reading the body before it sent the
    /// request (µs): time with the client, not waiting for the daemon.
    pub body_read_ahead: i64,
    /// interface= of the script's mount (`config::Interface::code`).
    pub interface: u8,
    /// The request's header lines as the client sent them (order and
    /// repeats kept), for an ASGI scope; the environ has them merged.
    pub headers: Environ,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseFrame {
    Start { status: u16, status_line: String, headers: Vec<(String, String)> },
    Data(Vec<u8>),
    /// `len` bytes from `offset` of the open file that came with the frame.
    File { offset: u64, len: u64 },
    End,
    Abort,
    Fail { status: u16 },
    /// The request was not run: the daemon is restarting (its script
    /// changed); send it again on a new connection.
    Restart,
    /// The response is complete and the daemon closes this connection (it is
    /// stopping): do not reuse it.
    EndClose,
    /// The response may be long in coming and the application wants to know
    /// if the client goes meanwhile: say so with a `ClientGone` frame.
    Watch,
}

// ---------------------------------------------------------------------------
// Request direction

/// Sends a request head in one `write_all`. The head opens with a MAC of
/// the fields that say what runs, for whom and which request this is
/// (everything but the CGI environ): `seal` is given those fields, encoded,
/// and returns it. Fails with `TooLarge` before writing anything if the
/// encoded head exceeds `MAX_HEAD`. Does not flush.
pub fn write_request_head(w: &mut impl Write, head: &RequestHead, seal: impl FnOnce(&[u8]) -> [u8; MAC_LEN]) -> Result<()> {
    // Every string below with its 4-byte length, the fixed-size fields, the environ and headers.
    let strings = [&head.script_filename, &head.callable_object, &head.application_group, &head.request_id, &head.listener_host, &head.url_scheme, &head.request_handler, &head.handler_script];
    let pairs: usize = [&head.environ, &head.headers].iter().flat_map(|p| p.iter()).map(|(name, value)| 8 + name.len() + value.len()).sum();
    let payload = MAC_LEN + 4 + strings.iter().map(|s| 4 + s.len()).sum::<usize>() + 64 + 8 + pairs;
    let mut e = Encoder::with_capacity(FrameKind::RequestHead, payload);
    e.put(&[0; MAC_LEN])?;
    e.put(&[0; 4])?; // the length of the sealed fields
    let sealed = e.buf.len();
    e.str(&head.script_filename)?;
    e.str(&head.callable_object)?;
    e.str(&head.application_group)?;
    e.bool(head.script_reloading)?;
    e.i64(head.script_mtime)?;
    e.str(&head.request_id)?;
    e.i64(head.request_start)?;
    e.bool(head.enable_sendfile)?;
    e.bool(head.ignore_activity)?;
    e.str(&head.listener_host)?;
    e.u16(head.listener_port)?;
    e.str(&head.url_scheme)?;
    e.str(&head.request_handler)?;
    e.str(&head.handler_script)?;
    e.i64(head.queue_start)?;
    e.u32(head.daemon_connects)?;
    e.u32(head.daemon_restarts)?;
    e.i64(head.body_read_ahead)?;
    e.put(&[head.interface])?;
    let sealed_end = e.buf.len();
    for pairs in [&head.environ, &head.headers] {
        e.count(pairs.len())?;
        for (name, value) in pairs.iter() {
            e.bytes(name)?;
            e.bytes(value)?;
        }
    }
    let mut frame = e.finish();
    let sealed_len = u32::try_from(sealed_end - sealed).expect("within MAX_HEAD");
    frame[sealed - 4..sealed].copy_from_slice(&sealed_len.to_be_bytes());
    let tag = seal(&frame[sealed..sealed_end]);
    frame[HEADER_LEN..HEADER_LEN + MAC_LEN].copy_from_slice(&tag);
    w.write_all(&frame)?;
    Ok(())
}

/// A request head as it arrived: the MAC, the still encoded fields it
/// covers, and the environ. Nothing in it is believed until the MAC has
/// been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedHead<'a> {
    pub tag: &'a [u8; MAC_LEN],
    /// The bytes the MAC covers.
    pub sealed: &'a [u8],
    environ: &'a [u8],
}

impl<'a> SealedHead<'a> {
    /// A head frame's payload.
    pub fn from_payload(payload: &'a [u8]) -> Result<SealedHead<'a>> {
        let malformed = || ProtocolError::Malformed(format!("request head of {} bytes has no MAC and sealed fields", payload.len()));
        let (tag, rest) = payload.split_first_chunk::<MAC_LEN>().ok_or_else(malformed)?;
        let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(malformed)?;
        let len = u32::from_be_bytes(*len) as usize;
        if len > rest.len() {
            return Err(ProtocolError::Malformed(format!("request head: sealed fields of {len} bytes run past the end of the frame")));
        }
        let (sealed, environ) = rest.split_at(len);
        Ok(SealedHead { tag, sealed, environ })
    }

    /// Decodes the head (once the MAC has been checked).
    pub fn open(&self) -> Result<RequestHead> {
        let mut d = Decoder::new(self.sealed, "request head");
        let mut head = RequestHead {
            script_filename: d.string("script_filename")?,
            callable_object: d.string("callable_object")?,
            application_group: d.string("application_group")?,
            script_reloading: d.bool("script_reloading")?,
            script_mtime: d.i64("script_mtime")?,
            request_id: d.string("request_id")?,
            request_start: d.i64("request_start")?,
            enable_sendfile: d.bool("enable_sendfile")?,
            ignore_activity: d.bool("ignore_activity")?,
            listener_host: d.string("listener_host")?,
            listener_port: d.u16("listener_port")?,
            url_scheme: d.string("url_scheme")?,
            request_handler: d.string("request_handler")?,
            handler_script: d.string("handler_script")?,
            queue_start: d.i64("queue_start")?,
            daemon_connects: d.u32("daemon_connects")?,
            daemon_restarts: d.u32("daemon_restarts")?,
            body_read_ahead: d.i64("body_read_ahead")?,
            interface: d.array::<1>("interface")?[0],
            environ: Environ::default(),
            headers: Environ::default(),
        };
        d.finish()?;
        let mut d = Decoder::new(self.environ, "request head");
        head.environ = read_pairs(&mut d, ["environ", "environ name", "environ value"])?;
        head.headers = read_pairs(&mut d, ["headers", "header name", "header value"])?;
        d.finish()?;
        Ok(head)
    }
}

/// Name and value pairs as `write_request_head` lays them out: a count, then
/// each name and value; the three labels name them in errors.
fn read_pairs(d: &mut Decoder<'_>, [count, name, value]: [&str; 3]) -> Result<Environ> {
    let n = d.count(count)?;
    // Names and values take less room than what is left of their encoding,
    // which also has their lengths.
    let mut pairs = Environ::with_capacity(n, d.buf.len());
    for _ in 0..n {
        let name = d.bytes(name)?;
        let value = d.bytes(value)?;
        pairs.push(name, value);
    }
    Ok(pairs)
}

/// The length of the whole request head frame that starts `buf`, once its
/// five-byte header is there (None before); an error when the bytes are not
/// the start of a request head within its limits.
pub fn request_head_frame_len(buf: &[u8]) -> Result<Option<usize>> {
    let Some(raw) = buf.get(..HEADER_LEN) else { return Ok(None) };
    let h = parse_frame_header(raw.try_into().expect("HEADER_LEN bytes"))?;
    if h.kind != FrameKind::RequestHead {
        return Err(ProtocolError::Unexpected { expected: "a request head", got: h.kind });
    }
    Ok(Some(HEADER_LEN + h.len))
}

/// Sends a new connection's challenge, and flushes `w`.
pub fn write_challenge(w: &mut impl Write, challenge: &[u8; CHALLENGE_LEN]) -> Result<()> {
    let mut frame = [0u8; HEADER_LEN + CHALLENGE_LEN];
    frame[..HEADER_LEN].copy_from_slice(&frame_header(FrameKind::Challenge, CHALLENGE_LEN));
    frame[HEADER_LEN..].copy_from_slice(challenge);
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// Reads the challenge that opens a connection.
pub fn read_challenge(r: &mut impl Read) -> Result<[u8; CHALLENGE_LEN]> {
    let h = read_frame_header(r)?;
    if h.kind != FrameKind::Challenge {
        return Err(ProtocolError::Unexpected { expected: "a challenge", got: h.kind });
    }
    let mut challenge = [0u8; CHALLENGE_LEN];
    read_exact(r, &mut challenge)?;
    Ok(challenge)
}

/// Sends request body bytes, split into frames of at most `MAX_CHUNK`. Empty
/// `data` writes nothing (an empty chunk carries no information). Does not
/// flush.
pub fn write_body_chunk(w: &mut impl Write, data: &[u8]) -> Result<()> {
    write_chunks(w, FrameKind::BodyChunk, data)
}

/// Ends the request body and flushes `w`: the client reads the response next.
pub fn write_body_end(w: &mut impl Write) -> Result<()> {
    write_marker(w, FrameKind::BodyEnd, &[])
}

/// Tells the daemon, after a `Watch`, that the client has gone; flushes `w`.
/// Sent after the body's end, while the response is awaited.
pub fn write_client_gone(w: &mut impl Write) -> Result<()> {
    write_marker(w, FrameKind::ClientGone, &[])
}

/// How many bytes at the start of `buf` are `ClientGone` frames: one can
/// arrive after its exchange has ended (the application ended meanwhile),
/// where the next request head would be.
pub fn client_gone_frames(buf: &[u8]) -> usize {
    let marker = frame_header(FrameKind::ClientGone, 0);
    buf.chunks_exact(HEADER_LEN).take_while(|frame| *frame == marker).count() * HEADER_LEN
}

/// Ends the request body short, saying why (cut to `MAX_REASON` bytes), and
/// flushes `w`: the rest of the body will not come.
pub fn write_body_abort(w: &mut impl Write, reason: &str) -> Result<()> {
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    w.write_all(&frame_header(FrameKind::BodyAbort, end))?;
    w.write_all(&reason.as_bytes()[..end])?;
    w.flush()?;
    Ok(())
}

/// The daemon side's position in a request body, owned and without a borrow
/// of the stream, so it can live in a connection struct across calls that
/// each lock and pass the stream (`BodyReader` is the borrowing convenience).
///
/// Payload bytes are copied straight into the caller's buffer: nothing is
/// buffered here beyond a count of the bytes left in the current chunk.
/// Because that count matters, one cursor must serve the whole body; a fresh
/// cursor in the middle of a chunk would read payload as a frame header.
///
/// After the end marker every `read` returns `Ok(0)` and the stream is
/// positioned at the next exchange's head. After any error the position is
/// unknown: later calls fail with `BodyFailed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyCursor {
    /// Payload bytes of the current chunk not yet handed out.
    remaining: usize,
    state: BodyState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    Open,
    Finished,
    Failed,
}

impl Default for BodyCursor {
    fn default() -> Self {
        Self::new()
    }
}

impl BodyCursor {
    /// A cursor at the start of a body, i.e. just after its request head.
    pub fn new() -> Self {
        BodyCursor { remaining: 0, state: BodyState::Open }
    }

    /// Reads body bytes from `r` into `buf`. `Ok(0)` only at the end of the
    /// body (or for an empty `buf`); short reads are normal.
    pub fn read(&mut self, r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
        match self.state {
            BodyState::Finished => return Ok(0),
            BodyState::Failed => return Err(ProtocolError::BodyFailed),
            BodyState::Open if buf.is_empty() => return Ok(0),
            BodyState::Open => {}
        }
        let result = self.read_open(r, buf);
        if result.is_err() {
            self.state = BodyState::Failed;
        }
        result
    }

    fn read_open(&mut self, r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
        // Loop: a peer may legally send empty chunks, which must not look
        // like the end of the body.
        while self.remaining == 0 {
            let h = read_frame_header(r)?;
            match h.kind {
                FrameKind::BodyChunk => self.remaining = h.len,
                FrameKind::BodyEnd => {
                    self.state = BodyState::Finished;
                    return Ok(0);
                }
                FrameKind::BodyAbort => {
                    let reason = read_payload(r, h.len)?;
                    return Err(ProtocolError::BodyAborted(String::from_utf8_lossy(&reason).into_owned()));
                }
                other => {
                    return Err(ProtocolError::Unexpected {
                        expected: "a request body chunk or end",
                        got: other,
                    });
                }
            }
        }
        let want = buf.len().min(self.remaining);
        loop {
            match r.read(&mut buf[..want]) {
                Ok(0) => return Err(ProtocolError::Truncated),
                Ok(n) => {
                    self.remaining -= n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads and discards the rest of the body, so the connection can carry
    /// the next exchange (the application need not have read it all).
    pub fn drain(&mut self, r: &mut impl Read) -> Result<()> {
        let mut scratch = [0u8; 8192];
        while self.read(r, &mut scratch)? != 0 {}
        Ok(())
    }

    /// Whether `drain` reads no more than `buffered` (what the wire holds
    /// unread): the rest of the body, to its end marker, is there, or the
    /// body is over (or failed, which `drain` reports at once).
    pub fn ends_within(&self, buffered: &[u8]) -> bool {
        if self.state != BodyState::Open {
            return true;
        }
        let mut at = self.remaining;
        loop {
            let Some(header) = buffered.get(at..at + HEADER_LEN) else { return false };
            let header: &[u8; HEADER_LEN] = header.try_into().expect("HEADER_LEN bytes");
            match parse_frame_header(header) {
                Ok(h) if h.kind == FrameKind::BodyChunk => at += HEADER_LEN + h.len,
                // The end, or what drain fails on at once.
                _ => return true,
            }
        }
    }

    /// True once the end marker has been read.
    pub fn finished(&self) -> bool {
        self.state == BodyState::Finished
    }

    /// True once a read has failed; the connection cannot be reused.
    pub fn failed(&self) -> bool {
        self.state == BodyState::Failed
    }
}

/// Streams the request body on the daemon side: a `BodyCursor` plus the
/// stream it reads, for callers that hold the stream for the whole body.
pub struct BodyReader<'a, R: Read> {
    r: &'a mut R,
    cursor: BodyCursor,
}

impl<'a, R: Read> BodyReader<'a, R> {
    pub fn new(r: &'a mut R) -> Self {
        BodyReader { r, cursor: BodyCursor::new() }
    }

    /// See `BodyCursor::read`.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.cursor.read(self.r, buf)
    }

    /// See `BodyCursor::drain`.
    pub fn drain(&mut self) -> Result<()> {
        self.cursor.drain(self.r)
    }

    pub fn finished(&self) -> bool {
        self.cursor.finished()
    }

    /// Gives back the cursor, e.g. to keep it after the borrow ends.
    pub fn into_cursor(self) -> BodyCursor {
        self.cursor
    }
}

impl<R: Read> Read for BodyReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        BodyReader::read(self, buf).map_err(io::Error::from)
    }
}

// ---------------------------------------------------------------------------
// Response direction

/// Sends the response status and headers in one `write_all`. Fails with
/// `TooLarge` before writing anything if they exceed `MAX_HEAD`. Does not
/// flush: a caller that wants the headers out before the first data chunk
/// (e.g. a slow streaming response) flushes itself.
pub fn write_response_start(
    w: &mut impl Write,
    status: u16,
    status_line: &str,
    headers: &[(String, String)],
) -> Result<()> {
    let mut e = Encoder::new(FrameKind::ResponseStart);
    e.u16(status)?;
    e.str(status_line)?;
    e.count(headers.len())?;
    for (name, value) in headers {
        e.str(name)?;
        e.str(value)?;
    }
    w.write_all(&e.finish())?;
    Ok(())
}

/// Sends response body bytes, split into frames of at most `MAX_CHUNK`, each
/// header + payload in one vectored write. Empty `data` writes nothing. Does
/// not flush.
pub fn write_response_data(w: &mut impl Write, data: &[u8]) -> Result<()> {
    write_chunks(w, FrameKind::Data, data)
}

/// An empty Data frame: the Apache child flushes what it has of the
/// response (the head, before a body that is yet to come).
pub fn write_response_flush(w: &mut impl Write) -> Result<()> {
    write_marker(w, FrameKind::Data, &[])
}

/// The frame that hands over `len` bytes from `offset` of a file; it must
/// be sent with the file's descriptor attached.
pub fn response_file_frame(offset: u64, len: u64) -> [u8; HEADER_LEN + 16] {
    let mut frame = [0u8; HEADER_LEN + 16];
    frame[..HEADER_LEN].copy_from_slice(&frame_header(FrameKind::File, 16));
    frame[HEADER_LEN..HEADER_LEN + 8].copy_from_slice(&offset.to_be_bytes());
    frame[HEADER_LEN + 8..].copy_from_slice(&len.to_be_bytes());
    frame
}

/// Marks the response complete and flushes `w`.
pub fn write_response_end(w: &mut impl Write) -> Result<()> {
    write_marker(w, FrameKind::End, &[])
}

/// Marks the response as broken off after it began, and flushes `w`.
pub fn write_response_abort(w: &mut impl Write) -> Result<()> {
    write_marker(w, FrameKind::Abort, &[])
}

/// Reports failure before any response was started, and flushes `w`.
pub fn write_response_fail(w: &mut impl Write, status: u16) -> Result<()> {
    write_marker(w, FrameKind::Fail, &status.to_be_bytes())
}

/// Marks the response complete and the connection closing; flushes `w`.
pub fn write_response_end_close(w: &mut impl Write) -> Result<()> {
    write_marker(w, FrameKind::EndClose, &[])
}

/// Asks the Apache child to watch for its client going (see
/// `ResponseFrame::Watch`), and flushes `w`.
pub fn write_watch(w: &mut impl Write) -> Result<()> {
    write_marker(w, FrameKind::Watch, &[])
}

/// Hands the request back unrun because this daemon is restarting, and flushes `w`.
pub fn write_response_restart(w: &mut impl Write) -> Result<()> {
    write_marker(w, FrameKind::Restart, &[])
}

/// Reads one whole response frame. `Data` payloads are allocated; to relay a
/// large body without that, use `read_frame_header` and read `Data` payloads
/// into your own buffer, passing other kinds to `read_response_payload`.
pub fn read_response_frame(r: &mut impl Read) -> Result<ResponseFrame> {
    let h = read_frame_header(r)?;
    read_response_payload(r, h)
}

/// A response frame as a relay reads it: a `Data` payload is left unread,
/// to be read in pieces with `read_data`, so that no buffer grows with the
/// size of what the application returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Data { len: usize },
    Frame(ResponseFrame),
}

/// Reads the next response frame, all of it but a `Data` payload.
pub fn read_response_incoming(r: &mut impl Read) -> Result<Incoming> {
    let h = read_frame_header(r)?;
    if h.kind == FrameKind::Data {
        return Ok(Incoming::Data { len: h.len });
    }
    read_response_payload(r, h).map(Incoming::Frame)
}

/// Reads the next `buf.len()` bytes of a `Data` payload announced by
/// `read_response_incoming`.
pub fn read_data(r: &mut impl Read, buf: &mut [u8]) -> Result<()> {
    read_exact(r, buf)
}

/// Finishes reading a response frame whose header `h` was read with
/// `read_frame_header`. Rejects request-direction kinds.
pub fn read_response_payload(r: &mut impl Read, h: FrameHeader) -> Result<ResponseFrame> {
    // Lengths were checked by `read_frame_header`; markers have none.
    Ok(match h.kind {
        FrameKind::ResponseStart => {
            let payload = read_head_payload(r, h.len)?;
            let mut d = Decoder::new(&payload, "response start");
            let status = d.u16("status")?;
            let status_line = d.string("status line")?;
            let n = d.count("headers")?;
            let mut headers = Vec::with_capacity(n);
            for _ in 0..n {
                let name = d.string("header name")?;
                let value = d.string("header value")?;
                headers.push((name, value));
            }
            d.finish()?;
            ResponseFrame::Start { status, status_line, headers }
        }
        FrameKind::Data => ResponseFrame::Data(read_payload(r, h.len)?),
        FrameKind::File => {
            let mut range = [0u8; 16];
            read_exact(r, &mut range)?;
            let (offset, len) = range.split_at(8);
            ResponseFrame::File { offset: u64::from_be_bytes(offset.try_into().expect("8 bytes")), len: u64::from_be_bytes(len.try_into().expect("8 bytes")) }
        }
        FrameKind::End => ResponseFrame::End,
        FrameKind::Abort => ResponseFrame::Abort,
        FrameKind::Restart => ResponseFrame::Restart,
        FrameKind::EndClose => ResponseFrame::EndClose,
        FrameKind::Watch => ResponseFrame::Watch,
        FrameKind::Fail => {
            let mut status = [0u8; 2];
            read_exact(r, &mut status)?;
            ResponseFrame::Fail { status: u16::from_be_bytes(status) }
        }
        other @ (FrameKind::RequestHead | FrameKind::BodyChunk | FrameKind::BodyEnd | FrameKind::BodyAbort | FrameKind::ClientGone | FrameKind::Challenge) => {
            return Err(ProtocolError::Unexpected { expected: "a response frame", got: other });
        }
    })
}

// ---------------------------------------------------------------------------
// Framing

/// Reads and validates a frame header. Any EOF, even before its first byte,
/// is `Truncated`: use this only where a frame must follow.
pub fn read_frame_header(r: &mut impl Read) -> Result<FrameHeader> {
    read_frame_header_or_eof(r)?.ok_or(ProtocolError::Truncated)
}

/// Like `read_frame_header`, but `Ok(None)` on EOF before the first byte.
pub fn read_frame_header_or_eof(r: &mut impl Read) -> Result<Option<FrameHeader>> {
    let mut raw = [0u8; HEADER_LEN];
    // The first byte is read alone to tell "closed between exchanges" from
    // "closed mid-frame"; read_exact cannot make that distinction.
    loop {
        match r.read(&mut raw[..1]) {
            Ok(0) => return Ok(None),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    read_exact(r, &mut raw[1..])?;
    parse_frame_header(&raw).map(Some)
}

/// Checks a frame header's kind and length.
fn parse_frame_header(raw: &[u8; HEADER_LEN]) -> Result<FrameHeader> {
    let kind = FrameKind::from_byte(raw[0]).ok_or(ProtocolError::UnknownFrame(raw[0]))?;
    let len = u32::from_be_bytes([raw[1], raw[2], raw[3], raw[4]]) as usize;
    let (min, max) = kind.len_limits();
    if len > max {
        return Err(ProtocolError::TooLarge { kind, len, max });
    }
    if len < min {
        return Err(ProtocolError::Malformed(format!(
            "{kind:?} frame of {len} bytes, expected {min}"
        )));
    }
    Ok(FrameHeader { kind, len })
}

fn frame_header(kind: FrameKind, len: usize) -> [u8; HEADER_LEN] {
    // Callers keep len within the kind's limit, far below u32::MAX.
    let len = u32::try_from(len).expect("frame length checked against its limit");
    let l = len.to_be_bytes();
    [kind as u8, l[0], l[1], l[2], l[3]]
}

/// Writes a frame with a small fixed payload, then flushes: every such frame
/// is one after which the peer waits for us.
fn write_marker(w: &mut impl Write, kind: FrameKind, payload: &[u8]) -> Result<()> {
    let mut frame = [0u8; HEADER_LEN + 2];
    let n = HEADER_LEN + payload.len();
    frame[..HEADER_LEN].copy_from_slice(&frame_header(kind, payload.len()));
    frame[HEADER_LEN..n].copy_from_slice(payload);
    w.write_all(&frame[..n])?;
    w.flush()?;
    Ok(())
}

fn write_chunks(w: &mut impl Write, kind: FrameKind, data: &[u8]) -> Result<()> {
    for piece in data.chunks(MAX_CHUNK) {
        let header = frame_header(kind, piece.len());
        write_all_vectored(w, &mut [IoSlice::new(&header), IoSlice::new(piece)])?;
    }
    Ok(())
}

/// `Write::write_all_vectored` is unstable; this is the same loop.
fn write_all_vectored(w: &mut impl Write, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0); // drop leading empty slices
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "failed to write frame")),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `read_exact`, with EOF reported as `Truncated`.
fn read_exact(r: &mut impl Read, buf: &mut [u8]) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ProtocolError::Truncated,
        _ => ProtocolError::Io(e),
    })
}

/// Reads a payload whose length has already been checked against its limit.
/// Reads a payload whose length has already been checked against its limit.
fn read_payload(r: &mut impl Read, len: usize) -> Result<Vec<u8>> {
    let mut payload = vec![0u8; len];
    read_exact(r, &mut payload)?;
    Ok(payload)
}

/// Reads a head's payload. Its limit is high (a response head may have any
/// number of lines), so memory grows with the bytes that arrive, not with
/// the length the peer announced: a large head that never comes costs
/// nothing.
fn read_head_payload(r: &mut impl Read, len: usize) -> Result<Vec<u8>> {
    const STEP: usize = 64 * 1024;
    let mut payload = vec![0u8; len.min(STEP)];
    let mut filled = 0;
    while filled < len {
        if filled == payload.len() {
            payload.resize(len.min(filled.saturating_mul(2)), 0);
        }
        let end = payload.len();
        read_exact(r, &mut payload[filled..end])?;
        filled = end;
    }
    Ok(payload)
}

// ---------------------------------------------------------------------------
// Payload encoding: fixed-width big-endian integers, bools as one byte 0/1,
// byte strings and counts as a u32 length followed by the items.

/// Builds a whole frame (header included, so it goes out in one write),
/// refusing to grow past the kind's limit.
struct Encoder {
    kind: FrameKind,
    buf: Vec<u8>,
}

impl Encoder {
    fn new(kind: FrameKind) -> Self {
        Encoder::with_capacity(kind, 1024)
    }

    /// With room for a payload of about `payload` bytes, so a frame whose
    /// size is known ahead is built without reallocating.
    fn with_capacity(kind: FrameKind, payload: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADER_LEN + payload.min(kind.len_limits().1));
        buf.extend_from_slice(&[0; HEADER_LEN]);
        Encoder { kind, buf }
    }

    /// Checked before each append, so an oversized head fails before a huge
    /// buffer is built (and before a length could overflow u32).
    fn reserve(&mut self, extra: usize) -> Result<()> {
        let len = self.buf.len() - HEADER_LEN;
        let (_, max) = self.kind.len_limits();
        if extra > max - len {
            return Err(ProtocolError::TooLarge {
                kind: self.kind,
                len: len.saturating_add(extra),
                max,
            });
        }
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.reserve(bytes.len())?;
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn bool(&mut self, v: bool) -> Result<()> {
        self.put(&[u8::from(v)])
    }

    fn u16(&mut self, v: u16) -> Result<()> {
        self.put(&v.to_be_bytes())
    }

    fn i64(&mut self, v: i64) -> Result<()> {
        self.put(&v.to_be_bytes())
    }

    fn u32(&mut self, v: u32) -> Result<()> {
        self.put(&v.to_be_bytes())
    }

    fn count(&mut self, n: usize) -> Result<()> {
        // A count beyond u32 could never fit under the limit anyway.
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.put(&n.to_be_bytes())
    }

    fn bytes(&mut self, v: &[u8]) -> Result<()> {
        self.reserve(4usize.saturating_add(v.len()))?;
        self.count(v.len())?;
        self.put(v)
    }

    fn str(&mut self, v: &str) -> Result<()> {
        self.bytes(v.as_bytes())
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() - HEADER_LEN;
        self.buf[..HEADER_LEN].copy_from_slice(&frame_header(self.kind, len));
        self.buf
    }
}

/// Reads fields out of a payload, naming the frame and field in errors.
struct Decoder<'b> {
    buf: &'b [u8],
    frame: &'static str,
}

impl<'b> Decoder<'b> {
    fn new(buf: &'b [u8], frame: &'static str) -> Self {
        Decoder { buf, frame }
    }

    fn malformed(&self, field: &str, problem: &str) -> ProtocolError {
        ProtocolError::Malformed(format!("{}: {field} {problem}", self.frame))
    }

    fn take(&mut self, n: usize, field: &str) -> Result<&'b [u8]> {
        if n > self.buf.len() {
            return Err(self.malformed(field, "runs past the end of the frame"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N]> {
        let bytes = self.take(N, field)?;
        Ok(bytes.try_into().expect("take returned N bytes"))
    }

    fn bool(&mut self, field: &str) -> Result<bool> {
        match self.array::<1>(field)? {
            [0] => Ok(false),
            [1] => Ok(true),
            [b] => Err(self.malformed(field, &format!("is {b}, not a boolean"))),
        }
    }

    fn u16(&mut self, field: &str) -> Result<u16> {
        self.array(field).map(u16::from_be_bytes)
    }

    fn u32(&mut self, field: &str) -> Result<u32> {
        self.array(field).map(u32::from_be_bytes)
    }

    fn i64(&mut self, field: &str) -> Result<i64> {
        self.array(field).map(i64::from_be_bytes)
    }

    fn bytes(&mut self, field: &str) -> Result<&'b [u8]> {
        let n = self.u32(field)? as usize;
        self.take(n, field)
    }

    fn string(&mut self, field: &str) -> Result<String> {
        let bytes = self.bytes(field)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(self.malformed(field, "is not valid UTF-8")),
        }
    }

    /// A count of pairs of length-prefixed items. Each pair takes at least 8
    /// bytes, so a count the remaining payload cannot hold is rejected here,
    /// which keeps `Vec::with_capacity(count)` bounded by the payload size.
    fn count(&mut self, field: &str) -> Result<usize> {
        let n = self.u32(field)? as usize;
        if n > self.buf.len() / 8 {
            return Err(self.malformed(field, &format!("count {n} exceeds the frame")));
        }
        Ok(n)
    }

    fn finish(self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::Malformed(format!(
                "{}: {} unexpected trailing bytes",
                self.frame,
                self.buf.len()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    // The framing is tested here with heads left unsealed; MACs are `origin`'s.
    fn write_request_head(w: &mut impl Write, head: &RequestHead) -> Result<()> {
        super::write_request_head(w, head, |_| [0; MAC_LEN])
    }

    /// Reads the head of the next exchange, as a daemon does (which reads
    /// them without blocking, and checks their MAC); `Ok(None)` on a clean
    /// EOF before any byte of it, which is how idle connections end.
    fn read_request_head(r: &mut impl Read) -> Result<Option<RequestHead>> {
        let Some(h) = read_frame_header_or_eof(r)? else {
            return Ok(None);
        };
        if h.kind != FrameKind::RequestHead {
            return Err(ProtocolError::Unexpected { expected: "a request head", got: h.kind });
        }
        let payload = read_head_payload(r, h.len)?;
        SealedHead::from_payload(&payload)?.open().map(Some)
    }

    fn sample_head() -> RequestHead {
        RequestHead {
            environ: [
                (&b"REQUEST_METHOD"[..], &b"POST"[..]),
                (b"PATH_INFO", b"/caf\xe9/\x00\xff"),
                (b"EMPTY", b""),
                (b"", b"empty name"),
            ]
            .into_iter()
            .collect(),
            script_filename: "/srv/app/wsgi.py".into(),
            callable_object: "application".into(),
            application_group: "example.com|".into(),
            script_reloading: true,
            script_mtime: 1_700_000_000_123_456,
            request_id: "ZQx-req-1".into(),
            request_start: -42,
            enable_sendfile: true,
            ignore_activity: false,
            listener_host: "ünïcode.example".into(),
            listener_port: 8443,
            url_scheme: "https".into(),
            request_handler: "markdown".into(),
            handler_script: "/srv/app/render.wsgi".into(),
            queue_start: 1_700_000_000_000_001,
            daemon_connects: 1,
            daemon_restarts: 2,
            body_read_ahead: 1_500_000,
            interface: 2,
            headers: [(&b"Host"[..], &b"example.com"[..]), (b"X-Dup", b"one"), (b"X-Dup", b"two")].into_iter().collect(),
        }
    }

    /// A full client -> daemon exchange: head, body in several chunks, end.
    fn request_bytes(head: &RequestHead, body: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        write_request_head(&mut out, head).unwrap();
        for chunk in body {
            write_body_chunk(&mut out, chunk).unwrap();
        }
        write_body_end(&mut out).unwrap();
        out
    }

    fn response_bytes() -> Vec<u8> {
        let mut out = Vec::new();
        let headers = vec![
            ("Content-Type".to_string(), "text/plain".to_string()),
            ("X-Empty".to_string(), String::new()),
        ];
        write_response_start(&mut out, 200, "200 OK", &headers).unwrap();
        write_response_data(&mut out, b"hello ").unwrap();
        write_response_data(&mut out, b"world").unwrap();
        write_response_end(&mut out).unwrap();
        out
    }

    fn read_body(r: &mut impl Read, buf_len: usize) -> Result<Vec<u8>> {
        let mut body = BodyReader::new(r);
        let mut out = Vec::new();
        let mut buf = vec![0u8; buf_len];
        loop {
            let n = body.read(&mut buf)?;
            if n == 0 {
                assert!(body.finished());
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    /// Deterministic xorshift64*, so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Hands out at most one byte per call and interrupts every other call,
    /// to exercise short-read and EINTR handling.
    struct Trickle<'b> {
        data: &'b [u8],
        interrupt: bool,
        consumed: usize,
    }
    impl<'b> Trickle<'b> {
        fn new(data: &'b [u8]) -> Self {
            Trickle { data, interrupt: false, consumed: 0 }
        }
    }
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            if buf.is_empty() || self.data.is_empty() {
                return Ok(0);
            }
            buf[0] = self.data[0];
            self.data = &self.data[1..];
            self.consumed += 1;
            Ok(1)
        }
    }

    /// Accepts at most 3 bytes per call (and interrupts every other call),
    /// using the default `write_vectored`, i.e. one slice at a time.
    #[derive(Default)]
    struct Stingy {
        out: Vec<u8>,
        interrupt: bool,
        flushes: usize,
    }
    impl Write for Stingy {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(3);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.flushes += 1;
            Ok(())
        }
    }

    // --- request head -----------------------------------------------------

    #[test]
    fn request_head_round_trip() {
        for head in [RequestHead::default(), sample_head()] {
            let mut out = Vec::new();
            write_request_head(&mut out, &head).unwrap();
            assert_eq!(out[0], FrameKind::RequestHead as u8);
            assert_eq!(
                u32::from_be_bytes(out[1..5].try_into().unwrap()) as usize,
                out.len() - HEADER_LEN
            );
            let mut r = Cursor::new(&out);
            assert_eq!(read_request_head(&mut r).unwrap(), Some(head));
            assert_eq!(r.position() as usize, out.len());
        }
    }

    #[test]
    fn request_head_binary_values_survive() {
        let all_bytes: Vec<u8> = (0..=255).collect();
        let head = RequestHead {
            environ: [(all_bytes.clone(), all_bytes.iter().rev().copied().collect::<Vec<u8>>())].into_iter().collect(),
            ..RequestHead::default()
        };
        let out = request_bytes(&head, &[]);
        let got = read_request_head(&mut Cursor::new(&out)).unwrap().unwrap();
        assert_eq!(got, head);
    }

    /// Fixed part of an encoded default head, for sizing tests.
    fn empty_head_payload_len() -> usize {
        let mut out = Vec::new();
        write_request_head(&mut out, &RequestHead::default()).unwrap();
        out.len() - HEADER_LEN
    }

    #[test]
    fn request_head_at_and_over_the_limit() {
        // One environ pair sized so the head after its MAC and sealed length is exactly MAX_HEAD.
        let value_len = MAC_LEN + 4 + MAX_HEAD - empty_head_payload_len() - 8 - b"HTTP_X_BIG".len();
        let mut head = RequestHead {
            environ: [(b"HTTP_X_BIG".to_vec(), vec![b'x'; value_len])].into_iter().collect(),
            ..RequestHead::default()
        };
        let mut out = Vec::new();
        write_request_head(&mut out, &head).unwrap();
        assert_eq!(out.len(), HEADER_LEN + MAC_LEN + 4 + MAX_HEAD);
        assert_eq!(read_request_head(&mut Cursor::new(&out)).unwrap().as_ref(), Some(&head));

        // One byte more is refused, and nothing is written.
        head.environ = [(b"HTTP_X_BIG".to_vec(), vec![b'x'; value_len + 1])].into_iter().collect();
        let mut out = Vec::new();
        let err = write_request_head(&mut out, &head).unwrap_err();
        assert!(matches!(err, ProtocolError::TooLarge { kind: FrameKind::RequestHead, .. }));
        assert!(out.is_empty());
    }

    #[test]
    fn request_head_many_small_pairs_near_the_limit() {
        let environ: Environ = (0..30_000)
            .map(|i| (format!("HTTP_X_{i}").into_bytes(), vec![(i % 256) as u8; 8]))
            .collect();
        let head = RequestHead { environ, ..sample_head() };
        let out = request_bytes(&head, &[]);
        assert!(out.len() > MAX_HEAD * 3 / 4);
        let mut r = Cursor::new(&out);
        assert_eq!(read_request_head(&mut r).unwrap(), Some(head));
        assert!(BodyReader::new(&mut r).read(&mut [0; 4]).unwrap() == 0);
    }

    #[test]
    fn huge_field_is_refused_without_building_it() {
        // A field far beyond the limit fails at the length check, not after
        // a multi-gigabyte allocation (this test would be slow otherwise).
        let big = vec![0u8; MAX_HEAD + 1];
        let head = RequestHead { environ: [(big, Vec::new())].into_iter().collect(), ..RequestHead::default() };
        let mut out = Vec::new();
        assert!(matches!(write_request_head(&mut out, &head), Err(ProtocolError::TooLarge { .. })));
        assert!(out.is_empty());
    }

    #[test]
    fn clean_eof_before_a_head_is_none() {
        assert_eq!(read_request_head(&mut Cursor::new(&[][..])).unwrap(), None);
        // ... also after a complete exchange, which is how idle connections end.
        let out = request_bytes(&sample_head(), &[b"abc"]);
        let mut r = Cursor::new(&out);
        read_request_head(&mut r).unwrap().unwrap();
        BodyReader::new(&mut r).drain().unwrap();
        assert_eq!(read_request_head(&mut r).unwrap(), None);
        // One byte of a head is not a clean EOF.
        let err = read_request_head(&mut Cursor::new(&[FrameKind::RequestHead as u8][..]));
        assert!(matches!(err, Err(ProtocolError::Truncated)));
    }

    #[test]
    fn request_head_via_trickling_reader() {
        let head = sample_head();
        let out = request_bytes(&head, &[b"body"]);
        let mut r = Trickle::new(&out);
        assert_eq!(read_request_head(&mut r).unwrap(), Some(head));
        assert_eq!(read_body(&mut r, 100).unwrap(), b"body");
        assert_eq!(read_request_head(&mut r).unwrap(), None);
    }

    // --- request body -----------------------------------------------------

    #[test]
    fn body_split_across_many_chunks_with_tiny_buffers() {
        let body: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let chunks: Vec<&[u8]> = body.chunks(97).collect();
        let out = request_bytes(&sample_head(), &chunks);
        for buf_len in [1, 2, 5, 96, 97, 98, 4096, 20_000] {
            let mut r = Cursor::new(&out);
            read_request_head(&mut r).unwrap().unwrap();
            assert_eq!(read_body(&mut r, buf_len).unwrap(), body, "buf_len {buf_len}");
            assert_eq!(r.position() as usize, out.len());
        }
    }

    #[test]
    fn empty_body_and_empty_chunks() {
        // write_body_chunk(&[]) writes nothing ...
        let mut out = Vec::new();
        write_body_chunk(&mut out, b"").unwrap();
        assert!(out.is_empty());
        let out = request_bytes(&sample_head(), &[]);
        let mut r = Cursor::new(&out);
        read_request_head(&mut r).unwrap();
        assert_eq!(read_body(&mut r, 8).unwrap(), b"");

        // ... but an empty chunk from a peer is not mistaken for the end.
        let mut out = Vec::new();
        out.extend_from_slice(&frame_header(FrameKind::BodyChunk, 0));
        write_body_chunk(&mut out, b"xy").unwrap();
        out.extend_from_slice(&frame_header(FrameKind::BodyChunk, 0));
        write_body_end(&mut out).unwrap();
        assert_eq!(read_body(&mut Cursor::new(&out), 8).unwrap(), b"xy");
    }

    #[test]
    fn body_reader_stays_finished() {
        let mut out = Vec::new();
        write_body_chunk(&mut out, b"abc").unwrap();
        write_body_end(&mut out).unwrap();
        write_request_head(&mut out, &sample_head()).unwrap();
        let mut r = Cursor::new(&out);
        let mut body = BodyReader::new(&mut r);
        let mut buf = [0u8; 16];
        assert!(!body.finished());
        assert_eq!(body.read(&mut buf).unwrap(), 3);
        assert!(!body.finished());
        for _ in 0..3 {
            assert_eq!(body.read(&mut buf).unwrap(), 0);
            assert!(body.finished());
        }
        body.drain().unwrap();
        // The next head was not touched.
        assert_eq!(read_request_head(&mut r).unwrap(), Some(sample_head()));
    }

    #[test]
    fn body_cursor_keeps_its_place_across_borrows() {
        // The shape of a daemon connection: the cursor lives in a struct and
        // each read borrows the stream anew.
        let body: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let mut out = request_bytes(&sample_head(), &[&body[..3000], &body[3000..]]);
        out.extend(request_bytes(&RequestHead::default(), &[]));
        let mut r = Cursor::new(&out);
        read_request_head(&mut r).unwrap().unwrap();
        let mut cursor = BodyCursor::new();
        let mut got = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = cursor.read(&mut r, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, body);
        assert!(cursor.finished() && !cursor.failed());
        assert_eq!(read_request_head(&mut r).unwrap(), Some(RequestHead::default()));

        // Handing the cursor out of a BodyReader and on to a new one works too.
        let out = request_bytes(&sample_head(), &[b"abcdef"]);
        let mut r = Cursor::new(&out);
        read_request_head(&mut r).unwrap();
        let mut reader = BodyReader::new(&mut r);
        assert_eq!(reader.read(&mut buf[..2]).unwrap(), 2);
        let mut cursor = reader.into_cursor();
        assert_eq!(cursor.read(&mut r, &mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"cdef");
        cursor.drain(&mut r).unwrap();
        assert!(cursor.finished());
        assert_eq!(read_request_head(&mut r).unwrap(), None);
    }

    #[test]
    fn body_reader_implements_read() {
        let out = request_bytes(&sample_head(), &[b"line one\n", b"line ", b"two\n"]);
        let mut r = Cursor::new(&out);
        read_request_head(&mut r).unwrap();
        let mut text = String::new();
        io::BufReader::new(BodyReader::new(&mut r)).read_to_string(&mut text).unwrap();
        assert_eq!(text, "line one\nline two\n");
    }

    #[test]
    fn drain_partial_body_then_next_head() {
        let first = sample_head();
        let second = RequestHead { request_id: "second".into(), ..RequestHead::default() };
        let body = vec![7u8; 50_000];
        let mut out = request_bytes(&first, &body.chunks(1000).collect::<Vec<_>>());
        out.extend(request_bytes(&second, &[b"next body"]));

        let mut r = Cursor::new(&out);
        assert_eq!(read_request_head(&mut r).unwrap(), Some(first));
        let mut body_reader = BodyReader::new(&mut r);
        let mut buf = [0u8; 1500];
        assert_eq!(body_reader.read(&mut buf).unwrap(), 1000);
        assert_eq!(body_reader.read(&mut buf[..10]).unwrap(), 10);
        body_reader.drain().unwrap();
        assert!(body_reader.finished());

        assert_eq!(read_request_head(&mut r).unwrap(), Some(second));
        assert_eq!(read_body(&mut r, 3).unwrap(), b"next body");
        assert_eq!(read_request_head(&mut r).unwrap(), None);
    }

    #[test]
    fn body_reader_rejects_other_frames_and_then_stays_failed() {
        let mut out = Vec::new();
        write_body_chunk(&mut out, b"ab").unwrap();
        write_response_end(&mut out).unwrap();
        let mut r = Cursor::new(&out);
        let mut body = BodyReader::new(&mut r);
        let mut buf = [0u8; 8];
        assert_eq!(body.read(&mut buf).unwrap(), 2);
        assert!(matches!(
            body.read(&mut buf),
            Err(ProtocolError::Unexpected { got: FrameKind::End, .. })
        ));
        assert!(matches!(body.read(&mut buf), Err(ProtocolError::BodyFailed)));
        assert!(matches!(body.drain(), Err(ProtocolError::BodyFailed)));
        assert!(!body.finished());
    }

    #[test]
    fn chunks_above_max_chunk_are_split() {
        let data: Vec<u8> = (0..MAX_CHUNK + 3).map(|i| (i % 253) as u8).collect();
        let mut out = Vec::new();
        write_body_chunk(&mut out, &data).unwrap();
        write_body_end(&mut out).unwrap();
        let mut r = Cursor::new(&out);
        let first = read_frame_header(&mut r).unwrap();
        assert_eq!(first, FrameHeader { kind: FrameKind::BodyChunk, len: MAX_CHUNK });
        r.set_position(0);
        assert_eq!(read_body(&mut r, 1 << 20).unwrap(), data);

        let mut out = Vec::new();
        write_response_data(&mut out, &data).unwrap();
        let mut r = Cursor::new(&out);
        let mut got = Vec::new();
        while let ResponseFrame::Data(d) = read_response_frame(&mut r).unwrap() {
            got.extend(d);
            if r.position() as usize == out.len() {
                break;
            }
        }
        assert_eq!(got, data);
    }

    // --- response ---------------------------------------------------------

    #[test]
    fn response_frames_round_trip() {
        let headers = vec![
            ("Content-Type".to_string(), "text/html; charset=utf-8".to_string()),
            ("Set-Cookie".to_string(), "a=1".to_string()),
            ("Set-Cookie".to_string(), "b=2".to_string()),
            ("X-Latin1".to_string(), "caf\u{e9}".to_string()),
        ];
        let frames = [
            ResponseFrame::Start { status: 200, status_line: "200 OK".into(), headers },
            ResponseFrame::Start { status: 204, status_line: String::new(), headers: vec![] },
            ResponseFrame::Data(vec![0, 1, 2, 255]),
            ResponseFrame::File { offset: 3, len: u64::MAX },
            ResponseFrame::End,
            ResponseFrame::Abort,
            ResponseFrame::Fail { status: 500 },
            ResponseFrame::Fail { status: u16::MAX },
            ResponseFrame::Restart,
            ResponseFrame::EndClose,
            ResponseFrame::Watch,
        ];
        let mut out = Vec::new();
        for f in &frames {
            match f {
                ResponseFrame::Start { status, status_line, headers } => {
                    write_response_start(&mut out, *status, status_line, headers).unwrap()
                }
                ResponseFrame::Data(d) => write_response_data(&mut out, d).unwrap(),
                ResponseFrame::File { offset, len } => out.extend_from_slice(&response_file_frame(*offset, *len)),
                ResponseFrame::End => write_response_end(&mut out).unwrap(),
                ResponseFrame::Abort => write_response_abort(&mut out).unwrap(),
                ResponseFrame::Fail { status } => write_response_fail(&mut out, *status).unwrap(),
                ResponseFrame::Restart => write_response_restart(&mut out).unwrap(),
                ResponseFrame::EndClose => write_response_end_close(&mut out).unwrap(),
                ResponseFrame::Watch => write_watch(&mut out).unwrap(),
            }
        }
        let mut r = Trickle::new(&out);
        for f in &frames {
            assert_eq!(&read_response_frame(&mut r).unwrap(), f);
        }
        assert!(matches!(read_response_frame(&mut r), Err(ProtocolError::Truncated)));
    }

    #[test]
    fn response_data_relayed_without_allocating() {
        let out = response_bytes();
        let mut r = Cursor::new(&out);
        let mut relayed = Vec::new();
        let mut buf = [0u8; 4];
        loop {
            let h = read_frame_header(&mut r).unwrap();
            if h.kind == FrameKind::Data {
                let mut left = h.len;
                while left > 0 {
                    let n = left.min(buf.len());
                    r.read_exact(&mut buf[..n]).unwrap();
                    relayed.extend_from_slice(&buf[..n]);
                    left -= n;
                }
                continue;
            }
            match read_response_payload(&mut r, h).unwrap() {
                ResponseFrame::Start { status, .. } => assert_eq!(status, 200),
                ResponseFrame::End => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(relayed, b"hello world");
        assert_eq!(r.position() as usize, out.len());
    }

    #[test]
    fn response_start_over_the_limit_is_refused() {
        let headers = vec![("X-Big".to_string(), "v".repeat(MAX_RESPONSE_HEAD))];
        let mut out = Vec::new();
        let err = write_response_start(&mut out, 200, "200 OK", &headers).unwrap_err();
        assert!(matches!(err, ProtocolError::TooLarge { kind: FrameKind::ResponseStart, .. }));
        assert!(out.is_empty());
    }

    #[test]
    fn empty_response_data_writes_nothing() {
        let mut out = Vec::new();
        write_response_data(&mut out, b"").unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn writes_survive_short_and_interrupted_writes_and_flush_terminal_frames() {
        let mut w = Stingy::default();
        write_request_head(&mut w, &sample_head()).unwrap();
        write_body_chunk(&mut w, b"0123456789").unwrap();
        assert_eq!(w.flushes, 0);
        write_body_end(&mut w).unwrap();
        assert_eq!(w.flushes, 1);
        assert_eq!(w.out, request_bytes(&sample_head(), &[b"0123456789"]));

        let mut w = Stingy::default();
        write_response_start(&mut w, 200, "200 OK", &[]).unwrap();
        write_response_data(&mut w, b"abcdefg").unwrap();
        write_response_abort(&mut w).unwrap();
        write_response_end(&mut w).unwrap();
        write_response_fail(&mut w, 503).unwrap();
        assert_eq!(w.flushes, 3);
        let mut r = Cursor::new(&w.out);
        assert!(matches!(read_response_frame(&mut r).unwrap(), ResponseFrame::Start { .. }));
        assert_eq!(read_response_frame(&mut r).unwrap(), ResponseFrame::Data(b"abcdefg".to_vec()));
        assert_eq!(read_response_frame(&mut r).unwrap(), ResponseFrame::Abort);
        assert_eq!(read_response_frame(&mut r).unwrap(), ResponseFrame::End);
        assert_eq!(read_response_frame(&mut r).unwrap(), ResponseFrame::Fail { status: 503 });
    }

    #[test]
    fn writer_that_accepts_nothing_is_an_error() {
        struct Zero;
        impl Write for Zero {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Ok(0)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        assert!(matches!(write_response_data(&mut Zero, b"x"), Err(ProtocolError::Io(_))));
        assert!(matches!(write_response_end(&mut Zero), Err(ProtocolError::Io(_))));
    }

    /// Two exchanges over a real socket pair with buffered streams on both
    /// sides: shows the terminal frames' flushes are enough to avoid deadlock.
    #[test]
    fn exchanges_over_a_unix_socket() {
        use std::os::unix::net::UnixStream;
        let (client, daemon) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || {
            let mut r = io::BufReader::new(daemon.try_clone().unwrap());
            let mut w = io::BufWriter::new(daemon);
            let mut served = 0;
            while let Some(head) = read_request_head(&mut r).unwrap() {
                let mut body = BodyReader::new(&mut r);
                let mut first = [0u8; 5];
                let n = body.read(&mut first).unwrap();
                body.drain().unwrap();
                if head.request_id == "fail" {
                    write_response_fail(&mut w, 500).unwrap();
                } else {
                    write_response_start(&mut w, 200, "200 OK", &[]).unwrap();
                    write_response_data(&mut w, &first[..n]).unwrap();
                    write_response_end(&mut w).unwrap();
                }
                served += 1;
            }
            served
        });

        let mut r = io::BufReader::new(client.try_clone().unwrap());
        let mut w = io::BufWriter::new(client);
        let big = vec![b'z'; 300_000];
        write_request_head(&mut w, &sample_head()).unwrap();
        write_body_chunk(&mut w, &big).unwrap();
        write_body_end(&mut w).unwrap();
        assert!(matches!(read_response_frame(&mut r).unwrap(), ResponseFrame::Start { .. }));
        assert_eq!(read_response_frame(&mut r).unwrap(), ResponseFrame::Data(b"zzzzz".to_vec()));
        assert_eq!(read_response_frame(&mut r).unwrap(), ResponseFrame::End);

        let head = RequestHead { request_id: "fail".into(), ..RequestHead::default() };
        write_request_head(&mut w, &head).unwrap();
        write_body_end(&mut w).unwrap();
        assert_eq!(read_response_frame(&mut r).unwrap(), ResponseFrame::Fail { status: 500 });

        drop(w.into_inner().unwrap().shutdown(std::net::Shutdown::Write));
        assert_eq!(server.join().unwrap(), 2);
    }

    // --- rejecting bad input -------------------------------------------------

    #[test]
    fn directions_are_enforced() {
        let req = request_bytes(&sample_head(), &[b"x"]);
        assert!(matches!(
            read_response_frame(&mut Cursor::new(&req)),
            Err(ProtocolError::Unexpected { got: FrameKind::RequestHead, .. })
        ));
        let resp = response_bytes();
        assert!(matches!(
            read_request_head(&mut Cursor::new(&resp)),
            Err(ProtocolError::Unexpected { got: FrameKind::ResponseStart, .. })
        ));
        let mut body = Vec::new();
        write_body_chunk(&mut body, b"x").unwrap();
        assert!(matches!(
            read_request_head(&mut Cursor::new(&body)),
            Err(ProtocolError::Unexpected { got: FrameKind::BodyChunk, .. })
        ));
    }

    #[test]
    fn unknown_frame_types_are_rejected() {
        for b in 0..=255u8 {
            if FrameKind::from_byte(b).is_some() {
                continue;
            }
            let frame = [b, 0, 0, 0, 0];
            assert!(matches!(
                read_frame_header(&mut Cursor::new(&frame)),
                Err(ProtocolError::UnknownFrame(x)) if x == b
            ));
            assert!(matches!(
                read_request_head(&mut Cursor::new(&frame)),
                Err(ProtocolError::UnknownFrame(_))
            ));
            assert!(matches!(
                read_response_frame(&mut Cursor::new(&frame)),
                Err(ProtocolError::UnknownFrame(_))
            ));
        }
    }

    #[test]
    fn oversize_lengths_are_rejected_after_reading_only_the_header() {
        let kinds = [
            FrameKind::RequestHead,
            FrameKind::BodyChunk,
            FrameKind::BodyEnd,
            FrameKind::ResponseStart,
            FrameKind::Data,
            FrameKind::File,
            FrameKind::End,
            FrameKind::Abort,
            FrameKind::Fail,
        ];
        for kind in kinds {
            let (_, max) = kind.len_limits();
            for len in [max as u64 + 1, u64::from(u32::MAX)] {
                let mut frame = vec![kind as u8];
                frame.extend_from_slice(&(len as u32).to_be_bytes());
                // Plenty of trailing bytes: the reader must not go on to read them.
                frame.extend_from_slice(&[0u8; 64]);
                let mut r = Trickle::new(&frame);
                let err = read_frame_header(&mut r).unwrap_err();
                assert!(
                    matches!(err, ProtocolError::TooLarge { kind: k, len: l, max: m }
                        if k == kind && l as u64 == len && m == max),
                    "{kind:?} {len}: {err}"
                );
                assert_eq!(r.consumed, HEADER_LEN);
            }
        }
        let mut frame = vec![FrameKind::RequestHead as u8];
        frame.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            read_request_head(&mut Cursor::new(&frame)),
            Err(ProtocolError::TooLarge { .. })
        ));
        let mut frame = vec![FrameKind::Data as u8];
        frame.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            read_response_frame(&mut Cursor::new(&frame)),
            Err(ProtocolError::TooLarge { .. })
        ));
    }

    #[test]
    fn short_fail_frame_is_malformed() {
        let frame = [FrameKind::Fail as u8, 0, 0, 0, 1, 0];
        assert!(matches!(
            read_response_frame(&mut Cursor::new(&frame)),
            Err(ProtocolError::Malformed(_))
        ));
    }

    /// Wraps a payload in a frame header.
    fn frame(kind: FrameKind, payload: &[u8]) -> Vec<u8> {
        let mut out = frame_header(kind, payload.len()).to_vec();
        out.extend_from_slice(payload);
        out
    }

    /// A head's payload after its MAC: the sealed fields' length, the fields, the environ.
    fn head_payload(head: &RequestHead) -> Vec<u8> {
        let mut out = Vec::new();
        write_request_head(&mut out, head).unwrap();
        out.split_off(HEADER_LEN + MAC_LEN)
    }

    fn malformed_head(fields: &[u8]) -> String {
        let payload = [&[0; MAC_LEN][..], fields].concat();
        match read_request_head(&mut Cursor::new(frame(FrameKind::RequestHead, &payload))) {
            Err(ProtocolError::Malformed(msg)) => msg,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn malformed_payloads_are_rejected() {
        let good = head_payload(&sample_head());

        let mut trailing = good.clone();
        trailing.push(0);
        assert!(malformed_head(&trailing).contains("trailing"));

        // script_reloading is the byte after the three leading strings.
        let fixed = RequestHead::default();
        let mut bad_bool = head_payload(&fixed);
        assert_eq!(bad_bool[16], 0);
        bad_bool[16] = 2;
        assert!(malformed_head(&bad_bool).contains("script_reloading"));

        // script_filename claiming more bytes than there are.
        let mut bad_len = good.clone();
        bad_len[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(malformed_head(&bad_len).contains("script_filename"));

        // Sealed fields claiming more bytes than the frame has.
        let mut bad_sealed = good.clone();
        bad_sealed[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(malformed_head(&bad_sealed).contains("sealed fields"));

        // Invalid UTF-8 in a string field.
        let mut bad_utf8 =
            head_payload(&RequestHead { script_filename: "ab".into(), ..RequestHead::default() });
        bad_utf8[8] = 0xff;
        assert!(malformed_head(&bad_utf8).contains("UTF-8"));

        // An environ count the payload cannot hold: rejected before reserving.
        let mut bad_count = head_payload(&RequestHead::default());
        let n = bad_count.len();
        bad_count[n - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(malformed_head(&bad_count).contains("count"));

        // Same for response headers.
        let mut start = 200u16.to_be_bytes().to_vec();
        start.extend_from_slice(&0u32.to_be_bytes());
        start.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            read_response_frame(&mut Cursor::new(frame(FrameKind::ResponseStart, &start))),
            Err(ProtocolError::Malformed(_))
        ));
    }

    #[test]
    fn truncation_at_every_byte_is_an_error() {
        let req = request_bytes(&sample_head(), &[b"abc", b"defgh"]);
        for cut in 1..req.len() {
            let mut r = Cursor::new(&req[..cut]);
            let result = read_request_head(&mut r).and_then(|h| {
                assert!(h.is_some(), "cut {cut}: head reported as clean EOF");
                read_body(&mut r, 3)
            });
            assert!(matches!(result, Err(ProtocolError::Truncated)), "cut {cut}: {result:?}");
        }

        let resp = response_bytes();
        // Cuts on frame boundaries leave a complete prefix; count them.
        let mut boundary_cuts = 0;
        for cut in 0..resp.len() {
            let mut r = Cursor::new(&resp[..cut]);
            let err = loop {
                match read_response_frame(&mut r) {
                    Ok(ResponseFrame::End) => panic!("cut {cut}: saw End"),
                    Ok(_) => {}
                    Err(e) => break e,
                }
            };
            assert!(matches!(err, ProtocolError::Truncated), "cut {cut}: {err}");
            if r.position() as usize == cut {
                boundary_cuts += 1;
            }
        }
        assert!(boundary_cuts >= 4);
    }

    #[test]
    fn truncated_error_maps_to_unexpected_eof() {
        let out = request_bytes(&sample_head(), &[b"abcdef"]);
        let mut r = Cursor::new(&out[..out.len() - 8]);
        read_request_head(&mut r).unwrap();
        let err = BodyReader::new(&mut r).read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_body_ends_within_what_is_buffered_only_up_to_its_end_marker() {
        let mut wire = Vec::new();
        write_body_chunk(&mut wire, b"abc").unwrap();
        write_body_chunk(&mut wire, b"de").unwrap();
        write_body_end(&mut wire).unwrap();
        let cursor = BodyCursor::new();
        assert!(cursor.ends_within(&wire));
        // Short of the end marker, or of a chunk's payload: more is to be read.
        assert!(!cursor.ends_within(&wire[..wire.len() - 1]));
        assert!(!cursor.ends_within(&wire[..HEADER_LEN + 2]));
        assert!(!cursor.ends_within(&[]));
        // Part way into a chunk: its rest is skipped first.
        let mut reader = &wire[..];
        let mut cursor = BodyCursor::new();
        let mut one = [0u8; 1];
        assert_eq!(cursor.read(&mut reader, &mut one).unwrap(), 1);
        assert!(cursor.ends_within(reader));
        assert!(!cursor.ends_within(&reader[..2]));
        // Over, or anything but a chunk next (drain stops there at once).
        let mut ended = BodyCursor::new();
        ended.drain(&mut &wire[..]).unwrap();
        assert!(ended.ends_within(&[]));
        assert!(BodyCursor::new().ends_within(&[0xEE, 0, 0, 0, 0]));
    }

    #[test]
    fn watch_and_client_gone_frames() {
        let mut out = Vec::new();
        write_watch(&mut out).unwrap();
        assert!(matches!(read_response_incoming(&mut Cursor::new(&out)).unwrap(), Incoming::Frame(ResponseFrame::Watch)));
        let mut told = Vec::new();
        write_client_gone(&mut told).unwrap();
        write_client_gone(&mut told).unwrap();
        assert_eq!(client_gone_frames(&told), 2 * HEADER_LEN);
        // Only whole ClientGone frames at the start count: a head after them does not.
        told.extend_from_slice(&request_bytes(&sample_head(), &[]));
        assert_eq!(client_gone_frames(&told), 2 * HEADER_LEN);
        assert_eq!(client_gone_frames(&told[..HEADER_LEN - 1]), 0);
        assert_eq!(client_gone_frames(&out), 0);
    }

    // --- fuzz-style ---------------------------------------------------------

    /// Runs every reader over `input` until it errors or runs dry. Must never
    /// panic; termination is guaranteed because every Ok consumes input.
    fn exercise_readers(input: &[u8]) {
        let mut r = Cursor::new(input);
        while let Ok(Some(_)) = read_request_head(&mut r) {
            if BodyReader::new(&mut r).drain().is_err() {
                break;
            }
        }
        let mut r = Cursor::new(input);
        let mut body = BodyReader::new(&mut r);
        let mut buf = [0u8; 7];
        while let Ok(n) = body.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        let mut r = Cursor::new(input);
        while read_response_frame(&mut r).is_ok() {}
    }

    #[test]
    fn fuzz_readers_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut seeds = vec![
            request_bytes(&sample_head(), &[b"abc", b"", b"defgh"]),
            request_bytes(&RequestHead::default(), &[]),
            response_bytes(),
        ];
        let mut fail = Vec::new();
        write_response_fail(&mut fail, 500).unwrap();
        seeds.push(fail);

        for _ in 0..3000 {
            // Pure noise, biased towards known kind bytes and small lengths
            // so that some of it gets past the header check.
            let len = rng.below(64);
            let mut noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if len >= HEADER_LEN {
                let kinds = [0x01, 0x02, 0x03, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17];
                noise[0] = kinds[rng.below(kinds.len())];
                noise[1..4].fill(0);
                noise[4] = (rng.below(len)) as u8;
            }
            exercise_readers(&noise);

            // Mutated valid streams: flip, overwrite, delete or insert bytes.
            let mut m = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(m.len());
                match rng.below(4) {
                    0 => m[at] ^= 1 << rng.below(8),
                    1 => m[at] = rng.next() as u8,
                    2 => {
                        m.remove(at);
                    }
                    _ => m.insert(at, rng.next() as u8),
                }
                if m.is_empty() {
                    break;
                }
            }
            exercise_readers(&m);
        }
    }
}
