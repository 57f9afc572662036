//! Local enforcement of the Real Time Chat limits: 200 new connections or REST requests per
//! minute (shared), 1000 concurrent feeds per account and 10 per agent.
//!
//! Enforcing them here means a burst of reconnects or dashboards never earns the account an
//! HTTP 429 from Zendesk; the server's answer is still mapped to a typed error when another
//! process spends the same budget.

use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::{Error, ErrorKind};

/// Zendesk's documented budget of new connections plus REST requests per minute.
pub const REQUESTS_PER_MINUTE: u32 = 200;
/// Zendesk's documented cap of concurrent streaming connections per account.
pub const MAX_ACCOUNT_CONNECTIONS: usize = 1000;
/// Zendesk's documented cap of concurrent streaming connections per agent.
pub const MAX_AGENT_CONNECTIONS: usize = 10;

/// The window the budget counts over.
const WINDOW: Duration = Duration::from_secs(60);

/// The request budget as an exact sliding log: the times of the requests of the last minute,
/// at most `per_minute` of them. A token bucket of `n` a minute with a burst of `n` lets
/// `2n - 1` requests through in some minutes (a full bucket, then its refill), which would
/// earn the 429 this budget is there to avoid; `n` is small enough here to remember each one.
/// Times are tokio's, so a paused test clock also pauses the budget.
#[derive(Debug)]
struct Budget {
    per_minute: usize,
    spent: Mutex<VecDeque<Instant>>,
}

impl Budget {
    fn new(per_minute: NonZeroU32) -> Self {
        Self {
            per_minute: usize::try_from(per_minute.get()).unwrap_or(usize::MAX),
            spent: Mutex::new(VecDeque::new()),
        }
    }

    /// Spends one request now, or says how long until one is free.
    fn take(&self) -> Result<(), Duration> {
        let now = Instant::now();
        let mut spent = self.spent.lock().unwrap_or_else(PoisonError::into_inner);
        while spent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            spent.pop_front();
        }
        if spent.len() < self.per_minute {
            spent.push_back(now);
            return Ok(());
        }
        let oldest = spent.front().copied().unwrap_or(now);
        Err((oldest + WINDOW).saturating_duration_since(now))
    }
}

/// The numbers a [`Limits`] enforces.
///
/// A connection cap above [`LimitConfig::MAX_CONNECTIONS`] means no cap in practice and is
/// lowered to it by [`Limits::new`] (which [`Limits::config`] then reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitConfig {
    /// New connections plus REST requests per minute; `None` disables the budget.
    pub requests_per_minute: Option<NonZeroU32>,
    /// Concurrent feeds per account.
    pub max_account_connections: usize,
    /// Concurrent feeds per agent (per [`crate::MetricsClient`]).
    pub max_agent_connections: usize,
}

impl LimitConfig {
    /// The largest connection cap [`Limits`] can hold (tokio's semaphore permit limit);
    /// larger caps are lowered to it.
    pub const MAX_CONNECTIONS: usize = Semaphore::MAX_PERMITS;

    /// Zendesk's documented limits: 200/min, 1000 per account, 10 per agent.
    pub const ZENDESK: Self = Self {
        requests_per_minute: NonZeroU32::new(REQUESTS_PER_MINUTE),
        max_account_connections: MAX_ACCOUNT_CONNECTIONS,
        max_agent_connections: MAX_AGENT_CONNECTIONS,
    };

    /// Custom limits, e.g. for a test server or an account with a negotiated budget.
    pub const fn new(
        requests_per_minute: Option<NonZeroU32>,
        max_account_connections: usize,
        max_agent_connections: usize,
    ) -> Self {
        Self {
            requests_per_minute,
            max_account_connections,
            max_agent_connections,
        }
    }
}

impl Default for LimitConfig {
    fn default() -> Self {
        Self::ZENDESK
    }
}

/// One account's limits, shared by every [`crate::MetricsClient`] of that account (clone it).
///
/// Create it inside the tokio runtime that uses it: the request budget runs on tokio time.
#[derive(Clone)]
pub struct Limits {
    inner: Arc<Inner>,
}

struct Inner {
    config: LimitConfig,
    budget: Option<Budget>,
    account: Arc<Semaphore>,
}

impl fmt::Debug for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limits")
            .field("config", &self.inner.config)
            .field("open_connections", &self.open_connections())
            .finish()
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::new(LimitConfig::ZENDESK)
    }
}

impl Limits {
    /// Limits with the given numbers, connection caps lowered to
    /// [`LimitConfig::MAX_CONNECTIONS`].
    pub fn new(mut config: LimitConfig) -> Self {
        // A semaphore panics above its permit limit; "more than a process could ever open"
        // means the same as the limit, so the cap is lowered rather than refused.
        config.max_account_connections = config
            .max_account_connections
            .min(LimitConfig::MAX_CONNECTIONS);
        config.max_agent_connections = config
            .max_agent_connections
            .min(LimitConfig::MAX_CONNECTIONS);
        Self {
            inner: Arc::new(Inner {
                config,
                budget: config.requests_per_minute.map(Budget::new),
                account: Arc::new(Semaphore::new(config.max_account_connections)),
            }),
        }
    }

