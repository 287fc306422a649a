//! The directive table httpd reads, built at compile time from
//! `config::DIRECTIVES`. Every directive takes its raw argument line and is
//! parsed by the pure-Rust `config` module.

use std::ffi::{CStr, c_char, c_void};

use super::config::{main_server_registry, server_state_mut};
use super::regex::Regex;
use super::{ffi, guard, pool};
use crate::config::{self, AliasPattern, Context, DIRECTIVES, Target};

const N: usize = DIRECTIVES.len();

/// The NUL-terminated table httpd walks until it meets an all-zero entry.
#[repr(transparent)]
pub struct CommandTable(pub [ffi::command_rec; N + 1]);

// SAFETY: the table is immutable after compilation and holds only pointers
// to static strings and functions.
unsafe impl Sync for CommandTable {}

impl CommandTable {
    pub const fn as_ptr(&self) -> *const ffi::command_rec {
        self.0.as_ptr()
    }
}

/// Which configuration sections a directive may appear in (httpd's req_override).
const fn allowed_in(context: Context) -> i32 {
    (match context {
        Context::MainServer | Context::Server => ffi::RSRC_CONF,
        Context::ServerOrDirectory => ffi::RSRC_CONF | ffi::ACCESS_CONF,
        Context::Anywhere => ffi::RSRC_CONF | ffi::ACCESS_CONF | ffi::OR_FILEINFO,
        Context::AuthConfig => ffi::OR_AUTHCFG,
    }) as i32
}

const fn build() -> [ffi::command_rec; N + 1] {
    const EMPTY: ffi::command_rec = ffi::command_rec {
        name: std::ptr::null(),
        func: ffi::cmd_func { raw_args: None },
        cmd_data: std::ptr::null_mut(),
        req_override: 0,
        args_how: 0,
        errmsg: std::ptr::null(),
    };
    let mut table = [EMPTY; N + 1];
    let mut i = 0;
    while i < N {
        let d = &DIRECTIVES[i];
        table[i] = ffi::command_rec {
            name: d.name.as_ptr(),
            func: ffi::cmd_func { raw_args: Some(set_directive) },
            cmd_data: std::ptr::null_mut(),
            req_override: allowed_in(d.context),
            args_how: ffi::cmd_how_RAW_ARGS,
            errmsg: d.usage.as_ptr(),
        };
        i += 1;
    }
    table
}

pub static COMMANDS: CommandTable = CommandTable(build());

/// The one directive handler: checks the context, then hands the raw line to `config::apply`.
unsafe extern "C" fn set_directive(cmd: *mut ffi::cmd_parms, mconfig: *mut c_void, args: *const c_char) -> *const c_char {
    guard::catch("directive", || {
        // SAFETY: httpd passes the cmd_parms of the directive being read,
        // whose `cmd` is our table entry, and a NUL-terminated argument line.
        let (cmd, name, raw) = unsafe {
            let cmd = &mut *cmd;
            let name = CStr::from_ptr((*cmd.cmd).name);
            let raw = pool::cstr(args).map_or(std::borrow::Cow::Borrowed(""), |a| a.to_string_lossy());
            (cmd, name, raw)
        };
        let directive = DIRECTIVES.iter().find(|d| d.name == name).expect("directive from our table");
        if directive.context == Context::MainServer {
            // SAFETY: httpd's own context check; returns NULL or a static/pool message.
            let err = unsafe { ffi::ap_check_cmd_context(cmd, ffi::GLOBAL_ONLY) };
            if !err.is_null() {
                return err;
            }
        }
        let name = name.to_str().expect("ASCII directive names");
        match apply(cmd, mconfig, name, &raw) {
            Ok(()) => std::ptr::null(),
            Err(msg) => pool::pstrdup(cmd.pool, msg.as_bytes()),
        }
    })
    .unwrap_or(c"mod_wsgi: internal error while reading this directive".as_ptr())
}

fn apply(cmd: &mut ffi::cmd_parms, mconfig: *mut c_void, name: &str, raw: &str) -> Result<(), String> {
    if !cmd.path.is_null() {
        // Inside <Directory>, <Location>, <Files> or .htaccess.
        // SAFETY: mconfig is the Settings made by create_dir_config for this section.
        let settings = unsafe { &mut *(mconfig as *mut config::Settings) };
        return config::apply(Target::Directory(settings), name, raw).map_err(|e| e.to_string());
    }
    // SAFETY: cmd.server is the server (main or virtual host) being configured;
    // configuration is read on one thread, so nothing else holds its record.
    let (state, in_vhost, hostname) = unsafe {
        let s = &*cmd.server;
        (server_state_mut(cmd.server), s.is_virtual != 0, pool::cstr(s.server_hostname).and_then(|h| h.to_str().ok()))
    };
    // Daemon group names are global: one registry, kept with the main server.
    let mut own_registry = None;
    let registry = if in_vhost {
        main_server_registry().unwrap_or_else(|| own_registry.insert(Default::default()))
    } else {
        &mut state.registry
    };
    let target = Target::Server { config: &mut state.config, in_vhost, server_hostname: hostname, registry };
    config::apply(target, name, raw).map_err(|e| e.to_string())?;
    if let Some(AliasPattern::Regex(pattern)) = state.config.script_aliases.last().map(|a| &a.pattern)
        && name == "WSGIScriptAliasMatch"
    {
        let re = Regex::compile(cmd.pool, pattern).ok_or_else(|| config::ConfigError::regex_compile().to_string())?;
        state.regexes.insert(pattern.clone(), std::sync::Arc::new(re));
    }
    Ok(())
}
