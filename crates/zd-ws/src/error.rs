//! The crate's error type.

use std::error::Error as StdError;
use std::io;

use http::{HeaderMap, StatusCode};
use tokio_tungstenite::tungstenite;

/// Why a connect or an upgrade failed.
///
/// No variant names the request target or a secret header: a target given as a secret (see
/// [`crate::Secrets`]) may be all it takes to use the socket.
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
#[derive(Debug, Clone)]
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
}
