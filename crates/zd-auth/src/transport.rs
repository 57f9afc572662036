//! The small HTTP transport the token endpoints share: hyper 1 over rustls (ring provider,
//! webpki roots), bounded bodies, a timeout, and mapping of error responses to [`Error`].

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::{drop_partial_tail, redact_sent};
use crate::{Error, ErrorKind, OAuthError, OAuthErrorCode, Secret};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_BODY: usize = 256 * 1024;

/// Timeout and size limits for the token endpoints' HTTP client.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Whole-request timeout (connect, send, read the body). Default 30 s.
    pub timeout: Duration,
    /// Largest response body accepted, in bytes. Default 256 KiB. A longer successful body
    /// is an [`ErrorKind::BodyTooLarge`] error; of a longer error answer's body only this much
    /// is read (for the excerpt) and the error stays the status's, `Retry-After` included.
    pub max_body: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

#[derive(Clone)]
pub(crate) struct Transport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    config: HttpConfig,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// The body of an error answer was longer than `max_body`: `body` is its beginning.
    pub(crate) cut: bool,
}

impl Transport {
    pub(crate) fn new(config: HttpConfig) -> Result<Self, Error> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| Error::new(ErrorKind::Transport, "TLS setup").with_source(e))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self { client, config })
    }

    /// Sends a request and reads the whole (bounded) response.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &Url,
        authorization: Option<&Secret>,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Response, Error> {
        let what = format!("{method} {}", url.path());
        let mut builder = Request::builder()
            .method(method)
            .uri(url.as_str())
            .header(USER_AGENT, concat!("zd-auth/", env!("CARGO_PKG_VERSION")))
            .header(http::header::ACCEPT, "application/json");
        if let Some(auth) = authorization {
            let mut value = HeaderValue::from_str(auth.expose_secret()).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    "authorization value is not a valid header",
                )
                .with_source(e)
            })?;
            value.set_sensitive(true);
            builder = builder.header(http::header::AUTHORIZATION, value);
        }
        let request = match body {
            Some((content_type, bytes)) => builder
                .header(CONTENT_TYPE, content_type)
                .body(Full::new(Bytes::from(bytes))),
            None => builder.body(Full::new(Bytes::new())),
        }
        .map_err(|e| Error::new(ErrorKind::InvalidInput, what.clone()).with_source(e))?;

        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| Error::new(ErrorKind::Transport, what.clone()).with_source(e))?;
            let (parts, mut body) = response.into_parts();
            let limit = self.config.max_body;
            let mut read = Vec::new();
            let mut cut = false;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| {
                    Error::new(ErrorKind::Transport, format!("{what}: reading body"))
                        .with_status(parts.status)
                        .with_source(e)
                })?;
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let room = limit.saturating_sub(read.len());
                if data.len() > room {
                    if parts.status.is_success() {
                        return Err(Error::new(
                            ErrorKind::BodyTooLarge,
                            format!("{what}: more than {limit} bytes"),
                        )
                        .with_status(parts.status));
                    }
                    // An error answer: its status and `Retry-After` tell the caller what it
                    // needs (a 503 with a huge page stays retryable); the body only feeds an
                    // excerpt, so the rest of it is not worth reading.
                    read.extend_from_slice(&data[..room]);
                    cut = true;
                    break;
                }
                read.extend_from_slice(&data);
            }
            Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body: Bytes::from(read),
                cut,
            })
        };
        tokio::time::timeout(self.config.timeout, exchange)
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Timeout,
                    format!("{what}: no answer within {:?}", self.config.timeout),
                )
            })?
    }
}

