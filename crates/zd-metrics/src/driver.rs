//! The task behind a [`crate::Feed`]: an explicit state machine (active session, waiting to
//! reconnect, closed) whose resumable facts are the subscription list.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder as _;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use zd_auth::Secret;
use zd_wire::DecodeLimits;
use zd_wire::realtime::{ServerFrame, Status};

use crate::commands::CommandReceiver;
use crate::events::{EventSender, TrySendError};
use crate::limits::ConnectionSlot;
use crate::live::Publisher;
use crate::transport::WsStream;
use crate::update::flatten;
use crate::{Error, ErrorKind, FeedEvent, FeedState, MetricsClient, Report, Series, Snapshot};

/// Requests from [`crate::FeedHandle`]s.
pub(crate) enum Command {
    Subscribe(Series, oneshot::Sender<Result<(), Error>>),
    Unsubscribe(Series, oneshot::Sender<Result<(), Error>>),
    List(oneshot::Sender<Vec<Series>>),
    /// Values of a REST pull for series not yet known; answered with how many were filled.
    Seed(Box<Report>, oneshot::Sender<usize>),
    /// Answered by the feed's state turning `Closed`, which `close()` waits for.
    Close,
}

type Sink = WsStream;

/// How long a connection whose write failed is still read for a refusal the server sent.
const AFTER_FAILED_WRITE: Duration = Duration::from_secs(2);

/// How long a connection must stay up (checked when a ping is due and when it ends) before
/// it counts as working, which starts backoff and the attempt count over. Not the moment the
/// upgrade and subscriptions succeed: the service refuses a token with a 401 frame right
/// *after* the upgrade, so counting an open socket as success would reset the unauthorized
/// streak on every attempt and retry a revoked token forever. A refusal arrives within
/// moments; a connection that outlived this was accepted, and a later 401 (the token
/// expired) deserves a refresh. Nor is an update enough: a server that accepts, sends one
/// frame and closes would otherwise be reconnected forever at the first attempt's delay,
/// spending the account's shared budget of 200 requests a minute.
const SETTLED_AFTER: Duration = Duration::from_secs(10);

/// Connections that may end on a frame over `max_frame_bytes` within any [`OVERSIZED_WINDOW`]
/// before the feed gives up: one such frame may be a one-off, but when connection after
/// connection gets one the server sends it for the subscriptions themselves, and only a
/// larger limit helps. (Backoff spaces those connections seconds apart; one such frame a day
/// never adds up.)
const MAX_OVERSIZED: usize = 3;
const OVERSIZED_WINDOW: Duration = Duration::from_secs(600);

/// The decoder's limits: none of its own. The socket already refuses a frame over
/// `max_frame_bytes` (tungstenite's message and frame caps, [`crate::transport::ws_config`]),
/// and that refusal is the one that ends the connection with [`ErrorKind::TooLarge`].
const CAPPED_BY_THE_SOCKET: DecodeLimits = DecodeLimits::new().with_max_frame_bytes(usize::MAX);

/// How a session or a wait ended.
enum Outcome {
    /// Try another connection.
    Reconnect(Error),
    /// End the feed.
    Closed(Error),
}

