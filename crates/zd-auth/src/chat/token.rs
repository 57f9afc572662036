//! The token a Chat OAuth grant returns.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::ChatScope;
use crate::refreshing::MAX_TOKEN_LIFETIME;
use crate::{Error, ErrorKind, FetchedToken, OAuthError, OAuthErrorCode, Secret, StaticToken};

/// An access token from the Chat token endpoint (or an implicit-flow redirect), with its
/// refresh token, scopes and lifetime. The tokens are [`Secret`]s.
#[derive(Clone)]
pub struct ChatToken {
    access_token: Secret,
    refresh_token: Option<Secret>,
    token_type: String,
    scopes: Vec<ChatScope>,
    expires_in: Option<Duration>,
    obtained_at: SystemTime,
}

/// `expires_in` as a number, or as a numeric string as some servers send it; fractions
/// (`3600.0`) are accepted and truncated. Anything else is kept as `Other`, so that an odd
/// lifetime does not cost the whole answer (and the refresh token the server rotated in it).
#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Whole(u64),
    Fractional(f64),
    Text(String),
    Other(IgnoredAny),
}

impl Seconds {
    /// The lifetime, when this is a non-negative, finite number of seconds.
    fn lifetime(&self) -> Option<Duration> {
        match self {
            Self::Whole(n) => Some(Duration::from_secs(*n)),
            Self::Fractional(f) => truncated_seconds(*f),
            Self::Text(s) => {
                let s = s.trim();
                s.parse::<u64>()
                    .map(Duration::from_secs)
                    .ok()
                    .or_else(|| s.parse::<f64>().ok().and_then(truncated_seconds))
            }
            Self::Other(_) => None,
        }
    }
}

/// A field of the expected type, or anything else, ignored: one odd optional field must not
/// cost the whole answer.
#[derive(Deserialize)]
#[serde(untagged)]
enum Lenient<T> {
    Valid(T),
    Other(IgnoredAny),
}

/// Whole seconds of a non-negative, finite number; lifetimes past what a `Duration` holds
/// come out as `Duration::MAX`, to be capped like any other long lifetime.
fn truncated_seconds(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0)
        .then(|| Duration::try_from_secs_f64(secs.trunc()).unwrap_or(Duration::MAX))
}

#[derive(Deserialize)]
pub(crate) struct RawToken {
    #[serde(default)]
    access_token: Option<Secret>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    refresh_token: Option<Secret>,
    #[serde(default, alias = "scopes")]
    scope: Option<Lenient<String>>,
    #[serde(default)]
    expires_in: Option<Seconds>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// Only the refresh token of a success body that did not decode as a whole: the server may
/// have consumed the old one already, so the new one must not be lost with the rest.
#[derive(Deserialize)]
pub(crate) struct RotatedRefreshToken {
    #[serde(default)]
    refresh_token: Option<Secret>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

impl RotatedRefreshToken {
    pub(crate) fn into_secret(self) -> Option<Secret> {
        if self.error.is_some() {
            return None;
        }
        self.refresh_token.filter(usable_refresh_token)
    }
}

/// Whether a refresh token an answer carries can replace the one in hand: not blank (an
/// echoed or masked field is no token).
fn usable_refresh_token(token: &Secret) -> bool {
    !token.expose_secret().trim().is_empty()
}

impl RawToken {
    /// The refresh token the answer carries, whether or not the rest of it is valid; none
    /// from an answer that is an OAuth error (some servers send those with a 200): the grant
    /// was refused, and what it holds is no new token.
    pub(crate) fn refresh_token(&self) -> Option<&Secret> {
        if self.error.is_some() {
            return None;
        }
        self.refresh_token
            .as_ref()
            .filter(|t| usable_refresh_token(t))
    }

