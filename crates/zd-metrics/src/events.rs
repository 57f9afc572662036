//! The queue of [`FeedEvent`]s from a feed's driver to its reader: bounded like a channel, but
//! allocated on demand.
//!
//! A tokio mpsc channel allocates a block of 32 slots (3.6 KiB of `FeedEvent`s) when created,
//! for every feed, although a reader that keeps up holds zero or one event at a time. This
//! queue starts empty, grows to what is actually buffered (at most `capacity`), and gives
//! its memory back whenever it has been drained.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::FeedEvent;

struct State {
    queue: VecDeque<FeedEvent>,
    capacity: usize,
    sender_alive: bool,
    receiver_alive: bool,
    waker: Option<Waker>,
}

type Shared = Arc<Mutex<State>>;

impl State {
    /// Frees a slot for a lifecycle event if the queue is full (see
    /// [`EventSender::send_lifecycle`]); how many events that dropped.
    fn make_room_for_lifecycle(&mut self) -> u64 {
        if self.queue.len() < self.capacity {
            return 0;
        }
        if let Some(update) = self.position(|e| matches!(e, FeedEvent::Update(_))) {
            self.queue.remove(update);
            return 1;
        }
        if let Some(lagged) = self.position(|e| matches!(e, FeedEvent::Lagged(_)))
            && let Some(FeedEvent::Lagged(n)) = self.queue.remove(lagged)
        {
            return n;
        }
        if self.queue.len() < self.capacity.saturating_add(LIFECYCLE_SLACK) {
            return 0;
        }
        let latest_reconnected = self
            .queue
            .iter()
            .rposition(|e| matches!(e, FeedEvent::Reconnected));
        let oldest = (0..self.queue.len()).find(|&i| Some(i) != latest_reconnected);
        match oldest.and_then(|i| self.queue.remove(i)) {
            Some(_) => 1,
            None => 0,
        }
    }

