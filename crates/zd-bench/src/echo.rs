//! The chat echo bot on our side: `zd-agent` answering every visitor message with its echo.
//!
//! It does the work `xtask/peers/node/echo_bot.js` does: go online, subscribe to `message` with
//! the peer's own selection set (through [`AgentSession::subscribe_document`], into serde types
//! of the fields it reads), answer each visitor message with `echo: <text>`, and time each
//! message from the visitor's stamp (`bench <seq> <unix_us>`) to the acknowledgement of its
//! echo. By default it is the loop of zd-agent's README: await each echo's answer, then take the
//! next event (events queue in the subscription meanwhile, and that wait counts in latency).
//! `--in-flight` answers like the peer instead, without waiting for earlier answers.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use zd_agent::{
    AgentSession, AgentStatus, Config, Error, OutgoingMessage, StaticToken, Subscription,
};

use crate::latency::{Samples, unix_micros};
use crate::line::{self, Phase};

/// What every echo bot needs (ours and the floor bot in `floor.rs`).
#[derive(Debug, clap::Args)]
pub(crate) struct BotArgs {
    /// `startAgentSession` endpoint (`http://127.0.0.1:PORT/graphql/request`).
    #[arg(long)]
    pub(crate) graphql_url: String,
    /// The agent's access token.
    #[arg(long)]
    pub(crate) token: String,
    /// Visitor messages to answer before reporting.
    #[arg(long)]
    pub(crate) expect: u64,
    /// Give up (and report what was answered) after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub(crate) timeout_s: u64,
}

/// What our echo bot needs.
#[derive(Debug, clap::Args)]
pub(crate) struct EchoArgs {
    #[command(flatten)]
    bot: BotArgs,
    /// Keep answers in flight (a `FuturesUnordered` of sends) instead of awaiting each one.
    #[arg(long)]
    in_flight: bool,
}

/// The peer's subscription, word for word (the official sample's selection set): both bots
/// then ask for, receive and decode the same fields.
pub(crate) const MESSAGE_SUBSCRIPTION: &str = "subscription { message { node { id content channel { id } from { __typename display_name } } } }";

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
    let endpoint =
        url::Url::parse(&args.bot.graphql_url).map_err(|e| format!("graphql url: {e}"))?;
    let config = Config::with_endpoint(endpoint);
    let token = StaticToken::bearer(args.bot.token.clone()).map_err(|e| format!("token: {e}"))?;
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
    let messages = session
        .subscribe_document::<MessageData>(MESSAGE_SUBSCRIPTION, None)
        .await
        .map_err(|e| format!("subscribe message: {e}"))?;
    line::ready();

    let mut tally = Tally::default();
    let limit = std::time::Duration::from_secs(args.bot.timeout_s);
    let echo = async {
        if args.in_flight {
            in_flight(&session, messages, args.bot.expect, &mut tally).await;
        } else {
            in_order(&session, messages, args.bot.expect, &mut tally).await;
        }
    };
    let timed_out = tokio::time::timeout(limit, echo).await.is_err();
    tally.finish(args.bot.expect, || {
        if timed_out {
            format!("timed out after {} s", args.bot.timeout_s)
        } else {
            "the subscription ended".to_owned()
        }
    });
    // The session's socket goes down with the process; the next round starts a fresh one.
    Ok(())
}

/// zd-agent's README loop: each echo is awaited before the next event is taken.
async fn in_order(
    session: &AgentSession,
    mut messages: Subscription<MessageData>,
    expect: u64,
    tally: &mut Tally,
) {
    while tally.count() < expect {
        let Some(item) = messages.next().await else {
            break;
        };
        if let Some((stamp, reply)) = tally.echo_of(item) {
            let result = session.send_message(reply).await;
            tally.answered(stamp, result);
        }
    }
}

