//! Chat OAuth tokens carry the scopes they were granted, and each service checks its own:
//! the Conversations API needs `chat` (FORBIDDEN otherwise, as its docs say of "your access
//! token not having enough scope"), the Real Time Chat API needs `read`.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use zd_emulator::Emulator;
use zd_emulator::sunshine::{CHAT_AGENT_PASSWORD, CHAT_OAUTH_CLIENT_ID, CHAT_OAUTH_CLIENT_SECRET};

use crate::common::*;

async fn token_request(emu: &Emulator, form: &str) -> (u16, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = http::Request::post(format!("{}/oauth2/token", emu.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form.to_owned())))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// A `password` grant for `agent` asking for `scope` (URL-encoded); the answer's body.
async fn password_grant(emu: &Emulator, agent: &str, scope: &str) -> Value {
    let (status, body) = token_request(
        emu,
        &format!(
            "grant_type=password&client_id={CHAT_OAUTH_CLIENT_ID}&username={agent}&password={CHAT_AGENT_PASSWORD}&scope={scope}"
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A `client_credentials` grant with the emulator's client, `extra` appended to the form.
async fn client_credentials(emu: &Emulator, extra: &str) -> (u16, Value) {
    let form = format!(
        "grant_type=client_credentials&client_id={CHAT_OAUTH_CLIENT_ID}&client_secret={CHAT_OAUTH_CLIENT_SECRET}{extra}"
    );
    token_request(emu, &form).await
}

/// The status of `GET path` on the emulator with `token`.
async fn get_status(emu: &Emulator, path: &str, token: &str) -> u16 {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let req = http::Request::get(format!("{}{path}", emu.base_url()))
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::new())
        .unwrap();
    client.request(req).await.unwrap().status().as_u16()
}

fn start_error(body: &Value) -> (&str, &str) {
    (
        body["errors"][0]["name"].as_str().unwrap_or_default(),
        body["errors"][0]["message"].as_str().unwrap_or_default(),
    )
}

#[tokio::test]
async fn tokens_carry_their_scopes_and_each_api_checks_its_own() {
    let emu = Emulator::builder()
        .limits(relaxed_starts())
        .start()
        .await
        .unwrap();

    // Without `chat`: a token of its own, refused by startAgentSession, fine for metrics.
    let narrow = password_grant(&emu, "Alice", "read%20write").await;
    assert_eq!(narrow["scope"], "read write");
    let narrow_token = narrow["access_token"].as_str().unwrap().to_owned();
    assert_ne!(narrow_token, token(&emu, "Alice"));
    let (status, body) = start_session(&emu, &narrow_token).await;
    assert_eq!(status, 200);
    let (name, message) = start_error(&body);
    assert_eq!(name, "FORBIDDEN", "{body}");
    assert!(message.contains("chat scope"), "{body}");
    assert_eq!(get_status(&emu, "/stream/chats", &narrow_token).await, 200);

    // Without `read`: a session starts, the Real Time Chat API refuses it.
    let no_read = password_grant(&emu, "Alice", "write%20chat").await;
    let no_read_token = no_read["access_token"].as_str().unwrap();
    let (_, body) = start_session(&emu, no_read_token).await;
    assert!(
        body["data"]["startAgentSession"]["session_id"].is_string(),
        "{body}"
    );
    assert_eq!(get_status(&emu, "/stream/chats", no_read_token).await, 401);

    // A refresh keeps the scopes granted.
    let refresh = narrow["refresh_token"].as_str().unwrap();
    let (status, renewed) = token_request(
        &emu,
        &format!(
            "grant_type=refresh_token&client_id={CHAT_OAUTH_CLIENT_ID}&refresh_token={refresh}"
        ),
    )
    .await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["scope"], "read write");
    let (_, body) = start_session(&emu, renewed["access_token"].as_str().unwrap()).await;
    assert_eq!(start_error(&body).0, "FORBIDDEN", "{body}");

    // Every scope, asked for or by default: the agent's own token.
    let full = password_grant(&emu, "Bob", "read%20write%20chat").await;
    assert_eq!(full["access_token"], json!(token(&emu, "Bob")));
    let (status, body) = client_credentials(&emu, "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "read write chat");
    assert!(body.get("refresh_token").is_none(), "{body}");

    // A scope the API does not have.
    let (status, body) = client_credentials(&emu, "&scope=read%20admin").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
}

#[tokio::test]
async fn the_implicit_grant_redirects_with_the_scopes_granted() {
    let emu = emulator().await;
    let url = format!(
        "{}/oauth2/authorizations/new?response_type=token&client_id={CHAT_OAUTH_CLIENT_ID}&redirect_uri=http://localhost/cb&scope=read&state=s1&agent=Bot",
        emu.base_url()
    );
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let resp = client.get(url.parse().unwrap()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let fragment = location.split_once('#').unwrap().1;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(fragment).unwrap();
    let field = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(field("scope"), Some("read"));
    assert_eq!(field("state"), Some("s1"));
    let granted = field("access_token").unwrap();
    assert_ne!(granted, token(&emu, "Bot"));
    let (_, body) = start_session(&emu, granted).await;
    assert_eq!(start_error(&body).0, "FORBIDDEN", "{body}");
}
