//! [`JwtCredentials`]: a server-scope JWT signed once and reused.

use std::fmt;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use jsonwebtoken::{EncodingKey, Header};

use super::jwt::{check_server_scope, header_for, sign_server_at};
use super::{ApiKey, Scope};
use crate::refreshing::MAX_TOKEN_LIFETIME;
use crate::{BoxFuture, Credentials, Error, ErrorKind, Secret};

/// Longest time before `exp` at which a new token is signed.
const RESIGN_MARGIN: Duration = Duration::from_secs(30);

/// `Authorization: Bearer <jwt>` for an `app`, `account` or `integration` scope.
///
/// The JWT is signed when the credentials are built and cached, so
/// [`Credentials::authorization`] normally costs a read lock and a string clone, no HMAC.
/// Without an expiry the token only changes after [`Credentials::invalidate`]. With
/// [`JwtCredentials::with_expiry`] each token carries `exp = iat + ttl` and a new one is signed
/// shortly before that (30 s, or a tenth of the lifetime when that is shorter), or after
/// `invalidate`.
///
/// ```
/// # async fn demo() -> Result<(), zd_auth::Error> {
/// use std::time::Duration;
/// use zd_auth::Credentials;
/// use zd_auth::sunshine::{ApiKey, JwtCredentials, Scope};
///
/// let key = ApiKey::new("int_5963ceb97cde542d000dbdb1", "s3cr3t")?;
/// let creds = JwtCredentials::new(&key, Scope::Integration)?.with_expiry(Duration::from_secs(3600))?;
/// let header = creds.authorization().await?;
/// assert!(header.expose_secret().starts_with("Bearer ey"));
/// # Ok(()) }
/// ```
pub struct JwtCredentials {
    key_id: String,
    scope: Scope,
    header: Header,
    encoding: EncodingKey,
    ttl: Option<Duration>,
    cached: RwLock<Cached>,
    signatures: AtomicU64,
}

#[derive(Clone)]
struct Cached {
    authorization: Secret,
    /// Sign again at or after this time; `None` when the token has no `exp`.
    resign_at: Option<SystemTime>,
    /// The server refused the token (a 401 after a key rotation, a clock too far off): sign
    /// again whatever `resign_at` says.
    rejected: bool,
}

impl Cached {
    fn usable_at(&self, now: SystemTime) -> bool {
        !self.rejected && self.resign_at.is_none_or(|at| now < at)
    }
}

impl JwtCredentials {
    /// Signs a token of `scope` with `key` (no expiry).
    ///
    /// # Errors
    /// [`ErrorKind::KeyScopeMismatch`] when the key's prefix does not fit `scope`;
    /// [`ErrorKind::InvalidInput`] for [`Scope::User`]; [`ErrorKind::JwtSign`].
    pub fn new(key: &ApiKey, scope: Scope) -> Result<Self, Error> {
        check_server_scope(key, scope)?;
        let header = header_for(key);
        let encoding = EncodingKey::from_secret(key.secret().expose_secret().as_bytes());
        let cached = sign(&header, &encoding, scope, None, SystemTime::now())?;
        Ok(Self {
            key_id: key.id().to_owned(),
            scope,
            header,
            encoding,
            ttl: None,
            cached: RwLock::new(cached),
            signatures: AtomicU64::new(1),
        })
    }

    /// Gives every token an `exp` of `ttl` after it is signed, and re-signs shortly before.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a zero `ttl` or one over ten years;
    /// [`ErrorKind::JwtSign`].
    pub fn with_expiry(self, ttl: Duration) -> Result<Self, Error> {
        self.with_expiry_at(ttl, SystemTime::now())
    }

    /// [`JwtCredentials::with_expiry`] with the first token signed at `now`.
    pub(crate) fn with_expiry_at(mut self, ttl: Duration, now: SystemTime) -> Result<Self, Error> {
        if ttl.is_zero() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "JWT lifetime must be positive",
            ));
        }
        if ttl > MAX_TOKEN_LIFETIME {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "JWT lifetime must be at most ten years",
            ));
        }
        self.ttl = Some(ttl);
        let cached = sign(&self.header, &self.encoding, self.scope, self.ttl, now)?;
        self.cached = RwLock::new(cached);
        self.signatures.fetch_add(1, Ordering::Relaxed);
        Ok(self)
    }

    /// The scope of the tokens.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// How many JWTs these credentials have signed so far (one at construction, one more
    /// per `with_expiry` and per renewal): proof that the hot path does not sign.
    pub fn signatures(&self) -> u64 {
        self.signatures.load(Ordering::Relaxed)
    }

    /// The key id in the tokens' `kid`.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The current JWT itself (without `Bearer `), re-signed first if it is about to expire.
    ///
    /// # Errors
    /// [`ErrorKind::JwtSign`].
    pub fn token(&self) -> Result<Secret, Error> {
        let header = self.authorization_at(SystemTime::now())?;
        Ok(Secret::new(
            header
                .expose_secret()
                .trim_start_matches("Bearer ")
                .to_owned(),
        ))
    }

    /// The header value at `now`, signing only when the cached token is due.
    pub(crate) fn authorization_at(&self, now: SystemTime) -> Result<Secret, Error> {
        {
            let cached = self.cached.read().unwrap_or_else(|p| p.into_inner());
            if cached.usable_at(now) {
                return Ok(cached.authorization.clone());
            }
        }
        let mut cached = self.cached.write().unwrap_or_else(|p| p.into_inner());
        // Another thread may have re-signed while we waited for the write lock.
        if cached.usable_at(now) {
            return Ok(cached.authorization.clone());
        }
        *cached = sign(&self.header, &self.encoding, self.scope, self.ttl, now)?;
        self.signatures.fetch_add(1, Ordering::Relaxed);
        Ok(cached.authorization.clone())
    }
}

