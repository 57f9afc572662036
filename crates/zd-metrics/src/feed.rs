//! [`Feed`]: the streaming connection as a `Stream` of events, with a cloneable
//! [`FeedHandle`] to subscribe, unsubscribe and read the live snapshot.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::sync::oneshot;
use zd_auth::Secret;

use crate::commands::{self, CommandSender};
use crate::driver::{self, Command};
use crate::events::{self, EventReceiver};
use crate::live::{Publisher, Shared, SnapshotReceiver, StateReceiver};
use crate::{Error, ErrorKind, MetricUpdate, MetricsClient, Report, Series, transport};

/// Something that happened on a feed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FeedEvent {
    /// A subscribed series has a new value.
    Update(MetricUpdate),
    /// The connection was lost (or never came up); the feed will try again after `delay`.
    /// Values in the snapshot are unknown until updates arrive on the new connection.
    Reconnecting {
        /// Reconnect attempts since the last working connection (one that stayed up past
        /// the moment a refusal comes, about ten seconds), starting at 1: a connection that
        /// comes up and fails before it worked does not start it over, even if it
        /// delivered updates.
        attempt: u32,
        /// How long the feed waits before the attempt.
        delay: std::time::Duration,
        /// Why the previous connection or attempt failed.
        error: Error,
    },
    /// A new connection is up and every subscription has been sent again.
    Reconnected,
    /// The server refused a message the client sent (a status frame such as 500); the
    /// connection stays up.
    ///
    /// The refusal does not say which message it refuses: the service's status frame is only
    /// `{"status_code":500,"message":...}`, and a subscribe it accepts gets no answer of its
    /// own, so the client cannot pair a refusal with a subscription. The event therefore
    /// names no [`Series`], and every subscription, the refused one included, stays in
    /// [`FeedHandle::subscriptions`] and is sent again after a reconnect (where it is
    /// refused again). The message text, where the server gave one, is in [`Error::body`];
    /// call [`FeedHandle::unsubscribe`] to drop a series known to be refused.
    Rejected(Error),
    /// The reader fell behind and this many events were dropped: updates, whose latest
    /// values the snapshot has. Events about the connection are not dropped for updates;
    /// only a reader so far behind that they alone overflow the buffer (a few events past
    /// [`crate::FeedConfig::event_buffer`]) loses the oldest of them, and never the latest
    /// [`FeedEvent::Reconnected`]: a reader that re-seeds on it has re-seeded after every
    /// reconnect it missed.
    Lagged(u64),
    /// The feed has ended; no more events follow. [`ErrorKind::Closed`] after
    /// [`FeedHandle::close`]; [`ErrorKind::Unauthorized`] when the token is refused twice in a
    /// row; the failure itself when retrying cannot help ([`Error::is_retryable`] is false:
    /// an HTTP 403 on the upgrade, credentials that cannot be produced);
    /// [`ErrorKind::TooLarge`] when three connections within ten minutes end on a frame over
    /// [`crate::FeedConfig::max_frame_bytes`]; the failure of the last attempt when a
    /// [`crate::FeedConfig::reconnect`] policy with a cap on attempts or total delay has run
    /// out.
    Closed(Error),
}

/// Where a feed's connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedState {
    /// Connected; subscriptions are live.
    Active,
    /// Waiting to reconnect, or connecting.
    Reconnecting {
        /// Attempts since the last working connection.
        attempt: u32,
    },
    /// Ended; the snapshot's values are unknown from then on.
    Closed,
}

/// A streaming connection to the Real Time Chat API.
///
/// Poll it as a [`Stream`] of [`FeedEvent`]s, or only read the [`Snapshot`](crate::Snapshot) through
/// [`FeedHandle::snapshot`]. The connection is driven by a task spawned on the current tokio
/// runtime; it reconnects with jittered backoff and resubscribes everything, and ends when
/// [`FeedHandle::close`] is called or when the `Feed` and all its handles are dropped (at
/// once, even in the middle of a connection attempt).
///
/// # Cancel safety
/// `poll_next` is cancel safe: an event is removed from the buffer only when it is returned.
#[derive(Debug)]
pub struct Feed {
    handle: FeedHandle,
    events: EventReceiver,
}

