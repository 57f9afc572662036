//! `-v` levels through tracing-subscriber, on stderr so stdout stays data.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Warnings by default; `-v` info, `-vv` debug, `-vvv` trace. `RUST_LOG` wins when set.
pub(crate) fn init(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbose >= 2)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
