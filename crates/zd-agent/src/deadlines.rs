//! Request deadlines, kept by the driver: one timer for every request instead of one each.
//!
//! Each call used to wrap its wait in `tokio::time::timeout`: a trip through the timer wheel to
//! arm it and another to cancel it, on every request, though nearly every answer comes long
//! before. All requests of a session share one timeout, so deadlines set when the driver takes a
//! request come in order: the driver queues them and arms a single timer for the earliest,
//! which fires about once per timeout period.

use std::collections::VecDeque;

use tokio::time::Instant;

/// Deadlines of the requests the driver holds, earliest first.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    queue: VecDeque<(Instant, u64)>,
}

impl Deadlines {
    /// Request `id` fails at `at` unless answered before.
    pub(crate) fn push(&mut self, at: Instant, id: u64) {
        // The driver sets deadlines from one monotonic clock, so this is the end of the queue;
        // the search only keeps the order if that ever changes.
        match self.queue.back() {
            Some(&(last, _)) if last > at => {
                let place = self.queue.partition_point(|&(t, _)| t <= at);
                self.queue.insert(place, (at, id));
            }
            _ => self.queue.push_back((at, id)),
        }
    }

    /// The earliest deadline still queued.
    pub(crate) fn earliest(&self) -> Option<Instant> {
        self.queue.front().map(|&(at, _)| at)
    }

    /// Request `id` is settled. Its entry leaves at once when it is the earliest, with those
    /// behind it that `live` says are settled too; any other leaves when it reaches the front.
    /// So in-order answers keep the queue empty, and it never holds more than the requests of
    /// one timeout period.
    pub(crate) fn settle(&mut self, id: u64, live: impl Fn(u64) -> bool) {
        if self.queue.front().is_none_or(|&(_, first)| first != id) {
            return;
        }
        self.queue.pop_front();
        while self.queue.front().is_some_and(|&(_, next)| !live(next)) {
            self.queue.pop_front();
        }
    }

    /// Removes every entry due at `now`, earliest first, and hands its id to `expire` (which
    /// ignores ids already settled).
    pub(crate) fn expire(&mut self, now: Instant, mut expire: impl FnMut(u64)) {
        while let Some(&(at, id)) = self.queue.front() {
            if at > now {
                break;
            }
            self.queue.pop_front();
            expire(id);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.queue.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::Deadlines;

    fn expired(deadlines: &mut Deadlines, now: Instant) -> Vec<u64> {
        let mut ids = Vec::new();
        deadlines.expire(now, |id| ids.push(id));
        ids
    }

    #[test]
    fn due_requests_expire_in_deadline_order() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        d.push(t0 + Duration::from_millis(10), 1);
        d.push(t0 + Duration::from_millis(30), 2);
        // Out of order: still expires before request 2.
        d.push(t0 + Duration::from_millis(20), 3);
        assert_eq!(d.earliest(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(expired(&mut d, t0), Vec::<u64>::new());
        assert_eq!(expired(&mut d, t0 + Duration::from_millis(25)), [1, 3]);
        assert_eq!(d.earliest(), Some(t0 + Duration::from_millis(30)));
        assert_eq!(expired(&mut d, t0 + Duration::from_secs(1)), [2]);
        assert_eq!(d.earliest(), None);
    }

    #[test]
    fn answers_in_order_keep_the_queue_empty() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        for id in 1..=100 {
            d.push(t0 + Duration::from_millis(id), id);
            d.settle(id, |_| false);
            assert_eq!(d.len(), 0);
        }
    }

    #[test]
    fn an_answer_behind_a_slow_request_leaves_with_it() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        for id in 1..=3 {
            d.push(t0 + Duration::from_millis(id), id);
        }
        // 2 and 3 answered while 1 is still out: they wait behind it.
        d.settle(3, |_| true);
        d.settle(2, |_| true);
        assert_eq!(d.len(), 3);
        // 1 answered: 2 and 3 are settled (not live), so all leave.
        d.settle(1, |_| false);
        assert_eq!(d.len(), 0);
    }
}
