//! Generates Rust bindings for the httpd/APR API from `apache-headers/wrapper.h`,
//! using the include directories the installed httpd and APR report.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn query(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}` ({e}); install apache2-dev"));
    assert!(out.status.success(), "`{program} {}` failed", args.join(" "));
    String::from_utf8(out.stdout).expect("utf-8 output").trim().to_owned()
}

fn main() {
    println!("cargo:rerun-if-changed=apache-headers/wrapper.h");
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    // The interpreter pyo3 links against; Python's sys.executable names it.
    let python = env::var("PYO3_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    println!("cargo:rustc-env=MOD_WSGI_PYTHON_EXECUTABLE={python}");
    // Unit tests link the module's code into an executable without httpd:
    // they exercise pure Rust only, so httpd's symbols may stay unresolved.
    println!("cargo:rustc-link-arg-tests=-Wl,--unresolved-symbols=ignore-all");

    let httpd_include = query("apxs", &["-q", "INCLUDEDIR"]);
    let apr_include = query("apr-1-config", &["--includedir"]);

    let bindings = bindgen::Builder::default()
        .header("apache-headers/wrapper.h")
        .clang_arg(format!("-I{httpd_include}"))
        .clang_arg(format!("-I{apr_include}"))
        .clang_args(["-DLINUX", "-D_REENTRANT", "-D_GNU_SOURCE"])
        .allowlist_function("(ap|apr|apu)_.*")
        .allowlist_type("(ap|apr|apu)_.*|request_rec|server_rec|conn_rec|module|command_rec|cmd_parms|process_rec|core_dir_config|unixd_config_rec|authn_provider|authz_provider|authn_status|authz_status")
        .allowlist_var("(AP|APR|HTTP|OK|DECLINED|DONE|MODULE|OR|ACCESS|RSRC|OPT|REQUEST|APLOG|M|NOT|GLOBAL|EXEC)_.*|AUTHN_.*|AUTHZ_.*|AP_AUTH_.*|OK|DECLINED|DONE|ap_unixd_config|ap_server_root|ap_my_generation|ap_listeners")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen over apache-headers/wrapper.h");

    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("apache_bindings.rs");
    bindings.write_to_file(out).expect("write bindings");
}
