//! The Chat OAuth client: `POST {base}/oauth2/token`, form-encoded.

use std::fmt;

use http::Method;
use url::Url;

use super::token::{RawToken, RotatedRefreshToken};
use super::{
    AuthorizeUrl, ChatScope, ChatToken, ClientCredentialsGrant, RefreshGrant, ResponseType,
};
use crate::transport::{Transport, base_url, endpoint, redact_userinfo};
use crate::{Error, ErrorKind, HttpConfig, RefreshingToken, Secret};

/// Where Chat OAuth lives unless configured otherwise.
pub const DEFAULT_BASE_URL: &str = "https://www.zopim.com";

const FORM: &str = "application/x-www-form-urlencoded";

/// Token request fields whose values are secrets (besides `client_secret`).
const SECRET_FIELDS: [&str; 3] = ["code", "password", "refresh_token"];

/// A Chat OAuth client (created in the Chat dashboard, not in Support's Admin Center).
///
/// ```no_run
/// # async fn demo() -> Result<(), zd_auth::Error> {
/// use zd_auth::Credentials;
/// use zd_auth::chat::{ChatScope, OAuthClient};
///
/// let client = OAuthClient::new("my_client")?.with_secret("my_secret")?;
/// let token = client
///     .client_credentials(&[ChatScope::Read, ChatScope::Write, ChatScope::Chat])
///     .await?;
/// let creds = token.to_credentials()?;
/// let _header = creds.authorization().await?; // "Bearer ..."
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OAuthClient {
    base: Url,
    client_id: String,
    client_secret: Option<Secret>,
    transport: Transport,
}

impl OAuthClient {
    /// A public client (no secret), talking to [`DEFAULT_BASE_URL`].
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an empty client id; [`ErrorKind::Transport`] if TLS
    /// cannot be set up.
    pub fn new(client_id: impl Into<String>) -> Result<Self, Error> {
        let client_id = client_id.into();
        if client_id.is_empty() {
            return Err(Error::new(ErrorKind::InvalidInput, "client_id is empty"));
        }
        Ok(Self {
            base: base_url(DEFAULT_BASE_URL)?,
            client_id,
            client_secret: None,
            transport: Transport::new(HttpConfig::default())?,
        })
    }

    /// Adds the client secret (confidential clients; required for `client_credentials`).
    ///
    /// # Errors
    /// [`ErrorKind::EmptySecret`] for an empty secret.
    pub fn with_secret(mut self, secret: impl Into<Secret>) -> Result<Self, Error> {
        self.client_secret = Some(secret.into().require("client_secret")?);
        Ok(self)
    }

