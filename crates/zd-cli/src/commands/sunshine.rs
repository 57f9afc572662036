//! `zd sunshine apps | users | conversations | messages ...` over the generated client.

use std::io::Write;

use futures_util::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use zd_sunshine::operations::{
    CreateApp, CreateConversation, CreateUser, GetApp, GetConversation, GetUser, ListApps,
    ListConversations, ListMessages, ListUsers, PostMessage,
};
use zd_sunshine::{Client, Region};

use crate::cli::{
    AppsAction, ConversationsAction, MessagesAction, Paging, SunshineCommand, SunshineTarget,
    UsersAction,
};
use crate::error::{CliError, Context as _, Kind, Result};
use crate::target::{Context, EmulatorLink};

fn api_err(what: &'static str) -> impl FnOnce(zd_sunshine::Error) -> CliError {
    move |e| {
        let kind = match e.status().map(|s| s.as_u16()) {
            Some(401 | 403) => Kind::Auth,
            _ => Kind::Service,
        };
        CliError::with(kind, what, e)
    }
}

/// A client, its app id, and the emulator it may need alive.
struct Connected {
    client: Client,
    app_id: String,
    _emulator: Option<EmulatorLink>,
}

/// `account` asks for the emulator's account key (app operations need one); with configured
/// credentials the configured key is used either way.
async fn connect(ctx: &Context, flags: &SunshineTarget, account_key: bool) -> Result<Connected> {
    let p = &ctx.profile;
    let key_id = flags.key_id.clone().or_else(|| p.sunshine_key_id.clone());
    let secret = flags
        .key_secret
        .clone()
        .or_else(|| p.sunshine_key_secret.clone());
    let app_id = flags.app_id.clone().or_else(|| p.sunshine_app_id.clone());
    let url = flags
        .sunshine_url
        .clone()
        .or_else(|| p.sunshine_url.clone());
    let (key_id, secret, app_id, region, emulator) = match (key_id, secret) {
        (Some(id), Some(secret)) => {
            let region = url.map_or(Region::Us, Region::Custom);
            (id, secret, app_id.unwrap_or_default(), region, None)
        }
        (None, None) => {
            if let Some(url) = url {
                // The emulator's keys are never sent to another host.
                return Err(CliError::new(
                    Kind::Usage,
                    format!(
                        "the Sunshine URL {url} (--sunshine-url, SUNSHINE_URL or the profile's \
                         sunshine_url) needs a key (SUNSHINE_KEY_ID and SUNSHINE_KEY_SECRET, or \
                         the profile's); without one, zd talks to the emulator"
                    ),
                ));
            }
            let emulator = ctx.emulator().await?;
            let account = emulator.account().await?;
            let app = &account["sunshine"];
            let field = |name: &str| {
                app[name].as_str().map(str::to_owned).ok_or_else(|| {
                    CliError::new(
                        Kind::Service,
                        format!(
                            "the emulator's account has no sunshine.{name} (no Sunshine service?)"
                        ),
                    )
                })
            };
            let (id, secret) = if account_key {
                (field("account_key_id")?, field("account_key_secret")?)
            } else {
                (field("key_id")?, field("key_secret")?)
            };
            let app_id = match app_id {
                Some(a) => a,
                None => field("app_id")?,
            };
            let region = Region::Custom(emulator.base_url().to_owned());
            (
                id,
                zd_auth::Secret::new(secret),
                app_id,
                region,
                Some(emulator),
            )
        }
        _ => {
            return Err(CliError::new(
                Kind::Config,
                "set both SUNSHINE_KEY_ID and SUNSHINE_KEY_SECRET (or neither, for the emulator)",
            ));
        }
    };
    let key = zd_auth::sunshine::ApiKey::new(key_id, secret)
        .map_err(|e| CliError::with(crate::error::auth_kind(&e), "invalid Sunshine API key", e))?;
    let client = Client::new(region, zd_auth::sunshine::BasicAuth::new(&key))
        .map_err(api_err("cannot build the Sunshine client"))?;
    Ok(Connected {
        client,
        app_id,
        _emulator: emulator,
    })
}

