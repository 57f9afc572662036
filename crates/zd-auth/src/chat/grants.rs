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
/// Fetches may overlap (called directly, or through `RefreshingToken` once a refresh outlives
/// its take-up bound): each sends the refresh token in hand. Of two answers to the same token,
/// the one that arrives last is kept (the server's latest, as far as the client can tell); an
/// answer that arrives after the token it answered was rotated twice over leaves the newer
/// token in place.
///
/// A rotated refresh token replaces the one the application stored: the server has consumed
/// that one, so after a restart it would fail. Save each new one as it comes with
/// [`RefreshGrant::on_rotation`]:
///
/// ```no_run
/// # fn save(_: &str) {}
/// # async fn f(client: zd_auth::chat::OAuthClient, token: zd_auth::chat::ChatToken, stored: zd_auth::Secret) {
/// use zd_auth::RefreshingToken;
/// use zd_auth::chat::RefreshGrant;
///
/// let grant = RefreshGrant::new(client, stored).on_rotation(|next| save(next.expose_secret()));
/// let credentials = RefreshingToken::with_token(token.to_fetched(), grant);
/// # }
/// ```
pub struct RefreshGrant {
    client: OAuthClient,
    refresh_token: Mutex<Held>,
    on_rotation: Option<SaveRotated>,
    /// Held from storing a token until it is handed to `on_rotation`, so that overlapping
    /// refreshes hand over their tokens in the order they were stored (the last one handed
    /// over is the one in hand). Apart from `refresh_token`, which `on_rotation` may read.
    rotating: Mutex<()>,
}

/// What [`RefreshGrant::on_rotation`] calls.
type SaveRotated = Box<dyn Fn(&Secret) + Send + Sync>;

/// The refresh token in hand and its generation: how many rotations led to it. A token and
/// the one a sibling answer (to the same refresh) brought share a generation.
struct Held {
    token: Secret,
    generation: u64,
}

impl RefreshGrant {
    /// A source renewing with `refresh_token`.
    pub fn new(client: OAuthClient, refresh_token: Secret) -> Self {
        Self {
            client,
            refresh_token: Mutex::new(Held {
                token: refresh_token,
                generation: 0,
            }),
            on_rotation: None,
            rotating: Mutex::new(()),
        }
    }

    /// Calls `save` with each refresh token the server rotates in, once it replaces the one
    /// in hand (an answer that lost to a newer one is not handed over), so the application
    /// can store it. Called on the refresh's task, under a lock that orders the saves: keep it
    /// short, do not block on a refresh of this grant in it, and do not panic (the refresh
    /// would then fail as the source's panic, its new access token lost).
    #[must_use]
    pub fn on_rotation(mut self, save: impl Fn(&Secret) + Send + Sync + 'static) -> Self {
        self.on_rotation = Some(Box::new(save));
        self
    }

    /// The refresh token in hand: the newest the server rotated in, or the one the grant
    /// started from.
    pub fn refresh_token(&self) -> Secret {
        self.current().0
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.refresh_token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn current(&self) -> (Secret, u64) {
        let held = self.held();
        (held.token.clone(), held.generation)
    }

    /// Stores `next`, rotated from the token of generation `used`, unless that token has been
    /// rotated twice over since: the stored one then descends from an answer to a later
    /// refresh. A sibling (another answer to the same token) is replaced: last arrived wins.
    fn keep(&self, next: &Secret, sent: &Secret, used: u64) {
        let _rotating = self
            .rotating
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut held = self.held();
        if held.generation <= used + 1 {
            if next == sent || held.token == *next {
                // The server answered with the token sent (nothing rotated), or a sibling
                // answer brought this one already.
                return;
            }
            held.token = next.clone();
            held.generation = used + 1;
            drop(held);
            if let Some(save) = &self.on_rotation {
                save(next);
            }
        } else {
            tracing::warn!(
                "a refresh was answered after its refresh token had been rotated twice over; keeping the newer one"
            );
        }
    }
}

impl TokenSource for RefreshGrant {
    fn fetch(&self) -> BoxFuture<'_, Result<FetchedToken, Error>> {
        Box::pin(async move {
            let (used, generation) = self.current();
            let token = self.client.refresh(&used).await;
            let rotated = match &token {
                Ok(token) => token.refresh_token(),
                // Kept even from an answer refused for the rest of it: the server may have
                // consumed the old refresh token, which would then fail every later refresh.
                Err(e) => e.rotated_refresh_token().inspect(|_| {
                    tracing::warn!(
                        "keeping the refresh token rotated in an answer that was refused"
                    );
                }),
            };
            if let Some(next) = rotated {
                self.keep(next, &used, generation);
            }
            // The grant holds the rotated token now; the error goes without it.
            Ok(token
                .map_err(Error::without_rotated_refresh_token)?
                .to_fetched())
        })
    }
}

impl fmt::Debug for RefreshGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshGrant")
            .field("client", &self.client)
            .field("refresh_token", &self.current().0)
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
