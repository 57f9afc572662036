//! A channel as the visitor sees it: messages with structured content and fallback.

use serde::Serialize;

use super::model::{ChannelState, LogRecord, Rating, Sender};
use super::structured::{Fallback, Structured};
use super::{ChatState, StateError};
use crate::ids;

/// A channel's transcript.
#[derive(Debug, Clone, Serialize)]
pub struct Transcript {
    /// The channel's public id.
    pub channel_id: String,
    /// Its state.
    pub state: ChannelState,
    /// The visitor's name.
    pub visitor_name: String,
    /// The department's name.
    pub department: Option<String>,
    /// Display names of the agents typing now.
    pub agents_typing: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// The rating.
    pub rating: Option<Rating>,
    /// The entries, oldest first.
    pub entries: Vec<TranscriptEntry>,
}

/// One entry of a transcript.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptEntry {
    /// `message`, `join` or `leave`.
    pub kind: &'static str,
    /// The public id of the entry.
    pub id: String,
    /// Who wrote it or joined or left.
    pub from: Sender,
    /// Text (for structured messages: their text part).
    pub text: String,
    /// The client's message id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<String>,
    /// Discrete answers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// The structured content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured: Option<Structured>,
    /// The fallback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    /// Milliseconds since the UNIX epoch.
    pub timestamp: f64,
}

impl TranscriptEntry {
    fn from_log(log: &LogRecord) -> Self {
        match log {
            LogRecord::Message(m) => Self {
                kind: "message",
                id: ids::encode(ids::IdKind::ChatMessage, &m.local_id),
                from: m.from.clone(),
                text: m.content.clone(),
                msg_id: m.msg_id.clone(),
                options: m.options.clone(),
                structured: m.structured.clone(),
                fallback: m.fallback.clone(),
                timestamp: m.timestamp_ms,
            },
            LogRecord::MemberJoin(j) | LogRecord::MemberLeave(j) => {
                let join = matches!(log, LogRecord::MemberJoin(_));
                Self {
                    kind: if join { "join" } else { "leave" },
                    id: ids::encode(
                        if join {
                            ids::IdKind::MemberJoin
                        } else {
                            ids::IdKind::MemberLeave
                        },
                        &j.local_id,
                    ),
                    from: j.user.clone(),
                    text: format!(
                        "{} {} the chat",
                        j.user.name(),
                        if join { "joined" } else { "left" }
                    ),
                    msg_id: None,
                    options: Vec::new(),
                    structured: None,
                    fallback: None,
                    timestamp: j.timestamp_ms,
                }
            }
        }
    }
}

impl ChatState {
    /// The transcript of a channel.
    ///
    /// # Errors
    /// Unknown channel.
    pub fn transcript(&self, channel: &str) -> Result<Transcript, StateError> {
        let inner = self.inner.lock();
        let record = inner.channel(channel)?;
        let visitor_name = inner
            .visitors
            .get(&record.visitor)
            .map(|v| v.display_name.clone())
            .unwrap_or_default();
        let department = record.department.as_ref().and_then(|d| {
            inner
                .departments
                .iter()
                .find(|r| &r.key == d)
                .map(|r| r.name.clone())
        });
        let agents_typing = record
            .agents_typing
            .iter()
            .filter_map(|a| inner.agents.iter().find(|r| &r.key == a))
            .map(|a| a.display_name.clone())
            .collect();
        Ok(Transcript {
            channel_id: ids::encode_channel(&record.key, &record.scribe_id),
            state: record.state,
            visitor_name,
            department,
            agents_typing,
            tags: record.tags.to_vec(),
            rating: record.rating,
            entries: record
                .logs
                .iter()
                .map(|l| TranscriptEntry::from_log(l))
                .collect(),
        })
    }
}