    fn position(&self, matches: impl Fn(&FeedEvent) -> bool) -> Option<usize> {
        self.queue.iter().position(matches)
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // The critical sections cannot panic half-way through an update; a poisoned lock still
    // holds a consistent queue.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How far past `capacity` lifecycle events (see [`EventSender::send_lifecycle`]) may fill the
/// queue when it holds nothing they can replace: room for a reader that fell behind to see an
/// outage's `Reconnecting` and `Reconnected` and a few more besides, whatever `capacity` is.
/// A feed whose reader never polls (it only reads the snapshot) keeps this much at most.
const LIFECYCLE_SLACK: usize = 8;

/// A bounded queue of at most `capacity` (at least 1) events.
pub(crate) fn channel(capacity: usize) -> (EventSender, EventReceiver) {
    let shared = Arc::new(Mutex::new(State {
        queue: VecDeque::new(),
        capacity: capacity.max(1),
        sender_alive: true,
        receiver_alive: true,
        waker: None,
    }));
    (EventSender(shared.clone()), EventReceiver(shared))
}

/// Why an event was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TrySendError {
    /// The queue holds `capacity` events.
    Full,
    /// The reader is gone.
    Closed,
}

/// The driver's end.
pub(crate) struct EventSender(Shared);

impl EventSender {
    /// Queues an event without waiting.
    pub(crate) fn try_send(&self, event: FeedEvent) -> Result<(), TrySendError> {
        let waker = {
            let mut state = lock(&self.0);
            if !state.receiver_alive {
                return Err(TrySendError::Closed);
            }
            if state.queue.len() >= state.capacity {
                return Err(TrySendError::Full);
            }
            state.queue.push_back(event);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }
}

impl EventSender {
    /// Queues an event about the connection (`Reconnecting`, `Reconnected`, `Rejected`) that
    /// a reader must not miss the way it may miss an update, whose value the snapshot holds:
    /// a reader re-seeds on `Reconnected`. Room is made, when the queue is full, by dropping
    /// its oldest update, else by taking out a `Lagged` (its count is returned to be
    /// reported again), else from [`LIFECYCLE_SLACK`] past `capacity`; only past that is the
    /// oldest lifecycle event dropped, never the latest `Reconnected` (a reader that sees it
    /// re-seeds after every reconnect before it). Returns how many events were dropped or
    /// taken out, for the driver to report as lagged.
    pub(crate) fn send_lifecycle(&self, event: FeedEvent) -> Result<u64, TrySendError> {
        let (dropped, waker) = {
            let mut state = lock(&self.0);
            if !state.receiver_alive {
                return Err(TrySendError::Closed);
            }
            let dropped = state.make_room_for_lifecycle();
            state.queue.push_back(event);
            (dropped, state.waker.take())
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(dropped)
    }

    /// Queues the driver's last events even when the queue is full: a reader that fell
    /// behind must still learn why the feed ended, and the driver cannot wait for room
    /// (it would hold the connection slot for a reader that may never read). The queue
    /// exceeds `capacity` by these few events at most, once.
    pub(crate) fn send_last(&self, events: impl IntoIterator<Item = FeedEvent>) {
        let waker = {
            let mut state = lock(&self.0);
            if !state.receiver_alive {
                return;
            }
            state.queue.extend(events);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Drop for EventSender {
    fn drop(&mut self) {
        let waker = {
            let mut state = lock(&self.0);
            state.sender_alive = false;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The reader's end: yields the queued events, then `None` once the driver is gone.
pub(crate) struct EventReceiver(Shared);

impl EventReceiver {
    /// Cancel safe: an event leaves the queue only when it is returned.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<FeedEvent>> {
        let mut state = lock(&self.0);
        if let Some(event) = state.queue.pop_front() {
            if state.queue.is_empty() {
                // A reader that keeps up holds one event at a time, and feeds are many:
                // hold no memory between events.
                state.queue = VecDeque::new();
            }
            return Poll::Ready(Some(event));
        }
        if !state.sender_alive {
            return Poll::Ready(None);
        }
        match &mut state.waker {
            Some(waker) => waker.clone_from(cx.waker()),
            None => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for EventReceiver {
    fn drop(&mut self) {
        let mut state = lock(&self.0);
        state.receiver_alive = false;
        state.queue = VecDeque::new();
        state.waker = None;
    }
}

impl fmt::Debug for EventReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.0);
        f.debug_struct("EventReceiver")
            .field("queued", &state.queue.len())
            .field("capacity", &state.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;
    use crate::{Error, ErrorKind};

    fn event(n: u32) -> FeedEvent {
        FeedEvent::Lagged(u64::from(n))
    }

    fn lagged(poll: Poll<Option<FeedEvent>>) -> Option<u64> {
        match poll {
            Poll::Ready(Some(FeedEvent::Lagged(n))) => Some(n),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bounded_in_order_then_closed() {
        let (tx, mut rx) = channel(2);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(rx.poll_recv(&mut cx).is_pending());
        tx.try_send(event(1)).unwrap();
        tx.try_send(event(2)).unwrap();
        assert_eq!(tx.try_send(event(3)), Err(TrySendError::Full));
        assert_eq!(lagged(rx.poll_recv(&mut cx)), Some(1));
        tx.try_send(event(3)).unwrap();
        drop(tx);
        assert_eq!(lagged(rx.poll_recv(&mut cx)), Some(2));
        assert_eq!(lagged(rx.poll_recv(&mut cx)), Some(3));
        assert!(matches!(rx.poll_recv(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn last_events_pass_a_full_queue() {
        let (tx, mut rx) = channel(1);
        let mut cx = Context::from_waker(Waker::noop());
        tx.try_send(event(1)).unwrap();
        assert_eq!(tx.try_send(event(2)), Err(TrySendError::Full));
        tx.send_last([event(3), event(4)]);
        drop(tx);
        assert_eq!(lagged(rx.poll_recv(&mut cx)), Some(1));
        assert_eq!(lagged(rx.poll_recv(&mut cx)), Some(3));
        assert_eq!(lagged(rx.poll_recv(&mut cx)), Some(4));
        assert!(matches!(rx.poll_recv(&mut cx), Poll::Ready(None)));
    }

    fn kinds(rx: &mut EventReceiver) -> Vec<String> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut kinds = Vec::new();
        while let Poll::Ready(Some(event)) = rx.poll_recv(&mut cx) {
            kinds.push(match event {
                FeedEvent::Update(_) => "update".to_owned(),
                FeedEvent::Lagged(n) => format!("lagged {n}"),
                FeedEvent::Reconnecting { attempt, .. } => format!("reconnecting {attempt}"),
                FeedEvent::Reconnected => "reconnected".to_owned(),
                other => format!("{other:?}"),
            });
        }
        kinds
    }

    fn update() -> FeedEvent {
        FeedEvent::Update(crate::MetricUpdate {
            series: crate::Series::metric(crate::Metric::ActiveChats),
            value: Some(1),
        })
    }

    fn reconnecting(attempt: u32) -> FeedEvent {
        FeedEvent::Reconnecting {
            attempt,
            delay: std::time::Duration::from_secs(1),
            error: Error::new(ErrorKind::Transport, "test"),
        }
    }

    #[test]
    fn lifecycle_events_replace_updates_then_lag_reports_then_use_the_slack() {
        let (tx, mut rx) = channel(2);
        tx.try_send(update()).unwrap();
        tx.try_send(FeedEvent::Lagged(5)).unwrap();
        assert_eq!(tx.send_lifecycle(reconnecting(1)), Ok(1));
        assert_eq!(tx.send_lifecycle(FeedEvent::Reconnected), Ok(5));
        assert_eq!(tx.send_lifecycle(reconnecting(1)), Ok(0));
        assert_eq!(
            kinds(&mut rx),
            ["reconnecting 1", "reconnected", "reconnecting 1"]
        );
    }

    #[test]
    fn lifecycle_events_stay_bounded_and_keep_the_latest_reconnected() {
        let (tx, mut rx) = channel(1);
        let mut dropped = 0;
        for attempt in 1..=100 {
            dropped += tx.send_lifecycle(reconnecting(attempt)).unwrap();
            if attempt == 50 {
                dropped += tx.send_lifecycle(FeedEvent::Reconnected).unwrap();
            }
        }
        let kinds = kinds(&mut rx);
        assert_eq!(kinds.len(), 1 + LIFECYCLE_SLACK);
        assert_eq!(dropped, 101 - kinds.len() as u64);
        assert_eq!(kinds.first().map(String::as_str), Some("reconnected"));
        assert_eq!(kinds.last().map(String::as_str), Some("reconnecting 100"));
    }

    #[test]
    fn send_after_reader_dropped_is_closed() {
        let (tx, rx) = channel(4);
        drop(rx);
        let closed = FeedEvent::Closed(Error::new(ErrorKind::Closed, "test"));
        assert_eq!(tx.try_send(closed), Err(TrySendError::Closed));
    }

    #[test]
    fn drained_burst_gives_memory_back() {
        let (tx, mut rx) = channel(256);
        let mut cx = Context::from_waker(Waker::noop());
        for n in 0..200_u32 {
            tx.try_send(event(n)).unwrap();
        }
        for n in 0..200_u32 {
            assert_eq!(lagged(rx.poll_recv(&mut cx)), Some(u64::from(n)));
        }
        assert_eq!(lock(&rx.0).queue.capacity(), 0);
    }

    #[tokio::test]
    async fn wakes_a_waiting_reader() {
        let (tx, mut rx) = channel(4);
        let reader = tokio::spawn(async move { std::future::poll_fn(|cx| rx.poll_recv(cx)).await });
        tokio::task::yield_now().await;
        tx.try_send(event(7)).unwrap();
        assert!(matches!(reader.await.unwrap(), Some(FeedEvent::Lagged(7))));
    }
}
