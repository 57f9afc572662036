//! The per-feed cell the driver publishes the [`Snapshot`] and [`FeedState`] into, and the
//! receivers [`FeedHandle`](crate::FeedHandle) hands out.
//!
//! One `Arc` holding a mutex and one `Notify` per feed: two `tokio::sync::watch` channels
//! cost ~730 B per feed (each carries eight `Notify`s and an `RwLock`), which was a sixth of
//! a feed's memory for values that change a few times a second at most.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use crate::{Error, ErrorKind, FeedState, Snapshot};

pub(crate) struct Shared {
    cell: Mutex<Cell>,
    notify: Notify,
}

struct Cell {
    snapshot: Snapshot,
    state: FeedState,
    /// Bumped on every change of `snapshot`; receivers remember the last one they saw.
    snapshot_version: u64,
    state_version: u64,
    /// The driver has ended: no more changes will come.
    closed: bool,
}

impl Shared {
    fn new(snapshot: Snapshot, closed: bool) -> Arc<Self> {
        Arc::new(Self {
            cell: Mutex::new(Cell {
                snapshot,
                state: FeedState::Active,
                snapshot_version: 0,
                state_version: 0,
                closed,
            }),
            notify: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Cell> {
        // Nothing panics while holding the lock with the cell half-updated, so a poisoned
        // lock still holds a consistent value.
        self.cell.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `ready` holds for the cell (checked now, then after every change) and
    /// returns the cell locked; fails once the feed has ended and `ready` does not hold.
    async fn wait(
        &self,
        mut ready: impl FnMut(&Cell) -> bool,
    ) -> Result<MutexGuard<'_, Cell>, Error> {
        loop {
            // Registered before the check, so a change between the check and the await
            // still wakes this waiter.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let cell = self.lock();
                if ready(&cell) {
                    return Ok(cell);
                }
                if cell.closed {
                    return Err(gone());
                }
            }
            notified.await;
        }
    }

    /// Waits until `version` differs from `seen` (then records it) or the feed has ended.
    async fn changed(&self, seen: &mut u64, version: fn(&Cell) -> u64) -> Result<(), Error> {
        self.wait(|cell| {
            let now = version(cell);
            let changed = now != *seen;
            *seen = now;
            changed
        })
        .await
        .map(drop)
    }
}

/// The driver's side: publishes changes; dropping it forgets every value (see its `Drop`)
/// and ends every receiver's `changed`.
pub(crate) struct Publisher(Arc<Shared>);

impl Publisher {
    pub(crate) fn new() -> Self {
        Self(Shared::new(Snapshot::default(), false))
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.0)
    }

    /// Sets the state; receivers are told even when it is the same as before.
    pub(crate) fn set_state(&self, state: FeedState) {
        {
            let mut cell = self.0.lock();
            cell.state = state;
            cell.state_version = cell.state_version.wrapping_add(1);
        }
        self.0.notify.notify_waiters();
    }

    /// Changes the snapshot in place; receivers are told when `modify` returns true.
    pub(crate) fn modify_snapshot(&self, modify: impl FnOnce(&mut Snapshot) -> bool) {
        let modified = {
            let mut cell = self.0.lock();
            let modified = modify(&mut cell.snapshot);
            if modified {
                cell.snapshot_version = cell.snapshot_version.wrapping_add(1);
            }
            modified
        };
        if modified {
            self.0.notify.notify_waiters();
        }
    }

    /// Reads the snapshot under the lock.
    pub(crate) fn read_snapshot<R>(&self, read: impl FnOnce(&Snapshot) -> R) -> R {
        read(&self.0.lock().snapshot)
    }
}

impl Drop for Publisher {
    /// Nothing will update the values any more, however the driver ended (closed, gave up,
    /// panicked, its runtime shut down): a reader such as the Prometheus collector would
    /// otherwise keep serving the last ones as if live. The series stay tracked, their values
    /// unknown, as while the feed reconnects. The state turns [`FeedState::Closed`] for the
    /// same reason: a driver that never reached its own end would leave it `Active`. A
    /// [`SnapshotReceiver::fixed`] has no publisher and keeps its values.
    fn drop(&mut self) {
        {
            let mut cell = self.0.lock();
            if cell.snapshot.forget_values() {
                cell.snapshot_version = cell.snapshot_version.wrapping_add(1);
            }
            if cell.state != FeedState::Closed {
                cell.state = FeedState::Closed;
                cell.state_version = cell.state_version.wrapping_add(1);
            }
            cell.closed = true;
        }
        self.0.notify.notify_waiters();
    }
}

/// A receiver of a feed's live [`Snapshot`], from [`FeedHandle::snapshot`](crate::FeedHandle::snapshot).
///
/// Read the current value with [`borrow`](Self::borrow), wait for the next change with
/// [`changed`](Self::changed) or for a condition with [`wait_for`](Self::wait_for). Cheap to
/// clone; a clone remembers which change it has seen. A receiver from the handle has seen
/// none, so its first `changed` returns at once if anything changed since the feed opened.
///
/// While the feed reconnects, and once it has ended, every value reads as unknown (the
/// series stay tracked): nothing follows them then.
///
/// ```no_run
/// # async fn run(feed: zd_metrics::Feed) -> Result<(), zd_metrics::Error> {
/// use zd_metrics::{Metric, Series};
///
/// let incoming = Series::metric(Metric::IncomingChats);
/// let mut snapshot = feed.snapshot();
/// // Ends with `ErrorKind::Closed` once the feed is gone.
/// while snapshot.changed().await.is_ok() {
///     println!("incoming now: {:?}", snapshot.borrow().get(&incoming));
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SnapshotReceiver {
    shared: Arc<Shared>,
    seen: u64,
}

impl SnapshotReceiver {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared, seen: 0 }
    }

    /// A receiver of a fixed snapshot with no feed behind it: [`borrow`](Self::borrow) reads
    /// `snapshot` and [`changed`](Self::changed) fails at once. Useful to feed a collector or
    /// a view from a snapshot built by hand (tests, replays).
    ///
    /// ```
    /// use zd_metrics::{Metric, Series, Snapshot, SnapshotReceiver};
    ///
    /// let series = Series::metric(Metric::IncomingChats);
    /// let mut snapshot = Snapshot::default();
    /// snapshot.track(&series);
    /// snapshot.apply(None, &Metric::IncomingChats, None, Some(3));
    /// let rx = SnapshotReceiver::fixed(snapshot);
    /// assert_eq!(rx.borrow().get(&series), Some(3));
    /// ```
    pub fn fixed(snapshot: Snapshot) -> Self {
        Self::new(Shared::new(snapshot, true))
    }

    /// The current snapshot, locked until the returned guard is dropped (keep it short: the
    /// feed waits for it to apply the next update). Does not mark it as seen.
    pub fn borrow(&self) -> SnapshotRef<'_> {
        SnapshotRef(self.shared.lock())
    }

    /// As [`borrow`](Self::borrow), and marks the current value as seen.
    pub fn borrow_and_update(&mut self) -> SnapshotRef<'_> {
        let cell = self.shared.lock();
        self.seen = cell.snapshot_version;
        SnapshotRef(cell)
    }

    /// Whether the snapshot changed since this receiver last saw it.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] when the feed has ended and nothing new is unseen.
    pub fn has_changed(&self) -> Result<bool, Error> {
        let cell = self.shared.lock();
        if cell.snapshot_version != self.seen {
            Ok(true)
        } else if cell.closed {
            Err(gone())
        } else {
            Ok(false)
        }
    }

    /// Waits for a change not seen yet, and marks it as seen. Cancel safe.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] once the feed has ended and every change has been seen.
    pub async fn changed(&mut self) -> Result<(), Error> {
        self.shared
            .changed(&mut self.seen, |c| c.snapshot_version)
            .await
    }

    /// Waits until `condition` holds for the snapshot (checked now, then on every change)
    /// and returns it locked, marked as seen.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] when the feed ends before the condition holds.
    pub async fn wait_for(
        &mut self,
        mut condition: impl FnMut(&Snapshot) -> bool,
    ) -> Result<SnapshotRef<'_>, Error> {
        let Self { shared, seen } = self;
        let cell = shared
            .wait(|cell| {
                *seen = cell.snapshot_version;
                condition(&cell.snapshot)
            })
            .await?;
        Ok(SnapshotRef(cell))
    }
}

