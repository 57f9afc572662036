//! `zd emulator`: the emulator in the foreground, with the account printed for copy-paste.

use zd_emulator::control::scenario::Scenario;
use zd_emulator::{AccountConfig, Emulator, RealtimeLimits, SubscribeAnswer};

use crate::cli::EmulatorArgs;
use crate::error::{Context, Kind, Result};

/// Serves until Ctrl-C.
pub(crate) async fn run(args: EmulatorArgs) -> Result<()> {
    let account = match &args.config {
        Some(path) => {
            AccountConfig::from_file(path).context(Kind::Config, "cannot use the account file")?
        }
        None => AccountConfig::demo(),
    };
    let scenario = match &args.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .context(Kind::Io, format!("cannot read {}", path.display()))?;
            let toml = path.extension().is_some_and(|e| e == "toml");
            Some(Scenario::parse(&text, toml).context(Kind::Config, "invalid scenario file")?)
        }
        None => None,
    };
    let mut realtime = RealtimeLimits::documented();
    if let Some(budget) = args.realtime_requests_per_minute {
        realtime.requests_per_minute = budget.0;
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
        .await
        .context(Kind::Io, "cannot start the emulator")?;
    let json = serde_json::to_string_pretty(&emulator.account())
        .context(Kind::Io, "cannot print the account")?;
    crate::out::line(json)?;
    crate::out::note(format_args!(
        "emulator listening on {base} (visitor page: {base}/, control API: {base}/_emulator/); Ctrl-C to stop",
        base = emulator.base_url()
    ));
    if let Some(scenario) = scenario {
        let control = emulator.control().clone();
        tokio::spawn(async move { control.run_scenario(scenario).await });
    }
    emulator.run_until(crate::interrupt::ctrl_c()).await;
    Ok(())
}
