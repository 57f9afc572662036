//! Conversations, participants, switchboard control actions, and the channel-specific extras.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::{Map, Value, json};

use super::{Need, access};
use crate::sunshine::auth::Principal;
use crate::sunshine::error::{ApiError, ApiResult, Missing, created, ok};
use crate::sunshine::events::emit;
use crate::sunshine::http::{self, Page, Payload, Query};
use crate::sunshine::metadata;
use crate::sunshine::store::{App, Conversation, Participant, Store};
use crate::sunshine::{Sunshine, util};

pub(crate) fn conv_mut<'a>(app: &'a mut App, id: &str) -> Result<&'a mut Conversation, ApiError> {
    app.conversations
        .get_mut(id)
        .ok_or_else(|| ApiError::not_found(Missing::Conversation))
}

/// The user named by `userId` or `userExternalId` in `o`.
fn user_ref(app: &App, o: &Map<String, Value>) -> Result<String, ApiError> {
    let by_id = http::opt_str(o, "userId")?;
    let by_ext = http::opt_str(o, "userExternalId")?;
    let key = match (by_id, by_ext) {
        (Some(id), None) => id,
        (None, Some(ext)) => ext,
        _ => {
            return Err(ApiError::bad_request(
                "exactly one of userId or userExternalId is required",
            ));
        }
    };
    app.user_id(&key)
        .ok_or_else(|| ApiError::not_found(Missing::User))
}

/// Creates a conversation (also used by the control API's simulated end users).
pub(crate) fn insert_conversation(
    s: &Sunshine,
    app: &mut App,
    kind: &str,
    users: &[String],
    display_name: Option<String>,
    icon_url: Option<String>,
    metadata: Value,
) -> String {
    let id = s.next_id();
    let default_sbi = app
        .active_switchboard()
        .and_then(|sb| sb.default_integration.clone());
    // The spec's "first personal conversation created for the user": groups the user is in
    // do not count.
    let is_default = users.first().is_none_or(|u| {
        !app.conversations
            .values()
            .any(|c| c.kind == "personal" && c.participants.iter().any(|p| &p.user_id == u))
    });
    let participants = users
        .iter()
        .map(|u| Participant {
            id: s.next_id(),
            user_id: u.clone(),
            unread_count: 0,
            last_read: None,
        })
        .collect();
    let created_at = util::now_iso();
    let conversation = Conversation {
        id: id.clone(),
        kind: kind.to_owned(),
        is_default: kind == "personal" && is_default,
        display_name,
        icon_url,
        metadata,
        // "the creation time if no messages have been received yet".
        last_updated_at: Some(created_at.clone()),
        created_at,
        business_last_read: None,
        participants,
        active_switchboard_integration: default_sbi,
        ..Conversation::default()
    };
    app.conversations.insert(id.clone(), conversation);
    id
}

/// A participant's `subscribeSDKClient`: "This field is required if the conversation is of
/// type `sdkGroup`", and a boolean wherever it is given.
fn check_subscribe_sdk_client(
    participant: &Map<String, Value>,
    kind: &str,
) -> Result<(), ApiError> {
    const FIELD: &str = "subscribeSDKClient";
    if http::opt_bool(participant, FIELD)?.is_none() && kind == "sdkGroup" {
        return Err(ApiError::bad_request(format!(
            "should have required property '{FIELD}'"
        )));
    }
    Ok(())
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
    let kind = http::req_str(&body, "type")?.to_owned();
    if !["personal", "sdkGroup"].contains(&kind.as_str()) {
        return Err(ApiError::bad_request("type should be personal or sdkGroup"));
    }
    let display_name = http::opt_str_len(&body, "displayName", 1, 100)?;
    let description = http::opt_str_len(&body, "description", 1, 100)?;
    let icon_url = http::opt_str_len(&body, "iconUrl", 1, 2048)?;
    let metadata = metadata::opt(&body, "metadata")?.map_or(Value::Null, Value::Object);
    let app = store.app_mut(&app_id)?;
    let mut users: Vec<String> = Vec::new();
    if let Some(list) = body.get("participants") {
        let list = list
            .as_array()
            .ok_or_else(|| ApiError::bad_request("participants should be array"))?;
        if list.len() > 10 {
            return Err(ApiError::bad_request(
                "participants should have at most 10 items",
            ));
        }
        let mut participants = Vec::with_capacity(list.len());
        for p in list {
            let p = p
                .as_object()
                .ok_or_else(|| ApiError::bad_request("participants items should be object"))?;
            // The users are looked up first, as join does: "It will return 404 if the user
            // can't be found", whatever else the participant lacks.
            let user = user_ref(app, p)?;
            // A user is one participant: the same user twice (by id, external id, or both)
            // would be two seats for one member, which join refuses as well.
            if users.contains(&user) {
                return Err(ApiError::bad_request(format!(
                    "user {user} is listed more than once in participants"
                )));
            }
            users.push(user);
            participants.push(p);
        }
        for p in participants {
            check_subscribe_sdk_client(p, &kind)?;
        }
    }
    if kind == "personal" && users.len() != 1 {
        return Err(ApiError::bad_request(
            "a personal conversation needs exactly one participant",
        ));
    }
    let id = insert_conversation(&s, app, &kind, &users, display_name, icon_url, metadata);
    if let Some(c) = app.conversations.get_mut(&id) {
        c.description = description;
    }
    let c = &app.conversations[&id];
    let rendered = c.render(app);
    let truncated = c.render_truncated(app);
    // The spec: the user is "only present if the created conversation was of type personal".
    let user = users
        .first()
        .filter(|_| kind == "personal")
        .and_then(|u| app.users.get(u))
        .map(|u| u.render());
    emit(&s, &store, &app_id, "conversation:create", || {
        let mut payload = json!({
            "conversation": truncated,
            "creationReason": "none",
            "source": { "type": "api" },
        });
        if let (Some(o), Some(user)) = (payload.as_object_mut(), user) {
            o.insert("user".into(), user);
        }
        payload
    });
    created(json!({ "conversation": rendered }))
}

