//! The micro section: every crate's criterion benches, summarized from
//! `target/criterion/**/new/estimates.json`.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;

use super::deadline::{self, Echo};

/// One criterion benchmark's latest estimate.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Estimate {
    /// Its id (`group/function/parameter`).
    pub(crate) id: String,
    /// Mean time per iteration, ns.
    pub(crate) mean_ns: f64,
    /// Median time per iteration, ns.
    pub(crate) median_ns: f64,
    /// Throughput per second, when the bench declared one (elements or bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) throughput: Option<String>,
}

/// How long `cargo bench` may take: the build and every bench at short settings, with room
/// to spare, so only a hung one is killed.
const CARGO_BENCH_LIMIT: Duration = Duration::from_secs(60 * 60);

/// `cargo bench`'s arguments: every bench target of the workspace, each run even when an
/// earlier one failed (so one failing bench does not drop the later ones' estimates).
const CARGO_BENCH_ARGS: [&str; 10] = [
    "bench",
    "--workspace",
    // Only the bench targets: criterion's options would be refused by the libtest
    // harness of a crate's unit tests.
    "--bench",
    "*",
    "--no-fail-fast",
    "--",
    "--warm-up-time",
    "1",
    "--measurement-time",
    "2",
];

/// Runs `cargo bench --workspace --bench * --no-fail-fast` with short settings; returns why it
/// failed, if it did.
pub(crate) fn run_criterion(root: &Path) -> Option<String> {
    eprintln!("xtask bench: running every crate's criterion benches (short settings) ...");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = std::process::Command::new(cargo);
    command.args(CARGO_BENCH_ARGS).current_dir(root);
    match deadline::run(&mut command, CARGO_BENCH_LIMIT, Echo::Shown) {
        Ok(out) if out.success() => None,
        Ok(out) => Some(failure_note(&out.describe(), &out.stderr)),
        Err(e) => Some(format!("cannot run cargo bench: {e}")),
    }
}

/// The note for a `cargo bench` that failed (`how`: its exit or the deadline's kill): the
/// bench targets that failed by name, from its stderr, when it names them.
fn failure_note(how: &str, stderr: &str) -> String {
    let failed = failed_targets(stderr);
    if failed.is_empty() {
        format!(
            "`cargo bench --workspace --bench * --no-fail-fast` failed ({how}); the estimates \
             below are those it wrote before it failed"
        )
    } else {
        let named: Vec<String> = failed.iter().map(|t| format!("`{t}`")).collect();
        format!(
            "`cargo bench --workspace --bench * --no-fail-fast` failed ({how}): {} failed, so \
             its estimates are missing or partial; the other benches ran, and their estimates \
             are below",
            named.join(", ")
        )
    }
}

/// The targets cargo says failed: its `error: bench failed, to rerun pass `-p c --bench b``
/// line after each, and the list under `error: N targets failed:` at the end, in order, once.
fn failed_targets(stderr: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut in_list = false;
    for line in stderr.lines() {
        let target = if let Some(rest) = line.split_once("to rerun pass `").map(|(_, r)| r) {
            in_list = false;
            rest.split('`').next()
        } else if line.starts_with("error: ") && line.trim_end().ends_with("failed:") {
            in_list = true;
            None
        } else if in_list && line.starts_with(char::is_whitespace) {
            line.trim()
                .strip_prefix('`')
                .and_then(|t| t.strip_suffix('`'))
        } else {
            in_list = false;
            None
        };
        if let Some(t) = target.filter(|t| !t.is_empty())
            && !out.iter().any(|o| o == t)
        {
            out.push(t.to_owned());
        }
    }
    out
}

/// The stored estimates under `criterion_dir`, sorted by id, and how many were left out:
/// with `since`, only those whose `estimates.json` was written at or after it (this run's
/// `cargo bench`: a bench deleted or renamed since an earlier run leaves its old estimate
/// behind, which must not read as a figure of this run); without, every stored one.
pub(crate) fn collect(criterion_dir: &Path, since: Option<SystemTime>) -> (Vec<Estimate>, usize) {
    let mut out = Vec::new();
    let mut left_out = 0;
    walk(criterion_dir, criterion_dir, since, &mut out, &mut left_out);
    out.sort_by(|a, b| a.id.cmp(&b.id));
    (out, left_out)
}

fn written_since(file: &Path, since: SystemTime) -> bool {
    std::fs::metadata(file)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since)
}

fn walk(
    root: &Path,
    dir: &Path,
    since: Option<SystemTime>,
    out: &mut Vec<Estimate>,
    left_out: &mut usize,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            let fresh = since.is_none_or(|t| written_since(&path.join("estimates.json"), t));
            match read(root, &path) {
                Some(e) if fresh => out.push(e),
                Some(_) => *left_out += 1,
                None => {}
            }
        } else if path
            .file_name()
            .is_some_and(|n| n != "report" && n != "base")
        {
            walk(root, &path, since, out, left_out);
        }
    }
}

