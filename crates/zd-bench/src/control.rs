//! A small JSON-over-HTTP client for the emulator's control API (`/_emulator/...`).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Keep-alive client for one emulator.
#[derive(Debug, Clone)]
pub(crate) struct ControlClient {
    base: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl ControlClient {
    /// A client for the emulator at `base` (`http://127.0.0.1:PORT`).
    pub(crate) fn new(base: &str) -> Self {
        // No Nagle delay: a visitor's message must leave when it is stamped.
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// `POST {base}{path}` with a JSON body; the JSON answer of a 2xx, an error otherwise.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        let request = http::Request::post(format!("{}{path}", self.base))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| format!("POST {path}: {e}"))?;
        self.send(path, request).await
    }

    async fn send(&self, path: &str, request: http::Request<Full<Bytes>>) -> Result<Value, String> {
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{path}: {e}"))?
            .to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(format!("{path}: HTTP {status}: {text}"));
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).map_err(|e| format!("{path}: bad JSON: {e}"))
    }
}
