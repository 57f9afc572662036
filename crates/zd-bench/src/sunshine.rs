//! The Sunshine REST workload on our side (`zd-sunshine`), and the seeding step both sides
//! share.
//!
//! Phases, the same in `xtask/peers/{node,python}/sunshine_*`: list every message of a seeded
//! conversation through cursor pagination (pages of 100, the API's fixed size; newest page first, then
//! `page[before]`, one page at a time as cursors require), create users and post messages with `concurrency` requests in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use zd_auth::sunshine::{ApiKey, BasicAuth};
use zd_sunshine::{Client, Region, models, operations};

use crate::latency::Samples;
use crate::line::{self, Phase};

/// How to reach the Sunshine service.
#[derive(Debug, clap::Args)]
pub(crate) struct Target {
    /// Base URL; the API is under `{base}/v2`.
    #[arg(long)]
    base: String,
    /// App id.
    #[arg(long)]
    app_id: String,
    /// App key id (Basic user name).
    #[arg(long)]
    key_id: String,
    /// App key secret.
    #[arg(long)]
    key_secret: String,
}

/// The measured run.
#[derive(Debug, clap::Args)]
pub(crate) struct SunshineArgs {
    #[command(flatten)]
    target: Target,
    /// Conversation whose messages are listed.
    #[arg(long)]
    list_conversation: String,
    /// Conversation the messages are posted to.
    #[arg(long)]
    post_conversation: String,
    /// Users to create.
    #[arg(long)]
    users: u64,
    /// Messages to post.
    #[arg(long)]
    posts: u64,
    /// Requests in flight for the create and post phases.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Prefix of the created users' externalId, unique per round.
    #[arg(long)]
    tag: String,
}

/// The seeding step (not measured).
#[derive(Debug, clap::Args)]
pub(crate) struct SeedArgs {
    #[command(flatten)]
    target: Target,
    /// Messages in the conversation to list.
    #[arg(long)]
    messages: u64,
    /// Empty conversations to create for the post phase (one per round and side).
    #[arg(long)]
    post_conversations: u64,
}

fn client(target: &Target) -> Result<Client, String> {
    let key = ApiKey::new(target.key_id.clone(), target.key_secret.clone())
        .map_err(|e| format!("api key: {e}"))?;
    Client::new(Region::Custom(target.base.clone()), BasicAuth::new(&key))
        .map_err(|e| format!("client: {e}"))
}

fn model<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| format!("request body: {e}"))
}

fn text_message(text: &str) -> Result<models::MessagePost, String> {
    model(json!({ "author": { "type": "business" }, "content": { "type": "text", "text": text } }))
}

async fn create_user(client: &Client, app: &str, external_id: String) -> Result<String, String> {
    let body = model(json!({ "externalId": external_id, "profile": { "givenName": "Bench" } }))?;
    let created = operations::CreateUser::new(app, body)
        .send(client)
        .await
        .map_err(|e| format!("CreateUser: {e}"))?;
    id_at(&created, "user")
}

fn id_at<T: serde::Serialize>(response: &T, field: &str) -> Result<String, String> {
    let value = serde_json::to_value(response).map_err(|e| e.to_string())?;
    value[field]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("response without {field}.id"))
}

