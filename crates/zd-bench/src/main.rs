#![doc = include_str!("../README.md")]

mod control;
mod echo;
mod floor;
mod latency;
mod line;
mod metrics;
mod sunshine;
mod visitors;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Drivers for `cargo xtask bench`.
#[derive(Debug, Parser)]
#[command(name = "zd-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Chat echo bot (zd-agent).
    Echo(echo::EchoArgs),
    /// The echo bot hand-written on tokio-tungstenite, without zd-agent: the workload's floor.
    EchoFloor(echo::BotArgs),
    /// Visitors writing stamped messages through the control API (the load, not measured).
    Visitors(visitors::VisitorArgs),
    /// Sunshine REST phases (zd-sunshine).
    Sunshine(sunshine::SunshineArgs),
    /// Seeds the Sunshine conversations both sides use.
    SunshineSeed(sunshine::SeedArgs),
    /// Many concurrent metrics feeds (zd-metrics).
    Metrics(metrics::MetricsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread, like the Node peers: CPU per operation is then comparable.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("zd-bench: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Echo(args) => echo::run(args).await,
            Command::EchoFloor(args) => floor::run(args).await,
            Command::Visitors(args) => visitors::run(args).await,
            Command::Sunshine(args) => sunshine::run(args).await,
            Command::SunshineSeed(args) => sunshine::seed(args).await,
            Command::Metrics(args) => metrics::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("zd-bench: {message}");
            ExitCode::FAILURE
        }
    }
}
