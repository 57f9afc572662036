//! The feed against the emulator's fault that drops every open `/stream` socket (no close
//! frame): it reconnects, resubscribes, and the snapshot follows values that change after.
//!
//! Every wait is for an event the feed emits because of something the test did; no sleeps.

use std::time::Duration;

use futures_util::StreamExt;
use zd_emulator::Emulator;
use zd_emulator::state::Arrival;
use zd_metrics::{
    ExponentialBuilder, Feed, FeedConfig, FeedEvent, Metric, MetricsClient, Series, StaticToken,
};

const ALICE: &str = "demo-alice-token";

fn client(emu: &Emulator) -> MetricsClient {
    let mut config = FeedConfig::default();
    config.reconnect = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(5))
        .with_max_delay(Duration::from_millis(50))
        .with_jitter();
    MetricsClient::builder(StaticToken::bearer(ALICE).unwrap())
        .base_url(emu.base_url())
        .feed_config(config)
        .build()
        .unwrap()
}

/// The next event that is not an update.
async fn next_transition(feed: &mut Feed) -> FeedEvent {
    loop {
        match feed.next().await.expect("feed ended") {
            FeedEvent::Update(_) => {}
            other => return other,
        }
    }
}

/// Waits for an update of `series` to `value`.
async fn value(feed: &mut Feed, series: &Series, value: Option<i64>) {
    loop {
        match feed.next().await.expect("feed ended") {
            FeedEvent::Update(u) if &u.series == series && u.value == value => return,
            FeedEvent::Closed(e) => panic!("closed: {e}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn feed_reconnects_and_resubscribes_after_the_emulator_drops_every_socket() {
    let emu = Emulator::builder().start().await.unwrap();
    let client = client(&emu);
    let mut feed = client.connect().await.unwrap();
    let incoming = Series::metric(Metric::IncomingChats);
    feed.subscribe(incoming.clone()).await.unwrap();
    // Nothing has happened yet: the emulator reports "not computed".
    value(&mut feed, &incoming, None).await;

    assert_eq!(emu.control().realtime_drop(), 1);
    match next_transition(&mut feed).await {
        FeedEvent::Reconnecting { .. } => {}
        other => panic!("expected reconnecting, got {other:?}"),
    }
    match next_transition(&mut feed).await {
        FeedEvent::Reconnected => {}
        other => panic!("expected reconnected, got {other:?}"),
    }

    // Only a subscription on the new socket can carry this value.
    emu.control()
        .visitor_arrive(Arrival {
            department: Some("Support".into()),
            ..Default::default()
        })
        .unwrap();
    value(&mut feed, &incoming, Some(1)).await;
    assert_eq!(feed.snapshot().borrow().get(&incoming), Some(1));
}
