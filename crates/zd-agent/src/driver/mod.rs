//! The driver: the one task that owns the socket.
//!
//! Every request, subscription and PING goes out from here and every frame comes in here, so
//! correlation, routing, keepalive and recovery need no locks. The handle talks to it over a
//! bounded command channel.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tracing::Instrument;
use zd_wire::DecodeLimits;

use crate::deadlines::Deadlines;
use crate::error::{Error, ErrorKind};
use crate::fast_hash::FastMap;
use crate::ops::AgentStatus;
use crate::rate_limit::RequestLimiter;
use crate::session::Shared;
use crate::state::{LifecycleEvent, SessionState};
use crate::subscription::{Ending, Handover, SubEvent};
use crate::transport::{Socket, Started};

mod answers;
mod commands;
mod delivery;
mod inbound;
mod keepalive;
mod lifecycle;
mod meanwhile;
mod outbox;
mod read_ready;
mod recovery;
mod status_restore;
mod subscriptions;
mod timeouts;

use read_ready::ReadReady;

/// How a request may be repeated after its socket died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Safe to send again (queries, `sendMessage` with its msg_id, status and tag updates).
    Resend,
    /// Fail it with a retryable error instead.
    Fail,
}

/// A GraphQL request ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Payload {
    pub(crate) query: QueryText,
    pub(crate) variables: Option<Arc<RawValue>>,
    /// `operationName` as a JSON string literal, for a document of several operations.
    pub(crate) operation_json: Option<Arc<str>>,
}

/// A GraphQL document with its JSON string literal, escaped once: typed operations share one
/// per operation, so a request frame is a few copies instead of a serializer pass over the text.
#[derive(Debug, Clone)]
pub(crate) struct QueryText {
    pub(crate) text: Arc<str>,
    json: Arc<str>,
}

impl QueryText {
    pub(crate) fn new(text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        // Escaping a `str` cannot fail; the fallback only keeps this total.
        let json = serde_json::to_string(&*text).unwrap_or_else(|_| String::from("\"\""));
        Self {
            text,
            json: Arc::from(json),
        }
    }
}

/// The answer to a request: the text of its `data` object. Only its outline may have been
/// checked (see [`split_response`](zd_wire::chat::split_response)): the caller's parse validates it.
pub(crate) type Answer = Result<Option<Box<str>>, Error>;

/// What the handle asks of the driver.
#[derive(Debug)]
pub(crate) enum Command {
    Request(RequestCommand),
    Subscribe {
        payload: Payload,
        catch_up: Option<Payload>,
        tx: mpsc::Sender<SubEvent>,
        ending: Arc<Ending>,
        reply: oneshot::Sender<Result<Handover, Error>>,
    },
    /// The next EOS is the one `stopAgentSession` asked for: close instead of restarting.
    Stopping,
    /// Close the socket and end.
    Shutdown,
}

/// A request for the driver to send, and where its answer goes.
#[derive(Debug)]
pub(crate) struct RequestCommand {
    pub(crate) payload: Payload,
    pub(crate) replay: Replay,
    /// The agent status this request sets, kept for restores once it succeeds.
    pub(crate) status: Option<AgentStatus>,
    pub(crate) reply: oneshot::Sender<Answer>,
}

#[derive(Debug)]
enum Pending {
    Request {
        payload: Payload,
        replay: Replay,
        status: Option<AgentStatus>,
        reply: oneshot::Sender<Answer>,
        resends: usize,
        sent: bool,
    },
    SubStart {
        key: u64,
    },
    SubStop {
        server_id: String,
        /// Earlier tries that failed with an error worth retrying.
        tries: u32,
    },
    StatusRestore {
        /// Earlier tries that failed with an error worth retrying.
        tries: u32,
    },
    CatchUp {
        key: u64,
    },
}

