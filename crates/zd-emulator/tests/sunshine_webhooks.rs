//! Webhook delivery over loopback: X-API-Key, batching, retries with growing gaps (squeezed by
//! the time scale), no retry on 400/401/403/404/406, timeouts, and a bot answering over REST.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "helpers of tests")]

#[path = "sunshine/client.rs"]
mod client;
#[path = "sunshine/schema.rs"]
mod schema;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use client::{Api, basic};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use zd_emulator::sunshine::{self as sun, Delivery, Outcome, SunshineConfig, SunshineServer};

/// What the receiver answers next: a status, or `None` to hang until the sender gives up.
#[derive(Clone)]
struct Receiver {
    script: Arc<Mutex<VecDeque<Option<u16>>>>,
    gate: Arc<Mutex<Option<Arc<Notify>>>>,
    got: mpsc::UnboundedSender<(Option<String>, Value)>,
}

async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let _ = r.got.send((key, serde_json::from_slice(&body).unwrap()));
    let gate = r.gate.lock().unwrap().take();
    if let Some(g) = gate {
        g.notified().await;
    }
    let next = r.script.lock().unwrap().pop_front().unwrap_or(Some(200));
    match next {
        Some(code) => StatusCode::from_u16(code).unwrap(),
        None => std::future::pending().await,
    }
}

/// The bodies the receiver got, each checked against the spec's webhook schemas on the way out.
struct Inbox {
    rx: mpsc::UnboundedReceiver<(Option<String>, Value)>,
    spec: Option<&'static schema::Spec>,
}

impl Inbox {
    async fn recv(&mut self) -> Option<(Option<String>, Value)> {
        let (key, body) = self.rx.recv().await?;
        if let Some(spec) = self.spec {
            let errors = spec.webhook_errors(&body);
            assert!(errors.is_empty(), "{errors:?} in {body}");
        }
        Some((key, body))
    }
}

fn spec() -> Option<&'static schema::Spec> {
    static SPEC: OnceLock<Option<schema::Spec>> = OnceLock::new();
    SPEC.get_or_init(schema::Spec::load).as_ref()
}

struct Rig {
    server: SunshineServer,
    api: Api,
    auth: String,
    receiver: Receiver,
    got: Inbox,
    target: String,
}

/// Long enough that a slow answer on a loaded machine is never taken for a timeout.
const PATIENT: Duration = Duration::from_secs(120);

async fn rig() -> Rig {
    rig_with_timeout(PATIENT).await
}

async fn rig_with_timeout(timeout: Duration) -> Rig {
    rig_with(0.0001, timeout).await
}

async fn rig_with(time_scale: f64, timeout: Duration) -> Rig {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, got) = mpsc::unbounded_channel();
    let receiver = Receiver {
        script: Arc::default(),
        gate: Arc::default(),
        got: tx,
    };
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = SunshineConfig::default()
        .webhook_time_scale(time_scale)
        .unwrap()
        .webhook_timeout(timeout);
    let server = SunshineServer::start(config).await.unwrap();
    let api = Api::new(server.base_url());
    Rig {
        server,
        api,
        auth: basic(sun::DEMO_APP_KEY_ID, sun::DEMO_APP_KEY_SECRET),
        receiver,
        got: Inbox {
            rx: got,
            spec: spec(),
        },
        target,
    }
}

impl Rig {
    /// The end user of `conversation` taps a postback, reads, types and follows a referral.
    async fn user_acts(&self, conversation: &str) {
        let c = format!("conversations/{conversation}");
        for (path, body) in [
            ("postbacks", json!({"payload":"HELP"})),
            ("read", json!({})),
            ("typing", json!({"typing":true})),
            ("referral", json!({"code":"SPRING"})),
        ] {
            let (st, v) = self.control(&format!("{c}/{path}"), body).await;
            assert_eq!(st, 200, "{v}");
        }
    }

