//! `zd emulator`: serves, prints the account, and agents can use it.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

#[test]
fn serves_and_prints_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("zd"))
        .args(["emulator", "--port", "0"])
        .env("XDG_CONFIG_HOME", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // The account JSON is pretty-printed: read until the closing brace at column 0.
    let mut text = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let end = line == "}";
        text.push_str(&line);
        text.push('\n');
        if end {
            break;
        }
    }
    let account: serde_json::Value = serde_json::from_str(&text).unwrap();
    let graphql = account["graphql_url"].as_str().unwrap().to_owned();
    assert!(graphql.starts_with("http://127.0.0.1:") && graphql.ends_with("/graphql/request"));
    assert_eq!(account["agents"].as_array().unwrap().len(), 3);
    let base = graphql.trim_end_matches("/graphql/request").to_owned();
    // An agent command against the running emulator.
    let out = Command::new(assert_cmd::cargo::cargo_bin("zd"))
        .args(["--emulator", &base, "agent", "departments"])
        .env("XDG_CONFIG_HOME", dir.path())
        .env_remove("ZENDESK_CHAT_TOKEN")
        .output()
        .unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names = String::new();
    out.stdout.as_slice().read_to_string(&mut names).unwrap();
    assert!(
        names.contains("Support") && names.contains("Sales"),
        "{names}"
    );
}

#[test]
fn bad_account_file_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("account.toml");
    std::fs::write(&file, "agents = []\n").unwrap();
    assert_cmd::Command::cargo_bin("zd")
        .unwrap()
        .args(["emulator", "--port", "0", "--config"])
        .arg(&file)
        .env("XDG_CONFIG_HOME", dir.path())
        .assert()
        .code(3)
        .stderr(predicates::str::contains("cannot use the account file"));
}

#[test]
fn realtime_budget_must_be_a_positive_number_or_off() {
    assert_cmd::Command::cargo_bin("zd")
        .unwrap()
        .args([
            "emulator",
            "--port",
            "0",
            "--realtime-requests-per-minute",
            "0",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "expected a positive number or `off`, got `0`",
        ));
}
