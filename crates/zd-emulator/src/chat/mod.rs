//! The Chat Conversations service: `POST /graphql/request` for `startAgentSession`, then
//! GraphQL over the service's JSON WebSocket protocol.

pub(crate) mod counters;
pub(crate) mod documents;
mod expansion;
pub(crate) mod fanout;
pub(crate) mod http;
pub(crate) mod introspection;
pub mod limits;
pub(crate) mod render;
mod root_field;
pub(crate) mod schema;
pub(crate) mod session;
pub(crate) mod socket;
mod spread_depth;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use serde::Serialize;
use zd_wire::chat::ErrorName;

use async_graphql::parser::types::ExecutableDocument;

use self::counters::SessionCounts;
use self::fanout::Hub;
use self::introspection::Route;
use self::limits::{Limits, StartLimiter};
use self::schema::ChatSchema;
use self::session::{Session, Sessions};
use crate::ids::{self, IdKind};
use crate::state::ChatState;

/// The SDL of the schema the engine executes (what `schemas/chat/chat.graphql` must match).
pub fn engine_sdl() -> String {
    schema::sdl()
}

/// Shared by the HTTP endpoint, the sockets and the resolvers.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) state: Arc<ChatState>,
    pub(crate) sessions: Sessions,
    pub(crate) limits: Limits,
    pub(crate) start_limiter: StartLimiter,
    ws_base: OnceLock<String>,
    agent_counts: Mutex<HashMap<String, AgentCounts>>,
    /// Counts resets. Scenarios watch it and stop at a reset (see `Control::reset`).
    pub(crate) resets: tokio::sync::watch::Sender<u64>,
    /// Slots for scenarios posted to the control API (see [`MAX_RUNNING_SCENARIOS`]).
    pub(crate) scenario_slots: Arc<tokio::sync::Semaphore>,
}

/// Scenarios posted to `POST /_emulator/scenario` that may run at once. Each holds its steps
/// (up to a body's 2 MB) until its last one, which may be far off: without a bound, posts would
/// pile up until a reset.
pub(crate) const MAX_RUNNING_SCENARIOS: usize = 64;

/// Per-agent counters of `startAgentSession`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AgentCounts {
    /// Sessions started.
    pub sessions_started: u64,
    /// Starts refused with RATE_LIMITED.
    pub starts_rate_limited: u64,
}

/// Counters of one session, for the control API.
#[derive(Debug, Clone, Serialize)]
pub struct SessionReport {
    /// Session id.
    pub session_id: String,
    /// The agent's public id.
    pub agent_id: String,
    /// Whether a socket is attached.
    pub connected: bool,
    /// Whether the session has ended, and why.
    pub ended: Option<String>,
    /// Active subscriptions.
    pub subscriptions: usize,
    /// Counters.
    #[serde(flatten)]
    pub counts: SessionCounts,
}

impl Core {
    pub(crate) fn new(state: Arc<ChatState>, limits: Limits) -> Self {
        Self {
            sessions: Sessions::new(state.clone()),
            state,
            limits,
            start_limiter: StartLimiter::default(),
            ws_base: OnceLock::new(),
            agent_counts: Mutex::new(HashMap::new()),
            resets: tokio::sync::watch::Sender::new(0),
            scenario_slots: Arc::new(tokio::sync::Semaphore::new(MAX_RUNNING_SCENARIOS)),
        }
    }

    /// Sets the `ws://host:port` prefix of websocket URLs (once the listener is bound).
    pub(crate) fn set_ws_base(&self, base: String) {
        let _ = self.ws_base.set(base);
    }

    /// Where `session`'s socket connects: at `host` (the `Host` its start was sent to, so a
    /// client that reached the emulator by a name or a published port connects the same way),
    /// else at the bound address.
    pub(crate) fn websocket_url(&self, session: &Session, host: Option<&str>) -> String {
        let path = format_args!("/stream/0.1/graphql/{}:{}", session.id, session.client_id);
        match host {
            Some(host) => format!("ws://{host}{path}"),
            None => format!(
                "{}{path}",
                self.ws_base.get().map_or("ws://127.0.0.1", String::as_str)
            ),
        }
    }

