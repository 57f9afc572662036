//! Verifying Sunshine JWTs, for webhook receivers, SDK back ends and the emulator.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::user::check_external_id;
use super::{ApiKey, KeyKind, Scope};
use crate::{Error, ErrorKind, Secret};

/// Finds the secret of the key named by a JWT's `kid`.
///
/// An empty secret counts as no key: [`Verifier`] refuses the token with
/// [`ErrorKind::JwtUnknownKey`], since anyone can sign with an empty HMAC key.
pub trait KeyLookup {
    /// The secret for `kid`, or `None` when the key is unknown. An empty secret is treated
    /// as `None`.
    fn secret_for(&self, kid: &str) -> Option<Secret>;
}

impl KeyLookup for [ApiKey] {
    fn secret_for(&self, kid: &str) -> Option<Secret> {
        self.iter()
            .find(|k| k.id() == kid)
            .map(|k| k.secret().clone())
    }
}

impl KeyLookup for Vec<ApiKey> {
    fn secret_for(&self, kid: &str) -> Option<Secret> {
        self.as_slice().secret_for(kid)
    }
}

impl KeyLookup for ApiKey {
    fn secret_for(&self, kid: &str) -> Option<Secret> {
        (self.id() == kid).then(|| self.secret().clone())
    }
}

impl<S: std::hash::BuildHasher> KeyLookup for HashMap<String, Secret, S> {
    fn secret_for(&self, kid: &str) -> Option<Secret> {
        self.get(kid).cloned()
    }
}

impl<F: Fn(&str) -> Option<Secret>> KeyLookup for F {
    fn secret_for(&self, kid: &str) -> Option<Secret> {
        self(kid)
    }
}

/// The claims of a user-scope JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserClaims {
    /// The user's id in the integrator's system.
    pub external_id: String,
    /// `name`, if given.
    pub name: Option<String>,
    /// `email`, if given.
    pub email: Option<String>,
    /// `email_verified`, if given.
    pub email_verified: Option<bool>,
}

/// A JWT that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// The `kid` that signed it.
    pub key_id: String,
    /// Its `scope`.
    pub scope: Scope,
    /// `iat`, if present.
    pub issued_at: Option<SystemTime>,
    /// `exp`, if present (it is in the future, give or take the leeway).
    pub expires_at: Option<SystemTime>,
    /// `appId`, present in tokens issued by the OAuth bridge. It is the token's claim, not a
    /// fact about the key: the verifier checks that an app key signed the token, not that the
    /// key belongs to this app. When your key lookup holds the keys of several apps, check
    /// that `key_id`'s app is `app_id` before acting for it.
    pub app_id: Option<String>,
    /// The user claims, for [`Scope::User`].
    pub user: Option<UserClaims>,
}

/// Checks Sunshine JWTs: HS256 only, `kid` names a known key, the signature matches, `scope`
/// is known and fits the key's prefix, `exp` (when present) is not past, and user-scope claims
/// are well typed (`external_id` a string of 1 to 255 characters).
///
/// The one exception to the prefix rule ([`KeyKind::allows`]) is the OAuth bridge's tokens:
/// `integration` scope signed with an **app** key, carrying an `appId` claim and an `azp`
/// header (the OAuth client), as the spec's example bridge token does. An app-key token of
/// `integration` scope without both is refused with [`ErrorKind::JwtWrongScope`]. Its `appId`
/// is not checked against the key's app (the [`KeyLookup`] does not say which app owns a key):
/// see [`Verified::app_id`].
///
/// ```
/// use zd_auth::ErrorKind;
/// use zd_auth::sunshine::{ApiKey, Scope, UserJwt, Verifier, sign_jwt};
///
/// let key = ApiKey::new("app_1", "s3cr3t")?;
/// let verifier = Verifier::new(vec![key.clone()]);
///
/// let app = sign_jwt(&key, Scope::App, None)?;
/// assert_eq!(verifier.verify(app.expose_secret())?.scope, Scope::App);
///
/// let user = UserJwt::new("customer-42")?.sign(&key)?;
/// let verified = verifier.verify_scope(user.expose_secret(), Scope::User)?;
/// assert_eq!(verified.user.unwrap().external_id, "customer-42");
///
/// let err = verifier.verify_scope(app.expose_secret(), Scope::User).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::JwtWrongScope);
/// # Ok::<(), zd_auth::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Verifier<K> {
    keys: K,
    leeway: Duration,
}

