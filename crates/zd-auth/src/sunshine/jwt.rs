//! Signing app / account / integration JWTs (HS256, `kid` = key id).

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::api_key::check_key_scope;
use super::{ApiKey, Scope};
use crate::{Error, ErrorKind, Secret};

#[derive(Serialize)]
struct ServerClaims {
    scope: &'static str,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
}

/// Seconds since the Unix epoch (0 for times before it).
pub(crate) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub(crate) fn header_for(key: &ApiKey) -> Header {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.id().to_owned());
    header
}

pub(crate) fn encode<T: Serialize>(
    header: &Header,
    claims: &T,
    key: &EncodingKey,
) -> Result<Secret, Error> {
    jsonwebtoken::encode(header, claims, key)
        .map(Secret::new)
        .map_err(|e| Error::new(ErrorKind::JwtSign, "HS256").with_source(e))
}

/// Signs one server-scope JWT at `now`.
pub(crate) fn sign_server_at(
    header: &Header,
    key: &EncodingKey,
    scope: Scope,
    now: SystemTime,
    expires_at: Option<SystemTime>,
) -> Result<Secret, Error> {
    let claims = ServerClaims {
        scope: scope.as_str(),
        iat: unix_seconds(now),
        exp: expires_at.map(unix_seconds),
    };
    encode(header, &claims, key)
}

/// Signs an `app`, `account` or `integration` JWT with `key`: header
/// `{"alg":"HS256","typ":"JWT","kid":<key id>}`, claims `{"scope", "iat"[, "exp"]}`.
///
/// To send JWTs on every request, prefer [`JwtCredentials`](super::JwtCredentials), which signs
/// once and caches. For end-user tokens use [`UserJwt`](super::UserJwt).
///
/// ```
/// use zd_auth::sunshine::{ApiKey, Scope, sign_jwt};
///
/// let key = ApiKey::new("app_5963ceb97cde542d000dbdb1", "s3cr3t")?;
/// let jwt = sign_jwt(&key, Scope::App, None)?;
/// assert_eq!(jwt.expose_secret().split('.').count(), 3);
/// // An app key cannot sign an account token.
/// assert!(sign_jwt(&key, Scope::Account, None).is_err());
/// # Ok::<(), zd_auth::Error>(())
/// ```
///
/// # Errors
/// [`ErrorKind::KeyScopeMismatch`] when the key's prefix does not fit `scope`;
/// [`ErrorKind::InvalidInput`] for [`Scope::User`].
pub fn sign_jwt(
    key: &ApiKey,
    scope: Scope,
    expires_at: Option<SystemTime>,
) -> Result<Secret, Error> {
    check_server_scope(key, scope)?;
    let encoding = EncodingKey::from_secret(key.secret().expose_secret().as_bytes());
    sign_server_at(
        &header_for(key),
        &encoding,
        scope,
        SystemTime::now(),
        expires_at,
    )
}

pub(crate) fn check_server_scope(key: &ApiKey, scope: Scope) -> Result<(), Error> {
    if scope == Scope::User {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "user-scope tokens carry an external_id: build them with UserJwt",
        ));
    }
    check_key_scope(key.id(), scope)
}
