//! The Real Time Chat service of the emulator, driven with plain WebSocket and HTTP clients:
//! metrics move as simulated chats progress, update frames only on change, subscribe and
//! unsubscribe, the 401 frame, "Not Computed!", and the documented limits.
//!
//! Tests whose assertions depend on time run on tokio's paused clock, and WebSocket tests on
//! the real clock never wait for a duration, so none can be affected by when frames happen to
//! arrive. A paused clock jumps to the next pending timer whenever the runtime waits on a
//! socket: paused tests that hold connections turn the service's pings off
//! ([`without_pings`]) unless pings are what they test, and those keep the clock stepping in
//! seconds ([`metronome`]) so each ping is answered before the next falls due.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::{WebSocketStream, client_async};
use zd_emulator::account::AgentConfig;
use zd_emulator::state::{AgentStatus, ChatState, OutgoingMessage, Rating};
use zd_emulator::{AccountConfig, Emulator, RealtimeLimits, SubscribeAnswer};

type Ws = WebSocketStream<TcpStream>;

const ALICE: &str = "demo-alice-token";

struct Fixture {
    emu: Emulator,
    support: u64,
    support_key: String,
    alice: String,
}

async fn start() -> Fixture {
    start_with(Emulator::builder()).await
}

async fn start_with(builder: zd_emulator::EmulatorBuilder) -> Fixture {
    let emu = builder.start().await.unwrap();
    let account = emu.account();
    let support = account
        .departments
        .iter()
        .find(|d| d.name == "Support")
        .unwrap();
    let alice = account.agents.iter().find(|a| a.name == "Alice").unwrap();
    Fixture {
        support: support.raw_id.parse().unwrap(),
        support_key: support.raw_id.clone(),
        alice: alice.raw_id.clone(),
        emu,
    }
}

impl Fixture {
    fn state(&self) -> &ChatState {
        self.emu.control().state()
    }

    /// A visitor arrives in Support; returns the channel's raw id.
    fn arrive(&self) -> String {
        self.state()
            .visitor_arrive(zd_emulator::state::Arrival {
                department: Some("Support".into()),
                ..Default::default()
            })
            .unwrap()
            .key
    }

    fn serve(&self, channel: &str) {
        self.state()
            .agent_send(
                &self.alice,
                channel,
                OutgoingMessage {
                    msg: "Hello!".into(),
                    ..Default::default()
                },
                false,
            )
            .unwrap();
    }
}

/// The documented limits without the service's pings (see the module docs).
fn without_pings() -> RealtimeLimits {
    RealtimeLimits {
        ping_interval: None,
        ..RealtimeLimits::documented()
    }
}

/// On a paused clock, makes it advance a second at a time while the test waits, rather than
/// straight to the next ping; runs until the test ends (its runtime drops the task).
fn metronome() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

async fn connect(emu: &Emulator, token: &str) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let url = format!("ws://{}/stream", emu.addr());
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let tcp = TcpStream::connect(emu.addr()).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    client_async(request, tcp).await.map(|(ws, _)| ws)
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

async fn recv(ws: &mut Ws) -> Value {
    loop {
        match ws.next().await.expect("socket ended").unwrap() {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Close(_) => panic!("closed"),
            _ => {}
        }
    }
}

/// `(metric, value, department)` of an update frame.
fn parse(frame: &Value) -> (String, Value, Value) {
    assert_eq!(frame["status_code"], 200, "{frame}");
    assert_eq!(frame["content"]["type"], "update");
    let data = frame["content"]["data"].as_object().unwrap();
    assert_eq!(data.len(), 1, "{frame}");
    let (k, v) = data.iter().next().unwrap();
    (
        k.clone(),
        v.clone(),
        frame["content"]["department_id"].clone(),
    )
}

