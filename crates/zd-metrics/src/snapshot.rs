//! [`Snapshot`]: the latest value of every subscribed series, per department.

use std::collections::BTreeMap;
use std::fmt;

use zd_wire::realtime::{Family, Metric, Window};

use crate::Series;

/// Slots for the documented metrics: one per metric, plus one per extra window of the
/// windowed ones.
const SLOTS: usize = Metric::KNOWN.len() + 3;

/// Index of a known metric's slot; windowed metrics use two consecutive slots.
fn slot(metric: &Metric, window: Option<Window>) -> Option<usize> {
    let base = match metric {
        Metric::IncomingChats => 0,
        Metric::AssignedChats => 1,
        Metric::MissedChats => 2, // 2, 3
        Metric::ActiveChats => 4,
        Metric::WaitingTimeAvg => 5,
        Metric::WaitingTimeMax => 6,
        Metric::ChatDurationAvg => 7,
        Metric::ChatDurationMax => 8,
        Metric::ResponseTimeAvg => 9,
        Metric::ResponseTimeMax => 10,
        Metric::SatisfactionGood => 11, // 11, 12
        Metric::SatisfactionBad => 13,  // 13, 14
        Metric::AgentsOnline => 15,
        Metric::AgentsAway => 16,
        Metric::AgentsInvisible => 17,
        _ => return None,
    };
    match (metric.is_windowed(), window) {
        (true, Some(Window::Minutes30)) => Some(base),
        (true, Some(Window::Minutes60)) => Some(base + 1),
        (false, None) => Some(base),
        _ => None,
    }
}

/// The reverse of [`slot`], for iteration.
fn slot_series(index: usize) -> (Metric, Option<Window>) {
    match index {
        0 => (Metric::IncomingChats, None),
        1 => (Metric::AssignedChats, None),
        2 => (Metric::MissedChats, Some(Window::Minutes30)),
        3 => (Metric::MissedChats, Some(Window::Minutes60)),
        4 => (Metric::ActiveChats, None),
        5 => (Metric::WaitingTimeAvg, None),
        6 => (Metric::WaitingTimeMax, None),
        7 => (Metric::ChatDurationAvg, None),
        8 => (Metric::ChatDurationMax, None),
        9 => (Metric::ResponseTimeAvg, None),
        10 => (Metric::ResponseTimeMax, None),
        11 => (Metric::SatisfactionGood, Some(Window::Minutes30)),
        12 => (Metric::SatisfactionGood, Some(Window::Minutes60)),
        13 => (Metric::SatisfactionBad, Some(Window::Minutes30)),
        14 => (Metric::SatisfactionBad, Some(Window::Minutes60)),
        15 => (Metric::AgentsOnline, None),
        16 => (Metric::AgentsAway, None),
        _ => (Metric::AgentsInvisible, None),
    }
}

/// The tracked series of one department (or of the whole account).
///
/// Each slot is `None` when the series is not subscribed, `Some(None)` when it is subscribed
/// but its value is not yet known (or the service sent `null`), `Some(Some(v))` otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DepartmentValues {
    known: Slots,
    /// Metrics this crate does not know, keyed by wire key and window minutes.
    other: BTreeMap<(String, Option<u32>), Other>,
}

/// A tracked metric this crate does not know: its value, and the family it was subscribed
/// under so [`Snapshot::iter`] gives back the series that was tracked. The key alone decides
/// which entry a value lands in (the service names no metric twice across families).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Other {
    family: Family,
    value: Option<i64>,
    /// Whether the stream gave a value (`null` included) since tracking or forgetting began.
    given: bool,
}

/// The slots of the documented metrics, packed: bit masks (tracked, value known, value given
/// by the stream) and the values, 8 bytes a slot instead of 16 for `Option<Option<i64>>`;
/// every feed holds one per department. A slot that is not tracked or not known holds 0, so
/// equality is by value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Slots {
    tracked: u32,
    known: u32,
    /// Slots the stream gave a value (`null` included) since they were tracked or forgotten:
    /// a seed from a REST pull never goes over those, a `null` being as new as a number.
    given: u32,
    values: [i64; SLOTS],
}

const _: () = assert!(SLOTS <= 32, "slot masks are u32");

impl Slots {
    fn get(&self, i: usize) -> Option<Option<i64>> {
        let bit = 1_u32 << i;
        (self.tracked & bit != 0).then(|| (self.known & bit != 0).then(|| self.values[i]))
    }

    /// Sets the value of a tracked slot, as the stream gave it; `true` when it changed.
    fn set(&mut self, i: usize, value: Option<i64>) -> bool {
        let before = self.get(i);
        let bit = 1_u32 << i;
        if before.is_some() {
            self.given |= bit;
        }
        if before.is_none() || before == Some(value) {
            return false;
        }
        match value {
            Some(v) => {
                self.known |= bit;
                self.values[i] = v;
            }
            None => {
                self.known &= !bit;
                self.values[i] = 0;
            }
        }
        true
    }

