//! What agents do to channels: write, join, type, tag, invite, transfer, listen, leave.

use std::collections::HashSet;
use std::sync::Arc;

use super::model::{ChannelState, LogRecord, MessageRecord, Sender};
use super::structured::{Fallback, Structured};
use super::{ChatState, EventKind, Inner, StateError, is_valid_tag};

/// The most tags one chat holds. The service documents no limit; the emulator's bound keeps a
/// chat's tags, and the work of each `addTags` under the state's lock, from growing without
/// end.
pub(crate) const MAX_TAGS_PER_CHAT: usize = 1_000;

/// The refusal of an `addTags` that would bring a chat past [`MAX_TAGS_PER_CHAT`] tags.
fn too_many_tags(held: usize, added: usize) -> StateError {
    StateError::Invalid(format!(
        "a chat holds at most {MAX_TAGS_PER_CHAT} tags: it has {held} and the request would add \
         {added} (none was added)"
    ))
}

/// A message an agent sends.
#[derive(Debug, Clone, Default)]
pub struct OutgoingMessage {
    /// Plain text (for structured messages: ignored, the text comes from the content).
    pub msg: String,
    /// The client's message id; a repeated id in the same channel creates no new message.
    pub msg_id: Option<String>,
    /// Discrete answers.
    pub options: Vec<String>,
    /// Structured content.
    pub structured: Option<Structured>,
    /// Fallback for visitors without structured-message support.
    pub fallback: Option<Fallback>,
}

/// What sending did.
#[derive(Debug, Clone)]
pub enum SendOutcome {
    /// A new message.
    Sent(Arc<LogRecord>),
    /// The `msg_id` was already used in this channel: nothing new was created.
    Duplicate,
    /// `backoff` was set and another agent serves the channel: nothing was sent.
    BackedOff,
}

impl ChatState {
    /// `agent` sends a message to `channel`, joining it first when it is not a member (unless
    /// `backoff` is set and another agent already serves it).
    ///
    /// # Errors
    /// Unknown agent or channel, ended chat, or limits of a structured message.
    pub fn agent_send(
        &self,
        agent: &str,
        channel: &str,
        message: OutgoingMessage,
        backoff: bool,
    ) -> Result<SendOutcome, StateError> {
        if let Some(structured) = &message.structured {
            structured.validate()?;
        } else if message.msg.trim().is_empty() {
            return Err(StateError::Invalid("msg must not be empty".into()));
        }
        let now = self.clock.now();
        let now_ms = self.clock.unix_ms_at(now);
        let mut inner = self.inner.lock();
        let sender = {
            let a = inner.agent(agent)?;
            Sender::Agent {
                key: a.key.clone(),
                name: a.display_name.clone(),
            }
        };
        {
            let record = inner.channel(channel)?;
            if record.state == ChannelState::Closed {
                return Err(StateError::ChannelClosed);
            }
            if let Some(id) = &message.msg_id
                && record.msg_ids.contains(id)
            {
                return Ok(SendOutcome::Duplicate);
            }
            let member = record.members.iter().any(|m| m == agent);
            if !member {
                if backoff && !record.members.is_empty() {
                    return Ok(SendOutcome::BackedOff);
                }
                if !record.is_open() {
                    return Err(StateError::ChannelClosed);
                }
            }
        }
        inner.join(&self.events, now, now_ms, channel, agent, sender.clone())?;
        let record = inner.channel_mut(channel)?;
        let ts = Inner::next_timestamp(record, now_ms);
        record.first_reply_at.get_or_insert(now);
        record.last_agent_reply_at = Some(now);
        record.agents_typing.retain(|a| a != agent);
        if let Some(id) = &message.msg_id {
            record.msg_ids.insert(id.clone());
        }
        let (content, options, fallback) = match &message.structured {
            Some(s) => {
                let fallback = message
                    .fallback
                    .clone()
                    .unwrap_or_else(|| s.default_fallback());
                (s.text(), fallback.options.clone(), Some(fallback))
            }
            None => (message.msg.clone(), message.options.clone(), None),
        };
        let log = LogRecord::Message(MessageRecord {
            local_id: Inner::local_id(channel, ts),
            channel: channel.to_owned(),
            from: sender,
            content,
            msg_id: message.msg_id,
            options,
            timestamp_ms: ts,
            structured: message.structured,
            fallback,
        });
        let audience = inner.audience(inner.channel(channel)?);
        let log = inner.append_log(&self.events, now, channel, log, audience)?;
        Ok(SendOutcome::Sent(log))
    }

