//! The browser authorization URL.

use std::fmt;

use url::Url;

use super::ChatScope;
use crate::Error;
use crate::transport::{endpoint, redact_userinfo};

/// What the authorization redirect carries back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseType {
    /// `code`: an authorization code to exchange with
    /// [`OAuthClient::exchange_code`](super::OAuthClient::exchange_code).
    Code,
    /// `token`: the implicit flow; the access token comes back in the redirect's fragment
    /// (see [`ChatToken::from_implicit_fragment`](super::ChatToken::from_implicit_fragment)).
    Token,
}

impl ResponseType {
    /// The wire form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::Token => "token",
        }
    }
}

/// Builds `GET {base}/oauth2/authorizations/new?response_type=..&client_id=..&redirect_uri=..
/// &scope=..&state=..&subdomain=..`, the page to send the agent's browser to.
///
/// Made by [`OAuthClient::authorize_url`](super::OAuthClient::authorize_url).
///
/// ```
/// use zd_auth::chat::{ChatScope, OAuthClient, ResponseType};
///
/// let client = OAuthClient::new("my_client")?;
/// let url = client
///     .authorize_url(ResponseType::Code)
///     .redirect_uri("https://example.org/callback")
///     .scopes([ChatScope::Read, ChatScope::Write, ChatScope::Chat])
///     .state("xyz")
///     .subdomain("acme")
///     .build()?;
/// assert_eq!(
///     url.as_str(),
///     "https://www.zopim.com/oauth2/authorizations/new?response_type=code&client_id=my_client\
///      &redirect_uri=https%3A%2F%2Fexample.org%2Fcallback&scope=read%20write%20chat&state=xyz\
///      &subdomain=acme"
/// );
/// # Ok::<(), zd_auth::Error>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct AuthorizeUrl {
    base: Url,
    response_type: ResponseType,
    client_id: String,
    redirect_uri: Option<String>,
    scopes: Vec<ChatScope>,
    state: Option<String>,
    subdomain: Option<String>,
}

impl AuthorizeUrl {
    pub(crate) fn new(base: Url, response_type: ResponseType, client_id: String) -> Self {
        Self {
            base,
            response_type,
            client_id,
            redirect_uri: None,
            scopes: Vec::new(),
            state: None,
            subdomain: None,
        }
    }

    /// Where the browser is sent back to (must be registered with the client).
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// The scopes to ask for, replacing any set before.
    pub fn scopes(mut self, scopes: impl IntoIterator<Item = ChatScope>) -> Self {
        self.scopes = scopes.into_iter().collect();
        self
    }

    /// An opaque value returned in the redirect, to tie it to this request (CSRF defence).
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }

    /// The Zendesk subdomain of the account, when known.
    pub fn subdomain(mut self, subdomain: impl Into<String>) -> Self {
        self.subdomain = Some(subdomain.into());
        self
    }

    /// The URL.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) if the base URL cannot take
    /// the path.
    pub fn build(&self) -> Result<Url, Error> {
        let mut url = endpoint(&self.base, "/oauth2/authorizations/new")?;
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("response_type", self.response_type.as_str());
        query.append_pair("client_id", &self.client_id);
        if let Some(uri) = &self.redirect_uri {
            query.append_pair("redirect_uri", uri);
        }
        if !self.scopes.is_empty() {
            query.append_pair("scope", &ChatScope::join(&self.scopes));
        }
        if let Some(state) = &self.state {
            query.append_pair("state", state);
        }
        if let Some(subdomain) = &self.subdomain {
            query.append_pair("subdomain", subdomain);
        }
        // Form encoding writes spaces as `+` (a literal `+` is `%2B`); the Chat docs show
        // `%20`, which every decoder reads as a space.
        url.set_query(Some(&query.finish().replace('+', "%20")));
        Ok(url)
    }
}

impl fmt::Debug for AuthorizeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizeUrl")
            .field("base", &redact_userinfo(self.base.as_str()))
            .field("response_type", &self.response_type)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("state", &self.state)
            .field("subdomain", &self.subdomain)
            .finish()
    }
}
