//! Sunshine REST: list a conversation through pagination, create users, post messages, with
//! our client (zd-sunshine) and the official `sunshine-conversations-client` for Python and
//! Node, at the same concurrency, against the same emulator.

use std::time::Duration;

use serde_json::{Value, json};

use super::Ctx;
use super::deadline::{self, Echo};
use super::http;
use super::peers::Runtime;
use super::results::{Better, Pair, Run, Workload, drive};

const OURS: &str = "zd-sunshine (Rust)";
const NODE: &str = "sunshine-conversations-client (Node)";
const PYTHON: &str = "sunshine-conversations-client (Python)";
/// How long seeding may take: far more than the plan's sizes need, so only a hung step is
/// killed.
const SEED_LIMIT: Duration = Duration::from_secs(600);

/// The Sunshine app the emulator serves, from `GET /_emulator/sunshine/account`.
fn account(ctx: &Ctx<'_>) -> Result<Value, String> {
    let answer = http::request(
        ctx.emulator.addr,
        "GET",
        "/_emulator/sunshine/account",
        &[],
        None,
    )?;
    if answer.status != 200 {
        return Err(format!(
            "the emulator binary serves no Sunshine Conversations service: \
             GET /_emulator/sunshine/account answered {} ({})",
            answer.status,
            answer.excerpt().trim()
        ));
    }
    let account = answer.json()?;
    for key in ["app_id", "key_id", "key_secret"] {
        if account[key].as_str().is_none() {
            return Err(format!(
                "GET /_emulator/sunshine/account has no `{key}`: {account}"
            ));
        }
    }
    Ok(account)
}

