//! Hashing for the driver's two lookup maps, which it consults on every frame.
//!
//! Requests are keyed by ids the driver counts out itself (1, 2, 3…) and looked up on every
//! answer; subscriptions are routed by the short ids the service gave them, on every event.
//! SipHash, the standard map's default, exists to resist keys chosen by an attacker. Neither
//! key is: one comes from a counter, the other from the service the session is authenticated
//! with, and their number is bounded (requests in flight, `max_subscriptions`). An FxHash-style
//! mix (a rotate, xor and multiply per word) spreads them as well, with a fraction of the code.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map whose keys the driver or the service generated.
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Fibonacci hashing: the multiplication moves the low bits that vary into the high bits, which
/// the map's probing and control bytes read.
const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// The hasher of [`FastMap`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write(&mut self, bytes: &[u8]) {
        // The length first: the last word is padded with zeros, which must not make "a" and
        // "a\0" one key.
        self.add(bytes.len() as u64);
        let mut words = bytes.chunks_exact(8);
        for chunk in &mut words {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, BuildHasherDefault};

    use super::{FastHasher, FastMap};

    #[test]
    fn a_map_of_sequential_ids_finds_and_removes_every_one() {
        let mut map = FastMap::default();
        for id in 1..=10_000u64 {
            map.insert(id, id * 2);
        }
        for id in (1..=10_000u64).step_by(2) {
            assert_eq!(map.remove(&id), Some(id * 2));
        }
        assert_eq!(map.len(), 5_000);
        assert!(
            (2..=10_000u64)
                .step_by(2)
                .all(|id| map.get(&id) == Some(&(id * 2)))
        );
        assert_eq!(map.get(&1), None);
    }

    #[test]
    fn sequential_ids_spread_over_the_high_bits() {
        let build = BuildHasherDefault::<FastHasher>::default();
        // hashbrown's control byte is the top 7 bits: a run of ids must not share one.
        let tops: std::collections::HashSet<u64> =
            (1..=128u64).map(|id| build.hash_one(id) >> 57).collect();
        assert!(tops.len() > 64, "only {} distinct top bytes", tops.len());
    }

    #[test]
    fn string_keys_differ_in_any_byte_and_in_length() {
        let build = BuildHasherDefault::<FastHasher>::default();
        let keys = [
            "a1gf13bjz13",
            "a1gf13bjz14",
            "b1gf13bjz13",
            "a1gf13bjz1",
            "",
            "\0",
        ];
        let hashes: std::collections::HashSet<u64> =
            keys.iter().map(|k| build.hash_one(k)).collect();
        assert_eq!(hashes.len(), keys.len());
        let mut routes = FastMap::default();
        for (n, key) in keys.iter().enumerate() {
            routes.insert((*key).to_owned(), n);
        }
        assert!(
            keys.iter()
                .enumerate()
                .all(|(n, k)| routes.get(*k) == Some(&n))
        );
    }
}
