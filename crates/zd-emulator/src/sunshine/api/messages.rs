//! Messages and activities.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::{Need, access};
use crate::sunshine::content;
use crate::sunshine::error::{ApiError, ApiResult, Missing, created, ok, ok_json};
use crate::sunshine::events::emit;
use crate::sunshine::http::{self, Page, Payload, Query};
use crate::sunshine::metadata;
use crate::sunshine::store::Store;
use crate::sunshine::{Sunshine, util};

const SUBTYPES: [&str; 4] = ["AI", "activity", "agent", "bot"];

/// Checks an `author` and resolves a user author to its user id.
pub(crate) fn author(
    store: &Store,
    app_id: &str,
    author: Option<&Value>,
) -> Result<(Value, Option<String>), ApiError> {
    let a = author
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::bad_request("should have required property 'author'"))?;
    let kind = http::req_str(a, "type")?;
    let mut out = Map::new();
    out.insert("type".into(), json!(kind));
    if let Some(subtypes) = a.get("subtypes") {
        let list = subtypes
            .as_array()
            .filter(|l| {
                l.len() == 1
                    && l.iter()
                        .all(|v| v.as_str().is_some_and(|s| SUBTYPES.contains(&s)))
            })
            .ok_or_else(|| {
                ApiError::bad_request("author.subtypes should hold one of AI, activity, agent, bot")
            })?;
        out.insert("subtypes".into(), Value::Array(list.clone()));
    }
    for f in ["displayName", "avatarUrl"] {
        if let Some(v) = http::opt_str(a, f)? {
            out.insert(f.into(), json!(v));
        }
    }
    let user_id = match kind {
        "business" => None,
        "user" => {
            let app = store.app(app_id)?;
            let key = http::opt_str(a, "userId")?
                .or(http::opt_str(a, "userExternalId")?)
                .ok_or_else(|| {
                    ApiError::bad_request("a user author needs userId or userExternalId")
                })?;
            let id = app
                .user_id(&key)
                .ok_or_else(|| ApiError::bad_request(format!("user {key} does not exist")))?;
            out.insert("userId".into(), json!(id));
            Some(id)
        }
        _ => {
            return Err(ApiError::bad_request(
                "author.type should be business or user",
            ));
        }
    };
    Ok((Value::Object(out), user_id))
}

/// Appends a message, enforcing the per-conversation limit, and emits `conversation:message`.
///
/// `source` may name the `client` and `device` the user wrote from: the event carries them
/// (for webhooks with `includeFullSource`), the stored message does not, as they are "not
/// applicable in API responses".
pub(crate) fn append(
    s: &Sunshine,
    store: &mut Store,
    app_id: &str,
    conversation_id: &str,
    author: Value,
    user_id: Option<&str>,
    content: Value,
    metadata: Value,
    source: Value,
) -> Result<Value, ApiError> {
    let limit = s.config().message_limit;
    let app = store.app_mut(app_id)?;
    let default = app
        .active_switchboard()
        .and_then(|sb| sb.default_integration.clone());
    let c = super::conversations::conv_mut(app, conversation_id)?;
    if c.messages.len() >= limit {
        return Err(ApiError::new(
            StatusCode::LOCKED,
            "locked",
            format!("Message limit of {limit} per conversation reached."),
        ));
    }
    let now = util::now_iso();
    let mut stored_source = source.clone();
    if let Some(o) = stored_source.as_object_mut() {
        o.remove("client");
        o.remove("device");
    }
    let message = json!({
        "id": s.next_id(),
        "received": now,
        "author": author,
        "content": content,
        "source": stored_source,
        "metadata": metadata,
        "deleted": false,
        "quotedMessage": null,
    });
    let stored = serde_json::value::to_raw_value(&message)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    c.messages.insert(
        message["id"].as_str().unwrap_or_default().to_owned(),
        stored,
    );
    c.last_updated_at = Some(now);
    // A released conversation has nobody in control until the user writes again: then the
    // default switchboard integration takes it (the emulator's reading of the switchboard
    // guide; the spec says only that release nullifies the switchboard state).
    if user_id.is_some() && c.active_switchboard_integration.is_none() {
        c.active_switchboard_integration = default;
    }
    for p in &mut c.participants {
        if user_id != Some(p.user_id.as_str()) {
            p.unread_count += 1;
        }
    }
    let app = store.app(app_id)?;
    emit(s, store, app_id, "conversation:message", || {
        let conversation = app.conversations[conversation_id].render_truncated(app);
        let mut hooked = message.clone();
        if let (Some(u), Some(a)) = (
            user_id.and_then(|u| app.users.get(u)),
            hooked["author"].as_object_mut(),
        ) {
            a.insert("user".into(), u.render());
        }
        if let Some(o) = hooked.as_object_mut() {
            o.insert("source".into(), source);
        }
        json!({ "conversation": conversation, "message": hooked })
    });
    if message["author"]["type"] == "business" {
        let id = message["id"].as_str().unwrap_or_default();
        crate::sunshine::delivery::business_message(s, store, app_id, conversation_id, id);
    }
    Ok(message)
}

