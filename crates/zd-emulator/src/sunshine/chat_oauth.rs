//! Chat OAuth (`/oauth2/authorizations/new`, `POST /oauth2/token`): hands out access tokens
//! acting as the emulator's chat agents, with the scopes asked for (`read`, `write`, `chat`;
//! all three when none are named). A token without `chat` is refused by `startAgentSession`,
//! one without `read` by the Real Time Chat API.

use std::collections::HashMap;
use std::fmt;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, body::Bytes};
use parking_lot::Mutex;
use serde_json::json;

use super::http::Query;
use super::{
    CHAT_OAUTH_CLIENT_ID, CHAT_OAUTH_CLIENT_SECRET, ChatAgents, ChatTokenIssuer, Sunshine,
    redirect, util,
};
use crate::state::ChatScopes;

/// The password every demo agent accepts in the `password` grant.
pub const CHAT_AGENT_PASSWORD: &str = "demo-agent-password";

/// What a grant gives: the agent (by its own token) and the scopes. Codes and refresh tokens
/// stand for one; the access token is issued from it when it is handed out, so a refresh
/// always gives a token that works.
struct Grant {
    own: String,
    scopes: ChatScopes,
}

/// Issued codes and refresh tokens, each naming the grant it stands for.
pub(crate) struct ChatOAuth {
    agents: ChatAgents,
    issuer: ChatTokenIssuer,
    /// With the `redirect_uri` each was issued for, which its exchange must name again.
    codes: Mutex<HashMap<String, (Grant, String)>>,
    refresh: Mutex<HashMap<String, Grant>>,
}

impl fmt::Debug for ChatOAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatOAuth").finish_non_exhaustive()
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

impl ChatOAuth {
    pub(crate) fn new(agents: ChatAgents, issuer: ChatTokenIssuer) -> Self {
        Self {
            agents,
            issuer,
            codes: Mutex::new(HashMap::new()),
            refresh: Mutex::new(HashMap::new()),
        }
    }

    /// A grant of `scopes` acting as the agent named `name`, or as the first agent. Nothing
    /// is issued yet: a request refused later takes no token.
    fn grant_for(&self, name: Option<&str>, scopes: ChatScopes) -> Option<Grant> {
        let agents = (self.agents)();
        let own = match name {
            Some(n) => agents
                .into_iter()
                .find(|(a, _)| a.eq_ignore_ascii_case(n))
                .map(|(_, t)| t),
            None => agents.into_iter().next().map(|(_, t)| t),
        }?;
        Some(Grant { own, scopes })
    }

    /// Issues the access token of `grant`; `None` when its agent is gone.
    fn issue(&self, grant: &Grant) -> Option<String> {
        (self.issuer)(&grant.own, grant.scopes)
    }

    /// The token answer, with a refresh token unless `refreshable` is false.
    fn answer(&self, grant: Grant, refreshable: bool) -> Response {
        let Some(token) = self.issue(&grant) else {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "no such agent");
        };
        let mut body = json!({
            "access_token": token,
            "token_type": "Bearer",
            "scope": grant.scopes.to_string(),
        });
        if refreshable {
            let refresh = util::secret();
            body["refresh_token"] = json!(refresh);
            util::remember_grant(&mut self.refresh.lock(), refresh, grant);
        }
        Json(body).into_response()
    }
}

/// The scopes a request asks for, or the `invalid_scope` answer.
fn requested_scopes(list: Option<&str>) -> Result<ChatScopes, Box<Response>> {
    ChatScopes::parse(list.unwrap_or_default()).map_err(|word| {
        Box::new(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!("unknown scope {word:?}: the scopes are read, write and chat"),
        ))
    })
}

