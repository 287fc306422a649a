//! Checks made before anything is written or started, each failing with a one-line message
//! that says how to fix it.

use super::logs::ROTATELOGS;
use super::options::Options;
use std::fs;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

pub const APACHE: &str = "/usr/sbin/apache2";
/// The Python the module links (Debian 12's /usr/bin/python3).
const PYTHON_VERSION: &str = "3.11";

/// Apache's binary is installed.
pub fn apache_installed() -> Result<(), String> {
    httpd_at(Path::new(APACHE))
}

fn httpd_at(path: &Path) -> Result<(), String> {
    if path.is_file() {
        Ok(())
    } else {
        Err(format!(
            "Apache is not installed ({} missing): install apache2 (apt-get install apache2)",
            path.display()
        ))
    }
}

/// The files and directories the options name exist: the certificates, the document root,
/// the working directory, the envvars script, and rotatelogs for --rotate-logs.
pub fn option_files(o: &Options) -> Result<(), String> {
    let files = [
        ("--ssl-certificate-file", &o.ssl_certificate_file),
        ("--ssl-certificate-key-file", &o.ssl_certificate_key_file),
        ("--ssl-certificate-chain-file", &o.ssl_certificate_chain_file),
        ("--envvars-script", &o.envvars_script),
    ];
    for (name, path) in files {
        if let Some(p) = path
            && (fs::File::open(p).is_err() || !p.is_file())
        {
            return Err(format!(
                "{name} {} is not a readable file: give an existing file",
                p.display()
            ));
        }
    }
    for (name, path) in [
        ("--document-root", &o.document_root),
        ("--working-directory", &o.working_directory),
    ] {
        if let Some(p) = path
            && !p.is_dir()
        {
            return Err(format!(
                "{name} {} is not a directory: give an existing directory",
                p.display()
            ));
        }
    }
    if o.rotate_logs && !Path::new(ROTATELOGS).is_file() {
        return Err(format!(
            "--rotate-logs needs {ROTATELOGS}: install apache2-utils (apt-get install apache2-utils)"
        ));
    }
    Ok(())
}

/// Nothing listens on host:port yet. Checked by binding a socket without
/// listening on it: a listening check socket would briefly accept
/// connections (a client arriving then would be reset when it closes).
/// `option` is the option naming the port, for the fix.
pub fn port_free(host: &str, port: u16, option: &str) -> Result<(), String> {
    let addr = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("cannot resolve host {host}: choose another --host"))?;
    match bind_only(addr) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(format!("port {port} is in use: choose another with {option}"))
        }
        Err(e) => Err(format!(
            "cannot listen on {host}:{port} ({e}): choose another --host or {option}"
        )),
    }
}

/// Binds a TCP socket to `addr` (with SO_REUSEADDR, as Apache binds) and closes it.
fn bind_only(addr: SocketAddr) -> std::io::Result<()> {
    let (family, storage, len) = sockaddr(addr);
    // SAFETY: socket(2) returns a new descriptor (or -1) that we then own.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is the descriptor just made; it is closed when `_owned` drops.
    let _owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads one c_int; bind reads `len` bytes of `storage`.
    let rv = unsafe {
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, (&one as *const libc::c_int).cast(), std::mem::size_of::<libc::c_int>() as libc::socklen_t);
        libc::bind(fd, (&storage as *const libc::sockaddr_storage).cast(), len)
    };
    if rv < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

fn sockaddr(addr: SocketAddr) -> (libc::c_int, libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data, valid when zeroed.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large enough and aligned for any sockaddr.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: v6.ip().octets() },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: as above.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    let family = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    (family, storage, len as libc::socklen_t)
}

/// The WSGI script exists.
pub fn script_exists(script: &Path) -> Result<(), String> {
    if script.is_file() {
        Ok(())
    } else {
        Err(format!(
            "WSGI script {} not found: give the path of an existing .wsgi or .py file",
            script.display()
        ))
    }
}

/// When started as root, Apache's children and daemon processes run as `user` (www-data
/// unless --user), and Python reads its home as that user: the home and every directory above
/// it must let that user through (by owner, group, supplementary group or other bits; ACLs are
/// not consulted). A venv under /root (mode 0700) fails here, where Python would otherwise fail
/// to start in each daemon with only "failed to get the Python codec" in the error log.
pub fn python_home_readable(home: &Path, user: Option<&str>) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let user = user.unwrap_or("www-data");
    let Some(account) = Account::named(user) else {
        return Ok(()); // Apache reports an unknown User itself.
    };
    let home = fs::canonicalize(home).unwrap_or_else(|_| home.to_path_buf());
    let mut dirs: Vec<&Path> = home.ancestors().collect();
    dirs.reverse();
    for dir in dirs {
        let Ok(meta) = fs::metadata(dir) else {
            continue; // venv_matches reports a missing home.
        };
        let need = if dir == home { 0o5 } else { 0o1 };
        if !account.may(&meta, need) {
            return Err(format!(
                "the python home {} cannot be read by user {user}, which runs the application: \
                 {} is mode {:o}; make the venv outside it (e.g. under /srv or /opt) or give \
                 --user an account that can read it",
                home.display(),
                dir.display(),
                std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777
            ));
        }
    }
    Ok(())
}

