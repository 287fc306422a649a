//! `mod_wsgi-express` options (src/bin/express/options.rs): `--help` of every command lists
//! its options; HTTPS end to end with a self-signed certificate (curl), `--https-only`
//! redirecting plain HTTP; name-based virtual hosts; the environment options (`--setenv`,
//! `--passenv` with `--envvars-script`, `--lang`, `--working-directory`, `--pid-file`) seen
//! by the application; static files, `--compress-responses`, `--server-status` and the
//! access log of a real server; `--reload-on-changes` restarting the daemon when an
//! imported module changes; a configuration with every option that `apache2 -t` accepts;
//! one-line errors naming the option. (The line each option writes is checked
//! by the unit tests of src/bin/express/httpd_conf.rs.)

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};
use support::express::{Express, assert_error, express, free_port, stderr_of};
use support::{TempDir, write_file};

/// An application answering with its environ as `key=value` lines (str values only),
/// plus the process's LANG, LC_ALL, current directory and its own environment's FROM_ENVVARS.
const ENVIRON: &str = "import os\n\
def application(environ, start_response):\n\
\x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
\x20   items = {k: v for k, v in environ.items() if isinstance(v, str)}\n\
\x20   items['os.LANG'] = os.environ.get('LANG', '')\n\
\x20   items['os.LC_ALL'] = os.environ.get('LC_ALL', '')\n\
\x20   items['os.cwd'] = os.getcwd()\n\
\x20   return [''.join('%s=%s\\n' % kv for kv in sorted(items.items())).encode()]\n";

fn environ_app(dir: &TempDir) -> String {
    let script = dir.path().join("app/environ.wsgi");
    write_file(&script, ENVIRON.as_bytes());
    script.to_str().unwrap().to_string()
}

/// The value of `key` in an ENVIRON answer.
fn value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// Runs curl (bounded by --max-time) and returns its stdout; panics when it fails.
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .output()
        .expect("run curl (installed by `make deps`)");
    assert!(out.status.success(), "curl {args:?}: {}", stderr_of(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A self-signed certificate for localhost: (certificate, key).
fn certificate(dir: &Path) -> (String, String) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-days",
            "1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl (installed by `make deps`)");
    assert!(out.status.success(), "openssl: {}", stderr_of(&out));
    (cert.to_str().unwrap().into(), key.to_str().unwrap().into())
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn help_of_each_command_lists_its_options() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--help"],
            &[
                "start-server",
                "setup-server",
                "module-config",
                "module-location",
                "install-module",
            ],
        ),
        (
            &["start-server", "--help"],
            &[
                "--port",
                "--https-port",
                "--ssl-certificate-file",
                "--server-name",
                "--document-root",
                "--setenv",
                "--max-clients",
                "--graceful-timeout",
                "--log-directory",
                "--rotate-logs",
                "--envvars-script",
                "[default: 8000]",
            ],
        ),
        (
            &["setup-server", "--help"],
            &[
                "--server-root",
                "--https-only",
                "--compress-responses",
                "--server-status",
                "--trust-proxy-header",
                "--keep-alive-timeout",
            ],
        ),
        (&["module-config", "--help"], &["--module-path"]),
        (&["module-location", "--help"], &["--module-path"]),
        (
            &["install-module", "--help"],
            &["--module-path", "--libexecdir", "--mods-available"],
        ),
        (&["help", "start-server"], &["--https-port"]),
    ];
    for (args, expected) in cases {
        let out = express(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr_of(&out));
        let text = stdout_of(&out);
        for e in *expected {
            assert!(text.contains(e), "{args:?}: {e} not in\n{text}");
        }
    }
}

