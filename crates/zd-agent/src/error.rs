//! The one error type of this crate.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use zd_wire::chat::ErrorName;

use crate::depth::DocumentError;
use crate::structured::{InvalidTag, LimitError};

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
/// A cause shared by the copies of one error (a closing session fails every waiting call with
/// the same error, cause included).
type SharedError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Longest excerpt of a server text kept in an error.
const EXCERPT: usize = 512;

/// One error reported by the service, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// The documented error name (`RATE_LIMITED`, ...).
    pub name: Option<ErrorName>,
    /// The message (bounded).
    pub message: String,
    /// The service's id of this occurrence, for support.
    pub uuid: Option<String>,
}

impl ServiceError {
    pub(crate) fn from_wire(e: &zd_wire::chat::GraphQlError<'_>) -> Self {
        Self {
            name: e.name.clone(),
            message: excerpt(&e.message),
            uuid: e.uuid.as_deref().map(str::to_owned),
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The status of an error frame whose code was no usable status (see
/// [`zd_wire::chat::ErrorResponse::UNKNOWN_STATUS`]).
pub(crate) const UNKNOWN_STATUS: u16 = zd_wire::chat::ErrorResponse::UNKNOWN_STATUS;

/// True when a protocol error of this status may succeed later: 429, a 5xx, or a status that
/// was not usable (the failure cannot be known to be permanent).
pub(crate) fn status_retryable(status: u16) -> bool {
    status >= 500 || status == 429 || status == UNKNOWN_STATUS
}

/// True when some error carries a name the API documents (not [`ErrorName::Unknown`]): only
/// then do the names, rather than the status of the answer, say whether to retry.
pub(crate) fn names_documented(errors: &[zd_wire::chat::GraphQlError<'_>]) -> bool {
    errors.iter().any(|e| {
        e.name
            .as_ref()
            .is_some_and(|n| !matches!(n, ErrorName::Unknown(_)))
    })
}

pub(crate) fn excerpt(s: &str) -> String {
    let mut end = s.len().min(EXCERPT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// The cause of the [`ErrorKind::CatchUp`] item of a subscription whose catch-up query the
/// service refused: the refusal is its source.
#[derive(Debug, thiserror::Error)]
#[error(
    "the service refused the catch-up query after three gaps in a row; this subscription no longer catches up after a gap"
)]
pub(crate) struct CatchUpRefused(#[source] pub(crate) Error);

/// The cause of the [`ErrorKind::CatchUp`] item of a catch-up that reached the limits of its
/// query: it handed out what it found, but the gap may hold more.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CatchUpCutOff {
    /// The channel page was full: channels past it were not looked at.
    #[error(
        "the catch-up looks at the first {0} channels and found that many: messages of the others were not looked for"
    )]
    Channels(i32),
    /// A channel's log page was full and all of it fell in the gap: older entries of the gap
    /// were not fetched.
    #[error(
        "the catch-up fetched the last {0} entries of channel {1}, all from the gap: older ones were not fetched"
    )]
    Logs(i32, String),
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The service answered with GraphQL errors.
    Service(Vec<ServiceError>),
    /// The service answered with a protocol error (`{"body": ...}`), e.g. it is unavailable;
    /// also an error frame whose payload has no documented error name (retried by its status,
    /// as the names cannot say), or whose payload is of no known shape.
    Protocol {
        /// HTTP-like status the frame carried; 0 when its code was no usable status, which is
        /// retried like a 5xx since the failure cannot be known to be permanent.
        status: u16,
        /// The body (bounded).
        body: String,
    },
    /// `startAgentSession` over HTTP failed at the transport level.
    Http,
    /// `startAgentSession` answered with an unexpected HTTP status.
    HttpStatus {
        /// The status.
        status: u16,
        /// The body (bounded).
        body: String,
    },
    /// The credentials could not produce a token.
    Credentials,
    /// Opening or using the WebSocket failed.
    WebSocket,
    /// An answer did not have the expected shape.
    Decode,
    /// The socket dropped before the answer came; the request may be retried.
    ConnectionLost,
    /// No answer within the request timeout.
    Timeout,
    /// The service ended the session because the agent started another one elsewhere
    /// (EOS "concurrent session limit reached"). Not fought by default.
    ConcurrentSession,
    /// The session is closed (EOS, `stop()`, or recovery gave up).
    Closed {
        /// Why.
        reason: String,
    },
    /// A new session cannot start yet without breaking the documented start limits.
    StartLimited {
        /// When the next start is allowed.
        retry_after: Duration,
    },
    /// An 11th live subscription was refused locally (the service allows 10).
    TooManySubscriptions,
    /// A structured message broke a documented limit; nothing was sent.
    Limit(LimitError),
    /// A tag with characters the service refuses; nothing was sent.
    InvalidTag(String),
    /// A raw document is invalid or too deep; nothing was sent.
    Document,
    /// [`crate::AgentStatus::Unknown`] was asked for: the service's name for that status is
    /// not known, so it cannot be sent; nothing was sent.
    UnknownStatus,
    /// The query that fetches what a subscription missed while no socket was up failed or
    /// answered something undecodable: items of the gap may be missing. The subscription
    /// itself goes on. The cause is the error's source. When the service refused the query
    /// outright (errors no retry changes), the source says so and that subscription runs no
    /// catch-up again: this item comes once, not after every gap. Also the item after the
    /// messages of a catch-up that reached its query's limits (100 channels, 50 entries per
    /// channel; see [`crate::AgentSession::messages`]): the source says which.
    CatchUp,
    /// A message sent with [`OutgoingMessage::backoff`](crate::OutgoingMessage::backoff) was
    /// not sent because another agent serves the channel (the service answered
    /// `success: false`). Not a failure to retry: the chat is someone else's.
    BackedOff,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Service(errors) => {
                f.write_str("the service answered with errors: ")?;
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Self::Protocol {
                status: UNKNOWN_STATUS,
                body,
            } => {
                write!(f, "protocol error (no usable status): {body}")
            }
            Self::Protocol { status, body } => write!(f, "protocol error {status}: {body}"),
            Self::Http => f.write_str("startAgentSession request failed"),
            Self::HttpStatus { status, .. } => write!(f, "startAgentSession answered HTTP {status}"),
            Self::Credentials => f.write_str("the credentials could not produce a token"),
            Self::WebSocket => f.write_str("WebSocket failure"),
            Self::Decode => f.write_str("unexpected answer shape"),
            Self::ConnectionLost => f.write_str("connection lost before the answer came"),
            Self::Timeout => f.write_str("no answer in time"),
            Self::ConcurrentSession => {
                f.write_str("session ended: the agent started another session (concurrent session limit reached)")
            }
            Self::Closed { reason } => write!(f, "session closed: {reason}"),
            Self::StartLimited { retry_after } => {
                write!(f, "startAgentSession limit reached; next allowed in {retry_after:?}")
            }
            Self::TooManySubscriptions => {
                f.write_str("a session holds at most 10 live subscriptions; refused the 11th locally")
            }
            Self::Limit(e) => write!(f, "{e}"),
            Self::InvalidTag(tag) => write!(f, "{}", InvalidTag(tag.clone())),
            Self::Document => f.write_str("the document cannot be sent"),
            Self::UnknownStatus => {
                f.write_str("an unknown agent status cannot be sent: its name is not known")
            }
            Self::CatchUp => {
                f.write_str("the catch-up after a gap failed: items of the gap may be missing")
            }
            Self::BackedOff => {
                f.write_str("not sent: another agent serves the channel and backoff was set")
            }
        }
    }
}

