//! The troubleshooting cases of Flask's mod_wsgi deployment guide, each as a
//! user meets it, and the remedies the guide gives (see the README's
//! Troubleshooting section).

mod support;

use std::os::unix::fs::PermissionsExt;
use support::{apps_dir, server};

fn app(name: &str) -> Vec<u8> {
    std::fs::read(apps_dir().join("troubleshooting").join(name)).unwrap()
}

/// "application does not run, errorlog shows SystemExit ignored": an
/// unguarded sys.exit() (or a server's run() that exits) at import.
#[test]
fn system_exit_at_import_is_logged_as_ignored_and_the_process_lives() {
    let s = server()
        .app("sys_exit.wsgi")
        .app("hello.wsgi")
        .config("WSGIScriptAlias /exit @DIR@/sys_exit.wsgi\nWSGIScriptAlias /hello @DIR@/hello.wsgi\n")
        .start();
    assert_eq!(s.get("/exit").status, 500);
    s.expect_log("SystemExit exception raised by WSGI script");
    s.expect_log("ignored.");
    assert_eq!(s.get("/hello").status, 200);
}

/// "application dies with an error on print": restricted stdout, and both remedies.
#[test]
fn print_with_restricted_stdout_and_the_two_remedies() {
    let restricted = server()
        .file("print.wsgi", &app("print_restricted.wsgi"))
        .file("redirected.wsgi", &app("print_redirected.wsgi"))
        .config("WSGIRestrictStdout On\nWSGIScriptAlias /print @DIR@/print.wsgi\nWSGIScriptAlias /redirected @DIR@/redirected.wsgi\n")
        .start();
    assert_eq!(restricted.get("/print").status, 500);
    restricted.expect_log("OSError: sys.stdout access restricted by mod_wsgi");
    // Remedy 2: sys.stdout = sys.stderr in the .wsgi file.
    let r = restricted.get("/redirected");
    assert_eq!((r.status, r.text().as_str()), (200, "printed\n"));
    restricted.expect_log("marker-print-redirected");

    // Remedy 1: WSGIRestrictStdout Off (also the default): print() goes to the error log.
    let open = server()
        .file("print.wsgi", &app("print_restricted.wsgi"))
        .config("WSGIRestrictStdout Off\nWSGIScriptAlias /print @DIR@/print.wsgi\n")
        .start();
    let r = open.get("/print");
    assert_eq!((r.status, r.text().as_str()), (200, "printed\n"));
    open.expect_log("marker-print-from-app");
}

/// "application gives permission errors": the daemon runs as a user who may
/// not read what the application needs; the log names the path.
#[test]
fn daemon_as_the_wrong_user_logs_the_permission_error_with_the_path() {
    let s = server()
        .file("read_secret.wsgi", &app("read_secret.wsgi"))
        .file("secret.txt", b"secret\n")
        .config(
            "WSGIDaemonProcess wrong user=nobody group=nogroup home=@DIR@ threads=2\n\
             WSGIDaemonProcess right threads=2\n\
             WSGIScriptAlias /wrong @DIR@/read_secret.wsgi process-group=wrong application-group=%{GLOBAL}\n\
             WSGIScriptAlias /right @DIR@/read_secret.wsgi process-group=right application-group=%{GLOBAL}\n",
        )
        .start();
    // Readable by Apache's user (www-data, the default daemon user) only.
    let secret = s.dir().join("secret.txt");
    let www_data = std::process::Command::new("chown").args(["www-data", secret.to_str().unwrap()]).status().unwrap();
    assert!(www_data.success());
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();

    assert_eq!(s.get("/wrong").status, 500);
    s.expect_log(&format!("PermissionError: [Errno 13] Permission denied: '{}'", secret.display()));
    // The remedy: run the group as the user who owns the files (here Apache's user).
    let r = s.get("/right");
    assert_eq!((r.status, r.text().as_str()), (200, "secret\n"));
}

/// "accessing resources gives IO errors": a single-file application
/// symlinked into a directory on sys.path finds its resources relative to
/// the link; putting its own folder on the path works.
#[test]
fn symlinked_single_file_app_misses_its_resources_and_its_folder_on_the_path_works() {
    let files = |b: support::ServerBuilder| {
        b.file("resource.wsgi", &app("resource.wsgi"))
            .file("realapp/resapp.py", &app("resapp.py"))
            .file("realapp/data.txt", b"resource-ok\n")
            .file("site/.keep", b"")
    };
    let linked = files(server()).config("WSGIPythonPath @DIR@/site\nWSGIScriptAlias /res @DIR@/resource.wsgi\n").start();
    std::os::unix::fs::symlink(linked.dir().join("realapp/resapp.py"), linked.dir().join("site/resapp.py")).unwrap();
    assert_eq!(linked.get("/res").status, 500);
    linked.expect_log(&format!("FileNotFoundError: [Errno 2] No such file or directory: '{}/site/data.txt'", linked.dir().display()));

    let folder = files(server()).config("WSGIPythonPath @DIR@/realapp\nWSGIScriptAlias /res @DIR@/resource.wsgi\n").start();
    let r = folder.get("/res");
    assert_eq!((r.status, r.text().as_str()), (200, "resource-ok\n"));
}

/// The guide's `WSGIScriptReloading On` inside the application's <Directory>.
#[test]
fn script_reloading_on_in_the_directory_section_reloads_a_changed_script() {
    let s = server()
        .app("state.wsgi")
        .config("WSGIScriptAlias /app @DIR@/state.wsgi\n<Directory @DIR@>\n  WSGIScriptReloading On\n  Require all granted\n</Directory>\n")
        .start();
    assert_eq!(s.get_kv("/app")["version"], "'v1'");
    let path = s.dir().join("state.wsgi");
    let text = std::fs::read_to_string(&path).unwrap().replace("VERSION = 'v1'", "VERSION = 'v2'");
    std::fs::write(&path, text).unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(10)).unwrap();
    assert_eq!(s.get_kv("/app")["version"], "'v2'");
}
