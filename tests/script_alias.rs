//! WSGIScriptAlias / WSGIScriptAliasMatch: which URLs reach the script, and how the URL is split
//! into SCRIPT_NAME and PATH_INFO.

mod support;

use support::{Server, parse_kv, py_str, server};

fn alias_server() -> Server {
    server()
        .app("environ.wsgi")
        .app_as("environ.wsgi", "scripts/x.wsgi")
        .app_as("environ.wsgi", "scripts/y.wsgi")
        .config(
            "WSGIScriptAlias /app @DIR@/environ.wsgi\n\
             WSGIScriptAlias /slash/ @DIR@/environ.wsgi/\n\
             WSGIScriptAlias /d/ @DIR@/scripts/\n\
             WSGIScriptAliasMatch ^/m/([^/]+) @DIR@/scripts/$1.wsgi\n",
        )
        .start()
}

/// GETs `path` and returns (status, SCRIPT_NAME, PATH_INFO) with the values as Python ascii().
fn split(s: &Server, path: &str) -> (u16, String, String) {
    let r = s.get(path);
    let env = parse_kv(&r.text());
    let get = |k: &str| env.get(k).cloned().unwrap_or_default();
    (r.status, get("SCRIPT_NAME"), get("PATH_INFO"))
}

fn ok(script_name: &str, path_info: &str) -> (u16, String, String) {
    (200, py_str(script_name), py_str(path_info))
}

#[test]
fn alias_prefix_matches_whole_path_segments() {
    let s = alias_server();
    assert_eq!(split(&s, "/app"), ok("/app", ""));
    assert_eq!(split(&s, "/app/"), ok("/app", "/"));
    assert_eq!(split(&s, "/app/x/y"), ok("/app", "/x/y"));
    // Runs of slashes count as one, as with mod_alias; PATH_INFO comes out normalised.
    assert_eq!(split(&s, "//app//x"), ok("/app", "/x"));
    // Dot segments are resolved by Apache before matching.
    assert_eq!(split(&s, "/app/./x/../y"), ok("/app", "/y"));
    // A longer segment is not the alias.
    assert_eq!(s.get("/application").status, 404);
    assert_eq!(s.get("/app%20x").status, 404);
}

#[test]
fn alias_with_trailing_slash_needs_the_slash() {
    let s = alias_server();
    assert_eq!(s.get("/slash").status, 404);
    assert_eq!(split(&s, "/slash/"), ok("/slash", "/"));
    assert_eq!(split(&s, "/slash/z"), ok("/slash", "/z"));
}

#[test]
fn script_mounted_at_root_has_empty_script_name() {
    let s = server()
        .app("environ.wsgi")
        .config("WSGIScriptAlias / @DIR@/environ.wsgi\n")
        .start();
    assert_eq!(split(&s, "/"), ok("", "/"));
    assert_eq!(split(&s, "/a/b"), ok("", "/a/b"));
}

#[test]
fn percent_encoding_is_decoded_in_path_info_but_not_in_request_uri() {
    let s = alias_server();
    let env = parse_kv(&s.get("/app/a%20b?x=%20y&z").text());
    assert_eq!(env["PATH_INFO"], "'/a b'");
    assert_eq!(env["REQUEST_URI"], "'/app/a%20b?x=%20y&z'");
    assert_eq!(env["QUERY_STRING"], "'x=%20y&z'");
    // An encoded '?' is part of the path.
    assert_eq!(split(&s, "/app/a%3Fb"), ok("/app", "/a?b"));
    // An encoded slash is refused by Apache itself (AllowEncodedSlashes Off).
    assert_eq!(s.get("/app/a%2Fb").status, 404);
}

#[test]
fn utf8_path_is_decoded_as_latin1() {
    // PEP 3333: PATH_INFO holds the URL's bytes, each byte one character.
    let s = alias_server();
    assert_eq!(split(&s, "/app/%C3%A9"), ok("/app", "/\u{c3}\u{a9}"));
    // Raw UTF-8 on the request line gives the same, and REQUEST_URI keeps the raw bytes.
    let r = s.raw("GET /app/\u{e9} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".as_bytes());
    let env = parse_kv(&r.text());
    assert_eq!(env["PATH_INFO"], r"'/\xc3\xa9'");
    assert_eq!(env["REQUEST_URI"], r"'/app/\xc3\xa9'");
}

#[test]
fn alias_match_substitutes_capture_groups() {
    let s = alias_server();
    let env = s.get_kv("/m/x");
    assert_eq!(env["SCRIPT_NAME"], "'/m/x'");
    assert_eq!(env["PATH_INFO"], "''");
    assert_eq!(
        env["SCRIPT_FILENAME"],
        py_str(&format!("{}/scripts/x.wsgi", s.dir().display()))
    );
    // The matched part is SCRIPT_NAME, the rest PATH_INFO.
    let env = s.get_kv("/m/y/zz");
    assert_eq!(env["SCRIPT_NAME"], "'/m/y'");
    assert_eq!(env["PATH_INFO"], "'/zz'");
    assert_eq!(
        env["SCRIPT_FILENAME"],
        py_str(&format!("{}/scripts/y.wsgi", s.dir().display()))
    );
    // Substituted target that does not exist.
    assert_eq!(s.get("/m/q").status, 404);
    s.expect_log(&format!(
        "Target WSGI script not found or unable to stat: {}/scripts/q.wsgi",
        s.dir().display()
    ));
}

#[test]
fn directory_target_runs_the_named_script() {
    let s = alias_server();
    let env = s.get_kv("/d/x.wsgi");
    assert_eq!(env["SCRIPT_NAME"], "'/d/x.wsgi'");
    assert_eq!(env["PATH_INFO"], "''");
    assert_eq!(
        env["SCRIPT_FILENAME"],
        py_str(&format!("{}/scripts/x.wsgi", s.dir().display()))
    );
    assert_eq!(split(&s, "/d/y.wsgi/more"), ok("/d/y.wsgi", "/more"));
    // The directory itself is not an application.
    assert_eq!(s.get("/d/").status, 403);
    s.expect_log(&format!(
        "Attempt to invoke directory as WSGI application: {}/scripts/",
        s.dir().display()
    ));
    assert_eq!(s.get("/d/nope.wsgi").status, 404);
}
