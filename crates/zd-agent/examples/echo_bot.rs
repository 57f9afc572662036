//! A chat bot doing what Zendesk's own sample app does: echo the visitor, transfer to an online
//! department on "transfer", quick replies on "what ice cream flavor", a button template on
//! "button me", invite another agent on "invite", list agents and channels on "agents" and
//! "channels".
//!
//! ```text
//! cargo run -p zd-agent --example echo_bot            # local emulator; chat at the printed URL
//! cargo run -p zd-agent --example echo_bot -- --demo  # local emulator plus a scripted visitor
//! ZD_CHAT_TOKEN=... cargo run -p zd-agent --example echo_bot   # a real Zendesk Chat account
//! ```
//!
//! With `ZD_CHAT_TOKEN` (an OAuth token with the `read write chat` scopes) it connects to
//! Zendesk (`ZD_CHAT_ENDPOINT` overrides the endpoint); otherwise it starts the emulator.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use zd_agent::ops::{Agent, DepartmentStatus};
use zd_agent::structured::{Button, ButtonTemplate, Fallback, QuickReplies};
use zd_agent::{AgentSession, AgentStatus, Config, Message, OutgoingMessage, Secret, StaticToken};
use zd_emulator::Emulator;
use zd_emulator::state::Arrival;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "zd_agent=info".into()),
        )
        .init();
    let demo = std::env::args().any(|a| a == "--demo");

    let (emulator, config, token) = match std::env::var("ZD_CHAT_TOKEN") {
        Ok(token) => {
            let mut config = Config::default();
            if let Ok(endpoint) = std::env::var("ZD_CHAT_ENDPOINT") {
                config.endpoint = endpoint.parse()?;
            }
            (None, config, Secret::new(token))
        }
        Err(_) => {
            let emulator = Emulator::builder().start().await?;
            let account = emulator.account();
            println!(
                "emulator running; chat as a visitor at {}",
                account.widget_url
            );
            let config = Config::with_endpoint(emulator.graphql_url().parse()?);
            let token = account.agents[0].access_token.clone();
            (Some(emulator), config, token)
        }
    };

    let (session, driver) =
        AgentSession::connect(config, Arc::new(StaticToken::bearer(token)?)).await?;
    // The driver owns the socket; it runs until the session closes.
    let driver = tokio::spawn(driver);
    let mut lifecycle = Box::pin(session.lifecycle());
    tokio::spawn(async move {
        while let Some(event) = lifecycle.next().await {
            println!("[session] {event:?}");
        }
    });

    session.update_agent_status(AgentStatus::Online).await?;
    let agents: Vec<Agent> = session.agents().try_collect().await?;
    for a in &agents {
        println!(
            "[agent] {} ({:?})",
            a.display_name.as_deref().unwrap_or("?"),
            a.status
        );
    }
    let channels: Vec<_> = session.channels().try_collect().await?;
    println!("[channels] serving {}", channels.len());

    let mut messages = session.messages().await?;
    if let Some(emulator) = emulator.as_ref().filter(|_| demo) {
        tokio::spawn(scripted_visitor(emulator.control().clone()));
    }
    let deadline = tokio::time::sleep(if demo {
        Duration::from_secs(5)
    } else {
        Duration::MAX / 4
    });
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = messages.next() => match next {
                Some(Ok(m)) if m.is_from_visitor() => {
                    if let Err(e) = handle(&session, &m).await {
                        eprintln!("[bot] could not answer {:?}: {e}", m.content);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => eprintln!("[bot] subscription error: {e}"),
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
            () = &mut deadline => break,
        }
    }
    drop(messages);
    session.stop().await?;
    driver.await?;
    Ok(())
}

async fn handle(session: &AgentSession, m: &Message) -> Result<(), zd_agent::Error> {
    let channel = m.channel.id.clone();
    println!("[visitor] {}", m.content);
    match m.content.trim().to_lowercase().as_str() {
        "transfer" => {
            let departments: Vec<_> = session.departments().try_collect().await?;
            match departments
                .into_iter()
                .find(|d| d.status == Some(DepartmentStatus::Online))
            {
                Some(d) => {
                    let name = d.name.clone().unwrap_or_default();
                    session
                        .say(channel.clone(), format!("Transferring you to {name}"))
                        .await?;
                    session
                        .transfer_to_department(channel, d.id, Some(true))
                        .await
                }
                None => session
                    .say(channel, "No department is online right now.")
                    .await
                    .map(drop),
            }
        }
        "what ice cream flavor" => {
            let question = "We have the following options. Which one is your favorite?";
            let mut replies = QuickReplies::new(question);
            for flavor in [
                "Chocolate",
                "Vanilla",
                "Cookies and cream",
                "Coconut",
                "Salted caramel",
            ] {
                replies =
                    replies.reply(flavor, format!("My favorite is {}", flavor.to_lowercase()));
            }
            session
                .send_quick_replies(channel, replies.with_default_fallback())
                .await
        }
        "button me" => {
            let buttons = ButtonTemplate::new("Here are some buttons")
                .button(Button::reply("Say hi", "hi"))
                .button(Button::link("Zendesk", "https://www.zendesk.com"))
                .fallback(
                    Fallback::new("Here are some buttons")
                        .option("Say hi")
                        .option("Zendesk"),
                );
            session.send_button_template(channel, buttons).await
        }
        "invite" => {
            let me = session
                .update_agent_status(AgentStatus::Online)
                .await?
                .map(|a| a.id);
            let agents: Vec<Agent> = session.agents().try_collect().await?;
            match agents.into_iter().find(|a| Some(&a.id) != me.as_ref()) {
                Some(other) => session.invite_agent(channel, other.id, Some(false)).await,
                None => session
                    .say(channel, "Nobody else to invite.")
                    .await
                    .map(drop),
            }
        }
        "agents" => {
            let agents: Vec<Agent> = session.agents().try_collect().await?;
            let names: Vec<_> = agents
                .iter()
                .filter_map(|a| a.display_name.clone())
                .collect();
            session
                .say(channel, format!("Agents: {}", names.join(", ")))
                .await
                .map(drop)
        }
        "channels" => {
            let n = session.channels().try_collect::<Vec<_>>().await?.len();
            session
                .say(channel, format!("I am serving {n} channel(s)"))
                .await
                .map(drop)
        }
        _ => {
            // A msg_id derived from the message answered, so a resend carries the same id
            // (the emulator then keeps one echo; the service does not document a repeat).
            let echo = OutgoingMessage::new(channel, m.content.clone())
                .msg_id(format!("echo-{}", m.id.inner()));
            session.send_message(echo).await.map(drop)
        }
    }
}

/// Plays the visitor through every command, then prints what the visitor saw.
async fn scripted_visitor(control: zd_emulator::Control) {
    let pause = || tokio::time::sleep(Duration::from_millis(300));
    let Ok(visitor) = control.visitor_arrive(Arrival::default()) else {
        return;
    };
    let channel = visitor.channel_id;
    for text in [
        "Hi there",
        "what ice cream flavor",
        "button me",
        "agents",
        "channels",
        "invite",
    ] {
        let _ = control.visitor_message(&channel, text);
        pause().await;
    }
    let _ = control.visitor_choose(&channel, "Vanilla");
    pause().await;
    let _ = control.visitor_message(&channel, "transfer");
    pause().await;
    if let Ok(transcript) = control.transcript(&channel) {
        println!("--- what the visitor saw ---");
        for e in transcript.entries {
            println!("{:>8} {}", e.kind, e.text);
        }
    }
}
