//! Client-side rate limits, on tokio time so paused-clock tests see them.
//!
//! The service allows 100 requests per second per session and `startAgentSession` at most once a
//! second and 50 times an hour. Staying under those numbers is cheaper than being told
//! `RATE_LIMITED`, so every outgoing request waits here first.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The documented ceiling of requests per second for one agent session.
pub const MAX_REQUESTS_PER_SECOND: u32 = 100;

/// A governor clock that reads tokio's clock.
///
/// governor's own clocks keep running when a test pauses tokio time; this one does not, so a test
/// with `start_paused = true` sees exactly the waits the limiter asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    type Instant = std::time::Instant;

    fn now(&self) -> Self::Instant {
        Instant::now().into_std()
    }
}

type Governor =
    RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<std::time::Instant>>;

/// Keeps one session's requests at or under a number per second, measured over any window of one
/// second.
///
/// A plain GCRA quota of `n`/s with a burst of `n` lets `2n - 1` requests through in some
/// one-second windows. This limiter splits the budget: a burst of `n / 10` (at least one) and a
/// steady rate of the rest, so that burst plus one second of refill never exceeds `n`.
#[derive(Debug)]
pub struct RequestLimiter {
    governor: Governor,
    per_second: NonZeroU32,
}

impl RequestLimiter {
    /// A limiter allowing at most `per_second` requests in any one-second window.
    ///
    /// Values above [`MAX_REQUESTS_PER_SECOND`] are lowered to it: the service would refuse the
    /// excess anyway.
    #[must_use]
    pub fn new(per_second: NonZeroU32) -> Self {
        let per_second =
            per_second.min(NonZeroU32::MIN.saturating_add(MAX_REQUESTS_PER_SECOND - 1));
        let n = per_second.get();
        let burst = (n / 10).max(1);
        let steady = n.saturating_sub(burst).max(1);
        // One token every 1/steady seconds, whole nanoseconds rounded up so we never go faster.
        let period = Duration::from_nanos(1_000_000_000_u64.div_ceil(u64::from(steady)));
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Self {
            governor: RateLimiter::direct_with_clock(quota, TokioClock),
            per_second,
        }
    }

    /// The configured ceiling.
    #[must_use]
    pub fn per_second(&self) -> NonZeroU32 {
        self.per_second
    }

    /// Waits until one more request may be sent, then takes its slot.
    ///
    /// # Cancel safety
    /// Cancel safe: a slot is only taken when the future completes.
    pub async fn acquire(&self) {
        loop {
            match self.governor.check() {
                Ok(()) => return,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(TokioClock.now());
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Takes a slot if one is free now.
    pub fn try_acquire(&self) -> bool {
        self.governor.check().is_ok()
    }
}

impl Default for RequestLimiter {
    fn default() -> Self {
        Self::new(NonZeroU32::MIN.saturating_add(MAX_REQUESTS_PER_SECOND - 1))
    }
}

/// Limits of `startAgentSession`: at most one per `min_interval` and `per_window` per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartLimits {
    /// Shortest time between two starts (documented: one second).
    pub min_interval: Duration,
    /// How many starts the window allows (documented: 50).
    pub per_window: u32,
    /// The window (documented: one hour).
    pub window: Duration,
}

impl Default for StartLimits {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_secs(1),
            per_window: 50,
            window: Duration::from_secs(3600),
        }
    }
}

/// Keeps `startAgentSession` inside its own, much tighter, limits.
///
/// An exact sliding log rather than a GCRA: 50 an hour is small enough to remember each start, and
/// a recovery loop must never spend the hour's budget in a burst.
#[derive(Debug)]
pub struct StartLimiter {
    limits: StartLimits,
    starts: Mutex<VecDeque<Instant>>,
}

/// Why a session start was not allowed right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartDenied {
    /// How long until the next start would be allowed.
    pub retry_after: Duration,
}

