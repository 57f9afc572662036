//! The crate's one error type.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use crate::Secret;

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
    rotated_refresh_token: Option<Secret>,
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
                rotated_refresh_token: None,
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

    pub(crate) fn with_rotated_refresh_token(mut self, token: Secret) -> Self {
        self.inner.rotated_refresh_token = Some(token);
        self
    }

    /// The error without the rotated refresh token: once a grant holds it, copies of the error
    /// (kept for a cool-down, handed to every waiting caller) must not spread it, nor offer
    /// it after it is spent.
    pub(crate) fn without_rotated_refresh_token(mut self) -> Self {
        self.inner.rotated_refresh_token = None;
        self
    }

    /// Hides the values in `sent` wherever the server's words are kept: the OAuth code and
    /// description and the body excerpt (see [`redact_sent`]). The code and description are
    /// then cut to [`BODY_EXCERPT_LIMIT`] bytes with their control characters blanked: they
    /// reach log lines through `Display`, and the error is copied to every caller that waited
    /// for a refresh.
    pub(crate) fn redact_sent(mut self, sent: &[&str]) -> Self {
        if let Some(oauth) = &mut self.inner.oauth {
            if let OAuthErrorCode::Unknown(code) = &mut oauth.code {
                *code = server_text(&redact_sent(code, sent));
            }
            if let Some(description) = &mut oauth.description {
                *description = server_text(&redact_sent(description, sent));
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

    /// The refresh token a refused token answer carried: a success status whose body held a
    /// new `refresh_token` but failed for the rest (no access token, a token type that is not
    /// bearer, ...). The server may have consumed what was sent (the refresh token, or the
    /// code of a code exchange), so keep this one for the next try. Never shown by `Debug`
    /// or `Display`.
    ///
    /// ```no_run
    /// # async fn renew(client: &zd_auth::chat::OAuthClient, kept: &mut zd_auth::Secret) {
    /// match client.refresh(kept).await {
    ///     Ok(token) => {
    ///         if let Some(next) = token.refresh_token() {
    ///             *kept = next.clone();
    ///         }
    ///     }
    ///     Err(e) => {
    ///         if let Some(next) = e.rotated_refresh_token() {
    ///             *kept = next.clone();
    ///         }
    ///     }
    /// }
    /// # }
    /// ```
    pub fn rotated_refresh_token(&self) -> Option<&Secret> {
        self.inner.rotated_refresh_token.as_ref()
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

/// `text` with every value of `sent` replaced by `[REDACTED]`: servers and the gateways in
/// front of them echo requests (client secret, refresh token, password and all) in their
/// error answers, and errors end up in logs.
///
/// A value is looked for as sent, form-encoded and JSON-escaped in the text as written
/// (numbers and keys included, digit for digit), and in the text with its JSON escapes undone
/// (once, and again for JSON inside a JSON string), wherever they are: encoders escape what
/// they like (`p\u0026ss`, `ab\/cd`, `\u003D`, `w\u00f6rd`), and an HTML page, a JSONP
/// answer or a cut body holds JSON strings without being JSON.
///
/// Values of `sent` that are empty are ignored. Of a text cut short (a bounded excerpt), pass
/// the result on to [`drop_partial_tail`] as well: a value the cut split is not found whole.
///
/// ```
/// use zd_auth::redact_sent;
///
/// let body = r#"{"error":"bad key s3cr\u0065t"}"#;
/// assert_eq!(redact_sent(body, &["s3cret"]), r#"{"error":"bad key [REDACTED]"}"#);
/// ```
pub fn redact_sent<'a>(text: &'a str, sent: &[&str]) -> Cow<'a, str> {
    let spellings = spellings(sent);
    if spellings.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut hidden = Vec::new();
    for spelling in &spellings {
        hidden.extend(
            text.match_indices(spelling.as_str())
                .map(|(at, found)| at..at + found.len()),
        );
    }
    for view in unescaped(text) {
        for spelling in &spellings {
            hidden.extend(
                view.text
                    .match_indices(spelling.as_str())
                    .map(|(at, found)| view.from[at]..view.from[at + found.len()]),
            );
        }
    }
    if hidden.is_empty() {
        return Cow::Borrowed(text);
    }
    hidden.sort_by_key(|range| range.start);
    let mut redacted = String::with_capacity(text.len());
    let mut shown = 0;
    for range in hidden {
        if range.start < shown {
            // Overlaps the value hidden last (two spellings, or two views, found it).
            shown = shown.max(range.end);
            continue;
        }
        redacted.push_str(&text[shown..range.start]);
        redacted.push_str("[REDACTED]");
        shown = range.end;
    }
    redacted.push_str(&text[shown..]);
    Cow::Owned(redacted)
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

/// `text` without a trailing beginning of a value of `sent` (in any of its spellings, with or
/// without JSON escapes): for a body whose reading stopped part way through one. An escape
/// cut short at the end (`\`, `\u00`, half a surrogate pair) goes first: it may be the
/// value's next character.
///
/// For a text cut to a bound, after [`redact_sent`] hid the values found whole.
///
/// ```
/// use zd_auth::drop_partial_tail;
///
/// assert_eq!(drop_partial_tail("key: s3cr", &["s3cret"]), "key: ");
/// assert_eq!(drop_partial_tail("key: ok", &["s3cret"]), "key: ok");
/// ```
pub fn drop_partial_tail<'a>(text: &'a str, sent: &[&str]) -> &'a str {
    let spellings = spellings(sent);
    if spellings.is_empty() {
        return text;
    }
    let mut end = text.len();
    // Dropping an unfinished escape can leave one of the level below at the end (`\\u00`).
    for _ in 0..=UNESCAPE_LEVELS {
        match unescaped(&text[..end])
            .iter()
            .filter_map(|view| view.unfinished)
            .min()
        {
            Some(at) => end = at,
            None => break,
        }
    }
    let text = &text[..end];
    let mut start = end;
    for spelling in &spellings {
        if let Some(len) = longest_partial(text, spelling) {
            start = start.min(end - len);
        }
    }
    for view in unescaped(text) {
        for spelling in &spellings {
            if let Some(len) = longest_partial(&view.text, spelling) {
                start = start.min(view.from[view.text.len() - len]);
            }
        }
    }
    &text[..start]
}

/// The length of the longest proper beginning of `spelling` that `text` ends with.
fn longest_partial(text: &str, spelling: &str) -> Option<usize> {
    // Longest first: `ab` in `..ab` for the value `abc` hides more than `b` would.
    spelling
        .char_indices()
        .map(|(i, _)| i)
        .filter(|&i| i > 0)
        .rev()
        .find(|&len| text.ends_with(&spelling[..len]))
}

/// How many times JSON escapes are undone: JSON, and JSON in a JSON string.
const UNESCAPE_LEVELS: usize = 2;

/// A text with its JSON escapes undone, and where each of its characters was written.
struct Unescaped {
    text: String,
    /// For each byte of `text`, and for `text.len()`: where the written spelling of the
    /// character holding it starts in the original text (for `text.len()`, its end). A
    /// character boundary of `text` maps to one of the original.
    from: Vec<usize>,
    /// Where an escape that the end of the text cuts short starts in the original text.
    unfinished: Option<usize>,
}

/// `text` with its escapes undone once, then again (as long as a backslash is left), each
/// mapped back to `text`. Each level costs a pass over `text` and a word per byte.
fn unescaped(text: &str) -> Vec<Unescaped> {
    let mut levels: Vec<Unescaped> = Vec::new();
    while levels.len() < UNESCAPE_LEVELS {
        let src = levels.last().map_or(text, |level| level.text.as_str());
        if !src.contains('\\') {
            break;
        }
        let mut next = unescape(src);
        if let Some(below) = levels.last() {
            for at in &mut next.from {
                *at = below.from[*at];
            }
            next.unfinished = next.unfinished.map(|at| below.from[at]);
        }
        levels.push(next);
    }
    levels
}

/// One pass of undoing JSON string escapes over all of `src`, string or not: `\"`, `\\`,
/// `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\uXXXX` (surrogate pairs joined) and JavaScript's
/// `\'`. Anything else, a lone surrogate included, stays as written.
fn unescape(src: &str) -> Unescaped {
    let bytes = src.as_bytes();
    let mut text = String::with_capacity(src.len());
    let mut from = Vec::with_capacity(src.len() + 1);
    let mut unfinished = None;
    let mut at = 0;
    while let Some(written) = src.get(at..).and_then(|rest| rest.chars().next()) {
        let (c, len) = if written == '\\' {
            match escape_at(bytes, at) {
                Escape::Char(c, len) => (c, len),
                Escape::Unfinished => {
                    unfinished.get_or_insert(at);
                    (written, 1)
                }
                Escape::None => (written, 1),
            }
        } else {
            (written, written.len_utf8())
        };
        from.extend(std::iter::repeat_n(at, c.len_utf8()));
        text.push(c);
        at += len;
    }
    from.push(src.len());
    Unescaped {
        text,
        from,
        unfinished,
    }
}

enum Escape {
    /// The character, and how many bytes spell it.
    Char(char, usize),
    /// The text ends before the escape does.
    Unfinished,
    /// Not an escape.
    None,
}

/// The escape starting with the backslash at `bytes[at]`.
fn escape_at(bytes: &[u8], at: usize) -> Escape {
    let Some(&kind) = bytes.get(at + 1) else {
        return Escape::Unfinished;
    };
    let simple = match kind {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'\'' => '\'',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => return unicode_escape_at(bytes, at),
        _ => return Escape::None,
    };
    Escape::Char(simple, 2)
}

/// The `\uXXXX` escape (or surrogate pair of them) starting at `bytes[at]`.
fn unicode_escape_at(bytes: &[u8], at: usize) -> Escape {
    let unit = match hex4(bytes, at + 2) {
        Hex::Unit(unit) => unit,
        Hex::Short => return Escape::Unfinished,
        Hex::Invalid => return Escape::None,
    };
    if (0xDC00..0xE000).contains(&unit) {
        return Escape::None;
    }
    if !(0xD800..0xDC00).contains(&unit) {
        return char::from_u32(unit).map_or(Escape::None, |c| Escape::Char(c, 6));
    }
    // A high surrogate: the character needs the low one after it.
    let rest = bytes.get(at + 6..).unwrap_or_default();
    let cut_short = rest.len() < 6
        && rest.iter().enumerate().all(|(i, &b)| match i {
            0 => b == b'\\',
            1 => b == b'u',
            _ => b.is_ascii_hexdigit(),
        });
    if cut_short {
        return Escape::Unfinished;
    }
    if !rest.starts_with(b"\\u") {
        return Escape::None;
    }
    match hex4(bytes, at + 8) {
        Hex::Unit(low) if (0xDC00..0xE000).contains(&low) => {
            char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                .map_or(Escape::None, |c| Escape::Char(c, 12))
        }
        _ => Escape::None,
    }
}

enum Hex {
    Unit(u32),
    /// Hex digits up to the end of the text, fewer than four.
    Short,
    Invalid,
}

/// The four hex digits at `bytes[at..]`.
fn hex4(bytes: &[u8], at: usize) -> Hex {
    let digits = bytes.get(at..bytes.len().min(at + 4)).unwrap_or_default();
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return Hex::Invalid;
    }
    if digits.len() < 4 {
        return Hex::Short;
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|digits| u32::from_str_radix(digits, 16).ok())
        .map_or(Hex::Invalid, Hex::Unit)
}

