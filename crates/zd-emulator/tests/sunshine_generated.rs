//! Valid requests generated from the spec: for every operation with a JSON request body, each
//! request example the spec gives and a body built from its request schema (required fields
//! with minimal valid values) is sent to a fresh emulator holding the resources the operation
//! needs, must succeed, and must answer what the operation's response schema describes.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "helpers of tests")]

#[path = "sunshine/client.rs"]
mod client;
#[path = "sunshine/schema.rs"]
mod schema;

use client::{Api, basic};
use serde_json::{Map, Value, json};
use zd_emulator::sunshine::{self as sun, SunshineConfig, SunshineServer};

/// A minimal valid value for `schema`: required properties only, the first enum value or
/// `oneOf`/`anyOf` branch, the shortest string the length and format allow.
fn minimal(spec: &schema::Spec, schema: &Value) -> Value {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return minimal(spec, &spec.doc["components"]["schemas"][name]);
    }
    if let Some(all) = schema["allOf"].as_array() {
        let mut out = Map::new();
        let mut other = None;
        for s in all {
            match minimal(spec, s) {
                Value::Object(o) => out.extend(o),
                v => other = Some(v),
            }
        }
        let mut top = minimal(spec, &strip(schema, &["allOf", "required"]));
        if let Value::Object(o) = &mut top {
            out.extend(std::mem::take(o));
        }
        // `required` next to `allOf` names properties the parts declare.
        for r in schema["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap();
            if !out.contains_key(r) {
                let prop = property(spec, schema, r).unwrap_or(json!({}));
                out.insert(r.to_owned(), minimal(spec, &prop));
            }
        }
        return other
            .filter(|_| out.is_empty())
            .unwrap_or(Value::Object(out));
    }
    if let Some(first) = schema["oneOf"]
        .as_array()
        .or(schema["anyOf"].as_array())
        .and_then(|a| a.first())
    {
        let mut v = minimal(spec, first);
        // A discriminated union: the discriminator names the branch that was generated.
        if let (Some(prop), Some(r)) = (
            schema["discriminator"]["propertyName"].as_str(),
            first["$ref"].as_str(),
        ) {
            let key = schema["discriminator"]["mapping"]
                .as_object()
                .and_then(|m| m.iter().find(|(_, t)| t.as_str() == Some(r)))
                .map_or_else(
                    || r.rsplit('/').next().unwrap().to_owned(),
                    |(k, _)| k.clone(),
                );
            v[prop] = json!(key);
        }
        return v;
    }
    if let Some(e) = schema["enum"].as_array().and_then(|e| e.first()) {
        return e.clone();
    }
    match schema["type"].as_str() {
        Some("string") if schema["example"].is_string() => schema["example"].clone(),
        Some("string") => {
            let min = schema["minLength"].as_u64().unwrap_or(1).max(1) as usize;
            match schema["format"].as_str() {
                Some("uri") => json!("https://example.com/a.png"),
                Some("email") => json!("ada@example.com"),
                Some("date-time") => json!("2026-01-01T00:00:00.000Z"),
                _ => json!("x".repeat(min)),
            }
        }
        Some("integer") | Some("number") => json!(schema["minimum"].as_i64().unwrap_or(1).max(1)),
        Some("boolean") => json!(true),
        Some("array") => {
            let n = schema["minItems"].as_u64().unwrap_or(0) as usize;
            Value::Array((0..n).map(|_| minimal(spec, &schema["items"])).collect())
        }
        _ => {
            let mut out = Map::new();
            for r in schema["required"].as_array().into_iter().flatten() {
                let r = r.as_str().unwrap();
                let prop = property(spec, schema, r).unwrap_or(json!({}));
                if prop["readOnly"] == true {
                    continue;
                }
                out.insert(r.to_owned(), minimal(spec, &prop));
            }
            Value::Object(out)
        }
    }
}

/// The schema of property `name`, wherever `schema` declares it (itself, a `$ref`, an `allOf`
/// part, or the first `oneOf`/`anyOf` branch).
fn property(spec: &schema::Spec, schema: &Value, name: &str) -> Option<Value> {
    if let Some(p) = schema["properties"].get(name) {
        return Some(p.clone());
    }
    if let Some(r) = schema["$ref"].as_str() {
        let target = &spec.doc["components"]["schemas"][r.rsplit('/').next().unwrap()];
        return property(spec, target, name);
    }
    let parts = schema["allOf"].as_array().cloned().unwrap_or_default();
    let first = schema["oneOf"]
        .as_array()
        .or(schema["anyOf"].as_array())
        .and_then(|a| a.first().cloned());
    parts
        .iter()
        .chain(first.iter())
        .find_map(|p| property(spec, p, name))
}

