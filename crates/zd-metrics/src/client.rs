//! [`MetricsClient`]: one agent's credentials, the service address and the shared limits.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use backon::ExponentialBuilder;
use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;
use url::Url;
use zd_auth::{Credentials, Secret};

use crate::{Error, ErrorKind, Limits, transport};

/// The production service.
pub const DEFAULT_BASE_URL: &str = "https://rtm.zopim.com";

/// How a feed connects, keeps alive and reconnects.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FeedConfig {
    /// Delays between reconnect attempts. By default exponential from 1 s, doubling up to
    /// 60 s, each plus a random jitter of up to as much again (so the first delay is 1 to 2 s
    /// and none is over 2 minutes), with no cap on attempts or on their total delay. A
    /// longer wait that the failure asks for (a 429's `Retry-After`, the local request
    /// budget) replaces a shorter delay. The policy starts over after a connection that
    /// worked, whatever ended it (connections that keep ending on a frame over
    /// `max_frame_bytes` end the feed at the third within ten minutes).
    ///
    /// A policy with [`ExponentialBuilder::with_max_times`] or
    /// [`ExponentialBuilder::with_total_delay`] ends the feed once it runs out:
    /// [`crate::FeedEvent::Closed`] carries the failure of the last attempt. Note that
    /// [`ExponentialBuilder::new`] (and its `default()`) caps attempts at 3; start from
    /// `FeedConfig::default().reconnect`, or call [`ExponentialBuilder::without_max_times`],
    /// to keep retrying.
    pub reconnect: ExponentialBuilder,
    /// How often to send a WebSocket ping; must not be zero. Default 15 s.
    pub ping_interval: Duration,
    /// Silence (no frame of any kind, pongs included) after which the socket is presumed
    /// dead and replaced. Checked when a ping is due, so it must be longer than
    /// `ping_interval` (several intervals leave room for a late pong). Default 2 min.
    pub idle_timeout: Duration,
    /// Deadline for TCP, TLS and the upgrade. Default 30 s.
    pub connect_timeout: Duration,
    /// Largest frame accepted from the server, in bytes. Default 64 KiB. A larger frame ends
    /// the connection with [`ErrorKind::TooLarge`]; the feed reconnects with backoff (in
    /// case it was a one-off) and ends when three connections within ten minutes end on one.
    pub max_frame_bytes: usize,
    /// Events buffered for a reader that falls behind; beyond it the feed drops updates and
    /// reports [`crate::FeedEvent::Lagged`] instead of blocking (the snapshot stays
    /// current). Events about the connection (`Reconnecting`, `Reconnected`, `Rejected`)
    /// take the place of buffered updates, or go a few events past this bound (see
    /// [`crate::FeedEvent::Lagged`]). The final [`crate::FeedEvent::Closed`] is always
    /// delivered, past this bound if need be. Default 256.
    pub event_buffer: usize,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            reconnect: ExponentialBuilder::default()
                .with_min_delay(Duration::from_secs(1))
                .with_max_delay(Duration::from_secs(60))
                .with_factor(2.0)
                .with_jitter()
                .without_max_times(),
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(30),
            max_frame_bytes: 64 * 1024,
            event_buffer: 256,
        }
    }
}

impl FeedConfig {
    /// Refuses settings a feed cannot run with.
    fn validate(&self) -> Result<(), Error> {
        if self.ping_interval.is_zero() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "ping_interval must not be zero",
            ));
        }
        // Silence is measured when a ping is due: by then a quiet but live connection has
        // been silent for a whole interval, since the previous pong.
        if self.idle_timeout <= self.ping_interval {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "idle_timeout ({:?}) must be longer than ping_interval ({:?})",
                    self.idle_timeout, self.ping_interval
                ),
            ));
        }
        Ok(())
    }
}

/// A client of the Real Time Chat API acting as one agent.
///
/// Cheap to clone; clones share the agent's connection cap (10 feeds) and the account's
/// [`Limits`]. Give every client of the same account the same `Limits`.
#[derive(Clone)]
pub struct MetricsClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) credentials: Arc<dyn Credentials>,
    pub(crate) stream_url: Url,
    pub(crate) rest_base: Url,
    pub(crate) limits: Limits,
    pub(crate) agent: Arc<Semaphore>,
    pub(crate) connector: HttpsConnector<HttpConnector>,
    pub(crate) http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    pub(crate) feed: FeedConfig,
    pub(crate) rest_timeout: Duration,
    pub(crate) max_body_bytes: usize,
    /// The last authorization value handed to a feed, shared by every feed opened with it.
    last_auth: std::sync::Mutex<Option<Arc<Secret>>>,
}

