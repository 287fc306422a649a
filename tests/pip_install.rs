//! `pip install` of this source tree into a virtual environment made with Debian's Python
//! (pyproject.toml, packaging/python/): the installed `mod_wsgi-express` serves a Flask app
//! with the venv as Python home though the venv is not activated, and `module-config` names
//! the module inside the venv; Django's `manage.py runmodwsgi` (app `mod_wsgi_rs.server`)
//! serves the admin's login page and its collected static files, and stops with SIGTERM;
//! `pip wheel` makes a cp311 linux_x86_64 wheel that installs into a second venv and serves
//! from there.
//!
//! Needs network access to PyPI (setuptools, setuptools-rust, Flask, Django) and cargo on
//! PATH. cargo builds into target/pip-build, kept between runs, so only the first run
//! compiles from scratch (about 1.5 min on 2 cores); later ones take about a minute.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};
use support::express::ServerProcess;
use support::{TempDir, write_file};

const PYTHON: &str = "/usr/bin/python3";
const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// A cold cargo build of the module and binary inside pip, with the download of the build
/// dependencies, takes about 2 minutes on 2 shared cores.
const BUILD_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const PIP_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The file name pip gives the module inside the package (Python's extension suffix).
const MODULE_FILE: &str = "mod_wsgi_rs/mod_wsgi-apache.cpython-311-x86_64-linux-gnu.so";

/// pip builds in the source tree (setuptools writes target/python-build): one at a time.
static SOURCE_TREE: Mutex<()> = Mutex::new(());

/// Runs `cmd` to completion within `limit`, its output going to `log`; panics with the
/// output's end when it fails or takes too long.
fn run(what: &str, cmd: &mut Command, log: &Path, limit: Duration) {
    let out = fs::File::create(log).expect("create log");
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} took over {limit:?}\n{}", tail(log));
        }
        sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{what} failed ({status})\n{}", tail(log));
    eprintln!("{what}: {:.1} s", started.elapsed().as_secs_f64());
}

