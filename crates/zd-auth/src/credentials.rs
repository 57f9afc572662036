//! The [`Credentials`] abstraction and the simplest implementation, [`StaticToken`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::{Error, Secret};

/// A boxed, `Send` future: the return type of the object-safe async methods in this crate.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that can produce the value of an `Authorization` header.
///
/// Session crates hold an `Arc<dyn Credentials>` and call [`Credentials::authorization`] before
/// each request or connection. The returned [`Secret`] is the whole header value, scheme
/// included (`"Bearer ..."` or `"Basic ..."`).
///
/// Implementations: [`StaticToken`], [`RefreshingToken`](crate::RefreshingToken),
/// [`sunshine::BasicAuth`](crate::sunshine::BasicAuth) and
/// [`sunshine::JwtCredentials`](crate::sunshine::JwtCredentials).
pub trait Credentials: Send + Sync + fmt::Debug + 'static {
    /// The `Authorization` header value to send now.
    ///
    /// # Errors
    /// Whatever producing the value can fail with: a refresh request, JWT signing.
    fn authorization(&self) -> BoxFuture<'_, Result<Secret, Error>>;

    /// Tells the credentials that the server rejected the last value (HTTP 401, an
    /// `UNAUTHORIZED` frame), so the next [`Credentials::authorization`] renews it where renewal
    /// is possible. The default does nothing.
    ///
    /// Prefer [`Credentials::invalidate_if_current`] when the rejected value is at hand: a
    /// late 401 for a value that was already replaced then costs nothing.
    fn invalidate(&self) {}

    /// Tells the credentials that the server rejected `rejected`, a value that
    /// [`Credentials::authorization`] returned. If it is still the current value, the next
    /// `authorization` renews it as after [`Credentials::invalidate`]; a rejection of a value
    /// already replaced (the answer to a request sent before the last renewal) is ignored.
    ///
    /// The default calls [`Credentials::invalidate`], for credentials that cannot tell their
    /// values apart.
    fn invalidate_if_current(&self, rejected: &Secret) {
        let _ = rejected;
        self.invalidate();
    }
}

impl<T: Credentials + ?Sized> Credentials for Arc<T> {
    fn authorization(&self) -> BoxFuture<'_, Result<Secret, Error>> {
        (**self).authorization()
    }

    fn invalidate(&self) {
        (**self).invalidate();
    }

    fn invalidate_if_current(&self, rejected: &Secret) {
        (**self).invalidate_if_current(rejected);
    }
}

impl<T: Credentials + ?Sized> Credentials for Box<T> {
    fn authorization(&self) -> BoxFuture<'_, Result<Secret, Error>> {
        (**self).authorization()
    }

    fn invalidate(&self) {
        (**self).invalidate();
    }

    fn invalidate_if_current(&self, rejected: &Secret) {
        (**self).invalidate_if_current(rejected);
    }
}

/// A fixed bearer token: `Authorization: Bearer <token>`.
///
/// ```
/// # async fn demo() -> Result<(), zd_auth::Error> {
/// use zd_auth::{Credentials, StaticToken};
///
/// let creds = StaticToken::bearer("abc123")?;
/// assert_eq!(creds.authorization().await?.expose_secret(), "Bearer abc123");
/// assert!(StaticToken::bearer("").is_err());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct StaticToken {
    header: Secret,
}

impl StaticToken {
    /// A bearer token.
    ///
    /// # Errors
    /// [`ErrorKind::EmptySecret`](crate::ErrorKind::EmptySecret) for an empty token.
    pub fn bearer(token: impl Into<Secret>) -> Result<Self, Error> {
        let token = token.into().require("bearer token")?;
        Ok(Self {
            header: Secret::new(format!("Bearer {}", token.expose_secret())),
        })
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticToken")
            .field("header", &self.header)
            .finish()
    }
}

impl fmt::Display for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken(Bearer [REDACTED])")
    }
}

impl Credentials for StaticToken {
    fn authorization(&self) -> BoxFuture<'_, Result<Secret, Error>> {
        let header = self.header.clone();
        Box::pin(async move { Ok(header) })
    }
}
