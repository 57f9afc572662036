//! Mounts the Sunshine webhook service in an axum app.
//!
//! Run with `SUNSHINE_WEBHOOK_SECRET=... cargo run -p zd-sunshine --example webhook_axum`, then
//! point a Sunshine webhook at `http://<host>:3000/sunshine/webhooks`.

use axum::Router;
use axum::routing::get;
use zd_sunshine::Secret;
use zd_sunshine::models::WebhookEvent;
use zd_sunshine::webhooks::{Delivery, WebhookService};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // No default secret: a well-known one would let anyone who can reach the port post events.
    let Ok(secret) = std::env::var("SUNSHINE_WEBHOOK_SECRET") else {
        eprintln!(
            "set SUNSHINE_WEBHOOK_SECRET to the webhook's secret (returned when the webhook is created)"
        );
        std::process::exit(2);
    };
    let addr = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());

    // The service answers Sunshine at once and queues the events; one worker task runs this
    // handler for each, in delivery order, so a slow handler delays the events behind it.
    let webhooks = WebhookService::new(Secret::new(secret), |delivery: Delivery| async move {
        match &delivery.event {
            WebhookEvent::ConversationMessage(event) => {
                let text = event
                    .payload
                    .as_ref()
                    .and_then(|p| p.message.as_ref())
                    .and_then(|m| m.id.as_deref())
                    .unwrap_or("?");
                println!("app {:?}: new message {text}", delivery.app_id);
            }
            other => println!("app {:?}: {}", delivery.app_id, other.type_name()),
        }
    })?;

    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route_service("/sunshine/webhooks", webhooks);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "listening on http://{}/sunshine/webhooks",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
