//! Proof that a request head comes from one of Apache's own children.
//!
//! A group socket is reachable by anything running as Apache's user (a CGI
//! script, PHP inside Apache), and a daemon runs what the head names as its
//! own user, so a head must prove that Apache's configuration chose it. The
//! Apache parent makes a random key per process group at each configuration;
//! it lives only in memory, is inherited by Apache's children, and is wiped
//! in the daemons of every other group. On each new connection the daemon
//! sends a random challenge; every head on that connection carries an
//! HMAC-SHA-256, under the group's key, of the challenge, the head's place
//! in the connection's sequence and the head's fields that choose what runs
//! and for whom, and which request it is (all but the CGI environ, which
//! no one without the key can send at all). A head made up, edited,
//! replayed on another connection or out of turn does not verify.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::protocol::{CHALLENGE_LEN, MAC_LEN};

type HmacSha256 = Hmac<Sha256>;

/// Separates these MACs from any other use of the key.
const CONTEXT: &[u8] = b"mod_wsgi request head v1\0";

/// A per-connection challenge: random, never repeated.
pub type Challenge = [u8; CHALLENGE_LEN];

/// A request head's MAC.
pub type Tag = [u8; MAC_LEN];

/// Boxed, so that moving a record moves a pointer and leaves no copy of
/// the key behind; zeroed when dropped.
pub type Secret = Box<Zeroizing<[u8; 32]>>;

/// The keys of one process group. A group carried over a graceful restart
/// (same name, same identity) hands over without a gap: its old daemons
/// keep serving until the new ones are ready, and Apache children of both
/// generations reach both. So a daemon also believes the key the next
/// configuration will sign with (made one configuration ahead), and the one
/// the previous configuration signed with.
struct GroupKeys {
    current: Secret,
    next: Secret,
    previous: Option<Secret>,
}

/// Every group's keys, by group name: the one place key material lives, so
/// that a daemon process can wipe all of it but its own group's. Never
/// locked while the parent forks.
static KEYRING: Mutex<Option<HashMap<String, GroupKeys>>> = Mutex::new(None);

fn fresh() -> std::io::Result<Secret> {
    let mut key: Secret = Box::new(Zeroizing::new([0u8; 32]));
    getrandom::fill(&mut key[..]).map_err(std::io::Error::from)?;
    Ok(key)
}

/// How a group's keys pass from one configuration to the next.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Carry {
    /// A graceful restart, same identity: the old daemons serve on for a
    /// while on the same socket, so each side believes the other's key: the
    /// new configuration signs with the key the old one made ahead.
    Handover,
    /// A full restart, same identity: the old daemons only finish what
    /// Apache children of the old configuration sent; the new ones still
    /// believe the old key, for those children's last requests.
    Succeed,
    /// New, or now run as someone else: nothing of before is believed.
    Fresh,
}

/// Keys for the groups of a new configuration (in the Apache parent).
/// Groups that are gone are forgotten.
pub fn renew(groups: &[&str], carry: &dyn Fn(&str) -> Carry) -> std::io::Result<()> {
    let mut ring = KEYRING.lock();
    let mut old = ring.take().unwrap_or_default();
    let mut new = HashMap::with_capacity(groups.len());
    for &name in groups {
        let keys = match (old.remove(name), carry(name)) {
            (Some(keys), Carry::Handover) => GroupKeys { current: keys.next, next: fresh()?, previous: Some(keys.current) },
            (Some(keys), Carry::Succeed) => GroupKeys { current: fresh()?, next: fresh()?, previous: Some(keys.current) },
            _ => GroupKeys { current: fresh()?, next: fresh()?, previous: None },
        };
        new.insert(name.to_owned(), keys);
    }
    *ring = Some(new);
    Ok(())
}

/// A group's keys as one configuration hands them to the next.
pub struct CarriedKeys {
    pub group: String,
    pub current: Secret,
    pub next: Secret,
}

/// The keys the next configuration starts from (across a restart httpd
/// reloads this module, and this keyring with it; see `handover`).
pub fn export() -> Vec<CarriedKeys> {
    let ring = KEYRING.lock();
    ring.iter().flatten().map(|(name, keys)| CarriedKeys { group: name.clone(), current: keys.current.clone(), next: keys.next.clone() }).collect()
}

/// Takes back what `export` gave, for the next `renew`.
pub fn import(carried: Vec<CarriedKeys>) {
    let mut ring = KEYRING.lock();
    let ring = ring.get_or_insert_with(HashMap::new);
    for keys in carried {
        ring.insert(keys.group, GroupKeys { current: keys.current, next: keys.next, previous: None });
    }
}

/// In a daemon process: every key but `own` group's is wiped, so code
/// running as this group's user cannot speak for another group.
pub fn keep_only(own: &str) {
    if let Some(ring) = KEYRING.lock().as_mut() {
        ring.retain(|name, _| name == own);
    }
}