impl fmt::Debug for MetricsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsClient")
            .field("stream_url", &self.inner.stream_url.as_str())
            .field("rest_base", &self.inner.rest_base.as_str())
            .field("credentials", &self.inner.credentials)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl MetricsClient {
    /// A client of the production service with Zendesk's limits and default settings.
    ///
    /// # Errors
    /// When TLS cannot be set up.
    pub fn new(credentials: impl Credentials) -> Result<Self, Error> {
        Self::builder(credentials).build()
    }

    /// A builder, to point at another address (the emulator) or share limits.
    pub fn builder(credentials: impl Credentials) -> MetricsClientBuilder {
        MetricsClientBuilder {
            credentials: Arc::new(credentials),
            base_url: DEFAULT_BASE_URL.to_owned(),
            limits: None,
            feed: FeedConfig::default(),
            rest_timeout: Duration::from_secs(30),
            max_body_bytes: 256 * 1024,
        }
    }

    /// The account limits this client spends from.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Feeds this agent (this client and its clones) holds open now.
    pub fn open_feeds(&self) -> usize {
        self.inner.limits.config().max_agent_connections - self.inner.agent.available_permits()
    }

    pub(crate) async fn authorization(&self) -> Result<Secret, Error> {
        self.inner.credentials.authorization().await.map_err(|e| {
            Error::new(ErrorKind::Credentials, "no Authorization value").with_source(e)
        })
    }

    /// [`MetricsClient::authorization`] as one shared copy per value: each feed keeps the
    /// value its connection was opened with (a refusal names it), and a thousand feeds of one
    /// token need not hold a thousand copies.
    pub(crate) async fn shared_authorization(&self) -> Result<Arc<Secret>, Error> {
        let auth = self.authorization().await?;
        let mut last = self
            .inner
            .last_auth
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*last {
            Some(shared) if **shared == auth => Ok(Arc::clone(shared)),
            _ => {
                let shared = Arc::new(auth);
                *last = Some(Arc::clone(&shared));
                Ok(shared)
            }
        }
    }
}

/// Builds a [`MetricsClient`].
#[must_use]
pub struct MetricsClientBuilder {
    credentials: Arc<dyn Credentials>,
    base_url: String,
    limits: Option<Limits>,
    feed: FeedConfig,
    rest_timeout: Duration,
    max_body_bytes: usize,
}

impl fmt::Debug for MetricsClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsClientBuilder")
            .field("base_url", &self.base_url)
            .field("credentials", &self.credentials)
            .field("limits", &self.limits)
            .field("feed", &self.feed)
            .finish_non_exhaustive()
    }
}

impl MetricsClientBuilder {
    /// The service root, `https://rtm.zopim.com` by default. The feed connects to
    /// `{base}/stream` (`wss` for `https`, `ws` for `http`) and REST requests go to
    /// `{base}/stream/...`.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// The account's shared limits (default: a fresh [`Limits`] with Zendesk's numbers).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Feed settings.
    pub fn feed_config(mut self, feed: FeedConfig) -> Self {
        self.feed = feed;
        self
    }