/// `GET /oauth2/authorizations/new`: approves at once (as the agent named by `agent`, or the
/// first agent) and redirects with a code or, for `response_type=token`, a token, to a
/// `redirect_uri` the client is configured with (see [`super::redirect`]).
pub(crate) async fn authorize(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let Ok(q) = Query::parse(raw.as_deref()) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "bad query");
    };
    if q.get("client_id") != Some(CHAT_OAUTH_CLIENT_ID) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "unknown client_id",
        );
    }
    let Some(redirect) = q.get("redirect_uri") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is required",
        );
    };
    if !redirect::allowed(s.config(), &headers, redirect) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is not one the client is configured with",
        );
    }
    let scopes = match requested_scopes(q.get("scope")) {
        Ok(scopes) => scopes,
        Err(answer) => return *answer,
    };
    let Some(grant) = s.chat().grant_for(q.get("agent"), scopes) else {
        return oauth_error(StatusCode::BAD_REQUEST, "access_denied", "no such agent");
    };
    let state = q.get("state").unwrap_or_default();
    let location = match q.get("response_type") {
        Some("code") => {
            let code = util::secret();
            util::remember_grant(
                &mut s.chat().codes.lock(),
                code.clone(),
                (grant, redirect.to_owned()),
            );
            redirect::location(redirect, &[("code", &code), ("state", state)], false)
        }
        Some("token") => {
            let Some(token) = s.chat().issue(&grant) else {
                return oauth_error(StatusCode::BAD_REQUEST, "access_denied", "no such agent");
            };
            let scope = grant.scopes.to_string();
            let pairs = [
                ("access_token", token.as_str()),
                ("token_type", "Bearer"),
                ("scope", &scope),
                ("state", state),
            ];
            redirect::location(redirect, &pairs, true)
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_response_type",
                "response_type must be code or token",
            );
        }
    };
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// `POST /oauth2/token`, form-encoded: `authorization_code`, `password`, `client_credentials`
/// and `refresh_token` grants.
pub(crate) async fn token(State(s): State<Sunshine>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "body must be form-encoded",
        );
    };
    let form = Query(form);
    let basic = crate::credentials::header(&headers).and_then(crate::credentials::basic);
    let (client_id, client_secret) = match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            form.get("client_id").map(str::to_owned),
            form.get("client_secret").map(str::to_owned),
        ),
    };
    let chat = s.chat();
    let client_ok = client_id.as_deref() == Some(CHAT_OAUTH_CLIENT_ID)
        && client_secret.as_deref() == Some(CHAT_OAUTH_CLIENT_SECRET);
    let public_client_ok = client_id.as_deref() == Some(CHAT_OAUTH_CLIENT_ID);
    match form.get("grant_type") {
        Some("authorization_code") => {
            if !client_ok {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "bad client credentials",
                );
            }
            let code = form.get("code").unwrap_or_default();
            // The scopes were settled when the code was issued. Spent even by an exchange
            // that is refused, as a code is single-use.
            let issued = chat.codes.lock().remove(code);
            match issued {
                // RFC 6749 section 4.1.3: the exchange names the redirect URI the code was
                // issued for, so a code intercepted on its way to one URI is no use to a
                // client that names another.
                Some((_, redirect)) if form.get("redirect_uri") != Some(redirect.as_str()) => {
                    oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "redirect_uri does not match the authorization request",
                    )
                }
                Some((grant, _)) => chat.answer(grant, true),
                None => oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown or used code",
                ),
            }
        }
        Some("password") => {
            if !public_client_ok {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "unknown client_id",
                );
            }
            let scopes = match requested_scopes(form.get("scope")) {
                Ok(scopes) => scopes,
                Err(answer) => return *answer,
            };
            let user = form.get("username").unwrap_or_default();
            let grant = chat.grant_for(Some(user), scopes);
            match grant {
                Some(g) if form.get("password") == Some(CHAT_AGENT_PASSWORD) => {
                    chat.answer(g, true)
                }
                _ => oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "bad username or password",
                ),
            }
        }
        Some("client_credentials") => {
            if !client_ok {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "bad client credentials",
                );
            }
            let scopes = match requested_scopes(form.get("scope")) {
                Ok(scopes) => scopes,
                Err(answer) => return *answer,
            };
            // The service's client-credentials answer carries no refresh token.
            match chat.grant_for(None, scopes) {
                Some(grant) => chat.answer(grant, false),
                None => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "no agent"),
            }
        }
        Some("refresh_token") => {
            if !public_client_ok {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "unknown client_id",
                );
            }
            let presented = form.get("refresh_token").unwrap_or_default();
            // Refresh tokens rotate: the presented one is spent.
            let grant = chat.refresh.lock().remove(presented);
            match grant {
                Some(grant) => chat.answer(grant, true),
                None => oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown refresh_token",
                ),
            }
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code, password, client_credentials or refresh_token",
        ),
    }
}
