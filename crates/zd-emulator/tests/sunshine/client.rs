//! A tiny JSON client over loopback with keep-alive.

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) base: String,
    pub(crate) client: Client<HttpConnector, Full<Bytes>>,
}

pub(crate) fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

impl Api {
    pub(crate) fn new(base: String) -> Self {
        Self {
            base,
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        }
    }

    pub(crate) async fn raw(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        ctype: &str,
        body: Bytes,
    ) -> (u16, Value) {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if !body.is_empty() {
            req = req.header("content-type", ctype);
        }
        let res = self
            .client
            .request(req.body(Full::new(body)).unwrap())
            .await
            .unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, v)
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        self.raw(method, path, auth, "application/json", body).await
    }
}
