//! [`RefreshingToken`]: a bearer token renewed before it expires, one refresh at a time.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::{BoxFuture, Credentials, Error, Secret};

/// Default time before expiry at which a token is renewed.
const DEFAULT_MARGIN: Duration = Duration::from_secs(60);

/// The longest token lifetime believed (ten years): a server (or a hostile one) may send
/// `expires_in` up to `u64::MAX` seconds, which no clock can add.
pub(crate) const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 365 * 86_400);

/// A freshly obtained access token.
#[derive(Debug, Clone)]
pub struct FetchedToken {
    /// The bearer token.
    pub access_token: Secret,
    /// Lifetime from now; `None` when the server gave none (the token is then used until
    /// [`Credentials::invalidate`] is called). Lifetimes beyond ten years are taken as ten
    /// years.
    pub expires_in: Option<Duration>,
}

/// Where a [`RefreshingToken`] gets new tokens: a refresh-token grant, a client-credentials
/// grant, or anything else that can mint a bearer token.
pub trait TokenSource: Send + Sync + fmt::Debug + 'static {
    /// Obtains a new token.
    ///
    /// # Errors
    /// Whatever the token endpoint answers.
    fn fetch(&self) -> BoxFuture<'_, Result<FetchedToken, Error>>;
}

/// Bearer credentials that renew themselves shortly before expiry.
///
/// However many tasks call [`Credentials::authorization`] at once, at most one refresh is in
/// flight: the first caller to find the token stale refreshes while holding an async lock and
/// the others wait for its result. When that refresh fails, the tasks that were waiting for it
/// get a clone of its error instead of each trying again.
///
/// The token is renewed `margin` (default 60 s, at most half the lifetime) before it expires;
/// a token without a lifetime is kept until [`Credentials::invalidate`].
///
/// # Cancel safety
/// Dropping an `authorization()` future that is refreshing abandons that request; the next
/// caller starts a new one.
pub struct RefreshingToken {
    source: Box<dyn TokenSource>,
    state: Mutex<State>,
    attempts: AtomicU64,
    /// Refreshes finished (successfully or not); bumped under the lock.
    completed: AtomicU64,
    invalidated: AtomicBool,
    margin: Duration,
}

#[derive(Default)]
struct State {
    current: Option<Current>,
    /// The completion number and error of the last refresh, when it failed.
    failed: Option<(u64, Error)>,
}

struct Current {
    header: Secret,
    /// When the token expires and how long it lived, if the server said.
    expiry: Option<(Instant, Duration)>,
}

impl Current {
    fn is_fresh(&self, margin: Duration) -> bool {
        self.expiry.is_none_or(|(expires_at, lifetime)| {
            Instant::now()
                .checked_add(margin.min(lifetime / 2))
                .is_some_and(|renew_after| renew_after < expires_at)
        })
    }
}

impl From<FetchedToken> for Current {
    fn from(token: FetchedToken) -> Self {
        Self {
            header: Secret::new(format!("Bearer {}", token.access_token.expose_secret())),
            // Lifetimes are capped, so the addition only fails on a broken clock; the token is
            // then kept until invalidated, as one without a lifetime.
            expiry: token.expires_in.and_then(|lifetime| {
                let lifetime = lifetime.min(MAX_TOKEN_LIFETIME);
                Instant::now()
                    .checked_add(lifetime)
                    .map(|expires_at| (expires_at, lifetime))
            }),
        }
    }
}

impl RefreshingToken {
    /// Credentials that fetch their first token on first use.
    pub fn new(source: impl TokenSource) -> Self {
        Self {
            source: Box::new(source),
            state: Mutex::new(State::default()),
            attempts: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            invalidated: AtomicBool::new(false),
            margin: DEFAULT_MARGIN,
        }
    }

    /// Credentials that start from a token already in hand (from an authorization-code
    /// exchange, say) and renew it through `source`.
    pub fn with_token(token: FetchedToken, source: impl TokenSource) -> Self {
        let mut this = Self::new(source);
        this.state.get_mut().current = Some(Current::from(token));
        this
    }

    /// Renew this long before expiry (capped at half the token's lifetime).
    #[must_use]
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// How many refreshes have been started so far.
    pub fn refresh_count(&self) -> u64 {
        self.attempts.load(Ordering::Acquire)
    }

