//! [`JwtCredentials`]: a server-scope JWT signed once and reused.

use std::fmt;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header};

use super::jwt::{check_server_scope, header_for, sign_server_at, unix_seconds};
use super::{ApiKey, Scope};
use crate::refreshing::MAX_TOKEN_LIFETIME;
use crate::{BoxFuture, Credentials, Error, ErrorKind, Secret};

/// Longest time before `exp` at which a new token is signed.
const RESIGN_MARGIN: Duration = Duration::from_secs(30);

/// Shortest time before `exp` at which a new token is signed, whatever the lifetime: the
/// server's clock may run ahead of ours, and a request takes time to arrive, so a token with
/// a second left may already be expired when checked.
const MIN_RESIGN_MARGIN: Duration = Duration::from_secs(5);

/// Shortest lifetime accepted: the minimum margin, plus the second `exp` may lose to rounding
/// down, must leave the token some seconds of use, or every call would sign anew.
const MIN_TTL: Duration = Duration::from_secs(15);

/// `Authorization: Bearer <jwt>` for an `app`, `account` or `integration` scope.
///
/// The JWT is signed when the credentials are built and cached, so
/// [`Credentials::authorization`] normally costs a read lock and a string clone, no HMAC.
/// Without an expiry the token only changes after [`Credentials::invalidate`]. With
/// [`JwtCredentials::with_expiry`] each token carries `exp` = signing time + `ttl`, rounded
/// down to the whole second the claim holds, and a new one is signed shortly before that `exp`
/// (a tenth of the lifetime, at least 5 s and at most 30 s), or after `invalidate`.
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

    /// Gives every token an `exp` of `ttl` after it is signed (rounded down to a whole
    /// second), and re-signs shortly before.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a `ttl` under 15 seconds (a token is re-signed at least
    /// 5 s before its `exp`, which counts whole seconds, so a shorter one would barely be
    /// used) or over ten years; [`ErrorKind::JwtSign`].
    pub fn with_expiry(self, ttl: Duration) -> Result<Self, Error> {
        self.with_expiry_at(ttl, SystemTime::now())
    }

    /// [`JwtCredentials::with_expiry`] with the first token signed at `now`.
    pub(crate) fn with_expiry_at(mut self, ttl: Duration, now: SystemTime) -> Result<Self, Error> {
        if ttl < MIN_TTL {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "JWT lifetime must be at least 15 seconds",
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
    // The `exp` the token will carry (whole seconds), so that the re-signing time is counted
    // from it and not from the sub-second instant it was cut from: a token must not be
    // handed out past its own `exp`.
    let expires_at = ttl
        .map(|ttl| {
            let at = now.checked_add(ttl).ok_or_else(past_the_clock)?;
            UNIX_EPOCH
                .checked_add(Duration::from_secs(unix_seconds(at)))
                .ok_or_else(past_the_clock)
        })
        .transpose()?;
    let jwt = sign_server_at(header, encoding, scope, now, expires_at)?;
    Ok(Cached {
        authorization: Secret::new(format!("Bearer {}", jwt.expose_secret())),
        // Only a clock before 1970 could make this underflow; signing again on the next call
        // is then the safe answer.
        resign_at: expires_at
            .zip(ttl)
            .map(|(at, ttl)| at.checked_sub(resign_margin(ttl)).unwrap_or(now)),
        rejected: false,
    })
}

/// How long before `exp` a token of lifetime `ttl` is replaced: a tenth of it, kept between
/// the bounds above.
fn resign_margin(ttl: Duration) -> Duration {
    (ttl / 10).clamp(MIN_RESIGN_MARGIN, RESIGN_MARGIN)
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
        // (lifetime, margin): a tenth of the lifetime, between 5 s and 30 s.
        for (ttl, margin) in [(600, 30), (100, 10), (30, 5), (15, 5)] {
            // On a whole second, so that `exp` is exactly `t0 + ttl`.
            let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
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
    fn a_cached_token_is_not_handed_out_past_its_exp() {
        let key = key();
        let verifier = crate::sunshine::Verifier::new(key.clone()).leeway(Duration::ZERO);
        // 900 ms into a second: `exp` rounds down to 14.1 s after signing.
        let t0 = UNIX_EPOCH + Duration::from_millis(1_000_900);
        let creds = JwtCredentials::new(&key, Scope::App)
            .unwrap()
            .with_expiry_at(MIN_TTL, t0)
            .unwrap();
        for after_ms in [
            0, 50, 99, 100, 500, 950, 999, 1500, 9_099, 9_100, 14_099, 14_100, 20_000,
        ] {
            let at = t0 + Duration::from_millis(after_ms);
            let header = creds.authorization_at(at).unwrap();
            let token = header.expose_secret().trim_start_matches("Bearer ");
            let verified = verifier.verify_at(token, at);
            assert!(
                verified.is_ok(),
                "{after_ms} ms after signing: {verified:?}"
            );
        }
    }

    #[test]
    fn a_token_is_never_handed_out_with_under_five_seconds_left() {
        // 900 ms into a second, so that `exp` loses most of a second to rounding down.
        let t0 = UNIX_EPOCH + Duration::from_millis(1_000_900);
        let creds = JwtCredentials::new(&key(), Scope::App)
            .unwrap()
            .with_expiry_at(MIN_TTL, t0)
            .unwrap();
        let verifier = crate::sunshine::Verifier::new(key()).leeway(Duration::ZERO);
        for after_ms in (0..=30_000).step_by(100) {
            let at = t0 + Duration::from_millis(after_ms);
            let header = creds.authorization_at(at).unwrap();
            let token = header.expose_secret().trim_start_matches("Bearer ");
            // Still valid on a server whose clock runs up to 5 s ahead.
            let verified =
                verifier.verify_at(token, at + MIN_RESIGN_MARGIN - Duration::from_millis(1));
            assert!(
                verified.is_ok(),
                "{after_ms} ms after signing: {verified:?}"
            );
        }
    }

    #[test]
    fn a_lifetime_under_the_minimum_is_refused() {
        for ttl in [
            Duration::from_nanos(1),
            Duration::from_millis(999),
            Duration::from_secs(1),
            Duration::from_secs(10),
            MIN_TTL - Duration::from_nanos(1),
        ] {
            let err = JwtCredentials::new(&key(), Scope::App)
                .unwrap()
                .with_expiry(ttl)
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{ttl:?}");
        }
        assert!(
            JwtCredentials::new(&key(), Scope::App)
                .unwrap()
                .with_expiry(MIN_TTL)
                .is_ok()
        );
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