impl<K: KeyLookup> Verifier<K> {
    /// A verifier over `keys`, with 60 s of leeway for clock skew on `exp`.
    pub fn new(keys: K) -> Self {
        Self {
            keys,
            leeway: Duration::from_secs(60),
        }
    }

    /// Sets the clock-skew allowance on `exp`. One so large that `exp` plus it is past what
    /// the clock holds (`Duration::MAX`) accepts every `exp`.
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The keys.
    pub fn keys(&self) -> &K {
        &self.keys
    }

    /// Verifies a token of any scope.
    ///
    /// # Errors
    /// [`ErrorKind::JwtMalformed`], [`ErrorKind::JwtUnknownKey`],
    /// [`ErrorKind::JwtBadSignature`], [`ErrorKind::JwtWrongScope`], [`ErrorKind::JwtExpired`],
    /// [`ErrorKind::JwtInvalidClaims`].
    pub fn verify(&self, token: &str) -> Result<Verified, Error> {
        self.verify_at(token, SystemTime::now())
    }

    /// Verifies a token that must have `scope`.
    ///
    /// # Errors
    /// As [`Verifier::verify`]; [`ErrorKind::JwtWrongScope`] for another scope.
    pub fn verify_scope(&self, token: &str, scope: Scope) -> Result<Verified, Error> {
        let verified = self.verify(token)?;
        if verified.scope != scope {
            return Err(Error::new(
                ErrorKind::JwtWrongScope,
                format!("expected `{scope}`, token has `{}`", verified.scope),
            ));
        }
        Ok(verified)
    }

    /// Verifies a token as of `now`.
    ///
    /// # Errors
    /// As [`Verifier::verify`].
    pub fn verify_at(&self, token: &str, now: SystemTime) -> Result<Verified, Error> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Error::new(ErrorKind::JwtMalformed, "header").with_source(e))?;
        if header.alg != Algorithm::HS256 {
            return Err(Error::new(
                ErrorKind::JwtMalformed,
                format!("alg {:?} is not HS256", header.alg),
            ));
        }
        let kid = header
            .kid
            .ok_or_else(|| Error::new(ErrorKind::JwtUnknownKey, "header has no kid"))?;
        // An empty HMAC key is no secret: a token signed with it proves nothing, so the kid is
        // as good as unknown. `ApiKey` refuses empty secrets; maps and closures may not.
        let secret = self
            .keys
            .secret_for(&kid)
            .filter(|s| !s.expose_secret().is_empty())
            .ok_or_else(|| Error::new(ErrorKind::JwtUnknownKey, format!("no key {kid}")))?;

        let mut validation = Validation::new(Algorithm::HS256);
        // Time and audience checks are ours (below), so that `exp` is optional, typed and
        // checked against the caller's clock.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let key = DecodingKey::from_secret(secret.expose_secret().as_bytes());
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| {
                let kind = match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => ErrorKind::JwtBadSignature,
                    _ => ErrorKind::JwtMalformed,
                };
                Error::new(kind, format!("signed by {kid}")).with_source(e)
            })?;
        let claims = data.claims;

        let scope = match claims.get("scope") {
            Some(Value::String(s)) => Scope::from_claim(s).ok_or_else(|| {
                Error::new(ErrorKind::JwtWrongScope, format!("unknown scope `{s}`"))
            })?,
            Some(_) => return Err(invalid("scope is not a string")),
            None => return Err(Error::new(ErrorKind::JwtWrongScope, "no scope claim")),
        };
        let app_id = optional_string(&claims, "appId")?;
        if !KeyKind::of(&kid).allows(scope)
            && !is_bridge_token(&kid, scope, &header.extras, app_id.as_deref())
        {
            return Err(Error::new(
                ErrorKind::JwtWrongScope,
                format!("key {kid} cannot sign `{scope}` tokens"),
            ));
        }

        let issued_at = time_claim(&claims, "iat")?;
        let expires_at = time_claim(&claims, "exp")?;
        // A deadline past what the clock holds (a huge leeway) is one that never comes.
        if let Some(exp) = expires_at
            && exp
                .checked_add(self.leeway)
                .is_some_and(|deadline| deadline <= now)
        {
            return Err(Error::new(
                ErrorKind::JwtExpired,
                format!("signed by {kid}"),
            ));
        }

        let user = match scope {
            Scope::User => Some(user_claims(&claims)?),
            _ => None,
        };
        Ok(Verified {
            key_id: kid,
            scope,
            issued_at,
            expires_at,
            app_id,
            user,
        })
    }
}

