//! Invalid directives make `apache2 -t` fail, naming the file, the line and the problem.
//! Messages start as the C mod_wsgi 4.9.4 ones (matched as a substring); ours go on to name
//! the offending option, and refuse a few values C lets through (see `is_reference`).

mod support;

use support::{configtest, is_reference, server};

/// Runs `apache2 -t` with `snippet` as test.conf and expects a syntax error at `line` of
/// test.conf with `message` in the output.
fn assert_rejected(snippet: &str, line: usize, message: &str) {
    let (ok, out) = configtest(snippet);
    assert!(!ok, "accepted: {snippet:?}\n{out}");
    assert!(
        out.contains(&format!("Syntax error on line {line} of @DIR@/test.conf:")),
        "{snippet:?}: wrong or missing location:\n{out}"
    );
    assert!(
        out.contains(message),
        "{snippet:?}: expected {message:?} in:\n{out}"
    );
}

/// Ours also names the option the message is about.
fn assert_rejected_naming(snippet: &str, line: usize, message: &str, option: &str) {
    assert_rejected(snippet, line, message);
    if !is_reference() {
        let (_, out) = configtest(snippet);
        assert!(out.contains(option), "{snippet:?}: message does not name {option:?}:\n{out}");
    }
}

#[test]
fn unknown_daemon_process_option_is_rejected() {
    assert_rejected_naming(
        "WSGIDaemonProcess g bogus=1\n",
        1,
        "Invalid option to WSGI daemon process definition",
        "bogus=1",
    );
}

#[test]
fn bad_daemon_process_counts_are_rejected() {
    assert_rejected(
        "WSGIDaemonProcess g processes=0\n",
        1,
        "Invalid process count for WSGI daemon process.",
    );
    assert_rejected_naming(
        "WSGIDaemonProcess g processes=abc\n",
        1,
        "Invalid process count for WSGI daemon process",
        "processes=abc",
    );
    assert_rejected(
        "WSGIDaemonProcess g threads=-1\n",
        1,
        "Invalid thread count for WSGI daemon process",
    );
    assert_rejected(
        "WSGIDaemonProcess g maximum-requests=-5\n",
        1,
        "Invalid request count for WSGI daemon process",
    );
    assert_rejected(
        "WSGIDaemonProcess g umask=999\n",
        1,
        "Invalid umask for WSGI daemon process",
    );
}

#[test]
fn bad_request_buffer_sizes_are_rejected() {
    for (value, problem) in [("abc", "is not a whole number"), ("-1", "is negative"), ("1073741825", "is above 1073741824 (1 GiB)")] {
        let snippet = format!("WSGIDaemonProcess g request-buffer-size={value}\n");
        if is_reference() {
            // The C module has no request-buffer-size= at all.
            assert_rejected(&snippet, 1, "Invalid option to WSGI daemon process definition");
        } else {
            assert_rejected(&snippet, 1, &format!("Invalid request buffer size for WSGI daemon process: request-buffer-size={value} {problem}."));
        }
    }
}

#[test]
fn non_numeric_thread_count_is_refused_where_c_reads_zero() {
    // C mod_wsgi 4.9.4 parses threads= with atoi() and only refuses negative values, so
    // `threads=abc` silently becomes 0; ours says what is wrong. threads=0 is valid in both.
    let (ok, out) = configtest("WSGIDaemonProcess g threads=0\n");
    assert!(ok, "threads=0:\n{out}");
    if is_reference() {
        let (ok, out) = configtest("WSGIDaemonProcess g threads=abc\n");
        assert!(ok, "threads=abc:\n{out}");
    } else {
        assert_rejected_naming("WSGIDaemonProcess g threads=abc\n", 1, "Invalid thread count for WSGI daemon process", "threads=abc");
    }
}

#[test]
fn duplicate_daemon_process_name_is_rejected() {
    assert_rejected(
        "WSGIDaemonProcess g\nWSGIDaemonProcess g\n",
        2,
        "Name duplicates previous WSGI daemon definition.",
    );
}

#[test]
fn daemon_process_as_root_is_refused() {
    assert_rejected(
        "WSGIDaemonProcess g user=root\n",
        1,
        "WSGI process blocked from running as root.",
    );
    assert_rejected(
        "WSGIDaemonProcess g user=#0\n",
        1,
        "WSGI process blocked from running as root.",
    );
}

