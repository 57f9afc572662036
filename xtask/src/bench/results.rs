//! What a workload produces: every measured run, and the comparisons of our client with each
//! peer (medians over the rounds, ratio per pair).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::proc::{CpuSource, Measured, Monitored};

/// One process run of one client.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Run {
    /// Which client (`ours`, or the peer's label).
    pub(crate) client: String,
    /// Round number, from 0.
    pub(crate) round: usize,
    /// CPU seconds from spawn to the `done` line (to the exit when there is none).
    pub(crate) cpu_total_s: f64,
    /// CPU seconds from the `ready` line to the `done` line.
    pub(crate) cpu_work_s: f64,
    /// Where the CPU figures come from: the process CPU clock, or `/proc/<pid>/stat` ticks
    /// (10 ms steps) where the clock could not be read at both ends.
    pub(crate) cpu_source: CpuSource,
    /// Peak RSS, KiB.
    pub(crate) peak_rss_kib: u64,
    /// Wall seconds, spawn to exit.
    pub(crate) wall_s: f64,
    /// Exit status.
    pub(crate) exit: String,
    /// The driver's phases.
    pub(crate) phases: Vec<Value>,
    /// The driver's extra facts.
    pub(crate) extra: Value,
    /// Why the run produced no result, if it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// Operations each phase must account for (as `ops + errors`), whatever the driver
    /// reports: a run that accounts for fewer stopped short and is not clean.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) expected: BTreeMap<String, u64>,
}

impl Run {
    /// A phase by name.
    pub(crate) fn phase(&self, name: &str) -> Option<&Value> {
        self.phases.iter().find(|p| p["name"] == name)
    }

    /// A number of a phase.
    pub(crate) fn phase_num(&self, name: &str, key: &str) -> Option<f64> {
        self.phase(name)?.get(key)?.as_f64()
    }

    /// Whether the run finished, every phase of it had no errors, and every phase with an
    /// expected count accounted for all of it: only such runs are compared, so a round whose
    /// failed requests left the latency samples (a shorter tail), whose failed feeds left the
    /// count, or whose driver stopped early without saying so cannot read as a good one.
    pub(crate) fn clean(&self) -> bool {
        self.error.is_none()
            && self
                .phases
                .iter()
                .all(|p| p["errors"].as_u64().unwrap_or(1) == 0)
            && self.short_phases().is_empty()
    }

    /// Records that phase `name` must account for `count` operations (see [`Run::clean`]).
    pub(crate) fn expect_ops(mut self, name: &str, count: u64) -> Self {
        self.expected.insert(name.to_owned(), count);
        self
    }

    /// The phases that accounted for fewer operations (`ops + errors`) than expected, a
    /// missing phase as 0: `(name, accounted, expected)`. Nothing for a run that did not
    /// finish (its error says why).
    pub(crate) fn short_phases(&self) -> Vec<(String, u64, u64)> {
        if self.error.is_some() {
            return Vec::new();
        }
        self.expected
            .iter()
            .filter_map(|(name, &want)| {
                let got = self.phase(name).map_or(0, |p| {
                    let n = |k: &str| p[k].as_u64().unwrap_or(0);
                    n("ops").saturating_add(n("errors"))
                });
                (got < want).then(|| (name.clone(), got, want))
            })
            .collect()
    }

    /// Counts what phase `name` left undone as errors: its errors become at least
    /// `expected - ops` (a listing that stopped paging early read fewer items than exist,
    /// whatever the driver reported). Also records the expectation.
    pub(crate) fn count_shortfall(mut self, name: &str, expected: u64) -> Self {
        if let Some(phase) = self.phases.iter_mut().find(|p| p["name"] == name) {
            let ops = phase["ops"].as_u64().unwrap_or(0);
            let errors = phase["errors"].as_u64().unwrap_or(0);
            let missing = expected.saturating_sub(ops);
            if missing > errors {
                phase["errors"] = Value::from(missing);
                if phase.get("first_error").is_none_or(Value::is_null) {
                    phase["first_error"] =
                        Value::from(format!("read {ops} of the {expected} expected"));
                }
            }
        }
        self.expect_ops(name, expected)
    }

