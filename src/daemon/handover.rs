//! What one configuration of the Apache parent hands to the next across a
//! restart: the groups' keys, the sockets kept open and the supervisors
//! still running. httpd reloads this module at a restart, so this travels
//! as text through `apache::retained`, descriptors as their numbers.

use std::fmt::Write;

use zeroize::Zeroizing;

use super::origin::{CarriedKeys, Secret};
use crate::apache::digest::hex;
use crate::apache::retained;

/// A group's socket, left open for the next configuration.
pub struct SocketRecord {
    pub group: String,
    pub fd: i32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: Vec<u32>,
    /// Newest first.
    pub paths: Vec<String>,
}

/// A supervisor still running, and the ends of its release pipe (-1: none).
pub struct SupervisorRecord {
    pub group: String,
    pub pid: i32,
    pub reader: i32,
    pub writer: i32,
    pub stopped: bool,
}

#[derive(Default)]
pub struct Handover {
    pub keys: Vec<CarriedKeys>,
    pub sockets: Vec<SocketRecord>,
    pub supervisors: Vec<SupervisorRecord>,
}

impl Handover {
    /// One tab-separated line per record; strings and keys in hex.
    pub fn encode(&self) -> Zeroizing<String> {
        // Room for all it can hold, so the text is never moved: a grown
        // string would leave a copy of the keys behind, unwiped.
        let mut out = Zeroizing::new(String::with_capacity(retained::CAPACITY));
        for k in &self.keys {
            out.push_str("K\t");
            out.push_str(&hex(k.group.as_bytes()));
            // The keys go straight into the text, through no other string.
            for key in [&k.current[..], &k.next[..]] {
                out.push('\t');
                for b in key {
                    let _ = write!(out, "{b:02x}");
                }
            }
            out.push('\n');
        }
        for s in &self.sockets {
            let id = |v: Option<u32>| v.map_or("-".to_owned(), |v| v.to_string());
            let groups: Vec<String> = s.groups.iter().map(u32::to_string).collect();
            let paths: Vec<String> = s.paths.iter().map(|p| hex(p.as_bytes())).collect();
            let _ = writeln!(out, "S\t{}\t{}\t{}\t{}\t{}\t{}", hex(s.group.as_bytes()), s.fd, id(s.uid), id(s.gid), groups.join(","), paths.join(","));
        }
        for p in &self.supervisors {
            let _ = writeln!(out, "P\t{}\t{}\t{}\t{}\t{}", hex(p.group.as_bytes()), p.pid, p.reader, p.writer, u8::from(p.stopped));
        }
        out
    }

    /// Reads what `encode` wrote; a line that does not parse is left out.
    pub fn decode(bytes: &[u8]) -> Handover {
        let mut handover = Handover::default();
        let Ok(text) = std::str::from_utf8(bytes) else { return handover };
        for line in text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields.as_slice() {
                ["K", group, current, next] => {
                    if let (Some(group), Some(current), Some(next)) = (string(group), secret(current), secret(next)) {
                        handover.keys.push(CarriedKeys { group, current, next });
                    }
                }
                ["S", group, fd, uid, gid, groups, paths] => {
                    let id = |v: &str| v.parse().ok();
                    let (Some(group), Ok(fd)) = (string(group), fd.parse()) else { continue };
                    let groups = groups.split(',').filter_map(|g| g.parse().ok()).collect();
                    let paths = paths.split(',').filter_map(string).collect();
                    handover.sockets.push(SocketRecord { group, fd, uid: id(uid), gid: id(gid), groups, paths });
                }
                ["P", group, pid, reader, writer, stopped] => {
                    let (Some(group), Ok(pid), Ok(reader), Ok(writer)) = (string(group), pid.parse(), reader.parse(), writer.parse()) else { continue };
                    handover.supervisors.push(SupervisorRecord { group, pid, reader, writer, stopped: *stopped == "1" });
                }
                _ => {}
            }
        }
        handover
    }
}

fn unhex(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    // At its size from the start, so no partial copy of a key is left behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(text.len() / 2));
    for i in (0..text.len()).step_by(2) {
        bytes.push(u8::from_str_radix(text.get(i..i + 2)?, 16).ok()?);
    }
    Some(bytes)
}

fn string(text: &str) -> Option<String> {
    String::from_utf8(unhex(text)?.to_vec()).ok()
}

fn secret(text: &str) -> Option<Secret> {
    let bytes = unhex(text)?;
    let mut key: Secret = Box::new(Zeroizing::new([0u8; 32]));
    (bytes.len() == 32).then(|| key.copy_from_slice(&bytes))?;
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let key = |b: u8| -> Secret { Box::new(Zeroizing::new([b; 32])) };
        let handover = Handover {
            keys: vec![CarriedKeys { group: "g\tx".into(), current: key(1), next: key(2) }],
            sockets: vec![SocketRecord { group: "g\tx".into(), fd: 7, uid: Some(33), gid: None, groups: vec![4, 5], paths: vec!["/run/a,b".into(), "/run/c".into()] }],
            supervisors: vec![SupervisorRecord { group: "g\tx".into(), pid: 42, reader: 9, writer: -1, stopped: true }],
        };
        let back = Handover::decode(handover.encode().as_bytes());
        assert_eq!((back.keys[0].group.as_str(), back.keys[0].current[0], back.keys[0].next[31]), ("g\tx", 1, 2));
        let s = &back.sockets[0];
        assert_eq!((s.fd, s.uid, s.gid, s.groups.clone(), s.paths.clone()), (7, Some(33), None, vec![4, 5], vec!["/run/a,b".to_owned(), "/run/c".to_owned()]));
        let p = &back.supervisors[0];
        assert_eq!((p.pid, p.reader, p.writer, p.stopped), (42, 9, -1, true));
        assert!(Handover::decode(b"K\tzz\t00\n\xff").keys.is_empty());
    }
}