    /// `agent` starts or stops typing in `channel`; `false` when `backoff` held it back.
    ///
    /// # Errors
    /// Unknown agent or channel, or an ended chat.
    pub fn agent_typing(
        &self,
        agent: &str,
        channel: &str,
        typing: bool,
        backoff: bool,
    ) -> Result<bool, StateError> {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        inner.agent(agent)?;
        let record = inner.channel_mut(channel)?;
        if !record.is_open() {
            return Err(StateError::ChannelClosed);
        }
        let member = record.members.iter().any(|m| m == agent);
        if !member && backoff && !record.members.is_empty() {
            return Ok(false);
        }
        record.agents_typing.retain(|a| a != agent);
        if typing {
            record.agents_typing.push(agent.to_owned());
        }
        let audience = inner.audience(inner.channel(channel)?);
        let kind = EventKind::Typing {
            channel: channel.to_owned(),
            agent: Some(agent.to_owned()),
            typing,
        };
        inner.publish(&self.events, now, kind, audience);
        Ok(true)
    }

    /// Adds tags to a channel the agent serves; a tag it has already is not added again.
    ///
    /// # Errors
    /// [`StateError::InvalidTag`] for a tag with other characters than letters, digits, `-`
    /// and `_`, or with more than [`super::MAX_TAG_LEN`] of them; [`StateError::NotServing`]
    /// when the agent is not in the channel;
    /// [`StateError::Invalid`] when the chat would hold more than 1,000 tags (then none is
    /// added).
    pub fn add_tags(&self, agent: &str, channel: &str, tags: &[String]) -> Result<(), StateError> {
        if let Some(bad) = tags.iter().find(|t| !is_valid_tag(t)) {
            return Err(StateError::invalid_tag(bad));
        }
        // Repeats within the request go before the lock is taken.
        let mut seen = HashSet::with_capacity(tags.len());
        let asked: Vec<&String> = tags.iter().filter(|t| seen.insert(t.as_str())).collect();
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        let record = inner.channel_mut(channel)?;
        if !record.members.iter().any(|m| m == agent) {
            return Err(StateError::NotServing);
        }
        let added: Vec<&String> = {
            let held: HashSet<&str> = record.tags.iter().map(String::as_str).collect();
            asked
                .into_iter()
                .filter(|t| !held.contains(t.as_str()))
                .collect()
        };
        if record.tags.len() + added.len() > MAX_TAGS_PER_CHAT {
            return Err(too_many_tags(record.tags.len(), added.len()));
        }
        if !added.is_empty() {
            let mut tags = Vec::with_capacity(record.tags.len() + added.len());
            tags.extend(record.tags.iter().cloned());
            tags.extend(added.into_iter().cloned());
            record.tags = Arc::from(tags);
        }
        let audience = inner.audience(inner.channel(channel)?);
        let kind = EventKind::Tagged {
            channel: channel.to_owned(),
            tags: tags.to_vec(),
        };
        inner.publish(&self.events, now, kind, audience);
        Ok(())
    }

