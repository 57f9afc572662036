//! The schema the engine executes: our own SDL (`schemas/chat/chat.graphql`) implemented with
//! async-graphql, and the per-request context resolvers read.

pub(crate) mod connection;
pub(crate) mod errors;
pub(crate) mod inputs;
mod mutation;
mod query;
mod subscription;
pub(crate) mod types;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::{Context, Schema};

use super::Core;
use super::limits::{LOG_ENTRIES_SPENT, MAX_ANSWER_LOG_ENTRIES};
use super::session::Session;
use crate::state::{ChatState, StateEvent};

pub(crate) use mutation::MutationRoot;
pub(crate) use query::QueryRoot;
pub(crate) use subscription::SubscriptionRoot;

/// The executable schema.
pub(crate) type ChatSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Who sent the request being executed.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    /// `POST /graphql/request`: only `startAgentSession` may be used.
    Http {
        /// The request's `Host` (already checked to be a name the emulator goes by): the
        /// session's `websocket_url` names the emulator the way its client reached it.
        host: Option<String>,
    },
    /// A session's WebSocket.
    Socket(Arc<Session>),
}

/// The event a subscription document is executed for (`None` while a subscription request is
/// only being validated), and the log entries its answer may still hold. The budget rides
/// here rather than in its own request data: one execution per event, no allocation more.
#[derive(Debug)]
pub(crate) struct EventSlot(pub(crate) Option<Arc<StateEvent>>, pub(crate) LogBudget);

impl EventSlot {
    pub(crate) fn new(event: Option<Arc<StateEvent>>) -> Self {
        Self(event, LogBudget::default())
    }
}

/// Chat log entries one execution may still put in its answer
/// ([`MAX_ANSWER_LOG_ENTRIES`]).
#[derive(Debug)]
pub(crate) struct LogBudget(AtomicUsize);

impl Default for LogBudget {
    fn default() -> Self {
        Self(AtomicUsize::new(MAX_ANSWER_LOG_ENTRIES))
    }
}

/// Takes `entries` from the execution's log budget; the error, once it is spent, is
/// [`LOG_ENTRIES_SPENT`], which the socket and the fan-out turn into one error for the whole
/// answer.
pub(crate) fn spend_log_entries(ctx: &Context<'_>, entries: usize) -> async_graphql::Result<()> {
    let budget = match ctx.data_opt::<EventSlot>() {
        Some(slot) => Some(&slot.1),
        None => ctx.data_opt::<LogBudget>(),
    };
    let Some(LogBudget(left)) = budget else {
        return Ok(());
    };
    left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
        left.checked_sub(entries)
    })
    .map(drop)
    .map_err(|_| errors::exec_error(LOG_ENTRIES_SPENT))
}

/// Whether an execution ran out of log budget: its answer is then that error alone.
pub(crate) fn log_entries_spent(response: &async_graphql::Response) -> bool {
    response
        .errors
        .iter()
        .any(|e| e.message == LOG_ENTRIES_SPENT)
}

/// Builds the schema with the documented depth limit.
pub(crate) fn build(core: Arc<Core>, state: Arc<ChatState>, max_depth: usize) -> ChatSchema {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(core)
        .data(state)
        .limit_depth(max_depth)
        .finish()
}

/// The schema that runs queries reading only the schema (see `chat::introspection`): nothing
/// else executes on it, and its depth limit is the introspection one.
pub(crate) fn build_introspection() -> ChatSchema {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .introspection_only()
        .limit_depth(super::introspection::MAX_DEPTH)
        .finish()
}

/// The SDL of the schema as the engine sees it.
pub(crate) fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .finish()
        .sdl()
}

/// The session of a WebSocket request, or the error telling HTTP callers to use the socket.
pub(crate) fn session<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Arc<Session>> {
    match ctx.data_opt::<Caller>() {
        // A stopped session serves nothing more, even later in the document that stopped it
        // (seed 001: after EOS "the current agent session is no longer valid"). A session
        // ended by the service instead (an EOS fault, a newer login) lets the requests it was
        // already running finish: they came before the end; the socket serves no later frame.
        Some(Caller::Socket(session)) if session.was_stopped() => Err(errors::exec_error(
            "the agent session was stopped; start a new one",
        )),
        Some(Caller::Socket(session)) => Ok(session),
        _ => Err(errors::exec_error(
            "only startAgentSession is served over HTTP; send this request over the WebSocket at websocket_url",
        )),
    }
}

pub(crate) fn core<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Arc<Core>> {
    ctx.data::<Arc<Core>>()
}

pub(crate) fn state<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Arc<ChatState>> {
    ctx.data::<Arc<ChatState>>()
}
