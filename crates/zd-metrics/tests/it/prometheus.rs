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
