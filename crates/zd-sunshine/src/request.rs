//! [`ApiRequest`]: what a generated operation hands to the [`Client`](crate::Client).

use bytes::Bytes;
use http::Method;
use serde::Serialize;

use crate::error::{Error, ErrorKind};
use crate::upload::Upload;

/// The API's limit on JSON request bodies (100 KB), checked before sending.
pub const JSON_BODY_LIMIT: usize = 100 * 1024;

/// A request body. Its `Debug` shows the JSON's size, not its text: bodies carry secrets
/// (`client_secret` of GetToken, an integration's `apiSecret`, `password`, `privateKey`).
pub enum RequestBody {
    /// No body.
    Empty,
    /// Encoded JSON (cheap to clone, so retries resend it).
    Json(Bytes),
    /// A streaming multipart attachment upload (sent once, never retried).
    Upload(Upload),
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("Empty"),
            Self::Json(bytes) => write!(f, "Json({} bytes)", bytes.len()),
            Self::Upload(upload) => f.debug_tuple("Upload").field(upload).finish(),
        }
    }
}

/// An operation ready to send: method, path, query pairs, body, and whether the client's
/// credentials go with it.
#[derive(Debug)]
pub struct ApiRequest {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) body: RequestBody,
    pub(crate) operation: &'static str,
    pub(crate) retry_non_idempotent: Option<bool>,
    pub(crate) credentials: bool,
}

impl ApiRequest {
    /// A request with no query and no body, sent with the client's credentials.
    pub fn new(method: Method, path: String, operation: &'static str) -> Self {
        Self {
            method,
            path,
            query: Vec::new(),
            body: RequestBody::Empty,
            operation,
            retry_non_idempotent: None,
            credentials: true,
        }
    }

    /// Sends this request without the client's credentials (no `Authorization` header), for
    /// an operation that requires none (`security: []` in the spec: `Authorize`, `GetToken`).
    /// A key secret or token sent where it is not needed is one more place it can leak from.
    pub fn without_credentials(mut self) -> Self {
        self.credentials = false;
        self
    }

    /// Whether the client's credentials go with this request (see
    /// [`ApiRequest::without_credentials`]).
    pub fn sends_credentials(&self) -> bool {
        self.credentials
    }

    /// Appends a query pair; the key keeps its wire spelling (`page[after]`) and is
    /// percent-encoded when the URL is built.
    pub fn push_query(&mut self, key: &'static str, value: String) {
        self.query.push((key, value));
    }

    /// Encodes `body` as the JSON body.
    ///
    /// # Errors
    /// [`ErrorKind::Encode`] when serialization fails, [`ErrorKind::RequestTooLarge`] when the
    /// JSON is over [`JSON_BODY_LIMIT`].
    pub fn set_json<T: Serialize + ?Sized>(&mut self, body: &T) -> Result<(), Error> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            Error::with_source(ErrorKind::Encode, "request body", e).at(self.operation)
        })?;
        if bytes.len() > JSON_BODY_LIMIT {
            return Err(Error::new(
                ErrorKind::RequestTooLarge,
                format!(
                    "JSON body is {} bytes; the API accepts at most {JSON_BODY_LIMIT}",
                    bytes.len()
                ),
            )
            .at(self.operation));
        }
        self.body = RequestBody::Json(Bytes::from(bytes));
        Ok(())
    }

    /// Uses a multipart attachment upload as the body.
    pub fn set_upload(&mut self, upload: Upload) {
        self.body = RequestBody::Upload(upload);
    }

    /// Allows (or forbids) retrying this request after a failure that may come after it was
    /// processed (5xx, broken connection, timeout) even if its method is not idempotent,
    /// overriding the client's [`RetryPolicy`](crate::RetryPolicy). A 429 is retried either
    /// way: the API refused the request unprocessed.
    pub fn retry_non_idempotent(mut self, allow: bool) -> Self {
        self.retry_non_idempotent = Some(allow);
        self
    }

    /// The HTTP method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path, already percent-encoded, starting with `/v2/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query pairs in order, not yet encoded.
    pub fn query(&self) -> &[(&'static str, String)] {
        &self.query
    }

    /// The encoded query string (no leading `?`).
    pub fn query_string(&self) -> String {
        crate::encode::query(&self.query)
    }

    /// The JSON body, if any.
    pub fn json_body(&self) -> Option<&[u8]> {
        match &self.body {
            RequestBody::Json(b) => Some(b),
            _ => None,
        }
    }

    /// The operationId.
    pub fn operation(&self) -> &'static str {
        self.operation
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_shows_a_json_body_by_size_not_its_secrets() {
        let body = crate::models::GetTokenBody::new(
            "client".to_owned(),
            "very-secret".to_owned(),
            "code".to_owned(),
            "authorization_code".to_owned(),
        );
        let request = crate::operations::GetToken::new(body)
            .to_request()
            .expect("the body encodes");
        let shown = format!("{request:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(
            shown.contains("Json(") && shown.contains(" bytes)"),
            "{shown}"
        );
    }
}
