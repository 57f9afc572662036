//! The Sunshine service inside the full emulator: the account shows the Sunshine app and keys,
//! and a token from `POST /oauth2/token` starts a chat agent session.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "helpers of tests")]

#[path = "sunshine/client.rs"]
mod client;

use bytes::Bytes;
use client::{Api, basic};
use serde_json::json;
use zd_emulator::Emulator;

#[tokio::test]
async fn the_emulator_serves_sunshine_next_to_chat() {
    let emulator = Emulator::builder().start().await.unwrap();
    let api = Api::new(emulator.base_url().to_owned());
    let (st, account) = api.call("GET", "/_emulator/account", None, None).await;
    assert_eq!(st, 200, "{account}");
    let sun = &account["sunshine"];
    assert_eq!(sun["api_url"], format!("{}/v2", emulator.base_url()));
    let auth = basic(
        sun["key_id"].as_str().unwrap(),
        sun["key_secret"].as_str().unwrap(),
    );
    let (st, app) = api
        .call(
            "GET",
            &format!("/v2/apps/{}", sun["app_id"].as_str().unwrap()),
            Some(&auth),
            None,
        )
        .await;
    assert_eq!((st, &app["app"]["displayName"]), (200, &json!("Demo App")));
    assert_eq!(
        emulator.account().sunshine.app_id,
        sun["app_id"].as_str().unwrap()
    );

    // Chat OAuth hands out an agent's token, which the chat service accepts.
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        sun["chat_oauth_client_id"].as_str().unwrap(),
        sun["chat_oauth_client_secret"].as_str().unwrap()
    );
    let (st, token) = api
        .raw(
            "POST",
            "/oauth2/token",
            None,
            "application/x-www-form-urlencoded",
            Bytes::from(form),
        )
        .await;
    assert_eq!(st, 200, "{token}");
    let access = token["access_token"].as_str().unwrap();
    assert_eq!(
        access,
        account["agents"][0]["access_token"].as_str().unwrap()
    );
    let query = format!(
        "mutation {{ startAgentSession(access_token: \"{access}\") {{ websocket_url session_id client_id }} }}"
    );
    let (st, session) = api
        .call(
            "POST",
            "/graphql/request",
            None,
            Some(json!({ "query": query })),
        )
        .await;
    assert_eq!(st, 200, "{session}");
    assert!(
        session["data"]["startAgentSession"]["session_id"].is_string(),
        "{session}"
    );
}
