//! The Sunshine Conversations OAuth bridge (`https://oauth-bridge.zendesk.com/sc`), for
//! marketplace integrations: the authorize URL, code exchange, token info and revocation.
//!
//! Revocation is not served by the bridge: the OpenAPI document sends only authorize, token
//! and tokenInfo there, and `DELETE /oauth/authorization` to the account's own
//! `https://{subdomain}.zendesk.com/sc` (the subdomain [`OAuthBridge::token_info`] reports).
//!
//! Tokens issued here have `integration` scope and no expiry; they last until revoked.

use std::fmt;

use http::Method;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::transport::{Transport, base_url, endpoint, redact_userinfo};
use crate::{Error, ErrorKind, HttpConfig, Secret, StaticToken};

/// Where the bridge lives unless configured otherwise.
pub const DEFAULT_BASE_URL: &str = "https://oauth-bridge.zendesk.com/sc";

/// A client of the OAuth bridge.
///
/// ```
/// use zd_auth::sunshine::bridge::OAuthBridge;
///
/// let bridge = OAuthBridge::new()?;
/// let url = bridge.authorize_url("my_integration", Some("xyz"), None)?;
/// assert_eq!(
///     url.as_str(),
///     "https://oauth-bridge.zendesk.com/sc/oauth/authorize?response_type=code&client_id=my_integration&state=xyz"
/// );
/// # Ok::<(), zd_auth::Error>(())
/// ```
///
/// ```no_run
/// # async fn demo(code: &str) -> Result<(), zd_auth::Error> {
/// use zd_auth::Secret;
/// use zd_auth::sunshine::bridge::OAuthBridge;
///
/// let bridge = OAuthBridge::new()?;
/// let token = bridge
///     .exchange_code(code, "my_integration", &Secret::new("client secret"))
///     .await?;
/// let info = bridge.token_info(token.access_token()).await?;
/// println!("app {} on {:?}", info.id, info.subdomain);
/// // Later, on uninstall:
/// if let Some(subdomain) = &info.subdomain {
///     bridge.revoke(subdomain, token.access_token()).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OAuthBridge {
    base: Url,
    /// Where `revoke` goes instead of the subdomain's host (an emulator, a test server).
    api_base: Option<Url>,
    transport: Transport,
}

/// The bridge's answer to a code exchange.
#[derive(Clone)]
pub struct BridgeToken {
    access_token: Secret,
    token_type: String,
}

impl BridgeToken {
    /// The access token (a JWT with `integration` scope).
    pub fn access_token(&self) -> &Secret {
        &self.access_token
    }

    /// The token type (`Bearer`).
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// The token as bearer credentials for the Sunshine client.
    ///
    /// # Errors
    /// Never in practice: the token is known to be non-empty.
    pub fn to_credentials(&self) -> Result<StaticToken, Error> {
        StaticToken::bearer(self.access_token.clone())
    }
}

impl fmt::Debug for BridgeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BridgeToken")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .finish()
    }
}

impl fmt::Display for BridgeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BridgeToken({} [REDACTED])", self.token_type)
    }
}

/// The app an OAuth token is linked to (`GET /v2/tokenInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct TokenInfo {
    /// The app id, for `/v2/apps/{appId}/...` calls.
    pub id: String,
    /// The app's display name.
    #[serde(default, rename = "displayName")]
    pub display_name: Option<String>,
    /// The Zendesk subdomain, for the `https://{subdomain}.zendesk.com/sc` host.
    #[serde(default)]
    pub subdomain: Option<String>,
}

#[derive(Deserialize)]
struct TokenInfoBody {
    app: TokenInfo,
}

#[derive(Serialize)]
struct ExchangeBody<'a> {
    code: &'a str,
    grant_type: &'static str,
    client_id: &'a str,
    client_secret: &'a str,
}

#[derive(Deserialize)]
struct ExchangeAnswer {
    access_token: Secret,
    #[serde(default)]
    token_type: Option<String>,
}

impl OAuthBridge {
    /// A client of [`DEFAULT_BASE_URL`].
    ///
    /// # Errors
    /// [`ErrorKind::Transport`] if TLS cannot be set up.
    pub fn new() -> Result<Self, Error> {
        Ok(Self {
            base: base_url(DEFAULT_BASE_URL)?,
            api_base: None,
            transport: Transport::new(HttpConfig::default())?,
        })
    }

