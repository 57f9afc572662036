//! The crate's one error type.

use std::fmt;
use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;

/// The most of a response body an [`Error`] keeps (bytes).
pub const BODY_EXCERPT_LIMIT: usize = 2048;

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, coarsely; match on this rather than on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The connection could not be made or broke (DNS, TCP, TLS, HTTP framing).
    Transport,
    /// The request did not complete within the configured timeout.
    Timeout,
    /// The credentials could not produce an `Authorization` header.
    Credentials,
    /// 400: the API rejected the request as malformed.
    BadRequest,
    /// 401: missing or rejected credentials.
    Unauthorized,
    /// 402: the account's plan does not allow this.
    PaymentRequired,
    /// 403: the credentials' scope does not allow this.
    Forbidden,
    /// 404: no such resource.
    NotFound,
    /// 409: conflict with the current state (duplicate externalId, ...).
    Conflict,
    /// 413: the server found the body too large.
    PayloadTooLarge,
    /// 423: the conversation holds the maximum number of messages (30,000); delete messages
    /// (DeleteAllMessages) before posting more.
    ConversationLocked,
    /// 429: rate limited; see [`Error::retry_after`].
    RateLimited,
    /// 3xx: the server sent the request elsewhere (a proxy, or a base URL that moved); the
    /// client does not follow redirects, which would resend credentials to another place.
    Redirect,
    /// Any other 4xx status.
    Client,
    /// 5xx: the server failed.
    Server,
    /// The JSON body is over the API's 100 KB limit; caught before sending.
    RequestTooLarge,
    /// An attachment is over the API's 50 MB limit; caught before or while sending.
    UploadTooLarge,
    /// The response body exceeded the client's size limit.
    ResponseTooLarge,
    /// A request could not be built: a body that does not encode, or a query argument the
    /// API requires left unset.
    Encode,
    /// A success response could not be decoded into the expected type.
    Decode,
    /// A client setting (base URL, header value) is invalid.
    Config,
    /// An I/O error reading an attachment.
    Io,
    /// The server handed back a page cursor it had already given in this listing, which
    /// would loop forever, or sent [`MAX_EMPTY_PAGES`](crate::pagination::MAX_EMPTY_PAGES)
    /// empty pages in a row that each said more follow.
    CursorLoop,
    /// The server said more pages follow (`meta.hasMore`) but gave no cursor to fetch them:
    /// the listing is incomplete.
    MissingCursor,
}

impl ErrorKind {
    /// The kind for an HTTP error status.
    pub const fn from_status(status: u16) -> Self {
        match status {
            400 => Self::BadRequest,
            401 => Self::Unauthorized,
            402 => Self::PaymentRequired,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            409 => Self::Conflict,
            413 => Self::PayloadTooLarge,
            423 => Self::ConversationLocked,
            429 => Self::RateLimited,
            300..=399 => Self::Redirect,
            500..=599 => Self::Server,
            _ => Self::Client,
        }
    }

    /// Whether the same request may succeed later: rate limits, server errors, broken
    /// connections and timeouts.
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::RateLimited | Self::Server | Self::Transport | Self::Timeout
        )
    }
}

/// One entry of the API's `{"errors": [{"code", "title"}]}` body.
///
/// The spec's error schema requires neither field, and one odd entry must not cost the whole
/// list: a field that is not a string is read as absent, and an entry of an error body that
/// is not an object, or has neither field, is skipped. Control characters and line or bidi
/// marks (a line break a proxy put in a title) are blanked in an [`Error`]'s entries
/// ([`zd_auth::blank_controls`]), since they go into log lines through `Display`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiErrorItem {
    /// Machine-readable code, such as `conversation_not_found`.
    #[serde(default, deserialize_with = "text_or_none")]
    pub code: Option<String>,
    /// Human-readable text.
    #[serde(default, deserialize_with = "text_or_none")]
    pub title: Option<String>,
}

/// A string, or `None` for any other JSON value.
fn text_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Text(String),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Text::deserialize(d)? {
        Text::Text(text) => Some(text),
        Text::Other(_) => None,
    })
}

/// An entry of `errors[]`: an object, or anything else (skipped). An object read as a map:
/// derived, an array would pass for a struct (`["code", "title"]`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Entry {
    Object(serde_json::Map<String, serde_json::Value>),
    Other(serde::de::IgnoredAny),
}

