//! Every Real Time Chat metric, computed from the chat state at one instant.
//!
//! Definitions (the emulator's reading of the metric catalogue; see `mod.rs` for choices):
//! - `incoming_chats`: channels `INCOMING` (visitor waiting, nobody assigned or serving).
//! - `assigned_chats`: channels `ASSIGNED` (assigned to an agent, not yet served).
//! - `active_chats`: channels `ONGOING` (an agent is serving the visitor).
//! - `missed_chats[w]`: visitors who left while their request waited in the queue, unserved,
//!   within the last `w` minutes. A chat back in the queue after its last agent left (a
//!   transfer or invitation with `leave`) is a new request: its visitor leaving before another
//!   agent joins counts as missed, as the catalogue's "requests not served before the visitor
//!   left" reads, and as its wait counts in `waiting_time_*`.
//! - `waiting_time_avg/max`: seconds the visitors still queued (`INCOMING`/`ASSIGNED`) have
//!   waited since their request entered the queue (on arrival, or on going back to it);
//!   `null` with nobody queued.
//! - `chat_duration_avg/max`: seconds since an agent first joined, over chats served now;
//!   `null` with none.
//! - `response_time_avg/max`: over chats served now, seconds from arrival to the first agent
//!   reply, or to now while no agent has replied yet; `null` with none.
//! - `satisfaction_good/bad[w]`: chats whose current rating is good/bad and was given within
//!   the last `w` minutes.
//! - `agents_online/away/invisible`: agents with that status (per department: its members).

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;
use zd_wire::realtime::{Metric, Window};

use crate::state::{AgentStatus, ChannelRecord, ChannelState, ChatState, Rating};

const WINDOWS: [Duration; 2] = [Duration::from_secs(30 * 60), Duration::from_secs(60 * 60)];

/// The values of one scope (a department, or the whole account).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scope {
    incoming: i64,
    assigned: i64,
    active: i64,
    missed: [i64; 2],
    good: [i64; 2],
    bad: [i64; 2],
    waiting: Stats,
    duration: Stats,
    response: Stats,
    online: i64,
    away: i64,
    invisible: i64,
}

/// Average and maximum of a set of whole-second durations; `None` when the set is empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Stats {
    sum: u64,
    count: u64,
    max: u64,
}

impl Stats {
    fn add(&mut self, d: Duration) {
        let secs = d.as_secs();
        self.sum += secs;
        self.count += 1;
        self.max = self.max.max(secs);
    }

    fn avg(&self) -> Option<i64> {
        (self.count > 0).then(|| {
            let avg = (self.sum as f64 / self.count as f64).round();
            avg as i64
        })
    }

    fn max(&self) -> Option<i64> {
        (self.count > 0).then(|| i64::try_from(self.max).unwrap_or(i64::MAX))
    }
}

fn window_index(window: Option<Window>) -> Option<usize> {
    match window? {
        Window::Minutes30 => Some(0),
        Window::Minutes60 => Some(1),
        _ => None,
    }
}

impl Scope {
    /// The value of a metric; `None` for `null`, or for a window the metric does not have.
    pub(crate) fn get(&self, metric: &Metric, window: Option<Window>) -> Option<i64> {
        let windowed = |values: &[i64; 2]| window_index(window).map(|i| values[i]);
        match metric {
            Metric::IncomingChats => Some(self.incoming),
            Metric::AssignedChats => Some(self.assigned),
            Metric::ActiveChats => Some(self.active),
            Metric::MissedChats => windowed(&self.missed),
            Metric::SatisfactionGood => windowed(&self.good),
            Metric::SatisfactionBad => windowed(&self.bad),
            Metric::WaitingTimeAvg => self.waiting.avg(),
            Metric::WaitingTimeMax => self.waiting.max(),
            Metric::ChatDurationAvg => self.duration.avg(),
            Metric::ChatDurationMax => self.duration.max(),
            Metric::ResponseTimeAvg => self.response.avg(),
            Metric::ResponseTimeMax => self.response.max(),
            Metric::AgentsOnline => Some(self.online),
            Metric::AgentsAway => Some(self.away),
            Metric::AgentsInvisible => Some(self.invisible),
            _ => None,
        }
    }

    fn keep_time_based(&mut self, last: &Scope) {
        self.waiting = last.waiting;
        self.duration = last.duration;
        self.response = last.response;
    }

    fn add_channel(&mut self, c: &ChannelRecord, now: Instant) {
        match c.state {
            ChannelState::Incoming => self.incoming += 1,
            ChannelState::Assigned => self.assigned += 1,
            ChannelState::Ongoing => self.active += 1,
            ChannelState::Closing | ChannelState::Closed => {}
        }
        let queued = matches!(c.state, ChannelState::Incoming | ChannelState::Assigned)
            && c.left_at.is_none();
        if queued {
            let since = c.queued_since.unwrap_or(c.arrived_at);
            self.waiting.add(now.saturating_duration_since(since));
        }
        if c.state == ChannelState::Ongoing {
            if let Some(served) = c.served_at {
                self.duration.add(now.saturating_duration_since(served));
            }
            let replied = c.first_reply_at.unwrap_or(now);
            self.response
                .add(replied.saturating_duration_since(c.arrived_at));
        }
        if let Some(left) = missed_at(c) {
            for (i, w) in WINDOWS.iter().enumerate() {
                if now.saturating_duration_since(left) < *w {
                    self.missed[i] += 1;
                }
            }
        }
        if let (Some(rating), Some(at)) = (c.rating, c.rated_at) {
            let counts = match rating {
                Rating::Good => &mut self.good,
                Rating::Bad => &mut self.bad,
            };
            for (i, w) in WINDOWS.iter().enumerate() {
                if now.saturating_duration_since(at) < *w {
                    counts[i] += 1;
                }
            }
        }
    }
}