pub(crate) async fn post(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    let who = access(&store, &headers, Some(&app_id), Need::Data)?;
    let body = http::json_body(&body)?;
    let (author, user_id) = author(&store, &app_id, body.get("author"))?;
    let content = body
        .get("content")
        .ok_or_else(|| ApiError::bad_request("should have required property 'content'"))?;
    content::check(content)?;
    let metadata = metadata::opt(&body, "metadata")?.map_or(Value::Null, Value::Object);
    let integration_id = match who {
        crate::sunshine::auth::Principal::Integration { integration_id, .. } => {
            Some(integration_id)
        }
        _ => None,
    };
    let message = append(
        &s,
        &mut store,
        &app_id,
        &conversation_id,
        author,
        user_id.as_deref(),
        content.clone(),
        metadata,
        json!({ "type": "api:conversations", "integrationId": integration_id }),
    )?;
    created(json!({ "messages": [message] }))
}

pub(crate) async fn list(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    uri: Uri,
    Path((app_id, conversation_id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let q = Query::parse(q.as_deref())?;
    // Pages of 100, whatever `page[size]` says (see `Page::parse_fixed`).
    let page = Page::parse_fixed(&q, 100)?;
    let app = store.app(&app_id)?;
    // ListMessages' documented 404 is the plain one, unlike its neighbours'.
    let c = app
        .conversations
        .get(&conversation_id)
        .ok_or_else(|| ApiError::not_found(Missing::Resource))?;
    let url = http::self_url(&headers, uri.path());
    let (messages, meta, links) = http::paginate(&c.messages, &page, true, &url);
    // Written straight from the stored bytes: no tree per message, no copy of one.
    #[derive(serde::Serialize)]
    struct Body<'a> {
        messages: Vec<&'a RawValue>,
        meta: Value,
        links: Value,
    }
    let messages = messages.into_iter().map(AsRef::as_ref).collect();
    ok_json(
        StatusCode::OK,
        &Body {
            messages,
            meta,
            links,
        },
    )
}

pub(crate) async fn delete_all(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let app = store.app_mut(&app_id)?;
    let c = super::conversations::conv_mut(app, &conversation_id)?;
    c.messages.clear();
    // Every message of the conversation is gone, and with them what was uploaded for them.
    app.drop_attachments_of(&conversation_id);
    ok(json!({}))
}

pub(crate) async fn delete_one(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, conversation_id, message_id)): Path<(String, String, String)>,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let app = store.app_mut(&app_id)?;
    let c = super::conversations::conv_mut(app, &conversation_id)?;
    let removed = c
        .messages
        .remove(&message_id)
        .ok_or_else(|| ApiError::not_found(Missing::Other("Message not found")))?;
    drop_media_of(app, &conversation_id, std::slice::from_ref(&removed));
    ok(json!({}))
}

