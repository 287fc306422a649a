//! The access-control scripts: WSGIAuthUserScript as the "wsgi" provider of Basic and
//! Digest authentication, WSGIAuthGroupScript behind `Require wsgi-group`, and
//! WSGIAccessScript. Requests go through curl, which does the Basic and Digest handshakes.

mod support;

use support::{Server, server};

fn access_server() -> Server {
    let auth = |kind: &str, extra: &str| {
        format!(
            "  AuthType {kind}\n  AuthName \"realm1\"\n  Auth{kind}Provider wsgi\n  \
             WSGIAuthUserScript @DIR@/access.wsgi{extra}\n  Require valid-user\n"
        )
    };
    server()
        .app("access.wsgi")
        .module("authn_core")
        .module("authz_user")
        .module("auth_basic")
        .module("auth_digest")
        .config(&format!(
            "WSGIScriptAlias /app @DIR@/access.wsgi\n\
             <Location /app/basic>\n{}</Location>\n\
             <Location /app/grouped>\n{}</Location>\n\
             <Location /app/digest>\n{}</Location>\n\
             <Location /app/groups>\n  AuthType Basic\n  AuthName \"realm1\"\n  AuthBasicProvider wsgi\n  \
             WSGIAuthUserScript @DIR@/access.wsgi\n  WSGIAuthGroupScript @DIR@/access.wsgi\n  \
             Require wsgi-group staff admins\n</Location>\n\
             <Location /app/unscripted>\n  AuthType Basic\n  AuthName \"realm1\"\n  AuthBasicProvider wsgi\n  \
             Require valid-user\n</Location>\n\
             <Location /app/hosts>\n  WSGIAccessScript @DIR@/access.wsgi\n</Location>\n",
            auth("Basic", ""),
            auth("Basic", " application-group=auth"),
            auth("Digest", ""),
        ))
        .start()
}

/// Status and body of a GET through curl with `args` (credentials, --digest).
fn curl(s: &Server, path: &str, args: &[&str]) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--noproxy", "*"])
        .args(args)
        .arg(format!("http://127.0.0.1:{}{path}", s.port()))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("curl printed the status");
    (status.parse().expect("a status code"), body.to_string())
}

#[test]
fn check_password_decides_basic_authentication() {
    let s = access_server();
    assert_eq!(curl(&s, "/app/basic", &[]).0, 401, "no credentials: the challenge");
    assert_eq!(
        curl(&s, "/app/basic", &["-u", "alice:secret"]),
        (200, "user=alice auth=Basic\n".into())
    );
    // False: wrong password; None: no such user. httpd logs which.
    assert_eq!(curl(&s, "/app/basic", &["-u", "alice:wrong"]).0, 401);
    s.expect_log("user alice: authentication failure for \"/app/basic\": Password Mismatch");
    assert_eq!(curl(&s, "/app/basic", &["-u", "nobody:secret"]).0, 401);
    s.expect_log("user nobody not found: /app/basic");
    // User name and password arrive as str, decoded from UTF-8.
    assert_eq!(curl(&s, "/app/basic", &["-u", "unicode:p\u{e4}ss"]).0, 200);
    // Anything but True, False, None or a str is an error: 500, and the reason logged.
    assert_eq!(curl(&s, "/app/basic", &["-u", "odd:x"]).0, 500);
    s.expect_log("TypeError: Basic auth provider must return True, False None or user name as string");
    assert_eq!(curl(&s, "/app/basic", &["-u", "broken:x"]).0, 500);
    s.expect_log("RuntimeError: marker-check-password");
    let log = s.error_log();
    assert!(log.contains("Exception occurred processing WSGI script"), "{log}");
    assert!(log.contains("in check_password"), "traceback: {log}");
}

#[test]
fn auth_scripts_run_in_the_main_interpreter_unless_told_otherwise() {
    let s = access_server();
    // A str answer grants access under that name; this script answers with its group.
    assert_eq!(curl(&s, "/app/basic", &["-u", "whoami:x"]).1, "user=group= auth=Basic\n");
    assert_eq!(curl(&s, "/app/grouped", &["-u", "whoami:x"]).1, "user=group=auth auth=Basic\n");
}