impl fmt::Debug for SnapshotReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cell = self.shared.lock();
        f.debug_struct("SnapshotReceiver")
            .field("series", &cell.snapshot.len())
            .field("version", &cell.snapshot_version)
            .field("seen", &self.seen)
            .field("closed", &cell.closed)
            .finish()
    }
}

/// The [`Snapshot`] locked for reading, from [`SnapshotReceiver::borrow`]; derefs to it.
pub struct SnapshotRef<'a>(MutexGuard<'a, Cell>);

impl Deref for SnapshotRef<'_> {
    type Target = Snapshot;

    fn deref(&self) -> &Snapshot {
        &self.0.snapshot
    }
}

impl fmt::Debug for SnapshotRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0.snapshot, f)
    }
}

/// A receiver of a feed's [`FeedState`], from [`FeedHandle::state`](crate::FeedHandle::state).
///
/// Read it with [`get`](Self::get), wait for the next change with [`changed`](Self::changed)
/// or for a condition with [`wait_for`](Self::wait_for). Every state the driver enters counts
/// as a change (also `Reconnecting` with the next attempt). Cheap to clone.
///
/// ```no_run
/// # async fn run(feed: zd_metrics::Feed) -> Result<(), zd_metrics::Error> {
/// use zd_metrics::FeedState;
///
/// let mut state = feed.handle().state();
/// state.wait_for(|s| s == FeedState::Active).await?;
/// assert_eq!(state.get(), FeedState::Active);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct StateReceiver {
    shared: Arc<Shared>,
    seen: u64,
}