    /// Talks to another server (an emulator, a proxy). `https`, or `http` on loopback.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an unusable URL.
    pub fn with_base_url(mut self, url: &str) -> Result<Self, Error> {
        self.base = base_url(url)?;
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

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Starts building the browser authorization URL.
    pub fn authorize_url(&self, response_type: ResponseType) -> AuthorizeUrl {
        AuthorizeUrl::new(self.base.clone(), response_type, self.client_id.clone())
    }

    /// Exchanges an authorization code (`grant_type=authorization_code`).
    ///
    /// # Errors
    /// [`ErrorKind::OAuth`] (e.g. `invalid_grant` for a used or expired code),
    /// [`ErrorKind::HttpStatus`], [`ErrorKind::Decode`], [`ErrorKind::Transport`],
    /// [`ErrorKind::Timeout`].
    pub async fn exchange_code(&self, code: &str, redirect_uri: &str) -> Result<ChatToken, Error> {
        self.token(
            "authorization_code",
            &[("code", code), ("redirect_uri", redirect_uri)],
        )
        .await
    }

    /// Signs in as an agent (`grant_type=password`; Chat-only accounts).
    ///
    /// # Errors
    /// As [`OAuthClient::exchange_code`]; [`ErrorKind::EmptySecret`] for an empty password.
    pub async fn password(
        &self,
        username: &str,
        password: &Secret,
        scopes: &[ChatScope],
    ) -> Result<ChatToken, Error> {
        if password.is_empty() {
            return Err(Error::new(ErrorKind::EmptySecret, "password is empty"));
        }
        let scope = ChatScope::join(scopes);
        let mut fields = vec![
            ("username", username),
            ("password", password.expose_secret()),
        ];
        if !scope.is_empty() {
            fields.push(("scope", &scope));
        }
        self.token("password", &fields).await
    }

    /// Gets a token for the client itself (`grant_type=client_credentials`; the client must
    /// be `confidential`, or the server answers `invalid_client`).
    ///
    /// # Errors
    /// As [`OAuthClient::exchange_code`]; [`ErrorKind::EmptySecret`] without a client secret.
    pub async fn client_credentials(&self, scopes: &[ChatScope]) -> Result<ChatToken, Error> {
        if self.client_secret.is_none() {
            return Err(Error::new(
                ErrorKind::EmptySecret,
                "client_credentials needs a client_secret",
            ));
        }
        let scope = ChatScope::join(scopes);
        let mut fields = Vec::new();
        if !scope.is_empty() {
            fields.push(("scope", scope.as_str()));
        }
        self.token("client_credentials", &fields).await
    }

    /// Renews a token (`grant_type=refresh_token`).
    ///
    /// When the server rotates the refresh token, the new one is in the answer's
    /// [`ChatToken::refresh_token`]; an answer refused for the rest still hands it over, in
    /// [`Error::rotated_refresh_token`], since the one sent may be spent.
    ///
    /// # Errors
    /// As [`OAuthClient::exchange_code`]; [`ErrorKind::EmptySecret`] for an empty token.
    pub async fn refresh(&self, refresh_token: &Secret) -> Result<ChatToken, Error> {
        if refresh_token.is_empty() {
            return Err(Error::new(ErrorKind::EmptySecret, "refresh_token is empty"));
        }
        self.token(
            "refresh_token",
            &[("refresh_token", refresh_token.expose_secret())],
        )
        .await
    }

    /// Credentials that start from `token` and renew it with its refresh token.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `token` has no refresh token.
    pub fn into_refreshing(self, token: &ChatToken) -> Result<RefreshingToken, Error> {
        let refresh = token.refresh_token().cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                "token has no refresh_token to renew it with",
            )
        })?;
        Ok(RefreshingToken::with_token(
            token.to_fetched(),
            RefreshGrant::new(self, refresh),
        ))
    }

    /// Credentials that obtain and renew tokens with the client-credentials grant.
    pub fn into_client_credentials(self, scopes: Vec<ChatScope>) -> RefreshingToken {
        RefreshingToken::new(ClientCredentialsGrant::new(self, scopes))
    }

    /// Asks the token endpoint. An answer with a success status that is refused for the rest
    /// hands over the refresh token it carries in [`Error::rotated_refresh_token`]: the server
    /// may have consumed the grant sent (a refresh token, a code) already.
    async fn token(&self, grant_type: &str, fields: &[(&str, &str)]) -> Result<ChatToken, Error> {
        let what = format!("POST /oauth2/token ({grant_type})");
        let mut form: Vec<(&str, &str)> =
            vec![("grant_type", grant_type), ("client_id", &self.client_id)];
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret.expose_secret()));
        }
        form.extend_from_slice(fields);
        let body = Secret::new(
            serde_urlencoded::to_string(&form)
                .map_err(|e| Error::new(ErrorKind::InvalidInput, what.clone()).with_source(e))?,
        );
        let url = endpoint(&self.base, "/oauth2/token")?;
        let response = self
            .transport
            .send(
                Method::POST,
                &url,
                None,
                Some((FORM, body.expose_secret().as_bytes().to_vec())),
            )
            .await?;
        // What the server must not be able to put into our logs by echoing it back.
        let sent: Vec<&str> = self
            .client_secret
            .iter()
            .map(Secret::expose_secret)
            .chain(
                fields
                    .iter()
                    .filter(|(name, _)| SECRET_FIELDS.contains(name))
                    .map(|(_, value)| *value),
            )
            .collect();
        let keep_rotated = |e: Error, rotated: Option<Secret>| match rotated {
            Some(next) => e.with_rotated_refresh_token(next),
            None => e,
        };
        let raw = match response.json::<RawToken>(&what, &sent) {
            Ok(raw) => raw,
            Err(e) => {
                // A second, narrower look: the part that failed may not be the refresh token.
                let rotated = response
                    .json::<RotatedRefreshToken>(&what, &sent)
                    .ok()
                    .and_then(RotatedRefreshToken::into_secret);
                return Err(keep_rotated(e, rotated));
            }
        };
        // Taken before the rest is checked, which may refuse the answer.
        let rotated = raw.refresh_token().cloned();
        raw.into_token(&what)
            .map_err(|e| keep_rotated(e.redact_sent(&sent), rotated))
    }
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("base", &redact_userinfo(self.base.as_str()))
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OAuthClient({} at {})",
            self.client_id,
            redact_userinfo(self.base.as_str())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_in_the_base_url_is_not_printed() {
        let client = OAuthClient::new("id")
            .unwrap()
            .with_base_url("https://proxy-user:hunter2@proxy.example/")
            .unwrap();
        let authorize = client.authorize_url(ResponseType::Code);
        let printed = format!("{client:?} {client:#?} {client} {authorize:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("proxy-user"), "{printed}");
        assert!(printed.contains("proxy.example"), "{printed}");
    }
}
