//! A running `mod_wsgi-express` for the tests of tests/express*.rs: runs the built binary,
//! starts `start-server` on a free port with its server root in a temp dir, talks HTTP to it,
//! and stops it (and every process of its server root) on drop.

use super::{Response, TempDir, cmdline_of, kill, process_alive};
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub const EXPRESS: &str = env!("CARGO_BIN_EXE_mod_wsgi-express");
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub const HELLO: &str = "def application(environ, start_response):\n\
    \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
    \x20   return [b'hello from express: ' + environ['mod_wsgi.process_group'].encode()]\n";

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// Runs `mod_wsgi-express ARGS` to completion.
pub fn express(args: &[&str]) -> Output {
    Command::new(EXPRESS)
        .args(args)
        .env_remove("VIRTUAL_ENV")
        .env("LANG", "C")
        .output()
        .expect("run mod_wsgi-express")
}

/// A running `mod_wsgi-express start-server` (Apache, once it has exec'd). On drop, it is
/// stopped and every process of its server root killed.
pub struct Express {
    process: ServerProcess,
    pub root: PathBuf,
    pub port: u16,
    pub dir: TempDir,
}

impl Express {
    /// Starts `start-server` with `args` on a free port and a server root in a temp dir;
    /// waits until it accepts connections.
    pub fn start(dir: TempDir, args: &[&str]) -> Express {
        Express::start_with_env(dir, args, &[])
    }

    /// As `start`, with environment variables for the server (Apache inherits them).
    pub fn start_with_env(dir: TempDir, args: &[&str], env: &[(&str, &str)]) -> Express {
        let port = free_port();
        let root = dir.path().join("server-root");
        let out = fs::File::create(dir.path().join("express.out")).unwrap();
        let child = Command::new(EXPRESS)
            .arg("start-server")
            .args(args)
            .args(["--port", &port.to_string(), "--server-root"])
            .arg(&root)
            .env_remove("VIRTUAL_ENV")
            .env("LANG", "C")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn mod_wsgi-express");
        let mut e = Express {
            process: ServerProcess::new(child, &root, port),
            root,
            port,
            dir,
        };
        if let Err(why) = e.process.wait_listening() {
            panic!("mod_wsgi-express {why}\n{}", e.output());
        }
        e
    }

    pub fn output(&self) -> String {
        let out = fs::read_to_string(self.dir.path().join("express.out")).unwrap_or_default();
        let log = fs::read_to_string(self.root.join("error_log")).unwrap_or_default();
        format!("--- output ---\n{out}--- error_log ---\n{log}")
    }

    /// GET `path` as HTTP/1.0 (so the body is never chunked): (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read response");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad response {text:?}"));
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        (status, body.to_string())
    }

    /// `GET path` as HTTP/1.0 with extra request headers (a `Host` among them replaces the
    /// default one).
    pub fn request(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!("GET {path} HTTP/1.0\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req += &format!("Host: 127.0.0.1:{}\r\n", self.port);
        }
        for (k, v) in headers {
            req += &format!("{k}: {v}\r\n");
        }
        req += "\r\n";
        s.write_all(req.as_bytes()).unwrap();
        let mut r = std::io::BufReader::new(s.take(16 << 20));
        let head = super::read_head(&mut r);
        let body = super::read_body(&mut r, &head, false);
        Response { status: head.status, reason: head.reason, headers: head.headers, body }
    }

    /// Live processes of this server (see ServerProcess::processes).
    pub fn processes(&self) -> Vec<u32> {
        self.process.processes()
    }

    /// SIGTERM to the express process (see ServerProcess::terminate).
    pub fn terminate(&mut self) -> bool {
        self.process.terminate()
    }
}

/// A started server (mod_wsgi-express, or a command that becomes it) and the processes of
/// its server root: on drop it is stopped and every one of them killed.
pub struct ServerProcess {
    child: Option<Child>,
    root: PathBuf,
    port: u16,
}

impl ServerProcess {
    /// `child` serves on `port` with `root` as its server root.
    pub fn new(child: Child, root: &Path, port: u16) -> ServerProcess {
        ServerProcess { child: Some(child), root: root.to_path_buf(), port }
    }

    /// Waits up to START_TIMEOUT for the port to accept connections; Err says why not.
    pub fn wait_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                return Err(format!("exited with {status}"));
            }
            if Instant::now() > deadline {
                return Err("is not listening".into());
            }
            sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Live processes belonging to this server: its root in the command line (Apache's
    /// parent and children), or its daemon group's display name.
    pub fn processes(&self) -> Vec<u32> {
        let root = self.root.display().to_string();
        let daemon = format!("wsgi:127.0.0.1:{}", self.port);
        fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid != std::process::id() && process_alive(pid))
            .filter(|&pid| {
                let cmd = cmdline_of(pid);
                cmd.contains(&root) || cmd.contains(&daemon)
            })
            .collect()
    }

    /// SIGTERM to the started process; true when it exited and left no process of its
    /// server root within `STOP_TIMEOUT`.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return self.processes().is_empty();
        };
        kill("TERM", child.id());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            if exited && self.processes().is_empty() {
                return true;
            }
            if Instant::now() > deadline {
                if !exited {
                    self.child = Some(child);
                }
                return false;
            }
            sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill("TERM", child.id());
            let deadline = Instant::now() + STOP_TIMEOUT;
            while !matches!(child.try_wait(), Ok(Some(_))) && Instant::now() < deadline {
                sleep(Duration::from_millis(50));
            }
            kill("KILL", child.id());
            let _ = child.wait();
        }
        for pid in self.processes() {
            kill("KILL", pid);
        }
    }
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a failed run with exit code 1 and exactly one line on stderr containing `expect`.
pub fn assert_error(out: &Output, expect: &str) {
    let err = stderr_of(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(err.contains(expect), "{expect:?} not in {err:?}");
}

