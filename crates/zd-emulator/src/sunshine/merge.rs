//! Merging two end users into one, as the service does when an anonymous user logs in on an
//! SDK device (`sdkLogin`), links a channel (`channelLinking`) or is merged through the API
//! (`api`), reported as a `user:merge` event.
//!
//! The surviving user keeps its id, external id and fields and takes over the discarded
//! user's clients, devices, missing profile fields, the metadata keys that fit the 4KB limit
//! (the rest are the event's `discardedMetadata`) and its place in every conversation. When
//! both have a personal conversation, the discarded one's messages move into the surviving one
//! (in time order) and the discarded conversation is gone.

use axum::extract::{Path, State};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::Sunshine;
use super::error::{ApiError, ApiResult, Missing, ok};
use super::events::emit;
use super::http::Payload;
use super::store::{App, Conversation};
use super::{http, metadata};

/// `POST /_emulator/sunshine/apps/{app}/users/merge`
/// `{surviving, discarded, reason?}`: users by id or external id; `reason` is `sdkLogin`
/// (the default), `channelLinking` or `api`. Answers the surviving user.
pub(crate) async fn merge_users(
    State(s): State<Sunshine>,
    Path(app_id): Path<String>,
    Payload(body): Payload,
) -> ApiResult {
    let body = http::json_body(&body)?;
    let reason = http::opt_str(&body, "reason")?.unwrap_or_else(|| "sdkLogin".to_owned());
    if !["sdkLogin", "channelLinking", "api"].contains(&reason.as_str()) {
        return Err(ApiError::bad_request(
            "reason should be sdkLogin, channelLinking or api",
        ));
    }
    let mut store = s.store();
    let app = store.app_mut(&app_id)?;
    let find = |field: &str| -> Result<String, ApiError> {
        let given = http::req_str(&body, field)?;
        app.user_id(given)
            .ok_or_else(|| ApiError::not_found(Missing::User))
    };
    let (surviving_id, discarded_id) = (find("surviving")?, find("discarded")?);
    if surviving_id == discarded_id {
        return Err(ApiError::bad_request("a user cannot be merged into itself"));
    }
    let conversations = merge_conversations(app, &surviving_id, &discarded_id);
    let Some(discarded) = app.remove_user(&discarded_id) else {
        return Err(ApiError::not_found(Missing::User));
    };
    let discarded_rendered = discarded.render();
    let Some(mut surviving) = app.users.get(&surviving_id).cloned() else {
        return Err(ApiError::not_found(Missing::User));
    };
    for (k, v) in discarded.profile {
        surviving.profile.entry(k).or_insert(v);
    }
    let mut discarded_metadata = Value::Null;
    if let Value::Object(theirs) = discarded.metadata {
        let mut ours = match std::mem::take(&mut surviving.metadata) {
            Value::Object(o) => o,
            _ => Map::new(),
        };
        let left_out = metadata::merge_into(&mut ours, theirs);
        if !left_out.is_empty() {
            discarded_metadata = Value::Object(left_out);
        }
        surviving.metadata = Value::Object(ours);
    }
    for identity in discarded.identities {
        if !surviving.identities.contains(&identity) {
            surviving.identities.push(identity);
        }
    }
    surviving.clients.extend(discarded.clients);
    surviving.devices.extend(discarded.devices);
    let surviving_rendered = surviving.render();
    app.insert_user(surviving);
    emit(&s, &store, &app_id, "user:merge", || {
        let mut payload = json!({
            "mergedUsers": { "surviving": surviving_rendered, "discarded": discarded_rendered },
            "reason": reason,
            "discardedMetadata": discarded_metadata,
        });
        if let (Some(o), Some((kept, gone))) = (payload.as_object_mut(), conversations) {
            o.insert(
                "mergedConversations".into(),
                json!({ "surviving": kept, "discarded": gone }),
            );
        }
        payload
    });
    ok(json!({ "user": surviving_rendered }))
}

/// Puts `surviving` in `discarded`'s place in every conversation, and folds `discarded`'s
/// personal conversation into `surviving`'s when both have one. Returns the two merged
/// conversations (truncated, as before the merge), if any.
fn merge_conversations(app: &mut App, surviving: &str, discarded: &str) -> Option<(Value, Value)> {
    let personal = |app: &App, user: &str| {
        app.conversations
            .values()
            .find(|c| c.kind == "personal" && c.participants.iter().any(|p| p.user_id == user))
            .map(|c| c.id.clone())
    };
    let folded = match (personal(app, surviving), personal(app, discarded)) {
        (Some(kept), Some(gone)) if kept != gone => {
            let truncated = |id: &str| app.conversations.get(id).map(|c| c.render_truncated(app));
            let pair = truncated(&kept).zip(truncated(&gone));
            if let Some(gone_conv) = app.conversations.remove(&gone)
                && let Some(kept_conv) = app.conversations.get_mut(&kept)
            {
                kept_conv.messages.extend(gone_conv.messages);
                // The moved messages' attachments now go with the surviving conversation.
                app.relink_attachments(&gone, &kept);
            }
            pair
        }
        _ => None,
    };
    for conversation in app.conversations.values_mut() {
        take_place(conversation, surviving, discarded);
    }
    folded
}

/// Makes `surviving` the participant and author that `discarded` was in `conversation`.
fn take_place(conversation: &mut Conversation, surviving: &str, discarded: &str) {
    if conversation
        .participants
        .iter()
        .any(|p| p.user_id == surviving)
    {
        conversation.participants.retain(|p| p.user_id != discarded);
    } else {
        for p in &mut conversation.participants {
            if p.user_id == discarded {
                p.user_id = surviving.to_owned();
            }
        }
    }
    for raw in conversation.messages.values_mut() {
        if let Some(rewritten) = reauthor(raw, surviving, discarded) {
            *raw = rewritten;
        }
    }
}

/// The message with `author.userId` changed from `discarded` to `surviving`, when it was
/// written by `discarded`; `None` leaves it as it is.
fn reauthor(raw: &RawValue, surviving: &str, discarded: &str) -> Option<Box<RawValue>> {
    // Most messages are someone else's: a substring test spares them the parse.
    if !raw.get().contains(discarded) {
        return None;
    }
    let mut message: Value = serde_json::from_str(raw.get()).ok()?;
    let author = message.get_mut("author")?.as_object_mut()?;
    if author.get("userId").and_then(Value::as_str) != Some(discarded) {
        return None;
    }
    author.insert("userId".into(), json!(surviving));
    serde_json::value::to_raw_value(&message).ok()
}
