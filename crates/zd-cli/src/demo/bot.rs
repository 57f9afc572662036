//! The demo's agent bot, on zd-agent: echo, structured replies, and transfers.
//!
//! Every visitor message gets exactly one reply, so the demo can count both directions.

use std::sync::Arc;

use futures_util::StreamExt;
use zd_agent::structured::{Button, ButtonTemplate, QuickReplies};
use zd_agent::{AgentSession, AgentStatus, LifecycleEvent, Message, Subscription};

use super::stats::Stats;
use super::visitors::Channels;
use crate::error::{CliError, Result, agent_kind};

/// The quick replies the bot offers (label, value); the visitors pick from these.
pub(crate) const FLAVORS: [(&str, &str); 3] = [
    ("Vanilla", "I'll take vanilla"),
    ("Chocolate", "Chocolate please"),
    ("Strawberry", "Strawberry!"),
];

/// What the bot does with a visitor's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Quick replies with ice-cream flavors.
    Flavors,
    /// A button template.
    Buttons,
    /// Say so, then move the chat to the other department.
    Transfer,
    /// Echo the text.
    Echo(String),
}

/// Chooses the reply, as Zendesk's own sample bot does.
pub(crate) fn reply_for(text: &str) -> Reply {
    let lower = text.to_ascii_lowercase();
    if lower.contains("flavor") {
        Reply::Flavors
    } else if lower.contains("button") {
        Reply::Buttons
    } else if lower.contains("transfer") {
        Reply::Transfer
    } else {
        Reply::Echo(format!("echo: {text}"))
    }
}

/// Puts the bot online and subscribes to messages, so visitors find it when they arrive.
pub(crate) async fn start(session: &AgentSession) -> Result<Subscription<Message>> {
    let err =
        |what: &'static str| move |e: zd_agent::Error| CliError::with(agent_kind(&e), what, e);
    session
        .update_agent_status(AgentStatus::Online)
        .await
        .map_err(err("the bot cannot go online"))?;
    session
        .messages()
        .await
        .map_err(err("the bot cannot subscribe to messages"))
}

/// Answers messages until the stream ends. `departments` are the public ids transfers go
/// to, in turn. Messages on `simulated` channels are counted against what the simulator
/// sent; messages from any other visitor (someone chatting in the browser) are answered too
/// but counted apart, as the simulator cannot count their side.
pub(crate) async fn run(
    session: AgentSession,
    mut messages: Subscription<Message>,
    departments: Vec<String>,
    stats: Arc<Stats>,
    simulated: Arc<Channels>,
) {
    let lifecycle = session.lifecycle();
    let watcher = Arc::clone(&stats);
    tokio::spawn(async move {
        let mut lifecycle = std::pin::pin!(lifecycle);
        while let Some(event) = lifecycle.next().await {
            match event {
                LifecycleEvent::Reconnecting { .. } => Stats::add(&watcher.reconnects),
                LifecycleEvent::Restarted { .. } => Stats::add(&watcher.restarts),
                _ => {}
            }
        }
    });
    let departments: Arc<[String]> = departments.into();
    let mut turn = 0usize;
    while let Some(item) = messages.next().await {
        let message = match item {
            Ok(m) => m,
            Err(error) => {
                if session.state() == zd_agent::SessionState::Closed {
                    break;
                }
                tracing::warn!(%error, "message subscription item failed");
                continue;
            }
        };
        if !message.is_from_visitor() {
            continue;
        }
        // A simulated visitor registers its channel before it sends anything, so its
        // messages are always recognised here.
        let simulated = simulated.contains(message.channel.id.inner());
        let fresh = if simulated {
            stats.bot_received(message.id.inner())
        } else {
            stats.foreign_received(message.id.inner())
        };
        if !fresh {
            continue;
        }
        turn += 1;
        let target = departments.get(turn % departments.len().max(1)).cloned();
        let session = session.clone();
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            let (sent, failed) = if simulated {
                (&stats.bot_sent, &stats.bot_send_failed)
            } else {
                (&stats.foreign_sent, &stats.foreign_send_failed)
            };
            match answer(&session, &message, target, &stats).await {
                Ok(()) => Stats::add(sent),
                Err(error) => {
                    Stats::add(failed);
                    tracing::warn!(%error, "the bot could not answer");
                }
            }
        });
    }
}

async fn answer(
    session: &AgentSession,
    message: &Message,
    department: Option<String>,
    stats: &Stats,
) -> Result<(), zd_agent::Error> {
    let channel = message.channel.id.clone();
    match reply_for(&message.content) {
        Reply::Flavors => {
            let mut q = QuickReplies::new("What ice cream flavor would you like?");
            for (label, value) in FLAVORS {
                q = q.reply(label, value);
            }
            session
                .send_quick_replies(channel, q.with_default_fallback())
                .await?;
            Stats::add(&stats.structured);
        }
        Reply::Buttons => {
            let t = ButtonTemplate::new("Here are some buttons")
                .button(Button::reply("Tell me more", "tell me more"))
                .button(Button::link(
                    "Open the docs",
                    "https://developer.zendesk.com/",
                ));
            session.send_button_template(channel, t).await?;
            Stats::add(&stats.structured);
        }
        Reply::Transfer => {
            // Transfer first: once the visitor sees the reply it may leave, ending the chat.
            if let Some(department) = department {
                match session
                    .transfer_to_department(channel.clone(), department.into(), Some(false))
                    .await
                {
                    Ok(()) => Stats::add(&stats.transfers),
                    Err(error) => tracing::info!(%error, "transfer failed"),
                }
            }
            session
                .say(channel, "You are now with another department")
                .await?;
        }
        Reply::Echo(text) => {
            session.say(channel, text).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_like_the_sample_bot() {
        assert_eq!(reply_for("What ice cream FLAVOR?"), Reply::Flavors);
        assert_eq!(reply_for("button me"), Reply::Buttons);
        assert_eq!(reply_for("please transfer me"), Reply::Transfer);
        assert_eq!(reply_for("hi"), Reply::Echo("echo: hi".into()));
    }
}