#[derive(Debug)]
struct Sub {
    payload: Payload,
    /// A query for what the subscription may have missed while no socket was up.
    catch_up: Option<Payload>,
    tx: mpsc::Sender<SubEvent>,
    /// Where the error that ends the subscription goes (see [`Sub::end`]).
    ending: Arc<Ending>,
    server_id: Option<String>,
    ack: Option<oneshot::Sender<Result<Handover, Error>>>,
    start_tries: usize,
    first_try: Instant,
    backoff: Option<backon::ExponentialBackoff>,
    /// The socket was replaced since the subscriber last heard from the session: a
    /// [`SubEvent::Gap`] goes ahead of its next event, so it knows which items came before.
    gap: bool,
    /// Catch-ups in a row the service refused with errors no retry changes.
    catch_up_refusals: u8,
    /// Catch-ups in a row whose socket died before their answer.
    catch_up_losses: u8,
    /// The next start answered on a resumed socket runs no catch-up: the last one was given up.
    skip_catch_up: bool,
    /// Starts of a restored subscription in a row that went unanswered.
    unanswered: u8,
}

impl Sub {
    /// Ends the subscription with `e`: its caller's start fails, or its stream yields `e` after
    /// what its buffer holds (never lost to a full buffer), then ends once this `Sub` is
    /// dropped. Events the driver still held back for that full buffer are dropped with it.
    fn end(&mut self, e: Error) {
        match self.ack.take() {
            Some(ack) => {
                let _ = ack.send(Err(e));
            }
            None => self.ending.set(e),
        }
    }
}

/// Why the socket is gone.
#[derive(Debug, Clone)]
struct Cause {
    /// What happened; the error that made it happen, if any, is `source`.
    text: String,
    /// Kept as an error (not text) for the requests that fail with the socket.
    source: Option<SharedError>,
    restart: bool,
    fatal: Option<ErrorKind>,
    /// A frame larger than `max_frame_bytes` killed the socket.
    too_big: bool,
}

impl Cause {
    fn lost(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            source: None,
            restart: false,
            fatal: None,
            too_big: false,
        }
    }

    /// The socket went because of `source` while the driver was doing `what`.
    fn failed(what: &str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            source: Some(Arc::new(source)),
            ..Self::lost(what)
        }
    }

    /// The error of a request lost with the socket: this cause is its source.
    fn connection_lost(&self) -> Error {
        Error::with_source(
            ErrorKind::ConnectionLost,
            SocketLost {
                what: self.text.clone(),
                source: self.source.clone(),
            },
        )
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)?;
        match &self.source {
            Some(source) => write!(f, ": {source}"),
            None => Ok(()),
        }
    }
}

/// An error shared by every request that fails with one socket.
type SharedError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why the socket of a request lost with it went: the source of its
/// [`ErrorKind::ConnectionLost`].
#[derive(Debug)]
struct SocketLost {
    what: String,
    source: Option<SharedError>,
}

impl std::fmt::Display for SocketLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for SocketLost {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The future that runs a session: spawn it (`tokio::spawn(driver)`), or await it next to your
/// own work. It ends when the session closes or every handle is dropped.
#[must_use = "the session does nothing unless its driver runs"]
pub struct Driver {
    run: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.run.as_mut().poll(cx)
    }
}

