//! Request plumbing shared by the handlers: JSON bodies with the 100 KB limit, query strings,
//! cursor pagination.

use std::collections::BTreeMap;
use std::ops::Bound;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use super::error::ApiError;

/// The service's limit on JSON request bodies.
pub(crate) const JSON_LIMIT: usize = 100 * 1024;

/// The service's answer to a body over a limit, `title` naming which.
pub(crate) fn too_large(title: &'static str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_entity_too_large",
        title,
    )
}

/// The service's answer to a JSON body over [`JSON_LIMIT`].
fn json_too_large() -> ApiError {
    too_large("Request body exceeds the 100KB limit")
}

/// A request body, read no further than the route's `DefaultBodyLimit`. Past that limit the
/// caller gets the service's JSON 413, as for any body over 100 KB, where the plain `Bytes`
/// extractor would answer axum's text/plain one.
#[derive(Debug)]
pub(crate) struct Payload(pub(crate) Bytes);

impl<S: Send + Sync> FromRequest<S> for Payload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|rejection| unread_body(&rejection, json_too_large))
    }
}

/// The error for a body that could not be read: `too_large` when it went past the route's
/// limit, so that the caller gets the service's JSON error instead of axum's text/plain one.
pub(crate) fn unread_body(
    rejection: &BytesRejection,
    too_large: impl FnOnce() -> ApiError,
) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        ApiError::new(rejection.status(), "bad_request", rejection.body_text())
    }
}

/// Parses a JSON object body (an empty body reads as `{}`).
pub(crate) fn json_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.len() > JSON_LIMIT {
        return Err(json_too_large());
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("Request body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!("Invalid JSON body: {e}"))),
    }
}

/// A required string field.
pub(crate) fn req_str<'a>(body: &'a Map<String, Value>, field: &str) -> Result<&'a str, ApiError> {
    match body.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::bad_request(format!("{field} should be string"))),
        None => Err(ApiError::bad_request(format!(
            "should have required property '{field}'"
        ))),
    }
}

/// An optional string field (`null` reads as absent).
pub(crate) fn opt_str(body: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(format!("{field} should be string"))),
    }
}

/// A required string field with length bounds (in characters).
pub(crate) fn req_str_len<'a>(
    body: &'a Map<String, Value>,
    field: &str,
    min: usize,
    max: usize,
) -> Result<&'a str, ApiError> {
    let value = req_str(body, field)?;
    check_len(field, value, min, max)?;
    Ok(value)
}

fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(ApiError::bad_request(format!(
            "{field} should have between {min} and {max} characters"
        )));
    }
    Ok(())
}

/// An optional string field with length bounds.
pub(crate) fn opt_str_len(
    body: &Map<String, Value>,
    field: &str,
    min: usize,
    max: usize,
) -> Result<Option<String>, ApiError> {
    let value = opt_str(body, field)?;
    if let Some(s) = &value {
        check_len(field, s, min, max)?;
    }
    Ok(value)
}

/// An optional boolean field.
pub(crate) fn opt_bool(body: &Map<String, Value>, field: &str) -> Result<Option<bool>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::bad_request(format!("{field} should be boolean"))),
    }
}

/// An optional object field (`metadata`, `settings`, `profile`).
pub(crate) fn opt_object(
    body: &Map<String, Value>,
    field: &str,
) -> Result<Option<Map<String, Value>>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o.clone())),
        Some(_) => Err(ApiError::bad_request(format!("{field} should be object"))),
    }
}

/// The decoded query string.
#[derive(Debug, Default)]
pub(crate) struct Query(pub(crate) Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let raw = raw.unwrap_or_default();
        serde_urlencoded::from_str::<Vec<(String, String)>>(raw)
            .map(Self)
            .map_err(|e| ApiError::bad_request(format!("Invalid query string: {e}")))
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `page[size]`, `page[after]`, `page[before]` after validation.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) size: usize,
    /// The caller chose `size` (so links carry it on); false where the size is fixed.
    size_given: bool,
    pub(crate) after: Option<String>,
    pub(crate) before: Option<String>,
}

