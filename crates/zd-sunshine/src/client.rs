//! [`Client`]: base URL, credentials, transport and retries.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use serde::de::DeserializeOwned;
use zd_auth::{Credentials, Secret};

use crate::error::{Error, ErrorKind};
use crate::request::{ApiRequest, RequestBody};
use crate::retry::{RetryPolicy, parse_retry_after};
use crate::transport::{HyperTransport, Transport, TransportBody, TransportConfig};

/// A redirect the API answered with (`Authorize`'s 302), not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The 3xx status.
    pub status: StatusCode,
    /// The `Location` header: where the user's browser goes next (for `Authorize`, the
    /// `redirect_uri` with `code` and `state`, or the login page).
    pub location: String,
}

/// Where the API lives.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Region {
    /// `https://api.smooch.io` (legacy Sunshine Conversations accounts, US).
    Us,
    /// `https://api.eu-1.smooch.io` (legacy Sunshine Conversations accounts, EU).
    Eu,
    /// `https://{subdomain}.zendesk.com/sc` (Zendesk accounts).
    Zendesk(String),
    /// `https://oauth-bridge.zendesk.com/sc`, for the OAuth operations (`GetToken`,
    /// `GetTokenInfo`, `RevokeAccess`).
    OAuthBridge,
    /// Any `https` base URL, or an `http` one on a loopback host (`localhost`, `127.0.0.0/8`,
    /// `[::1]`), such as a local emulator (`http://127.0.0.1:8080`); without user info
    /// (`user:password@`), a query or a fragment.
    Custom(String),
}

/// A custom URL's user info (`user:password@`), refused by [`Region::base_url`], is shown as
/// `***`: the region reaches logs through a builder's `Debug`.
impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Us => f.write_str("Us"),
            Self::Eu => f.write_str("Eu"),
            Self::Zendesk(sub) => f.debug_tuple("Zendesk").field(sub).finish(),
            Self::OAuthBridge => f.write_str("OAuthBridge"),
            Self::Custom(url) => f
                .debug_tuple("Custom")
                .field(&redact_user_info(url))
                .finish(),
        }
    }
}

impl Region {
    /// The base URL, without a trailing slash.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for an invalid subdomain, a URL that is not `http(s)://`, a
    /// plain `http://` URL to a host that is not loopback, or a URL with user info, a query
    /// or a fragment (the message shows user info as `***`).
    pub fn base_url(&self) -> Result<String, Error> {
        match self {
            Self::Us => Ok("https://api.smooch.io".to_owned()),
            Self::Eu => Ok("https://api.eu-1.smooch.io".to_owned()),
            Self::OAuthBridge => Ok("https://oauth-bridge.zendesk.com/sc".to_owned()),
            Self::Zendesk(sub) => {
                let ok = !sub.is_empty()
                    && sub.len() <= 63
                    && sub.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !sub.starts_with('-')
                    && !sub.ends_with('-');
                if ok {
                    Ok(format!(
                        "https://{}.zendesk.com/sc",
                        sub.to_ascii_lowercase()
                    ))
                } else {
                    Err(Error::new(
                        ErrorKind::Config,
                        format!("`{sub}` is not a Zendesk subdomain"),
                    ))
                }
            }
            Self::Custom(url) => custom_base_url(url),
        }
    }
}

