//! Integrations, custom integration keys, and webhooks.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::{Map, Value, json};

use super::{Need, access};
use crate::sunshine::auth::Principal;
use crate::sunshine::error::{ApiError, ApiResult, Missing, created, ok};
use crate::sunshine::http::{self, Page, Payload, Query};
use crate::sunshine::store::{App, Integration, Key, Store, Webhook};
use crate::sunshine::{Sunshine, events, util};

const TYPES: [&str; 16] = [
    "android",
    "apple",
    "custom",
    "instagram",
    "ios",
    "line",
    "mailgun",
    "messagebird",
    "messenger",
    "telegram",
    "twilio",
    "twitter",
    "unity",
    "viber",
    "web",
    "whatsapp",
];
/// Webhooks an app may hold, over all its integrations.
const MAX_WEBHOOKS: usize = 10;
/// API keys a custom integration may hold.
const MAX_KEYS: usize = 10;

/// Refuses `more` webhooks when the app would then hold more than it may.
fn room_for_webhooks(app: &App, more: usize) -> Result<(), ApiError> {
    let held: usize = app.integrations.values().map(|i| i.webhooks.len()).sum();
    if held + more > MAX_WEBHOOKS {
        return Err(ApiError::bad_request(format!(
            "An app is limited to {MAX_WEBHOOKS} webhooks"
        )));
    }
    Ok(())
}

/// Keys belong to custom integrations only: every key operation on another kind is a 400,
/// as the spec documents for listing them.
fn custom_only(i: &Integration) -> Result<(), ApiError> {
    if i.kind == "custom" {
        Ok(())
    } else {
        Err(ApiError::bad_request("only custom integrations have keys"))
    }
}

fn integration_mut<'a>(app: &'a mut App, id: &str) -> Result<&'a mut Integration, ApiError> {
    app.integrations
        .get_mut(id)
        .ok_or_else(|| ApiError::not_found(Missing::Integration))
}

fn webhook_of(
    s: &Sunshine,
    o: &Map<String, Value>,
    partial: Option<&Webhook>,
) -> Result<Webhook, ApiError> {
    let target = match (http::opt_str(o, "target")?, partial) {
        (Some(t), _) => t,
        (None, Some(w)) => w.target.clone(),
        (None, None) => {
            return Err(ApiError::bad_request(
                "should have required property 'target'",
            ));
        }
    };
    check_target(&target)?;
    let triggers = match (o.get("triggers"), partial) {
        (Some(Value::Array(list)), _) => {
            let mut out = Vec::new();
            for t in list {
                out.push(
                    t.as_str()
                        .ok_or_else(|| ApiError::bad_request("triggers should be strings"))?
                        .to_owned(),
                );
            }
            if out.is_empty() {
                return Err(ApiError::bad_request("triggers should not be empty"));
            }
            warn_of_silent_triggers(&target, &out);
            out
        }
        (Some(_), _) => return Err(ApiError::bad_request("triggers should be array")),
        (None, Some(w)) => w.triggers.clone(),
        (None, None) => {
            return Err(ApiError::bad_request(
                "should have required property 'triggers'",
            ));
        }
    };
    Ok(Webhook {
        id: partial.map_or_else(|| s.next_id(), |w| w.id.clone()),
        target,
        triggers,
        secret: partial.map_or_else(util::secret, |w| w.secret.clone()),
        include_full_user: http::opt_bool(o, "includeFullUser")?
            .or(partial.map(|w| w.include_full_user))
            .unwrap_or(false),
        include_full_source: http::opt_bool(o, "includeFullSource")?
            .or(partial.map(|w| w.include_full_source))
            .unwrap_or(false),
    })
}

