//! The WebSocket: the upgrade (hyper + tokio-tungstenite), then one reader loop that executes
//! requests in order and one writer task that owns the sink and batches frames.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use async_graphql::parser::types::{ExecutableDocument, OperationType};
use axum::body::Body;
use futures_util::{SinkExt as _, StreamExt as _};
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
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
use super::fanout::{Class, ClassKey};
use super::introspection::selected_operation;
use super::limits::{
    LOG_ENTRIES_SPENT, MAX_ANSWER_BYTES, MAX_QUEUED_ANSWER_BYTES, MAX_QUEUED_PONG_BYTES,
};
use super::render::{Rendered, named_error_frame, protocol_error_frame};
use super::root_field::{Root, missing_variable, subscription_root};
use super::schema::{Caller, EventSlot, LogBudget, log_entries_spent};
use super::session::{
    Deafness, Outgoing, QueuedBytes, Session, SocketLink, UNEXPECTED, eos_reason,
};
use crate::ids;

/// Frames queued per socket before DATA frames are dropped for it.
const OUTBOX: usize = 16_384;
/// Replies the reader queues for the writer before it waits for room.
const REPLIES: usize = 1_024;
/// Frames the writer holds behind an answer still waiting for its time (the `delay` fault)
/// before it takes no more: the reader then waits, and DATA frames are dropped at the outbox,
/// so a long delay cannot make a socket buffer without bound.
const HELD: usize = OUTBOX;
/// Upper bound of a wait computed from a setting: `instant + wait` must not overflow.
const YEAR: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// A close frame's payload is at most 125 bytes (RFC 6455 section 5.5), two of them the code.
const MAX_CLOSE_REASON: usize = 123;

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;
type Sink = futures_util::stream::SplitSink<Ws, Message>;

/// What the reader hands the writer. It has its own channel, apart from the session's outbox,
/// because an answer carries the instant it is due.
#[derive(Debug)]
enum Reply {
    /// Goes out once its instant has come and all that was queued before it has gone out, so
    /// answers keep their order; the instants of answers only grow while the delay stays the
    /// same, so one answer never waits for another's time on top of its own.
    At(Instant, Outgoing),
    /// Goes out at once, ahead of answers still waiting for their time.
    Now(Outgoing),
}

/// A subscription registered by a request, to be let through once its ack is queued.
struct Started {
    class: Arc<Class>,
    id: String,
}

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
    // Attached before the 101 is written: the client's connect returns on reading it, and
    // what it then does to the session (a fault of the control API, a DATA frame) must find
    // this socket, not none or the one it replaces. Frames queue until the writer starts. The
    // socket it replaces is closed only once this one's upgrade has completed
    // (`serve_upgraded`).
    let attached = session.map(|session| Attached::new(&service, session));
    tokio::spawn(serve_upgraded(service, attached, on_upgrade, config));
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

