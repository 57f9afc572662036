//! Webhook delivery: one worker per webhook batches the events that piled up, POSTs them with
//! `X-API-Key`, and retries with growing gaps; every delivery and its outcome is recorded.

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

/// The gaps between attempts at the service's pace: a delivery is tried at most 5 times within
/// about 15 minutes, so 4 doubling gaps summing to 900 s. The configured time scale multiplies
/// them.
pub(crate) const RETRY_GAPS_SECS: [u64; 4] = [60, 120, 240, 480];
/// Events sent in one delivery at most.
const MAX_BATCH: usize = 100;
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
    /// A status the service does not retry (400, 401, 403, 404, 406).
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
    /// Why the events were dropped, for [`Outcome::Dropped`].
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

    async fn attempt(&self, webhook: &Webhook, body: Bytes) -> Result<u16, String> {
        let request = http::Request::post(webhook.target.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("x-api-key", webhook.secret.as_str())
            .header(http::header::USER_AGENT, "zd-emulator-webhooks")
            .body(Full::new(body))
            .map_err(|e| format!("invalid target: {e}"))?;
        // The timeout bounds getting the answer's status: once it is in, the outcome is settled
        // whatever the body does.
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let response =
            match tokio::time::timeout(self.timing.timeout, client.request(request)).await {
                Ok(Ok(response)) => response,
                Ok(Err(e)) => return Err(format!("request failed: {e}")),
                Err(_) => return Err("timed out".into()),
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
    loop {
        let first = tokio::select! {
            biased;
            () = cancelled(&mut cancel) => break,
            job = rx.recv() => match job {
                Some(job) => job,
                None => return,
            },
        };
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
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
    let mut rest = Vec::new();
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
    let mut number = 0u32;
    loop {
        if *cancel.borrow() {
            hub.close(id, Outcome::Dropped, Some(DELETED));
            return Ended::Cancelled;
        }
        number += 1;
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
            Err(e) => (None, Some(e.clone())),
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
            _ => {}
        }
        let Some(gap) = RETRY_GAPS_SECS.get(number as usize - 1) else {
            hub.close(id, Outcome::Exhausted, None);
            return Ended::Done;
        };
        // The config refuses scales that are not finite and positive; zero is the fallback
        // should an overflowing product slip through anyway.
        let scaled =
            Duration::try_from_secs_f64(*gap as f64 * hub.timing.scale).unwrap_or(Duration::ZERO);
        tokio::select! {
            biased;
            () = cancelled(cancel) => {
                hub.close(id, Outcome::Dropped, Some(DELETED));
                return Ended::Cancelled;
            }
            () = tokio::time::sleep(scaled) => {}
        }
    }
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
