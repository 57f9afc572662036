//! `zd metrics watch | get | export --prometheus ADDR`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::Full;
use serde_json::json;
use zd_metrics::{
    Feed, FeedEvent, FeedHandle, Metric, MetricUpdate, MetricsClient, Series, StaticToken, Window,
};

use crate::cli::{MetricsCommand, MetricsTarget};
use crate::error::{CliError, Context as _, Kind, Result};
use crate::target::{Context, EmulatorLink};

fn metrics_err(what: &'static str) -> impl FnOnce(zd_metrics::Error) -> CliError {
    move |e| CliError::with(metrics_kind(&e), what, e)
}

/// The exit code's kind of a metrics failure: a 403 refuses the credentials (a token without
/// the `read` scope) as a 401 does, and a malformed base URL is a bad value, as a malformed
/// `--chat-url` is.
fn metrics_kind(error: &zd_metrics::Error) -> Kind {
    use zd_metrics::ErrorKind as K;
    match error.kind() {
        K::Unauthorized => Kind::Auth,
        K::HttpStatus | K::ServerStatus if error.status() == Some(403) => Kind::Auth,
        K::InvalidUrl => Kind::Usage,
        _ => Kind::Service,
    }
}

/// Every series of the catalogue for one department (or the account) and window.
pub(crate) fn all_series(window: Window, department: Option<u64>) -> Vec<Series> {
    Metric::KNOWN
        .iter()
        .map(|m| {
            let s = if m.is_windowed() {
                Series::windowed(m.clone(), window)
            } else {
                Series::metric(m.clone())
            };
            match department {
                Some(d) => s.department(d),
                None => s,
            }
        })
        .collect()
}

/// A client and, when it runs on an emulator, the emulator it needs alive.
struct Connected {
    client: MetricsClient,
    _emulator: Option<EmulatorLink>,
}

/// Picks the service and token the way agent commands do: a token goes to the explicit
/// metrics URL, else to the emulator given with `--emulator`, else to Zendesk; no token uses
/// the emulator (given or embedded) and its first agent's token. An explicit metrics URL
/// without a token is refused: the emulator's made-up token must not go to another host, and
/// silently ignoring the URL would hide a missing token.
async fn client(ctx: &Context, flags: &MetricsTarget) -> Result<Connected> {
    let token = flags
        .token
        .clone()
        .or_else(|| ctx.profile.chat_token.clone());
    let url = flags
        .metrics_url
        .clone()
        .or_else(|| ctx.profile.metrics_url.clone());
    let (token, url, emulator) = match (token, url) {
        (Some(token), url) => {
            let url = url
                .or_else(|| ctx.emulator_url().map(str::to_owned))
                .unwrap_or_else(|| zd_metrics::DEFAULT_BASE_URL.to_owned());
            (token, url, None)
        }
        (None, Some(_)) => {
            return Err(CliError::new(
                Kind::Usage,
                "a metrics URL (--metrics-url, ZENDESK_METRICS_URL or the profile's \
                 metrics_url) needs a token (--token, ZENDESK_CHAT_TOKEN or the profile's \
                 chat_token); without both, metrics commands use the emulator (--emulator URL, \
                 or an embedded one)",
            ));
        }
        (None, None) => {
            let emulator = ctx.emulator().await?;
            let account = emulator.account().await?;
            let token = account["agents"][0]["access_token"]
                .as_str()
                .ok_or_else(|| {
                    CliError::new(Kind::Service, "the emulator's account has no agent")
                })?;
            let url = emulator.base_url().to_owned();
            (zd_auth::Secret::new(token), url, Some(emulator))
        }
    };
    let credentials =
        StaticToken::bearer(token).context(Kind::Config, "the metrics token is empty")?;
    let client = MetricsClient::builder(credentials)
        .base_url(url)
        .build()
        .map_err(metrics_err("cannot build the metrics client"))?;
    Ok(Connected {
        client,
        _emulator: emulator,
    })
}

/// Opens a feed subscribed to every series; also gives how many series that is.
async fn subscribed_feed(client: &MetricsClient, flags: &MetricsTarget) -> Result<(Feed, usize)> {
    let mut feed = client
        .connect()
        .await
        .map_err(metrics_err("cannot open the metrics feed"))?;
    let series = all_series(Window::from_minutes(flags.window), flags.department);
    let subscribed = series.len();
    for one in series {
        if let Err(error) = feed.subscribe(one).await {
            if error.kind() == zd_metrics::ErrorKind::Closed {
                // The feed ended meanwhile (a refused token): its last event says why, where
                // "the feed has ended" would not.
                while let Some(event) = feed.next().await {
                    if let FeedEvent::Closed(reason) = event {
                        return Err(metrics_err("the metrics feed closed")(reason));
                    }
                }
            }
            return Err(metrics_err("cannot subscribe")(error));
        }
    }
    Ok((feed, subscribed))
}

