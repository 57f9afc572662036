//! `zd agent tail | echo | send | departments | agents | status`.

use futures_util::StreamExt;
use serde_json::json;
use zd_agent::ops::Sender;
use zd_agent::{AgentSession, AgentStatus, Message, SessionState, Subscription};

use crate::cli::{AgentCommand, StatusArg};
use crate::error::{CliError, Kind, Result, agent_kind};
use crate::out;
use crate::target::{ChatTarget, Context};

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

/// Runs one agent command. Once a session is started, it is stopped however the command
/// ends (done or failed, and for `tail` and `echo`, which run until stopped, Ctrl-C or a stop
/// signal, see [`crate::interrupt::stop_requested`]): a session left open keeps the agent
/// attached, and after `echo` online, until the service notices the socket is gone.
pub(crate) async fn run(ctx: &Context, cmd: AgentCommand) -> Result<()> {
    match cmd {
        AgentCommand::Tail { target, count } => {
            let target = ctx.chat(&target).await?;
            let session = target.connect().await?;
            let work = tail(&session, &target, count);
            stop_after(&session, until(work)).await
        }
        AgentCommand::Echo { target, count } => {
            let target = ctx.chat(&target).await?;
            let session = target.connect().await?;
            let work = echo(&session, &target, count);
            stop_after(&session, until(work)).await
        }
        AgentCommand::Send {
            target,
            channel,
            text,
        } => {
            let target = ctx.chat(&target).await?;
            let session = target.connect().await?;
            let work = async {
                let msg_id = session
                    .say(channel, text)
                    .await
                    .map_err(agent_err("cannot send"))?;
                out::line(json!({ "msg_id": msg_id }))
            };
            stop_after(&session, work).await
        }
        AgentCommand::Departments { target } => {
            let target = ctx.chat(&target).await?;
            let session = target.connect().await?;
            let work = async {
                let mut all = std::pin::pin!(session.departments());
                while let Some(d) = all.next().await {
                    let d = d.map_err(agent_err("cannot list departments"))?;
                    out::line(
                        json!({ "id": d.id.inner(), "name": d.name, "status": d.status.map(wire_name) }),
                    )?;
                }
                Ok(())
            };
            stop_after(&session, work).await
        }
        AgentCommand::Agents { target } => {
            let target = ctx.chat(&target).await?;
            let session = target.connect().await?;
            let work = async {
                let mut all = std::pin::pin!(session.agents());
                while let Some(a) = all.next().await {
                    let a = a.map_err(agent_err("cannot list agents"))?;
                    out::line(
                        json!({ "id": a.id.inner(), "name": a.name, "display_name": a.display_name, "status": a.status.map(wire_name) }),
                    )?;
                }
                Ok(())
            };
            stop_after(&session, work).await
        }
        AgentCommand::Status { target, set } => {
            let target = ctx.chat(&target).await?;
            if set.is_none() && target.agent_id.is_none() {
                // Known before connecting: a session would be started (one of the 50 an hour)
                // only to be told nothing.
                return Err(unknown_agent());
            }
            let session = target.connect().await?;
            let shown = match set {
                Some(set) => {
                    let status = status_of(set);
                    let work = async {
                        let agent = session
                            .update_agent_status(status)
                            .await
                            .map_err(agent_err("cannot set the status"))?;
                        let name = agent.as_ref().and_then(|a| a.display_name.clone());
                        Ok(json!({ "agent": name, "status": wire_name(status) }))
                    };
                    stop_after(&session, work).await?
                }
                None => {
                    stop_after(&session, own_status(&session, target.agent_id.as_deref())).await?
                }
            };
            out::line(shown)
        }
    }
}

/// `work`, or nothing once Ctrl-C is pressed or a stop signal comes (which ends the command
/// successfully: it is how `tail` and `echo` are meant to stop).
async fn until(work: impl Future<Output = Result<()>>) -> Result<()> {
    // Listened for once there is a session to stop (until then Ctrl-C still cuts short a start
    // that hangs) and before `work` says it is ready. A failure to listen still stops the
    // session: this runs inside `stop_after`.
    let interrupted = crate::interrupt::stop_requested()?;
    tokio::select! {
        outcome = work => outcome,
        () = interrupted => Ok(()),
    }
}

/// Runs `work`, then stops the session whatever its outcome.
async fn stop_after<T>(session: &AgentSession, work: impl Future<Output = Result<T>>) -> Result<T> {
    let outcome = work.await;
    stop(session).await;
    outcome
}

/// `zd agent tail`: every message, until `count` of them or the session ends.
async fn tail(session: &AgentSession, target: &ChatTarget, count: Option<u64>) -> Result<()> {
    let mut messages = session
        .messages()
        .await
        .map_err(agent_err("cannot subscribe to messages"))?;
    ready(target);
    let mut seen = 0;
    while let Some(m) = next_message(session, &mut messages).await? {
        out::line(message_json(&m))?;
        seen += 1;
        if count.is_some_and(|c| seen >= c) {
            break;
        }
    }
    Ok(())
}

