//! One frame of what the demo shows, computed from the emulator's chat state, the demo's
//! counters and, when the emulator serves it, the Real Time Chat feed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use zd_emulator::Control;
use zd_emulator::state::{AgentStatus, ChannelState};

use super::stats::{Stats, ms};

/// Per department.
#[derive(Debug, Clone, Default)]
pub(crate) struct DepartmentRow {
    pub(crate) name: String,
    pub(crate) queued: usize,
    pub(crate) active: usize,
    pub(crate) served: usize,
}

/// Everything one refresh shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Frame {
    pub(crate) elapsed: Duration,
    pub(crate) queued: usize,
    pub(crate) active: usize,
    pub(crate) served: usize,
    pub(crate) closed: usize,
    pub(crate) wait_avg: Option<Duration>,
    pub(crate) wait_max: Option<Duration>,
    pub(crate) rt_count: usize,
    pub(crate) rt_p50: Option<Duration>,
    pub(crate) rt_p99: Option<Duration>,
    pub(crate) agents: Vec<(String, AgentStatus)>,
    pub(crate) departments: Vec<DepartmentRow>,
    pub(crate) arrived: u64,
    pub(crate) left: u64,
    pub(crate) visitor_sent: u64,
    pub(crate) bot_received: u64,
    pub(crate) bot_sent: u64,
    pub(crate) visitor_saw: u64,
    pub(crate) faults_injected: u64,
    pub(crate) faults_survived: u64,
    pub(crate) reconnects: u64,
    pub(crate) restarts: u64,
    pub(crate) last_fault: Option<&'static str>,
    pub(crate) session: String,
    /// Values from the Real Time Chat feed (metric key, value), when connected.
    pub(crate) feed: Option<Vec<(String, Option<i64>)>>,
    /// Messages per second, oldest first.
    pub(crate) rate_history: Vec<u64>,
}

/// Builds frames; keeps the rate history between them.
#[derive(Debug)]
pub(crate) struct Viewer {
    pub(crate) control: Control,
    pub(crate) stats: Arc<Stats>,
    pub(crate) start: Instant,
    pub(crate) session: zd_agent::AgentSession,
    pub(crate) last_fault: Arc<std::sync::Mutex<Option<super::faults::Fault>>>,
    pub(crate) feed: Option<zd_metrics::SnapshotReceiver>,
    history: Vec<u64>,
    last_total: u64,
    last_at: Option<Instant>,
}

const HISTORY: usize = 120;

impl Viewer {
    pub(crate) fn new(
        control: Control,
        stats: Arc<Stats>,
        session: zd_agent::AgentSession,
        last_fault: Arc<std::sync::Mutex<Option<super::faults::Fault>>>,
        feed: Option<zd_metrics::SnapshotReceiver>,
    ) -> Self {
        Self {
            control,
            stats,
            start: Instant::now(),
            session,
            last_fault,
            feed,
            history: Vec::new(),
            last_total: 0,
            last_at: None,
        }
    }

    pub(crate) fn frame(&mut self) -> Frame {
        let now = Instant::now();
        let state = self.control.state();
        let names: BTreeMap<String, String> = state
            .departments()
            .into_iter()
            .map(|d| (d.key, d.name))
            .collect();
        let mut rows: BTreeMap<String, DepartmentRow> = names
            .values()
            .map(|n| {
                (
                    n.clone(),
                    DepartmentRow {
                        name: n.clone(),
                        ..DepartmentRow::default()
                    },
                )
            })
            .collect();
        let mut f = Frame::default();
        let mut waits = Vec::new();
        for c in state.channels() {
            let dept = c
                .department
                .as_ref()
                .and_then(|d| names.get(d))
                .cloned()
                .unwrap_or_else(|| "(none)".into());
            let row = rows.entry(dept.clone()).or_insert_with(|| DepartmentRow {
                name: dept,
                ..DepartmentRow::default()
            });
            let open = c.is_open();
            if c.served_at.is_some() {
                f.served += 1;
                row.served += 1;
            }
            let (place, wait) = place_of(open, c.arrived_at, c.queued_since, c.served_at, now);
            match place {
                Place::Queued => {
                    f.queued += 1;
                    row.queued += 1;
                }
                Place::Active => {
                    f.active += 1;
                    row.active += 1;
                }
                Place::Ended => {}
            }
            waits.extend(wait);
            if matches!(c.state, ChannelState::Closed) {
                f.closed += 1;
            }
        }
        if !waits.is_empty() {
            f.wait_avg = Some(waits.iter().sum::<Duration>() / waits.len() as u32);
            f.wait_max = waits.iter().max().copied();
        }
        f.departments = rows.into_values().collect();
        f.agents = state
            .agents()
            .into_iter()
            .map(|a| (a.display_name, a.status))
            .collect();
        let s = &self.stats;
        (f.rt_count, f.rt_p50, f.rt_p99) = s.round_trip_percentiles();
        f.arrived = Stats::get(&s.arrived);
        f.left = Stats::get(&s.left);
        f.visitor_sent = Stats::get(&s.visitor_sent);
        f.bot_received = s.bot_received_count();
        f.bot_sent = Stats::get(&s.bot_sent);
        f.visitor_saw = Stats::get(&s.visitor_saw);
        f.faults_injected = Stats::get(&s.faults_injected);
        f.faults_survived = Stats::get(&s.faults_survived);
        f.reconnects = Stats::get(&s.reconnects);
        f.restarts = Stats::get(&s.restarts);
        f.last_fault = self
            .last_fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map(super::faults::Fault::label);
        f.session = match self.session.state() {
            zd_agent::SessionState::Active => "active".into(),
            zd_agent::SessionState::Reconnecting { attempt } => format!("reconnecting ({attempt})"),
            other => format!("{other:?}").to_lowercase(),
        };
        f.feed = self.feed.as_ref().map(|rx| {
            rx.borrow()
                .iter()
                .filter(|(series, _)| series.department_id().is_none())
                .map(|(series, v)| (series.metric_key().key().to_owned(), v))
                .collect()
        });
        // Messages per second (both directions), one point per second.
        let total = f.visitor_sent + f.bot_sent;
        let due = self
            .last_at
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1));
        if due {
            if self.last_at.is_some() {
                self.history.push(total.saturating_sub(self.last_total));
                if self.history.len() > HISTORY {
                    self.history.remove(0);
                }
            }
            self.last_total = total;
            self.last_at = Some(now);
        }
        f.rate_history = self.history.clone();
        f.elapsed = now.duration_since(self.start);
        f
    }
}

