//! `zd agent ...` against an in-process emulator given with `--emulator`.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use zd_emulator::Emulator;
use zd_emulator::state::{Arrival, Sender};

use crate::support::{HANG_GUARD, json_lines, output, stderr, usage_error_without_connecting, zd};

async fn emulator() -> Emulator {
    Emulator::builder().start().await.unwrap()
}

fn agent_cmd(dir: &std::path::Path, base: &str, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = zd(dir);
    cmd.arg("--emulator").arg(base).arg("agent").args(args);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departments_agents_and_status() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let out = output(agent_cmd(dir.path(), emu.base_url(), &["departments"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let names: Vec<String> = json_lines(&out)
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["Support", "Sales"]);

    let out = output(agent_cmd(dir.path(), emu.base_url(), &["agents"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_lines(&out).len(), 3);

    let out = output(agent_cmd(dir.path(), emu.base_url(), &["status", "away"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["status"], "AWAY");
    let bot = emu.account().agents[0].raw_id.clone();
    assert_eq!(
        emu.control().state().agent(&bot).unwrap().status,
        zd_emulator::state::AgentStatus::Away
    );

    // A later command, a new session: the status is the agent's, not the session's state.
    let out = output(agent_cmd(dir.path(), emu.base_url(), &["status"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = &json_lines(&out)[0];
    assert_eq!(shown["status"], "AWAY", "{shown}");
    assert_eq!(shown["agent"], "Support Bot", "{shown}");

    emu.control()
        .state()
        .set_agent_status(&bot, zd_emulator::state::AgentStatus::Invisible)
        .unwrap();
    let out = output(agent_cmd(dir.path(), emu.base_url(), &["status"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["status"], "INVISIBLE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_exits_4() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = agent_cmd(
        dir.path(),
        emu.base_url(),
        &["agents", "--token", "not-a-token"],
    );
    cmd.env_remove("ZENDESK_CHAT_TOKEN");
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("UNAUTHORIZED"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_reaches_the_visitor() {
    let emu = emulator().await;
    let visitor = emu
        .control()
        .visitor_arrive(Arrival {
            name: Some("Ada".into()),
            ..Arrival::default()
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = output(agent_cmd(
        dir.path(),
        emu.base_url(),
        &["send", &visitor.channel_id, "hello from zd"],
    ))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(json_lines(&out)[0]["msg_id"].is_string());
    let transcript = emu.control().transcript(&visitor.channel_id).unwrap();
    assert!(
        transcript
            .entries
            .iter()
            .any(|e| e.text == "hello from zd" && matches!(e.from, Sender::Agent { .. })),
        "{transcript:?}"
    );
}

/// Spawns `zd agent <sub> --count 1` and waits until it says it is connected.
fn spawn_connected(
    dir: &std::path::Path,
    base: &str,
    sub: &str,
) -> (std::process::Child, BufReader<std::process::ChildStderr>) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("zd"))
        .args(["--emulator", base, "agent", sub, "--count", "1"])
        .env("XDG_CONFIG_HOME", dir)
        .env_remove("ZENDESK_CHAT_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "zd exited before connecting"
        );
        if line.contains("connected to the emulator") {
            break;
        }
    }
    (child, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_answers_a_visitor() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let base = emu.base_url().to_owned();
    let d = dir.path().to_owned();
    let (child, _err) = tokio::task::spawn_blocking(move || spawn_connected(&d, &base, "echo"))
        .await
        .unwrap();
    let visitor = emu.control().visitor_arrive(Arrival::default()).unwrap();
    emu.control()
        .visitor_message(&visitor.channel_id, "ping?")
        .unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success());
    assert_eq!(json_lines(&out)[0]["content"], "ping?");
    let transcript = emu.control().transcript(&visitor.channel_id).unwrap();
    assert!(
        transcript.entries.iter().any(|e| e.text == "echo: ping?"),
        "{transcript:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_messages_as_json() {
    let emu = emulator().await;
    let bot = emu.account().agents[0].id.clone();
    // Online, so the bot's session sees unserved chats.
    emu.control()
        .set_agent_status(&bot, zd_emulator::state::AgentStatus::Online)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = emu.base_url().to_owned();
    let d = dir.path().to_owned();
    let (child, _err) = tokio::task::spawn_blocking(move || spawn_connected(&d, &base, "tail"))
        .await
        .unwrap();
    let visitor = emu.control().visitor_arrive(Arrival::default()).unwrap();
    emu.control()
        .visitor_message(&visitor.channel_id, "is anyone there")
        .unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success());
    let line = &json_lines(&out)[0];
    assert_eq!(line["content"], "is anyone there");
    assert_eq!(line["from"], "visitor");
    assert_eq!(line["channel_id"], visitor.channel_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_url_without_a_token_is_a_usage_error() {
    // Whatever listens there must not receive the emulator's demo token.
    usage_error_without_connecting(
        "/graphql/request",
        &["agent", "departments", "--chat-url", "{url}"],
        &["--chat-url", "--token"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_with_a_token_of_unknown_agent_is_a_usage_error_before_any_session() {
    // A session would be one of the agent's 50 starts an hour, spent only to be told nothing.
    usage_error_without_connecting(
        "/graphql/request",
        &[
            "agent",
            "status",
            "--chat-url",
            "{url}",
            "--token",
            "some-token",
        ],
        &["zd agent agents"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_of_zero_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        ["agent", "tail", "--count", "0"],
        ["agent", "echo", "--count", "0"],
        ["metrics", "watch", "--count", "0"],
    ] {
        let mut cmd = zd(dir.path());
        cmd.args(args).timeout(HANG_GUARD);
        let out = output(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("--count"), "{args:?}: {err}");
    }
}
