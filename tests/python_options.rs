//! WSGIPythonHashSeed, WSGIPythonWarnings, WSGIDontWriteBytecode and WSGIPythonEggs (and a
//! daemon's python-eggs=) as the application's interpreter sees them; the locale and the
//! main thread Python starts with.

mod support;

use support::server;

#[test]
fn python_directives_configure_the_interpreter() {
    let s = server()
        .app("python_options.wsgi")
        .config(
            "WSGIPythonHashSeed 0\n\
             WSGIPythonWarnings ignore::DeprecationWarning\n\
             WSGIPythonWarnings error::ResourceWarning\n\
             WSGIDontWriteBytecode On\n\
             WSGIPythonEggs /tmp/embedded-eggs\n\
             WSGIDaemonProcess d threads=1 python-eggs=/tmp/daemon-eggs\n\
             WSGIScriptAlias /embedded @DIR@/python_options.wsgi\n\
             WSGIScriptAlias /daemon @DIR@/python_options.wsgi process-group=d\n",
        )
        .start();
    let embedded = s.get_kv("/embedded");
    assert_eq!(embedded["hash_randomization"], "0");
    assert_eq!(embedded["dont_write_bytecode"], "True");
    assert_eq!(embedded["warnoptions"], "['ignore::DeprecationWarning', 'error::ResourceWarning']");
    assert_eq!(embedded["egg_cache"], "'/tmp/embedded-eggs'");

    let daemon = s.get_kv("/daemon");
    assert_eq!(daemon["hash_randomization"], "0");
    assert_eq!(daemon["hash"], embedded["hash"], "the same fixed seed in both processes");
    assert_eq!(daemon["dont_write_bytecode"], "True");
    assert_eq!(daemon["egg_cache"], "'/tmp/daemon-eggs'");
}

#[test]
fn without_them_python_keeps_its_defaults() {
    let s = server()
        .app("python_options.wsgi")
        .config("WSGIScriptAlias /embedded @DIR@/python_options.wsgi\n")
        .start();
    let env = s.get_kv("/embedded");
    assert_eq!(env["hash_randomization"], "1");
    assert_eq!(env["dont_write_bytecode"], "False");
    assert_eq!(env["warnoptions"], "[]");
    assert_eq!(env["egg_cache"], "None");
}

#[test]
fn python_keeps_apaches_locale_and_its_own_main_thread() {
    // Apache runs with LANG=C here, as Debian's envvars start it: Python keeps
    // that locale (no UTF-8 mode, no LC_CTYPE coerced into os.environ), as
    // under the C module; a daemon's lang= / locale= choose another.
    let s = server()
        .app("python_options.wsgi")
        .config(
            "WSGIDaemonProcess d threads=1\n\
             WSGIDaemonProcess utf8 threads=1 lang=C.UTF-8 locale=C.UTF-8\n\
             WSGIScriptAlias /embedded @DIR@/python_options.wsgi application-group=%{GLOBAL}\n\
             WSGIScriptAlias /daemon @DIR@/python_options.wsgi process-group=d application-group=%{GLOBAL}\n\
             WSGIScriptAlias /utf8 @DIR@/python_options.wsgi process-group=utf8 application-group=%{GLOBAL}\n",
        )
        .start();
    for path in ["/embedded", "/daemon"] {
        let env = s.get_kv(path);
        assert_eq!(env["utf8_mode"], "0", "{path}");
        assert_eq!(env["filesystem_encoding"], "'ascii'", "{path}");
        assert_eq!(env["preferred_encoding"], "'ANSI_X3.4-1968'", "{path}");
        assert_eq!(env["lc_ctype"], "None", "{path}");
        // Requests run on threads of their own, not on Python's main thread.
        assert_eq!(env["main_thread"], "False", "{path}");
    }
    let utf8 = s.get_kv("/utf8");
    assert_eq!((utf8["filesystem_encoding"].as_str(), utf8["preferred_encoding"].as_str()), ("'utf-8'", "'UTF-8'"));
}
