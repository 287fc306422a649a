//! WSGIPythonHome and WSGIPythonPath in embedded mode (Python in Apache's children).

mod support;

use support::{TempDir, make_venv, py_str, server};

#[test]
fn python_home_selects_a_virtual_environment_in_embedded_mode() {
    let venv_dir = TempDir::new("venv");
    let venv = make_venv(venv_dir.path());
    let s = server()
        .app("daemon.wsgi")
        .config(&format!("WSGIPythonHome {}\nWSGIScriptAlias /e @DIR@/daemon.wsgi\n", venv.display()))
        .start();
    let env = s.get_kv("/e/info");
    let v = venv.display().to_string();
    assert_eq!(env["sys.prefix"], py_str(&v));
    assert_eq!(env["venv_only_module"], "'from-venv'");
    assert!(!env["sys.path"].contains("/usr/lib/python3/dist-packages"), "{}", env["sys.path"]);
    drop(s);
    drop(venv_dir);
}

#[test]
fn python_path_is_searched_first_in_embedded_mode() {
    let s = server()
        .app("daemon.wsgi")
        .file("pp/venv_only_module.py", b"VALUE = 'from-python-path'\n")
        .config("WSGIPythonPath @DIR@/pp\nWSGIScriptAlias /e @DIR@/daemon.wsgi\n")
        .start();
    let env = s.get_kv("/e/info");
    assert_eq!(env["venv_only_module"], "'from-python-path'");
    let pp = format!("{}/pp", s.dir().display());
    assert!(env["sys.path"].starts_with(&format!("[{}, ", py_str(&pp))), "{}", env["sys.path"]);
}
