//! What must stay consistent when resources are deleted or changed: switchboard seats,
//! bridge tokens, default conversations, participants, timestamps, personal information and
//! linked attachments.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "sunshine/client.rs"]
mod client;
#[path = "sunshine/demo.rs"]
mod demo;

use bytes::Bytes;
use client::{Api, basic};
use demo::Demo;
use serde_json::{Value, json};
use zd_emulator::sunshine as sun;

impl Demo {
    /// Calls the API with the app key.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.api.call(method, path, Some(&self.app_key), body).await
    }

    /// Calls with the app key and checks the status.
    async fn expect(&self, method: &str, path: &str, body: Option<Value>, want: u16) -> Value {
        let (st, v) = self.call(method, path, body).await;
        assert_eq!(st, want, "{method} {path}: {v}");
        v
    }

    /// A new user's id.
    async fn user(&self, external_id: &str) -> String {
        let v = self
            .expect(
                "POST",
                &format!("{}/users", self.app),
                Some(json!({"externalId": external_id})),
                201,
            )
            .await;
        v["user"]["id"].as_str().unwrap().to_owned()
    }

    /// Creates a conversation; returns it.
    async fn conversation(&self, body: Value) -> Value {
        let v = self
            .expect(
                "POST",
                &format!("{}/conversations", self.app),
                Some(body),
                201,
            )
            .await;
        v["conversation"].clone()
    }

    /// A user message in conversation `cid`.
    async fn user_says(&self, cid: &str, user: &str, text: &str) {
        self.expect(
            "POST",
            &format!("{}/conversations/{cid}/messages", self.app),
            Some(json!({
                "author": {"type": "user", "userId": user},
                "content": {"type": "text", "text": text},
            })),
            201,
        )
        .await;
    }

    async fn get_conversation(&self, cid: &str) -> Value {
        self.expect(
            "GET",
            &format!("{}/conversations/{cid}", self.app),
            None,
            200,
        )
        .await["conversation"]
            .clone()
    }
}