/// The error of every fallible operation of this crate.
#[derive(thiserror::Error)]
#[error("{kind}")]
pub struct Error {
    kind: ErrorKind,
    #[source]
    source: Option<SharedError>,
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self { kind, source: None }
    }

    pub(crate) fn with_source(kind: ErrorKind, source: impl Into<BoxError>) -> Self {
        Self {
            kind,
            source: Some(Arc::from(source.into())),
        }
    }

    pub(crate) fn closed(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Closed {
            reason: reason.into(),
        })
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The first documented error name the service gave; failing that, the first name it
    /// gave (an [`ErrorName::Unknown`]); `None` when it named none.
    #[must_use]
    pub fn error_name(&self) -> Option<&ErrorName> {
        match &self.kind {
            ErrorKind::Service(errors) => {
                let mut names = errors.iter().filter_map(|e| e.name.as_ref());
                // A name the API does not document must not hide one it does (whose
                // retryability the caller, and `is_retryable`, go by).
                names
                    .clone()
                    .find(|n| !matches!(n, ErrorName::Unknown(_)))
                    .or_else(|| names.next())
            }
            _ => None,
        }
    }

    /// True when trying the same call again later may succeed.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match &self.kind {
            ErrorKind::Service(_) => self.error_name().is_some_and(ErrorName::is_retryable),
            ErrorKind::Protocol { status, .. } => status_retryable(*status),
            ErrorKind::Http
            | ErrorKind::WebSocket
            | ErrorKind::ConnectionLost
            | ErrorKind::Timeout
            | ErrorKind::StartLimited { .. } => true,
            ErrorKind::HttpStatus { status, .. } => *status >= 500 || *status == 429,
            // A refresh that met a network blip or an unavailable server may work later.
            ErrorKind::Credentials => self
                .source
                .as_deref()
                .and_then(|s| s.downcast_ref::<zd_auth::Error>())
                .is_some_and(zd_auth::Error::is_retryable),
            _ => false,
        }
    }

    /// How long to wait before retrying, when known.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match &self.kind {
            ErrorKind::StartLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// A copy for another waiter, sharing the cause.
    pub(crate) fn share(&self) -> Self {
        Self {
            kind: self.kind.clone(),
            source: self.source.clone(),
        }
    }

    /// Displays the error with its chain of causes (`kind: cause: cause of the cause`), for
    /// logs and for the reason a closed session gives.
    pub(crate) fn with_causes(&self) -> impl fmt::Display + '_ {
        WithCauses(self)
    }
}

