//! The two ways out: `startAgentSession` over HTTP(S) and the WebSocket.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use zd_wire::chat::GraphQlResponse;

use crate::error::{Error, ErrorKind, ServiceError, excerpt, names_documented};
use crate::ops::{StartAgentSession, StartAgentSessionVariables};

/// The open WebSocket: TCP, or boxed TLS for `wss://`, under WebSocket framing.
pub(crate) type Socket = WebSocketStream<zd_ws::Socket>;

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The TLS settings, built once per process: the parsed root store is the largest thing a
/// session would otherwise carry (over 100 KiB), and it never changes.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, Error> {
    static TLS: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(tls) = TLS.get() {
        return Ok(Arc::clone(tls));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::with_source(ErrorKind::Http, e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::clone(TLS.get_or_init(|| Arc::new(tls))))
}

/// How much tungstenite reads per call. It zero-fills this much before every read, so the size
/// is paid (and pulled through the cache) per frame; its default, 128 KiB, also stays resident
/// per session. Chat frames are a few hundred bytes, so 2 KiB takes a frame, usually several, per
/// read; a larger frame still gets its whole length reserved and arrives in 2 KiB reads.
const READ_BUFFER_BYTES: usize = 2 * 1024;

/// Largest `startAgentSession` answer read.
const MAX_HTTP_BODY: usize = 64 * 1024;

/// What `startAgentSession` gave.
#[derive(Clone)]
pub(crate) struct Started {
    pub(crate) websocket_url: String,
    pub(crate) session_id: String,
    pub(crate) client_id: String,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// HTTP client and TLS settings, shared by every (re)start of one session.
#[derive(Clone)]
pub(crate) struct Transport {
    http: HttpClient,
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transport")
    }
}

impl Transport {
    /// rustls with the ring provider chosen here, explicitly, and the webpki roots.
    pub(crate) fn new() -> Result<Self, Error> {
        let tls = tls_config()?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .build();
        let http = Client::builder(TokioExecutor::new()).build(https);
        Ok(Self { http, tls })
    }

    /// `POST {endpoint}` with `startAgentSession(access_token)`.
    pub(crate) async fn start_agent_session(
        &self,
        endpoint: &url::Url,
        access_token: &str,
    ) -> Result<Started, Error> {
        use cynic::MutationBuilder;
        let op = StartAgentSession::build(StartAgentSessionVariables {
            access_token: access_token.to_owned(),
        });
        let body = serde_json::to_vec(&op).map_err(|e| Error::with_source(ErrorKind::Decode, e))?;
        let req = http::Request::post(endpoint.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("zd-agent/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Error::with_source(ErrorKind::Http, e))?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| Error::with_source(ErrorKind::Http, e))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_HTTP_BODY)
            .collect()
            .await
            .map_err(|e| Error::with_source(ErrorKind::Http, e))?
            .to_bytes();
        started_from(status, &String::from_utf8_lossy(&body))
    }

    /// Opens the WebSocket (TLS for `wss://`).
    ///
    /// The URL's path (`…/{session_id}:{client_id}`) is all it takes to use the session, so
    /// tungstenite, which logs the request head it builds at trace level, is given `/` and
    /// zd-ws puts the real path in afterwards.
    pub(crate) async fn connect(
        &self,
        url: &str,
        max_frame_bytes: usize,
        timeout: Duration,
    ) -> Result<Socket, Error> {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .max_message_size(Some(max_frame_bytes))
            .max_frame_size(Some(max_frame_bytes));
        let connect = async {
            let url: http::Uri = url
                .parse()
                .map_err(|e| Error::with_source(ErrorKind::WebSocket, e))?;
            let (request, secrets) = zd_ws::request_hiding_target(&url)
                .map_err(|e| Error::with_source(ErrorKind::WebSocket, e))?;
            // Built per connect, not kept: it only wraps the shared TLS settings, and a
            // session connects rarely.
            let connector = zd_ws::connector(Arc::clone(&self.tls));
            let socket = zd_ws::connect(&connector, &url)
                .await
                .map_err(|e| Error::with_source(ErrorKind::WebSocket, e))?;
            // A refusal's body would only be dropped (the error keeps the status): no reason
            // to wait for it.
            zd_ws::upgrade_skipping_refusal_body(socket, request, &secrets, config)
                .await
                .map_err(|e| Error::with_source(ErrorKind::WebSocket, e))
        };
        match tokio::time::timeout(timeout, connect).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(ErrorKind::Timeout)),
        }
    }
}