/// A target must be one a delivery can be sent to: an absolute http(s) URL with a host. A
/// prefix check let `http://` or `http://exa mple.com` through, and every delivery to them
/// then failed before leaving.
fn check_target(target: &str) -> Result<(), ApiError> {
    let bad = || ApiError::bad_request("target should be an absolute http(s) URL with a host");
    let uri: Uri = target.parse().map_err(|_| bad())?;
    let http_scheme = matches!(uri.scheme_str(), Some("http" | "https"));
    let has_host = uri.host().is_some_and(|h| !h.is_empty());
    if http_scheme && has_host {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Triggers outside the v2 list are stored, as the service stores them (it documents no check;
/// it only warns that names are case-sensitive), and never fire. The emulator says so in its
/// log, since a `*` from the v1 docs or a miscased name otherwise fails in silence.
fn warn_of_silent_triggers(target: &str, triggers: &[String]) {
    for t in triggers {
        if !events::TRIGGERS.contains(&t.as_str()) {
            tracing::warn!(
                trigger = %t,
                target,
                "webhook trigger is not a v2 trigger (they are case-sensitive; `*` is v1 only): it never fires"
            );
        }
    }
}

pub(crate) async fn create(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let mut body = http::json_body(&body)?;
    let kind = http::req_str(&body, "type")?.to_owned();
    if !TYPES.contains(&kind.as_str()) {
        return Err(ApiError::bad_request(format!(
            "type should be one of {}",
            TYPES.join(", ")
        )));
    }
    let display_name = http::opt_str_len(&body, "displayName", 1, 100)?;
    let mut integration = Integration {
        id: s.next_id(),
        kind: kind.clone(),
        display_name,
        ..Integration::default()
    };
    if kind == "custom" {
        let hooks = body
            .get("webhooks")
            .and_then(Value::as_array)
            .ok_or_else(|| ApiError::bad_request("should have required property 'webhooks'"))?;
        if hooks.len() != 1 {
            return Err(ApiError::bad_request("webhooks should have exactly 1 item"));
        }
        for h in hooks {
            let h = h
                .as_object()
                .ok_or_else(|| ApiError::bad_request("webhooks items should be object"))?;
            let w = webhook_of(&s, h, None)?;
            integration.webhooks.insert(w.id.clone(), w);
        }
    }
    strip_unstored(&kind, &mut body);
    integration.extra = body;
    let rendered = integration.render();
    let app = store.app_mut(&app_id)?;
    room_for_webhooks(app, integration.webhooks.len())?;
    app.integrations.insert(integration.id.clone(), integration);
    created(json!({ "integration": rendered }))
}

pub(crate) async fn list(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    uri: Uri,
    Path(app_id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let q = Query::parse(q.as_deref())?;
    let page = Page::parse(&q, 25)?;
    let types: Option<Vec<&str>> = q.get("filter[types]").map(|t| t.split(',').collect());
    if let Some(t) = &types {
        if let Some(bad) = t.iter().find(|t| !TYPES.contains(t)) {
            return Err(ApiError::bad_request(format!(
                "filter[types] has an unknown type {bad}"
            )));
        }
    }
    let app = store.app(&app_id)?;
    let matching: std::collections::BTreeMap<String, &Integration> = app
        .integrations
        .iter()
        .filter(|(_, i)| types.as_ref().is_none_or(|t| t.contains(&i.kind.as_str())))
        .map(|(k, i)| (k.clone(), i))
        .collect();
    let mut url = http::self_url(&headers, uri.path());
    // The links lead to the next page of the same filtered list.
    if let Some(t) = q.get("filter[types]") {
        url.push('?');
        url.push_str(&serde_urlencoded::to_string([("filter[types]", t)]).unwrap_or_default());
    }
    let (items, meta, links) = http::paginate(&matching, &page, false, &url);
    let list: Vec<Value> = items.into_iter().map(|i| i.render()).collect();
    ok(json!({ "integrations": list, "meta": meta, "links": links }))
}

pub(crate) async fn get(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, integration_id)): Path<(String, String)>,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let app = store.app(&app_id)?;
    let i = app
        .integrations
        .get(&integration_id)
        .ok_or_else(|| ApiError::not_found(Missing::Integration))?;
    ok(json!({ "integration": i.render() }))
}

pub(crate) async fn update(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, integration_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let mut body = http::json_body(&body)?;
    let display_name = http::opt_str_len(&body, "displayName", 1, 100)?;
    let i = integration_mut(store.app_mut(&app_id)?, &integration_id)?;
    if body.contains_key("displayName") {
        i.display_name = display_name;
    }
    strip_unstored(&i.kind, &mut body);
    i.extra.extend(body);
    ok(json!({ "integration": i.render() }))
}

pub(crate) async fn delete(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, integration_id)): Path<(String, String)>,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let app = store.app_mut(&app_id)?;
    let named = app
        .switchboards
        .values()
        .flat_map(|sb| sb.integrations.values())
        .any(|sbi| sbi.integration_id.as_deref() == Some(integration_id.as_str()));
    if named && app.integrations.contains_key(&integration_id) {
        return Err(ApiError::bad_request(
            "the integration is used by a switchboard integration; delete that first",
        ));
    }
    remove(&s, &mut store, &app_id, &integration_id)?;
    ok(json!({}))
}

