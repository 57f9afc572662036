//! The Prometheus text a scrape returns, byte for byte (feature `prometheus`).

use prometheus_client::registry::Registry;
use zd_metrics::prometheus::SnapshotCollector;
use zd_metrics::{Metric, Series, Snapshot, Window};

#[test]
fn scrape_text() {
    let mut snapshot = Snapshot::default();
    let tracked = [
        Series::metric(Metric::IncomingChats),
        Series::metric(Metric::IncomingChats).department(5),
        Series::windowed(Metric::MissedChats, Window::Minutes30),
        Series::windowed(Metric::MissedChats, Window::Minutes60).department(5),
        Series::metric(Metric::WaitingTimeAvg),
        // Tracked but never given a value: left out of the scrape.
        Series::metric(Metric::ChatDurationAvg),
    ];
    for series in &tracked {
        snapshot.track(series);
    }
    snapshot.apply(None, &Metric::IncomingChats, None, Some(4));
    snapshot.apply(Some(5), &Metric::IncomingChats, None, Some(3));
    snapshot.apply(None, &Metric::MissedChats, Some(Window::Minutes30), Some(1));
    snapshot.apply(
        Some(5),
        &Metric::MissedChats,
        Some(Window::Minutes60),
        Some(2),
    );
    snapshot.apply(None, &Metric::WaitingTimeAvg, None, Some(13));
    let rx = zd_metrics::SnapshotReceiver::fixed(snapshot);

    let mut registry = Registry::default();
    SnapshotCollector::new(rx).register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    insta::assert_snapshot!("prometheus_scrape", text);
}

/// A feed that has ended exports nothing: its last values are no longer followed, and a
/// scrape showing them would pass them off as live.
#[tokio::test]
async fn a_closed_feed_exports_no_values() {
    let emu = zd_emulator::Emulator::builder().start().await.unwrap();
    let client = zd_metrics::MetricsClient::builder(
        zd_metrics::StaticToken::bearer("demo-alice-token").unwrap(),
    )
    .base_url(emu.base_url())
    .build()
    .unwrap();
    // A chat, so that the account's figures are computed.
    emu.control()
        .visitor_arrive(zd_emulator::state::Arrival {
            department: Some("Support".into()),
            ..Default::default()
        })
        .unwrap();
    let feed = client.connect().await.unwrap();
    let incoming = Series::metric(Metric::IncomingChats);
    feed.subscribe(incoming.clone()).await.unwrap();
    let mut registry = Registry::default();
    SnapshotCollector::new(feed.snapshot()).register(&mut registry);
    let scrape = |registry: &Registry| {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    };
    // The emulator answers a subscribe with the current value.
    feed.snapshot()
        .wait_for(|s| s.get(&incoming).is_some())
        .await
        .unwrap();
    assert!(
        scrape(&registry).contains("\nzendesk_realtime_incoming_chats{department=\"all\"} "),
        "{}",
        scrape(&registry)
    );

    feed.handle().close().await;
    let text = scrape(&registry);
    assert!(
        !text.contains("\nzendesk_realtime_incoming_chats{"),
        "a closed feed's value is still exported:\n{text}"
    );
}
