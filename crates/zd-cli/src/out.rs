//! Data lines on stdout. `println!` panics when stdout is closed (`zd agent tail | head -n1`
//! closes it after one line); these report it as a local I/O failure (exit 7) instead, so a
//! long-running command can stop its session and end like any other failure.

use std::fmt::Display;
use std::io::Write;

use crate::error::{Context, Kind, Result};

/// Writes `line` and a newline to stdout.
pub(crate) fn line(line: impl Display) -> Result<()> {
    write_line(&mut std::io::stdout().lock(), line)
}

/// Writes `line` and a newline to `out`, a handle on stdout held for many lines.
pub(crate) fn write_line(out: &mut impl Write, line: impl Display) -> Result<()> {
    writeln!(out, "{line}").context(Kind::Io, "cannot write to stdout")
}

/// Writes `bytes` to stdout as they are.
pub(crate) fn bytes(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context(Kind::Io, "cannot write to stdout")
}

/// Writes `line` and a newline to stderr, for what a person reads (progress, warnings,
/// errors). A closed stderr loses the line rather than panicking as `eprintln!` does: a panic
/// would skip stopping the session (`zd agent echo 2>&1 | head -n3`).
pub(crate) fn note(line: impl Display) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
