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
/// to, in turn, each to a department other than the chat's (`channels` knows where each chat
/// is). Messages on the simulator's `channels` are counted against what it sent; messages
/// from any other visitor (someone chatting in the browser) are answered too but counted
/// apart, as the simulator cannot count their side.
pub(crate) async fn run(
    session: AgentSession,
    mut messages: Subscription<Message>,
    departments: Vec<String>,
    stats: Arc<Stats>,
    channels: Arc<Channels>,
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
        let simulated = channels.contains(message.channel.id.inner());
        let fresh = if simulated {
            stats.bot_received(message.id.inner())
        } else {
            stats.foreign_received(message.id.inner())
        };
        if !fresh {
            continue;
        }
        turn += 1;
        let current = channels.department(message.channel.id.inner());
        let target = transfer_target(&departments, current.as_deref(), turn).cloned();
        let session = session.clone();
        let stats = Arc::clone(&stats);
        let channels = Arc::clone(&channels);
        tokio::spawn(async move {
            let (sent, failed) = if simulated {
                (&stats.bot_sent, &stats.bot_send_failed)
            } else {
                (&stats.foreign_sent, &stats.foreign_send_failed)
            };
            match answer(&session, &message, target, &stats, &channels).await {
                Ok(()) => Stats::add(sent),
                Err(error) => {
                    Stats::add(failed);
                    tracing::warn!(%error, "the bot could not answer");
                }
            }
        });
    }
}

/// The department a transfer moves a chat to: one of `departments` other than `current`, the
/// chat's, the `turn`th of them so that transfers spread over them. `None` when there is no
/// other. A chat whose department is not known (a browser visitor's, until the bot first moves
/// it) may be in any of them.
fn transfer_target<'a>(
    departments: &'a [String],
    current: Option<&str>,
    turn: usize,
) -> Option<&'a String> {
    let others: Vec<&String> = departments
        .iter()
        .filter(|d| Some(d.as_str()) != current)
        .collect();
    others.get(turn % others.len().max(1)).copied()
}

async fn answer(
    session: &AgentSession,
    message: &Message,
    department: Option<String>,
    stats: &Stats,
    channels: &Channels,
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
            let moved = match department {
                Some(department) => transfer(session, message, department, stats, channels).await,
                None => false,
            };
            let reply = if moved {
                "You are now with another department"
            } else {
                "No other department can take this chat"
            };
            session.say(channel, reply).await?;
        }
        Reply::Echo(text) => {
            session.say(channel, text).await?;
        }
    }
    Ok(())
}

/// Moves the chat `message` came in to `department`; true when it moved, which is then
/// counted and remembered for the chat's next transfer.
async fn transfer(
    session: &AgentSession,
    message: &Message,
    department: String,
    stats: &Stats,
    channels: &Channels,
) -> bool {
    let channel = &message.channel.id;
    match session
        .transfer_to_department(channel.clone(), department.clone().into(), Some(false))
        .await
    {
        Ok(()) => {
            channels.moved(channel.inner(), &department);
            Stats::add(&stats.transfers);
            true
        }
        Err(error) => {
            tracing::info!(%error, "transfer failed");
            false
        }
    }
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

    #[test]
    fn a_transfer_moves_the_chat_to_another_department() {
        let departments = [
            "support".to_owned(),
            "sales".to_owned(),
            "billing".to_owned(),
        ];
        for turn in 0..6 {
            for current in &departments {
                let target = transfer_target(&departments, Some(current), turn);
                assert!(target.is_some_and(|t| t != current), "{turn} {current}");
            }
        }
        // Two departments: always the other one.
        let two = &departments[..2];
        for turn in 0..4 {
            assert_eq!(
                transfer_target(two, Some("support"), turn).map(String::as_str),
                Some("sales")
            );
        }
        // Transfers spread over the others in turn.
        let targets: Vec<_> = (0..2)
            .filter_map(|turn| transfer_target(&departments, Some("sales"), turn))
            .collect();
        assert_eq!(targets, [&departments[0], &departments[2]]);
        // Nowhere else to go.
        assert_eq!(transfer_target(&departments[..1], Some("support"), 1), None);
        assert_eq!(transfer_target(&[], None, 1), None);
        // Not known where the chat is: any department.
        assert!(transfer_target(&departments, None, 1).is_some());
    }
}
