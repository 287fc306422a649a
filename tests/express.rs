//! `mod_wsgi-express` (src/bin/mod_wsgi-express.rs): start-server serves a script, a
//! `pkg.mod:app` module and a Flask app in a venv, and stops with SIGTERM leaving no Apache
//! process; setup-server writes a configuration `apache2 -t` accepts; module-config and
//! install-module (into temp dirs); the one-line errors for a missing script, a busy port
//! and a venv of another Python.

mod support;

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use support::express::{EXPRESS, Express, HELLO, assert_error, express, stderr_of};
use support::{TempDir, write_file};

#[test]
fn start_server_serves_script_and_sigterm_stops_everything() {
    let dir = TempDir::new("express");
    let script = dir.path().join("app/hello.wsgi");
    write_file(&script, HELLO.as_bytes());
    let mut e = Express::start(dir, &[script.to_str().unwrap()]);
    let (status, body) = e.get("/");
    assert_eq!(status, 200, "{}", e.output());
    // Served in the daemon group named host:port.
    assert_eq!(body, format!("hello from express: 127.0.0.1:{}", e.port));
    let out = e.output();
    assert!(
        out.contains(&format!("http://127.0.0.1:{}/", e.port)),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}/error_log", e.root.display())),
        "{out}"
    );
    assert!(!e.processes().is_empty());
    assert!(
        e.terminate(),
        "processes left: {:?}\n{}",
        e.processes(),
        e.output()
    );
}

#[test]
fn start_server_embedded_mode() {
    let dir = TempDir::new("express");
    let script = dir.path().join("hello.wsgi");
    write_file(&script, HELLO.as_bytes());
    let mut e = Express::start(dir, &[script.to_str().unwrap(), "--embedded-mode"]);
    let (status, body) = e.get("/");
    assert_eq!(status, 200, "{}", e.output());
    assert_eq!(body, "hello from express: ");
    assert!(e.terminate(), "{}", e.output());
}

#[test]
fn start_server_application_type_module() {
    let dir = TempDir::new("express");
    let code = dir.path().join("code");
    write_file(&code.join("pkg/__init__.py"), b"");
    write_file(
        &code.join("pkg/mod.py"),
        b"def app(environ, start_response):\n\
          \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
          \x20   return [('module app at ' + environ['PATH_INFO']).encode()]\n",
    );
    let code = code.to_str().unwrap().to_string();
    let mut e = Express::start(
        dir,
        &[
            "--application-type",
            "module",
            "pkg.mod:app",
            "--python-path",
            &code,
        ],
    );
    assert_eq!(
        e.get("/x/y"),
        (200, "module app at /x/y".to_string()),
        "{}",
        e.output()
    );
    assert!(e.terminate(), "{}", e.output());
}