/// The last 6000 bytes of a log.
fn tail(log: &Path) -> String {
    let text = fs::read(log).unwrap_or_default();
    let start = text.len().saturating_sub(6000);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// A venv made with Debian's Python (with pip) in `dir`/`name`.
fn make_venv(dir: &Path, name: &str) -> PathBuf {
    let venv = dir.join(name);
    run(
        "python3 -m venv",
        Command::new(PYTHON).args(["-m", "venv"]).arg(&venv),
        &dir.join(format!("{name}-venv.log")),
        PIP_TIMEOUT,
    );
    venv
}

/// `<venv>/bin/pip ARGS`, as a user would run it: not activated, no PYO3_PYTHON (the build
/// backend chooses it), cargo's output in target/pip-build.
fn pip(venv: &Path, args: &[&str], log: &Path, limit: Duration) {
    run(
        &format!("pip {}", args.join(" ")),
        Command::new(venv.join("bin/pip"))
            .args(args)
            .env("CARGO_TARGET_DIR", Path::new(REPO).join("target/pip-build"))
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PIP_NO_INPUT", "1")
            .env("PIP_PROGRESS_BAR", "off")
            .env_remove("PYO3_PYTHON")
            .env_remove("VIRTUAL_ENV")
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME"),
        log,
        limit,
    );
}

/// `pip install <this source tree>` into `venv`.
fn pip_install_repo(venv: &Path, log: &Path) {
    let _tree = SOURCE_TREE.lock().unwrap_or_else(|e| e.into_inner());
    pip(venv, &["install", REPO], log, BUILD_TIMEOUT);
}

/// Runs `<venv>/bin/mod_wsgi-express ARGS` to completion: its stdout.
fn express(venv: &Path, args: &[&str]) -> String {
    let out = Command::new(venv.join("bin/mod_wsgi-express"))
        .args(args)
        .env_remove("VIRTUAL_ENV")
        .output()
        .expect("run mod_wsgi-express");
    assert!(
        out.status.success(),
        "mod_wsgi-express {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// A server started by a command that becomes Apache (mod_wsgi-express start-server, or
/// manage.py runmodwsgi exec'ing it). On drop it is sent SIGTERM, and whatever of its server
/// root is left is killed.
struct Running {
    process: ServerProcess,
    port: u16,
    root: PathBuf,
    log: PathBuf,
}

impl Running {
    /// Spawns `cmd` (which listens on `port`, with `root` as server root) and waits until it
    /// accepts connections.
    fn start(mut cmd: Command, port: u16, root: &Path, log: &Path) -> Running {
        let out = fs::File::create(log).unwrap();
        let child = cmd
            .env_remove("VIRTUAL_ENV")
            .env("LANG", "C")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn server");
        let mut r = Running {
            process: ServerProcess::new(child, root, port),
            port,
            root: root.to_path_buf(),
            log: log.to_path_buf(),
        };
        if let Err(why) = r.process.wait_listening() {
            panic!("server {why}\n{}", r.output());
        }
        r
    }

    fn output(&self) -> String {
        let log = fs::read_to_string(self.root.join("error_log")).unwrap_or_default();
        format!(
            "--- output ---\n{}--- error_log ---\n{log}",
            tail(&self.log)
        )
    }

    /// GET `path` as HTTP/1.0: (status, body), at most 4 MiB of it.
    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut raw = Vec::new();
        s.take(4 << 20)
            .read_to_end(&mut raw)
            .expect("read response");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no response head: {:?}", String::from_utf8_lossy(&raw)));
        let head = String::from_utf8_lossy(&raw[..split]);
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad status line: {head:?}"));
        (status, raw[split + 4..].to_vec())
    }

    fn get_text(&self, path: &str) -> (u16, String) {
        let (status, body) = self.get(path);
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn terminate(&mut self) -> bool {
        self.process.terminate()
    }
}

/// The module pip put in `venv`, as module-location reports it.
fn assert_module_in(venv: &Path) -> PathBuf {
    let location = express(venv, &["module-location"]);
    let module = PathBuf::from(location.trim_end());
    assert_eq!(
        module,
        venv.join("lib/python3.11/site-packages").join(MODULE_FILE)
    );
    assert!(module.is_file(), "{} missing", module.display());
    module
}

/// (a) and (b): one venv, the repo and Flask and Django installed into it.
#[test]
fn pip_install_serves_flask_with_express_and_django_with_runmodwsgi() {
    let dir = TempDir::new("pip");
    let venv = make_venv(dir.path(), "venv");
    pip_install_repo(&venv, &dir.path().join("pip-install.log"));
    assert!(venv.join("bin/mod_wsgi-express").is_file());
    // pip's isolated build ran cargo with the CARGO_TARGET_DIR given.
    let built = Path::new(REPO).join("target/pip-build/release");
    for name in ["libmod_wsgi.so", "mod_wsgi-express"] {
        assert!(
            built.join(name).is_file(),
            "{name} not in {}",
            built.display()
        );
    }

    // module-config: the module inside the venv, and the venv as Python home, though the
    // venv is not activated.
    let module = assert_module_in(&venv);
    assert_eq!(
        express(&venv, &["module-config"]),
        format!(
            "LoadModule wsgi_module \"{}\"\nWSGIPythonHome \"{}\"\n",
            module.display(),
            venv.display()
        )
    );

    pip(
        &venv,
        &["install", "flask", "django"],
        &dir.path().join("pip-apps.log"),
        PIP_TIMEOUT,
    );
    flask_with_express(dir.path(), &venv);
    django_runmodwsgi(dir.path(), &venv);
}

/// The venv's mod_wsgi-express serves a Flask app module from the venv (no --python-home).
fn flask_with_express(dir: &Path, venv: &Path) {
    let code = dir.join("flask-code");
    write_file(
        &code.join("flaskapp.py"),
        b"import sys\n\
          from flask import Flask\n\
          app = Flask(__name__)\n\
          \n\
          @app.route('/')\n\
          def index():\n\
          \x20   return 'Hello from Flask in ' + sys.prefix\n",
    );
    let port = free_port();
    let root = dir.join("flask-root");
    let mut cmd = Command::new(venv.join("bin/mod_wsgi-express"));
    cmd.args([
        "start-server",
        "flaskapp:app",
        "--application-type",
        "module",
    ])
    .arg("--python-path")
    .arg(&code)
    .args(["--port", &port.to_string(), "--server-root"])
    .arg(&root);
    let mut server = Running::start(cmd, port, &root, &dir.join("flask.out"));
    assert_eq!(
        server.get_text("/"),
        (200, format!("Hello from Flask in {}", venv.display())),
        "{}",
        server.output()
    );
    assert_eq!(server.get("/missing").0, 404);
    let conf = fs::read_to_string(root.join("httpd.conf")).unwrap();
    assert!(
        conf.contains(&format!("python-home=\"{}\"", venv.display())),
        "{conf}"
    );
    assert!(server.terminate(), "{}", server.output());
}

/// `manage.py runmodwsgi` of a new Django project: the admin's login page, and a static
/// file from STATIC_ROOT (after collectstatic); --setup-only writes the server root only.
fn django_runmodwsgi(dir: &Path, venv: &Path) {
    let site = dir.join("site");
    fs::create_dir(&site).unwrap();
    let python = venv.join("bin/python");
    run(
        "django-admin startproject",
        Command::new(venv.join("bin/django-admin"))
            .args(["startproject", "mysite"])
            .arg(&site),
        &dir.join("startproject.log"),
        PIP_TIMEOUT,
    );
    let settings = site.join("mysite/settings.py");
    let mut text = fs::read_to_string(&settings).unwrap();
    text.push_str(
        "\nSTATIC_ROOT = BASE_DIR / 'static'\nINSTALLED_APPS += ['mod_wsgi_rs.server']\n",
    );
    write_file(&settings, text.as_bytes());
    run(
        "manage.py collectstatic",
        Command::new(&python)
            .args(["manage.py", "collectstatic", "--noinput"])
            .current_dir(&site),
        &dir.join("collectstatic.log"),
        PIP_TIMEOUT,
    );
    let css = fs::read(site.join("static/admin/css/base.css")).expect("collected base.css");

    // --setup-only: the configuration, nothing started.
    let setup_root = dir.join("django-setup");
    run(
        "manage.py runmodwsgi --setup-only",
        Command::new(&python)
            .args(["manage.py", "runmodwsgi", "--setup-only", "--port", "8765"])
            .arg("--server-root")
            .arg(&setup_root)
            .env_remove("VIRTUAL_ENV")
            .current_dir(&site),
        &dir.join("setup-only.log"),
        PIP_TIMEOUT,
    );
    let conf = fs::read_to_string(setup_root.join("httpd.conf")).unwrap();
    for expect in [
        format!(
            "python-home=\"{}\" python-path=\"{}\"",
            venv.display(),
            site.display()
        ),
        format!("Alias /static \"{}\"\n", site.join("static").display()),
    ] {
        assert!(conf.contains(&expect), "{expect:?} not in\n{conf}");
    }
    let handler = fs::read_to_string(setup_root.join("handler.wsgi")).unwrap();
    assert!(
        handler.contains("import_module('mysite.wsgi')"),
        "{handler}"
    );

    let port = free_port();
    let root = dir.join("django-root");
    let mut cmd = Command::new(&python);
    cmd.args(["manage.py", "runmodwsgi", "--port", &port.to_string()])
        .arg("--server-root")
        .arg(&root)
        .current_dir(&site);
    let mut server = Running::start(cmd, port, &root, &dir.join("django.out"));
    let (status, page) = server.get_text("/admin/login/");
    assert_eq!(status, 200, "{page}\n{}", server.output());
    assert!(
        page.contains("<title>Log in | Django site admin</title>"),
        "{page}"
    );
    let (status, body) = server.get("/static/admin/css/base.css");
    assert_eq!(status, 200, "{}", server.output());
    assert!(body == css, "base.css differs from the collected file");
    // runmodwsgi became mod_wsgi-express, which became Apache: SIGTERM to the process
    // started stops the server.
    assert!(server.terminate(), "{}", server.output());
}

/// (c): the wheel `pip wheel` makes installs into another venv, and serves from there.
#[test]
fn pip_wheel_installs_into_another_venv() {
    let dir = TempDir::new("pip-wheel");
    let builder = make_venv(dir.path(), "builder");
    let wheels = dir.path().join("wheels");
    {
        let _tree = SOURCE_TREE.lock().unwrap_or_else(|e| e.into_inner());
        pip(
            &builder,
            &[
                "wheel",
                "--no-deps",
                "--wheel-dir",
                wheels.to_str().unwrap(),
                REPO,
            ],
            &dir.path().join("pip-wheel.log"),
            BUILD_TIMEOUT,
        );
    }
    let names: Vec<String> = fs::read_dir(&wheels)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    // Not pure Python: CPython 3.11's ABI (the module links libpython3.11), linux_x86_64.
    assert_eq!(
        names,
        vec!["mod_wsgi_rs-0.1.0-cp311-cp311-linux_x86_64.whl".to_string()]
    );
    let wheel = wheels.join(&names[0]);
    let listing = Command::new(PYTHON)
        .args([
            "-c",
            "import sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             print('\\n'.join(z.namelist()))\n\
             print(z.read('mod_wsgi_rs-0.1.0.dist-info/WHEEL').decode())",
        ])
        .arg(&wheel)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for expect in [
        MODULE_FILE,
        "mod_wsgi_rs-0.1.0.data/scripts/mod_wsgi-express",
        "mod_wsgi_rs/server/management/commands/runmodwsgi.py",
        "Root-Is-Purelib: false",
        "Tag: cp311-cp311-linux_x86_64",
    ] {
        assert!(listing.contains(expect), "{expect:?} not in\n{listing}");
    }

    let venv = make_venv(dir.path(), "second");
    pip(
        &venv,
        &["install", "--no-index", wheel.to_str().unwrap()],
        &dir.path().join("pip-install-wheel.log"),
        PIP_TIMEOUT,
    );
    assert_module_in(&venv);
    let script = dir.path().join("app/prefix.wsgi");
    write_file(
        &script,
        b"import sys\n\
          def application(environ, start_response):\n\
          \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
          \x20   return [sys.prefix.encode()]\n",
    );
    let port = free_port();
    let root = dir.path().join("root");
    let mut cmd = Command::new(venv.join("bin/mod_wsgi-express"));
    cmd.arg("start-server")
        .arg(&script)
        .args(["--port", &port.to_string(), "--server-root"])
        .arg(&root);
    let mut server = Running::start(cmd, port, &root, &dir.path().join("server.out"));
    assert_eq!(
        server.get_text("/"),
        (200, venv.display().to_string()),
        "{}",
        server.output()
    );
    assert!(server.terminate(), "{}", server.output());
}