/// `body` without an incomplete UTF-8 sequence at its very end (a character the cut split),
/// whatever comes before: lossy decoding would make it U+FFFD, and the beginning of a value
/// before it would no longer be at the end, where [`drop_partial_tail`] looks.
///
/// ```
/// use zd_auth::without_split_char;
///
/// let cut = &"sé".as_bytes()[..2]; // `s` and half of `é`
/// assert_eq!(without_split_char(cut), b"s");
/// assert_eq!(without_split_char("sé".as_bytes()), "sé".as_bytes());
/// ```
pub fn without_split_char(body: &[u8]) -> &[u8] {
    // A sequence is at most four bytes: its lead byte is at most three before the last.
    for back in 1..=body.len().min(3) {
        let at = body.len() - back;
        let byte = body[at];
        if byte & 0xC0 == 0x80 {
            continue;
        }
        let needs = match byte {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if back < needs { &body[..at] } else { body };
    }
    body
}

#[derive(serde::Deserialize)]
struct OAuthErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl Response {
    /// An error for a non-success response: typed OAuth error when the body is one, else the
    /// status with a bounded body excerpt. The secret values of the request, `sent`, are
    /// hidden in whatever the server wrote back (before the excerpt is cut, so that no part
    /// of one survives at the cut).
    pub(crate) fn error(&self, what: &str, sent: &[&str]) -> Error {
        let retry_after = crate::retry_after::from_headers(&self.headers);
        let what = if self.cut {
            format!("{what} (error body cut at {} bytes)", self.body.len())
        } else {
            what.to_owned()
        };
        // Parsed from the body as received, so that hiding a short value cannot garble the
        // JSON or a known error code; the code and description are redacted afterwards.
        let base = match serde_json::from_slice::<OAuthErrorBody>(&self.body) {
            Ok(oauth) => Error::new(ErrorKind::OAuth, what).with_oauth(OAuthError {
                code: OAuthErrorCode::from_wire(&oauth.error),
                description: oauth.error_description,
            }),
            Err(_) => Error::new(ErrorKind::HttpStatus, what),
        };
        base.with_status(self.status)
            .with_body(self.redacted_body(sent).as_bytes())
            .with_retry_after(retry_after)
            .redact_sent(sent)
    }

    /// The body with the values of `sent` hidden (see [`redact_sent`]): matched in the text as
    /// written, so that a value echoed as a number is compared digit for digit, and with its
    /// JSON escapes undone, whatever the rest of the body is. Of a cut body, the beginning of
    /// a value at the cut is dropped too.
    fn redacted_body(&self, sent: &[&str]) -> String {
        let body = if self.cut {
            without_split_char(&self.body)
        } else {
            &self.body[..]
        };
        let body = String::from_utf8_lossy(body);
        let redacted = redact_sent(&body, sent);
        if self.cut {
            // The read stopped mid-body, perhaps in the middle of a value: its beginning
            // must not show either.
            drop_partial_tail(&redacted, sent).to_owned()
        } else {
            redacted.into_owned()
        }
    }

    /// Decodes a success body. The body is not kept on failure: it may hold tokens. `sent` as
    /// for [`Response::error`].
    pub(crate) fn json<T: DeserializeOwned>(&self, what: &str, sent: &[&str]) -> Result<T, Error> {
        if !self.status.is_success() {
            return Err(self.error(what, sent));
        }
        let de = &mut serde_json::Deserializer::from_slice(&self.body);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            Error::new(ErrorKind::Decode, what.to_owned())
                .with_status(self.status)
                .with_json_path(path)
                .with_source(DecodeFailure::of(&e.into_inner()))
        })
    }
}

/// Why a success body did not decode, without serde's message: that quotes the offending
/// value (`invalid type: integer `12345678``), and a success body holds tokens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecodeFailure {
    category: serde_json::error::Category,
    line: usize,
    column: usize,
}

impl DecodeFailure {
    pub(crate) fn of(error: &serde_json::Error) -> Self {
        Self {
            category: error.classify(),
            line: error.line(),
            column: error.column(),
        }
    }
}

impl std::fmt::Display for DecodeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use serde_json::error::Category;
        let what = match self.category {
            Category::Io => "I/O error",
            Category::Syntax => "invalid JSON",
            Category::Data => "a value of the wrong type or shape",
            Category::Eof => "JSON cut short",
        };
        write!(f, "{what} at line {} column {}", self.line, self.column)
    }
}

impl std::error::Error for DecodeFailure {}

/// `url` with its `user:password@`, if any, shown as `[REDACTED]@`: a base URL may carry a
/// proxy's credentials, which must not reach a log through an error or `Debug`. Works on
/// strings that do not parse as URLs too, since those end up in error messages.
pub(crate) fn redact_userinfo(url: &str) -> Cow<'_, str> {
    let Some(scheme_end) = url.find("://") else {
        return Cow::Borrowed(url);
    };
    let (head, rest) = url.split_at(scheme_end + 3);
    let authority = rest.find(['/', '?', '#']).map_or(rest, |end| &rest[..end]);
    match authority.rfind('@') {
        Some(at) => Cow::Owned(format!("{head}[REDACTED]{}", &rest[at..])),
        None => Cow::Borrowed(url),
    }
}