pub(crate) async fn list(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    uri: Uri,
    Path(app_id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let q = Query::parse(q.as_deref())?;
    let page = Page::parse(&q, 25)?;
    let app = store.app(&app_id)?;
    let key = match (q.get("filter[userId]"), q.get("filter[userExternalId]")) {
        (Some(k), None) | (None, Some(k)) => k,
        _ => {
            return Err(ApiError::bad_request(
                "exactly one of filter[userId] or filter[userExternalId] is required",
            ));
        }
    };
    let user_id = app
        .user_id(key)
        .ok_or_else(|| ApiError::not_found(Missing::User))?;
    let mine: std::collections::BTreeMap<String, &Conversation> = app
        .conversations
        .iter()
        .filter(|(_, c)| c.participants.iter().any(|p| p.user_id == user_id))
        .map(|(k, c)| (k.clone(), c))
        .collect();
    let url = http::self_url(&headers, uri.path());
    let url = format!(
        "{url}?{}",
        serde_urlencoded::to_string([("filter[userId]", &user_id)]).unwrap_or_default()
    );
    let (page_items, meta, links) = http::paginate(&mine, &page, false, &url);
    let conversations: Vec<Value> = page_items.into_iter().map(|c| c.render(app)).collect();
    ok(json!({ "conversations": conversations, "meta": meta, "links": links }))
}

pub(crate) async fn get(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let app = store.app(&app_id)?;
    let c = app
        .conversations
        .get(&conversation_id)
        .ok_or_else(|| ApiError::not_found(Missing::Conversation))?;
    ok(json!({ "conversation": c.render(app) }))
}

pub(crate) async fn update(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let body = http::json_body(&body)?;
    let display_name = http::opt_str_len(&body, "displayName", 1, 100)?;
    let description = http::opt_str_len(&body, "description", 1, 100)?;
    let icon_url = http::opt_str_len(&body, "iconUrl", 1, 2048)?;
    let metadata = metadata::opt(&body, "metadata")?;
    let app = store.app_mut(&app_id)?;
    let c = conv_mut(app, &conversation_id)?;
    if body.contains_key("displayName") {
        c.display_name = display_name;
    }
    if body.contains_key("description") {
        c.description = description;
    }
    if body.contains_key("iconUrl") {
        c.icon_url = icon_url;
    }
    if body.contains_key("metadata") {
        c.metadata = metadata.map_or(Value::Null, Value::Object);
    }
    let app = store.app(&app_id)?;
    let rendered = app.conversations[&conversation_id].render(app);
    ok(json!({ "conversation": rendered }))
}

pub(crate) async fn delete(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let app = store.app_mut(&app_id)?;
    let is_default = app
        .conversations
        .get(&conversation_id)
        .ok_or_else(|| ApiError::not_found(Missing::Conversation))?
        .is_default;
    if is_default {
        // Its messages can go (DeleteAllMessages); the conversation stays.
        return Err(ApiError::bad_request(format!(
            "Conversation {conversation_id} cannot be deleted because it is the default."
        )));
    }
    let c = app
        .conversations
        .remove(&conversation_id)
        .ok_or_else(|| ApiError::not_found(Missing::Conversation))?;
    app.drop_attachments_of(&conversation_id);
    let truncated = c.render_truncated(app);
    emit(
        &s,
        &store,
        &app_id,
        "conversation:remove",
        || json!({ "conversation": truncated }),
    );
    ok(json!({}))
}

pub(crate) async fn join(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let body = http::json_body(&body)?;
    let app = store.app_mut(&app_id)?;
    let user_id = user_ref(app, &body)?;
    let participant_id = s.next_id();
    let c = conv_mut(app, &conversation_id)?;
    if c.kind == "personal" {
        return Err(ApiError::bad_request("cannot join a personal conversation"));
    }
    check_subscribe_sdk_client(&body, &c.kind)?;
    if c.participants.iter().any(|p| p.user_id == user_id) {
        return Err(ApiError::bad_request("the user is already a participant"));
    }
    if c.participants.len() >= 10 {
        return Err(ApiError::bad_request(
            "the conversation has 10 participants already",
        ));
    }
    let p = Participant {
        id: participant_id,
        user_id: user_id.clone(),
        unread_count: 0,
        last_read: None,
    };
    c.participants.push(p.clone());
    let app = store.app(&app_id)?;
    let c = &app.conversations[&conversation_id];
    let rendered = c.render_participant(&p, app);
    let user = app.users.get(&user_id).map(|u| u.render_truncated());
    emit(
        &s,
        &store,
        &app_id,
        "conversation:join",
        || json!({ "conversation": c.render_truncated(app), "user": user }),
    );
    created(json!({ "participant": rendered }))
}

pub(crate) async fn leave(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let body = http::json_body(&body)?;
    let app = store.app_mut(&app_id)?;
    let participant = http::opt_str(&body, "participantId")?;
    let user_id = match participant {
        Some(_) if body.contains_key("userId") || body.contains_key("userExternalId") => {
            return Err(ApiError::bad_request(
                "only one of userId, userExternalId or participantId is allowed",
            ));
        }
        Some(_) => None,
        None => Some(user_ref(app, &body)?),
    };
    let c = conv_mut(app, &conversation_id)?;
    // Participants come and go in sdkGroup conversations only (join refuses personal ones,
    // and conversation:leave is documented for sdkGroup conversations): a personal
    // conversation keeps its one participant.
    if c.kind == "personal" {
        return Err(ApiError::bad_request(
            "cannot leave a personal conversation",
        ));
    }
    let index = c
        .participants
        .iter()
        .position(|p| match (&user_id, &participant) {
            (Some(u), _) => &p.user_id == u,
            (None, Some(id)) => &p.id == id,
            (None, None) => false,
        })
        .ok_or_else(|| {
            ApiError::not_found(Missing::Other("User is not a member of the conversation"))
        })?;
    let gone = c.participants.remove(index);
    let app = store.app(&app_id)?;
    let c = &app.conversations[&conversation_id];
    let user = app.users.get(&gone.user_id).map(|u| u.render_truncated());
    emit(
        &s,
        &store,
        &app_id,
        "conversation:leave",
        || json!({ "conversation": c.render_truncated(app), "user": user }),
    );
    ok(json!({}))
}

pub(crate) async fn participants(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    uri: Uri,
    Path((app_id, conversation_id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let q = Query::parse(q.as_deref())?;
    let page = Page::parse(&q, 25)?;
    let app = store.app(&app_id)?;
    let c = app
        .conversations
        .get(&conversation_id)
        .ok_or_else(|| ApiError::not_found(Missing::Conversation))?;
    let by_id: std::collections::BTreeMap<String, &Participant> =
        c.participants.iter().map(|p| (p.id.clone(), p)).collect();
    let url = http::self_url(&headers, uri.path());
    let (items, meta, links) = http::paginate(&by_id, &page, false, &url);
    let list: Vec<Value> = items
        .into_iter()
        .map(|p| c.render_participant(p, app))
        .collect();
    ok(json!({ "participants": list, "meta": meta, "links": links }))
}

/// Which control action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Pass,
    Offer,
    Accept,
    Release,
}

/// Resolves `next`, a switchboard integration id, or its name.
fn resolve_target(app: &App, current: Option<&str>, target: &str) -> Option<String> {
    if target == "next" {
        return current
            .and_then(|c| app.switchboard_integration(c))
            .and_then(|sbi| sbi.next.clone())
            .or_else(|| {
                app.active_switchboard()
                    .and_then(|sb| sb.default_integration.clone())
            });
    }
    let sb = app.active_switchboard()?;
    sb.integrations
        .values()
        .find(|i| i.id == target || i.name == target)
        .map(|i| i.id.clone())
}

async fn control(
    s: Sunshine,
    headers: HeaderMap,
    app_id: String,
    conversation_id: String,
    body: Bytes,
    action: Control,
) -> ApiResult {
    let mut store = s.store();
    let who = access(&store, &headers, Some(&app_id), Need::Data)?;
    let body = http::json_body(&body)?;
    let metadata = metadata::opt(&body, "metadata")?.map_or(Value::Null, Value::Object);
    let target = match action {
        Control::Pass | Control::Offer => {
            Some(http::req_str(&body, "switchboardIntegration")?.to_owned())
        }
        Control::Accept | Control::Release => None,
    };
    caller_may(store.app(&app_id)?, &conversation_id, &who, action)?;
    let outcome = apply_control(
        &mut store,
        &app_id,
        &conversation_id,
        target.as_deref(),
        action,
    );
    let app = store.app(&app_id)?;
    let Some(c) = app.conversations.get(&conversation_id) else {
        return outcome.and_then(|_| ok(json!({})));
    };
    let truncated = c.render_truncated(app);
    // A failed action is reported to the integrations as well, with the error shape and codes
    // of the spec's failure events; releaseControl has no failure event.
    let failure = |message: &str| {
        (
            format!("{}:failure", action.event()),
            json!({
                "conversation": truncated,
                "metadata": metadata,
                "error": { "code": action.failure_code(), "message": message },
            }),
        )
    };
    let (kind, payload) = match &outcome {
        Ok(Applied::Done(kind)) => (
            (*kind).to_owned(),
            json!({ "conversation": truncated, "metadata": metadata }),
        ),
        Ok(Applied::Refused(message)) => failure(message),
        Err(e) if action != Control::Release => failure(&e.title),
        Err(_) => return outcome.and_then(|_| ok(json!({}))),
    };
    emit(&s, &store, &app_id, &kind, || payload);
    outcome?;
    ok(json!({}))
}

/// What a control action came to, when the request itself was in order.
enum Applied {
    /// Done; the event type.
    Done(&'static str),
    /// Accepted (200) but not done: the failure reaches the integrations as an event only.
    Refused(&'static str),
}

impl Control {
    const fn event(self) -> &'static str {
        match self {
            Self::Pass => "switchboard:passControl",
            Self::Offer => "switchboard:offerControl",
            Self::Accept => "switchboard:acceptControl",
            Self::Release => "switchboard:releaseControl",
        }
    }

    /// The error code of the action's failure event (the spec's examples).
    const fn failure_code(self) -> &'static str {
        match self {
            Self::Accept | Self::Release => "switchboard_invalid_action",
            Self::Pass | Self::Offer => "switchboard_invalid_target",
        }
    }
}

/// With integration credentials, only the integration in control may release the
/// conversation, and only the integration offered control may accept it (the spec's 403s).
/// The caller is refused before anything is tried, so no failure event is sent; an accept with
/// no offer pending at all is left to [`apply_control`], which reports it as a failure.
fn caller_may(
    app: &App,
    conversation_id: &str,
    who: &Principal,
    action: Control,
) -> Result<(), ApiError> {
    let Principal::Integration { integration_id, .. } = who else {
        return Ok(());
    };
    let c = app
        .conversations
        .get(conversation_id)
        .ok_or_else(|| ApiError::not_found(Missing::Conversation))?;
    let (seat, refusal) = match action {
        Control::Release => (
            c.active_switchboard_integration.as_deref(),
            "The authenticated integration is not active in the switchboard",
        ),
        Control::Accept => match c.pending_switchboard_integration.as_deref() {
            None => return Ok(()),
            pending => (
                pending,
                "The pending switchboard integration is not the authenticated integration",
            ),
        },
        Control::Pass | Control::Offer => return Ok(()),
    };
    let holder = seat
        .and_then(|id| app.switchboard_integration(id))
        .and_then(|sbi| sbi.integration_id.as_deref());
    if holder == Some(integration_id.as_str()) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", refusal))
    }
}

/// Moves control as `action` says.
fn apply_control(
    store: &mut Store,
    app_id: &str,
    conversation_id: &str,
    target: Option<&str>,
    action: Control,
) -> Result<Applied, ApiError> {
    let app = store.app_mut(app_id)?;
    // A missing conversation is reported as such, whatever the switchboard's state.
    if !app.conversations.contains_key(conversation_id) {
        return Err(ApiError::not_found(Missing::Conversation));
    }
    if app.active_switchboard().is_none() {
        return Err(ApiError::not_found(Missing::Switchboard));
    }
    let resolved = match target {
        Some(t) => {
            let current = app
                .conversations
                .get(conversation_id)
                .and_then(|c| c.active_switchboard_integration.clone());
            Some(
                resolve_target(app, current.as_deref(), t)
                    .ok_or_else(|| ApiError::not_found(Missing::SwitchboardIntegration))?,
            )
        }
        None => None,
    };
    let c = conv_mut(app, conversation_id)?;
    let kind = match action {
        Control::Pass => {
            c.active_switchboard_integration = resolved;
            c.pending_switchboard_integration = None;
            "switchboard:passControl"
        }
        Control::Offer => {
            if resolved.is_some() && resolved == c.active_switchboard_integration {
                // The spec's offerControl:failure example; the operation documents no error
                // status for it.
                return Ok(Applied::Refused(
                    "Cannot offer control to the active switchboard integration.",
                ));
            }
            c.pending_switchboard_integration = resolved;
            "switchboard:offerControl"
        }
        Control::Accept => {
            let Some(pending) = c.pending_switchboard_integration.take() else {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "There is no pendingSwitchboardIntegration",
                ));
            };
            c.active_switchboard_integration = Some(pending);
            "switchboard:acceptControl"
        }
        Control::Release => {
            if c.active_switchboard_integration.is_none() {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "No switchboard integration is in control of the conversation",
                ));
            }
            // "Releases the control of the conversation by nullifying its switchboard state":
            // nobody is in control until the user writes again (see `messages::append`).
            c.active_switchboard_integration = None;
            c.pending_switchboard_integration = None;
            "switchboard:releaseControl"
        }
    };
    Ok(Applied::Done(kind))
}

