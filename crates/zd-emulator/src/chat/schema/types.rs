//! Output types of the schema, resolved from the chat state.

use std::sync::Arc;

use async_graphql::{Context, ID, Interface, Object, SimpleObject, Union};

use super::connection::{AgentConnection, ChatLogConnection, ConnectionArgs, slice_window};
use super::errors::exec_error;
use crate::chat::limits::{MAX_ANSWER_BYTES, MAX_ANSWER_LOG_ENTRIES};
use crate::ids::{self, IdKind};
use crate::state::{
    AgentRecord, AgentStatus, ChannelRecord, ChannelState, ChatState, DepartmentRecord,
    DepartmentStatus, LogRecord, MemberLogRecord, MessageRecord, Sender, VisitorRecord,
};

fn state<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Arc<ChatState>> {
    ctx.data::<Arc<ChatState>>()
}

/// An agent.
#[derive(Debug, Clone)]
pub(crate) struct Agent(pub(crate) AgentRecord);

#[Object(rename_fields = "snake_case", rename_args = "snake_case")]
impl Agent {
    async fn id(&self) -> ID {
        ID(ids::encode(IdKind::Agent, &self.0.key))
    }
    async fn raw_id(&self) -> Option<String> {
        Some(self.0.key.clone())
    }
    async fn display_name(&self) -> Option<String> {
        Some(self.0.display_name.clone())
    }
    async fn name(&self) -> Option<String> {
        Some(self.0.name.clone())
    }
    async fn status(&self) -> Option<AgentStatus> {
        Some(self.0.status)
    }
}

/// A visitor, with the channel whose tags are its `current_tags`.
#[derive(Debug, Clone)]
pub(crate) struct Visitor {
    pub(crate) record: VisitorRecord,
    /// Read only when `current_tags` is asked for: every visitor message of a `message`
    /// subscription resolves `from`, and most documents never select the tags.
    pub(crate) channel: Option<String>,
}

#[Object(rename_fields = "snake_case", rename_args = "snake_case")]
impl Visitor {
    async fn id(&self) -> ID {
        ID(ids::encode(IdKind::Visitor, &self.record.key))
    }
    async fn raw_id(&self) -> Option<String> {
        Some(self.record.key.clone())
    }
    async fn display_name(&self) -> Option<String> {
        Some(self.record.display_name.clone())
    }
    async fn email(&self) -> Option<String> {
        self.record.email.clone()
    }
    async fn external_id(&self) -> Option<String> {
        self.record.external_id.clone()
    }
    async fn current_country(&self) -> Option<String> {
        self.record.country.clone()
    }
    async fn current_region(&self) -> Option<String> {
        self.record.region.clone()
    }
    async fn current_tags(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Vec<String>>> {
        let tags = match &self.channel {
            Some(channel) => state(ctx)?.channel_tags(channel).to_vec(),
            None => Vec::new(),
        };
        Ok(Some(tags))
    }
    async fn current_ip(&self) -> Option<String> {
        self.record.ip.clone()
    }
}

/// A user: agent or visitor.
#[derive(Debug, Clone, Interface)]
#[graphql(
    rename_fields = "snake_case",
    field(name = "id", ty = "ID"),
    field(name = "display_name", ty = "Option<String>")
)]
pub(crate) enum User {
    Agent(Agent),
    Visitor(Visitor),
}

impl User {
    /// Resolves a sender against the current state, falling back to what the log recorded
    /// (after a reset the sender may be gone).
    pub(crate) fn of(state: &ChatState, sender: &Sender, channel: Option<&str>) -> Self {
        match sender {
            Sender::Agent { key, name } => {
                Self::Agent(Agent(state.agent(key).unwrap_or_else(|| AgentRecord {
                    key: key.clone(),
                    name: name.clone(),
                    display_name: name.clone(),
                    access_token: zd_auth::Secret::new(""),
                    departments: Vec::new(),
                    status: AgentStatus::Offline,
                    status_since: state.clock().now(),
                })))
            }
            Sender::Visitor { key, name } => Self::Visitor(Visitor {
                record: state.visitor(key).unwrap_or_else(|| VisitorRecord {
                    key: key.clone(),
                    display_name: name.clone(),
                    ..VisitorRecord::default()
                }),
                channel: channel.map(str::to_owned),
            }),
        }
    }
}

