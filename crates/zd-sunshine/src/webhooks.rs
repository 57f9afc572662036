//! Receiving Sunshine Conversations webhooks: the typed envelope, the `X-API-Key` check, a
//! dedupe helper and a tower service that verifies, parses, answers at once and hands each
//! event to your handler.
//!
//! Sunshine retries a delivery that is not answered with 2xx within 20 seconds, so the service
//! answers before the handler runs, and drops events whose id it has already seen. Events go
//! through a bounded queue to one worker that runs the handler for each in delivery order;
//! when the queue is full the delivery is answered 503, so Sunshine delivers it again later.
//!
//! Each event of a delivery is decoded on its own: one event this version cannot decode does
//! not cost the others (see [`Delivery::decode_error`]). A handler that panics is caught and
//! logged, and the worker goes on with the next event.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::FutureExt as _;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use parking_lot::Mutex;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use zd_auth::Secret;

use crate::error::{Error, ErrorKind};
use crate::models::{AppSubSchema, WebhookSubSchema};
pub use crate::models::{WebhookEnvelope, WebhookEvent};
use crate::transport::BoxFuture;

/// The header Sunshine puts the webhook secret in.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The largest webhook body [`WebhookService`] reads unless told otherwise (4 MiB; see
/// [`WebhookService::with_max_body`]). Sunshine puts several events of one webhook into one
/// delivery and retries a 413 with the same body until it gives the delivery up, so the limit
/// leaves room for a batch of long messages with full users rather than for one event.
pub const MAX_WEBHOOK_BODY: usize = 4 * 1024 * 1024;

/// Whether `headers` carry `X-API-Key` equal to `secret`, compared in constant time. An empty
/// secret verifies nothing (an empty header would match it).
pub fn verify_api_key(headers: &HeaderMap, secret: &Secret) -> bool {
    let Some(got) = headers.get(API_KEY_HEADER) else {
        return false;
    };
    if secret.expose_secret().is_empty() {
        return false;
    }
    got.as_bytes()
        .ct_eq(secret.expose_secret().as_bytes())
        .into()
}

/// Parses a webhook body, all or nothing: one event that does not decode fails the whole body.
/// [`WebhookService`] decodes each event on its own instead, so that one event does not cost
/// the others.
///
/// # Errors
/// The JSON error, with the path that failed, when the body is not an envelope.
pub fn parse(
    body: &[u8],
) -> Result<WebhookEnvelope, serde_path_to_error::Error<serde_json::Error>> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de)
}

/// Remembers the last `capacity` event ids so a redelivered event is handled once.
#[derive(Debug)]
pub struct Dedupe {
    capacity: usize,
    inner: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl Dedupe {
    /// Remembers up to `capacity` ids (at least 1), forgetting the oldest first.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    /// Whether `id` was seen (and not yet forgotten), without marking it.
    pub fn contains(&self, id: &str) -> bool {
        self.inner.lock().0.contains(id)
    }

    /// `true` the first time `id` is seen, `false` for a repeat.
    pub fn first_time(&self, id: &str) -> bool {
        let mut guard = self.inner.lock();
        let (seen, order) = &mut *guard;
        if seen.contains(id) {
            return false;
        }
        if order.len() >= self.capacity
            && let Some(old) = order.pop_front()
        {
            seen.remove(&old);
        }
        seen.insert(id.to_owned());
        order.push_back(id.to_owned());
        true
    }
}

/// One event as handed to the handler, with the envelope's app and webhook ids.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `app.id` of the envelope.
    pub app_id: Option<String>,
    /// `webhook.id` of the envelope.
    pub webhook_id: Option<String>,
    /// The event. One whose `type` this version knows but whose payload it cannot read comes
    /// as [`WebhookEvent::Unknown`] with its JSON as received, and [`Delivery::decode_error`]
    /// says why; `Unknown` with no `decode_error` is a `type` this version does not know (or
    /// an event with no `type` at all).
    pub event: WebhookEvent,
    /// Why `event` could not be decoded ([`ErrorKind::Decode`], the serde error with the
    /// failing path as its source); `None` for an event that decoded. The service has already
    /// answered 200 for the delivery: Sunshine will not send this event again, so the raw JSON
    /// in `event` is the only copy.
    pub decode_error: Option<Arc<Error>>,
}