    /// `startAgentSession`: token check, per-agent limits, then a new session that ends the
    /// agent's previous one.
    pub(crate) fn start_session(&self, token: &str) -> Result<Arc<Session>, ErrorName> {
        let (agent, scopes) = self
            .state
            .token_grant(token)
            .ok_or(ErrorName::Unauthorized)?;
        if !scopes.chat {
            return Err(ErrorName::Forbidden);
        }
        let now = self.state.clock().now();
        if !self.start_limiter.try_start(&agent.key, now, &self.limits) {
            self.agent_counts
                .lock()
                .entry(agent.key.clone())
                .or_default()
                .starts_rate_limited += 1;
            return Err(ErrorName::RateLimited);
        }
        self.agent_counts
            .lock()
            .entry(agent.key.clone())
            .or_default()
            .sessions_started += 1;
        Ok(self
            .sessions
            .start(&agent.key, self.limits.requests_per_second))
    }

    /// Counters per agent (by public id).
    pub(crate) fn agent_counts(&self) -> Vec<(String, String, AgentCounts)> {
        let counts = self.agent_counts.lock();
        self.state
            .agents()
            .into_iter()
            .map(|a| {
                let c = counts.get(&a.key).cloned().unwrap_or_default();
                (ids::encode(IdKind::Agent, &a.key), a.name, c)
            })
            .collect()
    }

    /// Reports of live and recently ended sessions.
    pub(crate) fn session_reports(&self) -> Vec<SessionReport> {
        self.sessions
            .ended_sessions()
            .into_iter()
            .chain(self.sessions.list())
            .map(|s| SessionReport {
                session_id: s.id.clone(),
                agent_id: ids::encode(IdKind::Agent, &s.agent),
                connected: s.connected(),
                ended: s.ended().map(str::to_owned),
                subscriptions: s.subscriptions.lock().len(),
                counts: s.counters.snapshot(),
            })
            .collect()
    }

    /// Clears the per-agent counters, the start-limit history, the ended sessions' reports,
    /// and the faults and request windows of the live sessions (which stay, with their
    /// counters: their clients are still connected).
    pub(crate) fn reset_counts(&self) {
        self.agent_counts.lock().clear();
        self.start_limiter.reset();
        self.sessions.reset();
    }
}

impl Service {
    /// The schema `doc` runs on when `operation_name` is executed, or why it is refused.
    pub(crate) fn schema_for(
        &self,
        doc: &ExecutableDocument,
        operation_name: Option<&str>,
    ) -> Result<&ChatSchema, String> {
        match introspection::route(doc, operation_name) {
            Route::Engine => Ok(&self.schema),
            Route::Introspection => Ok(&self.introspection),
            Route::TooLarge(resolved) => Err(Route::refusal(resolved)),
        }
    }
}

/// The service: the core plus the schema and the subscription hub.
#[derive(Clone)]
pub(crate) struct Service {
    pub(crate) core: Arc<Core>,
    pub(crate) schema: ChatSchema,
    /// Runs queries that read only the schema (see [`introspection`]).
    pub(crate) introspection: ChatSchema,
    pub(crate) hub: Arc<Hub>,
    pub(crate) documents: Arc<documents::DocumentCache>,
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

impl Service {
    pub(crate) fn new(
        state: Arc<ChatState>,
        limits: Limits,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        let max_depth = limits.max_depth;
        let core = Arc::new(Core::new(state.clone(), limits));
        let schema = schema::build(core.clone(), state.clone(), max_depth);
        let hub = Hub::new(schema.clone(), state, shutdown.clone());
        Self {
            core,
            schema,
            introspection: schema::build_introspection(),
            hub,
            documents: Arc::new(documents::DocumentCache::default()),
            shutdown,
        }
    }
}