/// The MAC an Apache child sends with a head to `group` (current key).
pub fn sign(group: &str, challenge: &Challenge, sequence: u64, head: &[u8]) -> Tag {
    let ring = KEYRING.lock();
    match ring.as_ref().and_then(|ring| ring.get(group)) {
        Some(keys) => tag(&keys.current, challenge, sequence, head),
        None => [0; MAC_LEN],
    }
}

/// Whether `claimed` is the MAC of this head under one of `group`'s keys;
/// compared in constant time.
pub fn verify(group: &str, challenge: &Challenge, sequence: u64, head: &[u8], claimed: &Tag) -> bool {
    let ring = KEYRING.lock();
    let Some(keys) = ring.as_ref().and_then(|ring| ring.get(group)) else { return false };
    [&keys.current, &keys.next].into_iter().chain(&keys.previous).any(|key| {
        let mut mac = keyed(key);
        feed(&mut mac, challenge, sequence, head);
        mac.verify_slice(claimed).is_ok()
    })
}

fn keyed(key: &Secret) -> HmacSha256 {
    HmacSha256::new_from_slice(&key[..]).expect("HMAC takes keys of any length")
}

fn feed(mac: &mut HmacSha256, challenge: &Challenge, sequence: u64, head: &[u8]) {
    mac.update(CONTEXT);
    mac.update(challenge);
    mac.update(&sequence.to_be_bytes());
    mac.update(head);
}

fn tag(key: &Secret, challenge: &Challenge, sequence: u64, head: &[u8]) -> Tag {
    let mut mac = keyed(key);
    feed(&mut mac, challenge, sequence, head);
    mac.finalize().into_bytes().into()
}

/// A new connection's challenge.
pub fn new_challenge() -> std::io::Result<Challenge> {
    let mut challenge = [0u8; CHALLENGE_LEN];
    getrandom::fill(&mut challenge).map_err(std::io::Error::from)?;
    Ok(challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: Challenge = [7; CHALLENGE_LEN];

    // One test, as the keyring is one per process.
    #[test]
    fn keyring() {
        let carried = |_: &str| Carry::Handover;
        let succeeded = |_: &str| Carry::Succeed;
        let not_carried = |_: &str| Carry::Fresh;
        renew(&["a", "b"], &carried).unwrap();
        let head = b"script=/srv/app.wsgi".to_vec();
        let tag = sign("a", &CHALLENGE, 1, &head);
        assert!(verify("a", &CHALLENGE, 1, &head, &tag));
        assert!(!verify("a", &CHALLENGE, 2, &head, &tag), "out of turn");
        assert!(!verify("a", &[8; CHALLENGE_LEN], 1, &head, &tag), "another connection");
        let mut edited = head.clone();
        edited[8] ^= 1;
        assert!(!verify("a", &CHALLENGE, 1, &edited, &tag), "edited");
        let mut forged = tag;
        forged[0] ^= 1;
        assert!(!verify("a", &CHALLENGE, 1, &head, &forged));
        assert!(!verify("b", &CHALLENGE, 1, &head, &tag), "another group's key");
        assert!(!verify("c", &CHALLENGE, 1, &head, &[0; MAC_LEN]), "no such group");

        // Carried over: the previous configuration's key is believed for one
        // generation.
        renew(&["a", "b"], &carried).unwrap();
        assert!(verify("a", &CHALLENGE, 1, &head, &tag));
        let second = sign("a", &CHALLENGE, 1, &head);
        assert_ne!(second, tag);
        renew(&["a", "b"], &carried).unwrap();
        assert!(!verify("a", &CHALLENGE, 1, &head, &tag));
        let third = sign("a", &CHALLENGE, 1, &head);
        // Succeeded (a full restart): the old key still, not a key the old
        // configuration made ahead.
        renew(&["a", "b"], &succeeded).unwrap();
        assert!(verify("a", &CHALLENGE, 1, &head, &third));
        let fourth = sign("a", &CHALLENGE, 1, &head);
        assert_ne!(fourth, third);
        // Not carried (a changed identity): nothing of before is believed.
        renew(&["a", "b"], &not_carried).unwrap();
        assert!(!verify("a", &CHALLENGE, 1, &head, &fourth));

        // A daemon keeps its own group's keys only.
        let b = sign("b", &CHALLENGE, 1, &head);
        keep_only("a");
        assert!(!verify("b", &CHALLENGE, 1, &head, &b));
        assert_eq!(sign("b", &CHALLENGE, 1, &head), [0; MAC_LEN]);
        assert!(verify("a", &CHALLENGE, 1, &head, &sign("a", &CHALLENGE, 1, &head)));
    }

    #[test]
    fn challenges_differ() {
        assert_ne!(new_challenge().unwrap(), new_challenge().unwrap());
    }
}