/// The session a `startAgentSession` answer (`status`, body `text`) gives, or why it gives none.
fn started_from(status: http::StatusCode, text: &str) -> Result<Started, Error> {
    // The service answers GraphQL errors (bad token) with 200; anything else non-2xx
    // without a GraphQL body is a transport-level failure.
    let parsed: Result<GraphQlResponse<'_>, _> = serde_json::from_str(text);
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) if status.is_success() => return Err(Error::with_source(ErrorKind::Decode, e)),
        Err(_) => {
            return Err(Error::new(ErrorKind::HttpStatus {
                status: status.as_u16(),
                body: excerpt(text),
            }));
        }
    };
    // GraphQL errors decide when the answer is a success (a bad token) or when one carries a
    // documented name (whose retry rule then applies). Otherwise a failed status says more
    // than nameless errors do: a 503 with `{"errors":"Service Unavailable"}` must stay a
    // retryable 503, not become a permanent refusal.
    if let Some(errors) = parsed.errors.as_ref().filter(|e| !e.is_empty())
        && (status.is_success() || names_documented(errors))
    {
        return Err(Error::new(ErrorKind::Service(
            errors.iter().map(ServiceError::from_wire).collect(),
        )));
    }
    if !status.is_success() {
        return Err(Error::new(ErrorKind::HttpStatus {
            status: status.as_u16(),
            body: excerpt(text),
        }));
    }
    let data: StartAgentSession = parsed
        .decode_data()
        .map_err(|e| Error::with_source(ErrorKind::Decode, e))?
        .ok_or_else(|| {
            Error::with_source(
                ErrorKind::Decode,
                "startAgentSession answered neither data nor errors",
            )
        })?;
    let p = data.start_agent_session;
    let missing = |field: &str| {
        Error::with_source(
            ErrorKind::Decode,
            format!("startAgentSession answered without {field}"),
        )
    };
    Ok(Started {
        websocket_url: p.websocket_url.ok_or_else(|| missing("websocket_url"))?,
        session_id: p.session_id.ok_or_else(|| missing("session_id"))?,
        client_id: p.client_id.ok_or_else(|| missing("client_id"))?,
    })
}

