//! One end of a connection between an Apache child and a daemon: the socket
//! and the buffering both ends need, held only while an exchange is under
//! way. Hundreds of connections may sit idle in pools at both ends, so an
//! idle one keeps its descriptor and any unread bytes, nothing more; the
//! buffers go back to a small process-wide stock, for the next exchange.
//!
//! The buffers are small: they batch frame headers, heads and small frames;
//! reads and writes of a buffer's size or more go straight to the socket.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use parking_lot::Mutex;

use super::os;

/// The pieces bodies are relayed in.
pub const PIECE: usize = 64 * 1024;

/// The size of each buffer while an exchange runs.
const BUFFER: usize = 8 * 1024;

/// Spare input buffers (initialised to their length) and output buffers
/// (empty), shared by the process's threads: kept per thread, Apache's
/// 25-50 threads would each hold a pair, in their own malloc arenas.
static SPARE_INPUT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
static SPARE_OUTPUT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// At most this many of each are kept: what concurrent exchanges use.
const MAX_SPARE: usize = 8;

/// One read from `stream` into `buf`, keeping in `files` any open files
/// that came with the bytes (when the wire takes them).
fn read_socket(stream: &UnixStream, files: Option<&mut Vec<OwnedFd>>, buf: &mut [u8]) -> io::Result<usize> {
    match files {
        Some(files) => os::recv_with_files(stream, buf, files),
        None => (&*stream).read(buf),
    }
}

fn take_input() -> Vec<u8> {
    SPARE_INPUT.lock().pop().unwrap_or_else(|| vec![0; BUFFER])
}

fn take_output() -> Vec<u8> {
    SPARE_OUTPUT.lock().pop().unwrap_or_else(|| Vec::with_capacity(BUFFER))
}

/// Keeps buffers of the usual size for another exchange; ones that grew (a
/// large head), and any beyond MAX_SPARE, are freed.
fn give_back(input: Vec<u8>, mut output: Vec<u8>) {
    if input.len() == BUFFER {
        let mut spare = SPARE_INPUT.lock();
        if spare.len() < MAX_SPARE {
            spare.push(input);
        }
    }
    if output.capacity() == BUFFER {
        output.clear();
        let mut spare = SPARE_OUTPUT.lock();
        if spare.len() < MAX_SPARE {
            spare.push(output);
        }
    }
}

pub struct Wire {
    stream: UnixStream,
    /// Whether the peer may send open files (a daemon, to the Apache child),
    /// and those received, in the order they came.
    takes_files: bool,
    files: Vec<OwnedFd>,
    /// Received bytes; `input[start..end]` are not consumed yet.
    input: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes written and not yet sent.
    output: Vec<u8>,
    /// Bytes the socket has taken so far.
    sent: u64,
}

impl Wire {
    pub fn new(stream: UnixStream) -> Wire {
        Wire { stream, takes_files: false, files: Vec::new(), input: Vec::new(), start: 0, end: 0, output: Vec::new(), sent: 0 }
    }

    /// A wire whose peer may send open files along with its bytes.
    pub fn taking_files(stream: UnixStream) -> Wire {
        Wire { takes_files: true, ..Wire::new(stream) }
    }

    /// The next file the peer sent, if any came.
    pub fn take_file(&mut self) -> Option<OwnedFd> {
        (!self.files.is_empty()).then(|| self.files.remove(0))
    }