    async fn get(&self) -> Result<Secret, Error> {
        let seen = self.completed.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        let invalidated = self.invalidated.load(Ordering::Acquire);
        if let Some(current) = &state.current
            && !invalidated
            && current.is_fresh(self.margin)
        {
            return Ok(current.header.clone());
        }
        if let Some((completion, error)) = &state.failed
            && *completion > seen
        {
            // That refresh was started after we asked and it failed: report it rather than
            // sending the same failing request once per waiting task.
            return Err(error.clone());
        }
        let attempt = self.attempts.fetch_add(1, Ordering::AcqRel) + 1;
        tracing::debug!(attempt, "refreshing access token");
        let result = self.source.fetch().await;
        let completion = self.completed.fetch_add(1, Ordering::AcqRel) + 1;
        match result {
            Ok(token) => {
                let current = Current::from(token);
                let header = current.header.clone();
                state.current = Some(current);
                state.failed = None;
                self.invalidated.store(false, Ordering::Release);
                Ok(header)
            }
            Err(error) => {
                tracing::debug!(attempt, kind = ?error.kind(), "token refresh failed");
                state.failed = Some((completion, error.clone()));
                Err(error)
            }
        }
    }
}

impl Credentials for RefreshingToken {
    fn authorization(&self) -> BoxFuture<'_, Result<Secret, Error>> {
        Box::pin(self.get())
    }

    fn invalidate(&self) {
        self.invalidated.store(true, Ordering::Release);
    }
}

impl fmt::Debug for RefreshingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshingToken")
            .field("source", &self.source)
            .field("refreshes", &self.refresh_count())
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for RefreshingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshingToken(Bearer [REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::ErrorKind;

    #[derive(Debug, Default)]
    struct Counting {
        calls: AtomicUsize,
        fail: bool,
    }

    impl TokenSource for Arc<Counting> {
        fn fetch(&self) -> BoxFuture<'_, Result<FetchedToken, Error>> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                // Yield so that concurrent callers really queue up behind this refresh.
                tokio::time::sleep(Duration::from_millis(10)).await;
                if self.fail {
                    return Err(Error::new(ErrorKind::Transport, "down"));
                }
                Ok(FetchedToken {
                    access_token: Secret::new(format!("t{n}")),
                    expires_in: Some(Duration::from_secs(3600)),
                })
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn renews_before_expiry() {
        let source = Arc::new(Counting::default());
        let creds = RefreshingToken::new(source.clone());
        assert_eq!(
            creds.authorization().await.unwrap().expose_secret(),
            "Bearer t1"
        );
        tokio::time::advance(Duration::from_secs(3600 - 61)).await;
        assert_eq!(
            creds.authorization().await.unwrap().expose_secret(),
            "Bearer t1"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            creds.authorization().await.unwrap().expose_secret(),
            "Bearer t2"
        );
        creds.invalidate();
        assert_eq!(
            creds.authorization().await.unwrap().expose_secret(),
            "Bearer t3"
        );
        assert_eq!(source.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_endless_lifetime_is_capped_not_a_panic() {
        let source = Arc::new(Counting::default());
        let creds = RefreshingToken::with_token(
            FetchedToken {
                access_token: Secret::new("forever"),
                expires_in: Some(Duration::MAX),
            },
            source.clone(),
        );
        assert_eq!(
            creds.authorization().await.unwrap().expose_secret(),
            "Bearer forever"
        );
        // Capped at ten years: renewed a minute before that, not never.
        tokio::time::advance(MAX_TOKEN_LIFETIME - Duration::from_secs(59)).await;
        assert_eq!(
            creds.authorization().await.unwrap().expose_secret(),
            "Bearer t1"
        );
    }

    /// The first fetch never finishes (until its caller gives up); later ones answer at once.
    #[derive(Debug, Default)]
    struct StallsFirst {
        calls: AtomicUsize,
        first_started: tokio::sync::Notify,
    }

    impl TokenSource for Arc<StallsFirst> {
        fn fetch(&self) -> BoxFuture<'_, Result<FetchedToken, Error>> {
            Box::pin(async move {
                if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    self.first_started.notify_one();
                    std::future::pending::<()>().await;
                }
                Ok(FetchedToken {
                    access_token: Secret::new("second"),
                    expires_in: None,
                })
            })
        }
    }

    #[tokio::test]
    async fn a_cancelled_refresh_does_not_block_the_next_caller() {
        let source = Arc::new(StallsFirst::default());
        let creds = Arc::new(RefreshingToken::new(source.clone()));
        let leader = tokio::spawn({
            let creds = creds.clone();
            async move { creds.authorization().await }
        });
        source.first_started.notified().await;
        leader.abort();
        assert!(leader.await.unwrap_err().is_cancelled());
        assert_eq!(
            creds.authorization().await.unwrap().expose_secret(),
            "Bearer second"
        );
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_share_a_failed_refresh() {
        let source = Arc::new(Counting {
            fail: true,
            ..Counting::default()
        });
        let creds = Arc::new(RefreshingToken::new(source.clone()));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let creds = creds.clone();
                tokio::spawn(async move { creds.authorization().await })
            })
            .collect();
        for task in tasks {
            assert_eq!(
                task.await.unwrap().unwrap_err().kind(),
                ErrorKind::Transport
            );
        }
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        // A later caller tries again.
        assert!(creds.authorization().await.is_err());
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }
}