/// The payload version this crate reads (`webhook.version`).
pub const PAYLOAD_VERSION: &str = "v2";

/// Why [`WebhookService`] refused a delivery: with 400 (Sunshine does not retry it), or 503
/// for a body that could not be read to its end (Sunshine retries it). The response
/// carries it as an extension (`response.extensions().get::<Rejection>()`, for a middleware
/// that records refusals) and as its text body; the service also logs it at warn level,
/// without the body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The body broke off before its end (the connection dropped mid-read, or a body layer
    /// in front of the service gave up on it): answered 503, so that Sunshine sends it again.
    Unreadable,
    /// The body is not JSON, or `app`, `webhook` or `events` has the wrong shape.
    Malformed,
    /// `webhook.version` names a payload version other than [`PAYLOAD_VERSION`] (kept to its
    /// first 32 characters): the webhook is set to send another schema.
    UnsupportedVersion(String),
    /// No `events` array (missing or `null`): not a v2 payload, such as a v1 delivery
    /// (`trigger`, `messages`), whose events this service would otherwise drop unhandled.
    NoEvents,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable => f.write_str("the webhook body could not be read to its end"),
            Self::Malformed => f.write_str("the webhook body is not a webhook payload"),
            Self::UnsupportedVersion(v) => write!(
                f,
                "webhook payload version `{v}` is not supported (expected `{PAYLOAD_VERSION}`)"
            ),
            Self::NoEvents => f.write_str(
                "the webhook body has no `events` array: not a Sunshine Conversations v2 \
                 payload (a v1 webhook sends `trigger` and `messages`)",
            ),
        }
    }
}

/// The envelope with its events left undecoded, so each can be decoded (or fail) on its own.
#[derive(Deserialize)]
struct LenientEnvelope {
    #[serde(default)]
    app: Option<AppSubSchema>,
    #[serde(default)]
    webhook: Option<WebhookSubSchema>,
    #[serde(default)]
    events: Option<Vec<Box<serde_json::value::RawValue>>>,
}

/// Decodes one event; an event that does not decode keeps its JSON, as
/// [`WebhookEvent::Unknown`], with the error (see [`Delivery::decode_error`]).
/// An event's `id`, read without decoding the rest: what [`WebhookEvent::id`] gives once it
/// is decoded (`None` where there is none, or it is not a string).
fn event_id(text: &serde_json::value::RawValue) -> Option<std::borrow::Cow<'_, str>> {
    #[derive(Deserialize)]
    struct Id<'a> {
        #[serde(borrow, default)]
        id: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_str::<Id<'_>>(text.get()).ok()?.id
}

fn decode_event(text: &serde_json::value::RawValue) -> (WebhookEvent, Option<Arc<Error>>) {
    match serde_json::from_str::<WebhookEvent>(text.get()) {
        Ok(event) => (event, None),
        Err(e) => {
            // Only a failed event is read into a tree, to be handed over as it came (the
            // envelope's parse already checked that it is JSON).
            let raw: serde_json::Value = serde_json::from_str(text.get()).unwrap_or_default();
            // Kind and id only: the payload, and serde's message about it, can quote message
            // text, names and emails.
            tracing::warn!(
                kind = raw.get("type").and_then(serde_json::Value::as_str),
                id = raw.get("id").and_then(serde_json::Value::as_str),
                "webhook event does not decode; handing it to the handler as Unknown"
            );
            let error = Error::with_source(
                ErrorKind::Decode,
                "webhook event does not match the model",
                e,
            );
            (WebhookEvent::Unknown(raw), Some(Arc::new(error)))
        }
    }
}