/// Runs the rounds and compares.
pub(crate) fn run(ctx: &Ctx<'_>) -> Workload {
    let plan = ctx.plan;
    let mut w = Workload::new(
        "sunshine_rest",
        "Sunshine Conversations REST",
        json!({
            "list_messages": plan.sunshine_list,
            "create_users": plan.sunshine_users,
            "post_messages": plan.sunshine_posts,
            "concurrency": plan.sunshine_concurrency,
            "rounds": plan.rounds,
        }),
    );
    w.notes.push(
        "Listing is sequential by nature (each page needs the previous cursor); messages page \
         backwards, newest page first, then `page[before]`, 100 to a page for every client (the \
         API's fixed size for messages). Users and messages are created with \
         the same number of requests in flight for every client (threads for the synchronous \
         Python client, promises for Node, futures on one thread for ours)."
            .to_owned(),
    );
    w.notes.push(
        "Python: `MessagesApi.list_messages(page=Page(...))` sends `page` as JSON, which the API \
         ignores, so its list phase goes through the same client's `param_serialize`/`call_api`/\
         `response_deserialize` with `page[before]`/`page[size]`. Node: the client keeps only the \
         first key of `page`, so it pages with `page[before]` at the service's default page size."
            .to_owned(),
    );
    let account = match account(ctx) {
        Ok(a) => a,
        Err(reason) => {
            w.skip(reason);
            return w;
        }
    };
    let mut clients: Vec<(&str, Option<&Runtime>, &str)> = vec![(OURS, None, "")];
    match &ctx.peers.node {
        Some(node) => clients.push((NODE, Some(node), "sunshine_driver.js")),
        None => w.skip("Node peer not installed: no Node comparison (see Peers)"),
    }
    match &ctx.peers.python {
        Some(python) => clients.push((PYTHON, Some(python), "sunshine_driver.py")),
        None => w.skip("Python peer not installed: no Python comparison (see Peers)"),
    }
    let target = |c: &mut std::process::Command| {
        c.args(["--base", &ctx.emulator.base]);
        for (flag, key) in [
            ("--app-id", "app_id"),
            ("--key-id", "key_id"),
            ("--key-secret", "key_secret"),
        ] {
            c.args([flag, account[key].as_str().unwrap_or_default()]);
        }
    };
    eprintln!(
        "xtask bench: seeding {} Sunshine messages ...",
        plan.sunshine_list
    );
    let mut seed = ctx.zd_bench();
    seed.arg("sunshine-seed");
    target(&mut seed);
    seed.args(["--messages", &plan.sunshine_list.to_string()]);
    seed.args([
        "--post-conversations",
        &(plan.rounds * clients.len()).to_string(),
    ]);
    let seeded = match deadline::run(&mut seed, SEED_LIMIT, Echo::Quiet) {
        Ok(out) if out.success() => out
            .stdout
            .lines()
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
            .unwrap_or(Value::Null),
        Ok(out) => {
            w.skip(format!(
                "seeding failed ({}): {}",
                out.describe(),
                out.stderr.trim()
            ));
            return w;
        }
        Err(e) => {
            w.skip(format!("cannot run the seeding step: {e}"));
            return w;
        }
    };
    let list = seeded["list_conversation"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let posts = seeded["post_conversations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_owned));
    let timeout = Duration::from_secs(600);
    measure(
        &mut w,
        &plan,
        &clients,
        posts,
        |(label, runtime, script), round, post| {
            let mut command = match runtime {
                None => {
                    let mut c = ctx.zd_bench();
                    c.arg("sunshine");
                    c
                }
                Some(r) => r.command(script),
            };
            target(&mut command);
            command
                .args(["--list-conversation", &list, "--post-conversation", post])
                .args(["--users", &plan.sunshine_users.to_string()])
                .args(["--posts", &plan.sunshine_posts.to_string()])
                .args(["--concurrency", &plan.sunshine_concurrency.to_string()])
                .args([
                    "--tag",
                    &format!("bench-{}-r{round}-{}", tag_of(label), std::process::id()),
                ]);
            drive(label, round, &mut command, timeout, || Ok(()))
        },
    );
    w
}

/// A client of the workload: its label, its runtime (none for ours) and its driver script.
type Client<'a> = (&'a str, Option<&'a Runtime>, &'a str);

/// Runs the rounds (`run` starts one client's run in one round, posting in the conversation
/// it is given) and compares. A client left without a seeded conversation of its own is
/// recorded as not run: a round that did not happen must count as a failed one, or a
/// workload cut short could still read "met".
fn measure<'a>(
    w: &mut Workload,
    plan: &super::plan::Plan,
    clients: &[Client<'a>],
    mut posts: impl Iterator<Item = String>,
    mut run: impl FnMut(Client<'a>, usize, &str) -> Run,
) {
    w.alternate(plan.rounds, clients, |client, round| match posts.next() {
        Some(post) => expect_phases(run(client, round, &post), plan),
        None => Run::not_run(
            client.0,
            round,
            "ran out of seeded conversations".to_owned(),
        ),
    });
    for (peer, target_tput) in [(NODE, 3.0), (PYTHON, 10.0)] {
        if !clients.iter().any(|(l, _, _)| *l == peer) {
            continue;
        }
        let (ours, theirs) = (w.runs_of(OURS), w.runs_of(peer));
        let mut pair = Pair::new(OURS, peer);
        for (phase, label) in [
            ("list", "list messages"),
            ("create_users", "create users"),
            ("post_messages", "post messages"),
        ] {
            pair.compare(
                &format!("{label} throughput"),
                "items/s",
                Better::Higher,
                Some(target_tput),
                &ours,
                &theirs,
                |r: &Run| r.throughput(phase),
            );
            pair.compare(
                &format!("{label} p99"),
                "µs",
                Better::Lower,
                None,
                &ours,
                &theirs,
                |r| r.phase_num(phase, "p99_us"),
            );
        }
        pair.compare(
            "peak memory",
            "KiB",
            Better::Lower,
            Some(1.0),
            &ours,
            &theirs,
            |r| Some(r.peak_rss_kib as f64),
        );
        pair.compare(
            "client CPU (work)",
            "s",
            Better::Lower,
            None,
            &ours,
            &theirs,
            |r| Some(r.cpu_work_s),
        );
        w.pairs.push(pair);
    }
}

/// What every client must account for: a listing that read fewer items than were seeded
/// counts the unread ones as errors (a client that stops paging early is not clean), and the
/// create and post phases must account for every request.
fn expect_phases(run: Run, plan: &super::plan::Plan) -> Run {
    run.count_shortfall("list", plan.sunshine_list)
        .expect_ops("create_users", plan.sunshine_users)
        .expect_ops("post_messages", plan.sunshine_posts)
}

fn tag_of(label: &str) -> &'static str {
    match label {
        OURS => "ours",
        NODE => "node",
        _ => "python",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::plan::Plan;
    use crate::bench::results::Verdict;

    /// A clean run of every phase at the plan's sizes, taking `secs` for each.
    fn clean_run(client: &str, round: usize, plan: &Plan, secs: f64) -> Run {
        let mut run = Run::not_run(client, round, String::new());
        run.error = None;
        run.exit = "exit status: 0".to_owned();
        run.phases = [
            ("list", plan.sunshine_list),
            ("create_users", plan.sunshine_users),
            ("post_messages", plan.sunshine_posts),
        ]
        .map(|(name, ops)| json!({"name": name, "ops": ops, "errors": 0, "elapsed_s": secs}))
        .to_vec();
        run
    }

    #[test]
    fn rounds_cut_short_by_missing_conversations_are_not_met() {
        let plan = Plan {
            rounds: 3,
            ..Plan::QUICK
        };
        let clients: [Client<'_>; 2] = [(OURS, None, ""), (NODE, None, "sunshine_driver.js")];
        // Conversations for the first round only; ours is 10 times faster every time.
        let posts = ["c1", "c2"].map(str::to_owned).into_iter();
        let mut w = Workload::new("sunshine_rest", "Sunshine", Value::Null);
        measure(&mut w, &plan, &clients, posts, |(label, _, _), round, _| {
            clean_run(label, round, &plan, if label == OURS { 1.0 } else { 10.0 })
        });
        // Every planned round is there, the ones that did not happen counted as failed.
        assert_eq!(w.runs.len(), 6);
        let tput = &w.pairs[0].comparisons[0];
        assert_eq!(tput.metric, "list messages throughput");
        assert_eq!(tput.met, Some(true), "{tput:?}");
        assert_eq!((tput.ours_rounds.clean, tput.ours_rounds.ran), (1, 3));
        assert_eq!(tput.verdict, Verdict::Incomplete, "{tput:?}");
    }
}
