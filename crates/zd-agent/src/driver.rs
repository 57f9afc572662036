//! The driver: the one task that owns the socket.
//!
//! Every request, subscription and PING goes out from here and every frame comes in here, so
//! correlation, routing, keepalive and recovery need no locks. The handle talks to it over a
//! bounded command channel.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use futures_util::{SinkExt, StreamExt};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tracing::Instrument;
use zd_wire::DecodeLimits;
use zd_wire::chat::{
    ErrorName, ErrorPayload, Ping, ServerFrame, StopSubscription, split_data, split_response,
};

use crate::config::OnConcurrentSession;
use crate::deadlines::Deadlines;
use crate::error::{
    CatchUpRefused, Error, ErrorKind, ServiceError, excerpt, names_documented, status_retryable,
};
use crate::fast_hash::FastMap;
use crate::ops::AgentStatus;
use crate::rate_limit::RequestLimiter;
use crate::retry::RetryClass;
use crate::session::{Shared, StartWait};
use crate::state::{LifecycleEvent, SessionState, SubscriptionFacts};
use crate::subscription::SubEvent;
use crate::transport::{Socket, Started, close_within};

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
/// checked (see [`split_response`]): the caller's parse validates it.
pub(crate) type Answer = Result<Option<Box<str>>, Error>;

/// What the handle asks of the driver.
#[derive(Debug)]
pub(crate) enum Command {
    Request(RequestCommand),
    Subscribe {
        payload: Payload,
        catch_up: Option<Payload>,
        tx: mpsc::Sender<SubEvent>,
        reply: oneshot::Sender<Result<u64, Error>>,
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
    server_id: Option<String>,
    ack: Option<oneshot::Sender<Result<u64, Error>>>,
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

/// Refused catch-ups in a row after which a subscription stops sending its catch-up: a query
/// the service cannot run (it selects fields the reference only infers) comes back the same
/// after every gap, while one execution failure between good ones is a hiccup.
const CATCH_UP_REFUSALS: u8 = 3;

/// Catch-ups in a row lost with their socket after which the gap's catch-up is given up: an
/// answer that kills the socket every time (one larger than `max_frame_bytes`) would otherwise
/// reconnect for ever.
const CATCH_UP_LOSSES: u8 = 2;

/// Tries of a restored subscription's start that the service leaves unanswered before the
/// subscriber is told [`ErrorKind::Timeout`].
const RESTART_TRIES: u8 = 3;

/// Most tries of a status restore that keeps failing with an error worth retrying.
const RESTORE_TRIES: u32 = 8;

/// Why the socket is gone.
#[derive(Debug, Clone)]
struct Cause {
    text: String,
    restart: bool,
    fatal: Option<ErrorKind>,
    /// A frame larger than `max_frame_bytes` killed the socket.
    too_big: bool,
}

impl Cause {
    fn lost(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            restart: false,
            fatal: None,
            too_big: false,
        }
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

/// Remembers whether the socket was woken since it last had nothing to read.
///
/// Every pass of the driver loop would otherwise poll the WebSocket, and each poll of an idle
/// socket costs tungstenite a zero-fill of its read buffer and a `WouldBlock` round trip; a
/// message makes the loop turn several times (frame, command, send), so most of those polls
/// were wasted. The socket is polled with a waker that raises this flag, and only while it is up.
#[derive(Debug)]
struct ReadReady {
    flag: Arc<ReadFlag>,
    waker: Waker,
}

#[derive(Debug, Default)]
struct ReadFlag {
    ready: AtomicBool,
    task: AtomicWaker,
}

impl Wake for ReadFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl ReadReady {
    fn new() -> Self {
        let flag = Arc::new(ReadFlag {
            ready: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(Arc::clone(&flag));
        Self { flag, waker }
    }

    /// A new socket has not been polled yet.
    fn set(&self) {
        self.flag.ready.store(true, Ordering::Release);
    }

    /// Polls the socket with the flag's waker if the flag is up, else only registers `cx` for
    /// its next wake. After a frame the flag stays up: more may be buffered already, and only a
    /// `Pending` poll of the socket registers for the next wake.
    fn poll_next(
        &self,
        socket: &mut Socket,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>> {
        self.flag.task.register(cx.waker());
        // Lowered before the poll: a wake while polling raises it again.
        if !self.flag.ready.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let mut inner = Context::from_waker(&self.waker);
        let polled = socket.poll_next_unpin(&mut inner);
        if polled.is_ready() {
            self.set();
        }
        polled
    }
}

/// The subscription key of routes whose subscriber is gone (keys count from 1): their DATA is
/// dropped until the stop is answered.
const NO_SUB: u64 = 0;

/// Live subscriptions the service allows one session.
const SERVICE_SUBSCRIPTIONS: usize = 10;

/// Most tries of a `stop_subscription` that keeps failing with an error worth retrying.
const STOP_TRIES: u32 = 5;

/// Commands other than requests held while the driver waits outside its loop; past this many,
/// further commands wait in the channel.
const HELD_COMMANDS: usize = 64;

type SinkPoll =
    fn(&mut Socket, &mut Context<'_>) -> Poll<Result<(), tokio_tungstenite::tungstenite::Error>>;

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
        let mut keepalive = tokio::time::interval(self.shared.config.keepalive_interval);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        keepalive.reset();
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
                keepalive.reset();
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
                    let mut cause = Cause::lost(format!("socket error: {e}"));
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
                    tracing::debug!(cause = %cause.text, "session stopped");
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
                    keepalive.reset();
                }
            }
        }
    }

    fn set_state(&self, state: SessionState) {
        self.shared.state.send_replace(state);
    }

    fn emit(&self, event: LifecycleEvent) {
        tracing::info!(?event, "lifecycle");
        // No receiver is fine: lifecycle events are for whoever listens.
        let _ = self.shared.lifecycle.send(event);
    }

    fn publish_facts(&self) {
        let mut facts = self.shared.lock_facts();
        facts.websocket_url = Some(self.started.websocket_url.clone());
        facts.session_id = Some(self.started.session_id.clone());
        facts.client_id = Some(self.started.client_id.clone());
        facts.agent_status = self.agent_status;
        facts.subscriptions = self
            .subs
            .iter()
            .map(|(key, s)| SubscriptionFacts {
                key: *key,
                query: s.payload.query.text.to_string(),
                variables: s.payload.variables.as_ref().map(|v| v.get().to_owned()),
                server_id: s.server_id.clone(),
            })
            .collect();
    }

    fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn queue(&mut self, pending: Pending) -> u64 {
        let id = self.new_id();
        self.pending.insert(id, pending);
        self.outbox.push_back(id);
        id
    }

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Request(request) => self.take_request(request),
            Command::Subscribe {
                payload,
                catch_up,
                tx,
                reply,
            } => {
                // The select takes commands before drops, so a subscription dropped just
                // before this call may still be counted: its slot is free to the caller.
                while let Ok(key) = self.drop_rx.try_recv() {
                    self.unsubscribe(key);
                }
                if self.subs.len() >= self.shared.config.max_subscriptions {
                    let _ = reply.send(Err(Error::new(ErrorKind::TooManySubscriptions)));
                    return;
                }
                let key = self.next_key;
                self.next_key += 1;
                self.subs.insert(
                    key,
                    Sub {
                        payload,
                        catch_up,
                        tx,
                        server_id: None,
                        ack: Some(reply),
                        start_tries: 1,
                        first_try: Instant::now(),
                        backoff: None,
                        gap: false,
                        catch_up_refusals: 0,
                        catch_up_losses: 0,
                        skip_catch_up: false,
                        unanswered: 0,
                    },
                );
                let id = self.queue(Pending::SubStart { key });
                self.start_deadline(id, key, Duration::ZERO);
            }
            Command::Stopping => self.stopping = true,
            Command::Shutdown => {
                self.stopping = true;
                self.shutdown_socket().await;
            }
        }
    }