impl Page {
    pub(crate) fn parse(q: &Query, default_size: usize) -> Result<Self, ApiError> {
        let size = match q.get("page[size]") {
            None => default_size,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => {
                    return Err(ApiError::bad_request(
                        "page[size] should be an integer between 1 and 100",
                    ));
                }
            },
        };
        let mut page = Self::cursors(q, size)?;
        page.size_given = q.get("page[size]").is_some();
        Ok(page)
    }

    /// For lists whose page size is fixed (ListMessages: the spec's `page.size` "does not
    /// apply to the listMessages endpoint"): `page[size]` is ignored, not validated.
    pub(crate) fn parse_fixed(q: &Query, size: usize) -> Result<Self, ApiError> {
        Self::cursors(q, size)
    }

    fn cursors(q: &Query, size: usize) -> Result<Self, ApiError> {
        let after = q.get("page[after]").map(str::to_owned);
        let before = q.get("page[before]").map(str::to_owned);
        if after.is_some() && before.is_some() {
            return Err(ApiError::bad_request(
                "page[after] and page[before] cannot be used together",
            ));
        }
        for cursor in [&after, &before].into_iter().flatten() {
            if cursor.len() != 24 || !cursor.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ApiError::bad_request("Invalid cursor"));
            }
        }
        Ok(Self {
            size,
            size_given: false,
            after,
            before,
        })
    }
}

/// One page of an id-ordered map, plus `meta` and `links`.
///
/// With no cursor the first page is returned, or the last one when `tail` (messages list
/// the most recent first page, oldest message first).
pub(crate) fn paginate<'a, T>(
    items: &'a BTreeMap<String, T>,
    page: &Page,
    tail: bool,
    self_url: &str,
) -> (Vec<&'a T>, Value, Value) {
    let range: Vec<(&String, &T)> = match (&page.after, &page.before) {
        (Some(a), _) => items
            .range::<String, _>((Bound::Excluded(a), Bound::Unbounded))
            .take(page.size + 1)
            .collect(),
        (None, Some(b)) => {
            let mut v: Vec<_> = items
                .range::<String, _>((Bound::Unbounded, Bound::Excluded(b)))
                .rev()
                .take(page.size + 1)
                .collect();
            v.reverse();
            v
        }
        (None, None) if tail => {
            let mut v: Vec<_> = items.iter().rev().take(page.size + 1).collect();
            v.reverse();
            v
        }
        (None, None) => items.iter().take(page.size + 1).collect(),
    };
    let backwards = page.before.is_some() || (page.after.is_none() && tail);
    let overflow = range.len() > page.size;
    let slice: Vec<(&String, &T)> = if overflow && backwards {
        range[1..].to_vec()
    } else {
        range.into_iter().take(page.size).collect()
    };
    let first = slice.first().map(|(k, _)| (*k).clone());
    let last = slice.last().map(|(k, _)| (*k).clone());
    let more_after = last.as_ref().is_some_and(|l| {
        items
            .range::<String, _>((Bound::Excluded(l), Bound::Unbounded))
            .next()
            .is_some()
    });
    let more_before = first
        .as_ref()
        .is_some_and(|f| items.range::<String, _>(..f.clone()).next().is_some());
    let mut meta = Map::new();
    let mut links = Map::new();
    meta.insert(
        "hasMore".into(),
        json!(if backwards { more_before } else { more_after }),
    );
    let sep = if self_url.contains('?') { '&' } else { '?' };
    let size = if page.size_given {
        format!("&page[size]={}", page.size)
    } else {
        String::new()
    };
    if let (true, Some(l)) = (more_after, &last) {
        meta.insert("afterCursor".into(), json!(l));
        links.insert(
            "next".into(),
            json!(format!("{self_url}{sep}page[after]={l}{size}")),
        );
    }
    if let (true, Some(f)) = (more_before, &first) {
        meta.insert("beforeCursor".into(), json!(f));
        links.insert(
            "prev".into(),
            json!(format!("{self_url}{sep}page[before]={f}{size}")),
        );
    }
    (
        slice.into_iter().map(|(_, v)| v).collect(),
        Value::Object(meta),
        Value::Object(links),
    )
}

/// `http://host/path` for links, from the request's `Host`.
pub(crate) fn self_url(headers: &HeaderMap, path: &str) -> String {
    let host = crate::control::origin::host_of(headers).unwrap_or("localhost");
    format!("http://{host}{path}")
}