impl StartLimiter {
    /// A limiter with the given limits.
    #[must_use]
    pub fn new(limits: StartLimits) -> Self {
        let cap = usize::try_from(limits.per_window)
            .unwrap_or(usize::MAX)
            .min(4096);
        Self {
            limits,
            starts: Mutex::new(VecDeque::with_capacity(cap)),
        }
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> StartLimits {
        self.limits
    }

    fn wait_needed(&self, starts: &mut VecDeque<Instant>, now: Instant) -> Option<Duration> {
        while starts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.limits.window)
        {
            starts.pop_front();
        }
        let mut wait = Duration::ZERO;
        if let Some(last) = starts.back() {
            wait = wait.max(
                self.limits
                    .min_interval
                    .saturating_sub(now.duration_since(*last)),
            );
        }
        let full = starts.len() >= usize::try_from(self.limits.per_window).unwrap_or(usize::MAX);
        if let Some(first) = starts.front().filter(|_| full) {
            wait = wait.max(
                self.limits
                    .window
                    .saturating_sub(now.duration_since(*first)),
            );
        }
        (!wait.is_zero()).then_some(wait)
    }

    /// Takes a start slot now, or says how long until one is free.
    ///
    /// # Errors
    /// [`StartDenied`] with the time to wait when a limit would be exceeded.
    pub async fn try_acquire(&self) -> Result<(), StartDenied> {
        let mut starts = self.starts.lock().await;
        let now = Instant::now();
        match self.wait_needed(&mut starts, now) {
            Some(retry_after) => Err(StartDenied { retry_after }),
            None => {
                starts.push_back(now);
                Ok(())
            }
        }
    }

