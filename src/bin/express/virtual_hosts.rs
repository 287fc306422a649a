//! The virtual hosts: the HTTPS one (`--https-port`), and the name-based ones of
//! `--server-name`, laid out as mod_wsgi-express lays them out. The application itself is
//! configured in the main server; every virtual host inherits it.
//!
//! With `--server-name`, the first virtual host of each port is a catch-all refusing requests
//! for other names (answering this machine with `--allow-localhost`); the named one serves
//! the site; a `www.` name also gets its parent domain redirected to it. With `--https-only`
//! the named HTTP virtual host redirects to HTTPS.

use super::options::Options;

/// The `<VirtualHost>` blocks. `site` are the lines every serving virtual host repeats (the
/// static-file rules, which mod_rewrite does not inherit).
pub fn render(o: &Options, site: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    match &o.server_name {
        None => {
            if let Some(https_port) = o.https_port {
                let mut body = ssl(o);
                body.extend_from_slice(site);
                block(&mut out, &format!("*:{https_port}"), body);
            }
        }
        Some(name) => {
            named_hosts(&mut out, o, name, o.port, false, site);
            if let Some(https_port) = o.https_port {
                named_hosts(&mut out, o, name, https_port, true, site);
            }
        }
    }
    out
}

/// The lines of a plain HTTP server redirecting to HTTPS (`--https-only`), to `host` (a name,
/// or `%{SERVER_NAME}` for the name the client asked for).
pub fn redirect_to_https(host: &str, https_port: u16) -> Vec<String> {
    vec![
        "RewriteEngine On".into(),
        "RewriteCond %{HTTPS} !=on".into(),
        format!("RewriteRule ^ https://{host}:{https_port}%{{REQUEST_URI}} [R=302,L]"),
    ]
}

/// The catch-all, named and `www.` parent virtual hosts of one port.
fn named_hosts(
    out: &mut Vec<String>,
    o: &Options,
    name: &str,
    port: u16,
    tls: bool,
    site: &[String],
) {
    let ssl_lines = if tls { ssl(o) } else { Vec::new() };
    let mut catch_all = vec![
        "ServerName _wsgi_".to_string(),
        "<Location />".into(),
        if o.allow_localhost {
            "    Require local".into()
        } else {
            "    Require all denied".into()
        },
        "</Location>".into(),
    ];
    catch_all.extend(ssl_lines.iter().cloned());
    if o.allow_localhost {
        catch_all.extend_from_slice(site);
    }
    block(out, &format!("_default_:{port}"), catch_all);

    let mut named = vec![format!("ServerName {name}")];
    if !o.server_alias.is_empty() {
        named.push(format!("ServerAlias {}", o.server_alias.join(" ")));
    }
    named.extend(ssl_lines.iter().cloned());
    let https_only = o.https_only && !tls;
    let https_port = o.https_port.unwrap_or(443);
    if https_only {
        named.extend(redirect_to_https(name, https_port));
    } else {
        named.extend_from_slice(site);
    }
    block(out, &format!("*:{port}"), named);

    if let Some(parent) = name.strip_prefix("www.") {
        let mut redirect = vec![format!("ServerName {parent}")];
        if https_only {
            redirect.extend(redirect_to_https(name, https_port));
        } else {
            let scheme = if tls { "https" } else { "http" };
            redirect.push(format!("Redirect permanent / {scheme}://{name}:{port}/"));
        }
        redirect.extend(ssl_lines);
        block(out, &format!("*:{port}"), redirect);
    }
}

/// mod_ssl's lines of an HTTPS virtual host.
fn ssl(o: &Options) -> Vec<String> {
    let mut v = vec!["SSLEngine On".to_string()];
    let mut file = |directive: &str, path: &Option<std::path::PathBuf>| {
        if let Some(p) = path {
            v.push(format!("{directive} \"{}\"", p.display()));
        }
    };
    file("SSLCertificateFile", &o.ssl_certificate_file);
    file("SSLCertificateKeyFile", &o.ssl_certificate_key_file);
    file("SSLCertificateChainFile", &o.ssl_certificate_chain_file);
    v
}

fn block(out: &mut Vec<String>, address: &str, body: Vec<String>) {
    out.push(String::new());
    out.push(format!("<VirtualHost {address}>"));
    out.extend(body.into_iter().map(|l| format!("    {l}")));
    out.push("</VirtualHost>".into());
}

#[cfg(test)]
mod tests {
    use super::super::options::server;
    use super::*;

    fn text(args: &str) -> String {
        render(&server(args).unwrap(), &["STATIC".into()]).join("\n")
    }

    #[test]
    fn none_without_https_or_name() {
        assert!(text("a").is_empty());
    }

    #[test]
    fn https_only_port() {
        let t = text(
            "a --https-port 8443 --ssl-certificate-file /c.pem --ssl-certificate-key-file /k.pem",
        );
        assert_eq!(
            t,
            "\n<VirtualHost *:8443>\n    SSLEngine On\n    SSLCertificateFile \"/c.pem\"\n    \
             SSLCertificateKeyFile \"/k.pem\"\n    STATIC\n</VirtualHost>"
        );
    }

    #[test]
    fn server_name_aliases_and_localhost() {
        let t =
            text("a --server-name www.example.com --server-alias *.example.org --allow-localhost");
        assert!(t.contains("<VirtualHost _default_:8000>\n    ServerName _wsgi_\n    <Location />\n        Require local\n"), "{t}");
        assert!(t.contains("<VirtualHost *:8000>\n    ServerName www.example.com\n    ServerAlias *.example.org\n    STATIC\n"), "{t}");
        assert!(
            t.contains(
                "ServerName example.com\n    Redirect permanent / http://www.example.com:8000/\n"
            ),
            "{t}"
        );
        assert!(!text("a --server-name example.com").contains("Redirect"));
        assert!(text("a --server-name example.com").contains("Require all denied"));
    }

    #[test]
    fn server_name_with_https_only() {
        let t = text(
            "a --server-name example.com --https-port 8443 --https-only \
             --ssl-certificate-file /c --ssl-certificate-key-file /k --ssl-certificate-chain-file /ch",
        );
        assert!(t.contains(
            "    ServerName example.com\n    RewriteEngine On\n    RewriteCond %{HTTPS} !=on\n    \
             RewriteRule ^ https://example.com:8443%{REQUEST_URI} [R=302,L]\n"
        ), "{t}");
        assert!(t.contains("<VirtualHost _default_:8443>"), "{t}");
        assert!(
            t.contains("<VirtualHost *:8443>\n    ServerName example.com\n    SSLEngine On\n"),
            "{t}"
        );
        assert!(
            t.contains("    SSLCertificateChainFile \"/ch\"\n    STATIC\n"),
            "{t}"
        );
    }
}
