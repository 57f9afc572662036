//! The [`Transport`] trait the client sends through, and the default hyper transport.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::Either;
use http_body::Body as _;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::Notify;

use crate::error::{Error, ErrorKind};

/// A boxed `Send` future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The request body type transports receive: a possibly streaming body.
pub type TransportBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// Sends one HTTP request and returns the whole (bounded) response.
///
/// The client calls this once per attempt; retries, auth and decoding live above it. Implement
/// it to plug in another HTTP stack or a recording fake.
pub trait Transport: Send + Sync + fmt::Debug + 'static {
    /// Sends `request` and collects the response body.
    ///
    /// # Errors
    /// [`ErrorKind::Transport`], [`ErrorKind::Timeout`] or [`ErrorKind::ResponseTooLarge`].
    fn send(
        &self,
        request: http::Request<TransportBody>,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, Error>>;
}

/// Settings for [`HyperTransport`].
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// TCP connect timeout (default 10 s).
    pub connect_timeout: Duration,
    /// How long a request may take, from sending it to the last byte of the response
    /// (default 60 s). For a streamed body (an attachment upload) the clock starts once the
    /// body is sent, and sending it is bounded by `upload_timeout` instead: a large file on a
    /// slow link would otherwise always time out.
    pub request_timeout: Duration,
    /// How long sending a streamed request body (an attachment upload) may take, from the
    /// start of the request to the body's last byte (default 10 min, enough for a 50 MB
    /// attachment at 85 KB/s). The response then has `request_timeout`.
    pub upload_timeout: Duration,
    /// How long an idle pooled connection is kept (default 90 s).
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per host (default 32).
    pub pool_max_idle_per_host: usize,
    /// The largest response body accepted (default 32 MiB).
    pub max_response_bytes: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            upload_timeout: Duration::from_secs(600),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 32,
            max_response_bytes: 32 * 1024 * 1024,
        }
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The default transport: hyper 1 with the hyper-util connection pool, rustls (ring) with the
/// webpki root certificates, HTTP/1.1 keep-alive, and timeouts.
#[derive(Clone)]
pub struct HyperTransport {
    client: HyperClient<Connector, TransportBody>,
    config: TransportConfig,
}

impl fmt::Debug for HyperTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperTransport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HyperTransport {
    /// A transport with `config`. Needs no runtime to construct; send from within tokio.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the TLS configuration cannot be built.
    pub fn new(config: TransportConfig) -> Result<Self, Error> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| Error::with_source(ErrorKind::Config, "TLS configuration", e))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .pool_timer(TokioTimer::new())
            .build(https);
        Ok(Self { client, config })
    }
}

impl Transport for HyperTransport {
    fn send(
        &self,
        request: http::Request<TransportBody>,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, Error>> {
        Box::pin(async move {
            // A body of known size (JSON, empty) is sent at once; one of unknown size is a
            // stream (an upload) that may take far longer to send than to be answered.
            let streamed = request.body().size_hint().exact().is_none();
            // Only an upload needs to tell when its body is out: no allocation for the rest.
            let sent = streamed.then(|| Arc::new(Notify::new()));
            let request = match &sent {
                Some(sent) => request.map(|body| {
                    BodyExt::boxed_unsync(SentSignal {
                        inner: body,
                        sent: Some(sent.clone()),
                    })
                }),
                None => request,
            };
            let limit = self.config.max_response_bytes;
            let work = async {
                let response =
                    self.client.request(request).await.map_err(|e| {
                        Error::with_source(ErrorKind::Transport, "sending request", e)
                    })?;
                let (parts, body) = response.into_parts();
                let collected = http_body_util::Limited::new(body, limit)
                    .collect()
                    .await
                    .map_err(|e| {
                        if e.is::<http_body_util::LengthLimitError>() {
                            Error::with_source(
                                ErrorKind::ResponseTooLarge,
                                format!("response over {limit} bytes"),
                                e,
                            )
                        } else {
                            Error::with_source(ErrorKind::Transport, "reading response body", e)
                        }
                    })?;
                Ok(http::Response::from_parts(parts, collected.to_bytes()))
            };
            let mut work = std::pin::pin!(work);
            if let Some(sent) = &sent {
                let body_sent = std::pin::pin!(sent.notified());
                let upload = futures_util::future::select(work.as_mut(), body_sent);
                match tokio::time::timeout(self.config.upload_timeout, upload).await {
                    // Answered before the body was all sent (an early 413, a broken
                    // connection): that is the outcome.
                    Ok(Either::Left((result, _))) => return result,
                    Ok(Either::Right(((), _))) => {}
                    Err(elapsed) => {
                        return Err(Error::with_source(
                            ErrorKind::Timeout,
                            format!(
                                "request body not sent within {:?}",
                                self.config.upload_timeout
                            ),
                            elapsed,
                        ));
                    }
                }
            }
            match tokio::time::timeout(self.config.request_timeout, work).await {
                Ok(result) => result,
                Err(elapsed) => Err(Error::with_source(
                    ErrorKind::Timeout,
                    "request timed out",
                    elapsed,
                )),
            }
        })
    }
}

/// A request body that signals when it has been sent in full: its last frame was taken, or
/// hyper dropped it (done writing it, or gave up on the connection).
struct SentSignal {
    inner: TransportBody,
    sent: Option<Arc<Notify>>,
}

impl SentSignal {
    fn signal(&mut self) {
        if let Some(sent) = self.sent.take() {
            // A stored permit, so the wait sees it even if it starts later.
            sent.notify_one();
        }
    }
}

impl Drop for SentSignal {
    fn drop(&mut self) {
        self.signal();
    }
}

impl http_body::Body for SentSignal {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(None) = polled {
            self.signal();
        } else if let std::task::Poll::Ready(Some(Ok(_))) = polled
            && self.inner.is_end_stream()
        {
            self.signal();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
