//! A small JSON-over-HTTP client for the emulator's control API (`/_emulator/...`).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

use serde_json::Value;

/// How long one request may take, answer body included: the emulator answers in milliseconds,
/// so only a hung one reaches it, and it must fail the step rather than hang the harness.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Keep-alive client for one emulator.
#[derive(Debug, Clone)]
pub(crate) struct ControlClient {
    base: String,
    http: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl ControlClient {
    /// A client for the emulator at `base` (`http://127.0.0.1:PORT`).
    pub(crate) fn new(base: &str) -> Self {
        Self::with_timeout(base, REQUEST_TIMEOUT)
    }

    /// [`ControlClient::new`], each request failing after `timeout`.
    fn with_timeout(base: &str, timeout: Duration) -> Self {
        // No Nagle delay: a visitor's message must leave when it is stamped.
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
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
        tokio::time::timeout(self.timeout, self.exchange(path, request))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "{path}: no answer within {} s",
                    self.timeout.as_secs_f64()
                ))
            })
    }

    async fn exchange(
        &self,
        path: &str,
        request: http::Request<Full<Bytes>>,
    ) -> Result<Value, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_the_emulator_never_answers_fails_at_its_timeout() {
        // Accepts the connection and reads the request, but never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
            drop(socket);
        });
        let client =
            ControlClient::with_timeout(&format!("http://{addr}"), Duration::from_millis(100));
        let err = client
            .post("/_emulator/visitors", &serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(err.contains("no answer within 0.1 s"), "{err}");
        server.abort();
    }
}
