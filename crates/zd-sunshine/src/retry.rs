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
/// A `Retry-After` longer than `max_retry_after` is not retried early: the request is not
/// retried at all, and the error (with [`Error::retry_after`](crate::Error::retry_after)) is
/// returned so that the caller can reschedule it.
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
    /// Longest backoff delay before jitter: the jitter adds up to as much again, so a backoff
    /// wait can reach twice this.
    pub max_delay: Duration,
    /// The longest `Retry-After` waited out in place (plus its jitter). A longer hint is not
    /// retried: the error is returned at once, carrying the hint in
    /// [`Error::retry_after`](crate::Error::retry_after).
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

    /// The successive backoff delays, one per allowed retry. backon clamps each delay to
    /// `max_delay` and then adds a random jitter of up to 100% of it, so a delay is at most
    /// twice `max_delay`.
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

    /// The wait before a retry: the server's `hint` plus a jitter of up to a tenth of it, at
    /// most [`MAX_RETRY_AFTER_JITTER`], and never less than `backoff`; `None` (do not retry)
    /// when the hint is longer than `max_retry_after`. `unit` in `[0, 1)` picks the jitter
    /// (random in use, fixed in tests).
    pub(crate) fn wait(
        &self,
        hint: Option<Duration>,
        backoff: Duration,
        unit: f64,
    ) -> Option<Duration> {
        let Some(hint) = hint else {
            return Some(backoff);
        };
        if hint > self.max_retry_after {
            return None;
        }
        let spread = (hint / 10).min(MAX_RETRY_AFTER_JITTER);
        let jitter = spread.mul_f64(unit.clamp(0.0, 1.0));
        Some((hint + jitter).max(backoff))
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
        assert_eq!(wait(30, 0.0), Some(secs(30)));
        assert_eq!(wait(30, 0.5), Some(Duration::from_millis(31_500)));
        let late = wait(30, 0.999).unwrap_or_default();
        assert!(late > secs(32) && late < secs(33));
        // Up to max_retry_after (60 s) is waited out, with jitter (a tenth, at most 5 s).
        assert_eq!(wait(60, 0.5), Some(Duration::from_millis(62_500)));
        // A longer hint is not cut short and retried early: it is not retried at all.
        assert_eq!(wait(61, 0.0), None);
        assert_eq!(wait(3600, 0.5), None);
        // Never less than the backoff; no hint is the backoff alone.
        assert_eq!(
            policy.wait(Some(Duration::ZERO), backoff, 0.9),
            Some(backoff)
        );
        assert_eq!(policy.wait(None, backoff, 0.9), Some(backoff));
    }

    /// backon jitters after clamping to `max_delay`: a delay reaches up to twice it, as the
    /// field's documentation says.
    #[test]
    fn backoff_delays_stay_within_twice_max_delay() {
        let policy = RetryPolicy {
            max_retries: 64,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        let delays: Vec<Duration> = policy.delays().collect();
        assert_eq!(delays.len(), 64);
        assert!(
            delays.iter().all(|d| *d <= 2 * policy.max_delay),
            "{delays:?}"
        );
        assert!(
            delays[10..].iter().all(|d| *d >= policy.max_delay),
            "{delays:?}"
        );
    }

    #[test]
    fn jitter_units_are_in_range_and_vary() {
        let units: Vec<f64> = (0..64).map(|_| jitter_unit()).collect();
        assert!(units.iter().all(|u| (0.0..1.0).contains(u)));
        assert!(units.windows(2).any(|w| w[0] != w[1]));
    }
}