    /// The run's terminal line: its figures, and ERROR with why when it is not clean (did not
    /// finish, a phase with errors, a phase short of its expected count), as the report will
    /// count it. Made once the expectations are attached, so a round that stopped short says
    /// so where it is watched.
    pub(crate) fn line(&self) -> String {
        let mut why = Vec::new();
        if let Some(e) = &self.error {
            why.push(e.clone());
        }
        for p in &self.phases {
            let errors = p["errors"].as_u64();
            if errors != Some(0) {
                let first = p["first_error"].as_str().unwrap_or("no cause given");
                let count = errors.map_or("an unknown number of".to_owned(), |n| n.to_string());
                let name = p["name"].as_str().unwrap_or("a phase");
                why.push(format!("{name}: {count} errors ({first})"));
            }
        }
        for (name, got, want) in self.short_phases() {
            why.push(format!("{name}: {got} of {want} accounted for"));
        }
        let verdict = if why.is_empty() {
            String::new()
        } else {
            format!(" ERROR {}", why.join("; "))
        };
        format!(
            "xtask bench:   {:<28} round {}: cpu {:.2} s (work {:.2} s), peak {} KiB, {:.1} s{verdict}",
            self.client,
            self.round,
            self.cpu_total_s,
            self.cpu_work_s,
            self.peak_rss_kib,
            self.wall_s,
        )
    }

    /// Prints [`Run::line`] and gives the run back.
    pub(crate) fn told(self) -> Self {
        eprintln!("{}", self.line());
        self
    }

    /// `ops / elapsed_s` of a phase (compared only for clean runs: see [`Run::clean`]).
    pub(crate) fn throughput(&self, name: &str) -> Option<f64> {
        let phase = self.phase(name)?;
        let ops = phase["ops"].as_f64()?;
        let secs = phase["elapsed_s"].as_f64()?;
        (secs > 0.0 && ops > 0.0).then(|| ops / secs)
    }

    /// A run that did not happen, and why.
    pub(crate) fn not_run(client: &str, round: usize, error: String) -> Self {
        Self {
            client: client.to_owned(),
            round,
            cpu_total_s: 0.0,
            cpu_work_s: 0.0,
            cpu_source: CpuSource::Clock,
            peak_rss_kib: 0,
            wall_s: 0.0,
            exit: "not run".to_owned(),
            phases: Vec::new(),
            extra: Value::Null,
            error: Some(error),
            expected: BTreeMap::new(),
        }
    }
}

/// Spawns a driver, waits for `ready`, runs `load` (the unmeasured side of the workload, if
/// any), then waits for the driver to finish and records the run.
pub(crate) fn drive(
    client: &str,
    round: usize,
    command: &mut Command,
    timeout: Duration,
    load: impl FnOnce() -> Result<(), String>,
) -> Run {
    let mut monitored = match Monitored::spawn(command) {
        Ok(m) => m,
        Err(e) => return Run::not_run(client, round, e),
    };
    let ready = monitored.wait_ready(Duration::from_secs(60));
    let load_result = ready.clone().and_then(|()| load());
    let measured: Measured = monitored.finish(if load_result.is_ok() {
        timeout
    } else {
        Duration::ZERO
    });
    let error = run_error(&ready, &load_result, &measured);
    let done = measured.done.unwrap_or(Value::Null);
    Run {
        client: client.to_owned(),
        round,
        cpu_total_s: measured.cpu_total_s,
        cpu_work_s: measured.cpu_work_s,
        cpu_source: measured.cpu_source,
        peak_rss_kib: measured.peak_rss_kib,
        wall_s: measured.wall_s,
        exit: measured.exit,
        phases: done["phases"].as_array().cloned().unwrap_or_default(),
        extra: done["extra"].clone(),
        error,
        expected: BTreeMap::new(),
    }
}

