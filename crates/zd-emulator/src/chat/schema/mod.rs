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

use async_graphql::{Context, Schema};

use super::Core;
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
    Http,
    /// A session's WebSocket.
    Socket(Arc<Session>),
}

/// The event a subscription document is executed for; `None` while a subscription request is
/// only being validated.
#[derive(Debug, Clone)]
pub(crate) struct EventSlot(pub(crate) Option<Arc<StateEvent>>);

/// Builds the schema with the documented depth limit.
pub(crate) fn build(core: Arc<Core>, state: Arc<ChatState>, max_depth: usize) -> ChatSchema {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(core)
        .data(state)
        .limit_depth(max_depth)
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
