//! Users, their clients and devices.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Uri};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::{Need, access};
use crate::sunshine::error::{ApiError, ApiResult, Missing, created, ok};
use crate::sunshine::events::emit;
use crate::sunshine::http::{self, Page, Payload, Query};
use crate::sunshine::metadata;
use crate::sunshine::store::{App, Conversation, User};
use crate::sunshine::{Sunshine, util};

/// The profile fields and their most characters.
const PROFILE: [(&str, usize); 5] = [
    ("givenName", 128),
    ("surname", 128),
    ("email", 128),
    ("avatarUrl", 2048),
    ("locale", 64),
];

fn check_profile(body: &Map<String, Value>) -> Result<Option<Map<String, Value>>, ApiError> {
    let Some(profile) = http::opt_object(body, "profile")? else {
        return Ok(None);
    };
    for (k, v) in &profile {
        let Some(&(_, most)) = PROFILE.iter().find(|(name, _)| name == k) else {
            return Err(ApiError::bad_request(format!(
                "profile.{k} is not a profile field"
            )));
        };
        let fits = |s: &str| !s.is_empty() && s.chars().count() <= most;
        if !(v.is_null() || v.as_str().is_some_and(fits)) {
            return Err(ApiError::bad_request(format!(
                "profile.{k} should be a string of 1 to {most} characters"
            )));
        }
    }
    Ok(Some(profile))
}

pub(crate) fn user_of<'a>(app: &'a App, id: &str) -> Result<&'a User, ApiError> {
    app.user_id(id)
        .and_then(|id| app.users.get(&id))
        .ok_or_else(|| ApiError::not_found(Missing::User))
}

fn user_mut<'a>(app: &'a mut App, id: &str) -> Result<&'a mut User, ApiError> {
    let id = app
        .user_id(id)
        .ok_or_else(|| ApiError::not_found(Missing::User))?;
    app.users
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found(Missing::User))
}

pub(crate) async fn create(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let body = http::json_body(&body)?;
    let external_id = http::opt_str_len(&body, "externalId", 1, 1024)?;
    let profile = check_profile(&body)?.unwrap_or_default();
    let signed_up_at = http::opt_str(&body, "signedUpAt")?.unwrap_or_else(util::now_iso);
    let to_be_retained = http::opt_bool(&body, "toBeRetained")?.unwrap_or(false);
    let metadata = metadata::opt(&body, "metadata")?.map_or(Value::Null, Value::Object);
    let app = store.app_mut(&app_id)?;
    if let Some(ext) = &external_id {
        if app.user_id(ext).is_some() {
            return Err(ApiError::conflict(format!(
                "A user with externalId {ext} already exists"
            )));
        }
    }
    let user = User {
        id: s.next_id(),
        external_id,
        signed_up_at,
        to_be_retained,
        profile,
        metadata,
        ..User::default()
    };
    let rendered = user.render();
    app.insert_user(user);
    created(json!({ "user": rendered }))
}

pub(crate) async fn list(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let q = Query::parse(q.as_deref())?;
    let app = store.app(&app_id)?;
    // The filter is required and matches identities only, never `profile.email`.
    let email = q.get("filter[identities.email]").ok_or_else(|| {
        ApiError::bad_request("should have required property 'filter[identities.email]'")
    })?;
    let users: Vec<Value> = app
        .users
        .values()
        .filter(|u| u.has_email_identity(email))
        .map(User::render)
        .collect();
    ok(json!({ "users": users }))
}

pub(crate) async fn get(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, user_id)): Path<(String, String)>,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let app = store.app(&app_id)?;
    ok(json!({ "user": user_of(app, &user_id)?.render() }))
}

pub(crate) async fn update(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, user_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let body = http::json_body(&body)?;
    let profile = check_profile(&body)?;
    let signed_up_at = http::opt_str(&body, "signedUpAt")?;
    let to_be_retained = http::opt_bool(&body, "toBeRetained")?;
    let metadata = metadata::opt(&body, "metadata")?;
    let app = store.app_mut(&app_id)?;
    let user = user_mut(app, &user_id)?;
    if let Some(p) = profile {
        for (k, v) in p {
            if v.is_null() {
                user.profile.remove(&k);
            } else {
                user.profile.insert(k, v);
            }
        }
    }
    if let Some(v) = signed_up_at {
        user.signed_up_at = v;
    }
    if let Some(v) = to_be_retained {
        user.to_be_retained = v;
    }
    if body.contains_key("metadata") {
        user.metadata = metadata.map_or(Value::Null, Value::Object);
    }
    // No `user:update`: the spec fires it only when a user's identification changes (an
    // anonymous user authenticating, a detected locale), which is the control API's
    // `users/{user}/authenticate`, not a profile written through the API.
    ok(json!({ "user": user.render() }))
}

