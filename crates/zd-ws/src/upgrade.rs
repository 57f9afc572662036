//! The HTTP upgrade, done here rather than by tungstenite's client handshake.
//!
//! For memory: tungstenite's handshake reads the response into a 4 KiB buffer that then
//! becomes the connection's read buffer for good, where a socket of small frames needs far
//! less. Here the response head is read into a temporary buffer, and only the bytes after it
//! (usually none) are handed to the WebSocket.
//!
//! For secrets: tungstenite's `generate_request` logs the whole head it builds at trace
//! level, and an application that enables trace logs (`env_logger`, a `tracing` log bridge)
//! would write a token header or an authenticating URL on every connect. Those parts are
//! added to the head after it is built.

use std::fmt;

use http::uri::PathAndQuery;
use http::{HeaderName, HeaderValue, StatusCode, Uri};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response, generate_request};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::handshake::machine::TryParse;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::error::{Error, Refusal};
use crate::refusal::refusal_body;

/// The longest upgrade response head read; a server sending more is broken or hostile.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// The target tungstenite is given when the real one is a secret.
const PLACEHOLDER_TARGET: &[u8] = b"/";

/// The parts of an upgrade request kept from tungstenite (and so from its trace log): a
/// request target (path and query) and headers, added to the head after tungstenite built it.
///
/// `Debug` shows neither.
#[derive(Clone, Default)]
pub struct Secrets {
    target: Option<PathAndQuery>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Secrets {
    /// No secrets: the request goes out as tungstenite builds it.
    pub fn new() -> Self {
        Self::default()
    }

    /// `target` (path and query) replaces the request's own, which tungstenite then sees as
    /// `/` whatever it was.
    #[must_use]
    pub fn with_target(mut self, target: PathAndQuery) -> Self {
        self.target = Some(target);
        self
    }

    /// Adds `name: value` after the request's own headers. The value is marked sensitive
    /// (hidden from `http`'s own `Debug`).
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, mut value: HeaderValue) -> Self {
        value.set_sensitive(true);
        self.headers.push((name, value));
        self
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("target", &self.target.as_ref().map(|_| "[REDACTED]"))
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The upgrade request for `url` (`ws://` or `wss://`) with its path and query kept secret:
/// the request targets `/` (its `Host` and WebSocket headers as tungstenite makes them) and
/// the secrets hold the real target. For a URL whose path authenticates the socket.
///
/// # Errors
/// [`Error::InvalidUrl`] for a URL without scheme or host, [`Error::Request`] when
/// tungstenite refuses to make a request of it.
pub fn request_hiding_target(url: &Uri) -> Result<(Request, Secrets), Error> {
    let (Some(scheme), Some(authority)) = (url.scheme(), url.authority()) else {
        return Err(Error::InvalidUrl);
    };
    let placeholder = Uri::builder()
        .scheme(scheme.clone())
        .authority(authority.clone())
        .path_and_query(PathAndQuery::from_static("/"))
        .build()
        .map_err(|_| Error::InvalidUrl)?;
    let request = placeholder.into_client_request().map_err(Error::Request)?;
    let mut secrets = Secrets::new();
    // An absolute URL without a path asks for `/` (RFC 9112 section 3.2.1): the placeholder.
    if let Some(target) = url.path_and_query() {
        secrets = secrets.with_target(target.clone());
    }
    Ok((request, secrets))
}

/// Sends the upgrade request (`request` as tungstenite builds it, then `secrets` spliced in),
/// reads and checks the response (RFC 6455 section 4.1), and returns the WebSocket with
/// `config`.
///
/// The response head is read into a temporary buffer of at most [`MAX_RESPONSE_HEAD`] bytes;
/// the WebSocket's read buffer is a new allocation of `config.read_buffer_size` (or the bytes
/// that followed the head, if more) holding only those bytes. No extension or subprotocol is
/// requested, so none may be accepted. No timeout is applied: wrap the call in one.
///
/// # Errors
/// [`Error::Refused`] with the status, headers and body when the server answers other than
/// 101; [`Error::Io`] and [`Error::Handshake`] when the exchange fails; [`Error::Request`],
/// [`Error::InvalidSecret`] or [`Error::MalformedHead`] when no request could be sent.
pub async fn upgrade<S>(
    mut socket: S,
    mut request: Request,
    secrets: &Secrets,
    config: WebSocketConfig,
) -> Result<WebSocketStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if secrets.target.is_some() {
        // Whatever the caller left there, tungstenite sees (and logs) the placeholder.
        *request.uri_mut() = Uri::from_static("/");
    }
    let (head, key) = generate_request(request).map_err(Error::Request)?;
    let head = with_secrets(head, secrets)?;
    socket.write_all(&head).await.map_err(Error::Io)?;
    socket.flush().await.map_err(Error::Io)?;
    drop(head);

    let mut received = Vec::new();
    let mut chunk = [0_u8; 1024];
    let (head_len, response) = loop {
        let n = socket.read(&mut chunk).await.map_err(Error::Io)?;
        if n == 0 {
            return Err(Error::Handshake(WsError::Protocol(
                ProtocolError::HandshakeIncomplete,
            )));
        }
        received.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if let Some(parsed) = Response::try_parse(&received).map_err(Error::Handshake)? {
            break parsed;
        }
        if received.len() > MAX_RESPONSE_HEAD {
            return Err(Error::Handshake(WsError::AttackAttempt));
        }
    };
    let rest = received.get(head_len..).unwrap_or_default();
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let body = refusal_body(&mut socket, response.headers(), rest.to_vec()).await;
        let (parts, _) = response.into_parts();
        return Err(Error::Refused(Box::new(Refusal {
            status: parts.status,
            headers: parts.headers,
            body,
        })));
    }
    // Only what follows the head (frames the server sent at once) is kept, in the allocation
    // that becomes the WebSocket's read buffer (tungstenite reuses it), sized to the
    // configured read buffer.
    let mut tail = Vec::with_capacity(rest.len().max(config.read_buffer_size));
    tail.extend_from_slice(rest);
    drop(received);
    verify(&response, &key).map_err(|e| Error::Handshake(WsError::Protocol(e)))?;
    Ok(WebSocketStream::from_partially_read(socket, tail, Role::Client, Some(config)).await)
}