fn require_app(c: &Connected) -> Result<&str> {
    if c.app_id.is_empty() {
        return Err(CliError::new(
            Kind::Config,
            "missing --app-id or SUNSHINE_APP_ID",
        ));
    }
    Ok(&c.app_id)
}

fn print<T: Serialize>(value: &T) -> Result<()> {
    let line = serde_json::to_string(value).context(Kind::Io, "cannot encode the answer")?;
    println!("{line}");
    Ok(())
}

fn body<T: DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).context(Kind::Usage, "invalid request body")
}

/// Prints every item of `items` as a JSON line; with a progress bar on stderr when asked.
async fn print_all<T: Serialize>(
    items: impl Stream<Item = Result<T, zd_sunshine::Error>>,
    limit: Option<usize>,
    mut out: impl Write,
) -> Result<u64> {
    let progress = crate::progress::Counter::new("items");
    let mut items = std::pin::pin!(items);
    let mut count = 0u64;
    while let Some(item) = items.next().await {
        let item = item.map_err(api_err("listing failed"))?;
        let line = serde_json::to_string(&item).context(Kind::Io, "cannot encode an item")?;
        writeln!(out, "{line}").context(Kind::Io, "cannot write")?;
        count += 1;
        progress.tick(count);
        if limit.is_some_and(|l| count >= l as u64) {
            break;
        }
    }
    progress.finish(count);
    Ok(count)
}

const fn limit(paging: Paging) -> Option<usize> {
    if paging.all {
        None
    } else {
        Some(paging.page_size as usize)
    }
}

/// Every message of a conversation, oldest first. Messages page backwards from the most
/// recent (`meta.beforeCursor` sent back as `page[before]`), which the generic `.paginate()`
/// does not follow, so this walks the pages itself.
async fn all_messages(
    client: &Client,
    first: ListMessages,
) -> Result<Vec<zd_sunshine::models::Message>> {
    let progress = crate::progress::Counter::new("messages");
    let mut pages = Vec::new();
    let mut count = 0u64;
    let mut request = first;
    let mut seen_cursor: Option<String> = None;
    loop {
        let page = request
            .send(client)
            .await
            .map_err(api_err("cannot list messages"))?;
        let messages = page.messages.unwrap_or_default();
        count += messages.len() as u64;
        progress.tick(count);
        pages.push(messages);
        let meta = page.meta.unwrap_or_default();
        match (meta.has_more, meta.before_cursor) {
            (Some(true), Some(cursor)) if seen_cursor.as_deref() != Some(cursor.as_str()) => {
                request = request.clone().page_before(cursor.clone());
                seen_cursor = Some(cursor);
            }
            _ => break,
        }
    }
    progress.finish(count);
    Ok(pages.into_iter().rev().flatten().collect())
}

fn write_lines<T: Serialize>(items: &[T], mut out: impl Write) -> Result<()> {
    for item in items {
        let line = serde_json::to_string(item).context(Kind::Io, "cannot encode an item")?;
        writeln!(out, "{line}").context(Kind::Io, "cannot write")?;
    }
    Ok(())
}