pub(crate) async fn delete(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, user_id)): Path<(String, String)>,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let app = store.app_mut(&app_id)?;
    let id = app
        .user_id(&user_id)
        .ok_or_else(|| ApiError::not_found(Missing::User))?;
    let user = app
        .remove_user(&id)
        .ok_or_else(|| ApiError::not_found(Missing::User))?;
    forget_history(app, &id);
    emit(
        &s,
        &store,
        &app_id,
        "user:remove",
        || json!({ "user": user.render_truncated() }),
    );
    ok(json!({}))
}

/// "Delete a user, its clients and its conversation history": the user's personal
/// conversations go whole; a group conversation is the other participants' history too, so
/// there the user leaves and only the messages they wrote go (also where they left before).
fn forget_history(app: &mut App, user_id: &str) {
    let involves = |c: &Conversation| c.participants.iter().any(|p| p.user_id == user_id);
    let gone: Vec<String> = app
        .conversations
        .iter()
        .filter(|(_, c)| c.kind == "personal" && involves(c))
        .map(|(id, _)| id.clone())
        .collect();
    for id in &gone {
        app.conversations.remove(id);
        app.drop_attachments_of(id);
    }
    let mut removed: Vec<(String, Vec<Box<RawValue>>)> = Vec::new();
    for (id, c) in &mut app.conversations {
        c.participants.retain(|p| p.user_id != user_id);
        let theirs: Vec<String> = c
            .messages
            .iter()
            .filter(|(_, raw)| written_by(raw, user_id))
            .map(|(key, _)| key.clone())
            .collect();
        let gone: Vec<Box<RawValue>> = theirs
            .iter()
            .filter_map(|key| c.messages.remove(key))
            .collect();
        if !gone.is_empty() {
            removed.push((id.clone(), gone));
        }
    }
    // Their messages' attachments go with them (the others' stay).
    for (id, gone) in removed {
        super::messages::drop_media_of(app, &id, &gone);
    }
}

/// Whether the stored message `raw` has the user `user_id` for author.
fn written_by(raw: &RawValue, user_id: &str) -> bool {
    // Most messages are someone else's: a substring test spares them the parse.
    if !raw.get().contains(user_id) {
        return false;
    }
    serde_json::from_str::<Value>(raw.get())
        .is_ok_and(|m| m["author"]["type"] == "user" && m["author"]["userId"] == user_id)
}

pub(crate) async fn delete_personal(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, user_id)): Path<(String, String)>,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let user = user_mut(store.app_mut(&app_id)?, &user_id)?;
    // Exactly the fields the spec names: the profile keeps `locale`, and clients keep their
    // channel `externalId` (what the user is reached through, not personal information).
    for f in ["givenName", "surname", "email", "avatarUrl"] {
        user.profile.remove(f);
    }
    // The user's custom properties are its metadata.
    user.metadata = Value::Null;
    for c in user.clients.values_mut() {
        if let Some(o) = c.as_object_mut() {
            for f in ["displayName", "avatarUrl", "info", "raw"] {
                o.insert(f.into(), Value::Null);
            }
        }
    }
    ok(json!({ "user": user.render() }))
}

pub(crate) async fn sync(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, zendesk_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let body = http::json_body(&body)?;
    let surviving = http::opt_str(&body, "survivingZendeskId")?;
    let app = store.app_mut(&app_id)?;
    let user = app
        .users
        .values_mut()
        .find(|u| u.zendesk_id.as_deref() == Some(zendesk_id.as_str()) || u.id == zendesk_id)
        .ok_or_else(|| ApiError::not_found(Missing::User))?;
    user.zendesk_id = Some(surviving.unwrap_or(zendesk_id));
    ok(json!({ "user": user.render() }))
}

