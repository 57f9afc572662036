//! The control API: visitors, statuses, transcript, reset, scenario, account.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use zd_emulator::state::EventKind;
use zd_emulator::{Emulator, Limits, RealtimeLimits};

use crate::common::*;

#[tokio::test]
async fn account_lists_tokens_agents_and_departments() {
    let emu = emulator().await;
    let account = control_get(&emu, "/account").await;
    insta::assert_json_snapshot!("account", account, {
        ".graphql_url" => "[url]", ".widget_url" => "[url]", ".control_url" => "[url]",
        ".agents[].id" => "[id]", ".agents[].raw_id" => "[raw]", ".agents[].departments[]" => "[dept]",
        ".departments[].id" => "[id]", ".departments[].raw_id" => "[raw]",
        ".sunshine.api_url" => "[url]", ".sunshine.control_url" => "[url]",
    });
}

#[tokio::test]
async fn the_account_hands_out_tokens_that_its_debug_hides() {
    let emu = emulator().await;
    let account = emu.account();
    let shown = format!("{account:?}");
    let sunshine = &account.sunshine;
    let tokens = account
        .agents
        .iter()
        .map(|a| a.access_token.expose_secret());
    let secrets = [
        &sunshine.key_secret,
        &sunshine.account_key_secret,
        &sunshine.chat_oauth_client_secret,
        &sunshine.bridge_client_secret,
    ];
    let mut hidden = 0;
    for secret in tokens.chain(secrets.iter().map(|s| s.expose_secret())) {
        assert!(!secret.is_empty());
        assert!(!shown.contains(secret), "{secret} shows in {shown}");
        hidden += 1;
    }
    assert!(hidden > 4, "the account has agents");
    assert!(shown.contains(&account.agents[0].name), "{shown}");
}

/// A session's id and client id make its URL, all a socket needs to take the session from its
/// bot: the emulator's `Debug` shows neither a live session's client id.
#[tokio::test]
async fn the_emulators_debug_hides_session_client_ids() {
    let emu = emulator().await;
    let (status, started) = start_session(&emu, &token(&emu, "Bot")).await;
    assert_eq!(status, 200, "{started}");
    let client_id = started["data"]["startAgentSession"]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let session_id = started["data"]["startAgentSession"]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = format!("{emu:?}");
    assert!(shown.contains(&session_id), "the session is shown: {shown}");
    assert!(!shown.contains(&client_id), "{client_id} shows in {shown}");
}

#[tokio::test]
async fn visitor_life_cycle_and_statuses() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    bot.go_online().await;
    let sub = bot.subscribe(MESSAGE_SUB).await;
    let v = control(
        &emu,
        "/visitors",
        json!({ "name": "Zoe", "email": "zoe@example.com", "department": "Sales" }),
    )
    .await;
    let ch = v["channel_id"].as_str().unwrap().to_owned();
    control(
        &emu,
        "/visitors/typing",
        json!({ "channel_id": ch, "typing": true }),
    )
    .await;
    assert!(emu.control().state().channels()[0].visitor_typing);
    visitor_says(&emu, &ch, "hello").await;
    bot.data(&sub).await;
    control(
        &emu,
        "/visitors/rate",
        json!({ "channel_id": ch, "rating": "good" }),
    )
    .await;
    control(&emu, "/visitors/leave", json!({ "channel_id": ch })).await;
    let t = transcript(&emu, &ch).await;
    assert_eq!(t["state"], "CLOSED", "nobody served it: a missed chat");
    assert_eq!(t["rating"], "good");
    assert_eq!(t["visitor_name"], "Zoe");
    let (status, body) = http(
        "POST",
        &format!("{}/_emulator/visitors/message", emu.base_url()),
        Some(json!({ "channel_id": ch, "text": "late" })),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = http(
        "POST",
        &format!("{}/_emulator/visitors/message", emu.base_url()),
        Some(json!({ "channel_id": "garbage", "text": "x" })),
    )
    .await;
    assert_eq!(status, 400);

    let account = emu.account();
    let sales = account
        .departments
        .iter()
        .find(|d| d.name == "Sales")
        .unwrap();
    control(
        &emu,
        "/departments/status",
        json!({ "department_id": sales.id, "status": "OFFLINE" }),
    )
    .await;
    let resp = bot
        .request("{ departments { edges { node { name status } } } }")
        .await;
    assert_eq!(
        resp["payload"]["data"]["departments"]["edges"][1]["node"]["status"],
        "OFFLINE"
    );
    let alice = account.agents.iter().find(|a| a.name == "Alice").unwrap();
    control(
        &emu,
        "/agents/status",
        json!({ "agent_id": alice.id, "status": "AWAY" }),
    )
    .await;
    let resp = bot
        .request("{ agents { edges { node { name status } } } }")
        .await;
    assert_eq!(
        resp["payload"]["data"]["agents"]["edges"][1]["node"]["status"],
        "AWAY"
    );

    control(&emu, "/reset", json!({})).await;
    assert!(emu.control().state().channels().is_empty());
    let resp = bot
        .request("{ departments { edges { node { status } } } }")
        .await;
    assert_eq!(
        resp["payload"]["data"]["departments"]["edges"][1]["node"]["status"],
        "ONLINE"
    );
}

