//! The Python environment this binary was installed into by `pip install`: the binary is
//! `<prefix>/bin/mod_wsgi-express`, the module `<prefix>/lib/pythonX.Y/site-packages/
//! mod_wsgi_rs/mod_wsgi-apache.<abi>.so`, and `<prefix>/pyvenv.cfg` makes the prefix a
//! virtual environment, which is then the default Python home (as the C mod_wsgi-express
//! uses the environment it runs in), whether or not it is activated.

use std::fs;
use std::path::{Path, PathBuf};

/// The installed package's directory and the module's name in it (setuptools-rust adds
/// Python's extension suffix, e.g. `.cpython-311-x86_64-linux-gnu.so`).
const PACKAGE: &str = "mod_wsgi_rs";
const MODULE_PREFIX: &str = "mod_wsgi-apache.";

/// The default Python home: the virtual environment this binary is installed in, else an
/// activated one ($VIRTUAL_ENV).
pub fn default_python_home() -> Option<PathBuf> {
    own_venv().or_else(|| {
        std::env::var_os("VIRTUAL_ENV")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// The virtual environment whose bin/ holds this binary.
pub fn own_venv() -> Option<PathBuf> {
    venv_of(&std::env::current_exe().ok()?)
}

/// The module pip installed beside this binary, if it was installed so.
pub fn packaged_module() -> Option<PathBuf> {
    module_under(&prefix_of(&std::env::current_exe().ok()?)?)
}

/// `<prefix>` of `<prefix>/bin/<exe>`.
fn prefix_of(exe: &Path) -> Option<PathBuf> {
    let bin = exe.parent()?;
    if bin.file_name()? != "bin" {
        return None;
    }
    bin.parent().map(Path::to_path_buf)
}

fn venv_of(exe: &Path) -> Option<PathBuf> {
    prefix_of(exe).filter(|p| p.join("pyvenv.cfg").is_file())
}

/// `<prefix>/lib/python3.*/{site,dist}-packages/mod_wsgi_rs/mod_wsgi-apache.*.so`.
fn module_under(prefix: &Path) -> Option<PathBuf> {
    let lib = fs::read_dir(prefix.join("lib")).ok()?;
    let mut found: Vec<PathBuf> = lib
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .flat_map(|e| ["site-packages", "dist-packages"].map(|s| e.path().join(s).join(PACKAGE)))
        .filter_map(|dir| fs::read_dir(dir).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(MODULE_PREFIX) && n.ends_with(".so"))
        })
        .collect();
    found.sort();
    found.pop()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mod_wsgi-python-env-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_venv_is_the_prefix_of_bin_with_pyvenv_cfg() {
        let venv = temp("venv");
        fs::create_dir(venv.join("bin")).unwrap();
        let exe = venv.join("bin/mod_wsgi-express");
        assert_eq!(venv_of(&exe), None, "no pyvenv.cfg yet");
        fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        assert_eq!(venv_of(&exe), Some(venv.clone()));
        assert_eq!(venv_of(&venv.join("release/mod_wsgi-express")), None);
        fs::remove_dir_all(&venv).unwrap();
    }

    #[test]
    fn the_packaged_module_is_found_in_site_packages() {
        let prefix = temp("prefix");
        assert_eq!(module_under(&prefix), None);
        let pkg = prefix.join("lib/python3.11/site-packages/mod_wsgi_rs");
        fs::create_dir_all(&pkg).unwrap();
        fs::write(pkg.join("__init__.py"), "").unwrap();
        assert_eq!(module_under(&prefix), None);
        let so = pkg.join("mod_wsgi-apache.cpython-311-x86_64-linux-gnu.so");
        fs::write(&so, "").unwrap();
        fs::set_permissions(&so, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(module_under(&prefix), Some(so));
        assert_eq!(
            prefix_of(&prefix.join("bin/mod_wsgi-express")),
            Some(prefix.clone())
        );
        fs::remove_dir_all(&prefix).unwrap();
    }
}
