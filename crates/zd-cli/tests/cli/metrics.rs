//! `zd metrics get | watch | export` against the emulator's Real Time Chat service.

use std::io::{Read, Write};

use zd_emulator::Emulator;
use zd_emulator::state::Arrival;

use crate::support::{
    HANG_GUARD, Running, fake_service, json_lines, output, send_signal, stderr,
    usage_error_without_connecting, zd, zd_process,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_reports_the_chat_state() {
    let emu = Emulator::builder().start().await.unwrap();
    for _ in 0..3 {
        emu.control().visitor_arrive(Arrival::default()).unwrap();
    }
    let bot = emu.account().agents[0].id.clone();
    emu.control()
        .set_agent_status(&bot, zd_emulator::state::AgentStatus::Online)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = zd(dir.path());
    cmd.args(["--emulator", emu.base_url(), "metrics", "get"]);
    let out = output(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let values = &json_lines(&out)[0];
    assert_eq!(values["incoming_chats"], 3, "{values}");
    // One of the account's agents (all offline at first) is online.
    assert_eq!(values["agents_online"], 1, "{values}");
}

/// `zd metrics watch` on the emulator at `base`, running.
fn spawn_watch(dir: &std::path::Path, base: &str) -> Running {
    let mut cmd = zd_process(dir);
    cmd.args(["--emulator", base, "metrics", "watch"]);
    Running::spawn(cmd)
}

/// Reads `zd metrics watch` until the account-wide `metric` comes; gives its line.
fn watch_until(zd: &mut Running, metric: &str) -> serde_json::Value {
    loop {
        let line: serde_json::Value = serde_json::from_str(&zd.stdout_line()).unwrap();
        assert!(line["metric"].is_string(), "{line}");
        if line["metric"] == metric && line["department_id"].is_null() {
            return line;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_updates() {
    let emu = Emulator::builder().start().await.unwrap();
    emu.control().visitor_arrive(Arrival::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (base, home) = (emu.base_url().to_owned(), dir.path().to_owned());
    let incoming = tokio::task::spawn_blocking(move || {
        let mut zd = spawn_watch(&home, &base);
        watch_until(&mut zd, "incoming_chats")
    })
    .await
    .unwrap();
    assert_eq!(incoming["value"], 1, "{incoming}");
    assert!(incoming["window"].is_null(), "{incoming}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_into_a_closed_pipe_exits_7() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (base, home) = (emu.base_url().to_owned(), dir.path().to_owned());
    // As `zd metrics watch | head -n1`: one line read, then the pipe is closed.
    let zd = tokio::task::spawn_blocking(move || {
        let mut zd = spawn_watch(&home, &base);
        zd.stdout_line();
        zd.close_stdout();
        zd
    })
    .await
    .unwrap();
    // A new value has nowhere to go.
    emu.control().visitor_arrive(Arrival::default()).unwrap();
    let out = tokio::task::spawn_blocking(move || zd.finish())
        .await
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(err.contains("cannot write to stdout"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `zd metrics export --prometheus 127.0.0.1:0` on the emulator at `base`, running.
fn spawn_export(dir: &std::path::Path, base: &str) -> Running {
    let mut cmd = zd_process(dir);
    cmd.args([
        "--emulator",
        base,
        "metrics",
        "export",
        "--prometheus",
        "127.0.0.1:0",
    ]);
    Running::spawn(cmd)
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_and_export_stop_cleanly_on_ctrl_c_sigterm_and_sighup() {
    // A dashboard's feed run by a service manager is stopped with SIGTERM; it must end as a
    // stop (exit 0, the feed closed), not as a crash the supervisor reports.
    let emu = Emulator::builder().start().await.unwrap();
    emu.control().visitor_arrive(Arrival::default()).unwrap();
    for signal in ["-INT", "-TERM", "-HUP"] {
        for command in ["watch", "export"] {
            let dir = tempfile::tempdir().unwrap();
            let (base, home) = (emu.base_url().to_owned(), dir.path().to_owned());
            let out = tokio::task::spawn_blocking(move || {
                let zd = if command == "watch" {
                    let mut zd = spawn_watch(&home, &base);
                    zd.stdout_line();
                    zd
                } else {
                    let mut zd = spawn_export(&home, &base);
                    zd.stderr_until("received the first values");
                    zd
                };
                send_signal(zd.pid(), signal);
                zd.finish()
            })
            .await
            .unwrap();
            assert!(
                out.status.success(),
                "{command} {signal}: {out:?} {}",
                stderr(&out)
            );
        }
    }
    // No feed holds a slot on the service afterwards. (Process exit would close the sockets
    // anyway: what fails on the old code is the exit status above, not this.)
    let deadline = std::time::Instant::now() + HANG_GUARD;
    while emu.control().counters().realtime_connections > 0 {
        assert!(std::time::Instant::now() < deadline, "a feed stayed open");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_serves_prometheus_text() {
    let emu = Emulator::builder().start().await.unwrap();
    emu.control().visitor_arrive(Arrival::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = emu.base_url().to_owned();
    let home = dir.path().to_owned();
    let body = tokio::task::spawn_blocking(move || {
        let mut zd = spawn_export(&home, &base);
        let serving = zd.stderr_until("metrics at ");
        let url = serving
            .split("metrics at ")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .trim()
            .to_owned();
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches("/metrics")
            .to_owned();
        zd.stderr_until("received the first values");
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    })
    .await
    .unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("incoming_chats"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_says_when_the_service_has_not_computed() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let get = || async {
        let mut cmd = zd(dir.path());
        cmd.args(["--emulator", emu.base_url(), "metrics", "get"]);
        let out = output(cmd).await;
        assert!(out.status.success(), "{}", stderr(&out));
        out
    };
    let out = get().await;
    let values = &json_lines(&out)[0];
    // An idle account is "Not Computed!": no figures, which is not the same as zeros.
    assert_eq!(values["computed"], false, "{values}");
    assert!(stderr(&out).contains("not computed"), "{}", stderr(&out));

    emu.control().visitor_arrive(Arrival::default()).unwrap();
    let out = get().await;
    let values = &json_lines(&out)[0];
    assert_eq!(values["computed"], true, "{values}");
    assert_eq!(values["incoming_chats"], 1, "{values}");
    assert!(!stderr(&out).contains("not computed"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_reports_refused_subscriptions_and_fails_when_all_are() {
    let emu = Emulator::builder().start().await.unwrap();
    assert!(
        emu.account().departments.iter().all(|d| d.raw_id != "1"),
        "department 1 must not exist"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = zd(dir.path());
    cmd.args([
        "--emulator",
        emu.base_url(),
        "metrics",
        "watch",
        "--department",
        "1",
    ]);
    let out = output(cmd).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(
        err.contains("department_id 1 is not a department of the account"),
        "{err}"
    );
    assert!(err.contains("refused every subscription"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_ends_when_the_feed_is_refused() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = zd(dir.path());
    cmd.args([
        "metrics",
        "export",
        "--prometheus",
        "127.0.0.1:0",
        "--token",
        "not-a-token",
        "--metrics-url",
        emu.base_url(),
    ]);
    let out = output(cmd).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("the metrics feed closed"), "{err}");
    assert!(err.contains("unauthorized"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_emulator_goes_to_the_emulator() {
    let emu = Emulator::builder().start().await.unwrap();
    emu.control().visitor_arrive(Arrival::default()).unwrap();
    let token = emu.account().agents[1]
        .access_token
        .expose_secret()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = zd(dir.path());
    cmd.args([
        "--emulator",
        emu.base_url(),
        "metrics",
        "get",
        "--token",
        &token,
    ]);
    let out = output(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["incoming_chats"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_url_without_a_token_is_a_usage_error() {
    // Whatever listens there must not receive the emulator's demo token.
    usage_error_without_connecting(
        "",
        &["metrics", "get", "--metrics-url", "{url}"],
        &["--metrics-url", "--token"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_metrics_url_is_named() {
    // Bound then closed: nothing listens on the port.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for command in ["get", "watch"] {
        let mut cmd = zd(dir.path());
        cmd.args([
            "metrics",
            command,
            "--token",
            "some-token",
            "--metrics-url",
            &format!("http://{addr}"),
        ]);
        let out = output(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(5), "{command}: {err}");
        assert!(err.contains(&addr.to_string()), "{command}: {err}");
    }
}

/// The next connection to `listener`; fails the test (instead of hanging it) when none comes
/// within `guard`.
fn accept_within(
    listener: &std::net::TcpListener,
    guard: std::time::Duration,
) -> std::net::TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + guard;
    loop {
        match listener.accept() {
            Ok((stream, _)) => return stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(std::time::Instant::now() < deadline, "zd never connected");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_while_connecting_to_a_silent_service_ends_watch_and_export() {
    // The service accepts the connection and never answers: the connect would wait for its
    // 30 s timeout and then fail (exit 5). A SIGTERM meanwhile is a stop: exit 0.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    for command in ["watch", "export"] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = zd_process(dir.path());
        cmd.args([
            "metrics",
            command,
            "--token",
            "some-token",
            "--metrics-url",
            &format!("http://{addr}"),
        ]);
        if command == "export" {
            cmd.args(["--prometheus", "127.0.0.1:0"]);
        }
        let zd = Running::spawn(cmd);
        // zd listens for stop signals before it connects, so once it has connected a
        // signal is its to handle.
        let held = accept_within(&listener, HANG_GUARD);
        send_signal(zd.pid(), "-TERM");
        let out = tokio::task::spawn_blocking(move || zd.finish())
            .await
            .unwrap();
        drop(held);
        assert!(out.status.success(), "{command}: {out:?} {}", stderr(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_exits_4_and_a_malformed_url_exits_2() {
    // A 403 (a token without the `read` scope, say) refuses the credentials as a 401 does.
    let forbidden = fake_service(|_| (403, r#"{"error":"forbidden"}"#.to_owned()));
    let dir = tempfile::tempdir().unwrap();
    for (url, code) in [(forbidden.as_str(), 4), ("not-a-url", 2)] {
        let mut cmd = zd(dir.path());
        cmd.args([
            "metrics",
            "get",
            "--token",
            "some-token",
            "--metrics-url",
            url,
        ]);
        let out = output(cmd).await;
        assert_eq!(out.status.code(), Some(code), "{url}: {}", stderr(&out));
    }
}
