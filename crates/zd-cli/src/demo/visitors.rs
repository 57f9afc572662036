//! Simulated visitors, driven through the emulator's control API with a seeded RNG.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::time::Instant;
use zd_emulator::Control;
use zd_emulator::state::{Arrival, EventKind, LogRecord, Rating, Sender};

use super::bot::{FLAVORS, Reply, reply_for};
use super::stats::Stats;

/// What visitors say; the bot answers each with one message.
const PHRASES: [&str; 8] = [
    "Hi there!",
    "Do you ship to Canada?",
    "What ice cream flavor do you have?",
    "button me",
    "Can you transfer me to someone else?",
    "Where is my order?",
    "Is there a discount code?",
    "Thanks, that helps",
];

const NAMES: [&str; 8] = [
    "Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances",
];

/// The longest a visitor waits for a reply before counting it unanswered.
const REPLY_WAIT: Duration = Duration::from_secs(15);

/// Bot replies per simulated channel (raw key), as the visitors see them, from the emulator's
/// events.
///
/// Replies are kept as sets of message ids, not counters: after the event feed lags, the
/// replies are read again from the state, and the events still buffered behind the lag are
/// already in that state. Their `StateEvent::seq` would say which, but the state does not
/// give the sequence number its snapshot was taken at, so instead a reply seen twice simply
/// counts once.
#[derive(Debug, Default)]
pub(crate) struct Replies {
    seen: Mutex<HashMap<String, HashSet<String>>>,
    version: Option<watch::Sender<u64>>,
}

impl Replies {
    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashSet<String>>> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn count(&self, channel: &str) -> u64 {
        self.seen().get(channel).map_or(0, |ids| ids.len() as u64)
    }

    /// Starts counting replies on a simulated channel (before its visitor says anything).
    fn track(&self, channel: &str) {
        self.seen().entry(channel.to_owned()).or_default();
    }

    /// Stops counting (the visitor left), so long runs do not keep every reply id.
    fn untrack(&self, channel: &str) {
        self.seen().remove(channel);
    }

    /// Notes replies on a tracked channel; true when one of them is new.
    fn note<'a>(&self, channel: &str, ids: impl IntoIterator<Item = &'a str>) -> bool {
        let mut seen = self.seen();
        let Some(known) = seen.get_mut(channel) else {
            return false;
        };
        let mut new = false;
        for id in ids {
            new |= known.insert(id.to_owned());
        }
        new
    }

    fn bump(&self) {
        if let Some(v) = &self.version {
            v.send_modify(|n| *n += 1);
        }
    }

    fn tracked(&self) -> Vec<String> {
        self.seen().keys().cloned().collect()
    }
}

fn agent_message(record: &LogRecord) -> Option<&str> {
    match record {
        LogRecord::Message(m) if matches!(m.from, Sender::Agent { .. }) => Some(&m.local_id),
        _ => None,
    }
}

/// Follows the emulator's state events and notes agent messages on the simulated channels.
pub(crate) fn watch_replies(control: &Control) -> Arc<Replies> {
    let (tx, _) = watch::channel(0);
    let replies = Arc::new(Replies {
        seen: Mutex::default(),
        version: Some(tx),
    });
    let mut events = control.state().subscribe();
    let state = Arc::clone(control.state());
    let out = Arc::clone(&replies);
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let EventKind::Log(record) = &event.kind
                        && let Some(id) = agent_message(record)
                        && out.note(record.channel(), [id])
                    {
                        out.bump();
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Missed events: read the simulated channels' replies from the state.
                    for channel in out.tracked() {
                        let Ok(logs) = state.logs(&channel) else {
                            continue;
                        };
                        out.note(&channel, logs.iter().filter_map(|l| agent_message(l)));
                    }
                    out.bump();
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    replies
}

/// The simulator's settings.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) visitors: u32,
    pub(crate) seed: u64,
    /// Arrivals spread over this long (None: one every 1.5 s until stopped).
    pub(crate) arrival_window: Option<Duration>,
    /// Public ids of the departments to arrive in, as transfers name them.
    pub(crate) departments: Vec<String>,
}

/// The most visitors one run simulates. The arrival times are drawn up front (so a seed gives
/// the same run) and every visitor is a task and a chat the emulator keeps until the end; more
/// to the point, the bot is one agent session, limited to 100 requests a second: a thousand
/// visitors in the default minute already keep it near that limit (replies slow to seconds),
/// and ten thousand make most of its replies fail.
pub(crate) const MAX_VISITORS: u32 = 1_000;

/// Public ids of the channels the simulated visitors opened: for the summary, and for the bot
/// to tell the simulator's visitors from anyone else chatting. Also the department each chat
/// is in, as far as the demo knows (where a visitor arrived, then where the bot moved it), so
/// a transfer moves a chat rather than naming the department it is in.
#[derive(Debug, Default)]
pub(crate) struct Channels {
    inner: Mutex<ChannelIds>,
}