    /// Waits (at most `max_wait`) for a start slot and takes it.
    ///
    /// # Errors
    /// [`StartDenied`] when the wait would be longer than `max_wait`; nothing is taken then.
    pub async fn acquire_within(&self, max_wait: Duration) -> Result<(), StartDenied> {
        loop {
            let mut starts = self.starts.lock().await;
            let now = Instant::now();
            match self.wait_needed(&mut starts, now) {
                None => {
                    starts.push_back(now);
                    return Ok(());
                }
                Some(wait) if wait > max_wait => return Err(StartDenied { retry_after: wait }),
                Some(wait) => {
                    drop(starts);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

impl Default for StartLimiter {
    fn default() -> Self {
        Self::new(StartLimits::default())
    }
}

impl StartLimiter {
    /// Whether no start within the window is remembered: forgetting the limiter changes
    /// nothing then. (A limiter in use counts as busy.)
    fn is_idle(&self, now: Instant) -> bool {
        self.starts.try_lock().is_ok_and(|starts| {
            starts
                .back()
                .is_none_or(|last| now.duration_since(*last) >= self.limits.window)
        })
    }
}

/// The start limiter of this process for sessions posting `startAgentSession` to `endpoint`
/// with `token` under `limits`: a supervisor that connects again and again with the same
/// credentials stays inside the service's limits, not only each session on its own.
///
/// Keyed by a hash of the three, with a key drawn at random once per process, so the token
/// itself is never kept. Limiters nobody holds and that remember no start within their window
/// are forgotten when another is added.
pub(crate) fn shared_start_limiter(
    endpoint: &url::Url,
    token: &str,
    limits: StartLimits,
) -> std::sync::Arc<StartLimiter> {
    use std::collections::HashMap;
    use std::hash::{BuildHasher, Hash, Hasher};
    use std::sync::{Arc, Mutex as StdMutex, OnceLock, PoisonError};

    static KEYS: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    static LIMITERS: OnceLock<StdMutex<HashMap<u64, Arc<StartLimiter>>>> = OnceLock::new();

    let mut hasher = KEYS
        .get_or_init(std::collections::hash_map::RandomState::new)
        .build_hasher();
    endpoint.as_str().hash(&mut hasher);
    token.hash(&mut hasher);
    limits.min_interval.hash(&mut hasher);
    limits.per_window.hash(&mut hasher);
    limits.window.hash(&mut hasher);
    let key = hasher.finish();

    // The map is left consistent at every step, so a panic elsewhere while it was held
    // leaves nothing to repair.
    let mut limiters = LIMITERS
        .get_or_init(StdMutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(limiter) = limiters.get(&key) {
        return Arc::clone(limiter);
    }
    let now = Instant::now();
    limiters.retain(|_, l| Arc::strong_count(l) > 1 || !l.is_idle(now));
    let limiter = Arc::new(StartLimiter::new(limits));
    limiters.insert(key, Arc::clone(&limiter));
    limiter
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    /// Counts the most acquisitions in any window of one second.
    fn max_in_window(times: &[Instant], window: Duration) -> usize {
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..times.len() {
            while times[hi].duration_since(times[lo]) >= window {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }

    #[tokio::test(start_paused = true)]
    async fn requests_never_exceed_the_ceiling_in_any_second() {
        let limiter = RequestLimiter::default();
        let mut times = Vec::new();
        for _ in 0..1000 {
            limiter.acquire().await;
            times.push(Instant::now());
        }
        assert!(max_in_window(&times, Duration::from_secs(1)) <= 100);
        // And it is not needlessly slow: 1000 requests take about 10 s.
        let spent = times.last().unwrap().duration_since(times[0]);
        assert!(spent < Duration::from_millis(11_200), "{spent:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lower_ceiling_is_honoured() {
        let limiter = RequestLimiter::new(nz(20));
        let mut times = Vec::new();
        for _ in 0..200 {
            limiter.acquire().await;
            times.push(Instant::now());
        }
        assert!(max_in_window(&times, Duration::from_secs(1)) <= 20);
        assert_eq!(limiter.per_second().get(), 20);
    }

    #[test]
    fn the_ceiling_is_capped_at_the_documented_limit() {
        assert_eq!(RequestLimiter::new(nz(1000)).per_second().get(), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn session_starts_are_one_per_second() {
        let limiter = StartLimiter::default();
        limiter.try_acquire().await.unwrap();
        let denied = limiter.try_acquire().await.unwrap_err();
        assert_eq!(denied.retry_after, Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        limiter.try_acquire().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_with_the_same_endpoint_and_token_share_their_start_limits() {
        let endpoint = url::Url::parse("https://chat.example/graphql/request").unwrap();
        let limits = StartLimits::default();
        // A token of this test's own: the limiters are shared by the whole test process.
        let token = "token-of-sessions_with_the_same_endpoint_and_token";
        shared_start_limiter(&endpoint, token, limits)
            .try_acquire()
            .await
            .unwrap();
        let again = shared_start_limiter(&endpoint, token, limits);
        let denied = again.try_acquire().await.unwrap_err();
        assert_eq!(denied.retry_after, Duration::from_secs(1));
        // Other credentials, or another endpoint, are limited on their own.
        let other = "another-token-of-sessions_with_the_same_endpoint_and_token";
        shared_start_limiter(&endpoint, other, limits)
            .try_acquire()
            .await
            .unwrap();
        let elsewhere = url::Url::parse("https://elsewhere.example/graphql/request").unwrap();
        shared_start_limiter(&elsewhere, token, limits)
            .try_acquire()
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        shared_start_limiter(&endpoint, token, limits)
            .try_acquire()
            .await
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn session_starts_are_fifty_per_hour() {
        let limiter = StartLimiter::default();
        let t0 = Instant::now();
        let mut times = Vec::new();
        for _ in 0..120 {
            limiter
                .acquire_within(Duration::from_secs(7200))
                .await
                .unwrap();
            times.push(Instant::now());
        }
        assert!(max_in_window(&times, Duration::from_secs(3600)) <= 50);
        assert!(max_in_window(&times, Duration::from_secs(1)) <= 1);
        // 120 starts need two full hours of waiting plus the spacing of the last batch.
        assert!(Instant::now().duration_since(t0) >= Duration::from_secs(7200));
        let err = limiter.acquire_within(Duration::ZERO).await;
        assert!(err.is_err());
    }
}
