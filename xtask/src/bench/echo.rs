//! Chat agent echo bot: N visitors x M messages answered by our bot (zd-agent) and by a Node
//! bot on `ws` written like Zendesk's official sample, against the same emulator.

use std::time::Duration;

use serde_json::json;

use super::Ctx;
use super::deadline::{self, Echo};
use super::emulator::BOT_TOKEN;
use super::results::{Better, Pair, Run, Workload, drive};

/// One of our echo bots: its label, its `zd-bench` arguments, and the note its metrics carry
/// in the table (which names only the peer). The bot without a note carries the targets.
struct OurBot {
    name: &'static str,
    args: &'static [&'static str],
    note: Option<&'static str>,
}

const OUR_BOTS: [OurBot; 3] = [
    // zd-agent's README loop: each echo's answer awaited before the next event.
    OurBot {
        name: "zd-agent (Rust)",
        args: &["echo"],
        note: None,
    },
    // The same bot answering like the peer: sends kept in flight instead of awaited one by one.
    OurBot {
        name: "zd-agent (Rust), answers in flight",
        args: &["echo", "--in-flight"],
        note: Some("answers in flight"),
    },
    // The same bot written by hand on tokio-tungstenite, without zd-agent: what the exchange
    // itself costs a Rust bot here, so the report shows how much of ours is zd-agent.
    OurBot {
        name: "bare tokio-tungstenite bot (floor)",
        args: &["echo-floor"],
        note: Some("floor: bare tokio-tungstenite, no zd-agent"),
    },
];
const PEER: &str = "Node ws sample bot";

/// Runs the rounds and compares.
pub(crate) fn run(ctx: &Ctx<'_>) -> Workload {
    let plan = ctx.plan;
    let expect = plan.echo_visitors * plan.echo_messages;
    let mut w = Workload::new(
        "chat_echo",
        "Chat agent echo bot",
        json!({
            "visitors": plan.echo_visitors,
            "messages_per_visitor": plan.echo_messages,
            "visitor_messages_per_second": plan.echo_rate,
            "rounds": plan.echo_rounds,
        }),
    );
    w.notes.push(format!(
        "Paced load: the visitors (a separate, unmeasured process) write {} stamped messages through the control API, taking the visitors in turn, one message per tick of a ticker at {}/s; \
         each message is sent once the previous one's POST has returned (a late tick is not made up, so a slow POST lowers the rate instead of bunching messages). \
         Each bot answers every visitor message with its echo. \
         The Node bot, like Zendesk's sample, sends each echo without \
         waiting for earlier answers and matches answers by request id; ours is the loop of zd-agent's README, which awaits \
         each echo's answer before taking the next event (events queue in the subscription meanwhile, and that wait counts in \
         its latency). The lines marked \"answers in flight\" run our bot written the peer's way instead (a FuturesUnordered \
         of sends). The lines marked \"floor\" run the same bot written by hand on tokio-tungstenite (zd-agent's socket \
         settings) and serde_json::Value, answering like the peer, with nothing of zd-agent (no keepalive, request timeouts, rate limit, \
         reconnect, routing or typed decoding): what the exchange itself costs a Rust bot on this machine. All bots subscribe with the same selection set (the official sample's: id, content, channel id, sender \
         type and name). Latency runs from the visitor's stamp, taken as its message is sent, to the bot receiving the acknowledgement of its echo. CPU per \
         message counts the bot process from its `ready` line (session started, online, subscribed) to its `done` line.",
        expect, plan.echo_rate
    ));
    let Some(node) = ctx.peers.node.as_ref() else {
        w.skip("the Node peer is not installed (see Peers)");
        return w;
    };
    let timeout = Duration::from_secs(30 + expect / u64::from(plan.echo_rate.max(1)) * 3);
    measure(
        &mut w,
        plan.echo_rounds,
        expect,
        || ctx.emulator.reset(),
        |client, round| {
            let expect_s = expect.to_string();
            let (name, mut command) = match client {
                Some(bot) => {
                    let mut c = ctx.zd_bench();
                    c.args(bot.args);
                    (bot.name, c)
                }
                None => (PEER, node.command("echo_bot.js")),
            };
            command.args([
                "--graphql-url",
                &ctx.emulator.graphql_url(),
                "--token",
                BOT_TOKEN,
                "--expect",
                &expect_s,
                "--timeout-s",
                &timeout.as_secs().to_string(),
            ]);
            drive(
                name,
                round,
                &mut command,
                timeout + Duration::from_secs(10),
                || visitors(ctx),
            )
        },
    );
    w
}