fn strip(schema: &Value, keys: &[&str]) -> Value {
    let mut s = schema.clone();
    if let Some(o) = s.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
    s
}

/// The resources of one fresh emulator that request bodies refer to.
struct Fixture {
    _server: SunshineServer,
    api: Api,
    acct: String,
    app_key: String,
    user: String,
    other_user: String,
    conv: String,
    group: String,
    integration: String,
    webhook: String,
    switchboard: String,
    sbi: String,
    media_url: String,
}

const P: &str = "/v2/apps/5e1f00000000000000000001";

async fn fixture() -> Fixture {
    assert_eq!(P, format!("/v2/apps/{}", sun::DEMO_APP_ID));
    let server = SunshineServer::start(SunshineConfig::default())
        .await
        .unwrap();
    let api = Api::new(server.base_url());
    let acct = basic(sun::DEMO_ACCOUNT_KEY_ID, sun::DEMO_ACCOUNT_KEY_SECRET);
    let a = Some(acct.as_str());
    let call = |m: &'static str, path: String, body: Option<Value>| {
        let api = api.clone();
        async move {
            let (st, v) = api.call(m, &path, a, body).await;
            assert!((200..300).contains(&st), "{m} {path}: {st} {v}");
            v
        }
    };
    let id = |v: &Value, a: &str| v[a]["id"].as_str().unwrap().to_owned();
    let user = id(
        &call(
            "POST",
            format!("{P}/users"),
            Some(json!({"externalId":"u1"})),
        )
        .await,
        "user",
    );
    let other_user = id(
        &call(
            "POST",
            format!("{P}/users"),
            Some(json!({"externalId":"u2"})),
        )
        .await,
        "user",
    );
    let conv = id(
        &call(
            "POST",
            format!("{P}/conversations"),
            Some(json!({"type":"personal","participants":[{"userId":user}]})),
        )
        .await,
        "conversation",
    );
    let group = id(
        &call(
            "POST",
            format!("{P}/conversations"),
            Some(json!({"type":"sdkGroup","participants":[{"userId":user,"subscribeSDKClient":false}]})),
        )
        .await,
        "conversation",
    );
    let i = call("POST", format!("{P}/integrations"), Some(json!({"type":"custom","displayName":"Bot","webhooks":[{"target":"http://127.0.0.1:9/","triggers":["conversation:message"]}]}))).await;
    let integration = id(&i, "integration");
    let webhook = i["integration"]["webhooks"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let switchboard = id(
        &call("POST", format!("{P}/switchboards"), None).await,
        "switchboard",
    );
    let sbi = id(
        &call(
            "POST",
            format!("{P}/switchboards/{switchboard}/switchboardIntegrations"),
            Some(json!({"name":"bot","integrationId":integration})),
        )
        .await,
        "switchboardIntegration",
    );
    call(
        "POST",
        format!("{P}/switchboards/{switchboard}/switchboardIntegrations"),
        Some(json!({"name":"agent","integrationType":"zd:agentWorkspace"})),
    )
    .await;
    call(
        "PATCH",
        format!("{P}/switchboards/{switchboard}"),
        Some(json!({"enabled":true,"defaultSwitchboardIntegrationId":sbi})),
    )
    .await;
    // The conversation was created before the switchboard: put the bot in control.
    call(
        "POST",
        format!("{P}/conversations/{conv}/passControl"),
        Some(json!({"switchboardIntegration":"bot"})),
    )
    .await;
    let boundary = "XyZ";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"source\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
    );
    let (st, up) = api
        .raw(
            "POST",
            &format!("{P}/attachments?access=public"),
            a,
            &format!("multipart/form-data; boundary={boundary}"),
            multipart.into(),
        )
        .await;
    assert_eq!(st, 201, "{up}");
    let media_url = up["attachment"]["mediaUrl"].as_str().unwrap().to_owned();
    Fixture {
        _server: server,
        api,
        acct,
        app_key: basic(sun::DEMO_APP_KEY_ID, sun::DEMO_APP_KEY_SECRET),
        user,
        other_user,
        conv,
        group,
        integration,
        webhook,
        switchboard,
        sbi,
        media_url,
    }
}

