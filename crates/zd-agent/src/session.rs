//! `AgentSession`: the cheap cloneable handle.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use async_graphql_parser::types::OperationType;
use futures_core::Stream;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use zd_auth::Credentials;

use crate::config::Config;
use crate::depth::DocumentError;
use crate::driver::{
    Answer, Command, Driver, Inherited, Payload, QueryText, Replay, RequestCommand,
};
use crate::error::{Error, ErrorKind};
use crate::ops::AgentStatus;
use crate::rate_limit::{StartLimiter, shared_start_limiter};
use crate::retry::RetryClass;
use crate::state::{LifecycleEvent, ResumableFacts, SessionState};
use crate::subscription::{Decode, Ending, KeyOf, Subscription};
use crate::transport::{Socket, Started, Transport};

/// Commands waiting for the driver before callers wait too.
const COMMAND_BUFFER: usize = 1024;
/// Lifecycle events kept for slow listeners.
const LIFECYCLE_BUFFER: usize = 64;

/// State shared by the handles and the driver.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) credentials: Arc<dyn Credentials>,
    pub(crate) transport: Transport,
    /// Found at the first start (see [`Shared::start_limiter`]), then kept: a token that
    /// changes later must not move the session to another limiter.
    start_limiter: OnceLock<Arc<StartLimiter>>,
    pub(crate) state: watch::Sender<SessionState>,
    pub(crate) lifecycle: broadcast::Sender<LifecycleEvent>,
    facts: Mutex<ResumableFacts>,
    /// Where subscriptions to stop go, by key (see `Handover`'s drop).
    pub(crate) drop_tx: mpsc::UnboundedSender<u64>,
}

impl Shared {
    pub(crate) fn lock_facts(&self) -> MutexGuard<'_, ResumableFacts> {
        // A panic while holding this lock cannot leave the facts half-written in a way that
        // matters more than losing them, so a poisoned lock is simply reused.
        self.facts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The limiter of this session's starts: the configured one, else the one this process
    /// shares by endpoint, token and limits.
    fn start_limiter(&self, token: &str) -> &StartLimiter {
        self.start_limiter
            .get_or_init(|| match &self.config.start_limiter {
                Some(limiter) => Arc::clone(limiter),
                None => {
                    shared_start_limiter(&self.config.endpoint, token, self.config.start_limits)
                }
            })
    }

    /// `startAgentSession` with a token from the credentials (the `Bearer ` scheme stripped),
    /// once the start limits allow it.
    pub(crate) async fn start_session(&self, wait: StartWait) -> Result<Started, Error> {
        let sent = self
            .credentials
            .authorization()
            .await
            .map_err(|e| Error::with_source(ErrorKind::Credentials, e))?;
        let header = sent.expose_secret();
        let token = header.strip_prefix("Bearer ").unwrap_or(header);
        let limiter = self.start_limiter(token);
        let slot = match wait {
            StartWait::No => limiter.try_acquire().await,
            StartWait::AtMost(max) => limiter.acquire_within(max).await,
        };
        slot.map_err(|d| {
            Error::new(ErrorKind::StartLimited {
                retry_after: d.retry_after,
            })
        })?;
        let start = self
            .transport
            .start_agent_session(&self.config.endpoint, token);
        let result = match tokio::time::timeout(self.config.connect_timeout, start).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(ErrorKind::Timeout)),
        };
        if result.as_ref().err().and_then(Error::error_name)
            == Some(&zd_wire::chat::ErrorName::Unauthorized)
        {
            // Names the token refused: shared credentials may have replaced it meanwhile.
            self.credentials.invalidate_if_current(&sent);
        }
        result
    }

    /// Opens a session's socket with the configured frame limit and timeout.
    pub(crate) async fn open(&self, websocket_url: &str) -> Result<Socket, Error> {
        self.transport
            .connect(
                websocket_url,
                self.config.max_frame_bytes,
                self.config.connect_timeout,
            )
            .await
    }

    /// `startAgentSession` (within the start limits), then the new session's socket.
    pub(crate) async fn start_and_open(&self, wait: StartWait) -> Result<(Started, Socket), Error> {
        let started = self.start_session(wait).await?;
        let socket = self.open(&started.websocket_url).await?;
        tracing::info!(session_id = %started.session_id, "agent session started");
        Ok((started, socket))
    }

    /// A first session: a start slot now or an error, then the session.
    async fn start_fresh(&self) -> Result<(Started, Socket), Error> {
        self.start_and_open(StartWait::No).await
    }
}