pub(crate) struct Driver {
    client: MetricsClient,
    _slot: ConnectionSlot,
    commands: CommandReceiver,
    events: EventSender,
    lagged: u64,
    /// The snapshot and state the handles read.
    live: Publisher,
    /// The resumable facts: what to subscribe to again after a reconnect, in order.
    subscriptions: Vec<Series>,
    /// Consecutive connections refused as unauthorized; two in a row end the feed (one
    /// retry lets refreshable credentials renew after [`zd_auth::Credentials::invalidate`]).
    /// A connection that delivered an update, or worked (see [`Driver::mark_healthy`]),
    /// starts the count over: either way the token was accepted.
    unauthorized_streak: u32,
    /// Whether the current session has worked: stayed up for [`SETTLED_AFTER`]. Then
    /// backoff, the attempt count and the unauthorized streak start over.
    healthy: bool,
    /// When the latest sessions ended by a frame over `max_frame_bytes` ended, oldest first:
    /// one more within [`OVERSIZED_WINDOW`] of the oldest makes [`MAX_OVERSIZED`] in a
    /// sliding window. A window fixed at the first of them and started over once it passed
    /// would let endings that straddle its edge (at 9, 11 and 13 minutes) go on forever.
    oversized_at: [Option<Instant>; MAX_OVERSIZED - 1],
    /// Reconnect attempts since the last working connection (see [`Driver::mark_healthy`]),
    /// as reported in [`FeedEvent::Reconnecting`]. Kept across connections: one that comes
    /// up and fails before it worked (updates or not) does not start the count over.
    attempt: u32,
    /// The authorization the current connection was opened with: a 401 frame refuses that
    /// token, which shared credentials may already have replaced.
    auth: Arc<Secret>,
}

impl Driver {
    pub(crate) fn new(
        client: MetricsClient,
        slot: ConnectionSlot,
        commands: CommandReceiver,
        events: EventSender,
        live: Publisher,
        auth: Arc<Secret>,
    ) -> Self {
        Self {
            client,
            _slot: slot,
            commands,
            events,
            lagged: 0,
            live,
            subscriptions: Vec::new(),
            unauthorized_streak: 0,
            healthy: false,
            oversized_at: [None; MAX_OVERSIZED - 1],
            attempt: 0,
            auth,
        }
    }

