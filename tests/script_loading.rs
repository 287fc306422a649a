//! How a script file becomes a module and which callable is used: module naming (and
//! WSGICaseSensitivity), __file__,
//! WSGICallableObject / callable-object=, and AddHandler wsgi-script with Options ExecCGI.

mod support;

use support::{md5_hex, py_str, server};

#[test]
fn script_is_loaded_as_module_named_after_md5_of_its_path() {
    let s = server()
        .app_as("environ.wsgi", "Site/Environ.wsgi")
        .config("WSGIScriptAlias /app @DIR@/Site/Environ.wsgi\n")
        .start();
    let env = s.get_kv("/app");
    let path = format!("{}/Site/Environ.wsgi", s.dir().display());
    // mod_wsgi hashes the path in lower case while WSGICaseSensitivity is On,
    // its default here.
    assert_eq!(
        env["module_name"],
        py_str(&format!("_mod_wsgi_{}", md5_hex(path.to_ascii_lowercase().as_bytes())))
    );
    assert_eq!(env["module_file"], py_str(&path));
    // The module is registered in sys.modules (of its interpreter).
    assert_eq!(env["sys_modules_has_script"], "True");
}

#[test]
fn case_sensitivity_off_names_the_module_after_the_path_as_given() {
    let s = server()
        .app_as("environ.wsgi", "Site/Environ.wsgi")
        .config(
            "WSGICaseSensitivity Off\n\
             WSGIDaemonProcess d threads=1\n\
             WSGIScriptAlias /app @DIR@/Site/Environ.wsgi\n\
             WSGIScriptAlias /daemon @DIR@/Site/Environ.wsgi process-group=d\n",
        )
        .start();
    let path = format!("{}/Site/Environ.wsgi", s.dir().display());
    let expected = py_str(&format!("_mod_wsgi_{}", md5_hex(path.as_bytes())));
    assert_eq!(s.get_kv("/app")["module_name"], expected);
    assert_eq!(s.get_kv("/daemon")["module_name"], expected);
}

#[test]
fn callable_is_chosen_by_directive_and_alias_option() {
    let s = server()
        .app("environ.wsgi")
        .config(
            "WSGIScriptAlias /default @DIR@/environ.wsgi\n\
             WSGIScriptAlias /option @DIR@/environ.wsgi callable-object=other\n\
             WSGIScriptAlias /directive @DIR@/environ.wsgi\n\
             <Location /directive>\n  WSGICallableObject other\n</Location>\n",
        )
        .start();
    let env = s.get_kv("/default");
    assert_eq!(env["callable"], "'application'");
    assert_eq!(env["mod_wsgi.callable_object"], "'application'");
    for path in ["/option", "/directive"] {
        let env = s.get_kv(path);
        assert_eq!(env["callable"], "'other'", "{path}");
        assert_eq!(env["mod_wsgi.callable_object"], "'other'", "{path}");
    }
}

#[test]
fn add_handler_runs_scripts_where_exec_cgi_is_on() {
    let s = server()
        .app_as("environ.wsgi", "htdocs/exec/e.wsgi")
        .app_as("environ.wsgi", "htdocs/noexec/e.wsgi")
        .config(
            "<Directory @DIR@/htdocs/exec>\n  Options ExecCGI\n  AddHandler wsgi-script .wsgi\n</Directory>\n\
             <Directory @DIR@/htdocs/noexec>\n  AddHandler wsgi-script .wsgi\n</Directory>\n",
        )
        .start();
    let env = s.get_kv("/exec/e.wsgi/pi");
    assert_eq!(env["SCRIPT_NAME"], "'/exec/e.wsgi'");
    assert_eq!(env["PATH_INFO"], "'/pi'");
    assert_eq!(env["mod_wsgi.request_handler"], "'wsgi-script'");
    assert_eq!(
        env["mod_wsgi.application_group"],
        py_str(&format!("127.0.0.1:{}|/exec/e.wsgi", s.port()))
    );

    // Without ExecCGI: forbidden, and the log says why.
    assert_eq!(s.get("/noexec/e.wsgi").status, 403);
    s.expect_log(&format!(
        "Options ExecCGI is off in this directory: {}/htdocs/noexec/e.wsgi",
        s.dir().display()
    ));
}
