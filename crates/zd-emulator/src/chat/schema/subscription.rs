//! Subscription root. Each resolver yields at most one item: the event the fan-out is
//! executing the document for (see `chat::fanout`).

use async_graphql::{Context, Subscription};
use futures_util::Stream;

use super::EventSlot;
use super::inputs::{ChatActivityFilter, ChatActivityType};
use super::types::{ChatActivitySubscriptionPayload, ChatLog, Message, MessageSubscriptionPayload};
use super::{session, state};
use crate::state::{EventKind, LogRecord};

/// Subscription root.
#[derive(Debug, Default)]
pub(crate) struct SubscriptionRoot;

fn current_log(ctx: &Context<'_>) -> Option<std::sync::Arc<LogRecord>> {
    let EventSlot(Some(event), _) = ctx.data_opt::<EventSlot>()? else {
        return None;
    };
    match &event.kind {
        EventKind::Log(log) => Some(log.clone()),
        _ => None,
    }
}

#[Subscription(name = "Subscription", rename_args = "snake_case")]
impl SubscriptionRoot {
    /// Messages of unserved channels and of channels the agent serves or listens to,
    /// including the agent's own.
    async fn message(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = Option<MessageSubscriptionPayload>>> {
        if ctx.data_opt::<EventSlot>().is_none() {
            session(ctx)?;
        }
        let item = current_log(ctx).and_then(|log| match log.as_ref() {
            LogRecord::Message(m) => Some(Some(MessageSubscriptionPayload {
                node: Some(Message(m.clone())),
            })),
            _ => None,
        });
        Ok(futures_util::stream::iter(item))
    }

    /// Members joining and leaving channels, optionally filtered by kind.
    async fn chat_activity(
        &self,
        ctx: &Context<'_>,
        filter: Option<ChatActivityFilter>,
    ) -> async_graphql::Result<impl Stream<Item = Option<ChatActivitySubscriptionPayload>>> {
        if ctx.data_opt::<EventSlot>().is_none() {
            session(ctx)?;
        }
        let wanted = filter.and_then(|f| f.chat_activity_types);
        let allows = |kind: ChatActivityType| wanted.as_ref().is_none_or(|w| w.contains(&kind));
        let state = state(ctx)?;
        let item = current_log(ctx).and_then(|log| {
            let kind = match log.as_ref() {
                LogRecord::MemberJoin(_) => ChatActivityType::MemberJoin,
                LogRecord::MemberLeave(_) => ChatActivityType::MemberLeave,
                LogRecord::Message(_) => return None,
            };
            allows(kind).then(|| {
                Some(ChatActivitySubscriptionPayload {
                    node: Some(ChatLog::of(state, &log)),
                })
            })
        });
        Ok(futures_util::stream::iter(item))
    }
}
