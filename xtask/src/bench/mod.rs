//! `cargo xtask bench [--quick]`: our clients side by side with peer clients against one
//! emulator, and the report in `docs/benchmarks.md` and `target/bench/report.json`.
//!
//! The harness builds the emulator and our drivers (`zd-bench`) in release mode, installs the
//! peers into `target/peers/`, starts the emulator in its own process, then runs each workload
//! for a few rounds, ours and the peers alternating, measuring every client process from
//! outside (CPU and peak memory from /proc) and reading the latencies each driver prints.

mod deadline;
mod echo;
mod emulator;
mod http;
mod machine;
mod metrics;
mod micro;
mod peers;
mod plan;
mod proc;
mod report;
mod results;
mod sunshine;

use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use emulator::Emulator;
use peers::Peers;
use plan::Plan;

/// What every workload needs.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    emulator: &'a Emulator,
    peers: &'a Peers,
    plan: Plan,
    zd_bench: PathBuf,
}

impl Ctx<'_> {
    /// A command running our driver binary.
    fn zd_bench(&self) -> Command {
        Command::new(&self.zd_bench)
    }
}

/// Entry point of `cargo xtask bench`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut quick = false;
    let mut only: Vec<String> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--only" => {
                let name = args
                    .next()
                    .ok_or("bench: --only needs a workload (echo, sunshine, metrics)")?;
                if !WORKLOADS.contains(&name.as_str()) {
                    return Err(format!(
                        "bench: unknown workload `{name}` (one of {})",
                        WORKLOADS.join(", ")
                    ));
                }
                only.push(name.clone());
            }
            other => {
                return Err(format!(
                    "bench: unknown argument `{other}` (--quick, --only <workload>)"
                ));
            }
        }
    }
    let selected = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let plan = if quick { Plan::QUICK } else { Plan::FULL };
    let root = crate::workspace_root();
    // Read before anything is built or written: the tree the figures are of.
    let commit = machine::commit(&root);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"));
    let bench_dir = target.join("bench");
    std::fs::create_dir_all(&bench_dir).map_err(|e| format!("{}: {e}", bench_dir.display()))?;

    eprintln!("xtask bench: building the emulator and our drivers (release-lto) ...");
    crate::cargo(&[
        "build",
        "--profile",
        "release-lto",
        "-p",
        "zd-emulator",
        "-p",
        "zd-bench",
    ])?;
    let release = target.join("release-lto");

    let peers = peers::install(&root, &target);

    let emulator = Emulator::start(&release.join("zd-emulator"), &bench_dir)?;
    eprintln!("xtask bench: emulator up at {}", emulator.base);
    let ctx = Ctx {
        emulator: &emulator,
        peers: &peers,
        plan,
        zd_bench: release.join("zd-bench"),
    };
    let mut workloads = Vec::new();
    if selected("echo") {
        eprintln!("xtask bench: workload chat echo ...");
        workloads.push(echo::run(&ctx));
    }
    if selected("sunshine") {
        eprintln!("xtask bench: workload Sunshine REST ...");
        workloads.push(sunshine::run(&ctx));
    }
    if selected("metrics") {
        eprintln!("xtask bench: workload metrics feeds ...");
        workloads.push(metrics::run(&ctx));
    }
    drop(ctx);
    let mut emulator = emulator;
    if !emulator.alive() {
        eprintln!(
            "xtask bench: WARNING the emulator exited during the run (see target/bench/emulator.log)"
        );
    }
    drop(emulator);

    if !only.is_empty() {
        // A partial run is for iterating on one workload: it leaves the published report alone.
        let report = serde_json::json!({ "commit": commit, "plan": plan, "workloads": workloads });
        let path = bench_dir.join("report-only.json");
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("{}", summary_of(&workloads));
        eprintln!(
            "xtask bench: --only run; wrote {} (docs untouched)",
            path.display()
        );
        return Ok(());
    }

    let mut micro_notes = Vec::new();
    let mut since = None;
    if plan.run_criterion {
        // What this run's `cargo bench` writes, no older estimate (a bench deleted or renamed
        // leaves one behind); a second's slack for coarse file timestamps.
        since = SystemTime::now().checked_sub(std::time::Duration::from_secs(1));
        micro_notes.extend(micro::run_criterion(&root));
    } else {
        micro_notes.push(
            "`--quick` does not run `cargo bench`; these are the estimates criterion had stored \
             (run `cargo xtask bench` or `cargo bench -p <crate>` to refresh them)."
                .to_owned(),
        );
    }
    let (micro, left_out) = micro::collect(&target.join("criterion"), since);
    if left_out > 0 {
        micro_notes.push(format!(
            "{left_out} stored estimate(s) this run's `cargo bench` did not write (benches \
             deleted or renamed since, or not run) are left out."
        ));
    }

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let report = report::Report {
        generated_at: machine::utc(now),
        command: if quick {
            "cargo xtask bench --quick"
        } else {
            "cargo xtask bench"
        }
        .to_owned(),
        commit,
        plan,
        machine: machine::describe(),
        peers: peers.notes.clone(),
        workloads,
        micro,
        micro_notes,
    };
    let json_path = bench_dir.join("report.json");
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, json).map_err(|e| format!("{}: {e}", json_path.display()))?;
    let md_path = root.join("docs/benchmarks.md");
    // Only a missing file gets the default frame: one that cannot be read (not UTF-8, no
    // permission) must not be replaced by it.
    let existing = match std::fs::read_to_string(&md_path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(format!(
                "{} left untouched: cannot read it: {e} (report.json is written: {})",
                md_path.display(),
                json_path.display()
            ));
        }
    };
    let generated = report::markdown(&report);
    let merged = report::merge(existing.as_deref(), &generated).map_err(|e| {
        format!(
            "{} left untouched: {e} (report.json is written: {})",
            md_path.display(),
            json_path.display()
        )
    })?;
    std::fs::write(&md_path, merged).map_err(|e| format!("{}: {e}", md_path.display()))?;
    println!("{}", summary(&report));
    eprintln!(
        "xtask bench: wrote {} and {}",
        json_path.display(),
        md_path.display()
    );
    Ok(())
}

