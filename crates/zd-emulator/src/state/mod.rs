//! The chat state: departments, agents, visitors and channels, behind one short-held lock.
//!
//! Every change is published as a [`StateEvent`] on a broadcast channel; the subscription
//! fan-out and (later) the live metrics read from it, so nothing else needs to poll the state.
//! The lock is a `parking_lot::Mutex` held only for in-memory updates (never across an await),
//! and events carry the records they are about so readers rarely need the lock at all.

mod agent_ops;
mod events;
mod model;
mod retention;
mod routing;
mod structured;
mod tokens;
mod transcript;
mod visitor_ops;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::account::{AccountConfig, Routing};
use crate::clock::Clock;
use crate::ids;

pub use agent_ops::{OutgoingMessage, SendOutcome};
pub use events::{EventKind, StateEvent};
pub use model::{
    AgentRecord, AgentStatus, ChannelRecord, ChannelState, DepartmentRecord, DepartmentStatus,
    LogRecord, MemberLogRecord, MessageRecord, Rating, Sender, VisitorRecord,
};
pub use retention::Retention;
pub use structured::{
    Action, ActionType, BUTTON_TEMPLATE_BUTTONS, Button, CAROUSEL_ITEMS, Fallback, LIST_ITEMS,
    ListItem, MAX_LIST_BUTTONS, MAX_PANEL_BUTTONS, MAX_QUICK_REPLIES, Panel, PanelItem, QuickReply,
    Structured,
};
pub use tokens::ChatScopes;
pub use transcript::{Transcript, TranscriptEntry};
pub use visitor_ops::{Arrival, Choice};

/// How many events a slow reader may fall behind before it loses some.
const EVENT_BUFFER: usize = 65_536;

/// Why a state operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// No such object.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The agent is not in the channel.
    #[error("agent is not serving this channel")]
    NotServing,
    /// The chat has ended (or the visitor left).
    #[error("the chat has ended")]
    ChannelClosed,
    /// A tag is empty, has characters other than letters, digits, `-` and `_`, or has more
    /// than [`MAX_TAG_LEN`] of them. It holds the tag, cut to its first [`MAX_TAG_LEN`]
    /// characters and `...` when longer, so a refusal never echoes a huge argument.
    #[error(
        "invalid tag {0:?}: only alphanumeric characters, hyphens and underscores are allowed, \
         at most {max} of them",
        max = MAX_TAG_LEN
    )]
    InvalidTag(String),
    /// The department is offline.
    #[error("department is offline")]
    DepartmentOffline,
    /// An argument breaks a documented limit.
    #[error("{0}")]
    Invalid(String),
}

/// The shared chat state.
#[derive(Debug)]
pub struct ChatState {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Arc<StateEvent>>,
    clock: Clock,
}

#[derive(Debug)]
struct Inner {
    account_id: u64,
    seed_agents: Vec<AgentRecord>,
    seed_departments: Vec<DepartmentRecord>,
    agents: Vec<AgentRecord>,
    departments: Vec<DepartmentRecord>,
    visitors: HashMap<String, VisitorRecord>,
    channels: Vec<ChannelRecord>,
    channel_index: HashMap<String, usize>,
    seq: u64,
    routing: Routing,
    retention: Retention,
    issued: tokens::IssuedTokens,
    /// Raw ids of the agents with a live Conversations API session (see `routing`).
    api_agents: HashSet<String>,
    /// The channel count at which [`Inner::forget_ended`] next looks for chats to forget.
    next_forget: usize,
}

impl ChatState {
    /// Builds the state of `account` at the clock's current time, with the default
    /// [`Retention`].
    pub fn new(account: &AccountConfig, clock: Clock) -> Self {
        Self::with_retention(account, clock, Retention::default())
    }

