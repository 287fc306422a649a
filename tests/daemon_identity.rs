//! The daemon process's identity and environment from WSGIDaemonProcess options: user= /
//! group=, home= and the default working directory, display-name=, umask=, lang= / locale=,
//! python-path= and python-home=.
//!
//! Uses existing accounts: `nobody` / `nogroup` (65534, home /nonexistent) and `daemon`
//! (uid 1, gid 1, home /usr/sbin, which exists).

mod support;

use std::collections::BTreeMap;
use support::{Server, TempDir, cmdline_of, configtest, py_str, server};

fn pid(env: &BTreeMap<String, String>) -> u32 {
    env["pid"].parse().expect("pid")
}

fn one_group(options: &str) -> Server {
    server()
        .app("daemon.wsgi")
        .config(&format!(
            "WSGIDaemonProcess g threads=2 {options}\n\
             WSGIScriptAlias /d @DIR@/daemon.wsgi process-group=g\n"
        ))
        .start()
}

#[test]
fn user_and_group_set_the_daemon_identity() {
    let s = server()
        .app("daemon.wsgi")
        .config(
            "WSGIDaemonProcess named user=nobody group=nogroup home=@DIR@ threads=2\n\
             WSGIDaemonProcess numeric user=#65534 group=#65534 home=@DIR@ threads=2\n\
             WSGIScriptAlias /named @DIR@/daemon.wsgi process-group=named\n\
             WSGIScriptAlias /numeric @DIR@/daemon.wsgi process-group=numeric\n",
        )
        .start();
    for path in ["/named/info", "/numeric/info"] {
        let env = s.get_kv(path);
        for key in ["uid", "euid", "gid", "egid"] {
            assert_eq!(env[key], "65534", "{path} {key}: {env:#?}");
        }
        // Supplementary groups are the user's (initgroups), not root's.
        assert_eq!(env["groups"], "[65534]", "{path}: {env:#?}");
    }
    s.expect_log("Starting process 'named' with uid=65534, gid=65534 and threads=2.");
    s.expect_log("Starting process 'numeric' with uid=65534, gid=65534 and threads=2.");
}

#[test]
fn without_user_the_daemon_runs_as_apaches_user() {
    let s = one_group("");
    let env = s.get_kv("/d/info");
    assert_eq!((env["uid"].as_str(), env["gid"].as_str()), ("33", "33"));
    // HOME is set to the user's home directory (www-data: /var/www)...
    assert_eq!(env["HOME"], "'/var/www'");
    // ...but the working directory is left as Apache's, the user being Apache's own.
    let apache_cwd = std::env::current_dir().unwrap();
    assert_eq!(env["cwd"], py_str(&apache_cwd.display().to_string()));
}

#[test]
fn default_working_directory_is_the_users_home_when_user_differs() {
    let s = one_group("user=daemon group=daemon");
    let env = s.get_kv("/d/info");
    assert_eq!((env["uid"].as_str(), env["gid"].as_str()), ("1", "1"));
    assert_eq!(env["cwd"], "'/usr/sbin'");
    assert_eq!(env["HOME"], "'/usr/sbin'");
}

#[test]
fn user_whose_home_does_not_exist_cannot_start_without_home_option() {
    // nobody's home is /nonexistent: the C module refuses to run the daemon there and retries
    // after a delay; meanwhile its requests time out (socket-timeout=2 keeps that short).
    let s = one_group("user=nobody group=nogroup socket-timeout=2");
    s.expect_log(
        "Unable to change working directory to home directory '/nonexistent' for uid=65534.",
    );
    s.expect_log("Failure to configure the daemon process correctly");
    let r = s.get("/d/info");
    assert_eq!(r.status, 504, "{}", s.error_log());
    s.expect_log(&format!(
        "Timeout when reading response headers from daemon process 'g': {}/daemon.wsgi",
        s.dir().display()
    ));
}

#[test]
fn home_sets_the_working_directory_and_joins_sys_path() {
    let s = one_group("home=@DIR@/var");
    let env = s.get_kv("/d/info");
    let home = s.var_dir().display().to_string();
    assert_eq!(env["cwd"], py_str(&home));
    // The home directory is also put first on sys.path.
    assert!(
        env["sys.path"].starts_with(&format!("[{}, ", py_str(&home))),
        "{}",
        env["sys.path"]
    );
    // HOME stays the user's home.
    assert_eq!(env["HOME"], "'/var/www'");
}

