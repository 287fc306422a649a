//! `mod_wsgi-express`: serve a WSGI application with Apache and this mod_wsgi, without
//! writing any Apache configuration. See `mod_wsgi-express --help`.

mod express;

use express::options::{self, AppType, Options};
use express::{checks, module_file, server_root};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: mod_wsgi-express COMMAND [options]

commands:
  start-server SCRIPT [options]   write a server root and run Apache in the foreground
  setup-server SCRIPT [options]   write the server root only (run it with its apachectl)
  module-config                   print the LoadModule line (and WSGIPythonHome for a venv)
  module-location                 print the path of the module
  install-module                  copy the module into Apache's module directory

start-server / setup-server options:
  --host ADDR (127.0.0.1)   --port N (8000)        --server-root DIR
  --processes N (1)         --threads N (5)        --embedded-mode
  --user NAME  --group NAME (as root; default www-data)
  --python-home DIR ($VIRTUAL_ENV)                  --python-path DIR (repeatable)
  --application-type script|module (module: SCRIPT is pkg.mod:app)
  --mount-point URL (/)     --url-alias URL PATH    --include-file FILE
  --maximum-requests N      --request-timeout S (60) --queue-timeout S (45)
  --reload-on-changes       --log-to-terminal       --module-path FILE.so
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("start-server") => start_server(&args[1..]),
        Some("setup-server") => setup_server(&args[1..]).map(|_| ()),
        Some("module-config") => module_config(&args[1..]),
        Some("module-location") => module_location(&args[1..]),
        Some("install-module") => install_module(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!(
            "unknown command {other:?}: see mod_wsgi-express --help"
        )),
        None => Err("no command given: see mod_wsgi-express --help".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("mod_wsgi-express: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Checks, then writes the server root; returns the options and what was written.
fn prepare(args: &[String]) -> Result<(Options, server_root::ServerRoot), String> {
    let o = options::parse(args)?;
    checks::apache_installed()?;
    if o.app_type == AppType::Script {
        checks::script_exists(&server_root::script_path(&o)?)?;
    }
    if let Some(home) = &o.python_home {
        checks::venv_matches(home)?;
        checks::python_home_readable(home, o.user.as_deref())?;
    }
    let module = module_file::locate(o.module_path.as_deref())?;
    let root = server_root::write(&o, &module)?;
    Ok((o, root))
}

fn setup_server(args: &[String]) -> Result<(Options, server_root::ServerRoot), String> {
    let (o, root) = prepare(args)?;
    println!("Server URL         : {}", url(&o));
    println!("Server Root        : {}", root.dir.display());
    println!("Server Conf        : {}", root.httpd_conf.display());
    match &root.error_log {
        Some(log) => println!("Error Log File     : {}", log.display()),
        None => println!("Error Log File     : (the terminal)"),
    }
    println!(
        "Control Script     : {}",
        root.dir.join("apachectl").display()
    );
    Ok((o, root))
}

fn start_server(args: &[String]) -> Result<(), String> {
    // The port is checked before anything is written, so a busy port leaves no files behind.
    let o = options::parse(args)?;
    checks::apache_installed()?;
    checks::port_free(&o.host, o.port)?;
    let (_, root) = setup_server(args)?;
    println!("Running Apache in the foreground: Ctrl-C stops it.");
    let _ = std::io::stdout().flush();
    // Replacing this process with Apache makes a signal to it (Ctrl-C, SIGTERM) reach Apache,
    // which stops its children and daemon processes.
    let err = Command::new(checks::APACHE)
        .arg("-f")
        .arg(&root.httpd_conf)
        .arg("-DFOREGROUND")
        .exec();
    Err(format!("cannot run {}: {err}", checks::APACHE))
}

fn url(o: &Options) -> String {
    let mount = if o.mount_point.ends_with('/') {
        o.mount_point.clone()
    } else {
        format!("{}/", o.mount_point)
    };
    format!("http://{}:{}{mount}", o.host, o.port)
}

/// Options of module-config / module-location / install-module: only --module-path (and,
/// for install-module, --libexecdir and --mods-available, to install elsewhere).
fn module_options(args: &[String], extra: &[&str]) -> Result<Vec<(String, PathBuf)>, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let known = name == "--module-path" || extra.contains(&name.as_str());
        if !known {
            return Err(format!(
                "unexpected argument {arg:?}: see mod_wsgi-express --help"
            ));
        }
        let value = value
            .or_else(|| it.next().cloned())
            .ok_or(format!("{name} needs a value"))?;
        out.push((name, PathBuf::from(value)));
    }
    Ok(out)
}

fn option(opts: &[(String, PathBuf)], name: &str) -> Option<PathBuf> {
    opts.iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

fn module_config(args: &[String]) -> Result<(), String> {
    let opts = module_options(args, &[])?;
    let module = module_file::locate(option(&opts, "--module-path").as_deref())?;
    println!("LoadModule wsgi_module \"{}\"", module.display());
    if let Some(venv) = express::python_env::default_python_home() {
        println!("WSGIPythonHome \"{}\"", venv.display());
    }
    Ok(())
}

fn module_location(args: &[String]) -> Result<(), String> {
    let opts = module_options(args, &[])?;
    let module = module_file::locate(option(&opts, "--module-path").as_deref())?;
    println!("{}", module.display());
    Ok(())
}

fn install_module(args: &[String]) -> Result<(), String> {
    let opts = module_options(args, &["--libexecdir", "--mods-available"])?;
    let module = module_file::locate(option(&opts, "--module-path").as_deref())?;
    let done = module_file::install(
        &module,
        option(&opts, "--libexecdir"),
        option(&opts, "--mods-available"),
    )?;
    for line in done {
        println!("{line}");
    }
    Ok(())
}