/// Sends the close frame and flushes it, for at most `deadline`; says whether it got out.
///
/// A peer that reads nothing leaves the socket's send buffer full, and the close frame's write
/// would then wait forever: a stopping or reconnecting session must not.
pub(crate) async fn close_within<S>(socket: &mut WebSocketStream<S>, deadline: Duration) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    matches!(
        tokio::time::timeout(deadline, socket.close(None)).await,
        Ok(Ok(()))
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::{SinkExt, StreamExt};
    use tokio::time::Instant;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::{close_within, started_from};
    use crate::error::ErrorKind;

    /// The cause an error gives, as text.
    fn cause(e: &crate::Error) -> Option<String> {
        std::error::Error::source(e).map(ToString::to_string)
    }

    #[test]
    fn a_start_answer_missing_a_field_names_it() {
        let ok = http::StatusCode::OK;
        let text = r#"{"data":{"startAgentSession":
            {"websocket_url":"wss://h/s","session_id":null,"client_id":"c"}}}"#;
        let e = started_from(ok, text).expect_err("no session id");
        assert!(matches!(e.kind(), ErrorKind::Decode), "{e:?}");
        assert_eq!(
            cause(&e).as_deref(),
            Some("startAgentSession answered without session_id")
        );
        let e = started_from(ok, r#"{"data":null}"#).expect_err("no data");
        assert!(matches!(e.kind(), ErrorKind::Decode), "{e:?}");
        assert!(
            cause(&e).is_some_and(|c| c.contains("neither data nor errors")),
            "{e:?}"
        );
        let whole = r#"{"data":{"startAgentSession":
            {"websocket_url":"wss://h/s","session_id":"s","client_id":"c"}}}"#;
        let started = started_from(ok, whole).expect("a whole answer");
        assert_eq!(started.session_id, "s");
    }

    /// A one-shot HTTP server on loopback that reads a request and answers `status` with the
    /// JSON `body`; its URL.
    async fn answer_once(status: &'static str, body: &'static str) -> url::Url {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("bound");
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("a client");
            let mut request = Vec::new();
            let mut chunk = [0_u8; 4096];
            // The whole request (headers, then Content-Length bytes) before answering.
            loop {
                let n = stream.read(&mut chunk).await.expect("reads");
                request.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|l| l.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
                assert!(n > 0, "the request ended early");
            }
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(answer.as_bytes()).await.expect("writes");
            let _ = stream.shutdown().await;
        });
        format!("http://{addr}/graphql").parse().expect("a URL")
    }

    #[tokio::test]
    async fn a_failed_http_status_with_nameless_errors_stays_a_retryable_status() {
        let transport = super::Transport::new().expect("a transport");
        for (status, body) in [
            (
                "503 Service Unavailable",
                r#"{"errors":"Service Unavailable"}"#,
            ),
            (
                "429 Too Many Requests",
                r#"{"errors":["Too many requests"]}"#,
            ),
            (
                "502 Bad Gateway",
                r#"{"errors":[{"message":"upstream"}],"data":null}"#,
            ),
        ] {
            let url = answer_once(status, body).await;
            let e = transport
                .start_agent_session(&url, "token")
                .await
                .expect_err(status);
            assert!(
                matches!(e.kind(), ErrorKind::HttpStatus { status: s, .. } if status.starts_with(&s.to_string())),
                "{status}: {e:?}"
            );
            assert!(e.is_retryable(), "{status}: {e:?}");
        }
        // A documented name decides, whatever the status; a success status with errors is the
        // service refusing.
        let url = answer_once(
            "401 Unauthorized",
            r#"{"errors":[{"name":"UNAUTHORIZED","message":"Invalid access token"}]}"#,
        )
        .await;
        let e = transport
            .start_agent_session(&url, "token")
            .await
            .expect_err("unauthorized");
        assert!(matches!(e.kind(), ErrorKind::Service(_)), "{e:?}");
        assert!(!e.is_retryable());
        let url = answer_once(
            "503 Service Unavailable",
            r#"{"errors":[{"name":"RATE_LIMITED"}]}"#,
        )
        .await;
        let e = transport
            .start_agent_session(&url, "token")
            .await
            .expect_err("rate limited");
        assert!(matches!(e.kind(), ErrorKind::Service(_)), "{e:?}");
        assert!(e.is_retryable());
        let url = answer_once("200 OK", r#"{"errors":["Invalid access token"]}"#).await;
        let e = transport
            .start_agent_session(&url, "token")
            .await
            .expect_err("refused");
        assert!(matches!(e.kind(), ErrorKind::Service(_)), "{e:?}");
        assert!(!e.is_retryable());
    }

    const DEADLINE: Duration = Duration::from_secs(5);

    #[tokio::test(start_paused = true)]
    async fn closing_on_a_peer_that_reads_nothing_ends_at_the_deadline() {
        // A 64-byte pipe whose far end is held open and never read.
        let (ours, _deaf) = tokio::io::duplex(64);
        let mut socket = WebSocketStream::from_raw_socket(ours, Role::Client, None).await;
        let fill = socket.send(Message::text("x".repeat(1024)));
        assert!(
            tokio::time::timeout(Duration::from_secs(1), fill)
                .await
                .is_err(),
            "the pipe should be full"
        );

        let started = Instant::now();
        // Without the bound the close would wait forever; the outer limit turns that into a
        // failure (time is paused, so both limits are exact, not timing-dependent).
        let closed = tokio::time::timeout(DEADLINE * 4, close_within(&mut socket, DEADLINE))
            .await
            .expect("the close gives up at its own deadline");
        assert!(!closed, "nothing could be written");
        assert_eq!(started.elapsed(), DEADLINE);
    }

    #[tokio::test(start_paused = true)]
    async fn closing_on_a_reading_peer_sends_the_close_frame() {
        let (ours, theirs) = tokio::io::duplex(64);
        let mut socket = WebSocketStream::from_raw_socket(ours, Role::Client, None).await;
        let mut peer = WebSocketStream::from_raw_socket(theirs, Role::Server, None).await;
        let peer_reads = tokio::spawn(async move { peer.next().await });

        let started = Instant::now();
        assert!(close_within(&mut socket, DEADLINE).await);
        assert!(started.elapsed() < DEADLINE);
        let frame = peer_reads.await.expect("peer task");
        assert!(
            matches!(frame, Some(Ok(Message::Close(_)))),
            "the peer got {frame:?}"
        );
    }
}
