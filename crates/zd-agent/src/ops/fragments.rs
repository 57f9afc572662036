//! Object types shared by the operations.

use crate::schema;

/// An agent's availability.
#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cynic(graphql_type = "AGENT_STATUS")]
#[non_exhaustive]
pub enum AgentStatus {
    /// Serving chats.
    Online,
    /// Away.
    Away,
    /// Connected but hidden.
    Invisible,
    /// Offline.
    Offline,
    /// A status this crate does not know (only `ONLINE` has been seen from the service; the
    /// other names are inferred). Its name is not kept, so the enum stays `Copy`; it cannot be
    /// sent back: [`AgentSession::update_agent_status`](crate::AgentSession::update_agent_status)
    /// refuses it with [`ErrorKind::UnknownStatus`](crate::ErrorKind::UnknownStatus) before
    /// sending anything.
    #[cynic(fallback)]
    Unknown,
}

/// A department's availability.
#[derive(cynic::Enum, Debug, Clone, PartialEq, Eq, Hash)]
#[cynic(graphql_type = "DEPARTMENT_STATUS")]
#[non_exhaustive]
pub enum DepartmentStatus {
    /// Has online agents.
    Online,
    /// Agents away.
    Away,
    /// Nobody to serve.
    Offline,
    /// A status this crate does not know.
    #[cynic(fallback)]
    Unknown(String),
}

/// Where a channel is in its life.
#[derive(cynic::Enum, Debug, Clone, PartialEq, Eq, Hash)]
#[cynic(graphql_type = "CHANNEL_STATE")]
#[non_exhaustive]
pub enum ChannelState {
    /// Assigned to an agent, waiting to be served.
    Assigned,
    /// Ended.
    Closed,
    /// The visitor left.
    Closing,
    /// Waiting to be served.
    Incoming,
    /// Being served.
    Ongoing,
    /// A state this crate does not know.
    #[cynic(fallback)]
    Unknown(String),
}

/// Kinds of chat activity to subscribe to.
#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cynic(graphql_type = "CHAT_ACTIVITY_TYPE")]
#[non_exhaustive]
pub enum ChatActivityType {
    /// Someone joined a channel.
    MemberJoin,
    /// Someone left a channel.
    MemberLeave,
}

/// Relay page information.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "PageInfo")]
pub struct PageInfo {
    /// More items follow.
    #[cynic(rename = "hasNextPage")]
    pub has_next_page: bool,
    /// Cursor of the last item.
    #[cynic(rename = "endCursor")]
    pub end_cursor: Option<String>,
}

/// An agent.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Agent", rename_all = "None")]
pub struct Agent {
    /// Chat agent id (opaque).
    pub id: cynic::Id,
    /// Name shown to visitors.
    pub display_name: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Availability.
    pub status: Option<AgentStatus>,
}

/// A department.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Department")]
pub struct Department {
    /// Department id (opaque; not the REST API's id).
    pub id: cynic::Id,
    /// Name.
    pub name: Option<String>,
    /// Availability.
    pub status: Option<DepartmentStatus>,
}

/// A visitor.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Visitor", rename_all = "None")]
pub struct VisitorInfo {
    /// Visitor id (opaque).
    pub id: cynic::Id,
    /// Name shown.
    pub display_name: Option<String>,
    /// Email, when given.
    pub email: Option<String>,
}

/// Just the id of a channel.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Channel")]
pub struct ChannelRef {
    /// Channel id (opaque).
    pub id: cynic::Id,
}

/// Just the id and name of a user.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "User", rename_all = "None")]
pub struct UserRef {
    /// User id (opaque).
    pub id: cynic::Id,
    /// Name shown.
    pub display_name: Option<String>,
}

/// The sender of a message.
#[derive(cynic::InlineFragments, Debug, Clone)]
#[cynic(graphql_type = "User")]
#[non_exhaustive]
pub enum Sender {
    /// A visitor wrote it.
    Visitor(VisitorInfo),
    /// An agent (possibly this one) wrote it.
    Agent(AgentRef),
    /// A kind of user this crate does not know.
    #[cynic(fallback)]
    Unknown(UserRef),
}

/// An agent as a message sender.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Agent", rename_all = "None")]
pub struct AgentRef {
    /// Agent id.
    pub id: cynic::Id,
    /// Name shown.
    pub display_name: Option<String>,
}