pub(crate) struct DriverInner {
    shared: Arc<Shared>,
    cmd_rx: mpsc::Receiver<Command>,
    drop_rx: mpsc::UnboundedReceiver<u64>,
    socket: Option<Socket>,
    /// Whether the socket may have something to read: polled only then.
    readable: ReadReady,
    started: Started,
    limiter: Option<RequestLimiter>,
    limits: DecodeLimits,
    next_id: u64,
    next_key: u64,
    pending: FastMap<u64, Pending>,
    /// When each request of `pending` fails if still unanswered.
    deadlines: Deadlines,
    /// Commands taken in while the driver waited outside its loop, for the loop to run.
    held: VecDeque<Command>,
    /// Every handle was dropped while the driver waited outside its loop.
    handles_gone: bool,
    subs: BTreeMap<u64, Sub>,
    routes: FastMap<String, u64>,
    outbox: VecDeque<u64>,
    /// Subscription starts waiting for their retry time.
    timers: Vec<(Instant, u64)>,
    agent_status: Option<AgentStatus>,
    stopping: bool,
    /// The socket resumed a session an earlier socket served (not a new session).
    resumed: bool,
    /// Set when the session must be replaced by a new one, with why.
    restart_for: Option<String>,
    /// Events for subscribers whose buffer was full when they came, with the key.
    undelivered: Vec<(u64, SubEvent)>,
    /// When the oldest PING not followed by any frame was sent: the keepalive deadline runs
    /// from there. Any frame clears it, which costs less than reading the clock per frame.
    ping_out: Option<Instant>,
    ping_seq: u64,
    /// When PINGs go out: a field, not a local of the loop, so that a wait on a slow
    /// subscriber keeps pinging too (see `meanwhile`).
    keepalive: tokio::time::Interval,
    /// The tries of a status restore a caller's own status request replaced: owed again if
    /// that request sets nothing (fails, times out, is dropped).
    superseded_restore: Option<u32>,
}

impl std::fmt::Debug for DriverInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverInner").finish_non_exhaustive()
    }
}

/// What a driver takes over from an earlier owner of the session (see
/// [`crate::AgentSession::resume`]); empty for a session started from scratch.
#[derive(Debug, Default)]
pub(crate) struct Inherited {
    /// The status to keep restoring after restarts.
    pub(crate) agent_status: Option<AgentStatus>,
    /// The session is new, so `agent_status` must be set on it first.
    pub(crate) restore_status: bool,
    /// Server ids of the earlier owner's subscriptions on this same session. Nobody can read
    /// them any more, so they are stopped; the new owner subscribes afresh.
    pub(crate) orphaned_subscriptions: Vec<String>,
}

impl Driver {
    pub(crate) fn new(
        shared: Arc<Shared>,
        cmd_rx: mpsc::Receiver<Command>,
        drop_rx: mpsc::UnboundedReceiver<u64>,
        socket: Socket,
        started: Started,
        inherited: Inherited,
    ) -> Self {
        let limiter = shared.config.requests_per_second.map(RequestLimiter::new);
        let limits = DecodeLimits::new().with_max_frame_bytes(shared.config.max_frame_bytes);
        let span = tracing::info_span!("zd_agent.session", session_id = %started.session_id);
        let mut keepalive = tokio::time::interval(shared.config.keepalive_interval);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut inner = DriverInner {
            shared,
            cmd_rx,
            drop_rx,
            socket: Some(socket),
            readable: ReadReady::new(),
            started,
            limiter,
            limits,
            next_id: 1,
            next_key: 1,
            pending: FastMap::default(),
            deadlines: Deadlines::default(),
            held: VecDeque::new(),
            handles_gone: false,
            subs: BTreeMap::new(),
            routes: FastMap::default(),
            outbox: VecDeque::new(),
            timers: Vec::new(),
            agent_status: inherited.agent_status,
            stopping: false,
            resumed: false,
            restart_for: None,
            undelivered: Vec::new(),
            ping_out: None,
            ping_seq: 0,
            keepalive,
            superseded_restore: None,
        };
        if inherited.restore_status && inner.agent_status.is_some() {
            inner.queue_restore(0, Duration::ZERO);
        }
        for server_id in inherited.orphaned_subscriptions {
            inner.queue_stop(server_id);
        }
        // Published here, not when the driver first runs, so the handle sees an active
        // session with its facts as soon as `connect` returns.
        inner.publish_facts();
        inner.set_state(SessionState::Active);
        inner.emit(LifecycleEvent::Connected {
            session_id: inner.started.session_id.clone(),
        });
        Self {
            run: Box::pin(inner.run().instrument(span)),
        }
    }
}

