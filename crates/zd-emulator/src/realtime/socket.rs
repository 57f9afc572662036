//! `GET /stream`: the streaming WebSocket.
//!
//! The upgrade is authenticated with `Authorization: Bearer <agent access token>`. A bad
//! token still gets the upgrade, then the 401 status frame and a close, as the service does.
//! A good token spends one request of the 200/minute budget and takes a connection slot;
//! either refusal is an HTTP 429 on the upgrade with a JSON body and `Retry-After`. The slot is
//! held until the client leaves, the emulator drops the connection (shutdown, the drop fault)
//! or the client falls silent between two of the service's pings.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Bytes, Message};
use zd_wire::realtime::{
    Action, ClientFrame, Family, Metric, MetricValue, ServerFrame, Status, StatusMessage, Topic,
    Update, Window, Windowed,
};

use super::compute::Values;
use super::limits::{ConnectionGuard, Refusal};
use super::{Realtime, SubscribeAnswer};

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// The service's message for a refused token.
pub(crate) const UNAUTHORIZED: &str = "Unable to verify the identity of the client";

/// Subscriptions one connection may hold: the catalogue has 18 (metric, window) pairs, so
/// this covers every metric for a few departments, while bounding the list every value
/// change walks. The service documents no such limit; this is the emulator's choice.
pub(crate) const MAX_SUBSCRIPTIONS: usize = 100;

/// Client frames are tiny; anything larger is not a subscription.
const MAX_CLIENT_FRAME: usize = 16 * 1024;

pub(crate) fn status_body(status_code: u16, message: &str) -> String {
    ServerFrame::Status(Status {
        status_code,
        message: Some(StatusMessage::Text(message.to_owned())),
    })
    .encode()
    .unwrap_or_default()
}

pub(crate) fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub(crate) fn too_many(refusal: Refusal) -> Response<Body> {
    let mut response = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        status_body(429, &refusal.message()),
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(refusal.retry_after_secs()),
    );
    response
}

pub(crate) async fn upgrade(State(rt): State<Arc<Realtime>>, mut req: Request) -> Response<Body> {
    let is_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
    let (true, Some(key)) = (is_upgrade, key) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            status_body(400, "expected a WebSocket upgrade"),
        );
    };
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let admitted = match rt.agent(authorization) {
        Some(agent) => {
            if let Err(refusal) = rt.gate.take_request(rt.state.clock().now()) {
                return too_many(refusal);
            }
            match rt.gate.open(&agent.key) {
                Ok(guard) => Some(guard),
                Err(refusal) => return too_many(refusal),
            }
        }
        None => None,
    };
    rt.ensure_engine();
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0)
            .max_message_size(Some(MAX_CLIENT_FRAME))
            .max_frame_size(Some(MAX_CLIENT_FRAME));
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        match admitted {
            Some(guard) => serve(rt, guard, ws).await,
            None => {
                let _ = ws.send(Message::text(status_body(401, UNAUTHORIZED))).await;
                let _ = ws
                    .send(Message::Close(Some(CloseFrame {
                        code: CloseCode::Policy,
                        reason: UNAUTHORIZED.into(),
                    })))
                    .await;
            }
        }
    });
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// One subscription of a connection and the value last sent for it.
#[derive(Debug)]
struct Sub {
    metric: Metric,
    window: Option<Window>,
    department: Option<u64>,
    sent: Option<Option<i64>>,
}

impl Sub {
    fn frame(&self, value: Option<i64>) -> String {
        let family = self.metric.family().unwrap_or(Family::Chats);
        let value = match self.window {
            Some(w) => MetricValue::Windowed(Windowed(vec![(w, value)])),
            None => MetricValue::Scalar(value),
        };
        ServerFrame::Update(Update {
            topic: Topic::family(family),
            data: vec![(self.metric.clone(), value)],
            department_id: self.department,
            status_code: 200,
        })
        .encode()
        .unwrap_or_default()
    }
}

async fn serve(rt: Arc<Realtime>, _guard: ConnectionGuard, ws: Ws) {
    let mut shutdown = rt.shutdown.clone();
    let mut drops = rt.drops.subscribe();
    let heard = AtomicBool::new(false);
    let ping_due = Notify::new();
    // Watched around the whole conversation, not beside its reads: a client that stops
    // reading leaves a write waiting for good, and it must still be dropped (and its slot
    // freed), by these signals or by its silence. Returning drops the TCP stream with no close
    // frame, as a network failure would.
    tokio::select! {
        _ = shutdown.changed() => {}
        _ = drops.changed() => {}
        () = keepalive(rt.ping_interval, &heard, &ping_due) => {}
        () = converse(&rt, ws, &heard, &ping_due) => {}
    }
}

/// Asks the conversation for a ping every `interval`, and returns when the client sent
/// nothing at all (`heard` still unset) between one ping and the next. It runs beside the
/// conversation rather than in it so that a client that stopped reading, which leaves the
/// conversation waiting on a write (and so reading nothing either), is dropped too.
async fn keepalive(interval: Option<Duration>, heard: &AtomicBool, ping_due: &Notify) {
    let mut pinged = false;
    loop {
        let next = interval.and_then(|i| Instant::now().checked_add(i));
        let Some(next) = next else {
            // No pings, or an interval too long to ever come.
            return std::future::pending().await;
        };
        tokio::time::sleep_until(next).await;
        let heard_since_the_last_ping = heard.swap(false, Ordering::Relaxed);
        if pinged && !heard_since_the_last_ping {
            return;
        }
        ping_due.notify_one();
        pinged = true;
    }
}