pub(crate) async fn create_client(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, user_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let body = http::json_body(&body)?;
    let criteria = http::opt_object(&body, "matchCriteria")?
        .ok_or_else(|| ApiError::bad_request("should have required property 'matchCriteria'"))?;
    let confirmation = http::opt_object(&body, "confirmation")?
        .ok_or_else(|| ApiError::bad_request("should have required property 'confirmation'"))?;
    let target = http::opt_object(&body, "target")?
        .ok_or_else(|| ApiError::bad_request("should have required property 'target'"))?;
    let kind = http::req_str(&criteria, "type")?;
    if !["mailgun", "messagebird", "twilio", "whatsapp"].contains(&kind) {
        return Err(ApiError::bad_request(
            "matchCriteria.type should be mailgun, messagebird, twilio or whatsapp",
        ));
    }
    let integration_id = http::req_str(&criteria, "integrationId")?.to_owned();
    let external = if kind == "mailgun" {
        http::req_str(&criteria, "address")?
    } else {
        http::req_str(&criteria, "phoneNumber")?
    }
    .to_owned();
    let confirm = http::req_str(&confirmation, "type")?;
    if !["immediate", "userActivity", "prompt"].contains(&confirm) {
        return Err(ApiError::bad_request(
            "confirmation.type should be immediate, userActivity or prompt",
        ));
    }
    let conversation_id = http::req_str(&target, "conversationId")?.to_owned();
    let app = store.app_mut(&app_id)?;
    if !app.integrations.contains_key(&integration_id) {
        return Err(ApiError::not_found(Missing::Integration));
    }
    if !app.conversations.contains_key(&conversation_id) {
        return Err(ApiError::not_found(Missing::Conversation));
    }
    let status = if confirm == "immediate" {
        "active"
    } else {
        "pending"
    };
    let client = json!({
        "id": s.next_id(),
        "type": kind,
        "status": status,
        "integrationId": integration_id,
        "externalId": external,
        "lastSeen": util::now_iso(),
        "linkedAt": util::now_iso(),
        "displayName": null,
        "avatarUrl": null,
        "info": null,
        "raw": null,
    });
    let user = user_mut(app, &user_id)?;
    user.clients.insert(
        client["id"].as_str().unwrap_or_default().to_owned(),
        client.clone(),
    );
    let truncated = user.render_truncated();
    let conversation = app
        .conversations
        .get(&conversation_id)
        .map(|c| c.render_truncated(app));
    emit(&s, &store, &app_id, "client:add", || {
        json!({
            "conversation": conversation,
            "user": truncated,
            "client": client,
            "reason": "channelLinking",
            "source": { "type": kind, "integrationId": integration_id },
        })
    });
    created(json!({ "client": client }))
}

pub(crate) async fn list_clients(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    uri: Uri,
    Path((app_id, user_id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let q = Query::parse(q.as_deref())?;
    let page = Page::parse(&q, 25)?;
    let app = store.app(&app_id)?;
    let user = user_of(app, &user_id)?;
    let url = http::self_url(&headers, uri.path());
    let (clients, meta, links) = http::paginate(&user.clients, &page, false, &url);
    ok(json!({ "clients": clients, "meta": meta, "links": links }))
}

pub(crate) async fn remove_client(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, user_id, client_id)): Path<(String, String, String)>,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let app = store.app_mut(&app_id)?;
    let user = user_mut(app, &user_id)?;
    let kind = user
        .clients
        .get(&client_id)
        .ok_or_else(|| ApiError::not_found(Missing::Client))?["type"]
        .as_str();
    // The spec's documented 400: SDK clients are not the API's to remove.
    if kind == Some("sdk") {
        return Err(ApiError::bad_request(
            "Cannot remove a client of type 'sdk'",
        ));
    }
    let client = user
        .clients
        .remove(&client_id)
        .ok_or_else(|| ApiError::not_found(Missing::Client))?;
    let truncated = user.render_truncated();
    emit(
        &s,
        &store,
        &app_id,
        "client:remove",
        || json!({ "user": truncated, "client": client, "reason": "api" }),
    );
    ok(json!({}))
}

pub(crate) async fn list_devices(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, user_id)): Path<(String, String)>,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let app = store.app(&app_id)?;
    let devices: Vec<&Value> = user_of(app, &user_id)?.devices.values().collect();
    ok(json!({ "devices": devices }))
}

pub(crate) async fn get_device(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, user_id, device_id)): Path<(String, String, String)>,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let app = store.app(&app_id)?;
    let device = user_of(app, &user_id)?
        .devices
        .get(&device_id)
        .ok_or_else(|| ApiError::not_found(Missing::Device))?;
    ok(json!({ "device": device }))
}