    /// The numbers in force.
    pub fn config(&self) -> LimitConfig {
        self.inner.config
    }

    /// Feeds of this account holding a connection slot now.
    pub fn open_connections(&self) -> usize {
        self.inner.config.max_account_connections - self.inner.account.available_permits()
    }

    /// Spends one request from the shared budget, or says how long until one is available.
    pub(crate) fn take_request(&self) -> Result<(), Error> {
        let Some(budget) = &self.inner.budget else {
            return Ok(());
        };
        budget.take().map_err(|wait| {
            Error::new(
                ErrorKind::LocalRateLimited,
                format!("the {} requests/minute budget is spent", budget.per_minute),
            )
            .with_retry_after(Some(wait))
        })
    }

    pub(crate) fn agent_semaphore(&self) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(self.inner.config.max_agent_connections))
    }

    /// Reserves one concurrent-connection slot for the account and the agent.
    pub(crate) fn reserve(&self, agent: &Arc<Semaphore>) -> Result<ConnectionSlot, Error> {
        let agent = Arc::clone(agent).try_acquire_owned().map_err(|_| {
            Error::new(
                ErrorKind::AgentConnectionCap,
                format!(
                    "this agent already holds {} feeds",
                    self.inner.config.max_agent_connections
                ),
            )
        })?;
        let account = Arc::clone(&self.inner.account)
            .try_acquire_owned()
            .map_err(|_| {
                Error::new(
                    ErrorKind::AccountConnectionCap,
                    format!(
                        "this account already holds {} feeds",
                        self.inner.config.max_account_connections
                    ),
                )
            })?;
        Ok(ConnectionSlot {
            _agent: agent,
            _account: account,
        })
    }
}

/// A held concurrent-connection slot; released when the feed ends.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    _agent: OwnedSemaphorePermit,
    _account: OwnedSemaphorePermit,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn budget_refills_on_tokio_time() {
        let limits = Limits::new(LimitConfig::new(NonZeroU32::new(2), 10, 10));
        limits.take_request().unwrap();
        tokio::time::advance(Duration::from_secs(20)).await;
        limits.take_request().unwrap();
        let err = limits.take_request().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LocalRateLimited);
        // The first request leaves the window 60 s after it was made.
        let wait = err.retry_after().unwrap();
        assert_eq!(wait, Duration::from_secs(40));
        tokio::time::advance(wait).await;
        limits.take_request().unwrap();
        assert!(limits.take_request().is_err());
    }

    /// The documented example: 190 REST requests and 10 connections in a minute reach the
    /// limit. However the 200 are spread, no 60-second window ever holds more.
    #[tokio::test(start_paused = true)]
    async fn no_minute_ever_holds_more_than_the_budget() {
        let limits = Limits::default();
        let mut granted = Vec::new();
        // A burst, then a steady try every 100 ms for five minutes.
        for step in 0..3000_u64 {
            if limits.take_request().is_ok() {
                granted.push(tokio::time::Instant::now());
            }
            if step >= 300 {
                tokio::time::advance(Duration::from_millis(100)).await;
            }
        }
        assert!(granted.len() > 200, "the budget refills: {}", granted.len());
        for (i, start) in granted.iter().enumerate() {
            let in_window = granted[i..]
                .iter()
                .take_while(|t| t.duration_since(*start) < Duration::from_secs(60))
                .count();
            assert!(
                in_window <= 200,
                "{in_window} requests in the minute from #{i}"
            );
        }
    }

    #[tokio::test]
    async fn caps_beyond_the_semaphore_limit_are_lowered_not_a_panic() {
        let limits = Limits::new(LimitConfig::new(None, usize::MAX, usize::MAX));
        let config = limits.config();
        assert_eq!(config.max_account_connections, LimitConfig::MAX_CONNECTIONS);
        assert_eq!(config.max_agent_connections, LimitConfig::MAX_CONNECTIONS);
        let agent = limits.agent_semaphore();
        let _slot = limits.reserve(&agent).unwrap();
        assert_eq!(limits.open_connections(), 1);
    }

    #[tokio::test]
    async fn caps_are_typed_and_released() {
        let limits = Limits::new(LimitConfig::new(None, 3, 2));
        let alice = limits.agent_semaphore();
        let bob = limits.agent_semaphore();
        let a1 = limits.reserve(&alice).unwrap();
        let _a2 = limits.reserve(&alice).unwrap();
        assert_eq!(
            limits.reserve(&alice).unwrap_err().kind(),
            ErrorKind::AgentConnectionCap
        );
        let _b1 = limits.reserve(&bob).unwrap();
        assert_eq!(
            limits.reserve(&bob).unwrap_err().kind(),
            ErrorKind::AccountConnectionCap
        );
        assert_eq!(limits.open_connections(), 3);
        drop(a1);
        limits.reserve(&bob).unwrap();
    }
}
