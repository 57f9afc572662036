//! Every frame kind of the protocol, with a raw WebSocket client.

use serde_json::json;
use tokio_tungstenite::connect_async;

use crate::common::*;

fn redact_errors(mut v: serde_json::Value) -> serde_json::Value {
    let errors = match v.get("payload").and_then(|p| p.get("errors")) {
        Some(_) => v.pointer_mut("/payload/errors"),
        None => v.pointer_mut("/errors"),
    };
    if let Some(errors) = errors.and_then(|e| e.as_array_mut()) {
        for e in errors {
            e["UUID"] = json!("[uuid]");
        }
    }
    v
}

#[tokio::test]
async fn start_agent_session_over_http() {
    let emu = emulator().await;
    let (status, body) = start_session(&emu, &token(&emu, "Bot")).await;
    assert_eq!(status, 200);
    let data = &body["data"]["startAgentSession"];
    let sid = data["session_id"].as_str().unwrap();
    let cid = data["client_id"].as_str().unwrap();
    let expected = format!("ws://{}/stream/0.1/graphql/{sid}:{cid}", emu.addr());
    assert_eq!(data["websocket_url"], json!(expected));

    let (status, body) = start_session(&emu, "not-a-token").await;
    assert_eq!(status, 200);
    insta::assert_json_snapshot!("bad_token", redact_errors(body));

    let (status, body) = http(
        "POST",
        &emu.graphql_url(),
        Some(json!({ "query": "{ departments { edges { node { id } } } }" })),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["errors"][0]["name"], "GRAPHQL_EXEC_ERROR");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("WebSocket")
    );
}

#[tokio::test]
async fn ping_is_answered_with_the_same_payload() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    bot.send(json!({ "sig": "PING", "payload": 1_675_666_127_859u64 }))
        .await;
    let pong = bot.next().await;
    insta::assert_json_snapshot!("pong_number", pong);
    let pong = bot.ping(json!("pingPong")).await;
    insta::assert_json_snapshot!("pong_string", pong);
}

#[tokio::test]
async fn queries_echo_the_request_id_in_any_json_type() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    for id in [
        json!(7),
        json!("UPDATE_AGENT_STATUS"),
        json!(9_007_199_254_740_993u64),
    ] {
        bot.send(json!({
            "type": "request",
            "id": id,
            "payload": { "query": "{ departments { edges { node { name status } } } }" }
        }))
        .await;
        let resp = bot.next().await;
        assert_eq!(resp["id"], id);
        assert_eq!(
            resp["payload"]["data"]["departments"]["edges"][0]["node"]["name"],
            "Support"
        );
    }
    let resp = bot
        .request(
            "{ agents { edges { node { name display_name status } } pageInfo { hasNextPage } } }",
        )
        .await;
    insta::assert_json_snapshot!("agents_query", resp);
}

#[tokio::test]
async fn variables_and_operation_name_select_the_operation() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let resp = bot
        .request_with(json!({
            "query": "query A { agents { edges { node { name } } } } query B($n: Int) { departments(first: $n) { edges { node { name } } pageInfo { hasNextPage endCursor } } }",
            "operationName": "B",
            "variables": { "n": 1 }
        }))
        .await;
    insta::assert_json_snapshot!("operation_b", resp);
}

