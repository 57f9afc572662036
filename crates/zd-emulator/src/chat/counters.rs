//! What each session sent, so tests can prove a client stayed inside the limits.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::time::Instant;

/// The sliding window the request-rate peak is measured over.
const WINDOW: Duration = Duration::from_secs(1);
/// Bound on the remembered request instants (only the last second matters).
const MAX_REMEMBERED: usize = 100_000;

/// Counters of one session.
#[derive(Debug, Default)]
pub(crate) struct SessionCounters {
    pub(crate) requests: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) subscriptions_started: AtomicU64,
    pub(crate) stops: AtomicU64,
    pub(crate) data_frames: AtomicU64,
    pub(crate) data_dropped: AtomicU64,
    pub(crate) pings: AtomicU64,
    pub(crate) connections: AtomicU64,
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    recent: VecDeque<Instant>,
    peak: usize,
}

/// A snapshot of one session's counters.
#[derive(Debug, Clone, Serialize)]
pub struct SessionCounts {
    /// Requests received (queries, mutations, subscriptions, stop_subscription).
    pub requests: u64,
    /// The most requests received within any one-second window.
    pub peak_requests_per_second: usize,
    /// Requests refused with RATE_LIMITED.
    pub rate_limited: u64,
    /// Subscriptions started.
    pub subscriptions_started: u64,
    /// `stop_subscription` frames acted on (counted in `requests` too; not those refused by
    /// the rate limit or an injected failure).
    pub stops: u64,
    /// DATA frames queued for the session.
    pub data_frames: u64,
    /// DATA frames dropped because the socket's queue was full (its client read nothing), or
    /// queued for a socket whose upgrade failed with no room (or no socket) to take them over.
    pub data_dropped: u64,
    /// PINGs received.
    pub pings: u64,
    /// WebSocket connections opened on the session URL.
    pub connections: u64,
}

impl SessionCounters {
    /// Counts a request at `now` and updates the sliding-window peak.
    pub(crate) fn record_request(&self, now: Instant) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut w = self.window.lock();
        while w
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            w.recent.pop_front();
        }
        if w.recent.len() >= MAX_REMEMBERED {
            w.recent.pop_front();
        }
        w.recent.push_back(now);
        w.peak = w.peak.max(w.recent.len());
    }

    pub(crate) fn snapshot(&self) -> SessionCounts {
        SessionCounts {
            requests: self.requests.load(Ordering::Relaxed),
            peak_requests_per_second: self.window.lock().peak,
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            subscriptions_started: self.subscriptions_started.load(Ordering::Relaxed),
            stops: self.stops.load(Ordering::Relaxed),
            data_frames: self.data_frames.load(Ordering::Relaxed),
            data_dropped: self.data_dropped.load(Ordering::Relaxed),
            pings: self.pings.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn peak_is_a_sliding_window() {
        let c = SessionCounters::default();
        for _ in 0..30 {
            c.record_request(Instant::now());
        }
        tokio::time::advance(Duration::from_millis(600)).await;
        for _ in 0..30 {
            c.record_request(Instant::now());
        }
        tokio::time::advance(Duration::from_millis(600)).await;
        for _ in 0..10 {
            c.record_request(Instant::now());
        }
        let s = c.snapshot();
        assert_eq!(s.requests, 70);
        assert_eq!(s.peak_requests_per_second, 60);
    }
}
