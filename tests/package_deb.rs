//! The Debian package (`make deb`, packaging/debian/) on this machine's own Apache, used the
//! way Debian admins use module packages: `dpkg -i` enables wsgi_rs unless Debian's C module
//! (`wsgi`) is enabled, in which case it says how to switch; `a2enmod` refuses wsgi_rs while
//! wsgi is enabled, and in the other direction (wsgi.load is not ours to edit) `a2enmod wsgi`
//! goes through but Apache's configuration test then fails naming the fix; the system Apache
//! (`apache2ctl`) serves the Flask guide's configuration from a site file through the
//! packaged module; `dpkg -r` disables it and a reinstall enables it again, unless the admin
//! had disabled it; `dpkg --purge` leaves nothing of it, not even the maintainer-script
//! helper's state.
//!
//! It needs root (it installs a package and edits /etc/apache2). Whatever happens, a guard
//! puts back what it changed: the package is purged, the site file removed, wsgi's links and
//! state files restored, an Apache it started stopped (one that was running is restarted on
//! the old configuration); /etc/apache2 and /var/lib/apache2 are then compared with snapshots
//! taken at the start.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};
use support::{TempDir, apps_dir, descendants_of, kill, parse_kv, process_alive, write_file};

const PACKAGE: &str = "libapache2-mod-wsgi-rs";
const C_PACKAGE: &str = "libapache2-mod-wsgi-py3";
const ETC: &str = "/etc/apache2";
const STATE: &str = "/var/lib/apache2";
/// a2enmod's and the maintainer-script helper's state: `module/<how>/<module>` markers.
const MODULE_STATE: &str = "/var/lib/apache2/module";
/// APACHE_PID_FILE of Debian's /etc/apache2/envvars.
const PID_FILE: &str = "/var/run/apache2/apache2.pid";
const SO: &str = "/usr/lib/apache2/modules/mod_wsgi_rs.so";
const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);
const APACHE_TIMEOUT: Duration = Duration::from_secs(30);
/// The guide's user1/group1, played by the existing `daemon` account (uid 1).
const DAEMON_USER: &str = "daemon";

// ---------------------------------------------------------------------------------------------
// Commands

struct Run {
    ok: bool,
    stdout: String,
    /// stdout then stderr.
    text: String,
}

/// Runs `program args` with LC_ALL=C, bounded by COMMAND_TIMEOUT (then killed: a failure).
fn run(program: &str, args: &[&str]) -> Run {
    let mut command = Command::new(program);
    // As under systemd: no PYTHON* settings of the shell reach the Apache this may start.
    for (name, _) in std::env::vars_os().filter(|(n, _)| n.to_string_lossy().starts_with("PYTHON"))
    {
        command.env_remove(name);
    }
    let mut child = command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("LC_ALL", "C")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    // Read both pipes at once, at most 1 MiB each, so neither fills up and blocks the child.
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut err).take(1 << 20).read_to_end(&mut buf);
        buf
    });
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut out).take(1 << 20).read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        sleep(Duration::from_millis(20));
    };
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned();
    let mut text = stdout.clone();
    text.push_str(&String::from_utf8_lossy(&err_reader.join().unwrap()));
    match status {
        Some(status) => Run {
            ok: status.success(),
            stdout,
            text,
        },
        None => Run {
            ok: false,
            stdout,
            text: format!("{text}\n({program} {args:?} killed after {COMMAND_TIMEOUT:?})"),
        },
    }
}

/// Runs a command that must succeed; returns its output.
fn must(program: &str, args: &[&str]) -> String {
    let r = run(program, args);
    assert!(r.ok, "{program} {} failed:\n{}", args.join(" "), r.text);
    r.text
}

