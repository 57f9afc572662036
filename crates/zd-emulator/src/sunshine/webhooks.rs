//! Webhook delivery: one worker per webhook batches the events that piled up, POSTs them with
//! `X-API-Key`, and retries on a fixed schedule; every delivery and its outcome is recorded.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

use super::store::Webhook;
use super::util;

/// When each attempt starts, counted from the start of the first, at the service's pace: "up to
/// 5 times over a 15 minute window", with doubling gaps. Counting from the first start (not
/// from the end of the previous attempt) keeps slow or timed-out attempts from pushing the
/// last one past the window. The configured time scale multiplies them.
pub(crate) const RETRY_OFFSETS_SECS: [u64; 5] = [0, 60, 180, 420, 900];
/// Events sent in one delivery at most.
const MAX_BATCH: usize = 100;
/// The most bytes one delivery's body holds, unless a single event is larger (it then goes
/// alone). Receivers cap what they accept (zd-sunshine's at 4 MiB by default, others less),
/// and 100 events of long messages with full users can pass a few MiB; a 413 would be retried
/// with the same body and then lost.
const MAX_BATCH_BYTES: usize = 512 * 1024;
/// What of [`MAX_BATCH_BYTES`] is left for the body around the events (app and webhook ids,
/// version): under a hundred bytes, with room to spare.
const ENVELOPE_BYTES: usize = 1024;
/// The most of a webhook target's answer body read (and thrown away).
const MAX_ANSWER_BODY: usize = 64 * 1024;
/// The longest an answer body is read (in the background, once the status has settled the
/// outcome) before its connection is dropped.
const MAX_ANSWER_BODY_WAIT: Duration = Duration::from_secs(5);
/// Answer bodies drained at once, across every webhook. A target that answers 2xx at once and
/// then trickles its body would otherwise leave a task and an open socket behind every
/// delivery; past this many, a body is dropped with its connection.
const MAX_DRAINS: usize = 64;
/// Why the events of a deleted webhook (or of its integration, app or revoked token) were
/// dropped.
const DELETED: &str = "webhook deleted";
/// Events waiting per webhook before new ones are dropped (and the drop recorded).
const QUEUE: usize = 10_000;
/// Delivery records kept for the control API.
const KEEP: usize = 1_000;
/// Status codes after which the service gives up at once.
const NO_RETRY: [u16; 5] = [400, 401, 403, 404, 406];

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Outcome {
    /// Still being attempted.
    Pending,
    /// A 2xx answer.
    Delivered,
    /// A status the service does not retry (400, 401, 403, 404, 406), or a target no request
    /// can be made to (`reason` says why).
    Rejected,
    /// Every attempt failed.
    Exhausted,
    /// The events were dropped (the queue for the webhook was full, or the webhook was
    /// deleted); `reason` says which.
    Dropped,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Attempt {
    /// 1 for the first try.
    pub number: u32,
    /// The status the target answered, if it answered.
    pub status: Option<u16>,
    /// Why there was no answer (connection refused, timeout, ...).
    pub error: Option<String>,
    /// When it was made.
    pub at: String,
}

/// One POST of a batch of events to a webhook target, with its attempts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Delivery {
    /// Sequence number, from 1.
    pub id: u64,
    /// The app.
    pub app_id: String,
    /// The webhook.
    pub webhook_id: String,
    /// The target URL.
    pub target: String,
    /// The events' ids, in order.
    pub event_ids: Vec<String>,
    /// The events' types, in order.
    pub event_types: Vec<String>,
    /// The attempts so far.
    pub attempts: Vec<Attempt>,
    /// Where it stands.
    pub outcome: Outcome,
    /// Why the events were dropped, for [`Outcome::Dropped`]; why no request could be made,
    /// for an [`Outcome::Rejected`] with no status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Delivery timing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) scale: f64,
    pub(crate) timeout: Duration,
}