    fn take_request(&mut self, request: RequestCommand) {
        let RequestCommand {
            payload,
            replay,
            status,
            reply,
        } = request;
        if status.is_some() {
            // The caller's status is newer than the one a restore would set again; a retried
            // restore sent after it would undo it. Owed again if this request sets nothing.
            let mut superseded = None;
            self.pending.retain(|_, p| match p {
                Pending::StatusRestore { tries } => {
                    superseded = Some(*tries);
                    false
                }
                _ => true,
            });
            if superseded.is_some() {
                self.superseded_restore = superseded;
            }
        }
        let id = self.queue(Pending::Request {
            payload,
            replay,
            status,
            reply,
            resends: 0,
            sent: false,
        });
        self.timeout_from_now(id);
    }

    /// A command that came while the driver waited outside its loop: requests are queued now
    /// (their deadlines start), and `Stopping` holds at once (the EOS that answers the stop
    /// request queued behind it must not restart the session); the rest wait for the loop.
    fn take_in(&mut self, cmd: Command) {
        match cmd {
            Command::Request(request) => self.take_request(request),
            Command::Stopping => self.stopping = true,
            other => self.held.push_back(other),
        }
    }

    /// Waits for `step` outside the loop (a reconnect, a full subscriber, a blocked write),
    /// doing meanwhile what the loop cannot: requests whose time is up fail on time, and new
    /// commands are taken in. A step that is done at once costs no timer.
    async fn meanwhile<T>(
        &mut self,
        mut step: impl FnMut(&mut Self, &mut Context<'_>) -> Poll<T>,
    ) -> T {
        let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
        std::future::poll_fn(|cx| {
            loop {
                if let Poll::Ready(out) = step(&mut *self, cx) {
                    return Poll::Ready(out);
                }
                let mut progress = false;
                if !self.handles_gone && self.held.len() < HELD_COMMANDS {
                    match self.cmd_rx.poll_recv(cx) {
                        Poll::Ready(Some(cmd)) => {
                            self.take_in(cmd);
                            progress = true;
                        }
                        // The step may end early for this (see `pause`); else the loop finds
                        // the channel closed too, once the step is done.
                        Poll::Ready(None) => {
                            self.handles_gone = true;
                            progress = true;
                        }
                        Poll::Pending => {}
                    }
                }
                if let Some(at) = self.deadlines.earliest() {
                    let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                    if timer.deadline() != at {
                        timer.as_mut().reset(at);
                    }
                    if timer.as_mut().poll(cx).is_ready() {
                        // At least `at`: the front always leaves, so this loop moves on.
                        self.expire_requests(Instant::now().max(at));
                        progress = true;
                    }
                }
                if !progress {
                    return Poll::Pending;
                }
            }
        })
        .await
    }

    /// A recovery's wait between attempts; `Err` when every handle is dropped meanwhile (nobody
    /// could use the session, so recovering it is pointless).
    async fn pause(&mut self, delay: Duration) -> Result<(), Error> {
        let mut sleep = std::pin::pin!(tokio::time::sleep(delay));
        self.meanwhile(|driver, cx| {
            if driver.handles_gone {
                return Poll::Ready(Err(Error::closed("every handle was dropped")));
            }
            sleep.as_mut().poll(cx).map(Ok)
        })
        .await
    }

    /// [`DriverInner::meanwhile`] for a future that does not borrow the driver.
    async fn meanwhile_future<F: Future>(&mut self, step: F) -> F::Output {
        let mut step = std::pin::pin!(step);
        self.meanwhile(|_, cx| step.as_mut().poll(cx)).await
    }

    /// Waits for the socket's sink to be ready (`poll_ready`) or flushed (`poll_flush`).
    ///
    /// A write that cannot go on for the keepalive deadline counts the socket dead: the peer
    /// reads nothing, and while the driver waits here its keepalive cannot notice.
    async fn on_socket(&mut self, poll: SinkPoll) -> Result<(), Cause> {
        let limit = self.shared.config.keepalive_deadline;
        // Armed only once the write waits: one done at once costs no timer.
        let mut stalled: Option<Pin<Box<tokio::time::Sleep>>> = None;
        self.meanwhile(|driver, cx| {
            let Some(socket) = driver.socket.as_mut() else {
                return Poll::Ready(Err(Cause::lost("no socket")));
            };
            if let Poll::Ready(done) = poll(socket, cx) {
                return Poll::Ready(done.map_err(|e| Cause::lost(format!("write failed: {e}"))));
            }
            let timer = stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
            timer.as_mut().poll(cx).map(|()| {
                Err(Cause::lost(
                    "a write waited longer than the keepalive deadline: the peer reads nothing",
                ))
            })
        })
        .await
    }

    /// Hands one frame to the socket (sent at the next flush).
    async fn feed(&mut self, text: String) -> Result<(), Cause> {
        self.on_socket(|socket, cx| socket.poll_ready_unpin(cx))
            .await?;
        let Some(socket) = self.socket.as_mut() else {
            return Err(Cause::lost("no socket"));
        };
        socket
            .start_send_unpin(WsMessage::text(text))
            .map_err(|e| Cause::lost(format!("write failed: {e}")))
    }

    async fn flush(&mut self) -> Result<(), Cause> {
        self.on_socket(|socket, cx| socket.poll_flush_unpin(cx))
            .await
    }

    fn next_wake(&self) -> Option<Instant> {
        let retry = self.timers.iter().map(|(t, _)| *t).min();
        let at = match (retry, self.deadlines.earliest()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Only between a PING and the next frame: the silence check needs no wake otherwise.
        match self.ping_out {
            Some(sent) => {
                let silence = sent + self.shared.config.keepalive_deadline;
                Some(at.map_or(silence, |at| at.min(silence)))
            }
            None => at,
        }
    }

    /// Whether a PING went unanswered, and nothing else came, for the keepalive deadline.
    ///
    /// Measured from the PING, not from the last frame: an idle socket hears nothing between
    /// PINGs, so with a PING period longer than the deadline the last frame is always older.
    fn silent_too_long(&self, now: Instant) -> bool {
        self.ping_out
            .is_some_and(|sent| now.duration_since(sent) >= self.shared.config.keepalive_deadline)
    }

    /// Every start gets a deadline. A first start is answered within the request timeout,
    /// counted from the caller's call, or its caller is told [`ErrorKind::Timeout`] and the
    /// subscription forgotten: the caller has stopped waiting, and a start nobody reads must
    /// not hold one of the ten. A restored start (sent `delay` from now) that goes unanswered
    /// is sent again (see `expire`): without it, its stream would stay silent for good.
    fn start_deadline(&mut self, id: u64, key: u64, delay: Duration) {
        let Some(sub) = self.subs.get(&key) else {
            return;
        };
        let timeout = self.shared.config.request_timeout;
        let deadline = if sub.ack.is_some() {
            sub.first_try + timeout
        } else {
            Instant::now() + delay + timeout
        };
        self.deadlines.push(deadline, id);
    }

    /// Queues the restore of the last agent status, sent `delay` from now, with a deadline.
    fn queue_restore(&mut self, tries: u32, delay: Duration) {
        let id = self.new_id();
        self.pending.insert(id, Pending::StatusRestore { tries });
        if delay.is_zero() {
            self.outbox.push_back(id);
        } else {
            self.timers.push((Instant::now() + delay, id));
        }
        let deadline = Instant::now() + delay + self.shared.config.request_timeout;
        self.deadlines.push(deadline, id);
    }

    /// Request `id` was answered (it has left `pending`): its deadline goes.
    fn settle_deadline(&mut self, id: u64) {
        let pending = &self.pending;
        self.deadlines
            .settle(id, |next| pending.contains_key(&next));
    }

    /// Requests whose deadline has passed fail with [`ErrorKind::Timeout`], in deadline order:
    /// a caller told of its timeout can count on everything due before it being settled too.
    fn expire_requests(&mut self, now: Instant) {
        let mut due = Vec::new();
        self.deadlines.expire(now, |id| due.push(id));
        for id in due {
            self.expire(id);
        }
    }

    fn expire(&mut self, id: u64) {
        let Entry::Occupied(entry) = self.pending.entry(id) else {
            return;
        };
        match entry.get() {
            Pending::Request { .. } => {
                if let Pending::Request { reply, status, .. } = entry.remove() {
                    let _ = reply.send(Err(Error::new(ErrorKind::Timeout)));
                    if status.is_some() {
                        self.status_request_failed();
                    }
                }
            }
            Pending::SubStop { .. } => {
                if let Pending::SubStop { server_id, .. } = entry.remove() {
                    tracing::debug!("stop_subscription unanswered; given up");
                    self.routes.remove(&server_id);
                }
            }
            // The entry stays: an ack that still comes has its id stopped, or taken when no
            // later try was answered first (`on_ack`).
            Pending::SubStart { key } => {
                let key = *key;
                let Some(sub) = self.subs.get_mut(&key) else {
                    return;
                };
                // A restart sent on a socket that has died meanwhile is not unanswered: the
                // next socket starts it afresh (`on_new_socket`), however long recovery takes.
                if sub.ack.is_none() && self.socket.is_none() {
                    return;
                }
                if let Some(ack) = sub.ack.take() {
                    tracing::debug!("subscription start unanswered; given up");
                    let _ = ack.send(Err(Error::new(ErrorKind::Timeout)));
                    self.forget_sub(key);
                    return;
                }
                if sub.server_id.is_some() {
                    return;
                }
                sub.unanswered = sub.unanswered.saturating_add(1);
                if sub.unanswered < RESTART_TRIES {
                    tracing::debug!(
                        tries = sub.unanswered,
                        "a subscription restart went unanswered; sending it again"
                    );
                    let id = self.queue(Pending::SubStart { key });
                    self.start_deadline(id, key, Duration::ZERO);
                } else {
                    tracing::warn!("a subscription restart went unanswered; given up");
                    self.sub_failed(key, Error::new(ErrorKind::Timeout));
                }
            }
            // Likewise a restore: kept for the next socket, its tries untouched.
            Pending::StatusRestore { .. } if self.socket.is_none() => {}
            // Unanswered is failed: retried or reported as any other failure.
            Pending::StatusRestore { .. } | Pending::CatchUp { .. } => {
                let pending = entry.remove();
                self.on_answer(id, pending, Err(Error::new(ErrorKind::Timeout)));
            }
        }
    }

    async fn shutdown_socket(&mut self) {
        if let Some(mut socket) = self.socket.take() {
            // Closing is a courtesy: whether or not the frame got out, the socket is gone.
            let _ = close_within(&mut socket, self.shared.config.keepalive_deadline).await;
        }
    }

    fn unsubscribe(&mut self, key: u64) {
        let Some(sub) = self.subs.remove(&key) else {
            return;
        };
        if let Some(id) = sub.server_id {
            self.queue_stop(id);
        }
        self.publish_facts();
    }

    /// Stops `server_id` on the service. Its route stays until the stop is answered: DATA
    /// still coming for it is dropped (no subscriber has its key), and if the socket goes
    /// first, the resumed session sends the stop again (see `on_new_socket`) instead of
    /// leaving the subscription running on the service, holding one of its ten.
    fn queue_stop(&mut self, server_id: String) {
        self.routes.entry(server_id.clone()).or_insert(NO_SUB);
        let id = self.queue(Pending::SubStop {
            server_id,
            tries: 0,
        });
        self.timeout_from_now(id);
    }

    /// Request `id` is answered within the request timeout from now, or `expire` settles it.
    /// A stop unanswered by then is given up, route and all: the documents do not say that the
    /// service answers stops, and routes kept for ever would be stopped again on every resume.
    fn timeout_from_now(&mut self, id: u64) {
        let deadline = Instant::now() + self.shared.config.request_timeout;
        self.deadlines.push(deadline, id);
    }

    /// Sends the frame whose limiter slot was just taken, then every further frame that has a
    /// slot right now (up to a batch), with one flush: pipelined requests cost one syscall.
    async fn send_next(&mut self) -> Result<(), Cause> {
        const BATCH: usize = 64;
        let mut fed = 0;
        let mut first = true;
        while fed < BATCH {
            if !first && !batch_more(&self.outbox, self.limiter.as_ref()) {
                break;
            }
            first = false;
            let Some(text) = self.encode_next() else {
                continue;
            };
            self.feed(text).await?;
            fed += 1;
        }
        if fed > 0 { self.flush().await } else { Ok(()) }
    }

    /// The next frame of the outbox, encoded; `None` when that entry is gone or failed.
    fn encode_next(&mut self) -> Option<String> {
        let id = self.outbox.pop_front()?;
        let text = match self.pending.get_mut(&id) {
            None => return None,
            Some(Pending::Request { reply, status, .. }) if reply.is_closed() => {
                // The caller gave up before it was sent; sending it now would surprise them.
                let status = status.is_some();
                self.pending.remove(&id);
                if status {
                    self.status_request_failed();
                }
                return None;
            }
            Some(Pending::Request { payload, sent, .. }) => {
                *sent = true;
                Ok(encode_request(id, payload))
            }
            Some(Pending::SubStart { key }) => match self.subs.get(key) {
                // Not when an earlier try was taken meanwhile: it would start a second id.
                Some(sub) if sub.server_id.is_none() => Ok(encode_request(id, &sub.payload)),
                _ => {
                    self.pending.remove(&id);
                    return None;
                }
            },
            Some(Pending::SubStop { server_id, .. }) => {
                StopSubscription::new(id, server_id.as_str())
                    .encode()
                    .map_err(|e| e.to_string())
            }
            Some(Pending::CatchUp { key }) => {
                match self.subs.get(key).and_then(|s| s.catch_up.as_ref()) {
                    Some(payload) => Ok(encode_request(id, payload)),
                    None => {
                        self.pending.remove(&id);
                        return None;
                    }
                }
            }
            Some(Pending::StatusRestore { .. }) => match self.agent_status {
                Some(status) => Ok(encode_request(id, &crate::session::status_payload(status))),
                None => {
                    self.pending.remove(&id);
                    return None;
                }
            },
        };
        let text = match text {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(error = %e, "could not encode a request");
                if let Some(Pending::Request { reply, .. }) = self.pending.remove(&id) {
                    let _ = reply.send(Err(Error::new(ErrorKind::Decode)));
                }
                return None;
            }
        };
        Some(text)
    }

    async fn write(&mut self, text: String) -> Result<(), Cause> {
        self.feed(text).await?;
        self.flush().await
    }

    async fn on_message(&mut self, msg: WsMessage) -> Result<(), Cause> {
        self.ping_out = None;
        match msg {
            WsMessage::Text(text) => {
                let outcome = self.on_text(text.as_str()).await;
                if !self.undelivered.is_empty() {
                    self.deliver_held().await;
                }
                outcome
            }
            WsMessage::Close(frame) => {
                let code = frame.map(|f| u16::from(f.code));
                Err(Cause::lost(format!("closed by the server (code {code:?})")))
            }
            _ => Ok(()),
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<(), Cause> {
        // Most frames are subscription events: their payload is parsed once, by the
        // subscriber, instead of being validated here first and parsed there again.
        if let Some(data) = split_data(text, &self.limits) {
            self.route(data.subscription_id, SubEvent::Data(data.payload.into()))
                .await;
            return Ok(());
        }
        // Answers to requests come next; the caller parses `data` anyway. Other pending kinds
        // (subscription acks among them) take the full decoder below, which tells them apart.
        if let Some(resp) = split_response(text, &self.limits)
            && let Entry::Occupied(entry) = self.pending.entry(resp.id)
            && matches!(entry.get(), Pending::Request { .. })
        {
            let pending = entry.remove();
            self.on_answer(resp.id, pending, Ok(Some(resp.data.into())));
            return Ok(());
        }
        let frame = match ServerFrame::decode_with(text, &self.limits) {
            Ok(frame) => frame,
            Err(e) => {
                // Frames may hold visitor data: log the error kind, not the text.
                tracing::warn!(error = %e, "undecodable frame ignored");
                return Ok(());
            }
        };
        match frame {
            ServerFrame::Data(data) => {
                self.route(
                    &data.subscription_id,
                    SubEvent::Data(data.payload.get().into()),
                )
                .await;
            }
            ServerFrame::DataError(err) => {
                let e = payload_error(err.error_code, &err.payload);
                self.route(&err.subscription_id, SubEvent::Error(e)).await;
            }
            ServerFrame::SubscriptionAck(ack) => {
                let Some(id) = ack.id.as_u64() else {
                    return Ok(());
                };
                match self.pending.remove(&id) {
                    Some(Pending::SubStart { key }) => {
                        self.settle_deadline(id);
                        self.on_ack(key, ack.subscription_id.into_owned());
                    }
                    Some(Pending::Request { reply, .. }) => {
                        let raw = serde_json::json!({ "subscription_id": ack.subscription_id });
                        let _ = reply.send(Ok(Some(raw.to_string().into())));
                    }
                    Some(other) => tracing::debug!(?other, "unexpected subscription ack"),
                    None => {}
                }
            }
            ServerFrame::Response(resp) => {
                let Some(id) = resp.id.as_u64() else {
                    return Ok(());
                };
                let Some(pending) = self.pending.remove(&id) else {
                    return Ok(());
                };
                let errors = resp.payload.errors.as_ref().filter(|e| !e.is_empty());
                let outcome = match errors {
                    Some(errors) => Err(Error::new(ErrorKind::Service(
                        errors.iter().map(ServiceError::from_wire).collect(),
                    ))),
                    None => Ok(resp.payload.data.map(|d| d.get().into())),
                };
                self.on_answer(id, pending, outcome);
            }
            ServerFrame::Error(err) => {
                let e = payload_error(err.error_code, &err.payload);
                match err.id.as_ref().and_then(|id| id.as_u64()) {
                    Some(id) => {
                        if let Some(pending) = self.pending.remove(&id) {
                            self.on_answer(id, pending, Err(e));
                        }
                    }
                    None => tracing::warn!(error = %e, "error frame without a request id"),
                }
            }
            ServerFrame::Eos(eos) => {
                let reason = eos.reason.as_deref().unwrap_or("").to_owned();
                let concurrent = eos.is_concurrent_session_limit();
                tracing::info!(reason = %reason, "end of service");
                let fatal = (concurrent
                    && self.shared.config.on_concurrent_session == OnConcurrentSession::Surface)
                    .then_some(ErrorKind::ConcurrentSession);
                return Err(Cause {
                    restart: true,
                    fatal,
                    ..Cause::lost(format!("EOS: {reason}"))
                });
            }
            ServerFrame::Pong(_) => {}
            _ => tracing::debug!(kind = frame.kind(), "ignored frame"),
        }
        Ok(())
    }

    async fn route(&mut self, subscription_id: &str, event: SubEvent) {
        let Some(key) = self.routes.get(subscription_id).copied() else {
            tracing::debug!("DATA for an unknown subscription dropped");
            return;
        };
        let Some(sub) = self.subs.get_mut(&key) else {
            return;
        };
        if std::mem::take(&mut sub.gap) {
            self.deliver(key, SubEvent::Gap).await;
            self.deliver(key, event).await;
            return;
        }
        // The common case, on the subscriber already found: room in its buffer.
        match sub.tx.try_send(event) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(event)) => self.deliver(key, event).await,
        }
    }

    /// Hands `event` to subscriber `key`, waiting for room rather than losing it.
    async fn deliver(&mut self, key: u64, event: SubEvent) {
        let Some(sub) = self.subs.get(&key) else {
            return;
        };
        match sub.tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                // The reader is behind: wait for it rather than lose an item.
                let tx = sub.tx.clone();
                let _ = self.meanwhile_future(tx.send(event)).await;
            }
            // The Subscription was dropped; its stop is already queued.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Hands `event` to subscriber `key` now, or keeps it for `deliver_held` (in order) when
    /// the subscriber's buffer is full or earlier events wait there already.
    fn offer(&mut self, key: u64, event: SubEvent) {
        if self.undelivered.iter().any(|(k, _)| *k == key) {
            self.undelivered.push((key, event));
            return;
        }
        let Some(sub) = self.subs.get(&key) else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(event)) = sub.tx.try_send(event) {
            self.undelivered.push((key, event));
        }
    }