/// Seeds a conversation with `messages` messages and creates the empty ones for posting.
pub(crate) async fn seed(args: SeedArgs) -> Result<(), String> {
    let client = client(&args.target)?;
    let app = args.target.app_id.as_str();
    let mut conversations = Vec::new();
    for i in 0..=args.post_conversations {
        let user = create_user(
            &client,
            app,
            format!("bench-owner-{i}-{}", std::process::id()),
        )
        .await?;
        let body = model(json!({ "type": "personal", "participants": [{ "userId": user }] }))?;
        let created = operations::CreateConversation::new(app, body)
            .send(&client)
            .await
            .map_err(|e| format!("CreateConversation: {e}"))?;
        conversations.push(id_at(&created, "conversation")?);
    }
    let list = conversations.remove(0);
    let next = AtomicU64::new(0);
    let mut workers = FuturesUnordered::new();
    for _ in 0..16 {
        workers.push(async {
            while next.fetch_add(1, Ordering::Relaxed) < args.messages {
                operations::PostMessage::new(app, &list, text_message("seed")?)
                    .send(&client)
                    .await
                    .map_err(|e| format!("PostMessage (seed): {e}"))?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(result) = workers.next().await {
        result?;
    }
    println!(
        "{}",
        json!({ "event": "seeded", "list_conversation": list, "post_conversations": conversations })
    );
    Ok(())
}

/// Runs the three phases and prints the `done` line.
pub(crate) async fn run(args: SunshineArgs) -> Result<(), String> {
    let client = client(&args.target)?;
    let app = args.target.app_id.clone();
    // One cheap request first so connection set-up is not part of the first phase.
    operations::ListMessages::new(&app, &args.list_conversation)
        .send(&client)
        .await
        .map_err(|e| format!("warm-up ListMessages: {e}"))?;
    line::ready();

    let mut phases = Vec::new();
    phases.push(list(&client, &app, &args.list_conversation).await);
    let users = {
        let (app, tag) = (app.clone(), args.tag.clone());
        concurrent("create_users", args.users, args.concurrency, |i| {
            let (client, app, tag) = (client.clone(), app.clone(), tag.clone());
            async move {
                create_user(&client, &app, format!("{tag}-{i}"))
                    .await
                    .map(drop)
            }
        })
        .await
    };
    phases.push(users);
    let posts = {
        let (app, conversation) = (app.clone(), args.post_conversation.clone());
        concurrent("post_messages", args.posts, args.concurrency, |i| {
            let (client, app, conversation) = (client.clone(), app.clone(), conversation.clone());
            async move {
                operations::PostMessage::new(
                    app,
                    conversation,
                    text_message(&format!("bench {i}"))?,
                )
                .send(&client)
                .await
                .map(drop)
                .map_err(|e| format!("PostMessage: {e}"))
            }
        })
        .await
    };
    phases.push(posts);
    line::done(&phases, &Value::Null);
    Ok(())
}

/// Every page of the conversation, one request at a time (each needs the previous cursor).
///
/// Messages page backwards: the first answer is the newest page and `hasMore` says whether
/// older ones exist before `beforeCursor`.
async fn list(client: &Client, app: &str, conversation: &str) -> Phase {
    let start = Instant::now();
    let mut samples = Samples::default();
    let mut items = 0_u64;
    let mut request = operations::ListMessages::new(app, conversation);
    let mut first_error = None;
    loop {
        let sent = Instant::now();
        match request.send(client).await {
            Ok(page) => {
                samples.push(sent.elapsed());
                items += page.messages.as_ref().map_or(0, |m| m.len() as u64);
                let next = page
                    .meta
                    .as_ref()
                    .filter(|m| m.has_more == Some(true))
                    .and_then(|m| m.before_cursor.clone());
                match next {
                    Some(cursor) => request = request.page_before(cursor),
                    None => break,
                }
            }
            Err(e) => {
                first_error = Some(format!("ListMessages: {e}"));
                break;
            }
        }
    }
    Phase {
        name: "list",
        ops: items,
        errors: u64::from(first_error.is_some()),
        elapsed_s: start.elapsed().as_secs_f64(),
        latency: samples.summary(),
        first_error,
    }
}

/// `total` operations, `concurrency` at a time, each timed.
async fn concurrent<F, Fut>(name: &'static str, total: u64, concurrency: usize, op: F) -> Phase
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    let next = AtomicU64::new(0);
    let samples = Arc::new(Mutex::new(Samples::default()));
    let failures = AtomicU64::new(0);
    let first_error = Mutex::new(None);
    let mut workers = FuturesUnordered::new();
    for _ in 0..concurrency.max(1) {
        workers.push(async {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let sent = Instant::now();
                match op(i).await {
                    Ok(()) => samples.lock().await.push(sent.elapsed()),
                    Err(e) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().await.get_or_insert(e);
                    }
                }
            }
        });
    }
    while workers.next().await.is_some() {}
    drop(workers);
    let elapsed_s = start.elapsed().as_secs_f64();
    let samples = std::mem::take(&mut *samples.lock().await);
    let ops = samples.len() as u64;
    Phase {
        name,
        ops,
        errors: failures.load(Ordering::Relaxed),
        elapsed_s,
        latency: samples.summary(),
        first_error: first_error.into_inner(),
    }
}