    /// Sends what is buffered, then `bytes` with `file` attached.
    pub fn send_with_file(&mut self, bytes: &[u8], file: BorrowedFd<'_>) -> io::Result<()> {
        self.send_output()?;
        let sent = loop {
            match os::send_with_file(&self.stream, bytes, file) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        self.sent += sent as u64;
        // The file went with the first byte; the rest, if any, follows plainly.
        self.send(&bytes[sent..])
    }

    /// How many bytes the socket has taken on this wire: when a write fails,
    /// whether any of what went before reached the peer.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// `write_all` to the socket, counting what it takes.
    fn send(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            match (&self.stream).write(data) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => {
                    self.sent += n as u64;
                    data = &data[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Received bytes not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.input[self.start..self.end]
    }

    /// Marks `n` buffered bytes as consumed.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// How many bytes `receive` can take without growing the buffer.
    pub fn room(&self) -> usize {
        if self.input.is_empty() { BUFFER } else { self.input.len() - (self.end - self.start) }
    }

    /// Appends to the unread input what `receive` reads (at most `max`
    /// bytes) from the socket: a non-blocking read, say.
    pub fn receive(&mut self, max: usize, receive: impl FnOnce(&UnixStream, &mut [u8]) -> io::Result<usize>) -> io::Result<usize> {
        if self.input.is_empty() {
            self.input = take_input();
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.input.len() - self.end < max {
            self.input.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.input.len() - self.end < max {
                self.input.resize(self.end + max, 0);
            }
        }
        let n = receive(&self.stream, &mut self.input[self.end..self.end + max])?;
        self.end += n;
        Ok(n)
    }

    /// Gives back the buffers between exchanges, keeping unread bytes in a
    /// buffer of their own size. Unsent output is dropped: call `flush` first.
    pub fn release_buffers(&mut self) {
        let unread = self.end - self.start;
        let input = std::mem::take(&mut self.input);
        if unread > 0 {
            self.input = input[self.start..self.end].to_vec();
        }
        self.start = 0;
        self.end = unread;
        // A file the exchange did not use is not kept for the next one.
        self.files.clear();
        give_back(input, std::mem::take(&mut self.output));
    }

    /// Reads from the socket into the emptied input buffer (one read); Ok(0)
    /// at end of file.
    fn fill(&mut self) -> io::Result<usize> {
        self.start = 0;
        self.end = 0;
        if self.input.is_empty() {
            self.input = take_input();
        }
        let files = self.takes_files.then_some(&mut self.files);
        let n = read_socket(&self.stream, files, &mut self.input)?;
        self.end = n;
        Ok(n)
    }

    /// The buffered input, reading from the socket first when there is none.
    pub fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end {
            self.fill()?;
        }
        Ok(self.buffered())
    }

    /// Sends what is buffered. After an error the connection is not used again.
    fn send_output(&mut self) -> io::Result<()> {
        let output = std::mem::take(&mut self.output);
        let result = self.send(&output);
        self.output = output;
        self.output.clear();
        result
    }

    fn reserve_output(&mut self) {
        if self.output.capacity() == 0 {
            self.output = take_output();
        }
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end && buf.len() >= BUFFER {
            // Large reads skip the buffer.
            return read_socket(&self.stream, self.takes_files.then_some(&mut self.files), buf);
        }
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl Write for Wire {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.output.len() + data.len() > BUFFER {
            self.send_output()?;
        }
        if data.len() >= BUFFER {
            let n = (&self.stream).write(data)?;
            self.sent += n as u64;
            return Ok(n);
        }
        self.reserve_output();
        self.output.extend_from_slice(data);
        Ok(data.len())
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if self.output.len() + total > BUFFER {
            self.send_output()?;
        }
        if total >= BUFFER {
            let n = (&self.stream).write_vectored(bufs)?;
            self.sent += n as u64;
            return Ok(n);
        }
        self.reserve_output();
        for buf in bufs {
            self.output.extend_from_slice(buf);
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Wire, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        (Wire::new(a), b)
    }

    #[test]
    fn reads_what_was_received_before_the_socket() {
        let (mut wire, mut peer) = pair();
        receive(&mut wire, b"head");
        peer.write_all(b"body").unwrap();
        let mut got = [0u8; 8];
        let mut n = 0;
        while n < 8 {
            n += wire.read(&mut got[n..]).unwrap();
        }
        assert_eq!(&got, b"headbody");
    }

    #[test]
    fn idle_wires_keep_only_unread_bytes() {
        let (mut wire, mut peer) = pair();
        peer.write_all(&[1u8; 100]).unwrap();
        let mut first = [0u8; 10];
        wire.read_exact(&mut first).unwrap();
        wire.write_all(b"reply").unwrap();
        wire.flush().unwrap();
        wire.release_buffers();
        assert_eq!(wire.buffered(), &[1u8; 90][..]);
        assert_eq!(wire.input.capacity(), 90);
        assert_eq!(wire.output.capacity(), 0);
        let mut rest = [0u8; 90];
        wire.read_exact(&mut rest).unwrap();
        wire.release_buffers();
        assert_eq!(wire.input.capacity(), 0);
        // The buffers wait for the next exchange.
        assert!(SPARE_INPUT.lock().iter().any(|b| b.len() == BUFFER));
        assert!(SPARE_OUTPUT.lock().iter().any(|b| b.capacity() == BUFFER && b.is_empty()));
        let mut reply = [0u8; 5];
        peer.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"reply");
    }

    #[test]
    fn counts_the_bytes_the_socket_took() {
        let (mut wire, peer) = pair();
        wire.write_all(b"small").unwrap();
        assert_eq!(wire.sent(), 0, "buffered, not sent");
        wire.flush().unwrap();
        assert_eq!(wire.sent(), 5);
        wire.write_all(&vec![1u8; BUFFER]).unwrap();
        assert_eq!(wire.sent(), 5 + BUFFER as u64);
        // A closed peer takes nothing more.
        drop(peer);
        wire.write_all(b"more").unwrap();
        assert!(wire.flush().is_err());
        assert!(wire.write_all(&vec![1u8; BUFFER]).is_err());
        assert_eq!(wire.sent(), 5 + BUFFER as u64);
    }

    #[test]
    fn writes_are_batched_until_flushed_and_large_ones_go_straight_out() {
        let (mut wire, mut peer) = pair();
        wire.write_all(b"small").unwrap();
        peer.set_nonblocking(true).unwrap();
        assert!(peer.read(&mut [0u8; 8]).is_err(), "nothing sent before flush");
        wire.flush().unwrap();
        let big = vec![7u8; PIECE * 2];
        const { assert!(PIECE * 2 > BUFFER) };
        let writer = std::thread::spawn(move || {
            wire.write_all(&big).unwrap();
            wire.flush().unwrap();
        });
        peer.set_nonblocking(false).unwrap();
        let mut got = vec![0u8; 5 + PIECE * 2];
        peer.read_exact(&mut got).unwrap();
        writer.join().unwrap();
        assert_eq!(&got[..5], b"small");
        assert!(got[5..].iter().all(|&b| b == 7));
    }

    #[test]
    fn receiving_after_partial_consumption_keeps_order() {
        let (mut wire, _peer) = pair();
        receive(&mut wire, b"abcdef");
        wire.consume(4);
        receive(&mut wire, b"gh");
        assert_eq!(wire.buffered(), b"efgh");
        wire.consume(4);
        receive(&mut wire, b"ij");
        assert_eq!(wire.buffered(), b"ij");
        // More than a buffer's room grows it.
        let big = vec![5u8; BUFFER * 2];
        receive(&mut wire, &big);
        assert_eq!(wire.buffered().len(), 2 + BUFFER * 2);
    }

    /// As if `bytes` had just arrived.
    fn receive(wire: &mut Wire, bytes: &[u8]) {
        let n = wire.receive(bytes.len(), |_, buf| {
            buf.copy_from_slice(bytes);
            Ok(bytes.len())
        });
        assert_eq!(n.unwrap(), bytes.len());
    }
}