    /// Starts tracking a slot with its value unknown.
    fn track(&mut self, i: usize) {
        self.tracked |= 1 << i;
        self.known &= !(1 << i);
        self.given &= !(1 << i);
        self.values[i] = 0;
    }

    /// Fills a tracked slot the stream has given nothing since it was tracked or forgotten;
    /// `true` when it did.
    fn fill(&mut self, i: usize, value: i64) -> bool {
        let bit = 1_u32 << i;
        if self.tracked & bit == 0 || self.given & bit != 0 || self.known & bit != 0 {
            return false;
        }
        self.known |= bit;
        self.values[i] = value;
        true
    }

    /// Stops tracking a slot; `true` when it was tracked.
    fn untrack(&mut self, i: usize) -> bool {
        let was = self.tracked & (1 << i) != 0;
        self.tracked &= !(1 << i);
        self.known &= !(1 << i);
        self.given &= !(1 << i);
        self.values[i] = 0;
        was
    }

    /// Marks every value unknown; `true` when any was known.
    fn forget(&mut self) -> bool {
        let any = self.known != 0;
        self.known = 0;
        self.given = 0;
        self.values = [0; SLOTS];
        any
    }

    fn iter(&self) -> impl Iterator<Item = (usize, Option<i64>)> + '_ {
        (0..SLOTS).filter_map(|i| self.get(i).map(|v| (i, v)))
    }

    fn count(&self) -> usize {
        self.tracked.count_ones() as usize
    }
}

impl DepartmentValues {
    /// Sets the value of a tracked series; `true` when it changed.
    fn set(&mut self, metric: &Metric, window: Option<Window>, value: Option<i64>) -> bool {
        match slot(metric, window) {
            Some(i) => self.known.set(i, value),
            None => match self
                .other
                .get_mut(&(metric.key().to_owned(), window.map(Window::minutes)))
            {
                Some(slot) => {
                    slot.given = true;
                    let changed = slot.value != value;
                    slot.value = value;
                    changed
                }
                None => false,
            },
        }
    }

    /// Fills a tracked series the stream has given nothing since it was tracked or
    /// forgotten; `true` when it did.
    fn fill(&mut self, metric: &Metric, window: Option<Window>, value: i64) -> bool {
        match slot(metric, window) {
            Some(i) => self.known.fill(i, value),
            None => match self
                .other
                .get_mut(&(metric.key().to_owned(), window.map(Window::minutes)))
            {
                Some(slot) if !slot.given && slot.value.is_none() => {
                    slot.value = Some(value);
                    true
                }
                _ => false,
            },
        }
    }

    /// Whether the series is tracked here.
    pub fn contains(&self, metric: &Metric, window: Option<Window>) -> bool {
        self.get_tracked(metric, window).is_some()
    }

    /// The value of a tracked series: `None` if not tracked, `Some(None)` if not yet known.
    pub fn get_tracked(&self, metric: &Metric, window: Option<Window>) -> Option<Option<i64>> {
        match slot(metric, window) {
            Some(i) => self.known.get(i),
            None => self
                .other
                .get(&(metric.key().to_owned(), window.map(Window::minutes)))
                .map(|other| other.value),
        }
    }

    /// Every tracked series of this department with its value, documented metrics first in
    /// catalogue order.
    pub fn iter(&self) -> impl Iterator<Item = (Metric, Option<Window>, Option<i64>)> + '_ {
        self.series(None)
            .map(|(series, value)| (series.metric_key().clone(), series.window(), value))
    }

    /// Every tracked series of this department with its value, as [`DepartmentValues::iter`].
    fn series(
        &self,
        department_id: Option<u64>,
    ) -> impl Iterator<Item = (Series, Option<i64>)> + '_ {
        let known = self.known.iter().map(move |(i, value)| {
            let (metric, window) = slot_series(i);
            (Series::from_parts(metric, window, department_id), value)
        });
        let other = self.other.iter().map(move |((key, minutes), other)| {
            let series = Series::from_parts(
                Metric::from_key(key),
                minutes.map(Window::from_minutes),
                department_id,
            )
            .with_family(other.family.clone());
            (series, other.value)
        });
        known.chain(other)
    }

    fn is_empty(&self) -> bool {
        self.known.tracked == 0 && self.other.is_empty()
    }
}

