//! The webhook service over real sockets: a handler that panics does not stop later
//! deliveries, and an event that does not decode does not cost the rest of its batch. Both are
//! logged by event kind and id, never with the event's contents.
//!
//! The tests run on tokio's current-thread runtime so that the worker task and the server
//! log on the test's thread, where the capturing subscriber is installed.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use serde_json::{Value, json};
use zd_auth::Secret;
use zd_auth::sunshine::{ApiKey, BasicAuth};
use zd_emulator::sunshine::{self as sun, Outcome, SunshineConfig, SunshineServer};
use zd_sunshine::webhooks::{Delivery, WebhookService};
use zd_sunshine::{Client, ErrorKind, Region, models, operations};

/// What was logged on this thread: level and the event's fields as text.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<(tracing::Level, String)>>>);

impl Logs {
    fn at(&self, level: tracing::Level) -> Vec<String> {
        self.0
            .lock()
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, text)| text.clone())
            .collect()
    }

    fn all(&self) -> String {
        self.0
            .lock()
            .iter()
            .map(|(_, text)| text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl tracing::Subscriber for Logs {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0.lock().push((*event.metadata().level(), fields.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Serves `service` on `listener`.
fn serve_on(listener: tokio::net::TcpListener, service: WebhookService) {
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
}

/// Serves `service` on a loopback port; returns the URL of its `/hooks` route.
async fn serve(service: WebhookService) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    serve_on(listener, service);
    url
}

/// POSTs `body` to `url` with `X-API-Key: key`; returns the status.
async fn post(url: &str, key: &str, body: Value) -> u16 {
    let http = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::post(url)
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = http.request(request).await.unwrap();
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await.unwrap();
    status
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The emulator delivers two events one after the other; the handler panics on the first.
/// The second delivery is still answered 200 and reaches the handler, and the panic is logged
/// at error level by event kind and id, without the event's contents.
#[tokio::test]
async fn a_handler_that_panics_does_not_stop_later_deliveries() {
    let logs = Logs::default();
    let _logging = tracing::subscriber::set_default(logs.clone());
    // Retries a thousand times sooner than the service's minutes, so a refused delivery shows
    // up as exhausted within the test rather than after a quarter of an hour.
    let config = SunshineConfig::default().webhook_time_scale(0.001).unwrap();
    let server = SunshineServer::start(config).await.unwrap();
    let key = ApiKey::new(sun::DEMO_APP_KEY_ID, sun::DEMO_APP_KEY_SECRET).unwrap();
    let client = Client::new(Region::Custom(server.base_url()), BasicAuth::new(&key)).unwrap();

    let (tx, mut handled) = tokio::sync::mpsc::unbounded_channel::<String>();
    let calls = Arc::new(AtomicUsize::new(0));
    let handler = move |d: Delivery| {
        let tx = tx.clone();
        let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            let id = d.event.id().unwrap().to_owned();
            tx.send(id).unwrap();
            if first {
                let models::WebhookEvent::ConversationCreate(event) = &d.event else {
                    panic!("not a conversation:create");
                };
                let conversation = event.payload.as_ref().unwrap().conversation.as_ref();
                panic!("handler bug on {:?}", conversation.unwrap().id);
            }
        }
    };
    // The webhook needs the target's URL, and the service the webhook's secret.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/hooks", listener.local_addr().unwrap());
    let created = operations::CreateIntegration::new(
        sun::DEMO_APP_ID,
        serde_json::from_value(json!({ "type": "custom", "displayName": "panics", "webhooks": [{ "target": target, "triggers": ["conversation:create"] }] })).unwrap(),
    )
    .send(&client)
    .await
    .unwrap();
    let Some(models::Integration::Custom(custom)) = created.integration else {
        panic!("not a custom integration");
    };
    let secret = custom.webhooks[0].secret.clone().unwrap();
    serve_on(
        listener,
        WebhookService::new(Secret::new(secret), handler).unwrap(),
    );
    let mut outcomes = server.service().subscribe_deliveries();
    let end_users = format!(
        "{}/_emulator/sunshine/apps/{}/end-users",
        server.base_url(),
        sun::DEMO_APP_ID
    );
    let new_end_user = async || {
        let http = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let request = http::Request::post(end_users.as_str())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let response = http.request(request).await.unwrap();
        assert_eq!(response.status(), 201);
    };

    new_end_user().await;
    let first = within("the first event", handled.recv()).await.unwrap();
    let delivered = within("the first outcome", outcomes.recv()).await.unwrap();
    assert_eq!(delivered.outcome, Outcome::Delivered);

    new_end_user().await;
    let delivery = within("the second outcome", outcomes.recv()).await.unwrap();
    assert_eq!(
        (delivery.outcome, delivery.attempts[0].status),
        (Outcome::Delivered, Some(200)),
        "{delivery:?}"
    );
    assert_eq!(delivery.attempts.len(), 1, "{delivery:?}");
    let second = within("the second event", handled.recv()).await.unwrap();
    assert_eq!(delivery.event_ids, std::slice::from_ref(&second));
    assert_ne!(first, second);

    let errors = logs.at(tracing::Level::ERROR);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("panicked"), "{errors:?}");
    assert!(errors[0].contains(&first), "{errors:?}");
    assert!(errors[0].contains("conversation:create"), "{errors:?}");
    assert!(!logs.all().contains("handler bug"), "{}", logs.all());
}

/// One event of a batch that does not decode: the delivery is answered 200, the good events
/// reach the handler typed and in order, and the bad one reaches it raw, as `Unknown`, with its
/// decode error. The log names its kind and id and none of its contents.
#[tokio::test]
async fn an_event_that_does_not_decode_does_not_cost_the_rest_of_the_batch() {
    let logs = Logs::default();
    let _logging = tracing::subscriber::set_default(logs.clone());
    let (tx, mut handled) = tokio::sync::mpsc::unbounded_channel::<Delivery>();
    let service = WebhookService::new(Secret::new("whsec"), move |d| {
        let tx = tx.clone();
        async move {
            tx.send(d).unwrap();
        }
    })
    .unwrap();
    let url = serve(service).await;

    let typing = |id: &str| json!({"id": id, "type": "conversation:typing", "payload": {}});
    // `conversation` must be an object; the message text is what must stay out of the logs.
    let bad = json!({"id": "e2", "type": "conversation:message", "payload": {
        "conversation": 5,
        "message": {"id": "m2", "content": {"type": "text", "text": "PRIVATE card 4111"}}
    }});
    let body = json!({"app": {"id": "app1"}, "webhook": {"id": "wh1", "version": "v2"},
        "events": [typing("e1"), bad.clone(), typing("e3")]});
    assert_eq!(post(&url, "whsec", body).await, 200);

    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(within("an event", handled.recv()).await.unwrap());
    }
    let ids: Vec<_> = got.iter().map(|d| d.event.id().unwrap()).collect();
    assert_eq!(ids, ["e1", "e2", "e3"]);
    assert!(matches!(
        got[0].event,
        models::WebhookEvent::ConversationTyping(_)
    ));
    assert!(got[0].decode_error.is_none());
    assert!(matches!(
        got[2].event,
        models::WebhookEvent::ConversationTyping(_)
    ));
    let models::WebhookEvent::Unknown(raw) = &got[1].event else {
        panic!("the undecodable event comes raw: {:?}", got[1].event);
    };
    assert_eq!(raw, &bad);
    assert_eq!(got[1].app_id.as_deref(), Some("app1"));
    let error = got[1].decode_error.as_ref().expect("a decode error");
    assert_eq!(error.kind(), ErrorKind::Decode);
    let source = std::error::Error::source(&**error).expect("the serde error");
    assert!(source.to_string().contains("conversation"), "{source}");

    let warnings = logs.at(tracing::Level::WARN);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("e2"), "{warnings:?}");
    assert!(warnings[0].contains("conversation:message"), "{warnings:?}");
    assert!(!logs.all().contains("PRIVATE"), "{}", logs.all());

    // An event with no `type` at all is one this version does not know: `Unknown`, no error.
    let body = json!({"events": ["not an event", typing("e4")]});
    assert_eq!(post(&url, "whsec", body).await, 200);
    let odd = within("the odd event", handled.recv()).await.unwrap();
    assert!(odd.decode_error.is_none());
    assert_eq!(
        odd.event,
        models::WebhookEvent::Unknown(json!("not an event"))
    );
    let next = within("e4", handled.recv()).await.unwrap();
    assert_eq!(next.event.id(), Some("e4"));

    // The envelope itself must still be one: not JSON, or a part of the wrong shape, is 400.
    for body in [
        json!("not an envelope"),
        json!({"events": 5}),
        json!({"app": "app1", "events": []}),
    ] {
        assert_eq!(post(&url, "whsec", body.clone()).await, 400, "{body}");
    }
    assert_eq!(post(&url, "wrong", json!({"events": []})).await, 401);
    assert!(handled.try_recv().is_err());
}

/// A body that is not a v2 payload (here a v1 delivery) is refused with 400, and the refusal
/// is logged with its reason, never with the body or the key.
#[tokio::test]
async fn a_body_that_is_not_a_v2_payload_is_refused_and_logged_without_its_contents() {
    let logs = Logs::default();
    let _logging = tracing::subscriber::set_default(logs.clone());
    let (tx, mut handled) = tokio::sync::mpsc::unbounded_channel::<Delivery>();
    let service = WebhookService::new(Secret::new("whsec-PRIVATE-KEY"), move |d| {
        let tx = tx.clone();
        async move {
            tx.send(d).unwrap();
        }
    })
    .unwrap();
    let url = serve(service).await;
    let v1 = json!({"trigger": "message:appUser", "app": {"_id": "app1"}, "version": "v1.1",
        "messages": [{"_id": "m1", "type": "text", "text": "PRIVATE card 4111", "role": "appUser"}]});
    assert_eq!(post(&url, "whsec-PRIVATE-KEY", v1).await, 400);
    let v3 = json!({"webhook": {"id": "wh1", "version": "v3"},
        "events": [{"id": "e1", "type": "conversation:typing", "payload": {"PRIVATE": 1}}]});
    assert_eq!(post(&url, "whsec-PRIVATE-KEY", v3).await, 400);

    let warnings = logs.at(tracing::Level::WARN);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("events"), "{warnings:?}");
    assert!(warnings[1].contains("v3"), "{warnings:?}");
    assert!(!logs.all().contains("PRIVATE"), "{}", logs.all());
    assert!(handled.try_recv().is_err());
}