    /// `agent` brings `invitee` into the channel, and leaves it when `leave` is set.
    ///
    /// # Errors
    /// Unknown agents or channel, an ended chat, or an inviter that is not in the channel.
    pub fn invite_agent(
        &self,
        agent: &str,
        invitee: &str,
        channel: &str,
        leave: bool,
    ) -> Result<(), StateError> {
        let now = self.clock.now();
        let now_ms = self.clock.unix_ms_at(now);
        let mut inner = self.inner.lock();
        let invitee_sender = {
            let a = inner.agent(invitee)?;
            Sender::Agent {
                key: a.key.clone(),
                name: a.display_name.clone(),
            }
        };
        {
            let record = inner.channel(channel)?;
            if !record.is_open() {
                return Err(StateError::ChannelClosed);
            }
            if !record.members.iter().any(|m| m == agent) {
                return Err(StateError::NotServing);
            }
        }
        inner.join(&self.events, now, now_ms, channel, invitee, invitee_sender)?;
        if leave && agent != invitee {
            inner.leave(&self.events, now, now_ms, channel, agent)?;
        }
        Ok(())
    }

    /// Moves a channel to another department; with `leave` the agent leaves it, and a channel
    /// left without agents waits again (`INCOMING`) for that department's agents.
    ///
    /// # Errors
    /// Unknown agent, channel or department; an offline department; an ended chat; or an
    /// agent that can neither see nor serve the channel.
    pub fn transfer(
        &self,
        agent: &str,
        channel: &str,
        department: &str,
        leave: bool,
    ) -> Result<(), StateError> {
        let now = self.clock.now();
        let now_ms = self.clock.unix_ms_at(now);
        let mut inner = self.inner.lock();
        inner.agent(agent)?;
        let department = {
            let d = inner
                .departments
                .iter()
                .find(|d| d.key == department)
                .ok_or(StateError::NotFound("department"))?;
            if d.status == super::DepartmentStatus::Offline {
                return Err(StateError::DepartmentOffline);
            }
            d.key.clone()
        };
        {
            let record = inner.channel(channel)?;
            if !record.is_open() {
                return Err(StateError::ChannelClosed);
            }
            // An agent moves a chat it is in, or an unserved one it is shown (`audience`: the
            // available agents of the chat's department); one that does not see it cannot.
            let sees = inner.audience(record).iter().any(|m| m == agent);
            if !sees {
                return Err(StateError::NotServing);
            }
        }
        inner.channel_mut(channel)?.department = Some(department.clone());
        let audience = inner.audience(inner.channel(channel)?);
        let kind = EventKind::Transferred {
            channel: channel.to_owned(),
            department,
        };
        inner.publish(&self.events, now, kind, audience);
        if leave && inner.channel(channel)?.members.iter().any(|m| m == agent) {
            inner.leave(&self.events, now, now_ms, channel, agent)?;
        }
        // An assignment to an agent outside the new department lapses: the chat waits for, and
        // is routed to, the new department's agents.
        let stale = {
            let record = inner.channel(channel)?;
            record.state == ChannelState::Assigned
                && record
                    .assigned_to
                    .as_deref()
                    .and_then(|a| inner.agent(a).ok())
                    .is_some_and(|a| !a.serves(record.department.as_ref()))
        };
        if stale {
            inner.lapse(&self.events, now, channel)?;
        }
        inner.route_waiting(&self.events, now, leave.then_some((channel, agent)))?;
        Ok(())
    }

    /// `agent` listens to a channel without joining it.
    ///
    /// # Errors
    /// Unknown agent or channel.
    pub fn listen(&self, agent: &str, channel: &str) -> Result<(), StateError> {
        let mut inner = self.inner.lock();
        inner.agent(agent)?;
        let record = inner.channel_mut(channel)?;
        let member = record.members.iter().any(|m| m == agent);
        if !member && !record.listeners.iter().any(|m| m == agent) {
            record.listeners.push(agent.to_owned());
        }
        Ok(())
    }