/// The latest value of every subscribed series, per department (`None` key = the whole
/// account), as held in a feed's watch channel.
///
/// A subscribed series whose value is not yet known — nothing received since (re)connecting,
/// or the service sent `null` (for example `waiting_time_avg` with nobody queued) — reads as
/// `None`. Values are reset to unknown when the feed reconnects, since changes made while
/// disconnected were never seen, and when it ends, since nothing follows them any more.
///
/// ```
/// use zd_metrics::{Metric, Series, Snapshot};
///
/// let mut snapshot = Snapshot::default();
/// let incoming = Series::metric(Metric::IncomingChats);
/// snapshot.track(&incoming);
/// assert_eq!(snapshot.get(&incoming), None);
/// assert!(snapshot.apply(None, &Metric::IncomingChats, None, Some(3)));
/// assert_eq!(snapshot.get(&incoming), Some(3));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    departments: Departments,
    version: u64,
}

/// Departments by id, account-wide (`None`) first, as a sorted vector grown one entry at a
/// time: a feed tracks one or a few departments, and a `BTreeMap` would allocate a node of
/// eleven 328-byte entries (3.6 KiB) for the first one.
#[derive(Clone, Default, PartialEq, Eq)]
struct Departments(Vec<(Option<u64>, DepartmentValues)>);

