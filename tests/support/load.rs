//! A bounded load: a fixed number of keep-alive clients sending GETs to one
//! path on loopback, each answer recorded with its status and timing, so a
//! test can count the answers around an event (a restart, a kill).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one request may take before the client gives up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// One request's fate.
#[derive(Clone, Debug)]
pub struct Answer {
    /// When it was sent, from the start of the load.
    pub sent: Duration,
    /// How long the answer took.
    pub took: Duration,
    /// The HTTP status; None when the connection failed or closed with no
    /// answer (Apache drops kept-alive connections on a restart).
    pub status: Option<u16>,
}

pub struct Load {
    started: Instant,
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Vec<Answer>>>,
}

impl Load {
    /// Starts `clients` keep-alive clients sending `GET path` as fast as answered.
    pub fn start(port: u16, path: &str, clients: usize) -> Load {
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|_| {
                let stop = stop.clone();
                let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").into_bytes();
                std::thread::spawn(move || client(port, &request, started, &stop))
            })
            .collect();
        Load { started, stop, clients }
    }

    /// Time since the load started (to mark an event).
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops the clients (each finishes its request) and returns every answer, in order sent.
    pub fn finish(self) -> Report {
        self.stop.store(true, Ordering::Release);
        let mut answers: Vec<Answer> = self.clients.into_iter().flat_map(|c| c.join().expect("load client")).collect();
        answers.sort_by_key(|a| a.sent);
        Report { answers }
    }
}

fn client(port: u16, request: &[u8], started: Instant, stop: &AtomicBool) -> Vec<Answer> {
    let mut answers = Vec::new();
    let mut conn: Option<BufReader<TcpStream>> = None;
    while !stop.load(Ordering::Acquire) {
        let sent = started.elapsed();
        let begun = Instant::now();
        let status = exchange(&mut conn, port, request);
        if status.is_none() {
            conn = None;
        }
        answers.push(Answer { sent, took: begun.elapsed(), status });
        if status.is_none() {
            // Refused while Apache restarts: not a busy loop.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    answers
}

/// Sends the request on the kept connection (or a new one) and reads the
/// answer; the connection is dropped if the server asked to close it.
fn exchange(conn: &mut Option<BufReader<TcpStream>>, port: u16, request: &[u8]) -> Option<u16> {
    if conn.is_none() {
        let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_read_timeout(Some(REQUEST_TIMEOUT)).ok()?;
        stream.set_write_timeout(Some(REQUEST_TIMEOUT)).ok()?;
        let _ = stream.set_nodelay(true);
        *conn = Some(BufReader::new(stream));
    }
    let reader = conn.as_mut()?;
    reader.get_mut().write_all(request).ok()?;
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let (mut length, mut chunked, mut close) = (0usize, false, false);
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().ok()?,
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).ok()?;
            let size = usize::from_str_radix(line.trim_end().split(';').next()?, 16).ok()?;
            let mut skip = vec![0u8; size + 2];
            reader.read_exact(&mut skip).ok()?;
            if size == 0 {
                break;
            }
        }
    } else {
        let mut skip = vec![0u8; length];
        reader.read_exact(&mut skip).ok()?;
    }
    if close {
        *conn = None;
    }
    Some(status)
}

/// The answers of a finished load.
pub struct Report {
    pub answers: Vec<Answer>,
}

impl Report {
    /// Requests answered with this status.
    pub fn count(&self, status: u16) -> usize {
        self.answers.iter().filter(|a| a.status == Some(status)).count()
    }

    /// Requests answered with a 5xx status.
    pub fn server_errors(&self) -> Vec<&Answer> {
        self.answers.iter().filter(|a| a.status.is_some_and(|s| s >= 500)).collect()
    }

    /// Requests that got no answer (connection refused, reset or closed).
    pub fn unanswered(&self) -> usize {
        self.answers.iter().filter(|a| a.status.is_none()).count()
    }

    /// How long after `event` the first request sent after it was answered 200.
    pub fn first_success_after(&self, event: Duration) -> Option<Duration> {
        self.answers.iter().filter(|a| a.sent >= event && a.status == Some(200)).map(|a| a.sent + a.took - event).min()
    }

    /// The longest stretch after `event` in which no request was answered
    /// 200 (measured between answers, and from the event to the first).
    pub fn longest_outage_after(&self, event: Duration) -> Duration {
        let mut done: Vec<Duration> = self.answers.iter().filter(|a| a.status == Some(200)).map(|a| a.sent + a.took).filter(|&t| t >= event).collect();
        done.sort_unstable();
        let mut last = event;
        let mut longest = Duration::ZERO;
        for t in done {
            longest = longest.max(t - last);
            last = t;
        }
        longest
    }

    /// The longest any request answered 200 took.
    pub fn longest(&self) -> Duration {
        self.answers.iter().filter(|a| a.status == Some(200)).map(|a| a.took).max().unwrap_or_default()
    }

    /// One line for a test's output.
    pub fn summary(&self) -> String {
        let mut statuses: Vec<(u16, usize)> = Vec::new();
        for a in &self.answers {
            if let Some(s) = a.status {
                match statuses.iter_mut().find(|(st, _)| *st == s) {
                    Some((_, n)) => *n += 1,
                    None => statuses.push((s, 1)),
                }
            }
        }
        statuses.sort_unstable();
        format!("{} requests, statuses {statuses:?}, {} unanswered, longest {:?}", self.answers.len(), self.unanswered(), self.longest())
    }
}
