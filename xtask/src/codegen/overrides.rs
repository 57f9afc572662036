//! Where the spec's schemas disagree with its own examples (and so with the wire), by Rust
//! type name. Each entry is backed by an example in the spec that fails without it; the
//! spec-example test in zd-sunshine keeps them honest. Below them, where an operation's
//! declared facts disagree with its own prose, by operationId.

use serde_json::{Value, json};

/// Fields the examples carry but the schema does not declare: `(type, wire name, schema)`.
pub(crate) fn extra_fields(rust: &str) -> Vec<(&'static str, Value)> {
    match rust {
        // Users responses carry `hasPaymentInfo`.
        "User" => vec![("hasPaymentInfo", json!({"type": "boolean"}))],
        // ... and say where the profile's locale came from.
        "Profile" => vec![("localeOrigin", json!({"type": "string"}))],
        // conversation:message webhooks carry the author's name and avatar.
        "AuthorWebhook" => vec![
            ("avatarUrl", json!({"type": "string"})),
            ("displayName", json!({"type": "string"})),
        ],
        // delivery:failure webhooks name the destination channel type.
        "ConversationMessageDeliveryFailureEventPayloadDestination"
        | "ConversationMessageDeliveryPayloadDestination" => {
            vec![("type", json!({"type": "string"}))]
        }
        // Message responses echo `uri: ""` on postback actions.
        "Postback" => vec![("uri", json!({"type": "string"}))],
        // conversation:read and conversation:typing webhooks carry the activity type.
        "ConversationReadEventPayloadActivity" | "ConversationTypingEventPayloadActivity" => {
            vec![("type", json!({"type": "string"}))]
        }
        _ => Vec::new(),
    }
}

/// Fields whose declared type the examples contradict: `(type, wire name)` become any JSON.
pub(crate) fn loose_field(rust: &str, json: &str) -> bool {
    matches!(
        (rust, json),
        // The example sends Meta's numeric dataset id as a number, the schema says string.
        ("ConversionEvents", "datasetId")
            // The conversation:referral example's `payload.user.externalId` is an integer where
            // the shared `user` schema says string. Loosening only this event's `user` keeps
            // `User.external_id` a string everywhere else while such a delivery still decodes
            // (instead of failing the whole webhook batch).
            | ("ConversationReferralEventPayload", "user")
    )
}

/// List operations the API pages backwards by default, by operationId: their first page (no
/// cursor) is the newest, and `meta.beforeCursor` (sent back as `page[before]`) leads to older
/// pages. The spec says so only in ListMessages' prose (messages come oldest to newest within a
/// page, and paging goes back in time), not in any schema, so it is listed here. A caller that
/// starts such a listing with `page[after]` still pages forwards.
pub(crate) fn pages_backward(operation_id: &str) -> bool {
    operation_id == "ListMessages"
}

/// Query parameters an operation shares with others but which the spec says do not apply to
/// it, by operationId and wire name: no setter is generated, so none silently does nothing.
/// The shared `page` object's `size` "does not apply to the `listMessages` endpoint", whose
/// pages hold 100 messages.
pub(crate) fn query_param_ignored(operation_id: &str, wire: &str) -> bool {
    matches!((operation_id, wire), ("ListMessages", "page[size]"))
}

/// Required query objects whose members the spec allows only one of, by operationId and
/// parameter name; the schema cannot say so (no `oneOf`), only the members' descriptions. For
/// ListConversations' `filter`: "One of `userId` or `userExternalId` is required, but not
/// both."
pub(crate) fn query_members_exclusive(operation_id: &str, param: &str) -> bool {
    matches!((operation_id, param), ("ListConversations", "filter"))
}

/// Operations whose `security` the spec gets wrong, by operationId: `Some(sends)` overrides
/// whether the client's credentials go with the request. GetTokenInfo says `security: []`,
/// yet it answers with "the app linked to the OAuth token" and serves "to confirm that the
/// credentials are still valid": the token is its one input and travels as
/// `Authorization: Bearer` (zd-auth's `OAuthBridge::token_info` sends it so, and the
/// emulator refuses the request without it).
pub(crate) fn sends_credentials(operation_id: &str) -> Option<bool> {
    match operation_id {
        "GetTokenInfo" => Some(true),
        _ => None,
    }
}

/// Credential-bearing body fields the naming rule of `emit_models::sensitive` misses, by Rust
/// type name and wire name: hidden in `Debug` and in error answers that echo them. GetToken's
/// `code` is the authorization code, a one-time credential: until it is exchanged, it and the
/// client secret are worth an access token (zd-auth's `OAuthBridge::exchange_code` hides both
/// in its errors as well).
pub(crate) fn secret_field(rust: &str, json: &str) -> bool {
    matches!((rust, json), ("GetTokenBody", "code"))
}