/// A department.
#[derive(Debug, Clone)]
pub(crate) struct Department(pub(crate) DepartmentRecord);

#[Object(rename_fields = "snake_case", rename_args = "snake_case")]
impl Department {
    async fn id(&self) -> ID {
        ID(ids::encode(IdKind::Department, &self.0.key))
    }
    async fn raw_id(&self) -> Option<String> {
        Some(self.0.key.clone())
    }
    async fn name(&self) -> Option<String> {
        Some(self.0.name.clone())
    }
    async fn status(&self) -> Option<DepartmentStatus> {
        Some(self.0.status)
    }
}

fn agents_of(state: &ChatState, members: &[String]) -> async_graphql::Result<AgentConnection> {
    let agents = members
        .iter()
        .filter_map(|m| state.agent(m))
        .map(Agent)
        .collect();
    AgentConnection::window(agents, 0, &ConnectionArgs::default())
}

/// A visitor-to-agent channel.
#[derive(Debug, Clone)]
pub(crate) struct VisitorChannel(pub(crate) ChannelRecord);

#[Object(rename_fields = "snake_case", rename_args = "snake_case")]
impl VisitorChannel {
    async fn agents(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<AgentConnection>> {
        agents_of(state(ctx)?, &self.0.members).map(Some)
    }
    async fn id(&self) -> ID {
        ID(ids::encode_channel(&self.0.key, &self.0.scribe_id))
    }
    async fn raw_id(&self) -> Option<String> {
        Some(self.0.key.clone())
    }
    async fn logs(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
        before: Option<String>,
        last: Option<i32>,
    ) -> async_graphql::Result<Option<ChatLogConnection>> {
        let args = ConnectionArgs {
            after,
            first,
            before,
            last,
        };
        let state = state(ctx)?;
        // A spent budget ends the field before the log is read: `logs` nested in `logs` would
        // otherwise still read the log once per entry after the answer is refused.
        super::spend_log_entries(ctx, 1)?;
        // Sliced under the lock, before any entry is copied: a page of a long log costs the
        // page, not the log.
        let (page, info) = state
            .read_logs(&self.0.key, |start, logs| {
                slice_window(logs.iter(), start, &args).map(|(page, info)| {
                    let page: Vec<_> = page
                        .into_iter()
                        .map(|(log, cursor)| (Arc::clone(log), cursor))
                        .collect();
                    (page, info)
                })
            })
            .map_err(|e| super::errors::state_error(&e))??;
        // Charged before any entry is copied into the answer, by size as well as by count:
        // a few frame-sized messages make an answer as large as thousands of short ones.
        let charge = page
            .iter()
            .map(|(log, _)| log_entry_charge(log))
            .sum::<usize>();
        super::spend_log_entries(ctx, charge.saturating_sub(1))?;
        let edges = page
            .into_iter()
            .map(|(log, cursor)| (ChatLog::of(state, &log), cursor))
            .collect();
        Ok(Some(ChatLogConnection::from_edges(edges, info)))
    }
    async fn ip(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(state(ctx)?.visitor(&self.0.visitor).and_then(|v| v.ip))
    }
    async fn user_agent(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(state(ctx)?
            .visitor(&self.0.visitor)
            .and_then(|v| v.user_agent))
    }
    async fn visitor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Visitor>> {
        Ok(state(ctx)?.visitor(&self.0.visitor).map(|record| Visitor {
            record,
            channel: Some(self.0.key.clone()),
        }))
    }
    async fn state(&self) -> Option<ChannelState> {
        Some(self.0.state)
    }
}

/// The message text one unit of an answer's log budget
/// ([`MAX_ANSWER_LOG_ENTRIES`]) pays for: the answer cap spread over the budget, so the entries
/// one answer may hold carry at most about [`MAX_ANSWER_BYTES`] of text. Without it a query of
/// a few chats of frame-sized messages would build gigabytes before the cap refused the answer.
const LOG_BYTES_PER_UNIT: usize = MAX_ANSWER_BYTES / MAX_ANSWER_LOG_ENTRIES;

/// What a log entry costs of an answer's log budget: one, and one more per
/// [`LOG_BYTES_PER_UNIT`] of its text, so short entries cost one as they always did.
fn log_entry_charge(log: &LogRecord) -> usize {
    1 + log.content_bytes() / LOG_BYTES_PER_UNIT
}

/// An agent-to-agent channel. The emulator has no agent-to-agent chat, so none exists; the
/// type is in the schema because the service's schema has it.
#[derive(Debug, Clone)]
pub(crate) struct AgentChannel;

#[Object(rename_fields = "snake_case", rename_args = "snake_case")]
impl AgentChannel {
    async fn agents(&self) -> Option<AgentConnection> {
        None
    }
    async fn id(&self) -> ID {
        ID(String::new())
    }
    async fn logs(
        &self,
        after: Option<String>,
        first: Option<i32>,
        before: Option<String>,
        last: Option<i32>,
    ) -> Option<ChatLogConnection> {
        let _ = (after, first, before, last);
        None
    }
}

/// A channel.
#[derive(Debug, Clone, Interface)]
#[graphql(
    rename_fields = "snake_case",
    rename_args = "snake_case",
    field(name = "agents", ty = "Option<AgentConnection>"),
    field(name = "id", ty = "ID"),
    field(
        name = "logs",
        ty = "Option<ChatLogConnection>",
        arg(name = "after", ty = "Option<String>"),
        arg(name = "first", ty = "Option<i32>"),
        arg(name = "before", ty = "Option<String>"),
        arg(name = "last", ty = "Option<i32>")
    )
)]
#[allow(
    clippy::duplicated_attributes,
    reason = "the four connection arguments share types by design"
)]
#[allow(
    clippy::large_enum_variant,
    reason = "short-lived resolver values; the small variant is never built"
)]
pub(crate) enum Channel {
    VisitorChannel(VisitorChannel),
    #[allow(dead_code, reason = "in the schema, never created by the emulator")]
    AgentChannel(AgentChannel),
}