/// Why a driver's run is not a result, if it is not: not ready, its load failed, no `done`
/// line, or a `done` line followed by a kill (at the timeout, or for not exiting soon after)
/// or a non-zero exit: a driver that failed on its way out is not a clean round either.
fn run_error(
    ready: &Result<(), String>,
    load: &Result<(), String>,
    measured: &Measured,
) -> Option<String> {
    let stderr = measured.stderr_tail.trim();
    match (ready, load, &measured.done) {
        (Err(e), _, _) => Some(format!("{e}; stderr: {stderr}")),
        (Ok(()), Err(e), _) => Some(format!("load: {e}")),
        (Ok(()), Ok(()), None) => Some(format!(
            "no result line ({}); stderr: {stderr}",
            measured.exit
        )),
        (Ok(()), Ok(()), Some(_)) if measured.killed || !measured.exited_ok => Some(format!(
            "did not exit cleanly after its `done` line ({}); stderr: {stderr}",
            measured.exit
        )),
        (Ok(()), Ok(()), Some(_)) => None,
    }
}

/// Which direction is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Better {
    /// Less is better (CPU, latency, memory): advantage = peer / ours.
    Lower,
    /// More is better (throughput): advantage = ours / peer.
    Higher,
}

/// One metric compared between our client and a peer.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Comparison {
    /// What is compared.
    pub(crate) metric: String,
    /// Its unit.
    pub(crate) unit: &'static str,
    /// Better direction.
    pub(crate) better: Better,
    /// Our median.
    pub(crate) ours: Option<f64>,
    /// The peer's median.
    pub(crate) peer: Option<f64>,
    /// How many times better we are (> 1 means ahead), when both sides have a value.
    pub(crate) advantage: Option<f64>,
    /// The advantage the issue asks for, if any.
    pub(crate) target: Option<f64>,
    /// Whether the medians meet the target (a target of 1, "better", needs strictly better;
    /// a tie is not met). See `verdict` for what the report may claim.
    pub(crate) met: Option<bool>,
    /// How many of our runs were clean, of how many ran.
    pub(crate) ours_rounds: Rounds,
    /// How many of the peer's runs were clean, of how many ran.
    pub(crate) peer_rounds: Rounds,
    /// What the report claims, here for readers of report.json too: `met` alone says only that
    /// the medians meet the target, failed rounds or not.
    pub(crate) verdict: Verdict,
}

/// Clean runs of one side, out of the runs it had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Rounds {
    /// Runs that were clean (see [`Run::clean`]): the medians are over these.
    pub(crate) clean: usize,
    /// Runs in all.
    pub(crate) ran: usize,
}

impl Rounds {
    fn of(runs: &[&Run]) -> Self {
        Self {
            clean: runs.iter().filter(|r| r.clean()).count(),
            ran: runs.len(),
        }
    }

    /// Whether every run was clean.
    pub(crate) fn complete(self) -> bool {
        self.clean == self.ran
    }
}

/// What a comparison may claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Verdict {
    /// The target is met, and every round of both sides was clean.
    Met,
    /// The target is not met by the medians.
    NotMet,
    /// The medians meet the target but some rounds failed: not a claim.
    Incomplete,
    /// A target that no clean run let us measure.
    NotMeasured,
    /// No target; we are ahead (advantage above 1).
    Ahead,
    /// No target; we are level or behind.
    Behind,
    /// Nothing to say.
    None,
}

impl Comparison {
    /// Whether the issue sets a target here that no clean run let us measure.
    pub(crate) fn unmeasured(&self) -> bool {
        self.target.is_some() && self.advantage.is_none()
    }

    /// Whether every round of both sides was clean.
    pub(crate) fn complete(&self) -> bool {
        self.ours_rounds.complete() && self.peer_rounds.complete()
    }

