//! The Real Time Chat limits, on tokio time: 200 requests per rolling minute shared by REST
//! calls and new streaming connections, at most 1000 concurrent connections per account and
//! 10 per agent, and the emulator's keepalive. [`RealtimeLimits`] holds them; load tests may
//! raise them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

const MINUTE: Duration = Duration::from_secs(60);

/// How often the service pings each streaming connection. The emulator's choice: the docs
/// give no cadence for the service's own pings (clients in the wild ping every 15 s and
/// count a connection stale after 2 minutes without a control frame). Every client that
/// reads the socket (tungstenite, browsers, Node `ws`) answers pings on its own, so only a
/// connection whose client has vanished or stopped reading falls silent.
pub(crate) const PING_INTERVAL: Duration = Duration::from_secs(30);

/// The limits the Real Time Chat service enforces. [`RealtimeLimits::documented`] holds the
/// documented values; a benchmark that opens a thousand feeds at once raises
/// `requests_per_minute` (the documented budget would take five minutes to admit them).
///
/// ```
/// use zd_emulator::RealtimeLimits;
///
/// let load_test = RealtimeLimits {
///     requests_per_minute: None,
///     ..RealtimeLimits::documented()
/// };
/// assert_eq!(load_test.account_connections, 1000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealtimeLimits {
    /// REST calls plus new streaming connections per rolling minute; `None` disables the
    /// budget.
    pub requests_per_minute: Option<usize>,
    /// Concurrent streaming connections per account.
    pub account_connections: usize,
    /// Concurrent streaming connections per agent.
    pub agent_connections: usize,
    /// How often the service pings each streaming connection (30 s, the emulator's choice;
    /// taken as at least a second). A connection from which nothing at all (pongs included)
    /// arrived for a whole interval after a ping was written, or whose ping could not be
    /// written for a whole interval, is dropped, freeing its slot. `None` sends no pings
    /// and keeps silent connections: for tests on tokio's paused clock, which jumps to the
    /// next pending timer whenever the runtime waits on a socket, so a ping timer would move
    /// their clock.
    pub ping_interval: Option<Duration>,
}

impl RealtimeLimits {
    /// The documented limits: 200 requests a minute, 1000 connections per account, 10 per
    /// agent; and a ping every 30 s.
    pub const fn documented() -> Self {
        Self {
            requests_per_minute: Some(200),
            account_connections: 1000,
            agent_connections: 10,
            ping_interval: Some(PING_INTERVAL),
        }
    }

    /// Reads a `requests_per_minute` from a command line: a positive number, or `off` for no
    /// budget.
    ///
    /// # Errors
    /// A message naming the value when it is neither.
    ///
    /// ```
    /// use zd_emulator::RealtimeLimits;
    ///
    /// assert_eq!(RealtimeLimits::parse_requests_per_minute("off"), Ok(None));
    /// assert_eq!(RealtimeLimits::parse_requests_per_minute("5000"), Ok(Some(5000)));
    /// assert!(RealtimeLimits::parse_requests_per_minute("0").is_err());
    /// ```
    pub fn parse_requests_per_minute(text: &str) -> Result<Option<usize>, String> {
        if text == "off" {
            return Ok(None);
        }
        match text.parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(format!("expected a positive number or `off`, got `{text}`")),
        }
    }
}

impl Default for RealtimeLimits {
    fn default() -> Self {
        Self::documented()
    }
}

/// Why a request or connection was refused (answered with HTTP 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The per-minute budget (this many) is spent; a slot frees up after the duration.
    Budget(usize, Duration),
    /// The account holds this many connections.
    Account(usize),
    /// The agent holds this many connections.
    Agent(usize),
}

impl Refusal {
    pub(crate) fn message(self) -> String {
        match self {
            Self::Budget(limit, _) => format!(
                "Too many requests: the limit is {limit} requests and new connections per minute"
            ),
            Self::Account(limit) => {
                format!("Too many connections: an account may hold {limit} concurrent connections")
            }
            Self::Agent(limit) => {
                format!("Too many connections: an agent may hold {limit} concurrent connections")
            }
        }
    }