/// One plain line.
/// Where a chat stands on the dashboard.
#[derive(Debug, PartialEq, Eq)]
enum Place {
    /// Open, its visitor waiting for an agent: never served yet, or back in the queue since
    /// its last agent left.
    Queued,
    /// Open and served.
    Active,
    Ended,
}

/// Where a chat stands and the wait it adds to the figures: a waiting chat's wait so far
/// (since it was last queued), otherwise how long its first serve took.
fn place_of(
    open: bool,
    arrived_at: Instant,
    queued_since: Option<Instant>,
    served_at: Option<Instant>,
    now: Instant,
) -> (Place, Option<Duration>) {
    let first_wait = served_at.map(|served| served.saturating_duration_since(arrived_at));
    match (open, queued_since, served_at) {
        (true, Some(queued), _) => (Place::Queued, Some(now.saturating_duration_since(queued))),
        (true, None, None) => (
            Place::Queued,
            Some(now.saturating_duration_since(arrived_at)),
        ),
        (true, None, Some(_)) => (Place::Active, first_wait),
        (false, _, _) => (Place::Ended, first_wait),
    }
}

pub(crate) fn plain_line(f: &Frame) -> String {
    let online = f
        .agents
        .iter()
        .filter(|(_, s)| *s == AgentStatus::Online)
        .count();
    let mut line = format!(
        "[{:>4}s] visitors {}/{} left | queue {} active {} served {} | msgs visitor->bot {}/{} bot->visitor {}/{} | wait avg {} | rt p50 {} p99 {} | agents online {} | bot {}",
        f.elapsed.as_secs(),
        f.arrived,
        f.left,
        f.queued,
        f.active,
        f.served,
        f.bot_received,
        f.visitor_sent,
        f.visitor_saw,
        f.bot_sent,
        ms(f.wait_avg),
        ms(f.rt_p50),
        ms(f.rt_p99),
        online,
        f.session,
    );
    if let Some(feed) = &f.feed {
        // The Real Time Chat feed's own figures, through zd-metrics.
        let value = |key: &str| {
            feed.iter()
                .find(|(k, _)| k == key)
                .and_then(|(_, v)| *v)
                .map_or_else(|| "-".to_owned(), |v| v.to_string())
        };
        line.push_str(&format!(
            " | feed incoming {} active {} online {}",
            value("incoming_chats"),
            value("active_chats"),
            value("agents_online")
        ));
    }
    if f.faults_injected > 0 {
        line.push_str(&format!(
            " | faults {}/{} survived",
            f.faults_survived, f.faults_injected
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_back_in_the_queue_is_queued_and_waits_from_its_return() {
        let arrived = Instant::now();
        let served = arrived + Duration::from_secs(10);
        let requeued = arrived + Duration::from_secs(1_200);
        let now = requeued + Duration::from_secs(3);
        assert_eq!(
            place_of(true, arrived, Some(requeued), Some(served), now),
            (Place::Queued, Some(Duration::from_secs(3)))
        );
        assert_eq!(
            place_of(true, arrived, None, Some(served), now),
            (Place::Active, Some(Duration::from_secs(10)))
        );
        assert_eq!(
            place_of(true, arrived, Some(arrived), None, now),
            (Place::Queued, Some(now - arrived))
        );
        assert_eq!(
            place_of(false, arrived, None, Some(served), now),
            (Place::Ended, Some(Duration::from_secs(10)))
        );
        assert_eq!(
            place_of(false, arrived, Some(arrived), None, now),
            (Place::Ended, None)
        );
    }
}
