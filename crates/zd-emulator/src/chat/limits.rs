//! The documented limits and how the emulator enforces them, on tokio time.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Chat log entries one answer or DATA frame may hold, all `logs` fields of its document
/// together: five whole chats (a chat keeps 10,000). The emulator's own bound (the service
/// documents none): one `logs` inside another (through `Message.channel`) would otherwise
/// copy a whole log once per entry of the outer one.
pub(crate) const MAX_ANSWER_LOG_ENTRIES: usize = 50_000;
/// The error of a document whose `logs` fields together pass [`MAX_ANSWER_LOG_ENTRIES`].
pub(crate) const LOG_ENTRIES_SPENT: &str = "the answer would hold more than 50000 chat log \
     entries, the most the emulator puts in one answer: page the logs with first and after";
/// Largest answer to a query or mutation, in bytes: the emulator's own bound (the service
/// documents none), far above what a chat's whole log makes.
pub(crate) const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// Largest DATA frame payload, in bytes: the emulator's own bound. Lower than an answer's,
/// because a socket queues thousands of DATA frames for a client that reads slowly.
pub(crate) const MAX_DATA_BYTES: usize = 1024 * 1024;

/// Bytes of DATA frames a socket holds for its client before further DATA is dropped (and
/// counted so, as past its room in frames). The emulator's own bound: a client that reads
/// very slowly, but fast enough to stay within the write timeout, would otherwise make a
/// socket hold thousands of frames of up to [`MAX_DATA_BYTES`] each, gigabytes, and an
/// emulator left running must hold bounded memory. Checked before a frame is queued, so a
/// socket holds at most this plus one frame.
pub(crate) const MAX_QUEUED_DATA_BYTES: usize = 64 * 1024 * 1024;
/// Bytes of answers a socket holds for its client before its reader waits for them to be
/// written (as it waits when its queue of answers is full): the emulator's own bound, for the
/// same reason, answers being up to [`MAX_ANSWER_BYTES`] each. Answers are never dropped.
pub(crate) const MAX_QUEUED_ANSWER_BYTES: usize = 64 * 1024 * 1024;
/// Bytes of PONGs a socket holds before its reader waits for them to be written: a PONG echoes
/// its PING's payload (up to the frame cap) and PINGs are not rate-limited. A budget apart from
/// the answers', so a PONG does not wait for room that answers the `delay` fault holds take.
pub(crate) const MAX_QUEUED_PONG_BYTES: usize = 4 * 1024 * 1024;

/// The limits a service enforces. [`Limits::documented`] holds the documented values.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests per second per session (queries, mutations, subscriptions, stop_subscription);
    /// `None` disables the check (benchmarks).
    pub requests_per_second: Option<u32>,
    /// Minimum time between two `startAgentSession` of one agent.
    pub start_session_interval: Duration,
    /// `startAgentSession` calls per agent per hour.
    pub start_sessions_per_hour: usize,
    /// Concurrent subscriptions per session.
    pub max_subscriptions: usize,
    /// Maximum query depth.
    pub max_depth: usize,
    /// Largest frame accepted from a client, in bytes.
    pub max_frame_bytes: usize,
    /// A socket on which the client sends nothing (no request, no PING) for this long is
    /// closed with code 1001; the session stays and may be resumed on a new socket. `None`
    /// keeps idle sockets open.
    pub idle_timeout: Option<Duration>,
    /// A socket whose frame cannot be written for this long (its client stopped reading and
    /// the buffers between are full) is dropped without a close frame, as is one that still
    /// has not written what it holds this long after it was told to end.
    pub write_timeout: Duration,
}