/// What `watch` and `export` do with a feed's events other than updates: reconnects,
/// refusals and lag are told on stderr; the end of the feed, or every subscription of a
/// connection refused, ends the command with an error.
struct Follower {
    subscribed: usize,
    /// Subscriptions refused on the current connection (each reconnect sends them all again).
    refused: usize,
}

impl Follower {
    const fn new(subscribed: usize) -> Self {
        Self {
            subscribed,
            refused: 0,
        }
    }

    /// The update an event carries, if any.
    fn event(&mut self, event: FeedEvent) -> Result<Option<MetricUpdate>> {
        match event {
            FeedEvent::Update(update) => return Ok(Some(update)),
            FeedEvent::Reconnecting { attempt, error, .. } => {
                crate::out::note(format_args!("reconnecting (attempt {attempt}): {error}"));
            }
            FeedEvent::Reconnected => {
                self.refused = 0;
                crate::out::note(format_args!("reconnected"));
            }
            FeedEvent::Rejected(error) => {
                self.refused += 1;
                let status = error
                    .status()
                    .map(|s| format!(" (status {s})"))
                    .unwrap_or_default();
                crate::out::note(format_args!(
                    "zd: the service refused a subscription{status}: {}",
                    error.body().unwrap_or("no reason given"),
                ));
                if self.refused >= self.subscribed {
                    return Err(CliError::with(
                        Kind::Service,
                        format!(
                            "the service refused every subscription ({}); check --department \
                             and --window",
                            self.subscribed
                        ),
                        error,
                    ));
                }
            }
            FeedEvent::Lagged(dropped) => {
                crate::out::note(format_args!("fell behind: {dropped} events were dropped"));
            }
            FeedEvent::Closed(error) => {
                return Err(metrics_err("the metrics feed closed")(error));
            }
            other => tracing::debug!(?other, "feed event"),
        }
        Ok(None)
    }
}

/// One update as a JSON line.
pub(crate) fn update_json(series: &Series, value: Option<i64>) -> serde_json::Value {
    json!({
        "metric": series.metric_key().key(),
        "window": series.window().map(|w| w.minutes()),
        "department_id": series.department_id(),
        "value": value,
    })
}

/// Runs one metrics command.
pub(crate) async fn run(ctx: &Context, cmd: MetricsCommand) -> Result<()> {
    match cmd {
        MetricsCommand::Watch { target, count } => {
            // Listening before the feed opens: a Ctrl-C or SIGTERM closes the feed with a
            // Close frame and ends the command with success, like `--count` running out.
            let stop = crate::interrupt::stop_requested()?;
            tokio::pin!(stop);
            let Some((_c, mut feed, subscribed)) = open_feed(ctx, &target, stop.as_mut()).await?
            else {
                return Ok(());
            };
            let mut follower = Follower::new(subscribed);
            let mut seen = 0;
            loop {
                let event = tokio::select! {
                    biased;
                    () = &mut stop => break,
                    event = feed.next() => event,
                };
                let Some(event) = event else { break };
                if let Some(u) = follower.event(event)? {
                    crate::out::line(update_json(&u.series, u.value))?;
                    seen += 1;
                    if count.is_some_and(|c| seen >= c) {
                        break;
                    }
                }
            }
            close(&feed.handle()).await;
        }
        MetricsCommand::Get { target } => {
            let c = client(ctx, &target).await?;
            let window = Window::from_minutes(target.window);
            let mut chats = c.client.chats().window(window);
            let mut agents = c.client.agents();
            if let Some(d) = target.department {
                chats = chats.department(d);
                agents = agents.department(d);
            }
            let chats = chats
                .send()
                .await
                .map_err(metrics_err("cannot pull the chat metrics"))?;
            let agents = agents
                .send()
                .await
                .map_err(metrics_err("cannot pull the agent metrics"))?;
            let mut out = serde_json::Map::new();
            for series in all_series(window, target.department) {
                let value = chats.get(&series).or_else(|| agents.get(&series));
                out.insert(series.metric_key().key().to_owned(), json!(value));
            }
            // "Not Computed!" leaves every figure null, which a script must not read as
            // zeros or as missing data.
            let computed = chats.computed && agents.computed;
            out.insert("computed".to_owned(), json!(computed));
            if !computed {
                let which = match (chats.computed, agents.computed) {
                    (false, false) => "chat and agent",
                    (false, true) => "chat",
                    _ => "agent",
                };
                crate::out::note(format_args!(
                    "note: the service has not computed the {which} metrics yet (\"Not \
                     Computed!\"); their nulls are unknown values, not zeros"
                ));
            }
            crate::out::line(serde_json::Value::Object(out))?;
        }
        MetricsCommand::Export { target, prometheus } => {
            let stop = crate::interrupt::stop_requested()?;
            tokio::pin!(stop);
            let Some((_c, mut feed, subscribed)) = open_feed(ctx, &target, stop.as_mut()).await?
            else {
                return Ok(());
            };
            let handle = feed.handle();
            let mut registry = prometheus_client::registry::Registry::default();
            zd_metrics::prometheus::SnapshotCollector::new(feed.snapshot()).register(&mut registry);
            let mut first = feed.snapshot();
            let on_first_values = async move {
                // Tells scripts (and tests) when a scrape will hold values.
                if first
                    .wait_for(|s| s.iter().any(|(_, v)| v.is_some()))
                    .await
                    .is_ok()
                {
                    crate::out::note(format_args!("received the first values"));
                }
            };
            // A feed that has ended leaves the page empty for good: the exporter ends with it
            // (as `watch` does) so a supervisor sees the failure.
            let follow = async move {
                let mut follower = Follower::new(subscribed);
                while let Some(event) = feed.next().await {
                    follower.event(event)?;
                }
                Err(CliError::new(Kind::Service, "the metrics feed ended"))
            };
            serve_prometheus(
                prometheus,
                Arc::new(registry),
                on_first_values,
                follow,
                stop,
            )
            .await?;
            close(&handle).await;
        }
    }
    Ok(())
}