fn sign(
    header: &Header,
    encoding: &EncodingKey,
    scope: Scope,
    ttl: Option<Duration>,
    now: SystemTime,
) -> Result<Cached, Error> {
    let past_the_clock = || {
        Error::new(
            ErrorKind::InvalidInput,
            "JWT expiry is past what the clock holds",
        )
    };
    let expires_at = ttl
        .map(|ttl| now.checked_add(ttl).ok_or_else(past_the_clock))
        .transpose()?;
    let jwt = sign_server_at(header, encoding, scope, now, expires_at)?;
    Ok(Cached {
        authorization: Secret::new(format!("Bearer {}", jwt.expose_secret())),
        // `ttl / 10` is below `ttl`, so this cannot underflow `now`.
        resign_at: expires_at
            .zip(ttl)
            .map(|(at, ttl)| at - RESIGN_MARGIN.min(ttl / 10)),
        rejected: false,
    })
}

impl fmt::Debug for JwtCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtCredentials")
            .field("key_id", &self.key_id)
            .field("scope", &self.scope)
            .field("ttl", &self.ttl)
            .field("token", &Secret::new(""))
            .finish()
    }
}

impl fmt::Display for JwtCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "JwtCredentials({}, {}, [REDACTED])",
            self.key_id, self.scope
        )
    }
}

impl Credentials for JwtCredentials {
    fn authorization(&self) -> BoxFuture<'_, Result<Secret, Error>> {
        let result = self.authorization_at(SystemTime::now());
        Box::pin(async move { result })
    }

    fn invalidate(&self) {
        self.cached
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .rejected = true;
    }

    fn invalidate_if_current(&self, rejected: &Secret) {
        let mut cached = self.cached.write().unwrap_or_else(|p| p.into_inner());
        if cached.authorization == *rejected {
            cached.rejected = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ApiKey {
        ApiKey::new("app_1", "secret").unwrap()
    }

    #[test]
    fn without_expiry_the_token_never_changes() {
        let creds = JwtCredentials::new(&key(), Scope::App).unwrap();
        let a = creds.authorization_at(SystemTime::now()).unwrap();
        let far = SystemTime::now() + Duration::from_secs(10 * 365 * 86_400);
        for _ in 0..1000 {
            assert_eq!(a, creds.authorization_at(far).unwrap());
        }
        assert_eq!(creds.signatures(), 1);
    }

    #[test]
    fn resigns_shortly_before_exp() {
        // (lifetime, margin): 30 s, or a tenth of a shorter lifetime.
        for (ttl, margin) in [(600, 30), (100, 10)] {
            let t0 = SystemTime::now();
            let creds = JwtCredentials::new(&key(), Scope::App)
                .unwrap()
                .with_expiry_at(Duration::from_secs(ttl), t0)
                .unwrap();
            let signed = creds.signatures();
            let a = creds.authorization_at(t0).unwrap();
            let resign_at = t0 + Duration::from_secs(ttl - margin);
            // Cached up to the boundary...
            assert_eq!(
                a,
                creds
                    .authorization_at(resign_at - Duration::from_nanos(1))
                    .unwrap()
            );
            assert_eq!(creds.signatures(), signed);
            // ... and re-signed from it on (iat is then later, so the token differs).
            let b = creds.authorization_at(resign_at).unwrap();
            assert_ne!(a, b);
            assert_eq!(creds.signatures(), signed + 1);
            assert_eq!(
                b,
                creds
                    .authorization_at(resign_at + Duration::from_secs(1))
                    .unwrap()
            );
        }
    }

    #[test]
    fn invalidate_makes_the_next_authorization_resign() {
        let creds = JwtCredentials::new(&key(), Scope::App).unwrap();
        let t0 = SystemTime::now();
        let a = creds.authorization_at(t0).unwrap();
        creds.invalidate();
        // Two seconds on, so that the new token's iat differs.
        let b = creds.authorization_at(t0 + Duration::from_secs(2)).unwrap();
        assert_ne!(a, b);
        assert_eq!(creds.signatures(), 2);
        // The new token is cached again.
        assert_eq!(
            b,
            creds.authorization_at(t0 + Duration::from_secs(3)).unwrap()
        );
        assert_eq!(creds.signatures(), 2);
        // A late rejection of the replaced token changes nothing; one of the current does.
        creds.invalidate_if_current(&a);
        assert_eq!(
            b,
            creds.authorization_at(t0 + Duration::from_secs(4)).unwrap()
        );
        creds.invalidate_if_current(&b);
        assert_ne!(
            b,
            creds.authorization_at(t0 + Duration::from_secs(5)).unwrap()
        );
        assert_eq!(creds.signatures(), 3);
    }

    #[test]
    fn scope_must_fit_key() {
        let err = JwtCredentials::new(&key(), Scope::Integration).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyScopeMismatch);
        let err = JwtCredentials::new(&key(), Scope::User).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = JwtCredentials::new(&key(), Scope::App)
            .unwrap()
            .with_expiry(Duration::ZERO)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = JwtCredentials::new(&key(), Scope::App)
            .unwrap()
            .with_expiry(Duration::MAX)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}
