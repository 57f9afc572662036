//! The control APIs answer only their own page and programs, not other websites.
//!
//! A page on any site a developer visits can send a plain cross-site POST to
//! `http://127.0.0.1:{port}/_emulator/...` (no preflight for a body-less or `text/plain`
//! request), which would reset the emulator or play visitors on a running `zd emulator` or
//! `zd demo`. Browsers name the page's origin on such requests; programs (tests, curl, the
//! bench harness) send none, and the emulator's own visitor page is of the same origin.

use axum::Json;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode, header};
use serde_json::json;

/// Refuses, with 403, a request that changes something and comes from another site's page.
pub(crate) async fn same_origin_only(request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) || !cross_site(request.headers())
    {
        return next.run(request).await;
    }
    let error = "cross-site requests to the emulator's control API are refused: use it from a \
                 program, or from the emulator's own page";
    (StatusCode::FORBIDDEN, Json(json!({ "error": error }))).into_response()
}

/// Whether the browser says the request comes from a page of another origin.
fn cross_site(headers: &http::HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers.get(header::HOST).map(http::HeaderValue::as_bytes);
    // `Origin: scheme://host[:port]` (or `null` for an opaque origin, which is never ours).
    let authority = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, authority)| authority.as_bytes());
    match (authority, host) {
        (Some(a), Some(h)) => !a.eq_ignore_ascii_case(h),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    http::HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn only_pages_of_other_origins_are_cross_site() {
        assert!(!cross_site(&headers(&[("host", "127.0.0.1:8090")])));
        assert!(!cross_site(&headers(&[
            ("host", "127.0.0.1:8090"),
            ("origin", "http://127.0.0.1:8090"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:8090"),
            ("origin", "https://evil.example"),
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:8090"),
            ("origin", "null"),
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:8090"),
            ("sec-fetch-site", "cross-site"),
        ])));
    }
}
