//! [`RetryPolicy`]: which failures are retried, how often, and how long to wait.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use http::Method;

use crate::error::ErrorKind;

/// Retries 429 and 5xx responses (and broken connections and timeouts) with jittered
/// exponential backoff, waiting at least as long as a `Retry-After` header asks, plus a random
/// jitter of up to a tenth of it (at most 5 s) so that clients told the same `Retry-After` do
/// not all come back at the same instant.
///
/// A 429 is retried for every method: the API refused the request without processing it.
/// Other failures (5xx, broken connections, timeouts) may come after the request was
/// processed, so they are retried for idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS)
/// only, unless `retry_non_idempotent` is set here or on the request: a repeated POST could
/// post a message twice. A streamed upload is never retried (its body cannot be replayed).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: usize,
    /// First backoff delay.
    pub min_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured; longer hints are capped to this.
    pub max_retry_after: Duration,
    /// Also retry POST and PATCH after failures that may come after the request was
    /// processed (5xx, broken connections, timeouts); a 429 is retried regardless.
    pub retry_non_idempotent: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            retry_non_idempotent: false,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The successive backoff delays (jittered), one per allowed retry.
    pub(crate) fn delays(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
            .build()
    }

    /// Whether a failure of `kind` on `method` may be retried under this policy
    /// (`per_request` overrides `retry_non_idempotent`).
    pub(crate) fn allows(
        &self,
        kind: ErrorKind,
        method: &Method,
        per_request: Option<bool>,
    ) -> bool {
        if !kind.is_retryable() {
            return false;
        }
        // A 429 is the API refusing the request unprocessed: repeating it cannot post twice.
        if kind == ErrorKind::RateLimited {
            return true;
        }
        let idempotent = matches!(
            *method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        idempotent || per_request.unwrap_or(self.retry_non_idempotent)
    }

    /// The wait before a retry: the server's `hint` (capped at `max_retry_after`) plus a
    /// jitter of up to a tenth of it, at most [`MAX_RETRY_AFTER_JITTER`], and never less than
    /// `backoff`. `unit` in `[0, 1)` picks the jitter (random in use, fixed in tests).
    pub(crate) fn wait(&self, hint: Option<Duration>, backoff: Duration, unit: f64) -> Duration {
        let Some(hint) = hint else {
            return backoff;
        };
        let hint = hint.min(self.max_retry_after);
        let spread = (hint / 10).min(MAX_RETRY_AFTER_JITTER);
        let jitter = spread.mul_f64(unit.clamp(0.0, 1.0));
        (hint + jitter).max(backoff)
    }
}

/// The most jitter added to a `Retry-After` wait.
pub(crate) const MAX_RETRY_AFTER_JITTER: Duration = Duration::from_secs(5);

/// A random number in `[0, 1)` for jitter. uuid's v4 generator (already used for multipart
/// boundaries) is the randomness at hand; jitter needs spread, not secrecy.
pub(crate) fn jitter_unit() -> f64 {
    let (bits, _) = uuid::Uuid::new_v4().as_u64_pair();
    // The top 53 bits fill an f64 mantissa exactly.
    (bits >> 11) as f64 / (1_u64 << 53) as f64
}

/// `Retry-After` as a wait (see [`zd_auth::retry_after`]).
pub(crate) fn parse_retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    zd_auth::retry_after::from_headers(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_is_retried_for_every_method_other_failures_for_idempotent_ones() {
        let policy = RetryPolicy::default();
        assert!(policy.allows(ErrorKind::RateLimited, &Method::POST, None));
        assert!(policy.allows(ErrorKind::RateLimited, &Method::PATCH, Some(false)));
        assert!(!policy.allows(ErrorKind::Server, &Method::POST, None));
        assert!(!policy.allows(ErrorKind::Timeout, &Method::POST, None));
        assert!(policy.allows(ErrorKind::Server, &Method::POST, Some(true)));
        assert!(policy.allows(ErrorKind::Server, &Method::GET, None));
        assert!(!policy.allows(ErrorKind::NotFound, &Method::GET, None));
    }

    #[test]
    fn a_retry_after_wait_is_the_hint_plus_bounded_jitter() {
        let policy = RetryPolicy::default();
        let backoff = Duration::from_millis(200);
        let secs = Duration::from_secs;
        let wait = |hint: u64, unit: f64| policy.wait(Some(secs(hint)), backoff, unit);
        assert_eq!(wait(30, 0.0), secs(30));
        assert_eq!(wait(30, 0.5), Duration::from_millis(31_500));
        assert!(wait(30, 0.999) > secs(32) && wait(30, 0.999) < secs(33));
        // Capped at max_retry_after (60 s), and the jitter at 5 s.
        assert_eq!(wait(3600, 0.0), secs(60));
        assert_eq!(wait(3600, 0.5), Duration::from_millis(62_500));
        // Never less than the backoff; no hint is the backoff alone.
        assert_eq!(policy.wait(Some(Duration::ZERO), backoff, 0.9), backoff);
        assert_eq!(policy.wait(None, backoff, 0.9), backoff);
    }

    #[test]
    fn jitter_units_are_in_range_and_vary() {
        let units: Vec<f64> = (0..64).map(|_| jitter_unit()).collect();
        assert!(units.iter().all(|u| (0.0..1.0).contains(u)));
        assert!(units.windows(2).any(|w| w[0] != w[1]));
    }
}
