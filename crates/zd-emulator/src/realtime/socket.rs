//! `GET /stream`: the streaming WebSocket.
//!
//! The upgrade is authenticated with `Authorization: Bearer <agent access token>`. A bad
//! token still gets the upgrade, then the 401 status frame and a close, as the service does.
//! A good token spends one request of the 200/minute budget and takes a connection slot;
//! either refusal is an HTTP 429 on the upgrade with a JSON body and `Retry-After`. The slot is
//! held until the client leaves, the emulator drops the connection (shutdown, the drop fault)
//! or the keepalive gives up on it: nothing from the client for a whole ping interval after
//! a ping was written, or a ping that could not be written for a whole interval.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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
    let admitted = match rt.agent(req.headers()) {
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
    // Watched from before the 101 is written: the connection counts as open from here (its
    // slot is taken), and a client that drops every connection as soon as its connect returns
    // must reach this one, not have it miss the signal while its task is still starting.
    let admitted = admitted.map(|guard| (guard, rt.drops.subscribe()));
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
            Some((guard, drops)) => serve(rt, guard, drops, ws).await,
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

async fn serve(
    rt: Arc<Realtime>,
    _guard: ConnectionGuard,
    mut drops: tokio::sync::watch::Receiver<u64>,
    ws: Ws,
) {
    let mut shutdown = rt.shutdown.clone();
    let liveness = Liveness::default();
    // Watched around the whole conversation, not beside its reads: a client that stops
    // reading leaves a write waiting for good, and it must still be dropped (and its slot
    // freed), by these signals or by its silence. Returning drops the TCP stream with no close
    // frame, as a network failure would.
    tokio::select! {
        _ = shutdown.changed() => {}
        _ = drops.changed() => {}
        () = keepalive(rt.gate.ping_interval(), &liveness) => {}
        () = converse(&rt, ws, &liveness) => {}
    }
}

/// What the keepalive and the conversation share: pings asked for and written, and whether
/// the client has said anything since the last one was written.
#[derive(Default)]
struct Liveness {
    /// Pings the conversation has written.
    written: AtomicU64,
    /// When the last ping was written (tokio time), unless the client has sent a frame since.
    unanswered_since: Mutex<Option<Instant>>,
    /// Asks the conversation for a ping.
    due: Notify,
}

impl Liveness {
    /// The conversation wrote a ping.
    fn ping_written(&self) {
        *self.lock() = Some(Instant::now());
        self.written.fetch_add(1, Ordering::Relaxed);
    }

    /// A frame (of any kind, a pong included) arrived from the client.
    fn heard(&self) {
        *self.lock() = None;
    }

    fn unanswered_since(&self) -> Option<Instant> {
        *self.lock()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.unanswered_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Asks the conversation for a ping every `interval` (at least a second), and returns, so
/// ending the connection, when the client has sent nothing for a whole interval after a
/// ping was written, or when a ping asked for could not even be written for a whole
/// interval (the client stopped reading, so the conversation waits on a write). The clock
/// starts when the ping is written, not when it falls due: a ping queued behind a backlog of
/// updates to a slow but live client still gets its full interval.
async fn keepalive(interval: Option<Duration>, liveness: &Liveness) {
    let Some(interval) = interval.map(|i| i.max(Duration::from_secs(1))) else {
        return std::future::pending().await;
    };
    // The last ping asked for: its number and when.
    let mut asked: Option<(u64, Instant)> = None;
    loop {
        let Some(next) = Instant::now().checked_add(interval) else {
            // An interval too long to ever come.
            return std::future::pending().await;
        };
        tokio::time::sleep_until(next).await;
        let now = Instant::now();
        if let Some((number, at)) = asked
            && liveness.written.load(Ordering::Relaxed) < number
        {
            if now.duration_since(at) >= interval {
                return;
            }
            continue;
        }
        match liveness.unanswered_since() {
            Some(written) if now.duration_since(written) >= interval => return,
            // Written late, behind other frames: its interval is not over yet.
            Some(_) => continue,
            None => {}
        }
        let number = liveness.written.load(Ordering::Relaxed) + 1;
        asked = Some((number, now));
        liveness.due.notify_one();
    }
}

/// Answers the client's frames, pushes value changes and writes the pings the keepalive asks
/// for, until either side ends.
async fn converse(rt: &Realtime, mut ws: Ws, liveness: &Liveness) {
    let mut values = rt.values.subscribe();
    let mut subs: Vec<Sub> = Vec::new();
    loop {
        tokio::select! {
            message = ws.next() => {
                if let Some(Ok(_)) = message {
                    liveness.heard();
                }
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                    Some(Ok(_)) => continue,
                };
                let published = Arc::clone(&values.borrow());
                let reply = match handle(rt, &published, &mut subs, text.as_str()) {
                    Ok(frames) => frames,
                    Err(refused) => vec![status_body(refused.status_code, &refused.message)],
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
            () = liveness.due.notified() => {
                if ws.send(Message::Ping(Bytes::new())).await.is_err() {
                    return;
                }
                liveness.ping_written();
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

/// Why a client frame is refused: the status frame sent back, and the connection stays.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) status_code: u16,
    pub(crate) message: String,
}

impl Refused {
    /// A frame the service cannot act on: 500, the code clients take for "unsupported message
    /// sent to server" (the reference's client code handles it so for bad subscriptions).
    fn unsupported(message: String) -> Self {
        Self {
            status_code: 500,
            message,
        }
    }

    /// A well-formed frame naming a department the account does not have: the client's
    /// mistake, not the service's, so a 404 with the same message the REST pull answers with,
    /// never a 500. The docs say nothing of unknown departments.
    pub(crate) fn unknown_department(id: u64) -> Self {
        Self {
            status_code: 404,
            message: format!("Not Found: department_id {id} is not a department of the account"),
        }
    }
}

/// Applies a client frame; returns the frames to send back, or why it is refused.
/// A subscribe is answered from `published`, the values the engine last published: reading
/// them costs nothing, where computing would take the state lock on every client frame.
fn handle(
    rt: &Realtime,
    published: &Values,
    subs: &mut Vec<Sub>,
    text: &str,
) -> Result<Vec<String>, Refused> {
    let frame = ClientFrame::decode(text)
        .map_err(|e| Refused::unsupported(format!("unsupported message: {e}")))?;
    let ClientFrame::Subscription(frame) = frame else {
        return Err(Refused::unsupported(
            "unsupported message: expected topic and action".into(),
        ));
    };
    let metric = match (&frame.topic.metric, frame.topic.is_consistent()) {
        (Some(m), true) if !matches!(m, Metric::Unknown(_)) => m.clone(),
        _ => {
            return Err(Refused::unsupported(format!(
                "unsupported topic {}",
                frame.topic
            )));
        }
    };
    // The docs' own sample subscribes unwindowed chat metrics "for a 30-minute time window",
    // and clients in the wild send `window` with them: the window is ignored there. Agent
    // metrics have no window at all, and one given is refused.
    let ignored_window = !metric.is_windowed() && frame.topic.family == Family::Chats;
    let window = if ignored_window { None } else { frame.window };
    let unsubscribe = match frame.action {
        Action::Subscribe => false,
        Action::Unsubscribe => true,
        _ => {
            return Err(Refused::unsupported(format!(
                "unsupported action {}",
                frame.action
            )));
        }
    };
    // An unsubscribe is checked like a subscribe, bar the window a windowed metric may omit
    // (it then ends every window): one naming a window its metric cannot have would match
    // nothing, and the client would believe it had unsubscribed.
    match (metric.is_windowed(), window) {
        (true, Some(w)) if w.is_known() => {}
        (true, None) if unsubscribe => {}
        (false, None) => {}
        (true, _) => {
            return Err(Refused::unsupported(format!(
                "{metric} needs a window of 30 or 60 minutes"
            )));
        }
        (false, Some(_)) => {
            return Err(Refused::unsupported(format!("{metric} has no time window")));
        }
    }
    if unsubscribe {
        // `department_id` reads as in a subscribe: without it, the account-wide subscription.
        // Ending every department's too would leave a client holding both (two series of one
        // metric) with a department series it believes live and the service no longer feeds.
        subs.retain(|s| {
            let same = s.metric == metric
                && s.department == frame.department_id
                && window.is_none_or(|w| s.window == Some(w));
            !same
        });
        return Ok(Vec::new());
    }
    if let Some(d) = frame.department_id
        && !published.has_department(d)
    {
        return Err(Refused::unknown_department(d));
    }
    let exists = subs
        .iter()
        .any(|s| s.metric == metric && s.window == window && s.department == frame.department_id);
    if exists {
        return Ok(Vec::new());
    }
    if subs.len() >= MAX_SUBSCRIPTIONS {
        return Err(Refused::unsupported(format!(
            "a connection can hold at most {MAX_SUBSCRIPTIONS} subscriptions"
        )));
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::{Instant, sleep_until};

    use super::{Liveness, keepalive};

    const INTERVAL: Duration = Duration::from_secs(30);

    /// Runs the keepalive on the paused clock until `at` (milliseconds after `start`);
    /// `true` when it has ended the connection by then.
    async fn ended_by(
        keepalive: &mut (impl Future<Output = ()> + Unpin),
        start: Instant,
        at: u64,
    ) -> bool {
        tokio::select! {
            () = keepalive => true,
            () = sleep_until(start + Duration::from_millis(at)) => false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_ping_written_late_gets_its_whole_interval() {
        let (start, liveness) = (Instant::now(), Liveness::default());
        let mut keepalive = Box::pin(keepalive(Some(INTERVAL), &liveness));
        // Asked for at 30 s, written only at 55 s, behind a backlog of updates.
        assert!(!ended_by(&mut keepalive, start, 55_000).await);
        liveness.ping_written();
        // At 60 s it has been out 5 s, and the answer comes at 70 s.
        assert!(!ended_by(&mut keepalive, start, 70_000).await);
        liveness.heard();
        assert!(
            !ended_by(&mut keepalive, start, 95_000).await,
            "a live client was dropped"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_silent_for_an_interval_after_a_ping_is_dropped() {
        let (start, liveness) = (Instant::now(), Liveness::default());
        let mut keepalive = Box::pin(keepalive(Some(INTERVAL), &liveness));
        assert!(!ended_by(&mut keepalive, start, 31_000).await);
        liveness.ping_written();
        // Judged at the first tick a whole interval after the ping was written: 90 s.
        assert!(!ended_by(&mut keepalive, start, 62_000).await);
        assert!(
            ended_by(&mut keepalive, start, 92_000).await,
            "a silent client was kept"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_ping_that_cannot_be_written_for_an_interval_ends_the_connection() {
        let (start, liveness) = (Instant::now(), Liveness::default());
        let mut keepalive = Box::pin(keepalive(Some(INTERVAL), &liveness));
        // Asked for at 30 s and never written: the conversation waits on a client that
        // stopped reading.
        assert!(
            ended_by(&mut keepalive, start, 61_000).await,
            "a stuck client was kept"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_interval_is_taken_as_a_second() {
        let (start, liveness) = (Instant::now(), Liveness::default());
        let mut keepalive = Box::pin(keepalive(Some(Duration::ZERO), &liveness));
        assert!(
            !ended_by(&mut keepalive, start, 1_500).await,
            "dropped at once"
        );
        liveness.ping_written();
        liveness.heard();
        assert!(!ended_by(&mut keepalive, start, 2_500).await);
    }
}