/// Connects and subscribes, unless `stop` comes first (`None`): a Ctrl-C while a slow or
/// unreachable service keeps the connect waiting ends the command at once, as it did before
/// the command listened for it.
async fn open_feed(
    ctx: &Context,
    target: &MetricsTarget,
    stop: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<Option<(Connected, Feed, usize)>> {
    let open = async {
        let c = client(ctx, target).await?;
        let (feed, subscribed) = subscribed_feed(&c.client, target).await?;
        Ok::<_, CliError>((c, feed, subscribed))
    };
    tokio::select! {
        biased;
        () = stop => Ok(None),
        opened = open => opened.map(Some),
    }
}

/// How long a stopping command waits for the feed's Close frame to go out.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Closes the feed with a Close frame (code 1000), waiting at most [`CLOSE_WAIT`]: an
/// unresponsive service must not keep a stopping command alive.
async fn close(feed: &FeedHandle) {
    if tokio::time::timeout(CLOSE_WAIT, feed.close())
        .await
        .is_err()
    {
        tracing::debug!("the metrics feed did not close in time");
    }
}

/// Pause after a failed accept before the next.
const ACCEPT_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// Serves `GET /metrics` in the Prometheus text format until `stop` (Ctrl-C, SIGTERM,
/// SIGHUP) or until `feed` ends.
async fn serve_prometheus(
    addr: SocketAddr,
    registry: Arc<prometheus_client::registry::Registry>,
    on_first_values: impl Future<Output = ()> + Send + 'static,
    feed: impl Future<Output = Result<()>>,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .context(Kind::Io, format!("cannot bind {addr}"))?;
    let local = listener
        .local_addr()
        .context(Kind::Io, "cannot read the bound address")?;
    crate::out::note(format_args!(
        "serving Prometheus metrics at http://{local}/metrics; Ctrl-C to stop"
    ));
    tokio::spawn(on_first_values);
    let serve = async {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Some errors last (EMFILE: out of file descriptors) and return at once:
                    // retrying without a pause would spin a core until a scrape ends.
                    tracing::warn!(%error, "cannot accept a metrics connection; retrying");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            };
            let registry = Arc::clone(&registry);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let registry = Arc::clone(&registry);
                        async move { Ok::<_, Infallible>(render(&req, &registry)) }
                    },
                );
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(error) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    tracing::debug!(%error, "metrics connection ended");
                }
            });
        }
    };
    tokio::select! {
        () = serve => Ok(()),
        result = feed => result,
        () = stop => Ok(()),
    }
}

fn render(
    req: &hyper::Request<hyper::body::Incoming>,
    registry: &prometheus_client::registry::Registry,
) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    if req.uri().path() != "/metrics" {
        *response.status_mut() = hyper::StatusCode::NOT_FOUND;
        return response;
    }
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
        *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        return response;
    }
    *response.body_mut() = Full::new(Bytes::from(text));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    response
}