    /// `agent` leaves a channel it joined, or stops listening to it.
    ///
    /// # Errors
    /// [`StateError::NotServing`] when it does neither.
    pub fn leave_channel(&self, agent: &str, channel: &str) -> Result<(), StateError> {
        let now = self.clock.now();
        let now_ms = self.clock.unix_ms_at(now);
        let mut inner = self.inner.lock();
        let record = inner.channel_mut(channel)?;
        if record.members.iter().any(|m| m == agent) {
            record.listeners.retain(|m| m != agent);
            return inner.leave(&self.events, now, now_ms, channel, agent);
        }
        let before = record.listeners.len();
        record.listeners.retain(|m| m != agent);
        if record.listeners.len() == before {
            return Err(StateError::NotServing);
        }
        Ok(())
    }
}

impl Inner {
    /// Makes `agent` a member (no-op when it already is): join log, serve time, `ONGOING`.
    fn join(
        &mut self,
        events: &tokio::sync::broadcast::Sender<Arc<super::StateEvent>>,
        now: tokio::time::Instant,
        now_ms: f64,
        channel: &str,
        agent: &str,
        sender: Sender,
    ) -> Result<(), StateError> {
        if self.channel(channel)?.members.iter().any(|m| m == agent) {
            return Ok(());
        }
        // Those who saw the chat waiting (its department's available agents) learn it was
        // taken, as a leaver sees its own leave: a bot tracking waiting chats must not keep
        // one another agent picked up.
        let waiting_audience = self.audience(self.channel(channel)?);
        let record = self.channel_mut(channel)?;
        record.members.push(agent.to_owned());
        record.listeners.retain(|m| m != agent);
        record.served_at.get_or_insert(now);
        record.queued_since = None;
        let join = self.member_log(channel, sender, now_ms)?;
        let audience = union(&waiting_audience, &self.audience(self.channel(channel)?));
        self.append_log(events, now, channel, LogRecord::MemberJoin(join), audience)?;
        if self.channel(channel)?.is_open() {
            self.set_state(events, now, channel, ChannelState::Ongoing)?;
        }
        Ok(())
    }

    /// Removes member `agent`: leave log, then `CLOSED` when the visitor is gone and nobody is
    /// left, or `INCOMING` when the visitor still waits.
    fn leave(
        &mut self,
        events: &tokio::sync::broadcast::Sender<Arc<super::StateEvent>>,
        now: tokio::time::Instant,
        now_ms: f64,
        channel: &str,
        agent: &str,
    ) -> Result<(), StateError> {
        let sender = {
            let a = self.agent(agent)?;
            Sender::Agent {
                key: a.key.clone(),
                name: a.display_name.clone(),
            }
        };
        // The leaving agent still sees its own leave log.
        let audience = self.audience(self.channel(channel)?);
        let leave = self.member_log(channel, sender, now_ms)?;
        {
            let record = self.channel_mut(channel)?;
            record.members.retain(|m| m != agent);
            record.agents_typing.retain(|m| m != agent);
        }
        self.append_log(
            events,
            now,
            channel,
            LogRecord::MemberLeave(leave),
            audience,
        )?;
        let record = self.channel_mut(channel)?;
        if record.members.is_empty() {
            let to = if record.left_at.is_some() {
                ChannelState::Closed
            } else {
                // A new request in the queue: its wait starts now, not at the visitor's
                // arrival (the time served before is no queue wait).
                record.queued_since = Some(now);
                ChannelState::Incoming
            };
            self.set_state(events, now, channel, to)?;
            // In assigned mode the chat goes to someone else, not back to who just left it.
            self.route_waiting(events, now, Some((channel, agent)))?;
        }
        Ok(())
    }
}

/// The agents of `a`, then those of `b` not in `a`.
fn union(a: &[String], b: &[String]) -> Arc<[String]> {
    let mut all = a.to_vec();
    all.extend(b.iter().filter(|agent| !a.contains(agent)).cloned());
    Arc::from(all)
}
