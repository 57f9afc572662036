//! HTTP routes of the control API, under `/_emulator/`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::scenario::Scenario;
use super::{Control, ControlError};
use crate::server::App;
use crate::state::{AgentStatus, Arrival, DepartmentStatus, Rating, StateError};

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::InvalidId(_)
            | Self::BadRequest(_)
            | Self::State(StateError::Invalid(_) | StateError::InvalidTag(_)) => {
                StatusCode::BAD_REQUEST
            }
            Self::State(StateError::NotFound(_)) | Self::NoSession(_) => StatusCode::NOT_FOUND,
            Self::NotConnected(_) | Self::Backlogged(_) | Self::State(_) => StatusCode::CONFLICT,
            Self::TooManyScenarios(_) => StatusCode::TOO_MANY_REQUESTS,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

type Result<T> = std::result::Result<T, ControlError>;

/// A JSON body whose fields all have defaults, so it may be left out: no body, or one of only
/// whitespace, reads as `{}`, whatever the content type. Refusals are 400 with the control
/// API's `{"error": ...}` body.
struct Defaulted<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Defaulted<T> {
    type Rejection = ControlError;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| ControlError::BadRequest(e.body_text()))?;
        let text: &[u8] = if body.trim_ascii().is_empty() {
            b"{}"
        } else {
            &body
        };
        serde_json::from_slice(text)
            .map(Defaulted)
            .map_err(|e| ControlError::BadRequest(format!("invalid body: {e}")))
    }
}

fn ok() -> Json<serde_json::Value> {
    Json(json!({ "ok": true }))
}

#[derive(Deserialize)]
struct ChannelText {
    channel_id: String,
    text: String,
}

#[derive(Deserialize)]
struct ChannelLabel {
    channel_id: String,
    label: String,
}

#[derive(Deserialize)]
struct ChannelTyping {
    channel_id: String,
    typing: bool,
}

#[derive(Deserialize)]
struct ChannelOnly {
    channel_id: String,
}

#[derive(Deserialize)]
struct ChannelRating {
    channel_id: String,
    rating: Rating,
}

#[derive(Deserialize)]
struct AgentStatusBody {
    agent_id: String,
    status: AgentStatus,
}

#[derive(Deserialize)]
struct DepartmentStatusBody {
    department_id: String,
    status: DepartmentStatus,
}

#[derive(Deserialize)]
struct CloseBody {
    #[serde(default = "normal_close")]
    code: u16,
    #[serde(default)]
    reason: String,
}

const fn normal_close() -> u16 {
    1000
}

#[derive(Deserialize)]
struct EosBody {
    #[serde(default = "default_eos")]
    reason: String,
}

fn default_eos() -> String {
    crate::chat::session::UNEXPECTED.to_owned()
}

#[derive(Deserialize)]
struct MsBody {
    ms: u64,
}

#[derive(Deserialize)]
struct CountBody {
    #[serde(default = "one")]
    count: u32,
}

#[derive(Deserialize)]
struct FailBody {
    #[serde(default = "one")]
    count: u32,
    error_name: String,
}

const fn one() -> u32 {
    1
}

#[derive(Deserialize)]
struct ProtocolErrorBody {
    #[serde(default = "one")]
    count: u32,
    #[serde(default = "unavailable_code")]
    error_code: u16,
    #[serde(default = "unavailable_body")]
    body: String,
}

const fn unavailable_code() -> u16 {
    503
}

fn unavailable_body() -> String {
    crate::chat::session::GRAPHQL_UNAVAILABLE.to_owned()
}

#[derive(Deserialize)]
struct PingsBody {
    answer: bool,
}

fn control(app: &App) -> &Control {
    &app.control
}