/// The spec forbids deleting the default switchboard integration or one another's
/// `nextSwitchboardIntegrationId` names; conversations it was active in get the default again
/// at their next activity.
#[tokio::test]
async fn deleting_a_switchboard_integration_reseats_the_default() {
    let d = Demo::start().await;
    let sb = d
        .expect("POST", &format!("{}/switchboards", d.app), None, 201)
        .await;
    let s = format!(
        "{}/switchboards/{}",
        d.app,
        sb["switchboard"]["id"].as_str().unwrap()
    );
    let mut ids = Vec::new();
    for (name, kind) in [("bot", "zd:answerBot"), ("agent", "zd:agentWorkspace")] {
        let v = d
            .expect(
                "POST",
                &format!("{s}/switchboardIntegrations"),
                Some(json!({"name": name, "integrationType": kind})),
                201,
            )
            .await;
        ids.push(
            v["switchboardIntegration"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let (bot, agent) = (&ids[0], &ids[1]);
    d.expect(
        "PATCH",
        &format!("{s}/switchboardIntegrations/{bot}"),
        Some(json!({"nextSwitchboardIntegrationId": agent})),
        200,
    )
    .await;
    d.expect(
        "PATCH",
        &s,
        Some(json!({"enabled": true, "defaultSwitchboardIntegrationId": bot})),
        200,
    )
    .await;
    let user = d.user("sb-user").await;
    let c = d
        .conversation(json!({"type": "personal", "participants": [{"userId": user}]}))
        .await;
    let cid = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["activeSwitchboardIntegration"]["id"], json!(bot), "{c}");
    d.expect(
        "POST",
        &format!("{}/conversations/{cid}/passControl", d.app),
        Some(json!({"switchboardIntegration": "agent"})),
        200,
    )
    .await;
    assert_eq!(
        d.get_conversation(&cid).await["activeSwitchboardIntegration"]["id"],
        json!(agent)
    );

    for refused in [bot, agent] {
        let v = d
            .expect(
                "DELETE",
                &format!("{s}/switchboardIntegrations/{refused}"),
                None,
                400,
            )
            .await;
        assert_eq!(v["errors"][0]["code"], "bad_request", "{v}");
        assert!(v["errors"][0]["title"].is_string(), "{v}");
    }
    d.expect(
        "PATCH",
        &format!("{s}/switchboardIntegrations/{bot}"),
        Some(json!({"nextSwitchboardIntegrationId": null})),
        200,
    )
    .await;
    d.expect(
        "DELETE",
        &format!("{s}/switchboardIntegrations/{agent}"),
        None,
        200,
    )
    .await;
    let c = d.get_conversation(&cid).await;
    assert!(c.get("activeSwitchboardIntegration").is_none(), "{c}");
    d.user_says(&cid, &user, "anyone there?").await;
    assert_eq!(
        d.get_conversation(&cid).await["activeSwitchboardIntegration"]["id"],
        json!(bot)
    );
}

/// Runs the OAuth bridge for `app_id`; returns the bearer `Authorization` value.
async fn bridge_token(api: &Api, app_id: &str) -> String {
    let (st, v) = api
        .call(
            "GET",
            &format!(
                "/oauth/authorize?client_id={}&response_type=code&redirect_uri=http://localhost/cb&app_id={app_id}",
                sun::BRIDGE_CLIENT_ID
            ),
            None,
            None,
        )
        .await;
    assert_eq!(st, 302, "{v}");
    let code = v
        .as_str()
        .unwrap()
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let (st, tok) = api
        .call(
            "POST",
            "/oauth/token",
            None,
            Some(json!({"code": code, "grant_type": "authorization_code",
                "client_id": sun::BRIDGE_CLIENT_ID, "client_secret": sun::BRIDGE_CLIENT_SECRET})),
        )
        .await;
    assert_eq!(st, 200, "{tok}");
    let bearer = format!("Bearer {}", tok["access_token"].as_str().unwrap());
    let (st, v) = api.call("GET", "/v2/tokenInfo", Some(&bearer), None).await;
    assert_eq!(st, 200, "{v}");
    bearer
}

/// A bridge token is its integration's credential: it stops working when the integration or
/// its app is deleted.
#[tokio::test]
async fn bridge_tokens_die_with_their_integration_or_app() {
    let d = Demo::start().await;
    let bearer = bridge_token(&d.api, sun::DEMO_APP_ID).await;
    let listed = d
        .expect("GET", &format!("{}/integrations", d.app), None, 200)
        .await;
    let id = listed["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "custom")
        .expect("the bridge's integration")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    d.expect("DELETE", &format!("{}/integrations/{id}", d.app), None, 200)
        .await;
    let (st, v) = d
        .api
        .call("GET", "/v2/tokenInfo", Some(&bearer), None)
        .await;
    assert_eq!((st, &v["errors"][0]["code"]), (401, &json!("unauthorized")));

    let account = basic(sun::DEMO_ACCOUNT_KEY_ID, sun::DEMO_ACCOUNT_KEY_SECRET);
    let (st, app) = d
        .api
        .call(
            "POST",
            "/v2/apps",
            Some(&account),
            Some(json!({"displayName": "Doomed"})),
        )
        .await;
    assert_eq!(st, 201, "{app}");
    let app_id = app["app"]["id"].as_str().unwrap().to_owned();
    let bearer = bridge_token(&d.api, &app_id).await;
    let (st, v) = d
        .api
        .call(
            "DELETE",
            &format!("/v2/apps/{app_id}"),
            Some(&account),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = d
        .api
        .call("GET", "/v2/tokenInfo", Some(&bearer), None)
        .await;
    assert_eq!((st, &v["errors"][0]["code"]), (401, &json!("unauthorized")));
}

/// isDefault is "true for the first personal conversation created for the user": a group the
/// user is already in does not count.
#[tokio::test]
async fn the_first_personal_conversation_is_default_after_a_group() {
    let d = Demo::start().await;
    let user = d.user("grouped").await;
    let group = d
        .conversation(json!({"type": "sdkGroup", "participants": [{"userId": user, "subscribeSDKClient": false}]}))
        .await;
    assert_eq!(group["isDefault"], false, "{group}");
    let first = d
        .conversation(json!({"type": "personal", "participants": [{"userId": user}]}))
        .await;
    assert_eq!(first["isDefault"], true, "{first}");
    let second = d
        .conversation(json!({"type": "personal", "participants": [{"userId": user}]}))
        .await;
    assert_eq!(second["isDefault"], false, "{second}");
}

/// Participants come and go in sdkGroup conversations only: a personal conversation keeps its
/// one participant.
#[tokio::test]
async fn leaving_a_personal_conversation_is_refused() {
    let d = Demo::start().await;
    let user = d.user("stuck").await;
    let c = d
        .conversation(json!({"type": "personal", "participants": [{"userId": user}]}))
        .await;
    let cid = c["id"].as_str().unwrap();
    let v = d
        .expect(
            "POST",
            &format!("{}/conversations/{cid}/leave", d.app),
            Some(json!({"userId": user})),
            400,
        )
        .await;
    assert_eq!(v["errors"][0]["code"], "bad_request", "{v}");
    let v = d
        .expect(
            "GET",
            &format!("{}/conversations/{cid}/participants", d.app),
            None,
            200,
        )
        .await;
    assert_eq!(v["participants"].as_array().unwrap().len(), 1, "{v}");
}

/// lastUpdatedAt is when the last message was received, or the creation time before any.
#[tokio::test]
async fn last_updated_at_follows_messages_only() {
    let d = Demo::start().await;
    let user = d.user("timed").await;
    let c = d
        .conversation(json!({"type": "personal", "participants": [{"userId": user}]}))
        .await;
    let cid = c["id"].as_str().unwrap().to_owned();
    assert!(c["createdAt"].is_string(), "{c}");
    assert_eq!(c["lastUpdatedAt"], c["createdAt"], "{c}");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let v = d
        .expect(
            "PATCH",
            &format!("{}/conversations/{cid}", d.app),
            Some(json!({"displayName": "Renamed"})),
            200,
        )
        .await;
    assert_eq!(v["conversation"]["lastUpdatedAt"], c["createdAt"], "{v}");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    d.user_says(&cid, &user, "hello").await;
    let msgs = d
        .expect(
            "GET",
            &format!("{}/conversations/{cid}/messages", d.app),
            None,
            200,
        )
        .await;
    let received = msgs["messages"][0]["received"].clone();
    let after = d.get_conversation(&cid).await;
    assert_eq!(after["lastUpdatedAt"], received, "{after}");
    assert_ne!(after["lastUpdatedAt"], c["createdAt"], "{after}");
}

/// Conversations carry a nullable `description` of 1 to 100 characters.
#[tokio::test]
async fn conversation_descriptions_are_kept() {
    let d = Demo::start().await;
    let c = d
        .conversation(json!({"type": "sdkGroup", "description": "Ada and Grace"}))
        .await;
    assert_eq!(c["description"], "Ada and Grace", "{c}");
    let cid = c["id"].as_str().unwrap().to_owned();
    assert_eq!(
        d.get_conversation(&cid).await["description"],
        "Ada and Grace"
    );
    let path = format!("{}/conversations/{cid}", d.app);
    for bad in [json!(""), json!("x".repeat(101)), json!(7)] {
        d.expect("PATCH", &path, Some(json!({"description": bad})), 400)
            .await;
        d.expect(
            "POST",
            &format!("{}/conversations", d.app),
            Some(json!({"type": "sdkGroup", "description": bad})),
            400,
        )
        .await;
    }
    let v = d
        .expect(
            "PATCH",
            &path,
            Some(json!({"description": "x".repeat(100)})),
            200,
        )
        .await;
    assert_eq!(v["conversation"]["description"], json!("x".repeat(100)));
    // Another field changed leaves the description alone; null clears it.
    let v = d
        .expect("PATCH", &path, Some(json!({"displayName": "G"})), 200)
        .await;
    assert_eq!(v["conversation"]["description"], json!("x".repeat(100)));
    let v = d
        .expect("PATCH", &path, Some(json!({"description": null})), 200)
        .await;
    assert_eq!(v["conversation"]["description"], Value::Null, "{v}");
    let plain = d.conversation(json!({"type": "sdkGroup"})).await;
    assert_eq!(plain["description"], Value::Null, "{plain}");
}

/// The same user twice among participants, by id or by id and external id, is refused.
#[tokio::test]
async fn duplicate_participants_are_refused() {
    let d = Demo::start().await;
    let user = d.user("twice").await;
    for participants in [
        json!([{"userId": user}, {"userId": user}]),
        json!([{"userId": user}, {"userExternalId": "twice"}]),
    ] {
        for kind in ["sdkGroup", "personal"] {
            let v = d
                .expect(
                    "POST",
                    &format!("{}/conversations", d.app),
                    Some(json!({"type": kind, "participants": participants})),
                    400,
                )
                .await;
            assert_eq!(v["errors"][0]["code"], "bad_request", "{v}");
        }
    }
    let (_, v) = d
        .call(
            "GET",
            &format!("{}/conversations?filter[userId]={user}", d.app),
            None,
        )
        .await;
    assert_eq!(v["conversations"], json!([]), "{v}");
}

/// Keys exist for custom integrations only: listing, reading and deleting them on another
/// kind is a 400, as creating one is.
#[tokio::test]
async fn key_operations_need_a_custom_integration() {
    let d = Demo::start().await;
    let web = d
        .expect(
            "POST",
            &format!("{}/integrations", d.app),
            Some(json!({"type": "web", "displayName": "Widget"})),
            201,
        )
        .await;
    let keys = format!(
        "{}/integrations/{}/keys",
        d.app,
        web["integration"]["id"].as_str().unwrap()
    );
    for (method, path, body) in [
        ("POST", keys.clone(), Some(json!({"displayName": "k"}))),
        ("GET", keys.clone(), None),
        ("GET", format!("{keys}/int_nope"), None),
        ("DELETE", format!("{keys}/int_nope"), None),
    ] {
        let v = d.expect(method, &path, body, 400).await;
        assert_eq!(
            v["errors"][0]["code"], "bad_request",
            "{method} {path}: {v}"
        );
    }
}

/// DeleteUserPersonalInformation clears the profile's givenName, surname, email and avatarUrl
/// and the custom properties (metadata), and each client's displayName, avatarUrl, info and
/// raw; nothing else.
#[tokio::test]
async fn deleting_personal_information_clears_the_documented_fields() {
    let d = Demo::start().await;
    let (st, web) = d
        .api
        .call(
            "POST",
            &format!("/_emulator/sunshine/apps/{}/end-users", sun::DEMO_APP_ID),
            None,
            Some(
                json!({"externalId": "private", "givenName": "Ada", "surname": "Lovelace",
                "email": "ada@example.com", "locale": "en-GB"}),
            ),
        )
        .await;
    assert_eq!(st, 201, "{web}");
    let user = web["user"]["id"].as_str().unwrap().to_owned();
    let u = format!("{}/users/{user}", d.app);
    d.expect(
        "PATCH",
        &u,
        Some(
            json!({"profile": {"avatarUrl": "https://example.com/a.png"},
            "metadata": {"tier": "gold"}}),
        ),
        200,
    )
    .await;
    let before = d.expect("GET", &format!("{u}/clients"), None, 200).await;
    assert!(before["clients"][0]["info"].is_object(), "{before}");

    let v = d
        .expect("DELETE", &format!("{u}/personalinformation"), None, 200)
        .await;
    assert_eq!(v["user"]["profile"], json!({"locale": "en-GB"}), "{v}");
    assert_eq!(v["user"]["metadata"], json!({}), "{v}");
    assert_eq!(v["user"]["externalId"], "private", "{v}");
    let after = d.expect("GET", &format!("{u}/clients"), None, 200).await;
    let client = &after["clients"][0];
    for f in ["displayName", "avatarUrl", "info", "raw"] {
        assert_eq!(client[f], Value::Null, "{f}: {client}");
    }
    for f in ["id", "type", "status"] {
        assert_eq!(client[f], before["clients"][0][f], "{f}: {client}");
    }
}

/// Uploads `for=message` with a `conversationId` go with that conversation, whether it is
/// deleted itself or as its user's history; other uploads stay.
#[tokio::test]
async fn message_attachments_go_with_their_conversation() {
    let d = Demo::start().await;
    let upload = |query: String| {
        let d = &d;
        async move {
            let mp = Bytes::from_static(b"--B\r\nContent-Disposition: form-data; name=\"source\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--B--\r\n");
            let (st, v) = d
                .api
                .raw(
                    "POST",
                    &format!("{}/attachments?access=public{query}", d.app),
                    Some(&d.app_key),
                    "multipart/form-data; boundary=B",
                    mp,
                )
                .await;
            assert_eq!(st, 201, "{v}");
            v["attachment"]["mediaUrl"]
                .as_str()
                .unwrap()
                .trim_start_matches(&d.api.base)
                .to_owned()
        }
    };
    let fetch = |path: String| {
        let d = &d;
        async move { d.api.call("GET", &path, None, None).await.0 }
    };
    let user = d.user("uploader").await;
    let group = d.conversation(json!({"type": "sdkGroup"})).await;
    let group = group["id"].as_str().unwrap().to_owned();
    let personal = d
        .conversation(json!({"type": "personal", "participants": [{"userId": user}]}))
        .await;
    let personal = personal["id"].as_str().unwrap().to_owned();

    let in_group = upload(format!("&for=message&conversationId={group}")).await;
    let in_personal = upload(format!("&for=message&conversationId={personal}")).await;
    let unlinked = upload(String::new()).await;
    for path in [&in_group, &in_personal, &unlinked] {
        assert_eq!(fetch(path.clone()).await, 200, "{path}");
    }

    d.expect(
        "DELETE",
        &format!("{}/conversations/{group}", d.app),
        None,
        200,
    )
    .await;
    assert_eq!(fetch(in_group.clone()).await, 404);
    assert_eq!(fetch(in_personal.clone()).await, 200);

    d.expect("DELETE", &format!("{}/users/{user}", d.app), None, 200)
        .await;
    assert_eq!(fetch(in_personal).await, 404);
    assert_eq!(fetch(unlinked).await, 200);
}

impl Demo {
    /// Uploads a small text file with `query` after `access=public`; returns its media URL.
    async fn upload(&self, query: &str) -> String {
        let mp = Bytes::from_static(b"--B\r\nContent-Disposition: form-data; name=\"source\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--B--\r\n");
        let (st, v) = self
            .api
            .raw(
                "POST",
                &format!("{}/attachments?access=public{query}", self.app),
                Some(&self.app_key),
                "multipart/form-data; boundary=B",
                mp,
            )
            .await;
        assert_eq!(st, 201, "{v}");
        v["attachment"]["mediaUrl"].as_str().unwrap().to_owned()
    }

    /// The status the media URL `url` answers with.
    async fn media(&self, url: &str) -> u16 {
        let path = url.trim_start_matches(&self.api.base);
        self.api.call("GET", path, None, None).await.0
    }

    /// A business message with `content` in conversation `cid`; returns its id.
    async fn business_says(&self, cid: &str, content: Value) -> String {
        let v = self
            .expect(
                "POST",
                &format!("{}/conversations/{cid}/messages", self.app),
                Some(json!({"author": {"type": "business"}, "content": content})),
                201,
            )
            .await;
        v["messages"][0]["id"].as_str().unwrap().to_owned()
    }

    /// A new sdkGroup conversation's id.
    async fn group(&self) -> String {
        let c = self.conversation(json!({"type": "sdkGroup"})).await;
        c["id"].as_str().unwrap().to_owned()
    }
}

/// DeleteAllMessages deletes every message of the conversation, and with them the uploads
/// `for=message` of that conversation; other conversations' and unlinked uploads stay.
#[tokio::test]
async fn deleting_all_messages_deletes_the_conversations_message_attachments() {
    let d = Demo::start().await;
    let (here, elsewhere) = (d.group().await, d.group().await);
    let shown = d
        .upload(&format!("&for=message&conversationId={here}"))
        .await;
    let not_yet_sent = d
        .upload(&format!("&for=message&conversationId={here}"))
        .await;
    let other = d
        .upload(&format!("&for=message&conversationId={elsewhere}"))
        .await;
    let unlinked = d.upload("").await;
    d.business_says(&here, json!({"type": "image", "mediaUrl": shown}))
        .await;
    d.business_says(&here, json!({"type": "file", "mediaUrl": other}))
        .await;
    d.business_says(&here, json!({"type": "file", "mediaUrl": unlinked}))
        .await;

    d.expect(
        "DELETE",
        &format!("{}/conversations/{here}/messages", d.app),
        None,
        200,
    )
    .await;
    assert_eq!(d.media(&shown).await, 404);
    assert_eq!(d.media(&not_yet_sent).await, 404);
    assert_eq!(d.media(&other).await, 200, "linked to another conversation");
    assert_eq!(d.media(&unlinked).await, 200, "not uploaded for a message");
}

/// DeleteMessage deletes the conversation's `for=message` uploads that the message showed:
/// its own `mediaUrl` and its carousel or list items'. An upload another of the
/// conversation's messages still shows, one linked elsewhere, and one not shown stay.
#[tokio::test]
async fn deleting_a_message_deletes_the_attachments_it_showed() {
    let d = Demo::start().await;
    let (here, elsewhere) = (d.group().await, d.group().await);
    let linked = format!("&for=message&conversationId={here}");
    let (image, card, row, shared, unshown) = (
        d.upload(&linked).await,
        d.upload(&linked).await,
        d.upload(&linked).await,
        d.upload(&linked).await,
        d.upload(&linked).await,
    );
    let other = d
        .upload(&format!("&for=message&conversationId={elsewhere}"))
        .await;
    let action = json!([{"type": "postback", "text": "t", "payload": "p"}]);
    let item = |url: &str| json!({"title": "t", "mediaUrl": url, "actions": action});

    let image_msg = d
        .business_says(&here, json!({"type": "image", "mediaUrl": image}))
        .await;
    let carousel_msg = d
        .business_says(
            &here,
            json!({"type": "carousel", "items": [item(&card), item(&shared)]}),
        )
        .await;
    let list_msg = d
        .business_says(&here, json!({"type": "list", "items": [item(&row)]}))
        .await;
    d.business_says(&here, json!({"type": "image", "mediaUrl": shared}))
        .await;
    let other_msg = d
        .business_says(&here, json!({"type": "file", "mediaUrl": other}))
        .await;
    let delete = |id: String| {
        let d = &d;
        let here = &here;
        async move {
            d.expect(
                "DELETE",
                &format!("{}/conversations/{here}/messages/{id}", d.app),
                None,
                200,
            )
            .await;
        }
    };

    delete(image_msg).await;
    assert_eq!(d.media(&image).await, 404);
    assert_eq!(d.media(&card).await, 200);
    delete(carousel_msg).await;
    assert_eq!(d.media(&card).await, 404, "a carousel item's mediaUrl");
    assert_eq!(
        d.media(&shared).await,
        200,
        "another message still shows it"
    );
    delete(list_msg).await;
    assert_eq!(d.media(&row).await, 404, "a list item's mediaUrl");
    delete(other_msg).await;
    assert_eq!(d.media(&other).await, 200, "linked to another conversation");
    assert_eq!(d.media(&unshown).await, 200, "no deleted message showed it");
}

/// A merge folds the discarded user's personal conversation into the surviving one's: the
/// uploads linked to the discarded conversation go with the surviving one from then on.
#[tokio::test]
async fn merged_conversations_attachments_go_with_the_surviving_conversation() {
    let d = Demo::start().await;
    let mut personal = Vec::new();
    for ext in ["kept", "gone"] {
        let user = d.user(ext).await;
        let c = d
            .conversation(json!({"type": "personal", "participants": [{"userId": user}]}))
            .await;
        personal.push((user, c["id"].as_str().unwrap().to_owned()));
    }
    let [(kept_user, kept), (gone_user, gone)] = <[_; 2]>::try_from(personal).unwrap();
    let url = d
        .upload(&format!("&for=message&conversationId={gone}"))
        .await;
    d.business_says(&gone, json!({"type": "image", "mediaUrl": url}))
        .await;

    let (st, v) = d
        .api
        .call(
            "POST",
            &format!("/_emulator/sunshine/apps/{}/users/merge", sun::DEMO_APP_ID),
            None,
            Some(json!({"surviving": kept_user, "discarded": gone_user})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        d.media(&url).await,
        200,
        "the message moved, and its upload"
    );
    let v = d
        .expect(
            "GET",
            &format!("{}/conversations/{kept}/messages", d.app),
            None,
            200,
        )
        .await;
    assert_eq!(v["messages"][0]["content"]["mediaUrl"], url.as_str());
    d.expect("GET", &format!("{}/conversations/{gone}", d.app), None, 404)
        .await;

    // The surviving user's deletion takes its personal conversation, and the upload with it.
    d.expect("DELETE", &format!("{}/users/{kept_user}", d.app), None, 200)
        .await;
    assert_eq!(d.media(&url).await, 404);
}

/// DeleteUser removes the user's messages from group conversations (the group stays), and an
/// attachment goes with its message: what they showed is gone, what others showed stays.
#[tokio::test]
async fn deleting_a_user_deletes_the_attachments_their_group_messages_showed() {
    let d = Demo::start().await;
    let user = d.user("leaver-1").await;
    let c = d
        .conversation(json!({"type": "sdkGroup", "participants": [{"userId": user, "subscribeSDKClient": false}]}))
        .await;
    let here = c["id"].as_str().unwrap().to_owned();
    let linked = format!("&for=message&conversationId={here}");
    let (theirs, business) = (d.upload(&linked).await, d.upload(&linked).await);
    d.expect(
        "POST",
        &format!("{}/conversations/{here}/messages", d.app),
        Some(json!({"author": {"type": "user", "userId": user},
                    "content": {"type": "image", "mediaUrl": theirs}})),
        201,
    )
    .await;
    d.business_says(&here, json!({"type": "image", "mediaUrl": business}))
        .await;
    d.expect("DELETE", &format!("{}/users/{user}", d.app), None, 200)
        .await;
    assert_eq!(d.media(&theirs).await, 404, "the user's message showed it");
    assert_eq!(
        d.media(&business).await,
        200,
        "the business's message stays"
    );
}
