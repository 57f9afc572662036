//! The WebSocket: the upgrade (hyper + tokio-tungstenite), then one reader loop that executes
//! requests in order and one writer task that owns the sink and batches frames.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use axum::body::Body;
use futures_util::{SinkExt as _, StreamExt as _};
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use zd_wire::DecodeLimits;
use zd_wire::chat::{
    ClientFrame, Eos, ErrorName, GraphQlRequest, GraphQlResponse, Pong, RequestId,
    Response as WireResponse, StopSubscription, SubscriptionAck,
};

use super::Service;
use super::fanout::ClassKey;
use super::render::{Rendered, named_error_frame, protocol_error_frame};
use super::schema::{Caller, EventSlot};
use super::session::{Outgoing, Session, SocketLink, UNEXPECTED};
use crate::ids;

/// Frames queued per socket before DATA frames are dropped for it.
const OUTBOX: usize = 16_384;

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

fn bad_request(message: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(message));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}

/// Answers the upgrade request for `/stream/0.1/graphql/{session_id}:{client_id}` and serves
/// the socket.
pub(crate) fn upgrade(service: Service, target: &str, mut req: Request<Body>) -> Response<Body> {
    let is_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let version_ok = req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return bad_request("expected a WebSocket upgrade");
    };
    if !is_upgrade || !version_ok {
        return bad_request("expected a WebSocket upgrade (version 13)");
    }
    let session = target
        .split_once(':')
        .and_then(|(sid, cid)| service.core.sessions.get(sid, cid));
    let on_upgrade = hyper::upgrade::on(&mut req);
    let config = WebSocketConfig::default()
        .max_message_size(Some(service.core.limits.max_frame_bytes))
        .max_frame_size(Some(service.core.limits.max_frame_bytes));
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(error) => {
                tracing::debug!(%error, "WebSocket upgrade failed");
                return;
            }
        };
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        match session {
            Some(session) => serve(service, session, ws).await,
            None => refuse(ws).await,
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

fn eos_frame(reason: &str) -> Utf8Bytes {
    let eos = Eos {
        reason: Some(reason.into()),
    };
    Utf8Bytes::from(eos.encode().unwrap_or_default())
}

/// A socket on an unknown or ended session URL gets EOS and a close.
async fn refuse(mut ws: Ws) {
    let _ = ws.send(Message::Text(eos_frame(UNEXPECTED))).await;
    let _ = ws
        .send(Message::Close(Some(CloseFrame {
            code: 1000.into(),
            reason: UNEXPECTED.into(),
        })))
        .await;
}

async fn serve(service: Service, session: Arc<Session>, ws: Ws) {
    let conn = service.core.sessions.next_conn();
    let (sink, stream) = ws.split();
    let (outbox, rx) = mpsc::channel(OUTBOX);
    let (closed_tx, closed_rx) = watch::channel(false);
    let cut = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_loop(sink, rx, closed_tx, cut.clone()));
    if let Some(previous) = session.attach(SocketLink {
        conn,
        outbox: outbox.clone(),
    }) {
        let _ = previous.outbox.try_send(Outgoing::Close(
            1000,
            "replaced by a newer connection".into(),
        ));
    }
    let mut reader = Reader {
        service,
        session: session.clone(),
        outbox,
        cut,
    };
    reader.run(stream, closed_rx).await;
    session.detach(conn);
    drop(reader);
    let _ = writer.await;
}

struct Reader {
    service: Service,
    session: Arc<Session>,
    outbox: mpsc::Sender<Outgoing>,
    /// Set by the `cut` fault: the writer writes nothing more and drops the connection.
    cut: Arc<AtomicBool>,
}

impl Reader {
    async fn push(&self, frame: String) {
        let _ = self
            .outbox
            .send(Outgoing::Text(Utf8Bytes::from(frame)))
            .await;
    }

