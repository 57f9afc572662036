//! Secrets stay out of logs: dependencies that log through the `log` facade (tungstenite logs
//! its whole upgrade request at trace level) must never be handed the session's WebSocket
//! URL, whose path carries the session and client ids that are all a socket needs to take
//! the session.
//!
//! A test binary of its own: the recorder is process-wide, and the emulator suite should not
//! pay for trace logging.

// Helpers outside #[test] functions panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use log::{LevelFilter, Log, Metadata, Record};
use zd_agent::rate_limit::StartLimiter;
use zd_agent::{AgentSession, Config, LifecycleEvent, StaticToken};
use zd_emulator::Emulator;

/// Generous bound so a broken test fails instead of hanging; never reached when green.
const PATIENCE: Duration = Duration::from_secs(20);

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
async fn the_session_url_is_not_logged_at_trace_level() {
    record_everything();
    let emu = Emulator::builder().start().await.unwrap();
    let mut config = Config::with_endpoint(emu.graphql_url().parse().unwrap());
    config.reconnect.min_delay = Duration::from_millis(5);
    config.start_limiter = Some(Arc::new(StartLimiter::default()));
    let token = emu.account().agents[0].access_token.clone();
    let creds = Arc::new(StaticToken::bearer(token).unwrap());
    let (session, driver) = AgentSession::connect(config, creds).await.unwrap();
    let driver = tokio::spawn(driver);
    let facts = session.resumable();
    let session_id = facts.session_id.unwrap();
    let client_id = facts.client_id.unwrap();
    assert!(!client_id.is_empty());

    // A resumed socket is opened again with the stored URL: that upgrade is checked too.
    let mut events = Box::pin(session.lifecycle());
    emu.control().fault_drop(&session_id).await.unwrap();
    tokio::time::timeout(PATIENCE, async {
        while !matches!(
            events.next().await.expect("lifecycle ended"),
            LifecycleEvent::Connected { .. }
        ) {}
    })
    .await
    .expect("no reconnect in time");
    assert_eq!(
        session.resumable().session_id.as_deref(),
        Some(&*session_id)
    );
    session.stop().await.unwrap();
    let _ = tokio::time::timeout(PATIENCE, driver).await;

    let records = RECORDER.0.lock().unwrap();
    // The recorder did see both upgrades being logged, so the check below is not vacuous.
    let upgrades = records
        .iter()
        .filter(|r| r.starts_with("tungstenite") && r.contains("Sec-WebSocket-Key"))
        .count();
    assert!(upgrades >= 2, "the upgrades were not logged: {records:?}");
    let leaked: Vec<&String> = records.iter().filter(|r| r.contains(&client_id)).collect();
    assert!(leaked.is_empty(), "the client id was logged: {leaked:?}");
}