/// Runs the handler on each queued delivery, in order, until the service is dropped.
async fn run_worker<F, Fut>(mut events: tokio::sync::mpsc::Receiver<Delivery>, handler: F)
where
    F: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    while let Some(delivery) = events.recv().await {
        let kind = delivery.event.type_name().to_owned();
        let id = delivery.event.id().map(str::to_owned);
        // A panic would end this task, the only one draining the queue, and every later
        // delivery would be answered 503 until the process restarts. The handler is called
        // again after a panic, as a server calls a request handler again after one request
        // panicked: state it shares is behind `Sync` types it chose (a std `Mutex` held across
        // the panic reports itself poisoned), so asserting unwind safety hides nothing new.
        let outcome = std::panic::AssertUnwindSafe(async { handler(delivery).await })
            .catch_unwind()
            .await;
        if outcome.is_err() {
            // Kind and id only: the panic message may quote the event.
            tracing::error!(
                kind,
                id,
                "webhook handler panicked; going on with the next event"
            );
        }
    }
}

/// How many events [`WebhookService::new`] queues for the handler before answering 503.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// A tower `Service` for the webhook route: `POST` only, `X-API-Key` checked, body bounded and
/// parsed, events deduplicated by id and queued for one worker task that runs the handler on
/// each, one at a time, in the order they were delivered; the response (200) does not wait
/// for the handler.
///
/// Answers 405 to other methods, 401 to a wrong key, 413 to an oversized body and 400 to a
/// body that is not a v2 payload (not JSON, `app`, `webhook` or `events` of the wrong shape,
/// no `events` array, or a `webhook.version` other than `v2`; Sunshine does not retry those;
/// the response says why, see [`Rejection`]), 503 to a body that broke off before its end
/// ([`Rejection::Unreadable`]), and 503 when the queue has no room for the
/// delivery's new events (none of them is queued or marked seen, so the retry is handled in
/// full; events already seen need no room). An event that does not decode does not fail the
/// delivery: it is logged (its `type` and id) and handed on raw, see
/// [`Delivery::decode_error`].
#[derive(Clone)]
pub struct WebhookService {
    secret: Arc<Secret>,
    dedupe: Arc<Dedupe>,
    queue: tokio::sync::mpsc::Sender<Delivery>,
    max_body: usize,
}

impl fmt::Debug for WebhookService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookService")
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

