//! WSGITrustedProxyHeaders and WSGITrustedProxies, as mod_wsgi applies them.
//!
//! Proxies pass on the client's address, the scheme, the host and the mount
//! point in headers, with several conventions for each purpose. Naming one
//! header of a purpose makes it the only source for that purpose: the other
//! headers of the purpose are taken out of the environ whoever the client is,
//! so the application cannot be fooled by one the proxy did not overwrite.
//! The named header is applied only when the peer is a trusted proxy (any
//! peer when WSGITrustedProxies is not set); from any other peer it is taken
//! out too. X-Forwarded-Server and X-Forwarded-Port belong to no purpose:
//! mod_wsgi applies them from a trusted proxy and otherwise leaves them be.

use std::net::IpAddr;

use crate::config::TrustedProxy;

/// CGI variables as (name, value), borrowed from the request.
pub type Cgi<'a> = Vec<(&'a [u8], &'a [u8])>;

const CLIENT: &[&[u8]] = &[b"HTTP_X_FORWARDED_FOR", b"HTTP_X_CLIENT_IP", b"HTTP_X_REAL_IP"];
const SCHEME: &[&[u8]] = &[
    b"HTTP_X_FORWARDED_HTTPS",
    b"HTTP_X_FORWARDED_PROTO",
    b"HTTP_X_FORWARDED_SCHEME",
    b"HTTP_X_FORWARDED_SSL",
    b"HTTP_X_HTTPS",
    b"HTTP_X_SCHEME",
];
const HOST: &[&[u8]] = &[b"HTTP_X_FORWARDED_HOST", b"HTTP_X_HOST"];
const SCRIPT_NAME: &[&[u8]] = &[b"HTTP_X_SCRIPT_NAME", b"HTTP_X_FORWARDED_SCRIPT_NAME"];
const PURPOSES: [&[&[u8]]; 4] = [CLIENT, SCHEME, HOST, SCRIPT_NAME];

/// Applies the headers named (CGI names, in the order configured) to `cgi`:
/// they set REMOTE_ADDR, HTTPS (wsgi.url_scheme is derived from it after),
/// HTTP_HOST, SERVER_NAME, SERVER_PORT, SCRIPT_NAME and mod_wsgi.mount_point.
/// A rewritten X-Forwarded-For is kept in `forwarded_for`, which `cgi` then
/// borrows.
pub fn apply<'a>(cgi: &mut Cgi<'a>, forwarded_for: &'a mut Vec<u8>, headers: &[String], proxies: Option<&[TrustedProxy]>) {
    if headers.is_empty() {
        return;
    }
    let peer_trusted = match proxies {
        None => true,
        Some(list) => get(cgi, b"REMOTE_ADDR").and_then(parse_ip).is_some_and(|ip| trusts(list, ip)),
    };
    // Per purpose: whether one of its headers was named, and the one applied.
    let mut named = [false; PURPOSES.len()];
    let mut applied: [Option<&[u8]>; PURPOSES.len()] = [None; PURPOSES.len()];
    let mut forwarded_for = Some(forwarded_for);
    for header in headers {
        let name = header.as_bytes();
        let purpose = PURPOSES.iter().position(|members| members.contains(&name));
        if let Some(p) = purpose {
            named[p] = true;
        }
        let value = match get(cgi, name) {
            Some(value) if peer_trusted => value,
            _ => continue,
        };
        if let Some(p) = purpose {
            // Of several named for one purpose, the last one present wins.
            applied[p] = Some(name);
        }
        match name {
            b"HTTP_X_FORWARDED_FOR" => {
                let hops = hops(value);
                let Some(client) = client_hop(&hops, proxies) else { continue };
                set(cgi, b"REMOTE_ADDR", hops[client]);
                // Behind trusted proxies the list is cut to start at the client. Named
                // twice, the value is already cut, and cutting again would not change it.
                if proxies.is_some()
                    && let Some(storage) = forwarded_for.take()
                {
                    *storage = hops[client..].join(&b", "[..]);
                    let storage: &'a Vec<u8> = storage;
                    set(cgi, b"HTTP_X_FORWARDED_FOR", storage);
                }
            }
            b"HTTP_X_CLIENT_IP" | b"HTTP_X_REAL_IP" => set(cgi, b"REMOTE_ADDR", value),
            b"HTTP_X_FORWARDED_HOST" | b"HTTP_X_HOST" => set(cgi, b"HTTP_HOST", value),
            b"HTTP_X_FORWARDED_SERVER" => set(cgi, b"SERVER_NAME", value),
            b"HTTP_X_FORWARDED_PORT" => set(cgi, b"SERVER_PORT", value),
            b"HTTP_X_SCRIPT_NAME" | b"HTTP_X_FORWARDED_SCRIPT_NAME" => {
                // mod_wsgi.script_name keeps what Apache mapped; this is where the proxy mounted it.
                set(cgi, b"mod_wsgi.mount_point", value);
                set(cgi, b"SCRIPT_NAME", value);
            }
            b"HTTP_X_FORWARDED_PROTO" | b"HTTP_X_FORWARDED_SCHEME" | b"HTTP_X_SCHEME" => {
                set_https(cgi, one_of(value, &[b"https"]), one_of(value, &[b"http"]));
            }
            b"HTTP_X_FORWARDED_HTTPS" | b"HTTP_X_FORWARDED_SSL" | b"HTTP_X_HTTPS" => {
                set_https(cgi, one_of(value, &[b"on", b"true", b"1"]), one_of(value, &[b"off", b"false", b"0"]));
            }
            _ => {}
        }
    }
    for ((members, named), applied) in PURPOSES.iter().zip(named).zip(applied) {
        if named {
            cgi.retain(|(k, _)| !members.contains(k) || applied == Some(*k));
        }
    }
}

