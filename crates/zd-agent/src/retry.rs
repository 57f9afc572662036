//! Retry policy as data: which failures are retried, how often and how far apart.
//!
//! The service names its errors. `RATE_LIMITED` is retried with jittered exponential backoff;
//! `GRAPHQL_SUB_START_ERROR` "three to five times in 30 seconds" and never more; `UNAUTHORIZED`,
//! `FORBIDDEN`, `MAX_SUB` and `GRAPHQL_EXEC_ERROR` always give the same answer and are never
//! retried. A request lost with its socket is retried after the session recovers.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio::time::Instant;

/// How a failure may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryClass {
    /// `RATE_LIMITED`: back off and try again.
    RateLimited,
    /// `GRAPHQL_SUB_START_ERROR`: a few tries within a short window.
    SubscriptionStart,
    /// The connection dropped before an answer came: resend once the session is back.
    ConnectionLost,
    /// The same request will always fail the same way.
    Never,
}

/// Exponential backoff settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// First delay.
    pub min_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
    /// Growth per attempt.
    pub factor: f32,
    /// Most retries (`None`: unbounded).
    pub max_retries: Option<usize>,
}

impl Backoff {
    pub(crate) fn build(&self) -> ExponentialBackoff {
        let mut b = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(self.factor)
            .with_jitter();
        b = match self.max_retries {
            Some(n) => b.with_max_times(n),
            None => b.without_max_times(),
        };
        b.build()
    }

    /// The delay before retry `n` (from 0), without jitter: for retries that keep no backoff
    /// state of their own.
    pub(crate) fn nth_delay(&self, n: u32) -> Duration {
        let grown = self.min_delay.as_secs_f64() * f64::from(self.factor).powi(n.min(64) as i32);
        Duration::try_from_secs_f64(grown)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// The same backoff without a retry cap.
    pub(crate) fn build_unbounded(&self) -> ExponentialBackoff {
        Backoff {
            max_retries: None,
            ..*self
        }
        .build()
    }
}

/// The retry policy of a session.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Backoff after `RATE_LIMITED`.
    pub rate_limited: Backoff,
    /// Backoff after `GRAPHQL_SUB_START_ERROR`.
    pub subscription_start: Backoff,
    /// Most tries in all (first included) for a subscription start; documented as 3 to 5.
    pub subscription_start_tries: usize,
    /// All subscription start tries fall inside this window; documented as 30 s.
    pub subscription_start_window: Duration,
    /// Most times a request lost with its connection is sent again, in all: once these are
    /// spent the call fails with the retryable [`crate::ErrorKind::ConnectionLost`] and the
    /// session sends it no more (retrying it is the caller's choice).
    pub connection_lost_retries: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            rate_limited: Backoff {
                min_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(10),
                factor: 2.0,
                max_retries: Some(10),
            },
            subscription_start: Backoff {
                min_delay: Duration::from_millis(500),
                max_delay: Duration::from_secs(8),
                factor: 2.0,
                max_retries: None,
            },
            subscription_start_tries: 5,
            subscription_start_window: Duration::from_secs(30),
            connection_lost_retries: 8,
        }
    }
}

impl RetryPolicy {
    /// A fresh retry state for one request, started now.
    #[must_use]
    pub fn start(&self) -> Retrier<'_> {
        Retrier {
            policy: self,
            started: Instant::now(),
            rate_limited: None,
            sub_start: None,
            sub_start_tries: 1,
            lost: 0,
        }
    }
}

/// The retry state of one request across its attempts.
#[derive(Debug)]
pub struct Retrier<'a> {
    policy: &'a RetryPolicy,
    started: Instant,
    rate_limited: Option<ExponentialBackoff>,
    sub_start: Option<ExponentialBackoff>,
    sub_start_tries: usize,
    lost: usize,
}

impl Retrier<'_> {
    /// How long to wait before the next try after a failure of `class`, or `None` to give up.
    pub fn next_delay(&mut self, class: RetryClass) -> Option<Duration> {
        match class {
            RetryClass::Never => None,
            RetryClass::RateLimited => self
                .rate_limited
                .get_or_insert_with(|| self.policy.rate_limited.build())
                .next(),
            RetryClass::SubscriptionStart => {
                if self.sub_start_tries >= self.policy.subscription_start_tries {
                    return None;
                }
                let delay = self
                    .sub_start
                    .get_or_insert_with(|| self.policy.subscription_start.build())
                    .next()?;
                let at = Instant::now().duration_since(self.started) + delay;
                if at > self.policy.subscription_start_window {
                    return None;
                }
                self.sub_start_tries += 1;
                Some(delay)
            }
            RetryClass::ConnectionLost => {
                if self.lost >= self.policy.connection_lost_retries {
                    return None;
                }
                self.lost += 1;
                Some(Duration::ZERO)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_is_never_retried() {
        let p = RetryPolicy::default();
        assert_eq!(p.start().next_delay(RetryClass::Never), None);
    }

    #[test]
    fn the_nth_delay_grows_to_the_cap() {
        let b = RetryPolicy::default().rate_limited;
        assert_eq!(b.nth_delay(0), Duration::from_millis(100));
        assert_eq!(b.nth_delay(3), Duration::from_millis(800));
        assert_eq!(b.nth_delay(7), Duration::from_secs(10));
        assert_eq!(b.nth_delay(u32::MAX), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_backs_off_with_jitter_and_stops() {
        let p = RetryPolicy::default();
        let mut r = p.start();
        let delays: Vec<_> = std::iter::from_fn(|| r.next_delay(RetryClass::RateLimited)).collect();
        assert_eq!(delays.len(), 10);
        // Jitter adds up to one more delay on top of the exponential value.
        assert!(delays[0] >= Duration::from_millis(100) && delays[0] <= Duration::from_millis(200));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(20)));
    }

    #[tokio::test(start_paused = true)]
    async fn subscription_start_is_at_most_five_tries_within_thirty_seconds() {
        let p = RetryPolicy::default();
        let mut r = p.start();
        let mut tries = 1;
        let mut total = Duration::ZERO;
        while let Some(d) = r.next_delay(RetryClass::SubscriptionStart) {
            tokio::time::advance(d).await;
            total += d;
            tries += 1;
        }
        assert!((3..=5).contains(&tries), "{tries}");
        assert!(total <= Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn subscription_start_stops_at_the_window() {
        let p = RetryPolicy::default();
        let mut r = p.start();
        tokio::time::advance(Duration::from_millis(29_600)).await;
        assert_eq!(r.next_delay(RetryClass::SubscriptionStart), None);
    }

    #[test]
    fn connection_lost_is_bounded() {
        let p = RetryPolicy {
            connection_lost_retries: 2,
            ..RetryPolicy::default()
        };
        let mut r = p.start();
        assert_eq!(
            r.next_delay(RetryClass::ConnectionLost),
            Some(Duration::ZERO)
        );
        assert_eq!(
            r.next_delay(RetryClass::ConnectionLost),
            Some(Duration::ZERO)
        );
        assert_eq!(r.next_delay(RetryClass::ConnectionLost), None);
    }
}