#[test]
fn https_serves_the_application_and_https_only_redirects_http() {
    let dir = TempDir::new("express-https");
    let script = environ_app(&dir);
    let (cert, key) = certificate(dir.path());
    let https_port = free_port().to_string();
    let e = Express::start(
        dir,
        &[
            &script,
            "--https-port",
            &https_port,
            "--ssl-certificate-file",
            &cert,
            "--ssl-certificate-key-file",
            &key,
            "--https-only",
        ],
    );
    let url = format!("https://127.0.0.1:{https_port}/some/path");
    let env = curl(&["--insecure", &url]);
    assert_eq!(
        value(&env, "wsgi.url_scheme"),
        Some("https"),
        "{env}\n{}",
        e.output()
    );
    assert_eq!(value(&env, "REQUEST_SCHEME"), Some("https"), "{env}");
    assert_eq!(
        value(&env, "SERVER_PORT"),
        Some(https_port.as_str()),
        "{env}"
    );
    assert_eq!(value(&env, "PATH_INFO"), Some("/some/path"), "{env}");
    // Plain HTTP is redirected to the same URL over HTTPS.
    let r = e.request("/some/path?q=1", &[]);
    assert_eq!(r.status, 302, "{}", e.output());
    assert_eq!(
        r.header("Location"),
        Some(format!("https://127.0.0.1:{https_port}/some/path?q=1").as_str())
    );
    assert!(e.output().contains(&format!(
        "Server URL (HTTPS) : https://127.0.0.1:{https_port}/"
    )));
}

#[test]
fn server_name_answers_its_names_only() {
    let dir = TempDir::new("express-names");
    let script = environ_app(&dir);
    let e = Express::start(
        dir,
        &[
            &script,
            "--server-name",
            "www.example.test",
            "--server-alias",
            "*.example.org",
        ],
    );
    let get = |host: &str| e.request("/", &[("Host", host)]);
    let r = get("www.example.test");
    assert_eq!(r.status, 200, "{}", e.output());
    assert_eq!(value(&r.text(), "SERVER_NAME"), Some("www.example.test"));
    assert_eq!(get("app.example.org").status, 200);
    assert_eq!(get("other.test").status, 403);
    // The parent domain of a www. name is redirected to it.
    let r = get("example.test");
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("Location"),
        Some(format!("http://www.example.test:{}/", e.port).as_str())
    );
    drop(e);

    // --allow-localhost: any name from this machine is still answered.
    let dir = TempDir::new("express-names");
    let script = environ_app(&dir);
    let e = Express::start(
        dir,
        &[
            &script,
            "--server-name",
            "example.test",
            "--allow-localhost",
        ],
    );
    assert_eq!(
        e.request("/", &[("Host", "other.test")]).status,
        200,
        "{}",
        e.output()
    );
}

#[test]
fn environment_options_reach_the_application() {
    let dir = TempDir::new("express-env");
    let script = environ_app(&dir);
    let envvars = dir.path().join("envvars.sh");
    write_file(&envvars, b"FROM_ENVVARS=sourced\nexport FROM_ENVVARS\n");
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    let pid_file = dir.path().join("run/httpd.pid");
    fs::create_dir(pid_file.parent().unwrap()).unwrap();
    let args = [
        script.as_str(),
        "--setenv",
        "GREETING",
        "hello there",
        "--passenv",
        "FROM_ENVVARS",
        "--passenv",
        "FROM_CALLER",
        "--envvars-script",
        envvars.to_str().unwrap(),
        "--lang",
        "C.UTF-8",
        "--working-directory",
        work.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
    ];
    let e = Express::start_with_env(dir, &args, &[("FROM_CALLER", "caller")]);
    let r = e.request("/", &[]);
    assert_eq!(r.status, 200, "{}", e.output());
    let env = r.text();
    assert_eq!(value(&env, "GREETING"), Some("hello there"), "{env}");
    assert_eq!(value(&env, "FROM_ENVVARS"), Some("sourced"), "{env}");
    assert_eq!(value(&env, "FROM_CALLER"), Some("caller"), "{env}");
    assert_eq!(value(&env, "os.LANG"), Some("C.UTF-8"), "{env}");
    assert_eq!(value(&env, "os.LC_ALL"), Some("C.UTF-8"), "{env}");
    assert_eq!(value(&env, "os.cwd"), work.to_str(), "{env}");
    let pid: u32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(support::cmdline_of(pid).contains("apache2"), "{pid}");
}

