//! Finding the module (`libmod_wsgi.so` next to this binary, or the one pip installed with
//! it), and installing it into Apache's module directory.

use super::python_env;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const BUILT_NAME: &str = "libmod_wsgi.so";
const INSTALLED_NAME: &str = "mod_wsgi_rs.so";
const MODS_AVAILABLE: &str = "/etc/apache2/mods-available";

/// The module to load: `--module-path`, else `libmod_wsgi.so` in this binary's directory
/// (target/release), else the module pip installed with this binary, else an installed
/// `mod_wsgi_rs.so`.
pub fn locate(given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = given {
        return if p.is_file() {
            Ok(fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
        } else {
            Err(format!(
                "module {} not found: give the built libmod_wsgi.so with --module-path",
                p.display()
            ))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(BUILT_NAME)));
    if let Some(p) = beside.as_ref().filter(|p| p.is_file()) {
        return Ok(p.clone());
    }
    if let Some(p) = python_env::packaged_module() {
        return Ok(p);
    }
    if let Some(p) = libexecdir().ok().map(|d| d.join(INSTALLED_NAME))
        && p.is_file()
    {
        return Ok(p);
    }
    Err(format!(
        "mod_wsgi module not found{}: build it with `cargo build --release` (or `pip install` \
         the source tree) or give --module-path",
        beside
            .map(|p| format!(" at {}", p.display()))
            .unwrap_or_default()
    ))
}

/// Apache's module directory, from `apxs -q LIBEXECDIR`.
pub fn libexecdir() -> Result<PathBuf, String> {
    let out = Command::new("apxs")
        .args(["-q", "LIBEXECDIR"])
        .output()
        .map_err(|e| format!("cannot run apxs ({e}): install apache2-dev"))?;
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || dir.is_empty() {
        return Err("apxs -q LIBEXECDIR failed: install apache2-dev".into());
    }
    Ok(PathBuf::from(dir))
}

/// Copies `module` to `<libexec>/mod_wsgi_rs.so` and writes `<mods>/wsgi_rs.load`; returns
/// what was done, one line each. `libexec`/`mods` default to apxs's LIBEXECDIR and
/// /etc/apache2/mods-available.
pub fn install(
    module: &Path,
    libexec: Option<PathBuf>,
    mods: Option<PathBuf>,
) -> Result<Vec<String>, String> {
    let libexec = match libexec {
        Some(d) => d,
        None => libexecdir()?,
    };
    let mods = mods.unwrap_or_else(|| PathBuf::from(MODS_AVAILABLE));
    let dest = libexec.join(INSTALLED_NAME);
    // Copy to a temporary name and rename, so a running Apache never maps a half-written file.
    let tmp = libexec.join(format!(".{INSTALLED_NAME}.tmp"));
    fs::copy(module, &tmp)
        .map_err(|e| format!("cannot copy to {}: {e} (run as root)", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644))
        .and_then(|_| fs::rename(&tmp, &dest))
        .map_err(|e| format!("cannot install {}: {e}", dest.display()))?;
    let load = mods.join("wsgi_rs.load");
    let line = format!("LoadModule wsgi_module \"{}\"\n", dest.display());
    fs::write(&load, &line)
        .map_err(|e| format!("cannot write {}: {e} (run as root)", load.display()))?;
    Ok(vec![
        format!("copied {} to {}", module.display(), dest.display()),
        format!("wrote {}: {}", load.display(), line.trim_end()),
        "enable it with: a2dismod wsgi; a2enmod wsgi_rs; apachectl configtest && apachectl restart"
            .into(),
    ])
}
