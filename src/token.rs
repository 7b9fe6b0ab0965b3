//! Bearer tokens: random, shown once, kept only as SHA-256 hashes.
//!
//! A token is `tc_`, its creation time (12 hex digits of Unix milliseconds) and 24 random bytes.
//! Its stored key is that time followed by the hash of the whole token, so the keys of new
//! tokens sort by creation: a hold's token lands at the end of the store's token index instead
//! of on a random page of it (about a third of the pages a group commit of holds wrote). The
//! time says nothing a reservation's own `created_at` does not; the hash covers it, so it
//! cannot be changed. Tokens made before (`tc_` and 48 hex digits) and anything else hashed
//! here (scopes, bodies, addresses) are keyed by the hash alone.
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Hex digits of the creation time in a token.
const STAMP: usize = 12;
/// Hex digits of its random part.
const RANDOM: usize = 48;

pub fn generate() -> String {
    let mut b = [0u8; RANDOM / 2];
    rand::thread_rng().fill_bytes(&mut b);
    let ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    format!("tc_{:012x}{}", ms & 0xffff_ffff_ffff, hex::encode(b))
}

pub fn hash(token: &str) -> String {
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    match stamp(token) {
        Some(at) => format!("{at}{digest}"),
        None => digest,
    }
}

/// The creation time of a token made by [`generate`].
fn stamp(token: &str) -> Option<&str> {
    token
        .strip_prefix("tc_")
        .filter(|rest| rest.len() == STAMP + RANDOM && rest.bytes().all(|c| c.is_ascii_hexdigit()))
        .map(|rest| &rest[..STAMP])
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_unique_and_hash_stably() {
        let (a, b) = (super::generate(), super::generate());
        assert_ne!(a, b);
        assert_eq!(super::hash(&a), super::hash(&a));
        assert_ne!(super::hash(&a), super::hash(&b));
        assert_eq!(super::hash(&a).len(), 12 + 64);
        // Keys of tokens made later sort later.
        std::thread::sleep(std::time::Duration::from_millis(2));
        let c = super::generate();
        assert!(super::hash(&c) > super::hash(&a));
        // A token of the old form, or anything else, is keyed by its hash alone.
        let old = format!("tc_{}", "ab".repeat(24));
        assert_eq!(super::hash(&old).len(), 64);
        assert_eq!(super::hash("client\n192.0.2.1").len(), 64);
    }
}
