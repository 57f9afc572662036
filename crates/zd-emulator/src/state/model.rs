//! Records of the chat state: what the service knows about agents, departments, visitors and
//! channels, with the timestamps the live metrics will need.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::structured::{Fallback, Structured};

/// An agent's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[graphql(name = "AGENT_STATUS", rename_items = "SCREAMING_SNAKE_CASE")]
pub enum AgentStatus {
    /// Online: receives incoming chats.
    Online,
    /// Away.
    Away,
    /// Invisible: serves existing chats, shown offline to visitors.
    Invisible,
    /// Offline.
    Offline,
}

/// A department's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[graphql(name = "DEPARTMENT_STATUS", rename_items = "SCREAMING_SNAKE_CASE")]
pub enum DepartmentStatus {
    /// Online.
    Online,
    /// Away.
    Away,
    /// Offline.
    Offline,
}

/// The state of a visitor channel (the five documented states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[graphql(name = "CHANNEL_STATE", rename_items = "SCREAMING_SNAKE_CASE")]
pub enum ChannelState {
    /// Has an agent assigned, waiting to be served (assigned routing).
    Assigned,
    /// The chat has ended.
    Closed,
    /// The visitor has left; agents are still in the channel.
    Closing,
    /// Waiting to be served (broadcast routing).
    Incoming,
    /// An agent is chatting with the visitor.
    Ongoing,
}

/// A visitor's rating of a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    /// Rated good.
    Good,
    /// Rated bad.
    Bad,
}

/// An agent of the account.
#[derive(Clone)]
pub struct AgentRecord {
    /// Raw id (the `localId` of the public id).
    pub key: String,
    /// Name.
    pub name: String,
    /// Display name.
    pub display_name: String,
    pub(crate) access_token: zd_auth::Secret,
    /// Raw ids of the departments the agent belongs to.
    pub departments: Vec<String>,
    /// Current status.
    pub status: AgentStatus,
    /// When the status last changed.
    pub status_since: Instant,
}

impl AgentRecord {
    /// Whether the agent may take chats of `department` (any agent when there is none).
    pub fn serves(&self, department: Option<&String>) -> bool {
        department.is_none_or(|d| self.departments.contains(d))
    }
}

impl std::fmt::Debug for AgentRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentRecord")
            .field("key", &self.key)
            .field("name", &self.name)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A department of the account.
#[derive(Debug, Clone)]
pub struct DepartmentRecord {
    /// Raw id.
    pub key: String,
    /// Name.
    pub name: String,
    /// Current status.
    pub status: DepartmentStatus,
}

/// A visitor.
#[derive(Debug, Clone, Default)]
pub struct VisitorRecord {
    /// Raw id.
    pub key: String,
    /// Display name (`Visitor 12345678` when none was given).
    pub display_name: String,
    /// Email.
    pub email: Option<String>,
    /// External id.
    pub external_id: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// IP address.
    pub ip: Option<String>,
    /// Browser user agent.
    pub user_agent: Option<String>,
}

/// Who sent a chat log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Sender {
    /// A visitor (raw id).
    Visitor {
        /// Raw id.
        key: String,
        /// Name at the time.
        name: String,
    },
    /// An agent (raw id).
    Agent {
        /// Raw id.
        key: String,
        /// Name at the time.
        name: String,
    },
}

impl Sender {
    /// The sender's name when the entry was written.
    pub fn name(&self) -> &str {
        match self {
            Self::Visitor { name, .. } | Self::Agent { name, .. } => name,
        }
    }
}

/// A chat message.
#[derive(Debug, Clone)]
pub struct MessageRecord {
    /// Raw id (`lcId` + UNIX time with milliseconds, as the real ids).
    pub local_id: String,
    /// The channel's raw id.
    pub channel: String,
    /// The sender.
    pub from: Sender,
    /// The text shown to the visitor (for structured messages: their text part).
    pub content: String,
    /// The client's message id, when given.
    pub msg_id: Option<String>,
    /// Discrete answers offered to the visitor.
    pub options: Vec<String>,
    /// Milliseconds since the UNIX epoch.
    pub timestamp_ms: f64,
    /// The structured content, when it is a structured message.
    pub structured: Option<Structured>,
    /// The fallback of a structured message.
    pub fallback: Option<Fallback>,
}

/// A member joining or leaving a channel.
#[derive(Debug, Clone)]
pub struct MemberLogRecord {
    /// Raw id.
    pub local_id: String,
    /// The channel's raw id.
    pub channel: String,
    /// Who joined or left.
    pub user: Sender,
    /// Milliseconds since the UNIX epoch.
    pub timestamp_ms: f64,
}

/// One entry of a channel's chat log.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "entries live behind an Arc; boxing would add a second allocation"
)]
pub enum LogRecord {
    /// A message.
    Message(MessageRecord),
    /// A member joined.
    MemberJoin(MemberLogRecord),
    /// A member left.
    MemberLeave(MemberLogRecord),
}

impl LogRecord {
    /// The channel the entry belongs to.
    pub fn channel(&self) -> &str {
        match self {
            Self::Message(m) => &m.channel,
            Self::MemberJoin(m) | Self::MemberLeave(m) => &m.channel,
        }
    }

