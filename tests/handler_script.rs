//! WSGIHandlerScript: a handler name whose requests the script's handle_request() serves,
//! with the resource in SCRIPT_FILENAME; in embedded and daemon mode.

mod support;

use support::server;

#[test]
fn handler_script_serves_the_resources_its_handler_is_set_for() {
    let s = server()
        .app("handler.wsgi")
        .file("docs/page.md", b"# hello\n")
        .config(
            "WSGIDaemonProcess d threads=2\n\
             WSGIHandlerScript markdown @DIR@/handler.wsgi\n\
             WSGIHandlerScript daemon-markdown @DIR@/handler.wsgi process-group=d application-group=%{GLOBAL}\n\
             Alias /docs @DIR@/docs\n\
             Alias /daemon-docs @DIR@/docs\n\
             <Directory @DIR@/docs>\n  Require all granted\n  AddHandler markdown .md\n</Directory>\n\
             <Location /daemon-docs>\n  SetHandler daemon-markdown\n</Location>\n",
        )
        .start();
    let dir = s.dir().display().to_string();
    let q = |v: &str| format!("'{v}'");

    let env = s.get_kv("/docs/page.md/more");
    assert_eq!(env["resource"], q(&format!("{dir}/docs/page.md")));
    assert_eq!((env["SCRIPT_NAME"].as_str(), env["PATH_INFO"].as_str()), ("'/docs/page.md'", "'/more'"));
    assert_eq!(env["handler_script"], q(&format!("{dir}/handler.wsgi")));
    assert_eq!(env["request_handler"], "'markdown'");
    assert_eq!(env["callable_object"], "'handle_request'");
    assert_eq!(env["process_group"], "''");
    assert_eq!(env["application_group"], q(&format!("127.0.0.1:{}|/docs/page.md", s.port())));

    // The resource need not exist: what it means is the handler script's business.
    let env = s.get_kv("/docs/missing.md");
    assert_eq!(env["exists"], "False");

    // process-group= and application-group= place it like a WSGIScriptAlias.
    let env = s.get_kv("/daemon-docs/page.md");
    assert_eq!(
        (env["process_group"].as_str(), env["application_group"].as_str(), env["request_handler"].as_str()),
        ("'d'", "''", "'daemon-markdown'")
    );
    assert_ne!(env["pid"], s.get_kv("/docs/page.md")["pid"], "served by the daemon");
}
