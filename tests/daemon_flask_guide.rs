//! Flask's mod_wsgi deployment guide (seed/mod_wsgi-deployment.rst), as written, in shape:
//! a `<VirtualHost>` with a daemon group running as another user, `WSGIScriptAlias /` to
//! `yourapplication.wsgi`, and a `<Directory>` holding WSGIProcessGroup,
//! `WSGIApplicationGroup %{GLOBAL}` and the access lines. The app is a small Flask package
//! (Debian's python3-flask, installed system-wide) in its own directory, put on sys.path by
//! the .wsgi as the guide shows. Variants: a venv as python-home=, and the guide's
//! `activate_this.py` recipe in its Python 3 form.
//!
//! The guide's user1/group1 are played by the existing `daemon` account (uid 1, gid 1,
//! home /usr/sbin).

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use support::{Server, TempDir, apps_dir, parse_kv, py_str, server, write_file};

const USER: &str = "daemon";
const UID: &str = "1";

/// `/var/www/yourapplication` of the guide: a directory of its own holding the package.
fn application_dir() -> TempDir {
    let dir = TempDir::new("yourapplication");
    let pkg = std::fs::read(apps_dir().join("flask_guide/yourapplication/__init__.py")).unwrap();
    write_file(&dir.path().join("yourapplication/__init__.py"), &pkg);
    dir
}

/// Writes `yourapplication.wsgi` as in the guide's "Creating a .wsgi file" section, with
/// the application directory patched into sys.path first; `prologue` goes on top.
fn write_wsgi(app_dir: &Path, prologue: &str) {
    let text = format!(
        "{prologue}import sys\n\
         sys.path.insert(0, '{}')\n\
         \n\
         from yourapplication import app as application\n",
        app_dir.display()
    );
    write_file(&app_dir.join("yourapplication.wsgi"), text.as_bytes());
}

/// Like Debian's apache2.conf: the file system is closed, so the `<Directory>` block's
/// access lines are what opens the application directory.
const CLOSED_ROOT: &str = "<Directory />\n    Require all denied\n</Directory>\n";

/// The guide's Apache configuration, after `CLOSED_ROOT`.
fn guide_config(app_dir: &Path, daemon_options: &str, access: &str) -> String {
    format!(
        "{CLOSED_ROOT}{}",
        guide_vhost(app_dir, daemon_options, access)
    )
}

/// The guide's `<VirtualHost>` block.
fn guide_vhost(app_dir: &Path, daemon_options: &str, access: &str) -> String {
    let app = app_dir.display();
    format!(
        "<VirtualHost *:@PORT@>\n\
         \x20   ServerName example.com\n\
         \n\
         \x20   WSGIDaemonProcess yourapplication user={USER} group={USER} threads=5{daemon_options}\n\
         \x20   WSGIScriptAlias / {app}/yourapplication.wsgi\n\
         \n\
         \x20   <Directory {app}>\n\
         \x20       WSGIProcessGroup yourapplication\n\
         \x20       WSGIApplicationGroup %{{GLOBAL}}\n\
         {access}\
         \x20   </Directory>\n\
         </VirtualHost>\n"
    )
}

const REQUIRE: &str = "        Require all granted\n";
const ORDER_ALLOW: &str = "        Order deny,allow\n        Allow from all\n";

fn whoami(s: &Server) -> BTreeMap<String, String> {
    let r = s.get("/whoami");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    parse_kv(&r.text())
}

/// The routes of the Flask app answer, in the daemon group, as the configured user.
fn check_app(s: &Server) -> BTreeMap<String, String> {
    let r = s.get("/");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    assert_eq!(r.text(), "Hello from yourapplication");
    assert!(
        r.header("Content-Type")
            .is_some_and(|v| v.starts_with("text/html")),
        "{:?}",
        r.headers
    );
    let r = s.get("/hello/mod_wsgi");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, mod_wsgi!"));
    let r = s.request(
        "POST",
        "/echo",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"x=posted+value",
    );
    assert_eq!((r.status, r.text().as_str()), (200, "echo=posted value"));
    // Flask's own 404 for an unknown route, passed through.
    assert_eq!(s.get("/no/such/route").status, 404);

    let who = whoami(s);
    assert_eq!(
        (who["uid"].as_str(), who["gid"].as_str()),
        (UID, UID),
        "{who:#?}"
    );
    assert_eq!(who["process_group"], "'yourapplication'");
    assert_eq!(who["application_group"], "''");
    who
}

#[test]
fn guide_configuration_with_require_all_granted_serves_the_flask_app() {
    let app_dir = application_dir();
    write_wsgi(app_dir.path(), "");
    let s = server()
        .config(&guide_config(app_dir.path(), "", REQUIRE))
        .start();
    let who = check_app(&s);
    // Debian's system-wide Flask.
    assert!(
        who["flask_file"].starts_with("'/usr/lib/python3/dist-packages/flask/"),
        "{who:#?}"
    );
    assert_eq!(who["sys.prefix"], "'/usr'");
    s.expect_log("Starting process 'yourapplication' with uid=1, gid=1 and threads=5.");
    // Requests by the virtual host's name reach it too.
    let r = s.raw(b"GET /hello/vhost HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, vhost!"));
}

