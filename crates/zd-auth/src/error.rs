//! The crate's one error type.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

/// Longest body excerpt an [`Error`] keeps, in bytes.
pub const BODY_EXCERPT_LIMIT: usize = 512;

/// What went wrong, for callers that branch on failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A secret that must not be empty (token, key secret, client secret, password) was empty.
    EmptySecret,
    /// An argument was unusable: a bad base URL, an over-long `external_id`, a key id that is
    /// not a Sunshine key id, ...
    InvalidInput,
    /// The key's prefix does not allow the requested scope (`app_` keys sign `app`/`user`
    /// tokens, `act_`/`svc_` keys `account`, `int_` keys `integration`).
    KeyScopeMismatch,
    /// Connecting, TLS or I/O failed before a complete response arrived.
    Transport,
    /// The server did not answer in time.
    Timeout,
    /// The server answered with a non-success status and no OAuth error body.
    HttpStatus,
    /// The server answered with an OAuth error body (`{"error": ..}`); see [`Error::oauth`].
    OAuth,
    /// The response body was malformed, truncated or missing a required field.
    Decode,
    /// A successful response's body was larger than the client accepts
    /// ([`HttpConfig::max_body`](crate::HttpConfig::max_body)). An error answer's body is cut
    /// there instead, and the error is the one its status calls for.
    BodyTooLarge,
    /// Signing a JWT failed.
    JwtSign,
    /// The JWT is not a well-formed HS256 JWT (shape, base64, JSON, algorithm).
    JwtMalformed,
    /// The JWT has no `kid`, or its `kid` is not a known key.
    JwtUnknownKey,
    /// The JWT's signature does not match the key named by its `kid`.
    JwtBadSignature,
    /// The JWT's `exp` is in the past.
    JwtExpired,
    /// The JWT's `scope` is missing, unknown, not the expected one, or does not fit the key.
    JwtWrongScope,
    /// A claim has the wrong type or value (a numeric `external_id`, a non-integer `exp`, ...).
    JwtInvalidClaims,
    /// A [`TokenSource`](crate::TokenSource) panicked while fetching a token.
    SourcePanicked,
}

impl ErrorKind {
    const fn describe(self) -> &'static str {
        match self {
            Self::EmptySecret => "empty secret",
            Self::InvalidInput => "invalid input",
            Self::KeyScopeMismatch => "key does not allow this scope",
            Self::Transport => "transport error",
            Self::Timeout => "request timed out",
            Self::HttpStatus => "unexpected HTTP status",
            Self::OAuth => "OAuth error",
            Self::Decode => "malformed response",
            Self::BodyTooLarge => "response body too large",
            Self::JwtSign => "JWT signing failed",
            Self::JwtMalformed => "malformed JWT",
            Self::JwtUnknownKey => "JWT key unknown",
            Self::JwtBadSignature => "JWT signature invalid",
            Self::JwtExpired => "JWT expired",
            Self::JwtWrongScope => "JWT scope not accepted",
            Self::JwtInvalidClaims => "JWT claims invalid",
            Self::SourcePanicked => "token source panicked",
        }
    }
}

/// An OAuth 2 error code (RFC 6749 section 5.2), as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// `invalid_request`
    InvalidRequest,
    /// `invalid_client`: unknown client, bad secret, or (Chat) a public client asking for
    /// `client_credentials`.
    InvalidClient,
    /// `invalid_grant`: bad, used or expired code, refresh token or password.
    InvalidGrant,
    /// `unauthorized_client`
    UnauthorizedClient,
    /// `unsupported_grant_type`
    UnsupportedGrantType,
    /// `invalid_scope`
    InvalidScope,
    /// `access_denied`
    AccessDenied,
    /// `server_error`
    ServerError,
    /// `temporarily_unavailable`
    TemporarilyUnavailable,
    /// Any other code, kept verbatim.
    Unknown(String),
}

impl OAuthErrorCode {
    /// Parses a wire code; unknown codes are kept in [`OAuthErrorCode::Unknown`].
    pub fn from_wire(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            "access_denied" => Self::AccessDenied,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The wire form of the code.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::Unknown(code) => code,
        }
    }

    /// Whether asking again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::ServerError | Self::TemporarilyUnavailable)
    }
}

/// An OAuth error body: `{"error": "...", "error_description": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The `error` code.
    pub code: OAuthErrorCode,
    /// The optional human-readable `error_description`.
    pub description: Option<String>,
}

