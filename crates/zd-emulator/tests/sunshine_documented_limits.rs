//! Rules the Sunshine spec states that a bot can trip over: users listed by their email
//! identity only, profile and metadata limits, the default conversation that stays, and the
//! per-app and per-integration quotas.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "helpers of tests")]

#[path = "sunshine/client.rs"]
mod client;

use client::{Api, basic};
use serde_json::{Value, json};
use zd_emulator::sunshine::{self as sun, SunshineConfig, SunshineServer};

struct Rig {
    _server: SunshineServer,
    api: Api,
    app_key: String,
    account_key: String,
}

async fn rig() -> Rig {
    let server = SunshineServer::start(SunshineConfig::default())
        .await
        .unwrap();
    Rig {
        api: Api::new(server.base_url()),
        _server: server,
        app_key: basic(sun::DEMO_APP_KEY_ID, sun::DEMO_APP_KEY_SECRET),
        account_key: basic(sun::DEMO_ACCOUNT_KEY_ID, sun::DEMO_ACCOUNT_KEY_SECRET),
    }
}

impl Rig {
    /// A call to the demo app's API (`path` after `/v2/apps/{app}`) with its app key.
    async fn app(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let path = format!("/v2/apps/{}{path}", sun::DEMO_APP_ID);
        self.api
            .call(method, &path, Some(&self.app_key), body)
            .await
    }

    async fn account(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.api
            .call(method, path, Some(&self.account_key), body)
            .await
    }

    /// A web user through the control API; returns the answer (user and conversation).
    async fn end_user(&self, body: Value) -> Value {
        let path = format!("/_emulator/sunshine/apps/{}/end-users", sun::DEMO_APP_ID);
        let (st, v) = self.api.call("POST", &path, None, Some(body)).await;
        assert_eq!(st, 201, "{v}");
        v
    }
}

