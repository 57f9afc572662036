//! [`RetryPolicy`]: which failures are retried, how often, and how long to wait.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use http::Method;

/// Retries 429 and 5xx responses (and broken connections and timeouts) with jittered
/// exponential backoff, waiting at least as long as a `Retry-After` header asks.
///
/// Only idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS) are retried unless
/// `retry_non_idempotent` is set here or on the request; a repeated POST could post a message
/// twice.
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
    /// Also retry POST and PATCH.
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

    /// Whether `method` may be retried under this policy (`per_request` overrides).
    pub(crate) fn allows(&self, method: &Method, per_request: Option<bool>) -> bool {
        let idempotent = matches!(
            *method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        idempotent || per_request.unwrap_or(self.retry_non_idempotent)
    }
}

/// `Retry-After` as a wait (see [`zd_auth::retry_after`]).
pub(crate) fn parse_retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    zd_auth::retry_after::from_headers(headers)
}