#[test]
fn guide_configuration_with_order_allow_works_when_access_compat_is_loaded() {
    let app_dir = application_dir();
    write_wsgi(app_dir.path(), "");
    // The guide's Apache 2.2 lines are accepted with mod_access_compat, and serve the app
    // where Apache 2.4's authorization has not closed the file system (or, as Debian's
    // /var/www, an enclosing directory is granted).
    let s = server()
        .module("access_compat")
        .config(&guide_vhost(app_dir.path(), "", ORDER_ALLOW))
        .start();
    check_app(&s);
    let s = server()
        .module("access_compat")
        .config(&format!(
            "{CLOSED_ROOT}<Directory /tmp>\n    Require all granted\n</Directory>\n{}",
            guide_vhost(app_dir.path(), "", ORDER_ALLOW)
        ))
        .start();
    check_app(&s);
}

#[test]
fn order_allow_lines_do_not_open_a_directory_closed_by_require() {
    // Apache 2.4 mixing rules: an inherited `Require all denied` still applies next to
    // `Order deny,allow` / `Allow from all`, so the guide's lines alone get 403 under a
    // closed root; `Require all granted` is the 2.4 form that works there.
    let app_dir = application_dir();
    write_wsgi(app_dir.path(), "");
    let s = server()
        .module("access_compat")
        .config(&guide_config(app_dir.path(), "", ORDER_ALLOW))
        .start();
    assert_eq!(s.get("/").status, 403);
}

#[test]
fn order_allow_lines_need_access_compat() {
    let app_dir = application_dir();
    let (ok, out) = server()
        .config(&guide_config(app_dir.path(), "", ORDER_ALLOW))
        .configtest();
    assert!(!ok, "{out}");
    assert!(out.contains("Invalid command 'Order'"), "{out}");
}

#[test]
fn without_access_lines_the_closed_file_system_gives_403() {
    let app_dir = application_dir();
    write_wsgi(app_dir.path(), "");
    let s = server()
        .config(&guide_config(app_dir.path(), "", ""))
        .start();
    assert_eq!(s.get("/").status, 403);
}

/// A venv at `<dir>/venv` holding a module that only it has.
fn make_venv(dir: &Path, system_site_packages: bool) -> std::path::PathBuf {
    let venv = dir.join("venv");
    let mut cmd = std::process::Command::new("/usr/bin/python3");
    cmd.args(["-m", "venv", "--without-pip"]);
    if system_site_packages {
        cmd.arg("--system-site-packages");
    }
    let status = cmd.arg(&venv).status().expect("run python3 -m venv");
    assert!(status.success(), "python3 -m venv failed");
    write_file(
        &venv.join("lib/python3.11/site-packages/venv_only_module.py"),
        b"VALUE = 'from-venv'\n",
    );
    venv
}

#[test]
fn flask_app_runs_from_a_virtual_environment_given_as_python_home() {
    let app_dir = application_dir();
    write_wsgi(app_dir.path(), "");
    // Flask comes from the system through --system-site-packages (no network in tests).
    let venv = make_venv(app_dir.path(), true);
    let s = server()
        .config(&guide_config(
            app_dir.path(),
            &format!(" python-home={}", venv.display()),
            REQUIRE,
        ))
        .start();
    let who = check_app(&s);
    assert_eq!(who["sys.prefix"], py_str(&venv.display().to_string()));
    assert_eq!(who["venv_only_module"], "'from-venv'");
    assert!(
        who["flask_file"].starts_with("'/usr/lib/python3/dist-packages/flask/"),
        "{who:#?}"
    );
}

#[test]
fn flask_app_runs_from_a_virtual_environment_activated_in_the_wsgi_file() {
    let app_dir = application_dir();
    // Without system site packages: only activate_this.py brings the venv in, and the
    // interpreter's own paths (with Debian's Flask) stay behind it.
    let venv = make_venv(app_dir.path(), false);
    let activate = std::fs::read(apps_dir().join("flask_guide/activate_this.py")).unwrap();
    write_file(&venv.join("bin/activate_this.py"), &activate);
    // The guide's virtualenv section, in its Python 3 form, at the top of the .wsgi.
    let prologue = format!(
        "activate_this = '{}/bin/activate_this.py'\n\
         exec(open(activate_this).read(), {{'__file__': activate_this}})\n\n",
        venv.display()
    );
    write_wsgi(app_dir.path(), &prologue);
    let s = server()
        .config(&guide_config(app_dir.path(), "", REQUIRE))
        .start();
    let who = check_app(&s);
    let v = venv.display().to_string();
    assert_eq!(who["venv_only_module"], "'from-venv'");
    assert_eq!(who["sys.prefix"], py_str(&v));
    assert_eq!(who["VIRTUAL_ENV"], py_str(&v));
}
