//! The documented limits, with the documented error names.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

#[tokio::test]
async fn start_agent_session_at_most_one_per_interval() {
    // An interval no test run can outlast keeps this independent of timing.
    let emu = emulator_with(|l| l.start_session_interval = Duration::from_secs(3600)).await;
    let (status, _) = start_session(&emu, &token(&emu, "Bot")).await;
    assert_eq!(status, 200);
    let (status, body) = start_session(&emu, &token(&emu, "Bot")).await;
    assert_eq!(status, 429);
    assert_eq!(body["errors"][0]["name"], "RATE_LIMITED");
    // Another agent is not affected.
    let (status, _) = start_session(&emu, &token(&emu, "Alice")).await;
    assert_eq!(status, 200);
    let counters = control_get(&emu, "/counters").await;
    let bot = counters["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Bot")
        .unwrap();
    assert_eq!(bot["sessions_started"], 1);
    assert_eq!(bot["starts_rate_limited"], 1);
}

#[tokio::test]
async fn start_agent_session_at_most_fifty_per_hour() {
    let emu = zd_emulator::Emulator::builder()
        .limits(relaxed_starts_per_hour(50))
        .start()
        .await
        .unwrap();
    for _ in 0..50 {
        let (status, body) = start_session(&emu, &token(&emu, "Bot")).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = start_session(&emu, &token(&emu, "Bot")).await;
    assert_eq!(status, 429);
    assert_eq!(body["errors"][0]["name"], "RATE_LIMITED");
}

fn relaxed_starts_per_hour(n: usize) -> zd_emulator::Limits {
    zd_emulator::Limits {
        start_session_interval: Duration::ZERO,
        start_sessions_per_hour: n,
        ..zd_emulator::Limits::documented()
    }
}

// Paused time: no request leaves the one-second window, so exactly 100 pass.
#[tokio::test(start_paused = true)]
async fn one_hundred_requests_per_second_per_session() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    for id in 0..105 {
        bot.send(json!({ "type": "request", "id": id, "payload": { "query": "{ departments { edges { node { id } } } }" } }))
            .await;
    }
    let mut limited = Vec::new();
    for _ in 0..105 {
        let frame = bot.next().await;
        if error_name(&frame) == "RATE_LIMITED" {
            assert_eq!(frame["errorCode"], 429);
            limited.push(frame["id"].as_u64().unwrap());
        }
    }
    assert_eq!(limited, vec![100, 101, 102, 103, 104]);
    let session = session_counters(&emu, &bot.session_id).await;
    assert_eq!(session["requests"], 105);
    assert_eq!(session["rate_limited"], 5);
    assert_eq!(session["peak_requests_per_second"], 105);
    assert_eq!(session["pings"], 1);
    // PINGs are not requests: still answered.
    bot.ping(json!("still")).await;
    tokio::time::advance(Duration::from_secs(1)).await;
    let resp = bot
        .request("{ departments { edges { node { id } } } }")
        .await;
    assert!(resp["payload"]["data"].is_object(), "{resp}");
}

#[tokio::test]
async fn ten_subscriptions_per_session() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    for _ in 0..10 {
        bot.subscribe(MESSAGE_SUB).await;
    }
    let resp = bot.request(MESSAGE_SUB).await;
    assert_eq!(error_name(&resp), "MAX_SUB");
    insta::assert_json_snapshot!("max_sub", resp, { ".payload.errors[].UUID" => "[uuid]" });
}

#[tokio::test]
async fn query_depth_eleven() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    // channels(1) edges(2) node(3) logs(4) edges(5) node(6) channel(7) agents(8) edges(9) node(10) name(11)
    let ok = "{ channels { edges { node { logs { edges { node { ... on Message { channel { agents { edges { node { name } } } } } } } } } } } }";
    let resp = bot.request(ok).await;
    assert!(resp["payload"]["data"].is_object(), "{resp}");
    let deep = "{ channels { edges { node { logs { edges { node { ... on Message { channel { agents { edges { node { name } } pageInfo { hasNextPage } } logs { edges { node { ... on Message { from { id } } } } } } } } } } } } } }";
    let resp = bot.request(deep).await;
    assert_eq!(error_name(&resp), "GRAPHQL_EXEC_ERROR", "{resp}");
    assert!(
        resp["payload"]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("deep")
    );
}