#[test]
fn static_files_compression_status_page_and_logs() {
    let dir = TempDir::new("express-static");
    let script = environ_app(&dir);
    let docroot = dir.path().join("htdocs");
    write_file(&docroot.join("robots.txt"), b"User-agent: *\n");
    write_file(&docroot.join("docs/index.html"), b"<p>docs</p>\n");
    let logs = dir.path().join("logs");
    let e = Express::start(
        dir,
        &[
            &script,
            "--document-root",
            docroot.to_str().unwrap(),
            "--directory-index",
            "index.html",
            "--compress-responses",
            "--server-status",
            "--log-directory",
            logs.to_str().unwrap(),
            "--access-log",
            "--rotate-logs",
        ],
    );
    // An existing file is served as it is; anything else goes to the application.
    let r = e.request("/robots.txt", &[]);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "User-agent: *\n"),
        "{}",
        e.output()
    );
    assert_eq!(e.request("/docs/", &[]).text(), "<p>docs</p>\n");
    let r = e.request("/app/path", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(value(&r.text(), "PATH_INFO"), Some("/app/path"));
    // Text responses are gzipped for a client that accepts it, and only then.
    let r = e.request("/app/path", &[("Accept-Encoding", "gzip")]);
    assert_eq!(
        r.header("Content-Encoding"),
        Some("gzip"),
        "{:?}",
        r.headers
    );
    assert_eq!(&r.body[..2], &[0x1f, 0x8b]);
    assert_eq!(e.request("/app/path", &[]).header("Content-Encoding"), None);
    let r = e.request("/server-status?auto", &[]);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("ServerMPM: event"), "{}", r.text());
    // rotatelogs names each log file with the time it was started.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let names: Vec<String> = fs::read_dir(&logs)
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let access = names.iter().find(|n| n.starts_with("access_log.20"));
        let text = access.map(|a| fs::read_to_string(logs.join(a)).unwrap_or_default());
        // Each line is written once its request is done, after the response: wait for the last.
        let logged = |t: &String| t.contains("\"GET /robots.txt HTTP/1.0\" 200") && t.contains("\"GET /server-status?auto HTTP/1.0\" 200");
        if text.as_ref().is_some_and(logged) {
            assert!(
                names.iter().any(|n| n.starts_with("error_log.20")),
                "{names:?}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no access log in {names:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn every_option_together_gives_a_configuration_apache_accepts() {
    let dir = TempDir::new("express-all");
    let script = environ_app(&dir);
    let (cert, key) = certificate(dir.path());
    let d = |name: &str| {
        let p = dir.path().join(name);
        fs::create_dir_all(&p).unwrap();
        p.to_str().unwrap().to_string()
    };
    let (docroot, logs, work, root) = (d("htdocs"), d("logs"), d("work"), d("root"));
    let envvars = dir.path().join("envvars.sh");
    write_file(&envvars, b"export A=1\n");
    let args = [
        "setup-server",
        &script,
        "--server-root",
        &root,
        "--port",
        "18765",
        "--https-port",
        "18766",
        "--ssl-certificate-file",
        &cert,
        "--ssl-certificate-key-file",
        &key,
        "--ssl-certificate-chain-file",
        &cert,
        "--https-only",
        "--server-name",
        "www.example.test",
        "--server-alias",
        "example.org",
        "--allow-localhost",
        "--document-root",
        &docroot,
        "--directory-index",
        "index.html",
        "--access-log",
        "--log-directory",
        &logs,
        "--log-level",
        "info",
        "--rotate-logs",
        "--error-log-name",
        "err.log",
        "--access-log-name",
        "acc.log",
        "--startup-log",
        "--setenv",
        "K",
        "v",
        "--passenv",
        "HOME",
        "--working-directory",
        &work,
        "--trust-proxy-header",
        "X-Forwarded-For",
        "--trust-proxy",
        "10.0.0.0/8",
        "--max-clients",
        "60",
        "--keep-alive-timeout",
        "3",
        "--socket-timeout",
        "30",
        "--header-buffer-size",
        "65536",
        "--limit-request-body",
        "1000",
        "--compress-responses",
        "--server-status",
        "--graceful-timeout",
        "5",
        "--shutdown-timeout",
        "6",
        "--startup-timeout",
        "7",
        "--connect-timeout",
        "8",
        "--inactivity-timeout",
        "9",
        "--restart-interval",
        "10",
        "--cpu-time-limit",
        "11",
        "--memory-limit",
        "2000000000",
        "--lang",
        "C.UTF-8",
        "--locale",
        "C.UTF-8",
        "--pid-file",
        &format!("{root}/other.pid"),
        "--reload-on-changes",
        "--envvars-script",
        envvars.to_str().unwrap(),
    ];
    let out = express(&args);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let conf = fs::read_to_string(format!("{root}/httpd.conf")).unwrap();
    let test = Command::new(format!("{root}/apachectl"))
        .arg("configtest")
        .output()
        .unwrap();
    assert!(test.status.success(), "{}\n{conf}", stderr_of(&test));
    assert!(
        conf.contains(
            " startup-timeout=7 inactivity-timeout=9 graceful-timeout=5 shutdown-timeout=6 \
         restart-interval=10 cpu-time-limit=11 memory-limit=2000000000 header-buffer-size=65536"
        ),
        "{conf}"
    );
    // apachectl: locale, envvars, working directory, startup log.
    let ctl = fs::read_to_string(format!("{root}/apachectl")).unwrap();
    for e in [
        "LANG='C.UTF-8'\n",
        &format!("cd '{work}' || exit 1\n"),
        &format!(" -E '{logs}/startup_log' -DFOREGROUND"),
    ] {
        assert!(ctl.contains(e), "{e:?} not in\n{ctl}");
    }
    let env = fs::read_to_string(format!("{root}/envvars")).unwrap();
    assert!(env.contains(&format!(". '{}'", envvars.display())), "{env}");
    let shown = stdout_of(&out);
    assert!(
        shown.contains(&format!(
            "Error Log File     : {logs}/err.log.<time started> (info)"
        )),
        "{shown}"
    );
}

#[test]
fn unknown_options_and_bad_values_are_one_line_errors() {
    let dir = TempDir::new("express-errors");
    let script = environ_app(&dir);
    let root = dir.path().join("root");
    let root = root.to_str().unwrap();
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--https-prot", "8443"],
            "unknown option --https-prot (did you mean --https-port?)",
        ),
        (&["--with-wdb"], "unknown option --with-wdb"),
        (
            &["--port", "http"],
            "invalid value 'http' for '--port <NUMBER>'",
        ),
        (&["--processes", "0"], "'--processes <NUMBER>'"),
        (
            &["--log-level", "loud"],
            "invalid value 'loud' for '--log-level <NAME>'",
        ),
        (
            &["--mount-point", "app"],
            "'--mount-point <URL-PATH>': must start with '/'",
        ),
        (
            &["--setenv", "1X", "v"],
            "invalid value '1X' for '--setenv'",
        ),
        (
            &["--https-port", "8443"],
            "--https-port needs --ssl-certificate-file and --ssl-certificate-key-file",
        ),
        (
            &[
                "--https-port",
                "8443",
                "--ssl-certificate-file",
                missing,
                "--ssl-certificate-key-file",
                missing,
            ],
            &format!("--ssl-certificate-file {missing} is not a readable file"),
        ),
        (
            &["--server-alias", "x.test"],
            "--server-alias needs --server-name",
        ),
        (
            &["--embedded-mode", "--graceful-timeout", "5"],
            "the argument '--embedded-mode' cannot be used with '--graceful-timeout <SECONDS>'",
        ),
        (&["--document-root", missing], "--document-root"),
    ];
    for (args, expected) in cases {
        let mut argv = vec!["setup-server", &script, "--server-root", root];
        argv.extend_from_slice(args);
        assert_error(&express(&argv), expected);
        assert!(!Path::new(root).exists(), "{args:?}: nothing written");
    }
}