/// When the visitor left while waiting in the queue (the chat is then missed).
fn missed_at(c: &ChannelRecord) -> Option<Instant> {
    // `queued_since` is cleared when an agent joins, so it is still set only when the visitor
    // left a request nobody served.
    c.queued_since.and(c.left_at)
}

/// Every scope's values at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Values {
    /// False while the account is inactive (no chat since start or reset, nobody logged
    /// in): every metric is then `null` and REST answers "Not Computed!".
    pub(crate) computed: bool,
    account: Scope,
    departments: HashMap<u64, Scope>,
}

impl Values {
    /// The value of a metric for a department (`None` = the whole account). Departments the
    /// account does not have read as empty.
    pub(crate) fn get(
        &self,
        department: Option<u64>,
        metric: &Metric,
        window: Option<Window>,
    ) -> Option<i64> {
        if !self.computed {
            return None;
        }
        match department {
            None => self.account.get(metric, window),
            Some(d) => match self.departments.get(&d) {
                Some(scope) => scope.get(metric, window),
                None => Scope::default().get(metric, window),
            },
        }
    }
}

impl Values {
    /// Puts back the time-based values (waits, chat durations, response times) of `last`,
    /// for a computation after events that do not move them: those values are pushed only
    /// when an event affects them, not whenever the clock has moved since the last push.
    pub(crate) fn keep_time_based(&mut self, last: &Values) {
        self.account.keep_time_based(&last.account);
        for (d, scope) in &mut self.departments {
            match last.departments.get(d) {
                Some(last) => scope.keep_time_based(last),
                None => scope.keep_time_based(&Scope::default()),
            }
        }
    }

    /// Whether the account has department `id`.
    pub(crate) fn has_department(&self, id: u64) -> bool {
        self.departments.contains_key(&id)
    }
}

/// Department raw ids are digit strings; the wire uses them as integers.
fn department_number(key: &str) -> Option<u64> {
    key.parse().ok()
}

/// Computes every metric now; also returns when a windowed count next drops, so the engine
/// can push that change without waiting for another event.
pub(crate) fn compute(state: &ChatState, now: Instant) -> (Values, Option<Instant>) {
    let agents = state.agents();
    let mut values = Values::default();
    for d in state.departments() {
        if let Some(n) = department_number(&d.key) {
            values.departments.insert(n, Scope::default());
        }
    }
    // A pass under the lock rather than a copy: a copy would carry every retained chat's
    // log, on every state event.
    let next_expiry = state.read_channels(|channels| {
        values.computed =
            !channels.is_empty() || agents.iter().any(|a| a.status != AgentStatus::Offline);
        add_channels(&mut values, channels, now)
    });
    for a in &agents {
        let add = |scope: &mut Scope| match a.status {
            AgentStatus::Online => scope.online += 1,
            AgentStatus::Away => scope.away += 1,
            AgentStatus::Invisible => scope.invisible += 1,
            AgentStatus::Offline => {}
        };
        add(&mut values.account);
        for d in &a.departments {
            if let Some(scope) = department_number(d).and_then(|n| values.departments.get_mut(&n)) {
                add(scope);
            }
        }
    }
    (values, next_expiry)
}

/// Adds every channel to its scopes; returns when a windowed count next drops.
fn add_channels(values: &mut Values, channels: &[ChannelRecord], now: Instant) -> Option<Instant> {
    let mut next_expiry: Option<Instant> = None;
    let mut expires = |at: Instant| {
        for w in WINDOWS {
            let end = at + w;
            if end > now {
                next_expiry = Some(next_expiry.map_or(end, |e| e.min(end)));
            }
        }
    };
    for c in channels {
        values.account.add_channel(c, now);
        if let Some(scope) = c
            .department
            .as_deref()
            .and_then(department_number)
            .and_then(|d| values.departments.get_mut(&d))
        {
            scope.add_channel(c, now);
        }
        if let Some(left) = missed_at(c) {
            expires(left);
        }
        if let Some(at) = c.rated_at {
            expires(at);
        }
    }
    next_expiry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_round_and_are_null_when_empty() {
        let mut s = Stats::default();
        assert_eq!((s.avg(), s.max()), (None, None));
        s.add(Duration::from_secs(10));
        s.add(Duration::from_millis(15_900));
        assert_eq!((s.avg(), s.max()), (Some(13), Some(15)));
    }

    #[test]
    fn windows_only_for_windowed_metrics() {
        let scope = Scope {
            missed: [1, 2],
            ..Scope::default()
        };
        assert_eq!(
            scope.get(&Metric::MissedChats, Some(Window::Minutes60)),
            Some(2)
        );
        assert_eq!(scope.get(&Metric::MissedChats, None), None);
        assert_eq!(scope.get(&Metric::IncomingChats, None), Some(0));
    }
}