impl Entry {
    /// The entry's code and title, when it is an object with at least one of them.
    fn item(self) -> Option<ApiErrorItem> {
        let Self::Object(fields) = self else {
            return None;
        };
        let text = |name: &str| {
            fields
                .get(name)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let item = ApiErrorItem {
            code: text("code"),
            title: text("title"),
        };
        (item.code.is_some() || item.title.is_some()).then_some(item)
    }
}

/// The most `errors[]` entries an [`Error`] reads (and keeps, those with a code or a title);
/// the rest of a longer list is skipped unparsed, so that an error body up to the response
/// limit cannot grow into a huge list.
pub const API_ERRORS_LIMIT: usize = 64;

/// The most bytes of an entry's `code` or `title` an [`Error`] keeps (cut on a character
/// boundary), so that one huge title cannot flood a log line.
pub const API_ERROR_FIELD_LIMIT: usize = 512;

#[derive(Deserialize)]
struct ApiErrorBody {
    #[serde(default, deserialize_with = "bounded_errors")]
    errors: Vec<ApiErrorItem>,
}

/// The entries of the first [`API_ERRORS_LIMIT`] of `errors[]` (see [`Entry::item`]); the
/// remaining entries are skipped
/// with `IgnoredAny`. Their fields are cut to [`API_ERROR_FIELD_LIMIT`] afterwards, where
/// the credentials sent are known and a cut can be told from a field that was short.
fn bounded_errors<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ApiErrorItem>, D::Error> {
    struct Bounded;

    impl<'de> serde::de::Visitor<'de> for Bounded {
        type Value = Vec<ApiErrorItem>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of API error entries")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let hint = seq.size_hint().unwrap_or(0).min(API_ERRORS_LIMIT);
            let mut items = Vec::with_capacity(hint);
            // Entries read, kept or not: a list of odd entries is bounded too.
            for _ in 0..API_ERRORS_LIMIT {
                match seq.next_element::<Entry>()? {
                    Some(entry) => items.extend(entry.item()),
                    None => return Ok(items),
                }
            }
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(items)
        }
    }

    d.deserialize_seq(Bounded)
}

/// Shortest secret hidden inside an error code (see `Error::from_response`).
const MIN_SECRET_IN_CODE: usize = 8;

/// Cuts `field` to at most [`API_ERROR_FIELD_LIMIT`] bytes and hides `sent` in it (see
/// [`hide_sent`]).
fn bound_field(field: &mut Option<String>, sent: &[&str]) {
    if let Some(s) = field {
        if let std::borrow::Cow::Owned(blanked) = zd_auth::blank_controls(s) {
            *s = blanked;
        }
        let cut = truncate_str(s, API_ERROR_FIELD_LIMIT);
        *s = hide_sent(std::mem::take(s), cut, API_ERROR_FIELD_LIMIT, sent);
    }
}

/// Cuts `s` to at most `max` bytes, on a character boundary; whether it cut.
fn truncate_str(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    true
}

/// `text` with the secrets the request sent (its credentials) hidden: servers echo what they
/// were sent in error answers, and errors end up in logs. A whole secret becomes
/// `[REDACTED]`, as written or JSON-escaped (zd-auth's [`zd_auth::redact_sent`]); when the
/// text was `cut`, the beginning of one that the cut split is dropped too
/// ([`zd_auth::drop_partial_tail`]). The result stays within `max` bytes, whatever was sent.
fn hide_sent(text: String, cut: bool, max: usize, sent: &[&str]) -> String {
    let mut shown = if sent.is_empty() {
        text
    } else {
        zd_auth::redact_sent(&text, sent).into_owned()
    };
    if cut {
        let keep = zd_auth::drop_partial_tail(&shown, sent).len();
        shown.truncate(keep);
    }
    // The text can have grown past `max`: `[REDACTED]` can be longer than the secret it
    // replaced, and lossy decoding turns each invalid byte into a three-byte U+FFFD. Cut
    // again, and drop what the new cut may leave of a secret's beginning.
    if truncate_str(&mut shown, max) {
        let keep = zd_auth::drop_partial_tail(&shown, sent).len();
        shown.truncate(keep);
    }
    shown
}

/// An error from the Sunshine Conversations client.
///
/// Keeps the HTTP status, the API's error entries, a bounded excerpt of the body, the
/// `Retry-After` hint, the operation that failed and the underlying source error.
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    operation: Option<&'static str>,
    status: Option<StatusCode>,
    api_errors: Vec<ApiErrorItem>,
    body: Option<String>,
    retry_after: Option<Duration>,
    detail: Option<String>,
    source: Option<Source>,
    /// How many times the client sent the request; 0 for an error from before sending.
    sends: u32,
}

