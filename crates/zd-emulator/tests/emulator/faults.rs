//! Fault injection through the control API.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio_tungstenite::tungstenite::{Error, Message};

use zd_emulator::control::{Control, ControlError};

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

/// A name in another form than the documented ones is a typo far more often than a test of
/// unknown names: it is refused, naming the documented ones, and nothing is armed. A name in
/// their form that the documents do not list is sent as is.
#[tokio::test]
async fn fail_faults_refuse_names_not_in_the_documented_form() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    for fault in ["fail", "fail_data"] {
        let url = format!(
            "{}/_emulator/sessions/{}/{fault}",
            emu.base_url(),
            bot.session_id
        );
        for name in ["rate_limited", "", " RATE_LIMITED", "RATE-LIMITED"] {
            let (status, body) = http(
                "POST",
                &url,
                Some(json!({ "count": 1, "error_name": name })),
            )
            .await;
            assert_eq!(status, 400, "{fault} {name:?}: {body}");
            let error = body["error"].as_str().unwrap();
            assert!(
                error.contains("RATE_LIMITED") && error.contains("MAX_SUB"),
                "{body}"
            );
        }
    }
    let resp = bot.request("{ agents { edges { node { id } } } }").await;
    assert!(
        resp["payload"]["data"].is_object(),
        "nothing was armed: {resp}"
    );
    control(
        &emu,
        &format!("/sessions/{}/fail", bot.session_id),
        json!({ "error_name": "NOT_A_DOCUMENTED_NAME" }),
    )
    .await;
    let resp = bot.request("{ agents { edges { node { id } } } }").await;
    assert_eq!(error_name(&resp), "NOT_A_DOCUMENTED_NAME", "{resp}");
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
    assert_eq!(agent_status(&emu, "Bot"), "Away");
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
    let session = session_counters(&emu, &bot.session_id).await;
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
    assert_eq!(
        agent_status(&emu, "Bot"),
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

/// Paused time: the answers are held for the delay while the time stands still, and only the
/// order of what arrives is asserted.
#[tokio::test(start_paused = true)]
async fn delay_holds_every_answer_for_its_time_and_pongs_go_out_at_once() {
    let emu = emulator_with(|l| l.requests_per_second = Some(5)).await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let session = bot.session_id.clone();
    control(
        &emu,
        &format!("/sessions/{session}/protocol_error"),
        json!({}),
    )
    .await;
    control(
        &emu,
        &format!("/sessions/{session}/fail"),
        json!({ "error_name": "GRAPHQL_EXEC_ERROR" }),
    )
    .await;
    control(
        &emu,
        &format!("/sessions/{session}/delay"),
        json!({ "ms": 1000 }),
    )
    .await;
    let query = "{ agents { edges { node { id } } } }";
    let frames = [
        // The injected protocol error, then the injected failure.
        json!({ "type": "request", "id": 1, "payload": { "query": query } }),
        json!({ "type": "request", "id": 2, "payload": { "query": query } }),
        // A subscription's ack.
        json!({ "type": "request", "id": 3, "payload": { "query": MESSAGE_SUB } }),
        // An answer with data.
        json!({ "type": "request", "id": 4, "payload": { "query": query } }),
        // An error answer to a stop.
        json!({ "type": "stop_subscription", "id": 5, "payload": { "subscription_id": "nope" } }),
        // The sixth and seventh requests of a session allowed five: RATE_LIMITED, the
        // sixth even though it does not decode (it is a request all the same).
        json!({ "type": "request", "id": 6 }),
        json!({ "type": "request", "id": 7, "payload": { "query": query } }),
        json!({ "sig": "PING", "payload": "first" }),
    ];
    for frame in frames {
        bot.ws.feed(Message::text(frame.to_string())).await.unwrap();
    }
    bot.ws.flush().await.unwrap();
    let start = tokio::time::Instant::now();
    // The PING read last is answered first: every answer before it waits for its time.
    let pong = bot.raw_next().await;
    assert_eq!(pong, json!({ "sig": "PONG", "payload": "first" }));
    // Past the time of the answers but short of twice the delay: a PING sent now is answered
    // after all of them, so none waited for the one before it.
    tokio::time::sleep_until(start + Duration::from_millis(1500)).await;
    bot.send(json!({ "sig": "PING", "payload": "late" })).await;
    let mut ids = Vec::new();
    loop {
        let frame = bot.raw_next().await;
        if frame["sig"] == "PONG" {
            assert_eq!(frame["payload"], "late");
            break;
        }
        ids.push(frame["id"].clone());
        match frame["id"].as_u64() {
            Some(1) => assert_eq!(frame["errorCode"], 503, "{frame}"),
            Some(2 | 5) => assert_eq!(error_name(&frame), "GRAPHQL_EXEC_ERROR"),
            Some(3) => assert!(frame["payload"]["data"]["subscription_id"].is_string()),
            Some(4) => assert!(frame["payload"]["data"]["agents"].is_object()),
            Some(6 | 7) => assert_eq!(error_name(&frame), "RATE_LIMITED"),
            _ => panic!("unexpected {frame}"),
        }
    }
    assert_eq!(ids, (1..=7).map(|id| json!(id)).collect::<Vec<_>>());
}

#[tokio::test]
async fn garble_counts_a_subscription_ack() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let session = bot.session_id.clone();
    control(&emu, &format!("/sessions/{session}/garble"), json!({})).await;
    let id = bot.send_request(json!({ "query": MESSAGE_SUB })).await;
    let ack = bot.raw_text().await;
    let head = format!(r#"{{"id":{id},"payload":{{"data":{{"garbled":tru,"subscription_id""#);
    assert!(ack.starts_with(&head), "{ack}");
    // The ack used the fault up.
    let resp = bot.request("{ agents { edges { node { id } } } }").await;
    assert!(resp["payload"]["data"]["agents"].is_object(), "{resp}");
}

#[tokio::test]
async fn fail_data_is_kept_for_a_frame_that_reaches_a_socket() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    bot.go_online().await;
    let sub = bot.subscribe(MESSAGE_SUB).await;
    let session = bot.session_id.clone();
    control(
        &emu,
        &format!("/sessions/{session}/fail_data"),
        json!({ "error_name": "GRAPHQL_EXEC_ERROR" }),
    )
    .await;
    control(&emu, &format!("/sessions/{session}/drop"), json!({})).await;
    while let Some(Ok(_)) = bot.ws.next().await {}
    // Wait for the session to let go of the socket (no timing asserted).
    until_disconnected(&emu, &session).await;
    // No socket: this DATA frame is lost, and the fault stays armed.
    let channel = visitor(&emu, "Ann").await;
    visitor_says(&emu, &channel, "lost").await;
    let (ws, _) = tokio_tungstenite::connect_async(bot.url.as_str())
        .await
        .unwrap();
    bot.ws = ws;
    bot.ping(json!("back")).await;
    visitor_says(&emu, &channel, "heard").await;
    let failed = bot.data(&sub).await;
    assert_eq!(error_name(&failed), "GRAPHQL_EXEC_ERROR", "{failed}");
    visitor_says(&emu, &channel, "again").await;
    let ok = bot.data(&sub).await;
    assert_eq!(ok["payload"]["data"]["message"]["node"]["content"], "again");
}