/// Runs the rounds (`reset` before each run, `run` starting one client's run, `None` for the
/// peer) and compares. A run whose reset failed is recorded as not run and the rounds go on,
/// as in the metrics workload: the comparisons are still made, so the targets read
/// "not measured" instead of vanishing from the report.
fn measure(
    w: &mut Workload,
    rounds: usize,
    expect: u64,
    mut reset: impl FnMut() -> Result<(), String>,
    mut run: impl FnMut(Option<&OurBot>, usize) -> Run,
) {
    let [readme_loop, in_flight, floor] = &OUR_BOTS;
    let clients = [Some(readme_loop), None, Some(in_flight), Some(floor)];
    w.alternate(rounds, &clients, |client, round| {
        let name = client.map_or(PEER, |bot| bot.name);
        match reset() {
            Err(e) => Run::not_run(name, round, format!("emulator reset failed: {e}")),
            // Every visitor message must be answered or counted as an error, whatever the
            // bot reports: one that stopped early is not a clean round.
            Ok(()) => run(client, round).expect_ops("echo", expect),
        }
    });
    let peer = w.runs_of(PEER);
    let pairs = OUR_BOTS
        .iter()
        .map(|bot| compare(bot, &w.runs_of(bot.name), &peer))
        .collect::<Vec<_>>();
    w.pairs.extend(pairs);
}

/// The ratios of one of our bots against the peer.
fn compare(bot: &OurBot, ours: &[&Run], peer: &[&Run]) -> Pair {
    let mut pair = Pair::new(bot.name, PEER);
    let target = |t: f64| bot.note.is_none().then_some(t);
    let metric = |m: &str| match bot.note {
        None => m.to_owned(),
        Some(note) => format!("{m} ({note})"),
    };
    let per_msg = |r: &Run| {
        let ops = r.phase_num("echo", "ops")?;
        (ops > 0.0).then(|| r.cpu_work_s * 1e6 / ops)
    };
    pair.compare(
        &metric("client CPU per message"),
        "µs",
        Better::Lower,
        target(5.0),
        ours,
        peer,
        per_msg,
    );
    pair.compare(
        &metric("echo latency p50"),
        "µs",
        Better::Lower,
        None,
        ours,
        peer,
        |r| r.phase_num("echo", "p50_us"),
    );
    pair.compare(
        &metric("echo latency p99"),
        "µs",
        Better::Lower,
        target(1.0),
        ours,
        peer,
        |r| r.phase_num("echo", "p99_us"),
    );
    pair.compare(
        &metric("peak memory"),
        "KiB",
        Better::Lower,
        None,
        ours,
        peer,
        |r| Some(r.peak_rss_kib as f64),
    );
    pair.compare(
        &metric("total client CPU"),
        "s",
        Better::Lower,
        None,
        ours,
        peer,
        |r| Some(r.cpu_total_s),
    );
    pair
}

/// How long the visitors' process may take: far more than the load lasts (seconds at the
/// plan's sizes), so only a hung one is killed.
const VISITORS_LIMIT: Duration = Duration::from_secs(600);

/// The visitor process for one run.
fn visitors(ctx: &Ctx<'_>) -> Result<(), String> {
    let plan = ctx.plan;
    let mut command = ctx.zd_bench();
    command
        .args(["visitors", "--base", &ctx.emulator.base])
        .args(["--visitors", &plan.echo_visitors.to_string()])
        .args(["--messages", &plan.echo_messages.to_string()])
        .args(["--rate", &plan.echo_rate.to_string()]);
    let out = deadline::run(&mut command, VISITORS_LIMIT, Echo::Quiet)
        .map_err(|e| format!("cannot run the visitors: {e}"))?;
    if out.success() {
        Ok(())
    } else {
        Err(format!(
            "visitors failed ({}): {}",
            out.describe(),
            out.stderr.trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::results::Verdict;

    #[test]
    fn a_failed_reset_leaves_the_targets_not_measured() {
        let mut w = Workload::new("chat_echo", "Chat agent echo bot", serde_json::Value::Null);
        measure(
            &mut w,
            2,
            10,
            || Err("connection refused".to_owned()),
            |_, _| unreachable!("no run after a failed reset"),
        );
        // Every planned run is there, failed, with the reason.
        assert_eq!(w.runs.len(), 2 * (OUR_BOTS.len() + 1));
        assert!(w.runs.iter().all(|r| !r.clean()));
        let error = w.runs[0].error.as_deref().unwrap_or_default();
        assert!(error.contains("connection refused"), "{error}");
        // The targets (those of the bot without a note) are listed, not measured.
        let targets: Vec<_> = w
            .pairs
            .iter()
            .flat_map(|p| &p.comparisons)
            .filter(|c| c.target.is_some())
            .map(|c| (c.metric.as_str(), c.verdict))
            .collect();
        assert_eq!(
            targets,
            [
                ("client CPU per message", Verdict::NotMeasured),
                ("echo latency p99", Verdict::NotMeasured),
            ]
        );
    }
}