impl WebhookService {
    /// A service checking `secret` and calling `handler` for every new event, queueing up to
    /// [`DEFAULT_QUEUE_CAPACITY`] events. Must run inside a tokio runtime (the worker is
    /// spawned); the worker ends when the last clone of the service is dropped.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when `secret` is empty (an unset
    /// environment variable, say): every delivery would be refused, or, compared naively, one
    /// with an empty `X-API-Key` accepted.
    pub fn new<F, Fut>(secret: Secret, handler: F) -> Result<Self, Error>
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        Self::with_queue_capacity(secret, DEFAULT_QUEUE_CAPACITY, handler)
    }

    /// Like [`WebhookService::new`] with room for `capacity` queued events (at least 1).
    ///
    /// # Errors
    /// As [`WebhookService::new`].
    pub fn with_queue_capacity<F, Fut>(
        secret: Secret,
        capacity: usize,
        handler: F,
    ) -> Result<Self, Error>
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let secret = secret
            .require("the webhook secret")
            .map_err(|e| Error::with_source(ErrorKind::Config, "the webhook secret is empty", e))?;
        let (queue, events) = tokio::sync::mpsc::channel::<Delivery>(capacity.max(1));
        tokio::spawn(run_worker(events, handler));
        Ok(Self {
            secret: Arc::new(secret),
            dedupe: Arc::new(Dedupe::new(10_000)),
            queue,
            max_body: MAX_WEBHOOK_BODY,
        })
    }

    /// Reads bodies of up to `bytes` (default [`MAX_WEBHOOK_BODY`]) and answers 413 to
    /// longer ones. Sunshine retries a 413 with the same body, so a limit below the largest
    /// delivery the app's webhooks send loses that delivery's events.
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Uses `dedupe` (for example one shared by several routes).
    pub fn with_dedupe(mut self, dedupe: Arc<Dedupe>) -> Self {
        self.dedupe = dedupe;
        self
    }

    /// Queues `event` with room already reserved, marking it seen as it goes in (a repeat
    /// of one already seen is dropped): marked with nothing between that and the queue, so a
    /// delivery given up on never leaves an event seen but not queued.
    fn enqueue(
        &self,
        permit: tokio::sync::mpsc::Permit<'_, Delivery>,
        app_id: &Option<String>,
        webhook_id: &Option<String>,
        event: WebhookEvent,
        decode_error: Option<Arc<Error>>,
    ) {
        if let Some(id) = event.id()
            && !self.dedupe.first_time(id)
        {
            return;
        }
        permit.send(Delivery {
            app_id: app_id.clone(),
            webhook_id: webhook_id.clone(),
            event,
            decode_error,
        });
    }

    /// Handles one request: the same steps the `Service` impl runs.
    pub async fn handle<B>(&self, request: http::Request<B>) -> http::Response<Full<Bytes>>
    where
        B: http_body::Body + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        if request.method() != Method::POST {
            return reply(StatusCode::METHOD_NOT_ALLOWED);
        }
        if !verify_api_key(request.headers(), &self.secret) {
            return reply(StatusCode::UNAUTHORIZED);
        }
        let body = match http_body_util::Limited::new(request.into_body(), self.max_body)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) if over_the_limit(&*e) => {
                return reply(StatusCode::PAYLOAD_TOO_LARGE);
            }
            Err(e) => {
                // The connection broke mid-body, or a layer in front gave up on a slow one:
                // a 503, which Sunshine retries (a 400 would lose the delivery for good, a
                // 413 would blame the size).
                tracing::debug!(error = %e, "webhook body could not be read");
                return answer(StatusCode::SERVICE_UNAVAILABLE, Rejection::Unreadable);
            }
        };
        let mut de = serde_json::Deserializer::from_slice(&body);
        let envelope: LenientEnvelope = match serde_path_to_error::deserialize(&mut de) {
            Ok(e) => e,
            Err(e) => {
                // The path only (field names and indices): serde's message can quote the body.
                tracing::debug!(path = %e.path(), "webhook body is not an envelope");
                return refuse(Rejection::Malformed);
            }
        };
        if let Some(version) = envelope.webhook.as_ref().and_then(|w| w.version.as_deref())
            && version != PAYLOAD_VERSION
        {
            // Bounded and without control characters: it goes into the log and the answer.
            let version: String = version
                .chars()
                .filter(|c| !c.is_control())
                .take(32)
                .collect();
            return refuse(Rejection::UnsupportedVersion(version));
        }
        // Not what a v2 webhook sends: say so. Sunshine redelivers neither a 2xx nor a 400,
        // but a 400 shows the webhook failing, where a 200 would hide the lost events.
        let Some(raw_events) = envelope.events else {
            return refuse(Rejection::NoEvents);
        };
        let app_id = envelope.app.as_ref().and_then(|a| a.id.clone());
        let webhook_id = envelope.webhook.as_ref().and_then(|w| w.id.clone());
        // Events already seen are dropped before room is reserved, so a redelivery of events
        // still queued is not answered 503 for want of room it does not need. They are only
        // marked seen once queued (below): a 503 must leave the retry to be handled in full.
        // Only the id is read to drop a repeat: a redelivery (which comes in bursts, when the
        // queue is full) is not decoded again, nor its undecodable events warned of again.
        let events: Vec<(WebhookEvent, Option<Arc<Error>>)> = raw_events
            .iter()
            .filter(|text| event_id(text).is_none_or(|id| !self.dedupe.contains(&id)))
            .map(|text| decode_event(text))
            .collect();
        if events.is_empty() {
            return reply(StatusCode::OK);
        }
        if events.len() > self.queue.max_capacity() {
            // More events than the queue can ever hold at once would be refused forever; wait
            // for room instead (the answer is late, but the batch is handled, in order).
            for (event, decode_error) in events {
                // Room first, then marked seen and queued with no wait between: a sender
                // that gives up meanwhile (this future is dropped) leaves no event marked seen
                // but never queued, which its retry would skip for good; and a retry handled
                // beside this one finds an event marked only once it is in the queue, so
                // the two keep delivery order.
                let Ok(permit) = self.queue.reserve().await else {
                    return worker_gone();
                };
                self.enqueue(permit, &app_id, &webhook_id, event, decode_error);
            }
            return reply(StatusCode::OK);
        }
        // Room for every event first (all or none), so a 503 leaves nothing half-queued and
        // nothing marked seen: the redelivery is handled in full, in order.
        let permits = match self.queue.try_reserve_many(events.len()) {
            Ok(p) => p,
            Err(tokio::sync::mpsc::error::TrySendError::Full(())) => {
                tracing::debug!(events = events.len(), "webhook queue full; answering 503");
                return reply(StatusCode::SERVICE_UNAVAILABLE);
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(())) => return worker_gone(),
        };
        for ((event, decode_error), permit) in events.into_iter().zip(permits) {
            self.enqueue(permit, &app_id, &webhook_id, event, decode_error);
        }
        reply(StatusCode::OK)
    }
}

