//! The echo drivers against a real emulator, ours in both of its styles and the hand-written
//! floor bot: every visitor message gets its echo acknowledged, and the result line says so.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;
use zd_emulator::{AccountConfig, Emulator};

const BIN: &str = env!("CARGO_BIN_EXE_zd-bench");
const VISITORS: u64 = 3;
const MESSAGES: u64 = 4;

/// Runs `zd-bench <driver...>` (a subcommand and its extra flags) until it is ready, drives
/// the visitors, and returns its result line.
fn echo_run(graphql_url: &str, base: &str, driver: &[&str]) -> Value {
    let expect = (VISITORS * MESSAGES).to_string();
    let mut bot = Command::new(BIN)
        .args(driver)
        .args(["--graphql-url", graphql_url, "--token", "demo-bot-token"])
        .args(["--expect", &expect, "--timeout-s", "60"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the bot starts");
    let mut lines = BufReader::new(bot.stdout.take().expect("piped stdout")).lines();
    let first = lines.next().expect("a line").expect("readable");
    assert!(first.contains("\"ready\""), "first line: {first}");

    let visitors = Command::new(BIN)
        .args(["visitors", "--base", base])
        .args(["--visitors", &VISITORS.to_string()])
        .args(["--messages", &MESSAGES.to_string(), "--rate", "50"])
        .output()
        .expect("zd-bench visitors runs");
    assert!(
        visitors.status.success(),
        "visitors: {}",
        String::from_utf8_lossy(&visitors.stderr)
    );

    let done = lines.next().expect("a result line").expect("readable");
    assert!(bot.wait().expect("bot exits").success());
    serde_json::from_str(&done).expect("the result line is JSON")
}

fn assert_all_echoed(done: &Value) {
    let phase = &done["phases"][0];
    assert_eq!(phase["name"], "echo");
    assert_eq!(phase["ops"], VISITORS * MESSAGES, "{done}");
    assert_eq!(phase["errors"], 0, "{done}");
    assert!(
        phase["p99_us"].as_f64().is_some_and(|p99| p99 > 0.0),
        "{done}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_visitor_message_is_echoed_by_every_bot() {
    let emulator = Emulator::builder()
        .account(AccountConfig::demo())
        .port(0)
        .start()
        .await
        .expect("emulator starts");
    let graphql_url = emulator.graphql_url();
    let base = emulator.base_url().to_owned();
    for driver in [&["echo"][..], &["echo", "--in-flight"], &["echo-floor"]] {
        // Each bot meets a fresh account, as in the harness.
        emulator.control().reset();
        let (url, base) = (graphql_url.clone(), base.clone());
        let done = tokio::task::spawn_blocking(move || echo_run(&url, &base, driver))
            .await
            .expect("the run finishes");
        assert_all_echoed(&done);
    }
}
