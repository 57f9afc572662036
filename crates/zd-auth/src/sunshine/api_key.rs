//! API keys, key kinds and JWT scopes.

use std::fmt;

use crate::{Error, ErrorKind, Secret};

/// A Sunshine Conversations API key: a key id (`app_...`, `act_...`, `svc_...`, `int_...`) and
/// its secret.
///
/// ```
/// use zd_auth::sunshine::{ApiKey, KeyKind};
///
/// let key = ApiKey::new("app_5963ceb97cde542d000dbdb1", "s3cr3t")?;
/// assert_eq!(key.kind(), KeyKind::App);
/// assert!(format!("{key:?}").contains("REDACTED"));
/// assert!(ApiKey::new("app_1", "").is_err());
/// # Ok::<(), zd_auth::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    id: String,
    secret: Secret,
}

impl ApiKey {
    /// A key from its id and secret.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an empty id, [`ErrorKind::EmptySecret`] for an empty
    /// secret.
    pub fn new(id: impl Into<String>, secret: impl Into<Secret>) -> Result<Self, Error> {
        let id = id.into();
        if id.is_empty() {
            return Err(Error::new(ErrorKind::InvalidInput, "API key id is empty"));
        }
        let secret = secret.into().require("API key secret")?;
        Ok(Self { id, secret })
    }

    /// The key id (not secret: it travels in the JWT header and the Basic user name).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key secret.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// What kind of key the id's prefix says this is.
    pub fn kind(&self) -> KeyKind {
        KeyKind::of(&self.id)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("secret", &self.secret)
            .finish()
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}, [REDACTED])", self.id)
    }
}

/// The kind of a key, from its id prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// `app_`: an app key.
    App,
    /// `act_`: a (legacy, direct) account key.
    Account,
    /// `svc_`: a service account key.
    ServiceAccount,
    /// `int_`: a custom integration key.
    Integration,
    /// Any other prefix.
    Unknown,
}

impl KeyKind {
    /// The kind named by a key id's prefix.
    pub fn of(key_id: &str) -> Self {
        if key_id.starts_with("app_") {
            Self::App
        } else if key_id.starts_with("act_") {
            Self::Account
        } else if key_id.starts_with("svc_") {
            Self::ServiceAccount
        } else if key_id.starts_with("int_") {
            Self::Integration
        } else {
            Self::Unknown
        }
    }

    /// Whether a key of this kind may sign a JWT of `scope`: `app_` signs `app` and `user`,
    /// `act_`/`svc_` sign `account`, `int_` signs `integration`. This is the rule for tokens
    /// an integrator signs; the OAuth bridge also issues `integration` tokens under an app
    /// key, which [`Verifier`](super::Verifier) accepts when they carry the bridge's `appId`
    /// and `azp`.
    pub fn allows(self, scope: Scope) -> bool {
        matches!(
            (self, scope),
            (Self::App, Scope::App | Scope::User)
                | (Self::Account | Self::ServiceAccount, Scope::Account)
                | (Self::Integration, Scope::Integration)
        )
    }
}

/// The `scope` claim of a Sunshine JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// `app`: everything in one app except account provisioning.
    App,
    /// `account`: everything, including account provisioning (direct accounts).
    Account,
    /// `integration`: users, conversations, attachments and the integration's own webhooks.
    Integration,
    /// `user`: an end user logging in through an SDK; not accepted by the v2 REST API.
    User,
}

impl Scope {
    /// The claim value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Account => "account",
            Self::Integration => "integration",
            Self::User => "user",
        }
    }

    /// Parses a claim value; `None` for anything else.
    pub fn from_claim(value: &str) -> Option<Self> {
        match value {
            "app" => Some(Self::App),
            "account" => Some(Self::Account),
            "integration" => Some(Self::Integration),
            "user" => Some(Self::User),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn check_key_scope(key_id: &str, scope: Scope) -> Result<(), Error> {
    if KeyKind::of(key_id).allows(scope) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::KeyScopeMismatch,
            format!("key {key_id} cannot sign `{scope}` tokens"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_fit_scopes() {
        assert!(KeyKind::of("app_1").allows(Scope::App));
        assert!(KeyKind::of("app_1").allows(Scope::User));
        assert!(KeyKind::of("act_1").allows(Scope::Account));
        assert!(KeyKind::of("svc_1").allows(Scope::Account));
        assert!(KeyKind::of("int_1").allows(Scope::Integration));
        assert!(!KeyKind::of("app_1").allows(Scope::Account));
        assert!(!KeyKind::of("int_1").allows(Scope::App));
        assert!(!KeyKind::of("act_1").allows(Scope::User));
        assert!(!KeyKind::of("xyz").allows(Scope::App));
        let err = check_key_scope("int_1", Scope::App).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyScopeMismatch);
    }

    #[test]
    fn empty_parts_are_refused() {
        assert_eq!(
            ApiKey::new("", "x").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            ApiKey::new("app_1", "").unwrap_err().kind(),
            ErrorKind::EmptySecret
        );
    }
}