/// A chat message.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Message", rename_all = "None")]
pub struct Message {
    /// Message id (opaque, unique).
    pub id: cynic::Id,
    /// The text.
    pub content: String,
    /// The sender's custom id, when it gave one.
    pub msg_id: Option<String>,
    /// The sender's name at the time.
    pub sender_name: String,
    /// When it was sent, as the service gives it: documented as a UNIX timestamp "in
    /// milliseconds precision", which may be milliseconds or seconds with a millisecond
    /// fraction; [`Message::timestamp_ms`] takes either.
    pub timestamp: Option<f64>,
    /// The channel it was sent on.
    pub channel: ChannelRef,
    /// Who sent it.
    pub from: Sender,
}

impl Message {
    /// [`Message::timestamp`] in milliseconds since the epoch.
    ///
    /// The reference documents the field as a UNIX timestamp "in milliseconds precision",
    /// while the one real message id seen carries seconds with a millisecond fraction
    /// (`1675666127.859`). A value below 10^11 is taken as seconds: in milliseconds that is
    /// 1973, and any real time in milliseconds is above 10^12.
    #[must_use]
    pub fn timestamp_ms(&self) -> Option<f64> {
        const SECONDS_BELOW: f64 = 1e11;
        self.timestamp
            .map(|t| if t < SECONDS_BELOW { t * 1000.0 } else { t })
    }

    /// True when a visitor sent it (what a bot usually answers).
    #[must_use]
    pub fn is_from_visitor(&self) -> bool {
        matches!(self.from, Sender::Visitor(_))
    }
}

/// A channel with a visitor.
///
/// Only fields seen in real clients' queries are selected: the service documents a channel
/// state type, but not the name of the field that holds it, and a guessed field would make the
/// whole query fail. [`ChannelState`] is there for your own fragments once you know it.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "VisitorChannel")]
pub struct VisitorChannel {
    /// Channel id.
    pub id: cynic::Id,
    /// The visitor.
    pub visitor: Option<VisitorInfo>,
}

/// A channel between agents.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "AgentChannel")]
pub struct AgentChannel {
    /// Channel id.
    pub id: cynic::Id,
}

/// Any channel.
#[derive(cynic::InlineFragments, Debug, Clone)]
#[cynic(graphql_type = "Channel")]
#[non_exhaustive]
pub enum Channel {
    /// With a visitor.
    VisitorChannel(VisitorChannel),
    /// Between agents.
    AgentChannel(AgentChannel),
    /// A kind this crate does not know.
    #[cynic(fallback)]
    Unknown(ChannelRef),
}

impl Channel {
    /// The channel id, whatever its kind.
    #[must_use]
    pub fn id(&self) -> &cynic::Id {
        match self {
            Self::VisitorChannel(c) => &c.id,
            Self::AgentChannel(c) => &c.id,
            Self::Unknown(c) => &c.id,
        }
    }
}

/// Someone joined or left a channel.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "MemberJoinLog", rename_all = "None")]
pub struct MemberJoin {
    /// Log id.
    pub id: cynic::Id,
    /// Name of who joined.
    pub user_name: Option<String>,
    /// Who joined.
    pub user: Option<UserRef>,
    /// Where.
    pub channel: Option<ChannelRef>,
}

/// Someone left a channel.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "MemberLeaveLog", rename_all = "None")]
pub struct MemberLeave {
    /// Log id.
    pub id: cynic::Id,
    /// Name of who left.
    pub user_name: Option<String>,
    /// Who left.
    pub user: Option<UserRef>,
    /// Where.
    pub channel: Option<ChannelRef>,
}

/// A chat log entry delivered by `chatActivity`.
#[derive(cynic::InlineFragments, Debug, Clone)]
#[cynic(graphql_type = "ChatLog")]
#[non_exhaustive]
pub enum ChatLog {
    /// A message.
    Message(Message),
    /// A member joined.
    MemberJoinLog(MemberJoin),
    /// A member left.
    MemberLeaveLog(MemberLeave),
    /// A log kind this crate does not know.
    #[cynic(fallback)]
    Unknown,
}

#[allow(dead_code)]
fn _schema_is_used(_: schema::Agent) {}