/// Workload names `--only` accepts.
const WORKLOADS: [&str; 3] = ["echo", "sunshine", "metrics"];

/// The ratio lines, for the terminal.
fn summary(report: &report::Report) -> String {
    summary_of(&report.workloads)
}

fn summary_of(workloads: &[results::Workload]) -> String {
    let mut lines = Vec::new();
    for w in workloads {
        for p in &w.pairs {
            for c in &p.comparisons {
                let adv = c
                    .advantage
                    .map_or_else(|| "n/a".to_owned(), |a| format!("{a:.2}x"));
                // The report's words, so the terminal and docs/benchmarks.md cannot drift.
                let verdict = match c.verdict {
                    results::Verdict::Met
                    | results::Verdict::NotMet
                    | results::Verdict::Incomplete
                    | results::Verdict::NotMeasured => {
                        format!(" (target {})", report::verdict_plain(c))
                    }
                    _ => String::new(),
                };
                lines.push(format!(
                    "{:<34} vs {:<40} {:<32} {adv}{verdict}",
                    w.title, p.peer, c.metric
                ));
            }
        }
        for s in &w.skipped {
            lines.push(format!("{:<34} SKIPPED: {s}", w.title));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use results::{Better, Pair, Run, Workload};

    /// A clean run of a phase `x`, using `cpu` seconds of work; failed when `error` is given.
    fn run(client: &str, cpu: f64, error: Option<&str>) -> Run {
        let mut run = Run::not_run(client, 0, String::new());
        run.error = error.map(str::to_owned);
        run.cpu_work_s = cpu;
        run.phases = vec![serde_json::json!({"name": "x", "ops": 1, "errors": 0})];
        run
    }

    #[test]
    fn the_terminal_summary_gives_the_reports_verdict() {
        let (ours, failed, peer) = (
            run("ours", 1.0, None),
            run("ours", 1.0, Some("boom")),
            run("peer", 10.0, None),
        );
        let mut w = Workload::new("w", "Workload", serde_json::Value::Null);
        let mut pair = Pair::new("ours", "peer");
        let cpu = |r: &Run| Some(r.cpu_work_s);
        for (target, ours) in [(5.0, vec![&ours, &failed]), (20.0, vec![&ours])] {
            pair.compare(
                "cpu",
                "s",
                Better::Lower,
                Some(target),
                &ours,
                &[&peer],
                cpu,
            );
        }
        w.pairs.push(pair);
        let summary = summary_of(std::slice::from_ref(&w));
        let lines: Vec<&str> = summary.lines().collect();
        assert!(
            lines[0].ends_with(
                "(target INCOMPLETE (met over the clean rounds only: ours 1 of 2, peer 1 of 1))"
            ),
            "{summary}"
        );
        assert!(lines[1].ends_with("(target NOT MET)"), "{summary}");
        for (line, c) in lines.iter().zip(&w.pairs[0].comparisons) {
            assert!(line.contains(&report::verdict_plain(c)), "{line}");
        }
    }
}
