//! The Real Time Chat limits, on tokio time: 200 requests per rolling minute shared by REST
//! calls and new streaming connections, at most 1000 concurrent connections per account and
//! 10 per agent.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Requests (REST calls plus new connections) per rolling minute.
pub(crate) const REQUESTS_PER_MINUTE: usize = 200;
/// Concurrent streaming connections per account.
pub(crate) const MAX_ACCOUNT_CONNECTIONS: usize = 1000;
/// Concurrent streaming connections per agent.
pub(crate) const MAX_AGENT_CONNECTIONS: usize = 10;

const MINUTE: Duration = Duration::from_secs(60);

/// Why a request or connection was refused (answered with HTTP 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The 200/minute budget is spent; a slot frees up after this long.
    Budget(Duration),
    /// The account holds 1000 connections.
    Account,
    /// The agent holds 10 connections.
    Agent,
}

impl Refusal {
    pub(crate) fn message(self) -> String {
        match self {
            Self::Budget(_) => format!(
                "Too many requests: the limit is {REQUESTS_PER_MINUTE} requests and new connections per minute"
            ),
            Self::Account => format!(
                "Too many connections: an account may hold {MAX_ACCOUNT_CONNECTIONS} concurrent connections"
            ),
            Self::Agent => format!(
                "Too many connections: an agent may hold {MAX_AGENT_CONNECTIONS} concurrent connections"
            ),
        }
    }

    /// Whole seconds for `Retry-After`.
    pub(crate) fn retry_after_secs(self) -> u64 {
        match self {
            Self::Budget(wait) => wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            Self::Account | Self::Agent => 1,
        }
    }
}

#[derive(Debug, Default)]
struct Connections {
    total: usize,
    per_agent: HashMap<String, usize>,
}

/// The account's request log and connection counts.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    requests: Mutex<VecDeque<Instant>>,
    connections: Mutex<Connections>,
}

impl Gate {
    /// Spends one request of the rolling minute.
    pub(crate) fn take_request(&self, now: Instant) -> Result<(), Refusal> {
        let mut log = self.requests.lock();
        while log
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= MINUTE)
        {
            log.pop_front();
        }
        if log.len() >= REQUESTS_PER_MINUTE {
            let oldest = log.front().copied().unwrap_or(now);
            return Err(Refusal::Budget(
                (oldest + MINUTE).saturating_duration_since(now),
            ));
        }
        log.push_back(now);
        Ok(())
    }

    /// Registers a connection of `agent`; the slot is freed when the guard drops.
    pub(crate) fn open(self: &Arc<Self>, agent: &str) -> Result<ConnectionGuard, Refusal> {
        let mut c = self.connections.lock();
        let mine = c.per_agent.get(agent).copied().unwrap_or(0);
        if mine >= MAX_AGENT_CONNECTIONS {
            return Err(Refusal::Agent);
        }
        if c.total >= MAX_ACCOUNT_CONNECTIONS {
            return Err(Refusal::Account);
        }
        c.total += 1;
        c.per_agent.insert(agent.to_owned(), mine + 1);
        Ok(ConnectionGuard {
            gate: Arc::clone(self),
            agent: agent.to_owned(),
        })
    }

    /// Connections open now.
    pub(crate) fn open_connections(&self) -> usize {
        self.connections.lock().total
    }
}

/// One open connection's slot.
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    gate: Arc<Gate>,
    agent: String,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut c = self.gate.connections.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_agent.get_mut(&self.agent) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_agent.remove(&self.agent);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn budget_is_a_rolling_minute() {
        let gate = Gate::default();
        let start = Instant::now();
        for _ in 0..REQUESTS_PER_MINUTE {
            gate.take_request(start).unwrap();
        }
        tokio::time::advance(Duration::from_secs(20)).await;
        let err = gate.take_request(Instant::now()).unwrap_err();
        assert_eq!(err, Refusal::Budget(Duration::from_secs(40)));
        assert_eq!(err.retry_after_secs(), 40);
        tokio::time::advance(Duration::from_secs(40)).await;
        gate.take_request(Instant::now()).unwrap();
    }

    #[test]
    fn caps_per_agent_and_account() {
        let gate = Arc::new(Gate::default());
        let held: Vec<_> = (0..MAX_AGENT_CONNECTIONS)
            .map(|_| gate.open("a").unwrap())
            .collect();
        assert_eq!(gate.open("a").unwrap_err(), Refusal::Agent);
        let b = gate.open("b").unwrap();
        assert_eq!(gate.open_connections(), MAX_AGENT_CONNECTIONS + 1);
        drop(held);
        drop(b);
        assert_eq!(gate.open_connections(), 0);
        gate.open("a").unwrap();
    }
}