#[test]
fn bad_script_alias_options_are_rejected() {
    assert_rejected_naming(
        "WSGIScriptAlias /a /tmp/x.wsgi bogus=1\n",
        1,
        "Invalid option to WSGI script alias definition",
        "bogus=1",
    );
    assert_rejected(
        "WSGIScriptAlias /a /tmp/x.wsgi pass-authorization=maybe\n",
        1,
        "Invalid value for authorization flag.",
    );
    assert_rejected(
        "WSGIScriptAlias /a\n",
        1,
        "WSGIScriptAlias requires at least two arguments",
    );
}

#[test]
fn unknown_process_group_in_script_alias_fails_the_syntax_check() {
    // C mod_wsgi 4.9.4 does not check process-group= against the defined groups at config
    // time and fails each request instead; ours refuses the configuration, naming the group.
    let snippet = "WSGIScriptAlias /a @DIR@/hello.wsgi process-group=nosuch\n";
    let (ok, out) = configtest(snippet);
    if is_reference() {
        assert!(ok, "{out}");
        let s = server().app("hello.wsgi").config(snippet).start();
        assert_eq!(s.get("/a").status, 500);
        s.expect_log(&format!(
            "No WSGI daemon process called 'nosuch' has been configured: {}/hello.wsgi",
            s.dir().display()
        ));
    } else {
        assert!(!ok, "accepted:\n{out}");
        assert!(out.contains("No WSGI daemon process called 'nosuch' has been configured"), "{out}");
    }
}

#[test]
fn unknown_process_group_in_a_location_fails_its_requests() {
    // A group chosen per location is only known per request, in both modules.
    let snippet = "WSGIScriptAlias /b @DIR@/hello.wsgi\n\
                   <Location /b>\n  WSGIProcessGroup nosuch2\n</Location>\n";
    let (ok, out) = configtest(snippet);
    assert!(ok, "{out}");
    let s = server().app("hello.wsgi").config(snippet).start();
    assert_eq!(s.get("/b").status, 500);
    s.expect_log(&format!(
        "No WSGI daemon process called 'nosuch2' has been configured: {}/hello.wsgi",
        s.dir().display()
    ));
}

#[test]
fn directives_outside_their_context_are_rejected() {
    assert_rejected(
        "<Directory /tmp>\n  WSGIDaemonProcess g\n</Directory>\n",
        2,
        "WSGIDaemonProcess not allowed in <Directory> context",
    );
    assert_rejected(
        "<Location /x>\n  WSGIScriptAlias /a /tmp/x.wsgi\n</Location>\n",
        2,
        "WSGIScriptAlias not allowed in <Location> context",
    );
    assert_rejected(
        "<VirtualHost *:80>\n  WSGIPythonHome /usr\n</VirtualHost>\n",
        2,
        "WSGIPythonHome cannot occur within <VirtualHost> section",
    );
}

#[test]
fn bad_flag_values_are_rejected() {
    assert_rejected(
        "WSGIRestrictStdout maybe\n",
        1,
        "WSGIRestrictStdout must be one of: Off | On",
    );
    assert_rejected(
        "WSGIScriptReloading maybe\n",
        1,
        "WSGIScriptReloading must be one of: Off | On",
    );
    assert_rejected(
        "WSGIPassAuthorization maybe\n",
        1,
        "WSGIPassAuthorization must be one of: Off | On",
    );
    assert_rejected(
        "WSGIMapHEADToGET maybe\n",
        1,
        "WSGIMapHEADToGET must be one of: Off | On | Auto",
    );
}

#[test]
fn import_script_needs_its_options() {
    assert_rejected(
        "WSGIImportScript\n",
        1,
        "Location of import script not supplied.",
    );
    assert_rejected(
        "WSGIImportScript /tmp/x.wsgi\n",
        1,
        "Name of WSGI application group required.",
    );
    assert_rejected(
        "WSGIImportScript /tmp/x.wsgi process-group=%{GLOBAL}\n",
        1,
        "Name of WSGI application group required.",
    );
}

#[test]
fn missing_arguments_are_rejected() {
    assert_rejected(
        "WSGIApplicationGroup\n",
        1,
        "WSGIApplicationGroup takes one argument",
    );
}