/// An event bound for one webhook, with the webhook as it was when the event happened.
#[derive(Debug)]
struct Job {
    app_id: String,
    webhook: Webhook,
    event: Arc<Value>,
    /// The event's serialized length, which batches are capped by.
    size: usize,
}

/// The way to one webhook's worker: its queue, and the signal that stops it at once.
#[derive(Debug)]
struct WorkerHandle {
    queue: mpsc::Sender<Job>,
    cancel: watch::Sender<bool>,
}

/// The delivery machinery shared by every webhook.
#[derive(Debug)]
pub(crate) struct Hub {
    timing: Timing,
    /// http and https targets alike; `Err` says why TLS could not be set up (which only a
    /// crypto provider without TLS 1.2 or 1.3 could cause), and every attempt then fails
    /// with it.
    client: Result<Client<HttpsConnector<HttpConnector>, Full<Bytes>>, String>,
    workers: Mutex<HashMap<String, WorkerHandle>>,
    log: Mutex<(u64, VecDeque<Delivery>)>,
    finished: broadcast::Sender<Delivery>,
    drains: Arc<tokio::sync::Semaphore>,
}

impl Hub {
    pub(crate) fn new(timing: Timing) -> Arc<Self> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        // Targets are often https (a tunnel to a laptop, a deployed service), checked against
        // the public web roots as the service does.
        http.enforce_http(false);
        let client = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map(|tls| {
                let connector = tls.https_or_http().enable_http1().wrap_connector(http);
                Client::builder(TokioExecutor::new()).build(connector)
            })
            .map_err(|e| {
                tracing::error!(error = %e, "webhook deliveries: cannot set up TLS");
                format!("cannot set up TLS: {e}")
            });
        Arc::new(Self {
            timing,
            client,
            workers: Mutex::new(HashMap::new()),
            log: Mutex::new((0, VecDeque::new())),
            drains: Arc::new(tokio::sync::Semaphore::new(MAX_DRAINS)),
            finished: broadcast::channel(1024).0,
        })
    }

    /// Deliveries, oldest first.
    pub(crate) fn deliveries(&self) -> Vec<Delivery> {
        self.log.lock().1.iter().cloned().collect()
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Delivery> {
        self.finished.subscribe()
    }

    /// Stops every worker once its queue is drained.
    pub(crate) fn stop(&self) {
        self.workers.lock().clear();
    }

    /// Stops the worker of a deleted webhook at once: no further attempt is made, not even of
    /// a batch being retried, and the events it had are recorded as dropped.
    pub(crate) fn forget(&self, webhook_id: &str) {
        let handle = self.workers.lock().remove(webhook_id);
        if let Some(h) = handle {
            h.cancel.send_replace(true);
        }
    }

    /// Queues `event` for `webhook`. Must run inside a tokio runtime.
    pub(crate) fn enqueue(self: &Arc<Self>, app_id: &str, webhook: &Webhook, event: Arc<Value>) {
        let job = Job {
            app_id: app_id.to_owned(),
            webhook: webhook.clone(),
            size: crate::json_len::json_len(event.as_ref()),
            event,
        };
        let mut workers = self.workers.lock();
        let handle = workers.entry(webhook.id.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            let (cancel, cancelled) = watch::channel(false);
            tokio::spawn(worker(self.clone(), rx, cancelled));
            WorkerHandle { queue: tx, cancel }
        });
        let (job, reason) = match handle.queue.try_send(job) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(job)) => (job, "queue full"),
            // Only a worker whose runtime ended (or that panicked) closes its queue.
            Err(mpsc::error::TrySendError::Closed(job)) => (job, "delivery worker ended"),
        };
        drop(workers);
        self.dropped(
            &job.app_id,
            &job.webhook,
            std::slice::from_ref(&job.event),
            reason,
        );
    }

    /// Records a new delivery, still being attempted; gives its id.
    fn open(&self, app_id: &str, webhook: &Webhook, events: &[Arc<Value>]) -> u64 {
        self.push(app_id, webhook, events, Outcome::Pending, None)
            .id
    }

    /// Records events dropped for `reason` and tells the subscribers, under one lock: drops
    /// come in bursts when a webhook is overloaded.
    fn dropped(&self, app_id: &str, webhook: &Webhook, events: &[Arc<Value>], reason: &str) {
        let record = self.push(app_id, webhook, events, Outcome::Dropped, Some(reason));
        let _ = self.finished.send(record);
    }

    fn push(
        &self,
        app_id: &str,
        webhook: &Webhook,
        events: &[Arc<Value>],
        outcome: Outcome,
        reason: Option<&str>,
    ) -> Delivery {
        let mut log = self.log.lock();
        log.0 += 1;
        let id = log.0;
        let field = |e: &Arc<Value>, k: &str| e[k].as_str().unwrap_or_default().to_owned();
        let record = Delivery {
            id,
            app_id: app_id.to_owned(),
            webhook_id: webhook.id.clone(),
            target: webhook.target.clone(),
            event_ids: events.iter().map(|e| field(e, "id")).collect(),
            event_types: events.iter().map(|e| field(e, "type")).collect(),
            attempts: Vec::new(),
            outcome,
            reason: reason.map(str::to_owned),
        };
        log.1.push_back(record.clone());
        // The oldest ended records go first; a pending one (a batch still being attempted) is
        // kept until it ends, so its later attempts and outcome are not lost.
        while log.1.len() > KEEP {
            match log.1.iter().position(|d| d.outcome != Outcome::Pending) {
                Some(i) => {
                    log.1.remove(i);
                }
                None => break,
            }
        }
        record
    }

    fn record(&self, id: u64, attempt: Attempt) {
        if let Some(d) = find(&mut self.log.lock().1, id) {
            d.attempts.push(attempt);
        }
    }

    fn close(&self, id: u64, outcome: Outcome, reason: Option<&str>) {
        let done = find(&mut self.log.lock().1, id).map(|d| {
            d.outcome = outcome;
            d.reason = reason.map(str::to_owned);
            d.clone()
        });
        if let Some(d) = done {
            let _ = self.finished.send(d);
        }
    }

    async fn attempt(&self, webhook: &Webhook, body: Bytes) -> Result<u16, Failure> {
        // A target no request can be made to stays so: retrying it would only hold the
        // webhook's queue for the whole schedule. (The API refuses such targets; one could still
        // come from a store written before it did.)
        let request = http::Request::post(webhook.target.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("x-api-key", webhook.secret.as_str())
            .header(http::header::USER_AGENT, "zd-emulator-webhooks")
            .body(Full::new(body))
            .map_err(|e| Failure::Final(format!("invalid target: {e}")))?;
        // The timeout bounds getting the answer's status: once it is in, the outcome is settled
        // whatever the body does.
        let client = self
            .client
            .as_ref()
            .map_err(|e| Failure::Retry(e.clone()))?;
        let response =
            match tokio::time::timeout(self.timing.timeout, client.request(request)).await {
                Ok(Ok(response)) => response,
                Ok(Err(e)) => return Err(Failure::Retry(format!("request failed: {e}"))),
                Err(_) => return Err(Failure::Retry("timed out".into())),
            };
        let status = response.status().as_u16();
        // Drain a short body in the background so the connection goes back to the pool; a long
        // or slow one (a target that streams without end) is dropped with its connection, not
        // held in memory or waited for.
        let wait = MAX_ANSWER_BODY_WAIT.min(self.timing.timeout);
        if let Ok(permit) = Arc::clone(&self.drains).try_acquire_owned() {
            tokio::spawn(async move {
                let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BODY);
                let _ = tokio::time::timeout(wait, body.collect()).await;
                drop(permit);
            });
        }
        Ok(status)
    }
}

