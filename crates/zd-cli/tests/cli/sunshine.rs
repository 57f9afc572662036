//! `zd sunshine ...` against the emulator's Sunshine Conversations service.

use zd_emulator::Emulator;

use crate::support::{json_lines, output, stderr, zd};

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

    let conv = run(&base, d, &["conversations", "create", "--user", &user_id]).await;
    let conv_id = conv[0]["conversation"]["id"].as_str().unwrap().to_owned();
    let listed = run(
        &base,
        d,
        &["conversations", "list", "--user", &user_id, "--all"],
    )
    .await;
    assert!(listed.iter().any(|c| c["id"] == conv_id.as_str()));

    for i in 0..30 {
        run(
            &base,
            d,
            &["messages", "create", &conv_id, &format!("message {i}")],
        )
        .await;
    }
    // Page size 7 forces the cursor to be followed.
    let all = run(
        &base,
        d,
        &["messages", "list", &conv_id, "--all", "--page-size", "7"],
    )
    .await;
    let texts: Vec<&str> = all
        .iter()
        .filter_map(|m| m["content"]["text"].as_str())
        .collect();
    assert_eq!(texts.len(), 30, "{texts:?}");
    assert_eq!(
        (texts[0], texts[29]),
        ("message 0", "message 29"),
        "oldest first"
    );
    let first_page = run(
        &base,
        d,
        &["messages", "list", &conv_id, "--page-size", "7"],
    )
    .await;
    assert_eq!(first_page.len(), 7);

    let file = d.join("conv.jsonl");
    run(
        &base,
        d,
        &["messages", "export", &conv_id, "-o", file.to_str().unwrap()],
    )
    .await;
    let exported = std::fs::read_to_string(&file).unwrap();
    assert_eq!(exported.lines().count(), 30);
    for line in exported.lines() {
        let m: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(m["id"].is_string());
    }
}