async fn get(emu: &Emulator, path: &str, token: Option<&str>) -> (u16, Option<String>, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut req = http::Request::get(format!("{}{path}", emu.base_url()));
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let resp = client
        .request(req.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, retry_after, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn bad_token_gets_the_401_frame_then_a_close() {
    let f = start().await;
    let mut ws = connect(&f.emu, "not-a-token").await.unwrap();
    let frame = ws.next().await.unwrap().unwrap();
    insta::assert_snapshot!(frame.to_text().unwrap(), @r#"{"status_code":401,"message":"Unable to verify the identity of the client"}"#);
    assert!(matches!(ws.next().await, Some(Ok(Message::Close(_)))));
}

#[tokio::test]
async fn metrics_follow_a_chat_from_arrival_to_rating() {
    let f = start().await;
    let mut ws = connect(&f.emu, ALICE).await.unwrap();
    // Before anything happened the account is inactive: values are null.
    send(
        &mut ws,
        json!({"topic":"chats.incoming_chats","action":"subscribe"}),
    )
    .await;
    assert_eq!(
        parse(&recv(&mut ws).await),
        ("incoming_chats".into(), Value::Null, Value::Null)
    );
    f.state()
        .set_agent_status(&f.alice, AgentStatus::Online)
        .unwrap();
    assert_eq!(parse(&recv(&mut ws).await).1, json!(0));

    for (topic, extra) in [
        ("chats.incoming_chats", json!({"department_id": f.support})),
        ("chats.active_chats", json!({})),
        ("chats.waiting_time_max", json!({})),
        ("chats.missed_chats", json!({"window": 30})),
        (
            "chats.satisfaction_good",
            json!({"window": 60, "department_id": f.support}),
        ),
        ("agents.agents_online", json!({"department_id": f.support})),
    ] {
        let mut frame = json!({"topic": topic, "action": "subscribe"});
        frame
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        send(&mut ws, frame).await;
    }
    let dept = json!(f.support);
    let mut initial = Vec::new();
    for _ in 0..6 {
        initial.push(parse(&recv(&mut ws).await));
    }
    assert_eq!(
        initial,
        vec![
            ("incoming_chats".into(), json!(0), dept.clone()),
            ("active_chats".into(), json!(0), Value::Null),
            ("waiting_time_max".into(), Value::Null, Value::Null),
            ("missed_chats".into(), json!({"30": 0}), Value::Null),
            ("satisfaction_good".into(), json!({"60": 0}), dept.clone()),
            ("agents_online".into(), json!(1), dept.clone()),
        ]
    );

    // A visitor arrives in Support: incoming moves account-wide and for Support; the wait
    // starts at 0 s.
    let channel = f.arrive();
    let mut moved = Vec::new();
    for _ in 0..3 {
        moved.push(parse(&recv(&mut ws).await));
    }
    moved.sort_by(|a, b| a.0.cmp(&b.0).then(a.2.to_string().cmp(&b.2.to_string())));
    assert_eq!(
        moved,
        vec![
            ("incoming_chats".into(), json!(1), dept.clone()),
            ("incoming_chats".into(), json!(1), Value::Null),
            ("waiting_time_max".into(), json!(0), Value::Null),
        ]
    );

    // Alice serves it: incoming drops, active rises, nobody waits any more (null).
    f.serve(&channel);
    let mut moved = Vec::new();
    for _ in 0..4 {
        moved.push(parse(&recv(&mut ws).await));
    }
    moved.sort_by(|a, b| a.0.cmp(&b.0).then(a.2.to_string().cmp(&b.2.to_string())));
    assert_eq!(
        moved,
        vec![
            ("active_chats".into(), json!(1), Value::Null),
            ("incoming_chats".into(), json!(0), dept.clone()),
            ("incoming_chats".into(), json!(0), Value::Null),
            ("waiting_time_max".into(), Value::Null, Value::Null),
        ]
    );

    // A visitor message changes none of the subscribed values: no frame. The next frame is
    // the rating's, which proves nothing was sent in between.
    f.state().visitor_message(&channel, "thanks").unwrap();
    f.state().visitor_rate(&channel, Rating::Good).unwrap();
    assert_eq!(
        parse(&recv(&mut ws).await),
        ("satisfaction_good".into(), json!({"60": 1}), dept.clone())
    );

    // A second visitor leaves unserved: a missed chat in the 30-minute window.
    let second = f.arrive();
    for _ in 0..3 {
        recv(&mut ws).await; // incoming x2, waiting_time_max
    }
    f.state().visitor_leave(&second).unwrap();
    let mut moved = Vec::new();
    for _ in 0..4 {
        moved.push(parse(&recv(&mut ws).await));
    }
    moved.sort_by(|a, b| a.0.cmp(&b.0).then(a.2.to_string().cmp(&b.2.to_string())));
    assert_eq!(
        moved,
        vec![
            ("incoming_chats".into(), json!(0), dept.clone()),
            ("incoming_chats".into(), json!(0), Value::Null),
            ("missed_chats".into(), json!({"30": 1}), Value::Null),
            ("waiting_time_max".into(), Value::Null, Value::Null),
        ]
    );

    // Unsubscribed series stop; agent status moves agents_online.
    send(
        &mut ws,
        json!({"topic":"chats.incoming_chats","action":"unsubscribe"}),
    )
    .await;
    send(
        &mut ws,
        json!({"topic":"chats.incoming_chats","action":"unsubscribe","department_id": f.support}),
    )
    .await;
    // The unsubscribes are processed before the next state change is observed: a subscribe
    // answered in order proves the socket read them.
    send(
        &mut ws,
        json!({"topic":"agents.agents_away","action":"subscribe"}),
    )
    .await;
    assert_eq!(parse(&recv(&mut ws).await).0, "agents_away");
    f.arrive();
    f.state()
        .set_agent_status(&f.alice, AgentStatus::Away)
        .unwrap();
    let mut moved = Vec::new();
    for _ in 0..3 {
        moved.push(parse(&recv(&mut ws).await));
    }
    moved.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        moved,
        vec![
            ("agents_away".into(), json!(1), Value::Null),
            ("agents_online".into(), json!(0), dept.clone()),
            ("waiting_time_max".into(), json!(0), Value::Null),
        ]
    );
}

#[tokio::test]
async fn malformed_subscriptions_get_a_500_frame_and_the_socket_stays() {
    let f = start().await;
    let mut ws = connect(&f.emu, ALICE).await.unwrap();
    for bad in [
        json!({"topic":"chats.missed_chats","action":"subscribe"}),
        json!({"topic":"agents.agents_online","action":"subscribe","window":30}),
        json!({"topic":"chats.missed_chats","action":"subscribe","window":45}),
        json!({"topic":"chats.queue_depth","action":"subscribe"}),
        json!({"topic":"agents.missed_chats","action":"subscribe"}),
        json!({"topic":"chats.active_chats","action":"watch"}),
        json!({"hello":"world"}),
    ] {
        send(&mut ws, bad.clone()).await;
        let frame = recv(&mut ws).await;
        assert_eq!(frame["status_code"], 500, "{bad} -> {frame}");
        assert!(frame["message"].is_string());
    }
    send(
        &mut ws,
        json!({"topic":"chats.active_chats","action":"subscribe"}),
    )
    .await;
    assert_eq!(parse(&recv(&mut ws).await).0, "active_chats");
}

#[tokio::test]
async fn a_window_on_an_unwindowed_chat_metric_is_ignored() {
    // The docs' sample subscribes incoming_chats and waiting_time_avg "for a 30-minute time
    // window": the subscription is the plain one, answered with the plain value.
    let f = start().await;
    let mut ws = connect(&f.emu, ALICE).await.unwrap();
    let incoming = |action: &str, window: Option<u64>| {
        let mut frame = json!({"topic":"chats.incoming_chats","action":action});
        if let Some(w) = window {
            frame["window"] = json!(w);
        }
        frame
    };
    send(&mut ws, incoming("subscribe", Some(30))).await;
    let (key, value, _) = parse(&recv(&mut ws).await);
    assert_eq!(key, "incoming_chats");
    assert!(
        !value.is_object(),
        "a plain value, not one per window: {value}"
    );
    // Without the window it is the same subscription (not answered again); unsubscribing with
    // the window ends it, so subscribing again is answered again.
    send(&mut ws, incoming("subscribe", None)).await;
    send(&mut ws, incoming("unsubscribe", Some(30))).await;
    send(&mut ws, incoming("subscribe", None)).await;
    assert_eq!(parse(&recv(&mut ws).await).0, "incoming_chats");
    send(
        &mut ws,
        json!({"topic":"chats.waiting_time_avg","action":"subscribe","window":60}),
    )
    .await;
    assert_eq!(parse(&recv(&mut ws).await).0, "waiting_time_avg");
}

#[tokio::test]
async fn a_subscribe_can_wait_for_the_next_change() {
    // The docs leave open whether a subscribe is answered with the current value; with
    // NextChange nothing comes until the value changes, as a client must be ready for.
    let builder = Emulator::builder().realtime_subscribe_answer(SubscribeAnswer::NextChange);
    let f = start_with(builder).await;
    let mut ws = connect(&f.emu, ALICE).await.unwrap();
    send(
        &mut ws,
        json!({"topic":"chats.incoming_chats","action":"subscribe"}),
    )
    .await;
    // A malformed frame's 500 answer comes first: the subscribe was not answered.
    send(&mut ws, json!({"hello":"world"})).await;
    assert_eq!(recv(&mut ws).await["status_code"], 500);
    f.arrive();
    let (key, value, _) = parse(&recv(&mut ws).await);
    assert_eq!((key.as_str(), value), ("incoming_chats", json!(1)));
}

#[tokio::test]
async fn rest_pull_not_computed_then_values() {
    let f = start().await;
    let (status, _, body) = get(&f.emu, "/stream/chats", Some(ALICE)).await;
    assert_eq!(status, 200);
    insta::assert_snapshot!(body.to_string(), @r#"{"message":"Not Computed!","status_code":200}"#);

    let channel = f.arrive();
    f.arrive();
    f.serve(&channel);
    f.state()
        .set_agent_status(&f.alice, AgentStatus::Invisible)
        .unwrap();

    let (status, _, body) = get(&f.emu, "/stream/chats?window=30", Some(ALICE)).await;
    assert_eq!(status, 200);
    let data = &body["content"]["data"];
    assert_eq!(body["content"]["topic"], "chats");
    assert_eq!(body["content"]["department_id"], Value::Null);
    assert_eq!(data["incoming_chats"], 1);
    assert_eq!(data["active_chats"], 1);
    assert_eq!(data["assigned_chats"], 0);
    assert_eq!(data["missed_chats"], json!({"30": 0}));
    assert_eq!(data["chat_duration_max"], 0);
    assert_eq!(data["response_time_avg"], 0);
    assert_eq!(data.as_object().unwrap().len(), 12);

    let path = format!("/stream/chats/incoming_chats?department_id={}", f.support);
    let (_, _, body) = get(&f.emu, &path, Some(ALICE)).await;
    assert_eq!(body["content"]["data"], json!({"incoming_chats": 1}));
    assert_eq!(body["content"]["department_id"], json!(f.support));

    let (_, _, body) = get(&f.emu, "/stream/chats/satisfaction_bad", Some(ALICE)).await;
    assert_eq!(
        body["content"]["data"],
        json!({"satisfaction_bad": {"30": 0, "60": 0}})
    );

    let path = format!("/stream/agents?department_id={}", f.support);
    let (_, _, body) = get(&f.emu, &path, Some(ALICE)).await;
    assert_eq!(
        body["content"],
        json!({"topic":"agents","data":{"agents_online":0,"agents_away":0,"agents_invisible":1},"type":"update","department_id":f.support})
    );
    let _ = &f.support_key;
}

#[tokio::test]
async fn rest_errors() {
    let f = start().await;
    let (status, _, body) = get(&f.emu, "/stream/agents", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["status_code"], 401);
    let (status, _, _) = get(&f.emu, "/stream/agents/agents_busy", Some(ALICE)).await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&f.emu, "/stream/agents/missed_chats", Some(ALICE)).await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&f.emu, "/stream/chats?window=45", Some(ALICE)).await;
    assert_eq!(status, 400);
    let (status, _, _) = get(&f.emu, "/stream/agents?window=30", Some(ALICE)).await;
    assert_eq!(status, 400);
    let (status, _, _) = get(&f.emu, "/stream/chats?department_id=abc", Some(ALICE)).await;
    assert_eq!(status, 400);
}

/// A `department_id` the account does not have is the client's mistake, told the same way by
/// both parts of the service: 404 with one body on REST (whether or not the values are
/// computed yet), a `status_code` 404 frame with that body on the feed, whose connection goes
/// on. Never a 500, and never a department's worth of nothing as if it existed.
#[tokio::test]
async fn an_unknown_department_is_refused_alike_by_rest_and_the_feed() {
    let f = start().await;
    // Department ids have nine digits: this one is none of them.
    let unknown: u64 = 4_000_000_000;
    let paths = [
        format!("/stream/chats?department_id={unknown}"),
        format!("/stream/chats/missed_chats?department_id={unknown}&window=30"),
        format!("/stream/agents?department_id={unknown}"),
        format!("/stream/agents/agents_online?department_id={unknown}"),
    ];
    let mut bodies = Vec::new();
    for path in &paths {
        let (status, _, body) = get(&f.emu, path, Some(ALICE)).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["status_code"], 404, "{path}: {body}");
        bodies.push(body);
    }
    // Computed values change nothing.
    f.arrive();
    for path in &paths {
        let (status, _, body) = get(&f.emu, path, Some(ALICE)).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body, bodies[0], "{path}");
    }
    // A department the account has still answers.
    let path = format!("/stream/chats?department_id={}", f.support);
    assert_eq!(get(&f.emu, &path, Some(ALICE)).await.0, 200);

    let mut ws = connect(&f.emu, ALICE).await.unwrap();
    for topic in ["chats.incoming_chats", "agents.agents_online"] {
        send(
            &mut ws,
            json!({"topic": topic, "action": "subscribe", "department_id": unknown}),
        )
        .await;
        assert_eq!(recv(&mut ws).await, bodies[0], "{topic}");
    }
    // The connection goes on.
    send(
        &mut ws,
        json!({"topic":"chats.incoming_chats","action":"subscribe","department_id": f.support}),
    )
    .await;
    let (key, value, department) = parse(&recv(&mut ws).await);
    assert_eq!(key, "incoming_chats");
    assert_eq!(value, json!(1));
    assert_eq!(department, json!(f.support));
}