/// Answers the client's frames, pushes value changes and sends the pings `ping_due` asks for,
/// until either side ends; sets `heard` on every frame from the client.
async fn converse(rt: &Realtime, mut ws: Ws, heard: &AtomicBool, ping_due: &Notify) {
    let mut values = rt.values.subscribe();
    let mut subs: Vec<Sub> = Vec::new();
    loop {
        tokio::select! {
            message = ws.next() => {
                if let Some(Ok(_)) = message {
                    heard.store(true, Ordering::Relaxed);
                }
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                    Some(Ok(_)) => continue,
                };
                let published = Arc::clone(&values.borrow());
                let reply = match handle(rt, &published, &mut subs, text.as_str()) {
                    Ok(frames) => frames,
                    Err(message) => vec![status_body(500, &message)],
                };
                for frame in reply {
                    if ws.feed(Message::text(frame)).await.is_err() {
                        return;
                    }
                }
                if ws.flush().await.is_err() {
                    return;
                }
            }
            changed = values.changed() => {
                if changed.is_err() {
                    let _ = ws.close(None).await;
                    return;
                }
                let current = Arc::clone(&values.borrow_and_update());
                if push_changes(&mut ws, &mut subs, &current).await.is_err() {
                    return;
                }
            }
            () = ping_due.notified() => {
                if ws.send(Message::Ping(Bytes::new())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Sends an update for every subscription whose value differs from the one last sent.
async fn push_changes(
    ws: &mut Ws,
    subs: &mut [Sub],
    values: &Values,
) -> Result<(), tungstenite::Error> {
    let mut any = false;
    for sub in subs.iter_mut() {
        let value = values.get(sub.department, &sub.metric, sub.window);
        if sub.sent != Some(value) {
            sub.sent = Some(value);
            ws.feed(Message::text(sub.frame(value))).await?;
            any = true;
        }
    }
    if any {
        ws.flush().await?;
    }
    Ok(())
}

/// Applies a client frame; returns the frames to send back, or the message of a 500 frame.
/// A subscribe is answered from `published`, the values the engine last published: reading
/// them costs nothing, where computing would take the state lock on every client frame.
fn handle(
    rt: &Realtime,
    published: &Values,
    subs: &mut Vec<Sub>,
    text: &str,
) -> Result<Vec<String>, String> {
    let frame = ClientFrame::decode(text).map_err(|e| format!("unsupported message: {e}"))?;
    let ClientFrame::Subscription(frame) = frame else {
        return Err("unsupported message: expected topic and action".into());
    };
    let metric = match (&frame.topic.metric, frame.topic.is_consistent()) {
        (Some(m), true) if !matches!(m, Metric::Unknown(_)) => m.clone(),
        _ => return Err(format!("unsupported topic {}", frame.topic)),
    };
    // The docs' own sample subscribes unwindowed chat metrics "for a 30-minute time window",
    // and clients in the wild send `window` with them: the window is ignored there. Agent
    // metrics have no window at all, and one given is refused.
    let ignored_window = !metric.is_windowed() && frame.topic.family == Family::Chats;
    let window = if ignored_window { None } else { frame.window };
    if !matches!(frame.action, Action::Subscribe | Action::Unsubscribe) {
        return Err(format!("unsupported action {}", frame.action));
    }
    // An unsubscribe is checked like a subscribe, bar the window a windowed metric may omit
    // (it then ends every window): one naming a window its metric cannot have would match
    // nothing, and the client would believe it had unsubscribed.
    match (metric.is_windowed(), window, &frame.action) {
        (true, Some(w), _) if w.is_known() => {}
        (true, None, Action::Unsubscribe) | (false, None, _) => {}
        (true, _, _) => return Err(format!("{metric} needs a window of 30 or 60 minutes")),
        (false, Some(_), _) => return Err(format!("{metric} has no time window")),
    }
    match frame.action {
        Action::Subscribe => {
            if let Some(d) = frame.department_id
                && !published.has_department(d)
            {
                return Err(format!("unknown department_id {d}"));
            }
            let exists = subs.iter().any(|s| {
                s.metric == metric && s.window == window && s.department == frame.department_id
            });
            if exists {
                return Ok(Vec::new());
            }
            if subs.len() >= MAX_SUBSCRIPTIONS {
                return Err(format!(
                    "a connection can hold at most {MAX_SUBSCRIPTIONS} subscriptions"
                ));
            }
            let mut sub = Sub {
                metric,
                window,
                department: frame.department_id,
                sent: None,
            };
            let value = published.get(sub.department, &sub.metric, sub.window);
            sub.sent = Some(value);
            let reply = match rt.subscribe_answer {
                SubscribeAnswer::CurrentValue => vec![sub.frame(value)],
                // Pushed from the next change on, as for any subscription.
                SubscribeAnswer::NextChange => Vec::new(),
            };
            subs.push(sub);
            Ok(reply)
        }
        Action::Unsubscribe => {
            subs.retain(|s| {
                let same = s.metric == metric
                    && s.department == frame.department_id
                    && window.is_none_or(|w| s.window == Some(w));
                !same
            });
            Ok(Vec::new())
        }
        _ => Err(format!("unsupported action {}", frame.action)),
    }
}
