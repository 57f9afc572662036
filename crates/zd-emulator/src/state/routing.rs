//! Assigned-mode routing: which online agent a waiting chat is given to.
//!
//! The documents name the two modes only by the channel states they produce: `INCOMING` "when
//! broadcast mode (default setting) is enabled", `ASSIGNED` "when assigned mode routing is
//! enabled". The rule here is the emulator's: a waiting chat goes to an online agent of its
//! department (any department when it has none) who serves or holds the fewest open chats, the
//! first configured agent on a tie; oldest chats first. It waits as `ASSIGNED` until an agent
//! joins; it is routed again when its agent goes away, invisible or offline, when it is
//! transferred, and when its last agent leaves while the visitor is still there. Who may see
//! an assigned chat is unchanged (the department's available agents): the documents do not
//! say that assignment hides it from the others.
//!
//! The documents also say assigned routing "will only work if the agent that uses the
//! Conversations API is the only agent in the department". So an agent with a live
//! Conversations API session is given chats only of a department it is alone in (of any chat
//! without department only when it is the account's only agent); elsewhere its chats go to
//! the other agents, and it may still join a waiting `INCOMING` chat itself.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{AgentRecord, AgentStatus, ChannelState, ChatState, Inner, StateError, StateEvent};
use crate::account::Routing;

impl ChatState {
    /// Records whether `agent` (raw id) has a live Conversations API session, and routes
    /// again: such an agent may be given chats only where assigned routing works for it.
    pub(crate) fn set_conversations_api(&self, agent: &str, live: bool) {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        let changed = if live {
            inner.api_agents.insert(agent.to_owned())
        } else {
            inner.api_agents.remove(agent)
        };
        if !changed || inner.routing != Routing::Assigned {
            return;
        }
        let Ok(record) = inner.agent(agent).cloned() else {
            return;
        };
        if live {
            inner.warn_if_not_alone(&record);
        }
        // Chats assigned to it where it may no longer have them go back to waiting.
        let held: Vec<String> = inner
            .channels
            .iter()
            .filter(|c| c.state == ChannelState::Assigned)
            .filter(|c| c.assigned_to.as_deref() == Some(agent))
            .filter(|c| !inner.assignable(&record, c.department.as_ref()))
            .map(|c| c.key.clone())
            .collect();
        let routed = held
            .iter()
            .try_for_each(|c| inner.lapse(&self.events, now, c))
            .and_then(|()| inner.route_waiting(&self.events, now, None));
        if let Err(error) = routed {
            tracing::warn!(%error, "routing after a Conversations API session change failed");
        }
    }
}

impl Inner {
    /// Whether assigned routing may give `agent` a chat of `department`.
    fn assignable(&self, agent: &AgentRecord, department: Option<&String>) -> bool {
        if !self.api_agents.contains(&agent.key) {
            return true;
        }
        self.agents.iter().filter(|a| a.serves(department)).count() == 1
    }

    /// Says so when assigned routing cannot give chats to `agent` in some department of its.
    fn warn_if_not_alone(&self, record: &AgentRecord) {
        for department in &record.departments {
            if !self.assignable(record, Some(department)) {
                let name = self
                    .departments
                    .iter()
                    .find(|d| &d.key == department)
                    .map_or(department.as_str(), |d| d.name.as_str());
                tracing::warn!(
                    agent = %record.name,
                    department = %name,
                    "assigned routing works only when the Conversations API agent is the only \
                     agent of its department: this agent is given none of its chats (it may \
                     still join waiting ones)"
                );
            }
        }
    }

    /// In assigned mode, gives every waiting chat (`INCOMING`, nobody serving, visitor still
    /// there) to an agent; a chat waits on when no agent may take it. `except` names a chat
    /// and the agent that just let it go, who is not given it back.
    pub(super) fn route_waiting(
        &mut self,
        events: &broadcast::Sender<Arc<StateEvent>>,
        now: Instant,
        except: Option<(&str, &str)>,
    ) -> Result<(), StateError> {
        if self.routing != Routing::Assigned {
            return Ok(());
        }
        let waiting: Vec<String> = self
            .channels
            .iter()
            .filter(|c| c.state == ChannelState::Incoming && c.members.is_empty())
            .filter(|c| c.left_at.is_none() && c.is_open())
            .map(|c| c.key.clone())
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        let mut loads = self.loads();
        for channel in waiting {
            let skip = except.filter(|(c, _)| *c == channel).map(|(_, a)| a);
            let department = self.channel(&channel)?.department.clone();
            // `min_by_key` keeps the first of equal loads: configuration order breaks ties.
            let Some(agent) = self
                .agents
                .iter()
                .filter(|a| a.status == AgentStatus::Online && Some(a.key.as_str()) != skip)
                .filter(|a| a.serves(department.as_ref()))
                .filter(|a| self.assignable(a, department.as_ref()))
                .min_by_key(|a| loads.get(&a.key).copied().unwrap_or(0))
                .map(|a| a.key.clone())
            else {
                continue;
            };
            *loads.entry(agent.clone()).or_default() += 1;
            self.channel_mut(&channel)?.assigned_to = Some(agent);
            self.set_state(events, now, &channel, ChannelState::Assigned)?;
        }
        Ok(())
    }

    /// Takes back the chats waiting for `agent` (no longer online) and routes them again.
    pub(super) fn unassign(
        &mut self,
        events: &broadcast::Sender<Arc<StateEvent>>,
        now: Instant,
        agent: &str,
    ) -> Result<(), StateError> {
        if self.routing != Routing::Assigned {
            return Ok(());
        }
        let held: Vec<String> = self
            .channels
            .iter()
            .filter(|c| c.state == ChannelState::Assigned)
            .filter(|c| c.assigned_to.as_deref() == Some(agent))
            .map(|c| c.key.clone())
            .collect();
        for channel in &held {
            self.lapse(events, now, channel)?;
        }
        self.route_waiting(events, now, None)
    }

    /// Ends `channel`'s assignment: it waits as `INCOMING` until routed again.
    pub(super) fn lapse(
        &mut self,
        events: &broadcast::Sender<Arc<StateEvent>>,
        now: Instant,
        channel: &str,
    ) -> Result<(), StateError> {
        self.channel_mut(channel)?.assigned_to = None;
        self.set_state(events, now, channel, ChannelState::Incoming)
    }

    /// Open chats per agent: those it serves, and those assigned to it and not joined yet.
    fn loads(&self) -> HashMap<String, usize> {
        let mut loads: HashMap<String, usize> = HashMap::new();
        for c in self.channels.iter().filter(|c| c.is_open()) {
            for m in &c.members {
                *loads.entry(m.clone()).or_default() += 1;
            }
            if c.state == ChannelState::Assigned
                && let Some(a) = &c.assigned_to
            {
                *loads.entry(a.clone()).or_default() += 1;
            }
        }
        loads
    }
}
