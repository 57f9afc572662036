//! The emulator's clock: tokio time, so tests can pause and advance it.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Reads the time for the chat state and the limits.
///
/// Monotonic instants come from [`tokio::time::Instant`] (which follows a paused test clock);
/// wall-clock milliseconds are derived from them, anchored once at construction, so a paused
/// clock also freezes message timestamps.
#[derive(Debug, Clone)]
pub struct Clock {
    origin: Instant,
    origin_unix_ms: f64,
}

impl Clock {
    /// A clock anchored at the current time.
    pub fn new() -> Self {
        let origin_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0);
        Self::anchored(origin_unix_ms)
    }

    /// A clock whose current instant reads as `unix_ms` milliseconds since the epoch.
    pub fn anchored(unix_ms: f64) -> Self {
        Self {
            origin: Instant::now(),
            origin_unix_ms: unix_ms,
        }
    }

    /// The current monotonic instant.
    pub fn now(&self) -> Instant {
        Instant::now()
    }

    /// Milliseconds since the UNIX epoch at `at`.
    pub fn unix_ms_at(&self, at: Instant) -> f64 {
        let elapsed = at.saturating_duration_since(self.origin).as_secs_f64() * 1000.0;
        (self.origin_unix_ms + elapsed).floor()
    }

    /// Milliseconds since the UNIX epoch now.
    pub fn unix_ms(&self) -> f64 {
        self.unix_ms_at(self.now())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