#[tokio::test]
async fn message_subscription_delivers_visitor_messages_and_own_echo() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let sub = bot.subscribe(MESSAGE_SUB).await;
    bot.go_online().await;
    let channel = visitor(&emu, "Ann").await;
    visitor_says(&emu, &channel, "hi").await;
    let data = bot.data(&sub).await;
    assert_eq!(data["payload"]["data"]["message"]["node"]["content"], "hi");
    assert_eq!(
        data["payload"]["data"]["message"]["node"]["channel"]["id"],
        json!(channel)
    );
    insta::assert_json_snapshot!("visitor_message_data", data, {
        ".subscription_id" => "[sub]",
        ".payload.data.message.node.id" => "[id]",
        ".payload.data.message.node.timestamp" => "[ts]",
        ".payload.data.message.node.channel.id" => "[channel]",
        ".payload.data.message.node.from.id" => "[visitor]",
    });

    let send = format!(
        "mutation {{ sendMessage(channel_id: \"{channel}\", msg: \"Hello!\", msg_id: \"m-1\") {{ success }} }}"
    );
    let resp = bot.request(&send).await;
    assert_eq!(
        resp["payload"]["data"]["sendMessage"]["success"], true,
        "{resp}"
    );
    let echo = bot.data(&sub).await;
    let node = &echo["payload"]["data"]["message"]["node"];
    assert_eq!(node["from"]["__typename"], "Agent");
    assert_eq!(node["content"], "Hello!");
    assert_eq!(node["msg_id"], "m-1");
    assert_eq!(node["sender_name"], "Support Bot");
}

#[tokio::test]
async fn stop_subscription_answers_success_and_stops_data() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    bot.go_online().await;
    let stopped = bot.subscribe(MESSAGE_SUB).await;
    let kept = bot.subscribe(MESSAGE_SUB).await;
    bot.send(
        json!({ "type": "stop_subscription", "id": 99, "payload": { "subscription_id": stopped } }),
    )
    .await;
    let resp = bot.until(|v| v["id"] == 99).await;
    insta::assert_json_snapshot!("stop_subscription", resp);

    let channel = visitor(&emu, "Ann").await;
    visitor_says(&emu, &channel, "hi").await;
    bot.data(&kept).await;
    // Both subscriptions share one class, so a frame for the stopped one would have been
    // queued with the kept one's; anything before the PONG would show it.
    bot.ping(json!("after")).await;
    assert!(
        bot.pending()
            .iter()
            .all(|v| v["subscription_id"] != json!(stopped)),
        "{:?}",
        bot.pending()
    );

    let resp = bot
        .request("{ graphQLSubscriptions { subscription_id } }")
        .await;
    assert_eq!(
        resp["payload"]["data"]["graphQLSubscriptions"],
        json!([{ "subscription_id": kept }])
    );

    bot.send(
        json!({ "type": "stop_subscription", "id": 100, "payload": { "subscription_id": "nope" } }),
    )
    .await;
    let resp = bot.until(|v| v["id"] == 100).await;
    assert_eq!(error_name(&resp), "GRAPHQL_EXEC_ERROR");
    assert_eq!(resp["errorCode"], 400);
}

#[tokio::test]
async fn chat_activity_reports_joins_and_leaves_with_filter() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    bot.go_online().await;
    let joins = bot
        .subscribe("subscription { chatActivity(filter: {chat_activity_types: [MEMBER_JOIN]}) { node { __typename ... on MemberJoinLog { id user_name user { __typename display_name } } } } }")
        .await;
    let all = bot
        .subscribe("subscription { chatActivity { node { __typename ... on MemberJoinLog { user_name } ... on MemberLeaveLog { user_name } } } }")
        .await;
    let channel = visitor(&emu, "Ann").await;
    let join = bot.data(&joins).await;
    assert_eq!(
        join["payload"]["data"]["chatActivity"]["node"]["user"]["__typename"],
        "Visitor"
    );
    let join = bot.data(&all).await;
    assert_eq!(
        join["payload"]["data"]["chatActivity"]["node"]["user_name"],
        "Ann"
    );
    control(&emu, "/visitors/leave", json!({ "channel_id": channel })).await;
    let leave = bot.data(&all).await;
    assert_eq!(
        leave["payload"]["data"]["chatActivity"]["node"]["__typename"],
        "MemberLeaveLog"
    );
    // The joins-only subscription's next item is the next join: Ann's leave, which came
    // before it, was filtered out (one subscription's items keep the order of their events).
    visitor(&emu, "Bob").await;
    let next = bot.data(&joins).await;
    let node = &next["payload"]["data"]["chatActivity"]["node"];
    assert_eq!(node["__typename"], "MemberJoinLog", "{next}");
    assert_eq!(node["user_name"], "Bob", "{next}");
}

