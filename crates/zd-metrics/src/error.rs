//! The crate's one error type.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

/// Longest excerpt of a response body or frame an [`Error`] keeps, in bytes.
pub const BODY_EXCERPT_LIMIT: usize = 512;

/// What went wrong, for callers that branch on failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server refused the token: a `401` status frame on the feed (followed by a close)
    /// or HTTP 401 from the REST API. Reconnecting with the same token will not help.
    Unauthorized,
    /// The server answered HTTP 429: the shared 200 requests/minute budget, or the account's
    /// or agent's concurrent connection limit, is spent. See [`Error::retry_after`].
    RateLimited,
    /// This process's own view of the 200 requests/minute budget says the next connection or
    /// REST request would exceed it; nothing was sent. See [`Error::retry_after`].
    LocalRateLimited,
    /// The agent already holds the most concurrent feeds Zendesk allows (10); nothing was sent.
    AgentConnectionCap,
    /// The account already holds the most concurrent feeds Zendesk allows (1000); nothing
    /// was sent.
    AccountConnectionCap,
    /// The credentials source could not produce an `Authorization` value. Retryable only when
    /// the source's own error says a retry may succeed (a refresh request that timed out or
    /// met a 5xx); a feed ends on any other.
    Credentials,
    /// A base URL or endpoint could not be built.
    InvalidUrl,
    /// A setting of [`crate::FeedConfig`] cannot work (a zero ping interval, an idle timeout
    /// not longer than the ping interval); refused when the client is built.
    InvalidConfig,
    /// A subscription is malformed: a windowed metric without a window, or a window on a
    /// metric that has none.
    InvalidSubscription,
    /// Connecting, TLS, the WebSocket handshake or socket I/O failed.
    Transport,
    /// The server answered a request or an upgrade with an unexpected HTTP status.
    HttpStatus,
    /// The server sent a non-200 status frame other than 401 and 429 (500 means it did not
    /// understand a message the client sent), or the same status in a REST body. Retryable
    /// for 501 to 599 only.
    ServerStatus,
    /// A frame or body could not be decoded.
    Decode,
    /// A response body or frame was larger than the client accepts.
    TooLarge,
    /// The server did not answer in time, or the feed went silent past its deadline.
    Timeout,
    /// The feed was closed (by [`crate::FeedHandle::close`] or because every handle is gone).
    Closed,
}

impl ErrorKind {
    const fn describe(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::RateLimited => "rate limited by the server",
            Self::LocalRateLimited => "local connection budget spent",
            Self::AgentConnectionCap => "per-agent connection cap reached",
            Self::AccountConnectionCap => "per-account connection cap reached",
            Self::Credentials => "credentials unavailable",
            Self::InvalidUrl => "invalid URL",
            Self::InvalidConfig => "invalid configuration",
            Self::InvalidSubscription => "invalid subscription",
            Self::Transport => "transport error",
            Self::HttpStatus => "unexpected HTTP status",
            Self::ServerStatus => "error status frame",
            Self::Decode => "malformed frame or body",
            Self::TooLarge => "frame or body too large",
            Self::Timeout => "timed out",
            Self::Closed => "feed closed",
        }
    }
}

/// The error type of every fallible operation in this crate.
///
/// Branch on [`Error::kind`]. The error keeps the HTTP status or frame `status_code`, a
/// bounded excerpt of an error body ([`BODY_EXCERPT_LIMIT`] bytes), a retry hint, and the
/// underlying error as [`std::error::Error::source`]. `Display` does not repeat the source.
/// It is `Clone` so one connection failure can be both reported on the stream and kept.
#[derive(Clone)]
pub struct Error(Box<Inner>);

/// Boxed so an `Error` is one pointer: it sits in every feed's event queue slot
/// ([`crate::FeedEvent::Reconnecting`]) and in results passed through the driver's futures.
#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    detail: Cow<'static, str>,
    status: Option<u16>,
    body: Option<String>,
    retry_after: Option<Duration>,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, detail: impl Into<Cow<'static, str>>) -> Self {
        Self(Box::new(Inner {
            kind,
            detail: detail.into(),
            status: None,
            body: None,
            retry_after: None,
            source: None,
        }))
    }

    pub(crate) fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.0.source = Some(Arc::new(source));
        self
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.0.status = Some(status);
        self
    }

    pub(crate) fn with_body(mut self, body: &[u8]) -> Self {
        self.0.body = Some(excerpt(body));
        self
    }

    pub(crate) fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.0.retry_after = retry_after;
        self
    }

    /// The classification.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The HTTP status of the response, or the `status_code` of the status frame.
    pub fn status(&self) -> Option<u16> {
        self.0.status
    }

    /// The HTTP status as a typed [`StatusCode`], when it is one.
    pub fn http_status(&self) -> Option<StatusCode> {
        self.0.status.and_then(|s| StatusCode::from_u16(s).ok())
    }

    /// A bounded excerpt of the error body or status frame message (the 429 reason, the 401
    /// message).
    pub fn body(&self) -> Option<&str> {
        self.0.body.as_deref()
    }

    /// How long to wait before trying again, when known: from `Retry-After` on a 429, or from
    /// the local budget.
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    /// Whether trying again later (same credentials) may succeed.
    pub fn is_retryable(&self) -> bool {
        match self.0.kind {
            ErrorKind::RateLimited
            | ErrorKind::LocalRateLimited
            | ErrorKind::Transport
            | ErrorKind::Timeout
            | ErrorKind::Decode
            | ErrorKind::TooLarge => true,
            ErrorKind::HttpStatus => self.0.status.is_some_and(|s| s >= 500),
            // A 4xx status frame refuses what was asked (an unknown department, say), and a
            // 500 says the service did not understand it: sent again, it is refused again. The
            // feed reads a status frame by the same rule.
            ErrorKind::ServerStatus => self.0.status.is_none_or(|status_code| {
                zd_wire::realtime::Status {
                    status_code,
                    message: None,
                }
                .is_retryable()
            }),
            // A refresh that timed out may work next time; an empty secret or a refused
            // grant will not, and retrying it would spend the shared request budget forever.
            ErrorKind::Credentials => self
                .0
                .source
                .as_deref()
                .and_then(|s| s.downcast_ref::<zd_auth::Error>())
                .is_some_and(zd_auth::Error::is_retryable),
            ErrorKind::Unauthorized
            | ErrorKind::AgentConnectionCap
            | ErrorKind::AccountConnectionCap
            | ErrorKind::InvalidUrl
            | ErrorKind::InvalidConfig
            | ErrorKind::InvalidSubscription
            | ErrorKind::Closed => false,
        }
    }
}

