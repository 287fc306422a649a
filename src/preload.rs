//! Scripts loaded when a process starts, before any request: WSGIImportScript,
//! and WSGIScriptAlias lines that name both their process and application group.

use crate::config::{GroupSpec, Interface, ServerConfig};
use crate::python;

/// A literal group's name ("" for %{GLOBAL}); None for groups known only per request.
fn literal(spec: &GroupSpec) -> Option<&str> {
    match spec {
        GroupSpec::Global => Some(""),
        GroupSpec::Named(name) => Some(name),
        _ => None,
    }
}

/// Loads, in this process, every script preloaded for `process_group`
/// ("" for Apache's children in embedded mode).
pub fn run(configs: &[&ServerConfig], process_group: &str) {
    let mut seen = Vec::new();
    for config in configs {
        let imports = config.import_scripts.iter().map(|s| (&s.path, &s.process_group, &s.application_group, "application", Interface::Auto));
        let aliases = config.script_aliases.iter().filter(|a| a.preload()).filter_map(|a| {
            let callable = a.options.callable_object.as_deref().unwrap_or("application");
            Some((&a.target, a.options.process_group.as_ref()?, a.options.application_group.as_ref()?, callable, a.options.interface))
        });
        for (path, process, application, callable, interface) in imports.chain(aliases) {
            let (Some(process), Some(application)) = (literal(process), literal(application)) else { continue };
            if process != process_group || seen.contains(&(path, application)) {
                continue;
            }
            seen.push((path, application));
            python::preload(path, application, process_group, callable, interface);
        }
    }
}
