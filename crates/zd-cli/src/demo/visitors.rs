//! Simulated visitors, driven through the emulator's control API with a seeded RNG.

use std::collections::HashMap;
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

/// Bot replies per channel (raw key), as the visitors see them, from the emulator's events.
#[derive(Debug, Default)]
pub(crate) struct Replies {
    counts: Mutex<HashMap<String, u64>>,
    version: Option<watch::Sender<u64>>,
}

impl Replies {
    fn count(&self, channel: &str) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(channel)
            .copied()
            .unwrap_or(0)
    }

    fn bump(&self) {
        if let Some(v) = &self.version {
            v.send_modify(|n| *n += 1);
        }
    }
}

/// Follows the emulator's state events and counts agent messages per channel.
pub(crate) fn watch_replies(control: &Control) -> Arc<Replies> {
    let (tx, _) = watch::channel(0);
    let replies = Arc::new(Replies {
        counts: Mutex::default(),
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
                        && let LogRecord::Message(m) = record.as_ref()
                        && matches!(m.from, Sender::Agent { .. })
                    {
                        *out.counts
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .entry(m.channel.clone())
                            .or_default() += 1;
                        out.bump();
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Missed events: recount from the state itself.
                    let fresh: HashMap<String, u64> = state
                        .channels()
                        .into_iter()
                        .map(|c| {
                            let n = c.logs.iter().filter(|l| matches!(l.as_ref(), LogRecord::Message(m) if matches!(m.from, Sender::Agent { .. }))).count();
                            (c.key, n as u64)
                        })
                        .collect();
                    *out.counts
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
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
    /// Department names to arrive in.
    pub(crate) departments: Vec<String>,
}

/// Public ids of the channels the visitors opened, for the summary.
pub(crate) type Channels = Arc<Mutex<Vec<String>>>;

/// Runs the visitors; returns when all have left. `stop` turns true when no new message
/// should start (visitors then wait for their pending reply, rate, and leave).
pub(crate) async fn run(
    control: Control,
    plan: Plan,
    stats: Arc<Stats>,
    replies: Arc<Replies>,
    channels: Channels,
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
            () = tokio::time::sleep_until(start + offset) => {}
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

struct Visitor {
    control: Control,
    stats: Arc<Stats>,
    replies: Arc<Replies>,
    channels: Channels,
    stop: watch::Receiver<bool>,
}

impl Visitor {
    async fn run(self, script: Script) {
        let arrival = Arrival {
            name: Some(script.name.clone()),
            department: script.department.clone(),
            ..Arrival::default()
        };
        let handle = match self.control.visitor_arrive(arrival) {
            Ok(h) => h,
            Err(error) => {
                tracing::warn!(%error, "a visitor could not arrive");
                return;
            }
        };
        Stats::add(&self.stats.arrived);
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(handle.channel_id.clone());
        let raw = self
            .control
            .state()
            .channels()
            .into_iter()
            .rev()
            .find(|c| {
                self.control
                    .state()
                    .visitor(&c.visitor)
                    .is_some_and(|v| v.display_name == handle.visitor_name)
            })
            .map(|c| c.key);
        let Some(raw) = raw else {
            tracing::warn!("the visitor's channel is not in the state");
            return;
        };
        for (line, pause) in script.lines.iter().zip(&script.pauses) {
            if *self.stop.borrow() {
                break;
            }
            tokio::time::sleep(*pause).await;
            let answered = self.say(&raw, &handle.channel_id, line, None).await;
            if answered && reply_for(line) == Reply::Flavors && !*self.stop.borrow() {
                let (label, _) = FLAVORS[script.flavor];
                self.say(&raw, &handle.channel_id, label, Some(label)).await;
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
        Stats::add(&self.stats.left);
    }

    /// Sends a line (or picks a quick reply by label) and waits for the bot's answer.
    async fn say(&self, raw: &str, channel_id: &str, text: &str, choose: Option<&str>) -> bool {
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
