//! What the server configuration asks of Python in every process that starts
//! it: Apache's children, and the daemon processes, which override the parts
//! their WSGIDaemonProcess options set.

use crate::config::ServerConfig;
use crate::python::interpreter::Options;

pub fn for_server(config: &ServerConfig) -> Options {
    Options {
        home: config.python_home.clone(),
        path: config.python_path.clone(),
        optimize: config.python_optimize(),
        hash_seed: config.fixed_hash_seed(),
        warnings: config.python_warnings.clone(),
        dont_write_bytecode: config.dont_write_bytecode.unwrap_or(false),
        eggs: config.python_eggs.clone(),
        restrict_stdout: config.restrict_stdout(),
        restrict_stdin: config.restrict_stdin(),
        restrict_signal: config.restrict_signal(),
        // mod_wsgi 4.9 folds the path when WSGICaseSensitivity is On (its
        // default on Linux) and hashes it as given when Off; matching that
        // keeps script module names, and what pickles refer to, the same.
        fold_script_paths: config.case_sensitivity(),
        ..Options::default()
    }
}