#[derive(Debug, Default)]
struct ChannelIds {
    /// In arrival order.
    ordered: Vec<String>,
    set: HashSet<String>,
    /// Department public id by channel public id; any chat's, not only simulated ones.
    departments: HashMap<String, String>,
}

impl Channels {
    fn lock(&self) -> std::sync::MutexGuard<'_, ChannelIds> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a simulated visitor's channel, and the department (public id) it arrived in.
    pub(crate) fn add(&self, channel_id: &str, department: Option<&str>) {
        let mut ids = self.lock();
        if ids.set.insert(channel_id.to_owned()) {
            ids.ordered.push(channel_id.to_owned());
        }
        if let Some(department) = department {
            ids.departments
                .insert(channel_id.to_owned(), department.to_owned());
        }
    }

    /// The department (public id) chat `channel_id` is in, when known.
    pub(crate) fn department(&self, channel_id: &str) -> Option<String> {
        self.lock().departments.get(channel_id).cloned()
    }

    /// Records that chat `channel_id` was moved to `department` (a public id).
    pub(crate) fn moved(&self, channel_id: &str, department: &str) {
        self.lock()
            .departments
            .insert(channel_id.to_owned(), department.to_owned());
    }

    /// True when a simulated visitor opened `channel_id`.
    pub(crate) fn contains(&self, channel_id: &str) -> bool {
        self.lock().set.contains(channel_id)
    }

    /// Every simulated channel, in arrival order.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.lock().ordered.clone()
    }
}

/// Runs the visitors; returns when all have left. `stop` turns true when no new message
/// should start (visitors then wait for their pending reply, rate, and leave).
pub(crate) async fn run(
    control: Control,
    plan: Plan,
    stats: Arc<Stats>,
    replies: Arc<Replies>,
    channels: Arc<Channels>,
    stop: watch::Receiver<bool>,
) {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let start = Instant::now();
    let mut offsets: Vec<Duration> = (0..plan.visitors)
        .map(|i| match plan.arrival_window {
            Some(w) => w.mul_f64(rng.random_range(0.0..1.0)),
            None => Duration::from_millis(1500 * u64::from(i)),
        })
        .collect();
    offsets.sort_unstable();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, offset) in offsets.into_iter().enumerate() {
        let mut stop_wait = stop.clone();
        tokio::select! {
            // Not `sleep_until(start + offset)`: that sum panics past the clock's range,
            // where `sleep` waits for ever. `--duration` is bounded; this stays safe anyway.
            () = tokio::time::sleep(offset.saturating_sub(start.elapsed())) => {}
            _ = stop_wait.wait_for(|s| *s) => break,
        }
        let script = Script::draw(&mut rng, i, &plan.departments);
        let visitor = Visitor {
            control: control.clone(),
            stats: Arc::clone(&stats),
            replies: Arc::clone(&replies),
            channels: Arc::clone(&channels),
            stop: stop.clone(),
        };
        tasks.spawn(visitor.run(script));
    }
    while tasks.join_next().await.is_some() {}
}

/// One visitor's conversation, drawn up front so a seed gives the same run.
#[derive(Debug, Clone)]
struct Script {
    name: String,
    department: Option<String>,
    lines: Vec<&'static str>,
    flavor: usize,
    pauses: Vec<Duration>,
    rating: Option<Rating>,
}

impl Script {
    fn draw(rng: &mut StdRng, index: usize, departments: &[String]) -> Self {
        let count = rng.random_range(2..=5);
        let lines: Vec<&'static str> = (0..count)
            .map(|_| PHRASES[rng.random_range(0..PHRASES.len())])
            .collect();
        let pauses = (0..=count)
            .map(|_| Duration::from_millis(rng.random_range(200..1200)))
            .collect();
        let department = (!departments.is_empty())
            .then(|| departments[rng.random_range(0..departments.len())].clone());
        let rating = match rng.random_range(0..10) {
            0..=5 => Some(Rating::Good),
            6..=7 => Some(Rating::Bad),
            _ => None,
        };
        Self {
            name: format!("{} #{}", NAMES[index % NAMES.len()], index + 1),
            department,
            lines,
            flavor: rng.random_range(0..FLAVORS.len()),
            pauses,
            rating,
        }
    }
}

/// A simulated visitor's channel, by raw key (as the state events name it) and public id (as
/// the control API and the bot name it).
struct Handle {
    raw: String,
    channel_id: String,
}

struct Visitor {
    control: Control,
    stats: Arc<Stats>,
    replies: Arc<Replies>,
    channels: Arc<Channels>,
    stop: watch::Receiver<bool>,
}