/// Runs one sunshine command.
pub(crate) async fn run(ctx: &Context, cmd: SunshineCommand) -> Result<()> {
    match cmd {
        SunshineCommand::Apps { target, action } => {
            let c = connect(ctx, &target, true).await?;
            match action {
                AppsAction::List { paging } => {
                    let req = ListApps::new().page_size(i64::from(paging.page_size));
                    print_all(
                        req.paginate(&c.client),
                        limit(paging),
                        std::io::stdout().lock(),
                    )
                    .await?;
                }
                AppsAction::Get { id } => print(
                    &GetApp::new(id)
                        .send(&c.client)
                        .await
                        .map_err(api_err("cannot get the app"))?,
                )?,
                AppsAction::Create { name } => {
                    let req = CreateApp::new(body(json!({ "displayName": name }))?);
                    print(
                        &req.send(&c.client)
                            .await
                            .map_err(api_err("cannot create the app"))?,
                    )?;
                }
            }
        }
        SunshineCommand::Users { target, action } => {
            let c = connect(ctx, &target, false).await?;
            let app = require_app(&c)?;
            match action {
                UsersAction::List { email } => {
                    let users = ListUsers::new(app, email)
                        .send(&c.client)
                        .await
                        .map_err(api_err("cannot list the users"))?;
                    for user in users.users.unwrap_or_default() {
                        print(&user)?;
                    }
                }
                UsersAction::Get { id } => print(
                    &GetUser::new(app, id)
                        .send(&c.client)
                        .await
                        .map_err(api_err("cannot get the user"))?,
                )?,
                UsersAction::Create {
                    external_id,
                    given_name,
                } => {
                    let mut b = json!({ "externalId": external_id });
                    if let Some(name) = given_name {
                        b["profile"] = json!({ "givenName": name });
                    }
                    let req = CreateUser::new(app, body(b)?);
                    print(
                        &req.send(&c.client)
                            .await
                            .map_err(api_err("cannot create the user"))?,
                    )?;
                }
            }
        }
        SunshineCommand::Conversations { target, action } => {
            let c = connect(ctx, &target, false).await?;
            let app = require_app(&c)?;
            match action {
                ConversationsAction::List { user, paging } => {
                    let req = ListConversations::new(app)
                        .filter_user_id(user)
                        .page_size(i64::from(paging.page_size));
                    print_all(
                        req.paginate(&c.client),
                        limit(paging),
                        std::io::stdout().lock(),
                    )
                    .await?;
                }
                ConversationsAction::Get { id } => {
                    print(
                        &GetConversation::new(app, id)
                            .send(&c.client)
                            .await
                            .map_err(api_err("cannot get the conversation"))?,
                    )?;
                }
                ConversationsAction::Create { user } => {
                    let b = json!({ "type": "personal", "participants": [{ "userId": user, "subscribeSDKClient": false }] });
                    let req = CreateConversation::new(app, body(b)?);
                    print(
                        &req.send(&c.client)
                            .await
                            .map_err(api_err("cannot create the conversation"))?,
                    )?;
                }
            }
        }
        SunshineCommand::Messages { target, action } => {
            let c = connect(ctx, &target, false).await?;
            let app = require_app(&c)?;
            match action {
                MessagesAction::List { conversation, all } => {
                    let req = ListMessages::new(app, conversation);
                    let messages = if all {
                        all_messages(&c.client, req).await?
                    } else {
                        let page = req
                            .send(&c.client)
                            .await
                            .map_err(api_err("cannot list messages"))?;
                        page.messages.unwrap_or_default()
                    };
                    write_lines(&messages, std::io::stdout().lock())?;
                }
                MessagesAction::Create { conversation, text } => {
                    let b = json!({ "author": { "type": "business" }, "content": { "type": "text", "text": text } });
                    let req = PostMessage::new(app, conversation, body(b)?);
                    print(
                        &req.send(&c.client)
                            .await
                            .map_err(api_err("cannot post the message"))?,
                    )?;
                }
                MessagesAction::Export {
                    conversation,
                    output,
                } => {
                    let req = ListMessages::new(app, &conversation);
                    let messages = all_messages(&c.client, req).await?;
                    if output.as_os_str() == "-" {
                        write_lines(&messages, std::io::stdout().lock())?;
                    } else {
                        let file = std::fs::File::create(&output)
                            .context(Kind::Io, format!("cannot create {}", output.display()))?;
                        let mut w = std::io::BufWriter::new(file);
                        write_lines(&messages, &mut w)?;
                        w.flush()
                            .context(Kind::Io, format!("cannot write {}", output.display()))?;
                    }
                    let count = messages.len();
                    eprintln!("exported {count} messages of {conversation}");
                }
            }
        }
    }
    Ok(())
}
