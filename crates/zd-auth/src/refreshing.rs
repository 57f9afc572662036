//! [`RefreshingToken`]: a bearer token renewed before it expires, one refresh at a time.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{BoxFuture, Credentials, Error, ErrorKind, Secret};

/// Default time before expiry at which a token is renewed.
const DEFAULT_MARGIN: Duration = Duration::from_secs(60);

/// How long after a failed refresh callers are answered without asking the token endpoint
/// again, when it sent no `Retry-After`: long enough that a crowd of callers does not turn an
/// outage into a request storm, short enough that a transient failure heals quickly.
const FAILURE_COOL_DOWN: Duration = Duration::from_secs(5);

/// The longest a caller waits for a refresh another caller started and left: the built-in
/// sources give up long before, so only a refresh whose runtime is no longer driven gets here.
const TAKE_UP_LIMIT: Duration = Duration::from_secs(120);

/// The shortest cool-down, whatever `Retry-After` asks for: `Retry-After: 0` or a date
/// already past must not let every caller start a refresh of its own, back to back.
const MIN_FAILURE_COOL_DOWN: Duration = Duration::from_secs(1);

/// The longest cool-down, whatever `Retry-After` asks for: a token about to expire must not
/// be left unrenewed for long on one header's say-so.
const MAX_FAILURE_COOL_DOWN: Duration = Duration::from_secs(60);

/// How long after a failure that asking again cannot mend (`invalid_grant` for a revoked
/// refresh token, `invalid_client`, an answer that does not decode) callers are answered
/// without a request: each attempt would be a doomed POST, yet a fix on the server side
/// (a client re-enabled) should not need a restart. [`Credentials::invalidate`] ends it early.
const PERMANENT_FAILURE_COOL_DOWN: Duration = Duration::from_secs(5 * 60);

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
    /// The returned future should finish in bounded time (the built-in sources time out after
    /// [`HttpConfig::timeout`](crate::HttpConfig::timeout)): it runs to completion even when
    /// the caller that started it goes away, and later callers wait for it.
    ///
    /// # Errors
    /// Whatever the token endpoint answers.
    fn fetch(&self) -> BoxFuture<'_, Result<FetchedToken, Error>>;
}

/// Bearer credentials that renew themselves shortly before expiry.
///
/// However many tasks call [`Credentials::authorization`] at once, one refresh is in flight
/// (a second only once one left behind outlives the two-minute take-up bound below).
///
/// The token is renewed `margin` (default 60 s, at most half the lifetime) before it expires;
/// a token without a lifetime is kept until [`Credentials::invalidate`]. Within that window
/// callers keep getting the current token while one refresh runs behind them on a task of
/// its own (within a Tokio runtime): a slow token endpoint does not hold up requests a good
/// token can still make. Once no usable token is left (expired, or rejected through
/// [`Credentials::invalidate`]), the first caller refreshes while holding an async lock and
/// the others wait for its result; when that refresh fails, the tasks that were waiting for
/// it get a clone of its error instead of each trying again.
///
/// When a renewal fails while the current token has not expired yet (and the server has not
/// rejected it), callers keep getting the current token and the failure is logged at `warn`.
/// After a failure the token endpoint is left alone for a short cool-down (its `Retry-After`
/// kept between 1 s and 60 s, or 5 s without one): callers meanwhile get the still-valid token
/// or the last error, without a request. After a failure that retrying cannot mend (the
/// endpoint refused the request with an RFC 6749 code such as `invalid_grant`,
/// `invalid_client` or `invalid_scope`, see `refused_for_good`) the cool-down is five minutes,
/// unless [`Credentials::invalidate`] ends it.
///
/// # Cancel safety
/// Dropping an `authorization()` future never abandons a refresh it started. Within a Tokio
/// runtime the request runs on a spawned task, so it completes (and a refresh token the
/// server rotated is kept) even if every caller goes away, and writes what it brought (a
/// token, or a failure and its cool-down) as it finishes; the next caller takes up its result
/// instead of sending another request, waiting for it at most two minutes from its start
/// (all callers together). Taking one up needs a Tokio runtime with timers, as the built-in
/// sources do; a caller without a runtime asks anew instead of waiting. Without a runtime the
/// caller refreshes itself, and dropping it abandons that request.
pub struct RefreshingToken {
    source: Arc<dyn TokenSource>,
    /// The token and the last failure, written by each refresh as it finishes (on its own
    /// task, so even when nobody waits for it any more).
    book: Arc<Book>,
    /// Whoever holds this lock refreshes. It keeps the task of a refresh whose caller was
    /// dropped, for the next caller to take up.
    in_flight: Mutex<Option<InFlight>>,
    attempts: AtomicU64,
    margin: Duration,
}

/// What the refreshes brought.
#[derive(Default)]
struct Book {
    /// Only held for short sections without `.await`, so that [`Credentials::invalidate`],
    /// which is not async, can take it too.
    state: StdMutex<State>,
    /// Refreshes finished (successfully or not); bumped under `state`.
    completed: AtomicU64,
}

