//! Walks all 68 operations of the official spec against the emulator, with valid and invalid
//! requests, and validates every response against its operation's response schema.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "helpers of tests")]

#[path = "sunshine/client.rs"]
mod client;
#[path = "sunshine/demo.rs"]
mod demo;
#[path = "sunshine/schema.rs"]
mod schema;

use std::collections::BTreeSet;

use bytes::Bytes;
use client::{Api, basic};
use demo::Demo;
use serde_json::{Value, json};
use zd_emulator::sunshine::{self as sun, SunshineConfig, SunshineServer};

struct Walk {
    api: Api,
    spec: schema::Spec,
    seen: BTreeSet<String>,
    checked: usize,
    /// Operations answered 404 with the code of their documented 404 example.
    documented_404s: BTreeSet<String>,
}

impl Walk {
    /// Calls `op`; a 404 must carry the code of the operation's documented 404 example.
    async fn go(
        &mut self,
        op: &str,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
        want: u16,
    ) -> Value {
        let (status, v) = self.api.call(method, path, auth, body).await;
        self.check(op, method, path, status, &v, want);
        v
    }

    /// Calls `op` for a 404 about another resource than the one its documented example is
    /// about (a participant's user, a switchboard integration, a message): `code` names it.
    async fn go_missing(
        &mut self,
        op: &str,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
        code: &str,
    ) {
        let (status, v) = self.api.call(method, path, auth, body).await;
        assert_eq!(status, 404, "{op} {method} {path}: {v}");
        assert_eq!(v["errors"][0]["code"], code, "{op} {method} {path}: {v}");
        self.check_status(op, method, path, status, &v, 404);
    }

    /// The code of `op`'s documented 404 example, if it has one.
    fn documented_404(&self, op: &str) -> Option<String> {
        let paths = self.spec.doc["paths"].as_object().unwrap();
        paths
            .values()
            .flat_map(|methods| methods.as_object().unwrap().values())
            .find(|o| o["operationId"] == op)
            .and_then(|o| {
                o["responses"]["404"]["content"]["application/json"]["examples"]["default"]["value"]
                    ["errors"][0]["code"]
                    .as_str()
                    .map(str::to_owned)
            })
    }

    fn check(&mut self, op: &str, method: &str, path: &str, status: u16, v: &Value, want: u16) {
        if status == 404
            && let Some(code) = self.documented_404(op)
        {
            assert_eq!(
                v["errors"][0]["code"], code,
                "{op} {method} {path}: the documented 404 code: {v}"
            );
            self.documented_404s.insert(op.to_owned());
        }
        self.check_status(op, method, path, status, v, want);
    }

    fn check_status(
        &mut self,
        op: &str,
        method: &str,
        path: &str,
        status: u16,
        v: &Value,
        want: u16,
    ) {
        assert_eq!(status, want, "{op} {method} {path}: {v}");
        self.seen.insert(op.to_owned());
        if let Some(schema) = self.spec.response_schema(op, status) {
            let errors = self.spec.errors(&schema, v, "$");
            assert!(
                errors.is_empty(),
                "{op} {status} does not match its schema: {errors:?}\n{v}"
            );
            self.checked += 1;
        }
        if status >= 400 {
            assert!(v["errors"][0]["code"].is_string(), "{op}: error body {v}");
        }
    }
}