#[test]
fn display_name_sets_the_process_title() {
    let s = server()
        .app("daemon.wsgi")
        .config(
            "WSGIDaemonProcess grp display-name=%{GROUP} threads=2\n\
             WSGIDaemonProcess custom display-name=wsgi-custom threads=2\n\
             WSGIDaemonProcess plain threads=2\n\
             WSGIDaemonProcess long display-name=a-display-name-longer-than-argv-zero threads=2\n\
             WSGIScriptAlias /grp @DIR@/daemon.wsgi process-group=grp\n\
             WSGIScriptAlias /custom @DIR@/daemon.wsgi process-group=custom\n\
             WSGIScriptAlias /plain @DIR@/daemon.wsgi process-group=plain\n\
             WSGIScriptAlias /long @DIR@/daemon.wsgi process-group=long\n",
        )
        .start();
    for (path, title) in [
        ("/grp/info", "(wsgi:grp)"),
        ("/custom/info", "wsgi-custom"),
        ("/plain/info", "/usr/sbin/apache2"),
    ] {
        let env = s.get_kv(path);
        // As the app sees its own argv[0], and as ps sees it in /proc/PID/cmdline.
        assert_eq!(env["cmdline"], py_str(title), "{path}");
        let seen = cmdline_of(pid(&env));
        assert!(seen.starts_with(title), "{path}: cmdline {seen:?}");
    }
    // argv[0] is overwritten in place: a name longer than Apache's argv[0]
    // ("/usr/sbin/apache2", 17 bytes) is cut to that length by the C module.
    let env = s.get_kv("/long/info");
    let shown = env["cmdline"].trim_matches('\'').to_string();
    assert!(
        shown.len() >= 17 && "a-display-name-longer-than-argv-zero".starts_with(&shown),
        "{shown:?}"
    );
}

#[test]
fn umask_option_sets_the_process_umask() {
    let s = server()
        .app("daemon.wsgi")
        .config(
            "WSGIDaemonProcess masked umask=0007 threads=2\n\
             WSGIDaemonProcess other umask=027 threads=2\n\
             WSGIScriptAlias /masked @DIR@/daemon.wsgi process-group=masked\n\
             WSGIScriptAlias /other @DIR@/daemon.wsgi process-group=other\n",
        )
        .start();
    assert_eq!(s.get_kv("/masked/info")["umask"], "'0o7'");
    assert_eq!(s.get_kv("/other/info")["umask"], "'0o27'");
}

#[test]
fn lang_and_locale_set_the_environment() {
    let s = server()
        .app("daemon.wsgi")
        .config(
            "WSGIDaemonProcess loc lang=en_US.UTF-8 locale=C.UTF-8 threads=2\n\
             WSGIDaemonProcess plain threads=2\n\
             WSGIScriptAlias /loc @DIR@/daemon.wsgi process-group=loc\n\
             WSGIScriptAlias /plain @DIR@/daemon.wsgi process-group=plain\n",
        )
        .start();
    let env = s.get_kv("/loc/info");
    assert_eq!(env["LANG"], "'en_US.UTF-8'");
    assert_eq!(env["LC_ALL"], "'C.UTF-8'");
    // locale= is also applied with setlocale(): Python sees a UTF-8 locale.
    assert_eq!(env["preferred_encoding"], "'UTF-8'");
    // Without them the daemon inherits Apache's environment (the harness starts it with
    // LANG=C and no LC_ALL).
    let env = s.get_kv("/plain/info");
    assert_eq!(env["LANG"], "'C'");
    assert_eq!(env["LC_ALL"], "None");
}

#[test]
fn python_path_adds_directories_to_sys_path() {
    let s = server()
        .app("daemon.wsgi")
        .file("pp1/venv_only_module.py", b"VALUE = 'from-python-path'\n")
        .file("pp2/other.py", b"")
        .config(
            "WSGIDaemonProcess g python-path=@DIR@/pp1:@DIR@/pp2 threads=2\n\
             WSGIScriptAlias /d @DIR@/daemon.wsgi process-group=g\n",
        )
        .start();
    let env = s.get_kv("/d/info");
    let d = s.dir().display().to_string();
    let path = &env["sys.path"];
    for dir in [format!("{d}/pp1"), format!("{d}/pp2")] {
        assert!(path.contains(&py_str(&dir)), "{dir} not in {path}");
    }
    // Added in front of the standard library, in the order given.
    assert!(
        path.starts_with(&format!(
            "[{}, {}, ",
            py_str(&format!("{d}/pp1")),
            py_str(&format!("{d}/pp2"))
        )),
        "{path}"
    );
    assert_eq!(env["venv_only_module"], "'from-python-path'");
}

#[test]
fn python_home_selects_a_virtual_environment() {
    let venv_dir = TempDir::new("venv");
    let venv = support::make_venv(venv_dir.path());
    let s = one_group(&format!("python-home={}", venv.display()));
    let env = s.get_kv("/d/info");
    let v = venv.display().to_string();
    assert_eq!(env["sys.prefix"], py_str(&v));
    assert_eq!(env["venv_only_module"], "'from-venv'");
    let path = &env["sys.path"];
    assert!(
        path.contains(&py_str(&format!("{v}/lib/python3.11/site-packages"))),
        "{path}"
    );
    // A venv without system site packages does not see Debian's dist-packages.
    assert!(!path.contains("/usr/lib/python3/dist-packages"), "{path}");
    drop(s);
    drop(venv_dir);
}

#[test]
fn running_the_daemon_as_root_is_refused() {
    for user in ["root", "#0"] {
        let (ok, out) = configtest(&format!("WSGIDaemonProcess g user={user}\n"));
        assert!(!ok, "user={user} accepted:\n{out}");
        assert!(
            out.contains("Syntax error on line 1 of @DIR@/test.conf:")
                && out.contains("WSGI process blocked from running as root."),
            "user={user}:\n{out}"
        );
    }
}
