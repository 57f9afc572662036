//! `zd agent tail | echo | send | departments | agents | status`.

use futures_util::StreamExt;
use serde_json::json;
use zd_agent::ops::Sender;
use zd_agent::{AgentSession, AgentStatus, Message};

use crate::cli::{AgentCommand, StatusArg};
use crate::error::{CliError, Kind, Result, agent_kind};
use crate::target::Context;

fn agent_err(what: &'static str) -> impl FnOnce(zd_agent::Error) -> CliError {
    move |e| CliError::with(agent_kind(&e), what, e)
}

/// A message as one JSON line.
pub(crate) fn message_json(m: &Message) -> serde_json::Value {
    let (from, from_id) = match &m.from {
        Sender::Visitor(v) => ("visitor", v.id.inner().to_owned()),
        Sender::Agent(a) => ("agent", a.id.inner().to_owned()),
        Sender::Unknown(u) => ("unknown", u.id.inner().to_owned()),
        _ => ("unknown", String::new()),
    };
    json!({
        "channel_id": m.channel.id.inner(),
        "id": m.id.inner(),
        "from": from,
        "from_id": from_id,
        "sender_name": m.sender_name,
        "content": m.content,
        "msg_id": m.msg_id,
        "timestamp": m.timestamp,
    })
}

const fn status_of(arg: StatusArg) -> AgentStatus {
    match arg {
        StatusArg::Online => AgentStatus::Online,
        StatusArg::Away => AgentStatus::Away,
        StatusArg::Invisible => AgentStatus::Invisible,
        StatusArg::Offline => AgentStatus::Offline,
    }
}

/// Runs one agent command.
pub(crate) async fn run(ctx: &Context, cmd: AgentCommand) -> Result<()> {
    match cmd {
        AgentCommand::Tail { target, count } => {
            let target = ctx.chat(&target).await?;
            let session = target.connect().await?;
            let mut messages = session
                .messages()
                .await
                .map_err(agent_err("cannot subscribe to messages"))?;
            ready(&target);
            let mut seen = 0;
            while let Some(item) = messages.next().await {
                let m = item.map_err(agent_err("the message subscription failed"))?;
                println!("{}", message_json(&m));
                seen += 1;
                if count.is_some_and(|c| seen >= c) {
                    break;
                }
            }
            stop(&session).await;
        }
        AgentCommand::Echo { target, count } => {
            let target = ctx.chat(&target).await?;
            let session = target.connect().await?;
            session
                .update_agent_status(AgentStatus::Online)
                .await
                .map_err(agent_err("cannot go online"))?;
            let mut messages = session
                .messages()
                .await
                .map_err(agent_err("cannot subscribe to messages"))?;
            ready(&target);
            let mut answered = 0;
            while let Some(item) = messages.next().await {
                let m = item.map_err(agent_err("the message subscription failed"))?;
                if !m.is_from_visitor() {
                    continue;
                }
                session
                    .say(m.channel.id.clone(), format!("echo: {}", m.content))
                    .await
                    .map_err(agent_err("cannot answer"))?;
                println!("{}", message_json(&m));
                answered += 1;
                if count.is_some_and(|c| answered >= c) {
                    break;
                }
            }
            stop(&session).await;
        }
        AgentCommand::Send {
            target,
            channel,
            text,
        } => {
            let target = ctx.chat(&target).await?;
            let session = target.connect().await?;
            let msg_id = session
                .say(channel, text)
                .await
                .map_err(agent_err("cannot send"))?;
            println!("{}", json!({ "msg_id": msg_id }));
            stop(&session).await;
        }
        AgentCommand::Departments { target } => {
            let target = ctx.chat(&target).await?;
            let session = target.connect().await?;
            let mut all = std::pin::pin!(session.departments());
            while let Some(d) = all.next().await {
                let d = d.map_err(agent_err("cannot list departments"))?;
                println!(
                    "{}",
                    json!({ "id": d.id.inner(), "name": d.name, "status": d.status.map(|s| format!("{s:?}").to_uppercase()) })
                );
            }
            stop(&session).await;
        }
        AgentCommand::Agents { target } => {
            let target = ctx.chat(&target).await?;
            let session = target.connect().await?;
            let mut all = std::pin::pin!(session.agents());
            while let Some(a) = all.next().await {
                let a = a.map_err(agent_err("cannot list agents"))?;
                println!(
                    "{}",
                    json!({ "id": a.id.inner(), "name": a.name, "display_name": a.display_name, "status": a.status.map(|s| format!("{s:?}").to_uppercase()) })
                );
            }
            stop(&session).await;
        }
        AgentCommand::Status { target, set } => {
            let target = ctx.chat(&target).await?;
            if set.is_none() && target.agent_id.is_none() {
                // Known before connecting: a session would be started (one of the 50 an hour)
                // only to be told nothing.
                return Err(unknown_agent());
            }
            let session = target.connect().await?;
            let status = set.map_or(AgentStatus::Online, status_of);
            if set.is_some() {
                let agent = session
                    .update_agent_status(status)
                    .await
                    .map_err(agent_err("cannot set the status"))?;
                let name = agent.as_ref().and_then(|a| a.display_name.clone());
                println!(
                    "{}",
                    json!({ "agent": name, "status": format!("{status:?}").to_uppercase() })
                );
            } else {
                let shown = own_status(&session, target.agent_id.as_deref()).await;
                stop(&session).await;
                println!("{}", shown?);
                return Ok(());
            }
            stop(&session).await;
        }
    }
    Ok(())
}

/// `zd agent status` with no status to set, for a token whose agent is not known.
fn unknown_agent() -> CliError {
    CliError::new(
        Kind::Usage,
        "the Chat API does not say which agent a token belongs to, so `zd agent status` can \
         only set a status here; `zd agent agents` lists every agent's status",
    )
}

/// This agent's status as the service knows it. A fresh session has set none, and the Chat
/// API has no query for "this agent": it is found by id among every agent, so the id must be
/// known (the emulator's account says whose token it hands out).
async fn own_status(session: &AgentSession, agent_id: Option<&str>) -> Result<serde_json::Value> {
    let Some(agent_id) = agent_id else {
        return Err(unknown_agent());
    };
    let mut all = std::pin::pin!(session.agents());
    while let Some(agent) = all.next().await {
        let agent = agent.map_err(agent_err("cannot list agents"))?;
        if agent.id.inner() == agent_id {
            return Ok(json!({
                "agent": agent.display_name,
                "id": agent_id,
                "status": agent.status.map(|s| format!("{s:?}").to_uppercase()),
            }));
        }
    }
    Err(CliError::new(
        Kind::Service,
        format!("the service does not list agent {agent_id}"),
    ))
}

/// Tells a person where to chat when the agent runs on an emulator.
fn ready(target: &crate::target::ChatTarget) {
    if let Some(emulator) = &target.emulator {
        eprintln!(
            "connected to the emulator; chat as a visitor at {}/",
            emulator.base_url()
        );
    } else {
        eprintln!("connected to {}", target.endpoint);
    }
}

async fn stop(session: &AgentSession) {
    if let Err(error) = session.stop().await {
        tracing::debug!(%error, "stopAgentSession failed");
    }
}
