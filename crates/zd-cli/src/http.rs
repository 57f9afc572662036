//! A small plain-HTTP JSON client for an emulator's control API (loopback, no TLS).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::error::{CliError, Context, Kind, Result};

/// Largest control-API answer read (the account and transcripts are small).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Sends `method url` with an optional JSON body and decodes the JSON answer.
pub(crate) async fn json(
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