    /// The verdict, worked out once when the comparison is made (read [`Comparison::verdict`]):
    /// "met" only when every round of both sides was clean.
    fn judge(&self) -> Verdict {
        match (self.met, self.advantage) {
            (Some(true), _) if self.complete() => Verdict::Met,
            (Some(true), _) => Verdict::Incomplete,
            (Some(false), _) => Verdict::NotMet,
            (None, _) if self.unmeasured() => Verdict::NotMeasured,
            (None, Some(a)) if a > 1.0 => Verdict::Ahead,
            (None, Some(_)) => Verdict::Behind,
            (None, None) => Verdict::None,
        }
    }
}

/// Whether `advantage` meets `target`: at least `target`, except that a target of 1 (our
/// client better, whatever the ratio) needs strictly more than a tie.
pub(crate) fn meets(advantage: f64, target: f64) -> bool {
    if (target - 1.0).abs() < f64::EPSILON {
        advantage > 1.0
    } else {
        advantage >= target
    }
}

/// Our client against one peer.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Pair {
    /// Our client's label.
    pub(crate) ours: String,
    /// The peer's label.
    pub(crate) peer: String,
    /// The metrics.
    pub(crate) comparisons: Vec<Comparison>,
}

impl Pair {
    /// Starts a pair.
    pub(crate) fn new(ours: &str, peer: &str) -> Self {
        Self {
            ours: ours.to_owned(),
            peer: peer.to_owned(),
            comparisons: Vec::new(),
        }
    }

    /// Adds a metric: the median over each side's clean runs (see [`Run::clean`]) of `value`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn compare(
        &mut self,
        metric: &str,
        unit: &'static str,
        better: Better,
        target: Option<f64>,
        ours: &[&Run],
        peer: &[&Run],
        value: impl Fn(&Run) -> Option<f64>,
    ) {
        let (ours_rounds, peer_rounds) = (Rounds::of(ours), Rounds::of(peer));
        let ours = median(ours.iter().filter(|r| r.clean()).filter_map(|r| value(r)));
        let peer = median(peer.iter().filter(|r| r.clean()).filter_map(|r| value(r)));
        let advantage = match (ours, peer, better) {
            (Some(o), Some(p), Better::Lower) if o > 0.0 => Some(p / o),
            (Some(o), Some(p), Better::Higher) if p > 0.0 => Some(o / p),
            _ => None,
        };
        let met = match (advantage, target) {
            (Some(a), Some(t)) => Some(meets(a, t)),
            _ => None,
        };
        let mut comparison = Comparison {
            metric: metric.to_owned(),
            unit,
            better,
            ours,
            peer,
            advantage,
            target,
            met,
            ours_rounds,
            peer_rounds,
            verdict: Verdict::None,
        };
        comparison.verdict = comparison.judge();
        self.comparisons.push(comparison);
    }
}

/// The median (mean of the middle two for an even count); `None` for no values.
pub(crate) fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// A workload's outcome.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Workload {
    /// Short id (`chat_echo`, `sunshine_rest`, `metrics_feeds`).
    pub(crate) id: &'static str,
    /// Heading.
    pub(crate) title: &'static str,
    /// Sizes and settings.
    pub(crate) params: Value,
    /// Why it (or a part of it) was skipped.
    pub(crate) skipped: Vec<String>,
    /// Every run, in the order they ran.
    pub(crate) runs: Vec<Run>,
    /// The comparisons.
    pub(crate) pairs: Vec<Pair>,
    /// Notes for the reader (how a peer was driven, caveats).
    pub(crate) notes: Vec<String>,
}

