//! Test harness: runs a real Apache httpd with a mod_wsgi module loaded and talks HTTP/1.1 to it.
//!
//! The module comes from env `MOD_WSGI_SO` (default `<crate>/target/release/libmod_wsgi.so`).
//! Run the suite against Debian's C mod_wsgi, the reference, with
//! `MOD_WSGI_SO=/usr/lib/apache2/modules/mod_wsgi.so cargo test`.
//!
//! Each `Server` lives in its own temp dir under /tmp (kept when env `KEEP_TEST_DIRS` is set) with
//! `httpd.conf`, `test.conf` (the test's snippet, included last, so config errors report line
//! numbers relative to the snippet), `error.log`, `htdocs/`, `var/` (world-writable, for apps to
//! leave markers) and the test's apps. In snippets `@DIR@` is replaced by the temp dir and
//! `@PORT@` by the listening port.

#![allow(dead_code)]

pub mod express;
pub mod load;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const APACHE: &str = "/usr/sbin/apache2";
const MODULES: &str = "/usr/lib/apache2/modules";
const REFERENCE_SO: &str = "/usr/lib/apache2/modules/mod_wsgi.so";
const IO_TIMEOUT: Duration = Duration::from_secs(30);
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a stopping Apache gets after SIGTERM before its remaining children are killed.
/// A clean stop takes ~50 ms; the C module's event-MPM children hang in Python finalisation
/// (Apache gives up on them after 10 s) once they have served a request in a
/// sub-interpreter, so this is kept short.
const STOP_GRACE: Duration = Duration::from_millis(1000);

/// Path of the mod_wsgi module under test. Panics (never skips) when it does not exist.
pub fn module_path() -> PathBuf {
    let path = match std::env::var_os("MOD_WSGI_SO") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/libmod_wsgi.so"),
    };
    if !path.exists() {
        panic!(
            "mod_wsgi module not found at {}: build it with `cargo build --release`, or set \
             MOD_WSGI_SO (e.g. MOD_WSGI_SO={REFERENCE_SO} to run against the C module)",
            path.display()
        );
    }
    path
}

/// True when the module under test is Debian's C mod_wsgi (the reference).
pub fn is_reference() -> bool {
    let p = module_path();
    let canon = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    canon(&p) == canon(Path::new(REFERENCE_SO))
}

/// Directory holding the Python test apps (`tests/apps`).
pub fn apps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps")
}