/// The agents a waiting chat was offered to (its department's) hear that another agent took
/// it, as a leaver hears its own leave: a bot tracking waiting chats must not keep one.
#[tokio::test]
async fn agents_offered_a_waiting_chat_hear_another_agent_take_it() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    bot.go_online().await;
    let activity = bot
        .subscribe("subscription { chatActivity { node { __typename ... on MemberJoinLog { user_name } } } }")
        .await;
    let mut alice = Agent::connect(&emu, "Alice").await;
    served_channel(&emu, &mut alice).await;
    let visitor_join = bot.data(&activity).await;
    let node = &visitor_join["payload"]["data"]["chatActivity"]["node"];
    assert_eq!(node["user_name"], "Ann", "{visitor_join}");
    let taken = bot.data(&activity).await;
    let node = &taken["payload"]["data"]["chatActivity"]["node"];
    assert_eq!(node["__typename"], "MemberJoinLog", "{taken}");
    assert_eq!(node["user_name"], "Alice (Support)", "{taken}");
}

#[tokio::test]
async fn invalid_frames_and_queries_get_error_responses() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let resp = bot.request("{ nope }").await;
    assert_eq!(error_name(&resp), "GRAPHQL_EXEC_ERROR");
    insta::assert_json_snapshot!("unknown_field", redact_errors(resp));
    let resp = bot.request("subscription { nope }").await;
    assert_eq!(error_name(&resp), "GRAPHQL_SUB_START_ERROR");
    bot.send(json!({ "type": "request", "id": 5 })).await;
    let resp = bot.next().await;
    assert_eq!(resp["errorCode"], 400);
    assert_eq!(error_name(&resp), "GRAPHQL_EXEC_ERROR");
    let resp = bot
        .request(r#"mutation { startAgentSession(access_token: "x") { session_id } }"#)
        .await;
    assert_eq!(error_name(&resp), "GRAPHQL_EXEC_ERROR");
}

#[tokio::test]
async fn eos_on_unknown_session_url() {
    let emu = emulator().await;
    let url = format!("ws://{}/stream/0.1/graphql/nosuch:123", emu.addr());
    let (mut ws, _) = connect_async(url.as_str()).await.unwrap();
    use futures_util::StreamExt as _;
    let frame = ws.next().await.unwrap().unwrap();
    let eos: serde_json::Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
    insta::assert_json_snapshot!("eos_unknown_session", eos);
}

#[tokio::test]
async fn eos_when_the_same_agent_starts_another_session() {
    let emu = zd_emulator::Emulator::builder()
        .limits(relaxed_starts())
        .start()
        .await
        .unwrap();
    let mut old = Agent::connect(&emu, "Bot").await;
    let _new = Agent::connect(&emu, "Bot").await;
    let eos = old.until(|v| v["sig"] == "EOS").await;
    assert_eq!(eos["reason"], "concurrent session limit reached");
    // The old URL is dead now.
    let (mut ws, _) = connect_async(old.url.as_str()).await.unwrap();
    use futures_util::StreamExt as _;
    let frame = ws.next().await.unwrap().unwrap();
    assert!(frame.to_text().unwrap().contains("EOS"));
}

#[tokio::test]
async fn eos_after_stop_agent_session() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let resp = bot
        .request("mutation { stopAgentSession { success } }")
        .await;
    assert_eq!(resp["payload"]["data"]["stopAgentSession"]["success"], true);
    let eos = bot.next().await;
    insta::assert_json_snapshot!("eos_stopped", eos);
}