impl Workload {
    /// An empty workload.
    pub(crate) fn new(id: &'static str, title: &'static str, params: Value) -> Self {
        Self {
            id,
            title,
            params,
            skipped: Vec::new(),
            runs: Vec::new(),
            pairs: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Records a skip and says so on stderr.
    pub(crate) fn skip(&mut self, reason: impl Into<String>) {
        let reason = reason.into();
        eprintln!("xtask bench: SKIPPED ({}): {reason}", self.id);
        self.skipped.push(reason);
    }

    /// Runs `rounds` rounds of every client and records each run (said on stderr). Each
    /// round's order is the last one's rotated by one, so each client takes each place in
    /// turn: the machine's drift over a workload falls on every client alike.
    pub(crate) fn alternate<C: Copy>(
        &mut self,
        rounds: usize,
        clients: &[C],
        mut run: impl FnMut(C, usize) -> Run,
    ) {
        if clients.is_empty() {
            return;
        }
        for round in 0..rounds {
            let mut order = clients.to_vec();
            order.rotate_left(round % clients.len());
            for client in order {
                self.runs.push(run(client, round).told());
            }
        }
    }

    /// The runs of one client.
    pub(crate) fn runs_of(&self, client: &str) -> Vec<&Run> {
        self.runs.iter().filter(|r| r.client == client).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(client: &str, cpu: f64) -> Run {
        Run {
            client: client.to_owned(),
            round: 0,
            cpu_total_s: cpu,
            cpu_work_s: cpu,
            cpu_source: CpuSource::Clock,
            peak_rss_kib: 1000,
            wall_s: 1.0,
            exit: "exit status: 0".to_owned(),
            phases: vec![
                serde_json::json!({"name": "x", "ops": 100, "errors": 0, "elapsed_s": 2.0}),
            ],
            extra: Value::Null,
            error: None,
            expected: BTreeMap::new(),
        }
    }

    /// Over as many rounds as clients, each client runs once in each place, every run is
    /// recorded with its round, and no client is left out.
    #[test]
    fn alternating_rounds_give_each_client_each_place() {
        let mut w = Workload::new("w", "W", Value::Null);
        w.alternate(3, &["a", "b", "c"], |client, round| Run {
            round,
            ..run(client, 1.0)
        });
        let order: Vec<(usize, &str)> = w.runs.iter().map(|r| (r.round, &*r.client)).collect();
        assert_eq!(
            order,
            [
                (0, "a"),
                (0, "b"),
                (0, "c"),
                (1, "b"),
                (1, "c"),
                (1, "a"),
                (2, "c"),
                (2, "a"),
                (2, "b"),
            ]
        );
        let mut none = Workload::new("w", "W", Value::Null);
        none.alternate(3, &[] as &[&str], |client, round| Run {
            round,
            ..run(client, 1.0)
        });
        assert!(none.runs.is_empty());
    }

    /// CPU work compared, lower better, against a 5x target.
    fn cpu_compared(ours: &[&Run], peer: &[&Run]) -> Comparison {
        let mut pair = Pair::new("ours", "peer");
        pair.compare("cpu", "s", Better::Lower, Some(5.0), ours, peer, |r| {
            Some(r.cpu_work_s)
        });
        pair.comparisons.remove(0)
    }

    fn measured(exit: &str, killed: bool, exited_ok: bool) -> Measured {
        Measured {
            cpu_total_s: 1.0,
            cpu_work_s: 1.0,
            cpu_source: CpuSource::Clock,
            peak_rss_kib: 1,
            wall_s: 1.0,
            done: Some(serde_json::json!({"event": "done", "phases": []})),
            exit: exit.to_owned(),
            killed,
            exited_ok,
            stderr_tail: "shutting down".to_owned(),
        }
    }

    #[test]
    fn a_done_line_followed_by_a_kill_or_a_failed_exit_is_not_a_clean_run() {
        let fine = Ok(());
        let clean = measured("exit status: 0", false, true);
        assert_eq!(run_error(&fine, &fine, &clean), None);
        for (m, why) in [
            (
                measured("killed 30 s after its `done` line", true, false),
                "killed 30 s after its `done` line",
            ),
            (
                measured("killed after 60 s", true, false),
                "killed after 60 s",
            ),
            (measured("exit status: 1", false, false), "exit status: 1"),
        ] {
            let error = run_error(&fine, &fine, &m);
            let e = error.as_deref().unwrap_or_default();
            assert!(
                e.contains("after its `done` line") && e.contains(why),
                "{error:?}"
            );
            assert!(e.contains("shutting down"), "{e}");
        }
        // The other failures keep their own reasons.
        let mut silent = measured("exit status: 1", false, false);
        silent.done = None;
        let e = run_error(&fine, &fine, &silent).unwrap_or_default();
        assert!(e.starts_with("no result line (exit status: 1)"), "{e}");
        let load = Err("visitors failed".to_owned());
        assert_eq!(
            run_error(&fine, &load, &clean).as_deref(),
            Some("load: visitors failed")
        );
    }

    #[test]
    fn medians_and_advantages() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), Some(2.0));
        assert_eq!(median([4.0, 1.0].into_iter()), Some(2.5));
        assert_eq!(median(std::iter::empty()), None);

        let (o1, o2, p1) = (run("ours", 1.0), run("ours", 3.0), run("peer", 10.0));
        let cpu = cpu_compared(&[&o1, &o2], &[&p1]);
        assert_eq!(
            (cpu.ours, cpu.peer, cpu.advantage, cpu.met),
            (Some(2.0), Some(10.0), Some(5.0), Some(true))
        );
        let mut pair = Pair::new("ours", "peer");
        pair.compare(
            "tput",
            "ops/s",
            Better::Higher,
            Some(3.0),
            &[&o1],
            &[&p1],
            |r| r.throughput("x"),
        );
        let tput = &pair.comparisons[0];
        assert_eq!((tput.advantage, tput.met), (Some(1.0), Some(false)));
    }

