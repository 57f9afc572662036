//! The documented error body, `{"errors":[{"code","title"}]}`, with its status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An API error as the service reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) title: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, title: impl Into<String>) -> Self {
        Self {
            status,
            code,
            title: title.into(),
        }
    }

    pub(crate) fn bad_request(title: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", title)
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authorization is required",
        )
    }

    pub(crate) fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Cannot access this resource with the provided credentials",
        )
    }

    /// The 404 for `missing`, in the code and words the spec's examples use for it.
    pub(crate) fn not_found(missing: Missing) -> Self {
        let (code, title) = missing.code_and_title();
        Self::new(StatusCode::NOT_FOUND, code, title)
    }

    pub(crate) fn conflict(title: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", title)
    }
}

/// What a 404 says is missing. The service names apps, conversations, users, integrations,
/// switchboards and their integrations, clients and devices in the code (`app_not_found`, ...);
/// app keys, webhooks, attachments, messages and participants get the plain `not_found`, as
/// do the few operations whose documented 404 is plain (`ListMessages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    App,
    Conversation,
    User,
    Integration,
    Switchboard,
    SwitchboardIntegration,
    Client,
    Device,
    /// `not_found` with the service's generic title, "Resource not found".
    Resource,
    /// `not_found` with this title.
    Other(&'static str),
}

impl Missing {
    const fn code_and_title(self) -> (&'static str, &'static str) {
        match self {
            Self::App => ("app_not_found", "App not found"),
            Self::Conversation => ("conversation_not_found", "Conversation not found"),
            Self::User => ("user_not_found", "User not found"),
            Self::Integration => ("integration_not_found", "Integration not found"),
            Self::Switchboard => ("switchboard_not_found", "Switchboard not found"),
            Self::SwitchboardIntegration => (
                "switchboard_integration_not_found",
                "SwitchboardIntegration not found",
            ),
            Self::Client => ("client_not_found", "Client not found"),
            Self::Device => ("device_not_found", "Device not found"),
            Self::Resource => ("not_found", "Resource not found"),
            Self::Other(title) => ("not_found", title),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "errors": [{ "code": self.code, "title": self.title }] })),
        )
            .into_response()
    }
}

/// What every handler returns.
pub(crate) type ApiResult = Result<(StatusCode, Json<serde_json::Value>), ApiError>;

/// A `200` with `body`.
pub(crate) fn ok(body: serde_json::Value) -> ApiResult {
    Ok((StatusCode::OK, Json(body)))
}

/// A `201` with `body`.
pub(crate) fn created(body: serde_json::Value) -> ApiResult {
    Ok((StatusCode::CREATED, Json(body)))
}

/// `body` serialized straight into the response, for bodies that are not one `Value` tree
/// (pages written from stored bytes).
pub(crate) fn ok_json<T: serde::Serialize>(
    status: StatusCode,
    body: &T,
) -> Result<Response, ApiError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok((
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response())
}
