//! The README's 20-line bot: echo every visitor message. Run `zd emulator` first.

use std::sync::Arc;

use futures_util::StreamExt;
use zd_agent::{AgentSession, AgentStatus, Config, StaticToken};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `zd emulator` prints this endpoint and token; for Zendesk, use the default endpoint.
    let config = Config::with_endpoint("http://127.0.0.1:8090/graphql/request".parse()?);
    let token = Arc::new(StaticToken::bearer("demo-bot-token")?);
    let (session, driver) = AgentSession::connect(config, token).await?;
    tokio::spawn(driver);
    session.update_agent_status(AgentStatus::Online).await?;
    let mut messages = session.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        if message.is_from_visitor() {
            let reply = format!("echo: {}", message.content);
            session.say(message.channel.id.clone(), reply).await?;
        }
    }
    Ok(())
}
