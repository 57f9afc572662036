//! Session settings.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use crate::rate_limit::{MAX_REQUESTS_PER_SECOND, StartLimiter, StartLimits};
use crate::retry::{Backoff, RetryPolicy};

/// The production endpoint of `startAgentSession`.
pub const DEFAULT_ENDPOINT: &str = "https://chat-api.zopim.com/graphql/request";

/// What to do when the service ends the session because the agent logged in elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnConcurrentSession {
    /// Close the session and report [`crate::ErrorKind::ConcurrentSession`]: two processes
    /// fighting over one agent would only evict each other forever.
    #[default]
    Surface,
    /// Start a new session anyway (inside the start limits).
    Restart,
}

/// Settings of an [`AgentSession`](crate::AgentSession).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where `startAgentSession` is posted.
    pub endpoint: url::Url,
    /// Most requests per second, measured over any one-second window; `None` turns the limiter
    /// off (only for servers without the limit, such as a benchmark emulator).
    pub requests_per_second: Option<NonZeroU32>,
    /// Limits of `startAgentSession`.
    ///
    /// They hold across the sessions of this process, not only within one: sessions that post
    /// to the same `endpoint` with the same token under the same limits share one
    /// [`StartLimiter`] (unless `start_limiter` gives one), so a supervisor that connects
    /// again and again is limited too. A connect or resume over the limits fails at once with
    /// [`crate::ErrorKind::StartLimited`] and its `retry_after`; a restart inside a running
    /// session waits for its turn, up to `max_start_wait`.
    pub start_limits: StartLimits,
    /// The start limiter to use instead of the one this process shares by endpoint, token and
    /// `start_limits` (its own limits then apply). Give the sessions of one agent whose token
    /// changes (a refreshing token) one limiter between them: the shared one is found by the
    /// token of a session's first start.
    pub start_limiter: Option<Arc<StartLimiter>>,
    /// The longest a restart waits for the start limits before giving up.
    pub max_start_wait: Duration,
    /// Retry rules by error name.
    pub retry: RetryPolicy,
    /// Backoff between reconnects to the same URL; when exhausted a new session starts.
    pub reconnect: Backoff,
    /// Most failed restarts in a row before the session closes.
    pub max_restarts: usize,
    /// PING period.
    pub keepalive_interval: Duration,
    /// Silence (no PONG nor any frame) after a PING after which the socket counts as dead;
    /// also the longest a write (or the close) may wait for a socket whose peer reads nothing.
    /// It runs from the PING, so it may be shorter or longer than `keepalive_interval`.
    pub keepalive_deadline: Duration,
    /// Longest wait for the answer to one request, from when the driver takes it (at once,
    /// unless its command queue is full); it then fails with `ErrorKind::Timeout`, while
    /// reconnecting too. Each retry of the policy waits afresh.
    pub request_timeout: Duration,
    /// Longest wait to open a socket or start a session.
    pub connect_timeout: Duration,
    /// Largest frame read.
    pub max_frame_bytes: usize,
    /// Live subscriptions allowed (the service allows 10).
    pub max_subscriptions: usize,
    /// Items buffered per subscription before the session waits for its reader.
    ///
    /// While it waits, the session reads nothing else from its socket. A reader that awaits a
    /// request's answer while its own buffer is full therefore waits until that request times
    /// out: keep this above the events that can pile up during such a wait (the default, 1024,
    /// is ten seconds of the service's 100 requests per second).
    pub subscription_buffer: usize,
    /// How many recent item ids each subscription remembers to drop repeats.
    pub dedup_window: usize,
    /// After a gap, how far before the newest message already handed out (by the service's
    /// own timestamps) [`AgentSession::messages`](crate::AgentSession::messages) looks again
    /// for what it missed: a message may reach the socket a little after a newer one. What
    /// the overlap finds again is dropped as a repeat while `dedup_window` still holds it.
    ///
    /// It is also the allowance for this host's clock running ahead of the service's: when
    /// nothing was handed out before the first gap, the catch-up looks back from when the
    /// subscription started by this host's clock, less this overlap.
    pub catch_up_overlap: Duration,
    /// Whether [`AgentSession::messages`](crate::AgentSession::messages) runs its catch-up
    /// query after a gap. The query selects schema elements the reference only infers (see
    /// the crate documentation): a service that refuses it three gaps in a row (with errors
    /// no retry changes; each gap gives a [`crate::ErrorKind::CatchUp`] item) turns catch-up
    /// off for that subscription on its own; `false` never sends it.
    pub catch_up: bool,
    /// Concurrent-session EOS policy.
    pub on_concurrent_session: OnConcurrentSession,
    /// Whether a `sendMessage` whose socket dropped before its answer is sent again, with the
    /// same `msg_id`, once the session recovers (at least once). The emulator takes a repeated
    /// `msg_id` for the same message; the service documents `msg_id` only as an id "to
    /// identify this message", not that it drops a repeat, so a resend may show twice. With
    /// `false` such a send fails with the retryable [`crate::ErrorKind::ConnectionLost`]
    /// instead (at most once; it may have arrived) and your code decides.
    pub resend_messages: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            #[allow(clippy::expect_used)]
            endpoint: url::Url::parse(DEFAULT_ENDPOINT).expect("constant URL parses"),
            requests_per_second: NonZeroU32::new(MAX_REQUESTS_PER_SECOND),
            start_limits: StartLimits::default(),
            start_limiter: None,
            max_start_wait: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            reconnect: Backoff {
                min_delay: Duration::from_millis(50),
                max_delay: Duration::from_secs(2),
                factor: 2.0,
                max_retries: Some(3),
            },
            max_restarts: 10,
            keepalive_interval: Duration::from_secs(15),
            keepalive_deadline: Duration::from_secs(40),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_frame_bytes: 1024 * 1024,
            max_subscriptions: 10,
            subscription_buffer: 1024,
            dedup_window: 4096,
            catch_up_overlap: Duration::from_secs(5),
            catch_up: true,
            on_concurrent_session: OnConcurrentSession::default(),
            resend_messages: true,
        }
    }
}

impl Config {
    /// Defaults, posting `startAgentSession` to `endpoint`.
    #[must_use]
    pub fn with_endpoint(endpoint: url::Url) -> Self {
        Self {
            endpoint,
            ..Self::default()
        }
    }
}
