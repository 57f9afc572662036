//! The byte stream under a feed's WebSocket and the HTTP upgrade done on it.
//!
//! The upgrade is done here rather than by tungstenite's client handshake for memory: its
//! handshake reads the response into a 4 KiB buffer that then becomes the connection's read
//! buffer for good, where a feed needs a few hundred bytes. Here the response head is read
//! into a temporary buffer, and only the bytes after it (usually none) are handed to the
//! WebSocket.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderName, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue};

use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response, generate_request};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::handshake::machine::TryParse;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::transport::{WsStream, status_error, upgrade_error};
use crate::{Error, ErrorKind};

/// The longest upgrade response head read; a server sending more is broken or hostile.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// TCP, or TLS over TCP. The TLS state (a rustls connection, about 1 KiB) is boxed so a
/// `ws://` feed does not carry its size inline.
pub(crate) enum Socket {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`.
    Tls(Box<TokioIo<MaybeHttpsStream<TokioIo<TcpStream>>>>),
}

impl From<MaybeHttpsStream<TokioIo<TcpStream>>> for Socket {
    fn from(stream: MaybeHttpsStream<TokioIo<TcpStream>>) -> Self {
        match stream {
            MaybeHttpsStream::Http(tcp) => Self::Plain(tcp.into_inner()),
            tls @ MaybeHttpsStream::Https(_) => Self::Tls(Box::new(TokioIo::new(tls))),
        }
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plain(_) => "Socket::Plain",
            Self::Tls(_) => "Socket::Tls",
        })
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}

/// Sends the upgrade request with `authorization` as its `Authorization` header, reads and
/// checks the response (RFC 6455 section 4.1), and returns the WebSocket. A refusal maps to a
/// typed error with its status, headers and the body bytes that came with the head.
///
/// `authorization` is kept out of `request`: tungstenite's `generate_request` logs the whole
/// head it builds at trace level, and an application that enables trace logs (`env_logger`,
/// a `tracing` log bridge) would write the token on every connect.
pub(crate) async fn upgrade(
    mut socket: Socket,
    request: Request,
    authorization: &HeaderValue,
    config: WebSocketConfig,
) -> Result<WsStream, Error> {
    let (head, key) = generate_request(request).map_err(upgrade_error)?;
    let head = with_header(head, &AUTHORIZATION, authorization)?;
    socket
        .write_all(&head)
        .await
        .map_err(|e| upgrade_error(WsError::Io(e)))?;
    socket
        .flush()
        .await
        .map_err(|e| upgrade_error(WsError::Io(e)))?;
    drop(head);

    let mut received = Vec::new();
    let mut chunk = [0_u8; 1024];
    let (head_len, response) = loop {
        let n = socket
            .read(&mut chunk)
            .await
            .map_err(|e| upgrade_error(WsError::Io(e)))?;
        if n == 0 {
            return Err(upgrade_error(WsError::Protocol(
                ProtocolError::HandshakeIncomplete,
            )));
        }
        received.extend_from_slice(&chunk[..n]);
        if let Some(parsed) = Response::try_parse(&received).map_err(upgrade_error)? {
            break parsed;
        }
        if received.len() > MAX_RESPONSE_HEAD {
            return Err(upgrade_error(WsError::AttackAttempt));
        }
    };
    let rest = received.get(head_len..).unwrap_or_default();
    if response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        let body = refusal_body(&mut socket, response.headers(), rest.to_vec()).await;
        return Err(status_error(
            response.status().as_u16(),
            response.headers(),
            &body,
            "WebSocket upgrade",
        ));
    }
    // Only what follows the head (frames the server sent at once) is kept, in the allocation
    // that becomes the WebSocket's read buffer (tungstenite reuses it), sized to the
    // configured read buffer.
    let mut tail = Vec::with_capacity(rest.len().max(config.read_buffer_size));
    tail.extend_from_slice(rest);
    drop(received);
    verify(&response, &key).map_err(|e| upgrade_error(WsError::Protocol(e)))?;
    Ok(Box::new(
        WebSocketStream::from_partially_read(socket, tail, Role::Client, Some(config)).await,
    ))
}

/// Adds `name: value` as the last header of a request head built by `generate_request`
/// (which ends it with an empty line). A `HeaderValue` holds no CR or LF, so the value cannot
/// end the head early or smuggle in headers of its own.
fn with_header(
    mut head: Vec<u8>,
    name: &HeaderName,
    value: &HeaderValue,
) -> Result<Vec<u8>, Error> {
    let Some(end) = head
        .len()
        .checked_sub(2)
        .filter(|_| head.ends_with(b"\r\n\r\n"))
    else {
        return Err(Error::new(
            ErrorKind::Transport,
            "WebSocket upgrade: the request head does not end with an empty line",
        ));
    };
    let mut line = Vec::with_capacity(name.as_str().len() + value.len() + 4);
    line.extend_from_slice(name.as_str().as_bytes());
    line.extend_from_slice(b": ");
    line.extend_from_slice(value.as_bytes());
    line.extend_from_slice(b"\r\n");
    head.splice(end..end, line);
    Ok(head)
}

/// How a refused upgrade's body is delimited (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Chunked,
    Length(usize),
    UntilClose,
}

impl Framing {
    fn of(headers: &HeaderMap) -> Self {
        let chunked = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"));
        if chunked {
            return Self::Chunked;
        }
        headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .map_or(Self::UntilClose, Self::Length)
    }

    /// The body in `raw` (what followed the head), at most [`MAX_REFUSAL_BODY`] bytes, and
    /// whether reading more cannot change it.
    fn decode(self, raw: &[u8]) -> (Vec<u8>, bool) {
        match self {
            Self::Length(length) => {
                let wanted = length.min(MAX_REFUSAL_BODY);
                let body = raw.get(..wanted).unwrap_or(raw).to_vec();
                let done = body.len() == wanted;
                (body, done)
            }
            Self::UntilClose => {
                let body = raw.get(..MAX_REFUSAL_BODY).unwrap_or(raw).to_vec();
                let done = body.len() == MAX_REFUSAL_BODY;
                (body, done)
            }
            Self::Chunked => dechunk(raw),
        }
    }
}

/// The most of a refused upgrade's body kept; an [`Error`] keeps only an excerpt of it.
const MAX_REFUSAL_BODY: usize = 8 * 1024;
/// The most raw bytes read for it, chunk framing included.
const MAX_REFUSAL_RAW: usize = 2 * MAX_REFUSAL_BODY;
/// How long a refused upgrade's body may take to follow its head: the refusal (status,
/// `Retry-After`) is already known, the body only explains it.
const REFUSAL_BODY_WAIT: Duration = Duration::from_secs(2);

/// Reads the body of a refused upgrade as far as its framing, [`MAX_REFUSAL_BODY`] and
/// [`REFUSAL_BODY_WAIT`] allow. `raw` is what arrived with the head; a server may flush the
/// head and write the body later, in segments of its own.
async fn refusal_body(socket: &mut Socket, headers: &HeaderMap, mut raw: Vec<u8>) -> Vec<u8> {
    let framing = Framing::of(headers);
    let read = async {
        let mut chunk = [0_u8; 1024];
        while !framing.decode(&raw).1 && raw.len() < MAX_REFUSAL_RAW {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&chunk[..n]),
            }
        }
    };
    // A body that never completes keeps what came; the refusal stands either way.
    let _ = tokio::time::timeout(REFUSAL_BODY_WAIT, read).await;
    framing.decode(&raw).0
}

/// Decodes chunked transfer coding from the start of `raw`: the data so far (at most
/// [`MAX_REFUSAL_BODY`] bytes) and whether it is complete (the last chunk, the limit, or
/// framing that cannot be read further).
fn dechunk(raw: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    let mut rest = raw;
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let size = std::str::from_utf8(&rest[..line_end])
            .ok()
            .and_then(|line| line.split(';').next())
            .and_then(|hex| usize::from_str_radix(hex.trim(), 16).ok());
        let Some(size) = size else {
            return (body, true);
        };
        rest = &rest[line_end + 2..];
        if size == 0 {
            return (body, true);
        }
        let data = rest.get(..size).unwrap_or(rest);
        let room = MAX_REFUSAL_BODY - body.len();
        body.extend_from_slice(data.get(..room).unwrap_or(data));
        if body.len() == MAX_REFUSAL_BODY {
            return (body, true);
        }
        // The size is the server's: `ffffffffffffffff` must not overflow the arithmetic.
        match size.checked_add(2).and_then(|end| rest.get(end..)) {
            Some(next) => rest = next,
            None => return (body, false),
        }
    }
}

/// The checks of RFC 6455 section 4.1 on a 101 response (no extensions or subprotocols are
/// requested, so none may be accepted).
fn verify(response: &Response, key: &str) -> Result<(), ProtocolError> {
    let headers = response.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if !header("upgrade").is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket")) {
        return Err(ProtocolError::MissingUpgradeWebSocketHeader);
    }
    if !header("connection").is_some_and(|v| {
        v.split(',')
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
    }) {
        return Err(ProtocolError::MissingConnectionUpgradeHeader);
    }
    if header("sec-websocket-accept") != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return Err(ProtocolError::SecWebSocketAcceptKeyMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    use super::*;

    /// Upgrades against a server that answers with `parts`, each flushed on its own a moment
    /// (of paused time) after the last, then holds the connection open.
    async fn refused_with(parts: &'static [&'static str]) -> Error {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut peer, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut chunk = [0_u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = peer.read(&mut chunk).await.unwrap();
                assert_ne!(n, 0, "request cut short");
                request.extend_from_slice(&chunk[..n]);
            }
            for part in parts {
                peer.write_all(part.as_bytes()).await.unwrap();
                peer.flush().await.unwrap();
                // The client, idle on its read, lets paused time reach this: the next part
                // is a segment of its own, read after the previous one.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            std::future::pending::<()>().await;
            drop(peer);
        });
        let socket = Socket::Plain(TcpStream::connect(addr).await.unwrap());
        let request = format!("ws://{addr}/stream").into_client_request().unwrap();
        let authorization = HeaderValue::from_static("Bearer t");
        let result = upgrade(socket, request, &authorization, WebSocketConfig::default()).await;
        server.abort();
        match result {
            Ok(_) => panic!("the upgrade was refused"),
            Err(e) => e,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_body_sent_after_the_head_is_read_by_its_length() {
        let started = tokio::time::Instant::now();
        let err = refused_with(&[
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: 32\r\n\r\n",
            r#"{"error":"#,
            r#""agent is not allowed"}"#,
        ])
        .await;
        assert_eq!(
            (err.kind(), err.status()),
            (crate::ErrorKind::HttpStatus, Some(403))
        );
        assert_eq!(err.body(), Some(r#"{"error":"agent is not allowed"}"#));
        assert!(
            started.elapsed() < REFUSAL_BODY_WAIT,
            "the length says when the body is complete"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_chunked_refusal_body_is_decoded() {
        let err = refused_with(&[
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "5\r\nhello\r\n",
            "6;ext=1\r\n world\r\n0\r\n\r\n",
        ])
        .await;
        assert_eq!(err.status(), Some(503));
        assert_eq!(err.body(), Some("hello world"));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_body_that_never_completes_is_waited_for_briefly() {
        let started = tokio::time::Instant::now();
        let err = refused_with(&[
            "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 100\r\n\r\nslow",
            " down",
        ])
        .await;
        assert_eq!(err.body(), Some("slow down"));
        assert!(started.elapsed() >= REFUSAL_BODY_WAIT);
        assert!(started.elapsed() < REFUSAL_BODY_WAIT * 2);
    }

    #[test]
    fn a_header_is_added_as_the_last_line_of_the_head() {
        let head = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n".to_vec();
        let value = HeaderValue::from_static("Bearer t");
        let head = with_header(head, &AUTHORIZATION, &value).unwrap();
        assert_eq!(
            head,
            b"GET / HTTP/1.1\r\nHost: h\r\nauthorization: Bearer t\r\n\r\n"
        );
        let err = with_header(b"GET / HTTP/1.1\r\n".to_vec(), &AUTHORIZATION, &value).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transport);
    }

    #[test]
    fn chunk_framing_is_decoded_as_far_as_it_goes() {
        assert_eq!(dechunk(b"3\r\nabc\r\n0\r\n\r\n"), (b"abc".to_vec(), true));
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nd"), (b"abcd".to_vec(), false));
        assert_eq!(dechunk(b"3\r\nab"), (b"ab".to_vec(), false));
        assert_eq!(dechunk(b"zz\r\nabc"), (Vec::new(), true));
        assert_eq!(
            dechunk(b"ffffffffffffffff\r\nabc"),
            (b"abc".to_vec(), false)
        );
        let huge = format!(
            "{:x}\r\n{}",
            MAX_REFUSAL_BODY + 10,
            "x".repeat(MAX_REFUSAL_BODY + 10)
        );
        let (body, done) = dechunk(huge.as_bytes());
        assert_eq!((body.len(), done), (MAX_REFUSAL_BODY, true));
    }

    fn response(head: &str) -> Response {
        Response::try_parse(head.as_bytes()).unwrap().unwrap().1
    }

    #[test]
    fn a_101_is_checked_against_the_key() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let ok = response(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        );
        assert!(verify(&ok, key).is_ok());
        let wrong_key = response(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n",
        );
        assert!(matches!(
            verify(&wrong_key, key),
            Err(ProtocolError::SecWebSocketAcceptKeyMismatch)
        ));
        let no_upgrade = response(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        );
        assert!(matches!(
            verify(&no_upgrade, key),
            Err(ProtocolError::MissingUpgradeWebSocketHeader)
        ));
        let no_connection = response(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        );
        assert!(matches!(
            verify(&no_connection, key),
            Err(ProtocolError::MissingConnectionUpgradeHeader)
        ));
    }
}