impl fmt::Debug for Departments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl Departments {
    fn find(&self, id: &Option<u64>) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.cmp(id))
    }

    fn get(&self, id: &Option<u64>) -> Option<&DepartmentValues> {
        self.find(id).ok().map(|i| &self.0[i].1)
    }

    fn get_mut(&mut self, id: &Option<u64>) -> Option<&mut DepartmentValues> {
        self.find(id).ok().map(|i| &mut self.0[i].1)
    }

    fn get_or_default(&mut self, id: Option<u64>) -> &mut DepartmentValues {
        let i = match self.find(&id) {
            Ok(i) => i,
            Err(i) => {
                self.0.reserve_exact(1);
                self.0.insert(i, (id, DepartmentValues::default()));
                i
            }
        };
        &mut self.0[i].1
    }

    fn remove(&mut self, id: &Option<u64>) {
        if let Ok(i) = self.find(id) {
            self.0.remove(i);
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&Option<u64>, &DepartmentValues)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    fn values(&self) -> impl Iterator<Item = &DepartmentValues> {
        self.0.iter().map(|(_, v)| v)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut DepartmentValues> {
        self.0.iter_mut().map(|(_, v)| v)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Snapshot {
    /// Starts tracking a series (its value unknown until an update arrives). Returns `false`
    /// when it was already tracked.
    pub fn track(&mut self, series: &Series) -> bool {
        let dept = self.departments.get_or_default(series.department_id());
        let (metric, window) = (series.metric_key(), series.window());
        if dept.contains(metric, window) {
            return false;
        }
        match slot(metric, window) {
            Some(i) => dept.known.track(i),
            None => {
                dept.other.insert(
                    (metric.key().to_owned(), window.map(Window::minutes)),
                    Other {
                        family: series.family(),
                        value: None,
                        given: false,
                    },
                );
            }
        }
        self.version += 1;
        true
    }

    /// Stops tracking a series. Returns `false` when it was not tracked.
    pub fn untrack(&mut self, series: &Series) -> bool {
        let Some(dept) = self.departments.get_mut(&series.department_id()) else {
            return false;
        };
        let (metric, window) = (series.metric_key(), series.window());
        let removed = match slot(metric, window) {
            Some(i) => dept.known.untrack(i),
            None => dept
                .other
                .remove(&(metric.key().to_owned(), window.map(Window::minutes)))
                .is_some(),
        };
        if dept.is_empty() {
            self.departments.remove(&series.department_id());
        }
        if removed {
            self.version += 1;
        }
        removed
    }

    /// Records a value for a tracked series. Returns `true` when the snapshot changed; values
    /// for series that are not tracked are ignored.
    pub fn apply(
        &mut self,
        department_id: Option<u64>,
        metric: &Metric,
        window: Option<Window>,
        value: Option<i64>,
    ) -> bool {
        let Some(dept) = self.departments.get_mut(&department_id) else {
            return false;
        };
        let changed = dept.set(metric, window, value);
        if changed {
            self.version += 1;
        }
        changed
    }

    /// Fills the value of a tracked series that the stream has given nothing (not even `null`)
    /// since it was tracked or since the values were last forgotten: a seed from a REST pull.
    /// Returns `true` when it did.
    pub(crate) fn fill_unknown(&mut self, series: &Series, value: i64) -> bool {
        let Some(dept) = self.departments.get_mut(&series.department_id()) else {
            return false;
        };
        let filled = dept.fill(series.metric_key(), series.window(), value);
        if filled {
            self.version += 1;
        }
        filled
    }

    /// Marks every tracked value unknown (when a feed reconnects or ends). Returns `true` if
    /// any was known.
    pub fn forget_values(&mut self) -> bool {
        let mut changed = false;
        for dept in self.departments.values_mut() {
            changed |= dept.known.forget();
            for other in dept.other.values_mut() {
                other.given = false;
                changed |= other.value.take().is_some();
            }
        }
        if changed {
            self.version += 1;
        }
        changed
    }

    /// The latest value of a series: `None` when not tracked, not yet known, or `null`.
    pub fn get(&self, series: &Series) -> Option<i64> {
        self.get_tracked(series).flatten()
    }

    /// The value of a series if it is tracked: `Some(None)` when tracked but not yet known.
    pub fn get_tracked(&self, series: &Series) -> Option<Option<i64>> {
        self.departments
            .get(&series.department_id())?
            .get_tracked(series.metric_key(), series.window())
    }

    /// The values of one department (`None` = the whole account), if any series of it is
    /// tracked.
    pub fn department(&self, department_id: Option<u64>) -> Option<&DepartmentValues> {
        self.departments.get(&department_id)
    }

    /// Every tracked series with its value, by department (account-wide first).
    pub fn iter(&self) -> impl Iterator<Item = (Series, Option<i64>)> + '_ {
        self.departments
            .iter()
            .flat_map(|(dept, values)| values.series(*dept))
    }

    /// Number of tracked series.
    pub fn len(&self) -> usize {
        self.departments
            .values()
            .map(|d| d.known.count() + d.other.len())
            .sum()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.departments.is_empty()
    }

    /// Increases on every change; lets a reader tell cheaply whether anything moved.
    pub fn version(&self) -> u64 {
        self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip() {
        for i in 0..SLOTS {
            let (metric, window) = slot_series(i);
            assert_eq!(slot(&metric, window), Some(i));
        }
        assert_eq!(slot(&Metric::MissedChats, None), None);
        assert_eq!(slot(&Metric::ActiveChats, Some(Window::Minutes30)), None);
    }

    #[test]
    fn only_tracked_series_hold_values() {
        let mut s = Snapshot::default();
        let missed30 = Series::windowed(Metric::MissedChats, Window::Minutes30).department(5);
        let missed60 = Series::windowed(Metric::MissedChats, Window::Minutes60).department(5);
        assert!(s.track(&missed30));
        assert!(!s.track(&missed30));
        assert!(s.apply(
            Some(5),
            &Metric::MissedChats,
            Some(Window::Minutes30),
            Some(1)
        ));
        assert!(!s.apply(
            Some(5),
            &Metric::MissedChats,
            Some(Window::Minutes30),
            Some(1)
        ));
        assert!(!s.apply(
            Some(5),
            &Metric::MissedChats,
            Some(Window::Minutes60),
            Some(2)
        ));
        assert!(!s.apply(None, &Metric::MissedChats, Some(Window::Minutes30), Some(2)));
        assert_eq!(s.get(&missed30), Some(1));
        assert_eq!(s.get_tracked(&missed60), None);
        assert_eq!(s.len(), 1);

        let unknown = Series::agent_metric(Metric::Unknown("queue_depth".into()));
        s.track(&unknown);
        assert!(s.apply(None, &Metric::Unknown("queue_depth".into()), None, Some(-1)));
        let all: Vec<_> = s
            .iter()
            .map(|(series, v)| (series.to_string(), v))
            .collect();
        assert_eq!(
            all,
            vec![
                ("agents.queue_depth".to_owned(), Some(-1)),
                ("chats.missed_chats[30m]@5".to_owned(), Some(1)),
            ]
        );
        assert_eq!(s.iter().next(), Some((unknown, Some(-1))));
        assert!(s.forget_values());
        assert_eq!(s.get_tracked(&missed30), Some(None));
        assert!(s.untrack(&missed30));
        assert!(s.department(Some(5)).is_none());
    }

    #[test]
    fn packed_slots_compare_by_what_they_hold() {
        let incoming = Series::metric(Metric::IncomingChats);
        let active = Series::metric(Metric::ActiveChats);
        let mut a = Snapshot::default();
        a.track(&incoming);
        a.track(&active);
        assert!(a.apply(None, &Metric::ActiveChats, None, Some(7)));
        assert!(!a.apply(None, &Metric::ActiveChats, None, Some(7)));
        assert!(
            !a.apply(None, &Metric::AssignedChats, None, Some(1)),
            "not tracked"
        );
        assert_eq!(a.get_tracked(&active), Some(Some(7)));
        assert!(a.apply(None, &Metric::ActiveChats, None, None));
        assert_eq!(a.get_tracked(&active), Some(None));
        assert!(a.apply(None, &Metric::ActiveChats, None, Some(-3)));
        assert!(a.forget_values());
        assert!(!a.forget_values());
        assert!(a.untrack(&active));
        assert!(!a.untrack(&active));
        assert_eq!(a.len(), 1);
        let mut b = Snapshot::default();
        b.track(&incoming);
        assert_eq!(a.department(None), b.department(None));
    }
}
