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
    // The replies prove deliveries passed the X-API-Key check (the service answers 401 before
    // any handler runs); none was refused, and every attempt that finished got a 200. Later
    // deliveries (the bot's own replies) may still be in flight, so `pending` is allowed.
    let deliveries = env.control_get("deliveries").await;
    let ours: Vec<&Value> = deliveries["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d.to_string().contains(&bot.target))
        .collect();
    assert!(!ours.is_empty(), "{deliveries}");
    for d in &ours {
        assert!(
            d["outcome"] == "delivered" || d["outcome"] == "pending",
            "{d}"
        );
        for attempt in d["attempts"].as_array().into_iter().flatten() {
            assert_eq!(attempt["status"], 200, "{d}");
        }
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
        assert_eq!(err.api_errors()[0].code.as_deref(), Some("unauthorized"));
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
                // Required of an sdkGroup participant (participantSubSchema).
                "participants": [{ "userId": user_id, "subscribeSDKClient": false }],
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

    let channel = operations::CreateIntegration::new(
        env.app(),
        from(json!({ "type": "custom", "displayName": "mail", "webhooks": [{ "target": "http://127.0.0.1:9/m", "triggers": ["conversation:read"] }] })),
    )
    .send(&c)
    .await
    .unwrap();
    let Some(models::Integration::Custom(channel)) = channel.integration else {
        panic!("not custom");
    };
    let channel = channel.id.unwrap();
    for i in 0..3 {
        operations::CreateClient::new(
            env.app(),
            &user_id,
            from(json!({ "matchCriteria": { "type": "mailgun", "integrationId": channel, "address": format!("u{i}@example.com") }, "confirmation": { "type": "immediate" }, "target": { "conversationId": ids[0] } })),
        )
        .send(&c)
        .await
        .unwrap();
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
    assert_eq!(clients.len(), 3);
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
        operations::JoinConversation::new(
            env.app(),
            &ids[0],
            from(json!({ "userId": id, "subscribeSDKClient": false })),
        )
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

    // Messages: 230 over the API's fixed pages of 100.
    for i in 0..230 {
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
        .paginate(&c)
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
    assert_eq!(texts.len(), 230, "{texts:?}");
    // Newest page first (m130..m229, then m30..m129, then m0..m29), oldest to newest within a
    // page.
    let mut expected = Vec::new();
    let mut end: usize = 230;
    while end > 0 {
        let start = end.saturating_sub(100);
        expected.extend((start..end).map(|i| format!("m{i}")));
        end = start;
    }
    assert_eq!(texts, expected);

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

#[tokio::test]
async fn a_throttled_service_is_retried_and_a_lasting_one_reported() {
    let env = env().await;
    let policy = zd_sunshine::RetryPolicy {
        max_retries: 3,
        min_delay: std::time::Duration::from_millis(1),
        max_delay: std::time::Duration::from_millis(5),
        ..zd_sunshine::RetryPolicy::default()
    };
    let c = Client::builder(
        Region::Custom(env.emu.base_url().to_owned()),
        BasicAuth::new(&env.app_key()),
    )
    .retry(policy)
    .build()
    .unwrap();
    // Two 429s, then the service answers: the call succeeds on its third attempt.
    env.control(
        "faults/throttle",
        json!({ "requests": 2, "retryAfterSeconds": 0 }),
    )
    .await;
    let app = operations::GetApp::new(env.app()).send(&c).await.unwrap();
    assert_eq!(app.app.unwrap().id.as_deref(), Some(env.app()));
    // More 429s than retries: the error says rate limited, with the API's code.
    env.control("faults/throttle", json!({ "requests": 10 }))
        .await;
    let err = operations::GetApp::new(env.app())
        .send(&c)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.code(), Some("too_many_requests"));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn list_users_finds_a_user_by_email_identity() {
    let env = env().await;
    let c = env.basic();
    let app = env.app();
    let identity =
        json!([{ "type": "email", "value": "sue+1@example.org", "verification": "sso" }]);
    let sue = env
        .control(
            &format!("apps/{app}/end-users"),
            json!({ "externalId": "sue", "identities": identity }),
        )
        .await;
    // The same address only in a profile is not an identity.
    env.control(
        &format!("apps/{app}/end-users"),
        json!({ "externalId": "sam", "email": "sue+1@example.org" }),
    )
    .await;

    let found = operations::ListUsers::new(app, "sue+1@example.org")
        .send(&c)
        .await
        .unwrap()
        .users
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id.as_deref(), sue["user"]["id"].as_str());
    let identities = found[0].identities.as_deref().unwrap();
    assert_eq!(identities[0].r#type.as_deref(), Some("email"));
    assert_eq!(identities[0].value.as_deref(), Some("sue+1@example.org"));
    let none = operations::ListUsers::new(app, "nobody@example.org")
        .send(&c)
        .await
        .unwrap();
    assert_eq!(none.users.map(|u| u.len()), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_conversations_messages_participants_round_trip() {
    let env = env().await;
    let c = env.basic();
    let app = env.app();

    // Users.
    let made = operations::CreateUser::new(
        app,
        from(json!({ "externalId": "ada", "profile": { "givenName": "Ada" } })),
    )
    .send(&c)
    .await
    .unwrap()
    .user
    .unwrap();
    let user_id = made.id.clone().unwrap();
    let by_external = operations::GetUser::new(app, "ada").send(&c).await.unwrap();
    assert_eq!(
        by_external.user.unwrap().id.as_deref(),
        Some(user_id.as_str())
    );
    let updated = operations::UpdateUser::new(
        app,
        &user_id,
        from(json!({ "profile": { "givenName": "Grace" } })),
    )
    .send(&c)
    .await
    .unwrap();
    let profile = serde_json::to_value(updated.user.unwrap().profile).unwrap();
    assert_eq!(profile["givenName"], "Grace");
    // Typed: the surname set, the given name unset (sent as `null`), the rest left alone.
    let body = models::UserUpdateBody {
        profile: Some(
            models::ProfilePatch::default()
                .surname("Hopper".to_owned())
                .given_name(zd_sunshine::Patch::Null),
        ),
        ..Default::default()
    };
    insta::assert_snapshot!(serde_json::to_string(&body).unwrap(), @r#"{"profile":{"givenName":null,"surname":"Hopper"}}"#);
    let updated = operations::UpdateUser::new(app, &user_id, body)
        .send(&c)
        .await
        .unwrap();
    let profile = updated.user.unwrap().profile.unwrap();
    assert_eq!(profile.given_name, None);
    assert_eq!(profile.surname.as_deref(), Some("Hopper"));
    let err = operations::CreateUser::new(app, from(json!({ "externalId": "ada" })))
        .send(&c)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err:?}");

    // Conversations.
    let conv = operations::CreateConversation::new(
        app,
        from(json!({ "type": "sdkGroup", "displayName": "round trip", "participants": [{ "userId": user_id, "subscribeSDKClient": false }] })),
    )
    .send(&c)
    .await
    .unwrap()
    .conversation
    .unwrap();
    let conv_id = conv.id.unwrap();
    let renamed = operations::UpdateConversation::new(
        app,
        &conv_id,
        from(json!({ "displayName": "renamed" })),
    )
    .send(&c)
    .await
    .unwrap();
    let renamed = serde_json::to_value(renamed.conversation.unwrap()).unwrap();
    assert_eq!(renamed["displayName"], "renamed");
    let got = operations::GetConversation::new(app, &conv_id)
        .send(&c)
        .await
        .unwrap();
    assert_eq!(
        got.conversation.unwrap().id.as_deref(),
        Some(conv_id.as_str())
    );

    // Participants.
    let other = operations::CreateUser::new(app, from(json!({ "externalId": "grace" })))
        .send(&c)
        .await
        .unwrap()
        .user
        .unwrap()
        .id
        .unwrap();
    operations::JoinConversation::new(
        app,
        &conv_id,
        from(json!({ "userId": other, "subscribeSDKClient": false })),
    )
    .send(&c)
    .await
    .unwrap();
    let count = |c: &Client| {
        let req = operations::ListParticipants::new(app, &conv_id);
        let c = c.clone();
        async move {
            req.send(&c)
                .await
                .unwrap()
                .participants
                .unwrap_or_default()
                .len()
        }
    };
    assert_eq!(count(&c).await, 2);
    operations::LeaveConversation::new(app, &conv_id, from(json!({ "userId": other })))
        .send(&c)
        .await
        .unwrap();
    assert_eq!(count(&c).await, 1);

    // Messages: every content type the service validates, typed both ways.
    let action = json!([{ "type": "link", "text": "Open", "uri": "https://example.com" }]);
    let contents = [
        json!({ "type": "text", "text": "hello" }),
        json!({ "type": "image", "mediaUrl": "https://example.com/a.png" }),
        json!({ "type": "file", "mediaUrl": "https://example.com/a.pdf" }),
        json!({ "type": "location", "coordinates": { "lat": 45.5, "long": -73.6 } }),
        json!({ "type": "carousel", "items": [{ "title": "One", "actions": action }] }),
        json!({ "type": "list", "items": [{ "title": "One", "actions": action }] }),
        json!({ "type": "form", "fields": [{ "type": "text", "name": "name", "label": "Name" }] }),
        json!({ "type": "formResponse", "fields": [{ "type": "text", "name": "name", "label": "Name", "text": "Ada" }] }),
        json!({ "type": "template", "template": { "name": "hello", "language": { "code": "en" } } }),
    ];
    let mut ids = Vec::new();
    for content in &contents {
        let content: models::Content = from(content.clone());
        let post = models::MessagePost::new(models::Author::business(), content.clone());
        let sent = operations::PostMessage::new(app, &conv_id, post)
            .send(&c)
            .await
            .unwrap_or_else(|e| panic!("{content:?}: {e:?}"));
        let message = sent.messages.unwrap().pop().unwrap();
        assert_eq!(
            serde_json::to_value(message.content.unwrap()).unwrap()["type"],
            serde_json::to_value(&content).unwrap()["type"]
        );
        ids.push(message.id.unwrap());
    }
    let listed: Vec<models::Message> = operations::ListMessages::new(app, &conv_id)
        .paginate(&c)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), contents.len());

    // Invalid content is the service's 400 with its errors body.
    let bad: models::Content = from(json!({ "type": "carousel", "items": [] }));
    let err = operations::PostMessage::new(
        app,
        &conv_id,
        models::MessagePost::new(models::Author::business(), bad),
    )
    .send(&c)
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest, "{err:?}");
    assert!(!err.api_errors().is_empty());
    assert!(
        err.api_errors()[0]
            .title
            .as_deref()
            .unwrap_or("")
            .contains("items")
    );

    operations::DeleteMessage::new(app, &conv_id, &ids[0])
        .send(&c)
        .await
        .unwrap();
    operations::DeleteAllMessages::new(app, &conv_id)
        .send(&c)
        .await
        .unwrap();
    let left = operations::ListMessages::new(app, &conv_id)
        .send(&c)
        .await
        .unwrap();
    assert!(left.messages.unwrap_or_default().is_empty());

    // Deletes, then 404s.
    operations::DeleteConversation::new(app, &conv_id)
        .send(&c)
        .await
        .unwrap();
    let err = operations::GetConversation::new(app, &conv_id)
        .send(&c)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
    operations::DeleteUser::new(app, &user_id)
        .send(&c)
        .await
        .unwrap();
    let err = operations::GetUser::new(app, &user_id)
        .send(&c)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_switchboards_control_and_attachments() {
    let env = env().await;
    let c = env.basic();
    let app = env.app();

    // Webhooks of a custom integration.
    let integration = operations::CreateIntegration::new(
        app,
        from(json!({ "type": "custom", "displayName": "hooks", "webhooks": [{ "target": "http://127.0.0.1:9/a", "triggers": ["conversation:read"] }] })),
    )
    .send(&c)
    .await
    .unwrap();
    let Some(models::Integration::Custom(custom)) = integration.integration else {
        panic!("not custom");
    };
    let integration_id = custom.id.unwrap();
    let hook = operations::CreateWebhook::new(
        app,
        &integration_id,
        from(json!({ "target": "http://127.0.0.1:9/b", "triggers": ["conversation:message"] })),
    )
    .send(&c)
    .await
    .unwrap()
    .webhook
    .unwrap();
    let hook_id = hook.id.unwrap();
    assert!(hook.secret.is_some());
    let updated = operations::UpdateWebhook::new(
        app,
        &integration_id,
        &hook_id,
        from(json!({ "target": "http://127.0.0.1:9/c" })),
    )
    .send(&c)
    .await
    .unwrap();
    assert_eq!(updated.webhook.unwrap().target, "http://127.0.0.1:9/c");
    let got = operations::GetWebhook::new(app, &integration_id, &hook_id)
        .send(&c)
        .await
        .unwrap();
    assert_eq!(got.webhook.unwrap().target, "http://127.0.0.1:9/c");
    let listed = operations::ListWebhooks::new(app, &integration_id)
        .send(&c)
        .await
        .unwrap();
    assert_eq!(listed.webhooks.unwrap_or_default().len(), 2);
    operations::DeleteWebhook::new(app, &integration_id, &hook_id)
        .send(&c)
        .await
        .unwrap();
    let err = operations::GetWebhook::new(app, &integration_id, &hook_id)
        .send(&c)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");

    // Switchboard, its integrations, and control moving between them.
    let switchboards = operations::ListSwitchboards::new(app)
        .send(&c)
        .await
        .unwrap();
    let switchboard_id = match switchboards.switchboards.unwrap_or_default().pop() {
        Some(s) => s.id,
        None => {
            operations::CreateSwitchboard::new(app)
                .send(&c)
                .await
                .unwrap()
                .switchboard
                .unwrap()
                .id
        }
    };
    let sbi = operations::CreateSwitchboardIntegration::new(
        app,
        &switchboard_id,
        from(json!({ "name": "bot", "integrationId": integration_id, "deliverStandbyEvents": false })),
    )
    .send(&c)
    .await
    .unwrap()
    .switchboard_integration
    .unwrap();
    let sbi_id = sbi.id;
    operations::UpdateSwitchboardIntegration::new(
        app,
        &switchboard_id,
        &sbi_id,
        from(json!({ "deliverStandbyEvents": true })),
    )
    .send(&c)
    .await
    .unwrap();
    let sbis = operations::ListSwitchboardIntegrations::new(app, &switchboard_id)
        .send(&c)
        .await
        .unwrap();
    assert!(
        sbis.switchboard_integrations
            .unwrap_or_default()
            .iter()
            .any(|s| s.id == sbi_id)
    );

    // A second integration to hand control to, then the switchboard switched on (it starts
    // disabled) with "bot" as the default.
    let agent = operations::CreateIntegration::new(
        app,
        from(json!({ "type": "custom", "displayName": "agent", "webhooks": [{ "target": "http://127.0.0.1:9/d", "triggers": ["conversation:read"] }] })),
    )
    .send(&c)
    .await
    .unwrap();
    let Some(models::Integration::Custom(agent)) = agent.integration else {
        panic!("not custom");
    };
    operations::CreateSwitchboardIntegration::new(
        app,
        &switchboard_id,
        from(json!({ "name": "agent", "integrationId": agent.id.unwrap() })),
    )
    .send(&c)
    .await
    .unwrap();
    let enabled = operations::UpdateSwitchboard::new(
        app,
        &switchboard_id,
        from(json!({ "enabled": true, "defaultSwitchboardIntegrationId": sbi_id })),
    )
    .send(&c)
    .await
    .unwrap();
    assert!(enabled.switchboard.unwrap().enabled);

    let (_user, conv) = env.end_user().await;
    let active = |conv: &str| {
        let req = operations::GetConversation::new(app, conv);
        let c = c.clone();
        async move {
            let got = req.send(&c).await.unwrap().conversation.unwrap();
            serde_json::to_value(got).unwrap()["activeSwitchboardIntegration"]["name"].clone()
        }
    };
    assert_eq!(active(&conv).await, "bot");
    operations::PassControl::new(
        app,
        &conv,
        from(json!({ "switchboardIntegration": "agent" })),
    )
    .send(&c)
    .await
    .unwrap();
    assert_eq!(active(&conv).await, "agent");
    operations::ReleaseControl::new(app, &conv)
        .send(&c)
        .await
        .unwrap();
    // Released: nobody is in control until the user writes again.
    assert_eq!(active(&conv).await, serde_json::Value::Null);
    let err = operations::AcceptControl::new(app, &conv, from(json!({})))
        .send(&c)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Forbidden,
        "accept without an offer: {err:?}"
    );
    operations::OfferControl::new(
        app,
        &conv,
        from(json!({ "switchboardIntegration": "agent" })),
    )
    .send(&c)
    .await
    .unwrap();
    operations::AcceptControl::new(app, &conv, from(json!({})))
        .send(&c)
        .await
        .unwrap();
    assert_eq!(active(&conv).await, "agent");

    let err = operations::DeleteSwitchboardIntegration::new(app, &switchboard_id, &sbi_id)
        .send(&c)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::BadRequest,
        "the default one stays: {err:?}"
    );
    operations::DeleteSwitchboard::new(app, &switchboard_id)
        .send(&c)
        .await
        .unwrap();
    let left = operations::ListSwitchboards::new(app)
        .send(&c)
        .await
        .unwrap();
    assert!(left.switchboards.unwrap_or_default().is_empty());

    // Attachments: upload, then remove by media URL.
    let upload =
        zd_sunshine::Upload::from_bytes("pic.png", "image/png", &b"\x89PNG-data"[..]).unwrap();
    let uploaded = operations::UploadAttachment::new(app, "public", upload)
        .send(&c)
        .await
        .unwrap()
        .attachment
        .unwrap();
    let media_url = uploaded.media_url.unwrap();
    assert!(media_url.starts_with("http"), "{media_url}");
    operations::DeleteAttachment::new(app, from(json!({ "mediaUrl": media_url })))
        .send(&c)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_refused_before_sending() {
    let env = env().await;
    let c = env.basic();
    let (_user, conv) = env.end_user().await;
    // 4096 characters is the service's text limit; metadata makes the JSON body pass 100 KB.
    let mut post = models::MessagePost::business_text("big");
    post.metadata = zd_sunshine::Patch::Value(from(json!({ "blob": "x".repeat(110 * 1024) })));
    let err = operations::PostMessage::new(env.app(), &conv, post)
        .send(&c)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RequestTooLarge, "{err:?}");
    assert_eq!(err.status(), None, "never sent");
    let listed = operations::ListMessages::new(env.app(), &conv)
        .send(&c)
        .await
        .unwrap();
    assert!(listed.messages.unwrap_or_default().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_conversation_is_locked() {
    let emu = Emulator::builder()
        .sunshine(zd_emulator::sunshine::SunshineConfig::default().message_limit(3))
        .start()
        .await
        .unwrap();
    let acct = emu.account().sunshine;
    let env = Env { emu, acct };
    let c = env.basic();
    let (_user, conv) = env.end_user().await;
    for i in 0..3 {
        operations::PostMessage::new(
            env.app(),
            &conv,
            models::MessagePost::business_text(format!("{i}")),
        )
        .send(&c)
        .await
        .unwrap();
    }
    let err = operations::PostMessage::new(
        env.app(),
        &conv,
        models::MessagePost::business_text("one too many"),
    )
    .send(&c)
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConversationLocked, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(423));
}

/// The emulator's simulated referral and SDK login reach a [`WebhookService`] as the typed
/// `conversation:referral` and `user:merge` events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referral_and_merge_events_arrive_typed() {
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use zd_sunshine::webhooks::{Delivery, WebhookService};

    let env = env().await;
    let c = env.basic();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/hooks", listener.local_addr().unwrap());
    let created = operations::CreateIntegration::new(
        env.app(),
        from(json!({ "type": "custom", "displayName": "identity", "webhooks": [{ "target": target, "triggers": ["user:merge", "conversation:referral"] }] })),
    )
    .send(&c)
    .await
    .unwrap();
    let Some(models::Integration::Custom(custom)) = created.integration else {
        panic!("not a custom integration");
    };
    let secret = custom.webhooks[0].secret.clone().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Delivery>();
    let service = WebhookService::new(zd_auth::Secret::new(secret), move |d: Delivery| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(d);
        }
    })
    .unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });

    let known = env
        .control(
            &format!("apps/{}/end-users", env.app()),
            json!({ "externalId": "ada-1" }),
        )
        .await;
    let known_id = known["user"]["id"].as_str().unwrap().to_owned();
    let (anon_id, anon_conv) = env.end_user().await;
    env.control(
        &format!("apps/{}/conversations/{anon_conv}/referral", env.app()),
        json!({ "code": "SPRING" }),
    )
    .await;
    env.control(
        &format!("apps/{}/users/merge", env.app()),
        json!({ "surviving": "ada-1", "discarded": anon_id, "reason": "api" }),
    )
    .await;

    let mut next = async || {
        tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
            .await
            .expect("no webhook in time")
            .unwrap()
            .event
    };
    let models::WebhookEvent::ConversationReferral(referral) = next().await else {
        panic!("expected conversation:referral first");
    };
    let payload = referral.payload.unwrap();
    assert_eq!(payload.referral.unwrap().code.as_deref(), Some("SPRING"));
    assert_eq!(
        payload.conversation.unwrap().id.as_deref(),
        Some(anon_conv.as_str())
    );
    let models::WebhookEvent::UserMerge(merge) = next().await else {
        panic!("expected user:merge next");
    };
    let payload = merge.payload.unwrap();
    assert_eq!(
        payload.reason,
        Some(models::UserMergeEventPayloadReason::Api)
    );
    let users = payload.merged_users.unwrap();
    assert_eq!(
        users.surviving.unwrap().id.as_deref(),
        Some(known_id.as_str())
    );
    assert_eq!(
        users.discarded.unwrap().id.as_deref(),
        Some(anon_id.as_str())
    );
}