/// dpkg's status of a package ("" when dpkg knows nothing of it).
fn package_status(package: &str) -> String {
    let r = run("dpkg-query", &["-W", "-f", "${Status}", package]);
    if r.ok { r.stdout } else { String::new() }
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

// ---------------------------------------------------------------------------------------------
// Apache's module state

fn enabled_link(module: &str, ext: &str) -> PathBuf {
    Path::new(ETC).join(format!("mods-enabled/{module}.{ext}"))
}

/// Enabled as a2enmod does it: the .load linked into mods-enabled.
fn is_enabled(module: &str) -> bool {
    enabled_link(module, "load").symlink_metadata().is_ok()
}

/// The helper's state files for `module`, e.g. `.../module/disabled_by_admin/wsgi_rs`.
fn state_markers(module: &str) -> Vec<PathBuf> {
    let Ok(dirs) = fs::read_dir(MODULE_STATE) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = dirs
        .filter_map(|d| Some(d.ok()?.path().join(module)))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
}

fn state_dirs() -> BTreeSet<PathBuf> {
    fs::read_dir(MODULE_STATE)
        .map(|dirs| dirs.filter_map(|d| Some(d.ok()?.path())).collect())
        .unwrap_or_default()
}

/// Pid of the system Apache from its pid file, when that process lives.
fn system_apache() -> Option<u32> {
    let pid: u32 = fs::read_to_string(PID_FILE).ok()?.trim().parse().ok()?;
    process_alive(pid).then_some(pid)
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------------
// Snapshots of configuration trees

#[derive(PartialEq, Eq, Debug)]
enum Entry {
    Dir(u32),
    File(u32, Vec<u8>),
    Link(PathBuf),
}

/// Every entry below `root` (links not followed), with modes and contents.
fn snapshot(root: &str) -> BTreeMap<PathBuf, Entry> {
    fn walk(dir: &Path, into: &mut BTreeMap<PathBuf, Entry>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = path.symlink_metadata() else {
                continue;
            };
            let mode = meta.permissions().mode();
            if meta.file_type().is_symlink() {
                into.insert(path.clone(), Entry::Link(fs::read_link(&path).unwrap()));
            } else if meta.is_dir() {
                into.insert(path.clone(), Entry::Dir(mode));
                walk(&path, into);
            } else {
                into.insert(
                    path.clone(),
                    Entry::File(mode, fs::read(&path).unwrap_or_default()),
                );
            }
        }
    }
    let mut map = BTreeMap::new();
    walk(Path::new(root), &mut map);
    map
}

/// What differs between two snapshots, one line per path.
fn differences(before: &BTreeMap<PathBuf, Entry>, after: &BTreeMap<PathBuf, Entry>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, entry) in before {
        match after.get(path) {
            None => out.push(format!("gone: {}", path.display())),
            Some(now) if now != entry => out.push(format!("changed: {}", path.display())),
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        out.push(format!("new: {}", path.display()));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The guard

/// What the test changes on the system, recorded first and put back on drop (also when the
/// test fails half-way).
struct System {
    /// mods-enabled/wsgi.load and wsgi.conf: their link targets, if any.
    c_links: Vec<(PathBuf, Option<PathBuf>)>,
    /// wsgi's state files, with their modes.
    c_markers: Vec<(PathBuf, u32)>,
    state_dirs: BTreeSet<PathBuf>,
    /// The system Apache's pid when the test began.
    apache_before: Option<u32>,
    /// sites-available/<name>.conf and its sites-enabled link.
    site: [PathBuf; 2],
}

impl System {
    fn record() -> System {
        let name = format!("zz-mod-wsgi-rs-package-test-{}.conf", std::process::id());
        System {
            c_links: ["load", "conf"]
                .iter()
                .map(|ext| {
                    let link = enabled_link("wsgi", ext);
                    let target = fs::read_link(&link).ok();
                    (link, target)
                })
                .collect(),
            c_markers: state_markers("wsgi")
                .into_iter()
                .map(|p| {
                    let mode = fs::metadata(&p)
                        .map(|m| m.permissions().mode())
                        .unwrap_or(0o644);
                    (p, mode)
                })
                .collect(),
            state_dirs: state_dirs(),
            apache_before: system_apache(),
            site: [
                Path::new(ETC).join("sites-available").join(&name),
                Path::new(ETC).join("sites-enabled").join(&name),
            ],
        }
    }

    fn c_module_was_enabled(&self) -> bool {
        self.c_links[0].1.is_some()
    }

    fn restore(&self) {
        // The site first: with its directory gone, apache2ctl would not even stop Apache.
        for path in &self.site {
            let _ = fs::remove_file(path);
        }
        if self.apache_before.is_none()
            && let Some(pid) = system_apache()
        {
            stop_apache(pid);
        }
        if !package_status(PACKAGE).is_empty() {
            let r = run("dpkg", &["--purge", PACKAGE]);
            if !r.ok {
                eprintln!("cleanup: dpkg --purge {PACKAGE} failed:\n{}", r.text);
            }
        }
        for (link, target) in &self.c_links {
            let _ = fs::remove_file(link);
            if let Some(target) = target
                && let Err(e) = std::os::unix::fs::symlink(target, link)
            {
                eprintln!("cleanup: cannot restore {}: {e}", link.display());
            }
        }
        for marker in state_markers("wsgi") {
            let _ = fs::remove_file(marker);
        }
        for (marker, mode) in &self.c_markers {
            let written = fs::write(marker, b"")
                .and_then(|_| fs::set_permissions(marker, fs::Permissions::from_mode(*mode)));
            if let Err(e) = written {
                eprintln!("cleanup: cannot restore {}: {e}", marker.display());
            }
        }
        for dir in state_dirs().difference(&self.state_dirs) {
            let _ = fs::remove_dir(dir); // Only when empty: a2enmod made it for our markers.
        }
        if self.apache_before.is_some() {
            let r = run("apache2ctl", &["restart"]);
            if !r.ok {
                eprintln!("cleanup: apache2ctl restart failed:\n{}", r.text);
            }
        }
    }
}

impl Drop for System {
    fn drop(&mut self) {
        self.restore();
    }
}

// ---------------------------------------------------------------------------------------------
// The system Apache

/// `apache2ctl stop` (SIGTERM if that fails: it checks the configuration first), then waits
/// for the parent and everything it forked to be gone (killed after APACHE_TIMEOUT).
fn stop_apache(pid: u32) {
    let family: Vec<u32> = std::iter::once(pid).chain(descendants_of(pid)).collect();
    let r = run("apache2ctl", &["stop"]);
    if !r.ok {
        eprintln!(
            "apache2ctl stop failed, sending SIGTERM to {pid}:\n{}",
            r.text
        );
        kill("TERM", pid);
    }
    let deadline = Instant::now() + APACHE_TIMEOUT;
    while family.iter().any(|&p| process_alive(p)) && Instant::now() < deadline {
        sleep(Duration::from_millis(50));
    }
    for &p in family.iter().filter(|&&p| process_alive(p)) {
        eprintln!(
            "Apache process {p} still there {APACHE_TIMEOUT:?} after apache2ctl stop: killed"
        );
        kill("KILL", p);
    }
    if fs::read_to_string(PID_FILE).is_ok_and(|text| text.trim() == pid.to_string()) {
        let _ = fs::remove_file(PID_FILE);
    }
}

/// One request with `Connection: close`; (status, body). Reads at most 1 MiB.
fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(APACHE_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(APACHE_TIMEOUT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.take(1 << 20)
        .read_to_end(&mut raw)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no response head in {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok((status, body.to_string()))
}

/// `/var/www/yourapplication` of Flask's guide: the app package and its .wsgi file.
fn application_dir() -> TempDir {
    let dir = TempDir::new("package-deb-app");
    let pkg = fs::read(apps_dir().join("flask_guide/yourapplication/__init__.py")).unwrap();
    write_file(&dir.path().join("yourapplication/__init__.py"), &pkg);
    let wsgi = format!(
        "import sys\nsys.path.insert(0, '{}')\n\nfrom yourapplication import app as application\n",
        dir.path().display()
    );
    write_file(&dir.path().join("yourapplication.wsgi"), wsgi.as_bytes());
    dir
}

/// The guide's `<VirtualHost>`, on its own 127.0.0.1 port, logging into the app's dir
/// rather than the system's logs.
fn site_config(app: &Path, port: u16) -> String {
    let app = app.display();
    format!(
        "# Written by mod_wsgi's tests/package_deb.rs, which removes it when done.\n\
         Listen 127.0.0.1:{port}\n\
         <VirtualHost 127.0.0.1:{port}>\n\
         \x20   ServerName example.com\n\
         \x20   ErrorLog {app}/error.log\n\
         \x20   CustomLog {app}/access.log combined\n\
         \n\
         \x20   WSGIDaemonProcess yourapplication user={DAEMON_USER} group={DAEMON_USER} threads=5\n\
         \x20   WSGIScriptAlias / {app}/yourapplication.wsgi\n\
         \n\
         \x20   <Directory {app}>\n\
         \x20       WSGIProcessGroup yourapplication\n\
         \x20       WSGIApplicationGroup %{{GLOBAL}}\n\
         \x20       Require all granted\n\
         \x20   </Directory>\n\
         </VirtualHost>\n"
    )
}

/// Waits for the first answer of the app (Apache starting, then the daemon group).
fn wait_for_app(port: u16, app: &Path) -> (u16, String) {
    let deadline = Instant::now() + APACHE_TIMEOUT;
    loop {
        match get(port, "/") {
            Ok(answer) => return answer,
            Err(e) if Instant::now() > deadline => panic!(
                "no answer on 127.0.0.1:{port} from the system Apache: {e}\n--- site error log ---\n{}\n--- /var/log/apache2/error.log ---\n{}",
                fs::read_to_string(app.join("error.log")).unwrap_or_default(),
                fs::read_to_string("/var/log/apache2/error.log").unwrap_or_default()
            ),
            Err(_) => sleep(Duration::from_millis(100)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The test

/// `make deb`: builds (or finds up to date) the module, packs it; the .deb's path.
fn build_deb() -> PathBuf {
    let r = run("make", &["--no-print-directory", "deb"]);
    assert!(r.ok, "make deb failed:\n{}", r.text);
    let out = r.text;
    let deb = PathBuf::from(r.stdout.lines().last().unwrap_or_default().trim());
    let arch = must("dpkg", &["--print-architecture"]);
    let name = format!(
        "{PACKAGE}_{}_{}.deb",
        env!("CARGO_PKG_VERSION"),
        arch.trim()
    );
    assert!(
        deb.is_file() && deb.file_name().is_some_and(|n| n == name.as_str()),
        "make deb did not end with the path of {name}:\n{out}"
    );
    deb
}

fn installed_files() -> Vec<PathBuf> {
    must("dpkg", &["-L", PACKAGE])
        .lines()
        .map(PathBuf::from)
        .collect()
}

/// Serves the Flask guide's configuration through the system Apache and the package's
/// module (enabled by now, the C module not).
fn serve_flask_guide(system: &System) {
    let app = application_dir();
    let port = free_port();
    write_file(&system.site[0], site_config(app.path(), port).as_bytes());
    std::os::unix::fs::symlink(&system.site[0], &system.site[1]).unwrap();
    must("apache2ctl", &["configtest"]);
    let action = if system.apache_before.is_some() {
        "restart"
    } else {
        "start"
    };
    must("apache2ctl", &[action]);

    let (status, body) = wait_for_app(port, app.path());
    assert_eq!((status, body.as_str()), (200, "Hello from yourapplication"));
    let (status, body) = get(port, "/hello/debian").unwrap();
    assert_eq!((status, body.as_str()), (200, "Hello, debian!"));
    let (status, body) = get(port, "/whoami").unwrap();
    assert_eq!(status, 200, "{body}");
    let who = parse_kv(&body);
    assert_eq!(who["uid"], "1", "{who:#?}");
    assert_eq!(who["process_group"], "'yourapplication'", "{who:#?}");
    assert_eq!(who["application_group"], "''", "{who:#?}");

    // The module serving is the package's file, and the C module is not loaded.
    let pid = system_apache().expect("the system Apache's pid file after apache2ctl");
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    assert!(maps.contains(SO), "{SO} not mapped by Apache ({pid})");
    assert!(
        !maps.contains("/mod_wsgi.so"),
        "the C module is mapped by Apache ({pid})"
    );

    fs::remove_file(&system.site[1]).unwrap();
    fs::remove_file(&system.site[0]).unwrap();
    if system.apache_before.is_none() {
        stop_apache(pid);
        assert!(
            system_apache().is_none(),
            "the system Apache still runs after apache2ctl stop"
        );
    }
}

fn exercise(system: &System, deb: &Path) {
    let deb = deb.to_str().unwrap();
    let enabled = || is_enabled("wsgi_rs");

    // Installed while the C module is enabled: installed, not enabled, and the switch named.
    if !system.c_module_was_enabled() {
        must("a2enmod", &["-q", "wsgi"]);
    }
    let out = must("dpkg", &["-i", deb]);
    assert!(
        out.contains(
            "wsgi_rs not enabled: the C module wsgi is; to switch: a2dismod wsgi && a2enmod wsgi_rs"
        ),
        "{out}"
    );
    assert!(!enabled());
    let files = installed_files();
    for f in [
        SO,
        "/etc/apache2/mods-available/wsgi_rs.load",
        "/etc/apache2/mods-available/wsgi_rs.conf",
        "/usr/share/doc/libapache2-mod-wsgi-rs/copyright",
        "/usr/share/doc/libapache2-mod-wsgi-rs/changelog.gz",
    ] {
        assert!(
            files.contains(&PathBuf::from(f)) && Path::new(f).is_file(),
            "{f} not installed: {files:?}"
        );
    }
    let conffiles = must("dpkg-query", &["-W", "-f", "${Conffiles}", PACKAGE]);
    assert!(
        conffiles.contains("/etc/apache2/mods-available/wsgi_rs.load ")
            && conffiles.contains("/etc/apache2/mods-available/wsgi_rs.conf "),
        "{conffiles}"
    );

    // a2enmod honours our .load's Conflicts line.
    let r = run("a2enmod", &["wsgi_rs"]);
    assert!(
        !r.ok,
        "a2enmod wsgi_rs went through with wsgi enabled:\n{}",
        r.text
    );
    assert!(
        r.text
            .contains("Module wsgi is enabled - cannot proceed due to conflicts"),
        "{}",
        r.text
    );
    assert!(!enabled());

    // The switch the note names.
    must("a2dismod", &["-q", "wsgi"]);
    must("a2enmod", &["-q", "wsgi_rs"]);
    assert!(enabled());
    must("apache2ctl", &["configtest"]);

    // The other way round a2enmod cannot know (wsgi.load has no Conflicts line), but
    // Apache's configuration test then fails with the fix.
    must("a2enmod", &["-q", "wsgi"]);
    let r = run("apache2ctl", &["configtest"]);
    assert!(
        !r.ok,
        "configtest passed with both modules enabled:\n{}",
        r.text
    );
    assert!(
        r.text.contains("wsgi_rs: the C module wsgi is enabled too, and both are wsgi_module: run a2dismod wsgi (or a2dismod wsgi_rs)"),
        "{}",
        r.text
    );
    must("a2dismod", &["-q", "wsgi"]);

    serve_flask_guide(system);

    // Removed: disabled, configuration kept; installed again: enabled again, the package
    // (not the admin) having disabled it.
    must("dpkg", &["-r", PACKAGE]);
    assert!(!enabled() && !enabled_link("wsgi_rs", "conf").exists());
    assert!(!Path::new(SO).exists());
    assert!(Path::new("/etc/apache2/mods-available/wsgi_rs.load").is_file());
    let out = must("dpkg", &["-i", deb]);
    assert!(enabled(), "not enabled again on reinstall:\n{out}");

    // Disabled by the admin: a reinstall leaves it so, without a note.
    must("a2dismod", &["-q", "wsgi_rs"]);
    must("dpkg", &["-r", PACKAGE]);
    let out = must("dpkg", &["-i", deb]);
    assert!(
        !enabled(),
        "enabled on reinstall although the admin had disabled it:\n{out}"
    );
    assert!(!out.contains("to switch"), "{out}");

    // Purged: nothing of it left.
    let files = installed_files();
    must("dpkg", &["--purge", PACKAGE]);
    assert_eq!(package_status(PACKAGE), "", "dpkg still knows {PACKAGE}");
    let left: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.symlink_metadata().is_ok_and(|m| !m.is_dir()))
        .collect();
    assert!(left.is_empty(), "left after purge: {left:?}");
    assert!(!Path::new("/usr/share/doc/libapache2-mod-wsgi-rs").exists());
    for ext in ["load", "conf"] {
        for dir in ["mods-available", "mods-enabled"] {
            let p = Path::new(ETC).join(dir).join(format!("wsgi_rs.{ext}"));
            assert!(
                p.symlink_metadata().is_err(),
                "{} left after purge",
                p.display()
            );
        }
    }
    assert_eq!(
        state_markers("wsgi_rs"),
        Vec::<PathBuf>::new(),
        "helper state left after purge"
    );
}

#[test]
fn debian_package_installs_enables_serves_and_purges_cleanly() {
    if !running_as_root() {
        eprintln!("skipped: installing a package into the system Apache needs root");
        return;
    }
    if std::env::var_os("MOD_WSGI_SO").is_some() && support::is_reference() {
        eprintln!(
            "skipped: the package holds our module; there is nothing to compare with the C module"
        );
        return;
    }
    assert_eq!(
        package_status(C_PACKAGE),
        "install ok installed",
        "{C_PACKAGE} is not installed: run `make deps`"
    );
    assert_eq!(
        package_status(PACKAGE),
        "",
        "{PACKAGE} is already on this system and this test purges it: `dpkg --purge {PACKAGE}` first"
    );
    let deb = build_deb();
    let c_files = run("dpkg", &["-V", C_PACKAGE]).text;
    let etc = snapshot(ETC);
    let state = snapshot(STATE);
    {
        let system = System::record();
        exercise(&system, &deb);
    }
    let mut changed = differences(&etc, &snapshot(ETC));
    changed.extend(differences(&state, &snapshot(STATE)));
    assert!(
        changed.is_empty(),
        "not as before the test:\n{}",
        changed.join("\n")
    );
    assert_eq!(
        run("dpkg", &["-V", C_PACKAGE]).text,
        c_files,
        "{C_PACKAGE}'s files changed"
    );
}
