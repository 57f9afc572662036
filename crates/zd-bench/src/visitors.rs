//! The visitor side of the echo workload (not measured): visitors arrive through the
//! emulator's control API and write stamped messages at a fixed total rate, the same for every
//! bot, so the bots are compared on equal, open-loop load.

use std::time::Duration;

use serde_json::json;
use tokio::time::MissedTickBehavior;

use crate::control::ControlClient;
use crate::latency::unix_micros;

/// What the visitor simulator needs.
#[derive(Debug, clap::Args)]
pub(crate) struct VisitorArgs {
    /// Emulator base URL (`http://127.0.0.1:PORT`).
    #[arg(long)]
    base: String,
    /// Visitors.
    #[arg(long)]
    visitors: u64,
    /// Messages per visitor.
    #[arg(long)]
    messages: u64,
    /// Messages per second, all visitors together (keep under the bot's 100 requests/s).
    #[arg(long, default_value_t = 80)]
    rate: u32,
    /// Department the visitors ask for.
    #[arg(long, default_value = "Support")]
    department: String,
}

/// Brings the visitors in, then sends every message, round-robin across visitors.
pub(crate) async fn run(args: VisitorArgs) -> Result<(), String> {
    let control = ControlClient::new(&args.base);
    let mut channels = Vec::new();
    for i in 0..args.visitors {
        let visitor = control
            .post(
                "/_emulator/visitors",
                &json!({ "name": format!("Bench visitor {i}"), "department": args.department }),
            )
            .await?;
        let channel = visitor
            .get("channel_id")
            .and_then(|c| c.as_str())
            .ok_or_else(|| format!("visitor arrival answered without channel_id: {visitor}"))?;
        channels.push(channel.to_owned());
    }
    let period = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut seq = 0_u64;
    let mut failures = 0_u64;
    for _ in 0..args.messages {
        for channel in &channels {
            tick.tick().await;
            let text = format!("bench {seq} {}", unix_micros());
            seq += 1;
            if let Err(e) = control
                .post(
                    "/_emulator/visitors/message",
                    &json!({ "channel_id": channel, "text": text }),
                )
                .await
            {
                failures += 1;
                eprintln!("zd-bench visitors: {e}");
            }
        }
    }
    println!(
        "{}",
        json!({ "event": "sent", "messages": seq, "failures": failures })
    );
    // A message not sent is one the bot cannot answer: the run is the load's failure, not a
    // slow bot's.
    if failures > 0 {
        return Err(format!(
            "{failures} of {seq} visitor messages were not sent"
        ));
    }
    Ok(())
}
