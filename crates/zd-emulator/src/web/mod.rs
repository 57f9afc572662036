//! The visitor chat page at `/`: a small widget a person (or a headless browser) uses to chat
//! with whatever bot is connected. It talks to the control API; with `?channel_id=` the
//! transcript is embedded in the page so it renders on load without a round trip.

use axum::body::Body;
use http::{HeaderValue, Response, header};
use serde::Deserialize;

use crate::control::Control;

const PAGE: &str = include_str!("index.html");
const MARKER: &str = "/*INITIAL*/null";

/// `/?channel_id=...`.
#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    channel_id: Option<String>,
}

/// JSON that is safe inside a `<script>` element.
fn script_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "null".to_owned())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

pub(crate) fn page(control: &Control, query: &PageQuery) -> Response<Body> {
    let initial = query
        .channel_id
        .as_deref()
        .and_then(|id| control.transcript(id).ok());
    let departments: Vec<String> = control
        .state()
        .departments()
        .into_iter()
        .map(|d| d.name)
        .collect();
    let boot = serde_json::json!({ "transcript": initial, "departments": departments });
    let html = PAGE.replacen(MARKER, &script_json(&boot), 1);
    let mut response = Response::new(Body::from(html));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Framed by another site, the page's buttons (start a chat, send, leave) could be clicked
    // through an overlay: its requests come from its own origin, so no origin check stops them.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'self'"),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    response
}
