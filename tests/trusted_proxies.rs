//! WSGITrustedProxyHeaders and WSGITrustedProxies, in embedded and daemon mode; and
//! WSGIRestrictProcess. Expectations were read off the C module with the same requests.

mod support;

use std::collections::BTreeMap;
use support::{Server, parse_kv, server};

fn proxied_server() -> Server {
    let headers = "WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto X-Forwarded-Host X-Script-Name";
    server()
        .app("environ.wsgi")
        .config(&format!(
            "WSGIDaemonProcess d threads=2\n\
             WSGIScriptAlias /open @DIR@/environ.wsgi\n\
             WSGIScriptAlias /daemon @DIR@/environ.wsgi process-group=d\n\
             WSGIScriptAlias /trusted @DIR@/environ.wsgi\n\
             WSGIScriptAlias /untrusted @DIR@/environ.wsgi\n\
             WSGIScriptAlias /plain @DIR@/environ.wsgi\n\
             <Location /open>\n  {headers}\n</Location>\n\
             <Location /daemon>\n  {headers}\n</Location>\n\
             <Location /trusted>\n  {headers}\n  WSGITrustedProxies 127.0.0.1 10.0.0.0/8\n</Location>\n\
             <Location /untrusted>\n  {headers}\n  WSGITrustedProxies 192.168.9.9\n</Location>\n"
        ))
        .start()
}

/// The environ `path` sees when the request carries a proxy's headers.
fn environ(s: &Server, path: &str, forwarded_for: &str) -> BTreeMap<String, String> {
    let headers = [
        ("X-Forwarded-For", forwarded_for),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "example.com"),
        ("X-Forwarded-Port", "8443"),
        ("X-Script-Name", "/prefix"),
    ];
    let r = s.request("GET", &format!("{path}/x"), &headers, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    parse_kv(&r.text())
}

fn view(env: &BTreeMap<String, String>) -> [&str; 5] {
    ["REMOTE_ADDR", "HTTP_HOST", "SCRIPT_NAME", "wsgi.url_scheme", "SERVER_PORT"].map(|k| env[k].as_str())
}

#[test]
fn named_headers_stand_in_for_the_client_scheme_host_and_mount() {
    let s = proxied_server();
    let port = format!("'{}'", s.port());
    for path in ["/open", "/daemon"] {
        let env = environ(&s, path, "1.2.3.4, 10.1.1.1");
        // X-Forwarded-Port was not named: SERVER_PORT stays.
        assert_eq!(view(&env), ["'1.2.3.4'", "'example.com'", "'/prefix'", "'https'", port.as_str()], "{path}");
        assert_eq!(env["HTTP_X_FORWARDED_PROTO"], "'https'", "the headers stay");
    }
    // Without the directive nothing changes.
    let env = environ(&s, "/plain", "1.2.3.4");
    assert_eq!(env["REMOTE_ADDR"], "'127.0.0.1'");
    assert_eq!(env["wsgi.url_scheme"], "'http'");
}

#[test]
fn behind_trusted_proxies_the_client_is_the_last_hop_they_did_not_add() {
    let s = proxied_server();
    let env = environ(&s, "/trusted", "9.9.9.9, 1.2.3.4, 10.1.1.1");
    assert_eq!(env["REMOTE_ADDR"], "'1.2.3.4'");
    assert_eq!(env["wsgi.url_scheme"], "'https'");
}

#[test]
fn a_client_that_is_not_a_trusted_proxy_loses_the_named_headers() {
    let s = proxied_server();
    let env = environ(&s, "/untrusted", "1.2.3.4");
    let port = format!("'{}'", s.port());
    let host = format!("'127.0.0.1:{}'", s.port());
    assert_eq!(view(&env), ["'127.0.0.1'", host.as_str(), "'/untrusted'", "'http'", port.as_str()]);
    for gone in ["HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_SCRIPT_NAME"] {
        assert!(!env.contains_key(gone), "{gone} still there");
    }
    assert_eq!(env["HTTP_X_FORWARDED_PORT"], "'8443'", "not named: left alone");
}

#[test]
fn restrict_process_refuses_groups_not_listed() {
    let s = server()
        .app("environ.wsgi")
        .config(
            "WSGIDaemonProcess a threads=1\n\
             WSGIDaemonProcess b threads=1\n\
             WSGIScriptAlias /ok @DIR@/environ.wsgi\n\
             WSGIScriptAlias /other @DIR@/environ.wsgi\n\
             WSGIScriptAlias /embedded @DIR@/environ.wsgi\n\
             <Location />\n  WSGIRestrictProcess a\n</Location>\n\
             <Location /ok>\n  WSGIProcessGroup a\n</Location>\n\
             <Location /other>\n  WSGIProcessGroup b\n</Location>\n",
        )
        .start();
    assert_eq!(s.get("/ok").status, 200);
    assert_eq!(s.get("/other").status, 500);
    s.expect_log(&format!(
        "Daemon process called 'b' cannot be accessed by this WSGI application as not a member of allowed groups: {}/environ.wsgi",
        s.dir().display()
    ));
    assert_eq!(s.get("/embedded").status, 500, "embedded ('') is not listed either");
    s.expect_log("Daemon process called '' cannot be accessed");
}
