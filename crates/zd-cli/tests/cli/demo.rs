//! `zd demo` in plain mode: a non-trivial summary with nothing lost. Content only, no timing.

use std::io::{Read, Write};
use std::net::TcpStream;

#[cfg(unix)]
use crate::support::send_signal;
use crate::support::{Running, stderr, stdout, zd, zd_process};

fn field(summary: &str, label: &str) -> String {
    summary
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{summary}"))
        .trim()
        .to_owned()
}

fn leading_number(s: &str) -> u64 {
    s.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn demo_serves_chats_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = zd(dir.path())
        .args([
            "demo",
            "--duration",
            "10",
            "--output",
            "plain",
            "--seed",
            "11",
            "--visitors",
            "20",
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "stdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    assert!(
        text.contains("chat as a visitor at http://127.0.0.1:"),
        "{text}"
    );
    assert!(leading_number(&field(&text, "chats served:")) > 0, "{text}");
    assert!(
        leading_number(&field(&text, "messages exchanged:")) > 0,
        "{text}"
    );
    assert!(field(&text, "nothing lost:").starts_with("yes"), "{text}");
    assert!(field(&text, "round trip:").contains("p99"), "{text}");
    // Plain mode says when it is finishing, instead of going quiet.
    assert!(text.contains("zd demo: finishing:"), "{text}");
    assert!(!text.contains("other visitors:"), "{text}");
    // The dashboard also reads the emulator's Real Time Chat feed through zd-metrics.
    assert!(text.contains("| feed incoming"), "{text}");
}

#[test]
fn demo_survives_faults() {
    let dir = tempfile::tempdir().unwrap();
    let out = zd(dir.path())
        .args([
            "demo",
            "--duration",
            "10",
            "--output",
            "plain",
            "--seed",
            "5",
            "--visitors",
            "15",
            "--faults",
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "stdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    let faults = field(&text, "faults survived:");
    let mut words = faults.split_whitespace();
    let survived: u64 = words.next().unwrap().parse().unwrap();
    assert_eq!(words.next(), Some("of"));
    let injected: u64 = words.next().unwrap().parse().unwrap();
    assert!(injected > 0, "{text}");
    assert_eq!(survived, injected, "{text}");
    assert!(field(&text, "nothing lost:").starts_with("yes"), "{text}");
}

/// POSTs JSON to the emulator's control API; returns the JSON answer.
fn post(host_port: &str, path: &str, body: &serde_json::Value) -> serde_json::Value {
    let body = body.to_string();
    let mut stream = TcpStream::connect(host_port).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host_port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

#[test]
fn a_visitor_from_the_browser_is_answered_but_not_counted_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = zd_process(dir.path());
    cmd.args([
        "demo",
        "--duration",
        "8",
        "--output",
        "plain",
        "--seed",
        "11",
        "--visitors",
        "10",
    ]);
    // Killed after HANG_GUARD: a demo that never ends fails the test instead of hanging it.
    let mut demo = Running::spawn(cmd);
    let mut text = String::new();
    // The first line names the emulator: "zd demo: emulator at http://127.0.0.1:PORT - ...".
    let host_port = loop {
        let line = demo.stdout_line();
        text.push_str(&line);
        text.push('\n');
        if let Some(rest) = line.split("emulator at http://").nth(1) {
            break rest.split(['/', ' ']).next().unwrap().to_owned();
        }
    };
    // Someone who is not one of the simulated visitors arrives and says something, as a
    // person chatting in the browser would.
    let handle = post(
        &host_port,
        "/_emulator/visitors",
        &serde_json::json!({ "name": "Someone in a browser" }),
    );
    let channel_id = handle["channel_id"].as_str().unwrap();
    post(
        &host_port,
        "/_emulator/visitors/message",
        &serde_json::json!({ "channel_id": channel_id, "text": "Hello from the browser" }),
    );
    let out = demo.finish();
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "stdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    assert!(field(&text, "nothing lost:").starts_with("yes"), "{text}");
    assert!(
        field(&text, "other visitors:")
            .starts_with("also answered 1 of 1 messages from visitors the demo did not create"),
        "{text}"
    );
}

#[test]
fn too_many_visitors_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = zd(dir.path())
        .args(["demo", "--output", "plain", "--visitors", "1001"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("at most 1000"), "{}", stderr(&out));
    // Nothing started.
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
}

#[test]
fn demo_into_a_closed_pipe_exits_7() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = zd_process(dir.path());
    cmd.args([
        "demo",
        "--duration",
        "3",
        "--visitors",
        "2",
        "--output",
        "plain",
    ]);
    let mut demo = Running::spawn(cmd);
    // As `zd demo --output plain | head -n1`: one line read, then the pipe is closed. The run
    // goes on for seconds and writes a line a second, so a later line has nowhere to go.
    let first = demo.stdout_line();
    assert!(first.contains("emulator at"), "{first}");
    demo.close_stdout();
    let out = demo.finish();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(err.contains("cannot write to stdout"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// The number after `served` in a plain status line, if it is one.
fn served(line: &str) -> Option<u64> {
    line.split(" served ")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(unix)]
#[test]
fn sigterm_and_sighup_end_the_demo_with_its_summary() {
    // `kill`, a service manager or a closing terminal: the demo ends as on Ctrl-C, with the
    // summary (and in dashboard mode the terminal restored), instead of dying mid-line.
    for signal in ["-TERM", "-HUP"] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = zd_process(dir.path());
        cmd.args([
            "demo",
            "--duration",
            "0",
            "--visitors",
            "2",
            "--output",
            "plain",
        ]);
        let mut demo = Running::spawn(cmd);
        let mut text = String::new();
        // Until a chat was served, so the summary's checks can hold; a demo that never serves
        // one is killed after HANG_GUARD, and the read then fails.
        loop {
            let line = demo.stdout_line();
            text.push_str(&line);
            text.push('\n');
            if served(&line).is_some_and(|n| n > 0) {
                break;
            }
        }
        send_signal(demo.pid(), signal);
        let out = demo.finish();
        text.push_str(&stdout(&out));
        assert!(
            out.status.success(),
            "{signal}: {:?}\nstdout:\n{text}\nstderr:\n{}",
            out.status,
            stderr(&out)
        );
        assert!(text.contains("zd demo summary"), "{signal}: {text}");
        assert!(field(&text, "nothing lost:").starts_with("yes"), "{text}");
    }
}

#[test]
fn a_duration_past_a_week_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for duration in ["18446744073709551615", "604801"] {
        let out = zd(dir.path())
            .args(["demo", "--output", "plain", "--duration", duration])
            .timeout(std::time::Duration::from_secs(20))
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{duration}: {err}");
        assert!(err.contains("--duration"), "{err}");
        // Nothing started.
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    }
}