    async fn run(
        &mut self,
        mut stream: futures_util::stream::SplitStream<Ws>,
        mut closed: watch::Receiver<bool>,
    ) {
        let mut shutdown = self.service.shutdown.clone();
        // Set by the `deaf` fault: the socket is not read until then.
        let mut deaf_until: Option<Instant> = None;
        // Capped at a year: `heard + timeout` below must not overflow for a huge setting.
        let idle_timeout = self
            .service
            .core
            .limits
            .idle_timeout
            .map(|t| t.min(Duration::from_secs(365 * 24 * 60 * 60)));
        // One timer for the idle close, re-armed only when it fires early: a frame just notes
        // when it was heard, so the hot path arms no timer per frame.
        let mut heard = Instant::now();
        let mut idle_check = Box::pin(tokio::time::sleep(idle_timeout.unwrap_or(Duration::MAX)));
        loop {
            if self.cut.load(Ordering::Acquire) {
                // Cut: frames the client sent after the cut one never reach the service.
                return;
            }
            if let Some(reason) = self.session.ended() {
                let _ = self.outbox.send(Outgoing::Text(eos_frame(&reason))).await;
                let _ = self.outbox.send(Outgoing::Close(1000, reason)).await;
                return;
            }
            if let Some(deafness) = self.session.faults.take_deafness() {
                deaf_until = Some(Instant::now() + deafness);
            }
            tokio::select! {
                _ = closed.changed() => return,
                _ = shutdown.changed() => {
                    let _ = self.outbox.send(Outgoing::Drop).await;
                    return;
                }
                () = self.session.reader_wake.notified() => {}
                () = async {
                    match deaf_until {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    deaf_until = None;
                    heard = Instant::now();
                }
                // While deaf the emulator hears nothing by its own fault: no idle close then.
                () = &mut idle_check, if deaf_until.is_none() && idle_timeout.is_some() => {
                    let due = heard + idle_timeout.unwrap_or_default();
                    if Instant::now() < due {
                        // Heard from since it was armed: wait out the rest.
                        idle_check.as_mut().reset(due);
                    } else {
                        let reason = "idle connection: no frame from the client (send PINGs)";
                        let _ = self.outbox.send(Outgoing::Close(1001, reason.into())).await;
                        return;
                    }
                }
                message = stream.next(), if deaf_until.is_none() => {
                    heard = Instant::now();
                    match message {
                        None => return,
                        Some(Ok(Message::Text(text))) => self.handle(text.as_str()).await,
                        Some(Ok(Message::Close(_))) => {
                            let _ = self.outbox.send(Outgoing::Close(1000, String::new())).await;
                            return;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(tungstenite::Error::Capacity(_))) => {
                            let _ = self
                                .outbox
                                .send(Outgoing::Close(1009, "frame too large".into()))
                                .await;
                            return;
                        }
                        Some(Err(error)) => {
                            tracing::debug!(%error, "socket read failed");
                            return;
                        }
                    }
                }
            }
        }
    }

    async fn handle(&self, text: &str) {
        let limits =
            DecodeLimits::new().with_max_frame_bytes(self.service.core.limits.max_frame_bytes);
        match ClientFrame::decode_with(text, &limits) {
            Err(error) => {
                let frame = named_error_frame(
                    None,
                    ErrorName::GraphQlExecError,
                    format!("invalid frame: {error}"),
                );
                self.push(frame).await;
            }
            Ok(ClientFrame::Ping(ping)) => {
                self.session.counters.pings.fetch_add(1, Ordering::Relaxed);
                if !self.session.faults.ignore_pings.load(Ordering::Relaxed) {
                    let pong = Pong {
                        payload: ping.payload,
                    };
                    self.push(pong.encode().unwrap_or_default()).await;
                }
            }
            Ok(ClientFrame::Request(request)) => {
                if let Some(refusal) = self.admit(&request.id) {
                    return self.push(refusal).await;
                }
                let cut = self.cut_if_due();
                let mute = self.session.faults.take_mute();
                let frame = self.request(request.id, &request.payload, mute).await;
                if cut {
                    return self.drop_cut().await;
                }
                if !mute {
                    self.respond(frame).await;
                }
            }
            Ok(ClientFrame::StopSubscription(stop)) => {
                if let Some(refusal) = self.admit(&stop.id) {
                    return self.push(refusal).await;
                }
                let cut = self.cut_if_due();
                let mute = self.session.faults.take_mute();
                self.session.counters.stops.fetch_add(1, Ordering::Relaxed);
                let frame = self.stop(&stop);
                if cut {
                    return self.drop_cut().await;
                }
                if !mute {
                    self.respond(frame).await;
                }
            }
            Ok(_) => {
                let frame = named_error_frame(
                    None,
                    ErrorName::GraphQlExecError,
                    "unknown frame: expected a request, stop_subscription or PING",
                );
                self.push(frame).await;
            }
        }
    }

    /// Takes a pending `cut` fault: from now the writer writes nothing (set before the request
    /// runs, so not even an answer queued while it runs, such as a subscription ack, gets out).
    fn cut_if_due(&self) -> bool {
        let due = self.session.faults.cut_next.swap(false, Ordering::Relaxed);
        if due {
            self.cut.store(true, Ordering::Release);
        }
        due
    }

    /// Wakes the writer to drop the connection the `cut` fault cut.
    async fn drop_cut(&self) {
        let _ = self.outbox.send(Outgoing::Drop).await;
    }

    /// Counts a request and applies the rate limit and injected failures.
    fn admit(&self, id: &RequestId) -> Option<String> {
        let now = self.service.core.state.clock().now();
        self.session.counters.record_request(now);
        if !self.session.take_request_token(now) {
            self.session
                .counters
                .rate_limited
                .fetch_add(1, Ordering::Relaxed);
            return Some(named_error_frame(
                Some(id.clone()),
                ErrorName::RateLimited,
                "rate limit of requests per second exceeded",
            ));
        }
        if let Some(fault) = self.session.faults.take_protocol_failure() {
            return Some(protocol_error_frame(
                Some(id.clone()),
                fault.code,
                &fault.body,
            ));
        }
        let name = self.session.faults.take_failure()?;
        Some(named_error_frame(
            Some(id.clone()),
            name,
            "failure injected by the emulator",
        ))
    }

    async fn respond(&self, mut frame: String) {
        if frame.is_empty() {
            // A subscription ack, already queued.
            return;
        }
        self.session.faults.garble(&mut frame);
        let delay = self
            .session
            .faults
            .response_delay_ms
            .load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.push(frame).await;
    }

    /// Runs one request and returns its answer; `mute` withholds a subscription's ack too,
    /// which is queued here rather than returned.
    async fn request(&self, id: RequestId, payload: &GraphQlRequest<'_>, mute: bool) -> String {
        let document = match self.service.documents.parse(&payload.query) {
            Ok(doc) => doc,
            Err(error) => {
                return named_error_frame(Some(id), ErrorName::GraphQlExecError, error.to_string());
            }
        };
        let variables = payload
            .variables
            .and_then(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).ok())
            .map(async_graphql::Variables::from_json)
            .unwrap_or_default();
        let operation_name = payload.operation_name.as_deref().map(str::to_owned);
        if operation_type(&document, operation_name.as_deref()) == Some(OperationType::Subscription)
        {
            return self.subscribe(id, payload, document, variables, mute).await;
        }
        let mut request = async_graphql::Request::new(payload.query.to_string())
            .variables(variables)
            .data(Caller::Socket(self.session.clone()));
        if let Some(name) = operation_name {
            request = request.operation_name(name);
        }
        request.set_parsed_query(document);
        let response = self.service.schema.execute(request).await;
        Rendered::from_engine(&response).frame(id)
    }

