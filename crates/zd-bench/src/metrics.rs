//! The metrics workload on our side: one process holding many `zd-metrics` feeds, each
//! subscribed to a few account-wide metrics and reading its updates, as a dashboard would.
//!
//! Memory per feed is what the process gained while building its clients and opening the
//! feeds, read from `/proc/self/status` before and after (the harness also records the peak).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use zd_metrics::{LimitConfig, Limits, Metric, MetricsClient, Series, StaticToken};

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
                held.push(tokio::spawn(async move {
                    let mut feed = feed;
                    let mut events = 0_u64;
                    while feed.next().await.is_some() {
                        events += 1;
                    }
                    events
                }));
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
    let ops = samples.len() as u64;
    line::done(
        &[Phase {
            name: "feeds",
            ops,
            errors,
            elapsed_s,
            latency: samples.summary(),
            first_error,
        }],
        &json!({ "feeds": ops, "rss_before_kib": rss_before, "rss_after_kib": rss_after }),
    );
    std::process::exit(0);
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