fn running_as_root() -> bool {
    // /proc/self is owned by the effective uid of this process.
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// Temp dir

/// A directory under /tmp, mode 0755, removed on drop unless `KEEP_TEST_DIRS` is set.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path = PathBuf::from(format!(
            "/tmp/mod_wsgi-test-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        fs::create_dir(&path).expect("create temp dir");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.path.as_os_str().is_empty() {
            return; // Moved out (see `Server::take_dir`).
        }
        if std::env::var_os("KEEP_TEST_DIRS").is_some() {
            eprintln!("keeping test dir {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Writes a file readable by Apache's children (0644), creating parent dirs (0755).
pub fn write_file(path: &Path, contents: &[u8]) {
    if let Some(parent) = path.parent() {
        make_dirs(parent);
    }
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
}

fn make_dirs(dir: &Path) {
    if dir.exists() {
        return;
    }
    if let Some(parent) = dir.parent() {
        make_dirs(parent);
    }
    fs::create_dir(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Configuration

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mpm {
    Event,
    Prefork,
}

/// Builds the configuration of one Apache instance.
#[derive(Clone)]
pub struct ServerBuilder {
    mpm: Mpm,
    log_level: String,
    modules: Vec<String>,
    snippet: String,
    files: Vec<(String, Vec<u8>)>,
    load_wsgi: bool,
    /// Event MPM children and threads per child (default: one child of 8).
    workers: (u32, u32),
    /// A soft and hard limit on open descriptors for Apache and all it forks.
    nofile: Option<u64>,
}

/// A new server configuration: mpm_event, LogLevel info, no WSGI directives yet.
pub fn server() -> ServerBuilder {
    ServerBuilder {
        mpm: Mpm::Event,
        log_level: "info".into(),
        modules: Vec::new(),
        snippet: String::new(),
        files: Vec::new(),
        load_wsgi: true,
        workers: (1, 8),
        nofile: None,
    }
}

impl ServerBuilder {
    pub fn prefork(mut self) -> Self {
        self.mpm = Mpm::Prefork;
        self
    }

    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.into();
        self
    }

    /// Loads an extra Apache module, e.g. `module("headers")` loads mod_headers.so.
    pub fn module(mut self, name: &str) -> Self {
        self.modules.push(name.into());
        self
    }

    /// Appends configuration lines (`@DIR@` and `@PORT@` are substituted).
    pub fn config(mut self, snippet: &str) -> Self {
        self.snippet.push_str(snippet);
        if !snippet.ends_with('\n') {
            self.snippet.push('\n');
        }
        self
    }

    /// Copies `tests/apps/<name>` to `<dir>/<name>`.
    pub fn app(self, name: &str) -> Self {
        self.app_as(name, name)
    }

    /// Copies `tests/apps/<name>` to `<dir>/<dest>` (dest may contain directories).
    pub fn app_as(self, name: &str, dest: &str) -> Self {
        let src = apps_dir().join(name);
        let data = fs::read(&src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
        self.file(dest, &data)
    }

    /// Writes a file at `<dir>/<rel>`.
    pub fn file(mut self, rel: &str, contents: &[u8]) -> Self {
        self.files.push((rel.into(), contents.to_vec()));
        self
    }

    /// Event MPM with `children` processes of `threads` worker threads.
    pub fn workers(mut self, children: u32, threads: u32) -> Self {
        self.workers = (children, threads);
        self
    }

    /// Starts Apache with this limit on open descriptors (soft and hard), as
    /// `ulimit -n` in its envvars or LimitNOFILE in its unit would.
    pub fn nofile(mut self, limit: u64) -> Self {
        self.nofile = Some(limit);
        self
    }

    /// Leaves out the `LoadModule wsgi_module` line.
    pub fn without_wsgi(mut self) -> Self {
        self.load_wsgi = false;
        self
    }

    fn write_config(&self, dir: &Path, port: u16) {
        let d = dir.display().to_string();
        let mut conf = String::new();
        let mut line = |s: &str| {
            conf.push_str(s);
            conf.push('\n');
        };
        line(&format!("ServerRoot {d}"));
        match self.mpm {
            Mpm::Event => {
                line(&format!(
                    "LoadModule mpm_event_module {MODULES}/mod_mpm_event.so"
                ));
                // One light child process by default: keeps the test servers
                // cheap on a small machine.
                let (children, threads) = self.workers;
                line(&format!("StartServers {children}"));
                line(&format!("ServerLimit {children}"));
                line(&format!("ThreadLimit {threads}"));
                line(&format!("ThreadsPerChild {threads}"));
                line(&format!("MaxRequestWorkers {}", children * threads));
                line("MinSpareThreads 1");
                line(&format!("MaxSpareThreads {}", children * threads + 1));
            }
            Mpm::Prefork => {
                line(&format!(
                    "LoadModule mpm_prefork_module {MODULES}/mod_mpm_prefork.so"
                ));
                line("StartServers 1");
                line("MinSpareServers 1");
                line("MaxSpareServers 2");
                line("ServerLimit 3");
                line("MaxRequestWorkers 3");
            }
        }
        for m in ["authz_core", "mime", "alias", "dir"] {
            line(&format!("LoadModule {m}_module {MODULES}/mod_{m}.so"));
        }
        for m in &self.modules {
            line(&format!("LoadModule {m}_module {MODULES}/mod_{m}.so"));
        }
        if self.load_wsgi {
            line(&format!(
                "LoadModule wsgi_module {}",
                module_path().display()
            ));
        }
        line(&format!("Listen 127.0.0.1:{port}"));
        line("ServerName 127.0.0.1");
        line(&format!("ErrorLog {d}/error.log"));
        line(&format!("LogLevel {}", self.log_level));
        line(&format!("PidFile {d}/httpd.pid"));
        line(&format!("DefaultRuntimeDir {d}"));
        line(&format!("Mutex file:{d} default"));
        line("TypesConfig /etc/mime.types");
        line("KeepAlive Off");
        line("Timeout 30");
        if running_as_root() {
            line("User www-data");
            line("Group www-data");
        }
        line(&format!("DocumentRoot {d}/htdocs"));
        line(&format!("Include {d}/test.conf"));
        write_file(&dir.join("httpd.conf"), conf.as_bytes());
        let snippet = self
            .snippet
            .replace("@DIR@", &d)
            .replace("@PORT@", &port.to_string());
        write_file(&dir.join("test.conf"), snippet.as_bytes());
    }

    fn prepare_dir(&self) -> TempDir {
        let dir = TempDir::new("srv");
        make_dirs(&dir.path().join("htdocs"));
        let var = dir.path().join("var");
        fs::create_dir(&var).unwrap();
        fs::set_permissions(&var, fs::Permissions::from_mode(0o777)).unwrap();
        for (rel, data) in &self.files {
            write_file(&dir.path().join(rel), data);
        }
        dir
    }

    /// Runs `apache2 -t` on this configuration: (syntax ok, combined output).
    pub fn configtest(&self) -> (bool, String) {
        let dir = self.prepare_dir();
        self.write_config(dir.path(), free_port());
        let out = Command::new(APACHE)
            .arg("-t")
            .arg("-f")
            .arg(dir.path().join("httpd.conf"))
            .env("LANG", "C")
            .output()
            .expect("run apache2 -t");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        // Paths in messages name the temp dir, which is gone after this; make them stable.
        let text = text.replace(&dir.path().display().to_string(), "@DIR@");
        (out.status.success(), text)
    }

    /// Starts Apache in the foreground and waits until it accepts connections.
    pub fn start(self) -> Server {
        let mut dir = self.prepare_dir();
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            self.write_config(dir.path(), port);
            let _ = fs::remove_file(dir.path().join("error.log"));
            let _ = fs::remove_file(dir.path().join("httpd.pid"));
            let stderr = fs::File::create(dir.path().join("stderr.log")).unwrap();
            let mut command = match self.nofile {
                // prlimit sets the limit, then becomes Apache.
                Some(limit) => {
                    let mut c = Command::new("prlimit");
                    c.arg(format!("--nofile={limit}:{limit}")).arg("--").arg(APACHE);
                    c
                }
                None => Command::new(APACHE),
            };
            // As under systemd: no PYTHON* settings of the shell running the tests.
            for (name, _) in std::env::vars_os().filter(|(n, _)| n.to_string_lossy().starts_with("PYTHON")) {
                command.env_remove(name);
            }
            let child = command
                .arg("-f")
                .arg(dir.path().join("httpd.conf"))
                .arg("-DFOREGROUND")
                .env("LANG", "C")
                .env_remove("LC_ALL")
                .stdin(Stdio::null())
                .stdout(stderr.try_clone().unwrap())
                .stderr(stderr)
                // Own process group, so that Drop can kill everything Apache forked.
                .process_group(0)
                .spawn()
                .expect("spawn apache2");
            let mut server = Server {
                dir,
                port,
                child: Some(child),
            };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(log) => {
                    server.stop();
                    last_log = log;
                    dir = server.take_dir();
                    if last_log.contains("Address already in use") {
                        continue; // Someone took the port between our probe and Apache's bind.
                    }
                    break;
                }
            }
        }
        panic!("Apache did not start. Output and error log:\n{last_log}");
    }
}

/// `apache2 -t` on a default configuration plus `snippet`: (syntax ok, combined output).
pub fn configtest(snippet: &str) -> (bool, String) {
    server().config(snippet).configtest()
}

fn signal(name: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        sleep(Duration::from_millis(20));
    }
}

/// Live (not zombie) processes whose /proc stat field `field` (counted
/// after the state: 1 = ppid, 2 = process group) is `value`.
fn live_processes_where(field: usize, value: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // Fields after the parenthesised command: state, ppid, pgrp, ...
            let Some((_, rest)) = stat.rsplit_once(") ") else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.len() > field && fields[0] != "Z" && fields[field] == value.to_string()
        })
        .collect()
}