/// The error type of every fallible operation in this crate.
///
/// Branch on [`Error::kind`]. The error keeps the HTTP status, a bounded excerpt of an error
/// body ([`BODY_EXCERPT_LIMIT`] bytes), the OAuth error payload, the JSON path of a decode
/// failure and the underlying error as [`std::error::Error::source`]. `Display` does not repeat
/// the source. Bodies of *successful* token responses are never kept, since they may hold
/// tokens. `Error` is `Clone` so that one failed refresh can be reported to every task that
/// waited on it.
#[derive(Clone)]
pub struct Error {
    // Boxed so that `Result<T, Error>` stays one pointer wide on the happy path.
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    detail: Cow<'static, str>,
    status: Option<StatusCode>,
    body: Option<String>,
    oauth: Option<OAuthError>,
    json_path: Option<String>,
    retry_after: Option<Duration>,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                detail: detail.into(),
                status: None,
                body: None,
                oauth: None,
                json_path: None,
                retry_after: None,
                source: None,
            }),
        }
    }

    pub(crate) fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Arc::new(source));
        self
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.inner.status = Some(status);
        self
    }

    pub(crate) fn with_body(mut self, body: &[u8]) -> Self {
        self.inner.body = Some(excerpt(body));
        self
    }

    pub(crate) fn with_oauth(mut self, oauth: OAuthError) -> Self {
        self.inner.oauth = Some(oauth);
        self
    }

    pub(crate) fn with_json_path(mut self, path: String) -> Self {
        self.inner.json_path = Some(path);
        self
    }

    pub(crate) fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.inner.retry_after = retry_after;
        self
    }

    /// Hides the values in `sent` wherever the server's words are kept: the OAuth code and
    /// description and the body excerpt (see [`redact_sent`]).
    pub(crate) fn redact_sent(mut self, sent: &[&str]) -> Self {
        if let Some(oauth) = &mut self.inner.oauth {
            if let OAuthErrorCode::Unknown(code) = &mut oauth.code {
                *code = redact_sent(code, sent).into_owned();
            }
            if let Some(description) = &mut oauth.description {
                *description = redact_sent(description, sent).into_owned();
            }
        }
        if let Some(body) = &mut self.inner.body {
            *body = redact_sent(body, sent).into_owned();
        }
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// Up to [`BODY_EXCERPT_LIMIT`] bytes of an error response body (lossy UTF-8).
    pub fn body_excerpt(&self) -> Option<&str> {
        self.inner.body.as_deref()
    }

    /// The OAuth error payload, for [`ErrorKind::OAuth`].
    pub fn oauth(&self) -> Option<&OAuthError> {
        self.inner.oauth.as_ref()
    }

    /// Where in the JSON a decode failure happened (`access_token`, `app.id`, ...).
    pub fn json_path(&self) -> Option<&str> {
        self.inner.json_path.as_deref()
    }

    /// The server's `Retry-After` hint, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// Whether the same call may succeed if repeated later: transport failures, timeouts,
    /// 429 and 5xx answers (whatever their body says), and the OAuth codes `server_error` /
    /// `temporarily_unavailable`.
    pub fn is_retryable(&self) -> bool {
        // An overloaded or failing server answers 429/5xx with whatever body it has, an
        // OAuth-shaped `{"error": "maintenance"}` included: the status decides.
        let overloaded = self
            .inner
            .status
            .is_some_and(|s| s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error());
        match self.inner.kind {
            ErrorKind::Transport | ErrorKind::Timeout => true,
            ErrorKind::HttpStatus => overloaded,
            ErrorKind::OAuth => {
                overloaded
                    || self
                        .inner
                        .oauth
                        .as_ref()
                        .is_some_and(|o| o.code.is_retryable())
            }
            _ => false,
        }
    }
}

/// `text` with every value of `sent` replaced by `[REDACTED]`, as sent and in its
/// form-encoded and JSON-escaped spellings: servers and the gateways in front of them echo
/// requests (client secret, refresh token, password and all) in their error answers, and
/// errors end up in logs.
pub(crate) fn redact_sent<'a>(text: &'a str, sent: &[&str]) -> Cow<'a, str> {
    let mut text = Cow::Borrowed(text);
    for spelling in spellings(sent) {
        if text.contains(spelling.as_str()) {
            text = Cow::Owned(text.replace(spelling.as_str(), "[REDACTED]"));
        }
    }
    text
}

