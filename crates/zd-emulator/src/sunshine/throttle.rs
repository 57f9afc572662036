//! The rate-limit fault: the next N API requests are answered `429 Too Many Requests`.
//!
//! The service publishes no rate-limit figures, only that a 429 "may be returned" and that
//! clients should retry with exponential backoff and jitter. An emulator that never answered
//! 429 would leave that retry code untested, so the fault makes it happen on demand. The spec
//! does not mention `Retry-After`: the fault sends one only when asked to.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Sunshine;
use super::error::ApiError;

/// How many requests are still to be refused, and the `Retry-After` they carry.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    remaining: AtomicU32,
    /// Seconds; 0 sends no header.
    retry_after_s: AtomicU64,
}

impl Throttle {
    /// Refuses the next `requests` API requests, with `Retry-After` when given (whole seconds,
    /// rounded up).
    pub(crate) fn arm(&self, requests: u32, retry_after: Option<Duration>) {
        let seconds = retry_after.map_or(0, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0));
        self.retry_after_s.store(seconds, Ordering::SeqCst);
        self.remaining.store(requests, Ordering::SeqCst);
    }

    /// Takes one refusal if any is left; `Some(retry_after_s)` then.
    fn take(&self) -> Option<u64> {
        self.remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()
            .map(|_| self.retry_after_s.load(Ordering::SeqCst))
    }
}

/// The API's middleware: a refusal of a `/v2/...` request while the fault is armed, the
/// request otherwise (the OAuth endpoints are not throttled).
pub(crate) async fn layer(State(s): State<Sunshine>, request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/v2/") {
        return next.run(request).await;
    }
    let Some(retry_after_s) = s.throttle().take() else {
        return next.run(request).await;
    };
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "Too Many Requests",
    )
    .into_response();
    if retry_after_s > 0 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    }
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Throttle;

    #[test]
    fn refuses_exactly_the_armed_count_then_lets_through() {
        let throttle = Throttle::default();
        assert_eq!(throttle.take(), None);
        throttle.arm(2, Some(Duration::from_millis(1500)));
        assert_eq!(throttle.take(), Some(2), "1.5 s rounds up");
        assert_eq!(throttle.take(), Some(2));
        assert_eq!(throttle.take(), None);
        throttle.arm(1, None);
        assert_eq!(throttle.take(), Some(0), "no header");
        assert_eq!(throttle.take(), None);
    }
}
