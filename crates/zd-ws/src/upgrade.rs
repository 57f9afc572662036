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

use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_PROTOCOL, UPGRADE,
};
use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError};
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

/// Headers a secret may not be: the ones the upgrade request carries by construction
/// (tungstenite refuses them among the request's own headers, as duplicates), and the ones
/// that would give a GET a body. Any header the built request already has is refused too.
const RESERVED_HEADERS: [&str; 7] = [
    "host",
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "content-length",
    "transfer-encoding",
];

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
    /// `/` whatever it was. It must be in origin form, starting with `/` ([`upgrade`] fails
    /// with [`Error::InvalidTarget`] otherwise).
    #[must_use]
    pub fn with_target(mut self, target: PathAndQuery) -> Self {
        self.target = Some(target);
        self
    }

    /// Adds `name: value` after the request's own headers. The value is marked sensitive
    /// (hidden from `http`'s own `Debug`). `name` must not be a header the request already
    /// has, or one the upgrade sets itself ([`upgrade`] fails with [`Error::ReservedHeader`]
    /// otherwise).
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
/// [`Error::InvalidUrl`] for a URL without scheme or host, [`Error::UserInfo`] for one with
/// user information (`user:password@`), [`Error::Request`] when tungstenite refuses to make a
/// request of it.
pub fn request_hiding_target(url: &Uri) -> Result<(Request, Secrets), Error> {
    let (Some(scheme), Some(authority)) = (url.scheme(), url.authority()) else {
        return Err(Error::InvalidUrl);
    };
    if has_userinfo(authority) {
        return Err(Error::UserInfo);
    }
    let placeholder = Uri::builder()
        .scheme(scheme.clone())
        .authority(authority.clone())
        .path_and_query(PathAndQuery::from_static("/"))
        .build()
        .map_err(|_| Error::InvalidUrl)?;
    let request = placeholder.into_client_request().map_err(Error::Request)?;
    let mut secrets = Secrets::new();
    if let Some(target) = url.path_and_query() {
        // An empty path is `/` (RFC 9112 section 3.2.1), also before a query: `ws://h?t=1`
        // has the target `?t=1`, which is not a request target.
        let target = if target.as_str().starts_with('/') {
            target.clone()
        } else {
            PathAndQuery::try_from(format!("/{}", target.as_str()))
                .map_err(|_| Error::InvalidUrl)?
        };
        secrets = secrets.with_target(target);
    }
    Ok((request, secrets))
}

/// Whether `authority` holds user information (`user:password@host`): its only `@`.
fn has_userinfo(authority: &Authority) -> bool {
    authority.as_str().contains('@')
}

/// Whether [`upgrade_with`] reads a refusal's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefusalBody {
    Read,
    Skip,
}

/// Sends the upgrade request (`request` as tungstenite builds it, then `secrets` spliced in),
/// reads and checks the response (RFC 6455 section 4.1), and returns the WebSocket with
/// `config`.
///
/// The response head is read into a temporary buffer of at most [`MAX_RESPONSE_HEAD`] bytes;
/// the WebSocket's read buffer is a new allocation of `config.read_buffer_size` (or the bytes
/// that followed the head, if more) holding only those bytes. A 101 is refused when it names
/// an extension (none is implemented, so none may be accepted) or a subprotocol the request
/// did not offer in `Sec-WebSocket-Protocol`. No timeout is applied: wrap the call in one.
///
/// A refusal's body is read as far as its framing allows, for at most a short wait after the
/// head (see [`Refusal::body`]); [`upgrade_skipping_refusal_body`] does not wait for it.
///
/// # Errors
/// [`Error::Refused`] with the status, headers and body when the server answers other than
/// 101; [`Error::Io`] and [`Error::Handshake`] when the exchange fails; [`Error::Request`]
/// (a method other than GET, a version other than HTTP/1.1, or what tungstenite refuses),
/// [`Error::UserInfo`], [`Error::InvalidTarget`], [`Error::ReservedHeader`],
/// [`Error::InvalidSecret`] or [`Error::MalformedHead`] when no request could be sent.
pub async fn upgrade<S>(
    socket: S,
    request: Request,
    secrets: &Secrets,
    config: WebSocketConfig,
) -> Result<WebSocketStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    upgrade_with(socket, request, secrets, config, RefusalBody::Read).await
}

/// As [`upgrade`], but a refusal's body is not read: the [`Refusal`] has the status and
/// headers, and an empty body. For a caller that does not use the body, which need not wait
/// for it.
///
/// # Errors
/// As [`upgrade`].
pub async fn upgrade_skipping_refusal_body<S>(
    socket: S,
    request: Request,
    secrets: &Secrets,
    config: WebSocketConfig,
) -> Result<WebSocketStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    upgrade_with(socket, request, secrets, config, RefusalBody::Skip).await
}

