//! Webhook events for what happened, routed to the webhooks that asked for them.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Sunshine;
use super::store::{App, Store, Webhook, truncated_user};
use super::util;

/// The triggers of the v2 API, every one it documents. The v1 API's `*` wildcard is not among
/// them, and triggers are case-sensitive: a webhook may name anything, but only these fire.
pub(crate) const TRIGGERS: [&str; 26] = [
    "client:add",
    "client:remove",
    "client:update",
    "conversation:create",
    "conversation:join",
    "conversation:leave",
    "conversation:message",
    "conversation:message:delivery:channel",
    "conversation:message:delivery:failure",
    "conversation:message:delivery:user",
    "conversation:postback",
    "conversation:read",
    "conversation:referral",
    "conversation:remove",
    "conversation:typing",
    "passthrough:messaging",
    "switchboard:acceptControl",
    "switchboard:acceptControl:failure",
    "switchboard:offerControl",
    "switchboard:offerControl:failure",
    "switchboard:passControl",
    "switchboard:passControl:failure",
    "switchboard:releaseControl",
    "user:merge",
    "user:remove",
    "user:update",
];

/// Whether `webhook` gets events of `kind`: only when it names that trigger exactly.
pub(crate) fn listens(webhook: &Webhook, kind: &str) -> bool {
    webhook.triggers.iter().any(|t| t == kind)
}

/// Whether any webhook of `app` listens for `kind`.
pub(crate) fn wanted(app: &App, kind: &str) -> bool {
    app.integrations
        .values()
        .any(|i| i.webhooks.values().any(|w| listens(w, kind)))
}

/// Emits one event of `kind` in `app_id` to every webhook whose triggers include it.
///
/// `payload` is built only when some webhook listens for `kind`: most apps have none, and
/// rendering a conversation per message would otherwise be paid for nothing.
///
/// With a switchboard, an integration that is neither in control of the conversation nor set to
/// receive standby events gets no `conversation:message`/`conversation:postback` events.
///
/// `payload` carries full users and full sources; each webhook gets them cut down to what its
/// `includeFullUser` and `includeFullSource` options ask for (see [`shape`]).
pub(crate) fn emit(
    s: &Sunshine,
    store: &Store,
    app_id: &str,
    kind: &str,
    payload: impl FnOnce() -> Value,
) {
    let Some(app) = store.apps.get(app_id) else {
        return;
    };
    if !wanted(app, kind) {
        return;
    }
    let payload = payload();
    let active = payload["conversation"]["activeSwitchboardIntegration"]["integrationId"]
        .as_str()
        .map(str::to_owned);
    let standby_filtered = matches!(kind, "conversation:message" | "conversation:postback")
        && app.active_switchboard().is_some();
    let event = Arc::new(json!({
        "id": s.next_id(),
        "type": kind,
        "createdAt": util::now_iso(),
        "payload": payload,
    }));
    // One copy per combination of webhook options in use, made when first needed; webhooks
    // that take everything share the event itself.
    let mut shaped: [Option<Arc<Value>>; 4] = [None, None, None, Some(Arc::clone(&event))];
    for integration in app.integrations.values() {
        if standby_filtered {
            let seat = app
                .switchboards
                .values()
                .flat_map(|sb| sb.integrations.values())
                .find(|sbi| sbi.integration_id.as_deref() == Some(integration.id.as_str()));
            if let Some(seat) = seat {
                let in_control = active.as_deref() == Some(integration.id.as_str());
                if !in_control && !seat.deliver_standby_events {
                    continue;
                }
            }
        }
        for webhook in integration.webhooks.values() {
            if listens(webhook, kind) {
                let (full_user, full_source) =
                    (webhook.include_full_user, webhook.include_full_source);
                let slot = usize::from(full_user) | (usize::from(full_source) << 1);
                let chosen = shaped[slot]
                    .get_or_insert_with(|| Arc::new(shape(&event, full_user, full_source)))
                    .clone();
                s.hub().enqueue(app_id, webhook, chosen);
            }
        }
    }
}

/// Where a payload holds a user of the `user` schema: whole only for webhooks created with
/// `includeFullUser`, the `userTruncated` fields for the others. (Payloads that the spec gives
/// a `userTruncated` user, such as `client:add`'s, are built truncated.)
const USER_PATHS: [&str; 5] = [
    "/user",
    "/message/author/user",
    "/activity/author/user",
    "/mergedUsers/surviving",
    "/mergedUsers/discarded",
];

/// Where a payload holds a source, whose `client` and `device` only webhooks created with
/// `includeFullSource` get.
const SOURCE_PATHS: [&str; 3] = ["/source", "/message/source", "/activity/source"];

/// `event` (built with full users and sources) as a webhook with these options gets it.
fn shape(event: &Value, full_user: bool, full_source: bool) -> Value {
    let mut event = event.clone();
    let Some(payload) = event.get_mut("payload") else {
        return event;
    };
    if !full_user {
        for path in USER_PATHS {
            if let Some(Value::Object(user)) = payload.pointer_mut(path) {
                *user = truncated_user(user);
            }
        }
    }
    if !full_source {
        for path in SOURCE_PATHS {
            if let Some(Value::Object(source)) = payload.pointer_mut(path) {
                source.remove("client");
                source.remove("device");
            }
        }
    }
    event
}

#[cfg(test)]
mod tests {
    use super::{TRIGGERS, Webhook, listens};

    fn webhook(triggers: &[&str]) -> Webhook {
        Webhook {
            id: "w".to_owned(),
            target: "http://127.0.0.1:9/".to_owned(),
            triggers: triggers.iter().map(|t| (*t).to_owned()).collect(),
            secret: "s".to_owned(),
            include_full_user: false,
            include_full_source: false,
        }
    }

    #[test]
    fn only_a_named_v2_trigger_fires() {
        let named = webhook(&["conversation:message"]);
        assert!(listens(&named, "conversation:message"));
        assert!(!listens(&named, "conversation:read"));
        // The v1 wildcard and a miscased name are stored but match nothing.
        for silent in [webhook(&["*"]), webhook(&["Conversation:Message"])] {
            assert!(TRIGGERS.iter().all(|kind| !listens(&silent, kind)));
        }
    }
}