    async fn subscribe(
        &self,
        id: RequestId,
        payload: &GraphQlRequest<'_>,
        document: ExecutableDocument,
        variables: async_graphql::Variables,
        mute: bool,
    ) -> String {
        let max = self.service.core.limits.max_subscriptions;
        if self.session.subscriptions.lock().len() >= max {
            return named_error_frame(
                Some(id),
                ErrorName::MaxSub,
                format!("a session can have at most {max} subscriptions"),
            );
        }
        let mut probe = async_graphql::Request::new(payload.query.to_string())
            .variables(variables)
            .data(Caller::Socket(self.session.clone()))
            .data(EventSlot(None));
        if let Some(name) = &payload.operation_name {
            probe = probe.operation_name(name.to_string());
        }
        probe.set_parsed_query(document.clone());
        if let Some(response) = self.service.schema.execute_stream(probe).next().await
            && response.is_err()
        {
            let mut rendered = Rendered::from_engine(&response);
            for e in &mut rendered.errors {
                if e.name == ErrorName::GraphQlExecError {
                    e.name = ErrorName::GraphQlSubStartError;
                }
            }
            return rendered.frame(id);
        }
        let subscription_id = ids::random_token(11).to_ascii_lowercase();
        let key = ClassKey {
            query: payload.query.to_string(),
            variables: payload
                .variables
                .map(|v| v.get().to_owned())
                .unwrap_or_default(),
            operation_name: payload.operation_name.as_deref().map(str::to_owned),
        };
        let class = self
            .service
            .hub
            .add(key, document, &subscription_id, &self.session);
        self.session
            .subscriptions
            .lock()
            .insert(subscription_id.clone(), class.clone());
        self.session
            .counters
            .subscriptions_started
            .fetch_add(1, Ordering::Relaxed);
        let ack = SubscriptionAck {
            id,
            subscription_id: subscription_id.as_str().into(),
        };
        // Queue the ack before activating, so no DATA frame overtakes it.
        if !mute {
            self.push(ack.encode().unwrap_or_default()).await;
        }
        class.activate(&subscription_id);
        String::new()
    }