    /// A custom integration with one webhook for `triggers`; returns the webhook's secret.
    async fn integration(&self, triggers: &[&str]) -> String {
        self.create_integration(triggers).await["integration"]["webhooks"][0]["secret"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A custom integration with one webhook to the receiver; its answer.
    async fn create_integration(&self, triggers: &[&str]) -> Value {
        let (st, v) = self
            .api
            .call(
                "POST",
                &format!("/v2/apps/{}/integrations", sun::DEMO_APP_ID),
                Some(&self.auth),
                Some(json!({"type":"custom","displayName":"Bot","webhooks":[{"target":self.target,"triggers":triggers,"includeFullUser":true}]})),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        v
    }

    /// A webhook for messages: the ids of its integration and of itself.
    async fn message_webhook(&self) -> (String, String) {
        let v = self.create_integration(&["conversation:message"]).await;
        let id = |v: &Value| v.as_str().unwrap().to_owned();
        (
            id(&v["integration"]["id"]),
            id(&v["integration"]["webhooks"][0]["id"]),
        )
    }

    async fn delete_webhook(&self, integration: &str, webhook: &str) {
        let (st, v) = self
            .api
            .call(
                "DELETE",
                &format!(
                    "/v2/apps/{}/integrations/{integration}/webhooks/{webhook}",
                    sun::DEMO_APP_ID
                ),
                Some(&self.auth),
                None,
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }

    async fn end_user(&self) -> (String, String) {
        let (st, v) = self
            .api
            .call(
                "POST",
                &format!("/_emulator/sunshine/apps/{}/end-users", sun::DEMO_APP_ID),
                None,
                Some(json!({"givenName":"Ada"})),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        (
            v["user"]["id"].as_str().unwrap().to_owned(),
            v["conversation"]["id"].as_str().unwrap().to_owned(),
        )
    }

    async fn say(&self, conversation: &str, text: &str) {
        let (st, v) = self
            .api
            .call(
                "POST",
                &format!(
                    "/_emulator/sunshine/apps/{}/conversations/{conversation}/messages",
                    sun::DEMO_APP_ID
                ),
                None,
                Some(json!({ "text": text })),
            )
            .await;
        assert_eq!(st, 201, "{v}");
    }
}

/// Replaces ids, timestamps and the webhook secret so the shape can be snapshotted.
fn stable(v: Value) -> Value {
    match v {
        Value::String(s) if s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            json!("[id]")
        }
        Value::String(s) if s.len() == 24 && s.ends_with('Z') && s.as_bytes()[10] == b'T' => {
            json!("[time]")
        }
        Value::Array(a) => Value::Array(a.into_iter().map(stable).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, stable(v))).collect()),
        other => other,
    }
}

async fn next_outcome(rx: &mut tokio::sync::broadcast::Receiver<Delivery>) -> Delivery {
    rx.recv().await.unwrap()
}

#[tokio::test]
async fn a_bot_receives_webhooks_and_answers_over_rest() {
    let mut r = rig().await;
    let secret = r
        .integration(&[
            "conversation:message",
            "conversation:create",
            "client:add",
            "conversation:read",
            "conversation:postback",
            "conversation:typing",
        ])
        .await;
    let mut outcomes = r.server.service().subscribe_deliveries();
    let (_user, conversation) = r.end_user().await;
    // conversation:create then client:add (one or two deliveries, depending on batching).
    let mut types = Vec::new();
    while types.len() < 2 {
        let (key, body) = r.got.recv().await.unwrap();
        assert_eq!(key.as_deref(), Some(secret.as_str()));
        assert_eq!(body["app"]["id"], sun::DEMO_APP_ID);
        assert_eq!(body["webhook"]["version"], "v2");
        for e in body["events"].as_array().unwrap() {
            types.push(e["type"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(types, ["conversation:create", "client:add"]);

    r.say(&conversation, "hello bot").await;
    let (_, body) = r.got.recv().await.unwrap();
    let event = &body["events"][0];
    assert_eq!(event["type"], "conversation:message");
    assert_eq!(event["payload"]["message"]["author"]["type"], "user");
    assert_eq!(event["payload"]["message"]["content"]["text"], "hello bot");

    insta::assert_json_snapshot!("conversation_message_webhook", stable(body.clone()));

    // The bot answers over REST, as a business author.
    let conv_id = event["payload"]["conversation"]["id"].as_str().unwrap();
    let (st, _) = r
        .api
        .call(
            "POST",
            &format!("/v2/apps/{}/conversations/{conv_id}/messages", sun::DEMO_APP_ID),
            Some(&r.auth),
            Some(json!({"author":{"type":"business","displayName":"Bot"},"content":{"type":"text","text":"hi Ada","actions":[{"type":"postback","text":"Help","payload":"HELP"}]}})),
        )
        .await;
    assert_eq!(st, 201);
    let (_, echoed) = r.got.recv().await.unwrap();
    assert_eq!(
        echoed["events"][0]["payload"]["message"]["author"]["type"],
        "business"
    );
    let (st, list) = r
        .api
        .call(
            "GET",
            &format!(
                "/v2/apps/{}/conversations/{conv_id}/messages",
                sun::DEMO_APP_ID
            ),
            Some(&r.auth),
            None,
        )
        .await;
    assert_eq!(st, 200);
    let texts: Vec<_> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"]["text"].clone())
        .collect();
    assert_eq!(texts, [json!("hello bot"), json!("hi Ada")]);

    // Postback, read and typing from the simulated end user.
    let base = format!(
        "/_emulator/sunshine/apps/{}/conversations/{conversation}",
        sun::DEMO_APP_ID
    );
    for (path, body, kind) in [
        (
            "postbacks",
            json!({"payload":"HELP"}),
            "conversation:postback",
        ),
        ("read", json!({}), "conversation:read"),
        ("typing", json!({"typing":true}), "conversation:typing"),
    ] {
        let (st, v) = r
            .api
            .call("POST", &format!("{base}/{path}"), None, Some(body))
            .await;
        assert_eq!(st, 200, "{v}");
        let (_, got) = r.got.recv().await.unwrap();
        assert_eq!(got["events"][0]["type"], kind);
    }
    assert_eq!(
        next_outcome(&mut outcomes).await.outcome,
        Outcome::Delivered
    );
    let (st, list) = r
        .api
        .call("GET", "/_emulator/sunshine/deliveries", None, None)
        .await;
    assert_eq!(st, 200);
    assert!(list["deliveries"].as_array().unwrap().len() >= 6);
}

#[tokio::test]
async fn retries_until_delivered_and_gives_up_on_non_retryable_codes() {
    let mut r = rig().await;
    r.integration(&["conversation:message"]).await;
    let (_, conversation) = r.end_user().await;
    let mut outcomes = r.server.service().subscribe_deliveries();

    r.receiver
        .script
        .lock()
        .unwrap()
        .extend([Some(500), Some(503), Some(429), Some(200)]);
    r.say(&conversation, "one").await;
    let d = next_outcome(&mut outcomes).await;
    assert_eq!(d.outcome, Outcome::Delivered);
    let statuses: Vec<_> = d.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), Some(503), Some(429), Some(200)]);
    for _ in 0..4 {
        r.got.recv().await.unwrap();
    }

    for code in [400, 401, 403, 404, 406] {
        r.receiver.script.lock().unwrap().push_back(Some(code));
        r.say(&conversation, "rejected").await;
        let d = next_outcome(&mut outcomes).await;
        assert_eq!(d.outcome, Outcome::Rejected, "{code}");
        assert_eq!(d.attempts.len(), 1);
        r.got.recv().await.unwrap();
    }

    r.receiver.script.lock().unwrap().extend([Some(500); 5]);
    r.say(&conversation, "doomed").await;
    let d = next_outcome(&mut outcomes).await;
    assert_eq!(d.outcome, Outcome::Exhausted);
    assert_eq!(d.attempts.len(), 5, "at most 5 attempts in all");
    // Every attempt reached the receiver, and a later message is answered 200 again: nothing
    // of the doomed script is left over, so a sixth attempt would have been seen here.
    for _ in 0..5 {
        r.got.recv().await.unwrap();
    }
    assert!(r.receiver.script.lock().unwrap().is_empty());
}

#[tokio::test]
async fn events_that_pile_up_go_out_together() {
    let mut r = rig().await;
    r.integration(&["conversation:message"]).await;
    let (_, conversation) = r.end_user().await;
    let mut outcomes = r.server.service().subscribe_deliveries();
    let gate = Arc::new(Notify::new());
    *r.receiver.gate.lock().unwrap() = Some(gate.clone());
    r.say(&conversation, "first").await;
    // The first delivery is held open by the receiver; these three wait in the queue.
    r.got.recv().await.unwrap();
    for t in ["a", "b", "c"] {
        r.say(&conversation, t).await;
    }
    gate.notify_one();
    assert_eq!(next_outcome(&mut outcomes).await.event_ids.len(), 1);
    let (_, body) = r.got.recv().await.unwrap();
    let texts: Vec<_> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"]["message"]["content"]["text"].clone())
        .collect();
    assert_eq!(texts, [json!("a"), json!("b"), json!("c")]);
}

#[tokio::test]
async fn a_target_that_never_answers_times_out_and_is_retried() {
    // The receiver never answers any attempt, so every attempt times out whatever the
    // machine's speed: the outcome cannot depend on how fast an answer would have been.
    // The timeout still leaves each request ample time to reach the receiver, which the end
    // of the test waits for.
    let mut r = rig_with_timeout(Duration::from_millis(250)).await;
    r.integration(&["conversation:message"]).await;
    let (_, conversation) = r.end_user().await;
    let mut outcomes = r.server.service().subscribe_deliveries();
    r.receiver.script.lock().unwrap().extend([None; 5]);
    r.say(&conversation, "never answered").await;
    let d = next_outcome(&mut outcomes).await;
    assert_eq!(d.outcome, Outcome::Exhausted);
    assert_eq!(d.attempts.len(), 5);
    for a in &d.attempts {
        assert_eq!(a.error.as_deref(), Some("timed out"), "{a:?}");
        assert_eq!(a.status, None);
    }
    for _ in 0..5 {
        r.got.recv().await.unwrap();
    }
}

#[tokio::test]
async fn a_target_whose_answer_never_ends_is_read_no_further_than_needed() {
    // A target that answers 200 and then streams its body without end: the status counts,
    // the body is not held. (Reading it whole would time out and retry, and fill memory.)
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = vec![0; 64 * 1024];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
                while socket.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    let mut r = rig_with_timeout(Duration::from_secs(10)).await;
    r.target = target;
    r.integration(&["conversation:message"]).await;
    let (_, conversation) = r.end_user().await;
    let mut outcomes = r.server.service().subscribe_deliveries();
    r.say(&conversation, "answered at length").await;
    let d = next_outcome(&mut outcomes).await;
    assert_eq!(d.outcome, Outcome::Delivered, "{d:?}");
    assert_eq!(d.attempts.len(), 1);
    assert_eq!(d.attempts[0].status, Some(200));
}

#[tokio::test]
async fn standby_integrations_get_no_messages_while_another_is_in_control() {
    let mut r = rig().await;
    let p = format!("/v2/apps/{}", sun::DEMO_APP_ID);
    let (_, v) = r.api.call("POST", &format!("{p}/integrations"), Some(&r.auth), Some(json!({"type":"custom","webhooks":[{"target":r.target,"triggers":["conversation:message"]}]}))).await;
    let iid = v["integration"]["id"].as_str().unwrap().to_owned();
    let (_, sb) = r
        .api
        .call("POST", &format!("{p}/switchboards"), Some(&r.auth), None)
        .await;
    let s = format!(
        "{p}/switchboards/{}",
        sb["switchboard"]["id"].as_str().unwrap()
    );
    let (_, bot) = r
        .api
        .call(
            "POST",
            &format!("{s}/switchboardIntegrations"),
            Some(&r.auth),
            Some(json!({"name":"bot","integrationId":iid,"deliverStandbyEvents":false})),
        )
        .await;
    let (_, _agent) = r
        .api
        .call(
            "POST",
            &format!("{s}/switchboardIntegrations"),
            Some(&r.auth),
            Some(json!({"name":"agent","integrationType":"zd:agentWorkspace"})),
        )
        .await;
    let (st, _) = r.api.call("PATCH", &s, Some(&r.auth), Some(json!({"enabled":true,"defaultSwitchboardIntegrationId":bot["switchboardIntegration"]["id"]}))).await;
    assert_eq!(st, 200);
    let (_, conversation) = r.end_user().await;
    r.say(&conversation, "to the bot").await;
    let (_, body) = r.got.recv().await.unwrap();
    assert_eq!(
        body["events"][0]["payload"]["message"]["content"]["text"],
        "to the bot"
    );
    // This webhook was created without includeFullUser: the author's user is there, truncated.
    let author = &body["events"][0]["payload"]["message"]["author"];
    assert!(author["userId"].is_string());
    assert_eq!(
        author["user"],
        json!({"id": author["userId"], "authenticated": false})
    );
    let (st, _) = r
        .api
        .call(
            "POST",
            &format!("{p}/conversations/{conversation}/passControl"),
            Some(&r.auth),
            Some(json!({"switchboardIntegration":"agent"})),
        )
        .await;
    assert_eq!(st, 200);
    r.say(&conversation, "to the agent").await;
    r.say(&conversation, "still the agent").await;
    let (st, _) = r
        .api
        .call(
            "POST",
            &format!("{p}/conversations/{conversation}/passControl"),
            Some(&r.auth),
            Some(json!({"switchboardIntegration":"bot"})),
        )
        .await;
    assert_eq!(st, 200);
    r.say(&conversation, "back to the bot").await;
    let (_, body) = r.got.recv().await.unwrap();
    assert_eq!(
        body["events"][0]["payload"]["message"]["content"]["text"],
        "back to the bot"
    );
}

#[test]
fn the_webhook_check_rejects_wrong_shapes() {
    let Some(spec) = spec() else { return };
    let good = json!({"app":{"id":"a"},"webhook":{"id":"w","version":"v2"},"events":[
        {"id":"e","type":"conversation:typing","createdAt":"2026-01-01T00:00:00.000Z",
         "payload":{"conversation":{"id":"c","type":"personal"},"user":{"id":"u"},"activity":{"type":"typing:start"}}}]});
    assert_eq!(spec.webhook_errors(&good), Vec::<String>::new());
    let mut unknown = good.clone();
    unknown["events"][0]["type"] = json!("conversation:teleport");
    assert!(!spec.webhook_errors(&unknown).is_empty());
    let mut wrong = good.clone();
    wrong["events"][0]["payload"]["conversation"]["type"] = json!("group-chat");
    assert!(!spec.webhook_errors(&wrong).is_empty());
}

#[test]
fn a_time_scale_that_is_not_finite_and_positive_is_refused() {
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = SunshineConfig::default()
            .webhook_time_scale(bad)
            .unwrap_err();
        assert!(matches!(err, sun::ConfigError::TimeScale(_)), "{bad}");
    }
    let ok = SunshineConfig::default().webhook_time_scale(0.5).unwrap();
    assert!((ok.time_scale() - 0.5).abs() < f64::EPSILON);
}

impl Rig {
    /// The next `n` events the receiver gets, however they are batched.
    async fn events(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            let (_, body) = self.got.recv().await.unwrap();
            out.extend(body["events"].as_array().unwrap().iter().cloned());
        }
        assert_eq!(out.len(), n, "{out:?}");
        out
    }

    async fn business_message(&self, conversation: &str, text: &str) -> String {
        let (st, v) = self
            .api
            .call(
                "POST",
                &format!(
                    "/v2/apps/{}/conversations/{conversation}/messages",
                    sun::DEMO_APP_ID
                ),
                Some(&self.auth),
                Some(json!({"author":{"type":"business"},"content":{"type":"text","text":text}})),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        v["messages"][0]["id"].as_str().unwrap().to_owned()
    }

    async fn client_status(&self, user: &str, client: &str, status: &str) -> (u16, Value) {
        self.api
            .call(
                "POST",
                &format!(
                    "/_emulator/sunshine/apps/{}/users/{user}/clients/{client}/status",
                    sun::DEMO_APP_ID
                ),
                None,
                Some(json!({ "status": status })),
            )
            .await
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn business_messages_report_delivery_to_the_simulated_end_user() {
    let mut r = rig().await;
    r.integration(&[
        "conversation:message:delivery:channel",
        "conversation:message:delivery:user",
        "conversation:message:delivery:failure",
        "client:update",
    ])
    .await;
    let (user, conversation) = r.end_user().await;
    let (st, clients) = r
        .api
        .call(
            "GET",
            &format!("/v2/apps/{}/users/{user}/clients", sun::DEMO_APP_ID),
            Some(&r.auth),
            None,
        )
        .await;
    assert_eq!(st, 200, "{clients}");
    let client = clients["clients"][0]["id"].as_str().unwrap().to_owned();

    // Reaches the web widget's channel, then the simulated user sees it.
    let id = r.business_message(&conversation, "hello Ada").await;
    let got = r.events(2).await;
    assert_eq!(
        types(&got),
        [
            "conversation:message:delivery:channel",
            "conversation:message:delivery:user"
        ]
    );
    for (e, last) in got.iter().zip([false, true]) {
        assert_eq!(e["payload"]["message"]["id"], id.as_str());
        assert_eq!(e["payload"]["user"]["id"], user.as_str());
        assert_eq!(e["payload"]["conversation"]["id"], conversation.as_str());
        assert_eq!(e["payload"]["destination"]["type"], "web");
        assert_eq!(e["payload"]["isFinalEvent"], last);
    }

    // The end user blocks the business: a client:update, and the next message fails.
    let (st, v) = r.client_status(&user, &client, "blocked").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["client"]["status"], "blocked");
    let got = r.events(1).await;
    assert_eq!(types(&got), ["client:update"]);
    assert_eq!(got[0]["payload"]["reason"], "blocked");
    assert_eq!(got[0]["payload"]["client"]["id"], client.as_str());
    let id = r.business_message(&conversation, "are you there?").await;
    let got = r.events(1).await;
    assert_eq!(types(&got), ["conversation:message:delivery:failure"]);
    assert_eq!(got[0]["payload"]["message"]["id"], id.as_str());
    assert_eq!(got[0]["payload"]["error"]["code"], "blocked");
    assert_eq!(got[0]["payload"]["isFinalEvent"], true);

    // Unblocking is a change too; the same status again is not.
    let (st, _) = r.client_status(&user, &client, "active").await;
    assert_eq!(st, 200);
    let (st, _) = r.client_status(&user, &client, "active").await;
    assert_eq!(st, 200);
    let got = r.events(1).await;
    assert_eq!(got[0]["payload"]["reason"], "unblocked");
    r.business_message(&conversation, "welcome back").await;
    assert_eq!(
        types(&r.events(2).await),
        [
            "conversation:message:delivery:channel",
            "conversation:message:delivery:user"
        ]
    );
    // A user's own message is not delivered back to them.
    r.say(&conversation, "thanks").await;
    let (st, v) = r.client_status(&user, &client, "sleeping").await;
    assert_eq!(st, 400, "{v}");
    let (st, _) = r.client_status(&user, "nope", "blocked").await;
    assert_eq!(st, 404);
    let (st, _) = r.client_status(&user, &client, "blocked").await;
    assert_eq!(st, 200);
    assert_eq!(types(&r.events(1).await), ["client:update"]);
}

#[tokio::test]
async fn failed_control_actions_are_reported_as_failure_events() {
    let mut r = rig().await;
    let p = format!("/v2/apps/{}", sun::DEMO_APP_ID);
    let (_, v) = r
        .api
        .call(
            "POST",
            &format!("{p}/integrations"),
            Some(&r.auth),
            Some(
                json!({"type":"custom","webhooks":[{"target":r.target,"triggers":[
        "switchboard:passControl", "switchboard:passControl:failure",
        "switchboard:offerControl:failure", "switchboard:acceptControl:failure"]}]}),
            ),
        )
        .await;
    let iid = v["integration"]["id"].as_str().unwrap().to_owned();
    let (_, sb) = r
        .api
        .call("POST", &format!("{p}/switchboards"), Some(&r.auth), None)
        .await;
    let s = format!(
        "{p}/switchboards/{}",
        sb["switchboard"]["id"].as_str().unwrap()
    );
    let (_, bot) = r
        .api
        .call(
            "POST",
            &format!("{s}/switchboardIntegrations"),
            Some(&r.auth),
            Some(json!({"name":"bot","integrationId":iid,"deliverStandbyEvents":true})),
        )
        .await;
    let (st, _) = r.api.call("PATCH", &s, Some(&r.auth), Some(json!({"enabled":true,"defaultSwitchboardIntegrationId":bot["switchboardIntegration"]["id"]}))).await;
    assert_eq!(st, 200);
    let (_, conversation) = r.end_user().await;
    let c = format!("{p}/conversations/{conversation}");
    // The failure events carry `{code, message}` with the codes of the spec's examples.
    let cases = [
        (
            "acceptControl",
            json!({}),
            403,
            "switchboard:acceptControl:failure",
            "switchboard_invalid_action",
        ),
        (
            "passControl",
            json!({"switchboardIntegration":"nobody","metadata":{"why":"test"}}),
            404,
            "switchboard:passControl:failure",
            "switchboard_invalid_target",
        ),
        (
            "offerControl",
            json!({"switchboardIntegration":"nobody"}),
            404,
            "switchboard:offerControl:failure",
            "switchboard_invalid_target",
        ),
        // The spec's own example: accepted, but reported as a failure, and nothing changes.
        (
            "offerControl",
            json!({"switchboardIntegration":"bot"}),
            200,
            "switchboard:offerControl:failure",
            "switchboard_invalid_target",
        ),
    ];
    for (action, body, status, kind, code) in cases {
        let (st, v) = r
            .api
            .call("POST", &format!("{c}/{action}"), Some(&r.auth), Some(body))
            .await;
        assert_eq!(st, status, "{action}: {v}");
        let got = r.events(1).await;
        assert_eq!(types(&got), [kind]);
        assert_eq!(
            got[0]["payload"]["conversation"]["id"],
            conversation.as_str()
        );
        let error = &got[0]["payload"]["error"];
        assert_eq!(error["code"], code, "{error}");
        assert!(error["message"].is_string(), "{error}");
    }
    let (_, got) = r.api.call("GET", &c, Some(&r.auth), None).await;
    assert!(
        got["conversation"]
            .get("pendingSwitchboardIntegration")
            .is_none(),
        "{got}"
    );
    // A malformed request is refused without an event; a good one is the plain event.
    let (st, _) = r
        .api
        .call(
            "POST",
            &format!("{c}/passControl"),
            Some(&r.auth),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 400);
    let (st, _) = r
        .api
        .call(
            "POST",
            &format!("{c}/passControl"),
            Some(&r.auth),
            Some(json!({"switchboardIntegration":"bot"})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(types(&r.events(1).await), ["switchboard:passControl"]);
}

impl Rig {
    /// `POST /_emulator/sunshine/apps/{demo}/{path}` with `body`.
    async fn control(&self, path: &str, body: Value) -> (u16, Value) {
        self.api
            .call(
                "POST",
                &format!("/_emulator/sunshine/apps/{}/{path}", sun::DEMO_APP_ID),
                None,
                Some(body),
            )
            .await
    }

    /// The messages of `conversation`, oldest first.
    async fn messages(&self, conversation: &str) -> Vec<Value> {
        let (st, v) = self
            .api
            .call(
                "GET",
                &format!(
                    "/v2/apps/{}/conversations/{conversation}/messages",
                    sun::DEMO_APP_ID
                ),
                Some(&self.auth),
                None,
            )
            .await;
        assert_eq!(st, 200, "{v}");
        v["messages"].as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn a_referral_reaches_the_webhook_with_its_code() {
    let mut r = rig().await;
    r.integration(&["conversation:referral"]).await;
    let (user, conversation) = r.end_user().await;
    let path = format!("conversations/{conversation}/referral");
    // Refused without an event: no code, an unknown detail.
    let (st, v) = r.control(&path, json!({})).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = r
        .control(
            &path,
            json!({ "code": "SPRING", "details": { "colour": "red" } }),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = r
        .control(
            &path,
            json!({ "code": "SPRING", "details": { "source": "MESSENGER_CODE", "type": "OPEN-THREAD" } }),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let got = r.events(1).await;
    assert_eq!(types(&got), ["conversation:referral"]);
    let payload = &got[0]["payload"];
    assert_eq!(payload["referral"]["code"], "SPRING");
    assert_eq!(payload["user"]["id"], user.as_str());
    assert_eq!(payload["conversation"]["id"], conversation.as_str());
    insta::assert_json_snapshot!("conversation_referral_event", stable(got[0].clone()));
}

#[tokio::test]
async fn user_update_comes_when_a_user_authenticates_not_for_a_profile_update() {
    let mut r = rig().await;
    r.integration(&["user:update"]).await;
    let (user, _) = r.end_user().await;
    // A profile written through the API is not a change of identification: no event. (The
    // authentication below would come first if this sent one.)
    let path = format!("/v2/apps/{}/users/{user}", sun::DEMO_APP_ID);
    let body = json!({"profile": {"surname": "Lovelace"}});
    let (st, v) = r.api.call("PATCH", &path, Some(&r.auth), Some(body)).await;
    assert_eq!(st, 200, "{v}");
    let authenticate = format!("users/{user}/authenticate");
    let (st, v) = r.control(&authenticate, json!({})).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = r
        .control(&authenticate, json!({ "externalId": "ada-7" }))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["user"]["externalId"], "ada-7");
    assert_eq!(v["user"]["authenticated"], true);
    // Found by its new external id.
    let (st, v) = r
        .api
        .call(
            "GET",
            &format!("/v2/apps/{}/users/ada-7", sun::DEMO_APP_ID),
            Some(&r.auth),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["user"]["id"], user.as_str());
    let got = r.events(1).await;
    assert_eq!(types(&got), ["user:update"]);
    let payload = &got[0]["payload"];
    assert_eq!(payload["reason"], "authentication");
    assert_eq!(payload["user"]["id"], user.as_str());
    assert_eq!(payload["user"]["externalId"], "ada-7");
    assert_eq!(payload["user"]["authenticated"], true);
    assert_eq!(payload["source"]["type"], "web");
    // Once only; and an external id another user holds is a merge, not this.
    let (st, v) = r
        .control(&authenticate, json!({ "externalId": "ada-8" }))
        .await;
    assert_eq!(st, 409, "{v}");
    let (other, _) = r.end_user().await;
    let (st, v) = r
        .control(
            &format!("users/{other}/authenticate"),
            json!({ "externalId": "ada-7" }),
        )
        .await;
    assert_eq!(st, 409, "{v}");
}

#[tokio::test]
async fn a_merge_keeps_the_metadata_that_fits_4kb_and_reports_the_rest() {
    let mut r = rig().await;
    r.integration(&["user:merge"]).await;
    let app = format!("/v2/apps/{}", sun::DEMO_APP_ID);
    let (st, v) = r
        .control("end-users", json!({ "externalId": "kim-1" }))
        .await;
    assert_eq!(st, 201, "{v}");
    let (anon_id, _) = r.end_user().await;
    let notes = "x".repeat(4000);
    let history = "y".repeat(200);
    for (user, metadata) in [
        ("kim-1", json!({"plan": "gold", "notes": notes})),
        (
            anon_id.as_str(),
            json!({"plan": "free", "lang": "fr", "history": history}),
        ),
    ] {
        let body = json!({ "metadata": metadata });
        let path = format!("{app}/users/{user}");
        let (st, v) = r.api.call("PATCH", &path, Some(&r.auth), Some(body)).await;
        assert_eq!(st, 200, "{v}");
    }

    let (st, v) = r
        .control(
            "users/merge",
            json!({ "surviving": "kim-1", "discarded": anon_id }),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    // The survivor's own value wins, `lang` fits, `history` would pass 4KB.
    assert_eq!(
        v["user"]["metadata"],
        json!({"plan": "gold", "notes": notes, "lang": "fr"})
    );
    let got = r.events(1).await;
    assert_eq!(types(&got), ["user:merge"]);
    assert_eq!(
        got[0]["payload"]["discardedMetadata"],
        json!({ "history": history })
    );
}

#[tokio::test]
async fn logging_in_merges_the_anonymous_user_into_the_known_one() {
    let mut r = rig().await;
    r.integration(&["user:merge"]).await;
    // The known user, with a conversation of their own...
    let (st, known) = r
        .control(
            "end-users",
            json!({ "externalId": "ada-1", "surname": "Lovelace" }),
        )
        .await;
    assert_eq!(st, 201, "{known}");
    let known_id = known["user"]["id"].as_str().unwrap().to_owned();
    let known_conv = known["conversation"]["id"].as_str().unwrap().to_owned();
    // ...and the anonymous one they were on another device, who wrote in between.
    let (anon_id, anon_conv) = r.end_user().await;
    r.say(&known_conv, "first, as ada-1").await;
    r.say(&anon_conv, "then, anonymously").await;
    r.say(&known_conv, "last, as ada-1").await;

    let (st, v) = r
        .control(
            "users/merge",
            json!({ "surviving": "ada-1", "discarded": anon_id }),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["user"]["id"], known_id.as_str());
    assert_eq!(
        v["user"]["profile"]["givenName"], "Ada",
        "filled from the discarded user"
    );
    assert_eq!(v["user"]["profile"]["surname"], "Lovelace");

    let got = r.events(1).await;
    assert_eq!(types(&got), ["user:merge"]);
    let payload = &got[0]["payload"];
    assert_eq!(payload["reason"], "sdkLogin");
    assert_eq!(payload["mergedUsers"]["surviving"]["id"], known_id.as_str());
    assert_eq!(payload["mergedUsers"]["discarded"]["id"], anon_id.as_str());
    assert_eq!(
        payload["mergedConversations"]["surviving"]["id"],
        known_conv.as_str()
    );
    assert_eq!(
        payload["mergedConversations"]["discarded"]["id"],
        anon_conv.as_str()
    );
    insta::assert_json_snapshot!("user_merge_event", stable(got[0].clone()));

    // One user, one conversation holding every message in order, all by the survivor.
    let app = format!("/v2/apps/{}", sun::DEMO_APP_ID);
    let (st, _) = r
        .api
        .call(
            "GET",
            &format!("{app}/users/{anon_id}"),
            Some(&r.auth),
            None,
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = r
        .api
        .call(
            "GET",
            &format!("{app}/conversations/{anon_conv}"),
            Some(&r.auth),
            None,
        )
        .await;
    assert_eq!(st, 404);
    let messages = r.messages(&known_conv).await;
    let texts: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["content"]["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        ["first, as ada-1", "then, anonymously", "last, as ada-1"]
    );
    assert!(
        messages
            .iter()
            .all(|m| m["author"]["userId"] == known_id.as_str())
    );
    let (st, clients) = r
        .api
        .call(
            "GET",
            &format!("{app}/users/{known_id}/clients"),
            Some(&r.auth),
            None,
        )
        .await;
    assert_eq!(st, 200, "{clients}");
    assert_eq!(clients["clients"].as_array().unwrap().len(), 2, "{clients}");

    // Nobody left to merge: the discarded user is gone, and no one merges into themselves.
    let (st, _) = r
        .control(
            "users/merge",
            json!({ "surviving": "ada-1", "discarded": anon_id }),
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = r
        .control(
            "users/merge",
            json!({ "surviving": "ada-1", "discarded": known_id }),
        )
        .await;
    assert_eq!(st, 400);
}

impl Rig {
    /// A custom integration with two webhooks for `triggers` at the same target, one created
    /// with `option` and one without; returns their ids, as `(with, without)`.
    async fn two_webhooks(&self, triggers: &[&str], option: &str) -> (String, String) {
        let hook = |on: bool| json!({"target":self.target,"triggers":triggers, option: on});
        let integrations = format!("/v2/apps/{}/integrations", sun::DEMO_APP_ID);
        let (st, v) = self
            .api
            .call(
                "POST",
                &integrations,
                Some(&self.auth),
                Some(json!({"type":"custom","webhooks":[hook(true)]})),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        let with = v["integration"]["webhooks"][0]["id"].as_str().unwrap();
        let iid = v["integration"]["id"].as_str().unwrap();
        let (st, w) = self
            .api
            .call(
                "POST",
                &format!("{integrations}/{iid}/webhooks"),
                Some(&self.auth),
                Some(hook(false)),
            )
            .await;
        assert_eq!(st, 201, "{w}");
        (
            with.to_owned(),
            w["webhook"]["id"].as_str().unwrap().to_owned(),
        )
    }

    /// The next `n` events for each of the webhooks `a` and `b`, however they are batched.
    async fn events_of(&mut self, a: &str, b: &str, n: usize) -> (Vec<Value>, Vec<Value>) {
        let (mut to_a, mut to_b) = (Vec::new(), Vec::new());
        while to_a.len() < n || to_b.len() < n {
            let (_, body) = self.got.recv().await.unwrap();
            let events = body["events"].as_array().unwrap().iter().cloned();
            match body["webhook"]["id"].as_str().unwrap() {
                id if id == a => to_a.extend(events),
                id if id == b => to_b.extend(events),
                other => panic!("a delivery to an unknown webhook {other}"),
            }
        }
        assert_eq!((to_a.len(), to_b.len()), (n, n));
        (to_a, to_b)
    }
}

/// The places a payload carries a user of the `user` schema, per the spec's event schemas.
const USER_PATHS: [&str; 5] = [
    "/payload/user",
    "/payload/message/author/user",
    "/payload/activity/author/user",
    "/payload/mergedUsers/surviving",
    "/payload/mergedUsers/discarded",
];

#[tokio::test]
async fn webhooks_get_truncated_users_unless_created_with_include_full_user() {
    let mut r = rig().await;
    let triggers = [
        "conversation:create",
        "conversation:message",
        "conversation:postback",
        "conversation:read",
        "conversation:typing",
        "conversation:referral",
        "conversation:message:delivery:user",
        "user:update",
        "user:merge",
    ];
    let (full, lean) = r.two_webhooks(&triggers, "includeFullUser").await;
    let (user, conversation) = r.end_user().await;
    r.say(&conversation, "hello").await;
    r.user_acts(&conversation).await;
    r.business_message(&conversation, "hi Ada").await;
    let (st, v) = r
        .control(
            &format!("users/{user}/authenticate"),
            json!({ "externalId": "ada-0" }),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = r
        .control("end-users", json!({ "externalId": "ada-1" }))
        .await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = r
        .control(
            "users/merge",
            json!({ "surviving": "ada-1", "discarded": user }),
        )
        .await;
    assert_eq!(st, 200, "{v}");

    // create, message, postback, read, typing, referral, the business message and its
    // delivery, update, the second user's create, merge.
    let (to_full, to_lean) = r.events_of(&full, &lean, 11).await;
    assert_eq!(types(&to_full), types(&to_lean));
    let mut users_seen = 0;
    for (f, l) in to_full.iter().zip(&to_lean) {
        for path in USER_PATHS {
            let (whole, cut) = match (f.pointer(path), l.pointer(path)) {
                (Some(whole), Some(cut)) => (whole, cut),
                (None, None) => continue,
                _ => panic!("{path} in one of {f} and {l} only"),
            };
            users_seen += 1;
            assert!(
                whole["profile"].is_object(),
                "{path} of {}: {whole}",
                f["type"]
            );
            let mut truncated = json!({"id": whole["id"], "authenticated": whole["authenticated"]});
            if whole["externalId"].is_string() {
                truncated["externalId"] = whole["externalId"].clone();
            }
            assert_eq!(cut, &truncated, "{path} of {}", l["type"]);
        }
    }
    // Every kind of place was met: a user in each event but the business message.
    assert_eq!(users_seen, 11, "{to_lean:?}");
    let kinds_with_author = to_lean
        .iter()
        .filter(|e| {
            e.pointer("/payload/message/author/user").is_some()
                || e.pointer("/payload/activity/author/user").is_some()
        })
        .count();
    assert_eq!(kinds_with_author, 3, "the user's message, read and typing");
}

#[tokio::test]
async fn sources_name_the_client_and_device_only_for_include_full_source() {
    let mut r = rig().await;
    let triggers = [
        "conversation:create",
        "client:add",
        "conversation:message",
        "conversation:postback",
        "conversation:read",
        "conversation:typing",
        "conversation:referral",
    ];
    let (full, lean) = r.two_webhooks(&triggers, "includeFullSource").await;
    let (user, conversation) = r.end_user().await;
    r.say(&conversation, "from my browser").await;
    r.user_acts(&conversation).await;
    let (st, clients) = r
        .api
        .call(
            "GET",
            &format!("/v2/apps/{}/users/{user}/clients", sun::DEMO_APP_ID),
            Some(&r.auth),
            None,
        )
        .await;
    assert_eq!(st, 200, "{clients}");
    let client = &clients["clients"][0];

    let (to_full, to_lean) = r.events_of(&full, &lean, 7).await;
    assert_eq!(types(&to_full), triggers);
    for (f, l) in to_full.iter().zip(&to_lean) {
        let kind = &f["type"];
        let at = [
            "/payload/source",
            "/payload/message/source",
            "/payload/activity/source",
        ]
        .into_iter()
        .find(|p| f.pointer(p).is_some())
        .unwrap_or_else(|| panic!("{kind} has no source: {f}"));
        let (whole, cut) = (&f.pointer(at).unwrap(), &l.pointer(at).unwrap());
        assert_eq!(whole["client"], *client, "{kind}");
        assert_eq!(whole["device"]["clientId"], client["id"], "{kind}");
        assert!(
            cut.get("client").is_none() && cut.get("device").is_none(),
            "{kind}: {cut}"
        );
        assert_eq!(cut["type"], "web", "{kind}");
    }
    // The stored message is as the API shows it: no client or device.
    let messages = r.messages(&conversation).await;
    assert_eq!(
        messages[0]["source"],
        json!({"type":"web","integrationId":"web"})
    );
}

#[tokio::test]
async fn a_2xx_counts_once_its_status_is_in_however_slow_its_body() {
    // The target answers 200 at once and then keeps its chunked body open for good. The
    // timeout bounds getting the status, not the body: the delivery is a success at its first
    // attempt, not a timeout retried (which would send the events again).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/hook", listener.local_addr().unwrap());
    let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = requests.clone();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut request = vec![0; 64 * 1024];
                while socket.read(&mut request).await.is_ok_and(|n| n > 0) {
                    seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n";
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    // The body never ends; the socket stays open.
                    std::future::pending::<()>().await;
                }
            });
        }
    });
    // Short enough that a body read within the timeout would time out five times within the
    // test, long enough that the status always arrives in time.
    let mut r = rig_with_timeout(Duration::from_secs(3)).await;
    r.target = target;
    r.integration(&["conversation:message"]).await;
    let (_, conversation) = r.end_user().await;
    let mut outcomes = r.server.service().subscribe_deliveries();
    r.say(&conversation, "answered slowly").await;
    let d = next_outcome(&mut outcomes).await;
    assert_eq!(d.outcome, Outcome::Delivered, "{d:?}");
    assert_eq!(d.attempts.len(), 1, "{d:?}");
    assert_eq!(d.attempts[0].status, Some(200));
    assert_eq!(d.attempts[0].error, None);
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn deleting_a_webhook_stops_its_deliveries_at_once() {
    // Real gaps (a minute before the second attempt): the batch is mid-retry when the webhook
    // is deleted, and the deletion must end it then, not after 15 minutes of retries.
    let mut r = rig_with(1.0, PATIENT).await;
    let (integration, webhook) = r.message_webhook().await;
    let (_, conversation) = r.end_user().await;
    let mut outcomes = r.server.service().subscribe_deliveries();
    r.receiver.script.lock().unwrap().push_back(Some(500));
    r.say(&conversation, "first").await;
    r.got.recv().await.unwrap();
    // The failed first attempt is on record: the worker now waits out its first gap.
    let on_record = async {
        while !r
            .server
            .service()
            .deliveries()
            .iter()
            .any(|d| d.attempts.len() == 1)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), on_record)
        .await
        .expect("the first attempt was never recorded");
    // These wait in the queue behind the batch being retried.
    r.say(&conversation, "second").await;
    r.say(&conversation, "third").await;

    r.delete_webhook(&integration, &webhook).await;

    // A guard against hanging for the whole retry schedule should the worker go on; the
    // outcomes come at once when it stops.
    let guard = Duration::from_secs(30);
    let d = tokio::time::timeout(guard, next_outcome(&mut outcomes))
        .await
        .expect("the batch being retried ends when its webhook is deleted");
    assert_eq!(d.outcome, Outcome::Dropped, "{d:?}");
    assert_eq!(d.reason.as_deref(), Some("webhook deleted"));
    assert_eq!(d.attempts.len(), 1, "{d:?}");
    assert_eq!(d.event_ids.len(), 1);
    let d = tokio::time::timeout(guard, next_outcome(&mut outcomes))
        .await
        .expect("the queued events are recorded as dropped");
    assert_eq!(d.outcome, Outcome::Dropped, "{d:?}");
    assert_eq!(d.reason.as_deref(), Some("webhook deleted"));
    assert!(d.attempts.is_empty(), "{d:?}");
    assert_eq!(d.event_ids.len(), 2);
    // The worker is gone (the queued events' record is its last act): the receiver got the
    // first attempt only, and the control API shows the same.
    assert!(r.got.rx.try_recv().is_err());
    let (st, list) = r
        .api
        .call("GET", "/_emulator/sunshine/deliveries", None, None)
        .await;
    assert_eq!(st, 200);
    let list = list["deliveries"].as_array().unwrap();
    assert!(
        list.iter()
            .all(|d| d["outcome"] == "dropped" && d["reason"] == "webhook deleted"),
        "{list:?}"
    );
}

#[tokio::test]
async fn payloads_carry_only_the_members_the_spec_gives_them() {
    let mut r = rig().await;
    r.integration(&["conversation:create", "client:add"]).await;
    // The simulated end user logs in: a personal conversation and an SDK client.
    let (user, _) = r.end_user().await;
    for participants in [
        json!([{ "userId": user, "subscribeSDKClient": false }]),
        json!([]),
    ] {
        let (st, v) = r
            .api
            .call(
                "POST",
                &format!("/v2/apps/{}/conversations", sun::DEMO_APP_ID),
                Some(&r.auth),
                Some(json!({ "type": "sdkGroup", "participants": participants })),
            )
            .await;
        assert_eq!(st, 201, "{v}");
    }
    let (st, v) = r
        .api
        .call(
            "POST",
            &format!("/v2/apps/{}/conversations", sun::DEMO_APP_ID),
            Some(&r.auth),
            Some(json!({ "type": "personal", "participants": [{ "userId": user }] })),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let mut events = Vec::new();
    while events.len() < 5 {
        let (_, body) = r.got.recv().await.unwrap();
        events.extend(body["events"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(
        types(&events),
        [
            "conversation:create",
            "client:add",
            "conversation:create",
            "conversation:create",
            "conversation:create"
        ]
    );
    // The user is "only present if the created conversation was of type personal".
    assert_eq!(events[0]["payload"]["user"]["id"], user.as_str());
    for e in &events[2..4] {
        assert_eq!(e["payload"]["conversation"]["type"], "sdkGroup");
        assert!(e["payload"].get("user").is_none(), "{e}");
    }
    assert_eq!(events[4]["payload"]["user"]["id"], user.as_str());
    // The client's conversation is "only present when the reason is channelLinking".
    assert_eq!(events[1]["payload"]["reason"], "sdkLogin");
    assert!(
        events[1]["payload"].get("conversation").is_none(),
        "{}",
        events[1]
    );
}

#[tokio::test]
async fn a_webhook_deleted_while_a_request_is_in_flight_keeps_that_attempt_on_record() {
    let mut r = rig_with(1.0, PATIENT).await;
    let (integration, webhook) = r.message_webhook().await;
    let (_, conversation) = r.end_user().await;
    let mut outcomes = r.server.service().subscribe_deliveries();
    // The receiver takes the request and never answers: it may well have handled the events.
    r.receiver.script.lock().unwrap().push_back(None);
    r.say(&conversation, "first").await;
    r.got.recv().await.unwrap();
    r.delete_webhook(&integration, &webhook).await;
    let d = tokio::time::timeout(Duration::from_secs(30), next_outcome(&mut outcomes))
        .await
        .expect("the batch in flight ends when its webhook is deleted");
    assert_eq!(d.outcome, Outcome::Dropped, "{d:?}");
    assert_eq!(d.reason.as_deref(), Some("webhook deleted"));
    // The log does not claim nothing was sent.
    assert_eq!(d.attempts.len(), 1, "{d:?}");
    let error = d.attempts[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("cancelled in flight"), "{d:?}");
}

#[tokio::test]
async fn an_https_target_is_spoken_to_in_tls() {
    // Webhook targets are often https (a tunnel to a laptop, a deployed bot). The emulator
    // must open TLS to them, not fail every attempt for its scheme. This listener is not a TLS
    // server: it only checks that the first bytes are a TLS ClientHello.
    let r = rig().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (st, v) = r
        .api
        .call(
            "POST",
            &format!("/v2/apps/{}/integrations", sun::DEMO_APP_ID),
            Some(&r.auth),
            Some(json!({"type":"custom","displayName":"Tunnel","webhooks":[
                {"target": format!("https://127.0.0.1:{port}/hook"),
                 "triggers": ["conversation:message"]}]})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let (_, conversation) = r.end_user().await;
    r.say(&conversation, "over TLS").await;
    let (mut socket, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
        .await
        .expect("the emulator never connected to the https target")
        .unwrap();
    let mut head = [0_u8; 6];
    tokio::io::AsyncReadExt::read_exact(&mut socket, &mut head)
        .await
        .unwrap();
    // A handshake record (22) of TLS 1.x whose first message is a ClientHello (1).
    assert_eq!((head[0], head[1], head[5]), (22, 3, 1), "{head:?}");
}

impl Rig {
    /// `method` on `path` under the demo app, with the app key; checks an error against the
    /// operation's documented response schema when the spec is there.
    async fn admin(&self, op: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (st, v) = self
            .api
            .call(
                method,
                &format!("/v2/apps/{}/{path}", sun::DEMO_APP_ID),
                Some(&self.auth),
                body,
            )
            .await;
        if let (Some(spec), true) = (spec(), st >= 400) {
            let schema = spec.response_schema(op, st).unwrap();
            let errors = spec.errors(&schema, &v, "$");
            assert!(errors.is_empty(), "{op} {st}: {errors:?} in {v}");
        }
        (st, v)
    }
}

#[tokio::test]
async fn webhook_targets_no_request_can_be_made_to_are_refused() {
    let r = rig().await;
    let (integration, webhook) = r.message_webhook().await;
    let hooks = format!("integrations/{integration}/webhooks");
    let bad = [
        "http://",
        "https://",
        "http://exa mple.com/hook",
        "http://:8080/hook",
        "ftp://example.com/hook",
        "/hook",
        "example.com/hook",
    ];
    for target in bad {
        let (st, v) = r
            .admin(
                "CreateIntegration",
                "POST",
                "integrations",
                Some(json!({"type":"custom","webhooks":[{"target":target,"triggers":["conversation:message"]}]})),
            )
            .await;
        assert_eq!(st, 400, "{target}: {v}");
        assert_eq!(v["errors"][0]["code"], "bad_request", "{v}");
        let (st, v) = r
            .admin(
                "CreateWebhook",
                "POST",
                &hooks,
                Some(json!({"target":target,"triggers":["conversation:message"]})),
            )
            .await;
        assert_eq!(st, 400, "{target}: {v}");
        assert_eq!(v["errors"][0]["code"], "bad_request", "{v}");
        let (st, v) = r
            .admin(
                "UpdateWebhook",
                "PATCH",
                &format!("{hooks}/{webhook}"),
                Some(json!({ "target": target })),
            )
            .await;
        assert_eq!(st, 400, "{target}: {v}");
        assert_eq!(v["errors"][0]["code"], "bad_request", "{v}");
    }
    // Nothing was stored: the webhook keeps its target, and no other was made.
    let (st, v) = r.admin("ListWebhooks", "GET", &hooks, None).await;
    assert_eq!(st, 200, "{v}");
    let list = v["webhooks"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{v}");
    assert_eq!(list[0]["target"], r.target.as_str());
    for good in ["https://example.com", "http://127.0.0.1:9/hook?x=1"] {
        let (st, v) = r
            .admin(
                "UpdateWebhook",
                "PATCH",
                &format!("{hooks}/{webhook}"),
                Some(json!({ "target": good })),
            )
            .await;
        assert_eq!(st, 200, "{good}: {v}");
    }
}

#[tokio::test]
async fn webhook_operations_on_a_non_custom_integration_answer_documented_statuses() {
    let r = rig().await;
    let (st, v) = r
        .admin(
            "CreateIntegration",
            "POST",
            "integrations",
            Some(json!({"type":"web","displayName":"Widget"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let hooks = format!(
        "integrations/{}/webhooks",
        v["integration"]["id"].as_str().unwrap()
    );
    let hook = json!({"target":"http://127.0.0.1:9/hook","triggers":["conversation:message"]});
    // Create and List document a 403; Get, Update and Delete only a 404.
    for (op, method, path, body, want) in [
        ("CreateWebhook", "POST", hooks.clone(), Some(hook), 403),
        ("ListWebhooks", "GET", hooks.clone(), None, 403),
        ("GetWebhook", "GET", format!("{hooks}/x"), None, 404),
        (
            "UpdateWebhook",
            "PATCH",
            format!("{hooks}/x"),
            Some(json!({})),
            404,
        ),
        ("DeleteWebhook", "DELETE", format!("{hooks}/x"), None, 404),
    ] {
        let (st, v) = r.admin(op, method, &path, body).await;
        assert_eq!(st, want, "{op}: {v}");
        if let Some(spec) = spec() {
            let documented = spec.response_schema(op, st).is_some()
                && spec.doc["paths"]
                    .as_object()
                    .unwrap()
                    .values()
                    .flat_map(|m| m.as_object().unwrap().values())
                    .any(|o| o["operationId"] == op && o["responses"][st.to_string()].is_object());
            assert!(documented, "{op} does not document {st}");
        }
    }
}

#[tokio::test]
async fn is_final_event_marks_the_last_event_of_each_destination_type() {
    let mut r = rig().await;
    r.integration(&[
        "conversation:message:delivery:channel",
        "conversation:message:delivery:user",
    ])
    .await;
    // After a merge the known user has two web widgets (SDK clients).
    let (st, known) = r
        .control("end-users", json!({ "externalId": "ada-2" }))
        .await;
    assert_eq!(st, 201, "{known}");
    let conversation = known["conversation"]["id"].as_str().unwrap().to_owned();
    let (anon, _) = r.end_user().await;
    let (st, v) = r
        .control(
            "users/merge",
            json!({ "surviving": "ada-2", "discarded": anon }),
        )
        .await;
    assert_eq!(st, 200, "{v}");

    let id = r.business_message(&conversation, "to both widgets").await;
    let got = r.events(4).await;
    assert_eq!(
        types(&got),
        [
            "conversation:message:delivery:channel",
            "conversation:message:delivery:user",
            "conversation:message:delivery:channel",
            "conversation:message:delivery:user",
        ]
    );
    for e in &got {
        assert_eq!(e["payload"]["message"]["id"], id.as_str());
        assert_eq!(e["payload"]["destination"]["type"], "web");
    }
    // One final event for the (message.id, destination.type) pair: the last.
    let finals: Vec<&Value> = got.iter().map(|e| &e["payload"]["isFinalEvent"]).collect();
    assert_eq!(finals, [false, false, false, true]);
}

#[tokio::test]
async fn a_batch_is_capped_by_its_size_in_bytes_keeping_order() {
    const CAP: usize = 512 * 1024;
    let mut r = rig().await;
    r.integration(&["conversation:message"]).await;
    let (_, conversation) = r.end_user().await;
    let gate = Arc::new(Notify::new());
    *r.receiver.gate.lock().unwrap() = Some(gate.clone());
    r.say(&conversation, "first").await;
    // The first delivery is held open; these pile up behind it, about 16 KB each, over
    // 600 KB in all.
    r.got.recv().await.unwrap();
    let n = 40;
    let texts: Vec<String> = (0..n)
        .map(|i| format!("{i:02}{}", "😀".repeat(4094)))
        .collect();
    for t in &texts {
        r.say(&conversation, t).await;
    }
    gate.notify_one();
    let mut got = Vec::new();
    let mut batches = 0;
    while got.len() < n {
        let (_, body) = r.got.recv().await.unwrap();
        let size = serde_json::to_vec(&body).unwrap().len();
        assert!(size <= CAP, "a body of {size} bytes");
        batches += 1;
        for e in body["events"].as_array().unwrap() {
            got.push(
                e["payload"]["message"]["content"]["text"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    assert!(batches > 1, "{batches}");
    assert_eq!(got, texts, "every event once, in order");
}

/// Set for the child run by [`a_missing_spec_fails_in_ci_and_is_skipped_loudly_elsewhere`].
const SPEC_PROBE: &str = "ZD_SPEC_PROBE";

/// Does nothing unless run as that child: then loads the spec and says whether it did.
#[test]
fn spec_probe() {
    if std::env::var_os(SPEC_PROBE).is_none() {
        return;
    }
    println!("loaded: {}", schema::Spec::load().is_some());
}

#[test]
fn a_missing_spec_fails_in_ci_and_is_skipped_loudly_elsewhere() {
    let exe = std::env::current_exe().unwrap();
    let run = |ci: Option<&str>| {
        let mut c = std::process::Command::new(&exe);
        c.args(["--exact", "spec_probe", "--nocapture", "--test-threads=1"])
            .env(SPEC_PROBE, "1")
            .env("ZD_SUNSHINE_OPENAPI", "/nonexistent/sunshine/openapi.json");
        match ci {
            Some(v) => c.env("CI", v),
            None => c.env_remove("CI"),
        };
        let out = c.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    for ci in ["true", "1", "yes"] {
        let (passed, text) = run(Some(ci));
        assert!(!passed, "CI={ci}: a missing spec must fail\n{text}");
        assert!(
            text.contains("/nonexistent/sunshine/openapi.json"),
            "{text}"
        );
    }
    for ci in [None, Some(""), Some("false"), Some("0")] {
        let (passed, text) = run(ci);
        assert!(passed, "CI={ci:?}: a missing spec is skipped\n{text}");
        assert!(text.contains("loaded: false"), "{text}");
        assert!(text.contains("SKIPPED"), "{text}");
    }
}