/// Drops the attachments uploaded for conversation `conversation_id` that the `removed`
/// messages showed, unless another of the conversation's messages still shows them: an
/// attachment goes with its message.
pub(crate) fn drop_media_of(
    app: &mut crate::sunshine::store::App,
    conversation_id: &str,
    removed: &[Box<RawValue>],
) {
    let Some(c) = app.conversations.get(conversation_id) else {
        return;
    };
    let gone: std::collections::HashSet<String> =
        removed.iter().flat_map(|raw| media_urls(raw)).collect();
    if gone.is_empty() {
        return;
    }
    // One pass over what stays (a user deleted with thousands of messages must not cost a
    // scan of the conversation per message); only a message naming a media URL is parsed.
    let still_shown: std::collections::HashSet<String> = c
        .messages
        .values()
        .filter(|raw| raw.get().contains("mediaUrl"))
        .flat_map(|raw| media_urls(raw))
        .collect();
    let gone: std::collections::HashSet<String> = gone.difference(&still_shown).cloned().collect();
    if !gone.is_empty() {
        app.drop_attachments_at(conversation_id, &gone);
    }
}

/// The media URLs a stored message's content shows: its own `mediaUrl` (image and file
/// messages) and its carousel or list items' `mediaUrl`.
fn media_urls(raw: &RawValue) -> Vec<String> {
    let Ok(message) = serde_json::from_str::<Value>(raw.get()) else {
        return Vec::new();
    };
    let content = &message["content"];
    let items = content
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| item.get("mediaUrl"));
    content
        .get("mediaUrl")
        .into_iter()
        .chain(items)
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// Records a read or typing activity from `source` and emits its event.
pub(crate) fn activity_of(
    s: &Sunshine,
    store: &mut Store,
    app_id: &str,
    conversation_id: &str,
    author: Value,
    user_id: Option<&str>,
    kind: &str,
    source: Value,
) -> Result<(), ApiError> {
    let app = store.app_mut(app_id)?;
    let c = super::conversations::conv_mut(app, conversation_id)?;
    if kind == "conversation:read" {
        let now = util::now_iso();
        match user_id {
            Some(u) => {
                let p = c
                    .participants
                    .iter_mut()
                    .find(|p| p.user_id == u)
                    .ok_or_else(|| ApiError::bad_request("the user is not a participant"))?;
                p.last_read = Some(now);
                p.unread_count = 0;
            }
            None => c.business_last_read = Some(now),
        }
    }
    let app = store.app(app_id)?;
    let conversation = app.conversations[conversation_id].render_truncated(app);
    let event = if kind == "conversation:read" {
        "conversation:read"
    } else {
        "conversation:typing"
    };
    let activity_type = match kind {
        "typing:start" => "typing:start",
        "typing:stop" => "typing:stop",
        _ => "conversation:read",
    };
    emit(s, store, app_id, event, || {
        let mut author = author;
        if let (Some(u), Some(a)) = (
            user_id.and_then(|u| app.users.get(u)),
            author.as_object_mut(),
        ) {
            a.insert("user".into(), u.render());
        }
        json!({
            "conversation": conversation,
            "activity": { "type": activity_type, "author": author, "source": source },
        })
    });
    Ok(())
}

pub(crate) async fn activity(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let body = http::json_body(&body)?;
    let (author, user_id) = author(&store, &app_id, body.get("author"))?;
    let kind = http::req_str(&body, "type")?.to_owned();
    if !["conversation:read", "typing:start", "typing:stop"].contains(&kind.as_str()) {
        return Err(ApiError::bad_request(
            "type should be conversation:read, typing:start or typing:stop",
        ));
    }
    if user_id.is_some() && kind != "conversation:read" {
        return Err(ApiError::bad_request(
            "If the author type is user, only conversation:read is supported",
        ));
    }
    activity_of(
        &s,
        &mut store,
        &app_id,
        &conversation_id,
        author,
        user_id.as_deref(),
        &kind,
        json!({ "type": "api:conversations" }),
    )?;
    ok(json!({}))
}
