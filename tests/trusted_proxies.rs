//! WSGITrustedProxyHeaders and WSGITrustedProxies, in embedded and daemon mode; and
//! WSGIRestrictProcess. Expectations were read off the C module with the same requests.
//!
//! Of the proxy headers' purposes (client address, scheme, host, mount point), naming one
//! header takes the purpose's other headers out of the environ whoever the client is; the
//! named one is applied from a trusted proxy (any client without WSGITrustedProxies) and
//! taken out otherwise. X-Forwarded-Server and -Port belong to no purpose: applied from a
//! trusted proxy, otherwise left alone (the documentation says only the named header of a
//! set passes; for these two, 4.9.4 drops nothing).

mod support;

use std::collections::BTreeMap;
use support::{Server, parse_kv, py_str, server};

/// Every proxy header mod_wsgi knows, with the value each request of the table carries.
const SENT: [(&str, &str); 15] = [
    ("X-Forwarded-For", "9.9.9.9, 1.2.3.4, 10.1.1.1"),
    ("X-Client-IP", "5.5.5.5"),
    ("X-Real-IP", "6.6.6.6"),
    ("X-Forwarded-HTTPS", "on"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Scheme", "HTTPS"),
    ("X-Forwarded-SSL", "true"),
    ("X-HTTPS", "1"),
    ("X-Scheme", "https"),
    ("X-Forwarded-Host", "fh.example"),
    ("X-Host", "h.example:8080"),
    ("X-Script-Name", "/sn"),
    ("X-Forwarded-Script-Name", "/fsn"),
    ("X-Forwarded-Server", "fs.example"),
    ("X-Forwarded-Port", "8443"),
];

/// The headers of each purpose.
const PURPOSES: [&[&str]; 4] = [
    &["X-Forwarded-For", "X-Client-IP", "X-Real-IP"],
    &["X-Forwarded-HTTPS", "X-Forwarded-Proto", "X-Forwarded-Scheme", "X-Forwarded-SSL", "X-HTTPS", "X-Scheme"],
    &["X-Forwarded-Host", "X-Host"],
    &["X-Script-Name", "X-Forwarded-Script-Name"],
];

#[derive(Clone, Copy, PartialEq, Debug)]
enum Peer {
    /// Listed in WSGITrustedProxies.
    Trusted,
    /// Not listed.
    Untrusted,
    /// No WSGITrustedProxies: every client is believed.
    Any,
}

const PEERS: [(Peer, &str, &str); 3] = [
    (Peer::Trusted, "trusted", "WSGITrustedProxies 127.0.0.1 10.0.0.0/8"),
    (Peer::Untrusted, "untrusted", "WSGITrustedProxies 192.168.9.9"),
    (Peer::Any, "any", ""),
];

/// A server with environ.wsgi at /e (embedded) and /d (daemon) and `snippet`.
fn both_modes(snippet: &str) -> Server {
    server()
        .app("environ.wsgi")
        .module("env")
        .config(&format!(
            "WSGIDaemonProcess d threads=2\n\
             WSGIScriptAlias /e @DIR@/environ.wsgi\n\
             WSGIScriptAlias /d @DIR@/environ.wsgi process-group=d\n\
             {snippet}"
        ))
        .start()
}

fn cgi_name(header: &str) -> String {
    format!("HTTP_{}", header.to_uppercase().replace('-', "_"))
}

/// The environ `path` sees for a GET carrying `headers`.
fn environ(s: &Server, path: &str, headers: &[(&str, &str)]) -> BTreeMap<String, String> {
    let r = s.request("GET", path, headers, b"");
    assert_eq!(r.status, 200, "{path}: {}\n{}", r.text(), s.error_log());
    parse_kv(&r.text())
}

/// `keys` of `env`, None where absent, values as the app prints them.
fn pick(env: &BTreeMap<String, String>, keys: impl IntoIterator<Item = String>) -> BTreeMap<String, Option<String>> {
    keys.into_iter().map(|k| (env.get(&k).cloned(), k)).map(|(v, k)| (k, v)).collect()
}

/// What the app sees at /`mount` when `named` is the trusted header and the client is `peer`.
fn expected(s: &Server, mount: &str, named: &str, peer: Peer) -> BTreeMap<String, Option<String>> {
    let host = format!("127.0.0.1:{}", s.port());
    let port = s.port().to_string();
    let mut env: BTreeMap<String, Option<String>> = [
        ("REMOTE_ADDR", "127.0.0.1"),
        ("HTTP_HOST", &host),
        ("SERVER_NAME", "127.0.0.1"),
        ("SERVER_PORT", &port),
        ("SCRIPT_NAME", mount),
        ("mod_wsgi.script_name", mount),
        ("wsgi.url_scheme", "http"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Some(v.to_string())))
    .collect();
    env.insert("mod_wsgi.mount_point".into(), None);
    env.extend(SENT.map(|(h, v)| (cgi_name(h), Some(v.to_string()))));
    let applied = peer != Peer::Untrusted;
    for other in PURPOSES.iter().filter(|p| p.contains(&named)).flat_map(|p| p.iter()) {
        if !applied || *other != named {
            env.insert(cgi_name(other), None);
        }
    }
    if applied {
        let value = SENT.iter().find(|(h, _)| *h == named).unwrap().1;
        let sets: Vec<(&str, &str)> = match named {
            // Behind trusted proxies the client is the hop before theirs, and the list is cut to start there.
            "X-Forwarded-For" if peer == Peer::Trusted => vec![("REMOTE_ADDR", "1.2.3.4"), ("HTTP_X_FORWARDED_FOR", "1.2.3.4, 10.1.1.1")],
            // Otherwise the first hop, and the list stays as sent.
            "X-Forwarded-For" => vec![("REMOTE_ADDR", "9.9.9.9")],
            "X-Client-IP" | "X-Real-IP" => vec![("REMOTE_ADDR", value)],
            "X-Forwarded-Host" | "X-Host" => vec![("HTTP_HOST", value)],
            // mod_wsgi.script_name keeps what Apache mapped.
            "X-Script-Name" | "X-Forwarded-Script-Name" => vec![("SCRIPT_NAME", value), ("mod_wsgi.mount_point", value)],
            "X-Forwarded-Server" => vec![("SERVER_NAME", value)],
            "X-Forwarded-Port" => vec![("SERVER_PORT", value)],
            _ => vec![("wsgi.url_scheme", "https")],
        };
        env.extend(sets.into_iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))));
    }
    env.into_iter().map(|(k, v)| (k, v.as_deref().map(py_str))).collect()
}

