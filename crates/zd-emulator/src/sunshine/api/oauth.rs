//! The OAuth bridge: authorize, code exchange, token info and revocation.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::sunshine::auth::{self, Principal};
use crate::sunshine::error::{ApiError, ApiResult, Missing, ok};
use crate::sunshine::http::{self, Payload, Query};
use crate::sunshine::store::Integration;
use crate::sunshine::{
    BRIDGE_CLIENT_ID, BRIDGE_CLIENT_SECRET, BRIDGE_REDIRECT_URI, DEMO_APP_ID, Sunshine, redirect,
    util,
};

/// `GET /oauth/authorize`: the emulator approves at once for the app named by `app_id` (the
/// demo app by default) and redirects back with a code, to `redirect_uri` or, without one,
/// to the client's first configured URI ([`BRIDGE_REDIRECT_URI`] unless configured
/// otherwise). A `redirect_uri` the client is not configured with is refused (see
/// [`redirect`]).
pub(crate) async fn authorize(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let q = match Query::parse(q.as_deref()) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    if q.get("client_id") != Some(BRIDGE_CLIENT_ID) {
        return ApiError::bad_request("unknown client_id").into_response();
    }
    let redirect = match q.get("redirect_uri") {
        Some(uri) if redirect::allowed(s.config(), &headers, uri) => uri,
        Some(_) => {
            return ApiError::bad_request(
                "redirect_uri must be contained in the list configured by the integration",
            )
            .into_response();
        }
        None => s
            .config()
            .allowed_redirect_uris()
            .first()
            .map_or(BRIDGE_REDIRECT_URI, String::as_str),
    };
    if q.get("response_type") != Some("code") {
        return ApiError::bad_request("response_type should be code").into_response();
    }
    let app_id = q.get("app_id").unwrap_or(DEMO_APP_ID).to_owned();
    let mut store = s.store();
    if !store.apps.contains_key(&app_id) {
        return ApiError::not_found(Missing::App).into_response();
    }
    let code = util::secret();
    util::remember_grant(&mut store.bridge_codes, code.clone(), app_id);
    drop(store);
    let mut pairs = vec![("code", code.as_str())];
    if let Some(state) = q.get("state") {
        pairs.push(("state", state));
    }
    let location = redirect::location(redirect, &pairs, false);
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location.clone()),
            (header::CONTENT_TYPE, "text/plain".into()),
        ],
        format!("Found. Redirecting to {location}"),
    )
        .into_response()
}

/// `POST /oauth/token` (JSON): exchanges a code for an integration-scope token.
pub(crate) async fn token(State(s): State<Sunshine>, Payload(body): Payload) -> ApiResult {
    let body = http::json_body(&body)?;
    for f in ["code", "grant_type", "client_id", "client_secret"] {
        http::req_str(&body, f)?;
    }
    if body["grant_type"] != "authorization_code" {
        return Err(ApiError::bad_request(
            "grant_type should be authorization_code",
        ));
    }
    if body["client_id"] != BRIDGE_CLIENT_ID || body["client_secret"] != BRIDGE_CLIENT_SECRET {
        return Err(ApiError::unauthorized());
    }
    let code = http::req_str(&body, "code")?;
    let mut store = s.store();
    let app_id = store
        .bridge_codes
        .remove(code)
        .ok_or_else(|| ApiError::bad_request("invalid or used code"))?;
    // The integration the authorization creates: its webhooks live under `integrations/me`.
    let integration = Integration {
        id: s.next_id(),
        kind: "custom".to_owned(),
        display_name: Some("Sunshine Conversations Connect".to_owned()),
        ..Integration::default()
    };
    let integration_id = integration.id.clone();
    store
        .app_mut(&app_id)?
        .integrations
        .insert(integration_id.clone(), integration);
    let token = util::secret();
    store
        .bridge_tokens
        .insert(token.clone(), (app_id, integration_id));
    ok(json!({ "access_token": token, "token_type": "Bearer" }))
}

/// `GET /v2/tokenInfo`: the app the credentials belong to.
pub(crate) async fn token_info(State(s): State<Sunshine>, headers: HeaderMap) -> ApiResult {
    let store = s.store();
    let app_id = match auth::authenticate(&store, &headers)? {
        Principal::App(id) | Principal::Integration { app_id: id, .. } => id,
        Principal::Account => return Err(ApiError::forbidden()),
    };
    let app = store.app(&app_id)?;
    ok(json!({ "app": super::apps::with_subdomain(app) }))
}

/// `DELETE /oauth/authorization`: revokes the calling integration's access, with the
/// spec's `basicAuth` or `bearerAuth` of `integration` scope (an OAuth bridge token, or a
/// custom integration's key or JWT): removes the integration, its webhooks and every bridge
/// token issued for it, whether or not a switchboard integration names it (the spec documents
/// only 200). App and account credentials have no integration to revoke (403).
pub(crate) async fn revoke(State(s): State<Sunshine>, headers: HeaderMap) -> ApiResult {
    let mut store = s.store();
    let Principal::Integration {
        app_id,
        integration_id,
    } = auth::authenticate(&store, &headers)?
    else {
        return Err(ApiError::forbidden());
    };
    // Documented only as 200: a switchboard integration naming it does not refuse it, as it
    // does DeleteIntegration.
    super::integrations::remove(&s, &mut store, &app_id, &integration_id)?;
    ok(json!({}))
}
