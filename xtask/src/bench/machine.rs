//! The machine a run happened on, read from /proc and the tools' own version flags.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use super::deadline::{self, Echo};
use super::proc::parse_kib;

/// The commit a run measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Commit {
    /// `git rev-parse HEAD`.
    pub(crate) sha: String,
    /// Whether `git status --porcelain` listed anything (changed or untracked files): the
    /// figures are then of a tree no commit holds. `None` when it could not be run.
    pub(crate) dirty: Option<bool>,
}

/// How long a git query may take.
const GIT_LIMIT: Duration = Duration::from_secs(60);

/// The commit checked out in `root` and whether the tree differs from it; `None` when git is
/// missing or `root` is not in a repository.
pub(crate) fn commit(root: &Path) -> Option<Commit> {
    let git = |args: &[&str]| {
        let mut command = Command::new("git");
        command.args(args).current_dir(root);
        deadline::run(&mut command, GIT_LIMIT, Echo::Quiet)
            .ok()
            .filter(deadline::Finished::success)
            .map(|out| out.stdout)
    };
    let sha = git(&["rev-parse", "HEAD"])?.trim().to_owned();
    if sha.is_empty() {
        return None;
    }
    let dirty = git(&["status", "--porcelain"]).map(|s| !s.trim().is_empty());
    Some(Commit { sha, dirty })
}

/// Facts about the machine and toolchain.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    /// CPU model name.
    pub(crate) cpu: String,
    /// Logical CPUs available to this process.
    pub(crate) cpus: usize,
    /// Total memory, MiB.
    pub(crate) memory_mib: u64,
    /// Kernel release.
    pub(crate) kernel: String,
    /// OS name.
    pub(crate) os: String,
    /// `rustc -V`.
    pub(crate) rustc: String,
}

/// Reads the facts; unknown ones are `?`.
pub(crate) fn describe() -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "?".to_owned(), |(_, v)| v.trim().to_owned());
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map_or_else(|| "?".to_owned(), |v| v.trim_matches('"').to_owned());
    let rustc = Command::new("rustc")
        .arg("-V")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".to_owned());
    Machine {
        cpu,
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        memory_mib: parse_kib(&read("/proc/meminfo"), "MemTotal:").unwrap_or(0) / 1024,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        os,
        rustc,
    }
}

/// `YYYY-MM-DD HH:MM UTC` for a Unix time (civil-from-days, proleptic Gregorian).
pub(crate) fn utc(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let secs = unix_s % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_of_a_repository_and_whether_its_tree_is_dirty() {
        // Only where git is installed; elsewhere the report says "commit unknown".
        if Command::new("git").arg("--version").output().is_err() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        if !root.ancestors().any(|a| a.join(".git").exists()) {
            assert_eq!(commit(root), None, "not a repository");
        }
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(["-c", "commit.gpgsign=false"])
                .args(args)
                .current_dir(root)
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}: {out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        git(&["init", "--quiet"]);
        std::fs::write(root.join("a"), "1").unwrap();
        git(&["add", "a"]);
        git(&["commit", "--quiet", "-m", "one"]);
        let head = git(&["rev-parse", "HEAD"]).trim().to_owned();
        let clean = commit(root).unwrap();
        assert_eq!(
            (clean.sha.as_str(), clean.dirty),
            (head.as_str(), Some(false))
        );
        std::fs::write(root.join("a"), "2").unwrap();
        assert_eq!(commit(root).unwrap().dirty, Some(true));
    }

    #[test]
    fn formats_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_709_210_096), "2024-02-29 12:34 UTC");
    }
}