/// Whether a token is one the OAuth bridge issues: `integration` scope signed with an app
/// key, naming the app (`appId` claim) and the OAuth client it was issued to (`azp` header).
/// An app key signs nothing else of `integration` scope, so a token that lacks either is not
/// let through on the strength of the key alone.
fn is_bridge_token(
    kid: &str,
    scope: Scope,
    header_extras: &HashMap<String, String>,
    app_id: Option<&str>,
) -> bool {
    KeyKind::of(kid) == KeyKind::App
        && scope == Scope::Integration
        && app_id.is_some_and(|a| !a.is_empty())
        && header_extras.get("azp").is_some_and(|a| !a.is_empty())
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::JwtInvalidClaims, detail.into())
}

fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<SystemTime>, Error> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| invalid(format!("{name} is not a non-negative integer")))
            .and_then(|secs| {
                UNIX_EPOCH
                    .checked_add(Duration::from_secs(secs))
                    .map(Some)
                    .ok_or_else(|| invalid(format!("{name} is too far in the future")))
            }),
        Some(_) => Err(invalid(format!("{name} is not a number"))),
    }
}

fn optional_string(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, Error> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("{name} is not a string"))),
    }
}

fn user_claims(claims: &Map<String, Value>) -> Result<UserClaims, Error> {
    let external_id = match claims.get("external_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(_)) => {
            return Err(invalid("external_id is a number; it must be a string"));
        }
        Some(_) => return Err(invalid("external_id is not a string")),
        None => return Err(invalid("user token has no external_id")),
    };
    check_external_id(&external_id).map_err(invalid)?;
    let email_verified = match claims.get("email_verified") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(invalid("email_verified is not a boolean")),
    };
    Ok(UserClaims {
        external_id,
        name: optional_string(claims, "name")?,
        email: optional_string(claims, "email")?,
        email_verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sunshine::sign_jwt;

    fn key() -> ApiKey {
        ApiKey::new("app_1", "s3cr3t").unwrap()
    }

    /// An HS256 token of `app` scope for `kid`, signed with `secret`.
    fn signed_with(kid: &str, secret: &[u8]) -> String {
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some(kid.to_owned());
        let claims = serde_json::json!({"scope": "app"});
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    #[test]
    fn an_empty_secret_is_an_unknown_key() {
        let forged = signed_with("app_1", b"");
        let closure = Verifier::new(|_: &str| Some(Secret::new("")));
        let err = closure.verify(&forged).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::JwtUnknownKey);

        let map: HashMap<String, Secret> = [("app_1".to_owned(), Secret::new(""))].into();
        let err = Verifier::new(map).verify(&forged).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::JwtUnknownKey);
    }

    #[test]
    fn a_leeway_past_the_end_of_time_accepts_any_exp() {
        let key = key();
        let exp = SystemTime::now() + Duration::from_secs(3600);
        let token = sign_jwt(&key, Scope::App, Some(exp)).unwrap();
        let verified = Verifier::new(key)
            .leeway(Duration::MAX)
            .verify(token.expose_secret())
            .unwrap();
        assert_eq!(verified.scope, Scope::App);
    }
}