/// The hops of an X-Forwarded-For value, trimmed.
fn hops(value: &[u8]) -> Vec<&[u8]> {
    let mut hops: Vec<&[u8]> = value.split(|&b| b == b',').map(trim).collect();
    // A trailing comma ends the list rather than adding an empty hop.
    if hops.last().is_some_and(|hop| hop.is_empty()) {
        hops.pop();
    }
    hops
}

/// Which hop is the client: the first, or behind trusted proxies the one
/// before the hops they appended (the last when they appended none).
fn client_hop(hops: &[&[u8]], proxies: Option<&[TrustedProxy]>) -> Option<usize> {
    if hops.is_empty() {
        return None;
    }
    let Some(list) = proxies else { return Some(0) };
    // Anything not an address (mod_wsgi would look a host name up; this does
    // not) ends the trusted hops like an untrusted address.
    let untrusted = |hop: &&[u8]| !parse_ip(hop).is_some_and(|ip| trusts(list, ip));
    let trusted_from = hops.iter().rposition(untrusted).map_or(0, |i| i + 1);
    Some(trusted_from.saturating_sub(1))
}

/// Sets or removes HTTPS, which wsgi.url_scheme follows; a value that is
/// neither leaves it as it was.
fn set_https(cgi: &mut Cgi<'_>, on: bool, off: bool) {
    if on {
        set(cgi, b"HTTPS", b"1");
    } else if off {
        cgi.retain(|(k, _)| *k != b"HTTPS");
    }
}

fn one_of(value: &[u8], words: &[&[u8]]) -> bool {
    words.iter().any(|w| value.eq_ignore_ascii_case(w))
}

/// Trims C isspace() characters, which include the vertical tab.
fn trim(text: &[u8]) -> &[u8] {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t'..=b'\r');
    let start = text.iter().position(|b| !is_space(b)).unwrap_or(text.len());
    let end = text.iter().rposition(|b| !is_space(b)).map_or(start, |i| i + 1);
    &text[start..end]
}

fn trusts(proxies: &[TrustedProxy], ip: IpAddr) -> bool {
    proxies.iter().any(|p| p.contains(ip))
}

fn parse_ip(text: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn get<'a>(cgi: &Cgi<'a>, name: &[u8]) -> Option<&'a [u8]> {
    cgi.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

