//! Metrics feeds: one process holding many concurrent Real Time Chat feeds, ours (zd-metrics)
//! against a Node `ws` client, compared on memory per feed.

use std::time::Duration;

use serde_json::json;

use super::Ctx;
use super::emulator::{FEED_AGENTS, feed_token};
use super::http;
use super::results::{Better, Pair, Run, Workload, drive};

const OURS: &str = "zd-metrics (Rust)";
const PEER: &str = "Node ws feeds";

/// Whether the emulator serves the Real Time Chat API: its REST side answers under `/stream`.
fn probe(ctx: &Ctx<'_>) -> Result<(), String> {
    let auth = format!("Bearer {}", feed_token(0));
    let answer = http::request(
        ctx.emulator.addr,
        "GET",
        "/stream/chats",
        &[("Authorization", &auth)],
        None,
    )?;
    match answer.status {
        200 => Ok(()),
        status => Err(format!(
            "the emulator binary serves no Real Time Chat API: GET /stream/chats answered {status} ({})",
            answer.excerpt().trim()
        )),
    }
}

/// Runs the rounds and compares.
pub(crate) fn run(ctx: &Ctx<'_>) -> Workload {
    let plan = ctx.plan;
    let feeds = plan.metrics_feeds.min(FEED_AGENTS * 10);
    let mut w = Workload::new(
        "metrics_feeds",
        "Real Time Chat metrics feeds",
        json!({ "feeds": feeds, "metrics_per_feed": 3, "rounds": plan.rounds }),
    );
    w.notes.push(
        "Memory per feed is the growth of the process's resident set while it opened its feeds \
         (each subscribed to incoming, assigned and active chats), read by the driver from its \
         own /proc/self/status (Node: process.memoryUsage().rss) before and after; feeds are \
         spread 10 per agent, the per-agent cap, over 100 agents (1,000 is the account's cap). \
         The emulator runs with `--realtime-requests-per-minute off`: the documented 200 new \
         connections a minute would take five minutes to admit them; the connection caps stay."
            .to_owned(),
    );
    if let Err(reason) = probe(ctx) {
        w.skip(reason);
        return w;
    }
    let Some(node) = ctx.peers.node.as_ref() else {
        w.skip("the Node peer is not installed (see Peers)");
        return w;
    };
    let tokens: Vec<String> = (0..feeds.div_ceil(10)).map(feed_token).collect();
    let tokens = tokens.join(",");
    w.alternate(plan.rounds, &[OURS, PEER], |client, round| {
        // A run that starts beside the last one's connections would meet the account's
        // connection cap: it is not run, and says why.
        if let Err(e) = ctx
            .emulator
            .reset()
            .and_then(|()| ctx.emulator.await_no_feeds())
        {
            return Run::not_run(client, round, e);
        }
        let mut command = if client == OURS {
            let mut c = ctx.zd_bench();
            c.arg("metrics");
            c
        } else {
            node.command("metrics_feeds.js")
        };
        command
            .args(["--base", &ctx.emulator.base, "--tokens", &tokens])
            .args(["--feeds", &feeds.to_string(), "--hold-s", "2"]);
        drive(
            client,
            round,
            &mut command,
            Duration::from_secs(600),
            || Ok(()),
        )
        .expect_ops("feeds", feeds as u64)
    });
    let (ours, peer) = (w.runs_of(OURS), w.runs_of(PEER));
    let mut pair = Pair::new(OURS, PEER);
    let per_feed = |r: &Run| {
        let feeds = r.extra["feeds"].as_f64()?;
        let before = r.extra["rss_before_kib"].as_f64()?;
        let after = r.extra["rss_after_kib"].as_f64()?;
        (feeds > 0.0).then(|| (after - before).max(0.0) / feeds)
    };
    pair.compare(
        "memory per feed",
        "KiB",
        Better::Lower,
        Some(5.0),
        &ours,
        &peer,
        per_feed,
    );
    pair.compare(
        "peak memory",
        "KiB",
        Better::Lower,
        None,
        &ours,
        &peer,
        |r| Some(r.peak_rss_kib as f64),
    );
    pair.compare(
        "feed open p99",
        "µs",
        Better::Lower,
        None,
        &ours,
        &peer,
        |r| r.phase_num("feeds", "p99_us"),
    );
    pair.compare(
        "client CPU (work)",
        "s",
        Better::Lower,
        None,
        &ours,
        &peer,
        |r| Some(r.cpu_work_s),
    );
    w.pairs.push(pair);
    w
}
