//! `zd sunshine ...` against the emulator's Sunshine Conversations service.

use zd_emulator::Emulator;

use crate::support::{json_lines, output, stderr, usage_error_without_connecting, zd};

async fn run(base: &str, dir: &std::path::Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut cmd = zd(dir);
    cmd.args(["--emulator", base, "sunshine"]).args(args);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "zd sunshine {args:?}: {}",
        stderr(&out)
    );
    json_lines(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_users_conversations_messages_and_export() {
    let emu = Emulator::builder().start().await.unwrap();
    let base = emu.base_url().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let apps = run(&base, d, &["apps", "list", "--all"]).await;
    assert!(!apps.is_empty());
    let app_id = apps[0]["id"].as_str().unwrap().to_owned();
    let app = run(&base, d, &["apps", "get", &app_id]).await;
    assert_eq!(app[0]["app"]["id"], app_id.as_str());

    let user = run(
        &base,
        d,
        &["users", "create", "zd-cli-user", "--given-name", "Ada"],
    )
    .await;
    let user_id = user[0]["user"]["id"].as_str().unwrap().to_owned();
    let fetched = run(&base, d, &["users", "get", "zd-cli-user"]).await;
    assert_eq!(fetched[0]["user"]["id"], user_id.as_str());
    // Users are listed by email identity (a web user who signed in with one).
    let signed_in = end_user_with_email(&base, &app_id, "ada@example.org").await;
    let found = run(&base, d, &["users", "list", "--email", "ada@example.org"]).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"], signed_in.as_str());
    let none = run(
        &base,
        d,
        &["users", "list", "--email", "nobody@example.org"],
    )
    .await;
    assert!(none.is_empty(), "{none:?}");

    let conv = run(&base, d, &["conversations", "create", "--user", &user_id]).await;
    let conv_id = conv[0]["conversation"]["id"].as_str().unwrap().to_owned();
    let listed = run(
        &base,
        d,
        &["conversations", "list", "--user", &user_id, "--all"],
    )
    .await;
    assert!(listed.iter().any(|c| c["id"] == conv_id.as_str()));

    // A few through the command, the rest (past one page of 100) straight through the client.
    for i in 0..5 {
        run(
            &base,
            d,
            &["messages", "create", &conv_id, &format!("message {i}")],
        )
        .await;
    }
    post_messages(&emu, &conv_id, 5..130).await;
    // Message pages hold 100, so `--all` follows the cursor back once.
    let all = run(&base, d, &["messages", "list", &conv_id, "--all"]).await;
    let texts: Vec<&str> = all
        .iter()
        .filter_map(|m| m["content"]["text"].as_str())
        .collect();
    assert_eq!(texts.len(), 130, "{texts:?}");
    assert_eq!(
        (texts[0], texts[129]),
        ("message 0", "message 129"),
        "oldest first"
    );
    let newest = run(&base, d, &["messages", "list", &conv_id]).await;
    let texts: Vec<&str> = newest
        .iter()
        .filter_map(|m| m["content"]["text"].as_str())
        .collect();
    assert_eq!(texts.len(), 100);
    assert_eq!((texts[0], texts[99]), ("message 30", "message 129"));

    let file = d.join("conv.jsonl");
    run(
        &base,
        d,
        &["messages", "export", &conv_id, "-o", file.to_str().unwrap()],
    )
    .await;
    let exported = std::fs::read_to_string(&file).unwrap();
    assert_eq!(exported.lines().count(), 130);
    for line in exported.lines() {
        let m: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(m["id"].is_string());
    }
}

/// Posts `message {i}` for each `i` as the business, through zd-sunshine.
/// A web user of `app` whose identity is `email`, through the emulator's control API; its id.
async fn end_user_with_email(base: &str, app: &str, email: &str) -> String {
    use http_body_util::{BodyExt as _, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let body = serde_json::json!({ "identities": [{ "type": "email", "value": email }] });
    let request = hyper::Request::post(format!("{base}/_emulator/sunshine/apps/{app}/end-users"))
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(body.to_string())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 201);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let made: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    made["user"]["id"].as_str().unwrap().to_owned()
}

async fn post_messages(emu: &Emulator, conversation: &str, range: std::ops::Range<usize>) {
    use zd_auth::sunshine::{ApiKey, BasicAuth};
    use zd_sunshine::{Client, Region, models, operations};
    let acct = emu.account().sunshine;
    let key = ApiKey::new(acct.key_id.clone(), acct.key_secret.clone()).unwrap();
    let client = Client::new(
        Region::Custom(emu.base_url().to_owned()),
        BasicAuth::new(&key),
    )
    .unwrap();
    for i in range {
        let text = models::MessagePost::business_text(format!("message {i}"));
        operations::PostMessage::new(&acct.app_id, conversation, text)
            .send(&client)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sunshine_url_without_a_key_is_a_usage_error() {
    // Whatever listens there must not receive the emulator's keys.
    usage_error_without_connecting(
        "",
        &["sunshine", "apps", "--sunshine-url", "{url}", "list"],
        &["--sunshine-url", "SUNSHINE_KEY_ID"],
    )
    .await;
}