    /// Builds the state of `account`, keeping the history `retention` allows.
    pub fn with_retention(account: &AccountConfig, clock: Clock, retention: Retention) -> Self {
        let now = clock.now();
        let departments: Vec<DepartmentRecord> = account
            .departments
            .iter()
            .map(|d| DepartmentRecord {
                key: ids::random_digits(9),
                name: d.name.clone(),
                status: d.status,
            })
            .collect();
        let agents = account
            .agents
            .iter()
            .map(|a| AgentRecord {
                key: ids::random_digits(10),
                name: a.name.clone(),
                display_name: a.display_name.clone().unwrap_or_else(|| a.name.clone()),
                access_token: a.access_token.clone(),
                departments: a
                    .departments
                    .iter()
                    .filter_map(|name| departments.iter().find(|d| &d.name == name))
                    .map(|d| d.key.clone())
                    .collect(),
                status: a.status,
                status_since: now,
            })
            .collect::<Vec<_>>();
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Self {
            inner: Mutex::new(Inner {
                account_id: account.account_id,
                seed_agents: agents.clone(),
                seed_departments: departments.clone(),
                agents,
                departments,
                visitors: HashMap::new(),
                channels: Vec::new(),
                channel_index: HashMap::new(),
                seq: 0,
                routing: account.routing,
                retention,
                issued: tokens::IssuedTokens::default(),
                api_agents: HashSet::new(),
                next_forget: 0,
            }),
            events,
            clock,
        }
    }

    /// The clock the state stamps its records with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// A receiver of every state change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StateEvent>> {
        self.events.subscribe()
    }

    /// The account id.
    pub fn account_id(&self) -> u64 {
        self.inner.lock().account_id
    }

    /// The agent `token` acts as, whatever its scopes (see [`ChatState::token_grant`]).
    pub fn agent_by_token(&self, token: &str) -> Option<AgentRecord> {
        self.token_grant(token).map(|(agent, _)| agent)
    }

    /// The agent whose own access token (the one with every scope) is `token`.
    fn agent_by_own_token(&self, token: &str) -> Option<AgentRecord> {
        // Compared in constant time, as the service would: Secret's equality.
        let given = zd_auth::Secret::new(token);
        let inner = self.inner.lock();
        inner
            .agents
            .iter()
            .find(|a| !a.access_token.is_empty() && a.access_token == given)
            .cloned()
    }

    /// All agents, in account order.
    pub fn agents(&self) -> Vec<AgentRecord> {
        self.inner.lock().agents.clone()
    }

    /// One agent.
    pub fn agent(&self, key: &str) -> Option<AgentRecord> {
        self.inner
            .lock()
            .agents
            .iter()
            .find(|a| a.key == key)
            .cloned()
    }

    /// All departments, in account order.
    pub fn departments(&self) -> Vec<DepartmentRecord> {
        self.inner.lock().departments.clone()
    }

    /// A department by raw id or by name.
    pub fn department(&self, key_or_name: &str) -> Option<DepartmentRecord> {
        let inner = self.inner.lock();
        inner
            .departments
            .iter()
            .find(|d| d.key == key_or_name || d.name == key_or_name)
            .cloned()
    }

    /// A visitor.
    pub fn visitor(&self, key: &str) -> Option<VisitorRecord> {
        self.inner.lock().visitors.get(key).cloned()
    }

    /// A channel (cloned with its log).
    pub fn channel(&self, key: &str) -> Option<ChannelRecord> {
        let inner = self.inner.lock();
        inner.channel(key).ok().cloned()
    }

    /// A channel without its log (cheap: the log is read on demand with [`ChatState::logs`]).
    pub fn channel_meta(&self, key: &str) -> Option<ChannelRecord> {
        let inner = self.inner.lock();
        inner.channel(key).ok().map(ChannelRecord::without_logs)
    }

    /// A channel's tags (none for an unknown channel): shared, not copied, so reading them
    /// holds the state's lock for a moment whatever their number.
    pub fn channel_tags(&self, key: &str) -> Arc<[String]> {
        let inner = self.inner.lock();
        inner
            .channel(key)
            .map_or_else(|_| Arc::from(Vec::new()), |c| Arc::clone(&c.tags))
    }

    /// Every channel, oldest first.
    pub fn channels(&self) -> Vec<ChannelRecord> {
        self.inner.lock().channels.clone()
    }

    /// Runs `read` over every channel, oldest first, under the state lock: for readers that
    /// need a pass over all of them, without copying each one's log and message ids.
    pub(crate) fn read_channels<R>(&self, read: impl FnOnce(&[ChannelRecord]) -> R) -> R {
        let inner = self.inner.lock();
        read(inner.channels.as_slice())
    }

    /// The channels an agent serves or listens to, oldest first, without their logs.
    pub fn channels_of(&self, agent: &str) -> Vec<ChannelRecord> {
        let inner = self.inner.lock();
        inner
            .channels
            .iter()
            .filter(|c| {
                c.members.iter().any(|m| m == agent) || c.listeners.iter().any(|m| m == agent)
            })
            .map(ChannelRecord::without_logs)
            .collect()
    }

    /// The log of a channel (its latest entries; see [`Retention`]).
    pub fn logs(&self, channel: &str) -> Result<Vec<Arc<LogRecord>>, StateError> {
        self.logs_window(channel).map(|(_, logs)| logs)
    }

    /// The log of a channel with the position of its first entry in the whole chat (the
    /// number of entries that fell out before it), read together.
    pub fn logs_window(&self, channel: &str) -> Result<(usize, Vec<Arc<LogRecord>>), StateError> {
        self.read_logs(channel, |start, logs| {
            (start, logs.iter().cloned().collect())
        })
    }

    /// Runs `read` on a channel's log (the position of its first entry in the whole chat, and
    /// the entries kept) under the state's lock, so a reader that wants a page takes the page
    /// without copying the rest of a long log.
    pub(crate) fn read_logs<R>(
        &self,
        channel: &str,
        read: impl FnOnce(usize, &VecDeque<Arc<LogRecord>>) -> R,
    ) -> Result<R, StateError> {
        let inner = self.inner.lock();
        let record = inner.channel(channel)?;
        Ok(read(record.log_start, &record.logs))
    }

    /// Sets an agent's status.
    ///
    /// # Errors
    /// [`StateError::NotFound`] for an unknown agent.
    pub fn set_agent_status(
        &self,
        agent: &str,
        status: AgentStatus,
    ) -> Result<AgentRecord, StateError> {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        let record = inner
            .agents
            .iter_mut()
            .find(|a| a.key == agent)
            .ok_or(StateError::NotFound("agent"))?;
        let changed = record.status != status;
        record.status = status;
        if changed {
            record.status_since = now;
        }
        let record = record.clone();
        if changed {
            let kind = EventKind::AgentStatus {
                agent: agent.to_owned(),
                status,
            };
            inner.publish(&self.events, now, kind, Arc::from(vec![agent.to_owned()]));
            if status == AgentStatus::Online {
                inner.route_waiting(&self.events, now, None)?;
            } else {
                inner.unassign(&self.events, now, agent)?;
            }
        }
        Ok(record)
    }

    /// Sets a department's status.
    ///
    /// # Errors
    /// [`StateError::NotFound`] for an unknown department.
    pub fn set_department_status(
        &self,
        department: &str,
        status: DepartmentStatus,
    ) -> Result<DepartmentRecord, StateError> {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        let record = inner
            .departments
            .iter_mut()
            .find(|d| d.key == department || d.name == department)
            .ok_or(StateError::NotFound("department"))?;
        record.status = status;
        let record = record.clone();
        let kind = EventKind::DepartmentStatus {
            department: record.key.clone(),
            status,
        };
        inner.publish(&self.events, now, kind, Arc::from(Vec::new()));
        Ok(record)
    }

    /// Forgets visitors and channels and restores agents and departments as configured (ids
    /// and tokens stay the same, so connected clients keep working).
    pub fn reset(&self) {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        inner.agents = inner.seed_agents.clone();
        for a in &mut inner.agents {
            a.status_since = now;
        }
        inner.departments = inner.seed_departments.clone();
        inner.visitors.clear();
        inner.channels.clear();
        inner.channel_index.clear();
        inner.next_forget = 0;
        inner.publish(&self.events, now, EventKind::Reset, Arc::from(Vec::new()));
    }
}

