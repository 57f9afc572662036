#![doc = include_str!("../README.md")]
// `main` parses the command line before anything else starts (no runtime, no TLS), so
// `zd --help` and usage errors return at once; only the chosen command builds a runtime.

mod cli;
mod commands;
mod config;
mod demo;
mod error;
mod http;
mod interrupt;
mod logging;
mod out;
mod progress;
mod target;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::error::{CliError, Context, Kind};

fn main() -> ExitCode {
    let cli = Cli::parse_ignoring_empty_env();
    logging::init(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(error) => error.report(),
    }
}

fn run(cli: Cli) -> Result<ExitCode, CliError> {
    if let Command::Completions { shell } = cli.command {
        commands::completions::print(shell)?;
        return Ok(ExitCode::SUCCESS);
    }
    let load_profile = || config::load(cli.config_file.as_deref(), cli.profile.as_deref());
    // Only the commands that read a profile need one that loads: `zd demo` and `zd emulator`
    // start their own emulator, and `zd auth` reads one only for keys it was not given.
    let profile = match cli.command {
        Command::Agent(_) | Command::Metrics(_) | Command::Sunshine(_) => load_profile()?,
        _ => config::Profile::default(),
    };
    let ctx = target::Context::new(profile, cli.emulator.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context(Kind::Io, "cannot start the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => Box::pin(demo::run(args)).await,
            Command::Emulator(args) => commands::emulator::run(args)
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Agent(cmd) => Box::pin(commands::agent::run(&ctx, cmd))
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Metrics(cmd) => Box::pin(commands::metrics::run(&ctx, cmd))
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Sunshine(cmd) => Box::pin(commands::sunshine::run(&ctx, cmd))
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Auth(cmd) => commands::auth::run(cmd, load_profile)
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Completions { .. } => Ok(ExitCode::SUCCESS),
        }
    })
}