    /// Hands over the events that found their subscriber's buffer full, waiting for room as
    /// `route` does; a subscriber dropped meanwhile loses nothing it could still read.
    async fn deliver_held(&mut self) {
        for (key, event) in std::mem::take(&mut self.undelivered) {
            let Some(tx) = self.subs.get(&key).map(|s| s.tx.clone()) else {
                continue;
            };
            let _ = self.meanwhile_future(tx.send(event)).await;
        }
    }

    fn on_ack(&mut self, key: u64, server_id: String) {
        let Some(sub) = self.subs.get_mut(&key) else {
            // Dropped while starting: stop it right away.
            self.queue_stop(server_id);
            return;
        };
        if sub.server_id.is_some() {
            // Another try of this restart was answered first (it went unanswered for long
            // and was sent again): one id is enough, and this one would hold a slot.
            self.queue_stop(server_id);
            return;
        }
        let resumed = match sub.ack.take() {
            Some(ack) => {
                if ack.send(Ok(key)).is_err() {
                    // The caller stopped waiting (its timeout): nobody will read this
                    // subscription, so it must not hold one of the session's ten slots.
                    self.forget_sub(key);
                    self.queue_stop(server_id);
                    return;
                }
                false
            }
            None => true,
        };
        sub.server_id = Some(server_id.clone());
        sub.start_tries = 1;
        sub.unanswered = 0;
        sub.backoff = None;
        let skip = std::mem::take(&mut sub.skip_catch_up);
        let catch_up = resumed && sub.catch_up.is_some() && !skip;
        self.routes.insert(server_id, key);
        if catch_up {
            let id = self.queue(Pending::CatchUp { key });
            self.timeout_from_now(id);
        }
        self.publish_facts();
    }

