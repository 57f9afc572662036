//! The token a Chat OAuth grant returns.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

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
/// (`3600.0`) are accepted and truncated.
#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Whole(u64),
    Fractional(f64),
    Text(String),
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
    scope: Option<String>,
    #[serde(default)]
    expires_in: Option<Seconds>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

impl RawToken {
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
                &format!("token type {token_type} is not Bearer"),
                "token_type",
            ));
        }
        let expires_in = match self.expires_in {
            None => None,
            Some(Seconds::Whole(n)) => Some(Duration::from_secs(n)),
            Some(Seconds::Fractional(f)) => Some(
                truncated_seconds(f)
                    .ok_or_else(|| decode("expires_in is negative or not finite", "expires_in"))?,
            ),
            Some(Seconds::Text(s)) => {
                let s = s.trim();
                match s.parse::<u64>() {
                    Ok(n) => Some(Duration::from_secs(n)),
                    Err(not_whole) => Some(
                        s.parse::<f64>()
                            .ok()
                            .and_then(truncated_seconds)
                            .ok_or_else(|| {
                                decode("expires_in is not a number of seconds", "expires_in")
                                    .with_source(not_whole)
                            })?,
                    ),
                }
            }
        }
        // Capped so that adding it to a clock cannot overflow.
        .map(|lifetime| lifetime.min(MAX_TOKEN_LIFETIME));
        Ok(ChatToken {
            access_token,
            refresh_token: self.refresh_token.filter(|t| !t.is_empty()),
            token_type,
            scopes: self
                .scope
                .as_deref()
                .map(ChatScope::parse_list)
                .unwrap_or_default(),
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
    /// has no access token or a bad `expires_in`.
    pub fn from_implicit_fragment(fragment: &str) -> Result<Self, Error> {
        let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
        let raw: RawToken = serde_urlencoded::from_str(fragment)
            .map_err(|e| Error::new(ErrorKind::Decode, "implicit-flow fragment").with_source(e))?;
        raw.into_token("implicit-flow fragment")
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
        for json in [
            r#"{"access_token":"a","expires_in":-1.5}"#,
            r#"{"access_token":"a","expires_in":"-1"}"#,
            r#"{"access_token":"a","expires_in":"NaN"}"#,
            r#"{"access_token":"a","expires_in":"inf"}"#,
        ] {
            let err = parse(json).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Decode, "{json}");
            assert_eq!(err.json_path(), Some("expires_in"));
        }
    }

    #[test]
    fn a_bad_expires_in_keeps_its_parse_error() {
        use std::error::Error as _;
        let err = parse(r#"{"access_token":"a","expires_in":"soon"}"#).unwrap_err();
        assert_eq!(err.json_path(), Some("expires_in"));
        let source = err.source().expect("the parse error is kept");
        assert!(source.is::<std::num::ParseIntError>(), "{source:?}");
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
        assert_eq!(
            parse(r#"{"access_token":"a","expires_in":"soon"}"#)
                .unwrap_err()
                .kind(),
            ErrorKind::Decode
        );
        let err = parse(r#"{"error":"invalid_grant","error_description":"used"}"#).unwrap_err();
        assert_eq!(err.oauth().unwrap().code, OAuthErrorCode::InvalidGrant);
    }
}