impl Limits {
    /// The documented limits. Three figures are the emulator's choice: the frame cap (256 KiB;
    /// the service documents none), the idle timeout (120 s; the service asks clients to
    /// "send regular pings to prevent being disconnected due to an idle connection" without
    /// saying after how long, and its samples ping every 5 to 60 s) and the write timeout
    /// (30 s, as the Real Time service's keepalive gives a ping it cannot write).
    pub fn documented() -> Self {
        Self {
            requests_per_second: Some(100),
            start_session_interval: Duration::from_secs(1),
            start_sessions_per_hour: 50,
            max_subscriptions: 10,
            max_depth: 11,
            max_frame_bytes: 256 * 1024,
            idle_timeout: Some(Duration::from_secs(120)),
            write_timeout: Duration::from_secs(30),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::documented()
    }
}

/// "100 requests per second" read as at most `rate` requests in any one-second window: a
/// token bucket holding `rate` would let a full burst and a second of refill (`2 * rate - 1`)
/// through in some windows, hiding a client that bursts from the limit it meets in production.
/// Remembers the admitted requests of the last second only.
#[derive(Debug)]
pub(crate) struct RequestWindow {
    rate: usize,
    admitted: VecDeque<Instant>,
}

impl RequestWindow {
    pub(crate) fn new(rate: u32) -> Self {
        Self {
            rate: usize::try_from(rate).unwrap_or(usize::MAX),
            admitted: VecDeque::new(),
        }
    }

    /// Forgets every request admitted so far.
    pub(crate) fn clear(&mut self) {
        self.admitted.clear();
    }

    /// Admits a request at `now` if fewer than `rate` were admitted in the second before it.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        while self
            .admitted
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(1))
        {
            self.admitted.pop_front();
        }
        if self.admitted.len() >= self.rate {
            return false;
        }
        self.admitted.push_back(now);
        true
    }
}

/// `startAgentSession` per agent: at most one per interval and a number per rolling hour.
#[derive(Debug, Default)]
pub(crate) struct StartLimiter {
    starts: Mutex<HashMap<String, VecDeque<Instant>>>,
}

const HOUR: Duration = Duration::from_secs(3600);

impl StartLimiter {
    /// Records a start of `agent` at `now` when the limits allow it.
    pub(crate) fn try_start(&self, agent: &str, now: Instant, limits: &Limits) -> bool {
        let mut starts = self.starts.lock();
        let history = starts.entry(agent.to_owned()).or_default();
        while history
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= HOUR)
        {
            history.pop_front();
        }
        let too_soon = history
            .back()
            .is_some_and(|t| now.saturating_duration_since(*t) < limits.start_session_interval);
        if too_soon || history.len() >= limits.start_sessions_per_hour {
            return false;
        }
        history.push_back(now);
        true
    }

    pub(crate) fn reset(&self) {
        self.starts.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_entry_error_names_the_bound() {
        assert!(LOG_ENTRIES_SPENT.contains(&format!(" {MAX_ANSWER_LOG_ENTRIES} ")));
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_rate_requests_in_any_second() {
        let mut window = RequestWindow::new(100);
        let start = Instant::now();
        assert_eq!((0..150).filter(|_| window.try_take(start)).count(), 100);
        // Half a second on, the first hundred still fill the window: a token bucket would
        // have let 50 more through here.
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(
            (0..100).filter(|_| window.try_take(Instant::now())).count(),
            0
        );
        // A second after the burst, all of it has left the window.
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(
            (0..150).filter(|_| window.try_take(Instant::now())).count(),
            100
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_client_at_the_rate_is_never_refused() {
        let mut window = RequestWindow::new(100);
        for _ in 0..1_000 {
            assert!(window.try_take(Instant::now()));
            tokio::time::advance(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn start_limiter_one_per_second_fifty_per_hour() {
        let limits = Limits::documented();
        let limiter = StartLimiter::default();
        assert!(limiter.try_start("a", Instant::now(), &limits));
        assert!(!limiter.try_start("a", Instant::now(), &limits));
        assert!(limiter.try_start("b", Instant::now(), &limits));
        for _ in 0..49 {
            tokio::time::advance(Duration::from_secs(1)).await;
            assert!(limiter.try_start("a", Instant::now(), &limits));
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(
            !limiter.try_start("a", Instant::now(), &limits),
            "51st within the hour"
        );
        tokio::time::advance(HOUR).await;
        assert!(limiter.try_start("a", Instant::now(), &limits));
    }
}
