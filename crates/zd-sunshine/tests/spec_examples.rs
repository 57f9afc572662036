//! Every example in the official spec decodes into our models and encodes back without losing
//! a field. The spec is read from `../shared/reference/sunshine/openapi.json` at test time.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::{Value, json};
use zd_sunshine::models::{Content, WebhookEnvelope, WebhookEvent};
use zd_sunshine::spec_index;

fn spec() -> Option<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/sunshine/openapi.json");
    match std::fs::read(&path) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).expect("spec is JSON")),
        Err(e) => {
            println!(
                "SKIPPED: the Sunshine spec is not at {} ({e}); spec-example checks did not run",
                path.display()
            );
            None
        }
    }
}

/// Drops `null` members: `{"a": null}` and `{}` mean the same to the API and our `Option`s.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// The first path where `a` and `b` differ.
fn diff(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => {
                        if let Some(d) = diff(v, w, &format!("{path}.{k}")) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{path}.{k} lost")),
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| format!("{path}.{k} added"))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| diff(v, w, &format!("{path}[{i}]"))),
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => None,
        _ if a == b => None,
        _ => Some(format!("{path}: {a} became {b}")),
    }
}

/// The example values under a media object: `example` and each of `examples` (following refs).
fn media_examples(doc: &Value, media: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Some(e) = media.get("example") {
        out.push(("example".to_owned(), e.clone()));
    }
    if let Some(map) = media.get("examples").and_then(Value::as_object) {
        for (name, ex) in map {
            let ex = match ex.get("$ref").and_then(Value::as_str) {
                Some(r) => doc
                    .pointer(r.trim_start_matches('#'))
                    .cloned()
                    .unwrap_or(Value::Null),
                None => ex.clone(),
            };
            if let Some(v) = ex.get("value") {
                out.push((name.clone(), v.clone()));
            }
        }
    }
    out
}

/// Differences that are typos in the spec's examples, not facts about the wire.
const SPEC_TYPOS: &[&str] = &[
    // The `list` example's first message has a key spelled `text"` (with a quote).
    "PostMessage 201 example list: $.messages[0].content.text\" lost",
];

fn check(
    what: &str,
    original: &Value,
    result: Option<Result<Value, serde_json::Error>>,
    failures: &mut Vec<String>,
) -> bool {
    match result {
        None => false,
        Some(Err(e)) => {
            failures.push(format!("{what}: does not decode: {e}"));
            true
        }
        Some(Ok(back)) => {
            if let Some(d) = diff(&normalize(original), &normalize(&back), "$") {
                let line = format!("{what}: {d}");
                if !SPEC_TYPOS.contains(&line.as_str()) {
                    failures.push(line);
                }
            }
            true
        }
    }
}

/// A round trip cannot tell a typed arm from the `Unknown` catch-all (both encode back the
/// same JSON), so look at the decoded events: one whose `type` we know must not be `Unknown`.
fn known_tags_stay_typed(what: &str, ex: &Value, failures: &mut Vec<String>) {
    let Ok(envelope) = serde_json::from_value::<WebhookEnvelope>(ex.clone()) else {
        return; // reported by the round trip
    };
    for (i, event) in envelope.events.unwrap_or_default().iter().enumerate() {
        let raw = ex["events"][i]["type"].as_str().unwrap_or_default();
        if WebhookEvent::TAGS.contains(&raw) && event.is_unknown() {
            failures.push(format!("{what}: events[{i}] type {raw} decoded as Unknown"));
        }
        if !event.is_unknown() {
            assert_eq!(event.type_name(), raw, "{what}: events[{i}]");
        }
    }
}

#[test]
fn a_known_type_with_a_bad_payload_is_an_error_not_unknown() {
    let event = json!({
        "id": "e1",
        "type": "conversation:referral",
        "payload": {"user": {"id": "u1"}, "referral": {"code": 7}},
    });
    let err = serde_json::from_value::<WebhookEvent>(event).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("conversation:referral"), "{msg}");
    assert!(msg.contains("payload.referral.code"), "{msg}");

    let content = json!({"type": "text", "text": 42});
    let msg = serde_json::from_value::<Content>(content)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("type `text`: at text"), "{msg}");
}

#[test]
fn only_an_unknown_type_lands_in_unknown() {
    let raw = json!({"id": "e2", "type": "conversation:teleport", "payload": {"x": 1}});
    let event: WebhookEvent = serde_json::from_value(raw.clone()).unwrap();
    assert!(event.is_unknown());
    assert_eq!(event.type_name(), "conversation:teleport");
    assert_eq!(serde_json::to_value(&event).unwrap(), raw);

    let text: Content = serde_json::from_value(json!({"type": "text", "text": "hi"})).unwrap();
    assert!(!text.is_unknown());
    assert!(Content::TAGS.contains(&text.type_name()));
    assert_eq!(
        serde_json::to_value(&text).unwrap(),
        json!({"type": "text", "text": "hi"})
    );
}

