//! Fault injection through the control API.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio_tungstenite::tungstenite::{Error, Message};

use crate::common::*;

#[tokio::test]
async fn drop_closes_without_a_close_frame_and_the_url_still_works() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    control(
        &emu,
        &format!("/sessions/{}/drop", bot.session_id),
        json!({}),
    )
    .await;
    match bot.ws.next().await {
        None | Some(Err(Error::Protocol(_) | Error::Io(_) | Error::ConnectionClosed)) => {}
        other => panic!("expected an abrupt end, got {other:?}"),
    }
    let (ws, _) = tokio_tungstenite::connect_async(bot.url.as_str())
        .await
        .unwrap();
    bot.ws = ws;
    bot.ping(json!("back")).await;
}

#[tokio::test]
async fn close_with_a_code() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    control(
        &emu,
        &format!("/sessions/{}/close", bot.session_id),
        json!({ "code": 4001, "reason": "bye" }),
    )
    .await;
    match bot.ws.next().await {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 4001);
            assert_eq!(frame.reason.as_str(), "bye");
        }
        other => panic!("expected close 4001, got {other:?}"),
    }
}

#[tokio::test]
async fn eos_with_a_reason() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    control(
        &emu,
        &format!("/sessions/{}/eos", bot.session_id),
        json!({ "reason": "maintenance" }),
    )
    .await;
    let eos = bot.next().await;
    assert_eq!(eos, json!({ "sig": "EOS", "reason": "maintenance" }));
}

#[tokio::test]
async fn fail_next_requests_with_an_error_name() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    control(
        &emu,
        &format!("/sessions/{}/fail", bot.session_id),
        json!({ "count": 2, "error_name": "GRAPHQL_EXEC_ERROR" }),
    )
    .await;
    for _ in 0..2 {
        let resp = bot.request("{ agents { edges { node { id } } } }").await;
        assert_eq!(error_name(&resp), "GRAPHQL_EXEC_ERROR");
        assert_eq!(resp["errorCode"], 400);
    }
    let resp = bot.request("{ agents { edges { node { id } } } }").await;
    assert!(resp["payload"]["data"].is_object());
    control(
        &emu,
        &format!("/sessions/{}/fail", bot.session_id),
        json!({ "error_name": "RATE_LIMITED" }),
    )
    .await;
    let resp = bot.request("{ agents { edges { node { id } } } }").await;
    assert_eq!(resp["errorCode"], 429);
}

#[tokio::test]
async fn data_errors_on_a_subscription() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    bot.go_online().await;
    let sub = bot.subscribe(MESSAGE_SUB).await;
    control(
        &emu,
        &format!("/sessions/{}/fail_data", bot.session_id),
        json!({ "count": 1, "error_name": "GRAPHQL_EXEC_ERROR" }),
    )
    .await;
    let channel = visitor(&emu, "Ann").await;
    visitor_says(&emu, &channel, "one").await;
    let failed = bot.data(&sub).await;
    insta::assert_json_snapshot!("data_error", failed, {
        ".subscription_id" => "[sub]", ".payload.errors[].UUID" => "[uuid]"
    });
    visitor_says(&emu, &channel, "two").await;
    let ok = bot.data(&sub).await;
    assert_eq!(ok["payload"]["data"]["message"]["node"]["content"], "two");
}

#[tokio::test]
async fn stop_answering_pings() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    control(
        &emu,
        &format!("/sessions/{}/pings", bot.session_id),
        json!({ "answer": false }),
    )
    .await;
    bot.send(json!({ "sig": "PING", "payload": "lost" })).await;
    let resp = bot.request("{ agents { edges { node { id } } } }").await;
    assert!(resp["payload"]["data"].is_object());
    assert!(bot.pending().is_empty(), "no PONG: {:?}", bot.pending());
    control(
        &emu,
        &format!("/sessions/{}/pings", bot.session_id),
        json!({ "answer": true }),
    )
    .await;
    bot.ping(json!("heard")).await;
}