/// Splices `secrets` into a request head built by `generate_request` (see [`splice`]).
fn with_secrets(head: Vec<u8>, secrets: &Secrets) -> Result<Vec<u8>, Error> {
    if secrets.target.is_none() && secrets.headers.is_empty() {
        return Ok(head);
    }
    let target = secrets.target.as_ref().map(|t| t.as_str().as_bytes());
    let headers = secrets
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()));
    splice(&head, target, headers)
}

/// A copy of `head` (a request head as `generate_request` builds it) with `target` in place
/// of the placeholder in its request line (`GET / HTTP/1.1`) and `headers` after its last
/// header, before the empty line that ends it.
///
/// Everything is checked here rather than trusted to the types it came in: a CR or LF (or
/// any other control byte, or a space in the target) could end a line early and smuggle in
/// headers, or a second request.
fn splice<'a, H>(head: &[u8], target: Option<&[u8]>, headers: H) -> Result<Vec<u8>, Error>
where
    H: Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or(Error::MalformedHead)?;
    let (request_line, after_line) = head.split_at(line_end);
    // After the request line: each header's line, then the empty line that ends the head.
    // `own_headers` keeps the CRLF that ends the request line or the last header.
    let own_headers = after_line
        .strip_suffix(b"\r\n")
        .filter(|_| after_line.ends_with(b"\r\n\r\n"))
        .ok_or(Error::MalformedHead)?;
    let mut parts = request_line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(own_target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::MalformedHead);
    };
    if method != b"GET" || !version.starts_with(b"HTTP/") || version.contains(&b' ') {
        return Err(Error::MalformedHead);
    }
    let target = match target {
        Some(secret) => {
            if own_target != PLACEHOLDER_TARGET {
                // Not the placeholder `upgrade` put there: the caller's real target may be
                // in it, and then tungstenite has logged it.
                return Err(Error::MalformedHead);
            }
            // A request target is visible ASCII (RFC 9112 section 3.2).
            if secret.is_empty() || !secret.iter().all(u8::is_ascii_graphic) {
                return Err(Error::InvalidSecret);
            }
            secret
        }
        None => own_target,
    };
    let mut extra = 0;
    for (name, value) in headers.clone() {
        // A field name is a token, a field value visible ASCII, obs-text, spaces and tabs
        // (RFC 9110 sections 5.1 and 5.5).
        let valid_name =
            !name.is_empty() && name.iter().all(|&b| b.is_ascii_graphic() && b != b':');
        let valid_value = value
            .iter()
            .all(|&b| b == b'\t' || b == b' ' || b.is_ascii_graphic() || b >= 0x80);
        if !valid_name || !valid_value {
            return Err(Error::InvalidSecret);
        }
        extra += name.len() + value.len() + 4;
    }
    // `own_target` is a part of `head`: the subtraction cannot underflow.
    let mut out = Vec::with_capacity(head.len() - own_target.len() + target.len() + extra);
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(target);
    out.push(b' ');
    out.extend_from_slice(version);
    out.extend_from_slice(own_headers);
    for (name, value) in headers {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
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
mod tests;