#[tokio::test]
async fn close_refuses_codes_that_cannot_go_on_the_wire() {
    let emu = emulator().await;
    // A session without a socket: an accepted code gets as far as "not connected" (409).
    let (_, body) = start_session(&emu, &token(&emu, "Bot")).await;
    let session = body["data"]["startAgentSession"]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{}/_emulator/sessions/{session}/close", emu.base_url());
    for code in [
        0, 999, 1004, 1005, 1006, 1014, 1015, 1016, 2999, 5000, 65535,
    ] {
        let (status, body) = http("POST", &url, Some(json!({ "code": code }))).await;
        assert_eq!(status, 400, "{code}: {body}");
        if code == 1006 {
            assert!(body["error"].as_str().unwrap().contains("drop"), "{body}");
        }
    }
    for code in [1000, 1001, 1003, 1007, 1011, 1013, 3000, 4999] {
        let (status, body) = http("POST", &url, Some(json!({ "code": code }))).await;
        assert_eq!(status, 409, "{code}: {body}");
    }
}

/// A close frame's payload is at most 125 bytes, two of them the code.
#[tokio::test]
async fn close_and_eos_reasons_are_cut_to_fit_a_close_frame() {
    let emu = emulator().await;
    let long = "é".repeat(100);
    let mut bot = Agent::connect(&emu, "Bot").await;
    control(
        &emu,
        &format!("/sessions/{}/close", bot.session_id),
        json!({ "code": 4001, "reason": long }),
    )
    .await;
    match bot.ws.next().await {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 4001);
            assert_eq!(frame.reason.as_str(), "é".repeat(61));
        }
        other => panic!("expected close 4001, got {other:?}"),
    }
    let (ws, _) = tokio_tungstenite::connect_async(bot.url.as_str())
        .await
        .unwrap();
    bot.ws = ws;
    bot.ping(json!("back")).await;
    control(
        &emu,
        &format!("/sessions/{}/eos", bot.session_id),
        json!({ "reason": long }),
    )
    .await;
    // The EOS frame carries the whole reason; the close frame as much as fits.
    let eos = bot.next().await;
    assert_eq!(eos, json!({ "sig": "EOS", "reason": long }));
    match bot.ws.next().await {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(frame.reason.as_str(), "é".repeat(61));
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn eos_goes_out_after_the_data_queued_before_it() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    bot.go_online().await;
    let sub = bot.subscribe(MESSAGE_SUB).await;
    let channel = visitor(&emu, "Ann").await;
    // The DATA waits in the socket's queue while the writer stalls; the session ends behind it.
    let session = bot.session_id.clone();
    control(
        &emu,
        &format!("/sessions/{session}/stall"),
        json!({ "ms": 2000 }),
    )
    .await;
    for i in 0..20 {
        visitor_says(&emu, &channel, &format!("m{i}")).await;
    }
    control(
        &emu,
        &format!("/sessions/{session}/eos"),
        json!({ "reason": "bye" }),
    )
    .await;
    let mut said = Vec::new();
    loop {
        let frame = bot.next().await;
        if frame["sig"] == "EOS" {
            break;
        }
        if frame["sig"] == "DATA" && frame["subscription_id"] == json!(sub) {
            said.push(frame["payload"]["data"]["message"]["node"]["content"].clone());
        }
    }
    let expected: Vec<serde_json::Value> = (0..20).map(|i| json!(format!("m{i}"))).collect();
    assert_eq!(said, expected, "every DATA queued before the EOS, in order");
}