    fn on_answer(&mut self, id: u64, pending: Pending, outcome: Answer) {
        self.settle_deadline(id);
        match pending {
            Pending::Request { reply, status, .. } => {
                match (status, &outcome) {
                    (Some(status), Ok(_)) => {
                        self.agent_status = Some(status);
                        self.superseded_restore = None;
                        self.publish_facts();
                    }
                    (Some(_), Err(_)) => self.status_request_failed(),
                    (None, _) => {}
                }
                let _ = reply.send(outcome);
            }
            // Another try of this start was taken already (it was sent again after going
            // unanswered): whatever this one says, the subscription runs on the other's id.
            Pending::SubStart { key }
                if self
                    .subs
                    .get(&key)
                    .is_some_and(|sub| sub.server_id.is_some()) =>
            {
                tracing::debug!(
                    ok = outcome.is_ok(),
                    "answer of a superseded subscription start"
                );
            }
            Pending::SubStart { key } => match outcome {
                Ok(_) => {
                    let e = Error::new(ErrorKind::Decode);
                    self.sub_failed(key, e);
                }
                Err(e) => self.sub_start_error(key, e),
            },
            Pending::SubStop { server_id, tries } => {
                self.on_stop_answer(server_id, tries, outcome);
            }
            Pending::CatchUp { key } => {
                let Some(sub) = self.subs.get_mut(&key) else {
                    return;
                };
                let gap = std::mem::take(&mut sub.gap);
                sub.catch_up_losses = 0;
                let refused = matches!(&outcome, Err(e) if matches!(e.kind(), ErrorKind::Service(_)) && !e.is_retryable());
                sub.catch_up_refusals = if refused {
                    sub.catch_up_refusals.saturating_add(1)
                } else {
                    0
                };
                let event = match outcome {
                    Ok(Some(data)) => SubEvent::CatchUp(data),
                    Ok(None) => return,
                    Err(e) if sub.catch_up_refusals >= CATCH_UP_REFUSALS => {
                        tracing::warn!(error = %e.with_causes(), "catch-up query refused again; catch-up off");
                        sub.catch_up = None;
                        SubEvent::Error(Error::with_source(ErrorKind::CatchUp, CatchUpRefused(e)))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e.with_causes(), "catch-up query failed");
                        // The subscriber hears of it: its items may have a hole.
                        SubEvent::Error(Error::with_source(ErrorKind::CatchUp, e))
                    }
                };
                // The gap's items exist nowhere else: a full reader gets them once it has
                // room, as live items do (see `deliver_held`).
                if gap {
                    self.offer(key, SubEvent::Gap);
                }
                self.offer(key, event);
            }
            Pending::StatusRestore { tries } => {
                if let Err(e) = outcome {
                    self.restore_failed(tries, &e);
                }
            }
        }
    }

    /// A restore that failed is tried again while the failure may pass (rate limited, the
    /// service unavailable, no answer), up to [`RESTORE_TRIES`]; then the listeners of the
    /// lifecycle hear of it, since the agent now shows a status nobody chose.
    fn restore_failed(&mut self, tries: u32, e: &Error) {
        let Some(status) = self.agent_status else {
            return;
        };
        if e.is_retryable() && tries + 1 < RESTORE_TRIES {
            let delay = e
                .retry_after()
                .unwrap_or_else(|| self.shared.config.retry.rate_limited.nth_delay(tries));
            tracing::debug!(error = %e, ?delay, "retrying the agent status restore");
            self.queue_restore(tries + 1, delay);
            return;
        }
        tracing::error!(error = %e.with_causes(), "could not restore the agent status");
        self.emit(LifecycleEvent::StatusNotRestored {
            status,
            cause: e.with_causes().to_string(),
        });
    }

    fn on_stop_answer(&mut self, server_id: String, tries: u32, outcome: Answer) {
        match outcome {
            Err(e) if e.is_retryable() && tries < STOP_TRIES => {
                // Gone from the service only once a stop is answered: a transient
                // failure (unavailable, rate limited) would otherwise leak the slot.
                let delay = self.shared.config.retry.rate_limited.nth_delay(tries);
                tracing::debug!(error = %e, ?delay, "retrying a stop_subscription");
                let id = self.new_id();
                let tries = tries + 1;
                self.pending
                    .insert(id, Pending::SubStop { server_id, tries });
                self.timers.push((Instant::now() + delay, id));
                self.timeout_from_now(id);
            }
            outcome => {
                // DATA of a stopped id may come until the stop is answered; not after.
                self.routes.remove(&server_id);
                if let Err(e) = outcome {
                    tracing::debug!(error = %e, "stop_subscription refused");
                }
            }
        }
    }

    fn sub_start_error(&mut self, key: u64, e: Error) {
        let retry = &self.shared.config.retry;
        let held = self.subs.len();
        // Ids the service may still run that we are stopping (routes of no live start).
        let started = self.subs.values().filter(|s| s.server_id.is_some()).count();
        let stopping = self.routes.len().saturating_sub(started);
        let Some(sub) = self.subs.get_mut(&key) else {
            return;
        };
        if sub.ack.as_ref().is_some_and(oneshot::Sender::is_closed) {
            // The caller stopped waiting: no point in trying again.
            self.forget_sub(key);
            return;
        }
        let max_sub = e.error_name() == Some(&ErrorName::MaxSub);
        if max_sub && stopping == 0 && self.resumed && held <= SERVICE_SUBSCRIPTIONS {
            // We hold no more than the service allows and stop nothing, so it still runs
            // subscriptions of an earlier socket whose ids never reached us (a start answered
            // as the socket died): nothing can stop those but a new session. This one is
            // started there.
            self.restart_for
                .get_or_insert_with(|| "MAX_SUB on a resumed session".to_owned());
            return;
        }
        let class = match e.error_name() {
            Some(ErrorName::RateLimited) => RetryClass::RateLimited,
            Some(ErrorName::GraphQlSubStartError) => RetryClass::SubscriptionStart,
            // Stops not answered yet still count on the service: try again once they are.
            _ if max_sub && stopping > 0 => RetryClass::RateLimited,
            // Unavailable, a timeout, a dropped answer: backed off like a rate limit rather
            // than ending a stream that a reconnect was restoring.
            _ if e.is_retryable() => RetryClass::RateLimited,
            _ => RetryClass::Never,
        };
        let delay = match class {
            RetryClass::RateLimited => sub
                .backoff
                .get_or_insert_with(|| retry.rate_limited.build())
                .next(),
            RetryClass::SubscriptionStart if sub.start_tries < retry.subscription_start_tries => {
                sub.backoff
                    .get_or_insert_with(|| retry.subscription_start.build())
                    .next()
                    .filter(|d| sub.first_try.elapsed() + *d <= retry.subscription_start_window)
            }
            _ => None,
        };
        match delay {
            Some(delay) => {
                sub.start_tries += 1;
                tracing::debug!(
                    ?delay,
                    tries = sub.start_tries,
                    "retrying a subscription start"
                );
                let id = self.new_id();
                self.pending.insert(id, Pending::SubStart { key });
                self.timers.push((Instant::now() + delay, id));
                self.start_deadline(id, key, delay);
            }
            None => self.sub_failed(key, e),
        }
    }

    fn sub_failed(&mut self, key: u64, e: Error) {
        let Some(mut sub) = self.subs.remove(&key) else {
            return;
        };
        match sub.ack.take() {
            Some(ack) => {
                let _ = ack.send(Err(e));
            }
            None => {
                let _ = sub.tx.try_send(SubEvent::Error(e));
            }
        }
        self.publish_facts();
    }

    /// Forgets a subscription that has no server id of its own (nothing to stop).
    fn forget_sub(&mut self, key: u64) {
        if self.subs.remove(&key).is_some() {
            self.publish_facts();
        }
    }

    fn fire_timers(&mut self) -> Result<(), Cause> {
        let now = Instant::now();
        if self.silent_too_long(now) {
            return Err(silence());
        }
        self.expire_requests(now);
        let mut due = Vec::new();
        self.timers.retain(|(at, id)| {
            if *at <= now {
                due.push(*id);
                false
            } else {
                true
            }
        });
        self.outbox.extend(due);
        Ok(())
    }

    async fn on_tick(&mut self) -> Result<(), Cause> {
        let now = Instant::now();
        if self.silent_too_long(now) {
            return Err(silence());
        }
        self.ping_out.get_or_insert(now);
        // Callers that gave up (timeout, dropped future) leave their entries behind. A status
        // request among them that never went out set nothing.
        let mut unsent_status = false;
        self.pending.retain(|_, p| match p {
            Pending::Request {
                reply,
                status,
                sent,
                ..
            } if reply.is_closed() => {
                unsent_status |= status.is_some() && !*sent;
                false
            }
            _ => true,
        });
        if unsent_status {
            self.status_request_failed();
        }
        self.ping_seq += 1;
        let payload = serde_json::value::to_raw_value(&self.ping_seq)
            .map_err(|e| Cause::lost(format!("ping encoding: {e}")))?;
        let text = Ping::new(&payload)
            .encode()
            .map_err(|e| Cause::lost(format!("ping encoding: {e}")))?;
        self.write(text).await
    }

    async fn recover(&mut self, cause: Cause) -> Result<(), Error> {
        if let Some(kind) = cause.fatal {
            return Err(Error::new(kind));
        }
        self.catch_ups_lost(&cause);
        self.fail_unreplayable();
        let shared = Arc::clone(&self.shared);
        let config = &shared.config;
        if !cause.restart {
            let mut backoff = config.reconnect.build();
            let mut attempt = 0u32;
            loop {
                attempt += 1;
                self.set_state(SessionState::Reconnecting { attempt });
                self.emit(LifecycleEvent::Reconnecting {
                    attempt,
                    cause: cause.text.clone(),
                });
                let url = self.started.websocket_url.clone();
                // Boxed: opening a socket is a large future, and a rare one.
                match self.meanwhile_future(Box::pin(shared.open(&url))).await {
                    Ok(socket) => {
                        self.socket = Some(socket);
                        self.on_new_socket(false);
                        self.set_state(SessionState::Active);
                        self.emit(LifecycleEvent::Connected {
                            session_id: self.started.session_id.clone(),
                        });
                        return Ok(());
                    }
                    Err(e) => {
                        tracing::debug!(error = %e.with_causes(), attempt, "reconnect failed");
                        match backoff.next() {
                            Some(delay) => self.pause(delay).await?,
                            None => break,
                        }
                    }
                }
            }
        }
        let mut failures = 0usize;
        let mut renewed = false;
        let mut backoff = config.reconnect.build_unbounded();
        loop {
            self.set_state(SessionState::Restarting);
            match self.restart().await {
                Ok(()) => {
                    self.set_state(SessionState::Active);
                    self.emit(LifecycleEvent::Restarted {
                        session_id: self.started.session_id.clone(),
                    });
                    return Ok(());
                }
                // The refusal invalidated the credentials: renewable ones (a refreshing
                // token) get one more try with a fresh token, at once.
                Err(e) if !renewed && e.error_name() == Some(&ErrorName::Unauthorized) => {
                    renewed = true;
                    tracing::warn!(error = %e, "session restart refused; retrying with renewed credentials");
                }
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e.with_causes(), failures, "session restart failed");
                    if failures > config.max_restarts {
                        return Err(e);
                    }
                    let delay = e
                        .retry_after()
                        .or_else(|| backoff.next())
                        .unwrap_or_default();
                    self.pause(delay).await?;
                }
            }
        }
    }

    async fn restart(&mut self) -> Result<(), Error> {
        let shared = Arc::clone(&self.shared);
        let wait = StartWait::AtMost(shared.config.max_start_wait);
        let (started, socket) = self
            .meanwhile_future(Box::pin(shared.start_and_open(wait)))
            .await?;
        tracing::Span::current().record("session_id", started.session_id.as_str());
        self.started = started;
        self.socket = Some(socket);
        self.on_new_socket(true);
        Ok(())
    }

    /// Catch-ups the dying socket never answered. One lost once is sent again on the next
    /// socket (it covers both gaps); one lost again, or lost to a frame too large to read
    /// (its own answer, most likely: it would come back as large every time), is given up
    /// like a failed one: the subscriber gets an [`ErrorKind::CatchUp`] item, and the next
    /// socket runs no catch-up for it, so the session does not reconnect for ever.
    fn catch_ups_lost(&mut self, cause: &Cause) {
        let lost: Vec<(u64, u64)> = self
            .pending
            .iter()
            .filter_map(|(id, p)| match p {
                Pending::CatchUp { key } => Some((*id, *key)),
                _ => None,
            })
            .collect();
        for (id, key) in lost {
            self.pending.remove(&id);
            let Some(sub) = self.subs.get_mut(&key) else {
                continue;
            };
            sub.catch_up_losses = sub.catch_up_losses.saturating_add(1);
            if !cause.too_big && sub.catch_up_losses < CATCH_UP_LOSSES {
                continue;
            }
            tracing::warn!(cause = %cause.text, "catch-up lost with its socket; given up");
            sub.catch_up_losses = 0;
            sub.skip_catch_up = true;
            let gap = std::mem::take(&mut sub.gap);
            if gap {
                self.offer(key, SubEvent::Gap);
            }
            let e = Error::with_source(ErrorKind::CatchUp, CatchUpLost(cause.text.clone()));
            self.offer(key, SubEvent::Error(e));
        }
    }

    /// Requests already sent that may not be repeated fail now, with a retryable error.
    fn fail_unreplayable(&mut self) {
        let max = self.shared.config.retry.connection_lost_retries;
        let doomed: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| {
                matches!(p, Pending::Request { replay, sent: true, resends, .. }
                    if *replay == Replay::Fail || *resends >= max)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in doomed {
            if let Some(Pending::Request { reply, status, .. }) = self.pending.remove(&id) {
                let _ = reply.send(Err(Error::new(ErrorKind::ConnectionLost)));
                if status.is_some() {
                    self.status_request_failed();
                }
            }
        }
    }

    /// A caller's status request set nothing: the restore it replaced is owed again, once no
    /// other status request of the caller's is pending (a restore sent now would go out after
    /// it and undo it; if it sets nothing either, the restore is owed then).
    fn status_request_failed(&mut self) {
        let another = self.pending.values().any(|p| {
            matches!(
                p,
                Pending::Request {
                    status: Some(_),
                    ..
                }
            )
        });
        if another {
            return;
        }
        if let Some(tries) = self.superseded_restore.take() {
            self.queue_restore(tries, Duration::ZERO);
        }
    }

    fn on_new_socket(&mut self, restarted: bool) {
        self.resumed = !restarted;
        self.restart_for = None;
        self.readable.set();
        self.ping_out = None;
        self.timers.clear();
        self.outbox.clear();
        // A restore not answered yet is still owed: the agent shows whatever the new
        // session started with until it is.
        let restore = self.pending.values().find_map(|p| match p {
            Pending::StatusRestore { tries } => Some(*tries),
            _ => None,
        });
        self.pending
            .retain(|_, p| matches!(p, Pending::Request { .. }));
        let mut requests: Vec<u64> = self.pending.keys().copied().collect();
        requests.sort_unstable();
        if restarted {
            self.routes.clear();
        }
        for sub in self.subs.values_mut() {
            // Only a catch-up needs to know where the gap began.
            sub.gap |= sub.catch_up.is_some();
            sub.server_id = None;
            sub.start_tries = 1;
            // A first start still awaited keeps its caller's clock (see `start_deadline`).
            if sub.ack.is_none() {
                sub.first_try = Instant::now();
            }
            sub.backoff = None;
            sub.unanswered = 0;
        }
        if !restarted {
            // A resumed session may still serve every id routed so far (the docs' "resume the
            // session without needing to set up again"), including stops an earlier socket
            // did not see answered. They are stopped before anything is started again, in that
            // order on the one socket, so the session never holds more than its ten; what they
            // might have delivered in between, the catch-up query fetches.
            let stale: Vec<String> = self.routes.keys().cloned().collect();
            for old in stale {
                self.queue_stop(old);
            }
        }
        if self.agent_status.is_some() {
            match (restarted, restore) {
                (true, _) => self.queue_restore(0, Duration::ZERO),
                (false, Some(tries)) => self.queue_restore(tries, Duration::ZERO),
                (false, None) => {}
            }
        }
        let keys: Vec<u64> = self.subs.keys().copied().collect();
        for key in keys {
            let id = self.queue(Pending::SubStart { key });
            self.start_deadline(id, key, Duration::ZERO);
        }
        for id in requests {
            if let Some(Pending::Request { resends, sent, .. }) = self.pending.get_mut(&id) {
                if *sent {
                    *resends += 1;
                }
                *sent = false;
            }
            self.outbox.push_back(id);
        }
        self.publish_facts();
    }

    fn close(&mut self, e: &Error) {
        let reason = e.with_causes().to_string();
        tracing::info!(%reason, "session closed");
        self.set_state(SessionState::Closed);
        self.emit(LifecycleEvent::Closed { reason });
        self.deadlines.clear();
        for (_, p) in self.pending.drain() {
            if let Pending::Request { reply, .. } = p {
                let _ = reply.send(Err(e.share()));
            }
        }
        for (_, mut sub) in std::mem::take(&mut self.subs) {
            match sub.ack.take() {
                Some(ack) => {
                    let _ = ack.send(Err(e.share()));
                }
                None => {
                    let _ = sub.tx.try_send(SubEvent::Error(e.share()));
                }
            }
        }
        self.routes.clear();
    }
}

