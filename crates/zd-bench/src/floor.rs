//! The floor of the echo workload: the same bot written by hand on tokio-tungstenite and
//! `serde_json::Value`, with nothing of zd-agent.
//!
//! It has no keepalive, request timeouts, rate limit, reconnect, subscription routing or typed
//! decoding, and answers like the Node peer (echoes in flight, answers matched by request id).
//! What it spends per message is what the exchange itself costs a Rust bot on the same machine,
//! so the report can say how much of our bot's CPU is zd-agent and how much is the exchange.

use std::collections::HashMap;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::control::ControlClient;
use crate::echo::{BotArgs, MESSAGE_SUBSCRIPTION, Tally, visitor_stamp};
use crate::line;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Request ids of the set-up requests; echoes count up from [`FIRST_ECHO_ID`].
const STATUS_ID: u64 = 1;
const SUBSCRIBE_ID: u64 = 2;
const FIRST_ECHO_ID: u64 = 100;

/// Runs the floor bot until `expect` echoes are acknowledged or the timeout passes.
pub(crate) async fn run(args: BotArgs) -> Result<(), String> {
    let url = start_agent_session(&args.graphql_url, &args.token).await?;
    // zd-agent's socket settings (2 KiB reads, no Nagle delay), so only zd-agent differs.
    let config = WebSocketConfig::default().read_buffer_size(2 * 1024);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
            .await
            .map_err(|e| format!("connect: {e}"))?;
    let status = "mutation { updateAgentStatus(status: ONLINE) { node { id } } }";
    send(&mut socket, STATUS_ID, status).await?;
    send(&mut socket, SUBSCRIBE_ID, MESSAGE_SUBSCRIPTION).await?;
    let subscription_id = subscribed(&mut socket).await?;
    line::ready();

    let mut tally = Tally::default();
    let limit = std::time::Duration::from_secs(args.timeout_s);
    let echo = echo(&mut socket, &subscription_id, args.expect, &mut tally);
    let outcome = tokio::time::timeout(limit, echo).await;
    tally.finish(args.expect, || match outcome {
        Ok(why) => why,
        Err(_) => format!("timed out after {} s", args.timeout_s),
    });
    Ok(())
}

/// `startAgentSession` over HTTP, as the sample does; the WebSocket URL it answers.
async fn start_agent_session(graphql_url: &str, token: &str) -> Result<String, String> {
    let query = format!(
        "mutation {{ startAgentSession(access_token: {}) {{ websocket_url session_id client_id }} }}",
        Value::from(token)
    );
    let answer = ControlClient::new(graphql_url)
        .post("", &json!({ "query": query }))
        .await?;
    answer["data"]["startAgentSession"]["websocket_url"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("startAgentSession answered {answer}"))
}

async fn send(socket: &mut Socket, id: u64, query: &str) -> Result<(), String> {
    let frame = json!({ "payload": { "query": query }, "type": "request", "id": id });
    socket
        .send(Message::text(frame.to_string()))
        .await
        .map_err(|e| format!("send: {e}"))
}

/// Waits for the subscription's answer; its `subscription_id` tags the events to come.
async fn subscribed(socket: &mut Socket) -> Result<String, String> {
    while let Some(frame) = socket.next().await {
        let Message::Text(text) = frame.map_err(|e| format!("socket: {e}"))? else {
            continue;
        };
        let Ok(answer) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if answer["id"] != SUBSCRIBE_ID {
            continue;
        }
        return answer["payload"]["data"]["subscription_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("subscribe message: {answer}"));
    }
    Err("the socket closed before the subscription was answered".to_owned())
}

/// Echoes every visitor message until `expect` are counted; why it stopped early (empty when
/// it did not).
async fn echo(
    socket: &mut Socket,
    subscription_id: &str,
    expect: u64,
    tally: &mut Tally,
) -> String {
    // Request id -> the visitor's stamp of the message it echoes.
    let mut in_flight: HashMap<u64, Option<u64>> = HashMap::new();
    let mut next_id = FIRST_ECHO_ID;
    while tally.count() < expect {
        let text = match socket.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return format!("socket: {e}"),
            None => return "the socket closed".to_owned(),
        };
        let Ok(frame) = serde_json::from_str::<Value>(&text) else {
            tally.error(format!("not JSON: {text}"));
            continue;
        };
        if frame["sig"] == "DATA" && frame["subscription_id"] == subscription_id {
            let node = &frame["payload"]["data"]["message"]["node"];
            if node["from"]["__typename"] != "Visitor" {
                continue;
            }
            let (Some(channel), Some(content)) =
                (node["channel"]["id"].as_str(), node["content"].as_str())
            else {
                tally.error(format!("message without channel or content: {node}"));
                continue;
            };
            tally.start();
            let id = next_id;
            next_id += 1;
            in_flight.insert(id, visitor_stamp(content));
            // Values inlined into the query text, as the sample does.
            let query = format!(
                "mutation {{ sendMessage(channel_id: {}, msg: {}) {{ success }} }}",
                Value::from(channel),
                Value::from(format!("echo: {content}"))
            );
            if let Err(e) = send(socket, id, &query).await {
                return e;
            }
        } else if let Some(stamp) = frame["id"].as_u64().and_then(|id| in_flight.remove(&id)) {
            if frame["payload"]["data"]["sendMessage"]["success"] == true {
                tally.ok(stamp);
            } else {
                tally.error(format!("sendMessage answered {}", frame["payload"]));
            }
        }
    }
    String::new()
}