/// 503: the worker that runs the handler is gone (its task ended), so nothing can be queued.
fn worker_gone() -> http::Response<Full<Bytes>> {
    tracing::warn!("webhook handler worker is gone; answering 503");
    reply(StatusCode::SERVICE_UNAVAILABLE)
}

/// Whether reading the body failed on a length limit: ours, or one of a body layer in front
/// whose error wraps it.
fn over_the_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source())
        .any(|e| e.is::<http_body_util::LengthLimitError>())
}

/// 400 with `why` as an extension and as text, logged without the body.
fn refuse(why: Rejection) -> http::Response<Full<Bytes>> {
    answer(StatusCode::BAD_REQUEST, why)
}

/// `status` with `why` as an extension and as text, logged without the body.
fn answer(status: StatusCode, why: Rejection) -> http::Response<Full<Bytes>> {
    tracing::warn!(reason = %why, %status, "webhook delivery refused");
    let mut response = http::Response::new(Full::new(Bytes::from(why.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response.extensions_mut().insert(why);
    response
}

fn reply(status: StatusCode) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

impl<B> tower_service::Service<http::Request<B>> for WebhookService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = http::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(request).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The id read to drop repeats is the id the decoded event gives, whatever the event.
    #[test]
    fn the_id_read_before_decoding_is_the_decoded_events() {
        for text in [
            r#"{"id":"e1","type":"conversation:message","createdAt":"2024-01-01T00:00:00.000Z","payload":{"conversation":{"id":"c"},"message":{"id":"m","received":"2024-01-01T00:00:00.000Z","author":{"type":"user"},"content":{"type":"text","text":"hi"}}}}"#,
            r#"{"id":"e\u0032","type":"something:new","payload":{}}"#,
            r#"{"id":7,"type":"conversation:message"}"#,
            r#"{"type":"conversation:read","payload":{}}"#,
            r#"{"id":null}"#,
        ] {
            let raw = serde_json::value::RawValue::from_string(text.to_owned()).unwrap();
            let (event, _) = decode_event(&raw);
            assert_eq!(event_id(&raw).as_deref(), event.id(), "{text}");
        }
    }

    #[test]
    fn dedupe_forgets_oldest() {
        let d = Dedupe::new(2);
        assert!(d.first_time("a"));
        assert!(!d.first_time("a"));
        assert!(d.first_time("b"));
        assert!(d.first_time("c"));
        assert!(d.first_time("a"));
    }

    #[test]
    fn api_key_check() {
        let mut h = HeaderMap::new();
        let secret = Secret::new("s3cret");
        assert!(!verify_api_key(&h, &secret));
        h.insert(API_KEY_HEADER, http::HeaderValue::from_static("s3cret"));
        assert!(verify_api_key(&h, &secret));
        h.insert(API_KEY_HEADER, http::HeaderValue::from_static("s3creT"));
        assert!(!verify_api_key(&h, &secret));
        // An empty secret matches nothing, not even an empty header.
        h.insert(API_KEY_HEADER, http::HeaderValue::from_static(""));
        assert!(!verify_api_key(&h, &Secret::new("")));
    }
}