    /// Whole seconds for `Retry-After`.
    pub(crate) fn retry_after_secs(self) -> u64 {
        match self {
            Self::Budget(_, wait) => wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            Self::Account(_) | Self::Agent(_) => 1,
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
    limits: RealtimeLimits,
    requests: Mutex<VecDeque<Instant>>,
    connections: Mutex<Connections>,
}

impl Gate {
    pub(crate) fn new(limits: RealtimeLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// How often each connection is pinged; `None`: never.
    pub(crate) fn ping_interval(&self) -> Option<Duration> {
        self.limits.ping_interval
    }

    /// Spends one request of the rolling minute.
    pub(crate) fn take_request(&self, now: Instant) -> Result<(), Refusal> {
        let Some(budget) = self.limits.requests_per_minute else {
            return Ok(());
        };
        let mut log = self.requests.lock();
        while log
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= MINUTE)
        {
            log.pop_front();
        }
        if log.len() >= budget {
            let oldest = log.front().copied().unwrap_or(now);
            return Err(Refusal::Budget(
                budget,
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
        if mine >= self.limits.agent_connections {
            return Err(Refusal::Agent(self.limits.agent_connections));
        }
        if c.total >= self.limits.account_connections {
            return Err(Refusal::Account(self.limits.account_connections));
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

    /// Forgets the requests of the rolling minute (open connections keep their slots).
    pub(crate) fn reset_budget(&self) {
        self.requests.lock().clear();
    }
}

// Here rather than beside `Realtime`: the budget is this module's, and the control API's reset
// is its only other user.
impl super::Realtime {
    /// Gives back the whole per-minute budget, as on a fresh emulator.
    pub(crate) fn reset_budget(&self) {
        self.gate.reset_budget();
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
        for _ in 0..200 {
            gate.take_request(start).unwrap();
        }
        tokio::time::advance(Duration::from_secs(20)).await;
        let err = gate.take_request(Instant::now()).unwrap_err();
        assert_eq!(err, Refusal::Budget(200, Duration::from_secs(40)));
        assert_eq!(err.retry_after_secs(), 40);
        tokio::time::advance(Duration::from_secs(40)).await;
        gate.take_request(Instant::now()).unwrap();
    }

    #[test]
    fn caps_per_agent_and_account() {
        let gate = Arc::new(Gate::new(RealtimeLimits {
            account_connections: 12,
            ..RealtimeLimits::documented()
        }));
        let held: Vec<_> = (0..10).map(|_| gate.open("a").unwrap()).collect();
        assert_eq!(gate.open("a").unwrap_err(), Refusal::Agent(10));
        let b: Vec<_> = (0..2).map(|_| gate.open("b").unwrap()).collect();
        assert_eq!(gate.open_connections(), 12);
        // Both under their agent cap, over the account's.
        assert_eq!(gate.open("b").unwrap_err(), Refusal::Account(12));
        assert_eq!(gate.open("c").unwrap_err(), Refusal::Account(12));
        drop(b);
        gate.open("c").unwrap();
        drop(held);
        assert_eq!(gate.open_connections(), 0);
        gate.open("a").unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn raised_limits_admit_a_thousand_feeds_at_once() {
        let gate = Arc::new(Gate::new(RealtimeLimits {
            requests_per_minute: None,
            ..RealtimeLimits::documented()
        }));
        let now = Instant::now();
        let held: Vec<_> = (0..1000)
            .map(|i| {
                gate.take_request(now).unwrap();
                gate.open(&format!("agent-{}", i / 10)).unwrap()
            })
            .collect();
        assert_eq!(gate.open("agent-0").unwrap_err(), Refusal::Agent(10));
        assert_eq!(gate.open("agent-x").unwrap_err(), Refusal::Account(1000));
        drop(held);
        assert_eq!(gate.open_connections(), 0);
    }
}