    /// Serves the feed: connection after connection, until it is closed or gives up.
    ///
    /// Shaped for the size of every feed's task, which lives as long as the feed: a plain
    /// function returning an `async move` block (an `async fn` keeps its arguments where
    /// they were passed *and* moves them into locals, so the whole driver would sit
    /// there twice), and the rare reconnect in its own boxed future (its locals would
    /// otherwise take room beside the session's).
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn would hold the driver twice"
    )]
    pub(crate) fn run(mut self, mut ws: WsStream) -> impl Future<Output = ()> + Send {
        async move {
            // Created on the first reconnect and boxed: a backoff (and its builder) would
            // otherwise sit inline in every feed's task, which rarely reconnects.
            let mut backoff: Option<Box<backon::ExponentialBackoff>> = None;
            loop {
                self.live.set_state(FeedState::Active);
                self.healthy = false;
                let error = match self.session(ws).await {
                    Outcome::Closed(error) => return self.finish(error),
                    Outcome::Reconnect(error) => error,
                };
                ws = match Box::pin(self.reconnect(error, &mut backoff)).await {
                    Ok(ws) => ws,
                    Err(error) => return self.finish(error),
                };
            }
        }
    }

    /// Reconnects after a session ended on `last_error`, with backoff, until a connection is
    /// up and resubscribed; `Err` ends the feed with that error.
    async fn reconnect(
        &mut self,
        mut last_error: Error,
        backoff: &mut Option<Box<backon::ExponentialBackoff>>,
    ) -> Result<WsStream, Error> {
        let oversized = last_error.kind() == ErrorKind::TooLarge;
        if oversized && self.oversized_again(Instant::now()) {
            return Err(last_error);
        }
        // After a working connection the policy starts over, whatever ended it: kept across
        // connections that worked, a capped policy would end a feed that meets one oversized
        // frame an hour. Oversized frames that keep coming end the feed by the window above.
        if self.healthy {
            *backoff = None;
        }
        self.live.modify_snapshot(Snapshot::forget_values);
        loop {
            if self.gives_up(&last_error) {
                return Err(last_error);
            }
            let Some(delay) = backoff
                .get_or_insert_with(|| Box::new(self.client.inner.feed.reconnect.build()))
                .next()
            else {
                // The application's policy caps attempts or their total delay, and has run
                // out: it asked for the feed to end rather than be retried on some other
                // schedule of ours.
                return Err(last_error);
            };
            let delay = delay.max(last_error.retry_after().unwrap_or_default());
            self.attempt = self.attempt.saturating_add(1);
            let attempt = self.attempt;
            self.live.set_state(FeedState::Reconnecting { attempt });
            tracing::debug!(attempt, ?delay, error = %last_error, "feed reconnecting");
            self.emit(FeedEvent::Reconnecting {
                attempt,
                delay,
                error: last_error.clone(),
            });
            self.wait(delay).await?;
            // Boxed: the attempt's state (its step, a command being served) would otherwise
            // sit beside every wait of an outage, on every feed.
            match Box::pin(self.attempt()).await {
                Ok(ws) => {
                    self.emit(FeedEvent::Reconnected);
                    return Ok(ws);
                }
                Err(Outcome::Reconnect(error)) => last_error = error,
                Err(Outcome::Closed(error)) => return Err(error),
            }
        }
    }

    /// One reconnect attempt: connects, then sends every subscription, until the connection
    /// is up with the subscriptions as they are now.
    ///
    /// Serves commands throughout, as [`Driver::wait`] does: a connect to a peer that drops
    /// packets takes up to `connect_timeout`, and a close, or the last handle's drop, must
    /// not wait for it (nor, once it succeeds, for a resubscribe and a `Reconnected` nobody
    /// will read). Subscriptions changed meanwhile are recorded and caught up on the new
    /// connection before it counts as up. `Err(Outcome::Closed)` ends the feed; the
    /// connection being set up is dropped.
    async fn attempt(&mut self) -> Result<WsStream, Outcome> {
        let client = self.client.clone();
        let mut step: AttemptStep = Box::pin(async move { client.open_socket().await });
        // What the new connection has been sent so far.
        let mut sent: Vec<Series> = Vec::new();
        loop {
            tokio::select! {
                result = &mut step => {
                    let (ws, auth) = result.map_err(Outcome::Reconnect)?;
                    if sent == self.subscriptions {
                        self.auth = auth;
                        return Ok(ws);
                    }
                    let frames = self.catch_up(&sent).map_err(Outcome::Reconnect)?;
                    sent.clone_from(&self.subscriptions);
                    step = Box::pin(write_subscriptions(self.client.clone(), ws, auth, frames));
                }
                command = self.commands.recv() => {
                    let Some(command) = command else {
                        return Err(Outcome::Closed(closed("every handle was dropped")));
                    };
                    Box::pin(self.command(*command, None)).await?;
                }
            }
        }
    }

    /// The frames that bring a connection that was sent `sent` to the current subscriptions.
    fn catch_up(&self, sent: &[Series]) -> Result<Vec<String>, Error> {
        let dropped = sent
            .iter()
            .filter(|s| !self.subscriptions.contains(s))
            .map(|s| s.unsubscribe_frame().encode());
        let added = self
            .subscriptions
            .iter()
            .filter(|s| !sent.contains(s))
            .map(|s| s.subscribe_frame().encode());
        dropped
            .chain(added)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::new(ErrorKind::InvalidSubscription, "encoding").with_source(e))
    }

    /// Whether a failure ends the feed rather than being retried: a second unauthorized in a
    /// row (the first invalidated the credentials, so a refreshable source renewed them), or
    /// any failure that trying again cannot fix (an HTTP 403 on the upgrade, credentials
    /// that cannot be produced), which would otherwise spend the account's shared request
    /// budget on every attempt, forever.
    fn gives_up(&mut self, error: &Error) -> bool {
        if error.kind() == ErrorKind::Unauthorized {
            self.unauthorized_streak += 1;
            return self.unauthorized_streak >= 2;
        }
        !error.is_retryable()
    }

    /// The connection has stayed up for [`SETTLED_AFTER`]: the next failure starts backoff,
    /// the attempt count and the unauthorized count over.
    fn mark_healthy(&mut self) {
        self.healthy = true;
        self.unauthorized_streak = 0;
        self.attempt = 0;
    }

    /// Records a session ended by a frame over `max_frame_bytes` at `now`; `true` when it
    /// makes [`MAX_OVERSIZED`] within [`OVERSIZED_WINDOW`], which ends the feed.
    fn oversized_again(&mut self, now: Instant) -> bool {
        let [oldest, ..] = self.oversized_at;
        if oldest.is_some_and(|at| now.duration_since(at) < OVERSIZED_WINDOW) {
            return true;
        }
        self.oversized_at.rotate_left(1);
        if let Some(latest) = self.oversized_at.last_mut() {
            *latest = Some(now);
        }
        false
    }

    /// How often a session pings. The client builder refuses a zero interval; tokio's timers
    /// would spin on one, and the driver must not die without telling its reader.
    fn ping_period(&self) -> Duration {
        self.client
            .inner
            .feed
            .ping_interval
            .max(Duration::from_millis(1))
    }

    /// Serves one connection until it fails or the feed is closed.
    ///
    /// An `async move` block for the reason [`Driver::run`] is one; the settings are read
    /// from the client where needed rather than kept in locals beside them.
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn would hold its arguments twice"
    )]
    fn session(&mut self, mut ws: WsStream) -> impl Future<Output = Outcome> + Send + '_ {
        async move {
            // A sleep re-armed after each ping rather than an `Interval`, which boxes its sleep:
            // one allocation less per feed, and a late tick delays the next one all the same.
            let ping = tokio::time::sleep(self.ping_period());
            tokio::pin!(ping);
            let connected = Instant::now();
            let mut last_frame = connected;
            // `Err`: a write failed. The connection's uptime ends there, not after the read for
            // the server's reason that follows (up to `AFTER_FAILED_WRITE`).
            let ended: Result<Outcome, Error> = 'session: loop {
                tokio::select! {
                    command = self.commands.recv() => {
                        // Boxed: commands are rare, and their futures (a frame being written)
                        // would otherwise be part of every feed's task for its whole life.
                        let result = match command {
                            Some(command) => Box::pin(self.command(*command, Some(&mut ws))).await,
                            None => Err(Outcome::Closed(closed("every handle was dropped"))),
                        };
                        match result {
                            Ok(()) => {}
                            Err(Outcome::Closed(error)) => {
                                let _ = Box::pin(close(&mut ws)).await;
                                break 'session Ok(Outcome::Closed(error));
                            }
                            Err(Outcome::Reconnect(error)) => break 'session Err(error),
                        }
                    }
                    message = ws.next() => {
                        last_frame = Instant::now();
                        match message {
                            Some(Ok(Message::Text(text))) => {
                                if let Some(outcome) = self.frame(text.as_str()) {
                                    break 'session Ok(outcome);
                                }
                            }
                            Some(Ok(Message::Close(frame))) => {
                                let detail = match frame {
                                    Some(f) => format!("server closed the feed ({} {})", u16::from(f.code), f.reason),
                                    None => "server closed the feed".to_owned(),
                                };
                                break 'session Ok(Outcome::Reconnect(Error::new(ErrorKind::Transport, detail)));
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => break 'session Ok(Outcome::Reconnect(read_error(e))),
                            None => {
                                break 'session Ok(Outcome::Reconnect(Error::new(
                                    ErrorKind::Transport,
                                    "connection ended",
                                )));
                            }
                        }
                    }
                    () = &mut ping => {
                        ping.as_mut().reset(Instant::now() + self.ping_period());
                        self.mark_healthy_if_settled(connected);
                        let idle_timeout = self.client.inner.feed.idle_timeout;
                        if last_frame.elapsed() >= idle_timeout {
                            break 'session Ok(Outcome::Reconnect(Error::new(
                                ErrorKind::Timeout,
                                format!("no frame for {idle_timeout:?}"),
                            )));
                        }
                        if let Err(e) = Box::pin(ws.send(Message::Ping(Default::default()))).await {
                            break 'session Err(Error::new(ErrorKind::Transport, "sending a ping").with_source(e));
                        }
                    }
                }
            };
            // A connection that settled between two pings counts as working too.
            self.mark_healthy_if_settled(connected);
            match ended {
                Ok(outcome) => outcome,
                Err(error) => {
                    Outcome::Reconnect(Box::pin(self.after_failed_write(&mut ws, error)).await)
                }
            }
        }
    }

    /// Marks the session as working once it has been up (since `connected`) for
    /// [`SETTLED_AFTER`].
    fn mark_healthy_if_settled(&mut self, connected: Instant) {
        if !self.healthy && connected.elapsed() >= SETTLED_AFTER {
            self.mark_healthy();
        }
    }

    /// Handles one text frame; `Some` ends the session.
    fn frame(&mut self, text: &str) -> Option<Outcome> {
        match ServerFrame::decode_with(text, &CAPPED_BY_THE_SOCKET) {
            // The docs' own client skips any frame whose status is not 200; such an update's
            // values are not trusted, and its status is handled as a status frame's.
            Ok(ServerFrame::Update(update)) if update.status_code != 200 => self.status(&Status {
                status_code: update.status_code,
                message: None,
            }),
            Ok(ServerFrame::Update(update)) => {
                // The token was accepted, but the connection has not yet proven it stays up:
                // backoff starts over only once it has (see `SETTLED_AFTER`).
                self.unauthorized_streak = 0;
                self.live.modify_snapshot(|s| s.apply_update(&update));
                for item in flatten(&update) {
                    let tracked = self
                        .live
                        .read_snapshot(|s| s.get_tracked(&item.series).is_some());
                    if tracked {
                        self.emit(FeedEvent::Update(item));
                    }
                }
                None
            }
            Ok(ServerFrame::Status(status)) => self.status(&status),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable frame on the metrics feed");
                None
            }
        }
    }

    fn status(&mut self, status: &Status) -> Option<Outcome> {
        if let Some(error) = refusal(status) {
            if error.kind() == ErrorKind::Unauthorized {
                self.client
                    .inner
                    .credentials
                    .invalidate_if_current(&self.auth);
            } else if error.kind() == ErrorKind::ServerStatus {
                tracing::debug!(code = status.status_code, "retryable status frame");
            }
            return Some(Outcome::Reconnect(error));
        }
        if status.status_code != 200 {
            self.emit(FeedEvent::Rejected(status_error(
                status,
                ErrorKind::ServerStatus,
            )));
        }
        None
    }

    /// Applies a command; `Err` ends the session (or the feed).
    async fn command(&mut self, command: Command, sink: Option<&mut Sink>) -> Result<(), Outcome> {
        match command {
            Command::Subscribe(series, reply) => {
                if self.subscriptions.contains(&series) {
                    let _ = reply.send(Ok(()));
                    return Ok(());
                }
                // The snapshot keeps one value per metric key (the service names no metric in
                // two families): a second family's subscription would share the first's entry
                // and lose its values once either was unsubscribed.
                if let Some(other) = self.subscriptions.iter().find(|s| same_key(s, &series)) {
                    let _ = reply.send(Err(Error::new(
                        ErrorKind::InvalidSubscription,
                        format!(
                            "{} is already subscribed as a {} metric",
                            series.metric_key().key(),
                            other.family()
                        ),
                    )));
                    return Ok(());
                }
                let frame = series.subscribe_frame().encode();
                self.live.modify_snapshot(|s| s.track(&series));
                // Grown one entry at a time: a feed holds a few series for its whole life,
                // and doubling would leave room for four 56-byte series after the third.
                self.subscriptions.reserve_exact(1);
                self.subscriptions.push(series);
                self.send_frame(frame, sink, reply).await
            }
            Command::Unsubscribe(series, reply) => {
                let Some(index) = self.subscriptions.iter().position(|s| *s == series) else {
                    let _ = reply.send(Ok(()));
                    return Ok(());
                };
                self.subscriptions.remove(index);
                self.live.modify_snapshot(|s| s.untrack(&series));
                let frame = series.unsubscribe_frame().encode();
                self.send_frame(frame, sink, reply).await
            }
            Command::Seed(report, reply) => {
                // Not while reconnecting: every value is unknown then on purpose (the feed
                // follows nothing), and a pull's values would outlive the connection.
                let filled = if sink.is_some() {
                    seed(&self.live, &self.subscriptions, &report)
                } else {
                    0
                };
                let _ = reply.send(filled);
                Ok(())
            }
            Command::List(reply) => {
                let _ = reply.send(self.subscriptions.clone());
                Ok(())
            }
            Command::Close => {
                if let Some(sink) = sink {
                    let _ = close(sink).await;
                }
                Err(Outcome::Closed(closed("closed by the application")))
            }
        }
    }

    async fn send_frame(
        &mut self,
        frame: Result<String, zd_wire::Error>,
        sink: Option<&mut Sink>,
        reply: oneshot::Sender<Result<(), Error>>,
    ) -> Result<(), Outcome> {
        let text = match frame {
            Ok(text) => text,
            Err(e) => {
                let _ = reply.send(Err(
                    Error::new(ErrorKind::InvalidSubscription, "encoding").with_source(e)
                ));
                return Ok(());
            }
        };
        // Recorded either way: if the write fails, the reconnect sends it.
        let _ = reply.send(Ok(()));
        match sink {
            Some(sink) => sink.send(Message::text(text)).await.map_err(|e| {
                Outcome::Reconnect(
                    Error::new(ErrorKind::Transport, "sending a subscription").with_source(e),
                )
            }),
            None => Ok(()),
        }
    }

    /// Sleeps before a reconnect attempt while still serving commands.
    async fn wait(&mut self, delay: Duration) -> Result<(), Error> {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return Ok(()),
                command = self.commands.recv() => {
                    let Some(command) = command else {
                        return Err(closed("every handle was dropped"));
                    };
                    if let Err(Outcome::Closed(e) | Outcome::Reconnect(e)) = self.command(*command, None).await {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Decides why the session's connection failed once a write to it has, reading what the
    /// server sent before it broke (see [`read_after_failed_write`]). The connection was up:
    /// its updates are applied like any other.
    async fn after_failed_write(&mut self, ws: &mut WsStream, write_error: Error) -> Error {
        read_after_failed_write(ws, write_error, |text| match self.frame(text) {
            Some(Outcome::Reconnect(error) | Outcome::Closed(error)) => Some(error),
            None => None,
        })
        .await
    }

    /// Queues an event without ever blocking the driver on a slow reader. An update that
    /// finds the queue full is dropped (the snapshot has its value); an event about the
    /// connection makes room instead (see [`crate::events::EventSender::send_lifecycle`]):
    /// the snapshot does not hold it, and a reader re-seeds on `Reconnected`.
    fn emit(&mut self, event: FeedEvent) {
        if self.lagged > 0 {
            match self.events.try_send(FeedEvent::Lagged(self.lagged)) {
                Ok(()) => self.lagged = 0,
                Err(TrySendError::Full) => {}
                Err(TrySendError::Closed) => return,
            }
        }
        if matches!(event, FeedEvent::Update(_)) {
            if let Err(TrySendError::Full) = self.events.try_send(event) {
                self.lagged += 1;
            }
        } else if let Ok(dropped) = self.events.send_lifecycle(event) {
            self.lagged += dropped;
        }
    }

    fn finish(self, error: Error) {
        tracing::debug!(error = %error, "feed closed");
        // The connection slot goes first: `close().await` returns on the state below, and a
        // `connect()` right after it must find the slot free, not still held by this task
        // (on another worker thread) until it has queued the last event.
        drop(self._slot);
        // Before the state and the event say so: whoever learns that the feed has ended
        // (a scrape after `close()`, a reader of `Closed`) finds no value it no longer
        // follows. Dropping the publisher would forget them too, only after both.
        self.live.modify_snapshot(Snapshot::forget_values);
        self.live.set_state(FeedState::Closed);
        let lagged = (self.lagged > 0).then_some(FeedEvent::Lagged(self.lagged));
        self.events
            .send_last(lagged.into_iter().chain([FeedEvent::Closed(error)]));
    }
}

async fn close(sink: &mut Sink) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    sink.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    })))
    .await
}