    #[test]
    fn failed_runs_do_not_count() {
        let mut bad = run("ours", 1.0);
        bad.error = Some("boom".to_owned());
        let peer = run("peer", 2.0);
        let cpu = cpu_compared(&[&bad], &[&peer]);
        assert_eq!(cpu.advantage, None);
        // Its target is then reported as not measured, not dropped.
        assert!(cpu.unmeasured());
    }

    #[test]
    fn runs_with_errors_in_a_phase_do_not_count() {
        // A round whose failed requests left its latency samples reads faster than it was.
        let mut flaky = run("ours", 0.5);
        flaky.phases[0]["errors"] = serde_json::json!(3);
        let (clean, peer) = (run("ours", 2.0), run("peer", 4.0));
        let cpu = cpu_compared(&[&flaky, &clean], &[&peer]);
        assert_eq!(
            (cpu.ours, cpu.advantage, cpu.met),
            (Some(2.0), Some(2.0), Some(false))
        );
    }

    #[test]
    fn runs_that_account_for_fewer_operations_than_expected_are_not_clean() {
        // A driver that stopped early and called it clean (errors 0, ops short) does not
        // count, whatever driver it is.
        let short = run("peer", 1.0).expect_ops("x", 120);
        assert!(!short.clean());
        assert_eq!(short.short_phases(), vec![("x".to_owned(), 100, 120)]);
        let whole = run("peer", 1.0).expect_ops("x", 100);
        assert!(whole.clean() && whole.short_phases().is_empty());
        // A phase expected but not reported at all accounts for nothing.
        let missing = run("peer", 1.0).expect_ops("y", 1);
        assert!(!missing.clean());
        let (ours, peer) = (run("ours", 1.0), run("peer", 10.0).expect_ops("x", 120));
        let cpu = cpu_compared(&[&ours], &[&peer]);
        assert!(cpu.unmeasured());
    }

