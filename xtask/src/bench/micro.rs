//! The micro section: every crate's criterion benches, summarized from
//! `target/criterion/**/new/estimates.json`.

use std::path::Path;

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
            "`cargo bench --workspace --bench *` failed ({s}); the estimates below are whatever criterion had stored"
        )),
        Err(e) => Some(format!("cannot run cargo bench: {e}")),
    }
}

/// Every stored estimate under `criterion_dir`, sorted by id.
pub(crate) fn collect(criterion_dir: &Path) -> Vec<Estimate> {
    let mut out = Vec::new();
    walk(criterion_dir, criterion_dir, &mut out);
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<Estimate>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            if let Some(e) = read(root, &path) {
                out.push(e);
            }
        } else if path
            .file_name()
            .is_some_and(|n| n != "report" && n != "base")
        {
            walk(root, &path, out);
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
        let found = collect(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, "group/fn");
        assert_eq!(found[0].median_ns, 1900.0);
        assert_eq!(found[0].throughput.as_deref(), Some("5.00 M elem/s"));
    }
}