/// `zd agent echo`: answers every visitor message, until `count` answers or the session ends.
/// A reply that fails is told on stderr and the bot goes on: one refused send (a channel that
/// just closed, a rate limit that outlasted the retries) must not take the bot down for every
/// other visitor.
async fn echo(session: &AgentSession, target: &ChatTarget, count: Option<u64>) -> Result<()> {
    session
        .update_agent_status(AgentStatus::Online)
        .await
        .map_err(agent_err("cannot go online"))?;
    let mut messages = session
        .messages()
        .await
        .map_err(agent_err("cannot subscribe to messages"))?;
    ready(target);
    let mut answered = 0;
    while let Some(m) = next_message(session, &mut messages).await? {
        if !m.is_from_visitor() {
            continue;
        }
        if let Err(e) = session
            .say(m.channel.id.clone(), format!("echo: {}", m.content))
            .await
        {
            if ends_session(session, &e) {
                return Err(agent_err("cannot answer")(e));
            }
            // The ids, not the text: it is the visitor's.
            let message = format!(
                "cannot answer message {} in channel {}; going on",
                m.id.inner(),
                m.channel.id.inner()
            );
            crate::error::warn(&message, &e);
            continue;
        }
        out::line(message_json(&m))?;
        answered += 1;
        if count.is_some_and(|c| answered >= c) {
            break;
        }
    }
    Ok(())
}

/// The next message; `None` when the subscription has ended cleanly. Errors the subscription
/// goes on after (a DATA error, a failed catch-up after a reconnect) are told on stderr; one
/// that came with the end of the session or of the subscription ends the command.
async fn next_message(
    session: &AgentSession,
    messages: &mut Subscription<Message>,
) -> Result<Option<Message>> {
    let mut last_error = None;
    loop {
        match messages.next().await {
            Some(Ok(m)) => return Ok(Some(m)),
            Some(Err(e)) if ends_session(session, &e) => {
                return Err(agent_err("the agent session ended")(e));
            }
            Some(Err(e)) => {
                crate::error::warn("the message subscription reported an error; going on", &e);
                last_error = Some(e);
            }
            // A subscription the driver gave up on ends right after the error that says why.
            None => {
                return match last_error {
                    Some(e) => Err(agent_err("the message subscription ended")(e)),
                    None => Ok(None),
                };
            }
        }
    }
}

/// Whether `error` came with the end of the session, after which nothing more will work.
fn ends_session(session: &AgentSession, error: &zd_agent::Error) -> bool {
    matches!(
        error.kind(),
        zd_agent::ErrorKind::Closed { .. } | zd_agent::ErrorKind::ConcurrentSession
    ) || session.state() == SessionState::Closed
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
                "status": agent.status.map(wire_name),
            }));
        }
    }
    Err(CliError::new(
        Kind::Service,
        format!("the service does not list agent {agent_id}"),
    ))
}

/// Tells a person where to chat when the agent runs on an emulator.
fn ready(target: &ChatTarget) {
    if let Some(emulator) = &target.emulator {
        crate::out::note(format_args!(
            "connected to the emulator; chat as a visitor at {}/",
            emulator.base_url()
        ));
    } else {
        crate::out::note(format_args!("connected to {}", target.endpoint));
    }
}

/// How long a command waits for the service to confirm the session's end. Someone who
/// pressed Ctrl-C waits on this, and a dead service would otherwise hold them for the whole
/// request timeout (30 s).
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Stops the session: at most [`STOP_WAIT`], and a (second) Ctrl-C ends the wait at once.
async fn stop(session: &AgentSession) {
    tokio::select! {
        stopped = tokio::time::timeout(STOP_WAIT, session.stop()) => match stopped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::debug!(%error, "stopAgentSession failed"),
            Err(_) => crate::out::note(format_args!(
                "zd: the service did not confirm the session's end within {} s",
                STOP_WAIT.as_secs()
            )),
        },
        // A handler that cannot be installed is not a Ctrl-C: the stop still gets its wait.
        () = crate::interrupt::ctrl_c() => {}
    }
}

/// A status as the service names it (`ONLINE`, or the unknown name it sent); `UNKNOWN` for a
/// status whose name the client does not keep.
fn wire_name(status: impl serde::Serialize) -> String {
    match serde_json::to_value(status) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "UNKNOWN".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::wire_name;

    #[test]
    fn statuses_print_as_the_service_names_them() {
        use zd_agent::AgentStatus;
        use zd_agent::ops::DepartmentStatus;
        assert_eq!(wire_name(DepartmentStatus::Online), "ONLINE");
        assert_eq!(
            wire_name(DepartmentStatus::Unknown("BUSY".to_owned())),
            "BUSY"
        );
        assert_eq!(wire_name(AgentStatus::Invisible), "INVISIBLE");
        assert_eq!(wire_name(AgentStatus::Unknown), "UNKNOWN");
    }
}