/// A refresh running on its own task; it answers what it wrote in the book.
struct InFlight {
    attempt: u64,
    task: JoinHandle<Result<Secret, Error>>,
    /// How long callers taking it up wait for it, all together: each caller that gave up
    /// early must not start the wait over.
    take_up_until: Instant,
}

#[derive(Default)]
struct State {
    current: Option<Current>,
    failed: Option<Failure>,
    /// The completion number of the refresh that brought `current`.
    current_completion: u64,
    /// The newest attempt written: one left behind that ends later must not overwrite it.
    recorded_attempt: u64,
}

/// The last refresh, when it failed.
struct Failure {
    /// Its completion number, to tell the tasks that waited for it.
    completion: u64,
    error: Error,
    /// Until then, callers are answered without a new request.
    quiet_until: Instant,
    /// Asking again cannot help by itself; only a caller's `invalidate` may shorten the wait.
    permanent: bool,
}

struct Current {
    header: Secret,
    /// When the token expires and how long it lived, if the server said.
    expiry: Option<(Instant, Duration)>,
    /// The server refused it: it must not be sent again, valid lifetime or not.
    rejected: bool,
}

impl Current {
    fn is_fresh(&self, margin: Duration) -> bool {
        !self.rejected
            && self.expiry.is_none_or(|(expires_at, lifetime)| {
                Instant::now()
                    .checked_add(margin.min(lifetime / 2))
                    .is_some_and(|renew_after| renew_after < expires_at)
            })
    }

    /// Still worth sending, though perhaps due for renewal.
    fn is_usable(&self) -> bool {
        !self.rejected
            && self
                .expiry
                .is_none_or(|(expires_at, _)| Instant::now() < expires_at)
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
            rejected: false,
        }
    }
}

/// The current token, as a caller finds it.
enum Standing {
    /// Not yet due for renewal.
    Fresh(Secret),
    /// Still worth sending, but due for renewal.
    Due {
        header: Secret,
        /// The last refresh failed so recently that asking again would only add load.
        cooling_down: bool,
    },
    /// None, or none that may still be sent.
    Spent,
}

impl State {
    /// Whether the last refresh failed so recently that asking again would only add load.
    fn cooling_down(&self) -> bool {
        self.failed
            .as_ref()
            .is_some_and(|failed| Instant::now() < failed.quiet_until)
    }

    /// A caller saw the token refused and asks for a new one: a permanent failure's long
    /// cool-down must not keep it waiting minutes. A transient failure's short one stays, so
    /// that a crowd of rejections during an outage does not become a request storm.
    fn end_permanent_cool_down(&mut self) {
        if let Some(failed) = self.failed.as_mut().filter(|failed| failed.permanent) {
            failed.quiet_until = failed.quiet_until.min(Instant::now());
        }
    }

    /// What to answer when no new token could be had: the current one while it is usable,
    /// else `error`.
    fn usable_or(&self, error: &Error) -> Result<Secret, Error> {
        match &self.current {
            Some(current) if current.is_usable() => Ok(current.header.clone()),
            _ => Err(error.clone()),
        }
    }
}

impl RefreshingToken {
    /// Credentials that fetch their first token on first use.
    pub fn new(source: impl TokenSource) -> Self {
        Self {
            source: Arc::new(source),
            book: Arc::default(),
            in_flight: Mutex::new(None),
            attempts: AtomicU64::new(0),
            margin: DEFAULT_MARGIN,
        }
    }

    /// Credentials that start from a token already in hand (from an authorization-code
    /// exchange, say) and renew it through `source`.
    pub fn with_token(token: FetchedToken, source: impl TokenSource) -> Self {
        let this = Self::new(source);
        this.book.lock().current = Some(Current::from(token));
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
        let seen = self.book.completed.load(Ordering::Acquire);
        match self.book.standing(self.margin) {
            Standing::Fresh(header) => return Ok(header),
            Standing::Due {
                header,
                cooling_down,
            } => {
                if let Some(header) = self.renew_behind(header, cooling_down) {
                    return Ok(header);
                }
            }
            Standing::Spent => {}
        }
        let mut in_flight = self.in_flight.lock().await;
        if let Some(answer) = self.book.settled(seen, self.margin) {
            return answer;
        }
        let runtime = tokio::runtime::Handle::try_current();
        // A refresh whose caller went away: wait for what it brings, within the bound its
        // callers share (its runtime may no longer be driven). Not aborted when that runs out:
        // should it end after all, the book keeps what it brought unless a newer one is there.
        if let Some(refresh) = in_flight.as_mut() {
            let finished_before = refresh.task.is_finished();
            let joined = if finished_before {
                Some((&mut refresh.task).await)
            } else if runtime.is_ok() {
                tokio::time::timeout_at(refresh.take_up_until, &mut refresh.task)
                    .await
                    .ok()
            } else {
                // Without a runtime there is no clock to bound the wait: ask anew.
                None
            };
            let attempt = refresh.attempt;
            // Before anything else: a finished task must not be awaited again.
            *in_flight = None;
            match joined {
                // It wrote what it brought; the book says whether that answers us.
                Some(Ok(_)) => {}
                // One that ended long ago is no news; one that ended while we waited is.
                Some(Err(e)) if e.is_panic() && !finished_before => {
                    return self.book.record(attempt, Err(panicked()));
                }
                Some(Err(_)) => {}
                None => tracing::warn!("a refresh left by a caller has not finished; asking anew"),
            }
            if let Some(answer) = self.book.settled(seen, self.margin) {
                return answer;
            }
        }
        let attempt = self.start_attempt();
        let Ok(runtime) = runtime else {
            return self
                .book
                .record(attempt, self.source.fetch().await.map(Current::from));
        };
        let refresh = in_flight.insert(self.spawn_refresh(&runtime, attempt));
        let joined = (&mut refresh.task).await;
        *in_flight = None;
        match joined {
            Ok(answer) => answer,
            Err(e) if e.is_panic() => self.book.record(attempt, Err(panicked())),
            Err(e) => Err(Error::new(
                ErrorKind::Transport,
                "token refresh cancelled: the runtime is shutting down",
            )
            .with_source(e)),
        }
    }