#[tokio::test(start_paused = true)]
async fn delayed_responses_and_stalls_follow_tokio_time() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    emu.control().fault_delay(&bot.session_id, 700).unwrap();
    let start = tokio::time::Instant::now();
    bot.request("{ agents { edges { node { id } } } }").await;
    assert!(start.elapsed() >= Duration::from_millis(700));
    emu.control().fault_delay(&bot.session_id, 0).unwrap();

    emu.control()
        .fault_stall(&bot.session_id, 1500)
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    bot.ping(json!("after stall")).await;
    assert!(start.elapsed() >= Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn a_deaf_socket_reads_nothing_until_its_time_is_up() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    control(
        &emu,
        &format!("/sessions/{}/deaf", bot.session_id),
        json!({ "ms": 1500 }),
    )
    .await;
    let start = tokio::time::Instant::now();
    bot.ping(json!("while deaf")).await;
    assert!(start.elapsed() >= Duration::from_millis(1500));
    // Everything sent meanwhile is read afterwards, in order.
    let resp = bot.request("{ agents { edges { node { id } } } }").await;
    assert!(resp["payload"]["data"].is_object(), "{resp}");
}

#[tokio::test]
async fn faults_on_unknown_sessions_are_404() {
    let emu = emulator().await;
    let (status, body) = http(
        "POST",
        &format!("{}/_emulator/sessions/nope/drop", emu.base_url()),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn protocol_errors_carry_a_body_payload() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    control(
        &emu,
        &format!("/sessions/{}/protocol_error", bot.session_id),
        json!({ "count": 2 }),
    )
    .await;
    let first = bot.request("{ agents { edges { node { id } } } }").await;
    insta::assert_json_snapshot!("protocol_error", first);
    let second = bot.request(MESSAGE_SUB).await;
    assert_eq!(second["payload"], first["payload"]);
    assert_eq!(second["errorCode"], 503);
    let resp = bot.request("{ agents { edges { node { id } } } }").await;
    assert!(resp["payload"]["data"].is_object(), "{resp}");

    control(
        &emu,
        &format!("/sessions/{}/protocol_error", bot.session_id),
        json!({ "error_code": 502, "body": "bad gateway" }),
    )
    .await;
    let resp = bot.request("{ agents { edges { node { id } } } }").await;
    assert_eq!(
        resp,
        json!({ "errorCode": 502, "payload": { "body": "bad gateway" }, "id": 4 })
    );
    let (status, _) = http(
        "POST",
        &format!(
            "{}/_emulator/sessions/{}/protocol_error",
            emu.base_url(),
            bot.session_id
        ),
        Some(json!({ "error_code": 200 })),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn garbled_answers_keep_their_outline_but_not_valid_data() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let session = bot.session_id.clone();
    control(&emu, &format!("/sessions/{session}/garble"), json!({})).await;
    // An error answer carries no `data` object: it passes untouched and keeps the fault armed.
    let refused = bot.request("{ nope }").await;
    assert!(refused["payload"]["errors"].is_array(), "{refused}");
    let query = "{ agents { edges { node { id } } } }";
    let id = bot.send_request(json!({ "query": query })).await;
    let garbled = bot.raw_text().await;
    let head = format!(r#"{{"id":{id},"payload":{{"data":{{"garbled":tru,"agents""#);
    assert!(garbled.starts_with(&head), "{garbled}");
    assert!(serde_json::from_str::<serde_json::Value>(&garbled).is_err());
    // Only `count` answers are garbled (one by default).
    let resp = bot.request(query).await;
    assert!(resp["payload"]["data"]["agents"].is_object(), "{resp}");
}

#[tokio::test]
async fn mute_withholds_answers_while_requests_and_stops_take_effect() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    bot.go_online().await;
    let old = bot.subscribe(MESSAGE_SUB).await;
    control(
        &emu,
        &format!("/sessions/{}/mute", bot.session_id),
        json!({ "count": 3 }),
    )
    .await;
    let away = "mutation { updateAgentStatus(status: AWAY) { node { id } } }";
    let muted = [
        bot.send_request(json!({ "query": away })).await,
        bot.send_request(json!({ "query": MESSAGE_SUB })).await,
    ];
    bot.send(
        json!({ "type": "stop_subscription", "id": 77, "payload": { "subscription_id": old } }),
    )
    .await;
    // The socket stays up: a PING is answered after them, and no answer came before it.
    bot.ping(json!("after")).await;
    assert!(
        bot.pending().iter().all(|v| v.get("id").is_none()),
        "an answer got out: {:?}",
        bot.pending()
    );
    // Each took effect: the status changed, the new subscription runs, the old one stopped.
    let status = emu.account().agents.into_iter().find(|a| a.name == "Bot");
    assert_eq!(format!("{:?}", status.unwrap().status), "Away");
    let resp = bot
        .request("{ graphQLSubscriptions { subscription_id } }")
        .await;
    let running = resp["payload"]["data"]["graphQLSubscriptions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(running.len(), 1, "{resp}");
    assert_ne!(running[0]["subscription_id"], json!(old));
    let channel = visitor(&emu, "Ann").await;
    visitor_says(&emu, &channel, "heard?").await;
    let data = bot.until(|v| v["sig"] == "DATA").await;
    assert_eq!(data["subscription_id"], running[0]["subscription_id"]);
    assert!(
        muted
            .iter()
            .all(|id| bot.pending().iter().all(|v| v["id"] != json!(id)))
    );
    let counters = control_get(&emu, "/counters").await;
    let session = counters["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["session_id"] == json!(bot.session_id))
        .unwrap()
        .clone();
    assert_eq!(session["stops"], 1, "{session}");
}

#[tokio::test]
async fn cut_drops_the_socket_as_a_request_takes_effect_before_its_answer() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    bot.go_online().await;
    control(
        &emu,
        &format!("/sessions/{}/cut", bot.session_id),
        json!({}),
    )
    .await;
    // Two requests in one write: only the first takes effect.
    for (id, query) in [
        (100, MESSAGE_SUB),
        (
            101,
            "mutation { updateAgentStatus(status: AWAY) { node { id } } }",
        ),
    ] {
        let frame = json!({ "type": "request", "id": id, "payload": { "query": query } });
        bot.ws.feed(Message::text(frame.to_string())).await.unwrap();
    }
    bot.ws.flush().await.unwrap();
    // Not even the subscription's ack gets out.
    loop {
        match bot.ws.next().await {
            None | Some(Err(Error::Protocol(_) | Error::Io(_) | Error::ConnectionClosed)) => break,
            Some(Ok(Message::Text(t))) => {
                let frame: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                assert!(frame.get("id").is_none(), "an answer got out: {frame}");
            }
            other => panic!("expected an abrupt end, got {other:?}"),
        }
    }
    let status = |emu: &zd_emulator::Emulator| {
        let bot = emu.account().agents.into_iter().find(|a| a.name == "Bot");
        format!("{:?}", bot.unwrap().status)
    };
    assert_eq!(
        status(&emu),
        "Online",
        "the request after the cut took effect"
    );
    // The subscription took effect: the same session, resumed, gets its DATA.
    let (ws, _) = tokio_tungstenite::connect_async(bot.url.as_str())
        .await
        .unwrap();
    bot.ws = ws;
    bot.ping(json!("back")).await;
    let channel = visitor(&emu, "Ann").await;
    visitor_says(&emu, &channel, "heard?").await;
    let data = bot.until(|v| v["sig"] == "DATA").await;
    assert_eq!(
        data["payload"]["data"]["message"]["node"]["content"],
        "heard?"
    );
    // One request only: the next is answered.
    let resp = bot.request("{ agents { edges { node { id } } } }").await;
    assert!(resp["payload"]["data"]["agents"].is_object(), "{resp}");
}
