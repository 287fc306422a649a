//! A daemon process: forked from the Apache parent, it takes on the group's
//! identity and environment, starts Python, and serves requests from the
//! group's socket until told to stop.

use std::os::unix::net::UnixStream;
use std::sync::Arc;

use super::os;
use super::server;
use super::groups::Group;
use crate::apache::{log, process};
use crate::python::{self, Level};

/// The daemon process's main; returns its exit code. `failed_generations`:
/// how many processes before it in its slot failed their startup in a row.
pub fn run(group: &Arc<Group>, _slot: u32, supervisor: UnixStream, failed_generations: u32) -> i32 {
    let config = &group.config;
    // Code running as this group's user must not speak for another group.
    super::origin::keep_only(&config.name);
    os::block_stop_signals();
    os::die_with_parent();
    if let Some(title) = config.process_title() {
        process::set_title(group.main_server as *const _, &title);
    }
    let environment = match take_identity(group) {
        Ok(environment) => environment,
        Err(msg) => {
            let pid = std::process::id();
            log::server(Level::Error, &format!("mod_wsgi (pid={pid}): {msg}"));
            log::server(Level::Error, &format!("mod_wsgi (pid={pid}): Failure to configure the daemon process correctly and process left in unspecified state. Restarting daemon process after delay."));
            // Wait before exiting so a misconfigured group is not re-forked in a tight loop.
            std::thread::sleep(std::time::Duration::from_secs(1));
            return 1;
        }
    };
    super::succession::install(supervisor, failed_generations);
    python::set_server_log(log::server);
    let server = crate::interpreter_options::for_server(group.server);
    let options = python::interpreter::Options {
        home: config.python_home.clone().or(server.home.clone()),
        // python-path= only: WSGIPythonPath is for Apache's children.
        path: config.python_path.clone(),
        eggs: config.python_eggs.clone().or(server.eggs.clone()),
        home_on_path: config.home.clone(),
        environment,
        locale: config.locale.clone(),
        process_group: config.name.clone(),
        maximum_processes: config.processes.max(1),
        threads_per_process: config.threads.max(1),
        ..server
    };
    log::server(
        Level::Info,
        &format!(
            "mod_wsgi (pid={}): Starting process '{}' with uid={}, gid={} and threads={}.",
            std::process::id(),
            config.name,
            os::ids().0,
            os::ids().1,
            config.threads
        ),
    );
    if let Err(msg) = python::interpreter::start(&options) {
        log::server(Level::Error, &format!("mod_wsgi (pid={}): {msg}", std::process::id()));
        return 1;
    }
    crate::preload::run(&group.configs, &config.name);
    let code = server::serve(group);
    log::server(Level::Info, &format!("mod_wsgi (pid={}): Stopping process '{}'.", std::process::id(), config.name));
    // ASGI lifespan shutdown, within graceful-timeout (else shutdown-timeout,
    // after which the process is ended anyway).
    let lifespan_limit = if config.graceful_timeout.is_zero() { config.shutdown_timeout } else { config.graceful_timeout };
    python::stop_asgi_loops(lifespan_limit);
    if group.server.destroy_interpreter() {
        python::interpreter::stop();
    }
    log::server(Level::Info, &format!("mod_wsgi (pid={}): Exiting process '{}'.", std::process::id(), config.name));
    code
}

/// user=, group=, home=, umask= of WSGIDaemonProcess; the environment
/// variables Python is to start with (HOME, and lang= / locale=).
fn take_identity(group: &Group) -> Result<Vec<(String, String)>, String> {
    let config = &group.config;
    let (apache_uid, apache_gid) = process::apache_identity();
    let uid = config.uid.unwrap_or(apache_uid);
    let gid = config.gid.unwrap_or(apache_gid);
    if uid == 0 {
        return Err("WSGI process blocked from running as root.".into());
    }
    let user = crate::config::user_name(uid).unwrap_or_else(|| uid.to_string());
    // Before giving up root: only root may raise the priority or a hard limit.
    set_limits(config);
    if os::is_root() {
        os::become_user(&user, uid, gid, &config.supplementary_gids).map_err(|e| format!("Unable to change to uid={uid} gid={gid} for daemon process '{}': {e}", config.name))?;
    }
    // HOME is the user's home; the working directory is home=, else that home
    // when the group runs as someone other than Apache's user, else Apache's.
    let user_home = crate::config::user_home(uid);
    if let Some(dir) = &config.home {
        std::env::set_current_dir(dir).map_err(|e| format!("Unable to change working directory to '{dir}': {e}"))?;
    } else if uid != apache_uid
        && let Some(dir) = &user_home
    {
        std::env::set_current_dir(dir).map_err(|_| format!("Unable to change working directory to home directory '{dir}' for uid={uid}."))?;
    }
    if let Some(mask) = config.umask {
        os::set_umask(mask);
    }
    let mut environment = Vec::new();
    if let Some(dir) = user_home {
        environment.push(("HOME".to_owned(), dir));
    }
    if let Some(lang) = &config.lang {
        environment.push(("LANG".to_owned(), lang.clone()));
    }
    if let Some(locale) = &config.locale {
        environment.push(("LC_ALL".to_owned(), locale.clone()));
    }
    Ok(environment)
}

/// cpu-priority=, cpu-time-limit=, memory-limit= and virtual-memory-limit=.
/// One that cannot be applied is logged and the process runs without it.
fn set_limits(config: &crate::config::DaemonProcess) {
    let name = &config.name;
    let pid = std::process::id();
    let report = |result: std::io::Result<()>, what: String| {
        if let Err(e) = result {
            log::server(Level::Error, &format!("mod_wsgi (pid={pid}): Couldn't set {what} for daemon process '{name}': {e}"));
        }
    };
    if config.cpu_priority != 0 {
        report(os::set_priority(config.cpu_priority), format!("CPU priority {}", config.cpu_priority));
    }
    let cpu = config.cpu_time_limit.as_secs();
    if cpu > 0 {
        // SIGXCPU at the limit starts a graceful stop; the kernel's SIGKILL
        // comes only after shutdown-timeout more seconds of CPU.
        let hard = cpu + config.shutdown_timeout.as_secs() + 1;
        report(os::set_limit(os::Limit::CpuSeconds, cpu, hard), format!("CPU time limit of {cpu} seconds"));
    }
    for (limit, bytes, what) in [
        (os::Limit::DataBytes, config.memory_limit, "memory limit"),
        (os::Limit::AddressSpaceBytes, config.virtual_memory_limit, "virtual memory limit"),
    ] {
        if bytes > 0 {
            report(os::set_limit(limit, bytes, bytes), format!("{what} of {bytes} bytes"));
        }
    }
}
