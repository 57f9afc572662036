//! Sockets: one rustls (ring) connector for both the WebSocket feed and the REST client, and
//! the authenticated WebSocket upgrade (done by `zd-ws`, the token kept out of the request
//! tungstenite logs).

use std::sync::OnceLock;
use std::time::Duration;

use http::header::{AUTHORIZATION, USER_AGENT};
use http::{HeaderMap, HeaderValue};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use url::Url;
use zd_auth::Secret;
use zd_ws::{Secrets, Socket};

use crate::{Error, ErrorKind};

/// The socket under a feed: TCP, TLS unless the URL is `ws://`, then WebSocket framing.
///
/// Boxed: the driver's futures move it between states; behind a pointer each state holds 8
/// bytes instead of a copy of it.
pub(crate) type WsStream = Box<WebSocketStream<Socket>>;

pub(crate) const USER_AGENT_VALUE: &str = concat!("zd-metrics/", env!("CARGO_PKG_VERSION"));

/// The process's connector, shared by every client: a rustls configuration holds the parsed
/// root store and a session cache (about 25 KiB), which a process with a client per agent
/// would otherwise pay once per agent.
pub(crate) fn connector() -> Result<HttpsConnector<HttpConnector>, Error> {
    static SHARED: OnceLock<HttpsConnector<HttpConnector>> = OnceLock::new();
    if let Some(connector) = SHARED.get() {
        return Ok(connector.clone());
    }
    let connector = new_connector()?;
    Ok(SHARED.get_or_init(|| connector).clone())
}

fn new_connector() -> Result<HttpsConnector<HttpConnector>, Error> {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    // Frames are small and latency-sensitive: without this, Nagle's algorithm holds a
    // subscribe sent right after another until the peer's delayed ACK (~40 ms).
    tcp.set_nodelay(true);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| Error::new(ErrorKind::Transport, "TLS setup").with_source(e))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp))
}

/// Buffers sized for small JSON frames: the defaults (128 KiB each way) would dominate the
/// memory of a process that holds many feeds. An update frame is about a hundred bytes, and
/// the read buffer starts at 128: tungstenite grows it to fit a larger frame (up to
/// `max_frame_bytes`) when one arrives, and never shrinks it. It also reads at most this much
/// per call, which costs a larger frame more reads; a feed gets a few small frames a second.
/// Starting at 256 cost 250 bytes a feed more on average (`cargo xtask bench`'s 1,000 feeds):
/// when a read ends inside the next frame, the buffer (a `BytesMut`) moves that frame's start
/// to its front only if it is no longer than what was consumed, and otherwise doubles.
pub(crate) fn ws_config(max_frame_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(128)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(Some(max_frame_bytes))
        .max_frame_size(Some(max_frame_bytes))
}

/// Opens the WebSocket with `Authorization` on the upgrade and maps refusals to typed errors.
pub(crate) async fn open_ws(
    connector: &HttpsConnector<HttpConnector>,
    url: &Url,
    authorization: &Secret,
    max_frame_bytes: usize,
    timeout: Duration,
) -> Result<WsStream, Error> {
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| Error::new(ErrorKind::InvalidUrl, url.to_string()).with_source(e))?;
    let mut auth = HeaderValue::from_str(authorization.expose_secret()).map_err(|e| {
        Error::new(
            ErrorKind::Credentials,
            "authorization value is not a valid header",
        )
        .with_source(e)
    })?;
    auth.set_sensitive(true);
    // Not in `request`: the upgrade adds it to the head after tungstenite built it, because
    // tungstenite logs the head it builds (see `zd_ws::Secrets`).
    let secrets = Secrets::new().with_header(AUTHORIZATION, auth);
    request
        .headers_mut()
        .insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    let uri = request.uri().clone();

    // Named in every failure: "connection refused" alone does not say which of the
    // configured endpoints (Zendesk, an emulator, a proxy) was unreachable.
    let origin = url.origin().ascii_serialization();
    let handshake = async {
        let socket = zd_ws::connect(connector, &uri)
            .await
            .map_err(|e| ws_error(e, &origin))?;
        zd_ws::upgrade(socket, request, &secrets, ws_config(max_frame_bytes))
            .await
            .map(Box::new)
            .map_err(|e| ws_error(e, &origin))
    };
    tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!("no upgrade from {origin} within {timeout:?}"),
            )
        })?
}