    /// Within the renewal window the current token still works: the caller goes on with it,
    /// and the first to find no refresh running (and no failure cooling down) starts one on a
    /// task of its own. Waiting for it instead would stall every request on a slow token
    /// endpoint while a good token is in hand. `header` is that token, `cooling_down` whether
    /// the last refresh failed too recently to ask again. `None` when the token stopped being
    /// usable meanwhile or there is no runtime to refresh on: the caller then waits for a
    /// refresh as before.
    fn renew_behind(&self, mut header: Secret, cooling_down: bool) -> Option<Secret> {
        if cooling_down {
            return Some(header);
        }
        // Someone holds the lock: a refresh is starting or being waited for.
        let Ok(mut in_flight) = self.in_flight.try_lock() else {
            return Some(header);
        };
        if let Some(refresh) = in_flight.as_mut() {
            if !refresh.task.is_finished() {
                if Instant::now() < refresh.take_up_until {
                    return Some(header);
                }
                // Hung past the bound callers would wait for it: another is started, as the
                // slow path would (this one is left to end on its own; the book keeps the
                // newest attempt's answer).
                tracing::warn!("a token refresh has not finished; asking anew");
            } else {
                // Ended: it wrote what it brought in the book, unless it panicked. Unconstrained:
                // a caller out of its co-op budget would otherwise see a finished task pending.
                let attempt = refresh.attempt;
                let mut cx = Context::from_waker(Waker::noop());
                let mut joined = tokio::task::unconstrained(&mut refresh.task);
                if let Poll::Ready(Err(e)) = Pin::new(&mut joined).poll(&mut cx)
                    && e.is_panic()
                {
                    let _ = self.book.record(attempt, Err(panicked()));
                }
                *in_flight = None;
                // What it brought, or a token rejected meanwhile, changes the answer.
                match self.book.standing(self.margin) {
                    Standing::Fresh(fresh) => return Some(fresh),
                    Standing::Due {
                        header: due,
                        cooling_down,
                    } => {
                        if cooling_down {
                            return Some(due);
                        }
                        header = due;
                    }
                    Standing::Spent => return None,
                }
            }
        }
        // Without a runtime nothing can refresh behind the caller, which then refreshes
        // itself on the slow path (nothing else runs: the lock was free and no task left).
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let attempt = self.start_attempt();
        *in_flight = Some(self.spawn_refresh(&runtime, attempt));
        Some(header)
    }

    /// Refresh `attempt` on a task of its own, which writes what it brought in the book as it
    /// finishes, whoever still waits for it.
    fn spawn_refresh(&self, runtime: &tokio::runtime::Handle, attempt: u64) -> InFlight {
        let source = Arc::clone(&self.source);
        let book = Arc::clone(&self.book);
        InFlight {
            attempt,
            task: runtime.spawn(async move {
                let fetched = source.fetch().await.map(Current::from);
                book.record(attempt, fetched)
            }),
            take_up_until: Instant::now()
                .checked_add(TAKE_UP_LIMIT)
                .unwrap_or_else(Instant::now),
        }
    }

    fn start_attempt(&self) -> u64 {
        let attempt = self.attempts.fetch_add(1, Ordering::AcqRel) + 1;
        tracing::debug!(attempt, "refreshing access token");
        attempt
    }
}

impl Book {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; should it ever, the state is still whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the book offers a caller, read under one lock.
    fn standing(&self, margin: Duration) -> Standing {
        let state = self.lock();
        let Some(current) = state.current.as_ref().filter(|c| c.is_usable()) else {
            return Standing::Spent;
        };
        if current.is_fresh(margin) {
            return Standing::Fresh(current.header.clone());
        }
        Standing::Due {
            header: current.header.clone(),
            cooling_down: state.cooling_down(),
        }
    }

