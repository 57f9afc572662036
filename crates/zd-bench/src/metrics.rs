//! The metrics workload on our side: one process holding many `zd-metrics` feeds, each
//! subscribed to a few account-wide metrics and reading its updates, as a dashboard would.
//!
//! Memory per feed is what the process gained while building its clients and opening the
//! feeds, read from `/proc/self/status` before and after (the harness also records the peak).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use serde_json::json;
use zd_metrics::{FeedEvent, LimitConfig, Limits, Metric, MetricsClient, Series, StaticToken};

use crate::latency::Samples;
use crate::line::{self, Phase};

/// What the feeds need.
#[derive(Debug, clap::Args)]
pub(crate) struct MetricsArgs {
    /// Emulator base URL; feeds open `{base}/stream`.
    #[arg(long)]
    base: String,
    /// Agent access tokens, comma-separated; feeds are spread 10 per agent.
    #[arg(long, value_delimiter = ',')]
    tokens: Vec<String>,
    /// Feeds to hold.
    #[arg(long)]
    feeds: usize,
    /// Seconds to hold them open once all are subscribed.
    #[arg(long, default_value_t = 3)]
    hold_s: u64,
}

const METRICS: [Metric; 3] = [
    Metric::IncomingChats,
    Metric::AssignedChats,
    Metric::ActiveChats,
];

/// Opens the feeds, holds them, prints the `done` line.
pub(crate) async fn run(args: MetricsArgs) -> Result<(), String> {
    if args.tokens.is_empty() {
        return Err("no agent tokens".to_owned());
    }
    // The emulator enforces the account's connection budget; the harness spaces runs for it.
    let limits = Limits::new(LimitConfig::new(None, args.feeds.max(1), 10));
    // What the process sets up once, whatever it holds (the TLS roots, the runtime's parts),
    // happens before the baseline, as the peer loads its `ws` module before its own.
    drop(client(&args.base, "warm-up", &limits)?);
    // The clients are counted: a dashboard needs one per agent to hold its feeds, where the
    // peer needs nothing but its tokens.
    line::ready();
    let rss_before = rss_kib();
    let clients = args
        .tokens
        .iter()
        .map(|t| client(&args.base, t, &limits))
        .collect::<Result<Vec<_>, String>>()?;
    let start = Instant::now();
    let mut samples = Samples::default();
    let mut errors = 0_u64;
    let mut first_error = None;
    let mut held = Vec::with_capacity(args.feeds);
    let dead = Arc::new(Dead::default());
    for i in 0..args.feeds {
        let client = &clients[(i / 10) % clients.len()];
        let opened = Instant::now();
        let feed = async {
            let feed = client.connect().await?;
            for metric in METRICS {
                feed.subscribe(Series::metric(metric)).await?;
            }
            Ok::<_, zd_metrics::Error>(feed)
        }
        .await;
        match feed {
            Ok(feed) => {
                samples.push(opened.elapsed());
                held.push(tokio::spawn(watch(feed, Arc::clone(&dead))));
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    let rss_after = rss_kib();
    tokio::time::sleep(Duration::from_secs(args.hold_s)).await;
    // Feeds refused or ended by now are errors, not held feeds: memory per feed is never
    // divided over dead ones (the Node peer counts its own the same way).
    let (died, died_error) = dead.read();
    let ops = (samples.len() as u64).saturating_sub(died);
    if first_error.is_none() {
        first_error = died_error;
    }
    line::done(
        &[Phase {
            name: "feeds",
            ops,
            errors: errors + died,
            elapsed_s,
            latency: samples.summary(),
            first_error,
        }],
        &json!({ "feeds": ops, "rss_before_kib": rss_before, "rss_after_kib": rss_after }),
    );
    std::process::exit(0);
}

/// The feeds that died while held, shared by their reading tasks.
#[derive(Debug, Default)]
struct Dead {
    count: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Dead {
    fn record(&self, why: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(why);
        }
    }

    fn read(&self) -> (u64, Option<String>) {
        let first = self.first_error.lock().ok().and_then(|f| f.clone());
        (self.count.load(Ordering::Relaxed), first)
    }
}

/// Reads a held feed's events until it ends; the first refusal (a status frame),
/// lost connection or end marks it dead, once.
async fn watch(mut feed: impl Stream<Item = FeedEvent> + Unpin, dead: Arc<Dead>) {
    while let Some(event) = feed.next().await {
        let why = match event {
            FeedEvent::Rejected(e) => format!("feed refused a subscription: {e}"),
            FeedEvent::Reconnecting { error, .. } => format!("feed lost its connection: {error}"),
            FeedEvent::Closed(e) => format!("feed closed: {e}"),
            _ => continue,
        };
        dead.record(why);
        // Dead now; keep draining so the feed is held as before.
        while feed.next().await.is_some() {}
        return;
    }
    dead.record("feed ended".to_owned());
}

/// A client acting with `token` on the emulator at `base`.
fn client(base: &str, token: &str, limits: &Limits) -> Result<MetricsClient, String> {
    let token = StaticToken::bearer(token.to_owned()).map_err(|e| format!("token: {e}"))?;
    MetricsClient::builder(token)
        .base_url(base.to_owned())
        .limits(limits.clone())
        .build()
        .map_err(|e| format!("metrics client: {e}"))
}

/// Resident set size of this process, from `/proc/self/status` (0 where there is none).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `zd_metrics::Error` to put in events (a base URL the builder refuses).
    fn an_error() -> zd_metrics::Error {
        let token = StaticToken::bearer("t".to_owned()).unwrap();
        MetricsClient::builder(token)
            .base_url("not a url".to_owned())
            .build()
            .err()
            .unwrap()
    }

    async fn watched(events: Vec<FeedEvent>, then_hold: bool) -> (u64, Option<String>) {
        let dead = Arc::new(Dead::default());
        let stream = futures_util::stream::iter(events);
        let task = if then_hold {
            let feed = Box::pin(stream.chain(futures_util::stream::pending()));
            tokio::spawn(watch(feed, Arc::clone(&dead)))
        } else {
            tokio::spawn(watch(Box::pin(stream), Arc::clone(&dead)))
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        task.abort();
        dead.read()
    }

    #[tokio::test]
    async fn refused_lost_closed_and_ended_feeds_are_counted_dead_once() {
        // A live feed with a lag in it is held.
        assert_eq!(watched(vec![FeedEvent::Lagged(1)], true).await.0, 0);
        // Refused, lost, closed, ended: each is one dead feed, however many events follow.
        let refused = vec![
            FeedEvent::Rejected(an_error()),
            FeedEvent::Rejected(an_error()),
        ];
        let (n, why) = watched(refused, true).await;
        assert_eq!(n, 1);
        assert!(why.is_some_and(|w| w.contains("refused")));
        let lost = vec![FeedEvent::Reconnecting {
            attempt: 1,
            delay: Duration::from_secs(1),
            error: an_error(),
        }];
        assert_eq!(watched(lost, true).await.0, 1);
        let closed = vec![FeedEvent::Closed(an_error())];
        assert_eq!(watched(closed, false).await.0, 1);
        assert_eq!(watched(vec![FeedEvent::Lagged(1)], false).await.0, 1);
    }
}
