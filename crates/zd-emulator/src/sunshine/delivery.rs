//! What becomes of a business message on the end user's side: every client of every participant
//! gets it on its channel, the emulator's simulated web users (SDK clients) also see it, and a
//! blocked or unreachable client is a failure. Each step is a `conversation:message:delivery:*`
//! webhook event.

use serde_json::{Value, json};

use super::Sunshine;
use super::events::emit;
use super::store::{App, Store};

/// Where a client's messages go, as the delivery events name it.
fn destination(client: &Value) -> Value {
    let kind = match client["type"].as_str() {
        // The SDK clients the emulator creates are web widgets.
        Some("sdk") | None => "web",
        Some(other) => other,
    };
    let mut d = json!({ "type": kind });
    if let (Some(o), Some(id)) = (d.as_object_mut(), client["integrationId"].as_str()) {
        o.insert("integrationId".into(), json!(id));
    }
    d
}

/// The events one business message causes, as `(type, payload)`, in the order they happen.
fn events(app: &App, conversation_id: &str, message_id: &str) -> Vec<(&'static str, Value)> {
    let Some(c) = app.conversations.get(conversation_id) else {
        return Vec::new();
    };
    let conversation = c.render_truncated(app);
    let mut out = Vec::new();
    for user in c
        .participants
        .iter()
        .filter_map(|p| app.users.get(&p.user_id))
    {
        let rendered = user.render();
        for client in user.clients.values() {
            let base = || {
                json!({
                    "user": rendered,
                    "conversation": conversation,
                    "message": { "id": message_id },
                    "destination": destination(client),
                    "isFinalEvent": false,
                })
            };
            let simulated = client["type"] == "sdk";
            match client["status"].as_str() {
                Some("active") => {
                    out.push(("conversation:message:delivery:channel", base()));
                    if simulated {
                        out.push(("conversation:message:delivery:user", base()));
                    }
                }
                status => {
                    let (code, text) = if status == Some("blocked") {
                        (
                            "blocked",
                            "The user has blocked the business on this channel",
                        )
                    } else {
                        ("unreachable", "The client is not active on its channel")
                    };
                    let mut p = base();
                    if let Some(o) = p.as_object_mut() {
                        o.insert("error".into(), json!({ "code": code, "message": text }));
                    }
                    out.push(("conversation:message:delivery:failure", p));
                }
            }
        }
    }
    mark_final(&mut out);
    out
}

/// Marks the last event of each destination type as final. The spec makes the flag "the final
/// one for the message.id and destination.type pair", so it cannot be decided per client: two
/// clients of one type (a user's two web widgets after a merge, two web users in a group)
/// would each end with a final event.
fn mark_final(events: &mut [(&'static str, Value)]) {
    let mut seen = std::collections::HashSet::new();
    for (_, payload) in events.iter_mut().rev() {
        let kind = payload["destination"]["type"].clone();
        if seen.insert(kind.to_string()) {
            if let Some(o) = payload.as_object_mut() {
                o.insert("isFinalEvent".into(), json!(true));
            }
        }
    }
}

/// Emits the delivery events of business message `message_id` in `conversation_id`.
pub(crate) fn business_message(
    s: &Sunshine,
    store: &Store,
    app_id: &str,
    conversation_id: &str,
    message_id: &str,
) {
    let Some(app) = store.apps.get(app_id) else {
        return;
    };
    let delivery_kinds = [
        "conversation:message:delivery:channel",
        "conversation:message:delivery:user",
        "conversation:message:delivery:failure",
    ];
    if !delivery_kinds.iter().any(|k| super::events::wanted(app, k)) {
        return;
    }
    for (kind, payload) in events(app, conversation_id, message_id) {
        emit(s, store, app_id, kind, || payload);
    }
}