impl Channel {
    pub(crate) fn lookup(state: &ChatState, key: &str) -> async_graphql::Result<Self> {
        state
            .channel_meta(key)
            .map(|c| Self::VisitorChannel(VisitorChannel(c)))
            .ok_or_else(|| exec_error("channel not found"))
    }
}

/// A chat message.
#[derive(Debug, Clone)]
pub(crate) struct Message(pub(crate) MessageRecord);

#[Object(rename_fields = "snake_case", rename_args = "snake_case")]
impl Message {
    async fn channel(&self, ctx: &Context<'_>) -> async_graphql::Result<Channel> {
        Channel::lookup(state(ctx)?, &self.0.channel)
    }
    async fn content(&self) -> &str {
        &self.0.content
    }
    async fn from(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        Ok(User::of(state(ctx)?, &self.0.from, Some(&self.0.channel)))
    }
    async fn id(&self) -> ID {
        ID(ids::encode(IdKind::ChatMessage, &self.0.local_id))
    }
    async fn msg_id(&self) -> Option<&str> {
        self.0.msg_id.as_deref()
    }
    async fn options(&self) -> Option<&[String]> {
        (!self.0.options.is_empty()).then_some(self.0.options.as_slice())
    }
    async fn sender_name(&self) -> &str {
        self.0.from.name()
    }
    async fn timestamp(&self) -> Option<f64> {
        Some(self.0.timestamp_ms)
    }
}