    fn stop(&self, stop: &StopSubscription<'_>) -> String {
        let removed = self
            .session
            .subscriptions
            .lock()
            .remove(stop.subscription_id.as_ref());
        let Some(class) = removed else {
            return named_error_frame(
                Some(stop.id.clone()),
                ErrorName::GraphQlExecError,
                format!("unknown subscription_id {:?}", stop.subscription_id),
            );
        };
        class.remove(&stop.subscription_id);
        let data = RawValue::from_string(r#"{"success":true}"#.to_owned()).ok();
        WireResponse {
            id: stop.id.clone(),
            payload: GraphQlResponse {
                data: data.as_deref(),
                ..GraphQlResponse::default()
            },
        }
        .encode()
        .unwrap_or_default()
    }
}

fn operation_type(doc: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    match &doc.operations {
        DocumentOperations::Single(op) => Some(op.node.ty),
        DocumentOperations::Multiple(ops) => match name {
            Some(name) => ops
                .iter()
                .find(|(n, _)| n.as_str() == name)
                .map(|(_, op)| op.node.ty),
            None if ops.len() == 1 => ops.values().next().map(|op| op.node.ty),
            None => None,
        },
    }
}

enum Flow {
    Continue,
    Stop,
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<Ws, Message>,
    mut rx: mpsc::Receiver<Outgoing>,
    closed: watch::Sender<bool>,
    cut: Arc<AtomicBool>,
) {
    'outer: while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Feed everything already queued, then flush once: one syscall for a burst.
        while let Some(out) = next.take() {
            if cut.load(Ordering::Acquire) {
                // What was fed before the cut still goes out, as on a connection that dies.
                let _ = sink.flush().await;
                break 'outer;
            }
            match out {
                Outgoing::Text(text) => {
                    if sink.feed(Message::Text(text)).await.is_err() {
                        break 'outer;
                    }
                    next = rx.try_recv().ok();
                }
                other => {
                    if sink.flush().await.is_err() {
                        break 'outer;
                    }
                    match control(&mut sink, other).await {
                        Flow::Continue => {}
                        Flow::Stop => break 'outer,
                    }
                }
            }
        }
        if sink.flush().await.is_err() {
            break;
        }
    }
    let _ = closed.send(true);
}

async fn control(sink: &mut futures_util::stream::SplitSink<Ws, Message>, out: Outgoing) -> Flow {
    match out {
        Outgoing::Text(_) => Flow::Continue,
        Outgoing::Close(code, reason) => {
            let frame = CloseFrame {
                code: code.into(),
                reason: reason.into(),
            };
            let _ = sink.send(Message::Close(Some(frame))).await;
            Flow::Stop
        }
        Outgoing::Drop => Flow::Stop,
        Outgoing::Stall(duration) => {
            tokio::time::sleep(duration).await;
            Flow::Continue
        }
    }
}