/// The peer's way: every echo goes out at once and answers are matched as they come.
async fn in_flight(
    session: &AgentSession,
    mut messages: Subscription<MessageData>,
    expect: u64,
    tally: &mut Tally,
) {
    let mut pending = FuturesUnordered::new();
    let send = |stamp, reply| {
        let session = session.clone();
        async move { (stamp, session.send_message(reply).await) }
    };
    while tally.count() < expect {
        tokio::select! {
            item = messages.next() => {
                let Some(item) = item else { break };
                if let Some((stamp, reply)) = tally.echo_of(item) {
                    pending.push(send(stamp, reply));
                }
            }
            Some((stamp, result)) = pending.next(), if !pending.is_empty() => {
                tally.answered(stamp, result);
            }
        }
    }
}

/// What a bot counts while it answers (the floor bot in `floor.rs` counts the same way).
#[derive(Default)]
pub(crate) struct Tally {
    samples: Samples,
    errors: u64,
    first_error: Option<String>,
    started: Option<Instant>,
}

impl Tally {
    pub(crate) fn count(&self) -> u64 {
        self.samples.len() as u64 + self.errors
    }

    fn fail(&mut self, error: String) {
        self.first_error.get_or_insert(error);
    }

    /// The first visitor message has arrived: the phase's wall time starts here.
    pub(crate) fn start(&mut self) {
        self.started.get_or_insert_with(Instant::now);
    }

    /// An echo was acknowledged; `stamp` is its visitor's send time.
    pub(crate) fn ok(&mut self, stamp: Option<u64>) {
        match stamp {
            Some(sent) => self.samples.push_us(unix_micros().saturating_sub(sent)),
            // Without a stamp there is no latency to count: the run is not the one expected.
            None => self.errors += 1,
        }
    }

    /// A visitor message that got no acknowledged echo, for `why`.
    pub(crate) fn error(&mut self, why: String) {
        self.errors += 1;
        self.fail(why);
    }

    /// Counts every message not yet answered as failed, for `why`.
    fn give_up(&mut self, expect: u64, why: String) {
        self.fail(why);
        self.errors += expect.saturating_sub(self.count());
    }

    /// The echo to send for a subscription item, with the visitor's stamp; `None` for items
    /// that are not visitor messages (the bot's own echoes come back through `message` too).
    fn echo_of(
        &mut self,
        item: Result<MessageData, Error>,
    ) -> Option<(Option<u64>, OutgoingMessage)> {
        let node = match item {
            Ok(data) => data.message.and_then(|edge| edge.node)?,
            Err(e) => {
                self.error(e.to_string());
                return None;
            }
        };
        if node.from.typename != "Visitor" {
            return None;
        }
        self.start();
        let stamp = visitor_stamp(&node.content);
        let reply = OutgoingMessage::new(node.channel.id, format!("echo: {}", node.content));
        Some((stamp, reply))
    }

    fn answered(&mut self, stamp: Option<u64>, result: Result<String, Error>) {
        match result {
            Ok(_) => self.ok(stamp),
            Err(e) => self.error(e.to_string()),
        }
    }

    /// Ends the run: what is still unanswered fails for `why`, then the result line is printed.
    pub(crate) fn finish(mut self, expect: u64, why: impl FnOnce() -> String) {
        if self.count() < expect {
            self.give_up(expect, why());
        }
        self.report();
    }

    fn report(self) {
        let elapsed_s = self.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        line::done(
            &[Phase {
                name: "echo",
                ops: self.samples.len() as u64,
                errors: self.errors,
                elapsed_s,
                latency: self.samples.summary(),
                first_error: self.first_error,
            }],
            &serde_json::Value::Null,
        );
    }
}

/// The send time a visitor stamped into `bench <seq> <unix_us>`.
pub(crate) fn visitor_stamp(text: &str) -> Option<u64> {
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

    #[test]
    fn giving_up_fails_only_what_is_unanswered() {
        let mut tally = super::Tally::default();
        tally.answered(Some(super::unix_micros()), Ok("m1".to_owned()));
        tally.answered(None, Ok("m2".to_owned()));
        tally.give_up(5, "the subscription ended".to_owned());
        assert_eq!((tally.samples.len(), tally.errors), (1, 4));
        assert_eq!(tally.first_error.as_deref(), Some("the subscription ended"));
        tally.give_up(5, "again".to_owned());
        assert_eq!(tally.errors, 4);
    }
}