/// Whether `send_next` puts one more frame in its batch: only when one waits (checked first,
/// so a lone request does not spend a second limiter slot for nothing), and then it takes a
/// slot.
fn batch_more(outbox: &VecDeque<u64>, limiter: Option<&RequestLimiter>) -> bool {
    !outbox.is_empty() && limiter.is_none_or(RequestLimiter::try_acquire)
}

fn silence() -> Cause {
    Cause::lost("no PONG or other traffic within the keepalive deadline after a PING")
}

/// Why a catch-up was given up when its socket died before the answer.
#[derive(Debug)]
struct CatchUpLost(String);

impl std::fmt::Display for CatchUpLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the socket died before the catch-up's answer ({})",
            self.0
        )
    }
}

impl std::error::Error for CatchUpLost {}

/// The frame `Request { id, payload }.encode()` of zd-wire writes, byte for byte, built from the
/// pre-escaped document (a test pins the two together).
fn encode_request(id: u64, payload: &Payload) -> String {
    let vars = payload.variables.as_ref().map(|v| v.get());
    let mut out = String::with_capacity(64 + payload.query.json.len() + vars.map_or(0, str::len));
    out.push_str(r#"{"type":"request","id":"#);
    // itoa, not `write!`: the formatting machinery is a cold detour on every request.
    out.push_str(itoa::Buffer::new().format(id));
    out.push_str(r#","payload":{"query":"#);
    out.push_str(&payload.query.json);
    if let Some(vars) = vars {
        out.push_str(r#","variables":"#);
        out.push_str(vars);
    }
    if let Some(name) = &payload.operation_json {
        out.push_str(r#","operationName":"#);
        out.push_str(name);
    }
    out.push_str("}}");
    out
}

/// The error an error frame (status `status`, 0 when unusable) reports.
///
/// GraphQL errors become [`ErrorKind::Service`] when one of them carries a documented name,
/// which then decides retrying. Without one (odd-shaped entries, a bare message, an unknown
/// name) the names say nothing, so the frame's status decides, as for a protocol error: a
/// 429, a 5xx or an unusable status gives a retryable [`ErrorKind::Protocol`] with the
/// messages as its body.
fn payload_error(status: u16, payload: &ErrorPayload<'_>) -> Error {
    match payload {
        ErrorPayload::GraphQl(errors) if !names_documented(errors) && status_retryable(status) => {
            let service = ErrorKind::Service(errors.iter().map(ServiceError::from_wire).collect());
            Error::new(ErrorKind::Protocol {
                status,
                body: excerpt(&service.to_string()),
            })
        }
        ErrorPayload::GraphQl(errors) => Error::new(ErrorKind::Service(
            errors.iter().map(ServiceError::from_wire).collect(),
        )),
        ErrorPayload::Protocol { body } => Error::new(ErrorKind::Protocol {
            status,
            body: excerpt(body),
        }),
        other => Error::new(ErrorKind::Protocol {
            status,
            body: excerpt(&format!("{other:?}")),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zd_wire::chat::{GraphQlRequest, Request};

    fn wire(id: u64, payload: &Payload) -> String {
        let vars = payload.variables.as_deref();
        let mut request = GraphQlRequest::new(&*payload.query.text);
        if let Some(vars) = vars {
            request = request.variables(vars);
        }
        if let Some(name) = &payload.operation_json {
            let name: String = serde_json::from_str(name).unwrap();
            request = request.operation_name(name);
        }
        Request {
            id: id.into(),
            payload: request,
        }
        .encode()
        .unwrap()
    }

    /// The error an error or DATA error frame reports, as the driver builds it.
    fn frame_error(text: &str) -> Error {
        match ServerFrame::decode(text) {
            Ok(ServerFrame::Error(e)) => payload_error(e.error_code, &e.payload),
            Ok(ServerFrame::DataError(e)) => payload_error(e.error_code, &e.payload),
            other => panic!("not an error frame: {other:?}: {text}"),
        }
    }

    #[test]
    fn an_error_frame_with_an_unusable_code_is_a_retryable_failure() {
        for code in [
            r#""503 Service Unavailable""#,
            "true",
            r#"{"code":503}"#,
            r#"" 429""#,
            r#""E503""#,
            r#""-1""#,
            "-1",
            "70000",
        ] {
            for payload in [
                r#"{"body":"unavailable"}"#,
                r#"{"errors":["upstream unavailable"]}"#,
                r#"{"errors":[{"message":"m","name":"SOMETHING_NEW"}]}"#,
                r#"{"what":1}"#,
            ] {
                let request = format!(r#"{{"errorCode":{code},"id":5,"payload":{payload}}}"#);
                let data = format!(
                    r#"{{"sig":"DATA","subscription_id":"s","payload":{payload},"error_code":{code}}}"#
                );
                for text in [request, data] {
                    let e = frame_error(&text);
                    assert!(
                        matches!(e.kind(), ErrorKind::Protocol { status: 0, .. }),
                        "{text}: {e:?}"
                    );
                    assert!(e.is_retryable(), "{text}: {e:?}");
                }
            }
        }
        // A documented name still decides, whatever the code.
        let e = frame_error(
            r#"{"errorCode":"x","id":5,"payload":{"errors":[{"name":"UNAUTHORIZED","message":"m"}]}}"#,
        );
        assert!(matches!(e.kind(), ErrorKind::Service(_)), "{e:?}");
        assert!(!e.is_retryable());
    }

    #[test]
    fn errors_without_a_documented_name_are_retried_by_the_frame_status() {
        for errors in [
            r#"["upstream unavailable"]"#,
            r#"[{"message":null}]"#,
            "[null]",
            r#"[{"message":"busy"}]"#,
            r#"[{"name":"NOT_DOCUMENTED","message":"busy"}]"#,
            r#"[{"name":7}]"#,
        ] {
            for status in [503, 500, 429] {
                let text =
                    format!(r#"{{"errorCode":{status},"id":4,"payload":{{"errors":{errors}}}}}"#);
                let e = frame_error(&text);
                assert!(
                    matches!(e.kind(), ErrorKind::Protocol { status: s, .. } if *s == status),
                    "{text}: {e:?}"
                );
                assert!(e.is_retryable(), "{text}: {e:?}");
            }
            let text = format!(r#"{{"errorCode":400,"id":4,"payload":{{"errors":{errors}}}}}"#);
            let e = frame_error(&text);
            assert!(matches!(e.kind(), ErrorKind::Service(_)), "{text}: {e:?}");
            assert!(!e.is_retryable(), "{text}: {e:?}");
        }
        let e = frame_error(
            r#"{"errorCode":503,"id":4,"payload":{"errors":["upstream unavailable"]}}"#,
        );
        assert!(e.to_string().contains("upstream unavailable"), "{e}");
        // A documented name decides, as the API says.
        let named = |name: &str| {
            frame_error(&format!(
                r#"{{"errorCode":503,"id":4,"payload":{{"errors":[null,{{"name":"{name}","message":"m"}}]}}}}"#
            ))
        };
        let e = named("UNAUTHORIZED");
        assert_eq!(e.error_name(), Some(&ErrorName::Unauthorized));
        assert!(!e.is_retryable());
        let e = named("RATE_LIMITED");
        assert_eq!(e.error_name(), Some(&ErrorName::RateLimited));
        assert!(e.is_retryable());
    }

    /// `send_next` as the loop runs it for requests that come one at a time: the select takes
    /// the first slot, the batch takes one per further frame waiting.
    async fn send_lone_requests(limiter: &RequestLimiter, n: usize) {
        let mut outbox = VecDeque::new();
        for id in 0..n {
            outbox.push_back(id as u64);
            limiter.acquire().await;
            outbox.pop_front();
            assert!(!batch_more(&outbox, Some(limiter)));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_lone_requests_after_idle_goes_out_at_once() {
        // 100 a second: a burst of 10.
        let limiter = RequestLimiter::default();
        let t0 = Instant::now();
        send_lone_requests(&limiter, 10).await;
        assert_eq!(Instant::now(), t0, "a lone request spent a second slot");
        // The burst is spent: the next one waits for the steady rate.
        send_lone_requests(&limiter, 1).await;
        assert!(Instant::now() > t0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_takes_a_slot_per_frame_it_sends() {
        let limiter = RequestLimiter::default();
        let mut outbox: VecDeque<u64> = (0..20).collect();
        limiter.acquire().await;
        outbox.pop_front();
        let mut sent = 1;
        while batch_more(&outbox, Some(&limiter)) {
            outbox.pop_front();
            sent += 1;
        }
        assert_eq!(sent, 10, "the burst, no more");
        assert!(batch_more(&outbox, None), "no limiter, no limit");
        assert!(!batch_more(&VecDeque::new(), None));
    }

    #[test]
    fn request_frames_match_the_wire_encoding() {
        let query = QueryText::new(
            "mutation ($m: String!) {\n  sendMessage(msg: $m) { success }\n}\t\"\u{1}é",
        );
        let vars: Arc<RawValue> =
            Arc::from(RawValue::from_string(r#"{"m":"a\"b"}"#.into()).unwrap());
        let name = Some(Arc::from(r#""Op\"1""#));
        for (variables, operation_json) in [(None, None), (Some(vars), None), (None, name)] {
            let payload = Payload {
                query: query.clone(),
                variables: variables.clone(),
                operation_json,
            };
            for id in [0, 1, 42, u64::MAX] {
                assert_eq!(encode_request(id, &payload), wire(id, &payload));
            }
        }
    }
}