fn set<'a>(cgi: &mut Cgi<'a>, name: &'static [u8], value: &'a [u8]) {
    match cgi.iter_mut().find(|(k, _)| *k == name) {
        Some(entry) => entry.1 = value,
        None => cgi.push((name, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_trusted_proxy;

    /// The CGI variables after `apply`, as (name, value) strings.
    fn run(pairs: &[(&str, &str)], headers: &[&str], proxies: Option<&[&str]>) -> Vec<(String, String)> {
        let mut cgi: Cgi<'_> = pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
        let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        let proxies: Option<Vec<TrustedProxy>> = proxies.map(|list| list.iter().map(|p| parse_trusted_proxy(p).unwrap()).collect());
        let mut storage = Vec::new();
        apply(&mut cgi, &mut storage, &headers, proxies.as_deref());
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        cgi.iter().map(|(k, v)| (text(k), text(v))).collect()
    }

    fn var(cgi: &[(String, String)], name: &str) -> Option<String> {
        cgi.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn without_trusted_proxies_every_client_is_believed() {
        let cgi = run(
            &[
                ("REMOTE_ADDR", "127.0.0.1"),
                ("SCRIPT_NAME", "/app"),
                ("HTTP_X_FORWARDED_FOR", "1.2.3.4, 10.1.1.1"),
                ("HTTP_X_FORWARDED_PROTO", "https"),
                ("HTTP_X_FORWARDED_HOST", "example.com"),
                ("HTTP_X_SCRIPT_NAME", "/prefix"),
            ],
            &["HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_SCRIPT_NAME"],
            None,
        );
        assert_eq!(var(&cgi, "REMOTE_ADDR").as_deref(), Some("1.2.3.4"), "the first hop");
        assert_eq!(var(&cgi, "HTTP_X_FORWARDED_FOR").as_deref(), Some("1.2.3.4, 10.1.1.1"), "left as sent");
        assert_eq!(var(&cgi, "HTTP_HOST").as_deref(), Some("example.com"));
        assert_eq!(var(&cgi, "SCRIPT_NAME").as_deref(), Some("/prefix"));
        assert_eq!(var(&cgi, "mod_wsgi.mount_point").as_deref(), Some("/prefix"));
        assert_eq!(var(&cgi, "HTTPS").as_deref(), Some("1"));
    }

    #[test]
    fn behind_trusted_proxies_the_client_is_the_hop_before_theirs() {
        let trusted = Some(&["127.0.0.1", "10.0.0.0/8"][..]);
        // (X-Forwarded-For sent, REMOTE_ADDR, X-Forwarded-For seen)
        let cases = [
            ("9.9.9.9, 1.2.3.4, 10.1.1.1", "1.2.3.4", "1.2.3.4, 10.1.1.1"),
            ("10.2.2.2,10.1.1.1", "10.2.2.2", "10.2.2.2, 10.1.1.1"),
            ("9.9.9.9, 1.2.3.4", "1.2.3.4", "1.2.3.4"),
            ("10.0.0.1 , 9.9.9.9, 10.1.1.1", "9.9.9.9", "9.9.9.9, 10.1.1.1"),
            ("garbage, 10.1.1.1", "garbage", "garbage, 10.1.1.1"),
            ("1.2.3.4, garbage", "garbage", "garbage"),
            ("1.2.3.4,,10.1.1.1", "", ", 10.1.1.1"),
            (", 1.2.3.4", "1.2.3.4", "1.2.3.4"),
            ("1.2.3.4, ", "1.2.3.4", "1.2.3.4"),
            ("\x0b5.5.5.5\t,  10.1.1.1 ", "5.5.5.5", "5.5.5.5, 10.1.1.1"),
            ("", "127.0.0.1", ""),
        ];
        for (sent, client, seen) in cases {
            let cgi = run(&[("REMOTE_ADDR", "127.0.0.1"), ("HTTP_X_FORWARDED_FOR", sent)], &["HTTP_X_FORWARDED_FOR"], trusted);
            assert_eq!(var(&cgi, "REMOTE_ADDR").as_deref(), Some(client), "{sent:?}");
            assert_eq!(var(&cgi, "HTTP_X_FORWARDED_FOR").as_deref(), Some(seen), "{sent:?}");
        }
        // Without trusted proxies, the first hop however empty.
        for (sent, client) in [(", 1.2.3.4", Some("")), ("  ", Some("127.0.0.1")), ("1.2.3.4,", Some("1.2.3.4"))] {
            let cgi = run(&[("REMOTE_ADDR", "127.0.0.1"), ("HTTP_X_FORWARDED_FOR", sent)], &["HTTP_X_FORWARDED_FOR"], None);
            assert_eq!(var(&cgi, "REMOTE_ADDR").as_deref(), client, "{sent:?}");
            assert_eq!(var(&cgi, "HTTP_X_FORWARDED_FOR").as_deref(), Some(sent));
        }
        // Named twice, the list is rewritten once to the same result.
        let sent = [("REMOTE_ADDR", "127.0.0.1"), ("HTTP_X_FORWARDED_FOR", "9.9.9.9, 1.2.3.4, 10.1.1.1")];
        let cgi = run(&sent, &["HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_FOR"], trusted);
        assert_eq!(var(&cgi, "REMOTE_ADDR").as_deref(), Some("1.2.3.4"));
        assert_eq!(var(&cgi, "HTTP_X_FORWARDED_FOR").as_deref(), Some("1.2.3.4, 10.1.1.1"));
    }

    const EVERY_HEADER: [(&str, &str); 15] = [
        ("HTTP_X_FORWARDED_FOR", "7.7.7.7"),
        ("HTTP_X_CLIENT_IP", "5.5.5.5"),
        ("HTTP_X_REAL_IP", "6.6.6.6"),
        ("HTTP_X_FORWARDED_HTTPS", "on"),
        ("HTTP_X_FORWARDED_PROTO", "https"),
        ("HTTP_X_FORWARDED_SCHEME", "https"),
        ("HTTP_X_FORWARDED_SSL", "on"),
        ("HTTP_X_HTTPS", "1"),
        ("HTTP_X_SCHEME", "https"),
        ("HTTP_X_FORWARDED_HOST", "fh"),
        ("HTTP_X_HOST", "h"),
        ("HTTP_X_SCRIPT_NAME", "/sn"),
        ("HTTP_X_FORWARDED_SCRIPT_NAME", "/fsn"),
        ("HTTP_X_FORWARDED_SERVER", "fs"),
        ("HTTP_X_FORWARDED_PORT", "8443"),
    ];

    #[test]
    fn of_each_purpose_only_the_named_header_stays_and_only_from_a_trusted_proxy() {
        for (named, _) in EVERY_HEADER {
            let purpose: &[&[u8]] = PURPOSES.iter().find(|p| p.contains(&named.as_bytes())).copied().unwrap_or(&[]);
            for trusted in [true, false] {
                let mut pairs = vec![("REMOTE_ADDR", "127.0.0.1"), ("HTTP_X_FOO", "foo")];
                pairs.extend(EVERY_HEADER);
                let proxy = if trusted { "127.0.0.1" } else { "192.168.9.9" };
                let cgi = run(&pairs, &[named, "HTTP_X_FOO"], Some(&[proxy]));
                for (header, _) in EVERY_HEADER {
                    let in_purpose = purpose.contains(&header.as_bytes());
                    // Outside the purpose nothing is taken out, X-Forwarded-Server and -Port included.
                    let stays = !in_purpose || (trusted && header == named);
                    assert_eq!(var(&cgi, header).is_some(), stays, "{named} named, trusted {trusted}: {header}");
                }
                assert_eq!(var(&cgi, "HTTP_X_FOO").as_deref(), Some("foo"), "not a proxy header");
            }
        }
    }

    #[test]
    fn an_untrusted_client_changes_nothing() {
        let mut pairs = vec![("REMOTE_ADDR", "127.0.0.1"), ("HTTP_HOST", "here"), ("SERVER_NAME", "here"), ("SERVER_PORT", "80"), ("SCRIPT_NAME", "/app")];
        pairs.extend(EVERY_HEADER);
        let every: Vec<&str> = EVERY_HEADER.iter().map(|(h, _)| *h).collect();
        let cgi = run(&pairs, &every, Some(&["192.168.9.9"]));
        let seen = ["REMOTE_ADDR", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "SCRIPT_NAME", "HTTPS", "mod_wsgi.mount_point"].map(|k| var(&cgi, k));
        let unchanged = [Some("127.0.0.1"), Some("here"), Some("here"), Some("80"), Some("/app"), None, None];
        assert_eq!(seen, unchanged.map(|v| v.map(String::from)));
        let left: Vec<&str> = EVERY_HEADER.iter().map(|(h, _)| *h).filter(|h| var(&cgi, h).is_some()).collect();
        assert_eq!(left, ["HTTP_X_FORWARDED_SERVER", "HTTP_X_FORWARDED_PORT"]);
    }

    #[test]
    fn the_last_present_of_a_purpose_wins() {
        let pairs = [("REMOTE_ADDR", "127.0.0.1"), ("HTTP_X_REAL_IP", "6.6.6.6"), ("HTTP_X_CLIENT_IP", "5.5.5.5"), ("HTTP_X_FORWARDED_FOR", "7.7.7.7")];
        let cgi = run(&pairs, &["HTTP_X_REAL_IP", "HTTP_X_CLIENT_IP", "HTTP_X_FORWARDED_FOR"], None);
        assert_eq!(var(&cgi, "REMOTE_ADDR").as_deref(), Some("7.7.7.7"));
        assert_eq!([var(&cgi, "HTTP_X_REAL_IP"), var(&cgi, "HTTP_X_CLIENT_IP")], [None, None]);
        let cgi = run(&pairs[..2], &["HTTP_X_CLIENT_IP", "HTTP_X_REAL_IP", "HTTP_X_FORWARDED_FOR"], None);
        assert_eq!(var(&cgi, "REMOTE_ADDR").as_deref(), Some("6.6.6.6"), "X-Forwarded-For absent");
        assert_eq!(var(&cgi, "HTTP_X_CLIENT_IP"), None);
    }

    #[test]
    fn scheme_headers_set_or_clear_https_or_leave_it() {
        // (value, HTTPS after X-Forwarded-Proto, after X-Forwarded-SSL), HTTPS being "on" before.
        let cases = [
            ("https", Some("1"), Some("on")),
            ("HTTPS", Some("1"), Some("on")),
            ("http", None, Some("on")),
            ("ftp", Some("on"), Some("on")),
            ("On", Some("on"), Some("1")),
            ("TRUE", Some("on"), Some("1")),
            ("1", Some("on"), Some("1")),
            ("off", Some("on"), None),
            ("false", Some("on"), None),
            ("0", Some("on"), None),
            ("yes", Some("on"), Some("on")),
            ("", Some("on"), Some("on")),
        ];
        for (value, proto, ssl) in cases {
            for (header, expected) in [("HTTP_X_FORWARDED_PROTO", proto), ("HTTP_X_FORWARDED_SSL", ssl)] {
                let cgi = run(&[("REMOTE_ADDR", "127.0.0.1"), ("HTTPS", "on"), (header, value)], &[header], None);
                assert_eq!(var(&cgi, "HTTPS").as_deref(), expected, "{header}: {value:?}");
            }
        }
    }

    #[test]
    fn script_name_headers_set_the_mount_point() {
        for header in ["HTTP_X_SCRIPT_NAME", "HTTP_X_FORWARDED_SCRIPT_NAME"] {
            for value in ["/prefix", "//a//b/", ""] {
                let cgi = run(&[("REMOTE_ADDR", "127.0.0.1"), ("SCRIPT_NAME", "/app"), (header, value)], &[header], None);
                assert_eq!(var(&cgi, "SCRIPT_NAME").as_deref(), Some(value), "used as sent");
                assert_eq!(var(&cgi, "mod_wsgi.mount_point").as_deref(), Some(value));
            }
            let cgi = run(&[("REMOTE_ADDR", "127.0.0.1"), ("SCRIPT_NAME", "/app")], &[header], None);
            assert_eq!((var(&cgi, "SCRIPT_NAME").as_deref(), var(&cgi, "mod_wsgi.mount_point")), (Some("/app"), None), "header absent");
        }
    }

    #[test]
    fn port_and_server_name() {
        let cgi = run(
            &[("REMOTE_ADDR", "127.0.0.1"), ("SERVER_PORT", "80"), ("HTTP_X_FORWARDED_PORT", "8443"), ("HTTP_X_FORWARDED_SERVER", "front")],
            &["HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_SERVER"],
            None,
        );
        assert_eq!(var(&cgi, "SERVER_PORT").as_deref(), Some("8443"));
        assert_eq!(var(&cgi, "SERVER_NAME").as_deref(), Some("front"));
        assert_eq!(var(&cgi, "HTTP_X_FORWARDED_PORT").as_deref(), Some("8443"), "kept");
    }
}