/// Joins a base URL (which may carry a path such as `/sc`) and an absolute endpoint path.
pub(crate) fn endpoint(base: &Url, path: &str) -> Result<Url, Error> {
    let joined = format!("{}{}", base.as_str().trim_end_matches('/'), path);
    Url::parse(&joined).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("bad endpoint URL {}", redact_userinfo(&joined)),
        )
        .with_source(e)
    })
}

/// Parses and checks a base URL: `https`, or `http` on a loopback host only (an emulator or a
/// test server), since these requests carry client secrets and passwords.
pub(crate) fn base_url(url: &str) -> Result<Url, Error> {
    let parsed = Url::parse(url).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("bad base URL {}", redact_userinfo(url)),
        )
        .with_source(e)
    })?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        "http" => Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "base URL {} must use https (plain http is allowed for loopback only)",
                redact_userinfo(url)
            ),
        )),
        other => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("base URL scheme {other} is not http(s)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BODY_EXCERPT_LIMIT;

    #[test]
    fn base_urls() {
        assert!(base_url("https://www.zopim.com").is_ok());
        assert!(base_url("http://127.0.0.1:8080/sc").is_ok());
        assert!(base_url("http://localhost:1").is_ok());
        assert!(base_url("http://[::1]:1").is_ok());
        assert_eq!(
            base_url("http://www.zopim.com").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            base_url("ftp://x").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            base_url("not a url").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    fn answer(status: u16, body: &'static str) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("30"));
        Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: Bytes::from_static(body.as_bytes()),
            cut: false,
        }
    }

    #[test]
    fn overload_answers_are_retryable_whatever_the_body() {
        for status in [429, 500, 502, 503] {
            let err = answer(status, r#"{"error":"maintenance"}"#).error("POST /oauth2/token", &[]);
            assert_eq!(err.kind(), ErrorKind::OAuth);
            assert!(err.is_retryable(), "{status} with an OAuth body");
            assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
            let err = answer(status, "<html>down</html>").error("POST /oauth2/token", &[]);
            assert!(err.is_retryable(), "{status} with an HTML body");
        }
        let err = answer(400, r#"{"error":"invalid_grant"}"#).error("POST /oauth2/token", &[]);
        assert!(!err.is_retryable());
        let err =
            answer(400, r#"{"error":"temporarily_unavailable"}"#).error("POST /oauth2/token", &[]);
        assert!(err.is_retryable());
    }

    #[test]
    fn userinfo_is_redacted() {
        for (url, shown) in [
            (
                "https://u:p@h.example/sc?x=a@b",
                "https://[REDACTED]@h.example/sc?x=a@b",
            ),
            ("https://u@h.example", "https://[REDACTED]@h.example"),
            ("https://a@b:c@h.example/", "https://[REDACTED]@h.example/"),
            ("https://h.example/a@b", "https://h.example/a@b"),
            ("https://h.example?a@b", "https://h.example?a@b"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_userinfo(url), shown, "{url}");
        }
    }

    #[test]
    fn base_url_errors_do_not_print_userinfo() {
        for url in [
            "http://proxy-user:hunter2@example.com",
            "https://proxy-user:hunter2@exa mple.com",
            "ftp://proxy-user:hunter2@example.com",
        ] {
            let err = base_url(url).unwrap_err();
            let printed = format!("{err} {err:?}");
            assert!(!printed.contains("hunter2"), "{printed}");
            assert!(!printed.contains("proxy-user"), "{printed}");
        }
    }

    #[test]
    fn echoed_request_values_are_hidden() {
        let secret = "p@ss/w\u{f6}rd \"x\"";
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let description = format!("bad client_secret={form}, raw {secret}");
        let body = serde_json::json!({"error": "invalid_client", "error_description": description});
        // The secret straddles the excerpt's cut too.
        let long = format!("{}{secret}", "x".repeat(BODY_EXCERPT_LIMIT - 3));
        for body in [body.to_string(), long] {
            let answer = Response {
                status: StatusCode::BAD_REQUEST,
                headers: HeaderMap::new(),
                body: Bytes::from(body),
                cut: false,
            };
            let err = answer.error("POST /oauth2/token", &[secret, ""]);
            let printed = format!("{err} {err:?} {:?}", err.body_excerpt());
            for leak in [secret, form.as_str(), "p@ss", "p%40ss", "ss/w"] {
                assert!(!printed.contains(leak), "{leak} in {printed}");
            }
        }
        // A short value hides nothing the error needs to be classified.
        let answer = Response {
            status: StatusCode::BAD_REQUEST,
            headers: HeaderMap::new(),
            body: Bytes::from_static(br#"{"error":"invalid_grant"}"#),
            cut: false,
        };
        let err = answer.error("POST /oauth2/token", &["a"]);
        assert_eq!(err.oauth().unwrap().code, OAuthErrorCode::InvalidGrant);
    }

    #[test]
    fn values_echoed_with_any_json_escape_are_hidden() {
        let secret = "p&ss";
        for body in [
            r#"{"error":"invalid_client","error_description":"bad p\u0026ss"}"#,
            r#"{"message":"bad p\u0026ss","p\u0026ss":[1,"\u0070&ss"]}"#,
        ] {
            let answer = Response {
                status: StatusCode::BAD_REQUEST,
                headers: HeaderMap::new(),
                body: Bytes::from_static(body.as_bytes()),
                cut: false,
            };
            let err = answer.error("POST /oauth2/token", &[secret]);
            let excerpt = err.body_excerpt().unwrap();
            assert!(excerpt.contains("bad [REDACTED]"), "{excerpt}");
            let printed = format!("{err} {err:?} {excerpt}");
            for leak in [secret, r"p\u0026ss", r"\u0070&ss"] {
                assert!(!printed.contains(leak), "{leak} in {printed}");
            }
        }
    }

    #[test]
    fn a_value_cut_at_the_end_of_a_cut_body_is_hidden() {
        let secret = "sek-w\u{f6}rd-9";
        // The read stopped inside the value, and inside its two-byte `ö`.
        let body = format!("<pre>echo {secret}");
        let at = body.find('\u{f6}').unwrap() + 1;
        let answer = Response {
            status: StatusCode::SERVICE_UNAVAILABLE,
            headers: HeaderMap::new(),
            body: Bytes::from(body.as_bytes()[..at].to_vec()),
            cut: true,
        };
        let err = answer.error("POST /oauth2/token", &[secret]);
        assert_eq!(err.kind(), ErrorKind::HttpStatus);
        let excerpt = err.body_excerpt().unwrap();
        assert_eq!(excerpt, "<pre>echo ");
    }

    /// An error answer whose body is `body`, cut by the client when `cut`.
    fn replied(body: &[u8], cut: bool) -> Response {
        Response {
            status: StatusCode::SERVICE_UNAVAILABLE,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_vec()),
            cut,
        }
    }

    /// The error for `body`, with everything it prints.
    fn error_for(answer: &Response, sent: &[&str]) -> (Error, String) {
        let err = answer.error("POST /oauth2/token", sent);
        // The excerpt as it is too: `Debug` doubles the backslashes of an escape.
        let printed = format!("{err} {err:?} {}", err.body_excerpt().unwrap_or_default());
        (err, printed)
    }

    #[test]
    fn a_value_echoed_as_a_number_is_hidden_as_written() {
        // Digits only, and more of them than an f64 keeps.
        let secret = "12345678901234567890123";
        let body = format!(r#"{{"error":"invalid_request","password":{secret},"n":1.50}}"#);
        let (err, printed) = error_for(&replied(body.as_bytes(), false), &[secret]);
        assert_eq!(
            err.body_excerpt(),
            Some(r#"{"error":"invalid_request","password":[REDACTED],"n":1.50}"#)
        );
        for leak in ["1234567890", "1.2345", "e22"] {
            assert!(!printed.contains(leak), "{leak} in {printed}");
        }

        // A cut body that happens to be whole JSON (a number) still loses a value's beginning.
        let (err, printed) = error_for(&replied(b"[1] 98765", true), &["9876543210"]);
        assert_eq!(err.body_excerpt(), Some("[1] "));
        assert!(!printed.contains("987"), "{printed}");
        let (err, printed) = error_for(&replied(b"98765", true), &["9876543210"]);
        assert_eq!(err.body_excerpt(), Some(""));
        assert!(!printed.contains("987"), "{printed}");
    }

    #[test]
    fn a_character_split_at_the_cut_is_trimmed_after_an_invalid_byte() {
        let secret = "sek-w\u{f6}rd-9";
        // An invalid byte early on, and the read stopped inside the value's two-byte `ö`.
        let mut body = b"<pre>\xff echo ".to_vec();
        let at = secret.find('\u{f6}').unwrap() + 1;
        body.extend_from_slice(&secret.as_bytes()[..at]);
        let (err, printed) = error_for(&replied(&body, true), &[secret]);
        assert_eq!(err.body_excerpt(), Some("<pre>\u{fffd} echo "));
        assert!(!printed.contains("sek"), "{printed}");
        // A four-byte character split after its first, second and third byte.
        let secret = "k\u{1f511}ey";
        for split in 2..5 {
            let mut body = b"\xc3( ".to_vec();
            body.extend_from_slice(&secret.as_bytes()[..split]);
            let (err, _) = error_for(&replied(&body, true), &[secret]);
            assert_eq!(err.body_excerpt(), Some("\u{fffd}( "), "{split}");
        }
    }

    #[test]
    fn values_escaped_in_any_body_are_hidden() {
        // (value sent, body, cut, excerpt expected when cut)
        let cases: &[(&str, &str, bool, &str)] = &[
            // Not JSON as a whole: HTML, JSONP, JSON with a PHP warning after it.
            (
                "p&ss",
                r#"<script>var e = {"m":"bad p\u0026ss"};</script>"#,
                false,
                "",
            ),
            ("p&ss", r#"cb({"m":"bad p\u0026ss"})"#, false, ""),
            ("ab/cd+ef==", r#"{"m":"ab\/cd+ef=="}<br>Warning"#, false, ""),
            // Gson and .NET: `=`, `+`, `<` escaped, in either case.
            ("ab/cd+ef==", r#"<p>ab/cd+ef\u003d\u003D</p>"#, false, ""),
            ("x<y+z", r#"<p>x\u003Cy\u002Bz</p>"#, false, ""),
            ("x<y+z", r#"<p>x\u003cy+z</p>"#, false, ""),
            // Non-ASCII as `\uXXXX` (PHP, Python), a surrogate pair included.
            (
                "w\u{f6}rd\u{1f511}",
                r#"<p>w\u00f6rd\ud83d\udd11 x"#,
                false,
                "",
            ),
            // JSON inside a JSON string, with trailing junk.
            (
                "p&ss",
                r#"{"detail":"{\"m\":\"p\\u0026ss\"}"} junk"#,
                false,
                "",
            ),
            // Cut bodies: inside an escaped value, inside an escape, inside a pair.
            ("p&ss", r#"{"m":"bad p\u0026s"#, true, r#"{"m":"bad "#),
            ("p&ss", r#"{"m":"bad p\u00"#, true, r#"{"m":"bad "#),
            ("p&ss", r#"{"m":"bad p\"#, true, r#"{"m":"bad "#),
            ("ab/cd", r#"{"m":"bad ab\/c"#, true, r#"{"m":"bad "#),
            ("ab/cd", r#"{"m":"bad ab\"#, true, r#"{"m":"bad "#),
            (
                "k\u{1f511}y",
                r#"{"m":"bad k\ud83d\udd"#,
                true,
                r#"{"m":"bad "#,
            ),
            ("k\u{1f511}y", r#"{"m":"bad k\ud83d"#, true, r#"{"m":"bad "#),
            ("p&ss", r#"{"m":"p\\u00"#, true, r#"{"m":""#),
        ];
        for &(secret, body, cut, excerpt) in cases {
            let (err, printed) = error_for(&replied(body.as_bytes(), cut), &[secret]);
            if cut {
                assert_eq!(err.body_excerpt(), Some(excerpt), "{body}");
            } else {
                assert!(printed.contains("[REDACTED]"), "{body}: {printed}");
            }
            for leak in [
                secret, r"p\u00", r"ab\/", r"\u003", r"\u002", r"w\u00f6", r"k\ud83d",
            ] {
                assert!(!printed.contains(leak), "{leak} for {body} in {printed}");
            }
        }
        // What is no value is left as written.
        let (err, _) = error_for(&replied(br#"<p>a\u0026b \/ \q \u12"#, false), &["p&ss"]);
        assert_eq!(err.body_excerpt(), Some(r#"<p>a\u0026b \/ \q \u12"#));
    }

    #[test]
    fn endpoints_keep_base_path() {
        let base = base_url("https://oauth-bridge.zendesk.com/sc").unwrap();
        assert_eq!(
            endpoint(&base, "/oauth/token").unwrap().as_str(),
            "https://oauth-bridge.zendesk.com/sc/oauth/token"
        );
        let base = base_url("https://www.zopim.com/").unwrap();
        assert_eq!(
            endpoint(&base, "/oauth2/token").unwrap().as_str(),
            "https://www.zopim.com/oauth2/token"
        );
    }
}