struct WithCauses<'a>(&'a Error);

impl fmt::Display for WithCauses<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = std::error::Error::source(self.0);
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

impl From<LimitError> for Error {
    fn from(e: LimitError) -> Self {
        Self::new(ErrorKind::Limit(e))
    }
}

impl From<InvalidTag> for Error {
    fn from(e: InvalidTag) -> Self {
        Self::new(ErrorKind::InvalidTag(e.0))
    }
}

impl From<DocumentError> for Error {
    fn from(e: DocumentError) -> Self {
        Self::with_source(ErrorKind::Document, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryability_follows_the_error_name() {
        let svc = |name: ErrorName| {
            Error::new(ErrorKind::Service(vec![ServiceError {
                name: Some(name),
                message: "m".into(),
                uuid: None,
            }]))
        };
        assert!(svc(ErrorName::RateLimited).is_retryable());
        assert!(!svc(ErrorName::Unauthorized).is_retryable());
        assert!(!svc(ErrorName::MaxSub).is_retryable());
        // An undocumented name first does not hide the documented one after it.
        let both = Error::new(ErrorKind::Service(vec![
            ServiceError {
                name: Some(ErrorName::Unknown("NEW_THING".into())),
                message: "m".into(),
                uuid: None,
            },
            ServiceError {
                name: Some(ErrorName::RateLimited),
                message: "m".into(),
                uuid: None,
            },
        ]));
        assert_eq!(both.error_name(), Some(&ErrorName::RateLimited));
        assert!(both.is_retryable());
        assert!(Error::new(ErrorKind::ConnectionLost).is_retryable());
        assert!(!Error::new(ErrorKind::TooManySubscriptions).is_retryable());
        assert_eq!(
            svc(ErrorName::RateLimited).to_string(),
            "the service answered with errors: RATE_LIMITED: m"
        );
    }

    #[test]
    fn a_shared_copy_keeps_the_cause_and_shows_the_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused by peer");
        let e = Error::with_source(ErrorKind::WebSocket, io);
        let copy = e.share();
        let cause = std::error::Error::source(&copy).map(ToString::to_string);
        assert_eq!(cause.as_deref(), Some("refused by peer"));
        assert_eq!(
            copy.with_causes().to_string(),
            "WebSocket failure: refused by peer"
        );
        assert_eq!(
            Error::new(ErrorKind::Timeout).with_causes().to_string(),
            "no answer in time"
        );
    }
}
