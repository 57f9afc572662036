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

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{AgentStatus, ChannelState, Inner, StateError, StateEvent};
use crate::account::Routing;

impl Inner {
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
