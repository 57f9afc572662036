//! The control API under `/_emulator/sunshine/`: the account, webhook deliveries, and end
//! users simulated on the web channel (messages, postbacks, reads, typing, referrals, logins
//! that authenticate or merge users).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::api::{conversations, messages};
use super::error::{ApiError, ApiResult, Missing, created, ok};
use super::events::emit;
use super::http::Payload;
use super::store::{Store, User};
use super::{Sunshine, util};
use super::{http, metadata};

pub(crate) fn router() -> Router<Sunshine> {
    const C: &str = "/_emulator/sunshine/apps/{app_id}/conversations/{conversation_id}";
    Router::new()
        .route("/_emulator/sunshine/account", get(account))
        .route("/_emulator/sunshine/deliveries", get(deliveries))
        .route("/_emulator/sunshine/faults/throttle", post(throttle))
        .route(
            "/_emulator/sunshine/apps/{app_id}/end-users",
            post(end_user),
        )
        .route(&format!("{C}/messages"), post(user_message))
        .route(&format!("{C}/postbacks"), post(postback))
        .route(&format!("{C}/read"), post(read))
        .route(&format!("{C}/typing"), post(typing))
        .route(&format!("{C}/referral"), post(referral))
        .route(
            "/_emulator/sunshine/apps/{app_id}/users/merge",
            post(super::merge::merge_users),
        )
        .route(
            "/_emulator/sunshine/apps/{app_id}/users/{user_id}/authenticate",
            post(authenticate),
        )
        .route(
            "/_emulator/sunshine/apps/{app_id}/users/{user_id}/clients/{client_id}/status",
            post(client_status),
        )
        .route(
            "/_emulator/sunshine/media/{app_id}/{id}/{name}",
            get(super::api::media),
        )
}

async fn account(State(s): State<Sunshine>, headers: HeaderMap) -> Json<super::SunshineAccount> {
    let base = http::self_url(&headers, "");
    Json(s.account(&base))
}

async fn deliveries(State(s): State<Sunshine>) -> Json<Value> {
    Json(json!({ "deliveries": s.deliveries() }))
}

fn web_client(s: &Sunshine) -> (Value, Value) {
    let client_id = s.next_id();
    let device_id = s.next_id();
    let now = util::now_iso();
    let client = json!({
        "id": client_id, "type": "sdk", "status": "active", "integrationId": null,
        "externalId": null, "lastSeen": now, "linkedAt": now, "displayName": null,
        "avatarUrl": null, "info": { "browserName": "zd-emulator" }, "raw": null,
    });
    let device = json!({
        "id": device_id, "type": "web", "guid": s.next_id(), "clientId": client_id,
        "status": "active", "lastSeen": now, "integrationId": "web",
        "pushNotificationToken": null, "info": null, "appVersion": null,
    });
    (client, device)
}

/// `POST /_emulator/sunshine/faults/throttle` `{requests, retryAfterSeconds?}`: the next
/// `requests` API requests are answered 429 (with `Retry-After` when given).
async fn throttle(State(s): State<Sunshine>, Payload(body): Payload) -> ApiResult {
    let body = http::json_body(&body)?;
    let requests = body
        .get("requests")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| ApiError::bad_request("requests should be a count of requests"))?;
    let retry_after = match body.get("retryAfterSeconds") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .map(std::time::Duration::from_secs)
                .ok_or_else(|| {
                    ApiError::bad_request("retryAfterSeconds should be whole seconds")
                })?,
        ),
    };
    s.throttle_requests(requests, retry_after);
    ok(json!({ "requests": requests }))
}

