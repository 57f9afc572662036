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

    pub(crate) fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub(crate) fn conflict(title: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", title)
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
