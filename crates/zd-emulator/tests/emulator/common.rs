//! A plain WebSocket + HTTP client for the emulator (never zd-agent).

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use zd_emulator::{Emulator, Limits};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) async fn emulator() -> Emulator {
    Emulator::builder().start().await.unwrap()
}

/// An emulator with the documented limits but for what `change` sets.
pub(crate) async fn emulator_with(change: impl FnOnce(&mut Limits)) -> Emulator {
    let mut limits = Limits::documented();
    change(&mut limits);
    Emulator::builder().limits(limits).start().await.unwrap()
}

/// Limits that let tests start sessions back to back.
pub(crate) fn relaxed_starts() -> Limits {
    Limits {
        start_session_interval: Duration::ZERO,
        start_sessions_per_hour: 10_000,
        ..Limits::documented()
    }
}

pub(crate) async fn http(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let req = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

pub(crate) async fn get_text(url: &str) -> (u16, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let resp = client.get(url.parse().unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

pub(crate) async fn control(emu: &Emulator, path: &str, body: Value) -> Value {
    let (status, value) = http(
        "POST",
        &format!("{}/_emulator{path}", emu.base_url()),
        Some(body),
    )
    .await;
    assert!(status < 300, "control {path} -> {status} {value}");
    value
}

pub(crate) async fn control_get(emu: &Emulator, path: &str) -> Value {
    let (status, value) = http("GET", &format!("{}/_emulator{path}", emu.base_url()), None).await;
    assert_eq!(status, 200, "{path}: {value}");
    value
}

/// The control API's counters of session `session_id`.
pub(crate) async fn session_counters(emu: &Emulator, session_id: &str) -> Value {
    let counters = control_get(emu, "/counters").await;
    counters["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["session_id"] == session_id)
        .unwrap_or_else(|| panic!("no session {session_id} in {counters}"))
        .clone()
}

/// Waits until session `session_id` has no socket attached (at most 10 s).
pub(crate) async fn until_disconnected(emu: &Emulator, session_id: &str) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while session_counters(emu, session_id).await["connected"] == true {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the socket was not let go");
}

/// The status of agent `name`, as `Online`, `Away`, ...
pub(crate) fn agent_status(emu: &Emulator, name: &str) -> String {
    let agent = emu.account().agents.into_iter().find(|a| a.name == name);
    format!("{:?}", agent.unwrap().status)
}

pub(crate) async fn start_session(emu: &Emulator, token: &str) -> (u16, Value) {
    let query = format!(
        "mutation {{ startAgentSession(access_token: \"{token}\") {{ websocket_url session_id client_id }} }}"
    );
    http("POST", &emu.graphql_url(), Some(json!({ "query": query }))).await
}

pub(crate) fn token(emu: &Emulator, name: &str) -> String {
    emu.account()
        .agents
        .iter()
        .find(|a| a.name == name)
        .unwrap()
        .access_token
        .expose_secret()
        .to_owned()
}

pub(crate) struct Agent {
    pub(crate) ws: Ws,
    pub(crate) session_id: String,
    pub(crate) url: String,
    others: VecDeque<Value>,
    next_id: u64,
}

impl Agent {
    /// Starts a session for `name` and connects its socket.
    pub(crate) async fn connect(emu: &Emulator, name: &str) -> Self {
        Self::connect_with(emu, name, None).await
    }

    /// As [`Agent::connect`], with the socket's receive buffer cut to `receive_buffer` bytes
    /// when given (so the service's writes soon wait on a client that stops reading).
    pub(crate) async fn connect_with(
        emu: &Emulator,
        name: &str,
        receive_buffer: Option<u32>,
    ) -> Self {
        let (status, body) = start_session(emu, &token(emu, name)).await;
        assert_eq!(status, 200, "{body}");
        let data = &body["data"]["startAgentSession"];
        let url = data["websocket_url"].as_str().unwrap().to_owned();
        let ws = match receive_buffer {
            None => connect_async(url.as_str()).await.unwrap().0,
            Some(bytes) => {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.set_recv_buffer_size(bytes).unwrap();
                let tcp = socket.connect(emu.addr()).await.unwrap();
                let stream = MaybeTlsStream::Plain(tcp);
                tokio_tungstenite::client_async(url.as_str(), stream)
                    .await
                    .unwrap()
                    .0
            }
        };
        let mut agent = Self {
            ws,
            session_id: data["session_id"].as_str().unwrap().to_owned(),
            url,
            others: VecDeque::new(),
            next_id: 1,
        };
        // A round trip proves the socket is attached before the test acts on the session.
        agent.ping(json!("ready")).await;
        agent
    }

    pub(crate) async fn send(&mut self, value: Value) {
        self.ws
            .send(Message::text(value.to_string()))
            .await
            .unwrap();
    }

    /// The next text frame from the socket (panics on close).
    pub(crate) async fn raw_next(&mut self) -> Value {
        let text = self.raw_text().await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// The next text frame from the socket as it came (panics on close).
    pub(crate) async fn raw_text(&mut self) -> String {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => return t.as_str().to_owned(),
                Some(Ok(Message::Close(f))) => panic!("socket closed: {f:?}"),
                Some(Ok(_)) => {}
                other => panic!("socket ended: {other:?}"),
            }
        }
    }

    /// The next frame, queued ones first.
    pub(crate) async fn next(&mut self) -> Value {
        match self.others.pop_front() {
            Some(v) => v,
            None => self.raw_next().await,
        }
    }

    /// Reads until a frame matches, keeping the others for later.
    pub(crate) async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.others.iter().position(&pred) {
            return self.others.remove(i).unwrap();
        }
        loop {
            let v = self.raw_next().await;
            if pred(&v) {
                return v;
            }
            self.others.push_back(v);
        }
    }

    /// Sends a request without waiting for its answer; gives its id.
    pub(crate) async fn send_request(&mut self, payload: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({ "type": "request", "id": id, "payload": payload }))
            .await;
        id
    }

    pub(crate) async fn request_with(&mut self, payload: Value) -> Value {
        let id = self.send_request(payload).await;
        self.until(|v| v["id"] == json!(id) && v.get("sig").is_none())
            .await
    }

    pub(crate) async fn request(&mut self, query: &str) -> Value {
        self.request_with(json!({ "query": query })).await
    }

    /// Subscribes and returns the subscription id.
    pub(crate) async fn subscribe(&mut self, query: &str) -> String {
        let resp = self.request(query).await;
        resp["payload"]["data"]["subscription_id"]
            .as_str()
            .unwrap_or_else(|| panic!("not an ack: {resp}"))
            .to_owned()
    }

    pub(crate) async fn data(&mut self, subscription_id: &str) -> Value {
        let sub = json!(subscription_id);
        self.until(|v| v["sig"] == "DATA" && v["subscription_id"] == sub)
            .await
    }

    pub(crate) async fn ping(&mut self, payload: Value) -> Value {
        self.send(json!({ "sig": "PING", "payload": payload }))
            .await;
        let p = payload.clone();
        self.until(move |v| v["sig"] == "PONG" && v["payload"] == p)
            .await
    }

    /// Frames received so far that were not consumed.
    pub(crate) fn pending(&self) -> &VecDeque<Value> {
        &self.others
    }

    pub(crate) async fn go_online(&mut self) {
        let r = self
            .request("mutation { updateAgentStatus(status: ONLINE) { node { id status } } }")
            .await;
        assert_eq!(
            r["payload"]["data"]["updateAgentStatus"]["node"]["status"], "ONLINE",
            "{r}"
        );
    }
}

pub(crate) const MESSAGE_SUB: &str = "subscription { message { node { id content msg_id options sender_name timestamp channel { id } from { __typename id display_name } } } }";

/// A visitor arrives; returns the channel id.
pub(crate) async fn visitor(emu: &Emulator, name: &str) -> String {
    let v = control(
        emu,
        "/visitors",
        json!({ "name": name, "department": "Support" }),
    )
    .await;
    v["channel_id"].as_str().unwrap().to_owned()
}

pub(crate) async fn visitor_says(emu: &Emulator, channel: &str, text: &str) {
    control(
        emu,
        "/visitors/message",
        json!({ "channel_id": channel, "text": text }),
    )
    .await;
}

pub(crate) async fn transcript(emu: &Emulator, channel: &str) -> Value {
    let q = format!("/transcript?channel_id={}", urlencode(channel));
    control_get(emu, &q).await
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) fn error_name(frame: &Value) -> String {
    frame["payload"]["errors"][0]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Has `bot` go online and serve a chat of Ann's (it says hello); returns the channel id.
pub(crate) async fn served_channel(emu: &zd_emulator::Emulator, bot: &mut Agent) -> String {
    bot.go_online().await;
    let channel = visitor(emu, "Ann").await;
    let resp = bot
        .request(&format!(
            "mutation {{ sendMessage(channel_id: \"{channel}\", msg: \"Hi Ann\") {{ success }} }}"
        ))
        .await;
    assert_eq!(
        resp["payload"]["data"]["sendMessage"]["success"], true,
        "{resp}"
    );
    channel
}

/// Sends `method url` with `headers` and `body` as given; returns the status and the body as
/// JSON (or as a string when it is not JSON).
pub(crate) async fn send_raw(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}