/// Removes an integration with its webhooks and the bridge tokens issued for it (by
/// DeleteIntegration, once no switchboard integration names it, or RevokeAccess with the
/// integration's own credentials, which the spec documents only as 200 ("equivalent to the
/// user removing your integration manually"): switchboard integrations keep naming it, and
/// its credentials no longer authenticate, so nothing acts through them).
pub(crate) fn remove(
    s: &Sunshine,
    store: &mut Store,
    app_id: &str,
    integration_id: &str,
) -> Result<(), ApiError> {
    let i = store
        .app_mut(app_id)?
        .integrations
        .remove(integration_id)
        .ok_or_else(|| ApiError::not_found(Missing::Integration))?;
    for w in i.webhooks.keys() {
        s.hub().forget(w);
    }
    store
        .bridge_tokens
        .retain(|_, (a, id)| !(a == app_id && id == integration_id));
    Ok(())
}

pub(crate) async fn create_key(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, integration_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let body = http::json_body(&body)?;
    // IntegrationApiKey.displayName is a plain string: the spec states no length for it,
    // unlike AppKeyCreateBody's.
    let name = http::req_str(&body, "displayName")?.to_owned();
    let i = integration_mut(store.app_mut(&app_id)?, &integration_id)?;
    custom_only(i)?;
    if i.keys.len() >= MAX_KEYS {
        return Err(ApiError::bad_request(format!(
            "An integration can have a maximum of {MAX_KEYS} keys"
        )));
    }
    let key = Key {
        id: format!("int_{}", s.next_id()),
        display_name: Some(name),
        secret: util::secret(),
    };
    let rendered = key.render();
    i.keys.insert(key.id.clone(), key);
    created(json!({ "key": rendered }))
}

pub(crate) async fn list_keys(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, integration_id)): Path<(String, String)>,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let app = store.app(&app_id)?;
    let i = app
        .integrations
        .get(&integration_id)
        .ok_or_else(|| ApiError::not_found(Missing::Integration))?;
    custom_only(i)?;
    let keys: Vec<Value> = i.keys.values().map(Key::render).collect();
    ok(json!({ "keys": keys }))
}

pub(crate) async fn get_key(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, integration_id, key_id)): Path<(String, String, String)>,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let app = store.app(&app_id)?;
    let i = app
        .integrations
        .get(&integration_id)
        .ok_or_else(|| ApiError::not_found(Missing::Integration))?;
    custom_only(i)?;
    let key = i
        .keys
        .get(&key_id)
        .ok_or_else(|| ApiError::not_found(Missing::Resource))?;
    ok(json!({ "key": key.render() }))
}

pub(crate) async fn delete_key(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, integration_id, key_id)): Path<(String, String, String)>,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let i = integration_mut(store.app_mut(&app_id)?, &integration_id)?;
    custom_only(i)?;
    i.keys
        .remove(&key_id)
        .ok_or_else(|| ApiError::not_found(Missing::Resource))?;
    ok(json!({}))
}

/// Webhooks are reachable by app keys and by the integration's own key or token (not by
/// account keys: the spec gives them no scope here), which
/// may name its integration `me` (an OAuth bridge token's only way: its integration's id is
/// never handed out). Returns the integration's id.
fn webhook_access(
    store: &crate::sunshine::store::Store,
    headers: &HeaderMap,
    app_id: &str,
    integration_id: &str,
    not_custom: NotCustom,
) -> Result<String, ApiError> {
    let who = access(store, headers, Some(app_id), Need::Webhooks)?;
    let integration_id = match (&who, integration_id) {
        (
            Principal::Integration {
                integration_id: own,
                ..
            },
            given,
        ) => {
            if given != "me" && given != own {
                return Err(ApiError::forbidden());
            }
            own.as_str()
        }
        (_, "me") => return Err(ApiError::not_found(Missing::Integration)),
        (_, given) => given,
    };
    let app = store.app(app_id)?;
    let i = app
        .integrations
        .get(integration_id)
        .ok_or_else(|| ApiError::not_found(Missing::Integration))?;
    if i.kind != "custom" {
        return Err(match not_custom {
            NotCustom::Forbidden => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Only custom integrations have webhooks",
            ),
            NotCustom::NotFound => {
                ApiError::not_found(Missing::Other("Only custom integrations have webhooks"))
            }
        });
    }
    Ok(integration_id.to_owned())
}

/// How a webhook operation answers on an integration that is not custom: with a status it
/// documents. Create and List document a 403; Get, Update and Delete only a 404 (no such
/// webhook can be there).
#[derive(Debug, Clone, Copy)]
enum NotCustom {
    Forbidden,
    NotFound,
}

