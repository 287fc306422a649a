//! User and group lookups for WSGIDaemonProcess (user=, group=, ...).
//!
//! Like httpd's ap_uname2id/ap_gname2id, `#123` is a numeric id taken as is;
//! anything else is looked up in the passwd/group databases. httpd exits the
//! server on an unknown name; here it is an error the caller reports.

use nix::unistd::{Gid, Group, Uid, User};

use super::error::ConfigError;

fn bad(kind: &str, name: &str) -> ConfigError {
    ConfigError::Other(format!("bad {kind} name {name}"))
}

fn numeric(name: &str) -> Option<Option<u32>> {
    let digits = name.strip_prefix('#')?;
    Some(digits.parse::<u32>().ok())
}

/// The uid of a user name or `#uid`.
pub fn resolve_user(name: &str) -> Result<u32, ConfigError> {
    if let Some(id) = numeric(name) {
        return id.ok_or_else(|| bad("user", name));
    }
    match User::from_name(name) {
        Ok(Some(user)) => Ok(user.uid.as_raw()),
        _ => Err(bad("user", name)),
    }
}

/// The gid of a group name or `#gid`.
pub fn resolve_group(name: &str) -> Result<u32, ConfigError> {
    if let Some(id) = numeric(name) {
        return id.ok_or_else(|| bad("group", name));
    }
    match Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        _ => Err(bad("group", name)),
    }
}

fn user(uid: u32) -> Option<User> {
    User::from_uid(Uid::from_raw(uid)).ok().flatten()
}

/// The user name of a uid, if it has one.
pub fn user_name(uid: u32) -> Option<String> {
    user(uid).map(|u| u.name)
}

/// The home directory of a uid, if it has one.
pub fn user_home(uid: u32) -> Option<String> {
    user(uid).map(|u| u.dir.to_string_lossy().into_owned())
}

/// The group name of a gid, if it has one.
pub fn group_name(gid: u32) -> Option<String> {
    Group::from_gid(Gid::from_raw(gid)).ok().flatten().map(|g| g.name)
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
