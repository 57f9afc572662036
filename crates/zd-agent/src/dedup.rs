//! A bounded memory of recently seen ids, so a repeat across a reconnect is dropped.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

/// Remembers the last `capacity` ids.
#[derive(Debug)]
pub(crate) struct Dedup {
    // One shared allocation per id, held by both the set and the queue.
    seen: HashSet<Arc<str>>,
    order: VecDeque<Arc<str>>,
    capacity: usize,
}

impl Dedup {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// True the first time `id` is seen (within the window).
    pub(crate) fn first_time(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if let Some(old) = (self.order.len() >= self.capacity)
            .then(|| self.order.pop_front())
            .flatten()
        {
            self.seen.remove(&old);
        }
        let id: Arc<str> = id.into();
        self.seen.insert(Arc::clone(&id));
        self.order.push_back(id);
        true
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
}