/// Seed 001: after EOS "the current agent session is no longer valid", so nothing after the
/// stop in the same document runs: the message never reaches the visitor.
#[tokio::test]
async fn requests_after_the_stop_in_one_document_are_refused() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let channel = served_channel(&emu, &mut bot).await;
    let resp = bot
        .request(&format!(
            "mutation {{ stopAgentSession {{ success }} \
             sendMessage(channel_id: \"{channel}\", msg: \"too late\") {{ success }} }}"
        ))
        .await;
    assert_eq!(
        resp["payload"]["data"]["stopAgentSession"]["success"], true,
        "{resp}"
    );
    assert!(resp["payload"]["data"]["sendMessage"].is_null(), "{resp}");
    assert_eq!(error_name(&resp), "GRAPHQL_EXEC_ERROR", "{resp}");
    let log = transcript(&emu, &channel).await;
    assert!(log.to_string().contains("Hi Ann"), "{log}");
    assert!(!log.to_string().contains("too late"), "{log}");
}

#[tokio::test]
async fn a_session_stopped_twice_is_listed_once() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let resp = bot
        .request("mutation { a: stopAgentSession { success } b: stopAgentSession { success } }")
        .await;
    assert_eq!(resp["payload"]["data"]["a"]["success"], true, "{resp}");
    let counters = control_get(&emu, "/counters").await;
    let listed = counters["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["session_id"] == bot.session_id.as_str())
        .count();
    assert_eq!(listed, 1, "{counters}");
}

#[tokio::test]
async fn reconnecting_to_the_same_url_resumes_subscriptions() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    bot.go_online().await;
    let sub = bot.subscribe(MESSAGE_SUB).await;
    let (ws, _) = connect_async(bot.url.as_str()).await.unwrap();
    let old = std::mem::replace(&mut bot.ws, ws);
    drop(old);
    bot.ping(json!("resumed")).await;
    let channel = visitor(&emu, "Ann").await;
    visitor_says(&emu, &channel, "still there?").await;
    let data = bot.data(&sub).await;
    assert_eq!(
        data["payload"]["data"]["message"]["node"]["content"],
        "still there?"
    );
}

/// Seed 001: the id is "echoed in the response to match the response with the request", so
/// an error answer to a frame that does not decode carries its id when it has a usable one.
#[tokio::test]
async fn error_answers_to_malformed_frames_echo_their_id() {
    use futures_util::SinkExt as _;
    use tokio_tungstenite::tungstenite::Message;

    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    for (frame, id) in [
        // The payload is a string, not an object.
        (
            json!({ "type": "request", "id": 42, "payload": "{ agents { edges { node { id } } } }" }),
            json!(42),
        ),
        (json!({ "type": "request", "id": "req-7" }), json!("req-7")),
        (json!({ "type": "stop_subscription", "id": 8 }), json!(8)),
        // An unknown type.
        (
            json!({ "type": "subscribe", "id": 9, "payload": { "query": MESSAGE_SUB } }),
            json!(9),
        ),
    ] {
        bot.send(frame.clone()).await;
        let resp = bot.next().await;
        assert_eq!(resp["id"], id, "{frame} -> {resp}");
        assert_eq!(error_name(&resp), "GRAPHQL_EXEC_ERROR", "{resp}");
    }
    // The exact number text comes back.
    bot.ws
        .send(Message::text(r#"{"type":"request","id":1e2}"#))
        .await
        .unwrap();
    let resp = bot.raw_text().await;
    assert!(resp.contains(r#""id":1e2"#), "{resp}");
    // No usable id: the answer has none.
    for text in [
        r#"{"type":"request","id":{"n":1}}"#,
        r#"{"type":"request","id":null}"#,
        r#"{"type":"request","id":5"#,
        r#"[{"id":5}]"#,
    ] {
        bot.ws.send(Message::text(text)).await.unwrap();
        let resp = bot.next().await;
        assert!(resp.get("id").is_none(), "{text} -> {resp}");
        assert_eq!(error_name(&resp), "GRAPHQL_EXEC_ERROR", "{resp}");
    }
}