    /// Talks to another server (an emulator) for authorize, token and tokenInfo. `https`, or
    /// `http` on loopback.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an unusable URL.
    pub fn with_base_url(mut self, url: &str) -> Result<Self, Error> {
        self.base = base_url(url)?;
        Ok(self)
    }

    /// Sends [`OAuthBridge::revoke`] to `url` (an emulator's Sunshine API, with its `/sc` if
    /// it has one) instead of `https://{subdomain}.zendesk.com/sc`. `https`, or `http` on
    /// loopback.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an unusable URL.
    pub fn with_api_base_url(mut self, url: &str) -> Result<Self, Error> {
        self.api_base = Some(base_url(url)?);
        Ok(self)
    }

    /// Replaces the timeout and body-size limits.
    ///
    /// # Errors
    /// [`ErrorKind::Transport`] if TLS cannot be set up.
    pub fn with_http_config(mut self, config: HttpConfig) -> Result<Self, Error> {
        self.transport = Transport::new(config)?;
        Ok(self)
    }

    /// `GET {base}/oauth/authorize?response_type=code&client_id=..[&state=..][&redirect_uri=..]`,
    /// where to send the user's browser.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an empty client id.
    pub fn authorize_url(
        &self,
        client_id: &str,
        state: Option<&str>,
        redirect_uri: Option<&str>,
    ) -> Result<Url, Error> {
        if client_id.is_empty() {
            return Err(Error::new(ErrorKind::InvalidInput, "client_id is empty"));
        }
        let mut url = endpoint(&self.base, "/oauth/authorize")?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("response_type", "code");
            query.append_pair("client_id", client_id);
            if let Some(state) = state {
                query.append_pair("state", state);
            }
            if let Some(uri) = redirect_uri {
                query.append_pair("redirect_uri", uri);
            }
        }
        Ok(url)
    }

    /// Exchanges the code from the authorize redirect: `POST {base}/oauth/token` with a JSON
    /// body.
    ///
    /// # Errors
    /// [`ErrorKind::EmptySecret`], [`ErrorKind::InvalidInput`] for empty arguments;
    /// [`ErrorKind::OAuth`], [`ErrorKind::HttpStatus`], [`ErrorKind::Decode`],
    /// [`ErrorKind::Transport`], [`ErrorKind::Timeout`].
    pub async fn exchange_code(
        &self,
        code: &str,
        client_id: &str,
        client_secret: &Secret,
    ) -> Result<BridgeToken, Error> {
        if code.is_empty() || client_id.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "code and client_id are required",
            ));
        }
        if client_secret.is_empty() {
            return Err(Error::new(ErrorKind::EmptySecret, "client_secret is empty"));
        }
        let what = "POST /oauth/token";
        let body = ExchangeBody {
            code,
            grant_type: "authorization_code",
            client_id,
            client_secret: client_secret.expose_secret(),
        };
        let body = Secret::new(
            serde_json::to_string(&body)
                .map_err(|e| Error::new(ErrorKind::InvalidInput, what).with_source(e))?,
        );
        let url = endpoint(&self.base, "/oauth/token")?;
        let response = self
            .transport
            .send(
                Method::POST,
                &url,
                None,
                Some(("application/json", body.expose_secret().as_bytes().to_vec())),
            )
            .await?;
        let answer: ExchangeAnswer = response.json(what, &[code, client_secret.expose_secret()])?;
        if answer.access_token.is_empty() {
            return Err(
                Error::new(ErrorKind::Decode, format!("{what}: empty access token"))
                    .with_json_path("access_token".to_owned()),
            );
        }
        let token_type = answer.token_type.unwrap_or_else(|| "Bearer".to_owned());
        if !token_type.eq_ignore_ascii_case("bearer") {
            return Err(Error::new(
                ErrorKind::Decode,
                format!("{what}: token type {token_type} is not Bearer"),
            )
            .with_json_path("token_type".to_owned()));
        }
        Ok(BridgeToken {
            access_token: answer.access_token,
            token_type,
        })
    }

    /// The app linked to `access_token` (`GET {base}/v2/tokenInfo`); also a validity check.
    ///
    /// # Errors
    /// [`ErrorKind::HttpStatus`] (401 for a revoked token), [`ErrorKind::Decode`],
    /// [`ErrorKind::Transport`], [`ErrorKind::Timeout`].
    pub async fn token_info(&self, access_token: &Secret) -> Result<TokenInfo, Error> {
        let url = endpoint(&self.base, "/v2/tokenInfo")?;
        let auth = bearer(access_token)?;
        let response = self
            .transport
            .send(Method::GET, &url, Some(&auth), None)
            .await?;
        Ok(response
            .json::<TokenInfoBody>("GET /v2/tokenInfo", &[access_token.expose_secret()])?
            .app)
    }

    /// Revokes the integration behind `access_token`: `DELETE
    /// https://{subdomain}.zendesk.com/sc/oauth/authorization` (not the bridge: see the
    /// [module docs](self)). Zendesk removes the integration and its webhooks. `subdomain` is
    /// the account's, as [`TokenInfo::subdomain`] gives it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a subdomain that is not one DNS label;
    /// [`ErrorKind::EmptySecret`]; [`ErrorKind::HttpStatus`], [`ErrorKind::Transport`],
    /// [`ErrorKind::Timeout`].
    pub async fn revoke(&self, subdomain: &str, access_token: &Secret) -> Result<(), Error> {
        let url = self.revoke_url(subdomain)?;
        let auth = bearer(access_token)?;
        let response = self
            .transport
            .send(Method::DELETE, &url, Some(&auth), None)
            .await?;
        if response.status.is_success() {
            Ok(())
        } else {
            Err(response.error(
                "DELETE /oauth/authorization",
                &[access_token.expose_secret()],
            ))
        }
    }
}

