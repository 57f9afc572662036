//! The client against the emulator's Sunshine Conversations service over loopback: auth,
//! pagination, round trips, the service's error answers as typed errors, and the
//! `webhook_bot` example end to end.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "../examples/webhook_bot.rs"]
mod webhook_bot;

use std::net::SocketAddr;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use zd_auth::sunshine::{ApiKey, BasicAuth, JwtCredentials, Scope};
use zd_emulator::Emulator;
use zd_emulator::sunshine::SunshineAccount;
use zd_sunshine::{Client, ErrorKind, Region, models, operations};

struct Env {
    emu: Emulator,
    acct: SunshineAccount,
}

async fn env() -> Env {
    let emu = Emulator::builder().start().await.unwrap();
    let acct = emu.account().sunshine;
    Env { emu, acct }
}

impl Env {
    fn app_key(&self) -> ApiKey {
        ApiKey::new(self.acct.key_id.clone(), self.acct.key_secret.clone()).unwrap()
    }
    fn basic(&self) -> Client {
        Client::new(
            Region::Custom(self.emu.base_url().to_owned()),
            BasicAuth::new(&self.app_key()),
        )
        .unwrap()
    }
    fn app(&self) -> &str {
        &self.acct.app_id
    }

    /// POSTs to the emulator's control API.
    async fn control(&self, path: &str, body: Value) -> Value {
        let http = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let req = http::Request::post(format!("{}/_emulator/sunshine/{path}", self.emu.base_url()))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let resp = http.request(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(status.is_success(), "{path}: {status} {bytes:?}");
        serde_json::from_slice(&bytes).unwrap()
    }

    async fn control_get(&self, path: &str) -> Value {
        let http = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let uri = format!("{}/_emulator/sunshine/{path}", self.emu.base_url());
        let resp = http.get(uri.parse().unwrap()).await.unwrap();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// A web end user with their personal conversation: (user id, conversation id).
    async fn end_user(&self) -> (String, String) {
        let made = self
            .control(&format!("apps/{}/end-users", self.app()), json!({}))
            .await;
        (
            made["user"]["id"].as_str().unwrap().to_owned(),
            made["conversation"]["id"].as_str().unwrap().to_owned(),
        )
    }
}

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_bot_answers_every_end_user_message_once() {
    let env = env().await;
    let bot = webhook_bot::start_bot(
        env.basic(),
        env.app().to_owned(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let (_user, conversation) = env.end_user().await;
    let sent = ["hello", "how are you?", "bye"];
    for text in sent {
        env.control(
            &format!("apps/{}/conversations/{conversation}/messages", env.app()),
            json!({ "text": text }),
        )
        .await;
    }
    let mut replies = bot.replies.clone();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        replies.wait_for(|n| *n >= sent.len()),
    )
    .await
    .expect("the bot did not answer in time")
    .unwrap();

    let messages: Vec<models::Message> = operations::ListMessages::new(env.app(), &conversation)
        .paginate(&env.basic())
        .try_collect()
        .await
        .unwrap();
    let texts: Vec<String> = messages
        .iter()
        .filter_map(|m| match &m.content {
            Some(models::Content::Text(t)) => t.text.clone(),
            _ => None,
        })
        .collect();
    for text in sent {
        let echo = format!("echo: {text}");
        assert_eq!(
            texts.iter().filter(|t| **t == echo).count(),
            1,
            "{echo} in {texts:?}"
        );
        assert_eq!(texts.iter().filter(|t| *t == text).count(), 1);
    }
    // Every delivery to the bot was accepted, so its X-API-Key check passed.
    let deliveries = env.control_get("deliveries").await;
    let ours: Vec<&Value> = deliveries["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d.to_string().contains(&bot.target))
        .collect();
    assert!(!ours.is_empty(), "{deliveries}");
    for d in &ours {
        assert_eq!(d["outcome"], "delivered", "{d}");
    }
    bot.server.abort();
}

fn account_client(env: &Env) -> Client {
    let key = ApiKey::new(
        env.acct.account_key_id.clone(),
        env.acct.account_key_secret.clone(),
    )
    .unwrap();
    Client::new(
        Region::Custom(env.emu.base_url().to_owned()),
        BasicAuth::new(&key),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_basic_jwt_and_wrong_secret() {
    let env = env().await;
    let base = Region::Custom(env.emu.base_url().to_owned());
    let app = operations::GetApp::new(env.app())
        .send(&env.basic())
        .await
        .unwrap();
    assert_eq!(app.app.unwrap().id.as_deref(), Some(env.app()));

    let app_jwt = Client::new(
        base.clone(),
        JwtCredentials::new(&env.app_key(), Scope::App).unwrap(),
    )
    .unwrap();
    operations::GetApp::new(env.app())
        .send(&app_jwt)
        .await
        .unwrap();

    let account_key = ApiKey::new(
        env.acct.account_key_id.clone(),
        env.acct.account_key_secret.clone(),
    )
    .unwrap();
    let account_jwt = Client::new(
        base.clone(),
        JwtCredentials::new(&account_key, Scope::Account).unwrap(),
    )
    .unwrap();
    let apps: Vec<models::App> = operations::ListApps::new()
        .paginate(&account_jwt)
        .try_collect()
        .await
        .unwrap();
    assert!(apps.iter().any(|a| a.id.as_deref() == Some(env.app())));

    // App keys do not reach account-only operations.
    let err = operations::ListApps::new()
        .send(&env.basic())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err:?}");

    let wrong = ApiKey::new(env.acct.key_id.clone(), "not-the-secret").unwrap();
    for client in [
        Client::new(base.clone(), BasicAuth::new(&wrong)).unwrap(),
        Client::new(
            base.clone(),
            JwtCredentials::new(&wrong, Scope::App).unwrap(),
        )
        .unwrap(),
    ] {
        let err = operations::GetApp::new(env.app())
            .send(&client)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err:?}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
        assert_eq!(err.api_errors()[0].code, "unauthorized");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_operation_paginates_across_pages() {
    let env = env().await;
    let c = env.basic();
    let acct = account_client(&env);

    // Apps (account key).
    for i in 0..4 {
        operations::CreateApp::new(from(json!({ "displayName": format!("app {i}") })))
            .send(&acct)
            .await
            .unwrap();
    }
    let first = operations::ListApps::new()
        .page_size(2)
        .send(&acct)
        .await
        .unwrap();
    assert_eq!(first.apps.as_ref().unwrap().len(), 2);
    assert_eq!(first.meta.as_ref().unwrap().has_more, Some(true));
    let apps: Vec<models::App> = operations::ListApps::new()
        .page_size(2)
        .paginate(&acct)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(apps.len(), 5, "demo app + 4");

    // Conversations of one user, clients of that user.
    let user = operations::CreateUser::new(env.app(), from(json!({ "externalId": "pager" })))
        .send(&c)
        .await
        .unwrap()
        .user
        .unwrap();
    let user_id = user.id.unwrap();
    for i in 0..5 {
        operations::CreateConversation::new(
            env.app(),
            from(json!({
                "type": "sdkGroup",
                "displayName": format!("c{i}"),
                "participants": [{ "userId": user_id }],
            })),
        )
        .send(&c)
        .await
        .unwrap();
    }
    let convs: Vec<models::Conversation> = operations::ListConversations::new(env.app())
        .filter_user_id(&user_id)
        .page_size(2)
        .paginate(&c)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(convs.len(), 5);
    let mut ids: Vec<_> = convs.iter().map(|c| c.id.clone().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "no conversation twice");

    for i in 0..3 {
        operations::CreateClient::new(
            env.app(),
            &user_id,
            from(json!({ "matchCriteria": { "type": "mailgun", "integrationId": "x", "address": format!("u{i}@example.com") }, "confirmation": { "type": "immediate" }, "target": { "conversationId": ids[0] } })),
        )
        .send(&c)
        .await
        .ok();
    }
    let clients: Vec<models::Client> = operations::ListClients::new(env.app(), &user_id)
        .page_size(1)
        .paginate(&c)
        .try_collect()
        .await
        .unwrap();
    let listed_once = operations::ListClients::new(env.app(), &user_id)
        .page_size(100)
        .send(&c)
        .await
        .unwrap();
    assert_eq!(clients.len(), listed_once.clients.unwrap_or_default().len());

    // Participants of a group conversation.
    let mut members = vec![user_id.clone()];
    for i in 0..4 {
        let u =
            operations::CreateUser::new(env.app(), from(json!({ "externalId": format!("m{i}") })))
                .send(&c)
                .await
                .unwrap();
        let id = u.user.unwrap().id.unwrap();
        operations::JoinConversation::new(env.app(), &ids[0], from(json!({ "userId": id })))
            .send(&c)
            .await
            .unwrap();
        members.push(id);
    }
    let participants: Vec<models::Participant> =
        operations::ListParticipants::new(env.app(), &ids[0])
            .page_size(2)
            .paginate(&c)
            .try_collect()
            .await
            .unwrap();
    let mut got: Vec<_> = participants
        .iter()
        .map(|p| p.user_id.clone().unwrap())
        .collect();
    got.sort();
    members.sort();
    assert_eq!(got, members);

    // Messages: 25 over pages of 7.
    for i in 0..25 {
        operations::PostMessage::new(
            env.app(),
            &ids[1],
            models::MessagePost::business_text(format!("m{i}")),
        )
        .send(&c)
        .await
        .unwrap();
    }
    let messages: Vec<models::Message> = operations::ListMessages::new(env.app(), &ids[1])
        .page_size(7)
        .paginate(&c)
        .try_collect()
        .await
        .unwrap();
    let mut texts: Vec<String> = messages
        .iter()
        .filter_map(|m| match &m.content {
            Some(models::Content::Text(t)) => t.text.clone(),
            _ => None,
        })
        .collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), 25);

    // Integrations.
    for i in 0..3 {
        operations::CreateIntegration::new(
            env.app(),
            from(json!({ "type": "custom", "displayName": format!("i{i}"), "webhooks": [{ "target": "http://127.0.0.1:9/x", "triggers": ["conversation:read"] }] })),
        )
        .send(&c)
        .await
        .unwrap();
    }
    let all: Vec<models::Integration> = operations::ListIntegrations::new(env.app())
        .page_size(1)
        .paginate(&c)
        .try_collect()
        .await
        .unwrap();
    let one_page = operations::ListIntegrations::new(env.app())
        .page_size(100)
        .send(&c)
        .await
        .unwrap();
    assert!(all.len() >= 3);
    assert_eq!(all.len(), one_page.integrations.unwrap_or_default().len());

    // page[size] reaches the server decoded: out of range is its 400.
    let err = operations::ListConversations::new(env.app())
        .filter_user_id(&user_id)
        .page_size(101)
        .send(&c)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest, "{err:?}");
}