#[tokio::test]
async fn every_operation_answers_per_the_spec() {
    let Some(spec) = schema::Spec::load() else {
        return;
    };
    let server = SunshineServer::start(SunshineConfig::default().message_limit(3))
        .await
        .unwrap();
    let mut w = Walk {
        api: Api::new(server.base_url()),
        spec,
        seen: BTreeSet::new(),
        checked: 0,
        documented_404s: BTreeSet::new(),
    };
    let acct = basic(sun::DEMO_ACCOUNT_KEY_ID, sun::DEMO_ACCOUNT_KEY_SECRET);
    let appk = basic(sun::DEMO_APP_KEY_ID, sun::DEMO_APP_KEY_SECRET);
    let a = Some(acct.as_str());
    let k = Some(appk.as_str());
    let bad = basic(sun::DEMO_APP_KEY_ID, "wrong");

    // Apps.
    w.go("ListApps", "GET", "/v2/apps", None, None, 401).await;
    w.go("ListApps", "GET", "/v2/apps", Some(&bad), None, 401)
        .await;
    w.go("ListApps", "GET", "/v2/apps", k, None, 403).await;
    w.go("ListApps", "GET", "/v2/apps?page[size]=0", a, None, 400)
        .await;
    w.go(
        "ListApps",
        "GET",
        "/v2/apps?page[after]=5e1f00000000000000000001&page[before]=5e1f00000000000000000001",
        a,
        None,
        400,
    )
    .await;
    w.go("CreateApp", "POST", "/v2/apps", a, Some(json!({})), 400)
        .await;
    let app = w
        .go(
            "CreateApp",
            "POST",
            "/v2/apps",
            a,
            Some(json!({"displayName":"Walk","metadata":{"x":1}})),
            201,
        )
        .await;
    let app_id = app["app"]["id"].as_str().unwrap().to_owned();
    let list = w
        .go("ListApps", "GET", "/v2/apps?page[size]=1", a, None, 200)
        .await;
    assert_eq!(list["meta"]["hasMore"], true);
    let after = list["meta"]["afterCursor"].as_str().unwrap().to_owned();
    w.go(
        "ListApps",
        "GET",
        &format!("/v2/apps?page[size]=1&page[after]={after}"),
        a,
        None,
        200,
    )
    .await;
    w.go("GetApp", "GET", &format!("/v2/apps/{app_id}"), a, None, 200)
        .await;
    w.go("GetApp", "GET", &format!("/v2/apps/{app_id}"), k, None, 403)
        .await;
    w.go(
        "GetApp",
        "GET",
        "/v2/apps/000000000000000000000000",
        a,
        None,
        404,
    )
    .await;
    w.go(
        "UpdateApp",
        "PATCH",
        &format!("/v2/apps/{app_id}"),
        a,
        Some(json!({"displayName":""})),
        400,
    )
    .await;
    w.go(
        "UpdateApp",
        "PATCH",
        &format!("/v2/apps/{app_id}"),
        a,
        Some(json!({"displayName":"Walked","settings":{"echoPostback":true}})),
        200,
    )
    .await;
    w.go(
        "UpdateApp",
        "PATCH",
        "/v2/apps/000000000000000000000000",
        a,
        Some(json!({})),
        404,
    )
    .await;
    let p = format!("/v2/apps/{app_id}");

    // App keys.
    let key = w
        .go(
            "CreateAppKey",
            "POST",
            &format!("{p}/keys"),
            a,
            Some(json!({"displayName":"k1"})),
            201,
        )
        .await;
    let key_id = key["key"]["id"].as_str().unwrap().to_owned();
    let key_auth = basic(&key_id, key["key"]["secret"].as_str().unwrap());
    let ka = Some(key_auth.as_str());
    w.go("ListAppKeys", "GET", &format!("{p}/keys"), ka, None, 403)
        .await;
    w.go("ListAppKeys", "GET", &format!("{p}/keys"), a, None, 200)
        .await;
    w.go(
        "GetAppKey",
        "GET",
        &format!("{p}/keys/{key_id}"),
        a,
        None,
        200,
    )
    .await;
    w.go(
        "GetAppKey",
        "GET",
        &format!("{p}/keys/app_nope"),
        a,
        None,
        404,
    )
    .await;

    // Users.
    let user = w
        .go(
            "CreateUser",
            "POST",
            &format!("{p}/users"),
            ka,
            Some(json!({"externalId":"walker","profile":{"givenName":"Wal"}})),
            201,
        )
        .await;
    let user_id = user["user"]["id"].as_str().unwrap().to_owned();
    w.go(
        "CreateUser",
        "POST",
        &format!("{p}/users"),
        ka,
        Some(json!({"externalId":"walker"})),
        409,
    )
    .await;
    w.go("ListUsers", "GET", &format!("{p}/users"), ka, None, 400)
        .await;
    let none = w
        .go(
            "ListUsers",
            "GET",
            &format!("{p}/users?filter[identities.email]=walker@example.org"),
            ka,
            None,
            200,
        )
        .await;
    assert_eq!(none["users"], json!([]), "no user has that email identity");
    w.go(
        "GetUser",
        "GET",
        &format!("{p}/users/walker"),
        ka,
        None,
        200,
    )
    .await;
    w.go(
        "GetUser",
        "GET",
        &format!("{p}/users/nobody"),
        ka,
        None,
        404,
    )
    .await;
    w.go(
        "UpdateUser",
        "PATCH",
        &format!("{p}/users/{user_id}"),
        ka,
        Some(json!({"profile":{"surname":"Ker"},"metadata":{"a":"b"}})),
        200,
    )
    .await;
    w.go(
        "UpdateUser",
        "PATCH",
        &format!("{p}/users/nobody"),
        ka,
        Some(json!({})),
        404,
    )
    .await;
    w.go(
        "ListDevices",
        "GET",
        &format!("{p}/users/{user_id}/devices"),
        ka,
        None,
        200,
    )
    .await;
    w.go(
        "GetDevice",
        "GET",
        &format!("{p}/users/{user_id}/devices/nope"),
        ka,
        None,
        404,
    )
    .await;
    w.go(
        "SyncUser",
        "POST",
        &format!("{p}/users/{user_id}/sync"),
        ka,
        Some(json!({})),
        200,
    )
    .await;

    // Conversations and participants.
    w.go(
        "CreateConversation",
        "POST",
        &format!("{p}/conversations"),
        ka,
        Some(json!({"type":"nope"})),
        400,
    )
    .await;
    w.go_missing(
        "CreateConversation",
        "POST",
        &format!("{p}/conversations"),
        ka,
        Some(json!({"type":"personal","participants":[{"userId":"nobody"}]})),
        "user_not_found",
    )
    .await;
    w.go(
        "CreateConversation",
        "POST",
        "/v2/apps/000000000000000000000000/conversations",
        a,
        Some(json!({"type":"sdkGroup"})),
        404,
    )
    .await;
    let conv = w
        .go(
            "CreateConversation",
            "POST",
            &format!("{p}/conversations"),
            ka,
            Some(
                json!({"type":"sdkGroup","displayName":"Room","participants":[{"userId":user_id,"subscribeSDKClient":false}]}),
            ),
            201,
        )
        .await;
    let cid = conv["conversation"]["id"].as_str().unwrap().to_owned();
    let c = format!("{p}/conversations/{cid}");
    w.go(
        "ListConversations",
        "GET",
        &format!("{p}/conversations"),
        ka,
        None,
        400,
    )
    .await;
    w.go(
        "ListConversations",
        "GET",
        &format!("{p}/conversations?filter[userExternalId]=nobody"),
        ka,
        None,
        404,
    )
    .await;
    w.go(
        "ListConversations",
        "GET",
        &format!("{p}/conversations?filter[userId]={user_id}"),
        ka,
        None,
        200,
    )
    .await;
    w.go("GetConversation", "GET", &c, ka, None, 200).await;
    w.go(
        "GetConversation",
        "GET",
        &format!("{p}/conversations/000000000000000000000000"),
        ka,
        None,
        404,
    )
    .await;
    w.go(
        "UpdateConversation",
        "PATCH",
        &c,
        ka,
        Some(json!({"displayName":"Room 2","metadata":{"k":"v"}})),
        200,
    )
    .await;
    w.go(
        "UpdateConversation",
        "PATCH",
        &format!("{p}/conversations/000000000000000000000000"),
        ka,
        Some(json!({})),
        404,
    )
    .await;
    let other = w
        .go(
            "CreateUser",
            "POST",
            &format!("{p}/users"),
            ka,
            Some(json!({})),
            201,
        )
        .await;
    let other_id = other["user"]["id"].as_str().unwrap().to_owned();
    w.go(
        "JoinConversation",
        "POST",
        &format!("{c}/join"),
        ka,
        Some(json!({"userId":other_id,"subscribeSDKClient":false})),
        201,
    )
    .await;
    w.go(
        "JoinConversation",
        "POST",
        &format!("{c}/join"),
        ka,
        Some(json!({"userId":other_id,"subscribeSDKClient":false})),
        400,
    )
    .await;
    w.go_missing(
        "JoinConversation",
        "POST",
        &format!("{c}/join"),
        ka,
        Some(json!({"userId":"nobody","subscribeSDKClient":false})),
        "user_not_found",
    )
    .await;
    w.go(
        "JoinConversation",
        "POST",
        &format!("{p}/conversations/000000000000000000000000/join"),
        ka,
        Some(json!({"userId":other_id,"subscribeSDKClient":false})),
        404,
    )
    .await;
    w.go(
        "ListParticipants",
        "GET",
        &format!("{c}/participants?page[size]=1"),
        ka,
        None,
        200,
    )
    .await;
    w.go(
        "ListParticipants",
        "GET",
        &format!("{c}/participants?page[size]=101"),
        ka,
        None,
        400,
    )
    .await;
    w.go(
        "ListParticipants",
        "GET",
        &format!("{p}/conversations/000000000000000000000000/participants"),
        ka,
        None,
        404,
    )
    .await;
    w.go(
        "LeaveConversation",
        "POST",
        &format!("{c}/leave"),
        ka,
        Some(json!({"userId":other_id})),
        200,
    )
    .await;
    w.go(
        "LeaveConversation",
        "POST",
        &format!("{c}/leave"),
        ka,
        Some(json!({"userId":other_id})),
        404,
    )
    .await;

    // Messages (limit 3 in this walk, to reach 423).
    w.go(
        "PostMessage",
        "POST",
        &format!("{c}/messages"),
        ka,
        Some(json!({"author":{"type":"business"},"content":{"type":"bogus"}})),
        400,
    )
    .await;
    w.go(
        "PostMessage",
        "POST",
        &format!("{c}/messages"),
        ka,
        Some(json!({"content":{"type":"text","text":"x"}})),
        400,
    )
    .await;
    let m = w.go("PostMessage", "POST", &format!("{c}/messages"), ka, Some(json!({"author":{"type":"business","displayName":"Bot"},"content":{"type":"text","text":"hello","actions":[{"type":"postback","text":"Yes","payload":"YES"}]}})), 201).await;
    let mid = m["messages"][0]["id"].as_str().unwrap().to_owned();
    w.go("PostMessage", "POST", &format!("{c}/messages"), ka, Some(json!({"author":{"type":"user","userId":user_id},"content":{"type":"image","mediaUrl":"https://example.com/a.png"}})), 201).await;
    w.go("PostMessage", "POST", &format!("{c}/messages"), ka, Some(json!({"author":{"type":"business"},"content":{"type":"carousel","items":[{"title":"A","actions":[{"type":"link","text":"Go","uri":"https://example.com"}]}]}})), 201).await;
    w.go(
        "PostMessage",
        "POST",
        &format!("{c}/messages"),
        ka,
        Some(json!({"author":{"type":"business"},"content":{"type":"text","text":"full"}})),
        423,
    )
    .await;
    let big = "x".repeat(101 * 1024);
    let (st, v) = w
        .api
        .call(
            "POST",
            &format!("{c}/messages"),
            ka,
            Some(json!({"author":{"type":"business"},"content":{"type":"text","text":big}})),
        )
        .await;
    w.check("PostMessage", "POST", &c, st, &v, 413);
    let page = w
        .go(
            "ListMessages",
            "GET",
            &format!("{c}/messages?page[size]=2"),
            ka,
            None,
            200,
        )
        .await;
    // `page[size]` does not apply to ListMessages (its pages hold 100): all three come back.
    assert_eq!(page["messages"].as_array().unwrap().len(), 3);
    assert_eq!(page["meta"]["hasMore"], false);
    assert!(page["meta"]["beforeCursor"].is_null());
    w.go(
        "ListMessages",
        "GET",
        &format!("{p}/conversations/000000000000000000000000/messages"),
        ka,
        None,
        404,
    )
    .await;
    w.go(
        "DeleteMessage",
        "DELETE",
        &format!("{c}/messages/{mid}"),
        ka,
        None,
        200,
    )
    .await;
    w.go_missing(
        "DeleteMessage",
        "DELETE",
        &format!("{c}/messages/{mid}"),
        ka,
        None,
        "not_found",
    )
    .await;
    w.go(
        "DeleteMessage",
        "DELETE",
        &format!("{p}/conversations/000000000000000000000000/messages/{mid}"),
        ka,
        None,
        404,
    )
    .await;
    w.go(
        "PostActivity",
        "POST",
        &format!("{c}/activity"),
        ka,
        Some(json!({"author":{"type":"user","userId":user_id},"type":"conversation:read"})),
        200,
    )
    .await;
    w.go(
        "PostActivity",
        "POST",
        &format!("{c}/activity"),
        ka,
        Some(json!({"author":{"type":"business"},"type":"typing:sideways"})),
        400,
    )
    .await;
    // The spec: "If the author type is `user`, only `conversation:read` is supported."
    w.go(
        "PostActivity",
        "POST",
        &format!("{c}/activity"),
        ka,
        Some(json!({"author":{"type":"user","userId":user_id},"type":"typing:start"})),
        400,
    )
    .await;
    w.go(
        "DeleteAllMessages",
        "DELETE",
        &format!("{c}/messages"),
        ka,
        None,
        200,
    )
    .await;
    w.go(
        "DeleteAllMessages",
        "DELETE",
        &format!("{p}/conversations/000000000000000000000000/messages"),
        ka,
        None,
        404,
    )
    .await;
    w.go("DownloadMessageRef", "POST", &format!("{c}/download"), ka, Some(json!({"userId":user_id,"apple":{"interactiveDataRef":{"url":"u","bid":"b","key":"k","signature":"s","owner":"o"}}})), 200).await;
    w.go(
        "DownloadMessageRef",
        "POST",
        &format!("{c}/download"),
        ka,
        Some(json!({})),
        400,
    )
    .await;
    w.go(
        "PostConversionEvents",
        "POST",
        &format!("{c}/conversionEvents"),
        ka,
        Some(json!({"messenger":{"payload":{"data":[{"event_name":"Purchase"}]}}})),
        200,
    )
    .await;
    w.go(
        "PostConversionEvents",
        "POST",
        &format!("{c}/conversionEvents"),
        ka,
        Some(json!({})),
        400,
    )
    .await;

    // Integrations, keys, webhooks.
    w.go(
        "CreateIntegration",
        "POST",
        &format!("{p}/integrations"),
        ka,
        Some(json!({"type":"carrier-pigeon"})),
        400,
    )
    .await;
    let integ = w.go("CreateIntegration", "POST", &format!("{p}/integrations"), ka, Some(json!({"type":"custom","displayName":"Bot","webhooks":[{"target":"http://127.0.0.1:9/hook","triggers":["conversation:message"]}]})), 201).await;
    let iid = integ["integration"]["id"].as_str().unwrap().to_owned();
    let web = w
        .go(
            "CreateIntegration",
            "POST",
            &format!("{p}/integrations"),
            ka,
            Some(json!({"type":"web","displayName":"Widget"})),
            201,
        )
        .await;
    let web_id = web["integration"]["id"].as_str().unwrap().to_owned();
    let i = format!("{p}/integrations/{iid}");
    w.go(
        "ListIntegrations",
        "GET",
        &format!("{p}/integrations?filter[types]=custom"),
        ka,
        None,
        200,
    )
    .await;
    w.go(
        "ListIntegrations",
        "GET",
        &format!("{p}/integrations?filter[types]=nope"),
        ka,
        None,
        400,
    )
    .await;
    w.go("GetIntegration", "GET", &i, ka, None, 200).await;
    w.go(
        "GetIntegration",
        "GET",
        &format!("{p}/integrations/nope"),
        ka,
        None,
        404,
    )
    .await;
    w.go(
        "UpdateIntegration",
        "PATCH",
        &i,
        ka,
        Some(json!({"displayName":"Bot 2"})),
        200,
    )
    .await;
    w.go(
        "UpdateIntegration",
        "PATCH",
        &format!("{p}/integrations/nope"),
        ka,
        Some(json!({})),
        404,
    )
    .await;
    let ik = w
        .go(
            "CreateCustomIntegrationKey",
            "POST",
            &format!("{i}/keys"),
            ka,
            Some(json!({"displayName":"ik"})),
            201,
        )
        .await;
    let ikid = ik["key"]["id"].as_str().unwrap().to_owned();
    w.go(
        "ListCustomIntegrationKeys",
        "GET",
        &format!("{i}/keys"),
        ka,
        None,
        200,
    )
    .await;
    w.go(
        "GetCustomIntegrationKey",
        "GET",
        &format!("{i}/keys/{ikid}"),
        ka,
        None,
        200,
    )
    .await;
    let hooks = w
        .go(
            "ListWebhooks",
            "GET",
            &format!("{i}/webhooks"),
            ka,
            None,
            200,
        )
        .await;
    assert_eq!(hooks["webhooks"].as_array().unwrap().len(), 1);
    // The spec gives webhooks to app and integration credentials only.
    w.go(
        "ListWebhooks",
        "GET",
        &format!("{i}/webhooks"),
        a,
        None,
        403,
    )
    .await;
    // Only an integration's own credentials may call it `me`.
    w.go(
        "ListWebhooks",
        "GET",
        &format!("{p}/integrations/me/webhooks"),
        ka,
        None,
        404,
    )
    .await;
    w.go(
        "ListWebhooks",
        "GET",
        &format!("{p}/integrations/{web_id}/webhooks"),
        ka,
        None,
        403,
    )
    .await;
    w.go(
        "CreateWebhook",
        "POST",
        &format!("{i}/webhooks"),
        ka,
        Some(json!({"target":"ftp://x"})),
        400,
    )
    .await;
    w.go(
        "CreateWebhook",
        "POST",
        &format!("{p}/integrations/nope/webhooks"),
        ka,
        Some(json!({"target":"http://x","triggers":["*"]})),
        404,
    )
    .await;
    w.go(
        "CreateWebhook",
        "POST",
        &format!("{p}/integrations/{web_id}/webhooks"),
        ka,
        Some(json!({"target":"http://x","triggers":["*"]})),
        403,
    )
    .await;
    let hook = w
        .go(
            "CreateWebhook",
            "POST",
            &format!("{i}/webhooks"),
            ka,
            Some(json!({"target":"http://127.0.0.1:9/other","triggers":["conversation:read"]})),
            201,
        )
        .await;
    let hid = hook["webhook"]["id"].as_str().unwrap().to_owned();
    w.go(
        "GetWebhook",
        "GET",
        &format!("{i}/webhooks/{hid}"),
        ka,
        None,
        200,
    )
    .await;
    w.go(
        "GetWebhook",
        "GET",
        &format!("{i}/webhooks/nope"),
        ka,
        None,
        404,
    )
    .await;
    w.go(
        "UpdateWebhook",
        "PATCH",
        &format!("{i}/webhooks/{hid}"),
        ka,
        Some(json!({"triggers":"no"})),
        400,
    )
    .await;
    w.go(
        "UpdateWebhook",
        "PATCH",
        &format!("{i}/webhooks/{hid}"),
        ka,
        Some(json!({"triggers":["conversation:typing"]})),
        200,
    )
    .await;
    w.go(
        "UpdateWebhook",
        "PATCH",
        &format!("{i}/webhooks/nope"),
        ka,
        Some(json!({})),
        404,
    )
    .await;
    w.go(
        "DeleteWebhook",
        "DELETE",
        &format!("{i}/webhooks/{hid}"),
        ka,
        None,
        200,
    )
    .await;
    w.go(
        "DeleteWebhook",
        "DELETE",
        &format!("{i}/webhooks/{hid}"),
        ka,
        None,
        404,
    )
    .await;

    // Switchboards and control.
    w.go_missing(
        "PassControl",
        "POST",
        &format!("{c}/passControl"),
        ka,
        Some(json!({"switchboardIntegration":"next"})),
        "switchboard_not_found",
    )
    .await;
    let sb = w
        .go(
            "CreateSwitchboard",
            "POST",
            &format!("{p}/switchboards"),
            ka,
            None,
            201,
        )
        .await;
    let sbid = sb["switchboard"]["id"].as_str().unwrap().to_owned();
    w.go(
        "CreateSwitchboard",
        "POST",
        &format!("{p}/switchboards"),
        ka,
        None,
        400,
    )
    .await;
    w.go(
        "CreateSwitchboard",
        "POST",
        "/v2/apps/000000000000000000000000/switchboards",
        a,
        None,
        404,
    )
    .await;
    let s = format!("{p}/switchboards/{sbid}");
    w.go(
        "CreateSwitchboardIntegration",
        "POST",
        &format!("{s}/switchboardIntegrations"),
        ka,
        Some(json!({"integrationId":iid})),
        400,
    )
    .await;
    w.go(
        "CreateSwitchboardIntegration",
        "POST",
        &format!("{p}/switchboards/nope/switchboardIntegrations"),
        ka,
        Some(json!({"name":"x","integrationType":"zd:agentWorkspace"})),
        404,
    )
    .await;
    let bot = w
        .go(
            "CreateSwitchboardIntegration",
            "POST",
            &format!("{s}/switchboardIntegrations"),
            ka,
            Some(json!({"name":"bot","integrationId":iid,"deliverStandbyEvents":false})),
            201,
        )
        .await;
    let bot_id = bot["switchboardIntegration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent = w
        .go(
            "CreateSwitchboardIntegration",
            "POST",
            &format!("{s}/switchboardIntegrations"),
            ka,
            Some(json!({"name":"agent","integrationType":"zd:agentWorkspace"})),
            201,
        )
        .await;
    let agent_id = agent["switchboardIntegration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.go(
        "ListSwitchboardIntegrations",
        "GET",
        &format!("{s}/switchboardIntegrations"),
        ka,
        None,
        200,
    )
    .await;
    w.go(
        "ListSwitchboardIntegrations",
        "GET",
        &format!("{p}/switchboards/nope/switchboardIntegrations"),
        ka,
        None,
        404,
    )
    .await;
    w.go(
        "UpdateSwitchboardIntegration",
        "PATCH",
        &format!("{s}/switchboardIntegrations/{bot_id}"),
        ka,
        Some(json!({"nextSwitchboardIntegrationId":agent_id})),
        200,
    )
    .await;
    w.go(
        "UpdateSwitchboardIntegration",
        "PATCH",
        &format!("{s}/switchboardIntegrations/nope"),
        ka,
        Some(json!({})),
        404,
    )
    .await;
    w.go(
        "UpdateSwitchboard",
        "PATCH",
        &s,
        ka,
        Some(json!({"enabled":true,"defaultSwitchboardIntegrationId":bot_id})),
        200,
    )
    .await;
    w.go(
        "UpdateSwitchboard",
        "PATCH",
        &format!("{p}/switchboards/nope"),
        ka,
        Some(json!({})),
        404,
    )
    .await;
    w.go(
        "ListSwitchboards",
        "GET",
        &format!("{p}/switchboards"),
        ka,
        None,
        200,
    )
    .await;
    w.go(
        "ListSwitchboards",
        "GET",
        "/v2/apps/000000000000000000000000/switchboards",
        a,
        None,
        404,
    )
    .await;
    w.go(
        "AcceptControl",
        "POST",
        &format!("{c}/acceptControl"),
        ka,
        Some(json!({})),
        403,
    )
    .await;
    w.go(
        "ReleaseControl",
        "POST",
        &format!("{c}/releaseControl"),
        ka,
        Some(json!({})),
        403,
    )
    .await;
    w.go(
        "PassControl",
        "POST",
        &format!("{c}/passControl"),
        ka,
        Some(json!({"switchboardIntegration":"bot"})),
        200,
    )
    .await;
    w.go(
        "OfferControl",
        "POST",
        &format!("{c}/offerControl"),
        ka,
        Some(json!({"switchboardIntegration":"agent","metadata":{"why":"human"}})),
        200,
    )
    .await;
    w.go_missing(
        "OfferControl",
        "POST",
        &format!("{c}/offerControl"),
        ka,
        Some(json!({"switchboardIntegration":"nobody"})),
        "switchboard_integration_not_found",
    )
    .await;
    w.go(
        "AcceptControl",
        "POST",
        &format!("{c}/acceptControl"),
        ka,
        Some(json!({})),
        200,
    )
    .await;
    let got = w.go("GetConversation", "GET", &c, ka, None, 200).await;
    assert_eq!(
        got["conversation"]["activeSwitchboardIntegration"]["id"],
        agent_id.as_str()
    );
    w.go(
        "ReleaseControl",
        "POST",
        &format!("{c}/releaseControl"),
        ka,
        Some(json!({})),
        200,
    )
    .await;
    for (op, action) in [
        ("PassControl", "passControl"),
        ("OfferControl", "offerControl"),
        ("AcceptControl", "acceptControl"),
        ("ReleaseControl", "releaseControl"),
    ] {
        w.go(
            op,
            "POST",
            &format!("{p}/conversations/nope/{action}"),
            ka,
            Some(json!({"switchboardIntegration":"bot"})),
            404,
        )
        .await;
    }
    w.go(
        "DeleteSwitchboardIntegration",
        "DELETE",
        &format!("{s}/switchboardIntegrations/{bot_id}"),
        ka,
        None,
        400,
    )
    .await;
    // The bot's nextSwitchboardIntegrationId still names the agent.
    w.go(
        "DeleteSwitchboardIntegration",
        "DELETE",
        &format!("{s}/switchboardIntegrations/{agent_id}"),
        ka,
        None,
        400,
    )
    .await;
    w.go(
        "UpdateSwitchboardIntegration",
        "PATCH",
        &format!("{s}/switchboardIntegrations/{bot_id}"),
        ka,
        Some(json!({"nextSwitchboardIntegrationId":null})),
        200,
    )
    .await;
    w.go(
        "DeleteSwitchboardIntegration",
        "DELETE",
        &format!("{s}/switchboardIntegrations/{agent_id}"),
        ka,
        None,
        200,
    )
    .await;
    w.go(
        "DeleteSwitchboardIntegration",
        "DELETE",
        &format!("{s}/switchboardIntegrations/{agent_id}"),
        ka,
        None,
        404,
    )
    .await;
    w.go("DeleteIntegration", "DELETE", &i, ka, None, 400).await;
    w.go("DeleteSwitchboard", "DELETE", &s, ka, None, 200).await;
    w.go("DeleteSwitchboard", "DELETE", &s, ka, None, 404).await;

    // Clients.
    let tw = w
        .go(
            "CreateIntegration",
            "POST",
            &format!("{p}/integrations"),
            ka,
            Some(json!({"type":"twilio","accountSid":"AC1","phoneNumberSid":"PN1"})),
            201,
        )
        .await;
    let twid = tw["integration"]["id"].as_str().unwrap().to_owned();
    w.go("CreateClient", "POST", &format!("{p}/users/{user_id}/clients"), ka, Some(json!({"matchCriteria":{"type":"twilio","integrationId":twid,"phoneNumber":"+15145555555"},"confirmation":{"type":"nope"},"target":{"conversationId":cid}})), 400).await;
    let cl = w.go("CreateClient", "POST", &format!("{p}/users/{user_id}/clients"), ka, Some(json!({"matchCriteria":{"type":"twilio","integrationId":twid,"phoneNumber":"+15145555555"},"confirmation":{"type":"immediate"},"target":{"conversationId":cid}})), 201).await;
    let clid = cl["client"]["id"].as_str().unwrap().to_owned();
    w.go(
        "ListClients",
        "GET",
        &format!("{p}/users/{user_id}/clients"),
        ka,
        None,
        200,
    )
    .await;
    w.go(
        "ListClients",
        "GET",
        &format!("{p}/users/{user_id}/clients?page[size]=abc"),
        ka,
        None,
        400,
    )
    .await;
    w.go(
        "RemoveClient",
        "DELETE",
        &format!("{p}/users/{user_id}/clients/{clid}"),
        ka,
        None,
        200,
    )
    .await;
    w.go(
        "RemoveClient",
        "DELETE",
        &format!("{p}/users/{user_id}/clients/{clid}"),
        ka,
        None,
        404,
    )
    .await;
    // A web user's SDK client cannot be removed through the API, and stays.
    let (st, web) = w
        .api
        .call(
            "POST",
            &format!("/_emulator/sunshine/apps/{app_id}/end-users"),
            None,
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 201, "{web}");
    let web_user = web["user"]["id"].as_str().unwrap().to_owned();
    let clients = format!("{p}/users/{web_user}/clients");
    let listed = w.go("ListClients", "GET", &clients, ka, None, 200).await;
    let sdk = &listed["clients"][0];
    assert_eq!(sdk["type"], "sdk");
    let refused = w
        .go(
            "RemoveClient",
            "DELETE",
            &format!("{clients}/{}", sdk["id"].as_str().unwrap()),
            ka,
            None,
            400,
        )
        .await;
    assert_eq!(
        refused["errors"][0]["title"],
        "Cannot remove a client of type 'sdk'"
    );
    let listed = w.go("ListClients", "GET", &clients, ka, None, 200).await;
    assert_eq!(listed["clients"].as_array().unwrap().len(), 1);

    // Attachments.
    let mp = Bytes::from_static(b"--B\r\nContent-Disposition: form-data; name=\"source\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--B--\r\n");
    let (st, v) = w
        .api
        .raw(
            "POST",
            &format!("{p}/attachments?access=public"),
            ka,
            "multipart/form-data; boundary=B",
            mp.clone(),
        )
        .await;
    w.check("UploadAttachment", "POST", &p, st, &v, 201);
    let url = v["attachment"]["mediaUrl"].as_str().unwrap().to_owned();
    let (st, v) = w
        .api
        .raw(
            "POST",
            &format!("{p}/attachments"),
            ka,
            "multipart/form-data; boundary=B",
            mp,
        )
        .await;
    w.check("UploadAttachment", "POST", &p, st, &v, 400);
    let media_path = url.trim_start_matches(&w.api.base).to_owned();
    let (st, body) = w.api.call("GET", &media_path, None, None).await;
    assert_eq!((st, body), (200, Value::String("hello".into())));
    w.go(
        "DeleteAttachment",
        "POST",
        &format!("{p}/attachments/remove"),
        ka,
        Some(json!({"mediaUrl":url})),
        200,
    )
    .await;
    w.go(
        "DeleteAttachment",
        "POST",
        &format!("{p}/attachments/remove"),
        ka,
        Some(json!({"mediaUrl":url})),
        404,
    )
    .await;
    w.go(
        "DeleteAttachment",
        "POST",
        &format!("{p}/attachments/remove"),
        ka,
        Some(json!({})),
        400,
    )
    .await;

    // OAuth bridge.
    let (st, v) = w.api.call("GET", "/oauth/authorize?client_id=zd-emulator-bridge&response_type=code&redirect_uri=http://localhost/cb&state=s1", None, None).await;
    w.check("Authorize", "GET", "/oauth/authorize", st, &json!(v), 302);
    let code = {
        // The code is in the Location header; ask again and read it from the body text.
        let text = v.as_str().unwrap().to_owned();
        text.split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned()
    };
    w.go("GetToken", "POST", "/oauth/token", None, Some(json!({"code":"bad","grant_type":"authorization_code","client_id":sun::BRIDGE_CLIENT_ID,"client_secret":sun::BRIDGE_CLIENT_SECRET})), 400).await;
    let tok = w.go("GetToken", "POST", "/oauth/token", None, Some(json!({"code":code,"grant_type":"authorization_code","client_id":sun::BRIDGE_CLIENT_ID,"client_secret":sun::BRIDGE_CLIENT_SECRET})), 200).await;
    let bearer = format!("Bearer {}", tok["access_token"].as_str().unwrap());
    let info = w
        .go(
            "GetTokenInfo",
            "GET",
            "/v2/tokenInfo",
            Some(&bearer),
            None,
            200,
        )
        .await;
    assert_eq!(info["app"]["id"], sun::DEMO_APP_ID);
    w.go(
        "GetTokenInfo",
        "GET",
        "/v2/tokenInfo",
        Some("Bearer nope"),
        None,
        401,
    )
    .await;
    // The token's integration keeps its webhooks under `integrations/me`, its only name for it.
    let demo = format!("/v2/apps/{}", sun::DEMO_APP_ID);
    let me = format!("{demo}/integrations/me/webhooks");
    let hook = json!({"target":"http://127.0.0.1:9/connect","triggers":["conversation:message"]});
    let made = w
        .go("CreateWebhook", "POST", &me, Some(&bearer), Some(hook), 201)
        .await;
    let listed = w
        .go("ListWebhooks", "GET", &me, Some(&bearer), None, 200)
        .await;
    assert_eq!(listed["webhooks"][0]["id"], made["webhook"]["id"]);
    // Account keys have no scope on webhooks (the spec gives them to app and integration).
    w.go("ListWebhooks", "GET", &me, a, None, 403).await;
    let connect = w
        .go(
            "ListIntegrations",
            "GET",
            &format!("{demo}/integrations?page[size]=100"),
            a,
            None,
            200,
        )
        .await["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["webhooks"][0]["id"] == made["webhook"]["id"])
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .expect("the token's integration is listed with its webhook");
    w.go(
        "RevokeAccess",
        "DELETE",
        "/oauth/authorization",
        Some(&bearer),
        None,
        200,
    )
    .await;
    // Revoking removes the integration and its webhooks.
    w.go(
        "GetIntegration",
        "GET",
        &format!("{demo}/integrations/{connect}"),
        a,
        None,
        404,
    )
    .await;
    w.go(
        "RevokeAccess",
        "DELETE",
        "/oauth/authorization",
        Some(&bearer),
        None,
        401,
    )
    .await;

    // Deletions.
    w.go(
        "DeleteCustomIntegrationKey",
        "DELETE",
        &format!("{i}/keys/{ikid}"),
        ka,
        None,
        200,
    )
    .await;
    w.go("DeleteIntegration", "DELETE", &i, ka, None, 200).await;
    w.go("DeleteIntegration", "DELETE", &i, ka, None, 404).await;
    w.go("DeleteConversation", "DELETE", &c, ka, None, 200)
        .await;
    w.go("DeleteConversation", "DELETE", &c, ka, None, 404)
        .await;
    w.go(
        "DeleteUserPersonalInformation",
        "DELETE",
        &format!("{p}/users/{user_id}/personalinformation"),
        ka,
        None,
        200,
    )
    .await;
    w.go(
        "DeleteUserPersonalInformation",
        "DELETE",
        &format!("{p}/users/nobody/personalinformation"),
        ka,
        None,
        404,
    )
    .await;
    w.go(
        "DeleteUser",
        "DELETE",
        &format!("{p}/users/{user_id}"),
        ka,
        None,
        200,
    )
    .await;
    w.go(
        "DeleteUser",
        "DELETE",
        &format!("{p}/users/{user_id}"),
        ka,
        None,
        404,
    )
    .await;
    w.go(
        "DeleteAppKey",
        "DELETE",
        &format!("{p}/keys/{key_id}"),
        a,
        None,
        200,
    )
    .await;
    // A missing key is GetAppKey's plain 404; the documented one is for a missing app.
    w.go_missing(
        "DeleteAppKey",
        "DELETE",
        &format!("{p}/keys/{key_id}"),
        a,
        None,
        "not_found",
    )
    .await;
    w.go(
        "DeleteAppKey",
        "DELETE",
        &format!("/v2/apps/000000000000000000000000/keys/{key_id}"),
        a,
        None,
        404,
    )
    .await;
    w.go("GetApp", "GET", &p, ka, None, 401).await;
    w.go("DeleteApp", "DELETE", &p, a, None, 200).await;
    w.go("DeleteApp", "DELETE", &p, a, None, 404).await;

    let all: BTreeSet<String> = w.spec.operation_ids().into_iter().collect();
    let missing: Vec<_> = all.difference(&w.seen).collect();
    assert_eq!(all.len(), 68);
    assert!(missing.is_empty(), "operations not walked: {missing:?}");
    let with_404: BTreeSet<String> = all
        .iter()
        .filter(|op| w.documented_404(op).is_some())
        .cloned()
        .collect();
    let untried: Vec<_> = with_404.difference(&w.documented_404s).collect();
    assert!(
        untried.is_empty(),
        "operations never answered their documented 404: {untried:?}"
    );
    println!(
        "walked {} operations, {} responses validated",
        w.seen.len(),
        w.checked
    );
}

#[test]
fn the_validator_rejects_what_the_spec_forbids() {
    let Some(spec) = schema::Spec::load() else {
        return;
    };
    let user = spec.response_schema("GetUser", 200).unwrap();
    assert!(
        spec.errors(&user, &json!({"user":{"id":"u","metadata":{}}}), "$")
            .is_empty()
    );
    assert!(
        !spec
            .errors(&user, &json!({"user":{"id":5}}), "$")
            .is_empty()
    );
    assert!(
        !spec
            .errors(&user, &json!({"user":{"metadata":null}}), "$")
            .is_empty()
    );
    let msgs = spec.response_schema("PostMessage", 201).unwrap();
    let text = json!({"messages":[{"id":"m","author":{"type":"business"},"content":{"type":"text","text":"hi"}}]});
    assert!(spec.errors(&msgs, &text, "$").is_empty());
    let no_author_type = json!({"messages":[{"author":{},"content":{"type":"text"}}]});
    assert!(!spec.errors(&msgs, &no_author_type, "$").is_empty());
    let image_without_url =
        json!({"messages":[{"author":{"type":"user"},"content":{"type":"image"}}]});
    assert!(!spec.errors(&msgs, &image_without_url, "$").is_empty());
    let bad_enum = json!({"messages":[{"author":{"type":"robot"},"content":{"type":"text"}}]});
    assert!(!spec.errors(&msgs, &bad_enum, "$").is_empty());
    let sb = spec.response_schema("CreateSwitchboard", 201).unwrap();
    assert!(
        !spec
            .errors(&sb, &json!({"switchboard":{"id":"s"}}), "$")
            .is_empty(),
        "enabled is required"
    );
}

#[test]
fn the_validator_checks_string_formats() {
    for good in [
        "2026-11-21T20:51:57Z",
        "2026-11-21T20:51:57.123Z",
        "2026-11-21T20:51:57+01:00",
    ] {
        assert!(schema::format_ok("date-time", good), "{good}");
    }
    for bad in [
        "2026-11-21",
        "2026-13-21T20:51:57Z",
        "2026-11-21 20:51:57Z",
        "2026-11-21T20:51:57",
        "yesterday",
    ] {
        assert!(!schema::format_ok("date-time", bad), "{bad}");
    }
    assert!(schema::format_ok("uri", "https://example.com/a.png"));
    assert!(schema::format_ok("uri", "mailto:ada@example.com"));
    for bad in [
        "/relative/path",
        "not a uri",
        "https://exa mple.com",
        "://x",
        "",
    ] {
        assert!(!schema::format_ok("uri", bad), "{bad}");
    }
    assert!(schema::format_ok("email", "ada@example.com"));
    assert!(!schema::format_ok("email", "ada"));
    let Some(spec) = schema::Spec::load() else {
        return;
    };
    let s = json!({"type":"object","properties":{
        "at":{"type":"string","format":"date-time"},
        "url":{"type":"string","format":"uri","nullable":true}}});
    assert!(
        spec.errors(
            &s,
            &json!({"at":"2026-11-21T20:51:57.000Z","url":null}),
            "$"
        )
        .is_empty()
    );
    assert_eq!(
        spec.errors(&s, &json!({"at":"noon","url":"a b"}), "$")
            .len(),
        2
    );
}

/// Requests generated from the spec for every operation: without credentials (401), with a key
/// whose scope the operation does not list (403), with a malformed JSON body (400), and with an
/// empty body where the request schema has required fields (400). Every answer must validate.
#[tokio::test]
async fn generated_invalid_requests_are_refused_per_the_spec() {
    let Some(spec) = schema::Spec::load() else {
        return;
    };
    let server = SunshineServer::start(SunshineConfig::default())
        .await
        .unwrap();
    let api = Api::new(server.base_url());
    let acct = basic(sun::DEMO_ACCOUNT_KEY_ID, sun::DEMO_ACCOUNT_KEY_SECRET);
    let appk = basic(sun::DEMO_APP_KEY_ID, sun::DEMO_APP_KEY_SECRET);
    let p = format!("/v2/apps/{}", sun::DEMO_APP_ID);
    let id = |v: &Value, a: &str, b: &str| v[a][b].as_str().unwrap().to_owned();

    // Real resources for every path parameter.
    let (_, u) = api
        .call(
            "POST",
            &format!("{p}/users"),
            Some(&acct),
            Some(json!({"externalId":"gen"})),
        )
        .await;
    let user = id(&u, "user", "id");
    let (_, c) = api
        .call(
            "POST",
            &format!("{p}/conversations"),
            Some(&acct),
            Some(json!({"type":"personal","participants":[{"userId":user}]})),
        )
        .await;
    let conv = id(&c, "conversation", "id");
    let (_, m) = api
        .call(
            "POST",
            &format!("{p}/conversations/{conv}/messages"),
            Some(&acct),
            Some(json!({"author":{"type":"business"},"content":{"type":"text","text":"x"}})),
        )
        .await;
    let message = m["messages"][0]["id"].as_str().unwrap().to_owned();
    let (_, i) = api.call("POST", &format!("{p}/integrations"), Some(&acct), Some(json!({"type":"custom","webhooks":[{"target":"http://127.0.0.1:9/","triggers":["conversation:message"]}]}))).await;
    let integration = id(&i, "integration", "id");
    let webhook = i["integration"]["webhooks"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, ik) = api
        .call(
            "POST",
            &format!("{p}/integrations/{integration}/keys"),
            Some(&acct),
            Some(json!({"displayName":"k"})),
        )
        .await;
    let int_key = id(&ik, "key", "id");
    let intk = basic(&int_key, ik["key"]["secret"].as_str().unwrap());
    let (_, sb) = api
        .call("POST", &format!("{p}/switchboards"), Some(&acct), None)
        .await;
    let switchboard = id(&sb, "switchboard", "id");
    let (_, sbi) = api
        .call(
            "POST",
            &format!("{p}/switchboards/{switchboard}/switchboardIntegrations"),
            Some(&acct),
            Some(json!({"name":"bot","integrationId":integration})),
        )
        .await;
    let sbi = id(&sbi, "switchboardIntegration", "id");
    let (_, tw) = api
        .call(
            "POST",
            &format!("{p}/integrations"),
            Some(&acct),
            Some(json!({"type":"twilio"})),
        )
        .await;
    let twilio = id(&tw, "integration", "id");
    let (_, cl) = api.call("POST", &format!("{p}/users/{user}/clients"), Some(&acct), Some(json!({"matchCriteria":{"type":"twilio","integrationId":twilio,"phoneNumber":"+1555"},"confirmation":{"type":"immediate"},"target":{"conversationId":conv}}))).await;
    let client = id(&cl, "client", "id");

    let mut checked = 0;
    let paths = spec.doc["paths"].as_object().unwrap().clone();
    for (template, methods) in &paths {
        for (method, op) in methods.as_object().unwrap() {
            let Some(op_id) = op["operationId"].as_str() else {
                continue;
            };
            let key_id = if template.contains("/integrations/") {
                &int_key
            } else {
                sun::DEMO_APP_KEY_ID
            };
            let path = template
                .replace("{appId}", sun::DEMO_APP_ID)
                .replace("{conversationId}", &conv)
                .replace("{messageId}", &message)
                .replace("{userIdOrExternalId}", &user)
                .replace("{zendeskId}", &user)
                .replace("{clientId}", &client)
                .replace("{deviceId}", "000000000000000000000000")
                .replace("{integrationId}", &integration)
                .replace("{keyId}", key_id)
                .replace("{webhookId}", &webhook)
                .replace("{switchboardId}", &switchboard)
                .replace("{switchboardIntegrationId}", &sbi);
            let method = method.to_uppercase();
            let mut check = |status: u16, v: &Value, want: u16, what: &str| {
                assert_eq!(status, want, "{op_id} {what}: {v}");
                let schema = spec.response_schema(op_id, status).unwrap();
                let errors = spec.errors(&schema, v, "$");
                assert!(errors.is_empty(), "{op_id} {what}: {errors:?}");
                checked += 1;
            };
            let open = op["security"].as_array().is_some_and(Vec::is_empty);
            let scopes: Vec<&str> = op["security"][0]["basicAuth"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_else(|| vec!["app", "account"]);
            if !open {
                let (st, v) = api.call(&method, &path, None, None).await;
                check(st, &v, 401, "without credentials");
                if !scopes.contains(&"app") && scopes.contains(&"account") {
                    let (st, v) = api.call(&method, &path, Some(&appk), None).await;
                    check(st, &v, 403, "with an app key");
                }
                // GetTokenInfo is how an OAuth bridge token (integration scope) learns its app.
                if !scopes.contains(&"integration") && op_id != "GetTokenInfo" {
                    let (st, v) = api.call(&method, &path, Some(&intk), None).await;
                    check(st, &v, 403, "with an integration key");
                }
            }
            let body = &op["requestBody"]["content"]["application/json"]["schema"];
            if body.is_null() || op_id == "RevokeAccess" {
                continue;
            }
            let auth = if open { None } else { Some(acct.as_str()) };
            let auth = if scopes.contains(&"account") {
                auth
            } else {
                Some(appk.as_str())
            };
            let (st, v) = api
                .raw(
                    &method,
                    &path,
                    auth,
                    "application/json",
                    Bytes::from_static(b"{\"oops"),
                )
                .await;
            check(st, &v, 400, "with malformed JSON");
            let (st, v) = api
                .raw(
                    &method,
                    &path,
                    auth,
                    "application/json",
                    Bytes::from_static(b"[1]"),
                )
                .await;
            check(st, &v, 400, "with a JSON array");
            let mut required = body["required"].as_array().cloned().unwrap_or_default();
            let resolved = body["$ref"]
                .as_str()
                .map(|r| spec.doc["components"]["schemas"][r.rsplit('/').next().unwrap()].clone());
            if let Some(r) = resolved {
                required.extend(r["required"].as_array().cloned().unwrap_or_default());
            }
            if !required.is_empty() {
                let (st, v) = api.call(&method, &path, auth, Some(json!({}))).await;
                check(st, &v, 400, "without its required fields");
            }
        }
    }
    println!("{checked} generated requests refused and validated");
    assert!(checked > 100);
}

/// ListIntegrations' `links.next` and `links.prev` lead to the next and previous pages of the
/// same filtered list: following them never brings in an integration of another type.
#[tokio::test]
async fn list_integrations_links_keep_the_type_filter() {
    let demo = Demo::start().await;
    let (api, auth, p) = (&demo.api, demo.app_key.clone(), demo.app.clone());
    // Custom and web integrations interleaved, so an unfiltered page would hold both.
    let mut custom = Vec::new();
    for i in 0..3 {
        let body = json!({"type":"custom","displayName":format!("Bot {i}"),"webhooks":[{"target":"http://127.0.0.1:9/hook","triggers":["conversation:message"]}]});
        let (st, v) = api
            .call(
                "POST",
                &format!("{p}/integrations"),
                Some(&auth),
                Some(body),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        custom.push(v["integration"]["id"].as_str().unwrap().to_owned());
        let body = json!({"type":"web","displayName":format!("Widget {i}")});
        let (st, v) = api
            .call(
                "POST",
                &format!("{p}/integrations"),
                Some(&auth),
                Some(body),
            )
            .await;
        assert_eq!(st, 201, "{v}");
    }
    let ids = |page: &Value| -> Vec<String> {
        page["integrations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                assert_eq!(i["type"], "custom", "{i}");
                i["id"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let follow = |link: &Value| -> String {
        let link = link.as_str().unwrap();
        link.strip_prefix(&api.base)
            .unwrap_or_else(|| panic!("{link} is not on {}", api.base))
            .to_owned()
    };

    let mut seen = Vec::new();
    let mut next = format!("{p}/integrations?filter[types]=custom&page[size]=1");
    let mut last = Value::Null;
    for _ in 0..10 {
        let (st, page) = api.call("GET", &next, Some(&auth), None).await;
        assert_eq!(st, 200, "{next}: {page}");
        seen.extend(ids(&page));
        last = page.clone();
        match page["links"].get("next") {
            Some(link) => next = follow(link),
            None => break,
        }
    }
    assert_eq!(seen, custom);
    // And back again from the last page.
    let prev = follow(&last["links"]["prev"]);
    let (st, page) = api.call("GET", &prev, Some(&auth), None).await;
    assert_eq!(st, 200, "{prev}: {page}");
    assert_eq!(ids(&page), custom[1..2]);
}

/// With integration credentials, ReleaseControl is refused (403) unless the integration is the
/// one in control, and AcceptControl unless it is the one offered control; app credentials
/// may do either. Refused actions change nothing.
#[tokio::test]
async fn control_actions_with_integration_credentials_are_the_integrations_own() {
    let demo = Demo::start().await;
    let (api, ka, p) = (&demo.api, Some(demo.app_key.as_str()), demo.app.clone());
    // Two custom integrations, each with a key of its own.
    let mut keys = Vec::new();
    let mut ids = Vec::new();
    for name in ["bot", "agent"] {
        let i = created(
            api,
            &format!("{p}/integrations"),
            ka,
            json!({"type":"custom","displayName":name,"webhooks":[
                {"target":"http://127.0.0.1:9/","triggers":["conversation:message"]}
            ]}),
        )
        .await;
        let iid = i["integration"]["id"].as_str().unwrap().to_owned();
        let k = created(
            api,
            &format!("{p}/integrations/{iid}/keys"),
            ka,
            json!({"displayName":name}),
        )
        .await;
        keys.push(basic(
            k["key"]["id"].as_str().unwrap(),
            k["key"]["secret"].as_str().unwrap(),
        ));
        ids.push(iid);
    }
    let (bot_key, agent_key) = (Some(keys[0].as_str()), Some(keys[1].as_str()));
    let (_, sb) = api
        .call("POST", &format!("{p}/switchboards"), ka, None)
        .await;
    let s = format!(
        "{p}/switchboards/{}",
        sb["switchboard"]["id"].as_str().unwrap()
    );
    let mut seats = Vec::new();
    for (name, iid) in ["bot", "agent"].iter().zip(&ids) {
        let v = created(
            api,
            &format!("{s}/switchboardIntegrations"),
            ka,
            json!({"name":name,"integrationId":iid}),
        )
        .await;
        seats.push(
            v["switchboardIntegration"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let (st, v) = api
        .call(
            "PATCH",
            &s,
            ka,
            Some(json!({"enabled":true,"defaultSwitchboardIntegrationId":seats[0]})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (_, u) = api
        .call("POST", &format!("{p}/users"), ka, Some(json!({})))
        .await;
    let (_, c) = api
        .call(
            "POST",
            &format!("{p}/conversations"),
            ka,
            Some(json!({"type":"personal","participants":[{"userId":u["user"]["id"]}]})),
        )
        .await;
    let c = format!(
        "{p}/conversations/{}",
        c["conversation"]["id"].as_str().unwrap()
    );
    let state = |v: &Value| {
        (
            v["conversation"]["activeSwitchboardIntegration"]["id"].clone(),
            v["conversation"]["pendingSwitchboardIntegration"]["id"].clone(),
        )
    };
    let (bot, agent) = (json!(seats[0]), json!(seats[1]));
    let seats_now = || {
        let (api, c) = (&api, &c);
        async move { state(&api.call("GET", c, ka, None).await.1) }
    };
    let offer_to_agent = |auth: Option<&str>| {
        let (api, path) = (&api, format!("{c}/offerControl"));
        let auth = auth.map(str::to_owned);
        async move {
            let body = json!({"switchboardIntegration":"agent"});
            api.call("POST", &path, auth.as_deref(), Some(body)).await
        }
    };
    let action = |name: &'static str, auth: Option<&str>| {
        let api = &api;
        let path = format!("{c}/{name}");
        let auth = auth.map(str::to_owned);
        async move {
            api.call("POST", &path, auth.as_deref(), Some(json!({})))
                .await
        }
    };
    assert_eq!(seats_now().await, (bot.clone(), Value::Null));

    // The bot is in control: the agent may not release it.
    let (st, v) = action("releaseControl", agent_key).await;
    assert_eq!(
        (st, &v["errors"][0]["code"]),
        (403, &json!("forbidden")),
        "{v}"
    );
    assert_eq!(seats_now().await, (bot.clone(), Value::Null));

    // Control is offered to the agent: the bot may not accept for it, the agent may.
    let (st, v) = offer_to_agent(bot_key).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = action("acceptControl", bot_key).await;
    assert_eq!(
        (st, &v["errors"][0]["code"]),
        (403, &json!("forbidden")),
        "{v}"
    );
    assert_eq!(seats_now().await, (bot.clone(), agent.clone()));
    let (st, v) = action("acceptControl", agent_key).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(seats_now().await, (agent.clone(), Value::Null));

    // Now the bot is the one not in control; the agent releases.
    let (st, v) = action("releaseControl", bot_key).await;
    assert_eq!(st, 403, "{v}");
    let (st, v) = action("releaseControl", agent_key).await;
    assert_eq!(st, 200, "{v}");
    // Released: the switchboard state is nullified, so nobody is in control (the next or
    // default integration does not take over at once)...
    assert_eq!(seats_now().await, (Value::Null, Value::Null));
    // ...until the user writes again: the default integration takes the conversation.
    created(
        api,
        &format!("{c}/messages"),
        ka,
        json!({"author":{"type":"user","userId":u["user"]["id"]},
                        "content":{"type":"text","text":"anyone?"}}),
    )
    .await;
    assert_eq!(seats_now().await, (bot.clone(), Value::Null));

    // App credentials are held to neither.
    let (st, v) = offer_to_agent(ka).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = action("acceptControl", ka).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = action("releaseControl", ka).await;
    assert_eq!(st, 200, "{v}");
}

/// DeleteUser deletes "a user, its clients and its conversation history": the user's personal
/// conversation goes, and in group conversations the user's messages go with the user, while
/// everyone else's stay.
#[tokio::test]
async fn deleting_a_user_deletes_their_conversation_history() {
    let demo = Demo::start().await;
    let (api, ka, p) = (&demo.api, Some(demo.app_key.as_str()), demo.app.clone());
    let mut users = Vec::new();
    for ext in ["leaving", "staying"] {
        let u = created(api, &format!("{p}/users"), ka, json!({"externalId":ext})).await;
        users.push(u["user"]["id"].as_str().unwrap().to_owned());
    }
    let (leaving, staying) = (&users[0], &users[1]);
    let conversation = |body: Value| {
        let api = &api;
        let p = &p;
        async move {
            let (st, c) = api
                .call("POST", &format!("{p}/conversations"), ka, Some(body))
                .await;
            assert_eq!(st, 201, "{c}");
            format!(
                "{p}/conversations/{}",
                c["conversation"]["id"].as_str().unwrap()
            )
        }
    };
    let personal =
        conversation(json!({"type":"personal","participants":[{"userId":leaving}]})).await;
    let group = conversation(
        json!({"type":"sdkGroup","participants":[{"userId":leaving,"subscribeSDKClient":false},{"userId":staying,"subscribeSDKClient":false}]}),
    )
    .await;
    // A group the user wrote in and then left still loses what they wrote.
    let left = conversation(
        json!({"type":"sdkGroup","participants":[{"userId":leaving,"subscribeSDKClient":false},{"userId":staying,"subscribeSDKClient":false}]}),
    )
    .await;
    let say = |c: String, author: Value, text: &'static str| {
        let api = &api;
        async move {
            let body = json!({"author":author,"content":{"type":"text","text":text}});
            let (st, v) = api
                .call("POST", &format!("{c}/messages"), ka, Some(body))
                .await;
            assert_eq!(st, 201, "{v}");
        }
    };
    let by = |id: &str| json!({"type":"user","userId":id});
    say(personal.clone(), by(leaving), "mine").await;
    say(personal.clone(), json!({"type":"business"}), "to me").await;
    for c in [&group, &left] {
        say(c.clone(), by(leaving), "from the leaver").await;
        say(c.clone(), by(staying), "from the stayer").await;
        say(c.clone(), json!({"type":"business"}), "from the business").await;
    }
    let (st, v) = api
        .call(
            "POST",
            &format!("{left}/leave"),
            ka,
            Some(json!({"userId":leaving})),
        )
        .await;
    assert_eq!(st, 200, "{v}");

    let (st, v) = api
        .call("DELETE", &format!("{p}/users/{leaving}"), ka, None)
        .await;
    assert_eq!(st, 200, "{v}");

    let (st, v) = api.call("GET", &personal, ka, None).await;
    assert_eq!(
        (st, &v["errors"][0]["code"]),
        (404, &json!("conversation_not_found"))
    );
    for c in [&group, &left] {
        let (st, v) = api.call("GET", &format!("{c}/messages"), ka, None).await;
        assert_eq!(st, 200, "{v}");
        let texts: Vec<_> = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"]["text"].clone())
            .collect();
        assert_eq!(
            texts,
            [json!("from the stayer"), json!("from the business")]
        );
        let (_, v) = api
            .call("GET", &format!("{c}/participants"), ka, None)
            .await;
        let members: Vec<_> = v["participants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["userId"].clone())
            .collect();
        assert_eq!(members, [json!(staying)]);
    }
    let (st, v) = api
        .call("GET", &format!("{p}/users/leaving"), ka, None)
        .await;
    assert_eq!(
        (st, &v["errors"][0]["code"]),
        (404, &json!("user_not_found"))
    );
    let (st, v) = api
        .call(
            "GET",
            &format!("{p}/conversations?filter[userId]={staying}"),
            ka,
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["conversations"].as_array().unwrap().len(), 2, "{v}");
}

/// Secrets the spec marks write-only are taken and never sent back: not by CreateIntegration,
/// GetIntegration, ListIntegrations or UpdateIntegration.
#[tokio::test]
async fn write_only_secrets_never_come_back() {
    let demo = Demo::start().await;
    let (api, ka) = (&demo.api, Some(demo.app_key.as_str()));
    let p = format!("{}/integrations", demo.app);
    let created = created(
        api,
        &p,
        ka,
        json!({"type":"twitter","tier":"enterprise","envName":"e",
                        "consumerKey":"ck","consumerSecret":"cs",
                        "accessTokenKey":"ak","accessTokenSecret":"as",
                        "defaultResponderId":"r"}),
    )
    .await;
    let id = created["integration"]["id"].as_str().unwrap().to_owned();
    let (st, updated) = api
        .call(
            "PATCH",
            &format!("{p}/{id}"),
            ka,
            Some(json!({"displayName":"tw","consumerSecret":"new"})),
        )
        .await;
    assert_eq!(st, 200, "{updated}");
    let (_, got) = api.call("GET", &format!("{p}/{id}"), ka, None).await;
    let (_, listed) = api.call("GET", &p, ka, None).await;
    let listed = listed["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == json!(id))
        .unwrap()
        .clone();
    for shown in [
        &created["integration"],
        &updated["integration"],
        &got["integration"],
        &listed,
    ] {
        assert_eq!(shown["envName"], "e", "{shown}");
        for secret in [
            "consumerKey",
            "consumerSecret",
            "accessTokenKey",
            "accessTokenSecret",
            "defaultResponderId",
        ] {
            assert!(shown.get(secret).is_none(), "{secret} came back: {shown}");
        }
    }
}

/// POSTs `body` to `path`, checks the 201, and returns the answer.
async fn created(api: &Api, path: &str, auth: Option<&str>, body: Value) -> Value {
    let (status, answer) = api.call("POST", path, auth, Some(body)).await;
    assert_eq!(status, 201, "{path}: {answer}");
    answer
}
