//! The Sunshine service inside the full emulator: the account shows the Sunshine app and keys,
//! and a token from `POST /oauth2/token` starts a chat agent session.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "helpers of tests")]

#[path = "sunshine/client.rs"]
mod client;

use std::net::SocketAddr;

use bytes::Bytes;
use client::{Api, basic};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::net::TcpListener;
use zd_emulator::Emulator;
use zd_emulator::sunshine::{self as sun, Sunshine, SunshineConfig, SunshineServer};

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

/// ListMessages pages hold 100 messages: the spec's `page.size` "does not apply to the
/// listMessages endpoint", so a `page[size]` is ignored there (and left out of the links).
#[tokio::test]
async fn messages_come_in_pages_of_a_hundred_whatever_page_size_says() {
    let emulator = Emulator::builder().start().await.unwrap();
    let api = Api::new(emulator.base_url().to_owned());
    let sun = &emulator.account().sunshine;
    let auth = basic(&sun.key_id, sun.key_secret.expose_secret());
    let app = format!("/v2/apps/{}", sun.app_id);
    let (st, user) = api
        .call(
            "POST",
            &format!("{app}/users"),
            Some(&auth),
            Some(json!({ "externalId": "pager" })),
        )
        .await;
    assert_eq!(st, 201, "{user}");
    let (st, conv) = api
        .call(
            "POST",
            &format!("{app}/conversations"),
            Some(&auth),
            Some(json!({ "type": "personal", "participants": [{ "userId": user["user"]["id"] }] })),
        )
        .await;
    assert_eq!(st, 201, "{conv}");
    let messages = format!(
        "{app}/conversations/{}/messages",
        conv["conversation"]["id"].as_str().unwrap()
    );
    for i in 0..130 {
        let body = json!({ "author": { "type": "business" }, "content": { "type": "text", "text": format!("m{i}") } });
        let (st, posted) = api.call("POST", &messages, Some(&auth), Some(body)).await;
        assert_eq!(st, 201, "{posted}");
    }
    let texts = |page: &serde_json::Value| -> Vec<String> {
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"]["text"].as_str().unwrap().to_owned())
            .collect()
    };

    // The newest 100, oldest first, with the way back.
    let (st, newest) = api
        .call(
            "GET",
            &format!("{messages}?page[size]=10"),
            Some(&auth),
            None,
        )
        .await;
    assert_eq!(st, 200, "{newest}");
    let expected: Vec<String> = (30..130).map(|i| format!("m{i}")).collect();
    assert_eq!(texts(&newest), expected);
    assert_eq!(newest["meta"]["hasMore"], true);
    let cursor = newest["meta"]["beforeCursor"].as_str().unwrap();
    let prev = newest["links"]["prev"].as_str().unwrap();
    assert!(prev.ends_with(&format!("page[before]={cursor}")), "{prev}");

    // An out-of-range size is not refused either: it does not apply.
    let (st, oldest) = api
        .call(
            "GET",
            &format!("{messages}?page[before]={cursor}&page[size]=1000"),
            Some(&auth),
            None,
        )
        .await;
    assert_eq!(st, 200, "{oldest}");
    let expected: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
    assert_eq!(texts(&oldest), expected);
    assert_eq!(oldest["meta"]["hasMore"], false);
}

/// The status of `GET path` on `addr` for a request naming `host` in its `Host`, with the demo
/// app key.
async fn status_for(addr: SocketAddr, path: &str, host: &str) -> u16 {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::get(format!("http://{addr}{path}"))
        .header("host", host)
        .header(
            "authorization",
            basic(sun::DEMO_APP_KEY_ID, sun::DEMO_APP_KEY_SECRET),
        )
        .body(Full::default())
        .unwrap();
    client.request(request).await.unwrap().status().as_u16()
}

/// Serves `router` on 127.0.0.1; returns its address.
async fn serve(router: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// The paths checked: the API and the service's control API.
fn paths() -> [String; 2] {
    [
        format!("/v2/apps/{}", sun::DEMO_APP_ID),
        "/_emulator/sunshine/account".to_owned(),
    ]
}

/// Embedded on its own, the Sunshine router refuses what the emulator refuses: a page of
/// `rebind.example` whose DNS then points at the listener would otherwise read the app's data
/// (and keys, through the control API) as of its own origin.
#[tokio::test]
async fn the_sunshine_router_on_its_own_refuses_other_host_names() {
    let router = Sunshine::new(SunshineConfig::default()).router();
    let addr = serve(router).await;
    let server = SunshineServer::start(SunshineConfig::default())
        .await
        .unwrap();
    for addr in [addr, server.addr()] {
        let port = addr.port();
        for path in paths() {
            for host in [
                format!("rebind.example:{port}"),
                format!("localhost.rebind.example:{port}"),
                "rebind.example".to_owned(),
            ] {
                assert_eq!(status_for(addr, &path, &host).await, 403, "{path} {host}");
            }
            for host in [
                format!("localhost:{port}"),
                format!("127.0.0.1:{port}"),
                format!("[::1]:{port}"),
                "localhost".to_owned(),
            ] {
                assert_eq!(status_for(addr, &path, &host).await, 200, "{path} {host}");
            }
        }
    }
}

/// `SunshineConfig::allow_host` lets an embedder name what the router alone cannot know: a
/// container's service name, or the address it serves at. Inside the emulator those count
/// with the emulator's own, and the Sunshine routes are checked once, against both: the
/// names the emulator allows reach them too.
#[tokio::test]
async fn allowed_host_names_reach_the_sunshine_routes_alone_and_in_the_emulator() {
    let config = || {
        SunshineConfig::default()
            .allow_host("sunshine")
            .allow_host("192.0.2.7")
    };
    let alone = serve(Sunshine::new(config()).router()).await;
    let emulator = Emulator::builder()
        .allow_host("emulator")
        .sunshine(config())
        .start()
        .await
        .unwrap();
    for (addr, allowed) in [
        (alone, &["sunshine", "192.0.2.7"][..]),
        (emulator.addr(), &["sunshine", "192.0.2.7", "emulator"][..]),
    ] {
        let port = addr.port();
        for path in paths() {
            for host in allowed {
                let host = format!("{host}:{port}");
                assert_eq!(status_for(addr, &path, &host).await, 200, "{path} {host}");
            }
            let host = format!("sunshine.rebind.example:{port}");
            assert_eq!(status_for(addr, &path, &host).await, 403, "{path} {host}");
        }
    }
    // The emulator's other routes answer the Sunshine names too: one check for all.
    let host = format!("sunshine:{}", emulator.addr().port());
    assert_eq!(
        status_for(emulator.addr(), "/_emulator/account", &host).await,
        200
    );
    // The router alone knows nothing of the emulator's names.
    let host = format!("emulator:{}", alone.port());
    assert_eq!(status_for(alone, &paths()[0], &host).await, 403);
}