/// Live processes in process group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    live_processes_where(2, pgid)
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------------
// Server

/// A running Apache. Stopped (and its process group killed if needed) on drop.
pub struct Server {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
}

impl Server {
    /// Moves the temp dir out of a server that failed to start, for the next attempt.
    fn take_dir(&mut self) -> TempDir {
        std::mem::replace(
            &mut self.dir,
            TempDir {
                path: PathBuf::new(),
            },
        )
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return Err(format!(
                    "apache2 exited with {status}\n{}",
                    self.startup_output()
                ));
            }
            // The port accepts from the first configuration pass on; the pid
            // file appears only once the final pass (which makes the daemon
            // sockets) is done and the MPM runs.
            if self.pid_file_written() && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no connection after {START_TIMEOUT:?}\n{}",
                    self.startup_output()
                ));
            }
            sleep(Duration::from_millis(30));
        }
    }

    fn pid_file_written(&self) -> bool {
        let pid = self.child.as_ref().unwrap().id().to_string();
        fs::read_to_string(self.dir.path().join("httpd.pid")).is_ok_and(|text| text.trim() == pid)
    }

    fn startup_output(&self) -> String {
        let stderr = fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        format!(
            "--- stderr ---\n{stderr}--- error.log ---\n{}",
            self.error_log()
        )
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        signal("TERM", pid);
        if wait_exit(&mut child, STOP_GRACE) {
            // Apache has reaped its children; kill any stray that left the parent's care.
            group_members(pid)
                .into_iter()
                .for_each(|p| signal("KILL", p));
            return;
        }
        // Stuck children are killed while the parent still lives, so that it reaps them
        // (killed after it, they would be orphans and stay zombies in a container).
        for p in group_members(pid).into_iter().filter(|&p| p != pid) {
            signal("KILL", p);
        }
        // Another SIGTERM cuts short the parent's sleep between its checks on the children.
        sleep(Duration::from_millis(50));
        signal("TERM", pid);
        if !wait_exit(&mut child, Duration::from_secs(2)) {
            signal("KILL", pid);
            let _ = child.wait();
        }
        group_members(pid)
            .into_iter()
            .for_each(|p| signal("KILL", p));
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits up to 10 s for the marker file `var/<name>` an app leaves
    /// behind; returns its contents.
    /// A marker still empty has been created but not yet written: wait on.
    pub fn marker(&self, name: &str) -> Option<String> {
        let path = self.var_dir().join(name);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = None;
        while Instant::now() < deadline {
            seen = fs::read_to_string(&path).ok();
            if seen.as_deref().is_some_and(|text| !text.is_empty()) {
                break;
            }
            sleep(Duration::from_millis(20));
        }
        seen
    }

    /// Sends `sig` (e.g. "USR1" for a graceful restart) to the Apache parent.
    pub fn signal_parent(&self, sig: &str) {
        signal(sig, self.child.as_ref().expect("running").id());
    }

    /// Stops Apache with SIGTERM; true when it and its children exited by
    /// themselves within `within` (nothing had to be killed).
    pub fn terminate(&mut self, within: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let pid = child.id();
        signal("TERM", pid);
        let clean = wait_exit(&mut child, within) && group_members(pid).is_empty();
        self.child = Some(child);
        self.stop();
        clean
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Pid of the Apache parent process (the one the harness started).
    pub fn parent_pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `<dir>/var`: world-writable, for markers exchanged between test and app.
    pub fn var_dir(&self) -> PathBuf {
        self.dir.path().join("var")
    }

    pub fn error_log(&self) -> String {
        fs::read(self.dir.path().join("error.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Polls the error log until it contains `needle` (the module may log after responding).
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.error_log().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// Like `wait_for_log` but panics with the log when the needle does not show up.
    pub fn expect_log(&self, needle: &str) {
        if !self.wait_for_log(needle, Duration::from_secs(10)) {
            panic!(
                "error log does not contain {needle:?}:\n{}",
                self.error_log()
            );
        }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    /// Sends one request (`Host`, `Connection: close` and, for a body or POST/PUT,
    /// `Content-Length` added) and reads the response.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n",
            self.port
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.raw(&bytes)
    }

    /// POST with `Transfer-Encoding: chunked`, one HTTP chunk per element of `chunks`.
    pub fn post_chunked(&self, path: &str, chunks: &[&[u8]]) -> Response {
        let mut bytes = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n",
            self.port
        )
        .into_bytes();
        for c in chunks {
            bytes.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            bytes.extend_from_slice(c);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"0\r\n\r\n");
        self.raw(&bytes)
    }

    /// Sends raw request bytes and parses the response (no body for a HEAD request).
    pub fn raw(&self, request: &[u8]) -> Response {
        let mut s = self.connect();
        s.write_all(request).expect("send request");
        let mut r = BufReader::new(s);
        let head = read_head(&mut r);
        let is_head = request.starts_with(b"HEAD ");
        let body = read_body(&mut r, &head, is_head);
        Response {
            status: head.status,
            reason: head.reason,
            headers: head.headers,
            body,
        }
    }

    /// Sends raw request bytes and returns everything the server sends until it closes.
    pub fn raw_all(&self, request: &[u8]) -> Vec<u8> {
        let mut s = self.connect();
        s.write_all(request).expect("send request");
        let mut out = Vec::new();
        s.read_to_end(&mut out).expect("read response");
        out
    }

    /// Starts a GET and returns after the response head, for reading a streamed body bit by bit.
    pub fn stream(&self, path: &str) -> Stream {
        let mut s = self.connect();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        s.write_all(req.as_bytes()).expect("send request");
        let mut r = BufReader::new(s);
        let head = read_head(&mut r);
        Stream { reader: r, head }
    }

    /// Requests `path` and parses the body as `key=value` lines (see `parse_kv`).
    pub fn get_kv(&self, path: &str) -> BTreeMap<String, String> {
        let r = self.get(path);
        assert_eq!(
            r.status,
            200,
            "GET {path}: {}\n{}",
            r.text(),
            self.error_log()
        );
        parse_kv(&r.text())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP client

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// First header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct Head {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response being received: its head, and the body read piece by piece.
pub struct Stream {
    reader: BufReader<TcpStream>,
    pub head: Head,
}

impl Stream {
    /// Next chunk of a chunked body (None at the end).
    pub fn next_chunk(&mut self) -> Option<Vec<u8>> {
        assert!(
            self.head
                .header("Transfer-Encoding")
                .is_some_and(|v| v.eq_ignore_ascii_case("chunked")),
            "streamed response is not chunked"
        );
        read_chunk(&mut self.reader)
    }

    /// The rest of the body as received.
    pub fn rest(mut self) -> Vec<u8> {
        read_body(&mut self.reader, &self.head, false)
    }

    /// Closes the connection without reading further (a client going away).
    pub fn disconnect(self) {
        let _ = self.reader.get_ref().shutdown(Shutdown::Both);
    }
}

fn read_line(r: &mut impl BufRead) -> String {
    let mut buf = Vec::new();
    r.read_until(b'\n', &mut buf).expect("read line");
    while buf.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
        buf.pop();
    }
    // Header values are latin-1 on the wire.
    buf.iter().map(|&b| b as char).collect()
}

fn read_head(r: &mut impl BufRead) -> Head {
    let status_line = read_line(r);
    assert!(
        status_line.starts_with("HTTP/"),
        "bad status line {status_line:?}"
    );
    let mut parts = status_line.splitn(3, ' ');
    parts.next();
    let status = parts.next().unwrap_or("").parse().expect("status code");
    let reason = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let line = read_line(r);
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap_or((&line, ""));
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Head {
        status,
        reason,
        headers,
    }
}

fn read_chunk(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let size_line = read_line(r);
    let size_hex = size_line.split(';').next().unwrap().trim();
    let size = usize::from_str_radix(size_hex, 16)
        .unwrap_or_else(|_| panic!("bad chunk size {size_line:?}"));
    if size == 0 {
        // Trailers, then the blank line.
        while !read_line(r).is_empty() {}
        return None;
    }
    let mut data = vec![0; size];
    r.read_exact(&mut data).expect("read chunk");
    read_line(r);
    Some(data)
}

fn read_body(r: &mut impl BufRead, head: &Head, is_head: bool) -> Vec<u8> {
    if is_head || head.status / 100 == 1 || head.status == 204 || head.status == 304 {
        return Vec::new();
    }
    if head
        .header("Transfer-Encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        let mut body = Vec::new();
        while let Some(c) = read_chunk(r) {
            body.extend(c);
        }
        return body;
    }
    if let Some(len) = head.header("Content-Length") {
        let len: usize = len.parse().expect("Content-Length");
        let mut body = vec![0; len];
        r.read_exact(&mut body).expect("read body");
        return body;
    }
    let mut body = Vec::new();
    r.read_to_end(&mut body).expect("read body");
    body
}

// ---------------------------------------------------------------------------------------------
// App output

/// Parses `key=value` lines, the format the test apps report in (values are Python `ascii()`
/// representations, e.g. `'/app'`, `(1, 0)`, `True`).
pub fn parse_kv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Python `ascii()` of a str holding `s` (simple cases: no quotes or backslashes in `s`).
pub fn py_str(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c as u32 {
            0x20..=0x7e => out.push(c),
            n @ 0..=0xff => out.push_str(&format!("\\x{n:02x}")),
            n @ 0..=0xffff => out.push_str(&format!("\\u{n:04x}")),
            n => out.push_str(&format!("\\U{n:08x}")),
        }
    }
    out.push('\'');
    out
}

/// MD5 hex digest (via coreutils `md5sum`), to compare with an app's `hashlib.md5`.
pub fn md5_hex(data: &[u8]) -> String {
    let mut child = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run md5sum");
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("md5sum output");
    writer.join().unwrap().expect("write to md5sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Deterministic pseudo-random bytes (for bodies and files that must arrive intact).
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Processes

/// Live (not zombie) processes whose parent is `ppid`, from /proc.
pub fn children_of(ppid: u32) -> Vec<u32> {
    live_processes_where(1, ppid)
}

/// The parent of `pid`, from /proc.
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command (in parentheses, which may hold spaces): state, then ppid.
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// Live processes below `ppid`: its children, theirs, and so on (a daemon
/// process group's daemons are children of its supervisor).
pub fn descendants_of(ppid: u32) -> Vec<u32> {
    let mut found = children_of(ppid);
    let mut i = 0;
    while i < found.len() {
        let more = children_of(found[i]);
        found.extend(more);
        i += 1;
    }
    found
}

/// `/proc/PID/cmdline` with NULs turned into spaces and trailing blanks removed ("" if gone).
pub fn cmdline_of(pid: u32) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text: String = raw
        .iter()
        .map(|&b| if b == 0 { ' ' } else { b as char })
        .collect();
    text.trim_end().to_string()
}

/// True while `pid` exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Sends signal `name` (e.g. "KILL") to `pid`.
pub fn kill(name: &str, pid: u32) {
    signal(name, pid);
}

/// POSTs to `mount`/some/path on a server running environ.wsgi there and
/// checks the CGI variables every request carries (embedded or daemon mode);
/// returns the environ for further checks.
pub fn assert_cgi_variables(s: &Server, mount: &str) -> BTreeMap<String, String> {
    let r = s.request(
        "POST",
        &format!("{mount}/some/path?a=1&b=%20x"),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Custom-Header", "custom value"),
            ("User-Agent", "wsgi-tests"),
        ],
        b"a=b",
    );
    assert_eq!(r.status, 200, "{}", s.error_log());
    let env = parse_kv(&r.text());
    let port = s.port().to_string();
    let dir = s.dir().display().to_string();
    let expect = [
        ("REQUEST_METHOD", "POST".to_string()),
        ("SCRIPT_NAME", mount.to_string()),
        ("PATH_INFO", "/some/path".to_string()),
        ("QUERY_STRING", "a=1&b=%20x".to_string()),
        ("REQUEST_URI", format!("{mount}/some/path?a=1&b=%20x")),
        ("CONTENT_TYPE", "application/x-www-form-urlencoded".to_string()),
        ("CONTENT_LENGTH", "3".to_string()),
        ("HTTP_X_CUSTOM_HEADER", "custom value".to_string()),
        ("HTTP_USER_AGENT", "wsgi-tests".to_string()),
        ("HTTP_HOST", format!("127.0.0.1:{port}")),
        ("SERVER_NAME", "127.0.0.1".to_string()),
        ("SERVER_PORT", port.clone()),
        ("SERVER_ADDR", "127.0.0.1".to_string()),
        ("SERVER_PROTOCOL", "HTTP/1.1".to_string()),
        ("REMOTE_ADDR", "127.0.0.1".to_string()),
        ("REQUEST_SCHEME", "http".to_string()),
        ("GATEWAY_INTERFACE", "CGI/1.1".to_string()),
        ("SCRIPT_FILENAME", format!("{dir}/environ.wsgi")),
        ("DOCUMENT_ROOT", format!("{dir}/htdocs")),
    ];
    for (key, value) in expect {
        assert_eq!(env.get(key), Some(&py_str(&value)), "{key} in {env:#?}");
    }
    // REMOTE_PORT is the client's ephemeral port, as a str.
    let remote_port = env["REMOTE_PORT"].trim_matches('\'');
    assert!(remote_port.parse::<u16>().is_ok_and(|p| p > 0), "{env:#?}");
    // Every CGI variable is a str.
    assert_eq!(env["non_str_cgi"], "[]");
    env
}

/// Makes a virtual environment with Debian's Python in `parent`/env holding a
/// module `venv_only_module` (VALUE = 'from-venv'); returns its path.
pub fn make_venv(parent: &Path) -> PathBuf {
    let venv = parent.join("env");
    let status = Command::new("/usr/bin/python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .expect("run python3 -m venv");
    assert!(status.success(), "python3 -m venv failed");
    let site = venv.join("lib/python3.11/site-packages");
    assert!(site.is_dir(), "{} missing", site.display());
    write_file(&site.join("venv_only_module.py"), b"VALUE = 'from-venv'\n");
    venv
}

/// GETs `path` from an app that yields "first;", then blocks until the
/// marker file var/stream-go exists before yielding "second;" and "third":
/// receiving the first chunk before the marker proves nothing held it back.
pub fn assert_streams(s: &Server, path: &str) {
    let mut stream = s.stream(path);
    assert_eq!(stream.head.status, 200);
    assert_eq!(stream.next_chunk().as_deref(), Some(&b"first;"[..]));
    write_file(&s.var_dir().join("stream-go"), b"");
    assert_eq!(stream.rest(), b"second;third");
}

/// The UNIX sockets (daemon-mode group sockets) in `dir`.
pub fn sockets(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sock"))
        .collect()
}
