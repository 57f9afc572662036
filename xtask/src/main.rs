//! Project automation, run as `cargo xtask <command>`.
//!
//! Commands:
//! - `ci`: the same checks `.ci/run` performs, in the same order.
//! - `codegen [--check] [--spec PATH]`: regenerate (or verify) the Sunshine client's code.
//! - `bench [--quick]`: our clients against peer clients on the emulator; writes
//!   `docs/benchmarks.md` and `target/bench/report.json`.

use std::process::{Command, ExitCode};

mod bench;
mod ci;
mod codegen;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(),
        Some("codegen") => codegen::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("help") | Some("--help") | Some("-h") | None => {
            print_help();
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`; run `cargo xtask help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn print_help() {
    println!(
        "cargo xtask <command>\n\n\
         commands:\n  \
         ci        fmt check, clippy (warnings denied), the test suite and generated-code checks\n  \
         codegen   regenerate crates/zd-sunshine/src/generated from the Sunshine spec\n            \
         --check   fail if the committed generated code is out of date\n            \
         --spec P  read the spec from P (default ../shared/reference/sunshine/openapi.json)\n  \
         bench     our clients against peer clients on the emulator; writes docs/benchmarks.md\n            \
         --quick   a short run (a few minutes)"
    );
}

/// Runs a cargo subcommand from the workspace root, failing with the command line on error.
pub(crate) fn cargo(args: &[&str]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("could not run `cargo {}`: {e}", args.join(" ")))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed with {status}", args.join(" ")))
    }
}

/// The workspace root: the parent of this crate's manifest directory.
pub(crate) fn workspace_root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}
