//! A small plain-HTTP JSON client for an emulator's control API (loopback, no TLS).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::error::{CliError, Context, Kind, Result};

/// Largest control-API answer read (the account and transcripts are small).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// How long one control-API exchange may take, answer read included: the library crates'
/// request timeout. Without one, a host that accepts the connection and never answers (a
/// wrong port, a stalled proxy) would hang the command for good.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `method url` with an optional JSON body and decodes the JSON answer.
pub(crate) async fn json(
    method: hyper::Method,
    url: &str,
    body: Option<&serde_json::Value>,
) -> Result<serde_json::Value> {
    json_within(method, url, body, TIMEOUT).await
}

/// [`json`] with the time it may take, which only tests shorten.
async fn json_within(
    method: hyper::Method,
    url: &str,
    body: Option<&serde_json::Value>,
    timeout: Duration,
) -> Result<serde_json::Value> {
    tokio::time::timeout(timeout, exchange(method, url, body))
        .await
        .map_err(|elapsed| {
            CliError::with(
                Kind::Service,
                format!("{url} did not answer within {} s", timeout.as_secs_f32()),
                elapsed,
            )
        })?
}

async fn exchange(
    method: hyper::Method,
    url: &str,
    body: Option<&serde_json::Value>,
) -> Result<serde_json::Value> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let bytes = match body {
        Some(v) => Bytes::from(serde_json::to_vec(v).context(Kind::Io, "cannot encode a request")?),
        None => Bytes::new(),
    };
    let request = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(bytes))
        .context(Kind::Usage, format!("invalid URL {url}"))?;
    let response = client
        .request(request)
        .await
        .context(Kind::Service, format!("cannot reach {url}"))?;
    let status = response.status();
    let body = http_body_util::Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            CliError::new(
                Kind::Service,
                format!("cannot read the answer of {url}: {e}"),
            )
        })?
        .to_bytes();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
        return Err(CliError::new(
            Kind::Service,
            format!("{url} answered {status}: {text}"),
        ));
    }
    serde_json::from_slice(&body).context(
        Kind::Service,
        format!("{url} answered something other than JSON"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_host_that_never_answers_is_a_service_failure_in_time() {
        // Accepts (the kernel completes the handshake for the backlog) and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/_emulator/account",
            listener.local_addr().unwrap()
        );
        let error = json_within(hyper::Method::GET, &url, None, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), Kind::Service, "{error}");
        assert_eq!(error.kind().exit_code(), 5);
        assert!(error.to_string().contains(&url), "{error}");
        assert!(
            error.to_string().contains("did not answer within"),
            "{error}"
        );
        assert!(std::error::Error::source(&error).is_some(), "{error:?}");
        drop(listener);
    }
}
