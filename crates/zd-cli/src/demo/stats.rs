//! What the demo counts, shared by the bot, the visitors, the faults and the views.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters updated from several tasks; read by the views once per tick.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Visitors that arrived.
    pub(crate) arrived: AtomicU64,
    /// Visitors that finished their conversation and left.
    pub(crate) left: AtomicU64,
    /// Messages the visitors sent (typed or chosen from a quick reply).
    pub(crate) visitor_sent: AtomicU64,
    /// Bot replies the visitors saw arrive while waiting.
    pub(crate) visitor_saw: AtomicU64,
    /// Visitor messages that got no reply in time.
    pub(crate) unanswered: AtomicU64,
    /// Messages the bot sent successfully on the simulator's channels.
    pub(crate) bot_sent: AtomicU64,
    /// Bot sends on the simulator's channels that failed for good.
    pub(crate) bot_send_failed: AtomicU64,
    /// Items the message subscription delivered from the simulator's visitors (repeats
    /// included).
    pub(crate) bot_items: AtomicU64,
    /// Replies the bot sent to visitors the simulator did not create (someone chatting in the
    /// browser, a scenario): counted apart, since the simulator cannot count their side.
    pub(crate) foreign_sent: AtomicU64,
    /// Failed replies to those visitors.
    pub(crate) foreign_send_failed: AtomicU64,
    /// Structured messages (quick replies, buttons) the bot sent.
    pub(crate) structured: AtomicU64,
    /// Transfers to a department.
    pub(crate) transfers: AtomicU64,
    /// Faults injected.
    pub(crate) faults_injected: AtomicU64,
    /// Faults after which the session was active again.
    pub(crate) faults_survived: AtomicU64,
    /// Faults whose recovery check finished and failed. Injected faults neither survived nor
    /// failed are the ones whose check the end of the run cut short.
    pub(crate) faults_failed: AtomicU64,
    /// Reconnects of the bot's socket.
    pub(crate) reconnects: AtomicU64,
    /// Session restarts (new startAgentSession).
    pub(crate) restarts: AtomicU64,
    /// Distinct message ids the bot received from the simulator's visitors.
    bot_received_ids: Mutex<HashSet<String>>,
    /// Distinct message ids the bot received from other visitors.
    foreign_received_ids: Mutex<HashSet<String>>,
    /// Round trips: visitor message sent -> bot reply seen by the visitor.
    round_trips: Mutex<Vec<Duration>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Records a visitor message seen by the bot; false when it is a repeat.
    pub(crate) fn bot_received(&self, message_id: &str) -> bool {
        Self::add(&self.bot_items);
        lock(&self.bot_received_ids).insert(message_id.to_owned())
    }

    pub(crate) fn bot_received_count(&self) -> u64 {
        lock(&self.bot_received_ids).len() as u64
    }

    /// Records a message the bot got from a visitor the simulator did not create; false when
    /// it is a repeat.
    pub(crate) fn foreign_received(&self, message_id: &str) -> bool {
        lock(&self.foreign_received_ids).insert(message_id.to_owned())
    }

    pub(crate) fn foreign_received_count(&self) -> u64 {
        lock(&self.foreign_received_ids).len() as u64
    }

    /// True when the bot has answered (or given up on) every message it received, from any
    /// visitor.
    pub(crate) fn bot_caught_up(&self) -> bool {
        Self::get(&self.bot_sent) + Self::get(&self.bot_send_failed) >= self.bot_received_count()
            && Self::get(&self.foreign_sent) + Self::get(&self.foreign_send_failed)
                >= self.foreign_received_count()
    }

    pub(crate) fn round_trip(&self, d: Duration) {
        lock(&self.round_trips).push(d);
    }

    /// `(count, p50, p99)` of the round trips so far.
    pub(crate) fn round_trip_percentiles(&self) -> (usize, Option<Duration>, Option<Duration>) {
        let mut all = lock(&self.round_trips).clone();
        all.sort_unstable();
        (all.len(), percentile(&all, 50.0), percentile(&all, 99.0))
    }
}

/// The nearest-rank percentile of sorted values.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// `1.23 ms` style.
pub(crate) fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.2} ms", d.as_secs_f64() * 1000.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&v, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&v[..1], 99.0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn repeats_count_once() {
        let s = Stats::default();
        assert!(s.bot_received("a"));
        assert!(!s.bot_received("a"));
        assert_eq!(s.bot_received_count(), 1);
        assert_eq!(Stats::get(&s.bot_items), 2);
    }

    #[test]
    fn other_visitors_are_counted_apart() {
        let s = Stats::default();
        assert!(s.bot_received("a"));
        assert!(s.foreign_received("b"));
        assert!(!s.foreign_received("b"));
        assert_eq!(s.bot_received_count(), 1);
        assert_eq!(s.foreign_received_count(), 1);
        // The foreign message does not count as a simulator item.
        assert_eq!(Stats::get(&s.bot_items), 1);
        Stats::add(&s.bot_sent);
        assert!(
            !s.bot_caught_up(),
            "the foreign message is not answered yet"
        );
        Stats::add(&s.foreign_sent);
        assert!(s.bot_caught_up());
    }
}