/// The routes, to be nested under `/_emulator`.
pub(crate) fn router() -> Router<App> {
    Router::new()
        .route(
            "/account",
            get(|State(app): State<App>, headers: http::HeaderMap| async move {
                Json(app.account(crate::control::origin::host_of(&headers)))
            }),
        )
        .route(
            "/reset",
            post(|State(app): State<App>| async move {
                control(&app).reset();
                ok()
            }),
        )
        .route(
            "/visitors",
            post(|State(app): State<App>, Json(a): Json<Arrival>| async move {
                control(&app).visitor_arrive(a).map(Json)
            }),
        )
        .route(
            "/visitors/message",
            post(|State(app): State<App>, Json(b): Json<ChannelText>| async move {
                let id = control(&app).visitor_message(&b.channel_id, &b.text)?;
                Result::Ok(Json(json!({ "message_id": id })))
            }),
        )
        .route(
            "/visitors/choose",
            post(|State(app): State<App>, Json(b): Json<ChannelLabel>| async move {
                let opened = control(&app).visitor_choose(&b.channel_id, &b.label)?;
                Result::Ok(Json(json!({ "sent": opened.is_none(), "opened": opened })))
            }),
        )
        .route(
            "/visitors/typing",
            post(|State(app): State<App>, Json(b): Json<ChannelTyping>| async move {
                control(&app).visitor_typing(&b.channel_id, b.typing).map(|()| ok())
            }),
        )
        .route(
            "/visitors/leave",
            post(|State(app): State<App>, Json(b): Json<ChannelOnly>| async move {
                control(&app).visitor_leave(&b.channel_id).map(|()| ok())
            }),
        )
        .route(
            "/visitors/rate",
            post(|State(app): State<App>, Json(b): Json<ChannelRating>| async move {
                control(&app).visitor_rate(&b.channel_id, b.rating).map(|()| ok())
            }),
        )
        .route(
            "/transcript",
            get(|State(app): State<App>, Query(q): Query<ChannelOnly>| async move {
                control(&app).transcript(&q.channel_id).map(Json)
            }),
        )
        .route(
            "/agents/status",
            post(|State(app): State<App>, Json(b): Json<AgentStatusBody>| async move {
                control(&app).set_agent_status(&b.agent_id, b.status).map(|()| ok())
            }),
        )
        .route(
            "/departments/status",
            post(|State(app): State<App>, Json(b): Json<DepartmentStatusBody>| async move {
                control(&app)
                    .set_department_status(&b.department_id, b.status)
                    .map(|()| ok())
            }),
        )
        .route(
            "/scenario",
            post(|State(app): State<App>, body: String| async move {
                let scenario = Scenario::parse(&body, false)?;
                let steps = scenario.steps.len();
                let slot = app
                    .control
                    .core
                    .scenario_slots
                    .clone()
                    .try_acquire_owned()
                    .map_err(|_| ControlError::TooManyScenarios(crate::chat::MAX_RUNNING_SCENARIOS))?;
                let mut shutdown = app.service.shutdown.clone();
                let stopped = async move {
                    // An error: the emulator is gone, which stops the scenario too.
                    let _ = shutdown.wait_for(|stopped| *stopped).await;
                };
                let task = app.control.scenario_task(scenario, stopped);
                tokio::spawn(async move {
                    task.await;
                    drop(slot);
                });
                Result::Ok((StatusCode::ACCEPTED, Json(json!({ "steps": steps }))))
            }),
        )
        .route(
            "/realtime/drop",
            post(|State(app): State<App>| async move {
                let dropped = control(&app).realtime_drop();
                Json(json!({ "ok": true, "dropped": dropped }))
            }),
        )
        .route(
            "/counters",
            get(|State(app): State<App>| async move { Json(control(&app).counters()) }),
        )
        .route(
            "/sessions",
            get(|State(app): State<App>| async move { Json(control(&app).counters().sessions) }),
        )
        .route(
            "/sessions/{id}/drop",
            post(|State(app): State<App>, Path(id): Path<String>| async move {
                control(&app).fault_drop(&id).await.map(|()| ok())
            }),
        )
        .route(
            "/sessions/{id}/close",
            post(
                |State(app): State<App>, Path(id): Path<String>, Defaulted(b): Defaulted<CloseBody>| async move {
                    control(&app).fault_close(&id, b.code, &b.reason).await.map(|()| ok())
                },
            ),
        )
        .route(
            "/sessions/{id}/eos",
            post(
                |State(app): State<App>, Path(id): Path<String>, Defaulted(b): Defaulted<EosBody>| async move {
                    control(&app).fault_eos(&id, &b.reason).map(|()| ok())
                },
            ),
        )
        .route(
            "/sessions/{id}/stall",
            post(
                |State(app): State<App>, Path(id): Path<String>, Json(b): Json<MsBody>| async move {
                    control(&app).fault_stall(&id, b.ms).await.map(|()| ok())
                },
            ),
        )
        .route(
            "/sessions/{id}/deaf",
            post(
                |State(app): State<App>, Path(id): Path<String>, Json(b): Json<MsBody>| async move {
                    control(&app).fault_deaf(&id, b.ms).map(|()| ok())
                },
            ),
        )
        .route(
            "/sessions/{id}/fail",
            post(
                |State(app): State<App>, Path(id): Path<String>, Json(b): Json<FailBody>| async move {
                    control(&app).fault_fail(&id, b.count, &b.error_name).map(|()| ok())
                },
            ),
        )
        .route(
            "/sessions/{id}/fail_data",
            post(
                |State(app): State<App>, Path(id): Path<String>, Json(b): Json<FailBody>| async move {
                    control(&app).fault_fail_data(&id, b.count, &b.error_name).map(|()| ok())
                },
            ),
        )
        .route(
            "/sessions/{id}/protocol_error",
            post(
                |State(app): State<App>, Path(id): Path<String>, Defaulted(b): Defaulted<ProtocolErrorBody>| async move {
                    control(&app)
                        .fault_protocol_error(&id, b.count, b.error_code, &b.body)
                        .map(|()| ok())
                },
            ),
        )
        .route(
            "/sessions/{id}/cut",
            post(|State(app): State<App>, Path(id): Path<String>| async move {
                control(&app).fault_cut(&id).map(|()| ok())
            }),
        )
        .route(
            "/sessions/{id}/mute",
            post(
                |State(app): State<App>, Path(id): Path<String>, Defaulted(b): Defaulted<CountBody>| async move {
                    control(&app).fault_mute(&id, b.count).map(|()| ok())
                },
            ),
        )
        .route(
            "/sessions/{id}/garble",
            post(
                |State(app): State<App>, Path(id): Path<String>, Defaulted(b): Defaulted<CountBody>| async move {
                    control(&app).fault_garble(&id, b.count).map(|()| ok())
                },
            ),
        )
        .route(
            "/sessions/{id}/pings",
            post(
                |State(app): State<App>, Path(id): Path<String>, Json(b): Json<PingsBody>| async move {
                    control(&app).fault_pings(&id, b.answer).map(|()| ok())
                },
            ),
        )
        .route(
            "/sessions/{id}/delay",
            post(
                |State(app): State<App>, Path(id): Path<String>, Json(b): Json<MsBody>| async move {
                    control(&app).fault_delay(&id, b.ms).map(|()| ok())
                },
            ),
        )
}
