//! User-scope JWTs for SDK / Web Widget login.

use std::time::SystemTime;

use jsonwebtoken::EncodingKey;
use serde::Serialize;

use super::api_key::check_key_scope;
use super::jwt::{encode, header_for, unix_seconds};
use super::{ApiKey, Scope};
use crate::{Error, ErrorKind, Secret};

/// Longest `external_id` accepted, in characters.
pub const EXTERNAL_ID_MAX_CHARS: usize = 255;

/// A user-scope JWT: `{"scope":"user","external_id":..}` plus optional `name`, `email`,
/// `email_verified` and `exp`, signed with an `app_` key. Hand it to the SDK's login call.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use zd_auth::sunshine::{ApiKey, UserJwt};
///
/// let key = ApiKey::new("app_5963ceb97cde542d000dbdb1", "s3cr3t")?;
/// let jwt = UserJwt::new("customer-42")?
///     .name("Ada Lovelace")
///     .email("ada@example.org")
///     .email_verified(true)
///     .expires_at(SystemTime::now() + Duration::from_secs(600))
///     .sign(&key)?;
/// assert_eq!(jwt.expose_secret().split('.').count(), 3);
/// assert!(UserJwt::new("").is_err());
/// # Ok::<(), zd_auth::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct UserJwt {
    external_id: String,
    name: Option<String>,
    email: Option<String>,
    email_verified: Option<bool>,
    expires_at: Option<SystemTime>,
}

#[derive(Serialize)]
struct Claims<'a> {
    scope: &'static str,
    external_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
}

impl UserJwt {
    /// A token for the user known to your system as `external_id`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `external_id` is empty or longer than
    /// [`EXTERNAL_ID_MAX_CHARS`] characters.
    pub fn new(external_id: impl Into<String>) -> Result<Self, Error> {
        let external_id = external_id.into();
        check_external_id(&external_id).map_err(|e| Error::new(ErrorKind::InvalidInput, e))?;
        Ok(Self {
            external_id,
            name: None,
            email: None,
            email_verified: None,
            expires_at: None,
        })
    }

    /// The user's display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The user's email address.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Whether the email is verified (when `false`, Zendesk does not use it to identify the
    /// user).
    pub fn email_verified(mut self, verified: bool) -> Self {
        self.email_verified = Some(verified);
        self
    }

    /// The token's `exp`.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Signs the token with `key` (an `app_` key).
    ///
    /// # Errors
    /// [`ErrorKind::KeyScopeMismatch`] for a key that is not an app key;
    /// [`ErrorKind::JwtSign`].
    pub fn sign(&self, key: &ApiKey) -> Result<Secret, Error> {
        self.sign_at(key, SystemTime::now())
    }

    pub(crate) fn sign_at(&self, key: &ApiKey, now: SystemTime) -> Result<Secret, Error> {
        check_key_scope(key.id(), Scope::User)?;
        let claims = Claims {
            scope: Scope::User.as_str(),
            external_id: &self.external_id,
            name: self.name.as_deref(),
            email: self.email.as_deref(),
            email_verified: self.email_verified,
            iat: unix_seconds(now),
            exp: self.expires_at.map(unix_seconds),
        };
        let encoding = EncodingKey::from_secret(key.secret().expose_secret().as_bytes());
        encode(&header_for(key), &claims, &encoding)
    }
}

/// Why an `external_id` is unacceptable, if it is.
pub(crate) fn check_external_id(external_id: &str) -> Result<(), String> {
    if external_id.is_empty() {
        return Err("external_id is empty".to_owned());
    }
    let chars = external_id.chars().count();
    if chars > EXTERNAL_ID_MAX_CHARS {
        return Err(format!(
            "external_id has {chars} characters, more than {EXTERNAL_ID_MAX_CHARS}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_id_length_is_in_characters() {
        assert!(UserJwt::new("é".repeat(255)).is_ok());
        let err = UserJwt::new("x".repeat(256)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn only_app_keys_sign_user_tokens() {
        let key = ApiKey::new("int_1", "s").unwrap();
        let err = UserJwt::new("u").unwrap().sign(&key).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyScopeMismatch);
    }
}
