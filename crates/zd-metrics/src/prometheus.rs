//! Prometheus export of a feed's live [`Snapshot`](crate::Snapshot) (feature `prometheus`).
//!
//! [`SnapshotCollector`] reads the snapshot at scrape time, so it costs nothing between
//! scrapes and never shows a value older than the feed's: while the feed reconnects, and
//! once it has ended, the snapshot holds no values and a scrape exports none.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use zd_wire::realtime::{Metric, MetricUnit};

use crate::SnapshotReceiver;

/// Exposes every known value of a snapshot as a gauge named `zendesk_realtime_<metric key>`
/// (with a `_seconds` suffix for durations), labelled `department` (`"all"` for the whole
/// account) and, for windowed metrics, `window` (`"30"` or `"60"`). Series whose value is not
/// known are left out, so Grafana shows a gap rather than a made-up zero (or a stale value:
/// every series is unknown while the feed reconnects and after it has ended). A receiver from
/// [`SnapshotReceiver::fixed`] has no feed behind it and keeps its values.
///
/// ```
/// use prometheus_client::registry::Registry;
/// use zd_metrics::prometheus::SnapshotCollector;
/// use zd_metrics::{Metric, Series, Snapshot, SnapshotReceiver};
///
/// let mut snapshot = Snapshot::default();
/// snapshot.track(&Series::metric(Metric::IncomingChats).department(5));
/// snapshot.apply(Some(5), &Metric::IncomingChats, None, Some(3));
/// let rx = SnapshotReceiver::fixed(snapshot);
///
/// let mut registry = Registry::default();
/// SnapshotCollector::new(rx).register(&mut registry);
/// let mut text = String::new();
/// prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
/// assert!(text.contains(r#"zendesk_realtime_incoming_chats{department="5"} 3"#));
/// ```
pub struct SnapshotCollector {
    snapshot: SnapshotReceiver,
}

impl fmt::Debug for SnapshotCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotCollector")
            .field("series", &self.snapshot.borrow().len())
            .finish()
    }
}

impl SnapshotCollector {
    /// A collector of the snapshot behind `snapshot` (from [`crate::FeedHandle::snapshot`]).
    pub fn new(snapshot: SnapshotReceiver) -> Self {
        Self { snapshot }
    }

    /// Registers the collector.
    pub fn register(self, registry: &mut Registry) {
        registry.register_collector(Box::new(self));
    }
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        // Copy out under the lock, encode after releasing it.
        let mut rows: Vec<(Metric, Option<u32>, Option<u64>, i64)> = self
            .snapshot
            .borrow()
            .iter()
            .filter_map(|(series, value)| {
                value.map(|v| {
                    (
                        series.metric_key().clone(),
                        series.window().map(|w| w.minutes()),
                        series.department_id(),
                        v,
                    )
                })
            })
            .collect();
        rows.sort_by(|a, b| {
            a.0.key()
                .cmp(b.0.key())
                .then(a.1.cmp(&b.1))
                .then(a.2.cmp(&b.2))
        });
        let mut start = 0;
        while start < rows.len() {
            let metric = rows[start].0.clone();
            let end = rows[start..]
                .iter()
                .position(|r| r.0 != metric)
                .map_or(rows.len(), |n| start + n);
            let name = format!("zendesk_realtime_{}", metric.key());
            let help = format!("Zendesk Real Time Chat metric {}", metric.key());
            let unit = match metric.unit() {
                Some(MetricUnit::Seconds) => Some(Unit::Seconds),
                _ => None,
            };
            let mut family =
                encoder.encode_descriptor(&name, &help, unit.as_ref(), MetricType::Gauge)?;
            for (_, window, department, value) in &rows[start..end] {
                let mut labels = vec![(
                    "department",
                    department.map_or_else(|| "all".to_owned(), |d| d.to_string()),
                )];
                if let Some(w) = window {
                    labels.push(("window", w.to_string()));
                }
                ConstGauge::new(*value).encode(family.encode_family(&labels)?)?;
            }
            start = end;
        }
        Ok(())
    }
}