#[tokio::test]
async fn drop_ends_a_socket_whose_client_stopped_reading() {
    let emu = emulator().await;
    let mut bot = Agent::connect_with(&emu, "Bot", Some(4096)).await;
    bot.go_online().await;
    bot.subscribe(MESSAGE_SUB).await;
    let channel = visitor(&emu, "Ann").await;
    let c = emu.control();
    let session = bot.session_id.clone();
    // Never read from here on: once the kernel's buffers are full (the service's send buffer
    // may grow to a few MiB), the service's writes wait on this client, and a full queue
    // shows they do.
    let text = "x".repeat(4_000);
    for _ in 0..2_500 {
        c.visitor_message(&channel, &text).unwrap();
    }
    fill_queue(c, &session, &channel).await;
    control(&emu, &format!("/sessions/{session}/drop"), json!({})).await;
    until_disconnected(&emu, &session).await;
    drop(bot);
}

/// Whether session `session` has a socket attached.
fn connected(c: &Control, session: &str) -> bool {
    c.counters()
        .sessions
        .iter()
        .any(|s| s.session_id == session && s.connected)
}

/// Reads `ws` until the connection ends (a close frame included); panics if it has not ended
/// within a minute.
async fn until_ended(ws: &mut Ws, what: &str) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: the connection was never ended"));
}

