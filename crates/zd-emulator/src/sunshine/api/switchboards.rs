//! Switchboards and switchboard integrations.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use super::{Need, access};
use crate::sunshine::Sunshine;
use crate::sunshine::error::{ApiError, ApiResult, Missing, created, ok};
use crate::sunshine::http::{self, Payload};
use crate::sunshine::store::{App, Switchboard, SwitchboardIntegration};

/// Switchboard integrations a switchboard may hold.
const MAX_INTEGRATIONS: usize = 10;

fn switchboard_mut<'a>(app: &'a mut App, id: &str) -> Result<&'a mut Switchboard, ApiError> {
    app.switchboards
        .get_mut(id)
        .ok_or_else(|| ApiError::not_found(Missing::Switchboard))
}

pub(crate) async fn create(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let app = store.app_mut(&app_id)?;
    if !app.switchboards.is_empty() {
        return Err(ApiError::bad_request("the app already has a switchboard"));
    }
    let sb = Switchboard {
        id: s.next_id(),
        enabled: false,
        ..Switchboard::default()
    };
    let rendered = sb.render();
    app.switchboards.insert(sb.id.clone(), sb);
    created(json!({ "switchboard": rendered }))
}

pub(crate) async fn list(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let app = store.app(&app_id)?;
    let list: Vec<Value> = app.switchboards.values().map(Switchboard::render).collect();
    ok(json!({ "switchboards": list }))
}

pub(crate) async fn update(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, switchboard_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let body = http::json_body(&body)?;
    let enabled = http::opt_bool(&body, "enabled")?;
    let default = http::opt_str(&body, "defaultSwitchboardIntegrationId")?;
    let sb = switchboard_mut(store.app_mut(&app_id)?, &switchboard_id)?;
    if let Some(d) = default {
        if !sb.integrations.contains_key(&d) {
            return Err(ApiError::not_found(Missing::SwitchboardIntegration));
        }
        sb.default_integration = Some(d);
    }
    if let Some(e) = enabled {
        if e && sb.default_integration.is_none() {
            return Err(ApiError::bad_request(
                "a switchboard needs a default switchboard integration to be enabled",
            ));
        }
        sb.enabled = e;
    }
    ok(json!({ "switchboard": sb.render() }))
}

pub(crate) async fn delete(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, switchboard_id)): Path<(String, String)>,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let app = store.app_mut(&app_id)?;
    app.switchboards
        .remove(&switchboard_id)
        .ok_or_else(|| ApiError::not_found(Missing::Switchboard))?;
    for c in app.conversations.values_mut() {
        c.active_switchboard_integration = None;
        c.pending_switchboard_integration = None;
    }
    ok(json!({}))
}

fn apply(
    app: &App,
    sb: &Switchboard,
    sbi: &mut SwitchboardIntegration,
    body: &Map<String, Value>,
) -> Result<(), ApiError> {
    if let Some(name) = http::opt_str_len(body, "name", 1, 128)? {
        // The spec's `name`: "Restricted to alphanumeric characters, `-` and `_`".
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        {
            return Err(ApiError::bad_request(
                "name should have only alphanumeric characters, - and _",
            ));
        }
        if sb
            .integrations
            .values()
            .any(|o| o.name == name && o.id != sbi.id)
        {
            return Err(ApiError::bad_request(format!(
                "a switchboard integration is named {name}"
            )));
        }
        sbi.name = name;
    }
    if let Some(id) = http::opt_str(body, "integrationId")? {
        let i = app
            .integrations
            .get(&id)
            .ok_or_else(|| ApiError::not_found(Missing::Integration))?;
        sbi.integration_type = i.kind.clone();
        sbi.integration_id = Some(id);
    } else if let Some(t) = http::opt_str(body, "integrationType")? {
        sbi.integration_type = t;
        sbi.integration_id = None;
    }
    if let Some(d) = http::opt_bool(body, "deliverStandbyEvents")? {
        sbi.deliver_standby_events = d;
    }
    if body.contains_key("nextSwitchboardIntegrationId") {
        let next = http::opt_str(body, "nextSwitchboardIntegrationId")?;
        if let Some(n) = &next {
            if !sb.integrations.contains_key(n) {
                return Err(ApiError::not_found(Missing::SwitchboardIntegration));
            }
        }
        sbi.next = next;
    }
    if let Some(v) = body.get("messageHistoryCount") {
        match v {
            Value::Null => sbi.message_history_count = None,
            v => match v.as_u64() {
                Some(n) if (1..=10).contains(&n) => sbi.message_history_count = Some(n),
                _ => {
                    return Err(ApiError::bad_request(
                        "messageHistoryCount should be 1 to 10",
                    ));
                }
            },
        }
    }
    Ok(())
}

