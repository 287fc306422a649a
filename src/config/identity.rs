//! User and group lookups for WSGIDaemonProcess (user=, group=, ...).
//!
//! Like httpd's ap_uname2id/ap_gname2id, `#123` is a numeric id taken as is;
//! anything else is looked up in the passwd/group databases. httpd exits the
//! server on an unknown name; here it is an error the caller reports.

use std::ffi::{CStr, CString};

use super::error::ConfigError;

fn bad(kind: &str, name: &str) -> ConfigError {
    ConfigError::Other(format!("bad {kind} name {name}"))
}

fn numeric(name: &str) -> Option<Option<u32>> {
    let digits = name.strip_prefix('#')?;
    Some(digits.parse::<u32>().ok())
}

/// Buffer for the *_r lookups; grown on ERANGE.
fn initial_buffer(which: libc::c_int) -> Vec<libc::c_char> {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(which) };
    vec![0; if n > 0 { n as usize } else { 16384 }]
}

/// Runs a getpw*_r / getgr*_r style call, growing the buffer on ERANGE.
/// Returns false when there is no entry (or the lookup failed).
fn lookup_with_buffer(which: libc::c_int, mut call: impl FnMut(&mut [libc::c_char]) -> (libc::c_int, bool)) -> bool {
    let mut buf = initial_buffer(which);
    loop {
        let (rc, found) = call(&mut buf);
        if rc == libc::ERANGE && buf.len() < (1 << 24) {
            let len = buf.len() * 2;
            buf.resize(len, 0);
            continue;
        }
        return rc == 0 && found;
    }
}

/// The uid of a user name or `#uid`.
pub fn resolve_user(name: &str) -> Result<u32, ConfigError> {
    if let Some(id) = numeric(name) {
        return id.ok_or_else(|| bad("user", name));
    }
    let cname = CString::new(name).map_err(|_| bad("user", name))?;
    let mut uid = 0;
    let found = lookup_with_buffer(libc::_SC_GETPW_R_SIZE_MAX, |buf| {
        // SAFETY: passwd is plain old data; every pointer handed to getpwnam_r
        // is valid for the call and buf's length is passed with it.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe { libc::getpwnam_r(cname.as_ptr(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if !result.is_null() {
            uid = pwd.pw_uid;
        }
        (rc, !result.is_null())
    });
    if found { Ok(uid) } else { Err(bad("user", name)) }
}

/// The gid of a group name or `#gid`.
pub fn resolve_group(name: &str) -> Result<u32, ConfigError> {
    if let Some(id) = numeric(name) {
        return id.ok_or_else(|| bad("group", name));
    }
    let cname = CString::new(name).map_err(|_| bad("group", name))?;
    let mut gid = 0;
    let found = lookup_with_buffer(libc::_SC_GETGR_R_SIZE_MAX, |buf| {
        // SAFETY: as in resolve_user, for getgrnam_r.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe { libc::getgrnam_r(cname.as_ptr(), &mut grp, buf.as_mut_ptr(), buf.len(), &mut result) };
        if !result.is_null() {
            gid = grp.gr_gid;
        }
        (rc, !result.is_null())
    });
    if found { Ok(gid) } else { Err(bad("group", name)) }
}

/// A string field of uid's passwd entry, if the uid has one.
fn passwd_field(uid: u32, field: fn(&libc::passwd) -> *const libc::c_char) -> Option<String> {
    let mut value = None;
    lookup_with_buffer(libc::_SC_GETPW_R_SIZE_MAX, |buf| {
        // SAFETY: as in resolve_user; the field points into buf while we copy it.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if !result.is_null() {
            value = Some(unsafe { CStr::from_ptr(field(&pwd)) }.to_string_lossy().into_owned());
        }
        (rc, !result.is_null())
    });
    value
}

/// The user name of a uid, if it has one.
pub fn user_name(uid: u32) -> Option<String> {
    passwd_field(uid, |pwd| pwd.pw_name)
}

/// The home directory of a uid, if it has one.
pub fn user_home(uid: u32) -> Option<String> {
    passwd_field(uid, |pwd| pwd.pw_dir)
}

/// The group name of a gid, if it has one.
pub fn group_name(gid: u32) -> Option<String> {
    let mut name = None;
    lookup_with_buffer(libc::_SC_GETGR_R_SIZE_MAX, |buf| {
        // SAFETY: as in resolve_group; gr_name points into buf while we copy it.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut result) };
        if !result.is_null() {
            name = Some(unsafe { CStr::from_ptr(grp.gr_name) }.to_string_lossy().into_owned());
        }
        (rc, !result.is_null())
    });
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_user_and_group() {
        assert_eq!(resolve_user("root"), Ok(0));
        assert_eq!(resolve_group("root"), Ok(0));
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(group_name(0).as_deref(), Some("root"));
    }

    #[test]
    fn www_data() {
        // Debian's fixed id for www-data.
        assert_eq!(resolve_user("www-data"), Ok(33));
        assert_eq!(resolve_group("www-data"), Ok(33));
        assert_eq!(user_name(33).as_deref(), Some("www-data"));
    }

    #[test]
    fn numeric_ids_are_not_looked_up() {
        assert_eq!(resolve_user("#0"), Ok(0));
        assert_eq!(resolve_user("#99999"), Ok(99999));
        assert_eq!(resolve_group("#123"), Ok(123));
        assert_eq!(user_name(99999), None);
        assert_eq!(group_name(99999), None);
    }

    #[test]
    fn unknown_names() {
        assert_eq!(resolve_user("no-such-user-xyz").unwrap_err().to_string(), "bad user name no-such-user-xyz");
        assert_eq!(resolve_group("no-such-group-xyz").unwrap_err().to_string(), "bad group name no-such-group-xyz");
        assert!(resolve_user("#abc").is_err());
        assert!(resolve_user("#-1").is_err());
        assert!(resolve_user("#").is_err());
        assert!(resolve_user("a\0b").is_err());
    }
}