/// Controls a [`Feed`]: cheap to clone, usable from any task.
#[derive(Debug, Clone)]
pub struct FeedHandle {
    commands: CommandSender,
    /// The snapshot and state, shared with the driver.
    live: Arc<Shared>,
}

impl MetricsClient {
    /// Opens a feed: reserves one of the agent's 10 and the account's 1000 connection slots,
    /// spends one request of the 200/minute budget, and connects with the credentials'
    /// `Authorization` value. Must be called inside a tokio runtime (it spawns the driver).
    ///
    /// # Errors
    /// [`ErrorKind::AgentConnectionCap`] / [`ErrorKind::AccountConnectionCap`] /
    /// [`ErrorKind::LocalRateLimited`] without sending anything; [`ErrorKind::RateLimited`]
    /// for an HTTP 429 on the upgrade; [`ErrorKind::Unauthorized`] for an HTTP 401;
    /// [`ErrorKind::Credentials`], [`ErrorKind::Transport`], [`ErrorKind::Timeout`]. A token
    /// refused with a 401 status frame after the upgrade arrives as
    /// [`FeedEvent::Closed`] on the stream.
    pub async fn connect(&self) -> Result<Feed, Error> {
        let slot = self.inner.limits.reserve(&self.inner.agent)?;
        let (ws, auth) = self.open_socket().await?;
        let config = &self.inner.feed;
        let (commands_tx, commands_rx) = commands::channel(32);
        let (events_tx, events_rx) = events::channel(config.event_buffer);
        let live = Publisher::new();
        let shared = live.shared();
        let driver = driver::Driver::new(self.clone(), slot, commands_rx, events_tx, live, auth);
        tokio::spawn(driver.run(ws));
        Ok(Feed {
            handle: FeedHandle {
                commands: commands_tx,
                live: shared,
            },
            events: events_rx,
        })
    }

    /// One connection attempt: budget, credentials, upgrade. Returns the socket and the
    /// authorization it was opened with, so that a later refusal names that token.
    pub(crate) async fn open_socket(&self) -> Result<(transport::WsStream, Arc<Secret>), Error> {
        self.inner.limits.take_request()?;
        let auth = self.shared_authorization().await?;
        let config = &self.inner.feed;
        let result = transport::open_ws(
            &self.inner.connector,
            &self.inner.stream_url,
            &auth,
            config.max_frame_bytes,
            config.connect_timeout,
        )
        .await;
        if let Err(e) = &result
            && e.kind() == ErrorKind::Unauthorized
        {
            self.inner.credentials.invalidate_if_current(&auth);
        }
        result.map(|ws| (ws, auth))
    }
}

impl Feed {
    /// A handle to control the feed from elsewhere.
    pub fn handle(&self) -> FeedHandle {
        self.handle.clone()
    }

    /// Subscribes to a series; see [`FeedHandle::subscribe`].
    ///
    /// # Errors
    /// As [`FeedHandle::subscribe`].
    pub async fn subscribe(&self, series: Series) -> Result<(), Error> {
        self.handle.subscribe(series).await
    }

    /// Unsubscribes from a series; see [`FeedHandle::unsubscribe`].
    ///
    /// # Errors
    /// As [`FeedHandle::unsubscribe`].
    pub async fn unsubscribe(&self, series: Series) -> Result<(), Error> {
        self.handle.unsubscribe(series).await
    }

    /// The live snapshot; see [`FeedHandle::snapshot`].
    pub fn snapshot(&self) -> SnapshotReceiver {
        self.handle.snapshot()
    }

    /// Only the metric updates, as a stream that ends when the feed does.
    pub fn updates(self) -> impl Stream<Item = MetricUpdate> + Send {
        futures_util::StreamExt::filter_map(self, |event| async move {
            match event {
                FeedEvent::Update(update) => Some(update),
                _ => None,
            }
        })
    }
}

impl Stream for Feed {
    type Item = FeedEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<FeedEvent>> {
        self.events.poll_recv(cx)
    }
}

