//! WSGITrustedProxyHeaders and WSGITrustedProxies: behind a proxy, the
//! headers it sets (X-Forwarded-For, X-Forwarded-Proto, ...) stand in for
//! the client's address, the scheme, the host and the mount point, as
//! mod_wsgi applies them. Only the headers named are honoured, and only
//! from a trusted proxy; a client that is not one has those headers taken
//! out of the environ, so the application cannot be fooled by them.

use std::net::IpAddr;

use crate::config::TrustedProxy;

/// CGI variables as (name, value), borrowed from the request.
pub type Cgi<'a> = Vec<(&'a [u8], &'a [u8])>;

/// Applies the trusted headers among `headers` (CGI names, in the order
/// configured) to `cgi` and `url_scheme`.
pub fn apply<'a>(cgi: &mut Cgi<'a>, url_scheme: &mut &'static str, headers: &[String], proxies: Option<&[TrustedProxy]>) {
    if headers.is_empty() {
        return;
    }
    let trusted = |ip: &[u8]| match (proxies, parse_ip(ip)) {
        (None, _) => true,
        (Some(list), Some(ip)) => list.iter().any(|p| p.contains(ip)),
        (Some(_), None) => false,
    };
    if !trusted(get(cgi, b"REMOTE_ADDR").unwrap_or_default()) {
        cgi.retain(|(name, _)| !headers.iter().any(|h| h.as_bytes() == *name));
        return;
    }
    for header in headers {
        let Some(value) = get(cgi, header.as_bytes()) else { continue };
        match header.as_str() {
            "HTTP_X_FORWARDED_FOR" => {
                let hops: Vec<&[u8]> = value.split(|&b| b == b',').map(<[u8]>::trim_ascii).collect();
                // Behind trusted proxies the client is the last hop none of them added.
                let client = match proxies {
                    None => hops.first().copied(),
                    Some(_) => hops.iter().rev().find(|hop| !trusted(hop)).or(hops.first()).copied(),
                };
                set(cgi, b"REMOTE_ADDR", client.unwrap_or_default());
            }
            "HTTP_X_CLIENT_IP" | "HTTP_X_REAL_IP" => set(cgi, b"REMOTE_ADDR", value.trim_ascii()),
            "HTTP_X_FORWARDED_HOST" | "HTTP_X_HOST" => set(cgi, b"HTTP_HOST", value),
            "HTTP_X_FORWARDED_SERVER" => set(cgi, b"SERVER_NAME", value),
            "HTTP_X_FORWARDED_PORT" => set(cgi, b"SERVER_PORT", value),
            "HTTP_X_SCRIPT_NAME" => set(cgi, b"SCRIPT_NAME", value),
            "HTTP_X_FORWARDED_PROTO" | "HTTP_X_FORWARDED_SCHEME" | "HTTP_X_SCHEME" => {
                *url_scheme = if value.trim_ascii().eq_ignore_ascii_case(b"https") { "https" } else { "http" };
            }
            "HTTP_X_FORWARDED_HTTPS" | "HTTP_X_FORWARDED_SSL" | "HTTP_X_HTTPS" => {
                let on = [&b"on"[..], b"true", b"1"].iter().any(|v| value.trim_ascii().eq_ignore_ascii_case(v));
                *url_scheme = if on { "https" } else { "http" };
            }
            _ => {}
        }
    }
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

    fn run(pairs: &[(&'static str, &'static str)], headers: &[&str], proxies: Option<&[&str]>) -> (Vec<(String, String)>, &'static str) {
        let mut cgi: Cgi<'static> = pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
        let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        let proxies: Option<Vec<TrustedProxy>> = proxies.map(|list| list.iter().map(|p| parse_trusted_proxy(p).unwrap()).collect());
        let mut scheme = "http";
        apply(&mut cgi, &mut scheme, &headers, proxies.as_deref());
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (cgi.iter().map(|(k, v)| (text(k), text(v))).collect(), scheme)
    }

    fn var(cgi: &[(String, String)], name: &str) -> Option<String> {
        cgi.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn without_trusted_proxies_every_client_is_believed() {
        let (cgi, scheme) = run(
            &[("REMOTE_ADDR", "127.0.0.1"), ("HTTP_X_FORWARDED_FOR", "1.2.3.4, 10.1.1.1"), ("HTTP_X_FORWARDED_PROTO", "https"), ("HTTP_X_FORWARDED_HOST", "example.com"), ("HTTP_X_SCRIPT_NAME", "/prefix")],
            &["HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_SCRIPT_NAME"],
            None,
        );
        assert_eq!(var(&cgi, "REMOTE_ADDR").as_deref(), Some("1.2.3.4"), "the first hop");
        assert_eq!(var(&cgi, "HTTP_HOST").as_deref(), Some("example.com"));
        assert_eq!(var(&cgi, "SCRIPT_NAME").as_deref(), Some("/prefix"));
        assert_eq!(scheme, "https");
        // The headers themselves stay.
        assert!(var(&cgi, "HTTP_X_FORWARDED_FOR").is_some());
    }

    #[test]
    fn behind_trusted_proxies_the_client_is_the_last_untrusted_hop() {
        let headers = ["HTTP_X_FORWARDED_FOR"];
        let trusted = Some(&["127.0.0.1", "10.0.0.0/8"][..]);
        let (cgi, _) = run(&[("REMOTE_ADDR", "127.0.0.1"), ("HTTP_X_FORWARDED_FOR", "9.9.9.9, 1.2.3.4, 10.1.1.1")], &headers, trusted);
        assert_eq!(var(&cgi, "REMOTE_ADDR").as_deref(), Some("1.2.3.4"));
        let (cgi, _) = run(&[("REMOTE_ADDR", "127.0.0.1"), ("HTTP_X_FORWARDED_FOR", "10.2.2.2,10.1.1.1")], &headers, trusted);
        assert_eq!(var(&cgi, "REMOTE_ADDR").as_deref(), Some("10.2.2.2"), "all trusted: the first");
    }

    #[test]
    fn an_untrusted_client_loses_the_named_headers() {
        let (cgi, scheme) = run(
            &[("REMOTE_ADDR", "127.0.0.1"), ("HTTP_X_FORWARDED_FOR", "1.2.3.4"), ("HTTP_X_FORWARDED_PROTO", "https"), ("HTTP_X_FORWARDED_PORT", "8443")],
            &["HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO"],
            Some(&["192.168.9.9"]),
        );
        assert_eq!(var(&cgi, "REMOTE_ADDR").as_deref(), Some("127.0.0.1"));
        assert_eq!(var(&cgi, "HTTP_X_FORWARDED_FOR"), None);
        assert_eq!(var(&cgi, "HTTP_X_FORWARDED_PROTO"), None);
        assert_eq!(var(&cgi, "HTTP_X_FORWARDED_PORT").as_deref(), Some("8443"), "not named: left alone");
        assert_eq!(scheme, "http");
    }

    #[test]
    fn headers_apply_in_the_order_named() {
        let pairs = [("REMOTE_ADDR", "127.0.0.1"), ("HTTP_X_REAL_IP", "5.6.7.8"), ("HTTP_X_CLIENT_IP", "6.6.6.6"), ("HTTP_X_FORWARDED_SSL", "off"), ("HTTP_X_SCHEME", "https")];
        let (cgi, scheme) = run(&pairs, &["HTTP_X_REAL_IP", "HTTP_X_CLIENT_IP", "HTTP_X_FORWARDED_SSL", "HTTP_X_SCHEME"], None);
        assert_eq!(var(&cgi, "REMOTE_ADDR").as_deref(), Some("6.6.6.6"));
        assert_eq!(scheme, "https");
        let (_, scheme) = run(&[("REMOTE_ADDR", "127.0.0.1"), ("HTTP_X_FORWARDED_HTTPS", "On")], &["HTTP_X_FORWARDED_HTTPS"], None);
        assert_eq!(scheme, "https");
    }

    #[test]
    fn port_and_server_name() {
        let (cgi, _) = run(
            &[("REMOTE_ADDR", "127.0.0.1"), ("SERVER_PORT", "80"), ("HTTP_X_FORWARDED_PORT", "8443"), ("HTTP_X_FORWARDED_SERVER", "front")],
            &["HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_SERVER"],
            None,
        );
        assert_eq!(var(&cgi, "SERVER_PORT").as_deref(), Some("8443"));
        assert_eq!(var(&cgi, "SERVER_NAME").as_deref(), Some("front"));
    }
}