/// A user's uid and groups, from the system's user and group databases.
struct Account {
    uid: u32,
    groups: Vec<u32>,
}

impl Account {
    fn named(name: &str) -> Option<Account> {
        let cname = std::ffi::CString::new(name).ok()?;
        // SAFETY: passwd is plain data, valid when zeroed; getpwnam_r fills it with pointers
        // into `buf`, which outlives every use of it here.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the sizes given.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        if rc != 0 || found.is_null() {
            return None;
        }
        let mut groups = vec![0 as libc::gid_t; 1024];
        let mut count = groups.len() as libc::c_int;
        // SAFETY: `groups` holds `count` entries; getgrouplist writes at most that many.
        let rc = unsafe {
            libc::getgrouplist(cname.as_ptr(), pwd.pw_gid, groups.as_mut_ptr(), &mut count)
        };
        if rc < 0 {
            groups = vec![pwd.pw_gid];
        } else {
            groups.truncate(count.max(0) as usize);
        }
        Some(Account {
            uid: pwd.pw_uid,
            groups,
        })
    }

    /// Whether the permission bits of `meta` grant this account `need` (0o4 read, 0o1
    /// search), as the kernel picks them: owner's, else group's, else others'.
    fn may(&self, meta: &fs::Metadata, need: u32) -> bool {
        use std::os::unix::fs::MetadataExt;
        let mode = meta.mode();
        let bits = if meta.uid() == self.uid {
            mode >> 6
        } else if self.groups.contains(&meta.gid()) {
            mode >> 3
        } else {
            mode
        };
        bits & need == need
    }
}

/// A virtual environment (python-home) was made with the Python the module links: its
/// `pyvenv.cfg` `version` (venv) or `version_info` (virtualenv) is 3.11.x.
/// A python-home without pyvenv.cfg (a plain prefix) is not checked.
pub fn venv_matches(home: &Path) -> Result<(), String> {
    if !home.is_dir() {
        return Err(format!(
            "python home {} does not exist: give an existing venv with --python-home",
            home.display()
        ));
    }
    let Ok(cfg) = fs::read_to_string(home.join("pyvenv.cfg")) else {
        return Ok(());
    };
    let version = cfg.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        matches!(k.trim(), "version" | "version_info").then(|| v.trim().to_string())
    });
    match version {
        Some(v) if !same_minor(&v) => Err(format!(
            "the venv {} was made with Python {v}, but mod_wsgi uses Python {PYTHON_VERSION}: \
             recreate it with /usr/bin/python3 -m venv",
            home.display()
        )),
        _ => Ok(()),
    }
}

fn same_minor(version: &str) -> bool {
    version == PYTHON_VERSION || version.starts_with(&format!("{PYTHON_VERSION}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_httpd_says_to_install_apache2() {
        let err = httpd_at(Path::new("/nonexistent/apache2")).unwrap_err();
        assert!(err.contains("/nonexistent/apache2 missing"), "{err}");
        assert!(err.contains("install apache2"), "{err}");
        assert!(httpd_at(Path::new(APACHE)).is_ok());
    }

    #[test]
    fn permission_bits_are_taken_as_the_kernel_does() {
        let dir = std::env::temp_dir().join(format!("mod_wsgi-checks-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let set = |mode: u32| {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
            fs::metadata(&dir).unwrap()
        };
        let meta = set(0o700);
        let (uid, gid) = {
            use std::os::unix::fs::MetadataExt;
            (meta.uid(), meta.gid())
        };
        let owner = Account {
            uid,
            groups: vec![],
        };
        let member = Account {
            uid: uid + 1,
            groups: vec![gid],
        };
        let other = Account {
            uid: uid + 1,
            groups: vec![gid + 1],
        };
        assert!(owner.may(&meta, 0o5));
        assert!(!member.may(&meta, 0o1));
        assert!(!other.may(&meta, 0o1));
        let meta = set(0o750);
        assert!(member.may(&meta, 0o5));
        assert!(!other.may(&meta, 0o1));
        let meta = set(0o711);
        assert!(other.may(&meta, 0o1));
        assert!(!other.may(&meta, 0o5));
        // Others' bits do not apply to the owner.
        let meta = set(0o077);
        assert!(!owner.may(&meta, 0o1));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn versions() {
        assert!(same_minor("3.11.2"));
        assert!(same_minor("3.11.2.final.0"));
        assert!(!same_minor("3.9.2"));
        assert!(!same_minor("3.110.1"));
    }
}