/// [`upgrade`], reading a refusal's body or not.
async fn upgrade_with<S>(
    mut socket: S,
    mut request: Request,
    secrets: &Secrets,
    config: WebSocketConfig,
    refusal_body_read: RefusalBody,
) -> Result<WebSocketStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // `generate_request` writes `GET` whatever the method, and the version as given; its own
    // handshake checks both first (RFC 6455 section 4.1: a GET, at least HTTP/1.1). An
    // upgrade is an HTTP/1.1 mechanism, and the head is spliced as HTTP/1.1.
    if request.method() != Method::GET {
        return Err(Error::Request(WsError::Protocol(
            ProtocolError::WrongHttpMethod,
        )));
    }
    if request.version() != Version::HTTP_11 {
        return Err(Error::Request(WsError::Protocol(
            ProtocolError::WrongHttpVersion,
        )));
    }
    // tungstenite builds `Host` without it and sends no `Authorization` for it.
    if request.uri().authority().is_some_and(has_userinfo) {
        return Err(Error::UserInfo);
    }
    let offered = offered_subprotocols(request.headers(), secrets);
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
        let body = match refusal_body_read {
            RefusalBody::Read => {
                refusal_body(
                    &mut socket,
                    response.status(),
                    response.headers(),
                    rest.to_vec(),
                )
                .await
            }
            RefusalBody::Skip => Vec::new(),
        };
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
    verify(&response, &key, &offered).map_err(|e| Error::Handshake(WsError::Protocol(e)))?;
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
    // `upgrade` lets only HTTP/1.1 through: another version here is a tungstenite change.
    if method != b"GET" || version != b"HTTP/1.1" {
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
            // And for a GET to an origin server, in origin form: a path from `/` (section
            // 3.2.1). `?t=1` or `*` would make a request line no server reads as meant.
            if secret.first() != Some(&b'/') {
                return Err(Error::InvalidTarget);
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
        // tungstenite refuses a request header that duplicates one it writes; a secret one
        // must not slip past that, nor override or repeat one the request already has, nor
        // frame a body the GET does not send.
        let reserved = RESERVED_HEADERS
            .iter()
            .any(|r| name.eq_ignore_ascii_case(r.as_bytes()))
            || header_names(own_headers).any(|own| name.eq_ignore_ascii_case(own));
        if reserved {
            return Err(Error::ReservedHeader(
                String::from_utf8_lossy(name).into_owned(),
            ));
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

/// The names of the header lines in `headers` (each line `name: value` and a CRLF, as
/// `generate_request` writes them; the request line's CRLF may lead).
fn header_names(headers: &[u8]) -> impl Iterator<Item = &[u8]> {
    headers
        .split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b':').next())
        .map(|name| name.strip_suffix(b"\r").unwrap_or(name))
        .filter(|name| !name.is_empty())
}

/// The subprotocols the request offers: the elements of its `Sec-WebSocket-Protocol` lines,
/// secret ones included.
fn offered_subprotocols(headers: &HeaderMap, secrets: &Secrets) -> Vec<String> {
    let secret = secrets
        .headers
        .iter()
        .filter(|(name, _)| name == SEC_WEBSOCKET_PROTOCOL)
        .map(|(_, value)| value);
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .chain(secret)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|protocol| !protocol.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The elements of every `name` line in `headers` (a comma-separated list, RFC 9110 section
/// 5.6.1: empty elements skipped, case kept); `None` when a line is not visible ASCII.
fn list_elements<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<Vec<&'a str>> {
    let mut elements = Vec::new();
    for value in headers.get_all(name) {
        elements.extend(
            value
                .to_str()
                .ok()?
                .split(',')
                .map(str::trim)
                .filter(|element| !element.is_empty()),
        );
    }
    Some(elements)
}

/// The checks of RFC 6455 section 4.1 (steps 2 to 6) on a 101 response to a request with
/// `key` that offered the subprotocols `offered`.
fn verify(response: &Response, key: &str, offered: &[String]) -> Result<(), ProtocolError> {
    let headers = response.headers();
    // Step 2: `Upgrade` names websocket, and nothing else (a 101 lists the protocols it
    // switches to, and there is one). Over every line: a list may be split across lines.
    let upgrade = list_elements(headers, &UPGRADE);
    if !upgrade.is_some_and(|protocols| {
        !protocols.is_empty()
            && protocols
                .iter()
                .all(|protocol| protocol.eq_ignore_ascii_case("websocket"))
    }) {
        return Err(ProtocolError::MissingUpgradeWebSocketHeader);
    }
    // Step 3: `Connection` has the option `upgrade` among others.
    let connection = list_elements(headers, &CONNECTION);
    if !connection.is_some_and(|options| {
        options
            .iter()
            .any(|option| option.eq_ignore_ascii_case("upgrade"))
    }) {
        return Err(ProtocolError::MissingConnectionUpgradeHeader);
    }
    // Step 4: one `Sec-WebSocket-Accept`, derived from the key.
    let mut accept = headers.get_all(SEC_WEBSOCKET_ACCEPT).iter();
    let expected = derive_accept_key(key.as_bytes());
    if !matches!((accept.next(), accept.next()), (Some(value), None) if value == expected.as_str())
    {
        return Err(ProtocolError::SecWebSocketAcceptKeyMismatch);
    }
    // Step 5: tungstenite implements no extension (permessage-deflate's compressed frames
    // would fail on their RSV1 bit): none can be used, whatever the request offered.
    if headers.contains_key(SEC_WEBSOCKET_EXTENSIONS) {
        return Err(ProtocolError::InvalidHeader(Box::new(
            SEC_WEBSOCKET_EXTENSIONS,
        )));
    }
    // Step 6: a subprotocol, if the server picks one, is a single value the request offered.
    // Picking none is the server's right, though tungstenite's own handshake refuses it.
    let mut chosen = headers.get_all(SEC_WEBSOCKET_PROTOCOL).iter();
    match (chosen.next(), chosen.next()) {
        (None, _) => {}
        (Some(_), _) if offered.is_empty() => {
            return Err(ProtocolError::SecWebSocketSubProtocolError(
                SubProtocolError::ServerSentSubProtocolNoneRequested,
            ));
        }
        (Some(value), None)
            if value
                .to_str()
                .is_ok_and(|value| offered.iter().any(|o| o == value.trim())) => {}
        _ => {
            return Err(ProtocolError::SecWebSocketSubProtocolError(
                SubProtocolError::InvalidSubProtocol,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