/// `POST /_emulator/sunshine/apps/{app}/end-users`
/// `{externalId?, givenName?, surname?, email?, locale?, identities?}`: a web-channel user
/// opens the widget: a user, an SDK client and device, and a personal conversation, with
/// `conversation:create` and `client:add` events. `identities` (`[{type, value,
/// verification?}]`) are what the user authenticated with, e.g. an email through help center
/// SSO: what `ListUsers`' `filter[identities.email]` finds.
async fn end_user(
    State(s): State<Sunshine>,
    Path(app_id): Path<String>,
    Payload(body): Payload,
) -> ApiResult {
    let body = http::json_body(&body)?;
    let external_id = http::opt_str_len(&body, "externalId", 1, 1024)?;
    let identities = identities(&body)?;
    let mut profile = serde_json::Map::new();
    for f in ["givenName", "surname", "email", "locale"] {
        if let Some(v) = http::opt_str(&body, f)? {
            profile.insert(f.into(), json!(v));
        }
    }
    let mut store = s.store();
    let app = store.app_mut(&app_id)?;
    if let Some(ext) = &external_id {
        if app.user_id(ext).is_some() {
            return Err(ApiError::conflict(format!(
                "A user with externalId {ext} already exists"
            )));
        }
    }
    let (client, device) = web_client(&s);
    let mut user = User {
        id: s.next_id(),
        external_id,
        signed_up_at: util::now_iso(),
        profile,
        identities,
        ..User::default()
    };
    user.clients.insert(
        client["id"].as_str().unwrap_or_default().into(),
        client.clone(),
    );
    user.devices.insert(
        device["id"].as_str().unwrap_or_default().into(),
        device.clone(),
    );
    let user_id = user.id.clone();
    let rendered_user = user.render();
    let truncated_user = user.render_truncated();
    app.insert_user(user);
    let cid = conversations::insert_conversation(
        &s,
        app,
        "personal",
        std::slice::from_ref(&user_id),
        None,
        None,
        Value::Null,
    );
    let conversation = app.conversations[&cid].render(app);
    let truncated = app.conversations[&cid].render_truncated(app);
    let source =
        json!({ "type": "web", "integrationId": "web", "client": client, "device": device });
    emit(
        &s,
        &store,
        &app_id,
        "conversation:create",
        || json!({ "conversation": truncated, "creationReason": "startConversation", "source": source, "user": rendered_user }),
    );
    emit(
        &s,
        &store,
        &app_id,
        "client:add",
        // The spec: the conversation is "only present when the reason is channelLinking".
        || json!({ "user": truncated_user, "client": client, "reason": "sdkLogin", "source": source }),
    );
    created(json!({ "user": rendered_user, "conversation": conversation }))
}

/// The end user's `identities`, each `{type, value, verification?}` as the user object shows
/// them (value 1 to 128 characters).
fn identities(body: &serde_json::Map<String, Value>) -> Result<Vec<Value>, ApiError> {
    let list = match body.get("identities") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) if list.len() <= 10 => list,
        Some(_) => {
            return Err(ApiError::bad_request(
                "identities should be an array of at most 10 identities",
            ));
        }
    };
    list.iter()
        .map(|identity| {
            let Value::Object(identity) = identity else {
                return Err(ApiError::bad_request("identities[] should be object"));
            };
            let kind = http::req_str(identity, "type")?;
            let value = http::req_str(identity, "value")?;
            if kind.is_empty() || value.is_empty() || value.chars().count() > 128 {
                return Err(ApiError::bad_request(
                    "an identity needs a type and a value of 1 to 128 characters",
                ));
            }
            let mut shown = json!({ "type": kind, "value": value });
            if let Some(verification) = http::opt_str(identity, "verification")? {
                shown["verification"] = json!(verification);
            }
            Ok(shown)
        })
        .collect()
}