/// A step of a reconnect attempt: the connect and upgrade, or a write of subscriptions. Owns
/// what it uses, so the driver serves commands while it runs.
type AttemptStep = Pin<Box<dyn Future<Output = Result<(WsStream, Arc<Secret>), Error>> + Send>>;

/// Writes `frames` to a connection being set up; on failure, reads what the server sent for
/// a refusal.
///
/// Only status frames count there: the connection is not up, so an update it delivered is
/// neither applied nor reported, and does not make it count as working (values stay
/// unknown until updates arrive on a connection that is up, and a token refused right
/// after the upgrade keeps its unauthorized count).
async fn write_subscriptions(
    client: MetricsClient,
    mut ws: WsStream,
    auth: Arc<Secret>,
    frames: Vec<String>,
) -> Result<(WsStream, Arc<Secret>), Error> {
    let mut written = Ok(());
    for text in frames {
        written = ws.feed(Message::text(text)).await;
        if written.is_err() {
            break;
        }
    }
    if written.is_ok() {
        written = ws.flush().await;
    }
    match written {
        Ok(()) => Ok((ws, auth)),
        Err(e) => {
            let error = Error::new(ErrorKind::Transport, "resubscribing").with_source(e);
            Err(read_after_failed_write(&mut ws, error, |text| {
                let error = refusal_in(text)?;
                if error.kind() == ErrorKind::Unauthorized {
                    client.inner.credentials.invalidate_if_current(&auth);
                }
                Some(error)
            })
            .await)
        }
    }
}