pub(crate) async fn create_webhook(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, integration_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    let integration_id = webhook_access(
        &store,
        &headers,
        &app_id,
        &integration_id,
        NotCustom::Forbidden,
    )?;
    let body = http::json_body(&body)?;
    let w = webhook_of(&s, &body, None)?;
    let app = store.app_mut(&app_id)?;
    room_for_webhooks(app, 1)?;
    let i = integration_mut(app, &integration_id)?;
    let rendered = w.render();
    i.webhooks.insert(w.id.clone(), w);
    created(json!({ "webhook": rendered }))
}

pub(crate) async fn list_webhooks(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, integration_id)): Path<(String, String)>,
) -> ApiResult {
    let store = s.store();
    let integration_id = webhook_access(
        &store,
        &headers,
        &app_id,
        &integration_id,
        NotCustom::Forbidden,
    )?;
    let app = store.app(&app_id)?;
    let hooks: Vec<Value> = app.integrations[&integration_id]
        .webhooks
        .values()
        .map(Webhook::render)
        .collect();
    ok(json!({ "webhooks": hooks }))
}

pub(crate) async fn get_webhook(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, integration_id, webhook_id)): Path<(String, String, String)>,
) -> ApiResult {
    let store = s.store();
    let integration_id = webhook_access(
        &store,
        &headers,
        &app_id,
        &integration_id,
        NotCustom::NotFound,
    )?;
    let app = store.app(&app_id)?;
    let w = app.integrations[&integration_id]
        .webhooks
        .get(&webhook_id)
        .ok_or_else(|| ApiError::not_found(Missing::Resource))?;
    ok(json!({ "webhook": w.render() }))
}

pub(crate) async fn update_webhook(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, integration_id, webhook_id)): Path<(String, String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    let integration_id = webhook_access(
        &store,
        &headers,
        &app_id,
        &integration_id,
        NotCustom::NotFound,
    )?;
    let body = http::json_body(&body)?;
    let i = integration_mut(store.app_mut(&app_id)?, &integration_id)?;
    let old = i
        .webhooks
        .get(&webhook_id)
        .ok_or_else(|| ApiError::not_found(Missing::Resource))?;
    let w = webhook_of(&s, &body, Some(old))?;
    let rendered = w.render();
    i.webhooks.insert(w.id.clone(), w);
    ok(json!({ "webhook": rendered }))
}

pub(crate) async fn delete_webhook(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, integration_id, webhook_id)): Path<(String, String, String)>,
) -> ApiResult {
    let mut store = s.store();
    let integration_id = webhook_access(
        &store,
        &headers,
        &app_id,
        &integration_id,
        NotCustom::NotFound,
    )?;
    integration_mut(store.app_mut(&app_id)?, &integration_id)?
        .webhooks
        .remove(&webhook_id)
        .ok_or_else(|| ApiError::not_found(Missing::Resource))?;
    s.hub().forget(&webhook_id);
    ok(json!({}))
}

/// The fields of each integration type the spec marks `writeOnly`: taken, never returned.
const WRITE_ONLY: &[(&str, &[&str])] = &[
    (
        "android",
        &["projectId", "clientEmail", "privateKey", "serverKey"],
    ),
    ("apple", &["apiSecret"]),
    ("instagram", &["pageAccessToken", "appSecret"]),
    ("ios", &["certificate", "password"]),
    ("mailgun", &["apiKey"]),
    ("messagebird", &["accessKey", "signingKey"]),
    ("messenger", &["appSecret"]),
    ("telegram", &["token"]),
    ("twilio", &["authToken"]),
    (
        "twitter",
        &[
            "consumerKey",
            "consumerSecret",
            "accessTokenKey",
            "accessTokenSecret",
        ],
    ),
    ("viber", &["token"]),
];

/// Drops what a `kind` integration's body holds that its `extra` must not: the fields the
/// store keeps apart, and the write-only ones (the emulator has no use for them, and the
/// service never sends them back, so a client must not come to expect them).
fn strip_unstored(kind: &str, body: &mut Map<String, Value>) {
    for f in ["id", "type", "status", "displayName", "webhooks"] {
        body.remove(f);
    }
    // Write-only on every type that has it, which is every type but custom.
    if kind != "custom" {
        body.remove("defaultResponderId");
    }
    if let Some((_, fields)) = WRITE_ONLY.iter().find(|(k, _)| *k == kind) {
        for f in *fields {
            body.remove(*f);
        }
    }
}