impl Inner {
    fn channel(&self, key: &str) -> Result<&ChannelRecord, StateError> {
        self.channel_index
            .get(key)
            .and_then(|&i| self.channels.get(i))
            .ok_or(StateError::NotFound("channel"))
    }

    fn channel_mut(&mut self, key: &str) -> Result<&mut ChannelRecord, StateError> {
        self.channel_index
            .get(key)
            .and_then(|&i| self.channels.get_mut(i))
            .ok_or(StateError::NotFound("channel"))
    }

    fn agent(&self, key: &str) -> Result<&AgentRecord, StateError> {
        self.agents
            .iter()
            .find(|a| a.key == key)
            .ok_or(StateError::NotFound("agent"))
    }

    /// Who may see events of a channel: members, listeners, and while nobody serves it the
    /// available agents of its department (all departments when it has none).
    fn audience(&self, channel: &ChannelRecord) -> Arc<[String]> {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out = Vec::new();
        for a in channel.members.iter().chain(&channel.listeners) {
            if seen.insert(a) {
                out.push(a.clone());
            }
        }
        let waiting = matches!(
            channel.state,
            ChannelState::Incoming | ChannelState::Assigned
        );
        if channel.is_unserved() && waiting {
            for agent in &self.agents {
                let available = agent.status != AgentStatus::Offline;
                let in_department = agent.serves(channel.department.as_ref());
                if available && in_department && seen.insert(&agent.key) {
                    out.push(agent.key.clone());
                }
            }
        }
        Arc::from(out)
    }