    pub(crate) fn into_token(self, what: &str) -> Result<ChatToken, Error> {
        if let Some(code) = self.error {
            // Some servers send OAuth errors with a 200 status.
            return Err(
                Error::new(ErrorKind::OAuth, what.to_owned()).with_oauth(OAuthError {
                    code: OAuthErrorCode::from_wire(&code),
                    description: self.error_description,
                }),
            );
        }
        let decode = |detail: &str, path: &str| {
            Error::new(ErrorKind::Decode, format!("{what}: {detail}"))
                .with_json_path(path.to_owned())
        };
        let access_token = match self.access_token {
            Some(t) if !t.is_empty() => t,
            Some(_) => return Err(decode("empty access token", "access_token")),
            None => return Err(decode("no access token", "access_token")),
        };
        let token_type = self.token_type.unwrap_or_else(|| "Bearer".to_owned());
        if !token_type.eq_ignore_ascii_case("bearer") {
            return Err(decode(
                &format!(
                    "token type {} is not Bearer",
                    crate::error::server_text(&token_type)
                ),
                "token_type",
            ));
        }
        // A token that works but whose lifetime is unreadable is worth more than no token: it
        // is used as one the server gave no lifetime for, until it is refused.
        let expires_in = self
            .expires_in
            .and_then(|seconds| {
                let lifetime = seconds.lifetime();
                if lifetime.is_none() {
                    tracing::warn!(
                        what,
                        "expires_in is not a non-negative number of seconds; \
                         the token is used as one without a lifetime"
                    );
                }
                lifetime
            })
            // Capped so that adding it to a clock cannot overflow.
            .map(|lifetime| lifetime.min(MAX_TOKEN_LIFETIME));
        let scopes = match self.scope {
            None => Vec::new(),
            Some(Lenient::Valid(scope)) => ChatScope::parse_list(&scope),
            Some(Lenient::Other(_)) => {
                tracing::warn!(what, "scope is not a string; ignored");
                Vec::new()
            }
        };
        Ok(ChatToken {
            access_token,
            refresh_token: self.refresh_token.filter(usable_refresh_token),
            token_type,
            scopes,
            expires_in,
            obtained_at: SystemTime::now(),
        })
    }
}

impl ChatToken {
    /// Parses the fragment of an implicit-flow redirect
    /// (`access_token=..&token_type=Bearer&scope=read`), with or without the leading `#`.
    ///
    /// ```
    /// use zd_auth::chat::{ChatScope, ChatToken};
    ///
    /// let token = ChatToken::from_implicit_fragment("#access_token=abc&token_type=Bearer&scope=read+chat")?;
    /// assert_eq!(token.access_token().expose_secret(), "abc");
    /// assert_eq!(token.scopes(), &[ChatScope::Read, ChatScope::Chat]);
    /// # Ok::<(), zd_auth::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::OAuth`] when the fragment carries `error=..`; [`ErrorKind::Decode`] when it
    /// has no access token or a token type other than Bearer. An unreadable `expires_in` is
    /// taken as no lifetime.
    pub fn from_implicit_fragment(fragment: &str) -> Result<Self, Error> {
        let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
        let raw: RawToken = serde_urlencoded::from_str(fragment)
            .map_err(|e| Error::new(ErrorKind::Decode, "implicit-flow fragment").with_source(e))?;
        // Nothing was sent; the fragment's words are bounded as a server's are.
        raw.into_token("implicit-flow fragment")
            .map_err(|e| e.redact_sent(&[]))
    }

    /// The access token.
    pub fn access_token(&self) -> &Secret {
        &self.access_token
    }

    /// The refresh token, when the grant issued one.
    pub fn refresh_token(&self) -> Option<&Secret> {
        self.refresh_token.as_ref()
    }

    /// The token type (`Bearer`).
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// The granted scopes.
    pub fn scopes(&self) -> &[ChatScope] {
        &self.scopes
    }

    /// The lifetime the server gave, if any, capped at ten years.
    pub fn expires_in(&self) -> Option<Duration> {
        self.expires_in
    }

    /// When the token expires, if the server said.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_in
            .and_then(|d| self.obtained_at.checked_add(d))
    }

    /// The token as fixed bearer credentials.
    ///
    /// # Errors
    /// Never in practice: the access token is known to be non-empty.
    pub fn to_credentials(&self) -> Result<StaticToken, Error> {
        StaticToken::bearer(self.access_token.clone())
    }

