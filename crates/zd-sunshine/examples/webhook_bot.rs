//! A bot on Sunshine Conversations: webhooks in, REST out.
//!
//! It binds a loopback port, mounts [`WebhookService`] there, registers a custom integration
//! with a webhook pointing at that port over REST, and answers every end-user message with
//! `echo: <text>` through `PostMessage`.
//!
//! Run the emulator (`cargo run -p zd-emulator -- --port 8090`), then
//! `SUNSHINE_URL=http://127.0.0.1:8090 SUNSHINE_APP_ID=... SUNSHINE_KEY_ID=... \
//! SUNSHINE_KEY_SECRET=... cargo run -p zd-sunshine --example webhook_bot`
//! (the values are shown at `GET /_emulator/account`, under `sunshine`).
//! `tests/webhook_bot.rs` runs this same code end to end.

use std::net::SocketAddr;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use zd_sunshine::models::{self, AuthorWebhookType, Content, WebhookEvent};
use zd_sunshine::webhooks::{Delivery, WebhookService};
use zd_sunshine::{Client, Secret, operations};

/// A running bot: where its webhook listens, and the ids it registered.
#[derive(Debug)]
pub(crate) struct Bot {
    /// The webhook target the bot registered.
    pub(crate) target: String,
    /// The custom integration holding the webhook.
    pub(crate) integration_id: String,
    /// The webhook's id.
    pub(crate) webhook_id: String,
    /// How many replies the bot has posted so far (tests wait on it instead of sleeping).
    pub(crate) replies: tokio::sync::watch::Receiver<usize>,
    /// The task serving webhook requests (abort it to stop the bot).
    pub(crate) server: tokio::task::JoinHandle<()>,
}

/// Binds `listen`, registers a webhook for `conversation:message` on `app_id` at that address,
/// and serves it: every end-user text message is answered with `echo: <text>`.
pub(crate) async fn start_bot(
    client: Client,
    app_id: String,
    listen: SocketAddr,
) -> Result<Bot, Box<dyn std::error::Error + Send + Sync>> {
    // Bind first so the registered target is the real port.
    let listener = TcpListener::bind(listen).await?;
    let target = format!("http://{}/sunshine/webhooks", listener.local_addr()?);

    // A custom integration is born with its first webhook; the answer carries its secret.
    let integration: models::Integration = serde_json::from_value(serde_json::json!({
        "type": "custom",
        "displayName": "echo bot",
        "webhooks": [{ "target": target, "triggers": ["conversation:message"] }],
    }))?;
    let created = operations::CreateIntegration::new(&app_id, integration)
        .send(&client)
        .await?;
    let Some(models::Integration::Custom(custom)) = created.integration else {
        return Err("CreateIntegration answered without a custom integration".into());
    };
    let integration_id = custom.id.ok_or("integration without id")?;
    let webhook = custom
        .webhooks
        .into_iter()
        .next()
        .ok_or("integration without its webhook")?;
    let webhook_id = webhook.id.ok_or("webhook without id")?;
    let secret = webhook.secret.ok_or("webhook without secret")?;

    let (count, replies) = tokio::sync::watch::channel(0_usize);
    let service = WebhookService::new(Secret::new(secret), move |delivery: Delivery| {
        let client = client.clone();
        let app_id = app_id.clone();
        let count = count.clone();
        async move {
            match answer(&client, &app_id, delivery).await {
                Ok(true) => count.send_modify(|n| *n += 1),
                Ok(false) => {}
                Err(error) => eprintln!("could not answer: {error}"),
            }
        }
    })?;
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(Bot {
        target,
        integration_id,
        webhook_id,
        replies,
        server,
    })
}

/// Replies to one end-user text message; ignores everything else (including the bot's own
/// messages, which would otherwise loop). Says whether it replied.
async fn answer(
    client: &Client,
    app_id: &str,
    delivery: Delivery,
) -> Result<bool, zd_sunshine::Error> {
    let WebhookEvent::ConversationMessage(event) = delivery.event else {
        return Ok(false);
    };
    let Some(payload) = event.payload else {
        return Ok(false);
    };
    let (Some(conversation), Some(message)) = (payload.conversation, payload.message) else {
        return Ok(false);
    };
    let from_user = message
        .author
        .as_ref()
        .is_some_and(|a| a.r#type == AuthorWebhookType::User);
    let (Some(conversation_id), true, Some(Content::Text(text))) =
        (conversation.id, from_user, message.content)
    else {
        return Ok(false);
    };
    let reply = format!("echo: {}", text.text.unwrap_or_default());
    operations::PostMessage::new(
        app_id,
        conversation_id,
        models::MessagePost::business_text(reply),
    )
    .send(client)
    .await?;
    Ok(true)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    let url = var("SUNSHINE_URL")?;
    let app_id = var("SUNSHINE_APP_ID")?;
    let key = zd_auth::sunshine::ApiKey::new(var("SUNSHINE_KEY_ID")?, var("SUNSHINE_KEY_SECRET")?)?;
    let client = Client::new(
        zd_sunshine::Region::Custom(url),
        zd_auth::sunshine::BasicAuth::new(&key),
    )?;
    let bot = start_bot(client, app_id, SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    println!(
        "webhook {} of integration {} at {}",
        bot.webhook_id, bot.integration_id, bot.target
    );
    let mut replies = bot.replies;
    tokio::spawn(async move {
        while replies.changed().await.is_ok() {
            println!("replies so far: {}", *replies.borrow());
        }
    });
    bot.server.await?;
    Ok(())
}
