//! The micro section: every crate's criterion benches, summarized from
//! `target/criterion/**/new/estimates.json`.

use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

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

/// Runs `cargo bench --workspace --bench *` with short settings; returns why it failed, if it did.
pub(crate) fn run_criterion(root: &Path) -> Option<String> {
    eprintln!("xtask bench: running every crate's criterion benches (short settings) ...");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = std::process::Command::new(cargo)
        .args([
            "bench",
            "--workspace",
            // Only the bench targets: criterion's options would be refused by the libtest
            // harness of a crate's unit tests.
            "--bench",
            "*",
            "--",
            "--warm-up-time",
            "1",
            "--measurement-time",
            "2",
        ])
        .current_dir(root)
        .status();
    match status {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!(
            "`cargo bench --workspace --bench *` failed ({s}); the estimates below are those it wrote before it failed"
        )),
        Err(e) => Some(format!("cannot run cargo bench: {e}")),
    }
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
