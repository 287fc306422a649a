//! WSGIScriptReloading in embedded mode: a changed script file is reloaded on the next request
//! (On, the default); with Off the loaded module stays.

mod support;

use std::fs;
use std::time::{Duration, SystemTime};
use support::{Server, server};

/// Rewrites the script's VERSION and pushes its mtime forward, so no sleep is needed.
fn edit_script(s: &Server, name: &str) {
    let path = s.dir().join(name);
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("VERSION = 'v1'", "VERSION = 'v2'");
    fs::write(&path, text).unwrap();
    let f = fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(10))
        .unwrap();
}

#[test]
fn changed_script_is_reloaded_unless_reloading_is_off() {
    let s = server()
        .app("state.wsgi")
        .app_as("state.wsgi", "fixed.wsgi")
        .config(
            "WSGIScriptAlias /live @DIR@/state.wsgi\n\
             WSGIScriptAlias /fixed @DIR@/fixed.wsgi\n\
             <Location /fixed>\n  WSGIScriptReloading Off\n</Location>\n",
        )
        .start();
    for path in ["/live", "/fixed"] {
        let env = s.get_kv(path);
        assert_eq!(
            (env["version"].as_str(), env["counter"].as_str()),
            ("'v1'", "1"),
            "{path}"
        );
        assert_eq!(s.get_kv(path)["counter"], "2", "{path}");
    }
    edit_script(&s, "state.wsgi");
    edit_script(&s, "fixed.wsgi");

    // Reloaded: new code, fresh module state, and the reload is logged.
    let env = s.get_kv("/live");
    assert_eq!(
        (env["version"].as_str(), env["counter"].as_str()),
        ("'v2'", "1")
    );
    assert_eq!(
        env["shared"], "True",
        "reloading replaces the module, not the interpreter"
    );
    s.expect_log(&format!(
        "Reloading WSGI script '{}/state.wsgi'.",
        s.dir().display()
    ));

    // Not reloaded: the module loaded first keeps serving.
    let env = s.get_kv("/fixed");
    assert_eq!(
        (env["version"].as_str(), env["counter"].as_str()),
        ("'v1'", "3")
    );
    assert_eq!(env["script_reloading"], "'0'");
    assert_eq!(s.get_kv("/live")["script_reloading"], "'1'");
}
