//! `zd demo` in plain mode: a non-trivial summary with nothing lost. Content only, no timing.

use crate::support::{stderr, stdout, zd};

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
