//! A bounded memory of recently seen ids, so a repeat across a reconnect is dropped.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

/// Remembers the last `capacity` ids.
///
/// Ids are kept as 64-bit keyed hashes: one hash per item, no allocation, and a compact table
/// (a subscription sees every item pass through here). The key is random per process, so
/// nobody can craft two ids that collide; an accidental collision within the window is about
/// as likely as 2^-64 per pair.
#[derive(Debug)]
pub(crate) struct Dedup {
    keys: RandomState,
    seen: HashSet<u64, BuildHasherDefault<Prehashed>>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl Dedup {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            keys: RandomState::new(),
            seen: HashSet::default(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// True the first time `id` is seen (within the window).
    pub(crate) fn first_time(&mut self, id: &str) -> bool {
        let hash = self.keys.hash_one(id);
        if !self.seen.insert(hash) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.order.push_back(hash);
        true
    }
}

/// The set's hasher: its keys are already keyed hashes, so they are used as they are.
#[derive(Debug, Default)]
pub(crate) struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys reach this set; fold anything else in rather than lose it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_repeats_and_forgets_the_oldest() {
        let mut d = Dedup::new(2);
        assert!(d.first_time("a"));
        assert!(!d.first_time("a"));
        assert!(d.first_time("b"));
        assert!(d.first_time("c"));
        assert!(d.first_time("a"));
        assert!(!d.first_time("c"));
    }

    #[test]
    fn a_window_of_one_still_drops_an_immediate_repeat() {
        let mut d = Dedup::new(0);
        assert!(d.first_time("x"));
        assert!(!d.first_time("x"));
        assert!(d.first_time("y"));
        assert!(d.first_time("x"));
    }
}
