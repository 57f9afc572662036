//! `zd metrics get | watch | export` against the emulator's Real Time Chat service.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;

use zd_emulator::Emulator;
use zd_emulator::state::Arrival;

use crate::support::{json_lines, output, stderr, zd};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_reports_the_chat_state() {
    let emu = Emulator::builder().start().await.unwrap();
    for _ in 0..3 {
        emu.control().visitor_arrive(Arrival::default()).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = zd(dir.path());
    cmd.args(["--emulator", emu.base_url(), "metrics", "get"]);
    let out = output(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let values = &json_lines(&out)[0];
    assert_eq!(values["incoming_chats"], 3, "{values}");
    assert!(values.get("agents_online").is_some(), "{values}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_updates() {
    let emu = Emulator::builder().start().await.unwrap();
    emu.control().visitor_arrive(Arrival::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = zd(dir.path());
    cmd.args([
        "--emulator",
        emu.base_url(),
        "metrics",
        "watch",
        "--count",
        "1",
    ]);
    let out = output(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let update = &json_lines(&out)[0];
    assert!(update["metric"].is_string(), "{update}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_serves_prometheus_text() {
    let emu = Emulator::builder().start().await.unwrap();
    emu.control().visitor_arrive(Arrival::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = emu.base_url().to_owned();
    let home = dir.path().to_owned();
    let body = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("zd"))
            .args([
                "--emulator",
                &base,
                "metrics",
                "export",
                "--prometheus",
                "127.0.0.1:0",
            ])
            .env("XDG_CONFIG_HOME", &home)
            .env_remove("ZENDESK_CHAT_TOKEN")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let url = loop {
            line.clear();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "zd exited before serving"
            );
            if let Some(rest) = line.split("metrics at ").nth(1) {
                break rest.split(';').next().unwrap().trim().to_owned();
            }
        };
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches("/metrics")
            .to_owned();
        loop {
            line.clear();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "zd exited before the first values"
            );
            if line.contains("received the first values") {
                break;
            }
        }
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        child.kill().unwrap();
        let _ = child.wait();
        body
    })
    .await
    .unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("incoming_chats"), "{body}");
}
