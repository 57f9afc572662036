//! `cargo xtask ci`: what `.ci/run` does, runnable from any shell.

use crate::cargo;

/// Runs every CI check in order and stops at the first failure.
pub(crate) fn run() -> Result<(), String> {
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&["test", "--workspace"])?;
    crate::codegen::run(&["--check".to_owned()])?;
    Ok(())
}
