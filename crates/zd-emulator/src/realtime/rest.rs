//! `GET /stream/chats[/{key}]` and `GET /stream/agents[/{key}]`: the REST pull.
//!
//! Authenticated like the feed, one request of the shared 200/minute budget each, with
//! `window` (30 or 60: only that window of the windowed chat metrics) and `department_id` (one
//! of the account's departments: another gets 404, as a subscription naming it does on the
//! feed).
//! An inactive account gets the documented `{"status_code":200,"message":"Not Computed!"}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use http::{HeaderMap, Response, StatusCode};
use zd_wire::realtime::{
    Family, Metric, MetricValue, ServerFrame, Topic, Update, Window, Windowed,
};

use super::Realtime;
use super::socket::{Refused, UNAUTHORIZED, json_response, status_body, too_many};

pub(crate) async fn family(
    State(rt): State<Arc<Realtime>>,
    Path(family): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response<Body> {
    pull(&rt, &family, None, &query, &headers)
}

pub(crate) async fn metric(
    State(rt): State<Arc<Realtime>>,
    Path((family, key)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response<Body> {
    pull(&rt, &family, Some(&key), &query, &headers)
}

fn not_found(what: &str) -> Response<Body> {
    json_response(
        StatusCode::NOT_FOUND,
        status_body(404, &format!("Not Found: {what}")),
    )
}

fn bad_request(what: &str) -> Response<Body> {
    json_response(StatusCode::BAD_REQUEST, status_body(400, what))
}

fn pull(
    rt: &Realtime,
    family: &str,
    key: Option<&str>,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response<Body> {
    let family = match Family::from_name(family) {
        f @ (Family::Chats | Family::Agents) => f,
        _ => return not_found(family),
    };
    if rt.agent(headers).is_none() {
        return json_response(StatusCode::UNAUTHORIZED, status_body(401, UNAUTHORIZED));
    }
    if let Err(refusal) = rt.gate.take_request(rt.state.clock().now()) {
        return too_many(refusal);
    }
    let metrics: Vec<Metric> = match key {
        Some(key) => {
            let metric = Metric::from_key(key);
            if metric.family() != Some(family.clone()) {
                return not_found(key);
            }
            vec![metric]
        }
        None => Metric::KNOWN
            .into_iter()
            .filter(|m| m.family() == Some(family.clone()))
            .collect(),
    };
    let window = match query.get("window").map(|w| w.parse::<u32>()) {
        None => None,
        Some(Ok(minutes))
            if Window::from_minutes(minutes).is_known() && family == Family::Chats =>
        {
            Some(Window::from_minutes(minutes))
        }
        Some(_) => return bad_request("window must be 30 or 60, for chat metrics only"),
    };
    let department = match query.get("department_id").map(|d| d.parse::<u64>()) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => return bad_request("department_id must be an integer"),
    };
    let values = rt.compute_now();
    // Checked whether or not the values are computed yet: the account's departments are
    // known either way, and a client naming another one is told so (as the feed tells it),
    // rather than given a department's worth of nothing.
    if let Some(d) = department
        && !values.has_department(d)
    {
        let refused = Refused::unknown_department(d);
        return json_response(
            StatusCode::NOT_FOUND,
            status_body(refused.status_code, &refused.message),
        );
    }
    let body = if values.computed {
        let windows: Vec<Window> = match window {
            Some(w) => vec![w],
            None => Window::KNOWN.to_vec(),
        };
        let data = metrics
            .into_iter()
            .map(|metric| {
                let value = if metric.is_windowed() {
                    MetricValue::Windowed(Windowed(
                        windows
                            .iter()
                            .map(|w| (*w, values.get(department, &metric, Some(*w))))
                            .collect(),
                    ))
                } else {
                    MetricValue::Scalar(values.get(department, &metric, None))
                };
                (metric, value)
            })
            .collect();
        ServerFrame::Update(Update {
            topic: Topic::family(family),
            data,
            department_id: department,
            status_code: 200,
        })
    } else {
        ServerFrame::NotComputed
    };
    json_response(StatusCode::OK, body.encode().unwrap_or_default())
}