/// How a start meets start limits that do not allow it yet.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StartWait {
    /// Fail at once with [`ErrorKind::StartLimited`]: a caller of `connect` decides.
    No,
    /// Wait for the turn if it comes within this long, else fail the same way.
    AtMost(std::time::Duration),
}

/// The channel ends that [`AgentSession::connect`] and [`AgentSession::resume`] hand to the
/// handle and the driver once the socket is open.
struct Parts {
    state: watch::Receiver<SessionState>,
    cmd_tx: mpsc::Sender<Command>,
    cmd_rx: mpsc::Receiver<Command>,
    drop_rx: mpsc::UnboundedReceiver<u64>,
}

impl Parts {
    fn new(
        config: Config,
        credentials: Arc<dyn Credentials>,
    ) -> Result<(Self, Arc<Shared>), Error> {
        let (state_tx, state) = watch::channel(SessionState::Connecting);
        let (lifecycle, _) = broadcast::channel(LIFECYCLE_BUFFER);
        let (drop_tx, drop_rx) = mpsc::unbounded_channel();
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_BUFFER);
        let shared = Arc::new(Shared {
            transport: Transport::new()?,
            start_limiter: OnceLock::new(),
            config,
            credentials,
            state: state_tx,
            lifecycle,
            facts: Mutex::new(ResumableFacts::default()),
            drop_tx,
        });
        let parts = Self {
            state,
            cmd_tx,
            cmd_rx,
            drop_rx,
        };
        Ok((parts, shared))
    }

    fn finish(
        self,
        shared: Arc<Shared>,
        socket: Socket,
        started: Started,
        inherited: Inherited,
    ) -> (AgentSession, Driver) {
        let driver = Driver::new(
            Arc::clone(&shared),
            self.cmd_rx,
            self.drop_rx,
            socket,
            started,
            inherited,
        );
        let session = AgentSession {
            shared,
            cmd_tx: self.cmd_tx,
            state: self.state,
        };
        (session, driver)
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

pub(crate) fn status_payload(status: AgentStatus) -> Payload {
    use cynic::MutationBuilder;
    let op =
        crate::ops::UpdateAgentStatus::build(crate::ops::UpdateAgentStatusVariables { status });
    payload_of(op.query, &op.variables).unwrap_or_else(|_| Payload {
        query: QueryText::new(""),
        variables: None,
        operation_json: None,
    })
}

pub(crate) fn payload_of(
    query: String,
    variables: &impl serde::Serialize,
) -> Result<Payload, Error> {
    prepared_payload(QueryText::new(query), variables)
}

fn prepared_payload(query: QueryText, variables: &impl serde::Serialize) -> Result<Payload, Error> {
    let raw = serde_json::value::to_raw_value(variables)
        .map_err(|e| Error::with_source(ErrorKind::Decode, e))?;
    let variables = (raw.get() != "null").then(|| Arc::from(raw));
    Ok(Payload {
        query,
        variables,
        operation_json: None,
    })
}

/// The document of a typed operation, built by cynic once per process (its text never depends
/// on the variables' values) instead of once per call.
pub(crate) fn cached_query<Q, V>(
    cell: &'static std::sync::OnceLock<QueryText>,
    variables: V,
    build: fn(V) -> cynic::Operation<Q, V>,
) -> (QueryText, V) {
    if let Some(query) = cell.get() {
        return (query.clone(), variables);
    }
    let op = build(variables);
    let query = cell.get_or_init(|| QueryText::new(op.query));
    (query.clone(), op.variables)
}

/// A Zendesk Chat agent session: a cheap, cloneable handle.
///
/// Created with [`AgentSession::connect`], which returns the handle and the [`Driver`]. The
/// driver is a future that owns the socket; run it with `tokio::spawn(driver)` (or await it
/// beside your own work). `connect` spawns nothing, so it works on any runtime setup (only
/// [`AgentSession::stop`] runs on a task of its own, when there is a runtime to spawn on).
/// The session lives while its driver runs; it closes when every handle is dropped.
#[derive(Clone)]
pub struct AgentSession {
    shared: Arc<Shared>,
    cmd_tx: mpsc::Sender<Command>,
    state: watch::Receiver<SessionState>,
}

impl std::fmt::Debug for AgentSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSession")
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

impl AgentSession {
    /// Starts an agent session (`startAgentSession` over HTTP, then the WebSocket).
    ///
    /// # Errors
    /// The credentials fail, the service refuses the token (`UNAUTHORIZED`), the start limits
    /// are reached ([`ErrorKind::StartLimited`], before anything is sent; they count every
    /// session of this process with the same endpoint and token, see
    /// [`Config::start_limits`](crate::Config::start_limits)), or the socket cannot be opened.
    pub async fn connect(
        config: Config,
        credentials: Arc<dyn Credentials>,
    ) -> Result<(AgentSession, Driver), Error> {
        let (parts, shared) = Parts::new(config, credentials)?;
        let (started, socket) = shared.start_fresh().await?;
        Ok(parts.finish(shared, socket, started, Inherited::default()))
    }

    /// Takes over a session saved with [`AgentSession::resumable`], in this process or another
    /// (a bot that restarts, or moves to another host, keeps its session and its chats).
    ///
    /// The stored WebSocket URL is opened again without calling `startAgentSession`, so no
    /// start is spent against the start limits. The earlier owner's subscriptions are stopped
    /// (nothing can read them now): subscribe again as after [`AgentSession::connect`]. The
    /// stored agent status is restored whenever the session has to be restarted. The earlier
    /// owner must be gone: two drivers on one session would take the socket from each other.
    ///
    /// When the facts hold no session, or its socket cannot be opened, a new session is started
    /// instead and the stored agent status is set on it (compare `resumable().session_id` with
    /// the stored one to tell). A session the service has already ended answers the socket
    /// with end-of-service; the driver then restarts it and restores the status, as after any
    /// end-of-service ([`LifecycleEvent::Restarted`]).
    ///
    /// ```no_run
    /// # async fn f(config: zd_agent::Config, creds: std::sync::Arc<dyn zd_auth::Credentials>) -> Result<(), zd_agent::Error> {
    /// use zd_agent::{AgentSession, ResumableFacts};
    ///
    /// let saved = std::fs::read_to_string("session.json").unwrap_or_default();
    /// let facts: ResumableFacts = serde_json::from_str(&saved).unwrap_or_default();
    /// let (session, driver) = AgentSession::resume(config, creds, facts).await?;
    /// tokio::spawn(driver);
    /// // Before exiting: store `session.resumable()` again (it is a credential).
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`AgentSession::connect`], when a new session has to be started and cannot be.
    pub async fn resume(
        config: Config,
        credentials: Arc<dyn Credentials>,
        facts: ResumableFacts,
    ) -> Result<(AgentSession, Driver), Error> {
        let (parts, shared) = Parts::new(config, credentials)?;
        let ResumableFacts {
            websocket_url,
            session_id,
            client_id,
            subscriptions,
            agent_status,
        } = facts;
        // A status stored by a version that knew a name this one does not cannot be sent, so
        // it cannot be restored either.
        let agent_status = agent_status.filter(|s| *s != AgentStatus::Unknown);
        if let (Some(websocket_url), Some(session_id), Some(client_id)) =
            (websocket_url, session_id, client_id)
        {
            match shared.open(&websocket_url).await {
                Ok(socket) => {
                    tracing::info!(session_id = %session_id, "agent session resumed");
                    let started = Started {
                        websocket_url,
                        session_id,
                        client_id,
                    };
                    let inherited = Inherited {
                        agent_status,
                        restore_status: false,
                        orphaned_subscriptions: subscriptions
                            .into_iter()
                            .filter_map(|s| s.server_id)
                            .collect(),
                    };
                    return Ok(parts.finish(shared, socket, started, inherited));
                }
                Err(error) => {
                    tracing::info!(%error, "stored session unreachable; starting a new one");
                }
            }
        }
        let (started, socket) = shared.start_fresh().await?;
        let inherited = Inherited {
            agent_status,
            restore_status: true,
            orphaned_subscriptions: Vec::new(),
        };
        Ok(parts.finish(shared, socket, started, inherited))
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> SessionState {
        self.state.borrow().clone()
    }

    /// Waits until the state satisfies `f` (or the session is dropped).
    pub async fn wait_for_state(&self, f: impl Fn(&SessionState) -> bool) -> SessionState {
        let mut rx = self.state.clone();
        match rx.wait_for(|s| f(s)).await {
            Ok(s) => s.clone(),
            Err(_) => SessionState::Closed,
        }
    }

    /// A snapshot of the facts needed to resume this session elsewhere.
    #[must_use]
    pub fn resumable(&self) -> ResumableFacts {
        self.shared.lock_facts().clone()
    }

    /// The session's lifecycle from now on: connected, reconnecting, restarted, closed.
    ///
    /// A listener that falls more than 64 events behind skips the oldest.
    pub fn lifecycle(&self) -> impl Stream<Item = LifecycleEvent> + Send + 'static {
        let rx = self.shared.lifecycle.subscribe();
        futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    async fn send_once(
        &self,
        payload: Payload,
        replay: Replay,
        status: Option<AgentStatus>,
    ) -> Answer {
        let (reply, rx) = oneshot::channel();
        let command = Command::Request(RequestCommand {
            payload,
            replay,
            status,
            reply,
        });
        // The queue is rarely full: skip the waiting machinery of `send` while it has room.
        // (Waiting senders keep their turn: a full queue makes `try_send` fail too.)
        match self.cmd_tx.try_send(command) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(command)) => self
                .cmd_tx
                .send(command)
                .await
                .map_err(|_| Error::closed("the driver is not running"))?,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(Error::closed("the driver is not running"));
            }
        }
        // The driver fails the request with `Timeout` at its deadline: one timer for all
        // requests instead of one per call (see `deadlines.rs`).
        match rx.await {
            Ok(answer) => answer,
            Err(_) => Err(Error::closed("the driver is not running")),
        }
    }

    /// Sends a request, retrying by error name as the policy says.
    pub(crate) async fn request(
        &self,
        payload: Payload,
        replay: Replay,
        status: Option<AgentStatus>,
    ) -> Answer {
        let mut retrier = self.shared.config.retry.start();
        loop {
            let result = self.send_once(payload.clone(), replay, status).await;
            let Err(e) = result else { return result };
            // No `ConnectionLost` here: the driver resends a request lost with its socket
            // itself and reports it lost only once `connection_lost_retries` is spent (or
            // for one it may not resend); sending it anew would spend that budget again.
            let class = match e.error_name() {
                Some(zd_wire::chat::ErrorName::RateLimited) => RetryClass::RateLimited,
                _ => RetryClass::Never,
            };
            match retrier.next_delay(class) {
                Some(delay) => {
                    tracing::debug!(error = %e, ?delay, "retrying");
                    tokio::time::sleep(delay).await;
                }
                None => return Err(e),
            }
        }
    }

    /// Runs a typed query or mutation built with cynic.
    ///
    /// # Errors
    /// The service's errors (see [`Error::error_name`]), a closed session, or a timeout.
    pub async fn run<Q, V>(&self, op: cynic::Operation<Q, V>) -> Result<Q, Error>
    where
        Q: DeserializeOwned,
        V: serde::Serialize,
    {
        let replay = if op.query.trim_start().starts_with("query") {
            Replay::Resend
        } else {
            Replay::Fail
        };
        self.run_with(op, replay, None).await
    }

    pub(crate) async fn run_with<Q, V>(
        &self,
        op: cynic::Operation<Q, V>,
        replay: Replay,
        status: Option<AgentStatus>,
    ) -> Result<Q, Error>
    where
        Q: DeserializeOwned,
        V: serde::Serialize,
    {
        let payload = payload_of(op.query, &op.variables)?;
        self.run_payload(payload, replay, status).await
    }

    /// As `run_with`, for an operation whose document came from [`cached_query`].
    pub(crate) async fn run_prepared<Q: DeserializeOwned>(
        &self,
        query: QueryText,
        variables: &impl serde::Serialize,
        replay: Replay,
        status: Option<AgentStatus>,
    ) -> Result<Q, Error> {
        let payload = prepared_payload(query, variables)?;
        self.run_payload(payload, replay, status).await
    }

    async fn run_payload<Q: DeserializeOwned>(
        &self,
        payload: Payload,
        replay: Replay,
        status: Option<AgentStatus>,
    ) -> Result<Q, Error> {
        let data = self.request(payload, replay, status).await?;
        let data = data.ok_or_else(|| {
            Error::with_source(
                ErrorKind::Decode,
                "the answer carried neither data nor errors",
            )
        })?;
        decode_json(&data)
    }

    /// Sends any GraphQL document and returns its `data`, for what the typed operations do not
    /// cover. The document's depth is checked (at most 11) before anything is sent.
    ///
    /// A query is resent after a reconnect (the kind of operation comes from parsing the
    /// document); a mutation fails with a retryable [`ErrorKind::ConnectionLost`] if the socket
    /// drops before its answer. For a document of several operations, use
    /// [`AgentSession::execute_operation`].
    ///
    /// # Errors
    /// [`ErrorKind::Document`] for a bad or too deep document, one of several operations, or a
    /// subscription (its events would reach nobody: use [`AgentSession::subscribe_document`]);
    /// otherwise as [`AgentSession::run`].
    pub async fn execute(
        &self,
        query: &str,
        variables: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, Error> {
        self.execute_selected(query, None, variables).await
    }

    /// [`AgentSession::execute`] for a document of several operations: runs the one named
    /// `operation` (sent as `operationName`, which the service requires then).
    ///
    /// # Errors
    /// As [`AgentSession::execute`]; [`ErrorKind::Document`] when no operation has that name.
    pub async fn execute_operation(
        &self,
        query: &str,
        operation: &str,
        variables: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, Error> {
        self.execute_selected(query, Some(operation), variables)
            .await
    }

    async fn execute_selected(
        &self,
        query: &str,
        operation: Option<&str>,
        variables: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, Error> {
        let ops = crate::depth::inspect(query, crate::depth::MAX_QUERY_DEPTH)?;
        let replay = match ops.selected(operation)? {
            OperationType::Query => Replay::Resend,
            OperationType::Mutation => Replay::Fail,
            OperationType::Subscription => return Err(DocumentError::Subscription.into()),
        };
        let variables = variables
            .map(|v| serde_json::value::to_raw_value(&v))
            .transpose();
        let variables = variables
            .map_err(|e| Error::with_source(ErrorKind::Decode, e))?
            .map(Arc::from);
        let operation_json = operation
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| Error::with_source(ErrorKind::Decode, e))?
            .map(Arc::from);
        let payload = Payload {
            query: QueryText::new(query),
            variables,
            operation_json,
        };
        match self.request(payload, replay, None).await? {
            Some(raw) => decode_json(&raw),
            None => Ok(serde_json::Value::Null),
        }
    }

    /// How far a catch-up looks back before the newest message handed out, in ms (see
    /// [`crate::Config::catch_up_overlap`]).
    pub(crate) fn catch_up_overlap_ms(&self) -> f64 {
        self.shared.config.catch_up_overlap.as_secs_f64() * 1000.0
    }

    /// Whether `messages()` runs a catch-up query after a gap (see [`crate::Config::catch_up`]).
    pub(crate) fn catches_up(&self) -> bool {
        self.shared.config.catch_up
    }

    /// Whether a lost `sendMessage` is sent again (see [`crate::Config::resend_messages`]).
    pub(crate) fn resends_messages(&self) -> bool {
        self.shared.config.resend_messages
    }

    pub(crate) async fn subscribe_with<T>(
        &self,
        query: String,
        variables: &impl serde::Serialize,
        decode: Decode<T>,
        key_of: Option<KeyOf<T>>,
        catch_up: Option<Payload>,
    ) -> Result<Subscription<T>, Error> {
        let payload = payload_of(query, variables)?;
        let (tx, rx) = mpsc::channel(self.shared.config.subscription_buffer.max(1));
        let ending = Arc::new(Ending::default());
        let (reply, ack) = oneshot::channel();
        self.cmd_tx
            .send(Command::Subscribe {
                payload,
                catch_up,
                tx,
                ending: Arc::clone(&ending),
                reply,
            })
            .await
            .map_err(|_| Error::closed("the driver is not running"))?;
        // A started subscription comes as a `Handover` that stops it when dropped: with this
        // future if it is dropped before taking it, else with the `Subscription` that holds it.
        let handover = match tokio::time::timeout(self.shared.config.request_timeout, ack).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => return Err(Error::closed("the driver is not running")),
            Err(_) => return Err(Error::new(ErrorKind::Timeout)),
        };
        Ok(Subscription::new(
            rx,
            ending,
            handover,
            decode,
            key_of,
            self.shared.config.dedup_window,
        ))
    }

    /// Starts a typed subscription built with cynic; items are the decoded `data`. The
    /// query's depth is checked (at most 11) before anything is sent.
    ///
    /// # Errors
    /// [`ErrorKind::Document`] for a query nested deeper than the service allows (it would
    /// refuse it with `GRAPHQL_SUB_START_ERROR`, which is retried for up to 30 s, as it also
    /// means passing trouble); [`ErrorKind::TooManySubscriptions`] for an 11th live
    /// subscription; the service's errors after the retries the policy allows
    /// (`GRAPHQL_SUB_START_ERROR`: at most 5 tries in 30 s).
    pub async fn subscribe<Q, V>(
        &self,
        op: cynic::StreamingOperation<Q, V>,
    ) -> Result<Subscription<Q>, Error>
    where
        Q: DeserializeOwned + 'static,
        V: serde::Serialize,
    {
        // A too-deep start is refused with the retryable GRAPHQL_SUB_START_ERROR, so the
        // driver would resend it for 30 s. Parsing is cheap next to a start, which is rare;
        // `run` and `send_message`, which carry every message, stay unparsed.
        crate::depth::check_depth(op.query(), crate::depth::MAX_QUERY_DEPTH)?;
        self.subscribe_with(
            op.query().to_owned(),
            op.variables(),
            decode_data::<Q>,
            None,
            None,
        )
        .await
    }

    /// Starts any subscription document (depth-checked); items are the raw `data` values.
    ///
    /// # Errors
    /// As [`AgentSession::subscribe`], plus [`ErrorKind::Document`].
    pub async fn subscribe_raw(
        &self,
        query: &str,
        variables: Option<serde_json::Value>,
    ) -> Result<Subscription<serde_json::Value>, Error> {
        self.subscribe_document(query, variables).await
    }

    /// Starts any subscription document (depth-checked); each item is its `data` decoded into
    /// your own serde type `T`.
    ///
    /// For a selection set of your own without cynic: ask for just the fields you use, and
    /// the service sends, and this client decodes, no more than that.
    ///
    /// ```no_run
    /// # async fn run(session: zd_agent::AgentSession) -> Result<(), zd_agent::Error> {
    /// use futures_util::StreamExt;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Data { message: Option<Edge> }
    /// #[derive(serde::Deserialize)]
    /// struct Edge { node: Option<Node> }
    /// #[derive(serde::Deserialize)]
    /// struct Node { id: String, content: String }
    ///
    /// let mut messages = session
    ///     .subscribe_document::<Data>("subscription { message { node { id content } } }", None)
    ///     .await?;
    /// while let Some(item) = messages.next().await {
    ///     if let Some(node) = item?.message.and_then(|e| e.node) {
    ///         println!("{}: {}", node.id, node.content);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`AgentSession::subscribe`], plus [`ErrorKind::Document`] for a bad or too deep
    /// document, or one that is not a single subscription. An item whose `data` does
    /// not fit `T` is an [`ErrorKind::Decode`] item; the subscription goes on.
    pub async fn subscribe_document<T>(
        &self,
        query: &str,
        variables: Option<serde_json::Value>,
    ) -> Result<Subscription<T>, Error>
    where
        T: DeserializeOwned + 'static,
    {
        let ops = crate::depth::inspect(query, crate::depth::MAX_QUERY_DEPTH)?;
        if ops.selected(None)? != OperationType::Subscription {
            return Err(DocumentError::NotASubscription.into());
        }
        self.subscribe_with(query.to_owned(), &variables, decode_data::<T>, None, None)
            .await
    }

    /// Ends the session: `stopAgentSession`, then the socket closes and the driver ends.
    ///
    /// # Cancel safety
    /// Once polled, the stop completes even if this future is dropped: dropping it only stops
    /// waiting. (A stop left half done would keep the session running, marked to close at its
    /// next socket failure instead of reconnecting.) It runs on a task of its own when called
    /// on a tokio runtime, else in this future.
    ///
    /// # Errors
    /// The service refused the stop; the socket is closed anyway.
    pub async fn stop(&self) -> Result<(), Error> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.stop_inline().await;
        };
        let session = self.clone();
        // In the caller's span: the stop's log lines belong to what asked for it.
        let stopping =
            tracing::Instrument::in_current_span(async move { session.stop_inline().await });
        match runtime.spawn(stopping).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The runtime is shutting down, and the driver with it.
            Err(e) => Err(Error::with_source(
                ErrorKind::Closed {
                    reason: "the runtime shut down during the stop".to_owned(),
                },
                e,
            )),
        }
    }

    async fn stop_inline(&self) -> Result<(), Error> {
        use cynic::MutationBuilder;
        let _ = self.cmd_tx.send(Command::Stopping).await;
        let op = crate::ops::StopAgentSession::build(());
        let result = self.run_with(op, Replay::Fail, None).await;
        let _ = self.cmd_tx.send(Command::Shutdown).await;
        match result {
            Ok(_) => Ok(()),
            // The EOS that follows a stop may overtake its answer.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Closed { .. } | ErrorKind::ConnectionLost
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

pub(crate) fn decode_json<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    // The path-tracking decoder costs about as much again as the decode itself, so it only
    // runs to explain a failure.
    if let Ok(value) = serde_json::from_str(text) {
        return Ok(value);
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| Error::with_source(ErrorKind::Decode, e))
}

/// Decodes a DATA payload (`{"data": ..., "errors": ...}`) into its `data`.
pub(crate) fn decode_data<T: DeserializeOwned>(text: &str) -> Result<Option<T>, Error> {
    // Nearly every event is `{"data":{…}}`: its `data` goes straight to `T`. Errors, a null
    // `data` and every other shape take the envelope below.
    if let Some(data) = zd_wire::chat::payload_data(text) {
        return decode_json(data).map(Some);
    }
    #[derive(serde::Deserialize)]
    struct Response<T> {
        data: Option<T>,
        #[serde(default)]
        errors: Option<Vec<WireError>>,
    }
    #[derive(serde::Deserialize)]
    struct WireError {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        message: String,
        #[serde(default, rename = "UUID")]
        uuid: Option<String>,
    }
    let resp: Response<T> = decode_json(text)?;
    if let Some(errors) = resp.errors.filter(|e| !e.is_empty()) {
        return Err(Error::new(ErrorKind::Service(
            errors
                .into_iter()
                .map(|e| crate::error::ServiceError {
                    name: e.name.as_deref().map(zd_wire::chat::ErrorName::from_name),
                    message: crate::error::excerpt(&e.message),
                    uuid: e.uuid,
                })
                .collect(),
        )));
    }
    Ok(resp.data)
}

#[cfg(test)]
mod tests {
    use super::decode_data;
    use crate::error::ErrorKind;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Data {
        n: u32,
    }

    #[test]
    fn plain_and_enveloped_payloads_decode_alike() {
        let plain = decode_data::<Data>(r#"{"data":{"n":1}}"#).expect("plain");
        let spaced = decode_data::<Data>(r#"{ "data" : { "n" : 1 } , "errors" : [] }"#);
        assert_eq!(plain, Some(Data { n: 1 }));
        assert_eq!(spaced.expect("empty errors are no errors"), plain);
        assert_eq!(decode_data::<Data>(r#"{"data":null}"#).expect("null"), None);
    }

    #[test]
    fn service_errors_and_broken_data_are_typed_errors() {
        let refused = decode_data::<Data>(
            r#"{"data":null,"errors":[{"name":"RATE_LIMITED","message":"slow down"}]}"#,
        )
        .expect_err("errors");
        assert!(
            matches!(refused.kind(), ErrorKind::Service(_)),
            "{refused:?}"
        );
        for broken in [
            r#"{"data":{"n":tru}}"#,
            r#"{"data":{"n":"1"}}"#,
            r#"{"data":{}}"#,
        ] {
            let e = decode_data::<Data>(broken).expect_err(broken);
            assert!(matches!(e.kind(), ErrorKind::Decode), "{broken}: {e:?}");
        }
    }
}
