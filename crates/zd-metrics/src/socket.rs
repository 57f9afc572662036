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

use crate::Error;
use crate::transport::{WsStream, status_error, upgrade_error};

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

/// Sends the upgrade request, reads and checks the response (RFC 6455 section 4.1), and
/// returns the WebSocket. A refusal maps to a typed error with its status, headers and the
/// body bytes that came with the head.
pub(crate) async fn upgrade(
    mut socket: Socket,
    request: Request,
    config: WebSocketConfig,
) -> Result<WsStream, Error> {
    let (head, key) = generate_request(request).map_err(upgrade_error)?;
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
    // Only what follows the head (frames the server sent at once, or a refusal's body) is
    // kept, in the allocation that becomes the WebSocket's read buffer (tungstenite reuses
    // it), sized to the configured read buffer.
    let rest = received.get(head_len..).unwrap_or_default();
    let mut tail = Vec::with_capacity(rest.len().max(config.read_buffer_size));
    tail.extend_from_slice(rest);
    drop(received);

    if response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        return Err(status_error(
            response.status().as_u16(),
            response.headers(),
            &tail,
            "WebSocket upgrade",
        ));
    }
    verify(&response, &key).map_err(|e| upgrade_error(WsError::Protocol(e)))?;
    Ok(Box::new(
        WebSocketStream::from_partially_read(socket, tail, Role::Client, Some(config)).await,
    ))
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
    use super::*;

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