#[tokio::test]
async fn frames_over_the_cap_close_the_socket_with_1009() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let huge = "x".repeat(zd_emulator::Limits::documented().max_frame_bytes + 1);
    bot.ws
        .send(Message::text(
            json!({ "sig": "PING", "payload": huge }).to_string(),
        ))
        .await
        .unwrap();
    loop {
        match bot.ws.next().await {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1009);
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_socket_that_hears_nothing_is_closed_and_the_session_resumes() {
    let emu = emulator_with(|l| l.idle_timeout = Some(Duration::from_millis(300))).await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    // The bot says nothing more: the service closes the idle socket, saying why.
    let frame = loop {
        match bot.ws.next().await {
            Some(Ok(Message::Close(Some(frame)))) => break frame,
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(frame.code), 1001);
    assert!(frame.reason.contains("idle"), "{}", frame.reason);
    // The session itself lives on: the same URL takes a new socket that answers.
    let (ws, _) = tokio_tungstenite::connect_async(bot.url.as_str())
        .await
        .unwrap();
    bot.ws = ws;
    let pong = bot.ping(json!("back")).await;
    assert_eq!(pong["payload"], "back");
}

/// An idle timeout too long to add to an instant still closes an idle socket in order (the
/// reader caps it at a year) instead of overflowing when its timer fires.
#[tokio::test(start_paused = true)]
async fn a_huge_idle_timeout_closes_in_order() {
    let emu = emulator_with(|l| l.idle_timeout = Some(Duration::MAX)).await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    // Paused, the clock jumps to the next timer as soon as everything waits. A reader that
    // overflowed would never close the socket: the 50 years would pass.
    let fifty_years = Duration::from_secs(50 * 365 * 24 * 60 * 60);
    let frame = tokio::time::timeout(fifty_years, async {
        loop {
            match bot.ws.next().await {
                Some(Ok(Message::Close(Some(frame)))) => break frame,
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("the idle socket is closed");
    assert_eq!(u16::from(frame.code), 1001);
}

#[tokio::test]
async fn a_chat_holds_at_most_a_thousand_tags() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    bot.go_online().await;
    let channel = visitor(&emu, "Ann").await;
    let resp = bot
        .request(&format!(
            "mutation {{ sendMessage(channel_id: \"{channel}\", msg: \"Hi\") {{ success }} }}"
        ))
        .await;
    assert_eq!(resp["payload"]["data"]["sendMessage"]["success"], true);
    let add = |tags: &[String]| {
        let list = tags
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(", ");
        format!("mutation {{ addTags(channel_id: \"{channel}\", tags: [{list}]) {{ success }} }}")
    };
    let mut tags: Vec<String> = (0..999).map(|i| format!("t{i}")).collect();
    // Repeats, within a request and of tags already there, count once.
    tags.push("t0".into());
    let resp = bot.request(&add(&tags)).await;
    assert_eq!(
        resp["payload"]["data"]["addTags"]["success"], true,
        "{resp}"
    );
    let resp = bot
        .request(&add(&["t1".into(), "last".into(), "last".into()]))
        .await;
    assert_eq!(
        resp["payload"]["data"]["addTags"]["success"], true,
        "{resp}"
    );
    // The 1,001st is refused, and nothing of that request is added.
    let resp = bot.request(&add(&["t2".into(), "one-more".into()])).await;
    assert_eq!(error_name(&resp), "GRAPHQL_EXEC_ERROR", "{resp}");
    let message = resp["payload"]["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("1000"), "{message}");
    let t = transcript(&emu, &channel).await;
    let held = t["tags"].as_array().unwrap();
    assert_eq!(held.len(), 1000);
    assert_eq!(held[0], "t0");
    assert_eq!(held[999], "last");
    assert!(!held.contains(&json!("one-more")));
}

/// Has the Bot serve a chat of Ann's whose log then holds `entries` more messages; returns
/// the chat's channel id.
async fn long_chat(emu: &zd_emulator::Emulator, bot: &mut Agent, entries: usize) -> String {
    let channel = served_channel(emu, bot).await;
    let c = emu.control();
    for i in 0..entries {
        c.visitor_message(&channel, &format!("m{i}")).unwrap();
    }
    channel
}

/// Logs inside logs (through `Message.channel`) would copy the whole log once per entry: the
/// answer is one error, soon, and the channel's log asked for once is still answered.
#[tokio::test]
async fn logs_nested_in_logs_answer_an_error_instead_of_a_huge_answer() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    long_chat(&emu, &mut bot, 2_000).await;
    let once = "{ channels { edges { node { logs { edges { node { __typename } } } } } } }";
    let resp = bot.request(once).await;
    let edges = resp["payload"]["data"]["channels"]["edges"][0]["node"]["logs"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{resp}"))
        .len();
    assert!(edges > 2_000, "{edges}");

    let nested = "{ channels { edges { node { logs { edges { node { ... on Message { channel { logs { edges { node { __typename } } } } } } } } } } } }";
    // The guard only turns a hang into a failure.
    let resp = tokio::time::timeout(Duration::from_secs(60), bot.request(nested))
        .await
        .expect("no answer");
    assert_eq!(error_name(&resp), "GRAPHQL_EXEC_ERROR", "{resp}");
    assert_eq!(resp["payload"]["errors"].as_array().map(Vec::len), Some(1));
    let message = resp["payload"]["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("50000"), "{message}");
    // The socket goes on, and pages of the same logs are answered.
    let paged = "{ channels { edges { node { logs(first: 5) { edges { node { ... on Message { channel { logs(last: 2) { edges { node { __typename } } } } } } } } } } } }";
    let resp = bot.request(paged).await;
    let outer = &resp["payload"]["data"]["channels"]["edges"][0]["node"]["logs"]["edges"];
    assert_eq!(outer.as_array().map(Vec::len), Some(5), "{resp}");
}

/// The same shape as a subscription would build a frame as large as the nested answer for
/// every message: the subscriber gets a DATA error instead, and the subscription lives on.
#[tokio::test]
async fn a_subscription_nesting_logs_in_logs_gets_a_data_error() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let channel = long_chat(&emu, &mut bot, 2_000).await;
    let sub = bot
        .subscribe("subscription { message { node { channel { logs { edges { node { ... on Message { channel { logs { edges { node { __typename } } } } } } } } } } } }")
        .await;
    visitor_says(&emu, &channel, "one more").await;
    let frame = tokio::time::timeout(Duration::from_secs(60), bot.data(&sub))
        .await
        .expect("no DATA frame");
    assert_eq!(error_name(&frame), "GRAPHQL_EXEC_ERROR", "{frame}");
    assert!(frame["payload"].get("data").is_none(), "{frame}");
    let pong = bot.ping(json!("alive")).await;
    assert_eq!(pong["payload"], "alive");
}