#[test]
fn reload_on_changes_restarts_the_process_when_an_imported_module_changes() {
    let dir = TempDir::new("express-reload");
    let code = dir.path().join("app");
    write_file(&code.join("helper.py"), b"VALUE = 'one'\n");
    let script = code.join("app.wsgi");
    write_file(
        &script,
        b"import os\nimport helper\n\
          def application(environ, start_response):\n\
          \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
          \x20   return [('%s %d' % (helper.VALUE, os.getpid())).encode()]\n",
    );
    let e = Express::start(
        dir,
        &[
            script.to_str().unwrap(),
            "--python-path",
            code.to_str().unwrap(),
            "--reload-on-changes",
        ],
    );
    let first = e.request("/", &[]).text();
    assert!(first.starts_with("one "), "{first}\n{}", e.output());
    // A change to the imported module (not the script) restarts the daemon process.
    sleep(Duration::from_millis(1100)); // a new mtime, whatever the filesystem's resolution
    write_file(&code.join("helper.py"), b"VALUE = 'two'\n");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = e.request("/", &[]);
        if r.status == 200 && r.text().starts_with("two ") {
            assert_ne!(r.text()[4..], first[4..], "same process");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not reloaded: {r:?}\n{}",
            e.output()
        );
        sleep(Duration::from_millis(200));
    }
}
