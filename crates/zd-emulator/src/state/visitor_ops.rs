//! What visitors do: arrive, write, choose, type, leave, rate.

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::model::{ChannelRecord, ChannelState, LogRecord, MessageRecord, Rating, Sender};
use super::structured::ActionType;
use super::{ChatState, EventKind, Inner, StateError};
use crate::ids;

/// A visitor arriving on the site and starting a chat.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Arrival {
    /// Display name; `Visitor NNNNNNNN` when absent.
    pub name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Department, by public id (as `/_emulator/account` lists it), raw id or name.
    pub department: Option<String>,
    /// External id.
    pub external_id: Option<String>,
    /// IP address.
    pub ip: Option<String>,
    /// Browser user agent.
    pub user_agent: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// Region.
    pub region: Option<String>,
}

/// What choosing an element of a structured message did.
#[derive(Debug, Clone)]
pub enum Choice {
    /// A quick reply: the value was sent as a visitor message.
    Sent(Arc<LogRecord>),
    /// A link: the visitor's browser would open this URL.
    Opened(String),
}

impl ChatState {
    /// A visitor arrives: creates the visitor and an `INCOMING` channel; returns the channel.
    ///
    /// # Errors
    /// [`StateError::NotFound`] when the department does not exist.
    pub fn visitor_arrive(&self, arrival: Arrival) -> Result<ChannelRecord, StateError> {
        let now = self.clock.now();
        let now_ms = self.clock.unix_ms_at(now);
        let mut inner = self.inner.lock();
        let department = match &arrival.department {
            Some(d) => Some({
                // The control API hands out public ids (`/account`); raw ids and names work too.
                let public = ids::decode(ids::IdKind::Department, d);
                inner
                    .departments
                    .iter()
                    .find(|r| &r.key == d || &r.name == d || public.as_ref() == Some(&r.key))
                    .ok_or(StateError::NotFound("department"))?
                    .key
                    .clone()
            }),
            None => None,
        };
        let account = inner.account_id;
        let visitor_key = format!("{account}.{}", ids::random_token(14));
        let display_name = arrival
            .name
            .clone()
            .unwrap_or_else(|| format!("Visitor {}", ids::random_digits(8)));
        inner.visitors.insert(
            visitor_key.clone(),
            super::VisitorRecord {
                key: visitor_key.clone(),
                display_name: display_name.clone(),
                email: arrival.email,
                external_id: arrival.external_id,
                country: arrival.country,
                region: arrival.region,
                ip: arrival.ip,
                user_agent: arrival.user_agent,
            },
        );
        let channel_key = format!("#supportchat:{account}-{}", ids::random_token(15));
        let channel = ChannelRecord {
            key: channel_key.clone(),
            scribe_id: format!("2302.{account}.{}", ids::random_token(13)),
            visitor: visitor_key.clone(),
            department: department.clone(),
            assigned_to: None,
            state: ChannelState::Incoming,
            members: Vec::new(),
            listeners: Vec::new(),
            logs: std::collections::VecDeque::new(),
            log_start: 0,
            tags: Arc::from(Vec::new()),
            arrived_at: now,
            queued_since: Some(now),
            served_at: None,
            first_reply_at: None,
            last_agent_reply_at: None,
            last_visitor_message_at: None,
            left_at: None,
            closed_at: None,
            rating: None,
            rated_at: None,
            visitor_typing: false,
            agents_typing: Vec::new(),
            msg_ids: HashSet::new(),
            last_timestamp_ms: 0.0,
            log_bytes: 0,
        };
        inner.forget_ended(now);
        let index = inner.channels.len();
        inner.channel_index.insert(channel_key.clone(), index);
        inner.channels.push(channel);
        let audience = inner.audience(inner.channel(&channel_key)?);
        inner.publish(
            &self.events,
            now,
            EventKind::VisitorArrived {
                channel: channel_key.clone(),
                department,
            },
            audience.clone(),
        );
        let user = Sender::Visitor {
            key: visitor_key,
            name: display_name,
        };
        let join = inner.member_log(&channel_key, user, now_ms)?;
        inner.append_log(
            &self.events,
            now,
            &channel_key,
            LogRecord::MemberJoin(join),
            audience,
        )?;
        inner.route_waiting(&self.events, now, None)?;
        Ok(inner.channel(&channel_key)?.clone())
    }