macro_rules! member_log {
    ($ty:ident, $kind:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub(crate) struct $ty(pub(crate) MemberLogRecord);

        #[Object(rename_fields = "snake_case", rename_args = "snake_case")]
        impl $ty {
            async fn id(&self) -> ID {
                ID(ids::encode($kind, &self.0.local_id))
            }
            async fn user_name(&self) -> Option<&str> {
                Some(self.0.user.name())
            }
            async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
                Ok(Some(User::of(
                    state(ctx)?,
                    &self.0.user,
                    Some(&self.0.channel),
                )))
            }
            async fn channel(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Channel>> {
                Channel::lookup(state(ctx)?, &self.0.channel).map(Some)
            }
            async fn timestamp(&self) -> Option<f64> {
                Some(self.0.timestamp_ms)
            }
        }
    };
}

member_log!(
    MemberJoinLog,
    IdKind::MemberJoin,
    "A user joined a channel."
);
member_log!(
    MemberLeaveLog,
    IdKind::MemberLeave,
    "A user left a channel."
);

/// A member change. The emulator never writes one; the type is in the service's schema.
#[derive(Debug, Clone)]
pub(crate) struct MemberChangeLog;

#[Object(rename_fields = "snake_case", rename_args = "snake_case")]
impl MemberChangeLog {
    async fn id(&self) -> ID {
        ID(String::new())
    }
    async fn channel(&self) -> Option<Channel> {
        None
    }
}

/// An entry of a channel's chat log.
#[derive(Debug, Clone, Union)]
#[allow(
    clippy::large_enum_variant,
    reason = "short-lived resolver values built from shared records"
)]
pub(crate) enum ChatLog {
    Message(Message),
    MemberJoinLog(MemberJoinLog),
    MemberLeaveLog(MemberLeaveLog),
    #[allow(dead_code, reason = "in the schema, never written by the emulator")]
    MemberChangeLog(MemberChangeLog),
}

impl ChatLog {
    pub(crate) fn of(_state: &ChatState, log: &LogRecord) -> Self {
        match log {
            LogRecord::Message(m) => Self::Message(Message(m.clone())),
            LogRecord::MemberJoin(j) => Self::MemberJoinLog(MemberJoinLog(j.clone())),
            LogRecord::MemberLeave(j) => Self::MemberLeaveLog(MemberLeaveLog(j.clone())),
        }
    }
}

/// A subscription of the session.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "GraphQLSubscription", rename_fields = "snake_case")]
pub(crate) struct GraphQlSubscription {
    pub(crate) subscription_id: ID,
}

/// The `message` subscription's payload.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct MessageSubscriptionPayload {
    pub(crate) node: Option<Message>,
}

/// The `chatActivity` subscription's payload.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct ChatActivitySubscriptionPayload {
    pub(crate) node: Option<ChatLog>,
}

/// `startAgentSession`'s payload.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(rename_fields = "snake_case")]
pub(crate) struct StartAgentSessionPayload {
    pub(crate) websocket_url: Option<String>,
    pub(crate) session_id: Option<String>,
    pub(crate) client_id: Option<String>,
}

/// `updateAgentStatus`'s payload.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct UpdateAgentStatusPayload {
    pub(crate) node: Option<Agent>,
}

macro_rules! success_payloads {
    ($($ty:ident),* $(,)?) => {$(
        #[doc = concat!("`", stringify!($ty), "`: whether the mutation succeeded.")]
        #[derive(Debug, Clone, SimpleObject)]
        pub(crate) struct $ty {
            pub(crate) success: Option<bool>,
        }

        impl $ty {
            pub(crate) fn of(success: bool) -> Self {
                Self { success: Some(success) }
            }
        }
    )*};
}

success_payloads!(
    StopAgentSessionPayload,
    AddTagsPayload,
    InviteAgentPayload,
    LeaveChannelPayload,
    ListenVisitorChannelPayload,
    SendMessagePayload,
    TransferToDepartmentPayload,
    SetTypingIndicatorPayload,
    SendQuickRepliesPayload,
    SendButtonTemplatePayload,
    SendPanelTemplatePayload,
    SendPanelTemplateCarouselPayload,
    SendListTemplatePayload,
);
