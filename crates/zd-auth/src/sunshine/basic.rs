//! Basic auth from an API key.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::ApiKey;
use crate::{BoxFuture, Credentials, Error, Secret};

/// `Authorization: Basic base64(key_id:secret)`, the method Sunshine recommends. The key's
/// kind decides what it may do, so no scope is given.
///
/// The header is computed once, at construction.
#[derive(Clone)]
pub struct BasicAuth {
    key_id: String,
    header: Secret,
}

impl BasicAuth {
    /// Basic credentials for `key`.
    pub fn new(key: &ApiKey) -> Self {
        let mut pair = String::with_capacity(key.id().len() + 1 + key.secret().len());
        pair.push_str(key.id());
        pair.push(':');
        pair.push_str(key.secret().expose_secret());
        let pair = Secret::new(pair);
        let header = Secret::new(format!("Basic {}", STANDARD.encode(pair.expose_secret())));
        Self {
            key_id: key.id().to_owned(),
            header,
        }
    }

    /// The key id these credentials send.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("key_id", &self.key_id)
            .field("header", &self.header)
            .finish()
    }
}

impl fmt::Display for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BasicAuth({}, [REDACTED])", self.key_id)
    }
}

impl Credentials for BasicAuth {
    fn authorization(&self) -> BoxFuture<'_, Result<Secret, Error>> {
        let header = self.header.clone();
        Box::pin(async move { Ok(header) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn header_is_base64_of_id_and_secret() {
        let key = ApiKey::new("app_123", "abc").unwrap();
        let value = BasicAuth::new(&key).authorization().await.unwrap();
        // base64("app_123:abc")
        assert_eq!(value.expose_secret(), "Basic YXBwXzEyMzphYmM=");
    }
}