/// `POST /_emulator/sunshine/apps/{app}/users/{user}/authenticate` `{externalId}`: an anonymous
/// web user logs in through the SDK (a JWT naming `externalId`) and becomes an authenticated
/// user. The spec fires `user:update` only for such changes of identification ("Currently,
/// when a user's identification is updated"; reason `authentication`), not for UpdateUser. An
/// `externalId` that another user holds is a merge instead (`users/merge`): 409.
async fn authenticate(
    State(s): State<Sunshine>,
    Path((app_id, user_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let body = http::json_body(&body)?;
    let external_id = http::opt_str_len(&body, "externalId", 1, 1024)?
        .ok_or_else(|| ApiError::bad_request("externalId is required"))?;
    let mut store = s.store();
    let app = store.app_mut(&app_id)?;
    let id = app
        .user_id(&user_id)
        .ok_or_else(|| ApiError::not_found(Missing::User))?;
    if app.user_id(&external_id).is_some() {
        return Err(ApiError::conflict(format!(
            "A user with externalId {external_id} already exists; log in with users/merge"
        )));
    }
    let user = app
        .users
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found(Missing::User))?;
    if user.external_id.is_some() {
        return Err(ApiError::conflict("the user is already authenticated"));
    }
    user.external_id = Some(external_id.clone());
    let rendered = user.render();
    app.external_ids.insert(external_id, id.clone());
    let source = web_source(&store, &app_id, &id);
    emit(
        &s,
        &store,
        &app_id,
        "user:update",
        || json!({ "user": rendered, "reason": "authentication", "source": source }),
    );
    ok(json!({ "user": rendered }))
}

/// `POST /_emulator/sunshine/apps/{app}/users/{user}/clients/{client}/status`
/// `{status: "active"|"blocked"}`: the end user confirms a pending client, blocks the business
/// on a channel, or unblocks it; a change is a `client:update` event (reason `confirmed`,
/// `blocked` or `unblocked`).
async fn client_status(
    State(s): State<Sunshine>,
    Path((app_id, user_id, client_id)): Path<(String, String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let body = http::json_body(&body)?;
    let status = http::req_str(&body, "status")?.to_owned();
    if !["active", "blocked"].contains(&status.as_str()) {
        return Err(ApiError::bad_request("status should be active or blocked"));
    }
    let mut store = s.store();
    let app = store.app_mut(&app_id)?;
    let id = app
        .user_id(&user_id)
        .ok_or_else(|| ApiError::not_found(Missing::User))?;
    let user = app
        .users
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found(Missing::User))?;
    let client = user
        .clients
        .get_mut(&client_id)
        .ok_or_else(|| ApiError::not_found(Missing::Client))?;
    let before = client["status"].as_str().unwrap_or_default().to_owned();
    if before == status {
        return ok(json!({ "client": client }));
    }
    let reason = match (before.as_str(), status.as_str()) {
        (_, "blocked") => "blocked",
        ("blocked", _) => "unblocked",
        _ => "confirmed",
    };
    if let Some(o) = client.as_object_mut() {
        o.insert("status".into(), json!(status));
        o.insert("lastSeen".into(), json!(util::now_iso()));
    }
    let client = client.clone();
    let truncated_user = user.render_truncated();
    let mut payload = json!({ "user": truncated_user, "client": client, "reason": reason });
    // The user's first conversation, when there is one, is where the change is reported.
    let conversation = app
        .conversations
        .values()
        .find(|c| c.participants.iter().any(|p| p.user_id == id))
        .map(|c| c.render_truncated(app));
    if let (Some(o), Some(c)) = (payload.as_object_mut(), conversation) {
        o.insert("conversation".into(), c);
    }
    emit(&s, &store, &app_id, "client:update", || payload);
    ok(json!({ "client": client }))
}

/// The end user acting: `userId` from the body, or the conversation's first participant.
fn acting_user(
    store: &Store,
    app_id: &str,
    conversation_id: &str,
    body: &serde_json::Map<String, Value>,
) -> Result<String, ApiError> {
    let app = store.app(app_id)?;
    let c = app
        .conversations
        .get(conversation_id)
        .ok_or_else(|| ApiError::not_found(Missing::Conversation))?;
    match http::opt_str(body, "userId")? {
        Some(u) => {
            let id = app
                .user_id(&u)
                .ok_or_else(|| ApiError::not_found(Missing::User))?;
            if !c.participants.iter().any(|p| p.user_id == id) {
                return Err(ApiError::bad_request("the user is not a participant"));
            }
            Ok(id)
        }
        None => c
            .participants
            .first()
            .map(|p| p.user_id.clone())
            .ok_or_else(|| ApiError::bad_request("the conversation has no participant")),
    }
}

/// Where the simulated end user acts from: the web widget, through their SDK client and its
/// device when they have one (which only webhooks with `includeFullSource` see).
fn web_source(store: &Store, app_id: &str, user_id: &str) -> Value {
    let mut source = json!({ "type": "web", "integrationId": "web" });
    let user = store.apps.get(app_id).and_then(|a| a.users.get(user_id));
    let Some(user) = user else {
        return source;
    };
    let Some(client) = user.clients.values().find(|c| c["type"] == "sdk") else {
        return source;
    };
    let device = user
        .devices
        .values()
        .find(|d| d["clientId"] == client["id"]);
    if let Some(o) = source.as_object_mut() {
        o.insert("client".into(), client.clone());
        if let Some(device) = device {
            o.insert("device".into(), device.clone());
        }
    }
    source
}

fn user_author(store: &Store, app_id: &str, user_id: &str) -> Value {
    let name = store
        .apps
        .get(app_id)
        .and_then(|a| a.users.get(user_id))
        .and_then(|u| u.profile.get("givenName").cloned())
        .unwrap_or_else(|| json!("Web User"));
    json!({ "type": "user", "userId": user_id, "displayName": name })
}

/// `{userId?, text}` or `{userId?, content}`: the end user sends a message.
async fn user_message(
    State(s): State<Sunshine>,
    Path((app_id, conversation_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let body = http::json_body(&body)?;
    let content = match (body.get("content"), http::opt_str(&body, "text")?) {
        (Some(c), None) => c.clone(),
        (None, Some(t)) => json!({ "type": "text", "text": t }),
        _ => {
            return Err(ApiError::bad_request(
                "exactly one of text or content is required",
            ));
        }
    };
    super::content::check(&content)?;
    let mut store = s.store();
    let user_id = acting_user(&store, &app_id, &conversation_id, &body)?;
    let author = user_author(&store, &app_id, &user_id);
    let source = web_source(&store, &app_id, &user_id);
    let message = messages::append(
        &s,
        &mut store,
        &app_id,
        &conversation_id,
        author,
        Some(&user_id),
        content,
        Value::Null,
        source,
    )?;
    created(json!({ "message": message }))
}

/// `{userId?, payload, text?}`: the end user taps a postback button.
async fn postback(
    State(s): State<Sunshine>,
    Path((app_id, conversation_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let body = http::json_body(&body)?;
    let payload = http::req_str(&body, "payload")?.to_owned();
    let metadata = metadata::opt(&body, "metadata")?.map_or(Value::Null, Value::Object);
    let store = s.store();
    let user_id = acting_user(&store, &app_id, &conversation_id, &body)?;
    let app = store.app(&app_id)?;
    let user = app.users.get(&user_id).map(User::render);
    let conversation = app.conversations[&conversation_id].render_truncated(app);
    let source = web_source(&store, &app_id, &user_id);
    emit(&s, &store, &app_id, "conversation:postback", || {
        json!({
            "postback": { "payload": payload, "metadata": metadata },
            "conversation": conversation,
            "user": user,
            "source": source,
        })
    });
    ok(json!({}))
}

/// `{userId?}`: the end user reads the conversation.
async fn read(
    State(s): State<Sunshine>,
    Path((app_id, conversation_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let body = http::json_body(&body)?;
    let mut store = s.store();
    let user_id = acting_user(&store, &app_id, &conversation_id, &body)?;
    let author = user_author(&store, &app_id, &user_id);
    let source = web_source(&store, &app_id, &user_id);
    messages::activity_of(
        &s,
        &mut store,
        &app_id,
        &conversation_id,
        author,
        Some(&user_id),
        "conversation:read",
        source,
    )?;
    ok(json!({}))
}

/// `{userId?, typing}`: the end user starts or stops typing.
async fn typing(
    State(s): State<Sunshine>,
    Path((app_id, conversation_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let body = http::json_body(&body)?;
    let typing = http::opt_bool(&body, "typing")?.unwrap_or(true);
    let mut store = s.store();
    let user_id = acting_user(&store, &app_id, &conversation_id, &body)?;
    let author = user_author(&store, &app_id, &user_id);
    let kind = if typing {
        "typing:start"
    } else {
        "typing:stop"
    };
    let source = web_source(&store, &app_id, &user_id);
    messages::activity_of(
        &s,
        &mut store,
        &app_id,
        &conversation_id,
        author,
        Some(&user_id),
        kind,
        source,
    )?;
    ok(json!({}))
}

/// `{userId?, code, details?: {source?, type?, adId?}}`: the end user arrives in the
/// conversation through a referral (a link or code carrying `code`): a
/// `conversation:referral` event.
async fn referral(
    State(s): State<Sunshine>,
    Path((app_id, conversation_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let body = http::json_body(&body)?;
    let code = http::req_str(&body, "code")?.to_owned();
    if code.is_empty() {
        return Err(ApiError::bad_request("code should not be empty"));
    }
    let details = match http::opt_object(&body, "details")? {
        None => Value::Null,
        Some(d) => {
            for (k, v) in &d {
                if !["source", "type", "adId"].contains(&k.as_str()) {
                    return Err(ApiError::bad_request(format!(
                        "details.{k} is not a referral detail"
                    )));
                }
                if !(v.is_string() || (k == "adId" && v.is_null())) {
                    return Err(ApiError::bad_request(format!(
                        "details.{k} should be a string"
                    )));
                }
            }
            Value::Object(d)
        }
    };
    let store = s.store();
    let user_id = acting_user(&store, &app_id, &conversation_id, &body)?;
    let app = store.app(&app_id)?;
    let user = app.users.get(&user_id).map(User::render);
    let conversation = app.conversations[&conversation_id].render_truncated(app);
    let source = web_source(&store, &app_id, &user_id);
    emit(&s, &store, &app_id, "conversation:referral", || {
        json!({
            "conversation": conversation,
            "user": user,
            "source": source,
            "referral": { "code": code, "details": details },
        })
    });
    ok(json!({}))
}
