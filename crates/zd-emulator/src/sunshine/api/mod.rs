//! The REST operations, one file per resource family.

mod apps;
mod attachments;
pub(crate) use attachments::media;
pub(crate) mod conversations;
mod integrations;
pub(crate) mod messages;
mod oauth;
mod switchboards;
mod users;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{delete, get, post};

use super::Sunshine;
use super::auth::{self, Principal};
use super::chat_oauth;
use super::error::{ApiError, Missing};
use super::store::Store;

/// An attachment upload: the service's 50 MB plus room for the multipart framing.
const UPLOAD_BODY_LIMIT: usize = 50 * 1024 * 1024 + 64 * 1024;
/// Every other route: JSON bodies are held to 100 KB by [`super::http::json_body`] (which
/// answers in the service's words); past this, the body is read no further and
/// [`super::http::Payload`] gives the same answer.
const BODY_LIMIT: usize = 128 * 1024;

/// What an operation needs from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Account provisioning: account keys only.
    Account,
    /// App administration (keys, integrations, switchboards, settings): account or app keys.
    Admin,
    /// Users, conversations, messages, attachments: any key that reaches the app.
    Data,
    /// Webhooks: app keys and the integration's own credentials; the spec gives account keys
    /// no scope on them.
    Webhooks,
}

/// Authenticates and checks that the caller may do `need` on `app_id` (which must exist).
pub(crate) fn access(
    store: &Store,
    headers: &HeaderMap,
    app_id: Option<&str>,
    need: Need,
) -> Result<Principal, ApiError> {
    let who = auth::authenticate(store, headers)?;
    let allowed = match (&who, need) {
        (Principal::Account, Need::Webhooks) => false,
        (Principal::Account, _) => true,
        (_, Need::Account) => false,
        (Principal::App(_), _) => true,
        (Principal::Integration { .. }, Need::Data | Need::Webhooks) => true,
        (Principal::Integration { .. }, Need::Admin) => false,
    };
    if !allowed {
        return Err(ApiError::forbidden());
    }
    if let Some(app_id) = app_id {
        if !who.reaches(app_id) {
            return Err(ApiError::forbidden());
        }
        if !store.apps.contains_key(app_id) {
            return Err(ApiError::not_found(Missing::App));
        }
    }
    Ok(who)
}

pub(crate) fn router() -> Router<Sunshine> {
    use apps as a;
    use attachments as at;
    use conversations as c;
    use integrations as i;
    use messages as m;
    use switchboards as sb;
    use users as u;
    const C: &str = "/v2/apps/{app_id}/conversations/{conversation_id}";
    const U: &str = "/v2/apps/{app_id}/users/{user_id}";
    const I: &str = "/v2/apps/{app_id}/integrations/{integration_id}";
    const S: &str = "/v2/apps/{app_id}/switchboards/{switchboard_id}";
    Router::new()
        .route("/v2/apps", post(a::create).get(a::list))
        .route(
            "/v2/apps/{app_id}",
            get(a::get).patch(a::update).delete(a::delete),
        )
        .route(
            "/v2/apps/{app_id}/keys",
            post(a::create_key).get(a::list_keys),
        )
        .route(
            "/v2/apps/{app_id}/keys/{key_id}",
            get(a::get_key).delete(a::delete_key),
        )
        .route(
            "/v2/apps/{app_id}/attachments",
            post(at::upload).layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)),
        )
        .route("/v2/apps/{app_id}/attachments/remove", post(at::remove))
        .route(
            "/v2/apps/{app_id}/conversations",
            post(c::create).get(c::list),
        )
        .route(C, get(c::get).patch(c::update).delete(c::delete))
        .route(&format!("{C}/join"), post(c::join))
        .route(&format!("{C}/leave"), post(c::leave))
        .route(&format!("{C}/participants"), get(c::participants))
        .route(
            &format!("{C}/messages"),
            post(m::post).get(m::list).delete(m::delete_all),
        )
        .route(
            &format!("{C}/messages/{{message_id}}"),
            delete(m::delete_one),
        )
        .route(&format!("{C}/activity"), post(m::activity))
        .route(&format!("{C}/passControl"), post(c::pass_control))
        .route(&format!("{C}/offerControl"), post(c::offer_control))
        .route(&format!("{C}/acceptControl"), post(c::accept_control))
        .route(&format!("{C}/releaseControl"), post(c::release_control))
        .route(&format!("{C}/download"), post(c::download))
        .route(&format!("{C}/conversionEvents"), post(c::conversion_events))
        .route(
            "/v2/apps/{app_id}/integrations",
            post(i::create).get(i::list),
        )
        .route(I, get(i::get).patch(i::update).delete(i::delete))
        .route(&format!("{I}/keys"), post(i::create_key).get(i::list_keys))
        .route(
            &format!("{I}/keys/{{key_id}}"),
            get(i::get_key).delete(i::delete_key),
        )
        .route(
            &format!("{I}/webhooks"),
            post(i::create_webhook).get(i::list_webhooks),
        )
        .route(
            &format!("{I}/webhooks/{{webhook_id}}"),
            get(i::get_webhook)
                .patch(i::update_webhook)
                .delete(i::delete_webhook),
        )
        .route(
            "/v2/apps/{app_id}/switchboards",
            post(sb::create).get(sb::list),
        )
        .route(S, axum::routing::patch(sb::update).delete(sb::delete))
        .route(
            &format!("{S}/switchboardIntegrations"),
            post(sb::create_integration).get(sb::list_integrations),
        )
        .route(
            &format!("{S}/switchboardIntegrations/{{sbi_id}}"),
            axum::routing::patch(sb::update_integration).delete(sb::delete_integration),
        )
        .route("/v2/apps/{app_id}/users", post(u::create).get(u::list))
        .route(U, get(u::get).patch(u::update).delete(u::delete))
        .route(
            &format!("{U}/clients"),
            post(u::create_client).get(u::list_clients),
        )
        .route(
            &format!("{U}/clients/{{client_id}}"),
            delete(u::remove_client),
        )
        .route(&format!("{U}/devices"), get(u::list_devices))
        .route(&format!("{U}/devices/{{device_id}}"), get(u::get_device))
        .route(
            &format!("{U}/personalinformation"),
            delete(u::delete_personal),
        )
        .route(&format!("{U}/sync"), post(u::sync))
        .route("/v2/tokenInfo", get(oauth::token_info))
        .route("/oauth/authorize", get(oauth::authorize))
        .route("/oauth/token", post(oauth::token))
        .route("/oauth/authorization", delete(oauth::revoke))
        .route("/oauth2/authorizations/new", get(chat_oauth::authorize))
        .route("/oauth2/token", post(chat_oauth::token))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}
