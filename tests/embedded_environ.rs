//! The WSGI environ in embedded mode: CGI variables, wsgi.* and mod_wsgi.* keys, and the
//! Authorization header's opt-in, WSGIPassApacheRequest, and what other modules set
//! (SetEnv, SetEnvIf, RewriteRule E=, RequestHeader) and wsgi.url_scheme over TLS or with
//! `SetEnv HTTPS`, in embedded and daemon mode.

mod support;

use support::{assert_cgi_variables, parse_kv, py_str, server};

fn environ_server() -> support::Server {
    server()
        .app("environ.wsgi")
        .config("WSGIScriptAlias /app @DIR@/environ.wsgi\n")
        .start()
}

#[test]
fn cgi_variables_are_set_from_the_request() {
    let s = environ_server();
    let env = assert_cgi_variables(&s, "/app");
    for (key, value) in [("CONTEXT_DOCUMENT_ROOT", format!("{}/htdocs", s.dir().display())), ("CONTEXT_PREFIX", String::new())] {
        assert_eq!(env.get(key), Some(&py_str(&value)), "{key} in {env:#?}");
    }
    // Content-Type and Content-Length are not duplicated as HTTP_*.
    assert!(!env.contains_key("HTTP_CONTENT_TYPE"), "{env:#?}");
    assert!(!env.contains_key("HTTP_CONTENT_LENGTH"), "{env:#?}");
    assert!(
        env["SERVER_SOFTWARE"].starts_with("'Apache/2.4"),
        "{env:#?}"
    );
}

#[test]
fn header_with_underscore_is_dropped_and_get_has_no_content_headers() {
    let s = environ_server();
    // Apache drops headers whose names contain '_' (they would be ambiguous with '-').
    let r = s.request("GET", "/app", &[("X_Under", "1"), ("X-Dash", "2")], b"");
    assert_eq!(r.status, 200);
    let env = parse_kv(&r.text());
    assert_eq!(env.get("HTTP_X_DASH").map(String::as_str), Some("'2'"));
    assert!(!env.contains_key("HTTP_X_UNDER"), "{env:#?}");
    assert!(!env.contains_key("CONTENT_LENGTH"), "{env:#?}");
    assert!(!env.contains_key("CONTENT_TYPE"), "{env:#?}");
    assert_eq!(env["QUERY_STRING"], "''");
    assert_eq!(env["REQUEST_METHOD"], "'GET'");
}

#[test]
fn wsgi_keys_follow_pep_3333() {
    let s = environ_server();
    let env = s.get_kv("/app");
    assert_eq!(env["wsgi.version"], "(1, 0)");
    assert_eq!(env["wsgi.url_scheme"], "'http'");
    // mpm_event: threads, and (ServerLimit 1) a single process.
    assert_eq!(env["wsgi.multithread"], "True");
    assert_eq!(env["wsgi.multiprocess"], "False");
    assert_eq!(env["wsgi.run_once"], "False");
    assert_eq!(env["wsgi.input_terminated"], "True");
    for key in ["wsgi.input", "wsgi.errors", "wsgi.file_wrapper"] {
        assert!(env.contains_key(key), "{key} missing: {env:#?}");
    }
}

#[test]
fn mod_wsgi_keys_describe_the_request_handling() {
    let s = environ_server();
    let env = s.get_kv("/app/x");
    assert_eq!(env["mod_wsgi.process_group"], "''");
    // Default application group %{RESOURCE}: host:port|SCRIPT_NAME.
    assert_eq!(
        env["mod_wsgi.application_group"],
        py_str(&format!("127.0.0.1:{}|/app", s.port()))
    );
    assert_eq!(env["mod_wsgi.callable_object"], "'application'");
    assert_eq!(env["mod_wsgi.script_reloading"], "'1'");
    assert_eq!(env["mod_wsgi.request_handler"], "'wsgi-script'");
    assert_eq!(env["mod_wsgi.listener_host"], "'127.0.0.1'");
    assert_eq!(env["mod_wsgi.listener_port"], py_str(&s.port().to_string()));
    for key in ["mod_wsgi.version", "apache.version"] {
        let v = &env[key];
        assert!(
            v.starts_with('(') && v.ends_with(')') && v.split(',').count() == 3,
            "{key} should be a 3-tuple of ints, got {v}"
        );
    }
    assert!(
        env["apache.version"].starts_with("(2, 4, "),
        "{}",
        env["apache.version"]
    );
}

#[test]
fn application_group_for_a_root_mount_has_empty_script_name() {
    let s = server()
        .app("environ.wsgi")
        .config("WSGIScriptAlias / @DIR@/environ.wsgi\n")
        .start();
    let env = s.get_kv("/");
    assert_eq!(env["SCRIPT_NAME"], "''");
    assert_eq!(
        env["mod_wsgi.application_group"],
        py_str(&format!("127.0.0.1:{}|", s.port()))
    );
}

#[test]
fn authorization_header_is_hidden_by_default() {
    let s = environ_server();
    let r = s.request(
        "GET",
        "/app",
        &[("Authorization", "Basic dXNlcjpwYXNz")],
        b"",
    );
    assert_eq!(r.status, 200);
    let env = parse_kv(&r.text());
    assert!(!env.contains_key("HTTP_AUTHORIZATION"), "{env:#?}");
}

