//! `zd-emulator`: serves the emulator until Ctrl-C and prints the account JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use zd_emulator::control::scenario::Scenario;
use zd_emulator::{AccountConfig, Emulator, RealtimeLimits, SubscribeAnswer};

/// A local Zendesk Chat Conversations service with a visitor simulator.
#[derive(Debug, Parser)]
#[command(name = "zd-emulator", version)]
struct Args {
    /// Port to bind on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8090)]
    port: u16,
    /// Account file (TOML, or JSON with a .json extension) instead of the demo account.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Scenario file (JSON, or TOML with a .toml extension) of timed visitor actions to run.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Real Time Chat: REST calls plus new `/stream` connections admitted per rolling minute
    /// (documented: 200), or `off` for no budget; for load tests that open many feeds at once.
    #[arg(long, value_name = "N|off", value_parser = per_minute)]
    realtime_requests_per_minute: Option<Budget>,
    /// Real Time Chat: answer a subscribe with nothing until the value changes, instead of the
    /// current value at once (the docs do not say which the service does).
    #[arg(long)]
    realtime_wait_for_change: bool,
}

/// A per-minute budget given on the command line (`None`: no budget).
#[derive(Debug, Clone, Copy)]
struct Budget(Option<usize>);

fn per_minute(text: &str) -> Result<Budget, String> {
    RealtimeLimits::parse_requests_per_minute(text).map(Budget)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("zd-emulator: {error}");
            let mut source = std::error::Error::source(error.as_ref());
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let account = match &args.config {
        Some(path) => AccountConfig::from_file(path)?,
        None => AccountConfig::demo(),
    };
    let scenario = match &args.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)?;
            let toml = path.extension().is_some_and(|e| e == "toml");
            Some(Scenario::parse(&text, toml)?)
        }
        None => None,
    };
    let mut realtime = RealtimeLimits::documented();
    if let Some(Budget(budget)) = args.realtime_requests_per_minute {
        realtime.requests_per_minute = budget;
    }
    let answer = if args.realtime_wait_for_change {
        SubscribeAnswer::NextChange
    } else {
        SubscribeAnswer::CurrentValue
    };
    let emulator = Emulator::builder()
        .account(account)
        .realtime_limits(realtime)
        .realtime_subscribe_answer(answer)
        .port(args.port)
        .start()
        .await?;
    println!("{}", serde_json::to_string_pretty(&emulator.account())?);
    eprintln!(
        "zd-emulator listening on {} (visitor page: {}/); Ctrl-C to stop",
        emulator.base_url(),
        emulator.base_url()
    );
    if let Some(scenario) = scenario {
        let control = emulator.control().clone();
        tokio::spawn(async move { control.run_scenario(scenario).await });
    }
    emulator
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    Ok(())
}
