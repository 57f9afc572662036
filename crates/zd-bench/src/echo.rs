//! The chat echo bot on our side: `zd-agent` answering every visitor message with its echo.
//!
//! It does what the peer in `xtask/peers/node/echo_bot.js` does: go online, subscribe to
//! `message` with the peer's own selection set (through [`AgentSession::subscribe_document`],
//! into serde types of the fields it reads), answer each visitor message with `echo: <text>`
//! without waiting for earlier answers, and time each message from the visitor's stamp
//! (`bench <seq> <unix_us>`) to the acknowledgement of its echo.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use zd_agent::{AgentSession, AgentStatus, Config, OutgoingMessage, StaticToken};

use crate::latency::{Samples, unix_micros};
use crate::line::{self, Phase};

/// What the echo bot needs.
#[derive(Debug, clap::Args)]
pub(crate) struct EchoArgs {
    /// `startAgentSession` endpoint (`http://127.0.0.1:PORT/graphql/request`).
    #[arg(long)]
    graphql_url: String,
    /// The agent's access token.
    #[arg(long)]
    token: String,
    /// Visitor messages to answer before reporting.
    #[arg(long)]
    expect: u64,
    /// Give up (and report what was answered) after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_s: u64,
}

/// The peer's subscription, word for word (the official sample's selection set): both bots
/// then ask for, receive and decode the same fields.
const MESSAGE_SUBSCRIPTION: &str = "subscription { message { node { id content channel { id } from { __typename display_name } } } }";

/// `data` of [`MESSAGE_SUBSCRIPTION`], as far as the bot reads it (serde skips the rest).
#[derive(Debug, serde::Deserialize)]
struct MessageData {
    message: Option<MessageEdge>,
}

#[derive(Debug, serde::Deserialize)]
struct MessageEdge {
    node: Option<MessageNode>,
}

#[derive(Debug, serde::Deserialize)]
struct MessageNode {
    content: String,
    channel: ChannelId,
    from: SenderKind,
}

#[derive(Debug, serde::Deserialize)]
struct ChannelId {
    id: String,
}

#[derive(Debug, serde::Deserialize)]
struct SenderKind {
    #[serde(rename = "__typename")]
    typename: String,
}

/// Runs the bot until `expect` echoes are acknowledged or the timeout passes.
pub(crate) async fn run(args: EchoArgs) -> Result<(), String> {
    let endpoint = url::Url::parse(&args.graphql_url).map_err(|e| format!("graphql url: {e}"))?;
    let config = Config::with_endpoint(endpoint);
    let token = StaticToken::bearer(args.token.clone()).map_err(|e| format!("token: {e}"))?;
    let (session, driver) = AgentSession::connect(config, Arc::new(token))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    tokio::spawn(driver);
    // The bot is a task of its own, as the driver is: a wake-up between the two is then a
    // run-queue push. (Woken from a task, `block_on`'s future costs an extra zero-timeout epoll.)
    tokio::spawn(answer(session, args))
        .await
        .map_err(|e| format!("bot task: {e}"))?
}

/// Goes online, subscribes and echoes until `expect` answers or the timeout.
async fn answer(session: AgentSession, args: EchoArgs) -> Result<(), String> {
    session
        .update_agent_status(AgentStatus::Online)
        .await
        .map_err(|e| format!("updateAgentStatus: {e}"))?;
    let mut messages = session
        .subscribe_document::<MessageData>(MESSAGE_SUBSCRIPTION, None)
        .await
        .map_err(|e| format!("subscribe message: {e}"))?;
    line::ready();

    let deadline = tokio::time::sleep(std::time::Duration::from_secs(args.timeout_s));
    tokio::pin!(deadline);
    let mut pending = FuturesUnordered::new();
    let mut samples = Samples::default();
    let mut errors = 0_u64;
    let mut first_error = None;
    let mut started: Option<Instant> = None;
    while (samples.len() as u64) + errors < args.expect {
        tokio::select! {
            item = messages.next() => {
                let Some(item) = item else { break };
                let message = match item {
                    Ok(data) => match data.message.and_then(|edge| edge.node) {
                        Some(node) => node,
                        None => continue,
                    },
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                        continue;
                    }
                };
                if message.from.typename != "Visitor" {
                    continue;
                }
                started.get_or_insert_with(Instant::now);
                let stamp = visitor_stamp(&message.content);
                let reply = OutgoingMessage::new(message.channel.id, format!("echo: {}", message.content));
                let session = session.clone();
                pending.push(async move { (stamp, session.send_message(reply).await) });
            }
            Some((stamp, result)) = pending.next(), if !pending.is_empty() => {
                match result {
                    Ok(_) => match stamp {
                        Some(sent) => samples.push_us(unix_micros().saturating_sub(sent)),
                        None => errors += 1,
                    },
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            () = &mut deadline => {
                first_error.get_or_insert_with(|| format!("timed out after {} s", args.timeout_s));
                errors += args.expect.saturating_sub(samples.len() as u64 + errors);
                break;
            }
        }
    }
    let elapsed_s = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    let ops = samples.len() as u64;
    line::done(
        &[Phase {
            name: "echo",
            ops,
            errors,
            elapsed_s,
            latency: samples.summary(),
            first_error,
        }],
        &serde_json::Value::Null,
    );
    // The session's socket goes down with the process; the next round starts a fresh one.
    Ok(())
}

/// The send time a visitor stamped into `bench <seq> <unix_us>`.
fn visitor_stamp(text: &str) -> Option<u64> {
    let mut words = text.split(' ');
    (words.next()? == "bench").then_some(())?;
    words.next()?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_visitor_stamp() {
        assert_eq!(
            super::visitor_stamp("bench 12 1700000000000000"),
            Some(1_700_000_000_000_000)
        );
        assert_eq!(super::visitor_stamp("hello there"), None);
        assert_eq!(super::visitor_stamp("bench 1"), None);
    }
}
