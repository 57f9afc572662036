//! [`MetricUpdate`]: one value of one series, flattened out of a wire update.

use zd_wire::realtime::{MetricValue, Update};

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

/// Every (series, value) pair of a wire update. Values of a shape the catalogue does not
/// describe (floats, strings) are skipped.
pub(crate) fn flatten(update: &Update) -> impl Iterator<Item = MetricUpdate> + '_ {
    let dept = update.department_id;
    update.data.iter().flat_map(move |(metric, value)| {
        let items: Vec<MetricUpdate> = match value {
            MetricValue::Scalar(v) => vec![MetricUpdate {
                series: Series::from_parts(metric.clone(), None, dept),
                value: *v,
            }],
            MetricValue::Windowed(w) => {
                w.0.iter()
                    .map(|(window, v)| MetricUpdate {
                        series: Series::from_parts(metric.clone(), Some(*window), dept),
                        value: *v,
                    })
                    .collect()
            }
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
}