#[test]
fn authorization_header_is_passed_when_enabled() {
    let s = server()
        .app("environ.wsgi")
        .config(
            "WSGIScriptAlias /global @DIR@/environ.wsgi\n\
             WSGIScriptAlias /option @DIR@/environ.wsgi pass-authorization=On\n\
             <Location /global>\n  WSGIPassAuthorization On\n</Location>\n",
        )
        .start();
    for path in ["/global", "/option"] {
        let r = s.request("GET", path, &[("Authorization", "Basic dXNlcjpwYXNz")], b"");
        assert_eq!(r.status, 200);
        let env = parse_kv(&r.text());
        assert_eq!(
            env.get("HTTP_AUTHORIZATION").map(String::as_str),
            Some("'Basic dXNlcjpwYXNz'"),
            "{path}: {env:#?}"
        );
    }
}

#[test]
fn apache_request_is_passed_as_a_capsule_only_when_enabled_and_embedded() {
    let s = server()
        .app("environ.wsgi")
        .config(
            "WSGIDaemonProcess d threads=1\n\
             WSGIScriptAlias /plain @DIR@/environ.wsgi\n\
             WSGIScriptAlias /passed @DIR@/environ.wsgi\n\
             WSGIScriptAlias /daemon @DIR@/environ.wsgi process-group=d\n\
             <Location /passed>\n  WSGIPassApacheRequest On\n</Location>\n\
             <Location /daemon>\n  WSGIPassApacheRequest On\n</Location>\n",
        )
        .start();
    assert!(s.get_kv("/passed")["apache.request_rec"].starts_with("<capsule object NULL at 0x"));
    assert!(!s.get_kv("/plain").contains_key("apache.request_rec"));
    // A daemon process has no request_rec of Apache's to give.
    assert!(!s.get_kv("/daemon").contains_key("apache.request_rec"));
}

#[test]
fn variables_other_modules_set_reach_the_environ_in_both_modes() {
    // SetEnv (as Django deployments set DJANGO_SETTINGS_MODULE), SetEnvIf,
    // mod_rewrite's E= flag, and headers mod_headers adds.
    let s = server()
        .app("environ.wsgi")
        .module("env")
        .module("rewrite")
        .module("setenvif")
        .module("headers")
        .config(
            "WSGIDaemonProcess g threads=1\n\
             WSGIScriptAlias /d @DIR@/environ.wsgi process-group=g\n\
             WSGIScriptAlias /e @DIR@/environ.wsgi\n\
             SetEnv MY_SETTING hello\n\
             SetEnvIf User-Agent probe UA_MATCH=1\n\
             RequestHeader set X-Added yes\n\
             RewriteEngine On\n\
             RewriteRule ^/(d|e)/rw - [E=REWRITTEN:yes]\n",
        )
        .start();
    for path in ["/d/rw", "/e/rw"] {
        let env = parse_kv(&s.request("GET", path, &[("User-Agent", "probe")], b"").text());
        for (key, value) in [("MY_SETTING", "'hello'"), ("UA_MATCH", "'1'"), ("REWRITTEN", "'yes'"), ("HTTP_X_ADDED", "'yes'")] {
            assert_eq!(env.get(key).map(String::as_str), Some(value), "{path} {key}");
        }
    }
}

#[test]
fn https_sets_the_url_scheme_and_is_not_passed_on() {
    // `SetEnv HTTPS on` (or 1) is how a server behind a TLS-ending proxy says
    // so; other values do not count. mod_wsgi drops HTTPS from the environ.
    let mut config = String::from("WSGIDaemonProcess g threads=1\n");
    for (name, value) in [("on", "on"), ("one", "1"), ("upper", "ON"), ("off", "off"), ("yes", "yes")] {
        config += &format!(
            "WSGIScriptAlias /d-{name} @DIR@/environ.wsgi process-group=g\n\
             WSGIScriptAlias /e-{name} @DIR@/environ.wsgi\n\
             <LocationMatch ^/[de]-{name}>\n  SetEnv HTTPS {value}\n</LocationMatch>\n"
        );
    }
    let s = server().app("environ.wsgi").module("env").config(&config).start();
    for (name, scheme) in [("on", "https"), ("one", "https"), ("upper", "https"), ("off", "http"), ("yes", "http")] {
        for mode in ["d", "e"] {
            let env = s.get_kv(&format!("/{mode}-{name}"));
            assert_eq!(env["wsgi.url_scheme"], format!("'{scheme}'"), "{mode}-{name}");
            assert!(!env.contains_key("HTTPS"), "{mode}-{name}");
        }
    }
}

#[test]
fn requests_over_tls_have_the_https_scheme() {
    let (cert, key) = self_signed_certificate();
    let s = server()
        .app("environ.wsgi")
        .file("cert.pem", &cert)
        .file("key.pem", &key)
        .module("socache_shmcb")
        .module("ssl")
        .config(
            "SSLEngine on\n\
             SSLCertificateFile @DIR@/cert.pem\n\
             SSLCertificateKeyFile @DIR@/key.pem\n\
             WSGIDaemonProcess g threads=1\n\
             WSGIScriptAlias /d @DIR@/environ.wsgi process-group=g\n\
             WSGIScriptAlias /e @DIR@/environ.wsgi\n",
        )
        .start();
    for path in ["/d", "/e"] {
        let out = std::process::Command::new("curl")
            .args(["-sSk", &format!("https://127.0.0.1:{}{path}", s.port())])
            .output()
            .expect("curl runs");
        let env = parse_kv(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(env.get("wsgi.url_scheme").map(String::as_str), Some("'https'"), "{path}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(env.get("REQUEST_SCHEME").map(String::as_str), Some("'https'"), "{path}");
        assert!(!env.contains_key("HTTPS"), "{path}");
    }
}

/// A throwaway certificate for 127.0.0.1 and its key (PEM), made with openssl.
fn self_signed_certificate() -> (Vec<u8>, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("mod_wsgi-test-cert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let pair = (std::fs::read(dir.join("cert.pem")).unwrap(), std::fs::read(dir.join("key.pem")).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
    pair
}