pub(crate) async fn create_integration(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, switchboard_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let body = http::json_body(&body)?;
    http::req_str(&body, "name")?;
    if !body.contains_key("integrationId") && !body.contains_key("integrationType") {
        return Err(ApiError::bad_request(
            "one of integrationId or integrationType is required",
        ));
    }
    let app = store.app_mut(&app_id)?;
    let sb = app
        .switchboards
        .get(&switchboard_id)
        .ok_or_else(|| ApiError::not_found(Missing::Switchboard))?;
    if sb.integrations.len() >= MAX_INTEGRATIONS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "too_many_switchboard_integrations",
            format!(
                "Switchboard has reached the max number of switchboard integrations ({MAX_INTEGRATIONS})"
            ),
        ));
    }
    let mut sbi = SwitchboardIntegration {
        id: s.next_id(),
        deliver_standby_events: true,
        ..SwitchboardIntegration::default()
    };
    apply(app, sb, &mut sbi, &body)?;
    let rendered = sbi.render();
    switchboard_mut(app, &switchboard_id)?
        .integrations
        .insert(sbi.id.clone(), sbi);
    created(json!({ "switchboardIntegration": rendered }))
}

pub(crate) async fn list_integrations(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, switchboard_id)): Path<(String, String)>,
) -> ApiResult {
    let store = s.store();
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let app = store.app(&app_id)?;
    let sb = app
        .switchboards
        .get(&switchboard_id)
        .ok_or_else(|| ApiError::not_found(Missing::Switchboard))?;
    let list: Vec<Value> = sb
        .integrations
        .values()
        .map(SwitchboardIntegration::render)
        .collect();
    ok(json!({ "switchboardIntegrations": list }))
}

pub(crate) async fn update_integration(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, switchboard_id, sbi_id)): Path<(String, String, String)>,
    Payload(body): Payload,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let body = http::json_body(&body)?;
    let app = store.app_mut(&app_id)?;
    let sb = app
        .switchboards
        .get(&switchboard_id)
        .ok_or_else(|| ApiError::not_found(Missing::Switchboard))?;
    let mut sbi = sb
        .integrations
        .get(&sbi_id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(Missing::SwitchboardIntegration))?;
    apply(app, sb, &mut sbi, &body)?;
    let rendered = sbi.render();
    switchboard_mut(app, &switchboard_id)?
        .integrations
        .insert(sbi.id.clone(), sbi);
    ok(json!({ "switchboardIntegration": rendered }))
}

pub(crate) async fn delete_integration(
    State(s): State<Sunshine>,
    headers: HeaderMap,
    Path((app_id, switchboard_id, sbi_id)): Path<(String, String, String)>,
) -> ApiResult {
    let mut store = s.store();
    access(&store, &headers, Some(&app_id), Need::Admin)?;
    let app = store.app_mut(&app_id)?;
    let sb = switchboard_mut(app, &switchboard_id)?;
    if !sb.integrations.contains_key(&sbi_id) {
        return Err(ApiError::not_found(Missing::SwitchboardIntegration));
    }
    // Deleting either would leave the switchboard pointing at nothing: the default must be
    // replaced first, and a `next` link unset first.
    if sb.default_integration.as_deref() == Some(sbi_id.as_str()) {
        return Err(ApiError::bad_request(
            "the default switchboard integration cannot be deleted; choose another default first",
        ));
    }
    if sb
        .integrations
        .values()
        .any(|o| o.id != sbi_id && o.next.as_deref() == Some(sbi_id.as_str()))
    {
        return Err(ApiError::bad_request(
            "another switchboard integration's nextSwitchboardIntegrationId refers to this one",
        ));
    }
    sb.integrations.remove(&sbi_id);
    // With the seat cleared, the next activity re-seats the default (see `messages::append`).
    for c in app.conversations.values_mut() {
        if c.active_switchboard_integration.as_deref() == Some(sbi_id.as_str()) {
            c.active_switchboard_integration = None;
        }
        if c.pending_switchboard_integration.as_deref() == Some(sbi_id.as_str()) {
            c.pending_switchboard_integration = None;
        }
    }
    ok(json!({}))
}