impl FeedHandle {
    /// Subscribes to a series and starts tracking it in the snapshot (value unknown until an
    /// update arrives). The subscription is sent again after every reconnect. Subscribing to a
    /// series already subscribed does nothing. While the feed is reconnecting the frame is
    /// sent once the new connection is up.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidSubscription`] when the window does not fit the metric, or when the
    /// feed already follows the same metric, window and department in the other family (the
    /// service names no metric in two; the snapshot keeps one value per metric);
    /// [`ErrorKind::Closed`] when the feed has ended.
    pub async fn subscribe(&self, series: Series) -> Result<(), Error> {
        series.validate()?;
        self.request(|reply| Command::Subscribe(series, reply))
            .await
    }

    /// Unsubscribes from a series and drops it from the snapshot.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] when the feed has ended.
    pub async fn unsubscribe(&self, series: Series) -> Result<(), Error> {
        self.request(|reply| Command::Unsubscribe(series, reply))
            .await
    }

    /// The series subscribed now: every series subscribed and not unsubscribed, including
    /// one the server refused (a refusal cannot be traced to its series; see
    /// [`FeedEvent::Rejected`]).
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] when the feed has ended.
    pub async fn subscriptions(&self) -> Result<Vec<Series>, Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::List(tx)).await?;
        rx.await.map_err(|_| closed())
    }

    /// Fills in, from a REST pull, the values the snapshot does not know yet of series this
    /// feed follows, and returns how many it filled. The service may send a series' first
    /// value only when it changes, and until then a dashboard (or the Prometheus export)
    /// would show nothing: seed it with one pull of the same metrics. A value the stream
    /// already gave on this connection (`null` included) is newer and is kept; series the
    /// feed does not follow (family included) are passed over; and nothing is filled while
    /// the feed reconnects (every value is unknown then), so pull and seed again once
    /// [`FeedHandle::state`] is [`FeedState::Active`] again (or on
    /// [`FeedEvent::Reconnected`]). A pull made before a reconnect and seeded after it
    /// brings back values from before the outage: pull after the connection is up. A series
    /// the service refused to subscribe keeps its seeded value (a refusal cannot be traced
    /// to its series). No [`FeedEvent::Update`] is sent for seeded values.
    ///
    /// ```no_run
    /// # async fn run(client: zd_metrics::MetricsClient) -> Result<(), zd_metrics::Error> {
    /// use zd_metrics::{Metric, Series};
    /// let feed = client.connect().await?;
    /// feed.subscribe(Series::metric(Metric::IncomingChats)).await?;
    /// let pulled = client.chats().send().await?;
    /// feed.handle().seed(&pulled).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] when the feed has ended.
    pub async fn seed(&self, report: &Report) -> Result<usize, Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Seed(Box::new(report.clone()), tx))
            .await?;
        rx.await.map_err(|_| closed())
    }

    /// A receiver of the live [`Snapshot`](crate::Snapshot): the latest value of every subscribed series per
    /// department. `changed().await` wakes on every change and fails once the feed has ended.
    /// Values are unknown while the feed reconnects and after it has ended.
    pub fn snapshot(&self) -> SnapshotReceiver {
        SnapshotReceiver::new(Arc::clone(&self.live))
    }

    /// A receiver of the connection state.
    pub fn state(&self) -> StateReceiver {
        StateReceiver::new(Arc::clone(&self.live))
    }

    /// Closes the connection (close code 1000) and ends the feed; returns once it has ended
    /// (its state is [`FeedState::Closed`] and its snapshot holds no values). Served at once,
    /// also while the feed is waiting to reconnect or a connection attempt is under way (the
    /// attempt is abandoned).
    pub async fn close(&self) {
        // A failed send means the driver is already gone: the end the wait below sees too.
        let _ = self.send(Command::Close).await;
        // The feed's end, not the command's receipt, lets the caller rely on it (a scrape right
        // after `close` exports nothing). Fails only if the driver is already gone.
        let _ = self.state().wait_for(|s| s == FeedState::Closed).await;
    }

    async fn request(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<(), Error>>) -> Command,
    ) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.send(command(tx)).await?;
        rx.await.map_err(|_| closed())?
    }

    async fn send(&self, command: Command) -> Result<(), Error> {
        self.commands
            .send(Box::new(command))
            .await
            .map_err(|_| closed())
    }
}

fn closed() -> Error {
    Error::new(ErrorKind::Closed, "the feed has ended")
}
