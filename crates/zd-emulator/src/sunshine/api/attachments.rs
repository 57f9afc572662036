//! Attachments: upload (multipart), removal, and the media they are served from.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Need, access};
use crate::sunshine::Sunshine;
use crate::sunshine::error::{ApiError, ApiResult, Missing, created, ok};
use crate::sunshine::http::{self, Payload, Query};
use crate::sunshine::multipart;
use crate::sunshine::store::Attachment;

/// The service's attachment size limit.
const MAX_ATTACHMENT: usize = 50 * 1024 * 1024;

pub(crate) async fn upload(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
    RawQuery(q): RawQuery,
    request: Request,
) -> ApiResult {
    // Checked before the body is read: a caller without credentials must not make the
    // emulator take in up to 50 MB. The store's lock is not held while the body is read and
    // parsed: every other request of the service would wait for it.
    access(&s.store(), &headers, Some(&app_id), Need::Data)?;
    let body = Bytes::from_request(request, &s)
        .await
        .map_err(|rejection| http::unread_body(&rejection, too_large))?;
    let q = Query::parse(q.as_deref())?;
    match q.get("access") {
        Some("public") => {}
        Some(_) => return Err(ApiError::bad_request("access should be public")),
        None => {
            return Err(ApiError::bad_request(
                "should have required property 'access'",
            ));
        }
    }
    if let Some(f) = q.get("for") {
        if f != "message" {
            return Err(ApiError::bad_request("for should be message"));
        }
    }
    // Only an upload `for` a message is deleted with its conversation; `conversationId`
    // alone links nothing.
    let conversation_id = q.get("for").and(q.get("conversationId")).map(str::to_owned);
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ctype.starts_with("multipart/form-data") {
        return Err(ApiError::bad_request(
            "the body should be multipart/form-data",
        ));
    }
    let part = multipart::part(ctype, &body, "source")
        .ok_or_else(|| ApiError::bad_request("should have required property 'source'"))?;
    if part.bytes.len() > MAX_ATTACHMENT {
        return Err(too_large());
    }
    let id = s.next_id();
    let name: String = part.filename.chars().filter(|&c| name_char(c)).collect();
    let path = format!(
        "/_emulator/sunshine/media/{app_id}/{id}/{}",
        if name.is_empty() { "file" } else { &name }
    );
    let url = http::self_url(&headers, &path);
    let attachment = Attachment {
        media_type: part.content_type.clone(),
        // A copy: a slice would keep the whole request body alive, other parts included.
        bytes: Bytes::copy_from_slice(&part.bytes),
        conversation_id,
    };
    let mut store = s.store();
    let app = store.app_mut(&app_id)?;
    // UploadAttachment documents 400 as its only refusal; the limit is the emulator's own.
    let limit = s.config().upload_storage;
    if app.uploads.insert(url.clone(), attachment, limit).is_err() {
        return Err(ApiError::bad_request(format!(
            "The app's uploads would exceed the emulator's limit of {limit} bytes in all: \
             remove some first"
        )));
    }
    created(json!({ "attachment": { "mediaUrl": url, "mediaType": part.content_type } }))
}

/// The answer to an attachment over [`MAX_ATTACHMENT`], or to an upload past the route's
/// limit.
fn too_large() -> ApiError {
    http::too_large("Attachments are limited to 50MB")
}

pub(crate) async fn remove(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Data)?;
    let body = http::json_body(&body)?;
    let url = http::req_str(&body, "mediaUrl")?;
    store
        .app_mut(&app_id)?
        .uploads
        .remove(url)
        .ok_or_else(|| ApiError::not_found(Missing::Other("Attachment not found")))?;
    ok(json!({}))
}

/// `GET /_emulator/sunshine/media/{app}/{id}/{name}`: the uploaded bytes, as a download.
///
/// The media share the emulator's origin, which an OAuth redirect may name (loopback on any
/// path): uploaded HTML or SVG must never run as one of its pages. So the answer is a
/// download (`Content-Disposition: attachment`), its type is not sniffed, and a CSP sandbox
/// gives any document rendered anyway an opaque origin without scripts.
pub(crate) async fn media(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, id, name)): Path<(String, String, String)>,
) -> Response {
    let url = http::self_url(
        &headers,
        &format!("/_emulator/sunshine/media/{app_id}/{id}/{name}"),
    );
    let store = s.store();
    let found = store
        .apps
        .get(&app_id)
        .and_then(|a| a.uploads.get(&url))
        .cloned();
    drop(store);
    match found {
        Some(a) => {
            let mut response = Body::from(a.bytes).into_response();
            let h = response.headers_mut();
            // The uploader's type as given, unless it is no header value at all.
            let media_type = HeaderValue::from_str(&a.media_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            h.insert(header::CONTENT_TYPE, media_type);
            h.insert(header::CONTENT_DISPOSITION, disposition(&name));
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; sandbox"),
            );
            response
        }
        None => ApiError::not_found(Missing::Other("Attachment not found")).into_response(),
    }
}

/// The characters a stored attachment's file name keeps: safe in a URL path and a quoted
/// header parameter alike.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
}

/// `attachment`, with `name` as the file name if it keeps to the characters an upload's name
/// is cut down to (letters, digits, `.`, `-`, `_`): nothing a header could read otherwise.
fn disposition(name: &str) -> HeaderValue {
    let safe = !name.is_empty() && name.chars().all(name_char);
    if safe {
        if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            return value;
        }
    }
    HeaderValue::from_static("attachment")
}