#[tokio::test(start_paused = true)]
async fn time_based_metrics_move_with_the_clock() {
    let f = start().await;
    let waiting = f.arrive();
    tokio::time::advance(Duration::from_secs(40)).await;
    let served = f.arrive();
    tokio::time::advance(Duration::from_secs(20)).await;
    // Alice replies to `served` after 20 s; `waiting` has waited 60 s.
    f.serve(&served);
    tokio::time::advance(Duration::from_secs(30)).await;
    let (_, _, body) = get(&f.emu, "/stream/chats", Some(ALICE)).await;
    let data = &body["content"]["data"];
    assert_eq!(data["waiting_time_max"], 90);
    assert_eq!(data["waiting_time_avg"], 90);
    assert_eq!(data["chat_duration_max"], 30);
    assert_eq!(data["response_time_max"], 20);

    // `waiting` leaves unserved: missed in both windows; after 31 minutes only in the hour.
    f.state().visitor_leave(&waiting).unwrap();
    f.state().visitor_rate(&served, Rating::Bad).unwrap();
    let (_, _, body) = get(&f.emu, "/stream/chats", Some(ALICE)).await;
    assert_eq!(
        body["content"]["data"]["missed_chats"],
        json!({"30": 1, "60": 1})
    );
    assert_eq!(
        body["content"]["data"]["satisfaction_bad"],
        json!({"30": 1, "60": 1})
    );
    assert_eq!(body["content"]["data"]["waiting_time_max"], Value::Null);
    tokio::time::advance(Duration::from_secs(31 * 60)).await;
    let (_, _, body) = get(&f.emu, "/stream/chats", Some(ALICE)).await;
    assert_eq!(
        body["content"]["data"]["missed_chats"],
        json!({"30": 0, "60": 1})
    );
    assert_eq!(
        body["content"]["data"]["satisfaction_bad"],
        json!({"30": 0, "60": 1})
    );
    tokio::time::advance(Duration::from_secs(30 * 60)).await;
    let (_, _, body) = get(&f.emu, "/stream/chats/missed_chats?window=60", Some(ALICE)).await;
    assert_eq!(body["content"]["data"], json!({"missed_chats": {"60": 0}}));
}