/// Every request carries the key secret or a bearer token, so a plain `http` base URL is
/// refused unless it names a loopback host; the emulator on loopback still works by any name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_refused_unless_the_host_is_loopback() {
    let env = env().await;
    for url in [
        "http://api.example.com",
        "http://10.0.0.5:8080/sc",
        "http://127.0.0.1.example.com",
        "http://localhost@example.com",
        "http://[::ffff:10.0.0.5]:8080",
    ] {
        let err =
            Client::new(Region::Custom(url.into()), BasicAuth::new(&env.app_key())).expect_err(url);
        assert_eq!(err.kind(), ErrorKind::Config, "{url}: {err:?}");
        assert!(err.to_string().contains("https"), "{url}: {err}");
    }
    assert_eq!(
        Region::Custom("https://api.example.com/".into())
            .base_url()
            .unwrap(),
        "https://api.example.com"
    );
    assert!(Region::Custom("http://[::1]:9".into()).base_url().is_ok());
    let port = env.emu.addr().port();
    for base in [
        format!("http://localhost:{port}"),
        format!("http://127.0.0.1:{port}/"),
    ] {
        let c = Client::new(Region::Custom(base.clone()), BasicAuth::new(&env.app_key())).unwrap();
        let app = operations::GetApp::new(env.app()).send(&c).await.unwrap();
        assert_eq!(app.app.unwrap().id.as_deref(), Some(env.app()), "{base}");
    }
}

/// The API lists one user's conversations: `ListConversations` needs exactly one of
/// `filter[userId]` and `filter[userExternalId]`. Without one (or with both) the request is
/// refused before it is sent, instead of being a 400 from the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_conversations_needs_exactly_one_user_filter() {
    let env = env().await;
    let c = env.basic();
    let (user_id, conversation_id) = env.end_user().await;
    for request in [
        operations::ListConversations::new(env.app()),
        operations::ListConversations::new(env.app())
            .filter_user_id(&user_id)
            .filter_user_external_id("ext-1"),
    ] {
        let err = request.send(&c).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Encode, "{err:?}");
        assert_eq!(err.status(), None, "never sent: {err:?}");
        assert_eq!(err.operation(), Some("ListConversations"));
        let err = request
            .paginate(&c)
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Encode, "{err:?}");
    }
    let page = operations::ListConversations::new(env.app())
        .filter_user_id(&user_id)
        .send(&c)
        .await
        .unwrap();
    let ids: Vec<_> = page
        .conversations
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.id)
        .collect();
    assert_eq!(ids, [conversation_id]);
}