/// Decides why a connection failed once a write to it has: a server that refuses a token
/// sends a 401 frame and closes right after the upgrade, so a client that writes first (its
/// subscriptions) sees the write fail while the refusal waits unread. Reading what already
/// arrived finds it (`classify` returns the error a text frame ends the connection with);
/// otherwise the write's own error stands.
async fn read_after_failed_write(
    ws: &mut WsStream,
    write_error: Error,
    mut classify: impl FnMut(&str) -> Option<Error>,
) -> Error {
    // What the server sent before the connection broke is already here; the bound only
    // guards against a peer that keeps the socket open yet refuses writes.
    let deadline = tokio::time::sleep(AFTER_FAILED_WRITE);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return write_error,
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if let Some(error) = classify(text.as_str()) {
                        return error;
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return write_error,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// The refusal a text frame carries, if any: a status frame, or an update whose status is
/// not 200, that ends the connection (see [`refusal`]).
fn refusal_in(text: &str) -> Option<Error> {
    match ServerFrame::decode_with(text, &CAPPED_BY_THE_SOCKET) {
        Ok(ServerFrame::Update(update)) => refusal(&Status {
            status_code: update.status_code,
            message: None,
        }),
        Ok(ServerFrame::Status(status)) => refusal(&status),
        _ => None,
    }
}

/// The error a status ends the connection with: unauthorized, rate limited, or another
/// retryable server status. `None` for 200, and for a refusal of one message that leaves
/// the connection up (reported as [`FeedEvent::Rejected`]).
fn refusal(status: &Status) -> Option<Error> {
    let kind = match status.status_code {
        200 => return None,
        401 => ErrorKind::Unauthorized,
        429 => ErrorKind::RateLimited,
        _ if status.is_retryable() => ErrorKind::ServerStatus,
        _ => return None,
    };
    Some(status_error(status, kind))
}

fn status_error(status: &Status, kind: ErrorKind) -> Error {
    let message = status
        .message
        .as_ref()
        .and_then(|m| m.as_text())
        .unwrap_or_default();
    Error::new(kind, "status frame")
        .with_status(status.status_code)
        .with_body(message.as_bytes())
}

fn closed(detail: &'static str) -> Error {
    Error::new(ErrorKind::Closed, detail)
}

/// Classifies a failed read: a frame over `max_frame_bytes` is [`ErrorKind::TooLarge`] (the
/// application's limit, not the network), anything else a transport failure.
fn read_error(error: tokio_tungstenite::tungstenite::Error) -> Error {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match error {
        WsError::Capacity(_) => {
            Error::new(ErrorKind::TooLarge, "a frame over max_frame_bytes").with_source(error)
        }
        other => Error::new(ErrorKind::Transport, "reading the feed").with_source(other),
    }
}

/// Fills the values of `report` for `followed` series that the stream has given nothing since
/// the connection came up; how many.
fn seed(live: &Publisher, followed: &[Series], report: &Report) -> usize {
    let mut filled = 0;
    live.modify_snapshot(|snapshot| {
        for update in &report.values {
            // `Series` equality includes the family: a pull of the other family's metric of
            // one key is not this feed's.
            if let Some(value) = update.value
                && followed.contains(&update.series)
                && snapshot.fill_unknown(&update.series, value)
            {
                filled += 1;
            }
        }
        filled > 0
    });
    filled
}

/// Whether `a` and `b` are one metric key, window and department subscribed in different
/// families.
fn same_key(a: &Series, b: &Series) -> bool {
    a.family() != b.family()
        && a.metric_key() == b.metric_key()
        && a.window() == b.window()
        && a.department_id() == b.department_id()
}

#[cfg(test)]
mod tests {
    use super::{Driver, Error, ErrorKind, Publisher, WsStream};

    /// The size of what `f` returns, read from its type without calling it.
    fn returned_size<A, B, R>(_: fn(A, B) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// A feed's task lives as long as the feed, one per feed. tokio aligns a task's cell to
    /// 128 bytes on x86_64 and adds 104 bytes to the future (header 32, scheduler and id 16,
    /// stage tag 8, trailer 48): a future of up to 536 bytes takes five cache lines, one
    /// byte more takes six, 128 bytes more per feed.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_feeds_task_fits_in_five_cache_lines() {
        let size = returned_size::<Driver, WsStream, _>(Driver::run);
        assert!(size <= 536, "the driver's future is {size} bytes");
    }

    /// In an outage every feed waits to reconnect, for up to two minutes at a time: what it holds
    /// meanwhile is the reconnect future, which must not carry the ~4 KiB connect and upgrade
    /// inline.
    #[tokio::test]
    async fn a_feed_waiting_to_reconnect_holds_under_a_kibibyte() {
        let client =
            crate::MetricsClient::builder(crate::StaticToken::bearer("token").expect("a token"))
                .base_url("http://127.0.0.1:9")
                .build()
                .expect("a client");
        let slot = client
            .inner
            .limits
            .reserve(&client.inner.agent)
            .expect("a slot");
        let (_commands, commands_rx) = crate::commands::channel(1);
        let (events, _events_rx) = crate::events::channel(1);
        let auth = std::sync::Arc::new(zd_auth::Secret::new("Bearer token"));
        let mut driver = Driver::new(client, slot, commands_rx, events, Publisher::new(), auth);
        let mut backoff = None;
        let reconnect = driver.reconnect(Error::new(ErrorKind::Transport, "lost"), &mut backoff);
        let size = std::mem::size_of_val(&reconnect);
        assert!(size <= 1024, "the reconnect future is {size} bytes");
    }
}