/// Checks a custom base URL: `https`, or plain `http` to a loopback host only (an emulator or
/// a test server). Every request carries the key secret (Basic) or a bearer token, which plain
/// http would send readable by anyone on the path.
///
/// User info (`user:password@`) is refused, as it would show in the client's `Debug`,
/// [`Client::base_url`] and every request URL, and is never printed back (error messages
/// show it as `***@`). A query or a fragment is refused too: request paths are appended to the
/// base, which would put them inside the query or fragment.
fn custom_base_url(url: &str) -> Result<String, Error> {
    let shown = redact_user_info(url);
    let trimmed = url.trim_end_matches('/');
    let uri = trimmed.parse::<http::Uri>().map_err(|e| {
        Error::with_source(
            ErrorKind::Config,
            format!("`{shown}` is not an http(s) base URL"),
            e,
        )
    })?;
    let host = uri.host().unwrap_or_default();
    // `Uri::host` keeps the brackets of an IPv6 literal.
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => {}
        Some("http") if loopback => {}
        Some("http") if !host.is_empty() => {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "base URL `{shown}` must use https (plain http is allowed for loopback \
                     hosts only)"
                ),
            ));
        }
        _ => {
            return Err(Error::new(
                ErrorKind::Config,
                format!("`{shown}` is not an http(s) base URL"),
            ));
        }
    }
    if authority_of(url).contains('@') {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "base URL `{shown}` must not hold user info (`user:password@`); credentials \
                 go in the client's `Credentials`"
            ),
        ));
    }
    if url.contains(['?', '#']) {
        return Err(Error::new(
            ErrorKind::Config,
            format!("base URL `{shown}` must not have a query (`?`) or a fragment (`#`)"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// The byte range of `url`'s authority: after `scheme://` (if any), up to the first `/`, `?`
/// or `#`.
fn authority_range(url: &str) -> std::ops::Range<usize> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    start..end
}

fn authority_of(url: &str) -> &str {
    &url[authority_range(url)]
}

/// `url` with any user info in its authority replaced by `***`, for error messages.
fn redact_user_info(url: &str) -> String {
    let range = authority_range(url);
    match url[range.clone()].rfind('@') {
        Some(at) => format!("{}***{}", &url[..range.start], &url[range.start + at..]),
        None => url.to_owned(),
    }
}

struct Inner {
    base: String,
    credentials: Arc<dyn Credentials>,
    transport: Arc<dyn Transport>,
    retry: RetryPolicy,
    user_agent: HeaderValue,
}

/// A Sunshine Conversations API client; cheap to clone (one shared connection pool).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use zd_sunshine::{Client, Region, operations::ListMessages};
/// use zd_auth::sunshine::{ApiKey, BasicAuth};
///
/// let key = ApiKey::new("app_5963ceb97cde542d000dbdb1", "secret")?;
/// let client = Client::new(Region::Zendesk("acme".into()), BasicAuth::new(&key))?;
/// let page = ListMessages::new("app-id", "conversation-id").send(&client).await?;
/// # let _ = page; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base)
            .field("credentials", &self.inner.credentials)
            .field("transport", &self.inner.transport)
            .field("retry", &self.inner.retry)
            .finish()
    }
}

/// Builds a [`Client`] with a custom transport or retry policy.
#[derive(Debug)]
pub struct ClientBuilder {
    region: Region,
    credentials: Arc<dyn Credentials>,
    transport: Option<Arc<dyn Transport>>,
    transport_config: TransportConfig,
    retry: RetryPolicy,
}

impl ClientBuilder {
    /// Sends through `transport` instead of the default hyper transport.
    pub fn transport(mut self, transport: impl Transport) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// Timeouts and pool settings for the default transport.
    pub fn transport_config(mut self, config: TransportConfig) -> Self {
        self.transport_config = config;
        self
    }

    /// The retry policy (default: [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Builds the client. Needs no runtime; requests must be sent from within tokio.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a bad base URL or TLS setup.
    pub fn build(self) -> Result<Client, Error> {
        let base = self.region.base_url()?;
        let transport = match self.transport {
            Some(t) => t,
            None => Arc::new(HyperTransport::new(self.transport_config)?),
        };
        let user_agent =
            HeaderValue::from_static(concat!("zd-sunshine/", env!("CARGO_PKG_VERSION")));
        Ok(Client {
            inner: Arc::new(Inner {
                base,
                credentials: self.credentials,
                transport,
                retry: self.retry,
                user_agent,
            }),
        })
    }
}

impl Client {
    /// A client with the default transport and retry policy.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a bad base URL or TLS setup.
    pub fn new(region: Region, credentials: impl Credentials) -> Result<Self, Error> {
        Self::builder(region, credentials).build()
    }

    /// A builder, for a custom transport or retry policy.
    pub fn builder(region: Region, credentials: impl Credentials) -> ClientBuilder {
        ClientBuilder {
            region,
            credentials: Arc::new(credentials),
            transport: None,
            transport_config: TransportConfig::default(),
            retry: RetryPolicy::default(),
        }
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// Sends `request` and decodes a success body as `T` (an empty body decodes as `{}`).
    ///
    /// # Errors
    /// See [`Client::execute`]; plus [`ErrorKind::Decode`] with the failing JSON path.
    pub async fn execute_json<T: DeserializeOwned>(&self, request: ApiRequest) -> Result<T, Error> {
        let operation = request.operation;
        let (response, sends) = self.execute_response(request, false).await?;
        let status = response.status();
        let body = response.into_body();
        let slice: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &body
        };
        // Path tracking costs on every field; it runs only to explain a body that failed.
        if let Ok(decoded) = serde_json::from_slice(slice) {
            return Ok(decoded);
        }
        let mut de = serde_json::Deserializer::from_slice(slice);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            Error::decode(status, crate::decode_failure::DecodeFailure::new(&e))
                .at(operation)
                .sent_times(sends)
        })
    }

    /// Sends `request`, retrying per the policy, and returns the success status and body.
    ///
    /// # Errors
    /// An error response as its [`ErrorKind`] (with status, `errors[]` and `Retry-After`),
    /// transport failures and timeouts, and credential failures.
    pub async fn execute(&self, request: ApiRequest) -> Result<(StatusCode, Bytes), Error> {
        let (response, _) = self.execute_response(request, false).await?;
        Ok((response.status(), response.into_body()))
    }

    /// Sends a request the API answers with a redirect (`Authorize`), and returns where it
    /// points instead of following it (the redirect is meant for a browser).
    ///
    /// # Errors
    /// See [`Client::execute`]; plus [`ErrorKind::Decode`] when a 3xx has no usable
    /// `Location`, or the API answers 2xx where a redirect was expected.
    pub async fn execute_redirect(&self, request: ApiRequest) -> Result<Redirect, Error> {
        let operation = request.operation;
        let (response, sends) = self.execute_response(request, true).await?;
        let status = response.status();
        let refused = |e: Error| e.at(operation).sent_times(sends);
        if !status.is_redirection() {
            return Err(refused(Error::new(
                ErrorKind::Decode,
                format!("expected a redirect, got {status}"),
            )));
        }
        let location = response
            .headers()
            .get(header::LOCATION)
            .ok_or_else(|| {
                refused(Error::new(
                    ErrorKind::Decode,
                    format!("{status} without a Location"),
                ))
            })?
            .to_str()
            .map_err(|e| {
                refused(Error::with_source(
                    ErrorKind::Decode,
                    format!("{status} with a Location that is not visible ASCII"),
                    e,
                ))
            })?;
        Ok(Redirect {
            status,
            location: location.to_owned(),
        })
    }

    /// The full URL `request` goes to: base URL, path and encoded query.
    pub fn url_for(&self, request: &ApiRequest) -> String {
        let mut url = format!("{}{}", self.inner.base, request.path);
        if !request.query.is_empty() {
            url.push('?');
            url.push_str(&request.query_string());
        }
        url
    }

    /// The retry loop; 2xx (and 3xx when `redirect_ok`) is a success, with how many times the
    /// request went out (see [`Error::sends`]).
    async fn execute_response(
        &self,
        request: ApiRequest,
        redirect_ok: bool,
    ) -> Result<(http::Response<Bytes>, u32), Error> {
        let inner = &*self.inner;
        let operation = request.operation;
        let url = self.url_for(&request);
        let uri: http::Uri = url
            .parse()
            .map_err(|e| Error::with_source(ErrorKind::Config, "request URL", e).at(operation))?;
        let retry_non_idempotent = request.retry_non_idempotent;
        let credentials = request.credentials;
        let method = request.method;
        let mut body = request.body;
        let secrets = request.secrets;
        let mut delays = inner.retry.delays();
        // Counted as requests go out: an error before a send (credentials) counts the sends
        // of the attempts before it.
        let mut sent = 0u32;
        let result: Result<http::Response<Bytes>, Error> = async {
            loop {
                // Not even asked for when the request goes without: producing a value may cost a
                // refresh request or a signature.
                let auth = if credentials {
                    Some(inner.credentials.authorization().await.map_err(|e| {
                        Error::with_source(ErrorKind::Credentials, "authorization header", e)
                            .at(operation)
                    })?)
                } else {
                    None
                };
                let auth_value = match &auth {
                    Some(auth) => {
                        let mut value =
                            HeaderValue::from_str(auth.expose_secret()).map_err(|e| {
                                Error::with_source(
                                    ErrorKind::Credentials,
                                    "authorization header value",
                                    e,
                                )
                                .at(operation)
                            })?;
                        value.set_sensitive(true);
                        Some(value)
                    }
                    None => None,
                };
                let (content_type, wire_body, replayable) = match &mut body {
                    RequestBody::Empty => (None, empty_body(), true),
                    RequestBody::Json(b) => (
                        Some(HeaderValue::from_static("application/json")),
                        full_body(b.clone()),
                        true,
                    ),
                    RequestBody::Upload(_) => {
                        let RequestBody::Upload(upload) =
                            std::mem::replace(&mut body, RequestBody::Empty)
                        else {
                            return Err(
                                Error::new(ErrorKind::Encode, "upload body vanished").at(operation)
                            );
                        };
                        let (ct, stream) = upload.into_multipart();
                        let ct = HeaderValue::from_str(&ct).map_err(|e| {
                            Error::with_source(ErrorKind::Encode, "multipart content type", e)
                                .at(operation)
                        })?;
                        let body = StreamBody::new(stream.map(|chunk| chunk.map(Frame::data)));
                        (Some(ct), BodyExt::boxed_unsync(body), false)
                    }
                };
                let mut builder = http::Request::builder()
                    .method(method.clone())
                    .uri(uri.clone())
                    .header(header::ACCEPT, "application/json")
                    .header(header::USER_AGENT, inner.user_agent.clone());
                if let Some(value) = auth_value {
                    builder = builder.header(header::AUTHORIZATION, value);
                }
                if let Some(ct) = content_type {
                    builder = builder.header(header::CONTENT_TYPE, ct);
                }
                let http_request = builder.body(wire_body).map_err(|e| {
                    Error::with_source(ErrorKind::Config, "building request", e).at(operation)
                })?;
                sent += 1;
                let outcome = inner.transport.send(http_request).await;
                let err = match outcome {
                    Ok(response)
                        if response.status().is_success()
                            || redirect_ok && response.status().is_redirection() =>
                    {
                        tracing::debug!(
                            operation,
                            status = response.status().as_u16(),
                            attempt = sent,
                            "sunshine request done"
                        );
                        return Ok(response);
                    }
                    Ok(response) => {
                        let status = response.status();
                        if status == StatusCode::UNAUTHORIZED
                            && let Some(auth) = &auth
                        {
                            inner.credentials.invalidate_if_current(auth);
                        }
                        let hint = parse_retry_after(response.headers());
                        let sent = auth.as_ref().map(sent_secrets).unwrap_or_default();
                        // With what the request itself carries: an operation sent without the
                        // client's credentials (GetToken) may still send some in its body.
                        let sent: Vec<&str> = sent
                            .iter()
                            .chain(&secrets)
                            .map(Secret::expose_secret)
                            .collect();
                        Error::from_response(status, response.body(), hint, &sent).at(operation)
                    }
                    Err(e) if crate::upload::limit_exceeded_in(&e) => Error::with_source(
                        ErrorKind::UploadTooLarge,
                        format!(
                            "upload passed {} bytes while streaming",
                            crate::UPLOAD_LIMIT
                        ),
                        e,
                    )
                    .at(operation),
                    Err(e) => e.at(operation),
                };
                tracing::debug!(operation, kind = ?err.kind(), attempt = sent, "sunshine request failed");
                // A `Retry-After` beyond `max_retry_after` gives no wait: the error goes back with
                // its hint for the caller to reschedule, rather than a retry before the server
                // said to.
                if inner
                    .retry
                    .allows(err.kind(), &method, retry_non_idempotent)
                    && replayable
                    && let Some(backoff) = delays.next()
                    && let Some(wait) =
                        inner
                            .retry
                            .wait(err.retry_after(), backoff, crate::retry::jitter_unit())
                {
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(err);
            }
        }
        .await;
        match result {
            Ok(response) => Ok((response, sent)),
            Err(e) => Err(e.sent_times(sent)),
        }
    }
}

