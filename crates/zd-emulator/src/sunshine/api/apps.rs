//! Apps and app keys.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Uri};
use serde_json::{Value, json};

use super::{Need, access};
use crate::sunshine::error::{ApiError, ApiResult, Missing, created, ok};
use crate::sunshine::http::{self, Page, Payload, Query};
use crate::sunshine::metadata;
use crate::sunshine::store::{App, Key};
use crate::sunshine::{Sunshine, default_settings};

/// API keys an app may hold.
const MAX_KEYS: usize = 10;

fn check_settings(
    body: &serde_json::Map<String, Value>,
) -> Result<Option<serde_json::Map<String, Value>>, ApiError> {
    let Some(settings) = http::opt_object(body, "settings")? else {
        return Ok(None);
    };
    for (k, v) in &settings {
        let fine = match k.as_str() {
            "conversationRetentionSeconds" => v.as_u64().is_some(),
            _ => v.is_boolean(),
        };
        if !fine {
            return Err(ApiError::bad_request(format!(
                "settings.{k} has the wrong type"
            )));
        }
    }
    Ok(Some(settings))
}

/// `current` with `given` over it, if the spec's rules between settings allow the change:
/// "Enabling `multiConvo` is **irreversible**", and `endSessionEnabled` and
/// `disableConversationReopen` note "`multiConvo` is required to enable".
fn settle(
    current: &serde_json::Map<String, Value>,
    given: serde_json::Map<String, Value>,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    let on = |settings: &serde_json::Map<String, Value>, key: &str| {
        settings.get(key).and_then(Value::as_bool) == Some(true)
    };
    let mut settled = current.clone();
    settled.extend(given);
    if on(current, "multiConvoEnabled") && !on(&settled, "multiConvoEnabled") {
        return Err(ApiError::bad_request(
            "settings.multiConvoEnabled cannot be disabled: enabling multiConvo is irreversible",
        ));
    }
    if !on(&settled, "multiConvoEnabled") {
        for key in ["endSessionEnabled", "disableConversationReopen"] {
            if on(&settled, key) {
                return Err(ApiError::bad_request(format!(
                    "settings.{key} requires settings.multiConvoEnabled"
                )));
            }
        }
    }
    Ok(settled)
}

pub(crate) async fn create(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, None, Need::Account)?;
    let body = http::json_body(&body)?;
    let display_name = http::req_str_len(&body, "displayName", 1, 100)?;
    let settings = match check_settings(&body)? {
        Some(given) => settle(&default_settings(), given)?,
        None => default_settings(),
    };
    let app = App {
        id: s.next_id(),
        display_name: display_name.to_owned(),
        settings,
        metadata: metadata::opt(&body, "metadata")?.map_or(Value::Null, Value::Object),
        ..App::default()
    };
    let rendered = app.render();
    store.apps.insert(app.id.clone(), app);
    created(json!({ "app": rendered }))
}

pub(crate) async fn list(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, None, Need::Account)?;
    let q = Query::parse(q.as_deref())?;
    let page = Page::parse(&q, 25)?;
    let url = http::self_url(&headers, uri.path());
    let (apps, meta, links) = http::paginate(&store.apps, &page, false, &url);
    let apps: Vec<Value> = apps.into_iter().map(App::render).collect();
    ok(json!({ "apps": apps, "meta": meta, "links": links }))
}

pub(crate) async fn get(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
) -> ApiResult {
    let store = s.store();
    // GetApp takes app and account credentials only; an integration learns its app from
    // GetTokenInfo.
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let app = store.app(&app_id)?;
    ok(json!({ "app": with_subdomain(app) }))
}

pub(crate) fn with_subdomain(app: &App) -> Value {
    let mut v = app.render();
    if let Some(o) = v.as_object_mut() {
        o.insert("subdomain".into(), json!("emulator"));
    }
    v
}

pub(crate) async fn update(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let body = http::json_body(&body)?;
    let display_name = http::opt_str_len(&body, "displayName", 1, 100)?;
    let settings = check_settings(&body)?;
    let metadata = metadata::opt(&body, "metadata")?;
    let app = store.app_mut(&app_id)?;
    // Settled before anything changes: a refused update leaves the app as it was.
    let settings = settings
        .map(|given| settle(&app.settings, given))
        .transpose()?;
    if let Some(n) = display_name {
        app.display_name = n;
    }
    if let Some(settings) = settings {
        app.settings = settings;
    }
    if body.contains_key("metadata") {
        app.metadata = metadata.map_or(Value::Null, Value::Object);
    }
    ok(json!({ "app": app.render() }))
}

pub(crate) async fn delete(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Account)?;
    if let Some(app) = store.apps.remove(&app_id) {
        for i in app.integrations.values() {
            for w in i.webhooks.keys() {
                s.hub().forget(w);
            }
        }
        store.bridge_tokens.retain(|_, (a, _)| a != &app_id);
        store.bridge_codes.retain(|_, a| a != &app_id);
    }
    ok(json!({}))
}

pub(crate) async fn create_key(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Account)?;
    let body = http::json_body(&body)?;
    let name = http::req_str_len(&body, "displayName", 1, 100)?;
    let app = store.app_mut(&app_id)?;
    if app.keys.len() >= MAX_KEYS {
        return Err(ApiError::bad_request(format!(
            "An app can have a maximum of {MAX_KEYS} keys"
        )));
    }
    let key = Key {
        id: format!("app_{}", s.next_id()),
        display_name: Some(name.to_owned()),
        secret: crate::sunshine::util::secret(),
    };
    let rendered = key.render();
    app.keys.insert(key.id.clone(), key);
    created(json!({ "key": rendered }))
}

pub(crate) async fn list_keys(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Account)?;
    let app = store.app(&app_id)?;
    let keys: Vec<Value> = app.keys.values().map(Key::render).collect();
    ok(json!({ "keys": keys }))
}

pub(crate) async fn get_key(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, key_id)): Path<(String, String)>,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Account)?;
    let app = store.app(&app_id)?;
    let key = app
        .keys
        .get(&key_id)
        .ok_or_else(|| ApiError::not_found(Missing::Resource))?;
    ok(json!({ "key": key.render() }))
}

pub(crate) async fn delete_key(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, key_id)): Path<(String, String)>,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Account)?;
    store
        .app_mut(&app_id)?
        .keys
        .remove(&key_id)
        .ok_or_else(|| ApiError::not_found(Missing::Resource))?;
    ok(json!({}))
}