impl StateReceiver {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared, seen: 0 }
    }

    /// The current state. Does not mark it as seen.
    pub fn get(&self) -> FeedState {
        self.shared.lock().state
    }

    /// As [`get`](Self::get), and marks the current state as seen.
    pub fn get_and_update(&mut self) -> FeedState {
        let cell = self.shared.lock();
        self.seen = cell.state_version;
        cell.state
    }

    /// Waits for a state change not seen yet, and marks it as seen. Cancel safe.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] once the feed has ended and every change has been seen.
    pub async fn changed(&mut self) -> Result<(), Error> {
        self.shared
            .changed(&mut self.seen, |c| c.state_version)
            .await
    }

    /// Waits until `condition` holds for the state (checked now, then on every change) and
    /// returns that state.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] when the feed ends before the condition holds.
    pub async fn wait_for(
        &mut self,
        mut condition: impl FnMut(FeedState) -> bool,
    ) -> Result<FeedState, Error> {
        let Self { shared, seen } = self;
        let cell = shared
            .wait(|cell| {
                *seen = cell.state_version;
                condition(cell.state)
            })
            .await?;
        Ok(cell.state)
    }
}

impl fmt::Debug for StateReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cell = self.shared.lock();
        f.debug_struct("StateReceiver")
            .field("state", &cell.state)
            .field("seen", &self.seen)
            .field("closed", &cell.closed)
            .finish()
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cell = self.lock();
        f.debug_struct("Shared")
            .field("state", &cell.state)
            .field("series", &cell.snapshot.len())
            .field("closed", &cell.closed)
            .finish()
    }
}

fn gone() -> Error {
    Error::new(ErrorKind::Closed, "the feed has ended")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Metric, Series};

    fn series() -> Series {
        Series::metric(Metric::IncomingChats)
    }

    #[tokio::test]
    async fn changes_are_seen_once_and_the_end_is_reported() {
        let publisher = Publisher::new();
        let mut rx = SnapshotReceiver::new(publisher.shared());
        assert!(!rx.has_changed().unwrap());
        publisher.modify_snapshot(|s| s.track(&series()));
        assert!(rx.has_changed().unwrap());
        rx.changed().await.unwrap();
        assert!(!rx.has_changed().unwrap());
        // An unmodified snapshot is no change.
        publisher.modify_snapshot(|_| false);
        assert!(!rx.has_changed().unwrap());
        publisher.modify_snapshot(|s| s.apply(None, &Metric::IncomingChats, None, Some(4)));
        assert_eq!(rx.borrow().get(&series()), Some(4));
        drop(publisher);
        // The last change is still delivered, then the end; the end forgets the values
        // nothing will update any more, and keeps the series tracked.
        rx.changed().await.unwrap();
        assert_eq!(rx.borrow().get_tracked(&series()), Some(None));
        assert_eq!(rx.changed().await.unwrap_err().kind(), ErrorKind::Closed);
        assert_eq!(rx.has_changed().unwrap_err().kind(), ErrorKind::Closed);
    }

    #[tokio::test]
    async fn a_waiter_wakes_on_a_change_made_while_it_waits() {
        let publisher = Publisher::new();
        let mut rx = SnapshotReceiver::new(publisher.shared());
        let waiter = tokio::spawn(async move {
            let value = rx
                .wait_for(|s| s.get(&series()) == Some(7))
                .await?
                .get(&series());
            Ok::<_, Error>(value)
        });
        // Let the waiter register before anything changes.
        tokio::task::yield_now().await;
        publisher.modify_snapshot(|s| s.track(&series()));
        publisher.modify_snapshot(|s| s.apply(None, &Metric::IncomingChats, None, Some(7)));
        assert_eq!(waiter.await.unwrap().unwrap(), Some(7));
    }

    #[tokio::test]
    async fn state_waits_end_with_the_feed() {
        let publisher = Publisher::new();
        let mut state = StateReceiver::new(publisher.shared());
        assert_eq!(state.get(), FeedState::Active);
        publisher.set_state(FeedState::Reconnecting { attempt: 1 });
        assert_eq!(
            state
                .wait_for(|s| matches!(s, FeedState::Reconnecting { .. }))
                .await
                .unwrap(),
            FeedState::Reconnecting { attempt: 1 }
        );
        // The same state again still counts as a change.
        publisher.set_state(FeedState::Reconnecting { attempt: 1 });
        state.changed().await.unwrap();
        drop(publisher);
        let err = state
            .wait_for(|s| s == FeedState::Active)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed);
    }

    #[tokio::test]
    async fn a_dropped_publisher_leaves_the_state_closed() {
        let publisher = Publisher::new();
        let mut state = StateReceiver::new(publisher.shared());
        state.get_and_update();
        drop(publisher);
        assert_eq!(state.get(), FeedState::Closed);
        // The change is seen once, then the end.
        state.changed().await.unwrap();
        assert_eq!(state.changed().await.unwrap_err().kind(), ErrorKind::Closed);
    }

    #[tokio::test]
    async fn a_fixed_receiver_reads_and_never_changes() {
        let mut snapshot = Snapshot::default();
        snapshot.track(&series());
        let mut rx = SnapshotReceiver::fixed(snapshot);
        assert!(rx.borrow().get_tracked(&series()).is_some());
        assert_eq!(rx.changed().await.unwrap_err().kind(), ErrorKind::Closed);
    }
}