fn error_title(v: &Value) -> &str {
    v["errors"][0]["title"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn users_are_listed_by_email_identity_and_never_by_profile_email() {
    let r = rig().await;
    let sue = r
        .end_user(json!({
            "externalId": "sue-1",
            "identities": [{"type": "email", "value": "sue@example.org", "verification": "sso"}],
        }))
        .await;
    // Same address, but only in the profile: the filter must not find this one.
    r.end_user(json!({"externalId": "sam-1", "email": "sue@example.org"}))
        .await;
    assert_eq!(
        sue["user"]["identities"],
        json!([{"type": "email", "value": "sue@example.org", "verification": "sso"}])
    );

    let (st, v) = r
        .app(
            "GET",
            "/users?filter[identities.email]=sue@example.org",
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let ids: Vec<&Value> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| &u["externalId"])
        .collect();
    assert_eq!(ids, [&json!("sue-1")]);

    // Percent-encoded as a client sends it (`+` is a space in a query, so `%2B` for a plus).
    let (st, v) = r
        .app(
            "GET",
            "/users?filter%5Bidentities.email%5D=sue%40example.org",
            None,
        )
        .await;
    assert_eq!(
        (st, v["users"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{v}"
    );

    // The filter is required, and the old bracket spelling is not it.
    for path in ["/users", "/users?filter[identities][email]=sue@example.org"] {
        let (st, v) = r.app("GET", path, None).await;
        assert_eq!(st, 400, "{path}: {v}");
        assert!(error_title(&v).contains("filter[identities.email]"), "{v}");
    }

    // The control API checks the identities it is given.
    let path = format!("/_emulator/sunshine/apps/{}/end-users", sun::DEMO_APP_ID);
    for bad in [
        json!({"identities": [{"type": "email"}]}),
        json!({"identities": [{"type": "email", "value": ""}]}),
        json!({"identities": "sue@example.org"}),
    ] {
        let (st, v) = r.api.call("POST", &path, None, Some(bad.clone())).await;
        assert_eq!(st, 400, "{bad}: {v}");
    }
}

#[tokio::test]
async fn profile_fields_have_their_documented_lengths() {
    let r = rig().await;
    let accepted = json!({
        "givenName": "g".repeat(128),
        "surname": "s".repeat(128),
        "email": format!("{}@x.io", "e".repeat(123)),
        "locale": "l".repeat(64),
        "avatarUrl": format!("https://x.io/{}", "a".repeat(2048 - 13)),
    });
    let (st, v) = r
        .app(
            "POST",
            "/users",
            Some(json!({"externalId": "long", "profile": accepted})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    for (field, value) in [
        ("givenName", "g".repeat(129)),
        ("surname", "s".repeat(129)),
        ("email", format!("{}@x.io", "e".repeat(124))),
        ("locale", "l".repeat(65)),
        (
            "avatarUrl",
            format!("https://x.io/{}", "a".repeat(2048 - 12)),
        ),
    ] {
        let body = json!({"profile": { field: value }});
        let (st, v) = r.app("PATCH", "/users/long", Some(body)).await;
        assert_eq!(st, 400, "{field}: {v}");
        assert!(error_title(&v).contains(field), "{v}");
    }
}

#[tokio::test]
async fn metadata_is_a_flat_object_of_at_most_4kb_everywhere() {
    let r = rig().await;
    let conversation = r.end_user(json!({"externalId": "meta"})).await["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // `{"k":"…"}` is 8 bytes around the value.
    let fits = json!({"k": "x".repeat(4096 - 8)});
    let over = json!({"k": "x".repeat(4096 - 7)});
    let nested = json!({"k": {"deeper": 1}});
    let app = format!("/v2/apps/{}", sun::DEMO_APP_ID);
    // (method, path, whether the body is a message, whether the account key is needed)
    let cases = [
        ("PATCH", format!("{app}/users/meta"), false, false),
        (
            "PATCH",
            format!("{app}/conversations/{conversation}"),
            false,
            false,
        ),
        (
            "POST",
            format!("{app}/conversations/{conversation}/messages"),
            true,
            false,
        ),
        ("PATCH", app.clone(), false, true),
    ];
    for (method, path, is_message, account) in &cases {
        let auth = if *account { &r.account_key } else { &r.app_key };
        for (metadata, want) in [(&fits, 2), (&over, 4), (&nested, 4)] {
            let body = if *is_message {
                json!({"author": {"type": "business"}, "content": {"type": "text", "text": "hi"}, "metadata": metadata})
            } else {
                json!({ "metadata": metadata })
            };
            let (st, v) = r.api.call(method, path, Some(auth), Some(body)).await;
            assert_eq!(st / 100, want, "{method} {path} with {metadata}: {st} {v}");
            if metadata == &over {
                assert!(error_title(&v).contains("4KB"), "{v}");
            }
        }
    }
}

#[tokio::test]
async fn the_default_conversation_stays_and_others_can_go() {
    let r = rig().await;
    let user = r.end_user(json!({"externalId": "dee"})).await;
    let default = user["conversation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(user["conversation"]["isDefault"], true);
    let (st, v) = r
        .app("DELETE", &format!("/conversations/{default}"), None)
        .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        error_title(&v),
        format!("Conversation {default} cannot be deleted because it is the default.")
    );
    let (st, _) = r
        .app("GET", &format!("/conversations/{default}"), None)
        .await;
    assert_eq!(st, 200, "still there");
    // Its messages can go.
    let (st, v) = r
        .app(
            "DELETE",
            &format!("/conversations/{default}/messages"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");

    let user_id = user["user"]["id"].as_str().unwrap();
    let (st, group) = r
        .app(
            "POST",
            "/conversations",
            Some(json!({"type": "sdkGroup", "participants": [{"userId": user_id, "subscribeSDKClient": false}]})),
        )
        .await;
    assert_eq!(st, 201, "{group}");
    assert_eq!(group["conversation"]["isDefault"], false);
    let id = group["conversation"]["id"].as_str().unwrap();
    let (st, v) = r.app("DELETE", &format!("/conversations/{id}"), None).await;
    assert_eq!(st, 200, "{v}");
}

impl Rig {
    /// POSTs `body(n)` to `path` with the account key `quota` times (each must be created),
    /// then once more; returns the first one created and the answer to the one too many.
    async fn fill(
        &self,
        path: &str,
        body: impl Fn(usize) -> Value,
        quota: usize,
    ) -> (Value, (u16, Value)) {
        let mut first = Value::Null;
        for n in 1..=quota {
            let (st, v) = self.account("POST", path, Some(body(n))).await;
            assert_eq!(st, 201, "{path} #{n}: {v}");
            if n == 1 {
                first = v;
            }
        }
        let refused = self.account("POST", path, Some(body(quota + 1))).await;
        (first, refused)
    }
}

#[tokio::test]
async fn keys_webhooks_and_switchboard_integrations_have_their_quotas() {
    let r = rig().await;
    let (st, app) = r
        .account("POST", "/v2/apps", Some(json!({"displayName": "Quotas"})))
        .await;
    assert_eq!(st, 201, "{app}");
    let app_path = format!("/v2/apps/{}", app["app"]["id"].as_str().unwrap());
    let key = |_| json!({"displayName": "k"});

    // A fresh app: 10 keys.
    let (app_key, (st, v)) = r.fill(&format!("{app_path}/keys"), key, 10).await;
    assert_eq!(st, 400, "{v}");
    assert!(error_title(&v).contains("maximum of 10 keys"), "{v}");
    let app_key = basic(
        app_key["key"]["id"].as_str().unwrap(),
        app_key["key"]["secret"].as_str().unwrap(),
    );

    // Webhooks count over the whole app: 10 integrations of one webhook each, then none more,
    // neither with a new integration nor on an existing one.
    let hook = json!({"target": "http://127.0.0.1:9/hook", "triggers": ["conversation:message"]});
    let integration = |_| json!({"type": "custom", "displayName": "Bot", "webhooks": [hook]});
    let (first, (st, v)) = r
        .fill(&format!("{app_path}/integrations"), integration, 10)
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(error_title(&v).contains("limited to 10 webhooks"), "{v}");
    let first = format!(
        "{app_path}/integrations/{}",
        first["integration"]["id"].as_str().unwrap()
    );
    // Webhook operations take app or integration credentials, not account keys.
    let path = format!("{first}/webhooks");
    let (st, v) = r.account("POST", &path, Some(hook.clone())).await;
    assert_eq!(st, 403, "{v}");
    let (st, v) = r
        .api
        .call("POST", &path, Some(&app_key), Some(hook.clone()))
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(error_title(&v).contains("limited to 10 webhooks"), "{v}");

    // An integration: 10 keys.
    let (_, (st, v)) = r.fill(&format!("{first}/keys"), key, 10).await;
    assert_eq!(st, 400, "{v}");
    assert!(error_title(&v).contains("maximum of 10 keys"), "{v}");

    // A switchboard: 10 switchboard integrations, with the documented error after.
    let (st, sb) = r
        .account("POST", &format!("{app_path}/switchboards"), None)
        .await;
    assert_eq!(st, 201, "{sb}");
    let sbis = format!(
        "{app_path}/switchboards/{}/switchboardIntegrations",
        sb["switchboard"]["id"].as_str().unwrap()
    );
    let sbi = |n| json!({"name": format!("sbi-{n}"), "integrationType": "zd:agentWorkspace"});
    let (_, (st, v)) = r.fill(&sbis, sbi, 10).await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["errors"][0]["code"], "too_many_switchboard_integrations");
    assert_eq!(
        error_title(&v),
        "Switchboard has reached the max number of switchboard integrations (10)"
    );
}

#[tokio::test]
async fn the_throttle_fault_answers_429_to_the_next_api_requests_only() {
    let r = rig().await;
    let throttle = |body: Value| {
        let api = r.api.clone();
        async move {
            let (st, v) = api
                .call(
                    "POST",
                    "/_emulator/sunshine/faults/throttle",
                    None,
                    Some(body),
                )
                .await;
            assert_eq!(st, 200, "{v}");
        }
    };
    throttle(json!({"requests": 2, "retryAfterSeconds": 3})).await;
    // The control API is not throttled and takes no refusal.
    r.end_user(json!({"externalId": "t"})).await;
    for _ in 0..2 {
        let (st, v) = r.app("GET", "", None).await;
        assert_eq!(st, 429, "{v}");
        assert_eq!(v["errors"][0]["code"], "too_many_requests");
    }
    let (st, v) = r.app("GET", "", None).await;
    assert_eq!(st, 200, "the third request passes: {v}");

    // Retry-After is sent only when asked for: check the header itself.
    for (body, want) in [
        (json!({"requests": 1, "retryAfterSeconds": 3}), Some("3")),
        (json!({"requests": 1}), None),
    ] {
        throttle(body).await;
        let uri = format!("{}/v2/apps/{}", r.api.base, sun::DEMO_APP_ID);
        let request = http::Request::get(uri)
            .header("authorization", &r.app_key)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let response = r.api.client.request(request).await.unwrap();
        assert_eq!(response.status(), 429);
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap());
        assert_eq!(retry_after, want);
    }
    let (st, v) = r
        .api
        .call(
            "POST",
            "/_emulator/sunshine/faults/throttle",
            None,
            Some(json!({"requests": -1})),
        )
        .await;
    assert_eq!(st, 400, "{v}");
}

impl Rig {
    /// POSTs `body` to the demo app's attachments with the app key, as multipart with
    /// `boundary`.
    async fn upload(&self, boundary: &str, body: Vec<u8>) -> (u16, Value) {
        let path = format!("/v2/apps/{}/attachments?access=public", sun::DEMO_APP_ID);
        let ctype = format!("multipart/form-data; boundary={boundary}");
        let body = bytes::Bytes::from(body);
        self.api
            .raw("POST", &path, Some(&self.app_key), &ctype, body)
            .await
    }
}

#[tokio::test]
async fn only_uploads_may_send_large_bodies() {
    let r = rig().await;
    // A 1 MB attachment is taken...
    let mut body = b"--B0\r\nContent-Disposition: form-data; name=\"source\"; filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
    body.resize(body.len() + 1024 * 1024, b'z');
    body.extend_from_slice(b"\r\n--B0--\r\n");
    let (st, v) = r.upload("B0", body).await;
    assert_eq!(st, 201, "{v}");
    // ...a megabyte anywhere else is refused before it is read, credentials or not.
    let big = bytes::Bytes::from(vec![b'a'; 1024 * 1024]);
    let form = "application/x-www-form-urlencoded";
    let (st, _) = r
        .api
        .raw("POST", "/oauth2/token", None, form, big.clone())
        .await;
    assert_eq!(st, 413);
    let json = "application/json";
    let path = format!("/v2/apps/{}/users", sun::DEMO_APP_ID);
    let (st, v) = r.api.raw("POST", &path, None, json, big).await;
    assert_eq!(st, 413);
    // In the service's words, as for a body between 100 KB and the length read at all.
    let refused = json!({"errors":[{"code":"request_entity_too_large","title":"Request body exceeds the 100KB limit"}]});
    assert_eq!(v, refused);
    for size in [101 * 1024, 128 * 1024 + 1, 4 * 1024 * 1024] {
        let body = bytes::Bytes::from(vec![b' '; size]);
        let (st, v) = r.api.raw("POST", &path, Some(&r.app_key), json, body).await;
        assert_eq!((st, &v), (413, &refused), "{size} bytes");
    }
    // So do the control API and an upload past its limit.
    let (st, v) = r
        .api
        .raw(
            "POST",
            &format!("/_emulator/sunshine/apps/{}/end-users", sun::DEMO_APP_ID),
            None,
            json,
            bytes::Bytes::from(vec![b' '; 3 * 1024 * 1024]),
        )
        .await;
    assert_eq!((st, &v), (413, &refused));
    let (st, v) = r.upload("B1", vec![b'z'; 51 * 1024 * 1024]).await;
    assert_eq!(st, 413);
    assert_eq!(v["errors"][0]["code"], "request_entity_too_large", "{v}");
    // An upload's boundary longer than RFC 2046's 70 characters is not searched for.
    let (st, v) = r.upload(&"-".repeat(71), vec![b'-'; 4096]).await;
    assert_eq!(st, 400, "{v}");
}

/// An upload's credentials are checked before its body is read: the head announces 50 MB and
/// only a few bytes follow, so the 401 can only come if the body was never waited for. The
/// deadline only turns a hang into a failure; the answer comes as soon as the head is read.
#[tokio::test]
async fn an_upload_with_bad_credentials_is_refused_before_its_body_is_read() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let server = SunshineServer::start(SunshineConfig::default())
        .await
        .unwrap();
    let addr = server.base_url().trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v2/apps/{}/attachments?access=public HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: {}\r\nContent-Type: multipart/form-data; boundary=B\r\n\
         Content-Length: {}\r\n\r\n--B\r\n",
        sun::DEMO_APP_ID,
        basic(sun::DEMO_APP_KEY_ID, "wrong-secret"),
        50 * 1024 * 1024
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    let read = async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut chunk).await.unwrap();
            assert_ne!(n, 0, "closed without an answer");
            answer.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), read)
        .await
        .expect("no answer before the body was sent");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

/// What an app's uploads hold in all is bounded (the emulator's choice; the service documents
/// no such limit): past it UploadAttachment answers 400, its only documented refusal, and
/// removing an upload makes room again.
#[tokio::test]
async fn stored_uploads_are_bounded_per_app() {
    let server = SunshineServer::start(SunshineConfig::default().upload_storage(64 * 1024))
        .await
        .unwrap();
    let r = Rig {
        api: Api::new(server.base_url()),
        _server: server,
        app_key: basic(sun::DEMO_APP_KEY_ID, sun::DEMO_APP_KEY_SECRET),
        account_key: basic(sun::DEMO_ACCOUNT_KEY_ID, sun::DEMO_ACCOUNT_KEY_SECRET),
    };
    let upload = |size: usize| {
        let mut body = b"--B\r\nContent-Disposition: form-data; name=\"source\"; filename=\"f.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
        body.resize(body.len() + size, b'z');
        body.extend_from_slice(b"\r\n--B--\r\n");
        r.upload("B", body)
    };
    let (st, first) = upload(30 * 1024).await;
    assert_eq!(st, 201, "{first}");
    let (st, v) = upload(30 * 1024).await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = upload(30 * 1024).await;
    assert_eq!(
        (st, &v["errors"][0]["code"]),
        (400, &json!("bad_request")),
        "{v}"
    );
    // Uploads of nothing count too: their number is bounded as well.
    let mut empty = 0;
    let refused = loop {
        let (st, v) = upload(0).await;
        if st != 201 {
            break (st, v);
        }
        empty += 1;
        assert!(empty < 64 * 1024, "empty uploads are never refused");
    };
    assert!(empty > 0, "room was left for some");
    assert_eq!(
        (refused.0, &refused.1["errors"][0]["code"]),
        (400, &json!("bad_request")),
        "{}",
        refused.1
    );
    let url = &first["attachment"]["mediaUrl"];
    let (st, v) = r
        .app(
            "POST",
            "/attachments/remove",
            Some(json!({ "mediaUrl": url })),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = upload(30 * 1024).await;
    assert_eq!(st, 201, "{v}");
}

/// The spec's rules between app settings: "Enabling `multiConvo` is **irreversible**", and
/// `endSessionEnabled` and `disableConversationReopen` note "`multiConvo` is required to
/// enable". A refused create makes no app; a refused update changes nothing.
#[tokio::test]
async fn app_settings_keep_the_rules_between_them() {
    let r = rig().await;
    let apps = |v: &Value| v["apps"].as_array().map(Vec::len);
    let (st, before) = r.account("GET", "/v2/apps", None).await;
    assert_eq!(st, 200, "{before}");
    assert!(apps(&before).is_some(), "{before}");
    for settings in [
        json!({"endSessionEnabled": true}),
        json!({"disableConversationReopen": true, "multiConvoEnabled": false}),
    ] {
        let body = json!({"displayName": "Refused", "settings": settings});
        let (st, v) = r.account("POST", "/v2/apps", Some(body)).await;
        assert_eq!(
            (st, &v["errors"][0]["code"]),
            (400, &json!("bad_request")),
            "{v}"
        );
    }
    let (st, after) = r.account("GET", "/v2/apps", None).await;
    assert_eq!(st, 200, "{after}");
    assert_eq!(apps(&after), apps(&before));
    let body = json!({"displayName": "Sessions", "settings": {"multiConvoEnabled": true, "endSessionEnabled": true}});
    let (st, v) = r.account("POST", "/v2/apps", Some(body)).await;
    assert_eq!(st, 201, "{v}");

    let settings = |v: &Value| v["app"]["settings"].clone();
    let (_, app) = r.app("GET", "", None).await;
    let patch = json!({"settings": {"endSessionEnabled": true}});
    let (st, v) = r.app("PATCH", "", Some(patch.clone())).await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(settings(&r.app("GET", "", None).await.1), settings(&app));

    let (st, v) = r
        .app(
            "PATCH",
            "",
            Some(json!({"settings": {"multiConvoEnabled": true}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (_, app) = r.app("GET", "", None).await;
    let undo = json!({"displayName": "Renamed", "settings": {"multiConvoEnabled": false}});
    let (st, v) = r.app("PATCH", "", Some(undo)).await;
    assert_eq!(st, 400, "{v}");
    let (_, now) = r.app("GET", "", None).await;
    assert_eq!(now["app"]["displayName"], app["app"]["displayName"]);
    assert_eq!(settings(&now)["multiConvoEnabled"], true);
    let (st, v) = r.app("PATCH", "", Some(patch)).await;
    assert_eq!(st, 200, "{v}");
}

/// "This field is required if the conversation is of type `sdkGroup`" (participantSubSchema's
/// `subscribeSDKClient`), on create and on join, and a boolean wherever it is given.
#[tokio::test]
async fn sdk_group_participants_say_whether_to_subscribe_their_sdk_client() {
    let r = rig().await;
    let (st, v) = r
        .app("POST", "/users", Some(json!({"externalId": "p1"})))
        .await;
    assert_eq!(st, 201, "{v}");
    let user = v["user"]["id"].clone();
    let group = |participant: Value| json!({"type": "sdkGroup", "participants": [participant]});
    for participant in [
        json!({"userId": user}),
        json!({"userId": user, "subscribeSDKClient": "yes"}),
        json!({"userId": user, "subscribeSDKClient": null}),
    ] {
        let (st, v) = r
            .app("POST", "/conversations", Some(group(participant.clone())))
            .await;
        assert_eq!(st, 400, "{participant}: {v}");
    }
    let (st, v) = r
        .app(
            "POST",
            "/conversations",
            Some(json!({"type": "personal", "participants": [{"userId": user, "subscribeSDKClient": 1}]})),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = r
        .app(
            "POST",
            "/conversations",
            Some(group(json!({"userId": user, "subscribeSDKClient": true}))),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = r
        .app("POST", "/conversations", Some(json!({"type": "sdkGroup"})))
        .await;
    assert_eq!(st, 201, "{v}");
    let join = format!(
        "/conversations/{}/join",
        v["conversation"]["id"].as_str().unwrap()
    );
    let (st, v) = r.app("POST", &join, Some(json!({"userId": user}))).await;
    assert_eq!(st, 400, "{v}");
    let body = json!({"userId": user, "subscribeSDKClient": false});
    let (st, v) = r.app("POST", &join, Some(body)).await;
    assert_eq!(st, 201, "{v}");
}

/// An `externalId` equal to another user's id conflicts (409) as one equal to another user's
/// `externalId` does: `userIdOrExternalId` path parameters and `userExternalId` fields read an
/// id first, so such a user could never be found by its external id. The same holds for the
/// end-user routes (create and log in).
#[tokio::test]
async fn an_external_id_conflicts_with_another_users_id_or_external_id() {
    let r = rig().await;
    let (st, first) = r
        .app("POST", "/users", Some(json!({"externalId": "ext-1"})))
        .await;
    assert_eq!(st, 201, "{first}");
    let id = first["user"]["id"].clone();
    let conflict = |st: u16, v: &Value| {
        assert_eq!(
            (st, &v["errors"][0]["code"]),
            (409, &json!("conflict")),
            "{v}"
        );
    };
    for taken in [id.clone(), json!("ext-1")] {
        let (st, v) = r
            .app("POST", "/users", Some(json!({"externalId": taken})))
            .await;
        conflict(st, &v);
        let path = format!("/_emulator/sunshine/apps/{}/end-users", sun::DEMO_APP_ID);
        let (st, v) = r
            .api
            .call("POST", &path, None, Some(json!({"externalId": taken})))
            .await;
        conflict(st, &v);
        // A web user logging in under another user's id or external id is a merge instead.
        let end_user = r.end_user(json!({})).await;
        let path = format!(
            "/_emulator/sunshine/apps/{}/users/{}/authenticate",
            sun::DEMO_APP_ID,
            end_user["user"]["id"].as_str().unwrap()
        );
        let (st, v) = r
            .api
            .call("POST", &path, None, Some(json!({"externalId": taken})))
            .await;
        conflict(st, &v);
    }
    // The first user is still the one its id and its external id name.
    for name in [id.as_str().unwrap(), "ext-1"] {
        let (st, v) = r.app("GET", &format!("/users/{name}"), None).await;
        assert_eq!((st, &v["user"]["id"]), (200, &id), "{name}: {v}");
    }
}

/// A switchboard integration's `name` is "Restricted to alphanumeric characters, `-` and `_`"
/// (at most 128), and an app key's `displayName` has 1 to 100 characters (AppKeyCreateBody);
/// an integration key's is a plain string (IntegrationApiKey), with no length the spec states.
#[tokio::test]
async fn names_keep_their_documented_characters_and_lengths() {
    let r = rig().await;
    let (st, app) = r
        .account("POST", "/v2/apps", Some(json!({"displayName": "Names"})))
        .await;
    assert_eq!(st, 201, "{app}");
    let app_path = format!("/v2/apps/{}", app["app"]["id"].as_str().unwrap());

    let (st, sb) = r
        .account("POST", &format!("{app_path}/switchboards"), None)
        .await;
    assert_eq!(st, 201, "{sb}");
    let sbis = format!(
        "{app_path}/switchboards/{}/switchboardIntegrations",
        sb["switchboard"]["id"].as_str().unwrap()
    );
    let sbi = |name: &str| json!({"name": name, "integrationType": "zd:agentWorkspace"});
    for bad in ["two words", "bot!", "bot.1", "ünï", ""] {
        let (st, v) = r.account("POST", &sbis, Some(sbi(bad))).await;
        assert_eq!(st, 400, "{bad:?}: {v}");
    }
    let (st, v) = r.account("POST", &sbis, Some(sbi("Bot_2-b"))).await;
    assert_eq!(st, 201, "{v}");
    let renamed = format!(
        "{sbis}/{}",
        v["switchboardIntegration"]["id"].as_str().unwrap()
    );
    let (st, v) = r
        .account("PATCH", &renamed, Some(json!({"name": "a b"})))
        .await;
    assert_eq!(st, 400, "{v}");

    let hook = json!({"target": "http://127.0.0.1:9/hook", "triggers": ["conversation:message"]});
    let body = json!({"type": "custom", "displayName": "Bot", "webhooks": [hook]});
    let (st, i) = r
        .account("POST", &format!("{app_path}/integrations"), Some(body))
        .await;
    assert_eq!(st, 201, "{i}");
    let keys = format!(
        "{app_path}/integrations/{}/keys",
        i["integration"]["id"].as_str().unwrap()
    );
    let app_keys = format!("{app_path}/keys");
    for (name, app_key, integration_key) in [
        (String::new(), 400, 201),
        ("k".repeat(101), 400, 201),
        ("k".repeat(100), 201, 201),
    ] {
        for (path, want) in [(&app_keys, app_key), (&keys, integration_key)] {
            let (st, v) = r
                .account("POST", path, Some(json!({"displayName": name})))
                .await;
            assert_eq!(st, want, "{path} {}: {v}", name.len());
        }
    }
    // Still a string.
    for path in [&app_keys, &keys] {
        let (st, v) = r
            .account("POST", path, Some(json!({"displayName": 7})))
            .await;
        assert_eq!(st, 400, "{path}: {v}");
    }
}

/// Media share the emulator's origin, which an OAuth redirect may name: an uploaded HTML page
/// is served as a download, never sniffed, and sandboxed, so it cannot run as one of the
/// origin's pages.
#[tokio::test]
async fn uploaded_html_is_served_as_a_sandboxed_download() {
    let r = rig().await;
    let page = b"<script>alert(document.cookie)</script>";
    let mut body = b"--B\r\nContent-Disposition: form-data; name=\"source\"; filename=\"page.html\"\r\nContent-Type: text/html\r\n\r\n".to_vec();
    body.extend_from_slice(page);
    body.extend_from_slice(b"\r\n--B--\r\n");
    let (st, v) = r.upload("B", body).await;
    assert_eq!(st, 201, "{v}");
    let url = v["attachment"]["mediaUrl"].as_str().unwrap();
    let request = http::Request::get(url)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = r.api.client.request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(header("content-type").as_deref(), Some("text/html"));
    assert_eq!(
        header("content-disposition").as_deref(),
        Some("attachment; filename=\"page.html\"")
    );
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
    let csp = header("content-security-policy").unwrap_or_default();
    assert!(
        csp.split(';').any(|d| d.trim() == "sandbox")
            && csp.split(';').any(|d| d.trim() == "default-src 'none'"),
        "{csp}"
    );
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&bytes[..], page);
}

/// CreateConversation "will return 404 if the user can't be found": an `sdkGroup` participant
/// naming no user is a 404 before anything else about it (its `subscribeSDKClient` included)
/// is looked at, as on join.
#[tokio::test]
async fn a_group_participant_naming_no_user_is_not_found() {
    let r = rig().await;
    let (st, v) = r
        .app("POST", "/users", Some(json!({"externalId": "known"})))
        .await;
    assert_eq!(st, 201, "{v}");
    for participants in [
        json!([{"userId": "nobody"}]),
        json!([{"userExternalId": "nobody"}]),
        json!([{"userId": "nobody", "subscribeSDKClient": "yes"}]),
        json!([{"userExternalId": "known"}, {"userId": "nobody"}]),
    ] {
        let body = json!({"type": "sdkGroup", "participants": participants});
        let (st, v) = r.app("POST", "/conversations", Some(body)).await;
        assert_eq!(
            (st, &v["errors"][0]["code"]),
            (404, &json!("user_not_found")),
            "{participants}: {v}"
        );
    }
    // A known user without the field is still refused for it.
    let body = json!({"type": "sdkGroup", "participants": [{"userExternalId": "known"}]});
    let (st, v) = r.app("POST", "/conversations", Some(body)).await;
    assert_eq!(st, 400, "{v}");
}

/// The uploads' bound is kept as a running count per app: every way an upload goes gives its
/// bytes back (once), a merge moves them with the conversation, and one app's uploads leave
/// another's room alone. Each case fills the demo app so that a second upload is refused,
/// removes the first through one path, and uploads again.
#[tokio::test]
async fn every_way_an_upload_goes_gives_its_room_back() {
    const BIG: usize = 40 * 1024;
    let server = SunshineServer::start(SunshineConfig::default().upload_storage(64 * 1024))
        .await
        .unwrap();
    let r = Rig {
        api: Api::new(server.base_url()),
        _server: server,
        app_key: basic(sun::DEMO_APP_KEY_ID, sun::DEMO_APP_KEY_SECRET),
        account_key: basic(sun::DEMO_ACCOUNT_KEY_ID, sun::DEMO_ACCOUNT_KEY_SECRET),
    };
    let r = &r;
    let demo = format!("/v2/apps/{}", sun::DEMO_APP_ID);
    // A BIG upload to `app` with `query` after `access=public`: its status and media URL.
    let upload = |app: String, query: String| {
        let mut body = b"--B\r\nContent-Disposition: form-data; name=\"source\"; filename=\"f.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
        body.resize(body.len() + BIG, b'z');
        body.extend_from_slice(b"\r\n--B--\r\n");
        let (api, auth) = (r.api.clone(), r.account_key.clone());
        async move {
            let path = format!("{app}/attachments?access=public{query}");
            let ctype = "multipart/form-data; boundary=B";
            let (st, v) = api
                .raw("POST", &path, Some(&auth), ctype, bytes::Bytes::from(body))
                .await;
            (st, v["attachment"]["mediaUrl"].as_str().map(str::to_owned))
        }
    };
    // Fills the demo app with an upload linked as `query` says; the next one is refused.
    let fill = |query: String| {
        let upload = &upload;
        let demo = demo.clone();
        async move {
            let (st, url) = upload(demo.clone(), query).await;
            assert_eq!(st, 201);
            assert_eq!(upload(demo, String::new()).await.0, 400, "not full");
            url.unwrap()
        }
    };
    // There is room again: an upload is taken, and removed to leave the app empty.
    let room_again = |path: &'static str| {
        let upload = &upload;
        let r = &r;
        let demo = demo.clone();
        async move {
            let (st, url) = upload(demo, String::new()).await;
            assert_eq!(st, 201, "{path} gave no room back");
            let body = json!({"mediaUrl": url.unwrap()});
            let (st, v) = r.app("POST", "/attachments/remove", Some(body)).await;
            assert_eq!(st, 200, "{v}");
        }
    };
    let linked = |conversation: &str| format!("&for=message&conversationId={conversation}");
    let group = || async {
        let (st, v) = r
            .app("POST", "/conversations", Some(json!({"type": "sdkGroup"})))
            .await;
        assert_eq!(st, 201, "{v}");
        v["conversation"]["id"].as_str().unwrap().to_owned()
    };
    // A user with a personal conversation: their ids.
    let person = |external: &'static str| async move {
        let (st, v) = r
            .app("POST", "/users", Some(json!({"externalId": external})))
            .await;
        assert_eq!(st, 201, "{v}");
        let user = v["user"]["id"].as_str().unwrap().to_owned();
        let body = json!({"type": "personal", "participants": [{"userId": user}]});
        let (st, v) = r.app("POST", "/conversations", Some(body)).await;
        assert_eq!(st, 201, "{v}");
        (user, v["conversation"]["id"].as_str().unwrap().to_owned())
    };
    let ok = |(st, v): (u16, Value)| assert_eq!(st, 200, "{v}");

    // RemoveAttachment.
    let url = fill(String::new()).await;
    ok(r.app(
        "POST",
        "/attachments/remove",
        Some(json!({"mediaUrl": url})),
    )
    .await);
    room_again("RemoveAttachment").await;

    // DeleteMessage of the message that showed it.
    let c = group().await;
    let url = fill(linked(&c)).await;
    let message =
        json!({"author": {"type": "business"}, "content": {"type": "image", "mediaUrl": url}});
    let (st, v) = r
        .app(
            "POST",
            &format!("/conversations/{c}/messages"),
            Some(message),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let id = v["messages"][0]["id"].as_str().unwrap();
    ok(
        r.app("DELETE", &format!("/conversations/{c}/messages/{id}"), None)
            .await,
    );
    room_again("DeleteMessage").await;

    // DeleteAllMessages.
    let c = group().await;
    fill(linked(&c)).await;
    ok(
        r.app("DELETE", &format!("/conversations/{c}/messages"), None)
            .await,
    );
    room_again("DeleteAllMessages").await;

    // DeleteConversation.
    let c = group().await;
    fill(linked(&c)).await;
    ok(r.app("DELETE", &format!("/conversations/{c}"), None).await);
    room_again("DeleteConversation").await;

    // DeleteUser, whose personal conversation goes.
    let (user, personal) = person("leaver").await;
    fill(linked(&personal)).await;
    ok(r.app("DELETE", &format!("/users/{user}"), None).await);
    room_again("DeleteUser").await;

    // A merge moves the discarded user's uploads with their messages: still held, and
    // given back when the surviving user goes.
    let (surviving, _) = person("surviving").await;
    let (discarded, personal) = person("discarded").await;
    fill(linked(&personal)).await;
    let path = format!("/_emulator/sunshine/apps/{}/users/merge", sun::DEMO_APP_ID);
    let body = json!({"surviving": surviving, "discarded": discarded});
    let (st, v) = r.api.call("POST", &path, None, Some(body)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(upload(demo.clone(), String::new()).await.0, 400);
    ok(r.app("DELETE", &format!("/users/{surviving}"), None).await);
    room_again("DeleteUser after a merge").await;

    // Another app has its own room, whatever the demo app holds; deleting it takes its
    // uploads along and leaves the demo app's as they were.
    fill(String::new()).await;
    let (st, v) = r
        .account("POST", "/v2/apps", Some(json!({"displayName": "Other"})))
        .await;
    assert_eq!(st, 201, "{v}");
    let other = format!("/v2/apps/{}", v["app"]["id"].as_str().unwrap());
    let (st, held) = upload(other.clone(), String::new()).await;
    assert_eq!(st, 201);
    assert_eq!(upload(other.clone(), String::new()).await.0, 400);
    let status_of = |url: String| async move {
        let request = http::Request::get(url)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        r.api.client.request(request).await.unwrap().status()
    };
    let held = held.expect("a media URL");
    assert_eq!(status_of(held.clone()).await, 200);
    ok(r.account("DELETE", &other, None).await);
    assert_eq!(
        status_of(held).await,
        404,
        "the deleted app's upload is gone"
    );
    assert_eq!(upload(demo.clone(), String::new()).await.0, 400);
}