#[test]
fn every_proxy_header_from_trusted_untrusted_and_unchecked_clients() {
    let mut snippet = String::new();
    for (header, _) in SENT {
        for (_, peer, proxies) in PEERS {
            snippet += &format!("<LocationMatch \"^/[ed]/{header}/{peer}$\">\n  WSGITrustedProxyHeaders {header}\n  {proxies}\n</LocationMatch>\n");
        }
    }
    let s = both_modes(&snippet);
    for mount in ["/e", "/d"] {
        for (header, _) in SENT {
            for (peer, name, _) in PEERS {
                let env = environ(&s, &format!("{mount}/{header}/{name}"), &SENT);
                let want = expected(&s, mount, header, peer);
                assert_eq!(pick(&env, want.keys().cloned()), want, "{mount}: {header} named, {peer:?} client");
                assert!(!env.contains_key("HTTPS"), "HTTPS is never passed on");
            }
        }
        // Without the directive every header stays and nothing changes; no mount point either.
        let env = environ(&s, &format!("{mount}/plain"), &SENT);
        let want = expected(&s, mount, "(none named)", Peer::Untrusted);
        assert_eq!(pick(&env, want.keys().cloned()), want, "{mount}: no directive");
    }
}

#[test]
fn forwarded_for_lists_scheme_values_and_several_headers_of_a_purpose() {
    let s = both_modes(
        "<LocationMatch \"^/[ed]/xff/trusted$\">\n  WSGITrustedProxyHeaders X-Forwarded-For\n  WSGITrustedProxies 127.0.0.1 10.0.0.0/8\n</LocationMatch>\n\
         <LocationMatch \"^/[ed]/xff/any$\">\n  WSGITrustedProxyHeaders X-Forwarded-For\n</LocationMatch>\n\
         <LocationMatch \"^/[ed]/proto$\">\n  SetEnv HTTPS on\n  WSGITrustedProxyHeaders X-Forwarded-Proto\n</LocationMatch>\n\
         <LocationMatch \"^/[ed]/ssl$\">\n  SetEnv HTTPS on\n  WSGITrustedProxyHeaders X-Forwarded-SSL\n</LocationMatch>\n\
         <LocationMatch \"^/[ed]/several/\">\n  WSGITrustedProxyHeaders X-Real-IP X-Client-IP X-Foo\n  WSGITrustedProxyHeaders x-forwarded-host x-host x-script-name\n</LocationMatch>\n\
         <LocationMatch \"^/[ed]/several/trusted$\">\n  WSGITrustedProxies 127.0.0.1\n</LocationMatch>\n\
         <LocationMatch \"^/[ed]/several/untrusted$\">\n  WSGITrustedProxies 192.168.9.9\n</LocationMatch>\n",
    );
    // (X-Forwarded-For sent; behind trusted proxies: REMOTE_ADDR, X-Forwarded-For; without: REMOTE_ADDR)
    let lists = [
        ("9.9.9.9, 1.2.3.4", "1.2.3.4", "1.2.3.4", "9.9.9.9"),
        ("10.2.2.2,10.1.1.1", "10.2.2.2", "10.2.2.2, 10.1.1.1", "10.2.2.2"),
        ("10.0.0.1 , 9.9.9.9, 10.1.1.1", "9.9.9.9", "9.9.9.9, 10.1.1.1", "10.0.0.1"),
        // Not an address: the scan for trusted hops stops there.
        ("1.2.3.4, garbage", "garbage", "garbage", "1.2.3.4"),
        ("1.2.3.4,,10.1.1.1", "", ", 10.1.1.1", "1.2.3.4"),
        (", 1.2.3.4", "1.2.3.4", "1.2.3.4", ""),
        ("1.2.3.4,", "1.2.3.4", "1.2.3.4", "1.2.3.4"),
        ("", "127.0.0.1", "", "127.0.0.1"),
    ];
    // (value; wsgi.url_scheme after X-Forwarded-Proto, after X-Forwarded-SSL) with HTTPS on
    // before: values neither sets nor clears leave it.
    let schemes = [
        ("https", "https", "https"),
        ("http", "http", "https"),
        ("ftp", "https", "https"),
        ("off", "https", "http"),
        ("FALSE", "https", "http"),
        ("0", "https", "http"),
        ("yes", "https", "https"),
    ];
    let several = [("X-Real-IP", "6.6.6.6"), ("X-Client-IP", "5.5.5.5"), ("X-Forwarded-For", "7.7.7.7"), ("X-Host", "h.example"), ("X-Foo", "foo"), ("X-Script-Name", "")];
    let keys = ["REMOTE_ADDR", "HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_X_CLIENT_IP", "HTTP_HOST", "HTTP_X_HOST", "HTTP_X_FOO", "SCRIPT_NAME", "mod_wsgi.mount_point"];
    let host = format!("127.0.0.1:{}", s.port());
    for mount in ["/e", "/d"] {
        for (sent, client, list, first) in lists {
            let env = environ(&s, &format!("{mount}/xff/trusted"), &[("X-Forwarded-For", sent)]);
            let seen = [&env["REMOTE_ADDR"], &env["HTTP_X_FORWARDED_FOR"]];
            assert_eq!(seen, [&py_str(client), &py_str(list)], "{mount}: {sent:?} from a trusted proxy");
            let env = environ(&s, &format!("{mount}/xff/any"), &[("X-Forwarded-For", sent)]);
            let seen = [&env["REMOTE_ADDR"], &env["HTTP_X_FORWARDED_FOR"]];
            assert_eq!(seen, [&py_str(first), &py_str(sent)], "{mount}: {sent:?} unchecked");
        }
        for (value, proto, ssl) in schemes {
            for (path, header, scheme) in [("proto", "X-Forwarded-Proto", proto), ("ssl", "X-Forwarded-SSL", ssl)] {
                let env = environ(&s, &format!("{mount}/{path}"), &[(header, value)]);
                assert_eq!(env["wsgi.url_scheme"], py_str(scheme), "{mount}: {header}: {value}");
            }
        }
        // Of the client headers named, the last one present wins; names are case-insensitive;
        // X-Foo is no proxy header and stays; an empty X-Script-Name still applies.
        let seen = |path: &str| {
            let env = environ(&s, &format!("{mount}/several/{path}"), &several);
            keys.map(|k| env.get(k).cloned())
        };
        let want = [Some("5.5.5.5"), None, None, Some("5.5.5.5"), Some("h.example"), Some("h.example"), Some("foo"), Some(""), Some("")];
        assert_eq!(seen("trusted"), want.map(|v| v.map(py_str)), "{mount}: several, trusted");
        let want = [Some("127.0.0.1"), None, None, None, Some(host.as_str()), None, Some("foo"), Some(mount), None];
        assert_eq!(seen("untrusted"), want.map(|v| v.map(py_str)), "{mount}: several, untrusted");
    }
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