#[test]
fn every_spec_example_round_trips() {
    let Some(doc) = spec() else { return };
    let mut failures = Vec::new();
    let mut checked = 0;

    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        if let Some(ex) = schema.get("example") {
            assert!(
                check(
                    &format!("schema {name}"),
                    ex,
                    spec_index::schema(name, ex.clone()),
                    &mut failures
                ),
                "no model for schema {name}"
            );
            checked += 1;
        }
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            if let Some(media) = op.pointer("/requestBody/content/application~1json") {
                for (ex_name, ex) in media_examples(&doc, media) {
                    let what = format!("{id} ({method} {path}) request example {ex_name}");
                    assert!(
                        check(
                            &what,
                            &ex,
                            spec_index::request(id, ex.clone()),
                            &mut failures
                        ),
                        "no body model for {id}"
                    );
                    checked += 1;
                }
            }
            for (code, resp) in op["responses"].as_object().unwrap() {
                let Some(media) = resp.pointer("/content/application~1json") else {
                    continue;
                };
                for (ex_name, ex) in media_examples(&doc, media) {
                    let what = format!("{id} {code} example {ex_name}");
                    let result = if code.starts_with('2') {
                        spec_index::response(id, ex.clone())
                    } else {
                        spec_index::schema("errorResponse", ex.clone())
                    };
                    assert!(
                        check(&what, &ex, result, &mut failures),
                        "no response model for {id}"
                    );
                    checked += 1;
                }
            }
        }
    }
    if let Some(media) =
        doc.pointer("/x-webhooks/Webhook Event/post/requestBody/content/application~1json")
    {
        for (ex_name, ex) in media_examples(&doc, media) {
            check(
                &format!("webhook example {ex_name}"),
                &ex,
                Some(spec_index::webhook(ex.clone())),
                &mut failures,
            );
            known_tags_stay_typed(&format!("webhook example {ex_name}"), &ex, &mut failures);
            checked += 1;
        }
    }
    println!("checked {checked} spec examples");
    assert!(
        checked > 100,
        "expected the spec's examples, found {checked}"
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} examples failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn all_68_operations_are_generated() {
    assert_eq!(zd_sunshine::operations::ALL.len(), 68);
    let Some(doc) = spec() else { return };
    let mut n = 0;
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                assert!(
                    zd_sunshine::operations::ALL
                        .iter()
                        .any(|(o, _, _)| *o == id),
                    "{id} missing"
                );
                n += 1;
            }
        }
    }
    assert_eq!(n, 68);
}

/// Write-only fields (secrets the service takes but never returns) are optional in the types
/// responses decode into, yet still parameters of `new` for the requests that must send them.
#[test]
fn write_only_secrets_are_not_expected_back() {
    use zd_sunshine::models::{Apple, Integration, IntegrationResponse, Twitter, TwitterTier};

    for integration in [
        json!({"id": "5e4af71a81966cfff3ef6550", "type": "apple", "status": "active",
               "businessId": "b", "mspId": "m"}),
        json!({"id": "5e4af71a81966cfff3ef6551", "type": "twitter", "status": "active",
               "tier": "enterprise", "envName": "e"}),
    ] {
        let decoded: IntegrationResponse =
            serde_json::from_value(json!({ "integration": integration })).unwrap();
        assert!(
            matches!(
                decoded.integration,
                Some(Integration::Apple(_) | Integration::Twitter(_))
            ),
            "{decoded:?}"
        );
    }
    let apple = serde_json::to_value(Apple::new("s".into(), "b".into(), "m".into())).unwrap();
    assert_eq!(apple["apiSecret"], "s");
    let twitter = serde_json::to_value(Twitter::new(
        "k".into(),
        "ks".into(),
        "c".into(),
        "cs".into(),
        TwitterTier::Enterprise,
    ))
    .unwrap();
    assert_eq!(
        (&twitter["accessTokenKey"], &twitter["consumerKey"]),
        (&json!("k"), &json!("c"))
    );
}

/// The body CreateIntegration sends for `integration`.
fn create_integration_body(integration: zd_sunshine::models::Integration) -> Value {
    let request = zd_sunshine::operations::CreateIntegration::new("app", integration)
        .to_request()
        .unwrap();
    serde_json::from_slice(request.json_body().unwrap()).unwrap()
}