/// A failure of a body layer in front of the service that wraps a length limit's error.
#[derive(Debug)]
struct Wrapped(Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("body layer failed")
    }
}

impl std::error::Error for Wrapped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

fn keyed<B>(body: B) -> http::Request<B> {
    http::Request::post("/webhooks")
        .header("x-api-key", "whsec-key")
        .body(body)
        .unwrap()
}

/// A body that breaks off (a dropped connection, a body timeout in front of the service) is
/// answered 503, which Sunshine retries, and nothing of it is queued or marked seen; a length
/// limit of a layer in front is still a 413, even when that layer wraps its error.
#[tokio::test]
async fn a_body_that_breaks_off_is_answered_so_that_sunshine_retries_it() {
    // Every test here that reaches the service's log lines captures them: a thread with no
    // subscriber can register a log line's callsite as of no interest to anyone, and the test
    // capturing that line on another thread would then miss it.
    let logs = Logs::default();
    let _logging = tracing::subscriber::set_default(logs.clone());
    let (tx, mut handled) = tokio::sync::mpsc::unbounded_channel::<Delivery>();
    let service = WebhookService::new(Secret::new("whsec-key"), move |d| {
        let tx = tx.clone();
        async move {
            tx.send(d).unwrap();
        }
    })
    .unwrap();
    let delivery = json!({"app": {"id": "app1"}, "webhook": {"id": "wh1", "version": "v2"},
        "events": [{"id": "e1", "type": "conversation:typing", "payload": {}}]})
    .to_string();

    let (head, _) = delivery.split_at(20);
    let frames: Vec<Result<http_body::Frame<Bytes>, std::io::Error>> = vec![
        Ok(http_body::Frame::data(Bytes::from(head.to_owned()))),
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "request body timed out",
        )),
    ];
    let broken = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
    let response = service.handle(keyed(broken)).await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response
            .extensions()
            .get::<zd_sunshine::webhooks::Rejection>(),
        Some(&zd_sunshine::webhooks::Rejection::Unreadable)
    );

    // The retry, whole, is handled: nothing of the broken one was marked seen.
    let whole = Full::new(Bytes::from(delivery.clone()));
    assert_eq!(service.handle(keyed(whole)).await.status(), 200);
    let event = within("the retried event", handled.recv()).await.unwrap();
    assert_eq!(event.event.id(), Some("e1"));

    let limited =
        http_body_util::Limited::new(Full::new(Bytes::from(delivery)), 10).map_err(Wrapped);
    let response = service.handle(keyed(limited)).await;
    assert_eq!(response.status(), 413);
    let warnings = logs.at(tracing::Level::WARN);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("503"), "{warnings:?}");
    assert!(
        !logs.all().contains("conversation:typing"),
        "{}",
        logs.all()
    );
}
