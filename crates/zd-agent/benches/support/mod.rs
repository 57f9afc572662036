//! A minimal chat server for benchmarks: answers `startAgentSession` over raw HTTP/1.1 and
//! speaks just enough of the WebSocket protocol (ack subscriptions, answer requests, PONG,
//! echo) that the client's own cost can be measured without an emulator's cost in the way.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Ids of the visitor messages sent in answer to echoes (far from the blasted ones).
static ECHO_IDS: AtomicU64 = AtomicU64::new(1 << 40);

/// The running server.
pub struct FakeChat {
    /// `startAgentSession` endpoint.
    pub endpoint: String,
    /// The raw WebSocket URL, for bare clients.
    pub ws_url: String,
    /// Frames to push to the most recent connection.
    pub blast: Arc<Mutex<Option<mpsc::UnboundedSender<Vec<String>>>>>,
}

pub async fn start() -> FakeChat {
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_port = http.local_addr().unwrap().port();
    let ws_port = ws.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            let (mut conn, _) = http.accept().await.unwrap();
            n += 1;
            let n = n;
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let read = conn.read(&mut chunk).await.unwrap_or(0);
                    if read == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..read]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let body = format!(
                    r#"{{"data":{{"startAgentSession":{{"websocket_url":"ws://127.0.0.1:{ws_port}/stream/0.1/graphql/s{n}:c{n}","session_id":"s{n}","client_id":"c{n}"}}}}}}"#
                );
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes()).await;
            });
        }
    });
    let blast: Arc<Mutex<Option<mpsc::UnboundedSender<Vec<String>>>>> = Arc::default();
    let latest = Arc::clone(&blast);
    tokio::spawn(async move {
        loop {
            let (conn, _) = ws.accept().await.unwrap();
            conn.set_nodelay(true).unwrap();
            let (tx, rx) = mpsc::unbounded_channel();
            *latest.lock().unwrap() = Some(tx);
            tokio::spawn(serve(conn, rx));
        }
    });
    FakeChat {
        endpoint: format!("http://127.0.0.1:{http_port}/graphql/request"),
        ws_url: format!("ws://127.0.0.1:{ws_port}/stream/0.1/graphql/bare:bare"),
        blast,
    }
}

async fn serve(conn: tokio::net::TcpStream, mut blast: mpsc::UnboundedReceiver<Vec<String>>) {
    let Ok(ws) = tokio_tungstenite::accept_async(conn).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    // Only the newest connection keeps its blast sender; once an older one's is gone, recv()
    // would answer None at once on every turn and spin this task (it starved 1,000 idle
    // connections of CPU and hung the memory bench), so stop listening to it.
    let mut blasting = true;
    loop {
        tokio::select! {
            frames = blast.recv(), if blasting => {
                let Some(frames) = frames else {
                    blasting = false;
                    continue;
                };
                for f in frames {
                    if sink.feed(Message::text(f)).await.is_err() {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
            msg = stream.next() => {
                let Some(Ok(msg)) = msg else { return };
                let Message::Text(text) = msg else { continue };
                let text = text.as_str();
                let v: serde_json::Value = if text.starts_with("echo:") {
                    serde_json::Value::Null
                } else {
                    serde_json::from_str(text).unwrap()
                };
                let reply = if text.starts_with("echo:") {
                    text.to_owned()
                } else {
                    if v["sig"] == "PING" {
                        serde_json::json!({"sig": "PONG", "payload": v["payload"]}).to_string()
                    } else if v["type"] == "stop_subscription" {
                        serde_json::json!({"id": v["id"], "payload": {"data": {"success": true}}}).to_string()
                    } else if v["payload"]["query"].as_str().is_some_and(|q| q.starts_with("subscription")) {
                        serde_json::json!({"id": v["id"], "payload": {"data": {"subscription_id": "s1"}}}).to_string()
                    } else {
                        serde_json::json!({"id": v["id"], "payload": {"data": {"sendMessage": {"success": true}}}}).to_string()
                    }
                };
                // An echo (`echo: <n>`, n > 0) is answered with the next visitor message too, so
                // the echo bench's loop needs nothing from the client's thread but the client.
                let next = v["payload"]["variables"]["msg"]
                    .as_str()
                    .and_then(|m| m.strip_prefix("echo: "))
                    .and_then(|n| n.parse::<u64>().ok())
                    .filter(|n| *n > 0)
                    .map(|_| data_frame(ECHO_IDS.fetch_add(1, Ordering::Relaxed)));
                if sink.feed(Message::text(reply)).await.is_err() {
                    return;
                }
                if let Some(frame) = next
                    && sink.feed(Message::text(frame)).await.is_err()
                {
                    return;
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A realistic `message` DATA frame (shape of a logged production frame), with id `i`.
pub fn data_frame(i: u64) -> String {
    format!(
        r#"{{"sig":"DATA","subscription_id":"s1","payload":{{"data":{{"message":{{"node":{{"id":"msg-{i}","content":"hi","msg_id":null,"sender_name":"Visitor 26085828","timestamp":1675666127859.0,"channel":{{"id":"W1sibGNJZCIsIiNzdXBwb3J0Y2hhdDoxMTc5OTc0LTFFSWxhNlJKcFdIWnV6RiJdXQ=="}},"from":{{"__typename":"Visitor","id":"v1","display_name":"Visitor 26085828","email":null}}}}}}}}}}}}"#
    )
}