impl OAuthBridge {
    fn revoke_url(&self, subdomain: &str) -> Result<Url, Error> {
        // The subdomain becomes part of a host that receives the bearer token: anything but
        // one plain DNS label (`evil.example/x#`, say) could send the token elsewhere.
        let label = subdomain.as_bytes();
        let plain_label = (1..=63).contains(&label.len())
            && label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && label.first() != Some(&b'-')
            && label.last() != Some(&b'-');
        if !plain_label {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "subdomain must be one DNS label (letters, digits, inner hyphens)",
            ));
        }
        let base = match &self.api_base {
            Some(base) => base.clone(),
            None => base_url(&format!("https://{subdomain}.zendesk.com/sc"))?,
        };
        endpoint(&base, "/oauth/authorization")
    }
}

fn bearer(token: &Secret) -> Result<Secret, Error> {
    if token.is_empty() {
        return Err(Error::new(ErrorKind::EmptySecret, "access token is empty"));
    }
    Ok(Secret::new(format!("Bearer {}", token.expose_secret())))
}

impl fmt::Debug for OAuthBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthBridge")
            .field("base", &redact_userinfo(self.base.as_str()))
            .field(
                "api_base",
                &self.api_base.as_ref().map(|u| redact_userinfo(u.as_str())),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoke_goes_to_the_subdomain_not_the_bridge() {
        let bridge = OAuthBridge::new().unwrap();
        assert_eq!(
            bridge.revoke_url("acme-2").unwrap().as_str(),
            "https://acme-2.zendesk.com/sc/oauth/authorization"
        );
        for bad in [
            "",
            "-acme",
            "acme-",
            "evil.example/x#",
            "a b",
            "acme.zendesk.com",
        ] {
            assert_eq!(
                bridge.revoke_url(bad).unwrap_err().kind(),
                ErrorKind::InvalidInput,
                "{bad:?}"
            );
        }
        let emulated = bridge.with_api_base_url("http://127.0.0.1:9/sc").unwrap();
        assert_eq!(
            emulated.revoke_url("acme").unwrap().as_str(),
            "http://127.0.0.1:9/sc/oauth/authorization"
        );
    }

    #[test]
    fn userinfo_in_base_urls_is_not_printed() {
        let bridge = OAuthBridge::new()
            .unwrap()
            .with_base_url("https://proxy-user:hunter2@bridge.example/sc")
            .unwrap()
            .with_api_base_url("https://proxy-user:hunter2@api.example/sc")
            .unwrap();
        let printed = format!("{bridge:?} {bridge:#?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("proxy-user"), "{printed}");
    }
}
