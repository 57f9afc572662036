//! Secrets stay out of logs: dependencies that log through the `log` facade (tungstenite
//! logs its whole upgrade request at trace level) must never be handed the token.
//!
//! A test binary of its own: the logger it installs is process-wide and records at trace
//! level (tungstenite logs every frame there), which would slow the other tests down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "it/server.rs"]
#[allow(
    dead_code,
    reason = "the scripted server of tests/it, of which this test uses a part"
)]
mod server;

use std::sync::Mutex;

use log::{LevelFilter, Log, Metadata, Record};
use zd_metrics::{MetricsClient, StaticToken};

use server::TestServer;

/// Every message logged in this test binary, whichever test logged it.
struct Recorder(Mutex<Vec<String>>);

impl Log for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        let line = format!("{} {}", record.target(), record.args());
        self.0.lock().unwrap().push(line);
    }

    fn flush(&self) {}
}

static RECORDER: Recorder = Recorder(Mutex::new(Vec::new()));

/// Installs the recorder at trace level; the logger is process-wide and set once.
fn record_everything() {
    let _ = log::set_logger(&RECORDER);
    log::set_max_level(LevelFilter::Trace);
}

#[tokio::test]
async fn the_token_is_not_logged_at_trace_level() {
    const TOKEN: &str = "sekrit-123";
    record_everything();
    let mut server = TestServer::start(&[TOKEN]).await;
    let client = MetricsClient::builder(StaticToken::bearer(TOKEN).unwrap())
        .base_url(server.base_url())
        .build()
        .unwrap();
    let feed = client.connect().await.unwrap();
    let conn = server.next_connection().await;
    assert_eq!(conn.authorization, format!("Bearer {TOKEN}"));
    feed.handle().close().await;

    let records = RECORDER.0.lock().unwrap();
    // The recorder did see the upgrade being logged, so the check below is not vacuous.
    assert!(
        records
            .iter()
            .any(|r| r.starts_with("tungstenite") && r.contains("Sec-WebSocket-Key")),
        "the upgrade request was not logged: {records:?}"
    );
    let leaked: Vec<&String> = records.iter().filter(|r| r.contains(TOKEN)).collect();
    assert!(leaked.is_empty(), "the token was logged: {leaked:?}");
}