    /// Whole-request timeout of REST calls. Default 30 s.
    pub fn rest_timeout(mut self, timeout: Duration) -> Self {
        self.rest_timeout = timeout;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidUrl`] for a base URL that is not `http(s)://host[/path]`,
    /// [`ErrorKind::InvalidConfig`] for feed settings that cannot work (see [`FeedConfig`]),
    /// [`ErrorKind::Transport`] when TLS cannot be set up.
    pub fn build(self) -> Result<MetricsClient, Error> {
        self.feed.validate()?;
        let mut base = Url::parse(&self.base_url)
            .map_err(|e| Error::new(ErrorKind::InvalidUrl, self.base_url.clone()).with_source(e))?;
        // Before the URL is named in an error: its password would be in the message.
        if !base.username().is_empty() || base.password().is_some() {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                "a base URL may not carry user information (the token is the credential)",
            ));
        }
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                format!("{}: expected http(s)://host", self.base_url),
            ));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let rest_base = base
            .join("stream/")
            .map_err(|e| Error::new(ErrorKind::InvalidUrl, "stream path").with_source(e))?;
        let mut stream_url = base
            .join("stream")
            .map_err(|e| Error::new(ErrorKind::InvalidUrl, "stream path").with_source(e))?;
        let ws_scheme = if base.scheme() == "https" {
            "wss"
        } else {
            "ws"
        };
        stream_url
            .set_scheme(ws_scheme)
            .map_err(|()| Error::new(ErrorKind::InvalidUrl, "ws scheme"))?;
        let connector = transport::connector()?;
        let http = Client::builder(TokioExecutor::new()).build(connector.clone());
        let limits = self.limits.unwrap_or_default();
        let agent = limits.agent_semaphore();
        Ok(MetricsClient {
            inner: Arc::new(Inner {
                credentials: self.credentials,
                stream_url,
                rest_base,
                limits,
                agent,
                connector,
                http,
                feed: self.feed,
                rest_timeout: self.rest_timeout,
                max_body_bytes: self.max_body_bytes,
                last_auth: std::sync::Mutex::new(None),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use backon::BackoffBuilder as _;
    use zd_auth::StaticToken;

    use super::*;

    /// A token that cannot appear in a Debug dump by accident.
    const TOKEN: &str = "sekrit-7f3a9c-token";

    #[tokio::test]
    async fn feeds_of_one_token_share_one_copy_of_it() {
        let client = MetricsClient::builder(StaticToken::bearer(TOKEN).unwrap())
            .build()
            .unwrap();
        let first = client.shared_authorization().await.unwrap();
        let second = client.clone().shared_authorization().await.unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(first.expose_secret(), format!("Bearer {TOKEN}"));
    }

    #[tokio::test]
    async fn urls_follow_the_base() {
        let client = MetricsClient::builder(StaticToken::bearer("t").unwrap())
            .base_url("http://127.0.0.1:9000/rtm")
            .build()
            .unwrap();
        assert_eq!(
            client.inner.stream_url.as_str(),
            "ws://127.0.0.1:9000/rtm/stream"
        );
        assert_eq!(
            client.inner.rest_base.as_str(),
            "http://127.0.0.1:9000/rtm/stream/"
        );
        let prod = MetricsClient::new(StaticToken::bearer("t").unwrap()).unwrap();
        assert_eq!(prod.inner.stream_url.as_str(), "wss://rtm.zopim.com/stream");
        let err = MetricsClient::builder(StaticToken::bearer("t").unwrap())
            .base_url("ftp://x")
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidUrl);
        // User information would be dropped from the socket's upgrade (zd-ws refuses it) and
        // its password shown in errors naming the URL: refused at once, without naming it.
        for url in [
            "http://user:hunter2@127.0.0.1:9000/",
            "https://user@rtm.example/",
        ] {
            let err = MetricsClient::builder(StaticToken::bearer("t").unwrap())
                .base_url(url)
                .build()
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidUrl, "{url}");
            assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
        }
    }

    #[tokio::test]
    async fn debug_never_shows_the_token() {
        let builder = MetricsClient::builder(StaticToken::bearer(TOKEN).unwrap());
        let shown = format!("{builder:?}");
        assert!(!shown.contains(TOKEN), "{shown}");
        let client = builder.build().unwrap();
        let shown = format!("{client:?} {client:#?}");
        assert!(!shown.contains(TOKEN), "{shown}");
    }

    fn build_with(configure: impl FnOnce(&mut FeedConfig)) -> Result<MetricsClient, Error> {
        let mut config = FeedConfig::default();
        configure(&mut config);
        MetricsClient::builder(StaticToken::bearer("t").unwrap())
            .feed_config(config)
            .build()
    }

    /// A capped policy ends the feed once it runs out, so the default must have no cap
    /// (`ExponentialBuilder::new()` stops after 3), and its jitter keeps each delay under
    /// twice the 60 s cap.
    #[test]
    fn the_default_reconnect_policy_never_runs_out() {
        let delays: Vec<Duration> = FeedConfig::default().reconnect.build().take(1000).collect();
        assert_eq!(delays.len(), 1000);
        assert!(delays[0] >= Duration::from_secs(1) && delays[0] < Duration::from_secs(2));
        assert!(
            delays.iter().all(|d| *d < Duration::from_secs(120)),
            "{delays:?}"
        );
    }

    #[tokio::test]
    async fn feed_settings_that_cannot_work_are_refused() {
        let err = build_with(|c| c.ping_interval = Duration::ZERO).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(!err.is_retryable());
        let err = build_with(|c| {
            c.ping_interval = Duration::from_secs(30);
            c.idle_timeout = Duration::from_secs(10);
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        let err = build_with(|c| c.idle_timeout = c.ping_interval).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        build_with(|c| {
            c.ping_interval = Duration::from_millis(1);
            c.idle_timeout = Duration::from_millis(2);
        })
        .unwrap();
    }
}