    fn publish(
        &mut self,
        events: &broadcast::Sender<Arc<StateEvent>>,
        at: Instant,
        kind: EventKind,
        audience: Arc<[String]>,
    ) {
        self.seq += 1;
        let event = StateEvent {
            seq: self.seq,
            at,
            kind,
            audience,
        };
        // No receiver is not an error: events are only for whoever listens.
        let _ = events.send(Arc::new(event));
    }

    /// The next timestamp of a channel: now, but strictly after the previous entry, so ids
    /// built from it stay unique even on a paused clock.
    fn next_timestamp(channel: &mut ChannelRecord, now_ms: f64) -> f64 {
        let ts = if now_ms > channel.last_timestamp_ms {
            now_ms
        } else {
            channel.last_timestamp_ms + 1.0
        };
        channel.last_timestamp_ms = ts;
        ts
    }

    fn local_id(channel: &str, ts_ms: f64) -> String {
        format!("{channel}{:.3}", ts_ms / 1000.0)
    }

    /// Appends a log entry and publishes it to `audience`.
    fn append_log(
        &mut self,
        events: &broadcast::Sender<Arc<StateEvent>>,
        at: Instant,
        channel: &str,
        record: LogRecord,
        audience: Arc<[String]>,
    ) -> Result<Arc<LogRecord>, StateError> {
        let record = Arc::new(record);
        let retention = self.retention;
        retention::push_log(self.channel_mut(channel)?, record.clone(), &retention);
        self.publish(events, at, EventKind::Log(record.clone()), audience);
        Ok(record)
    }

    fn set_state(
        &mut self,
        events: &broadcast::Sender<Arc<StateEvent>>,
        at: Instant,
        channel: &str,
        to: ChannelState,
    ) -> Result<(), StateError> {
        let record = self.channel_mut(channel)?;
        let from = record.state;
        if from == to {
            return Ok(());
        }
        record.state = to;
        if to == ChannelState::Closed {
            record.closed_at = Some(at);
        }
        let audience = self.audience(self.channel(channel)?);
        let kind = EventKind::ChannelState {
            channel: channel.to_owned(),
            from,
            to,
        };
        self.publish(events, at, kind, audience);
        Ok(())
    }

    fn member_log(
        &mut self,
        channel: &str,
        user: Sender,
        now_ms: f64,
    ) -> Result<MemberLogRecord, StateError> {
        let record = self.channel_mut(channel)?;
        let ts = Self::next_timestamp(record, now_ms);
        Ok(MemberLogRecord {
            local_id: Self::local_id(channel, ts),
            channel: channel.to_owned(),
            user,
            timestamp_ms: ts,
        })
    }
}

/// The longest tag `addTags` accepts, in characters (bytes too: only ASCII is allowed).
///
/// The Conversations API documents the characters of a tag but no length, so the bound is the
/// emulator's: 140 is the most Zendesk's Help Center allows for a chat tag entered in the
/// agent's chat panel, which is generous for a label such as `order-42`. Without it a tag could
/// fill a 256 KiB frame, and a chat's thousand tags a quarter of a gigabyte.
pub const MAX_TAG_LEN: usize = 140;

/// Whether a tag is allowed: 1 to [`MAX_TAG_LEN`] letters, digits, `-` and `_`.
pub fn is_valid_tag(tag: &str) -> bool {
    (1..=MAX_TAG_LEN).contains(&tag.len())
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl StateError {
    /// The refusal of `tag`, which [`is_valid_tag`] does not allow.
    pub(crate) fn invalid_tag(tag: &str) -> Self {
        let mut shown: String = tag.chars().take(MAX_TAG_LEN).collect();
        if shown.len() < tag.len() {
            shown.push_str("...");
        }
        Self::InvalidTag(shown)
    }
}
