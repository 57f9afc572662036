//! The one JSON line format every driver prints, ours and the peers' alike.
//!
//! A driver prints `{"event":"ready"}` once its setup is done (connected, subscribed, warmed
//! up), so the harness can take a CPU reading that excludes start-up, then exactly one
//! `{"event":"done", ...}` line with what it measured, and exits. Everything else goes to
//! stderr. The peers in `xtask/peers/` print the same keys.

use std::io::Write;

use serde::Serialize;

use crate::latency::Summary;

/// One measured phase of a workload.
#[derive(Debug, Serialize)]
pub(crate) struct Phase {
    /// Phase name (`echo`, `list`, `create_users`, `post_messages`, `feeds`).
    pub(crate) name: &'static str,
    /// Operations that succeeded.
    pub(crate) ops: u64,
    /// Operations that failed.
    pub(crate) errors: u64,
    /// Wall time of the phase.
    pub(crate) elapsed_s: f64,
    /// Latency of the successful operations.
    #[serde(flatten)]
    pub(crate) latency: Summary,
    /// The first error, for the report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) first_error: Option<String>,
}

/// Prints `{"event":"ready"}` and flushes, so the harness sees it at once.
pub(crate) fn ready() {
    emit(&serde_json::json!({ "event": "ready", "client": "ours" }));
}

/// Prints the `done` line with the phases and any extra facts (e.g. feeds held).
pub(crate) fn done(phases: &[Phase], extra: &serde_json::Value) {
    emit(&serde_json::json!({
        "event": "done",
        "client": "ours",
        "phases": phases,
        "extra": extra,
    }));
}

fn emit(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout means the harness is gone; nothing useful is left to do with the error.
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}