impl Fixture {
    /// Points the ids a body names at this fixture's resources.
    fn bind(&self, op: &str, v: &mut Value) {
        match v {
            Value::Object(o) => {
                for (k, val) in o.iter_mut() {
                    let id = match k.as_str() {
                        // Joining needs someone not yet in the conversation.
                        "userId" if op == "JoinConversation" => Some(&self.other_user),
                        "userId" => Some(&self.user),
                        "conversationId" => Some(&self.conv),
                        "integrationId" => Some(&self.integration),
                        "switchboardIntegration"
                        | "nextSwitchboardIntegrationId"
                        | "defaultSwitchboardIntegrationId" => Some(&self.sbi),
                        "mediaUrl" if op == "DeleteAttachment" => Some(&self.media_url),
                        _ => None,
                    };
                    match id {
                        Some(id) if val.is_string() => *val = json!(id),
                        _ => self.bind(op, val),
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.bind(op, x)),
            _ => {}
        }
    }

    fn path(&self, op: &str, template: &str) -> String {
        // Only group conversations can be joined and left.
        let conv = if matches!(op, "JoinConversation" | "LeaveConversation") {
            &self.group
        } else {
            &self.conv
        };
        template
            .replace("{appId}", sun::DEMO_APP_ID)
            .replace("{conversationId}", conv)
            .replace("{userIdOrExternalId}", &self.user)
            .replace("{zendeskId}", &self.user)
            .replace("{integrationId}", &self.integration)
            .replace("{webhookId}", &self.webhook)
            .replace("{switchboardId}", &self.switchboard)
            .replace("{switchboardIntegrationId}", &self.sbi)
    }

    /// What an operation needs beyond the fixture (an offer to accept, an OAuth code).
    async fn prepare(&self, op: &str, body: &mut Value) {
        // participantSubSchema's prose: `subscribeSDKClient` "is required if the conversation
        // is of type `sdkGroup`", and only group conversations are joined.
        let group = op == "JoinConversation" || body["type"] == "sdkGroup";
        let participants = match body.get_mut("participants") {
            Some(Value::Array(list)) => list.iter_mut().collect(),
            _ if op == "JoinConversation" => vec![&mut *body],
            _ => Vec::new(),
        };
        for participant in participants.into_iter().filter(|_| group) {
            if participant.get("subscribeSDKClient").is_none() {
                participant["subscribeSDKClient"] = json!(false);
            }
        }
        match op {
            "AcceptControl" => {
                let (st, v) = self
                    .api
                    .call(
                        "POST",
                        &format!("{P}/conversations/{}/offerControl", self.conv),
                        Some(&self.acct),
                        Some(json!({"switchboardIntegration":"agent"})),
                    )
                    .await;
                assert_eq!(st, 200, "{v}");
            }
            // The schema leaves participants optional, but the service refuses a personal
            // conversation without its one participant.
            "CreateConversation" if body.get("participants").is_none() => {
                body["participants"] = json!([{ "userId": self.other_user }]);
            }
            // Constraints the service states in prose, not in the schema: one user named,
            // one channel's events, an integration or an integration type, a unique name.
            "JoinConversation" | "LeaveConversation"
                if body.get("userId").is_none() && body.get("userExternalId").is_none() =>
            {
                body["userId"] = json!(if op == "JoinConversation" {
                    &self.other_user
                } else {
                    &self.user
                });
            }
            "PostConversionEvents" if body.as_object().is_some_and(Map::is_empty) => {
                body["messenger"] = json!({"payload":{"data":[{"event_name":"Purchase"}]}});
            }
            "CreateSwitchboardIntegration" => {
                body["name"] = json!("generated");
                if body.get("integrationId").is_none() && body.get("integrationType").is_none() {
                    body["integrationType"] = json!("zd:agentWorkspace");
                }
            }
            "PostMessage"
                if body["content"]["type"] == "text" && body["content"].get("text").is_none() =>
            {
                body["content"]["text"] = json!("x");
            }
            "CreateWebhook" | "UpdateWebhook"
                if body["triggers"].as_array().is_some_and(Vec::is_empty) =>
            {
                body["triggers"] = json!(["conversation:message"]);
            }
            // The only channel with message references is Apple's.
            "DownloadMessageRef" if body.get("apple").is_none() => {
                body["apple"] = json!({"interactiveDataRef":
                    {"url":"https://example.com/ref","bid":"b","key":"k","signature":"s","owner":"o"}});
            }
            "GetToken" => {
                let (_, v) = self.api.call("GET", "/oauth/authorize?client_id=zd-emulator-bridge&response_type=code&redirect_uri=http://localhost/cb&state=s", None, None).await;
                let code = v.as_str().unwrap().split("code=").nth(1).unwrap();
                let code = code.split('&').next().unwrap();
                body["code"] = json!(code);
                body["client_id"] = json!(sun::BRIDGE_CLIENT_ID);
                body["client_secret"] = json!(sun::BRIDGE_CLIENT_SECRET);
                body["grant_type"] = json!("authorization_code");
            }
            _ => {}
        }
    }
}

/// Every request example and the minimal schema body of every operation with a JSON body.
fn generated(spec: &schema::Spec) -> Vec<(String, String, String, String, Value)> {
    let mut out = Vec::new();
    for (template, methods) in spec.doc["paths"].as_object().unwrap() {
        for (method, op) in methods.as_object().unwrap() {
            let media = &op["requestBody"]["content"]["application/json"];
            if !media.is_object() {
                continue;
            }
            let id = op["operationId"].as_str().unwrap().to_owned();
            let mut bodies = vec![("schema".to_owned(), minimal(spec, &media["schema"]))];
            if !media["example"].is_null() {
                bodies.push(("example".into(), media["example"].clone()));
            }
            for (name, ex) in media["examples"].as_object().into_iter().flatten() {
                let ex = match ex["$ref"].as_str() {
                    Some(r) => &spec.doc["components"]["examples"][r.rsplit('/').next().unwrap()],
                    None => ex,
                };
                bodies.push((format!("example {name}"), ex["value"].clone()));
            }
            for (what, body) in bodies {
                out.push((
                    id.clone(),
                    method.to_uppercase(),
                    template.clone(),
                    what,
                    body,
                ));
            }
        }
    }
    out
}

#[tokio::test]
async fn generated_valid_requests_succeed_and_answer_per_the_spec() {
    let Some(spec) = schema::Spec::load() else {
        return;
    };
    let cases = generated(&spec);
    let ops: std::collections::BTreeSet<_> = cases.iter().map(|c| c.0.clone()).collect();
    assert!(ops.len() >= 28, "{ops:?}");
    let mut checked = 0;
    let mut failures = Vec::new();
    for (op, method, template, what, mut body) in cases {
        let f = fixture().await;
        f.bind(&op, &mut body);
        f.prepare(&op, &mut body).await;
        let path = f.path(&op, &template);
        let request = &spec.doc["paths"][&template][method.to_lowercase()]["requestBody"]["content"]
            ["application/json"]["schema"];
        // Some request unions have branches loose enough that the spec's own examples match
        // several of them: for bodies, matching at least one branch is what counts.
        let mut invalid = spec.errors(request, &body, "$");
        invalid.retain(|e| !e.contains(" of oneOf") || e.ends_with("matches 0 of oneOf"));
        if !invalid.is_empty() {
            failures.push(format!(
                "{op} ({what}): generated body is invalid: {invalid:?}"
            ));
        }
        // The account key where the spec allows it; the app key where it does not (webhooks).
        let auth = match op.as_str() {
            "GetToken" => None,
            _ if spec.scopes(&op).iter().any(|s| s == "account") => Some(f.acct.as_str()),
            _ => Some(f.app_key.as_str()),
        };
        let (st, v) = f.api.call(&method, &path, auth, Some(body.clone())).await;
        if !(200..300).contains(&st) {
            failures.push(format!(
                "{op} ({what}) {method} {path} with {body}: {st} {v}"
            ));
            continue;
        }
        let schema = spec.response_schema(&op, st).unwrap_or(json!({}));
        let errors = spec.errors(&schema, &v, "$");
        if !errors.is_empty() {
            failures.push(format!("{op} ({what}): {errors:?}\n{v}"));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!(
        "{checked} generated valid requests over {} operations",
        ops.len()
    );
}

mod randomized {
    use proptest::prelude::*;

    use super::*;

    /// Bodies of `CreateUser` and `PostMessage` with random values inside the schema's bounds.
    fn bodies() -> impl Strategy<Value = (Value, Value)> {
        let name = "[A-Za-zÀ-ÿ ]{1,128}";
        let text = "[ -~é😀\n]{1,400}";
        (name, "[a-z0-9_-]{1,64}", text, any::<bool>()).prop_map(|(given, ext, text, meta)| {
            let mut user = json!({"externalId": ext, "profile": {"givenName": given}});
            if meta {
                user["metadata"] = json!({ "lang": "fr", "n": 3 });
            }
            let msg = json!({"author":{"type":"business","displayName": "Bot"},
                "content":{"type":"text","text": text}});
            (user, msg)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

        #[test]
        fn random_valid_bodies_succeed_and_answer_per_the_spec((user, msg) in bodies()) {
            let Some(spec) = spec() else { return Ok(()) };
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let f = fixture().await;
                let a = Some(f.acct.as_str());
                for (op, path, body) in [
                    ("CreateUser", format!("{P}/users"), user),
                    ("PostMessage", format!("{P}/conversations/{}/messages", f.conv), msg),
                ] {
                    let (st, v) = f.api.call("POST", &path, a, Some(body.clone())).await;
                    assert_eq!(st, 201, "{op} with {body}: {v}");
                    let schema = spec.response_schema(op, st).unwrap();
                    let errors = spec.errors(&schema, &v, "$");
                    assert!(errors.is_empty(), "{op}: {errors:?}\n{v}");
                }
            });
        }
    }

    fn spec() -> Option<&'static schema::Spec> {
        static SPEC: std::sync::OnceLock<Option<schema::Spec>> = std::sync::OnceLock::new();
        SPEC.get_or_init(schema::Spec::load).as_ref()
    }
}