enum Step {
    Frame(Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>),
    Command(Option<Command>),
    Dropped(Option<u64>),
    SendReady,
    Tick,
    Timer,
}

impl DriverInner {
    async fn run(mut self) {
        // The period counts from when the driver runs, not from `connect`.
        self.keepalive.reset();
        // One timer for the subscription-start retries and the request deadlines, re-armed
        // only for an earlier time: a later one waits until it fires (at most once per request
        // timeout for nothing). Re-arming a `Sleep` costs a trip through the timer driver's
        // lock, and the earliest deadline moves with every answer.
        let wake = tokio::time::sleep_until(Instant::now());
        tokio::pin!(wake);
        let mut wake_at: Option<Instant> = None;
        loop {
            if self.socket.is_none() {
                let cause = Cause::lost("socket closed");
                if let Err(e) = self.recover(cause).await {
                    self.close(&e);
                    return;
                }
                self.keepalive.reset();
            }
            let step = if let Some(cmd) = self.held.pop_front() {
                Step::Command(Some(cmd))
            } else {
                if let Some(at) = self.next_wake()
                    && wake_at.is_none_or(|armed| at < armed)
                {
                    wake.as_mut().reset(at);
                    wake_at = Some(at);
                }
                let Some(socket) = self.socket.as_mut() else {
                    continue;
                };
                let can_send = !self.outbox.is_empty();
                let limiter = self.limiter.as_ref();
                let readable = &self.readable;
                let keepalive = &mut self.keepalive;
                tokio::select! {
                    biased;
                    frame = std::future::poll_fn(|cx| readable.poll_next(socket, cx)) => Step::Frame(frame),
                    cmd = self.cmd_rx.recv() => Step::Command(cmd),
                    key = self.drop_rx.recv() => Step::Dropped(key),
                    () = async { if let Some(l) = limiter { l.acquire().await } }, if can_send => Step::SendReady,
                    _ = keepalive.tick() => Step::Tick,
                    () = wake.as_mut(), if wake_at.is_some() => Step::Timer,
                }
            };
            let outcome = match step {
                Step::Frame(Some(Ok(msg))) => self.on_message(msg).await,
                Step::Frame(Some(Err(e))) => {
                    let too_big = matches!(e, tokio_tungstenite::tungstenite::Error::Capacity(_));
                    let mut cause = Cause::failed("socket error", e);
                    cause.too_big = too_big;
                    Err(cause)
                }
                Step::Frame(None) => Err(Cause::lost("socket closed")),
                Step::Command(Some(cmd)) => {
                    self.on_command(cmd).await;
                    if self.stopping && self.socket.is_none() {
                        self.close(&Error::closed("stopped"));
                        return;
                    }
                    Ok(())
                }
                Step::Command(None) => {
                    // Every handle is gone: nobody can use the session any more.
                    self.shutdown_socket().await;
                    self.close(&Error::closed("every handle was dropped"));
                    return;
                }
                Step::Dropped(Some(key)) => {
                    self.unsubscribe(key);
                    Ok(())
                }
                Step::Dropped(None) => Ok(()),
                Step::SendReady => self.send_next().await,
                Step::Tick => self.on_tick().await,
                Step::Timer => {
                    wake_at = None;
                    self.fire_timers()
                }
            };
            let outcome = match (outcome, self.restart_for.take()) {
                (Ok(()), Some(text)) => Err(Cause {
                    restart: true,
                    ..Cause::lost(text)
                }),
                (outcome, _) => outcome,
            };
            match outcome {
                Ok(()) => {}
                Err(cause) if self.stopping => {
                    tracing::debug!(%cause, "session stopped");
                    self.socket = None;
                    self.close(&Error::closed("stopped"));
                    return;
                }
                Err(cause) => {
                    self.socket = None;
                    if let Err(e) = self.recover(cause).await {
                        self.close(&e);
                        return;
                    }
                    self.keepalive.reset();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