impl Error {
    /// An error of `kind` with a short description.
    pub(crate) fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            kind,
            operation: None,
            status: None,
            api_errors: Vec::new(),
            body: None,
            retry_after: None,
            detail: Some(detail.into()),
            source: None,
            sends: 0,
        }))
    }

    /// An error of `kind` caused by `source`.
    pub(crate) fn with_source(
        kind: ErrorKind,
        detail: impl Into<String>,
        source: impl Into<Source>,
    ) -> Self {
        let mut e = Self::new(kind, detail);
        e.0.source = Some(source.into());
        e
    }

    /// An error response: status, parsed `errors[]` (when the body has them) and an excerpt,
    /// with the secrets the request `sent` hidden in all that is kept of the body.
    pub(crate) fn from_response(
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
        sent: &[&str],
    ) -> Self {
        // Parsed from the body as received, so that hiding a short secret cannot garble the
        // JSON; the secrets are hidden in each field afterwards.
        let mut api_errors = serde_json::from_slice::<ApiErrorBody>(body)
            .map(|b| b.errors)
            .unwrap_or_default();
        let long_secrets: Vec<&str> = sent
            .iter()
            .copied()
            .filter(|secret| secret.len() >= MIN_SECRET_IN_CODE)
            .collect();
        for item in &mut api_errors {
            // A code is the API's identifier (`invalid_certificate`), compared by callers: a
            // short secret (a one-letter passphrase) would riddle it with `[REDACTED]`, and
            // no service spells a secret of eight bytes or more into one by chance.
            bound_field(&mut item.code, &long_secrets);
            bound_field(&mut item.title, sent);
        }
        Self(Box::new(Inner {
            kind: ErrorKind::from_status(status.as_u16()),
            operation: None,
            status: Some(status),
            api_errors,
            body: Some(excerpt(body, sent)),
            retry_after,
            detail: None,
            source: None,
            sends: 0,
        }))
    }

    /// A decode failure of a success body, keeping the JSON path that failed (in the source)
    /// but not the body: a success body can hold fresh credentials (a new key's secret, a
    /// webhook's secret, an access token), and callers log [`Error::body`] freely.
    pub(crate) fn decode(status: StatusCode, source: impl Into<Source>) -> Self {
        let mut e = Self::with_source(
            ErrorKind::Decode,
            "response body does not match the model",
            source,
        );
        e.0.status = Some(status);
        e
    }

    pub(crate) fn at(mut self, operation: &'static str) -> Self {
        self.0.operation.get_or_insert(operation);
        self
    }

    /// The coarse category.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// Whether retrying the same request may succeed (429, 5xx, transport failures, timeouts).
    pub fn is_retryable(&self) -> bool {
        self.0.kind.is_retryable()
    }

    /// The server's `Retry-After` hint, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    /// How many times the client sent (or tried to send) the request, the retries included;
    /// 0 for an error that came before anything was sent. An error about a success answer
    /// (a body that does not match the model) counts the send that got it.
    ///
    /// Above 1, an earlier attempt may have been carried out though its answer was lost (a
    /// timeout, a 502): a `DELETE` whose retry is answered 404 may have deleted in its
    /// first attempt.
    pub fn sends(&self) -> u32 {
        self.0.sends
    }

    /// How many times the request was sent (see [`Error::sends`]).
    pub(crate) fn sent_times(mut self, sends: u32) -> Self {
        self.0.sends = sends;
        self
    }

    /// The HTTP status, for errors that came with a response.
    pub fn status(&self) -> Option<StatusCode> {
        self.0.status
    }

    /// The API's error entries (`errors[]`), possibly empty.
    pub fn api_errors(&self) -> &[ApiErrorItem] {
        &self.0.api_errors
    }

    /// The first API error code, such as `conversation_not_found` (from the first entry that
    /// has one).
    pub fn code(&self) -> Option<&str> {
        self.0.api_errors.iter().find_map(|e| e.code.as_deref())
    }

    /// The start of an error response's body (at most [`BODY_EXCERPT_LIMIT`] bytes); `None`
    /// for a success body that did not decode ([`ErrorKind::Decode`]), which may hold secrets.
    /// Credentials the request sent and the server echoed show as `[REDACTED]`, here and in
    /// [`Error::api_errors`].
    pub fn body(&self) -> Option<&str> {
        self.0.body.as_deref()
    }

    /// The operation (operationId) that failed, when known.
    pub fn operation(&self) -> Option<&'static str> {
        self.0.operation
    }
}

