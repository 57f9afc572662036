//! [`MetricUpdate`]: one value of one series, flattened out of a wire update.

use serde_json::Value;
use serde_json::value::RawValue;
use zd_wire::realtime::{MetricValue, Update, Window};

use crate::{Series, Snapshot};

/// A new value of one series, as yielded by a [`crate::Feed`].
///
/// One update frame may carry several metrics and, for windowed metrics, several windows;
/// each becomes its own `MetricUpdate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricUpdate {
    /// Which metric, window and department.
    pub series: Series,
    /// The value; `None` when the service sent `null` (not computed, or not applicable such
    /// as a waiting time with nobody queued).
    pub value: Option<i64>,
}

/// A value the wire decoder kept raw because it is not an integer: fractional numbers (an
/// average can be 12.5 seconds) are rounded to the nearest integer, alone or per window, so
/// the dashboard shows about the right figure instead of the stale previous one. Anything
/// else (strings, booleans, numbers beyond i64) is logged and skipped.
fn fractional(raw: &RawValue) -> Option<Vec<(Option<Window>, Option<i64>)>> {
    fn round(value: &Value) -> Option<Option<i64>> {
        match value {
            Value::Null => Some(None),
            Value::Number(n) => {
                let f = n.as_f64()?;
                // The range check keeps the cast exact (no saturation on huge values).
                (f.is_finite() && f.abs() < 9.0e18).then(|| Some(f.round() as i64))
            }
            _ => None,
        }
    }
    let parsed = match serde_json::from_str::<Value>(raw.get()) {
        Ok(Value::Object(windows)) => windows
            .iter()
            .map(|(key, v)| {
                let minutes = key.parse::<u32>().ok()?;
                Some((Some(Window::from_minutes(minutes)), round(v)?))
            })
            .collect(),
        Ok(scalar) => round(&scalar).map(|v| vec![(None, v)]),
        Err(_) => None,
    };
    if parsed.is_none() {
        tracing::warn!(value = raw.get(), "metric value is not a number; skipped");
    }
    parsed
}

/// Every (series, value) pair of a wire update. Fractional values are rounded (see
/// [`fractional`]); values of another shape (strings) are skipped.
pub(crate) fn flatten(update: &Update) -> impl Iterator<Item = MetricUpdate> + '_ {
    let dept = update.department_id;
    let family = &update.topic.family;
    update.data.iter().flat_map(move |(metric, value)| {
        let items: Vec<MetricUpdate> = match value {
            MetricValue::Scalar(v) => vec![MetricUpdate {
                series: Series::from_update(family, metric.clone(), None, dept),
                value: *v,
            }],
            MetricValue::Windowed(w) => {
                w.0.iter()
                    .map(|(window, v)| MetricUpdate {
                        series: Series::from_update(family, metric.clone(), Some(*window), dept),
                        value: *v,
                    })
                    .collect()
            }
            MetricValue::Other(raw) => fractional(raw)
                .unwrap_or_default()
                .into_iter()
                .map(|(window, value)| MetricUpdate {
                    series: Series::from_update(family, metric.clone(), window, dept),
                    value,
                })
                .collect(),
            _ => Vec::new(),
        };
        items
    })
}

impl Snapshot {
    /// Applies every value of a wire update to the series this snapshot tracks. Returns
    /// `true` when anything changed.
    pub fn apply_update(&mut self, update: &Update) -> bool {
        let dept = update.department_id;
        let mut changed = false;
        for (metric, value) in &update.data {
            match value {
                MetricValue::Scalar(v) => changed |= self.apply(dept, metric, None, *v),
                MetricValue::Windowed(w) => {
                    for (window, v) in &w.0 {
                        changed |= self.apply(dept, metric, Some(*window), *v);
                    }
                }
                MetricValue::Other(raw) => {
                    for (window, v) in fractional(raw).unwrap_or_default() {
                        changed |= self.apply(dept, metric, window, v);
                    }
                }
                _ => {}
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use zd_wire::realtime::{Metric, ServerFrame, Window};

    use super::*;

    #[test]
    fn windowed_values_become_one_update_per_window() {
        let frame = ServerFrame::decode(
            r#"{"content":{"topic":"chats","data":{"missed_chats":{"30":1,"60":2},"waiting_time_avg":null},"type":"update","department_id":5},"status_code":200}"#,
        )
        .unwrap();
        let ServerFrame::Update(update) = frame else {
            panic!("not an update")
        };
        let items: Vec<_> = flatten(&update)
            .map(|u| (u.series.to_string(), u.value))
            .collect();
        assert_eq!(
            items,
            vec![
                ("chats.missed_chats[30m]@5".to_owned(), Some(1)),
                ("chats.missed_chats[60m]@5".to_owned(), Some(2)),
                ("chats.waiting_time_avg@5".to_owned(), None),
            ]
        );
        let mut snapshot = Snapshot::default();
        let s60 = Series::windowed(Metric::MissedChats, Window::Minutes60).department(5);
        snapshot.track(&s60);
        assert!(snapshot.apply_update(&update));
        assert_eq!(snapshot.get(&s60), Some(2));
        assert!(!snapshot.apply_update(&update));
    }

    #[test]
    fn fractional_values_are_rounded_not_dropped() {
        let frame = ServerFrame::decode(
            r#"{"content":{"topic":"chats","data":{"waiting_time_avg":12.6,"chat_duration_avg":{"30":7.5,"60":null},"missed_chats":"many"},"type":"update","department_id":null},"status_code":200}"#,
        )
        .unwrap();
        let ServerFrame::Update(update) = frame else {
            panic!("not an update")
        };
        let items: Vec<_> = flatten(&update)
            .map(|u| (u.series.to_string(), u.value))
            .collect();
        assert_eq!(
            items,
            vec![
                ("chats.waiting_time_avg".to_owned(), Some(13)),
                ("chats.chat_duration_avg[30m]".to_owned(), Some(8)),
                ("chats.chat_duration_avg[60m]".to_owned(), None),
            ]
        );
        let mut snapshot = Snapshot::default();
        let avg = Series::metric(Metric::WaitingTimeAvg);
        snapshot.track(&avg);
        assert!(snapshot.apply_update(&update));
        assert_eq!(snapshot.get(&avg), Some(13));
    }
}
