//! The Real Time Chat service: a WebSocket feed of live chat and agent metrics at `/stream`
//! and the REST pull of the same metrics at `/stream/chats[/{key}]` and
//! `/stream/agents[/{key}]`.
//!
//! Every value is computed from the emulator's chat state ([`compute`]); an engine task
//! recomputes on each state event (and when a windowed count ages out) and connections push
//! an update frame only for the subscriptions whose value changed. The engine is the only
//! publisher: a REST pull computes its own answer and a subscribe reads what the engine last
//! published, so client requests push nothing (the docs: values are pushed when an event
//! changes them, with no periodic ticks). A windowed count ageing out is such an event for
//! the windowed counts. The time-based values (waits, durations, response times) are
//! recomputed only after the events the docs name as affecting them (joining, leaving,
//! sending a message, a department transfer, the chat ending; see [`engine`]): after typing,
//! tagging, a rating, a status change or a count ageing out they stay as last pushed.
//!
//! Choices where the documentation is silent: a subscribe is answered at once with the
//! value last pushed, as of the last event that moved it (so a dashboard need not wait for
//! the next change; a time-based value read by a REST pull, computed at the moment of the
//! pull, may be ahead of it; [`SubscribeAnswer`] switches to nothing until the value
//! changes); a windowed metric without `window`, a window on an agent metric, an unknown
//! topic or action get a `status_code` 500 frame and the connection stays; a window on an
//! unwindowed chat metric is ignored (the docs' sample subscribes such metrics "for a
//! 30-minute time window"); an `unsubscribe` without `window` removes every window of that
//! metric, and `department_id` reads as in a subscribe (without it, the account-wide
//! subscription; a client may hold that and a department's, and end either alone); the
//! account counts as inactive ("Not Computed!",
//! values `null`) until a visitor arrives or an agent logs in; a connection holds at most
//! 100 subscriptions (`socket::MAX_SUBSCRIPTIONS`; beyond, a `status_code` 500 frame, as for
//! a malformed subscription); a subscription or REST pull naming a department the account
//! does not have gets 404 (a `status_code` 404 frame on the feed, the connection staying; an
//! HTTP 404 with the same body on REST): the docs say nothing of unknown departments, and the
//! mistake is the client's; the service pings each connection every 30 s and drops, without
//! a close frame, one that sent nothing at all for 30 s after a ping was written, or whose
//! ping could not be written for 30 s ([`RealtimeLimits::ping_interval`]).
//!
//! Connections and the engine stop when the emulator is dropped.

mod compute;
mod engine;
mod limits;
mod rest;
mod socket;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::routing::get;
use tokio::sync::watch;
use tokio::time::Instant;

use self::compute::Values;
use self::limits::Gate;
pub use self::limits::RealtimeLimits;
use crate::state::{AgentRecord, ChatState};

/// How a subscribe is answered, which the docs leave open: they describe updates pushed
/// "when a metric's value changes" and show no frame for the subscribe itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscribeAnswer {
    /// At once, with the value last pushed, as of the last event (a dashboard need not wait
    /// for a change).
    #[default]
    CurrentValue,
    /// Nothing until the value changes: what a client must cope with if the service does so
    /// (seed from the REST pull).
    NextChange,
}

/// What every handler and connection of the service shares.
#[derive(Debug)]
pub(crate) struct Realtime {
    state: Arc<ChatState>,
    gate: Arc<Gate>,
    values: watch::Sender<Arc<Values>>,
    engine: OnceLock<()>,
    /// The emulator's shutdown signal.
    shutdown: watch::Receiver<bool>,
    /// Bumped to make every open connection drop (a fault of the control API).
    drops: watch::Sender<u64>,
    /// How a subscribe is answered.
    subscribe_answer: SubscribeAnswer,
}

impl Realtime {
    pub(crate) fn new(
        state: Arc<ChatState>,
        limits: RealtimeLimits,
        subscribe_answer: SubscribeAnswer,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        Arc::new(Self {
            state,
            gate: Arc::new(Gate::new(limits)),
            values: watch::Sender::new(Arc::new(Values::default())),
            engine: OnceLock::new(),
            shutdown,
            drops: watch::Sender::new(0),
            subscribe_answer,
        })
    }

    /// `/stream` connections open now.
    pub(crate) fn open_connections(&self) -> usize {
        self.gate.open_connections()
    }

    /// Drops every open `/stream` connection without a close frame; returns how many
    /// connections were open.
    pub(crate) fn drop_connections(&self) -> usize {
        self.drops.send_modify(|n| *n = n.wrapping_add(1));
        self.gate.open_connections()
    }

    /// The agent a `Bearer` header value belongs to.
    fn agent(&self, headers: &http::HeaderMap) -> Option<AgentRecord> {
        let token = crate::credentials::bearer(crate::credentials::header(headers)?)?;
        // Reading metrics takes the `read` scope.
        let (agent, scopes) = self.state.token_grant(token)?;
        scopes.read.then_some(agent)
    }

    /// Values computed from the state now, for a REST answer. Not published: a pull may
    /// finish after the engine published a newer computation, and must not put its older
    /// one back over it (nor push time-based values nobody's event changed).
    fn compute_now(&self) -> Values {
        compute::compute(&self.state, self.state.clock().now()).0
    }

    /// Computes the values now and publishes them to the connections; returns when a
    /// windowed count next drops. Without `times_moved` (no event that affects them) the
    /// time-based values stay as last published. Only the engine calls this (and
    /// [`Self::ensure_engine`] before it starts the engine), so published values never go back
    /// in time.
    fn publish(&self, times_moved: bool) -> Option<Instant> {
        let (mut values, next_expiry) = compute::compute(&self.state, self.state.clock().now());
        if !times_moved {
            values.keep_time_based(&self.values.borrow());
        }
        self.values.send_if_modified(|v| {
            if **v == values {
                false
            } else {
                *v = Arc::new(values);
                true
            }
        });
        next_expiry
    }

    /// Starts the engine on first use, so an emulator whose feed nobody opens does no work.
    fn ensure_engine(self: &Arc<Self>) {
        self.engine.get_or_init(|| {
            // Subscribed before computing, so an event in between is not missed.
            let events = self.state.subscribe();
            // Published here rather than left to the engine's first run: the connection
            // being upgraded answers its subscribes from the published values, and may read
            // them before the spawned engine has run.
            let next_expiry = self.publish(true);
            tokio::spawn(engine::run(
                Arc::downgrade(self),
                events,
                self.shutdown.clone(),
                next_expiry,
            ));
        });
    }
}

/// The routes of the service, ready to merge into the emulator's router.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(realtime: Arc<Realtime>) -> Router<S> {
    Router::new()
        .route("/stream", get(socket::upgrade))
        .route("/stream/{family}", get(rest::family))
        .route("/stream/{family}/{key}", get(rest::metric))
        .with_state(realtime)
}