#[tokio::test]
async fn scenario_plays_visitor_steps() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    bot.go_online().await;
    let sub = bot.subscribe(MESSAGE_SUB).await;
    let scenario = json!({ "steps": [
        { "at_ms": 0, "visitor": "a", "action": "arrive", "name": "Scripted", "department": "Support" },
        { "at_ms": 0, "visitor": "a", "action": "message", "text": "from a scenario" },
    ]});
    start_scenario_over_http(&emu, scenario).await;
    let data = bot.data(&sub).await;
    assert_eq!(
        data["payload"]["data"]["message"]["node"]["content"],
        "from a scenario"
    );
    let bad = json!({ "steps": [{ "visitor": "b", "action": "leave" }] });
    let (status, _) = http(
        "POST",
        &format!("{}/_emulator/scenario", emu.base_url()),
        Some(bad),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn other_sites_pages_cannot_drive_the_control_api() {
    use http_body_util::{BodyExt as _, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let emu = emulator().await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let own = format!("http://{}", emu.addr());
    let post = |path: &str, origin: Option<&str>| {
        let mut request = http::Request::post(format!("{}{path}", emu.base_url()));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let request = request.body(Empty::new()).unwrap();
        let client = client.clone();
        async move {
            let response = client.request(request).await.unwrap();
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    for path in ["/_emulator/reset", "/_emulator/sunshine/faults/throttle"] {
        let (status, body) = post(path, Some("https://evil.example")).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("cross-site"), "{body}");
    }
    // Programs send no origin; the emulator's own page sends its own.
    assert_eq!(post("/_emulator/reset", None).await.0, 200);
    assert_eq!(post("/_emulator/reset", Some(&own)).await.0, 200);
}

/// A POST with `body` as given, and a content type only when `content_type` names one.
async fn post_raw(url: &str, content_type: Option<&str>, body: &str) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = content_type
        .map(|c| ("content-type", c))
        .into_iter()
        .collect();
    send_raw("POST", url, &headers, body).await
}

/// Waits (at most 10 s) until `count` visitors have arrived, as the state's events tell.
async fn arrivals(
    events: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<zd_emulator::state::StateEvent>>,
    count: usize,
) {
    let mut seen = 0;
    tokio::time::timeout(Duration::from_secs(10), async {
        while seen < count {
            if matches!(
                events.recv().await.unwrap().kind,
                EventKind::VisitorArrived { .. }
            ) {
                seen += 1;
            }
        }
    })
    .await
    .expect("the scenario's first step ran");
}

/// Moves the paused clock past every later step, then lets the tasks whose timers fired run.
async fn past_every_step() {
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(120)).await;
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

fn two_step_scenario() -> Value {
    json!({ "steps": [
        { "at_ms": 0, "visitor": "early", "action": "arrive", "department": "Support" },
        { "at_ms": 60_000, "visitor": "late", "action": "arrive", "department": "Support" },
    ]})
}

/// Starts `scenario` through `POST /_emulator/scenario`, which answers 202 at once.
async fn start_scenario_over_http(emu: &Emulator, scenario: Value) {
    let (status, body) = http(
        "POST",
        &format!("{}/_emulator/scenario", emu.base_url()),
        Some(scenario),
    )
    .await;
    assert_eq!(status, 202, "{body}");
}

/// Each posted scenario holds its steps until its last one, however far off: past 64 running
/// at once, a post is refused (429) rather than piling up; a reset frees the slots.
#[tokio::test]
async fn scenarios_running_at_once_are_bounded() {
    let emu = emulator().await;
    let far_off = || {
        json!({ "steps": [
            { "at_ms": 3_600_000, "visitor": "v", "action": "arrive", "department": "Support" },
        ]})
    };
    let url = format!("{}/_emulator/scenario", emu.base_url());
    for _ in 0..64 {
        start_scenario_over_http(&emu, far_off()).await;
    }
    let (status, body) = http("POST", &url, Some(far_off())).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("64 scenarios"),
        "{body}"
    );
    control(&emu, "/reset", json!({})).await;
    // The stopped scenarios give their slots back as their tasks end.
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (status, _) = http("POST", &url, Some(far_off())).await;
            if status == 202 {
                break;
            }
            assert_eq!(status, 429);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a reset frees the scenarios' slots");
}

/// A test sharing an emulator must not meet the visitors of an earlier test's scenario: a
/// reset stops the scenarios under way, those started over HTTP and in process alike.
#[tokio::test]
async fn reset_stops_running_scenarios() {
    let emu = emulator().await;
    let mut events = emu.control().state().subscribe();
    start_scenario_over_http(&emu, two_step_scenario()).await;
    let scenario = serde_json::from_value(two_step_scenario()).unwrap();
    let in_process = emu.control().clone();
    let task = tokio::spawn(async move { in_process.run_scenario(scenario).await });
    arrivals(&mut events, 2).await;
    control(&emu, "/reset", json!({})).await;
    past_every_step().await;
    assert!(
        emu.control().state().channels().is_empty(),
        "{:?}",
        emu.control().state().channels()
    );
    assert!(task.is_finished(), "the in-process scenario returned");
}

/// Dropping the emulator stops the scenarios started over HTTP (their tasks would otherwise
/// live on in the runtime, holding the state).
#[tokio::test]
async fn dropping_the_emulator_stops_its_scenarios() {
    let emu = emulator().await;
    let mut events = emu.control().state().subscribe();
    start_scenario_over_http(&emu, two_step_scenario()).await;
    arrivals(&mut events, 1).await;
    let control = emu.control().clone();
    drop(emu);
    past_every_step().await;
    assert_eq!(
        control.state().channels().len(),
        1,
        "only the early visitor"
    );
}

/// `GET /counters` after a reset reads as on a fresh emulator but for the live sessions, and
/// the request budgets are whole again.
#[tokio::test]
async fn reset_clears_counters_windows_and_budgets() {
    let emu = Emulator::builder()
        .limits(Limits {
            requests_per_second: Some(1),
            ..relaxed_starts()
        })
        .realtime_limits(RealtimeLimits {
            requests_per_minute: Some(1),
            ping_interval: None,
            ..RealtimeLimits::documented()
        })
        .start()
        .await
        .unwrap();
    let ended = Agent::connect(&emu, "Bot").await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    assert_ne!(ended.session_id, bot.session_id);
    let bot_token = token(&emu, "Bot");
    let feed = |token: String| {
        let url = format!("{}/stream/chats", emu.base_url());
        async move {
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            let request = http::Request::get(url)
                .header("authorization", format!("Bearer {token}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            client.request(request).await.unwrap().status().as_u16()
        }
    };
    assert_eq!(feed(bot_token.clone()).await, 200);
    assert_eq!(
        feed(bot_token.clone()).await,
        429,
        "the minute's one request is spent"
    );
    bot.go_online().await;

    control(&emu, "/reset", json!({})).await;
    let counters = control_get(&emu, "/counters").await;
    let sessions = counters["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "only the live session: {counters}");
    assert_eq!(sessions[0]["session_id"], bot.session_id.as_str());
    for agent in counters["agents"].as_array().unwrap() {
        assert_eq!(agent["sessions_started"], 0, "{counters}");
    }
    // Within the second of `go_online`: the session's window of one request is whole again.
    let resp = bot
        .request("{ departments { edges { node { name } } } }")
        .await;
    assert!(resp["payload"]["data"].is_object(), "{resp}");
    assert_eq!(
        feed(bot_token).await,
        200,
        "the minute's budget is whole again"
    );
}

/// The fault routes whose fields all have defaults take no body at all.
#[tokio::test]
async fn fault_bodies_with_defaults_may_be_left_out() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let base = format!("{}/_emulator/sessions/{}", emu.base_url(), bot.session_id);
    // No body and no content type.
    let (status, body) = post_raw(&format!("{base}/garble"), None, "").await;
    assert_eq!(status, 200, "{body}");
    bot.send_request(json!({ "query": "{ agents { edges { node { name } } } }" }))
        .await;
    let answer = bot.raw_text().await;
    assert!(answer.contains(r#""data":{"garbled":tru,"#), "{answer}");
    // An empty body with a JSON content type.
    for fault in ["mute", "protocol_error", "garble"] {
        let (status, body) =
            post_raw(&format!("{base}/{fault}"), Some("application/json"), "").await;
        assert_eq!(status, 200, "{fault}: {body}");
    }
    // A body that is not JSON: 400 in the control API's error shape.
    let (status, body) = post_raw(&format!("{base}/garble"), Some("application/json"), "{").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let (status, body) = post_raw(&format!("{base}/close"), None, "").await;
    assert_eq!(status, 200, "{body}");
    match futures_util::StreamExt::next(&mut bot.ws).await {
        Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 1000);
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    let (status, body) = post_raw(&format!("{base}/eos"), None, "").await;
    assert_eq!(status, 200, "{body}");
    let session = session_counters(&emu, &bot.session_id).await;
    assert_eq!(session["ended"], "unexpected session state", "{session}");
}

/// The department ids `/account` hands out work wherever a department is named.
#[tokio::test]
async fn visitors_arrive_in_a_department_named_by_its_public_id() {
    let emu = emulator().await;
    let account = emu.account();
    let department = &account.departments[0];
    let v = control(&emu, "/visitors", json!({ "department": department.id })).await;
    let mut events = emu.control().state().subscribe();
    let scenario = json!({ "steps": [
        { "visitor": "s", "action": "arrive", "department": department.id },
    ]});
    start_scenario_over_http(&emu, scenario).await;
    arrivals(&mut events, 1).await;
    let channels = emu.control().state().channels();
    assert_eq!(channels.len(), 2, "{v}");
    for channel in channels {
        assert_eq!(
            channel.department.as_deref(),
            Some(department.raw_id.as_str())
        );
    }
}

/// Input the state refuses as invalid is a 400, like other bad input; a visitor who left
/// cannot type, as they cannot write.
#[tokio::test]
async fn invalid_input_is_400_and_a_closed_chat_takes_no_typing() {
    let emu = emulator().await;
    let channel = visitor(&emu, "Ann").await;
    let post = |path: &str, body: Value| {
        let url = format!("{}/_emulator{path}", emu.base_url());
        async move { http("POST", &url, Some(body)).await }
    };
    let (status, body) = post(
        "/visitors/message",
        json!({ "channel_id": channel, "text": "  " }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].is_string(), "{body}");
    control(&emu, "/visitors/leave", json!({ "channel_id": channel })).await;
    let mut events = emu.control().state().subscribe();
    let (status, body) = post(
        "/visitors/typing",
        json!({ "channel_id": channel, "typing": true }),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(!emu.control().state().channels()[0].visitor_typing);
    assert!(events.try_recv().is_err(), "no typing event");
}