#[tokio::test(start_paused = true)]
async fn connections_and_rest_share_200_per_minute() {
    let f = start_with(Emulator::builder().realtime_limits(without_pings())).await;
    for _ in 0..199 {
        let (status, _, _) = get(&f.emu, "/stream/agents", Some(ALICE)).await;
        assert_eq!(status, 200);
    }
    let _ws = connect(&f.emu, ALICE).await.unwrap();
    let err = connect(&f.emu, ALICE).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = err else {
        panic!("expected HTTP 429, got {err:?}")
    };
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "60");
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
    assert_eq!(body["status_code"], 429);
    let (status, retry_after, _) = get(&f.emu, "/stream/chats", Some(ALICE)).await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("60")));
    tokio::time::advance(Duration::from_secs(60)).await;
    let (status, _, _) = get(&f.emu, "/stream/chats", Some(ALICE)).await;
    assert_eq!(status, 200);
}

#[tokio::test(start_paused = true)]
async fn a_lifted_budget_admits_more_than_200_a_minute_and_keeps_the_caps() {
    let emu = Emulator::builder()
        .realtime_limits(RealtimeLimits {
            requests_per_minute: None,
            ..without_pings()
        })
        .start()
        .await
        .unwrap();
    for _ in 0..250 {
        let (status, _, _) = get(&emu, "/stream/agents", Some(ALICE)).await;
        assert_eq!(status, 200);
    }
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(connect(&emu, ALICE).await.unwrap());
    }
    let err = connect(&emu, ALICE).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = err else {
        panic!("expected HTTP 429, got {err:?}")
    };
    assert_eq!(response.status(), 429);
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("an agent may hold 10 concurrent connections"),
        "{body}"
    );
    assert_eq!(emu.control().counters().realtime_connections, 10);
}

#[tokio::test(start_paused = true)]
async fn ten_connections_per_agent_and_a_thousand_per_account() {
    let mut account = AccountConfig::demo();
    for i in 0..100 {
        account.agents.push(AgentConfig {
            name: format!("Agent {i}"),
            display_name: None,
            access_token: format!("token-{i}").into(),
            departments: Vec::new(),
            status: AgentStatus::Offline,
        });
    }
    let emu = Emulator::builder()
        .account(account)
        .realtime_limits(without_pings())
        .start()
        .await
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(connect(&emu, ALICE).await.unwrap());
    }
    // The status and message of a refused upgrade.
    let refused = |err: tokio_tungstenite::tungstenite::Error| match err {
        tokio_tungstenite::tungstenite::Error::Http(r) => {
            let body: Value = serde_json::from_slice(r.body().as_deref().unwrap()).unwrap();
            (
                r.status().as_u16(),
                body["message"].as_str().unwrap().to_owned(),
            )
        }
        other => panic!("{other:?}"),
    };
    let (status, message) = refused(connect(&emu, ALICE).await.unwrap_err());
    assert_eq!(status, 429);
    assert!(
        message.contains("an agent may hold 10 concurrent connections"),
        "{message}"
    );
    // Closing one frees its slot.
    let mut one = held.pop().unwrap();
    one.close(None).await.unwrap();
    while one.next().await.is_some() {}
    drop(one);
    let mut reopened = None;
    for _ in 0..100 {
        // The server notices the close when its task runs; retry until it has.
        match connect(&emu, ALICE).await {
            Ok(ws) => {
                reopened = Some(ws);
                break;
            }
            Err(_) => tokio::task::yield_now().await,
        }
    }
    held.push(reopened.expect("slot freed"));

    // 99 agents x 10 = 990 more: 1000 in all. New connections spend the 200/minute budget,
    // so move the clock a minute on whenever it is spent.
    for i in 0..99 {
        for _ in 0..10 {
            let token = format!("token-{i}");
            let ws = match connect(&emu, &token).await {
                Ok(ws) => ws,
                Err(err) => {
                    // Only the minute's budget may refuse here, and a fresh minute admits the
                    // connection: any other refusal fails rather than waiting for good.
                    let (status, message) = refused(err);
                    assert_eq!(status, 429);
                    assert!(message.contains("per minute"), "{message}");
                    tokio::time::advance(Duration::from_secs(60)).await;
                    connect(&emu, &token).await.unwrap()
                }
            };
            held.push(ws);
        }
    }
    assert_eq!(held.len(), 1000);
    tokio::time::advance(Duration::from_secs(60)).await;
    let (status, message) = refused(connect(&emu, "token-99").await.unwrap_err());
    assert_eq!(status, 429);
    assert!(
        message.contains("an account may hold 1000 concurrent connections"),
        "{message}"
    );
}