/// Completes the upgrade, then serves the socket (or refuses it, on a URL of no live session).
async fn serve_upgraded(
    service: Service,
    attached: Option<Attached>,
    on_upgrade: hyper::upgrade::OnUpgrade,
    config: WebSocketConfig,
) {
    let upgraded = match on_upgrade.await {
        Ok(u) => u,
        Err(error) => {
            // Dropping `attached` before its upgrade completed undoes the attaching: the
            // socket is not counted, and the one it was to replace, left open until now, is
            // the session's socket again and gets what was queued for this one meanwhile.
            tracing::debug!(%error, "WebSocket upgrade failed");
            return;
        }
    };
    let ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    match attached {
        Some(mut attached) => {
            if let Some(outbox_rx) = attached.attachment.upgraded() {
                serve(service, attached, outbox_rx, ws).await;
            }
        }
        None => refuse(ws).await,
    }
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

/// A socket attached to its session, its writer not yet started.
struct Attached {
    attachment: Attachment,
    outbox: mpsc::Sender<Outgoing>,
    kill: Arc<Notify>,
    /// The socket's pending deafness (see [`SocketLink::deafness`]).
    deafness: Arc<Deafness>,
}

impl Attached {
    /// Attaches a new socket to `session`. The one it replaces stays open until this one's
    /// upgrade completes ([`Attachment::upgraded`]).
    fn new(service: &Service, session: Arc<Session>) -> Self {
        let conn = service.core.sessions.next_conn();
        let (outbox, outbox_rx) = mpsc::channel(OUTBOX);
        // A kill before the writer starts is kept: the writer then ends as soon as it starts.
        let kill = Arc::new(Notify::new());
        let link = SocketLink::new(conn, outbox.clone(), kill.clone());
        let deafness = link.deafness.clone();
        session.attach(link);
        Self {
            attachment: Attachment {
                session,
                conn,
                pending: Some(outbox_rx),
            },
            outbox,
            kill,
            deafness,
        }
    }
}

/// Detaches its socket from the session when dropped, however the socket's task ends; a
/// socket dropped before its upgrade completed is undone ([`Session::abandon`]).
struct Attachment {
    session: Arc<Session>,
    conn: u64,
    /// The socket's outbox until its upgrade completes and the writer is to take it: if the
    /// upgrade fails instead, what was queued meanwhile is handed on from here.
    pending: Option<mpsc::Receiver<Outgoing>>,
}

impl Attachment {
    /// The socket's upgrade has completed: it counts for good, and the sockets it replaces
    /// are closed. Not before: a socket whose upgrade fails would otherwise have closed a
    /// working one for nothing. Returns the outbox for the writer (once).
    fn upgraded(&mut self) -> Option<mpsc::Receiver<Outgoing>> {
        let outbox = self.pending.take();
        for previous in self.session.upgraded(self.conn) {
            previous.close_or_kill(Outgoing::Close(
                1000,
                "replaced by a newer connection".into(),
            ));
        }
        outbox
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        match self.pending.take() {
            Some(outbox) => self.session.abandon(self.conn, outbox),
            None => self.session.detach(self.conn),
        }
    }
}

async fn serve(service: Service, attached: Attached, outbox_rx: mpsc::Receiver<Outgoing>, ws: Ws) {
    let Attached {
        attachment,
        outbox,
        kill,
        deafness,
    } = attached;
    let session = attachment.session.clone();
    let (sink, stream) = ws.split();
    let (replies, replies_rx) = mpsc::channel(REPLIES);
    let (closed_tx, closed_rx) = watch::channel(false);
    let cut = Arc::new(AtomicBool::new(false));
    let write_timeout = service.core.limits.write_timeout.min(YEAR);
    let writer = Writer {
        sink,
        cut: cut.clone(),
        held: VecDeque::new(),
        write_timeout,
    };
    let writer = tokio::spawn(writer.run(
        outbox_rx,
        replies_rx,
        closed_tx,
        service.shutdown.clone(),
        kill.clone(),
    ));
    let mut reader = Reader {
        service,
        session: session.clone(),
        replies,
        answer_bytes: Arc::new(Semaphore::new(MAX_QUEUED_ANSWER_BYTES)),
        pong_bytes: Arc::new(Semaphore::new(MAX_QUEUED_PONG_BYTES)),
        outbox,
        cut,
        kill: kill.clone(),
        deafness,
    };
    reader.run(stream, closed_rx).await;
    drop(attachment);
    drop(reader);
    // What is still queued gets the write timeout to go out, plus the time the `delay` fault
    // holds answers for: past that the client is not taking it, and the socket would
    // otherwise stay open as long as the client keeps it.
    let delay = session.faults.response_delay_ms.load(Ordering::Relaxed);
    let grace = write_timeout.saturating_add(Duration::from_millis(delay).min(YEAR));
    let mut writer = writer;
    if tokio::time::timeout(grace, &mut writer).await.is_err() {
        kill.notify_one();
        let _ = writer.await;
    }
}

struct Reader {
    service: Service,
    session: Arc<Session>,
    replies: mpsc::Sender<Reply>,
    /// The bytes of answers `replies` and the writer may still take: its room in frames alone
    /// lets answers of up to 16 MiB each add up to gigabytes.
    answer_bytes: Arc<Semaphore>,
    /// The bytes of PONGs `replies` and the writer may still take, likewise.
    pong_bytes: Arc<Semaphore>,
    /// The session's own queue, where its DATA waits: frames that end the socket go there,
    /// behind what was queued before them.
    outbox: mpsc::Sender<Outgoing>,
    /// Set by the `cut` fault: the writer writes nothing more and drops the connection.
    cut: Arc<AtomicBool>,
    /// Ends the writer at once.
    kill: Arc<Notify>,
    /// This socket's pending deafness (see [`SocketLink::deafness`]).
    deafness: Arc<Deafness>,
}

impl Reader {
    async fn reply(&self, reply: Reply) {
        let _ = self.replies.send(reply).await;
    }

    /// Queues `out` after everything queued before it: the answers (the writer takes those
    /// first) and the session's DATA (the same queue). For EOS and closes. A full queue has
    /// until `deadline` ([`Reader::end_deadline`]) to make room: a client still reading but behind a burst gets its EOS
    /// after its data, while one that stopped reading would keep the socket waiting forever, so
    /// its connection is dropped instead. False when `out` was not queued.
    async fn in_turn(&self, out: Outgoing, deadline: Instant) -> bool {
        match tokio::time::timeout_at(deadline, self.outbox.send(out)).await {
            Ok(sent) => sent.is_ok(),
            Err(_) => {
                self.kill.notify_one();
                false
            }
        }
    }

    /// The time the frames that end the socket (EOS, then the close) have, together, to find
    /// room in the queue: one write timeout from now.
    fn end_deadline(&self) -> Instant {
        Instant::now() + self.service.core.limits.write_timeout.min(YEAR)
    }

    /// Queues the answer to a frame read at `read_at`, due when the `delay` fault says.
    async fn answer(&self, read_at: Instant, frame: String) {
        let delay = self
            .session
            .faults
            .response_delay_ms
            .load(Ordering::Relaxed);
        let due = read_at + Duration::from_millis(delay).min(YEAR);
        let frame = Utf8Bytes::from(frame);
        // Waits, as for room in `replies`, until the writer has written enough of the answers
        // before it: an answer is never dropped.
        let budget = &self.answer_bytes;
        let Some(bytes) = QueuedBytes::wait(budget, frame.len(), MAX_QUEUED_ANSWER_BYTES).await
        else {
            return;
        };
        self.reply(Reply::At(due, Outgoing::Counted(frame, bytes)))
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
        // Capped: `heard + timeout` below must not overflow for a huge setting.
        let idle_timeout = self.service.core.limits.idle_timeout.map(|t| t.min(YEAR));
        // One timer for the idle close, re-armed only when it fires early: a frame just notes
        // when it was heard, so the hot path arms no timer per frame.
        let mut heard = Instant::now();
        let mut idle_check = Box::pin(tokio::time::sleep(idle_timeout.unwrap_or(Duration::MAX)));
        loop {
            if self.cut.load(Ordering::Acquire) {
                // Cut: frames the client sent after the cut one never reach the service.
                return;
            }
            if let Some(cause) = self.session.ended() {
                let reason = eos_reason(cause).to_owned();
                let deadline = self.end_deadline();
                if self
                    .in_turn(Outgoing::Text(eos_frame(&reason)), deadline)
                    .await
                {
                    self.in_turn(Outgoing::Finish(1000, reason), deadline).await;
                }
                return;
            }
            if let Some(deafness) = self.deafness.take() {
                deaf_until = Some(Instant::now() + deafness);
            }
            tokio::select! {
                _ = closed.changed() => return,
                // The writer watches the shutdown too, and ends the socket itself.
                _ = shutdown.changed() => return,
                () = self.session.reader_wake.notified() => {}
                () = self.deafness.wake.notified() => {}
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
                        self.in_turn(Outgoing::Finish(1001, reason.into()), self.end_deadline())
                            .await;
                        return;
                    }
                }
                message = stream.next(), if deaf_until.is_none() => {
                    heard = Instant::now();
                    match message {
                        None => {
                            // Nobody reads what is still held for its time.
                            self.reply(Reply::Now(Outgoing::Drop)).await;
                            return;
                        }
                        // Read after the session ended (the select may take a frame before
                        // the wake-up): not served. The loop's top sends EOS, and the client
                        // sends it again on its next session.
                        Some(Ok(Message::Text(_))) if self.session.ended().is_some() => {}
                        Some(Ok(Message::Text(text))) => self.handle(text.as_str(), heard).await,
                        Some(Ok(Message::Close(_))) => {
                            self.in_turn(Outgoing::Finish(1000, String::new()), self.end_deadline())
                                .await;
                            return;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(tungstenite::Error::Capacity(_))) => {
                            let close = Outgoing::Finish(1009, "frame too large".into());
                            self.in_turn(close, self.end_deadline()).await;
                            return;
                        }
                        Some(Err(error)) => {
                            tracing::debug!(%error, "socket read failed");
                            self.reply(Reply::Now(Outgoing::Drop)).await;
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Acts on a text frame read at `read_at`.
    async fn handle(&self, text: &str, read_at: Instant) {
        let limits =
            DecodeLimits::new().with_max_frame_bytes(self.service.core.limits.max_frame_bytes);
        match ClientFrame::decode_with(text, &limits) {
            Err(error) => {
                let id = id_of(text);
                if let Some(refusal) = self.admit_malformed(text, id.as_ref()) {
                    return self.answer(read_at, refusal).await;
                }
                let frame = named_error_frame(
                    id,
                    ErrorName::GraphQlExecError,
                    format!("invalid frame: {error}"),
                );
                self.answer(read_at, frame).await;
            }
            Ok(ClientFrame::Ping(ping)) => {
                self.session.counters.pings.fetch_add(1, Ordering::Relaxed);
                if !self.session.faults.ignore_pings.load(Ordering::Relaxed) {
                    let pong = Pong {
                        payload: ping.payload,
                    };
                    // At once, ahead of answers the `delay` fault holds: it plays a slow
                    // service behind a live connection, so a client's liveness check holds.
                    let pong = Utf8Bytes::from(pong.encode().unwrap_or_default());
                    let budget = &self.pong_bytes;
                    let Some(bytes) =
                        QueuedBytes::wait(budget, pong.len(), MAX_QUEUED_PONG_BYTES).await
                    else {
                        return;
                    };
                    self.reply(Reply::Now(Outgoing::Counted(pong, bytes))).await;
                }
            }
            Ok(ClientFrame::Request(request)) => {
                if let Some(refusal) = self.admit(&request.id) {
                    return self.answer(read_at, refusal).await;
                }
                let cut = self.cut_if_due();
                let mute = self.session.faults.take_mute();
                let (frame, started) = self.request(request.id, &request.payload).await;
                self.conclude(read_at, frame, cut, mute).await;
                if let Some(started) = started {
                    // Only now: no DATA frame may overtake the ack.
                    started.class.activate(&started.id);
                }
            }
            Ok(ClientFrame::StopSubscription(stop)) => {
                if let Some(refusal) = self.admit(&stop.id) {
                    return self.answer(read_at, refusal).await;
                }
                let cut = self.cut_if_due();
                let mute = self.session.faults.take_mute();
                self.session.counters.stops.fetch_add(1, Ordering::Relaxed);
                let frame = self.stop(&stop);
                self.conclude(read_at, frame, cut, mute).await;
            }
            Ok(_) => {
                let id = id_of(text);
                if let Some(refusal) = self.admit_malformed(text, id.as_ref()) {
                    return self.answer(read_at, refusal).await;
                }
                let frame = named_error_frame(
                    id,
                    ErrorName::GraphQlExecError,
                    "unknown frame: expected a request, stop_subscription or PING",
                );
                self.answer(read_at, frame).await;
            }
        }
    }

    /// Sends the answer to a request or stop that took effect, unless a `cut` or `mute` fault
    /// withholds it.
    async fn conclude(&self, read_at: Instant, mut frame: String, cut: bool, mute: bool) {
        if cut {
            self.drop_cut().await;
        } else if !mute {
            self.session.faults.garble(&mut frame);
            self.answer(read_at, frame).await;
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
        self.reply(Reply::Now(Outgoing::Drop)).await;
    }

    /// Counts a request and applies the rate limit and injected failures.
    fn admit(&self, id: &RequestId) -> Option<String> {
        if let Some(refusal) = self.admit_rate(Some(id.clone())) {
            return Some(refusal);
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

    /// Counts a request and applies the rate limit: the RATE_LIMITED answer when it is over.
    fn admit_rate(&self, id: Option<RequestId>) -> Option<String> {
        let now = self.service.core.state.clock().now();
        self.session.counters.record_request(now);
        if self.session.take_request_token(now) {
            return None;
        }
        self.session
            .counters
            .rate_limited
            .fetch_add(1, Ordering::Relaxed);
        Some(named_error_frame(
            id,
            ErrorName::RateLimited,
            "rate limit of requests per second exceeded",
        ))
    }

    /// Admits `text`, a frame that did not decode as a request, if it says it is one: every
    /// request counts toward the documented 100 a second, or a client could send malformed
    /// ones past the limit. Injected failures are left for requests that would take effect.
    fn admit_malformed(&self, text: &str, id: Option<&RequestId>) -> Option<String> {
        if is_request(text) {
            self.admit_rate(id.cloned())
        } else {
            None
        }
    }

    /// Runs one request and returns its answer, with the subscription it started, if any.
    async fn request(
        &self,
        id: RequestId,
        payload: &GraphQlRequest<'_>,
    ) -> (String, Option<Started>) {
        let document = match self.service.documents.parse(&payload.query) {
            Ok(doc) => doc,
            Err(error) => {
                let frame =
                    named_error_frame(Some(id), ErrorName::GraphQlExecError, error.to_string());
                return (frame, None);
            }
        };
        let variables = payload
            .variables
            .and_then(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).ok())
            .map(async_graphql::Variables::from_json)
            .unwrap_or_default();
        let operation_name = payload.operation_name.as_deref().map(str::to_owned);
        if selected_operation(&document, operation_name.as_deref()).map(|op| op.ty)
            == Some(OperationType::Subscription)
        {
            return self.subscribe(id, payload, document, variables).await;
        }
        let schema = match self
            .service
            .schema_for(&document, operation_name.as_deref())
        {
            Ok(schema) => schema,
            Err(refusal) => {
                let frame = named_error_frame(Some(id), ErrorName::GraphQlExecError, refusal);
                return (frame, None);
            }
        };
        let mut request = async_graphql::Request::new(payload.query.to_string())
            .variables(variables)
            .data(Caller::Socket(self.session.clone()))
            .data(LogBudget::default());
        if let Some(name) = operation_name {
            request = request.operation_name(name);
        }
        request.set_parsed_query(document);
        let response = schema.execute(request).await;
        (answer_frame(id, &response), None)
    }

    /// Starts a subscription: its ack and the subscription, inactive until the ack is queued.
    async fn subscribe(
        &self,
        id: RequestId,
        payload: &GraphQlRequest<'_>,
        document: ExecutableDocument,
        variables: async_graphql::Variables,
    ) -> (String, Option<Started>) {
        let max = self.service.core.limits.max_subscriptions;
        if self.session.subscriptions.lock().len() >= max {
            let frame = named_error_frame(
                Some(id),
                ErrorName::MaxSub,
                format!("a session can have at most {max} subscriptions"),
            );
            return (frame, None);
        }
        let refuse =
            |message| named_error_frame(Some(id.clone()), ErrorName::GraphQlSubStartError, message);
        let root = subscription_root(&document, payload.operation_name.as_deref());
        if let Root::Undecidable(message) = root {
            // graphql-js throws this out of its validation, ahead of any other error.
            return (refuse(message), None);
        }
        if let Some(refusal) = self.probe(&id, payload, &document, &variables).await {
            return (refusal, None);
        }
        // The root's count and merge errors come after the engine's, as graphql-js reports
        // them together in its validation, and before any variable is looked at.
        let rewritten = match root {
            Root::Refused(message) | Root::Undecidable(message) => {
                return (refuse(message), None);
            }
            Root::AsWritten => None,
            Root::Rewritten(rewritten) => Some(rewritten),
        };
        // After validation, as graphql-js checks the variables only to execute.
        if let Some(message) =
            missing_variable(&document, payload.operation_name.as_deref(), &variables)
        {
            return (refuse(message), None);
        }
        // A slot is taken only past this point.
        let document = match rewritten {
            None => document,
            Some(rewritten) => {
                // Validated again: the engine executes this one for every event.
                if let Some(refusal) = self.probe(&id, payload, &rewritten, &variables).await {
                    return (refusal, None);
                }
                rewritten
            }
        };
        let subscription_id = ids::random_token(11).to_ascii_lowercase();
        let key = ClassKey {
            query: payload.query.to_string(),
            variables: payload
                .variables
                .map(|v| v.get().to_owned())
                .unwrap_or_default(),
            operation_name: payload.operation_name.as_deref().map(str::to_owned),
        };
        let Some(class) = register(
            &self.service,
            &self.session,
            key,
            document,
            &subscription_id,
        ) else {
            let frame = named_error_frame(
                Some(id),
                ErrorName::GraphQlSubStartError,
                "the agent session has ended",
            );
            return (frame, None);
        };
        self.session
            .counters
            .subscriptions_started
            .fetch_add(1, Ordering::Relaxed);
        let ack = SubscriptionAck {
            id,
            subscription_id: subscription_id.as_str().into(),
        }
        .encode()
        .unwrap_or_default();
        let started = Started {
            class,
            id: subscription_id,
        };
        (ack, Some(started))
    }

    /// Runs `document` with no event, as the subscription's resolvers then check the session
    /// and yield nothing; the refusal frame when the engine or a resolver refuses it.
    async fn probe(
        &self,
        id: &RequestId,
        payload: &GraphQlRequest<'_>,
        document: &ExecutableDocument,
        variables: &async_graphql::Variables,
    ) -> Option<String> {
        let mut probe = async_graphql::Request::new(payload.query.to_string())
            .variables(variables.clone())
            .data(Caller::Socket(self.session.clone()))
            .data(EventSlot::new(None));
        if let Some(name) = &payload.operation_name {
            probe = probe.operation_name(name.to_string());
        }
        probe.set_parsed_query(document.clone());
        let response = self.service.schema.execute_stream(probe).next().await?;
        if !response.is_err() {
            return None;
        }
        let mut rendered = Rendered::from_engine(&response);
        for e in &mut rendered.errors {
            if e.name == ErrorName::GraphQlExecError {
                e.name = ErrorName::GraphQlSubStartError;
            }
        }
        Some(rendered.frame(id.clone()))
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

/// The frame answering request `id` with `response`, or a `GRAPHQL_EXEC_ERROR` alone when the
/// answer is past the emulator's bounds: one that ran out of log entries is not even
/// serialized, and one past [`MAX_ANSWER_BYTES`] is dropped before it is queued.
fn answer_frame(id: RequestId, response: &async_graphql::Response) -> String {
    if log_entries_spent(response) {
        return named_error_frame(Some(id), ErrorName::GraphQlExecError, LOG_ENTRIES_SPENT);
    }
    let rendered = Rendered::from_engine(response);
    if rendered.data.as_ref().map_or(0, |data| data.get().len()) > MAX_ANSWER_BYTES {
        let message = format!(
            "the answer would be larger than {MAX_ANSWER_BYTES} bytes, the most the emulator \
             sends in one answer: ask for fewer fields or page with first and after"
        );
        return named_error_frame(Some(id), ErrorName::GraphQlExecError, message);
    }
    rendered.frame(id)
}

/// Registers subscription `id` of `session` (inactive until [`Class::activate`]); `None` when
/// the session has ended meanwhile.
fn register(
    service: &Service,
    session: &Arc<Session>,
    key: ClassKey,
    document: ExecutableDocument,
    id: &str,
) -> Option<Arc<Class>> {
    let class = service.hub.add(key, document, id, session);
    session
        .subscriptions
        .lock()
        .insert(id.to_owned(), class.clone());
    // Ending a session drops its subscriptions once; one registered after that (the end came
    // while the request ran) would be kept by nobody and hold its class forever. The session
    // leaves the live sessions before its subscriptions are dropped, so one of the two sees
    // the other.
    let live = service
        .core
        .sessions
        .by_id(&session.id)
        .is_some_and(|live| Arc::ptr_eq(&live, session));
    if live && session.ended().is_none() {
        return Some(class);
    }
    let removed = session.subscriptions.lock().remove(id);
    if let Some(class) = removed {
        class.remove(id);
    }
    None
}

/// The `id` of a frame that did not decode, when it is a JSON object with one that is a
/// number or a string: its error answer can then be matched with it. One more pass over a
/// frame already bounded in size (serde_json skips the other fields without recursing).
fn id_of(text: &str) -> Option<RequestId> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<RequestId>,
    }
    // A struct would also be read from an array, whose first item is no id.
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return None;
    }
    serde_json::from_str::<IdOnly>(text).ok()?.id
}

/// Whether `text`, a frame that did not decode, says it is a request: a JSON object whose
/// `type` is `request` or `stop_subscription`. One more pass, as for [`id_of`].
fn is_request(text: &str) -> bool {
    #[derive(Deserialize)]
    struct TypeOnly<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
    }
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return false;
    }
    serde_json::from_str::<TypeOnly<'_>>(text)
        .ok()
        .and_then(|frame| frame.kind)
        .is_some_and(|kind| matches!(kind.as_ref(), "request" | "stop_subscription"))
}

/// The longest start of `reason` that fits a close frame, cut on a char boundary.
fn fit_close_reason(mut reason: String) -> String {
    if reason.len() > MAX_CLOSE_REASON {
        let mut end = MAX_CLOSE_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

enum Flow {
    Continue,
    Stop,
}

/// The socket's writer: owns the sink, and writes the reader's replies and the session's
/// frames in order, holding those queued behind an answer whose time has not come.
struct Writer {
    sink: Sink,
    cut: Arc<AtomicBool>,
    /// Frames waiting for the first one's time, in order.
    held: VecDeque<(Instant, Outgoing)>,
    /// How long one write may wait on the client before the connection is dropped.
    write_timeout: Duration,
}

impl Writer {
    async fn run(
        mut self,
        outbox: mpsc::Receiver<Outgoing>,
        replies: mpsc::Receiver<Reply>,
        closed: watch::Sender<bool>,
        shutdown: watch::Receiver<bool>,
        kill: Arc<Notify>,
    ) {
        let mut stop = shutdown;
        // Around the whole pump, not only beside its waits: a client that stops reading
        // leaves a write pending for good, and the socket must still end.
        tokio::select! {
            _ = stop.changed() => {}
            () = kill.notified() => {}
            () = self.pump(outbox, replies) => {}
        }
        let _ = closed.send(true);
    }

    async fn pump(
        &mut self,
        mut outbox: mpsc::Receiver<Outgoing>,
        mut replies: mpsc::Receiver<Reply>,
    ) {
        let mut outbox_open = true;
        let mut replies_open = true;
        loop {
            if !outbox_open && !replies_open && self.held.is_empty() {
                break;
            }
            let room = self.held.len() < HELD;
            let due = self.held.front().map(|(due, _)| *due);
            let flow = tokio::select! {
                biased;
                () = async {
                    match due {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => self.release().await,
                reply = replies.recv(), if replies_open && room => match reply {
                    Some(reply) => self.reply(reply).await,
                    None => {
                        replies_open = false;
                        Flow::Continue
                    }
                },
                out = outbox.recv(), if outbox_open && room => match out {
                    Some(out) => self.session_frame(out, &mut replies).await,
                    None => {
                        outbox_open = false;
                        Flow::Continue
                    }
                },
            };
            if let Flow::Stop = flow {
                break;
            }
            // Feed everything else already queued, then flush once: one syscall for a burst.
            if let Flow::Stop = self.drain(&mut outbox, &mut replies).await {
                break;
            }
            if !written(self.write_timeout, self.sink.flush()).await {
                break;
            }
        }
    }

    /// Takes what is queued without waiting, the reader's replies first.
    async fn drain(
        &mut self,
        outbox: &mut mpsc::Receiver<Outgoing>,
        replies: &mut mpsc::Receiver<Reply>,
    ) -> Flow {
        loop {
            if let Flow::Stop = self.release().await {
                return Flow::Stop;
            }
            if self.held.len() >= HELD {
                return Flow::Continue;
            }
            let flow = if let Ok(reply) = replies.try_recv() {
                self.reply(reply).await
            } else if let Ok(out) = outbox.try_recv() {
                self.session_frame(out, replies).await
            } else {
                return Flow::Continue;
            };
            if let Flow::Stop = flow {
                return Flow::Stop;
            }
        }
    }

    async fn reply(&mut self, reply: Reply) -> Flow {
        match reply {
            Reply::Now(out) => self.emit(out).await,
            Reply::At(due, out) => {
                if self.held.is_empty() && due <= Instant::now() {
                    self.emit(out).await
                } else {
                    self.held.push_back((due, out));
                    Flow::Continue
                }
            }
        }
    }

    /// Takes a frame of the session: a DATA frame, or a close, drop or stall of the control API.
    async fn session_frame(&mut self, out: Outgoing, replies: &mut mpsc::Receiver<Reply>) -> Flow {
        // A subscription's ack is queued before its DATA can be: taking the replies queued by
        // now first keeps the ack ahead across the two channels.
        while let Ok(reply) = replies.try_recv() {
            if let Flow::Stop = self.reply(reply).await {
                return Flow::Stop;
            }
        }
        match out {
            // Behind held answers, a subscription's ack among them.
            Outgoing::Text(_) | Outgoing::Counted(..) | Outgoing::Finish(..)
                if !self.held.is_empty() =>
            {
                self.held.push_back((Instant::now(), out));
                Flow::Continue
            }
            // The control API's faults act at once, as on the network.
            out => self.emit(out).await,
        }
    }

    /// Writes the held frames whose time has come, in order.
    async fn release(&mut self) -> Flow {
        if self.held.is_empty() {
            return Flow::Continue;
        }
        let now = Instant::now();
        while self.held.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, out)) = self.held.pop_front()
                && let Flow::Stop = self.emit(out).await
            {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// Feeds a text frame (flushed with its burst) or acts on another.
    async fn emit(&mut self, out: Outgoing) -> Flow {
        if self.cut.load(Ordering::Acquire) {
            // What was fed before the cut still goes out, as on a connection that dies.
            written(self.write_timeout, self.sink.flush()).await;
            return Flow::Stop;
        }
        match out {
            Outgoing::Text(text) => self.feed(text).await,
            Outgoing::Counted(text, bytes) => {
                let flow = self.feed(text).await;
                // Given back only once the frame is in the sink, whose own buffer the flush
                // after each burst bounds.
                drop(bytes);
                flow
            }
            other => {
                if !written(self.write_timeout, self.sink.flush()).await {
                    return Flow::Stop;
                }
                control(&mut self.sink, other, self.write_timeout).await
            }
        }
    }
}

impl Writer {
    async fn feed(&mut self, text: Utf8Bytes) -> Flow {
        if written(self.write_timeout, self.sink.feed(Message::Text(text))).await {
            Flow::Continue
        } else {
            Flow::Stop
        }
    }
}

/// Whether `write` succeeded within `limit`. A client that stops reading leaves a write
/// pending once the buffers between are full, and only a deadline ends it; the timer is armed
/// only for a write that does not complete at once, so the common path arms none.
async fn written<E>(limit: Duration, write: impl Future<Output = Result<(), E>>) -> bool {
    let mut write = std::pin::pin!(write);
    let first = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(result) => result.is_ok(),
        Poll::Pending => matches!(tokio::time::timeout(limit, write).await, Ok(Ok(()))),
    }
}

async fn control(sink: &mut Sink, out: Outgoing, write_timeout: Duration) -> Flow {
    match out {
        Outgoing::Text(_) | Outgoing::Counted(..) => Flow::Continue,
        Outgoing::Close(code, reason) | Outgoing::Finish(code, reason) => {
            let frame = CloseFrame {
                code: code.into(),
                reason: fit_close_reason(reason).into(),
            };
            written(write_timeout, sink.send(Message::Close(Some(frame)))).await;
            Flow::Stop
        }
        Outgoing::Drop => Flow::Stop,
        Outgoing::Stall(duration) => {
            tokio::time::sleep(duration).await;
            Flow::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::account::AccountConfig;
    use crate::chat::limits::{Limits, MAX_QUEUED_DATA_BYTES};
    use crate::chat::session::testing::{push, queued};
    use crate::clock::Clock;
    use crate::control::Control;
    use crate::realtime::{Realtime, RealtimeLimits, SubscribeAnswer};
    use crate::state::ChatState;

    const SUB: &str = "subscription { message { node { id } } }";

    /// A session of the account's first agent, allowed `requests_per_second`.
    fn agent_session(service: &Service, requests_per_second: Option<u32>) -> Arc<Session> {
        let agent = service.core.state.agents()[0].key.clone();
        service.core.sessions.start(&agent, requests_per_second)
    }

    fn service() -> (Service, watch::Sender<bool>) {
        let state = Arc::new(ChatState::new(&AccountConfig::demo(), Clock::new()));
        let (shutdown, rx) = watch::channel(false);
        (Service::new(state, Limits::documented(), rx), shutdown)
    }

    fn key() -> ClassKey {
        ClassKey {
            query: SUB.into(),
            variables: String::new(),
            operation_name: None,
        }
    }

    fn document() -> ExecutableDocument {
        async_graphql::parser::parse_query(SUB).unwrap()
    }

    /// The end of a session coming between a subscription's checks and its registration (as
    /// it may while the request runs on the socket's task) leaves nothing registered. The race
    /// itself is not reproducible on demand, so the test plays the order it produces.
    #[tokio::test]
    async fn a_subscription_registered_after_its_session_ended_is_undone() {
        let (service, _shutdown) = service();
        let session = agent_session(&service, None);
        assert!(register(&service, &session, key(), document(), "live").is_some());
        assert_eq!(service.hub.class_count(), 1);
        service.core.sessions.end(&session, "bye");
        assert_eq!(service.hub.class_count(), 0);

        assert!(register(&service, &session, key(), document(), "late").is_none());
        assert!(session.subscriptions.lock().is_empty());
        assert_eq!(service.hub.class_count(), 0);
    }

    /// The control API of `service`.
    fn control(service: &Service, shutdown: &watch::Sender<bool>) -> Control {
        let state = service.core.state.clone();
        let realtime = Realtime::new(
            state.clone(),
            RealtimeLimits::documented(),
            SubscribeAnswer::default(),
            shutdown.subscribe(),
        );
        Control {
            state,
            core: service.core.clone(),
            realtime,
        }
    }

    /// A socket on `session` whose upgrade has completed, as [`serve_upgraded`] has it just
    /// before the writer starts, and its outbox.
    fn upgraded(service: &Service, session: &Arc<Session>) -> (Attached, mpsc::Receiver<Outgoing>) {
        let mut attached = Attached::new(service, session.clone());
        let outbox = attached.attachment.upgraded().unwrap();
        (attached, outbox)
    }

    /// A socket on `session` as [`upgrade`] leaves it: attached, its 101 on the way, its
    /// upgrade not yet complete.
    fn upgrading(service: &Service, session: &Arc<Session>) -> Attached {
        Attached::new(service, session.clone())
    }

    /// Has the upgrade of `attached` fail, as it does when hyper does not upgrade the
    /// connection (an HTTP/1.0 request, a connection lost before the 101 went out).
    async fn fail_upgrade(service: &Service, attached: Attached) {
        let on_upgrade = hyper::upgrade::on(Request::new(Body::empty()));
        let config = WebSocketConfig::default();
        serve_upgraded(service.clone(), Some(attached), on_upgrade, config).await;
    }

    fn killed(attached: &Attached) -> bool {
        std::pin::pin!(attached.kill.notified()).enable()
    }

    /// The client of the socket a failed upgrade hands the session back to must not miss what
    /// was published, or asked of the session's socket, while the other one upgraded: that
    /// socket stays open, so its client could not tell.
    #[tokio::test]
    async fn a_failed_upgrade_hands_its_data_and_faults_to_the_socket_it_was_to_replace() {
        let (service, shutdown) = service();
        let control = control(&service, &shutdown);
        let session = agent_session(&service, None);
        let (s0, mut outbox) = upgraded(&service, &session);
        push(&session, "before");

        let s1 = upgrading(&service, &session);
        push(&session, "during 1");
        control.fault_stall(&session.id, 5).await.unwrap();
        push(&session, "during 2");
        control.fault_close(&session.id, 4000, "bye").await.unwrap();
        control.fault_drop(&session.id).await.unwrap();
        assert!(!killed(&s0));

        fail_upgrade(&service, s1).await;
        assert_eq!(
            queued(&mut outbox),
            [
                "before",
                "during 1",
                "Stall(5ms)",
                "during 2",
                "close 4000 bye"
            ]
        );
        assert!(killed(&s0), "the drop asked during the upgrade was lost");
        let counts = session.counters.snapshot();
        assert_eq!((counts.data_frames, counts.data_dropped), (3, 0));
        assert_eq!(counts.connections, 1);
        push(&session, "after");
        assert_eq!(queued(&mut outbox), ["after"]);
    }

    /// DATA queued for a session's first socket, whose upgrade fails, reached nobody.
    #[tokio::test]
    async fn data_queued_for_a_failed_upgrade_with_no_socket_to_take_over_counts_as_dropped() {
        let (service, _shutdown) = service();
        let session = agent_session(&service, None);
        let s0 = upgrading(&service, &session);
        push(&session, "one");
        push(&session, "two");
        fail_upgrade(&service, s0).await;
        assert!(!session.connected());
        let counts = session.counters.snapshot();
        assert_eq!((counts.data_frames, counts.data_dropped), (0, 2));
    }

    /// DATA queued for an upgrading socket that does not all fit in the queue of the socket
    /// taking over: what does not fit is dropped, and counted so, as when the fan-out finds a
    /// queue full.
    #[tokio::test]
    async fn data_handed_on_by_a_failed_upgrade_that_does_not_fit_counts_as_dropped() {
        let (service, _shutdown) = service();
        let session = agent_session(&service, None);
        let (_s0, mut outbox) = upgraded(&service, &session);
        for _ in 1..OUTBOX {
            push(&session, "old");
        }
        let s1 = upgrading(&service, &session);
        push(&session, "new 1");
        push(&session, "new 2");
        push(&session, "new 3");
        fail_upgrade(&service, s1).await;
        let counts = session.counters.snapshot();
        assert_eq!(counts.data_frames, OUTBOX as u64);
        assert_eq!(counts.data_dropped, 2);
        let frames = queued(&mut outbox);
        assert_eq!(frames.len(), OUTBOX);
        assert_eq!(frames.last().map(String::as_str), Some("new 1"));
    }

    /// The reader of a socket on `session` whose writer does not run, with what it queues
    /// for the writer.
    fn reader(
        service: &Service,
        session: &Arc<Session>,
    ) -> (
        Reader,
        mpsc::Receiver<Reply>,
        Attached,
        mpsc::Receiver<Outgoing>,
    ) {
        let (attached, outbox) = upgraded(service, session);
        let (replies, replies_rx) = mpsc::channel(REPLIES);
        let reader = Reader {
            service: service.clone(),
            session: session.clone(),
            replies,
            answer_bytes: Arc::new(Semaphore::new(MAX_QUEUED_ANSWER_BYTES)),
            pong_bytes: Arc::new(Semaphore::new(MAX_QUEUED_PONG_BYTES)),
            outbox: attached.outbox.clone(),
            cut: Arc::new(AtomicBool::new(false)),
            kill: attached.kill.clone(),
            deafness: attached.deafness.clone(),
        };
        (reader, replies_rx, attached, outbox)
    }

    /// The text of each answer queued in `replies`, as JSON.
    fn answers(replies: &mut mpsc::Receiver<Reply>) -> Vec<serde_json::Value> {
        std::iter::from_fn(|| replies.try_recv().ok())
            .filter_map(|reply| match reply {
                Reply::At(_, Outgoing::Text(text) | Outgoing::Counted(text, _))
                | Reply::Now(Outgoing::Text(text) | Outgoing::Counted(text, _)) => {
                    serde_json::from_str(text.as_str()).ok()
                }
                _ => None,
            })
            .collect()
    }

    /// Seed 000: "Requests: 100 requests per second. A request can be a GraphQL query,
    /// mutation …, subscription, or stop subscription". A request frame that does not decode
    /// is still one, and counts: sent past the limit, it is refused as the limit says.
    /// (Paused time: no request leaves the one-second window.)
    #[tokio::test(start_paused = true)]
    async fn malformed_requests_count_toward_the_rate_limit() {
        let (service, _shutdown) = service();
        let session = agent_session(&service, Some(100));
        let (reader, mut replies, _attached, _outbox) = reader(&service, &session);
        let now = Instant::now();
        for id in 0..40 {
            reader
                .handle(
                    &format!(r#"{{"type":"request","id":{id},"payload":{{}}}}"#),
                    now,
                )
                .await;
        }
        for id in 40..80 {
            reader
                .handle(&format!(r#"{{"type":"stop_subscription","id":{id}}}"#), now)
                .await;
        }
        for id in 80..100 {
            // Neither a request nor a PING to the decoder, a request by its type.
            let frame = format!(r#"{{"type":"request","sig":"DATA","id":{id}}}"#);
            reader.handle(&frame, now).await;
        }
        // Not requests: they do not count.
        reader.handle(r#"{"type":"hello","id":500}"#, now).await;
        reader.handle(r#"{"sig":"PING","payload":1}"#, now).await;
        let answered = answers(&mut replies);
        // The hundred, the unknown frame's error and the PONG.
        assert_eq!(answered.len(), 102);
        assert!(
            answered[..100]
                .iter()
                .all(|a| a["payload"]["errors"][0]["name"] == "GRAPHQL_EXEC_ERROR"),
            "{answered:?}"
        );

        let malformed = r#"{"type":"request","id":100,"payload":{}}"#;
        reader.handle(malformed, now).await;
        let query = r#"{"type":"request","id":101,"payload":{"query":"{ departments { edges { node { id } } } }"}}"#;
        reader.handle(query, now).await;
        let answered = answers(&mut replies);
        let refused: Vec<_> = answered
            .iter()
            .map(|a| (a["id"].clone(), a["payload"]["errors"][0]["name"].clone()))
            .collect();
        assert_eq!(
            refused,
            [
                (serde_json::json!(100), serde_json::json!("RATE_LIMITED")),
                (serde_json::json!(101), serde_json::json!("RATE_LIMITED")),
            ]
        );
        let counts = session.counters.snapshot();
        assert_eq!((counts.requests, counts.rate_limited), (102, 2));
    }

    const MIB: usize = 1024 * 1024;

    /// A socket whose client stops reading must not hold DATA without bound in bytes: frames
    /// of a megabyte would otherwise fill its room in frames, gigabytes. Past the budget, DATA
    /// is dropped and counted as past the room in frames; a frame written gives its bytes back.
    #[tokio::test]
    async fn data_past_the_byte_budget_of_a_socket_is_dropped_and_counted() {
        let (service, _shutdown) = service();
        let session = agent_session(&service, None);
        let (_attached, mut outbox) = upgraded(&service, &session);
        // One buffer shared by every frame: the budget counts what each frame would hold.
        let frame = Utf8Bytes::from("x".repeat(MIB));
        let fit = MAX_QUEUED_DATA_BYTES / MIB;
        for _ in 0..fit + 10 {
            session.push_data(|| Some(frame.clone()));
        }
        let counts = session.counters.snapshot();
        assert_eq!((counts.data_frames, counts.data_dropped), (fit as u64, 10));

        let first = outbox.try_recv().unwrap();
        session.push_data(|| Some(frame.clone()));
        assert_eq!(session.counters.snapshot().data_dropped, 11, "no room yet");
        drop(first);
        session.push_data(|| Some(frame.clone()));
        let counts = session.counters.snapshot();
        assert_eq!(
            (counts.data_frames, counts.data_dropped),
            (fit as u64 + 1, 11)
        );
        assert_eq!(queued(&mut outbox).len(), fit);
    }

    /// Answers past the byte budget are not dropped: the reader waits for the writer to write
    /// those before them, as it waits for room in frames.
    #[tokio::test]
    async fn answers_past_the_byte_budget_of_a_socket_make_the_reader_wait() {
        let (service, _shutdown) = service();
        let session = agent_session(&service, None);
        let (reader, mut replies, _attached, _outbox) = reader(&service, &session);
        let answer = "x".repeat(16 * MIB);
        let now = Instant::now();
        let fit = MAX_QUEUED_ANSWER_BYTES / answer.len();
        for _ in 0..fit {
            reader.answer(now, answer.clone()).await;
        }
        let mut next = std::pin::pin!(reader.answer(now, answer.clone()));
        assert!(
            futures_util::poll!(next.as_mut()).is_pending(),
            "an answer past the budget was queued"
        );
        // The writer takes one and writes it: its bytes are free again.
        drop(replies.try_recv().unwrap());
        assert!(futures_util::poll!(next.as_mut()).is_ready());
        assert_eq!(std::iter::from_fn(|| replies.try_recv().ok()).count(), fit);
    }

    /// PONGs hold a budget of their own: PINGs are not rate-limited and each PONG echoes its
    /// PING's payload, so past it the reader waits for the writer as it does for answers.
    #[tokio::test]
    async fn pongs_past_their_byte_budget_make_the_reader_wait() {
        let (service, _shutdown) = service();
        let session = agent_session(&service, None);
        let (reader, mut replies, _attached, _outbox) = reader(&service, &session);
        let payload = "x".repeat(200 * 1024);
        let ping = serde_json::json!({ "sig": "PING", "payload": payload }).to_string();
        let pong_len = serde_json::json!({ "sig": "PONG", "payload": payload })
            .to_string()
            .len();
        let now = Instant::now();
        let fit = MAX_QUEUED_PONG_BYTES / pong_len;
        for _ in 0..fit {
            reader.handle(&ping, now).await;
        }
        let mut next = std::pin::pin!(reader.handle(&ping, now));
        assert!(
            futures_util::poll!(next.as_mut()).is_pending(),
            "a PONG past the budget was queued"
        );
        drop(replies.try_recv().unwrap());
        assert!(futures_util::poll!(next.as_mut()).is_ready());
        assert_eq!(std::iter::from_fn(|| replies.try_recv().ok()).count(), fit);
    }

    #[test]
    fn close_reasons_are_cut_on_a_char_boundary() {
        assert_eq!(fit_close_reason("bye".into()), "bye");
        let exact = "a".repeat(123);
        assert_eq!(fit_close_reason(exact.clone()), exact);
        assert_eq!(fit_close_reason("a".repeat(200)), exact);
        // 61 two-byte chars are 122 bytes; the 62nd would end past 123.
        assert_eq!(fit_close_reason("é".repeat(100)), "é".repeat(61));
    }

    #[test]
    fn the_id_of_a_frame_that_does_not_decode() {
        let id = |text: &str| id_of(text).map(|id| id.to_string());
        assert_eq!(
            id(r#"{"type":"request","id":42,"payload":"x"}"#).as_deref(),
            Some("42")
        );
        assert_eq!(id(r#"{"id":"a","x":[[[]]]}"#).as_deref(), Some(r#""a""#));
        assert_eq!(id(r#"{"id":{"n":1}}"#), None);
        assert_eq!(id(r#"{"id":1,"id":2}"#), None);
        assert_eq!(id(r#"{"id":1"#), None);
        assert_eq!(id("[1]"), None);
        // Nesting past the decoder's bound: what is not the id is skipped without recursion.
        let deep = format!(
            "{{\"id\":1,\"x\":{}{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_eq!(id(&deep).as_deref(), Some("1"));
    }
}