#[tokio::test]
async fn a_socket_whose_client_stopped_reading_is_dropped_after_the_write_timeout() {
    let emu = emulator_with(|l| l.write_timeout = Duration::from_millis(500)).await;
    let mut bot = Agent::connect_with(&emu, "Bot", Some(4096)).await;
    bot.go_online().await;
    bot.subscribe(MESSAGE_SUB).await;
    let channel = visitor(&emu, "Ann").await;
    let c = emu.control();
    let session = bot.session_id.clone();
    // Never read from here on: once the buffers between are full, a write of the service
    // waits on this client for good, and only the write timeout ends the socket.
    let text = "x".repeat(4_000);
    tokio::time::timeout(Duration::from_secs(120), async {
        while connected(c, &session) {
            for _ in 0..200 {
                c.visitor_message(&channel, &text).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the socket of a client that reads nothing was never dropped");
    // The TCP connection itself is closed: what was buffered is read, then its end.
    until_ended(&mut bot.ws, "after the write timeout").await;
}

#[tokio::test]
async fn a_session_that_ends_behind_a_full_queue_drops_its_socket() {
    // The writer sleeps (a stall is not a write, so no write times out): only the wait for
    // room in the queue can end this socket.
    let emu = emulator_with(|l| l.write_timeout = Duration::from_millis(300)).await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    bot.go_online().await;
    bot.subscribe(MESSAGE_SUB).await;
    let channel = visitor(&emu, "Ann").await;
    let c = emu.control();
    let session = bot.session_id.clone();
    // The writer sleeps, as behind a client that reads nothing: the queue fills.
    c.fault_stall(&session, 3_600_000).await.unwrap();
    fill_queue(c, &session, &channel).await;
    // EOS and the close find no room within the write timeout: the socket is dropped rather
    // than kept waiting for room that never comes.
    c.fault_eos(&session, "bye").unwrap();
    until_ended(&mut bot.ws, "after the session ended").await;
}

#[tokio::test]
async fn a_client_behind_a_full_queue_that_reads_on_still_gets_its_eos() {
    // A write timeout no test outlasts: the client is slow, not gone.
    let emu = emulator_with(|l| l.write_timeout = Duration::from_secs(3600)).await;
    let mut bot = Agent::connect_with(&emu, "Bot", Some(4096)).await;
    bot.go_online().await;
    let sub = bot.subscribe(MESSAGE_SUB).await;
    let channel = visitor(&emu, "Ann").await;
    let c = emu.control();
    let session = bot.session_id.clone();
    // The bot reads nothing for now: its small buffer fills, the writer waits on it, and the
    // socket's queue fills behind it.
    fill_queue(c, &session, &channel).await;
    c.fault_eos(&session, "bye").unwrap();
    // The bot reads on: everything queued before the session ended, then its EOS.
    let mut data = 0_u64;
    let eos = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let frame = bot.raw_next().await;
            if frame["sig"] == "EOS" {
                return frame;
            }
            if frame["subscription_id"] == sub.as_str() {
                data += 1;
            }
        }
    })
    .await
    .expect("no EOS after the queued DATA");
    assert_eq!(eos["reason"], "bye", "{eos}");
    assert!(data >= 16_384, "only {data} DATA frames before the EOS");
}

#[tokio::test]
async fn an_idle_socket_whose_writer_is_stuck_is_dropped() {
    let emu = emulator_with(|l| {
        l.idle_timeout = Some(Duration::from_millis(200));
        l.write_timeout = Duration::from_millis(300);
    })
    .await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let session = bot.session_id.clone();
    // The writer sleeps for an hour, so the idle close waits behind it: the socket gets the
    // write timeout to write it, then is dropped.
    emu.control()
        .fault_stall(&session, 3_600_000)
        .await
        .unwrap();
    until_ended(&mut bot.ws, "after the idle timeout").await;
    until_disconnected(&emu, &session).await;
}

/// Has the visitor on `channel` speak until the socket of `session` has a full queue (the
/// fan-out drops a frame): its writer takes nothing more.
async fn fill_queue(c: &Control, session: &str, channel: &str) {
    let dropped = || {
        c.counters()
            .sessions
            .iter()
            .find(|s| s.session_id == session)
            .map_or(0, |s| s.counts.data_dropped)
    };
    tokio::time::timeout(Duration::from_secs(120), async {
        while dropped() == 0 {
            for i in 0..1_000 {
                c.visitor_message(channel, &format!("m{i}")).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the socket's queue never filled");
}

#[tokio::test]
async fn a_socket_whose_client_reads_nothing_refuses_queued_faults_and_ends_when_replaced() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    bot.go_online().await;
    bot.subscribe(MESSAGE_SUB).await;
    let channel = visitor(&emu, "Ann").await;
    let c = emu.control();
    let session = bot.session_id.clone();
    // The writer sleeps from here on, as behind a client that reads nothing: the socket's
    // queue (16,384 frames) fills with the visitor's DATA.
    c.fault_stall(&session, 3_600_000).await.unwrap();
    fill_queue(c, &session, &channel).await;
    // A close or stall would wait behind that queue for as long as the client is silent.
    let refused = c.fault_close(&session, 4000, "bye").await;
    assert!(
        matches!(refused, Err(ControlError::Backlogged(ref id)) if *id == session),
        "{refused:?}"
    );
    let refused = c.fault_stall(&session, 10).await;
    assert!(
        matches!(refused, Err(ControlError::Backlogged(_))),
        "{refused:?}"
    );

    // A new connection replaces it: the old socket, whose close could not be queued, ends.
    let (ws, _) = tokio_tungstenite::connect_async(bot.url.as_str())
        .await
        .unwrap();
    let mut old = std::mem::replace(&mut bot.ws, ws);
    bot.ping(json!("replacement")).await;
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(Ok(_)) = old.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the replaced socket is still open");
}

/// A reset hands the next test a session free of the faults an earlier one injected.
#[tokio::test]
async fn reset_clears_the_faults_of_live_sessions() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let session = bot.session_id.clone();
    control(
        &emu,
        &format!("/sessions/{session}/delay"),
        json!({ "ms": 5000 }),
    )
    .await;
    control(
        &emu,
        &format!("/sessions/{session}/fail"),
        json!({ "count": 3, "error_name": "RATE_LIMITED" }),
    )
    .await;
    control(
        &emu,
        &format!("/sessions/{session}/pings"),
        json!({ "answer": false }),
    )
    .await;
    control(
        &emu,
        &format!("/sessions/{session}/garble"),
        json!({ "count": 3 }),
    )
    .await;
    control(&emu, "/reset", json!({})).await;
    // Well under the 5 s the delay would hold the answer for.
    let resp = tokio::time::timeout(
        Duration::from_secs(3),
        bot.request("{ departments { edges { node { name } } } }"),
    )
    .await
    .expect("answered without the delay");
    assert!(
        resp["payload"]["data"]["departments"]["edges"].is_array(),
        "neither failed nor garbled: {resp}"
    );
    tokio::time::timeout(Duration::from_secs(3), bot.ping(json!("after reset")))
        .await
        .expect("PINGs are answered again");
}
