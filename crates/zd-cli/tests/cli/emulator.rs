//! `zd emulator`: serves, prints the account, and agents can use it.

use crate::support::{Running, stderr, stdout, zd, zd_process};

#[test]
fn serves_and_prints_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = zd_process(dir.path());
    cmd.args(["emulator", "--port", "0"]);
    let mut emulator = Running::spawn(cmd);
    // The account JSON is pretty-printed: read until the closing brace at column 0.
    let mut text = String::new();
    loop {
        let line = emulator.stdout_line();
        text.push_str(&line);
        text.push('\n');
        if line == "}" {
            break;
        }
    }
    let account: serde_json::Value = serde_json::from_str(&text).unwrap();
    let graphql = account["graphql_url"].as_str().unwrap().to_owned();
    assert!(graphql.starts_with("http://127.0.0.1:") && graphql.ends_with("/graphql/request"));
    assert_eq!(account["agents"].as_array().unwrap().len(), 3);
    let base = graphql.trim_end_matches("/graphql/request").to_owned();
    // An agent command against the running emulator.
    let out = zd(dir.path())
        .args(["--emulator", &base, "agent", "departments"])
        .output()
        .unwrap();
    drop(emulator);
    assert!(out.status.success(), "{}", stderr(&out));
    let names = stdout(&out);
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
    zd(dir.path())
        .args(["emulator", "--port", "0", "--config"])
        .arg(&file)
        .assert()
        .code(3)
        .stderr(predicates::str::contains("cannot use the account file"));
}

#[test]
fn realtime_budget_must_be_a_positive_number_or_off() {
    let dir = tempfile::tempdir().unwrap();
    zd(dir.path())
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
