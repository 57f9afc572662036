//! Local enforcement of the Real Time Chat limits: 200 new connections or REST requests per
//! minute (shared), 1000 concurrent feeds per account and 10 per agent.
//!
//! Enforcing them here means a burst of reconnects or dashboards never earns the account an
//! HTTP 429 from Zendesk; the server's answer is still mapped to a typed error when another
//! process spends the same budget.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{Error, ErrorKind};

/// Zendesk's documented budget of new connections plus REST requests per minute.
pub const REQUESTS_PER_MINUTE: u32 = 200;
/// Zendesk's documented cap of concurrent streaming connections per account.
pub const MAX_ACCOUNT_CONNECTIONS: usize = 1000;
/// Zendesk's documented cap of concurrent streaming connections per agent.
pub const MAX_AGENT_CONNECTIONS: usize = 10;

/// Governor's clock on tokio time, so a paused test clock also pauses the budget.
#[derive(Debug, Clone)]
struct TokioClock {
    origin: tokio::time::Instant,
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        tokio::time::Instant::now().saturating_duration_since(self.origin)
    }
}

type Budget = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

/// The numbers a [`Limits`] enforces.
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
    clock: TokioClock,
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
    /// Limits with the given numbers.
    pub fn new(config: LimitConfig) -> Self {
        let clock = TokioClock {
            origin: tokio::time::Instant::now(),
        };
        let budget = config
            .requests_per_minute
            .map(|n| RateLimiter::direct_with_clock(Quota::per_minute(n), clock.clone()));
        Self {
            inner: Arc::new(Inner {
                config,
                budget,
                clock,
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
        budget.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(self.inner.clock.now());
            Error::new(
                ErrorKind::LocalRateLimited,
                "the 200 requests/minute budget is spent",
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
        limits.take_request().unwrap();
        let err = limits.take_request().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LocalRateLimited);
        let wait = err.retry_after().unwrap();
        assert_eq!(wait, Duration::from_secs(30));
        tokio::time::advance(wait).await;
        limits.take_request().unwrap();
        assert!(limits.take_request().is_err());
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