    /// The answer the book already holds for a caller that asked after `seen` refreshes had
    /// finished: a fresh token, or the failure of a refresh that ended since (or so recently
    /// that asking again would only add load to a struggling endpoint).
    fn settled(&self, seen: u64, margin: Duration) -> Option<Result<Secret, Error>> {
        let state = self.lock();
        // Fresh, or brought by a refresh that ended since we asked (even one whose token
        // is due for renewal at once, as with `expires_in: 0`: asking again would not help).
        if let Some(current) = &state.current
            && (current.is_fresh(margin) || (state.current_completion > seen && !current.rejected))
        {
            return Some(Ok(current.header.clone()));
        }
        let failed = state.failed.as_ref()?;
        (failed.completion > seen || Instant::now() < failed.quiet_until)
            .then(|| state.usable_or(&failed.error))
    }

    /// Writes what refresh `attempt` brought, and answers its callers.
    fn record(&self, attempt: u64, result: Result<Current, Error>) -> Result<Secret, Error> {
        let mut state = self.lock();
        if attempt < state.recorded_attempt {
            // Left behind and overtaken by a newer refresh: what it brought is older news.
            return result.map(|current| current.header);
        }
        state.recorded_attempt = attempt;
        let completion = self.completed.fetch_add(1, Ordering::AcqRel) + 1;
        match result {
            Ok(current) => {
                let header = current.header.clone();
                state.current = Some(current);
                state.current_completion = completion;
                state.failed = None;
                Ok(header)
            }
            Err(error) => {
                let permanent = refused_for_good(&error);
                let cool_down = if permanent {
                    PERMANENT_FAILURE_COOL_DOWN
                } else {
                    error
                        .retry_after()
                        .unwrap_or(FAILURE_COOL_DOWN)
                        .clamp(MIN_FAILURE_COOL_DOWN, MAX_FAILURE_COOL_DOWN)
                };
                let now = Instant::now();
                state.failed = Some(Failure {
                    completion,
                    error: error.clone(),
                    quiet_until: now.checked_add(cool_down).unwrap_or(now),
                    permanent,
                });
                let answer = state.usable_or(&error);
                if answer.is_ok() {
                    tracing::warn!(
                        attempt,
                        kind = ?error.kind(),
                        status = ?error.status(),
                        ?cool_down,
                        "token refresh failed; the current token is used until it expires"
                    );
                } else {
                    tracing::debug!(attempt, kind = ?error.kind(), "token refresh failed");
                }
                answer
            }
        }
    }
}

/// Whether the token endpoint refused the request itself with one of RFC 6749's codes for
/// what the same request cannot get past (`invalid_request`, `invalid_client`,
/// `invalid_grant`, `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`,
/// `access_denied`): asking again with the same credentials gets the same answer. Anything
/// else that is not retryable (a proxy's 403 or 408, an HTML page where JSON was due, a code
/// this crate does not know, a panic in the source) may be gone on the next try, as may any
/// answer with a retryable status (429, 5xx), whatever code its body carries.
fn refused_for_good(error: &Error) -> bool {
    use crate::OAuthErrorCode as Code;
    // A 429 or 5xx is an overload whatever its body says (a gateway's `invalid_request`).
    !error.is_retryable()
        && error.oauth().is_some_and(|oauth| {
            matches!(
                oauth.code,
                Code::InvalidRequest
                    | Code::InvalidClient
                    | Code::InvalidGrant
                    | Code::UnauthorizedClient
                    | Code::UnsupportedGrantType
                    | Code::InvalidScope
                    | Code::AccessDenied
            )
        })
}

/// A bug in the source, reported as an error: the caller taking up the refresh may be a
/// session's driver, which must not die of someone else's panic.
fn panicked() -> Error {
    tracing::error!("the token source panicked");
    Error::new(ErrorKind::SourcePanicked, "the token source panicked")
}