    #[test]
    fn the_terminal_line_says_error_exactly_when_the_run_is_not_clean() {
        let whole = run("ours", 1.0).expect_ops("x", 100);
        assert!(!whole.line().contains("ERROR"), "{}", whole.line());
        // Stopped short without saying so: the report counts it failed, the line says why.
        let short = run("ours", 1.0).expect_ops("x", 120);
        assert!(
            short.line().contains("ERROR x: 100 of 120"),
            "{}",
            short.line()
        );
        let mut failed = run("ours", 1.0);
        failed.phases[0]["errors"] = Value::from(3);
        failed.phases[0]["first_error"] = Value::from("refused");
        assert!(
            failed.line().contains("ERROR x: 3 errors (refused)"),
            "{}",
            failed.line()
        );
        let not_run = Run::not_run("ours", 1, "cannot spawn".to_owned());
        assert!(
            not_run.line().contains("ERROR cannot spawn"),
            "{}",
            not_run.line()
        );
        for r in [&whole, &short, &failed, &not_run] {
            assert_eq!(r.line().contains("ERROR"), !r.clean(), "{}", r.line());
        }
    }

    #[test]
    fn a_short_listing_counts_the_unread_items_as_errors() {
        // 100 items read of 120 and no error reported: 20 errors.
        let listed = run("ours", 1.0).count_shortfall("x", 120);
        assert_eq!(listed.phases[0]["errors"], 20);
        assert!(listed.phases[0]["first_error"].is_string());
        assert!(!listed.clean());
        // A driver that already counted more errors keeps its count.
        let mut failed = run("ours", 1.0);
        failed.phases[0]["errors"] = serde_json::json!(50);
        assert_eq!(failed.count_shortfall("x", 120).phases[0]["errors"], 50);
        // Everything read: nothing added, clean.
        let whole = run("ours", 1.0).count_shortfall("x", 100);
        assert_eq!(whole.phases[0]["errors"], 0);
        assert!(whole.clean());
    }

    #[test]
    fn a_target_is_met_only_when_every_round_of_both_sides_was_clean() {
        let (o1, o2) = (run("ours", 1.0), run("ours", 1.0));
        let mut failed = run("ours", 0.1);
        failed.error = Some("boom".to_owned());
        let peer = run("peer", 10.0);
        let all = cpu_compared(&[&o1, &o2], &[&peer]);
        assert_eq!(all.verdict, Verdict::Met);
        assert_eq!(all.ours_rounds, Rounds { clean: 2, ran: 2 });
        let partial = cpu_compared(&[&o1, &failed], &[&peer]);
        // The medians over the clean rounds meet it, but a round failed: not a claim.
        assert_eq!(partial.met, Some(true));
        assert_eq!(partial.ours_rounds, Rounds { clean: 1, ran: 2 });
        assert_eq!(partial.peer_rounds, Rounds { clean: 1, ran: 1 });
        assert_eq!(partial.verdict, Verdict::Incomplete);
        // report.json says so too, not only the markdown.
        let json = serde_json::to_value(&partial).unwrap();
        assert_eq!(json["verdict"], "incomplete");
        assert_eq!(serde_json::to_value(&all).unwrap()["verdict"], "met");
        // The same on the peer's side.
        let mut peer_failed = run("peer", 10.0);
        peer_failed.phases[0]["errors"] = serde_json::json!(1);
        let theirs = cpu_compared(&[&o1], &[&peer, &peer_failed]);
        assert_eq!(theirs.verdict, Verdict::Incomplete);
    }

    #[test]
    fn a_better_target_is_not_met_by_a_tie() {
        let (ours, peer) = (run("ours", 2.0), run("peer", 2.0));
        let mut pair = Pair::new("ours", "peer");
        pair.compare(
            "p99",
            "µs",
            Better::Lower,
            Some(1.0),
            &[&ours],
            &[&peer],
            |r| Some(r.cpu_work_s),
        );
        let tie = &pair.comparisons[0];
        assert_eq!((tie.advantage, tie.met), (Some(1.0), Some(false)));
        assert!(meets(1.01, 1.0) && meets(5.0, 5.0) && !meets(4.99, 5.0));
    }
}