/// The secrets an `Authorization` value carries, as a server may echo them in an error answer
/// (which ends up in logs): the credential after the scheme (a bearer token or JWT, Basic's
/// base64) and, for Basic, the key secret it encodes. Not the key id: it names the key without
/// granting anything, and helps to read the error.
fn sent_secrets(auth: &Secret) -> Vec<Secret> {
    let value = auth.expose_secret();
    let (scheme, credential) = value.split_once(' ').unwrap_or(("", value));
    let credential = credential.trim();
    let mut sent = vec![Secret::new(credential)];
    if scheme.eq_ignore_ascii_case("basic")
        && let Ok(pair) = STANDARD.decode(credential)
        && let Ok(pair) = String::from_utf8(pair)
    {
        let pair = Secret::new(pair);
        if let Some((_, secret)) = pair.expose_secret().split_once(':') {
            sent.push(Secret::new(secret));
        }
    }
    sent
}

fn empty_body() -> TransportBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn full_body(bytes: Bytes) -> TransportBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_give_their_key_secret_to_hide() {
        // base64("app_1:s3cr=t:x"): a secret may hold `=` and `:`.
        let auth = Secret::new("Basic YXBwXzE6czNjcj10Ong=");
        let sent: Vec<String> = sent_secrets(&auth)
            .iter()
            .map(|s| s.expose_secret().to_owned())
            .collect();
        assert_eq!(sent, ["YXBwXzE6czNjcj10Ong=", "s3cr=t:x"]);
        let bearer = Secret::new("Bearer eyJ.a.b");
        let sent: Vec<String> = sent_secrets(&bearer)
            .iter()
            .map(|s| s.expose_secret().to_owned())
            .collect();
        assert_eq!(sent, ["eyJ.a.b"]);
    }

    #[test]
    fn a_password_in_a_custom_base_url_is_not_printed() {
        let region = Region::Custom("https://proxy-user:hunter2@proxy.example/sc".to_owned());
        let key = zd_auth::sunshine::ApiKey::new("app_1", Secret::new("key-secret")).unwrap();
        let builder = Client::builder(region.clone(), zd_auth::sunshine::BasicAuth::new(&key));
        let printed = format!("{region:?} {region:#?} {builder:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("key-secret"), "{printed}");
        assert!(printed.contains("proxy.example/sc"), "{printed}");
        assert_eq!(format!("{:?}", Region::Us), "Us");
        assert_eq!(
            format!("{:?}", Region::Zendesk("acme".to_owned())),
            r#"Zendesk("acme")"#
        );
    }
}
