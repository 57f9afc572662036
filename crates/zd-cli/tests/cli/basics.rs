//! Help, completions, usage errors, config errors and exit codes.

use predicates::str::contains;

use crate::support::{write_config, zd};

#[test]
fn help_lists_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = zd(dir.path()).arg("--help").assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for command in [
        "demo",
        "emulator",
        "agent",
        "metrics",
        "sunshine",
        "auth",
        "completions",
    ] {
        assert!(
            text.contains(command),
            "{command} missing from --help:\n{text}"
        );
    }
    zd(dir.path())
        .args(["agent", "--help"])
        .assert()
        .success()
        .stdout(contains("tail"))
        .stdout(contains("departments"));
    zd(dir.path())
        .args(["demo", "--help"])
        .assert()
        .success()
        .stdout(contains("--faults"))
        .stdout(contains("--seed"));
}

#[test]
fn completions_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        zd(dir.path())
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(contains("demo"));
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    zd(dir.path()).arg("nope").assert().code(2);
    zd(dir.path())
        .args(["metrics", "get", "--window", "45"])
        .assert()
        .code(2)
        .stderr(contains("30 or 60"));
}

#[test]
fn config_errors_exit_3_with_cause() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(dir.path(), "[profiles.work]\nchat_token = \"t\"\n");
    zd(dir.path())
        .args(["--profile", "home", "agent", "agents"])
        .assert()
        .code(3)
        .stderr(contains("no profile \"home\""))
        .stderr(contains("work"));
    std::fs::write(&file, "[profiles.work\n").unwrap();
    zd(dir.path())
        .args(["agent", "agents"])
        .assert()
        .code(3)
        .stderr(contains("invalid config file"))
        .stderr(contains("caused by:"));
    zd(dir.path())
        .args(["--config-file", "/nonexistent/zd.toml", "agent", "agents"])
        .assert()
        .code(3)
        .stderr(contains("cannot read /nonexistent/zd.toml"));
}

#[test]
fn unreachable_service_exits_5() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: bind, take the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    zd(dir.path())
        .args([
            "agent",
            "agents",
            "--token",
            "t",
            "--chat-url",
            &format!("http://127.0.0.1:{port}/graphql/request"),
        ])
        .assert()
        .code(5)
        .stderr(contains("cannot start an agent session"))
        .stderr(contains("caused by:"));
}