#[test]
fn start_server_flask_app_in_venv() {
    let dir = TempDir::new("express");
    let venv = dir.path().join("venv");
    let status = Command::new("/usr/bin/python3")
        .args(["-m", "venv", "--system-site-packages", "--without-pip"])
        .arg(&venv)
        .status()
        .expect("run python3 -m venv");
    assert!(status.success(), "python3 -m venv failed");
    // The Flask guide's shape: an application package, and a .wsgi importing its app.
    let app_dir = dir.path().join("yourapplication");
    write_file(
        &app_dir.join("yourapplication/__init__.py"),
        b"import sys\n\
          from flask import Flask\n\
          app = Flask(__name__)\n\
          \n\
          @app.route('/')\n\
          def index():\n\
          \x20   return 'Hello from Flask'\n\
          \n\
          @app.route('/prefix')\n\
          def prefix():\n\
          \x20   return sys.prefix\n",
    );
    let wsgi = app_dir.join("yourapplication.wsgi");
    write_file(&wsgi, b"from yourapplication import app as application\n");
    let mut e = Express::start(
        dir,
        &[
            wsgi.to_str().unwrap(),
            "--python-home",
            venv.to_str().unwrap(),
            "--python-path",
            app_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(
        e.get("/"),
        (200, "Hello from Flask".to_string()),
        "{}",
        e.output()
    );
    assert_eq!(
        e.get("/prefix"),
        (200, venv.display().to_string()),
        "{}",
        e.output()
    );
    assert_eq!(e.get("/missing").0, 404);
    assert!(e.terminate(), "{}", e.output());
}

#[test]
fn setup_server_writes_a_configuration_apache_accepts() {
    let dir = TempDir::new("express");
    let script = dir.path().join("hello.wsgi");
    write_file(&script, HELLO.as_bytes());
    let statics = dir.path().join("static");
    write_file(&statics.join("a.txt"), b"a");
    let include = dir.path().join("extra.conf");
    write_file(&include, b"# extra\nLimitRequestBody 1000000\n");
    let root = dir.path().join("root");
    let out = express(&[
        "setup-server",
        script.to_str().unwrap(),
        "--server-root",
        root.to_str().unwrap(),
        "--port",
        "8765",
        "--processes",
        "2",
        "--threads",
        "3",
        "--maximum-requests",
        "100",
        "--url-alias",
        "/static",
        statics.to_str().unwrap(),
        "--include-file",
        include.to_str().unwrap(),
        "--reload-on-changes",
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let conf = fs::read_to_string(root.join("httpd.conf")).unwrap();
    for expect in [
        "Listen 127.0.0.1:8765\n",
        "WSGIRestrictEmbedded On\n",
        "WSGIPassAuthorization On\n",
        "WSGIDaemonProcess 127.0.0.1:8765 processes=2 threads=3 display-name=%{GROUP} \
         lang=C.UTF-8 locale=C.UTF-8 maximum-requests=100 request-timeout=60 queue-timeout=45 \
         startup-timeout=15 graceful-timeout=15\n",
        &format!(
            "WSGIScriptAlias / \"{}\" process-group=127.0.0.1:8765 application-group=%{{GLOBAL}}\n",
            script.display()
        ),
        &format!("Alias /static \"{}\"\n", statics.display()),
        &format!("Include \"{}\"\n", include.display()),
    ] {
        assert!(conf.contains(expect), "{expect:?} not in\n{conf}");
    }
    let apachectl = root.join("apachectl");
    assert!(
        fs::read_to_string(&apachectl)
            .unwrap()
            .contains("-k \"$1\"")
    );
    let test = Command::new("/usr/sbin/apache2")
        .arg("-t")
        .arg("-f")
        .arg(root.join("httpd.conf"))
        .output()
        .unwrap();
    assert!(test.status.success(), "{}\n{conf}", stderr_of(&test));
    let test = Command::new(&apachectl).arg("configtest").output().unwrap();
    assert!(test.status.success(), "{}", stderr_of(&test));
}

#[test]
fn module_config_prints_the_load_module_line() {
    let out = express(&["module-config"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let path = text
        .trim_end()
        .strip_prefix("LoadModule wsgi_module \"")
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{text:?}"));
    assert!(Path::new(path).is_file(), "{path}");
    assert!(path.ends_with("libmod_wsgi.so"), "{path}");
    let location = express(&["module-location"]);
    assert_eq!(String::from_utf8(location.stdout).unwrap().trim(), path);
}

#[test]
fn install_module_into_given_directories() {
    let dir = TempDir::new("express");
    let libexec = dir.path().join("modules");
    let mods = dir.path().join("mods-available");
    fs::create_dir(&libexec).unwrap();
    fs::create_dir(&mods).unwrap();
    let out = express(&[
        "install-module",
        "--libexecdir",
        libexec.to_str().unwrap(),
        "--mods-available",
        mods.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(libexec.join("mod_wsgi_rs.so").is_file());
    let load = fs::read_to_string(mods.join("wsgi_rs.load")).unwrap();
    assert_eq!(
        load,
        format!(
            "LoadModule wsgi_module \"{}\"\n",
            libexec.join("mod_wsgi_rs.so").display()
        )
    );
}

#[test]
fn missing_script_is_one_line_error() {
    let dir = TempDir::new("express");
    let root = dir.path().join("root");
    let missing = dir.path().join("nope.wsgi");
    let out = express(&[
        "setup-server",
        missing.to_str().unwrap(),
        "--server-root",
        root.to_str().unwrap(),
    ]);
    assert_error(
        &out,
        &format!("WSGI script {} not found", missing.display()),
    );
    assert!(!root.exists(), "nothing written");
}

#[test]
fn port_in_use_is_one_line_error() {
    let dir = TempDir::new("express");
    let script = dir.path().join("hello.wsgi");
    write_file(&script, HELLO.as_bytes());
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let root = dir.path().join("root");
    let out = express(&[
        "start-server",
        script.to_str().unwrap(),
        "--port",
        &port,
        "--server-root",
        root.to_str().unwrap(),
    ]);
    assert_error(
        &out,
        &format!("port {port} is in use: choose another with --port"),
    );
    assert!(!root.exists(), "nothing written");
}

#[test]
fn venv_of_another_python_is_one_line_error() {
    let dir = TempDir::new("express");
    let script = dir.path().join("hello.wsgi");
    write_file(&script, HELLO.as_bytes());
    let venv = dir.path().join("oldvenv");
    write_file(
        &venv.join("pyvenv.cfg"),
        b"home = /opt/python3.9/bin\ninclude-system-site-packages = false\nversion = 3.9.2\n",
    );
    let root = dir.path().join("root");
    let out = express(&[
        "setup-server",
        script.to_str().unwrap(),
        "--python-home",
        venv.to_str().unwrap(),
        "--server-root",
        root.to_str().unwrap(),
    ]);
    assert_error(&out, "made with Python 3.9.2");
    assert!(stderr_of(&out).contains("/usr/bin/python3 -m venv"));
    // The same through VIRTUAL_ENV.
    let out = Command::new(EXPRESS)
        .args(["setup-server", script.to_str().unwrap(), "--server-root"])
        .arg(&root)
        .env("VIRTUAL_ENV", &venv)
        .output()
        .unwrap();
    assert_error(&out, "made with Python 3.9.2");
}

#[test]
fn unknown_option_and_command_are_one_line_errors() {
    assert_error(
        &express(&["start-server", "x.wsgi", "--bogus"]),
        "unknown option --bogus",
    );
    assert_error(&express(&["serve"]), "unknown command");
}

#[test]
fn python_home_www_data_cannot_read_is_one_line_error() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only a server started as root runs its application as www-data");
        return;
    }
    let dir = TempDir::new("express");
    let script = dir.path().join("hello.wsgi");
    write_file(&script, HELLO.as_bytes());
    // A venv inside a directory only its owner (root) may enter, as one under /root.
    let private = dir.path().join("private");
    let venv = private.join("venv");
    write_file(
        &venv.join("pyvenv.cfg"),
        b"home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n",
    );
    fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let root = dir.path().join("root");
    let out = express(&[
        "setup-server",
        script.to_str().unwrap(),
        "--python-home",
        venv.to_str().unwrap(),
        "--server-root",
        root.to_str().unwrap(),
    ]);
    assert_error(
        &out,
        &format!(
            "the python home {} cannot be read by user www-data",
            venv.display()
        ),
    );
    assert!(
        stderr_of(&out).contains(&format!("{} is mode 700", private.display())),
        "{}",
        stderr_of(&out)
    );
    assert!(!root.exists(), "nothing written");
    // Readable once others may pass through.
    fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let out = express(&[
        "setup-server",
        script.to_str().unwrap(),
        "--python-home",
        venv.to_str().unwrap(),
        "--server-root",
        root.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
}
