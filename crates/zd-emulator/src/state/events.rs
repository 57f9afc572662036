//! State changes, published on a broadcast channel for subscriptions (and, later, metrics).

use std::sync::Arc;

use tokio::time::Instant;

use super::model::{AgentStatus, ChannelState, DepartmentStatus, LogRecord, Rating};

/// One change of the chat state.
#[derive(Debug, Clone)]
pub struct StateEvent {
    /// Sequence number, increasing by one per event.
    pub seq: u64,
    /// When it happened.
    pub at: Instant,
    /// What happened.
    pub kind: EventKind,
    /// Raw ids of the agents whose subscriptions may see it (members, listeners, and for
    /// unserved channels the available agents of the department), fixed when it happened.
    pub audience: Arc<[String]>,
}

/// What happened.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EventKind {
    /// A visitor arrived and a channel was created.
    VisitorArrived {
        /// Channel raw id.
        channel: String,
        /// Department raw id.
        department: Option<String>,
    },
    /// A chat log entry (message, join, leave) was appended.
    Log(Arc<LogRecord>),
    /// A channel changed state.
    ChannelState {
        /// Channel raw id.
        channel: String,
        /// Previous state.
        from: ChannelState,
        /// New state.
        to: ChannelState,
    },
    /// A channel moved to another department.
    Transferred {
        /// Channel raw id.
        channel: String,
        /// New department raw id.
        department: String,
    },
    /// Tags were added.
    Tagged {
        /// Channel raw id.
        channel: String,
        /// The tags added.
        tags: Vec<String>,
    },
    /// The visitor rated the chat.
    Rated {
        /// Channel raw id.
        channel: String,
        /// The rating.
        rating: Rating,
    },
    /// Someone started or stopped typing.
    Typing {
        /// Channel raw id.
        channel: String,
        /// Agent raw id, `None` for the visitor.
        agent: Option<String>,
        /// Typing or not.
        typing: bool,
    },
    /// An agent changed status.
    AgentStatus {
        /// Agent raw id.
        agent: String,
        /// New status.
        status: AgentStatus,
    },
    /// A department changed status.
    DepartmentStatus {
        /// Department raw id.
        department: String,
        /// New status.
        status: DepartmentStatus,
    },
    /// The state was reset.
    Reset,
}
