//! Token sources that renew Chat tokens for [`RefreshingToken`](crate::RefreshingToken).

use std::fmt;
use std::sync::Mutex;

use super::{ChatScope, OAuthClient};
use crate::{BoxFuture, Error, FetchedToken, Secret, TokenSource};

/// Renews with `grant_type=refresh_token`, keeping the newest refresh token when the server
/// rotates it.
///
/// The rotated token is stored when the answer arrives, so a fetch must not be dropped once
/// its request is out: the server may already have consumed the old token. Through
/// [`RefreshingToken`](crate::RefreshingToken) it is not, since each fetch runs on its own
/// task whatever happens to the caller that started it.
///
/// Fetches called directly may overlap: each sends the refresh token in hand, and an answer
/// that arrives after a newer token was stored leaves that newer token in place.
pub struct RefreshGrant {
    client: OAuthClient,
    refresh_token: Mutex<Secret>,
}

impl RefreshGrant {
    /// A source renewing with `refresh_token`.
    pub fn new(client: OAuthClient, refresh_token: Secret) -> Self {
        Self {
            client,
            refresh_token: Mutex::new(refresh_token),
        }
    }

    fn current(&self) -> Secret {
        self.refresh_token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl TokenSource for RefreshGrant {
    fn fetch(&self) -> BoxFuture<'_, Result<FetchedToken, Error>> {
        Box::pin(async move {
            let mut rotated = None;
            let used = self.current();
            let token = self.client.refresh_rotating(&used, &mut rotated).await;
            // Kept even from an answer refused for the rest of it: the server may have
            // consumed the old refresh token, which would then fail every later refresh.
            if let Some(next) = rotated {
                if token.is_err() {
                    tracing::warn!(
                        "keeping the refresh token rotated in an answer that was refused"
                    );
                }
                let mut kept = self.refresh_token.lock().unwrap_or_else(|p| p.into_inner());
                // Only over the token this fetch sent: a fetch that overlapped this one and
                // was answered first stored a newer token (which later fetches may have
                // rotated again), and this late answer's would put an older one back.
                if *kept == used {
                    *kept = next;
                } else {
                    tracing::warn!(
                        "a refresh was answered after a newer refresh token was stored; keeping the newer one"
                    );
                }
            }
            Ok(token?.to_fetched())
        })
    }
}

impl fmt::Debug for RefreshGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshGrant")
            .field("client", &self.client)
            .field("refresh_token", &self.current())
            .finish()
    }
}

/// Renews with `grant_type=client_credentials`.
#[derive(Debug)]
pub struct ClientCredentialsGrant {
    client: OAuthClient,
    scopes: Vec<ChatScope>,
}

impl ClientCredentialsGrant {
    /// A source asking for `scopes`.
    pub fn new(client: OAuthClient, scopes: Vec<ChatScope>) -> Self {
        Self { client, scopes }
    }
}

impl TokenSource for ClientCredentialsGrant {
    fn fetch(&self) -> BoxFuture<'_, Result<FetchedToken, Error>> {
        Box::pin(async move {
            let token = self.client.client_credentials(&self.scopes).await?;
            Ok(token.to_fetched())
        })
    }
}

impl fmt::Display for RefreshGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RefreshGrant({}, [REDACTED])", self.client.client_id())
    }
}

impl fmt::Display for ClientCredentialsGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientCredentialsGrant({})", self.client.client_id())
    }
}
