//! The control API: visitors, statuses, transcript, reset, scenario, account.

use serde_json::json;

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
    let (status, body) = http(
        "POST",
        &format!("{}/_emulator/scenario", emu.base_url()),
        Some(scenario),
    )
    .await;
    assert_eq!(status, 202, "{body}");
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
