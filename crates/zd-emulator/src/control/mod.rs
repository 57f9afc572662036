//! The control API: play the visitor, change statuses, inject faults, read counters.
//!
//! [`Control`] is the in-process form (used by the HTTP routes under `/_emulator/` and by
//! benches); every method takes and returns the public ids clients see.

pub(crate) mod faults;
pub(crate) mod origin;
pub(crate) mod routes;
pub mod scenario;

use std::sync::Arc;

use serde::Serialize;

use crate::chat::{AgentCounts, Core, SessionReport};
use crate::ids::{self, IdKind};
use crate::state::{
    AgentStatus, Arrival, ChatState, Choice, DepartmentStatus, Rating, StateError, Transcript,
};

/// Why a control operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// An id that is not one of ours.
    #[error("invalid {0}")]
    InvalidId(&'static str),
    /// The chat state refused.
    #[error(transparent)]
    State(#[from] StateError),
    /// No such session.
    #[error("no live session {0:?}")]
    NoSession(String),
    /// The session has no socket to act on.
    #[error("session {0:?} has no connected socket")]
    NotConnected(String),
    /// The session's socket has a full queue of frames its client has not read: a frame put
    /// behind them would wait for as long as that client stays silent.
    #[error(
        "the socket of session {0:?} has a full queue its client does not read; drop it instead"
    )]
    Backlogged(String),
    /// A request body that does not fit.
    #[error("{0}")]
    BadRequest(String),
    /// As many scenarios as may run at once are running.
    #[error("{0} scenarios are running, as many as may run at once; wait for one to end, or reset")]
    TooManyScenarios(usize),
}

/// A visitor that arrived.
#[derive(Debug, Clone, Serialize)]
pub struct VisitorHandle {
    /// The channel's public id.
    pub channel_id: String,
    /// The visitor's public id.
    pub visitor_id: String,
    /// The visitor's display name.
    pub visitor_name: String,
}

/// The counters endpoint's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Counters {
    /// Per agent.
    pub agents: Vec<AgentCountsReport>,
    /// Per session (recently ended ones first).
    pub sessions: Vec<SessionReport>,
    /// Real Time Chat (`/stream`) connections open now.
    pub realtime_connections: usize,
}

/// One agent's counters.
#[derive(Debug, Clone, Serialize)]
pub struct AgentCountsReport {
    /// Public id.
    pub agent_id: String,
    /// Name.
    pub name: String,
    /// Counters.
    #[serde(flatten)]
    pub counts: AgentCounts,
}

/// In-process control of a running emulator.
#[derive(Debug, Clone)]
pub struct Control {
    pub(crate) state: Arc<ChatState>,
    pub(crate) core: Arc<Core>,
    pub(crate) realtime: Arc<crate::realtime::Realtime>,
}

fn channel_key(id: &str) -> Result<String, ControlError> {
    ids::decode(IdKind::VisitorChannel, id).ok_or(ControlError::InvalidId("channel_id"))
}

impl Control {
    /// The chat state (read-only use recommended; it is what the metrics will read).
    pub fn state(&self) -> &Arc<ChatState> {
        &self.state
    }

    /// A visitor arrives and starts a chat.
    ///
    /// # Errors
    /// Unknown department.
    pub fn visitor_arrive(&self, arrival: Arrival) -> Result<VisitorHandle, ControlError> {
        let channel = self.state.visitor_arrive(arrival)?;
        let visitor_name = self
            .state
            .visitor(&channel.visitor)
            .map(|v| v.display_name)
            .unwrap_or_default();
        Ok(VisitorHandle {
            channel_id: ids::encode_channel(&channel.key, &channel.scribe_id),
            visitor_id: ids::encode(IdKind::Visitor, &channel.visitor),
            visitor_name,
        })
    }

    /// The visitor of `channel_id` sends `text`; returns the message's public id.
    ///
    /// # Errors
    /// Unknown channel or an ended chat.
    pub fn visitor_message(&self, channel_id: &str, text: &str) -> Result<String, ControlError> {
        let log = self
            .state
            .visitor_message(&channel_key(channel_id)?, text)?;
        Ok(match log.as_ref() {
            crate::state::LogRecord::Message(m) => ids::encode(IdKind::ChatMessage, &m.local_id),
            _ => String::new(),
        })
    }