/// Required write-only credentials the spec also declares `nullable` (Telegram's `token`,
/// Mailgun's `apiKey`, ...) are arguments of `new` like Apple's `apiSecret`, and a create
/// request built with `new` sends every one of them: without them the API answers 400.
#[test]
fn nullable_write_only_credentials_are_arguments_of_new_and_sent() {
    use zd_sunshine::models::{
        Instagram, Integration, Mailgun, Messagebird, Messenger, Telegram, Twilio, Twitter,
        TwitterTier, Viber,
    };

    let s = |v: &str| v.to_owned();
    let cases = [
        (
            Integration::Telegram(Telegram::new(s("bot-token"))),
            json!({"type": "telegram", "token": "bot-token"}),
        ),
        (
            Integration::Viber(Viber::new(s("viber-token"))),
            json!({"type": "viber", "token": "viber-token"}),
        ),
        (
            Integration::Mailgun(Mailgun::new(
                s("key"),
                s("mg.example.com"),
                s("in@mg.example.com"),
            )),
            json!({"type": "mailgun", "apiKey": "key", "domain": "mg.example.com",
                   "incomingAddress": "in@mg.example.com"}),
        ),
        (
            Integration::Instagram(Instagram::new(s("app"), s("secret"), s("page-token"))),
            json!({"type": "instagram", "appId": "app", "appSecret": "secret",
                   "pageAccessToken": "page-token"}),
        ),
        // Messenger's `pageAccessToken` is required but neither write-only nor a `new`
        // argument: nullable, it is sent as `null` until set.
        (
            Integration::Messenger(Messenger::new(s("app"), s("secret"))),
            json!({"type": "messenger", "appId": "app", "appSecret": "secret",
                   "pageAccessToken": null}),
        ),
        (
            Integration::Messenger(Messenger {
                page_access_token: Some(s("page-token")),
                ..Messenger::new(s("app"), s("secret"))
            }),
            json!({"type": "messenger", "appId": "app", "appSecret": "secret",
                   "pageAccessToken": "page-token"}),
        ),
        (
            Integration::Messagebird(Messagebird::new(s("access"), s("+15550100"), s("signing"))),
            json!({"type": "messagebird", "accessKey": "access", "originator": "+15550100",
                   "signingKey": "signing"}),
        ),
        (
            Integration::Twilio(Twilio::new(s("AC1"), s("auth"))),
            json!({"type": "twilio", "accountSid": "AC1", "authToken": "auth"}),
        ),
        (
            Integration::Twitter(Twitter::new(
                s("k"),
                s("ks"),
                s("c"),
                s("cs"),
                TwitterTier::Enterprise,
            )),
            json!({"type": "twitter", "accessTokenKey": "k", "accessTokenSecret": "ks",
                   "consumerKey": "c", "consumerSecret": "cs", "tier": "enterprise"}),
        ),
    ];
    for (integration, expected) in cases {
        assert_eq!(create_integration_body(integration), expected);
    }
}

/// A path parameter that is empty, `.` or `..` would not name one resource once a server or
/// proxy normalises the path, so the request is refused before it is built.
#[test]
fn path_parameters_that_name_no_resource_are_refused() {
    use zd_sunshine::ErrorKind;
    use zd_sunshine::operations::{DeleteMessage, DeleteUser, GetUser};

    let refused = [
        DeleteMessage::new("app", "conv", ".").to_request(),
        DeleteUser::new("app", "..").to_request(),
        GetUser::new("app", "").to_request(),
    ];
    for result in refused {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Encode, "{err:?}");
    }
    let fine = DeleteMessage::new("app", "conv", "a.b")
        .to_request()
        .unwrap();
    assert_eq!(fine.path(), "/v2/apps/app/conversations/conv/messages/a.b");
}

/// A page is asked for after one cursor or before one: both at once is refused before
/// sending, rather than answered 400 or, by a lenient server, paged in a direction the
/// stream would then turn around.
#[test]
fn a_listing_refuses_both_page_cursors_at_once() {
    use zd_sunshine::ErrorKind;
    use zd_sunshine::operations::{ListConversations, ListMessages};

    let err = ListMessages::new("app", "conv")
        .page_after("a")
        .page_before("b")
        .to_request()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Encode, "{err:?}");
    assert!(err.to_string().contains("not both"), "{err}");
    let err = ListConversations::new("app")
        .filter_user_id("u")
        .page_after("a")
        .page_before("b")
        .to_request()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Encode, "{err:?}");
    let one = ListMessages::new("app", "conv")
        .page_before("b")
        .to_request()
        .unwrap();
    assert!(
        one.path()
            .starts_with("/v2/apps/app/conversations/conv/messages")
    );
}
