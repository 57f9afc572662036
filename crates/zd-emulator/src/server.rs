//! The HTTP server: one listener for the service, the control API and the visitor page.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::HeaderMap;

use crate::chat;
use crate::control::origin::{self, LocalHosts};
use crate::control::{self, Control};
use crate::emulator::AccountInfo;
use crate::web;

/// What every route shares.
#[derive(Debug, Clone)]
pub(crate) struct App {
    pub(crate) service: chat::Service,
    pub(crate) control: Control,
    pub(crate) base_url: Arc<str>,
    pub(crate) sunshine: crate::sunshine::Sunshine,
}

impl App {
    /// The account, its URLs naming the emulator as `host` (see [`origin::host_of`]) or, without one,
    /// by its bound address.
    pub(crate) fn account(&self, host: Option<&str>) -> AccountInfo {
        let base = host.map(|host| format!("http://{host}"));
        let base = base.as_deref().unwrap_or(&self.base_url);
        AccountInfo::of(&self.control.state, base, &self.sunshine)
    }
}

async fn graphql_request(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let host = origin::host_of(&headers).map(str::to_owned);
    chat::http::graphql_request(app.service, host, body).await
}

async fn stream(
    State(app): State<App>,
    Path(target): Path<String>,
    req: Request,
) -> Response<Body> {
    chat::socket::upgrade(app.service, &target, req)
}

async fn page(State(app): State<App>, Query(q): Query<web::PageQuery>) -> Response<Body> {
    web::page(&app.control, &q)
}

/// Every route, behind the check of the `Host` a request names (`hosts`), applied here once
/// for all of them: the Sunshine routes come without the check [`Sunshine::router`] carries
/// on its own, which knows neither the bound address nor the emulator's allowed names.
///
/// [`Sunshine::router`]: crate::sunshine::Sunshine::router
pub(crate) fn router(app: App, hosts: LocalHosts) -> Router {
    let sunshine = app.sunshine.routes();
    let same_origin = || axum::middleware::from_fn(origin::same_origin_only);
    Router::new()
        .route("/", get(page))
        // A page of another site has no business starting sessions with the demo tokens; an
        // IDE extension loading the schema sends JSON, which no such page can.
        .route(
            "/graphql/request",
            post(graphql_request).layer(axum::middleware::from_fn(origin::same_origin_or_json)),
        )
        .route("/stream/0.1/graphql/{target}", get(stream))
        .nest("/_emulator", control::routes::router().layer(same_origin()))
        .merge(crate::realtime::router(app.control.realtime.clone()))
        .with_state(app)
        .merge(sunshine)
        .layer(axum::middleware::from_fn_with_state(
            hosts,
            origin::local_hosts_only,
        ))
}