/// Reads until the socket ends; true when it ended without a close frame.
async fn ended_abruptly(ws: &mut Ws) -> bool {
    loop {
        match ws.next().await {
            None | Some(Err(_)) => return true,
            Some(Ok(Message::Close(_))) => return false,
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn connections_end_when_the_emulator_is_dropped() {
    let f = start().await;
    let mut ws = connect(&f.emu, ALICE).await.unwrap();
    send(
        &mut ws,
        json!({"topic":"chats.active_chats","action":"subscribe"}),
    )
    .await;
    assert_eq!(parse(&recv(&mut ws).await).0, "active_chats");
    drop(f);
    assert!(ended_abruptly(&mut ws).await);
}

#[tokio::test]
async fn subscriptions_are_capped_and_departments_must_exist() {
    let mut account = AccountConfig::demo();
    for i in 0..10 {
        account
            .departments
            .push(zd_emulator::account::DepartmentConfig {
                name: format!("Extra {i}"),
                status: zd_emulator::state::DepartmentStatus::Online,
            });
    }
    let emu = Emulator::builder().account(account).start().await.unwrap();
    let mut ws = connect(&emu, ALICE).await.unwrap();
    send(
        &mut ws,
        json!({"topic":"chats.incoming_chats","action":"subscribe","department_id": u64::MAX}),
    )
    .await;
    let frame = recv(&mut ws).await;
    assert_eq!(frame["status_code"], 404, "{frame}");
    assert!(frame["message"].as_str().unwrap().contains("department"));

    // Every (metric, window) of the catalogue, account-wide and per department: far more
    // than a connection may hold.
    let mut topics = Vec::new();
    for metric in [
        "chats.incoming_chats",
        "chats.assigned_chats",
        "chats.active_chats",
        "chats.waiting_time_avg",
        "chats.waiting_time_max",
        "chats.chat_duration_avg",
        "chats.chat_duration_max",
        "chats.response_time_avg",
        "chats.response_time_max",
        "agents.agents_online",
        "agents.agents_away",
        "agents.agents_invisible",
    ] {
        topics.push(json!({"topic": metric}));
    }
    for metric in [
        "chats.missed_chats",
        "chats.satisfaction_good",
        "chats.satisfaction_bad",
    ] {
        for window in [30, 60] {
            topics.push(json!({"topic": metric, "window": window}));
        }
    }
    let mut scopes = vec![None];
    scopes.extend(
        emu.account()
            .departments
            .iter()
            .map(|d| Some(d.raw_id.parse::<u64>().unwrap())),
    );
    let mut accepted = 0;
    let mut refusal = None;
    'all: for scope in scopes {
        for topic in &topics {
            let mut frame = topic.clone();
            frame["action"] = json!("subscribe");
            if let Some(d) = scope {
                frame["department_id"] = json!(d);
            }
            send(&mut ws, frame).await;
            let reply = recv(&mut ws).await;
            if reply["status_code"] == 500 {
                refusal = Some(reply);
                break 'all;
            }
            accepted += 1;
        }
    }
    assert_eq!(accepted, 100);
    let refusal = refusal.unwrap();
    assert!(
        refusal["message"].as_str().unwrap().contains("at most 100"),
        "{refusal}"
    );
    // Unsubscribing frees a slot; the connection stays usable.
    send(
        &mut ws,
        json!({"topic":"chats.incoming_chats","action":"unsubscribe"}),
    )
    .await;
    send(
        &mut ws,
        json!({"topic":"chats.incoming_chats","action":"subscribe"}),
    )
    .await;
    assert_eq!(parse(&recv(&mut ws).await).0, "incoming_chats");
}

#[tokio::test]
async fn the_drop_fault_ends_every_connection_without_a_close_frame() {
    let f = start().await;
    let mut first = connect(&f.emu, ALICE).await.unwrap();
    let mut second = connect(&f.emu, ALICE).await.unwrap();
    for ws in [&mut first, &mut second] {
        send(
            ws,
            json!({"topic":"chats.active_chats","action":"subscribe"}),
        )
        .await;
        assert_eq!(parse(&recv(ws).await).0, "active_chats");
    }
    let (status, body) = post(&f.emu, "/_emulator/realtime/drop").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dropped"], 2);
    assert!(ended_abruptly(&mut first).await);
    assert!(ended_abruptly(&mut second).await);
    // The service itself carries on.
    let mut again = connect(&f.emu, ALICE).await.unwrap();
    send(
        &mut again,
        json!({"topic":"chats.active_chats","action":"subscribe"}),
    )
    .await;
    assert_eq!(parse(&recv(&mut again).await).0, "active_chats");
}

async fn post(emu: &Emulator, path: &str) -> (u16, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let request = http::Request::post(format!("{}{path}", emu.base_url()))
        .body(Empty::new())
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

/// Where a chat stands under assigned routing: its state and the agent it was given to.
fn routed(f: &Fixture, channel: &str) -> (zd_emulator::state::ChannelState, Option<String>) {
    let c = f.state().channel_meta(channel).unwrap();
    (c.state, c.assigned_to)
}

async fn chat_counts(f: &Fixture) -> (Value, Value, Value) {
    let (status, _, body) = get(&f.emu, "/stream/chats", Some(ALICE)).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["content"]["data"];
    (
        data["incoming_chats"].clone(),
        data["assigned_chats"].clone(),
        data["active_chats"].clone(),
    )
}

#[tokio::test]
async fn assigned_routing_gives_each_chat_to_one_online_agent() {
    use zd_emulator::account::Routing;
    use zd_emulator::state::ChannelState::{Assigned, Incoming, Ongoing};

    let account = AccountConfig {
        routing: Routing::Assigned,
        ..AccountConfig::demo()
    };
    let emu = Emulator::builder().account(account).start().await.unwrap();
    let info = emu.account();
    let raw = |name: &str| {
        info.agents
            .iter()
            .find(|a| a.name == name)
            .unwrap()
            .raw_id
            .clone()
    };
    let (bot, alice) = (raw("Bot"), raw("Alice"));
    let support = info
        .departments
        .iter()
        .find(|d| d.name == "Support")
        .unwrap();
    let f = Fixture {
        support: support.raw_id.parse().unwrap(),
        support_key: support.raw_id.clone(),
        alice: alice.clone(),
        emu,
    };

    // Nobody online: the chat waits unassigned.
    let first = f.arrive();
    assert_eq!(routed(&f, &first), (Incoming, None));
    assert_eq!(chat_counts(&f).await, (json!(1), json!(0), json!(0)));

    // Alice comes online and is given it; the next chat goes to the Bot, who holds none, and
    // the third, on a tie, to the first configured agent (the Bot).
    f.state()
        .set_agent_status(&alice, AgentStatus::Online)
        .unwrap();
    assert_eq!(routed(&f, &first), (Assigned, Some(alice.clone())));
    f.state()
        .set_agent_status(&bot, AgentStatus::Online)
        .unwrap();
    let second = f.arrive();
    let third = f.arrive();
    assert_eq!(routed(&f, &second), (Assigned, Some(bot.clone())));
    assert_eq!(routed(&f, &third), (Assigned, Some(bot.clone())));
    assert_eq!(chat_counts(&f).await, (json!(0), json!(3), json!(0)));

    // Alice serves hers: ONGOING.
    f.serve(&first);
    assert_eq!(routed(&f, &first).0, Ongoing);
    assert_eq!(chat_counts(&f).await, (json!(0), json!(2), json!(1)));

    // The Bot goes away: its chats go to the only online agent left.
    f.state().set_agent_status(&bot, AgentStatus::Away).unwrap();
    assert_eq!(routed(&f, &second), (Assigned, Some(alice.clone())));
    assert_eq!(routed(&f, &third), (Assigned, Some(alice.clone())));

    // Alice leaves the chat she served while its visitor still waits: it is not handed back
    // to her, and with nobody else online it waits unassigned.
    f.state().leave_channel(&alice, &first).unwrap();
    assert_eq!(routed(&f, &first).0, Incoming);
    assert_eq!(chat_counts(&f).await, (json!(1), json!(2), json!(0)));

    // Back online, the Bot is given it.
    f.state()
        .set_agent_status(&bot, AgentStatus::Online)
        .unwrap();
    assert_eq!(routed(&f, &first), (Assigned, Some(bot.clone())));

    // Transferred to Sales, a chat assigned to Alice (Support only) goes to a Sales agent: Bob,
    // who holds none, before the Bot, who holds one.
    let bob = raw("Bob");
    f.state()
        .set_agent_status(&bob, AgentStatus::Online)
        .unwrap();
    let sales = info.departments.iter().find(|d| d.name == "Sales").unwrap();
    f.state()
        .transfer(&alice, &second, &sales.raw_id, false)
        .unwrap();
    assert_eq!(routed(&f, &second), (Assigned, Some(bob)));
    // One the Bot holds stays his: he is in Sales too.
    f.state()
        .transfer(&bot, &first, &sales.raw_id, false)
        .unwrap();
    assert_eq!(routed(&f, &first), (Assigned, Some(bot)));
}

#[tokio::test]
async fn a_connection_that_stops_reading_is_still_dropped() {
    // Without pings: the keepalive would also end this connection a minute in, and the test
    // is about the drop fault.
    let f = start_with(Emulator::builder().realtime_limits(without_pings())).await;
    // A small receive buffer, never read from below: the service's writes soon wait.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(f.emu.addr()).await.unwrap();
    let mut request = format!("ws://{}/stream", f.emu.addr())
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {ALICE}").parse().unwrap());
    let (mut ws, _) = client_async(request, tcp).await.unwrap();
    let mut subscribed = 0;
    for department in [None, Some(f.support)] {
        for (metric, window) in [
            ("incoming_chats", None),
            ("missed_chats", Some(30)),
            ("missed_chats", Some(60)),
            ("waiting_time_avg", None),
            ("waiting_time_max", None),
        ] {
            let mut frame = json!({"topic": format!("chats.{metric}"), "action": "subscribe"});
            if let Some(w) = window {
                frame["window"] = json!(w);
            }
            if let Some(d) = department {
                frame["department_id"] = json!(d);
            }
            send(&mut ws, frame).await;
            subscribed += 1;
        }
    }
    for _ in 0..subscribed {
        recv(&mut ws).await;
    }
    // Every visitor who leaves unserved changes the missed counts: updates pile up unread.
    for _ in 0..3_000 {
        let channel = f.arrive();
        tokio::task::yield_now().await;
        f.state().visitor_leave(&channel).unwrap();
        tokio::task::yield_now().await;
    }
    let (status, body) = post(&f.emu, "/_emulator/realtime/drop").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dropped"], 1);
    // The connection is gone (its slot free) though the service was waiting to write to it.
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (_, body) = post(&f.emu, "/_emulator/realtime/drop").await;
            if body["dropped"] == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the connection was not dropped");
    drop(ws);
}

/// Sends a malformed frame and returns the frames that came before its 500 answer: whatever
/// the service pushed before it read that frame.
async fn frames_before_a_500(ws: &mut Ws) -> Vec<Value> {
    send(ws, json!({"hello":"world"})).await;
    let mut before = Vec::new();
    loop {
        let frame = recv(ws).await;
        if frame["status_code"] == 500 {
            return before;
        }
        before.push(frame);
    }
}

#[tokio::test(start_paused = true)]
async fn a_rest_pull_pushes_nothing_to_open_feeds() {
    let f = start_with(Emulator::builder().realtime_limits(without_pings())).await;
    let mut ws = connect(&f.emu, ALICE).await.unwrap();
    send(
        &mut ws,
        json!({"topic":"chats.waiting_time_max","action":"subscribe"}),
    )
    .await;
    assert_eq!(parse(&recv(&mut ws).await).1, Value::Null);
    f.arrive();
    assert_eq!(parse(&recv(&mut ws).await).1, json!(0));

    // The wait grows with the clock alone: the pull answers the value now, and the feed, which
    // is told of values when an event changes them, hears nothing of it.
    tokio::time::advance(Duration::from_secs(10)).await;
    let (status, _, body) = get(&f.emu, "/stream/chats/waiting_time_max", Some(ALICE)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["content"]["data"]["waiting_time_max"], 10);
    assert_eq!(frames_before_a_500(&mut ws).await, Vec::<Value>::new());

    // The next event delivers it.
    f.arrive();
    assert_eq!(
        parse(&recv(&mut ws).await),
        ("waiting_time_max".into(), json!(10), Value::Null)
    );
}

#[tokio::test(start_paused = true)]
async fn a_subscribe_pushes_nothing_to_the_feeds_already_open() {
    let f = start_with(Emulator::builder().realtime_limits(without_pings())).await;
    let mut watcher = connect(&f.emu, ALICE).await.unwrap();
    send(
        &mut watcher,
        json!({"topic":"chats.waiting_time_max","action":"subscribe"}),
    )
    .await;
    recv(&mut watcher).await;
    f.arrive();
    assert_eq!(parse(&recv(&mut watcher).await).1, json!(0));
    tokio::time::advance(Duration::from_secs(10)).await;

    // Another connection subscribes (naming a department, which is checked), then the
    // watcher itself: each is answered, and no feed hears of the wait grown meanwhile.
    let support = json!(f.support);
    let mut other = connect(&f.emu, ALICE).await.unwrap();
    let incoming =
        json!({"topic":"chats.incoming_chats","action":"subscribe","department_id": f.support});
    send(&mut other, incoming.clone()).await;
    assert_eq!(
        parse(&recv(&mut other).await),
        ("incoming_chats".into(), json!(1), support.clone())
    );
    assert_eq!(frames_before_a_500(&mut watcher).await, Vec::<Value>::new());
    send(&mut watcher, incoming).await;
    assert_eq!(
        parse(&recv(&mut watcher).await),
        ("incoming_chats".into(), json!(1), support)
    );
    assert_eq!(frames_before_a_500(&mut watcher).await, Vec::<Value>::new());
}

#[tokio::test]
async fn the_first_feed_is_answered_with_what_happened_before_it_opened() {
    let f = start().await;
    f.arrive();
    f.arrive();
    let mut ws = connect(&f.emu, ALICE).await.unwrap();
    send(
        &mut ws,
        json!({"topic":"chats.incoming_chats","action":"subscribe","department_id": f.support}),
    )
    .await;
    assert_eq!(
        parse(&recv(&mut ws).await),
        ("incoming_chats".into(), json!(2), json!(f.support))
    );
}

#[tokio::test]
async fn an_unsubscribe_with_a_window_its_metric_cannot_have_is_refused() {
    let f = start().await;
    let mut ws = connect(&f.emu, ALICE).await.unwrap();
    for (bad, says) in [
        (
            json!({"topic":"agents.agents_online","action":"unsubscribe","window":30}),
            "has no time window",
        ),
        (
            json!({"topic":"chats.missed_chats","action":"unsubscribe","window":45}),
            "needs a window of 30 or 60 minutes",
        ),
    ] {
        send(&mut ws, bad.clone()).await;
        // Answered before the subscribe sent after it, which proves it was answered at all.
        send(
            &mut ws,
            json!({"topic":"chats.active_chats","action":"subscribe"}),
        )
        .await;
        let frame = recv(&mut ws).await;
        assert_eq!(frame["status_code"], 500, "{bad} -> {frame}");
        assert!(
            frame["message"].as_str().unwrap().contains(says),
            "{bad} -> {frame}"
        );
        assert_eq!(parse(&recv(&mut ws).await).0, "active_chats");
        send(
            &mut ws,
            json!({"topic":"chats.active_chats","action":"unsubscribe"}),
        )
        .await;
    }
    // What stays accepted: a windowed metric without a window (every window), and a window on
    // an unwindowed chat metric (ignored). Neither is answered, so the subscribe's answer
    // comes first.
    send(
        &mut ws,
        json!({"topic":"chats.missed_chats","action":"unsubscribe"}),
    )
    .await;
    send(
        &mut ws,
        json!({"topic":"chats.incoming_chats","action":"unsubscribe","window":30}),
    )
    .await;
    send(
        &mut ws,
        json!({"topic":"chats.active_chats","action":"subscribe"}),
    )
    .await;
    assert_eq!(parse(&recv(&mut ws).await).0, "active_chats");
}

/// A client that does the WebSocket upgrade by hand and then never sends a frame, as one that
/// vanished without a FIN looks to the service.
async fn silent_client(emu: &Emulator, token: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(emu.addr()).await.unwrap();
    let request = format!(
        "GET /stream HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n",
        emu.addr()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    // Byte by byte, so that nothing after the response head is consumed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tcp
}

/// Everything the service sends until it ends the connection.
async fn read_until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0; 256];
    loop {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_silent_between_two_pings_is_dropped_and_its_slot_freed() {
    // Before any connection, so the clock never jumps from one ping straight to the next.
    let _clock = metronome();
    let f = start_with(Emulator::builder().realtime_limits(RealtimeLimits {
        agent_connections: 2,
        ..RealtimeLimits::documented()
    }))
    .await;

    // A client that reads answers the pings on its own.
    let (mut live_out, mut live_in) = connect(&f.emu, ALICE).await.unwrap().split();
    let pings = Arc::new(AtomicUsize::new(0));
    let (texts_out, mut texts) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn({
        let pings = Arc::clone(&pings);
        async move {
            while let Some(Ok(message)) = live_in.next().await {
                match message {
                    Message::Ping(_) => {
                        pings.fetch_add(1, Ordering::Relaxed);
                    }
                    Message::Text(text) => {
                        let _ = texts_out.send(text);
                    }
                    _ => {}
                }
            }
        }
    });
    let before = tokio::time::Instant::now();
    let mut silent = silent_client(&f.emu, ALICE).await;
    let err = connect(&f.emu, ALICE).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = err else {
        panic!("expected HTTP 429, got {err:?}")
    };
    assert_eq!(response.status(), 429, "the agent's two slots are taken");

    // The silent client gets one ping (unmasked, empty), then the connection ends without a
    // close frame when the next ping falls due.
    let received = tokio::time::timeout(Duration::from_secs(300), read_until_closed(&mut silent))
        .await
        .expect("the silent connection was not dropped");
    assert_eq!(received, [0x89, 0x00]);
    let silent_for = before.elapsed();
    assert!(
        silent_for >= Duration::from_secs(60) && silent_for < Duration::from_secs(90),
        "{silent_for:?}"
    );
    // Its slot is free: the agent may connect again.
    assert_eq!(f.emu.control().counters().realtime_connections, 1);
    let mut again = connect(&f.emu, ALICE).await.unwrap();
    again.close(None).await.unwrap();
    while again.next().await.is_some() {}

    // The client that answers stays through more pings, and is still served.
    tokio::time::timeout(Duration::from_secs(300), async {
        while pings.load(Ordering::Relaxed) < 5 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await
    .expect("the live connection stopped getting pings");
    assert!(!reader.is_finished());
    live_out
        .send(Message::text(
            json!({"topic":"chats.active_chats","action":"subscribe"}).to_string(),
        ))
        .await
        .unwrap();
    let answer: Value = serde_json::from_str(texts.recv().await.unwrap().as_str()).unwrap();
    assert_eq!(parse(&answer).0, "active_chats");
    assert_eq!(f.emu.control().counters().realtime_connections, 1);
}

/// The raw id of the demo account's Sales department.
fn sales(f: &Fixture) -> String {
    f.emu
        .account()
        .departments
        .iter()
        .find(|d| d.name == "Sales")
        .unwrap()
        .raw_id
        .clone()
}

#[tokio::test(start_paused = true)]
async fn a_chat_back_in_the_queue_waits_from_its_return_not_from_its_arrival() {
    let f = start_with(Emulator::builder().realtime_limits(without_pings())).await;
    let sales = sales(&f);
    let mut ws = connect(&f.emu, ALICE).await.unwrap();
    send(
        &mut ws,
        json!({"topic":"chats.waiting_time_max","action":"subscribe"}),
    )
    .await;
    assert_eq!(parse(&recv(&mut ws).await).1, Value::Null);

    // Served 10 s after arriving; 20 minutes later Alice transfers it to Sales and leaves, so
    // it waits again, for Sales. The 20 minutes served are no queue wait.
    let channel = f.arrive();
    assert_eq!(parse(&recv(&mut ws).await).1, json!(0));
    tokio::time::advance(Duration::from_secs(10)).await;
    f.serve(&channel);
    assert_eq!(parse(&recv(&mut ws).await).1, Value::Null);
    tokio::time::advance(Duration::from_secs(20 * 60)).await;
    f.state()
        .transfer(&f.alice, &channel, &sales, true)
        .unwrap();
    assert_eq!(
        f.state().channel_meta(&channel).unwrap().state,
        zd_emulator::state::ChannelState::Incoming
    );
    let (key, value, _) = parse(&recv(&mut ws).await);
    assert_eq!(key, "waiting_time_max");
    assert!(value.as_i64().unwrap() <= 1, "waited {value} s in Sales");
    for path in [
        "/stream/chats".to_owned(),
        format!("/stream/chats?department_id={sales}"),
    ] {
        let (status, _, body) = get(&f.emu, &path, Some(ALICE)).await;
        assert_eq!(status, 200, "{body}");
        let data = &body["content"]["data"];
        for metric in ["waiting_time_max", "waiting_time_avg"] {
            let waited = data[metric].as_i64().unwrap();
            assert!(waited <= 1, "{path}: {metric} = {waited}");
        }
        assert_eq!(data["incoming_chats"], 1, "{path}");
    }

    // The visitor leaves before anyone in Sales joins: a request not served before the
    // visitor left, so a missed chat, though an agent had served the chat before.
    tokio::time::advance(Duration::from_secs(5)).await;
    f.state().visitor_leave(&channel).unwrap();
    // One served to the end is not missed.
    let served = f.arrive();
    f.serve(&served);
    f.state().visitor_leave(&served).unwrap();
    for path in [
        "/stream/chats/missed_chats".to_owned(),
        format!("/stream/chats/missed_chats?department_id={sales}"),
    ] {
        let (_, _, body) = get(&f.emu, &path, Some(ALICE)).await;
        assert_eq!(
            body["content"]["data"]["missed_chats"],
            json!({"30": 1, "60": 1}),
            "{path}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn typing_tags_and_status_changes_push_no_time_based_values() {
    let f = start_with(Emulator::builder().realtime_limits(without_pings())).await;
    let mut ws = connect(&f.emu, ALICE).await.unwrap();
    // Subscribed in this order, so a waiting_time_avg frame computed with an agents_online
    // one is pushed before it.
    for topic in ["chats.waiting_time_avg", "agents.agents_online"] {
        send(&mut ws, json!({"topic": topic, "action": "subscribe"})).await;
        recv(&mut ws).await;
    }
    // The arrival makes the account active: both values move from null.
    let channel = f.arrive();
    assert_eq!(
        parse(&recv(&mut ws).await),
        ("waiting_time_avg".into(), json!(0), Value::Null)
    );
    assert_eq!(
        parse(&recv(&mut ws).await),
        ("agents_online".into(), json!(0), Value::Null)
    );

    // 5 s on, the visitor and then an agent type (neither moves a wait: no frame); the
    // marker, Alice going online, is the next frame. Events are handled in order, so a
    // waiting_time_avg pushed for the typing would come before it or with it (first).
    tokio::time::advance(Duration::from_secs(5)).await;
    f.state().visitor_typing(&channel, true).unwrap();
    f.state()
        .agent_typing(&f.alice, &channel, true, false)
        .unwrap();
    f.state()
        .set_agent_status(&f.alice, AgentStatus::Online)
        .unwrap();
    assert_eq!(
        parse(&recv(&mut ws).await),
        ("agents_online".into(), json!(1), Value::Null)
    );
    assert_eq!(frames_before_a_500(&mut ws).await, Vec::<Value>::new());

    // An event that affects the wait, a visitor message, pushes its value as of now.
    f.state().visitor_message(&channel, "anyone?").unwrap();
    assert_eq!(
        parse(&recv(&mut ws).await),
        ("waiting_time_avg".into(), json!(5), Value::Null)
    );
}

#[tokio::test(start_paused = true)]
async fn an_unsubscribe_ends_the_scope_it_names_as_a_subscribe_does() {
    // `department_id` reads the same both ways: without it, the account-wide subscription;
    // with it, that department's. A client holding both (as zd-metrics does for two series)
    // can end either alone.
    let f = start_with(Emulator::builder().realtime_limits(without_pings())).await;
    let mut ws = connect(&f.emu, ALICE).await.unwrap();
    for extra in [json!({}), json!({"department_id": f.support})] {
        let mut frame = json!({"topic":"chats.incoming_chats","action":"subscribe"});
        frame
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        send(&mut ws, frame).await;
        recv(&mut ws).await;
    }
    send(
        &mut ws,
        json!({"topic":"chats.incoming_chats","action":"unsubscribe"}),
    )
    .await;
    assert_eq!(frames_before_a_500(&mut ws).await, Vec::<Value>::new());
    // A sentinel subscribed last: an arrival's updates come in one batch in subscription
    // order, so what comes before the sentinel's is all the batch holds for the others.
    let sentinel = |action: &str| json!({"topic":"chats.waiting_time_max","action": action});
    send(&mut ws, sentinel("subscribe")).await;
    assert_eq!(parse(&recv(&mut ws).await).0, "waiting_time_max");
    // The visitor arrives in Support: only the department's count still comes.
    f.arrive();
    let mut before_sentinel = Vec::new();
    loop {
        let update = parse(&recv(&mut ws).await);
        if update.0 == "waiting_time_max" {
            break;
        }
        before_sentinel.push(update);
    }
    assert_eq!(
        before_sentinel,
        vec![("incoming_chats".into(), json!(1), json!(f.support))]
    );
    send(&mut ws, sentinel("unsubscribe")).await;
    assert_eq!(frames_before_a_500(&mut ws).await, Vec::<Value>::new());
    send(
        &mut ws,
        json!({"topic":"chats.incoming_chats","action":"unsubscribe","department_id": f.support}),
    )
    .await;
    // The account-wide series again: its answer proves the unsubscribe was read, and the
    // next arrival's updates come in one batch, a department's with it if it still ran.
    send(
        &mut ws,
        json!({"topic":"chats.incoming_chats","action":"subscribe"}),
    )
    .await;
    assert_eq!(parse(&recv(&mut ws).await).0, "incoming_chats");
    f.arrive();
    assert_eq!(
        parse(&recv(&mut ws).await),
        ("incoming_chats".into(), json!(2), Value::Null)
    );
    assert_eq!(frames_before_a_500(&mut ws).await, Vec::<Value>::new());
}

/// A client's connect returns on the 101, and a test may drop the connections at once: the
/// connection already counts as open then, so the drop must reach it, not only once the
/// server's task has taken it over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drop_fault_reaches_a_connection_as_soon_as_its_upgrade_is_answered() {
    let f = start_with(Emulator::builder().realtime_limits(RealtimeLimits {
        requests_per_minute: None,
        ..without_pings()
    }))
    .await;
    for i in 0..100 {
        let mut ws = connect(&f.emu, ALICE).await.unwrap();
        f.emu.control().realtime_drop();
        let ended = tokio::time::timeout(Duration::from_secs(10), ended_abruptly(&mut ws)).await;
        assert_eq!(
            ended,
            Ok(true),
            "try {i}: the dropped connection stayed open"
        );
    }
}

/// An auth scheme's name is case-insensitive (RFC 7235 section 2.1): `bearer` is `Bearer`.
#[tokio::test]
async fn the_bearer_scheme_is_read_in_any_case() {
    let f = start().await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    for scheme in ["bearer", "BEARER"] {
        let req = http::Request::get(format!("{}/stream/agents", f.emu.base_url()))
            .header("authorization", format!("{scheme} {ALICE}"))
            .body(Empty::new())
            .unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.status(), 200, "{scheme}");
    }
}