    /// The access token and its remaining lifetime, to seed a
    /// [`RefreshingToken`](crate::RefreshingToken).
    pub fn to_fetched(&self) -> FetchedToken {
        let remaining = self.expires_at().map(|at| {
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        FetchedToken {
            access_token: self.access_token.clone(),
            expires_in: remaining,
        }
    }
}

impl fmt::Debug for ChatToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatToken")
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("token_type", &self.token_type)
            .field("scopes", &self.scopes)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

impl fmt::Display for ChatToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ChatToken({} [REDACTED], scope={:?})",
            self.token_type,
            ChatScope::join(&self.scopes)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ChatToken, Error> {
        serde_json::from_str::<RawToken>(json)
            .unwrap()
            .into_token("test")
    }

    #[test]
    fn full_token() {
        let t = parse(
            r#"{"access_token":"a","refresh_token":"r","token_type":"Bearer","scope":"read write chat","expires_in":"3600"}"#,
        )
        .unwrap();
        assert_eq!(t.access_token().expose_secret(), "a");
        assert_eq!(t.refresh_token().unwrap().expose_secret(), "r");
        assert_eq!(
            t.scopes(),
            &[ChatScope::Read, ChatScope::Write, ChatScope::Chat]
        );
        assert_eq!(t.expires_in(), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn a_huge_expires_in_is_capped() {
        for json in [
            r#"{"access_token":"a","expires_in":18446744073709551615}"#,
            r#"{"access_token":"a","expires_in":"18446744073709551615"}"#,
        ] {
            let t = parse(json).unwrap();
            assert_eq!(t.expires_in(), Some(MAX_TOKEN_LIFETIME));
            assert!(t.expires_at().unwrap() > SystemTime::now());
            assert!(t.to_fetched().expires_in.unwrap() <= MAX_TOKEN_LIFETIME);
        }
    }

    #[test]
    fn fractional_expires_in_is_truncated() {
        for json in [
            r#"{"access_token":"a","expires_in":3600.0}"#,
            r#"{"access_token":"a","expires_in":3600.9}"#,
            r#"{"access_token":"a","expires_in":"3600.5"}"#,
        ] {
            assert_eq!(
                parse(json).unwrap().expires_in(),
                Some(Duration::from_secs(3600)),
                "{json}"
            );
        }
        let t = parse(r#"{"access_token":"a","expires_in":1e300}"#).unwrap();
        assert_eq!(t.expires_in(), Some(MAX_TOKEN_LIFETIME));
    }

    #[test]
    fn an_unreadable_expires_in_is_no_lifetime() {
        for json in [
            r#"{"access_token":"a","refresh_token":"r","expires_in":-1}"#,
            r#"{"access_token":"a","refresh_token":"r","expires_in":-1.5}"#,
            r#"{"access_token":"a","refresh_token":"r","expires_in":"-1"}"#,
            r#"{"access_token":"a","refresh_token":"r","expires_in":""}"#,
            r#"{"access_token":"a","refresh_token":"r","expires_in":"NaN"}"#,
            r#"{"access_token":"a","refresh_token":"r","expires_in":"inf"}"#,
            r#"{"access_token":"a","refresh_token":"r","expires_in":"3600s"}"#,
            r#"{"access_token":"a","refresh_token":"r","expires_in":"soon"}"#,
            r#"{"access_token":"a","refresh_token":"r","expires_in":true}"#,
            r#"{"access_token":"a","refresh_token":"r","expires_in":{"s":1}}"#,
        ] {
            let t = parse(json).unwrap_or_else(|e| panic!("{json}: {e:?}"));
            assert_eq!(t.expires_in(), None, "{json}");
            assert_eq!(t.to_fetched().expires_in, None, "{json}");
            assert_eq!(t.refresh_token().unwrap().expose_secret(), "r");
        }
    }

    #[test]
    fn a_scope_of_the_wrong_type_is_ignored() {
        for json in [
            r#"{"access_token":"a","scope":["read","chat"]}"#,
            r#"{"access_token":"a","scope":7}"#,
            r#"{"access_token":"a","scopes":{"read":true}}"#,
        ] {
            let t = parse(json).unwrap_or_else(|e| panic!("{json}: {e:?}"));
            assert!(t.scopes().is_empty(), "{json}");
            assert_eq!(t.access_token().expose_secret(), "a");
        }
    }

    #[test]
    fn bad_tokens() {
        assert_eq!(
            parse(r#"{"token_type":"Bearer"}"#).unwrap_err().json_path(),
            Some("access_token")
        );
        assert_eq!(
            parse(r#"{"access_token":""}"#).unwrap_err().kind(),
            ErrorKind::Decode
        );
        assert_eq!(
            parse(r#"{"access_token":"a","token_type":"mac"}"#)
                .unwrap_err()
                .kind(),
            ErrorKind::Decode
        );
        let err = parse(r#"{"error":"invalid_grant","error_description":"used"}"#).unwrap_err();
        assert_eq!(err.oauth().unwrap().code, OAuthErrorCode::InvalidGrant);
    }
}