/// The start of `body` as lossy UTF-8, at most [`BODY_EXCERPT_LIMIT`] bytes of text, with
/// `sent` hidden (see [`hide_sent`]).
fn excerpt(body: &[u8], sent: &[&str]) -> String {
    let cut = body.len() > BODY_EXCERPT_LIMIT;
    let kept = if cut {
        // Half a character at the cut would show as U+FFFD, after which the beginning of a
        // secret holding that character no longer ends the text, where it is looked for.
        zd_auth::without_split_char(&body[..BODY_EXCERPT_LIMIT])
    } else {
        body
    };
    hide_sent(
        String::from_utf8_lossy(kept).into_owned(),
        cut,
        BODY_EXCERPT_LIMIT,
        sent,
    )
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("operation", &self.0.operation)
            .field("status", &self.0.status)
            .field("api_errors", &self.0.api_errors)
            .field("retry_after", &self.0.retry_after)
            .field("detail", &self.0.detail)
            .field("source", &self.0.source)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(op) = self.0.operation {
            write!(f, "{op}: ")?;
        }
        match (self.0.status, self.0.api_errors.first()) {
            (Some(s), Some(api)) if self.0.kind != ErrorKind::Decode => {
                write!(f, "HTTP {}", s.as_u16())?;
                if let Some(code) = &api.code {
                    write!(f, " {code}")?;
                }
                if let Some(t) = &api.title {
                    write!(f, ": {t}")?;
                }
            }
            (Some(s), None) if self.0.kind != ErrorKind::Decode => {
                write!(f, "HTTP {}", s.as_u16())?
            }
            _ => write!(f, "{:?}", self.0.kind)?,
        }
        if let Some(d) = &self.0.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_statuses() {
        assert_eq!(ErrorKind::from_status(423), ErrorKind::ConversationLocked);
        assert!(ErrorKind::from_status(503).is_retryable());
        assert!(ErrorKind::from_status(429).is_retryable());
        assert!(!ErrorKind::from_status(404).is_retryable());
    }

    #[test]
    fn parses_error_body() {
        let e = Error::from_response(
            StatusCode::NOT_FOUND,
            br#"{"errors":[{"code":"conversation_not_found","title":"Conversation not found"}]}"#,
            None,
            &[],
        )
        .at("GetConversation");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.code(), Some("conversation_not_found"));
        assert_eq!(
            e.to_string(),
            "GetConversation: HTTP 404 conversation_not_found: Conversation not found"
        );
    }

    #[test]
    fn an_error_entry_without_a_code_keeps_the_list() {
        let e = Error::from_response(
            StatusCode::BAD_REQUEST,
            br#"{"errors":[{"title":"Something broke"},{"code":"invalid"}]}"#,
            None,
            &[],
        );
        assert_eq!(e.api_errors().len(), 2);
        assert_eq!(e.api_errors()[0].code, None);
        assert_eq!(e.code(), Some("invalid"));
        assert_eq!(e.to_string(), "HTTP 400: Something broke");
    }

    #[test]
    fn an_odd_error_entry_keeps_the_rest_of_the_list() {
        let body = br#"{"errors":[{"code":42},"oops",null,["forbidden","t"],{"code":"invalid","title":{"t":1}},{"code":"second","title":"y"}]}"#;
        let e = Error::from_response(StatusCode::BAD_REQUEST, body, None, &[]);
        let codes: Vec<Option<&str>> = e
            .api_errors()
            .iter()
            .map(|item| item.code.as_deref())
            .collect();
        assert_eq!(codes, [Some("invalid"), Some("second")]);
        assert_eq!(e.code(), Some("invalid"));
        assert_eq!(e.to_string(), "HTTP 400 invalid");
    }

    #[test]
    fn control_characters_of_an_error_entry_do_not_reach_display() {
        let body =
            br#"{"errors":[{"code":"bad\rcode","title":"a\nFAKE 2026 INFO login ok\u0007"}]}"#;
        let e = Error::from_response(StatusCode::BAD_REQUEST, body, None, &[]);
        let shown = e.to_string();
        assert!(!shown.contains(char::is_control), "{shown:?}");
        assert_eq!(shown, "HTTP 400 bad code: a FAKE 2026 INFO login ok ");
    }

    #[test]
    fn a_secret_split_mid_character_by_the_excerpt_cut_leaves_no_beginning() {
        let secret = "sécret-välue-1234";
        // The cut falls inside `é`, after the secret's `s`.
        let body = format!("{}{secret}", "x".repeat(BODY_EXCERPT_LIMIT - 2));
        let e = Error::from_response(StatusCode::BAD_REQUEST, body.as_bytes(), None, &[secret]);
        let kept = e.body().unwrap_or_default();
        assert!(kept.ends_with("xxx"), "{:?}", &kept[kept.len() - 8..]);
        assert!(!kept.contains('s') && !kept.contains('\u{fffd}'));
    }

    #[test]
    fn a_short_secret_leaves_the_error_code_readable() {
        let body = br#"{"errors":[{"code":"invalid_certificate","title":"a is wrong"}]}"#;
        let e = Error::from_response(StatusCode::BAD_REQUEST, body, None, &["a"]);
        assert_eq!(e.code(), Some("invalid_certificate"));
        assert_eq!(
            e.api_errors()[0].title.as_deref(),
            Some("[REDACTED] is wrong")
        );
        let long = "s3cret-key-value";
        let body = format!(r#"{{"errors":[{{"code":"bad_{long}"}}]}}"#);
        let e = Error::from_response(StatusCode::BAD_REQUEST, body.as_bytes(), None, &[long]);
        assert_eq!(e.code(), Some("bad_[REDACTED]"));
    }

    #[test]
    fn hiding_a_short_secret_keeps_a_field_within_its_limit() {
        let title = "ab".repeat(API_ERROR_FIELD_LIMIT / 2);
        let body = serde_json::json!({"errors": [{"title": title}]}).to_string();
        let e = Error::from_response(StatusCode::BAD_REQUEST, body.as_bytes(), None, &["ab"]);
        let kept = e.api_errors()[0].title.as_deref().unwrap_or_default();
        assert!(kept.len() <= API_ERROR_FIELD_LIMIT, "{} bytes", kept.len());
        assert!(
            kept.starts_with("[REDACTED]") && !kept.contains("ab"),
            "{kept}"
        );
    }

    #[test]
    fn an_excerpt_of_invalid_utf8_stays_within_its_limit() {
        // Each 0xFF byte shows as U+FFFD, three bytes long.
        let body = vec![0xFF; BODY_EXCERPT_LIMIT];
        for sent in [&[][..], &["s3cret"][..]] {
            let e = Error::from_response(StatusCode::BAD_GATEWAY, &body, None, sent);
            let kept = e.body().unwrap_or_default();
            assert!(kept.len() <= BODY_EXCERPT_LIMIT, "{} bytes", kept.len());
            assert!(kept.starts_with('\u{fffd}'), "{kept}");
        }
    }

    #[test]
    fn a_huge_error_list_is_cut_to_the_limit() {
        let mut body = String::from(r#"{"errors":["#);
        for i in 0..10_000 {
            if i > 0 {
                body.push(',');
            }
            body.push_str(r#"{"code":"c"}"#);
        }
        body.push_str("]}");
        let e = Error::from_response(StatusCode::BAD_REQUEST, body.as_bytes(), None, &[]);
        assert_eq!(e.kind(), ErrorKind::BadRequest);
        assert!(
            e.api_errors().len() <= API_ERRORS_LIMIT,
            "{} entries kept",
            e.api_errors().len()
        );
        assert_eq!(e.api_errors().len(), API_ERRORS_LIMIT);
    }

    #[test]
    fn a_huge_title_is_cut_on_a_char_boundary_and_display_stays_bounded() {
        // Multi-byte characters, so that a cut at a byte count would split one.
        let title = "é".repeat(512 * 1024); // 1 MiB
        let code = "x".repeat(100_000);
        let body = serde_json::json!({"errors": [{"code": code, "title": title}]}).to_string();
        let e = Error::from_response(StatusCode::BAD_REQUEST, body.as_bytes(), None, &[])
            .at("PostMessage");
        let shown = e.to_string();
        assert!(
            shown.len() <= 2 * API_ERROR_FIELD_LIMIT + 64,
            "{} bytes",
            shown.len()
        );
        let kept = e.api_errors()[0].title.as_deref().unwrap_or_default();
        assert!(kept.len() <= API_ERROR_FIELD_LIMIT && kept.len() > API_ERROR_FIELD_LIMIT - 4);
        assert!(kept.chars().all(|c| c == 'é'));
        assert!(format!("{e:?}").len() < 4 * API_ERROR_FIELD_LIMIT);
    }
}
