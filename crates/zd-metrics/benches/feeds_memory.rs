//! Memory per connection with 1,000 concurrent feeds held by one process, and the
//! subscribe-to-first-update round trip of one feed.
//!
//! The server runs in a child process (this binary, re-executed with
//! `ZD_METRICS_BENCH_SERVER=1`), so the counting allocator of this process sees only the
//! client: 1,000 feeds, each with its socket, driver task, channels and a snapshot of three
//! series with known values. The figure printed is the live heap growth divided by 1,000.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::alloc::System;
use std::process::Stdio;
use std::time::Duration;

use criterion::Criterion;
use futures_util::{SinkExt, StreamExt};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use zd_metrics::{
    Feed, FeedEvent, LimitConfig, Limits, Metric, MetricsClient, Series, StaticToken, Window,
};
use zd_wire::realtime::{ClientFrame, Family, MetricValue, ServerFrame, Topic, Update, Windowed};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Resident set size of this process in KiB, from `/proc/self/status` (0 where there is none).
fn rss_kib() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

const FEEDS: usize = 1000;

fn main() {
    if std::env::var_os("ZD_METRICS_BENCH_SERVER").is_some() {
        server();
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mut child, base) = rt.block_on(spawn_server());
    let client = MetricsClient::builder(StaticToken::bearer("bench").unwrap())
        .base_url(base)
        .limits(rt.block_on(async { Limits::new(LimitConfig::new(None, 100_000, 100_000)) }))
        .build()
        .unwrap();

    let per_feed = rt.block_on(memory_per_feed(&client));
    println!(
        "feeds_memory: {FEEDS} concurrent feeds, {} bytes of live heap per feed ({:.1} KiB; target <= 64 KiB), {:.1} KiB of RSS growth per feed",
        per_feed.heap,
        per_feed.heap as f64 / 1024.0,
        per_feed.rss_kib as f64 / FEEDS as f64,
    );
    println!(
        "feeds_memory: per feed, connect {} B, subscribe x3 {} B, first values {} B",
        per_feed.steps[0] / FEEDS as i64,
        per_feed.steps[1] / FEEDS as i64,
        per_feed.steps[2] / FEEDS as i64,
    );

    let mut c = Criterion::default().configure_from_args();
    let feed = rt.block_on(client.connect()).unwrap();
    let handle = feed.handle();
    let series = Series::metric(Metric::ActiveChats);
    c.bench_function("feed/subscribe_to_value_round_trip", |b| {
        b.to_async(&rt).iter(|| {
            let handle = handle.clone();
            let series = series.clone();
            async move {
                handle.subscribe(series.clone()).await.unwrap();
                let mut snapshot = handle.snapshot();
                snapshot
                    .wait_for(|s| s.get(&series).is_some())
                    .await
                    .unwrap();
                handle.unsubscribe(series).await.unwrap();
            }
        });
    });
    drop(feed);
    c.final_summary();
    drop(rt);
    let _ = child.start_kill();
}

fn live_bytes(stats: &stats_alloc::Stats) -> i64 {
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64 + stats.bytes_reallocated as i64
}

async fn next_update(feed: &mut Feed) {
    loop {
        match feed.next().await.expect("feed ended") {
            FeedEvent::Update(_) => return,
            FeedEvent::Closed(e) => panic!("closed: {e}"),
            _ => {}
        }
    }
}

/// Opens a feed with three series and waits until all three values are known; adds the live
/// heap growth of each step (connect, subscribe, first values) to `steps`.
async fn open(client: &MetricsClient, steps: &mut [i64; 3]) -> Feed {
    let region = Region::new(GLOBAL);
    let mut feed = client.connect().await.unwrap();
    steps[0] += live_bytes(&region.change());
    let region = Region::new(GLOBAL);
    for series in [
        Series::metric(Metric::IncomingChats),
        Series::windowed(Metric::MissedChats, Window::Minutes30).department(5),
        Series::metric(Metric::AgentsOnline),
    ] {
        feed.subscribe(series).await.unwrap();
    }
    steps[1] += live_bytes(&region.change());
    let region = Region::new(GLOBAL);
    for _ in 0..3 {
        next_update(&mut feed).await;
    }
    steps[2] += live_bytes(&region.change());
    feed
}

struct PerFeed {
    heap: i64,
    rss_kib: i64,
    steps: [i64; 3],
}

async fn memory_per_feed(client: &MetricsClient) -> PerFeed {
    // Warm-up: one-time initialisation (TLS roots, runtime structures) is not per feed.
    drop(open(client, &mut [0; 3]).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut feeds = Vec::with_capacity(FEEDS);
    let mut steps = [0; 3];
    let rss_before = rss_kib();
    let region = Region::new(GLOBAL);
    for _ in 0..FEEDS {
        feeds.push(open(client, &mut steps).await);
    }
    let grown = live_bytes(&region.change());
    let rss_after = rss_kib();
    assert_eq!(client.open_feeds(), FEEDS);
    drop(feeds);
    PerFeed {
        heap: grown / FEEDS as i64,
        rss_kib: rss_after - rss_before,
        steps,
    }
}

async fn spawn_server() -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .env("ZD_METRICS_BENCH_SERVER", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await.unwrap();
    (child, format!("http://{}", line.trim()))
}

/// The child: a minimal streaming server answering every subscribe with a value.
fn server() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        // Exit when the parent goes away (its end of our stdin closes).
        std::thread::spawn(|| {
            let mut buf = [0u8; 1];
            let _ = std::io::Read::read(&mut std::io::stdin(), &mut buf);
            std::process::exit(0);
        });
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            socket.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let config = WebSocketConfig::default()
                    .read_buffer_size(4096)
                    .write_buffer_size(0);
                let Ok(mut ws) =
                    tokio_tungstenite::accept_async_with_config(socket, Some(config)).await
                else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    let Ok(ClientFrame::Subscription(sub)) = ClientFrame::decode(text.as_str())
                    else {
                        continue;
                    };
                    let Some(metric) = sub.topic.metric.clone() else {
                        continue;
                    };
                    let value = match sub.window {
                        Some(w) => MetricValue::Windowed(Windowed(vec![(w, Some(1))])),
                        None => MetricValue::Scalar(Some(1)),
                    };
                    let frame = ServerFrame::Update(Update {
                        topic: Topic::family(metric.family().unwrap_or(Family::Chats)),
                        data: vec![(metric, value)],
                        department_id: sub.department_id,
                        status_code: 200,
                    });
                    if ws
                        .send(Message::text(frame.encode().unwrap()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
}