    /// The bytes of text a message carries (its content, options, `msg_id`, structured
    /// content and fallback); none for a join or a leave, whose size is small and fixed.
    ///
    /// What the bounds on history and on answers count: one message may carry up to a
    /// frame's 256 KiB, so a count of entries alone bounds neither.
    pub fn content_bytes(&self) -> usize {
        let Self::Message(m) = self else {
            return 0;
        };
        let strings = |list: &[String]| list.iter().map(String::len).sum::<usize>();
        let structured = m.structured.as_ref().map_or(0, crate::json_len::json_len);
        let fallback = m
            .fallback
            .as_ref()
            .map_or(0, |f| f.msg.len() + strings(&f.options));
        m.content.len()
            + m.msg_id.as_ref().map_or(0, String::len)
            + strings(&m.options)
            + structured
            + fallback
    }
}

/// A visitor channel with everything the real-time metrics need.
#[derive(Debug, Clone)]
pub struct ChannelRecord {
    /// Raw id (`lcId`).
    pub key: String,
    /// The scribe id that the public id also carries.
    pub scribe_id: String,
    /// The visitor's raw id.
    pub visitor: String,
    /// The department's raw id.
    pub department: Option<String>,
    /// The agent (raw id) assigned-mode routing last gave the chat to.
    pub assigned_to: Option<String>,
    /// Current state.
    pub state: ChannelState,
    /// Raw ids of the agents in the channel, in joining order.
    pub members: Vec<String>,
    /// Raw ids of agents listening without joining.
    pub listeners: Vec<String>,
    /// The chat log: its latest entries (see [`crate::state::Retention`]).
    pub logs: VecDeque<Arc<LogRecord>>,
    /// How many entries fell out of the front of `logs`: the first one kept is entry number
    /// `log_start` of the whole chat.
    pub log_start: usize,
    /// Tags. Shared, because every `channel` a subscription resolves copies the record
    /// under the state's lock: a copy of a thousand tags per message would hold it for long.
    pub tags: Arc<[String]>,
    /// When the visitor arrived.
    pub arrived_at: Instant,
    /// Since when the visitor's current request has waited in the queue: set on arrival and
    /// again when the chat goes back to waiting because its last agent left (a transfer or
    /// an invitation with `leave` included); `None` once an agent serves it. The wait before
    /// an earlier serve is not part of it: that request was answered. Still set after the
    /// visitor left while waiting, which makes the chat a missed one.
    pub queued_since: Option<Instant>,
    /// When an agent first joined.
    pub served_at: Option<Instant>,
    /// When an agent first replied.
    pub first_reply_at: Option<Instant>,
    /// When the last agent message was sent.
    pub last_agent_reply_at: Option<Instant>,
    /// When the last visitor message was sent.
    pub last_visitor_message_at: Option<Instant>,
    /// When the visitor left.
    pub left_at: Option<Instant>,
    /// When the chat ended.
    pub closed_at: Option<Instant>,
    /// The visitor's rating.
    pub rating: Option<Rating>,
    /// When it was rated.
    pub rated_at: Option<Instant>,
    /// Whether the visitor is typing.
    pub visitor_typing: bool,
    /// Raw ids of agents currently typing.
    pub agents_typing: Vec<String>,
    pub(crate) msg_ids: HashSet<String>,
    pub(crate) last_timestamp_ms: f64,
    /// The sum of [`LogRecord::content_bytes`] over `logs`, kept as entries come and go so
    /// the byte bound of [`crate::state::Retention`] costs nothing per message.
    pub(crate) log_bytes: usize,
}

impl ChannelRecord {
    /// Whether no agent serves the channel.
    pub fn is_unserved(&self) -> bool {
        self.members.is_empty()
    }

    /// A copy without the chat log, for readers that do not need it.
    pub fn without_logs(&self) -> Self {
        Self {
            key: self.key.clone(),
            scribe_id: self.scribe_id.clone(),
            visitor: self.visitor.clone(),
            department: self.department.clone(),
            assigned_to: self.assigned_to.clone(),
            state: self.state,
            members: self.members.clone(),
            listeners: self.listeners.clone(),
            logs: VecDeque::new(),
            log_start: self.log_start,
            tags: self.tags.clone(),
            arrived_at: self.arrived_at,
            queued_since: self.queued_since,
            served_at: self.served_at,
            first_reply_at: self.first_reply_at,
            last_agent_reply_at: self.last_agent_reply_at,
            last_visitor_message_at: self.last_visitor_message_at,
            left_at: self.left_at,
            closed_at: self.closed_at,
            rating: self.rating,
            rated_at: self.rated_at,
            visitor_typing: self.visitor_typing,
            agents_typing: self.agents_typing.clone(),
            msg_ids: std::collections::HashSet::new(),
            last_timestamp_ms: self.last_timestamp_ms,
            log_bytes: 0,
        }
    }

    /// Whether the chat can still receive messages.
    pub fn is_open(&self) -> bool {
        !matches!(self.state, ChannelState::Closed | ChannelState::Closing)
    }
}