/// Maps a failed connect or upgrade to a typed error: a refusal by its status (see
/// [`status_error`]), anything else to a transport error keeping its cause (tungstenite's
/// error where there is one, as when tungstenite did the handshake).
fn ws_error(error: zd_ws::Error, origin: &str) -> Error {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let upgrade = Error::new(ErrorKind::Transport, "WebSocket upgrade");
    match error {
        zd_ws::Error::Refused(refusal) => status_error(
            refusal.status().as_u16(),
            refusal.headers(),
            refusal.body(),
            "WebSocket upgrade",
        ),
        zd_ws::Error::Connect { source, .. } => {
            Error::new(ErrorKind::Transport, format!("connecting to {origin}"))
                .with_source(BoxedSource(source))
        }
        zd_ws::Error::InvalidUrl => {
            Error::new(ErrorKind::InvalidUrl, origin.to_owned()).with_source(error)
        }
        zd_ws::Error::Handshake(e) | zd_ws::Error::Request(e) => upgrade.with_source(e),
        zd_ws::Error::Io(e) => upgrade.with_source(WsError::Io(e)),
        other => upgrade.with_source(other),
    }
}

/// Maps a refused HTTP exchange (upgrade or REST) to a typed error.
pub(crate) fn status_error(status: u16, headers: &HeaderMap, body: &[u8], what: &str) -> Error {
    let kind = match status {
        401 => ErrorKind::Unauthorized,
        429 => ErrorKind::RateLimited,
        _ => ErrorKind::HttpStatus,
    };
    Error::new(kind, what.to_owned())
        .with_status(status)
        .with_body(body)
        .with_retry_after(retry_after(headers))
}

/// The longest `Retry-After` honoured: a hostile or broken server must not park a feed for
/// days (or overflow a deadline). Past this the feed retries anyway, still rate limited locally.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(10 * 60);

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    zd_auth::retry_after::from_headers(headers).map(|wait| wait.min(MAX_RETRY_AFTER))
}

/// Adapts a boxed error to a sized `std::error::Error` so it can be a source.
#[derive(Debug)]
pub(crate) struct BoxedSource(pub(crate) Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for BoxedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BoxedSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::RETRY_AFTER;

    fn with_retry_after(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        status_error(429, &headers, b"", "test").retry_after()
    }

    #[test]
    fn failed_upgrades_are_transport_errors_that_keep_their_cause() {
        use std::error::Error as _;
        use tokio_tungstenite::tungstenite::Error as WsError;
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let err = ws_error(zd_ws::Error::Io(io), "ws://h");
        assert_eq!(err.kind(), ErrorKind::Transport);
        let source = err.source().and_then(|s| s.downcast_ref::<WsError>());
        assert!(matches!(source, Some(WsError::Io(_))), "{err:?}");
        let err = ws_error(
            zd_ws::Error::Connect {
                origin: "ws://h:80".to_owned(),
                source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
            },
            "ws://h",
        );
        assert_eq!(err.kind(), ErrorKind::Transport);
        assert_eq!(err.to_string(), "transport error: connecting to ws://h");
        assert!(err.source().is_some());
    }

    #[test]
    fn retry_after_is_read_and_capped() {
        assert_eq!(with_retry_after("30"), Some(Duration::from_secs(30)));
        assert_eq!(with_retry_after("600"), Some(MAX_RETRY_AFTER));
        assert_eq!(with_retry_after("601"), Some(MAX_RETRY_AFTER));
        // A day, or an absurd wait, is capped.
        assert_eq!(with_retry_after("86400"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            with_retry_after("18446744073709551615"),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(with_retry_after("soon"), None);
        // A proxy's HTTP date: long past, so no wait; far ahead, capped.
        assert_eq!(
            with_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(
            with_retry_after("Wed, 21 Oct 2099 07:28:00 GMT"),
            Some(MAX_RETRY_AFTER)
        );
    }
}