fn read(root: &Path, new_dir: &Path) -> Option<Estimate> {
    let estimates: Value =
        serde_json::from_str(&std::fs::read_to_string(new_dir.join("estimates.json")).ok()?)
            .ok()?;
    let bench: Value = std::fs::read_to_string(new_dir.join("benchmark.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let id = bench["full_id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| {
            new_dir
                .parent()
                .and_then(|p| p.strip_prefix(root).ok())
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        });
    let mean_ns = estimates["mean"]["point_estimate"].as_f64()?;
    let median_ns = estimates["median"]["point_estimate"].as_f64()?;
    let throughput = throughput(&bench["throughput"], mean_ns);
    Some(Estimate {
        id,
        mean_ns,
        median_ns,
        throughput,
    })
}

/// `{"Elements": n}` or `{"Bytes": n}` per iteration, as a rate at the mean time.
fn throughput(declared: &Value, mean_ns: f64) -> Option<String> {
    let obj = declared.as_object()?;
    let (kind, n) = obj.iter().next()?;
    let per_s = n.as_f64()? * 1e9 / mean_ns;
    Some(match kind.as_str() {
        "Bytes" | "BytesDecimal" => format!("{:.1} MiB/s", per_s / (1024.0 * 1024.0)),
        _ => format!("{} elem/s", super::report::si(per_s)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_bench_runs_every_bench_even_after_one_failed() {
        assert!(CARGO_BENCH_ARGS.contains(&"--no-fail-fast"));
        // Before `--`: an option of cargo's, not of criterion's.
        let split = CARGO_BENCH_ARGS.iter().position(|a| *a == "--");
        let flag = CARGO_BENCH_ARGS.iter().position(|a| *a == "--no-fail-fast");
        assert!(flag < split, "{CARGO_BENCH_ARGS:?}");
    }

    #[test]
    fn the_note_names_the_benches_that_failed() {
        let stderr = "     Running benches/xa.rs (t/release/deps/xa-3e1a)\n\
             \n\
             thread 'main' panicked at a/benches/ya.rs:1:12:\n\
             boom\n\
             error: bench failed, to rerun pass `-p a --bench ya`\n\
             \x20    Running benches/xb.rs (t/release/deps/xb-a6f1)\n\
             error: bench failed, to rerun pass `-p b --bench yb`\n\
             error: 3 targets failed:\n\
             \x20   `-p a --bench ya`\n\
             \x20   `-p b --bench yb`\n\
             \x20   `-p c --bench zc`\n";
        assert_eq!(
            failed_targets(stderr),
            ["-p a --bench ya", "-p b --bench yb", "-p c --bench zc"]
        );
        let note = failure_note("exit status: 101", stderr);
        assert!(
            note.contains("`-p a --bench ya`, `-p b --bench yb`, `-p c --bench zc` failed"),
            "{note}"
        );
        assert!(note.contains("exit status: 101"), "{note}");
        // A build failure names no bench: the note says what it can.
        let note = failure_note("exit status: 101", "error[E0425]: cannot find value `x`\n");
        assert!(note.contains("failed (exit status: 101)"), "{note}");
        assert!(failed_targets("error: could not compile `zd-wire`\n").is_empty());
    }

    #[test]
    fn reads_nested_estimates() {
        let dir = std::env::temp_dir().join(format!("xtask-micro-{}", std::process::id()));
        let new = dir.join("group/fn/new");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(
            new.join("estimates.json"),
            r#"{"mean":{"point_estimate":2000.0},"median":{"point_estimate":1900.0}}"#,
        )
        .unwrap();
        std::fs::write(
            new.join("benchmark.json"),
            r#"{"full_id":"group/fn","throughput":{"Elements":10}}"#,
        )
        .unwrap();
        std::fs::create_dir_all(dir.join("report")).unwrap();
        let (found, left_out) = collect(&dir, None);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(left_out, 0);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, "group/fn");
        assert_eq!(found[0].median_ns, 1900.0);
        assert_eq!(found[0].throughput.as_deref(), Some("5.00 M elem/s"));
    }

    #[test]
    fn a_full_run_reports_only_the_estimates_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let write = |id: &str| {
            let new = dir.path().join(id).join("new");
            std::fs::create_dir_all(&new).unwrap();
            std::fs::write(
                new.join("estimates.json"),
                r#"{"mean":{"point_estimate":2.0},"median":{"point_estimate":1.0}}"#,
            )
            .unwrap();
            new.join("estimates.json")
        };
        // A bench renamed or deleted since an earlier run: its estimate is an hour old.
        let old = write("gone");
        let hour_ago = SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let start = SystemTime::now() - std::time::Duration::from_secs(60);
        write("kept");
        let (fresh, left_out) = collect(dir.path(), Some(start));
        let ids: Vec<&str> = fresh.iter().map(|e| e.id.as_str()).collect();
        assert_eq!((ids, left_out), (vec!["kept"], 1));
        // `--quick` reports every stored one (and says they are as stored).
        assert_eq!(collect(dir.path(), None).0.len(), 2);
    }
}
