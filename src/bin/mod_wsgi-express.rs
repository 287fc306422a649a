//! `mod_wsgi-express`: serve a WSGI application with Apache and this mod_wsgi, without
//! writing any Apache configuration. See `mod_wsgi-express --help`.

mod express;

use express::options::{self, AppType, Command, InstallArgs, ModuleArgs, Options, Parsed};
use express::{checks, module_file, server_root};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

fn main() -> ExitCode {
    let result = match options::parse(std::env::args_os()) {
        Ok(Command::StartServer(o)) => start_server(&o),
        Ok(Command::SetupServer(o)) => setup_server(&o).map(|_| ()),
        Ok(Command::ModuleConfig(m)) => module_config(&m),
        Ok(Command::ModuleLocation(m)) => module_location(&m),
        Ok(Command::InstallModule(i)) => install_module(&i),
        Err(Parsed::Help(help)) => {
            let _ = help.print();
            return ExitCode::SUCCESS;
        }
        Err(Parsed::Error(msg)) => Err(msg),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("mod_wsgi-express: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Checks made before anything is written.
fn check(o: &Options) -> Result<(), String> {
    checks::apache_installed()?;
    if o.app_type == AppType::Script {
        checks::script_exists(&server_root::script_path(o)?)?;
    }
    if let Some(home) = &o.python_home {
        checks::venv_matches(home)?;
        checks::python_home_readable(home, o.user.as_deref())?;
    }
    checks::option_files(o)
}

/// Checks, writes the server root and says what was written.
fn setup_server(o: &Options) -> Result<server_root::ServerRoot, String> {
    check(o)?;
    let module = module_file::locate(o.module_path.as_deref())?;
    let root = server_root::write(o, &module)?;
    let host = o.server_name.as_deref().unwrap_or(&o.host);
    println!(
        "Server URL         : {}",
        url("http", host, o.port, &o.mount_point)
    );
    if let Some(port) = o.https_port {
        println!(
            "Server URL (HTTPS) : {}",
            url("https", host, port, &o.mount_point)
        );
    }
    if o.server_status {
        println!(
            "Server Status      : {}",
            url("http", host, o.port, "/server-status")
        );
    }
    println!("Server Root        : {}", root.dir.display());
    println!("Server Conf        : {}", root.httpd_conf.display());
    println!("Error Log File     : {} ({})", root.error_log, o.log_level);
    if let Some(access) = &root.access_log {
        println!("Access Log File    : {access}");
    }
    println!("Control Script     : {}", root.apachectl.display());
    Ok(root)
}

fn start_server(o: &Options) -> Result<(), String> {
    // The ports are checked before anything is written, so a busy port leaves no files behind.
    checks::apache_installed()?;
    checks::port_free(&o.host, o.port, "--port")?;
    if let Some(port) = o.https_port {
        checks::port_free(&o.host, port, "--https-port")?;
    }
    let root = setup_server(o)?;
    println!("Running Apache in the foreground: Ctrl-C stops it.");
    let _ = std::io::stdout().flush();
    // apachectl sets the locale and sources envvars, then replaces itself with Apache, so
    // a signal to this process (Ctrl-C, SIGTERM) reaches Apache, which stops its children
    // and daemon processes.
    let err = std::process::Command::new("/bin/sh")
        .arg(&root.apachectl)
        .arg("foreground")
        .exec();
    Err(format!("cannot run {}: {err}", root.apachectl.display()))
}

fn url(scheme: &str, host: &str, port: u16, path: &str) -> String {
    let path = if path.ends_with('/') || path == "/server-status" {
        path.to_string()
    } else {
        format!("{path}/")
    };
    format!("{scheme}://{host}:{port}{path}")
}

fn module_config(m: &ModuleArgs) -> Result<(), String> {
    let module = module_file::locate(m.module_path.as_deref())?;
    println!("LoadModule wsgi_module \"{}\"", module.display());
    if let Some(venv) = express::python_env::default_python_home() {
        println!("WSGIPythonHome \"{}\"", venv.display());
    }
    Ok(())
}

fn module_location(m: &ModuleArgs) -> Result<(), String> {
    let module = module_file::locate(m.module_path.as_deref())?;
    println!("{}", module.display());
    Ok(())
}

fn install_module(i: &InstallArgs) -> Result<(), String> {
    let module = module_file::locate(i.module.module_path.as_deref())?;
    let done = module_file::install(&module, i.libexecdir.clone(), i.mods_available.clone())?;
    for line in done {
        println!("{line}");
    }
    Ok(())
}