    /// The visitor of `channel` sends `text`.
    ///
    /// # Errors
    /// Unknown channel, or the chat has ended.
    pub fn visitor_message(&self, channel: &str, text: &str) -> Result<Arc<LogRecord>, StateError> {
        if text.trim().is_empty() {
            return Err(StateError::Invalid("message must not be empty".into()));
        }
        let now = self.clock.now();
        let now_ms = self.clock.unix_ms_at(now);
        let mut inner = self.inner.lock();
        let (from, ts) = {
            let record = inner.channel(channel)?;
            if !record.is_open() {
                return Err(StateError::ChannelClosed);
            }
            let visitor = inner
                .visitors
                .get(&record.visitor)
                .ok_or(StateError::NotFound("visitor"))?;
            let from = Sender::Visitor {
                key: visitor.key.clone(),
                name: visitor.display_name.clone(),
            };
            let record = inner.channel_mut(channel)?;
            record.last_visitor_message_at = Some(now);
            record.visitor_typing = false;
            (from, Inner::next_timestamp(record, now_ms))
        };
        let message = MessageRecord {
            local_id: Inner::local_id(channel, ts),
            channel: channel.to_owned(),
            from,
            content: text.to_owned(),
            msg_id: None,
            options: Vec::new(),
            timestamp_ms: ts,
            structured: None,
            fallback: None,
        };
        let audience = inner.audience(inner.channel(channel)?);
        inner.append_log(
            &self.events,
            now,
            channel,
            LogRecord::Message(message),
            audience,
        )
    }

    /// The visitor clicks the quick reply or button labelled `label` on the latest structured
    /// message that has it.
    ///
    /// # Errors
    /// [`StateError::NotFound`] when no structured message of the channel offers `label`.
    pub fn visitor_choose(&self, channel: &str, label: &str) -> Result<Choice, StateError> {
        let action = {
            let inner = self.inner.lock();
            let record = inner.channel(channel)?;
            record
                .logs
                .iter()
                .rev()
                .find_map(|log| match log.as_ref() {
                    LogRecord::Message(m) => m.structured.as_ref()?.choose(label).cloned(),
                    _ => None,
                })
                .ok_or(StateError::NotFound("choice"))?
        };
        match action.kind {
            ActionType::QuickReplyAction => self
                .visitor_message(channel, &action.value)
                .map(Choice::Sent),
            ActionType::LinkAction => Ok(Choice::Opened(action.value)),
        }
    }

    /// The visitor starts or stops typing.
    ///
    /// # Errors
    /// Unknown channel, or the chat has ended (or the visitor left), as for a message.
    pub fn visitor_typing(&self, channel: &str, typing: bool) -> Result<(), StateError> {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        let record = inner.channel_mut(channel)?;
        if !record.is_open() {
            return Err(StateError::ChannelClosed);
        }
        record.visitor_typing = typing;
        let audience = inner.audience(inner.channel(channel)?);
        let kind = EventKind::Typing {
            channel: channel.to_owned(),
            agent: None,
            typing,
        };
        inner.publish(&self.events, now, kind, audience);
        Ok(())
    }

    /// The visitor leaves: `CLOSING` while agents remain in the channel, else `CLOSED`.
    ///
    /// # Errors
    /// Unknown channel, or the visitor already left.
    pub fn visitor_leave(&self, channel: &str) -> Result<(), StateError> {
        let now = self.clock.now();
        let now_ms = self.clock.unix_ms_at(now);
        let mut inner = self.inner.lock();
        let (user, served) = {
            let record = inner.channel(channel)?;
            if record.left_at.is_some() || record.state == ChannelState::Closed {
                return Err(StateError::ChannelClosed);
            }
            let visitor = inner
                .visitors
                .get(&record.visitor)
                .ok_or(StateError::NotFound("visitor"))?;
            (
                Sender::Visitor {
                    key: visitor.key.clone(),
                    name: visitor.display_name.clone(),
                },
                !record.members.is_empty(),
            )
        };
        let audience = inner.audience(inner.channel(channel)?);
        {
            let record = inner.channel_mut(channel)?;
            record.left_at = Some(now);
            record.visitor_typing = false;
        }
        let leave = inner.member_log(channel, user, now_ms)?;
        inner.append_log(
            &self.events,
            now,
            channel,
            LogRecord::MemberLeave(leave),
            audience,
        )?;
        let to = if served {
            ChannelState::Closing
        } else {
            ChannelState::Closed
        };
        inner.set_state(&self.events, now, channel, to)
    }

    /// The visitor rates the chat.
    ///
    /// # Errors
    /// Unknown channel.
    pub fn visitor_rate(&self, channel: &str, rating: Rating) -> Result<(), StateError> {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        {
            let record = inner.channel_mut(channel)?;
            record.rating = Some(rating);
            record.rated_at = Some(now);
        }
        let audience = inner.audience(inner.channel(channel)?);
        let kind = EventKind::Rated {
            channel: channel.to_owned(),
            rating,
        };
        inner.publish(&self.events, now, kind, audience);
        Ok(())
    }
}