impl Visitor {
    async fn run(self, script: Script) {
        let arrival = Arrival {
            name: Some(script.name.clone()),
            department: script.department.clone(),
            ..Arrival::default()
        };
        // Through the state rather than `Control::visitor_arrive` (which does the same and
        // gives only the public id): the raw key comes back here, and the public id is one
        // indexed lookup away, so no arrival has to scan (and copy) every channel.
        let state = self.control.state();
        let raw = match state.visitor_arrive(arrival) {
            Ok(channel) => channel.key,
            Err(error) => {
                tracing::warn!(%error, "a visitor could not arrive");
                return;
            }
        };
        let channel_id = match state.transcript(&raw) {
            Ok(t) => t.channel_id,
            Err(error) => {
                tracing::warn!(%error, "the visitor's channel is not in the state");
                return;
            }
        };
        Stats::add(&self.stats.arrived);
        // Both before the first message: the bot must know the channel is simulated when that
        // message reaches it, and the reply must be counted.
        self.replies.track(&raw);
        self.channels.add(&channel_id, script.department.as_deref());
        let handle = Handle { raw, channel_id };
        for (line, pause) in script.lines.iter().zip(&script.pauses) {
            if *self.stop.borrow() {
                break;
            }
            tokio::time::sleep(*pause).await;
            let answered = self.say(&handle, line, None).await;
            if answered && reply_for(line) == Reply::Flavors && !*self.stop.borrow() {
                let (label, _) = FLAVORS[script.flavor];
                self.say(&handle, label, Some(label)).await;
            }
        }
        if let Some(rating) = script.rating
            && let Err(error) = self.control.visitor_rate(&handle.channel_id, rating)
        {
            tracing::debug!(%error, "rating failed");
        }
        if let Err(error) = self.control.visitor_leave(&handle.channel_id) {
            tracing::debug!(%error, "leaving failed");
        }
        self.replies.untrack(&handle.raw);
        Stats::add(&self.stats.left);
    }

    /// Sends a line (or picks a quick reply by label) and waits for the bot's answer.
    async fn say(&self, handle: &Handle, text: &str, choose: Option<&str>) -> bool {
        let (raw, channel_id) = (handle.raw.as_str(), handle.channel_id.as_str());
        let mut version = self.replies.version.as_ref().map(watch::Sender::subscribe);
        let before = self.replies.count(raw);
        let started = Instant::now();
        let sent = match choose {
            Some(label) => self.control.visitor_choose(channel_id, label).map(|_| ()),
            None => self.control.visitor_message(channel_id, text).map(|_| ()),
        };
        if let Err(error) = sent {
            tracing::warn!(%error, "a visitor message was refused");
            return false;
        }
        Stats::add(&self.stats.visitor_sent);
        let Some(version) = version.as_mut() else {
            return false;
        };
        let waited = tokio::time::timeout(REPLY_WAIT, async {
            loop {
                if self.replies.count(raw) > before {
                    return;
                }
                if version.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        if waited.is_ok() && self.replies.count(raw) > before {
            self.stats.round_trip(started.elapsed());
            Stats::add(&self.stats.visitor_saw);
            true
        } else {
            Stats::add(&self.stats.unanswered);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_replayed_after_a_resync_counts_once() {
        let replies = Replies::default();
        replies.track("c1");
        assert!(replies.note("c1", ["r1"]));
        // The feed lagged: the state already holds r2, and the event for r2 is still buffered
        // behind the lag, so it arrives after the resync.
        replies.note("c1", ["r1", "r2"]);
        assert!(!replies.note("c1", ["r2"]));
        assert_eq!(replies.count("c1"), 2);
    }

    #[test]
    fn only_simulated_channels_are_counted() {
        let replies = Replies::default();
        replies.track("c1");
        assert!(!replies.note("browser", ["r1"]));
        assert_eq!(replies.count("browser"), 0);
        assert_eq!(replies.tracked(), vec!["c1".to_owned()]);
        replies.untrack("c1");
        assert!(replies.tracked().is_empty());
    }

    #[test]
    fn channels_keep_arrival_order_and_answer_membership() {
        let channels = Channels::default();
        channels.add("b", None);
        channels.add("a", Some("d1"));
        channels.add("b", None);
        assert_eq!(channels.ids(), vec!["b".to_owned(), "a".to_owned()]);
        assert!(channels.contains("a"));
        assert!(!channels.contains("browser"));
    }

    #[test]
    fn channels_know_the_department_a_chat_arrived_in_and_was_moved_to() {
        let channels = Channels::default();
        channels.add("a", Some("d1"));
        channels.add("b", None);
        assert_eq!(channels.department("a").as_deref(), Some("d1"));
        assert_eq!(channels.department("b"), None);
        channels.moved("a", "d2");
        channels.moved("browser", "d1");
        assert_eq!(channels.department("a").as_deref(), Some("d2"));
        assert_eq!(channels.department("browser").as_deref(), Some("d1"));
        // Moving a chat does not make it a simulated one.
        assert!(!channels.contains("browser"));
    }
}
