//! The crate's error type.

use std::error::Error as StdError;
use std::fmt;
use std::io;

use http::{HeaderMap, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite;

/// Why a connect or an upgrade failed.
///
/// No variant names the request target or a secret header's value, in `Display` or `Debug`: a
/// target given as a secret (see [`crate::Secrets`]) may be all it takes to use the socket.
/// A [`Refusal`], whose headers and body may echo the target, shows in `Debug` only what is
/// harmless (see there).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not `ws://` or `wss://` with a host.
    #[error("not a ws:// or wss:// URL with a host")]
    InvalidUrl,
    /// TCP, or TLS over it, could not be set up.
    #[error("connecting to {origin}")]
    Connect {
        /// Scheme, host and port (never the path): "connection refused" alone does not say
        /// which endpoint (the service, an emulator, a proxy) was unreachable.
        origin: String,
        /// What the connector reported.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// tungstenite could not build the request from what it was given.
    #[error("building the WebSocket upgrade request")]
    Request(#[source] tungstenite::Error),
    /// A secret cannot go into a request head: it holds a CR, LF or another byte that would
    /// end its line early or split it.
    #[error("a secret part of the upgrade request holds a byte a request head cannot carry")]
    InvalidSecret,
    /// A secret request target (see [`crate::Secrets::with_target`]) is not in origin form: a
    /// path starting with `/`, then an optional query. Anything else (`?t=1`, `*`) would make
    /// a request line no server reads as meant.
    #[error("a secret request target does not start with /")]
    InvalidTarget,
    /// A secret header is one the upgrade request sets itself (`Host`, `Connection`,
    /// `Upgrade`, `Sec-WebSocket-Key`, `Sec-WebSocket-Version`), one that would frame a body
    /// (`Content-Length`, `Transfer-Encoding`), or one the request already has: tungstenite
    /// refuses such headers in the request, and a secret one must not slip past that.
    #[error("the secret header {0} duplicates or overrides one of the upgrade request")]
    ReservedHeader(
        /// The header's name (never its value).
        String,
    ),
    /// The URL carries user information (`user:password@`), which a WebSocket upgrade does
    /// not send: refused rather than dropped without a word.
    #[error("the URL carries user information, which a WebSocket upgrade cannot send")]
    UserInfo,
    /// The head tungstenite built is not in the shape the secrets are spliced into (a
    /// `GET / HTTP/1.1` request line, an empty line at the end): a tungstenite change, never
    /// network input.
    #[error("the upgrade request head is not in the expected shape")]
    MalformedHead,
    /// Writing the request or reading the response failed.
    #[error("WebSocket upgrade I/O")]
    Io(#[source] io::Error),
    /// The response broke HTTP or RFC 6455: unparsable, longer than
    /// [`crate::MAX_RESPONSE_HEAD`], cut short, or a 101 that fails the checks of section 4.1.
    #[error("WebSocket upgrade")]
    Handshake(#[source] tungstenite::Error),
    /// The server answered with a status other than 101.
    #[error("WebSocket upgrade refused with status {}", .0.status())]
    Refused(Box<Refusal>),
}

/// A refused upgrade: the status, headers and body the server sent instead of switching
/// protocols. Boxed in [`Error`] so an error stays small in the caller's results.
///
/// `Debug` shows the status, every header's name, the values only of `Retry-After`,
/// `Content-Type`, `Content-Length` and `Transfer-Encoding`, and the body's length: a
/// redirect's `Location` or an error page may repeat the request target, and an error's
/// `Debug` ends up in logs. The accessors give all of it.
#[derive(Clone)]
pub struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Refusal {
    /// The response status (never 101).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response headers (`Retry-After` among them, when sent).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body as far as it arrived: decoded from its framing (`Content-Length`, chunked, or
    /// until close), at most [`crate::MAX_REFUSAL_BODY`] bytes, and only what came within a
    /// short wait after the head.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// The headers whose values a [`Refusal`]'s `Debug` shows: they say why and for how long,
/// and cannot carry the request target.
const SHOWN_HEADERS: [&str; 4] = [
    "retry-after",
    "content-type",
    "content-length",
    "transfer-encoding",
];

impl fmt::Debug for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refusal")
            .field("status", &self.status)
            .field("headers", &ShownHeaders(&self.headers))
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A header map as a [`Refusal`]'s `Debug` shows it.
struct ShownHeaders<'a>(&'a HeaderMap);

impl fmt::Debug for ShownHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(name, value)| {
                // A `HeaderMap`'s names are lowercase.
                let shown = SHOWN_HEADERS.contains(&name.as_str());
                (name, ShownValue(shown.then_some(value)))
            }))
            .finish()
    }
}

/// A header value, or a mark where it is hidden.
struct ShownValue<'a>(Option<&'a HeaderValue>);

impl fmt::Debug for ShownValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => fmt::Debug::fmt(value, f),
            None => f.write_str("[REDACTED]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_sources() {
        let e = Error::Io(io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(StdError::source(&e).is_some());
        let e = Error::Connect {
            origin: "ws://127.0.0.1:1".to_owned(),
            source: Box::new(io::Error::from(io::ErrorKind::ConnectionRefused)),
        };
        assert_eq!(e.to_string(), "connecting to ws://127.0.0.1:1");
        assert!(StdError::source(&e).is_some());
    }

    #[test]
    fn a_refusal_shows_neither_its_body_nor_headers_that_may_repeat_the_target() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            (
                "location",
                "https://h.example/stream/secret-session?t=secret-token",
            ),
            ("set-cookie", "session=secret-cookie"),
            ("retry-after", "5"),
            ("content-type", "text/html"),
            ("content-length", "31"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        let body = b"/stream/secret-session not found".to_vec();
        let err = Error::Refused(Box::new(Refusal {
            status: StatusCode::PERMANENT_REDIRECT,
            headers,
            body: body.clone(),
        }));
        for shown in [format!("{err:?}"), format!("{err:#?}"), err.to_string()] {
            assert!(!shown.contains("secret"), "{shown}");
        }
        assert_eq!(
            format!("{err:?}"),
            "Refused(Refusal { status: 308, headers: {\"location\": [REDACTED], \
             \"set-cookie\": [REDACTED], \"retry-after\": \"5\", \"content-type\": \
             \"text/html\", \"content-length\": \"31\"}, body_len: 32 })"
        );
        assert_eq!(
            err.to_string(),
            "WebSocket upgrade refused with status 308 Permanent Redirect"
        );
        // The accessors still give it all, for a caller to map (and redact) itself.
        let Error::Refused(refusal) = &err else {
            unreachable!()
        };
        assert_eq!(refusal.status(), StatusCode::PERMANENT_REDIRECT);
        assert!(
            refusal.headers()["location"]
                .as_bytes()
                .ends_with(b"t=secret-token")
        );
        assert_eq!(refusal.body(), body);
    }
}