/// Why an attempt got no status.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// Worth another attempt (no connection, a timeout).
    Retry(String),
    /// No attempt can succeed (the target cannot be made into a request).
    Final(String),
}

impl Failure {
    fn message(&self) -> &str {
        match self {
            Self::Retry(m) | Self::Final(m) => m,
        }
    }
}

/// The batch that starts with `first`: the jobs queued behind it, in order, up to
/// [`MAX_BATCH`] events and [`MAX_BATCH_BYTES`] of body. `first` goes whatever its size. The
/// job that did not fit is given back, to start the next batch.
fn take_batch(first: Job, rx: &mut mpsc::Receiver<Job>) -> (Vec<Job>, Option<Job>) {
    let budget = MAX_BATCH_BYTES.saturating_sub(ENVELOPE_BYTES);
    let mut bytes = first.size;
    let mut jobs = vec![first];
    while jobs.len() < MAX_BATCH {
        let Ok(job) = rx.try_recv() else { break };
        // One comma between events.
        let grown = bytes.saturating_add(1).saturating_add(job.size);
        if grown > budget {
            return (jobs, Some(job));
        }
        bytes = grown;
        jobs.push(job);
    }
    (jobs, None)
}

/// The record `id` in the log: ids only grow and records leave in any order but never move,
/// so the log stays sorted by id.
fn find(log: &mut VecDeque<Delivery>, id: u64) -> Option<&mut Delivery> {
    let i = log.binary_search_by_key(&id, |d| d.id).ok()?;
    log.get_mut(i)
}

