//! `zd agent ...` against an in-process emulator given with `--emulator`.

use zd_emulator::Emulator;
use zd_emulator::state::{Arrival, Sender};

use crate::support::{
    HANG_GUARD, Running, json_lines, output, send_signal, stderr, usage_error_without_connecting,
    zd, zd_process,
};

async fn emulator() -> Emulator {
    Emulator::builder().start().await.unwrap()
}

/// An emulator whose bot (agent 0) is online, so the bot's session sees unserved chats.
async fn emulator_with_the_bot_online() -> Emulator {
    let emu = emulator().await;
    let bot = emu.account().agents[0].id.clone();
    emu.control()
        .set_agent_status(&bot, zd_emulator::state::AgentStatus::Online)
        .unwrap();
    emu
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

/// A gateway that refuses the token at the HTTP level (401 with no GraphQL errors) refuses the
/// credentials as UNAUTHORIZED does: exit 4, with the answer shown and the token never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_401_from_start_agent_session_exits_4_with_the_answer() {
    let base = crate::support::fake_service(|_| {
        (
            401,
            r#"{"error":"invalid_token","token":"t0k3n-s3cr3t"}"#.to_owned(),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = zd(dir.path());
    cmd.args(["agent", "departments", "--token", "t0k3n-s3cr3t"])
        .args(["--chat-url", &format!("{base}/graphql/request")]);
    let out = output(cmd).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("invalid_token"), "{err}");
    assert!(!err.contains("t0k3n-s3cr3t"), "{err}");
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

/// Spawns `zd agent ARGS` on the emulator at `base` and waits until it says it is connected.
fn spawn_connected(dir: &std::path::Path, base: &str, args: &[&str]) -> Running {
    let mut cmd = zd_process(dir);
    cmd.args(["--emulator", base, "agent"]).args(args);
    let mut zd = Running::spawn(cmd);
    zd.stderr_until("connected to the emulator");
    zd
}

/// [`spawn_connected`] from a test on the emulator's runtime.
async fn connected(dir: &std::path::Path, base: &str, args: &[&str]) -> Running {
    let (dir, base) = (dir.to_owned(), base.to_owned());
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        spawn_connected(&dir, &base, &args)
    })
    .await
    .unwrap()
}

/// Waits for zd to exit, from a test on the emulator's runtime.
async fn finish(zd: Running) -> std::process::Output {
    tokio::task::spawn_blocking(move || zd.finish())
        .await
        .unwrap()
}

/// The sessions the emulator has seen for the bot (agent 0), ended ones included.
fn bot_sessions(emu: &Emulator) -> Vec<zd_emulator::chat::SessionReport> {
    let bot = emu.account().agents[0].id.clone();
    emu.control()
        .counters()
        .sessions
        .into_iter()
        .filter(|s| s.agent_id == bot)
        .collect()
}

/// Checks that zd stopped every session it started (stopAgentSession), so the bot is not left
/// attached to the service. The emulator ends a session before it answers the stop, so this
/// holds once zd has exited; whether the socket is already seen closed would be a race.
fn assert_sessions_stopped(emu: &Emulator) {
    let sessions = bot_sessions(emu);
    assert!(!sessions.is_empty());
    for s in &sessions {
        assert_eq!(
            s.ended.as_deref(),
            Some("agent session stopped"),
            "{sessions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_answers_a_visitor() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let zd = connected(dir.path(), emu.base_url(), &["echo", "--count", "1"]).await;
    let visitor = emu.control().visitor_arrive(Arrival::default()).unwrap();
    emu.control()
        .visitor_message(&visitor.channel_id, "ping?")
        .unwrap();
    let out = finish(zd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["content"], "ping?");
    let transcript = emu.control().transcript(&visitor.channel_id).unwrap();
    assert!(
        transcript.entries.iter().any(|e| e.text == "echo: ping?"),
        "{transcript:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_messages_as_json() {
    let emu = emulator_with_the_bot_online().await;
    let dir = tempfile::tempdir().unwrap();
    let zd = connected(dir.path(), emu.base_url(), &["tail", "--count", "1"]).await;
    let visitor = emu.control().visitor_arrive(Arrival::default()).unwrap();
    emu.control()
        .visitor_message(&visitor.channel_id, "is anyone there")
        .unwrap();
    let out = finish(zd).await;
    assert!(out.status.success(), "{}", stderr(&out));
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
        cmd.args(args);
        let out = output(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("--count"), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_into_a_closed_pipe_stops_its_session_and_exits_7() {
    let emu = emulator_with_the_bot_online().await;
    let dir = tempfile::tempdir().unwrap();
    let mut zd = connected(dir.path(), emu.base_url(), &["tail"]).await;
    let visitor = emu.control().visitor_arrive(Arrival::default()).unwrap();
    emu.control()
        .visitor_message(&visitor.channel_id, "one")
        .unwrap();
    // As `zd agent tail | head -n1`: one line read, then the pipe is closed.
    let (zd, line) = tokio::task::spawn_blocking(move || {
        let line = zd.stdout_line();
        zd.close_stdout();
        (zd, line)
    })
    .await
    .unwrap();
    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["content"], "one");
    // The next line has nowhere to go.
    emu.control()
        .visitor_message(&visitor.channel_id, "two")
        .unwrap();
    let out = finish(zd).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(err.contains("cannot write to stdout"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_sessions_stopped(&emu);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_sigterm_and_sighup_stop_the_session_of_echo_and_tail() {
    // Ctrl-C at a terminal, SIGTERM from `docker stop` or a service manager, SIGHUP when the
    // terminal closes: each must stop the session, or the bot stays online.
    for signal in ["-INT", "-TERM", "-HUP"] {
        for command in ["echo", "tail"] {
            let emu = emulator().await;
            let dir = tempfile::tempdir().unwrap();
            let zd = connected(dir.path(), emu.base_url(), &[command]).await;
            let live = bot_sessions(&emu);
            assert!(
                live.iter().any(|s| s.ended.is_none() && s.connected),
                "{command}: {live:?}"
            );
            send_signal(zd.pid(), signal);
            let out = finish(zd).await;
            assert!(out.status.success(), "{command} {signal}: {out:?}");
            assert_sessions_stopped(&emu);
        }
    }
}

/// `nohup zd agent echo &`: SIGHUP was left ignored so that closing the terminal leaves the
/// bot running. zd must not listen for it (which would replace the ignoring with a handler and
/// stop the bot), while SIGTERM still stops it as ever.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighup_left_ignored_does_not_stop_echo_but_sigterm_does() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let (home, base) = (dir.path().to_owned(), emu.base_url().to_owned());
    let zd = tokio::task::spawn_blocking(move || {
        let mut cmd = crate::support::zd_process_ignoring(&home, "HUP");
        cmd.args(["--emulator", &base, "agent", "echo"]);
        let mut zd = Running::spawn(cmd);
        zd.stderr_until("connected to the emulator");
        zd
    })
    .await
    .unwrap();
    send_signal(zd.pid(), "-HUP");
    // Still answering after the hangup: echo prints a message once it has answered it, and a
    // zd that stopped ends its stdout instead. Two round trips: a stop the hangup started
    // could still lose the race to the first answer, not to the second, sent after it.
    let visitor = emu.control().visitor_arrive(Arrival::default()).unwrap();
    let mut zd = zd;
    for text in ["still there?", "and now?"] {
        emu.control()
            .visitor_message(&visitor.channel_id, text)
            .unwrap();
        let line;
        (zd, line) = tokio::task::spawn_blocking(move || {
            let mut zd = zd;
            let line = zd.stdout_line();
            (zd, line)
        })
        .await
        .unwrap();
        let line: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(line["content"], text);
        let transcript = emu.control().transcript(&visitor.channel_id).unwrap();
        let echo = format!("echo: {text}");
        assert!(
            transcript.entries.iter().any(|e| e.text == echo),
            "{transcript:?}"
        );
    }
    // The session the hangup would have stopped is still the live one.
    let sessions = bot_sessions(&emu);
    assert!(sessions.iter().any(|s| s.ended.is_none()), "{sessions:?}");
    send_signal(zd.pid(), "-TERM");
    let out = finish(zd).await;
    assert!(out.status.success(), "{out:?}");
    assert_sessions_stopped(&emu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_goes_on_after_a_failed_reply_or_a_subscription_error() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let zd = connected(dir.path(), emu.base_url(), &["echo", "--count", "1"]).await;
    let session = bot_sessions(&emu)
        .into_iter()
        .find(|s| s.ended.is_none())
        .unwrap()
        .session_id;
    let visitor = emu.control().visitor_arrive(Arrival::default()).unwrap();
    let channel = visitor.channel_id.as_str();
    // The next DATA frame (this message) becomes a DATA error on the subscription...
    emu.control()
        .fault_fail_data(&session, 1, "GRAPHQL_EXEC_ERROR")
        .unwrap();
    emu.control().visitor_message(channel, "lost").unwrap();
    // ...and the next request (the reply to this one) is refused. The bot makes no other
    // request in between, so which request fails does not depend on timing.
    emu.control()
        .fault_fail(&session, 1, "GRAPHQL_EXEC_ERROR")
        .unwrap();
    emu.control().visitor_message(channel, "first").unwrap();
    emu.control().visitor_message(channel, "second").unwrap();
    let out = finish(zd).await;
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("cannot answer message"), "{err}");
    assert!(
        err.contains("the message subscription reported an error"),
        "{err}"
    );
    assert!(err.contains("GRAPHQL_EXEC_ERROR"), "{err}");
    let answered: Vec<_> = json_lines(&out)
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(answered, ["second"]);
    let transcript = emu.control().transcript(channel).unwrap();
    let echoes: Vec<&str> = transcript
        .entries
        .iter()
        .filter(|e| e.text.starts_with("echo: "))
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(echoes, ["echo: second"], "{transcript:?}");
    assert_sessions_stopped(&emu);
}

/// `zd agent tail 2>&1 | head -n3` closes stderr too: what zd says there is lost, but the
/// command goes on and still stops its session (a panic on the closed stderr skipped both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_with_a_closed_stderr_works_and_stops_its_session() {
    use std::io::Read as _;
    let emu = emulator_with_the_bot_online().await;
    let dir = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    /// Kills and reaps zd if the test fails half-way.
    struct Reaped(std::process::Child);
    impl Drop for Reaped {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Reaped(
        zd_process(dir.path())
            .arg("--emulator")
            .arg(emu.base_url())
            .args(["agent", "tail", "--count", "1"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(writer)
            .spawn()
            .unwrap(),
    );
    // zd cannot say when it is subscribed: a visitor writes until it has heard one message.
    let visitor = emu.control().visitor_arrive(Arrival::default()).unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < HANG_GUARD, "zd did not finish");
        emu.control()
            .visitor_message(&visitor.channel_id, "hello")
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let mut out = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "{status:?}");
    let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(line["content"], "hello");
    assert_sessions_stopped(&emu);
}
