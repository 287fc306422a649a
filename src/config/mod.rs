//! Directive parsing: raw directive arguments in, typed configuration out.
//!
//! Pure Rust, no httpd or APR types, so every rule is unit-tested here. The
//! FFI glue registers every directive of [`DIRECTIVES`] as RAW_ARGS, hands the
//! raw argument line to [`apply`], and prints the [`ConfigError`] it gets back
//! after httpd's "Syntax error on line N of FILE:".

mod daemon;
mod directives;
mod error;
mod group;
mod identity;
mod proxies;
mod script_alias;
mod scripts;
mod server;
mod settings;
mod tokenize;
mod values;

pub use daemon::{
    DaemonProcess, DaemonRegistry, RegisteredGroup, DEFAULT_HEADER_BUFFER_SIZE,
    DEFAULT_RESPONSE_BUFFER_SIZE, MAX_THREADS, parse_daemon_process,
};
pub use directives::{Context, DIRECTIVES, Directive, Target, apply, check, check_directory, embedded_hook_scripts, forget_embedded_hook_scripts, lookup};
pub use error::ConfigError;
pub use group::{
    GroupContext, GroupSpec, expand_application_group, expand_callable_object,
    expand_process_group, parse_group_spec,
};
pub use identity::{group_name, resolve_group, resolve_user, user_home, user_name};
pub use proxies::{TrustedProxy, parse_trusted_proxy};
pub use script_alias::{AliasPattern, ScriptAlias, ScriptOptions, match_prefix, parse_script_alias};
pub use scripts::{ImportScript, ScriptFile, parse_handler_script, parse_hook_script, parse_import_script};
pub use server::{HashSeed, ServerConfig};
pub use settings::{EffectiveSettings, Settings};
pub use tokenize::{split_option, tokenize};
pub use values::{Interface, MapHeadToGet, parse_flag};
