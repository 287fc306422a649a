//! WSGIPythonHashSeed, WSGIPythonWarnings, WSGIDontWriteBytecode and WSGIPythonEggs (and a
//! daemon's python-eggs=) as the application's interpreter sees them.

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