fn excerpt(body: &[u8]) -> String {
    let cut = body.len().min(BODY_EXCERPT_LIMIT);
    let mut text = String::from_utf8_lossy(&body[..cut]).into_owned();
    if body.len() > cut {
        text.push('…');
    }
    text
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.0.kind)
            .field("detail", &self.0.detail);
        if let Some(status) = self.0.status {
            d.field("status", &status);
        }
        if let Some(body) = &self.0.body {
            d.field("body", body);
        }
        if let Some(retry_after) = self.0.retry_after {
            d.field("retry_after", &retry_after);
        }
        if let Some(source) = &self.0.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.kind.describe())?;
        if !self.0.detail.is_empty() {
            write!(f, ": {}", self.0.detail)?;
        }
        if let Some(status) = self.0.status {
            write!(f, " (status {status})")?;
        }
        Ok(())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_does_not_repeat_source() {
        let io = std::io::Error::other("boom");
        let err = Error::new(ErrorKind::Transport, "connect").with_source(io);
        assert_eq!(err.to_string(), "transport error: connect");
        assert_eq!(
            err.source().map(ToString::to_string).as_deref(),
            Some("boom")
        );
        assert!(err.is_retryable());
    }

    #[test]
    fn body_is_bounded() {
        let body = vec![b'x'; BODY_EXCERPT_LIMIT * 2];
        let err = Error::new(ErrorKind::RateLimited, "").with_body(&body);
        assert!(
            err.body()
                .is_some_and(|b| b.len() <= BODY_EXCERPT_LIMIT + 3)
        );
    }

    #[test]
    fn credentials_are_retryable_only_when_their_source_says_so() {
        let empty = zd_auth::StaticToken::bearer("").unwrap_err();
        assert!(!empty.is_retryable());
        let err = Error::new(ErrorKind::Credentials, "").with_source(empty);
        assert!(!err.is_retryable());
        let opaque = Error::new(ErrorKind::Credentials, "").with_source(std::io::Error::other("x"));
        assert!(!opaque.is_retryable());
        assert!(
            !Error::new(ErrorKind::HttpStatus, "")
                .with_status(403)
                .is_retryable()
        );
        assert!(
            Error::new(ErrorKind::HttpStatus, "")
                .with_status(503)
                .is_retryable()
        );
    }

    #[test]
    fn a_status_frame_refusal_is_retryable_only_for_a_server_failure() {
        let status = |code| Error::new(ErrorKind::ServerStatus, "status frame").with_status(code);
        assert!(!status(404).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(
            !status(500).is_retryable(),
            "500: the message was not understood"
        );
        assert!(status(503).is_retryable());
        assert!(!status(600).is_retryable());
        assert!(
            Error::new(ErrorKind::ServerStatus, "status frame").is_retryable(),
            "no status: nothing says it cannot pass"
        );
    }

    #[tokio::test]
    async fn credentials_whose_source_failed_for_a_passing_reason_are_retryable() {
        // A token endpoint nothing listens on: a transport failure, which may pass.
        let unreachable = zd_auth::chat::OAuthClient::new("zd-metrics-test")
            .unwrap()
            .with_secret("secret")
            .unwrap()
            .with_base_url("http://127.0.0.1:1")
            .unwrap()
            .client_credentials(&[])
            .await
            .unwrap_err();
        assert!(unreachable.is_retryable());
        let err = Error::new(ErrorKind::Credentials, "").with_source(unreachable);
        assert!(err.is_retryable());
    }

    #[test]
    fn unauthorized_is_final() {
        let err = Error::new(ErrorKind::Unauthorized, "").with_status(401);
        assert!(!err.is_retryable());
        assert_eq!(err.http_status(), Some(StatusCode::UNAUTHORIZED));
    }
}