/// The server's words as kept for `Display`: at most [`BODY_EXCERPT_LIMIT`] bytes, cut on a
/// character boundary, with control characters and the line, paragraph and bidirectional
/// formatting marks (a line break that would forge a log line, text shown reversed) blanked.
pub(crate) fn server_text(text: &str) -> String {
    let mut cut = text.len().min(BODY_EXCERPT_LIMIT);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    blank_controls(&text[..cut]).into_owned()
}

/// `text` with its control characters and its line, paragraph and bidirectional formatting
/// marks blanked, for a service's words that go into a log line: a line break would forge a
/// line, a bidi mark show text reversed.
///
/// ```
/// assert_eq!(zd_auth::blank_controls("a\nFAKE\u{202E}"), "a FAKE ");
/// assert!(matches!(zd_auth::blank_controls("plain"), std::borrow::Cow::Borrowed(_)));
/// ```
pub fn blank_controls(text: &str) -> Cow<'_, str> {
    let blanked =
        |c: char| c.is_control() || matches!(c, '\u{2028}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if !text.contains(blanked) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if blanked(c) { ' ' } else { c })
            .collect(),
    )
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
    fn redaction_maps_unescaped_matches_back_to_the_text() {
        for (text, sent, shown) in [
            ("xs3cr3ts3cr3tx", "s3cr3t", "x[REDACTED][REDACTED]x"),
            (r"ab\/cd ab/cd", "ab/cd", "[REDACTED] [REDACTED]"),
            // Two spellings of one value overlapping: hidden once.
            ("a b+c", "a b+c", "[REDACTED]"),
            // A multi-byte character before the escaped one.
            ("\u{e9}\\u00e9t\u{e9}", "\u{e9}t\u{e9}", "\u{e9}[REDACTED]"),
            (r"\uD83D\uDD11!", "\u{1f511}", "[REDACTED]!"),
            // Lone surrogates and unknown escapes stay as written, the rest is still read.
            (
                r"\ud800x \udc00 \q s\u0033cr3t",
                "s3cr3t",
                r"\ud800x \udc00 \q [REDACTED]",
            ),
        ] {
            assert_eq!(redact_sent(text, &[sent]), shown, "{text}");
        }
        assert!(matches!(redact_sent(r"p\u0026q", &["x"]), Cow::Borrowed(_)));
    }

    #[test]
    fn a_partial_tail_is_dropped_in_any_spelling() {
        for (text, shown) in [
            ("ab s3", "ab "),
            (r"ab s\u0033c", "ab "),
            (r"ab s\u003", "ab "),
            (r"ab s\", "ab "),
            (r"ab \\", "ab "),
            ("ab s3cr3t", "ab s3cr3t"),
            ("ab x", "ab x"),
        ] {
            assert_eq!(drop_partial_tail(text, &["s3cr3t"]), shown, "{text}");
        }
        assert_eq!(drop_partial_tail(r"ab s\u003", &[]), r"ab s\u003");
    }

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