macro_rules! control_handler {
    ($name:ident, $action:expr) => {
        pub(crate) async fn $name(
            State(s): State<Sunshine>,
            headers: HeaderMap,
            Path((app_id, conversation_id)): Path<(String, String)>,
            Payload(body): Payload,
        ) -> ApiResult {
            control(s, headers, app_id, conversation_id, body, $action).await
        }
    };
}

control_handler!(pass_control, Control::Pass);
control_handler!(offer_control, Control::Offer);
control_handler!(accept_control, Control::Accept);
control_handler!(release_control, Control::Release);

/// Apple Messages for Business references: the emulator has no Apple channel, so it returns
/// the reference it was given once the body is valid and the user exists.
pub(crate) async fn download(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let body = http::json_body(&body)?;
    let user = http::req_str(&body, "userId")?;
    let app = store.app(&app_id)?;
    if !app.conversations.contains_key(&conversation_id) {
        return Err(ApiError::not_found(Missing::Conversation));
    }
    app.user_id(user)
        .ok_or_else(|| ApiError::not_found(Missing::User))?;
    let reference = body
        .get("apple")
        .and_then(|a| a.get("interactiveDataRef"))
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::bad_request("apple.interactiveDataRef is required"))?;
    for f in ["url", "bid", "key", "signature", "owner"] {
        http::req_str(reference, f)?;
    }
    ok(json!({ "interactiveDataRef": reference }))
}

pub(crate) async fn conversion_events(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let body = http::json_body(&body)?;
    let app = store.app(&app_id)?;
    if !app.conversations.contains_key(&conversation_id) {
        return Err(ApiError::not_found(Missing::Conversation));
    }
    let channels: Vec<&str> = ["messenger", "instagram", "whatsapp"]
        .into_iter()
        .filter(|c| body.contains_key(*c))
        .collect();
    let [channel] = channels.as_slice() else {
        return Err(ApiError::bad_request(
            "exactly one of messenger, instagram or whatsapp is required",
        ));
    };
    let data = body[*channel]["payload"]["data"]
        .as_array()
        .ok_or_else(|| ApiError::bad_request(format!("{channel}.payload.data should be array")))?;
    ok(
        json!({ "conversionEvents": { "datasetId": conversation_id, "eventsReceived": data.len() } }),
    )
}