/// Each non-empty value of `sent` as sent, form-encoded and JSON-escaped.
fn spellings(sent: &[&str]) -> Vec<String> {
    let mut all = Vec::new();
    for value in sent.iter().filter(|v| !v.is_empty()) {
        let form: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        let json = serde_json::to_string(value)
            .ok()
            .and_then(|quoted| Some(quoted.get(1..quoted.len().checked_sub(1)?)?.to_owned()));
        all.extend(
            [Some((*value).to_owned()), Some(form), json]
                .into_iter()
                .flatten()
                .filter(|s| !s.is_empty()),
        );
    }
    all
}

/// Every string and key of `value` passed through [`redact_sent`]: compared once JSON's
/// escapes are undone, whichever the server chose.
pub(crate) fn redact_json(value: &mut serde_json::Value, sent: &[&str]) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            if let Cow::Owned(redacted) = redact_sent(s, sent) {
                *s = redacted;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_json(v, sent)),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut v) in entries {
                redact_json(&mut v, sent);
                map.insert(redact_sent(&key, sent).into_owned(), v);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `text` without a trailing beginning of a value of `sent` (in any of its spellings): for a
/// body whose reading stopped part way through one.
pub(crate) fn drop_partial_tail<'a>(text: &'a str, sent: &[&str]) -> &'a str {
    let mut end = text.len();
    for spelling in spellings(sent) {
        // Longest first: `ab` in `..ab` for the value `abc` hides more than `b` would.
        let proper_prefix_ends = spelling.char_indices().map(|(i, _)| i).filter(|&i| i > 0);
        for len in proper_prefix_ends.rev() {
            let prefix = &spelling[..len];
            if text[..end].ends_with(prefix) {
                end -= prefix.len();
                break;
            }
        }
    }
    &text[..end]
}

fn excerpt(body: &[u8]) -> String {
    let cut = body.len().min(BODY_EXCERPT_LIMIT);
    // Lossy decoding cannot split a character: a partial one at the cut becomes U+FFFD.
    String::from_utf8_lossy(&body[..cut]).into_owned()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.inner.kind.describe())?;
        if let Some(status) = self.inner.status {
            write!(f, " (HTTP {})", status.as_u16())?;
        }
        if let Some(oauth) = &self.inner.oauth {
            write!(f, ": {}", oauth.code.as_str())?;
            if let Some(description) = &oauth.description {
                write!(f, " ({description})")?;
            }
        }
        if !self.inner.detail.is_empty() {
            write!(f, ": {}", self.inner.detail)?;
        }
        if let Some(path) = &self.inner.json_path {
            write!(f, " at `{path}`")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("detail", &self.inner.detail);
        if let Some(status) = self.inner.status {
            d.field("status", &status);
        }
        if let Some(oauth) = &self.inner.oauth {
            d.field("oauth", oauth);
        }
        if let Some(path) = &self.inner.json_path {
            d.field("json_path", path);
        }
        if let Some(body) = &self.inner.body {
            d.field("body", body);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_bounded_and_lossy() {
        let body = "é".repeat(BODY_EXCERPT_LIMIT);
        let err = Error::new(ErrorKind::HttpStatus, "").with_body(body.as_bytes());
        let kept = err.body_excerpt().unwrap();
        assert!(kept.len() <= BODY_EXCERPT_LIMIT + 3);
        assert!(kept.starts_with("éé"));
    }

    #[test]
    fn retryable_classification() {
        let e = |s: u16| {
            Error::new(ErrorKind::HttpStatus, "").with_status(StatusCode::from_u16(s).unwrap())
        };
        assert!(e(429).is_retryable());
        assert!(e(503).is_retryable());
        assert!(!e(401).is_retryable());
        assert!(Error::new(ErrorKind::Timeout, "").is_retryable());
        let oauth = |s: u16, code: &str| {
            Error::new(ErrorKind::OAuth, "")
                .with_status(StatusCode::from_u16(s).unwrap())
                .with_oauth(OAuthError {
                    code: OAuthErrorCode::from_wire(code),
                    description: None,
                })
        };
        assert!(oauth(503, "maintenance").is_retryable());
        assert!(oauth(429, "rate_limited").is_retryable());
        assert!(!oauth(400, "invalid_grant").is_retryable());
        assert!(oauth(400, "temporarily_unavailable").is_retryable());
        assert!(!Error::new(ErrorKind::JwtExpired, "").is_retryable());
    }

    #[test]
    fn display_does_not_repeat_source() {
        let io = std::io::Error::other("socket closed");
        let err = Error::new(ErrorKind::Transport, "POST /oauth2/token").with_source(io);
        assert_eq!(err.to_string(), "transport error: POST /oauth2/token");
        assert_eq!(err.source().unwrap().to_string(), "socket closed");
    }
}