/// Resolves once the webhook is forgotten; never if the worker is only let go (the hub stopping
/// drops the sender, and the queue is then drained as usual).
async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn worker(hub: Arc<Hub>, mut rx: mpsc::Receiver<Job>, mut cancel: watch::Receiver<bool>) {
    // The job that did not fit in the last batch; it starts the next one.
    let mut held: Option<Job> = None;
    loop {
        let first = match held.take() {
            Some(job) => job,
            None => tokio::select! {
                biased;
                () = cancelled(&mut cancel) => break,
                job = rx.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
            },
        };
        let (jobs, rest) = take_batch(first, &mut rx);
        held = rest;
        let Some(last) = jobs.last() else { continue };
        // The latest settings of the webhook win (target and secret may have been updated).
        let webhook = last.webhook.clone();
        let app_id = last.app_id.clone();
        let events: Vec<Arc<Value>> = jobs.into_iter().map(|j| j.event).collect();
        if deliver(&hub, &app_id, &webhook, &events, &mut cancel).await == Ended::Cancelled {
            break;
        }
    }
    // The webhook was deleted: what is still queued is dropped, in one record.
    rx.close();
    let mut rest: Vec<Job> = held.into_iter().collect();
    while let Ok(job) = rx.try_recv() {
        rest.push(job);
    }
    if let Some(last) = rest.last() {
        let events: Vec<Arc<Value>> = rest.iter().map(|j| j.event.clone()).collect();
        hub.dropped(&last.app_id, &last.webhook, &events, DELETED);
    }
}

/// How [`deliver`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// With an outcome of its own.
    Done,
    /// The webhook was deleted.
    Cancelled,
}