#[test]
fn get_realm_hash_decides_digest_authentication() {
    let s = access_server();
    let digest = |user: &str| curl(&s, "/app/digest", &["--digest", "-u", user]);
    assert_eq!(digest("alice:secret"), (200, "user=alice auth=Digest\n".into()));
    assert_eq!(digest("bob:secret").0, 200, "a bytes hash");
    assert_eq!(digest("alice:wrong").0, 401);
    assert_eq!(digest("nobody:secret").0, 401);
    s.expect_log("user `nobody' in realm `realm1' not found: /app/digest");
    assert_eq!(digest("broken:x").0, 500);
    s.expect_log("RuntimeError: marker-realm-hash");
}

#[test]
fn require_wsgi_group_asks_groups_for_user() {
    let s = access_server();
    // Any of the required groups will do; names may be str or bytes, in any sequence.
    assert_eq!(curl(&s, "/app/groups", &["-u", "alice:secret"]).0, 200);
    assert_eq!(curl(&s, "/app/groups", &["-u", "bob:secret"]).0, 401);
    s.expect_log("Authorization of user 'bob' to access '/app/groups' failed. User is not a member of designated groups.");
    // Names compare without regard to case.
    assert_eq!(curl(&s, "/app/groups", &["-u", "erin:secret"]).0, 200);
    assert_eq!(curl(&s, "/app/groups", &["-u", "dave:secret"]).0, 401);
    s.expect_log("Authorization of user 'dave' to access '/app/groups' failed. User is not a member of any groups.");
    // Not a sequence of names: refused, and the reason logged.
    assert_eq!(curl(&s, "/app/groups", &["-u", "carol:secret"]).0, 401);
    s.expect_log("must be an iterable sequence of byte strings.");
    s.expect_log("TypeError: 'NoneType' object is not iterable");
}

#[test]
fn access_script_allows_refuses_or_abstains() {
    let s = access_server();
    assert_eq!(curl(&s, "/app/hosts?yes", &[]), (200, "user=None auth=None\n".into()));
    s.expect_log("allow_access host=127.0.0.1");
    assert_eq!(curl(&s, "/app/hosts?none", &[]).0, 200);
    assert_eq!(curl(&s, "/app/hosts?no", &[]).0, 403);
    s.expect_log("Client denied by server configuration: '");
    assert_eq!(curl(&s, "/app/hosts?one", &[]).0, 403, "only True, False or None");
    s.expect_log("must a boolean or None.");
    assert_eq!(curl(&s, "/app/hosts?raise", &[]).0, 403);
    s.expect_log("RuntimeError: marker-allow-access");
}

#[test]
fn wsgi_provider_without_a_script_is_a_server_error() {
    let s = access_server();
    assert_eq!(curl(&s, "/app/unscripted", &["-u", "alice:secret"]).0, 500);
    s.expect_log("Location of WSGI user authentication script not provided.");
}

#[test]
fn auth_scripts_run_in_apache_children_even_when_applications_may_not() {
    let s = server()
        .app("access.wsgi")
        .file("htdocs/private/index.txt", b"secret page\n")
        .module("authn_core")
        .module("authz_user")
        .module("auth_basic")
        .config(
            "WSGIRestrictEmbedded On\n\
             WSGIScriptAlias /app @DIR@/access.wsgi\n\
             <Location /private>\n  AuthType Basic\n  AuthName \"realm1\"\n  AuthBasicProvider wsgi\n  \
             WSGIAuthUserScript @DIR@/access.wsgi\n  Require valid-user\n</Location>\n\
             <Directory @DIR@/htdocs>\n  Require all granted\n</Directory>\n",
        )
        .start();
    assert_eq!(curl(&s, "/private/index.txt", &["-u", "alice:secret"]), (200, "secret page\n".into()));
    assert_eq!(curl(&s, "/private/index.txt", &["-u", "alice:wrong"]).0, 401);
    // The application itself is still refused in the Apache child.
    assert_eq!(curl(&s, "/app", &[]).0, 500);
    s.expect_log("Embedded mode of mod_wsgi disabled by runtime configuration");
}