    /// The visitor clicks a quick reply or button by its label. Returns `Ok(None)` when it
    /// sent the value as a message, `Ok(Some(url))` when it was a link.
    ///
    /// # Errors
    /// Unknown channel, or no structured message offers `label`.
    pub fn visitor_choose(
        &self,
        channel_id: &str,
        label: &str,
    ) -> Result<Option<String>, ControlError> {
        match self
            .state
            .visitor_choose(&channel_key(channel_id)?, label)?
        {
            Choice::Sent(_) => Ok(None),
            Choice::Opened(url) => Ok(Some(url)),
        }
    }

    /// The visitor starts or stops typing.
    ///
    /// # Errors
    /// Unknown channel.
    pub fn visitor_typing(&self, channel_id: &str, typing: bool) -> Result<(), ControlError> {
        Ok(self
            .state
            .visitor_typing(&channel_key(channel_id)?, typing)?)
    }

    /// The visitor leaves.
    ///
    /// # Errors
    /// Unknown channel, or the visitor already left.
    pub fn visitor_leave(&self, channel_id: &str) -> Result<(), ControlError> {
        Ok(self.state.visitor_leave(&channel_key(channel_id)?)?)
    }

    /// The visitor rates the chat.
    ///
    /// # Errors
    /// Unknown channel.
    pub fn visitor_rate(&self, channel_id: &str, rating: Rating) -> Result<(), ControlError> {
        Ok(self.state.visitor_rate(&channel_key(channel_id)?, rating)?)
    }

    /// The channel as the visitor saw it.
    ///
    /// # Errors
    /// Unknown channel.
    pub fn transcript(&self, channel_id: &str) -> Result<Transcript, ControlError> {
        Ok(self.state.transcript(&channel_key(channel_id)?)?)
    }

    /// Sets an agent's status.
    ///
    /// # Errors
    /// Unknown agent.
    pub fn set_agent_status(
        &self,
        agent_id: &str,
        status: AgentStatus,
    ) -> Result<(), ControlError> {
        let key =
            ids::decode(IdKind::Agent, agent_id).ok_or(ControlError::InvalidId("agent_id"))?;
        self.state.set_agent_status(&key, status)?;
        Ok(())
    }

    /// Sets a department's status (by public id or name).
    ///
    /// # Errors
    /// Unknown department.
    pub fn set_department_status(
        &self,
        department: &str,
        status: DepartmentStatus,
    ) -> Result<(), ControlError> {
        let key =
            ids::decode(IdKind::Department, department).unwrap_or_else(|| department.to_owned());
        self.state.set_department_status(&key, status)?;
        Ok(())
    }

    /// Drops every open Real Time Chat (`/stream`) connection without a close frame, as a
    /// network failure would; returns how many were open.
    pub fn realtime_drop(&self) -> usize {
        self.realtime.drop_connections()
    }

    /// Returns the emulator to how it started, but for the agent sessions, which stay with
    /// their sockets and counters: stops running scenarios, forgets visitors and chats,
    /// restores statuses, clears the start-limit history, the per-agent counters, the ended
    /// sessions' reports, every live session's faults and request-rate window, and the Real
    /// Time Chat per-minute budget.
    pub fn reset(&self) {
        // Scenarios stop first: a step holds the counter's lock while it acts (see
        // `run_scenario`), so none lands after the state below is cleared.
        self.core.resets.send_modify(|n| *n = n.wrapping_add(1));
        self.state.reset();
        self.core.reset_counts();
        self.realtime.reset_budget();
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        Counters {
            agents: self
                .core
                .agent_counts()
                .into_iter()
                .map(|(agent_id, name, counts)| AgentCountsReport {
                    agent_id,
                    name,
                    counts,
                })
                .collect(),
            sessions: self.core.session_reports(),
            realtime_connections: self.realtime.open_connections(),
        }
    }
}
