//! Chat OAuth (`/oauth2/authorizations/new`, `POST /oauth2/token`): hands out the access
//! tokens of the emulator's chat agents, which the chat service accepts in `startAgentSession`.

use std::collections::HashMap;
use std::fmt;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, body::Bytes};
use base64::Engine as _;
use parking_lot::Mutex;
use serde_json::json;

use super::http::Query;
use super::{CHAT_OAUTH_CLIENT_ID, CHAT_OAUTH_CLIENT_SECRET, ChatAgents, Sunshine, util};

/// The password every demo agent accepts in the `password` grant.
pub const CHAT_AGENT_PASSWORD: &str = "demo-agent-password";

/// Issued codes and refresh tokens, each naming an agent's access token.
pub(crate) struct ChatOAuth {
    agents: ChatAgents,
    codes: Mutex<HashMap<String, String>>,
    refresh: Mutex<HashMap<String, String>>,
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
    pub(crate) fn new(agents: ChatAgents) -> Self {
        Self {
            agents,
            codes: Mutex::new(HashMap::new()),
            refresh: Mutex::new(HashMap::new()),
        }
    }

    /// The access token of the agent named `name`, or of the first agent.
    fn agent_token(&self, name: Option<&str>) -> Option<String> {
        let agents = (self.agents)();
        match name {
            Some(n) => agents
                .into_iter()
                .find(|(a, _)| a.eq_ignore_ascii_case(n))
                .map(|(_, t)| t),
            None => agents.into_iter().next().map(|(_, t)| t),
        }
    }

    fn grant(&self, access_token: String) -> Response {
        let refresh = util::secret();
        util::remember_grant(
            &mut self.refresh.lock(),
            refresh.clone(),
            access_token.clone(),
        );
        Json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "refresh_token": refresh,
            "scope": "read write chat",
        }))
        .into_response()
    }
}

/// `GET /oauth2/authorizations/new`: approves at once (as the agent named by `agent`, or the
/// first agent) and redirects with a code or, for `response_type=token`, a token.
pub(crate) async fn authorize(State(s): State<Sunshine>, RawQuery(raw): RawQuery) -> Response {
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
    let Some(token) = s.chat().agent_token(q.get("agent")) else {
        return oauth_error(StatusCode::BAD_REQUEST, "access_denied", "no such agent");
    };
    let state = q.get("state").unwrap_or_default();
    let enc = |v: &str| {
        serde_urlencoded::to_string([("v", v)])
            .map(|s| s[2..].to_owned())
            .unwrap_or_default()
    };
    let location = match q.get("response_type") {
        Some("code") => {
            let code = util::secret();
            util::remember_grant(&mut s.chat().codes.lock(), code.clone(), token);
            let sep = if redirect.contains('?') { '&' } else { '?' };
            format!("{redirect}{sep}code={}&state={}", enc(&code), enc(state))
        }
        Some("token") => format!(
            "{redirect}#access_token={}&token_type=Bearer&scope=read%20write%20chat&state={}",
            enc(&token),
            enc(state)
        ),
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
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let (client_id, client_secret) = match &basic {
        Some(pair) => match pair.split_once(':') {
            Some((i, s)) => (Some(i.to_owned()), Some(s.to_owned())),
            None => (None, None),
        },
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
            match chat.codes.lock().remove(code) {
                Some(token) => chat.grant(token),
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
            let user = form.get("username").unwrap_or_default();
            let token = chat.agent_token(Some(user));
            match token {
                Some(t) if form.get("password") == Some(CHAT_AGENT_PASSWORD) => chat.grant(t),
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
            match chat.agent_token(None) {
                Some(t) => Json(json!({
                    "access_token": t,
                    "token_type": "Bearer",
                    "scope": "read write chat",
                }))
                .into_response(),
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
            let token = chat.refresh.lock().remove(presented);
            match token {
                Some(t) => chat.grant(t),
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