async fn deliver(
    hub: &Hub,
    app_id: &str,
    webhook: &Webhook,
    events: &[Arc<Value>],
    cancel: &mut watch::Receiver<bool>,
) -> Ended {
    let id = hub.open(app_id, webhook, events);
    let payload = json!({
        "app": { "id": app_id },
        "webhook": { "id": webhook.id, "version": "v2" },
        "events": events.iter().map(|e| e.as_ref()).collect::<Vec<_>>(),
    });
    let body = Bytes::from(payload.to_string());
    let first = tokio::time::Instant::now();
    for (number, offset) in (1u32..).zip(RETRY_OFFSETS_SECS) {
        // The config refuses scales that are not finite and positive; zero is the fallback
        // should an overflowing product slip through anyway. An attempt that ran past this
        // offset is followed at once: the deadline has passed.
        let scaled =
            Duration::try_from_secs_f64(offset as f64 * hub.timing.scale).unwrap_or(Duration::ZERO);
        tokio::select! {
            biased;
            () = cancelled(cancel) => {
                hub.close(id, Outcome::Dropped, Some(DELETED));
                return Ended::Cancelled;
            }
            () = tokio::time::sleep_until(first + scaled) => {}
        }
        let result = tokio::select! {
            biased;
            () = cancelled(cancel) => {
                // The request was on its way and may have arrived: the log says so rather
                // than showing a batch that was never sent.
                hub.record(
                    id,
                    Attempt {
                        number,
                        status: None,
                        error: Some("cancelled in flight: the webhook was deleted".into()),
                        at: util::now_iso(),
                    },
                );
                hub.close(id, Outcome::Dropped, Some(DELETED));
                return Ended::Cancelled;
            }
            result = hub.attempt(webhook, body.clone()) => result,
        };
        let (status, error) = match &result {
            Ok(s) => (Some(*s), None),
            Err(e) => (None, Some(e.message().to_owned())),
        };
        hub.record(
            id,
            Attempt {
                number,
                status,
                error,
                at: util::now_iso(),
            },
        );
        match result {
            Ok(s) if (200..300).contains(&s) => {
                hub.close(id, Outcome::Delivered, None);
                return Ended::Done;
            }
            Ok(s) if NO_RETRY.contains(&s) => {
                hub.close(id, Outcome::Rejected, None);
                return Ended::Done;
            }
            Err(Failure::Final(why)) => {
                hub.close(id, Outcome::Rejected, Some(&why));
                return Ended::Done;
            }
            Ok(_) | Err(Failure::Retry(_)) => {}
        }
    }
    hub.close(id, Outcome::Exhausted, None);
    Ended::Done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook() -> Webhook {
        Webhook {
            id: "w".into(),
            target: "http://127.0.0.1:9/hook".into(),
            triggers: vec!["conversation:message".into()],
            secret: "s".into(),
            include_full_user: false,
            include_full_source: false,
        }
    }

    /// Delivers one event to `target` on a paused clock, the target never answering within
    /// `timeout`; gives the record and how long it took on that clock.
    async fn deliver_on_paused_clock(target: &str, timeout: Duration) -> (Delivery, Duration) {
        let hub = Hub::new(Timing {
            scale: 1.0,
            timeout,
        });
        let w = Webhook {
            target: target.into(),
            ..webhook()
        };
        let event = Arc::new(json!({ "id": "e", "type": "conversation:message" }));
        let (_keep, mut cancel) = watch::channel(false);
        let start = tokio::time::Instant::now();
        let ended = deliver(&hub, "app", &w, std::slice::from_ref(&event), &mut cancel).await;
        assert_eq!(ended, Ended::Done);
        let took = start.elapsed();
        let log = hub.deliveries();
        assert_eq!(log.len(), 1, "{log:?}");
        (log[0].clone(), took)
    }

    /// A listener that takes connections (the kernel's backlog does) and never answers: every
    /// attempt ends by its timeout, on the paused clock, whenever the bytes get there.
    fn silent_target() -> (std::net::TcpListener, String) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = format!("http://{}/hook", listener.local_addr().unwrap());
        (listener, target)
    }

    fn assert_about(took: Duration, secs: u64) {
        let want = Duration::from_secs(secs);
        assert!(
            took >= want && took <= want + Duration::from_secs(1),
            "took {took:?}, not {want:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_start_at_fixed_offsets_so_the_last_is_within_15_minutes() {
        let (_listener, target) = silent_target();
        let (d, took) = deliver_on_paused_clock(&target, Duration::from_secs(20)).await;
        assert_eq!(d.outcome, Outcome::Exhausted);
        assert_eq!(d.attempts.len(), 5);
        assert!(
            d.attempts
                .iter()
                .all(|a| a.error.as_deref() == Some("timed out")),
            "{d:?}"
        );
        // The fifth attempt starts at 900 s and times out 20 s later (not 60+120+240+480 s of
        // gaps after five timeouts, 1000 s).
        assert_about(took, 920);
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_overruns_the_next_offset_is_followed_at_once() {
        let (_listener, target) = silent_target();
        // Attempts start at 0, 100 (60 had passed), 200 (180 had), 420 and 900.
        let (d, took) = deliver_on_paused_clock(&target, Duration::from_secs(100)).await;
        assert_eq!(d.outcome, Outcome::Exhausted);
        assert_eq!(d.attempts.len(), 5);
        assert_about(took, 1000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_target_no_request_can_be_made_to_is_given_up_at_once() {
        let (d, took) =
            deliver_on_paused_clock("http://exa mple.com/", Duration::from_secs(20)).await;
        assert_eq!(d.outcome, Outcome::Rejected, "{d:?}");
        assert_eq!(d.attempts.len(), 1, "{d:?}");
        assert_eq!(d.attempts[0].status, None);
        assert!(
            d.reason
                .as_deref()
                .is_some_and(|r| r.starts_with("invalid target")),
            "{d:?}"
        );
        assert_eq!(took, Duration::ZERO);
    }

    #[tokio::test]
    async fn batches_are_capped_by_size_in_order_and_a_large_event_goes_alone() {
        let job = |n: usize, size: usize| Job {
            app_id: "app".into(),
            webhook: webhook(),
            event: Arc::new(json!({ "id": n.to_string() })),
            size,
        };
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let quarter = MAX_BATCH_BYTES / 4;
        // Three quarters fit, a fourth does not (with the envelope); then one event over the
        // cap alone; then small ones.
        let sizes = [
            quarter,
            quarter,
            quarter,
            quarter,
            MAX_BATCH_BYTES * 2,
            10,
            10,
        ];
        for (n, size) in sizes.into_iter().enumerate().skip(1) {
            tx.try_send(job(n, size)).unwrap();
        }
        let mut batches = Vec::new();
        let mut next = Some(job(0, sizes[0]));
        while let Some(first) = next.take().or_else(|| rx.try_recv().ok()) {
            let (jobs, rest) = take_batch(first, &mut rx);
            batches.push(
                jobs.iter()
                    .map(|j| j.event["id"].clone())
                    .collect::<Vec<_>>(),
            );
            next = rest;
        }
        assert_eq!(
            batches,
            [
                vec![json!("0"), json!("1"), json!("2")],
                vec![json!("3")],
                vec![json!("4")],
                vec![json!("5"), json!("6")],
            ]
        );
    }

    #[test]
    fn dropped_events_never_evict_the_record_of_a_batch_still_being_attempted() {
        let hub = Hub::new(Timing {
            scale: 1.0,
            timeout: Duration::from_secs(1),
        });
        let w = webhook();
        let event = Arc::new(json!({ "id": "e", "type": "conversation:message" }));
        let retrying = hub.open("app", &w, std::slice::from_ref(&event));
        // A full queue's drops, more than the log keeps.
        for _ in 0..KEEP + 10 {
            hub.dropped("app", &w, std::slice::from_ref(&event), "queue full");
        }
        hub.record(
            retrying,
            Attempt {
                number: 2,
                status: Some(200),
                error: None,
                at: util::now_iso(),
            },
        );
        hub.close(retrying, Outcome::Delivered, None);
        let log = hub.deliveries();
        assert_eq!(log.len(), KEEP);
        let kept = log.iter().find(|d| d.id == retrying);
        assert!(
            kept.is_some_and(|d| d.outcome == Outcome::Delivered && d.attempts.len() == 1),
            "{kept:?}"
        );
    }
}