impl Credentials for RefreshingToken {
    fn authorization(&self) -> BoxFuture<'_, Result<Secret, Error>> {
        Box::pin(self.get())
    }

    fn invalidate(&self) {
        let mut state = self.book.lock();
        if let Some(current) = state.current.as_mut() {
            current.rejected = true;
        }
        state.end_permanent_cool_down();
    }

    fn invalidate_if_current(&self, rejected: &Secret) {
        let mut state = self.book.lock();
        match state.current.as_mut() {
            // Once per token: the late refusals of requests it was sent with, which can be
            // many, must not each reopen a permanent failure's cool-down.
            Some(current) if current.header == *rejected && !current.rejected => {
                current.rejected = true;
                state.end_permanent_cool_down();
            }
            Some(current) if current.header == *rejected => {}
            // A late rejection of a token already replaced: renewing again would not help.
            _ => tracing::debug!("ignoring the rejection of a token no longer in use"),
        }
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
        retry_after: Option<Duration>,
    }

    impl TokenSource for Arc<Counting> {
        fn fetch(&self) -> BoxFuture<'_, Result<FetchedToken, Error>> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                // Yield so that concurrent callers really queue up behind this refresh.
                tokio::time::sleep(Duration::from_millis(10)).await;
                if self.fail {
                    return Err(
                        Error::new(ErrorKind::Transport, "down").with_retry_after(self.retry_after)
                    );
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
        // In the renewal window: t1 still goes out while t2 is fetched behind it.
        assert_eq!(
            creds.authorization().await.unwrap().expose_secret(),
            "Bearer t1"
        );
        renewed_to(&creds, "Bearer t2").await;
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
        renewed_to(&creds, "Bearer t1").await;
    }

    /// Asks until the token handed out is `expected`: a renewal runs behind the callers, on a
    /// task of its own (bounded: a renewal that never lands fails the test). Sleeping, not
    /// yielding, lets the paused clock reach the source's own sleep.
    async fn renewed_to(creds: &RefreshingToken, expected: &str) {
        for _ in 0..100 {
            if creds.authorization().await.unwrap().expose_secret() == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("never renewed to {expected}");
    }

    /// What a scripted source answers after its first token (if it has one).
    #[derive(Debug, Clone, Copy)]
    enum Then {
        /// 503, as a token endpoint under maintenance.
        Unavailable,
        /// `invalid_grant`, as once the refresh token is revoked.
        Revoked,
        /// A proxy's 403: not the token endpoint's verdict on the grant.
        ProxyRefuses,
        /// No answer at all.
        Hangs,
    }

    /// Answers `first` (a token and its lifetime) to its first fetch, then `then` to every
    /// fetch; with no `first`, `then` from the start.
    #[derive(Debug)]
    struct Scripted {
        calls: AtomicUsize,
        first: Option<(&'static str, Option<Duration>)>,
        then: Then,
    }

    impl Scripted {
        fn new(first: Option<(&'static str, Option<Duration>)>, then: Then) -> Arc<Self> {
            Arc::new(Self {
                calls: AtomicUsize::new(0),
                first,
                then,
            })
        }

        /// `t1` for an hour, then `then`.
        fn hour_then(then: Then) -> Arc<Self> {
            Self::new(Some(("t1", Some(Duration::from_secs(3600)))), then)
        }
    }

    impl TokenSource for Arc<Scripted> {
        fn fetch(&self) -> BoxFuture<'_, Result<FetchedToken, Error>> {
            Box::pin(async move {
                if self.calls.fetch_add(1, Ordering::SeqCst) == 0
                    && let Some((token, expires_in)) = self.first
                {
                    return Ok(FetchedToken {
                        access_token: Secret::new(token),
                        expires_in,
                    });
                }
                let refused = |status| {
                    Error::new(ErrorKind::HttpStatus, "POST /oauth2/token").with_status(status)
                };
                match self.then {
                    Then::Unavailable => Err(refused(http::StatusCode::SERVICE_UNAVAILABLE)),
                    Then::ProxyRefuses => Err(refused(http::StatusCode::FORBIDDEN)),
                    Then::Revoked => Err(Error::new(ErrorKind::OAuth, "POST /oauth2/token")
                        .with_status(http::StatusCode::BAD_REQUEST)
                        .with_oauth(crate::OAuthError {
                            code: crate::OAuthErrorCode::InvalidGrant,
                            description: None,
                        })),
                    Then::Hangs => std::future::pending().await,
                }
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_hung_past_the_take_up_bound_is_asked_anew_while_the_token_is_good() {
        let source = Scripted::hour_then(Then::Hangs);
        let creds = RefreshingToken::new(source.clone()).refresh_margin(Duration::from_secs(600));
        creds.authorization().await.unwrap();
        tokio::time::advance(Duration::from_secs(3000)).await;
        creds.authorization().await.unwrap();
        tokio::task::yield_now().await;
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
        tokio::time::advance(TAKE_UP_LIMIT / 2).await;
        creds.authorization().await.unwrap();
        tokio::task::yield_now().await;
        assert_eq!(
            source.calls.load(Ordering::SeqCst),
            2,
            "within the bound: waited for"
        );
        tokio::time::advance(TAKE_UP_LIMIT).await;
        let header = creds.authorization().await.unwrap();
        assert_eq!(header.expose_secret(), "Bearer t1");
        tokio::task::yield_now().await;
        assert_eq!(
            source.calls.load(Ordering::SeqCst),
            3,
            "past the bound: asked anew"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_renewal_does_not_hold_callers_while_the_token_is_good() {
        let source = Scripted::hour_then(Then::Hangs);
        let creds = RefreshingToken::new(source.clone());
        creds.authorization().await.unwrap();
        tokio::time::advance(Duration::from_secs(3600 - 30)).await;
        // The paused clock jumps to the timeout if a caller waits on the hung renewal.
        for _ in 0..10 {
            let header = tokio::time::timeout(Duration::from_secs(1), creds.authorization())
                .await
                .expect("a caller waited for the renewal")
                .unwrap();
            assert_eq!(header.expose_secret(), "Bearer t1");
        }
        // The renewal's task starts once this one lets it.
        tokio::task::yield_now().await;
        assert_eq!(
            source.calls.load(Ordering::SeqCst),
            2,
            "one renewal, not one each"
        );
    }

    /// The first fetch waits until the test releases it (then fails, with `fail_first`);
    /// later ones answer at once.
    #[derive(Debug, Default)]
    struct HoldsFirst {
        calls: AtomicUsize,
        first_started: tokio::sync::Notify,
        release: tokio::sync::Notify,
        fail_first: bool,
        /// The `Retry-After` of that failure.
        fail_retry_after: Option<Duration>,
        /// The tokens' `expires_in`.
        lifetime: Option<Duration>,
        first_done: tokio::sync::Notify,
    }

    impl TokenSource for Arc<HoldsFirst> {
        fn fetch(&self) -> BoxFuture<'_, Result<FetchedToken, Error>> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                if n == 1 {
                    self.first_started.notify_one();
                    self.release.notified().await;
                    self.first_done.notify_one();
                    if self.fail_first {
                        return Err(Error::new(ErrorKind::Transport, "down")
                            .with_retry_after(self.fail_retry_after));
                    }
                }
                Ok(FetchedToken {
                    access_token: Secret::new(format!("t{n}")),
                    expires_in: self.lifetime,
                })
            })
        }
    }

    #[tokio::test]
    async fn a_cancelled_caller_leaves_its_refresh_to_the_next_one() {
        let source = Arc::new(HoldsFirst::default());
        let creds = Arc::new(RefreshingToken::new(source.clone()));
        let leader = tokio::spawn({
            let creds = creds.clone();
            async move { creds.authorization().await }
        });
        source.first_started.notified().await;
        leader.abort();
        assert!(leader.await.unwrap_err().is_cancelled());
        source.release.notify_one();
        // The next caller gets the answer to the request already sent, not a second one.
        assert_eq!(
            creds.authorization().await.unwrap().expose_secret(),
            "Bearer t1"
        );
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        assert_eq!(creds.refresh_count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_nobody_waited_for_is_not_served_later() {
        let source = Arc::new(HoldsFirst {
            fail_first: true,
            ..HoldsFirst::default()
        });
        let creds = Arc::new(RefreshingToken::new(source.clone()));
        left_behind(&source, &creds).await;
        tokio::time::advance(Duration::from_secs(600)).await;
        // That failure is ten minutes old: the next caller asks again.
        assert_eq!(
            creds.authorization().await.unwrap().expose_secret(),
            "Bearer t2"
        );
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    /// Starts a refresh from a caller that is then dropped, and lets it finish.
    async fn left_behind(source: &Arc<HoldsFirst>, creds: &Arc<RefreshingToken>) {
        let leader = tokio::spawn({
            let creds = creds.clone();
            async move { creds.authorization().await }
        });
        source.first_started.notified().await;
        leader.abort();
        assert!(leader.await.unwrap_err().is_cancelled());
        source.release.notify_one();
        source.first_done.notified().await;
        // Let the refresh task write what it brought.
        tokio::task::yield_now().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_nobody_waited_for_still_holds_its_cool_down() {
        let source = Arc::new(HoldsFirst {
            fail_first: true,
            fail_retry_after: Some(Duration::from_secs(60)),
            ..HoldsFirst::default()
        });
        let creds = Arc::new(RefreshingToken::new(source.clone()));
        left_behind(&source, &creds).await;
        tokio::time::advance(Duration::from_secs(1)).await;
        // The endpoint asked for a minute's rest: nobody asks it again before then.
        let error = creds.authorization().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Transport);
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            creds.authorization().await.unwrap().expose_secret(),
            "Bearer t2"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_nobody_waited_for_expires_like_any_other() {
        let source = Arc::new(HoldsFirst {
            lifetime: Some(Duration::from_secs(60)),
            ..HoldsFirst::default()
        });
        let creds = Arc::new(RefreshingToken::new(source.clone()));
        left_behind(&source, &creds).await;
        // Nobody asked while it lasted: the next caller gets a new one, not it expired.
        tokio::time::advance(Duration::from_secs(120)).await;
        assert_eq!(
            creds.authorization().await.unwrap().expose_secret(),
            "Bearer t2"
        );
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_refresh_left_on_an_undriven_runtime_holds_callers_up_two_minutes_in_all() {
        let source = Arc::new(HoldsFirst::default());
        let creds = Arc::new(RefreshingToken::new(source.clone()));
        let first = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The caller gives up; its refresh stays on `first`, which nothing drives any more.
        let gave_up = first.block_on(async {
            tokio::time::timeout(Duration::from_millis(10), creds.authorization()).await
        });
        assert!(gave_up.is_err());
        let second = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        second.block_on(async {
            let start = tokio::time::Instant::now();
            // Each waits 30 s for the refresh left on `first`, then gives up.
            for _ in 0..3 {
                let wait = tokio::time::timeout(Duration::from_secs(30), creds.authorization());
                assert!(wait.await.is_err());
            }
            // The bound counts from that refresh's start, not from each caller's.
            let header = creds.authorization().await.unwrap();
            assert_eq!(header.expose_secret(), "Bearer t2");
            assert!(start.elapsed() <= TAKE_UP_LIMIT, "{:?}", start.elapsed());
        });
        drop(first);
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_that_expires_at_once_is_still_shared_by_the_callers_who_waited() {
        #[derive(Debug, Default)]
        struct ExpiresAtOnce {
            calls: AtomicUsize,
        }
        impl TokenSource for Arc<ExpiresAtOnce> {
            fn fetch(&self) -> BoxFuture<'_, Result<FetchedToken, Error>> {
                Box::pin(async move {
                    let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    Ok(FetchedToken {
                        access_token: Secret::new(format!("t{n}")),
                        expires_in: Some(Duration::ZERO),
                    })
                })
            }
        }
        let source = Arc::new(ExpiresAtOnce::default());
        let creds = Arc::new(RefreshingToken::new(source.clone()));
        let callers: Vec<_> = (0..5)
            .map(|_| {
                let creds = creds.clone();
                tokio::spawn(async move { creds.authorization().await })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap().unwrap().expose_secret(), "Bearer t1");
        }
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    }

    #[derive(Debug, Default)]
    struct PanicsFirst {
        calls: AtomicUsize,
    }

    impl TokenSource for Arc<PanicsFirst> {
        fn fetch(&self) -> BoxFuture<'_, Result<FetchedToken, Error>> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                assert!(n > 1, "the first fetch panics");
                Ok(FetchedToken {
                    access_token: Secret::new(format!("t{n}")),
                    expires_in: None,
                })
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_source_is_an_error_to_its_caller_and_the_next_one_refreshes() {
        let source = Arc::new(PanicsFirst::default());
        let creds = Arc::new(RefreshingToken::new(source.clone()));
        let first = tokio::spawn({
            let creds = creds.clone();
            async move { creds.authorization().await }
        });
        let error = first.await.unwrap().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::SourcePanicked);
        // A failure like any other: the next request waits out the cool-down.
        tokio::time::advance(FAILURE_COOL_DOWN).await;
        assert_eq!(
            creds.authorization().await.unwrap().expose_secret(),
            "Bearer t2"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_rejection_of_a_replaced_token_is_ignored() {
        let source = Arc::new(Counting::default());
        let creds = RefreshingToken::new(source.clone());
        let t1 = creds.authorization().await.unwrap();
        creds.invalidate_if_current(&t1);
        let t2 = creds.authorization().await.unwrap();
        assert_eq!(t2.expose_secret(), "Bearer t2");
        // A 401 for a request sent with t1 arrives after t2 replaced it.
        creds.invalidate_if_current(&t1);
        assert_eq!(creds.authorization().await.unwrap(), t2);
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
        // Through an Arc<dyn Credentials>, as session crates hold it.
        let shared: Arc<dyn Credentials> = Arc::new(creds);
        shared.invalidate_if_current(&t1);
        assert_eq!(shared.authorization().await.unwrap(), t2);
        shared.invalidate_if_current(&t2);
        assert_eq!(
            shared.authorization().await.unwrap().expose_secret(),
            "Bearer t3"
        );
        // `invalidate()` still renews unconditionally.
        shared.invalidate();
        assert_eq!(
            shared.authorization().await.unwrap().expose_secret(),
            "Bearer t4"
        );
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
        // A caller right after the failure gets the same error without another request...
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            creds.authorization().await.unwrap_err().kind(),
            ErrorKind::Transport
        );
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        // ... and once the cool-down is over a caller tries again.
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(creds.authorization().await.is_err());
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_cool_down_follows_retry_after_up_to_a_cap() {
        let source = Arc::new(Counting {
            fail: true,
            retry_after: Some(Duration::from_secs(20)),
            ..Counting::default()
        });
        let creds = RefreshingToken::new(source.clone());
        assert!(creds.authorization().await.is_err());
        tokio::time::advance(Duration::from_secs(19)).await;
        assert!(creds.authorization().await.is_err());
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(creds.authorization().await.is_err());
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);

        // A day-long Retry-After does not lock the credentials for a day.
        let source = Arc::new(Counting {
            fail: true,
            retry_after: Some(Duration::from_secs(86_400)),
            ..Counting::default()
        });
        let creds = RefreshingToken::new(source.clone());
        assert!(creds.authorization().await.is_err());
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(creds.authorization().await.is_err());
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_retry_after_still_cools_down() {
        let source = Arc::new(Counting {
            fail: true,
            retry_after: Some(Duration::ZERO),
            ..Counting::default()
        });
        let creds = RefreshingToken::new(source.clone());
        for _ in 0..10 {
            assert!(creds.authorization().await.is_err());
        }
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        assert_eq!(creds.refresh_count(), 1);
        tokio::time::advance(MIN_FAILURE_COOL_DOWN).await;
        assert!(creds.authorization().await.is_err());
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_keeps_handing_out_the_unexpired_token() {
        let source = Scripted::hour_then(Then::Unavailable);
        let creds = RefreshingToken::new(source.clone());
        assert_eq!(
            creds.authorization().await.unwrap().expose_secret(),
            "Bearer t1"
        );
        // Inside the renewal window: a refresh is tried, fails, and t1 is still good.
        tokio::time::advance(Duration::from_secs(3545)).await;
        assert_eq!(
            creds.authorization().await.unwrap().expose_secret(),
            "Bearer t1"
        );
        tokio::task::yield_now().await;
        assert_eq!(
            creds.authorization().await.unwrap().expose_secret(),
            "Bearer t1"
        );
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
        // Once t1 has expired there is nothing usable left.
        tokio::time::advance(Duration::from_secs(60)).await;
        let err = creds.authorization().await.unwrap_err();
        assert_eq!(err.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(source.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_cools_down_for_minutes_unless_invalidated() {
        let source = Scripted::new(None, Then::Revoked);
        let creds = RefreshingToken::new(source.clone());
        let err = creds.authorization().await.unwrap_err();
        assert!(!err.is_retryable());
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        // Well past a transient failure's cool-down, no doomed request is sent...
        for _ in 0..59 {
            tokio::time::advance(FAILURE_COOL_DOWN).await;
            assert!(creds.authorization().await.is_err());
        }
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        // ... until the long one is over.
        tokio::time::advance(PERMANENT_FAILURE_COOL_DOWN - 59 * FAILURE_COOL_DOWN).await;
        assert!(creds.authorization().await.is_err());
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
        // A caller that saw its token refused may try again at once.
        tokio::time::advance(Duration::from_secs(1)).await;
        creds.invalidate();
        assert!(creds.authorization().await.is_err());
        assert_eq!(source.calls.load(Ordering::SeqCst), 3);
        // Then the long cool-down holds again.
        tokio::time::advance(FAILURE_COOL_DOWN * 2).await;
        assert!(creds.authorization().await.is_err());
        assert_eq!(source.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_refused_grant_or_client_cools_down_for_minutes() {
        let source = Scripted::new(None, Then::ProxyRefuses);
        let creds = RefreshingToken::new(source.clone());
        let err = creds.authorization().await.unwrap_err();
        assert!(!err.is_retryable());
        tokio::time::advance(FAILURE_COOL_DOWN * 2).await;
        assert!(creds.authorization().await.is_err());
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn refusals_the_same_request_cannot_get_past_are_for_good() {
        use crate::{OAuthError, OAuthErrorCode};
        let refusal = |code: &str| {
            Error::new(ErrorKind::OAuth, "test").with_oauth(OAuthError {
                code: OAuthErrorCode::from_wire(code),
                description: None,
            })
        };
        for code in [
            "invalid_request",
            "invalid_client",
            "invalid_grant",
            "unauthorized_client",
            "unsupported_grant_type",
            "invalid_scope",
            "access_denied",
        ] {
            assert!(refused_for_good(&refusal(code)), "{code}");
        }
        for code in ["server_error", "temporarily_unavailable", "slow_down"] {
            assert!(!refused_for_good(&refusal(code)), "{code}");
        }
        assert!(!refused_for_good(&Error::new(ErrorKind::HttpStatus, "403")));
        for status in [429, 502, 503] {
            let overloaded =
                refusal("invalid_request").with_status(http::StatusCode::from_u16(status).unwrap());
            assert!(!refused_for_good(&overloaded), "{status}");
        }
        let refused = refusal("invalid_request").with_status(http::StatusCode::BAD_REQUEST);
        assert!(refused_for_good(&refused));
    }

    #[tokio::test(start_paused = true)]
    async fn late_refusals_of_one_token_reopen_a_permanent_cool_down_once() {
        let source = Scripted::new(Some(("first", None)), Then::Revoked);
        let creds = RefreshingToken::new(source.clone());
        let token = creds.authorization().await.unwrap();
        // Many requests sent with it come back 401: the first starts a refresh, which fails
        // for good; the rest must not start one each.
        creds.invalidate_if_current(&token);
        assert!(creds.authorization().await.is_err());
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
        for _ in 0..10 {
            creds.invalidate_if_current(&token);
            assert!(creds.authorization().await.is_err());
        }
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rejected_token_is_not_handed_out_when_its_refresh_fails() {
        let source = Scripted::hour_then(Then::Unavailable);
        let creds = RefreshingToken::new(source.clone());
        creds.authorization().await.unwrap();
        creds.invalidate();
        assert_eq!(
            creds.authorization().await.unwrap_err().status(),
            Some(http::StatusCode::SERVICE_UNAVAILABLE)
        );
    }
}
