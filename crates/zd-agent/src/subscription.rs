//! `Subscription<T>`: a stream of one subscription's items that stops it when dropped.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::sync::mpsc;

use crate::dedup::Dedup;
use crate::error::{Error, ErrorKind};

/// What the driver hands a subscriber.
#[derive(Debug)]
pub(crate) enum SubEvent {
    /// A DATA payload (a GraphQL response), not yet parsed: only its outline was checked, so
    /// the decoder's parse is what validates it.
    Data(Box<str>),
    /// A DATA error or a failure to restart the subscription.
    Error(Error),
    /// The answer of the catch-up query run after a gap.
    CatchUp(Box<str>),
    /// The session's socket was replaced: the items before this came before the gap. Sent
    /// ahead of the first event after a gap, to subscriptions with a catch-up only.
    Gap,
}

/// A started subscription's stop-on-drop guard: on its way to its caller, through the start's
/// answer channel, then held by the [`Subscription`] built from it.
///
/// Dropped, it stops the subscription: a caller that stopped waiting after the driver handed
/// it over (a `select!`, a timeout) never builds the [`Subscription`], and the driver cannot
/// tell. A value left in a oneshot whose receiver is gone is dropped with the channel, so this
/// covers that case too.
#[derive(Debug)]
pub(crate) struct Handover {
    key: u64,
    /// `None` once disarmed.
    drop_tx: Option<mpsc::UnboundedSender<u64>>,
}

impl Handover {
    pub(crate) fn new(key: u64, drop_tx: mpsc::UnboundedSender<u64>) -> Self {
        Self {
            key,
            drop_tx: Some(drop_tx),
        }
    }

    /// Drops the guard without stopping the subscription (the driver stops it itself).
    pub(crate) fn disarm(mut self) {
        self.drop_tx = None;
    }
}

impl Drop for Handover {
    fn drop(&mut self) {
        if let Some(drop_tx) = self.drop_tx.take() {
            // The driver may be gone already; then there is nothing left to stop.
            let _ = drop_tx.send(self.key);
        }
    }
}

/// Why a subscription ended, kept beside its channel rather than in it: a reader that is
/// behind has a full buffer, and the error that ends its stream must not be lost to that.
/// The stream hands it out after the buffered items, once the driver has dropped its sender.
#[derive(Debug, Default)]
pub(crate) struct Ending(Mutex<Option<Error>>);

impl Ending {
    /// Records why the subscription ended; the first reason stays.
    pub(crate) fn set(&self, e: Error) {
        self.lock().get_or_insert(e);
    }

    fn take(&self) -> Option<Error> {
        self.lock().take()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Error>> {
        // Nothing is left half-written under this lock: a poisoned one is simply reused.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Turns a DATA payload into an item; `Ok(None)` skips it.
pub(crate) type Decode<T> = fn(&str) -> Result<Option<T>, Error>;
/// The id used to drop repeats.
pub(crate) type KeyOf<T> = fn(&T) -> Option<&str>;
/// Turns a catch-up answer into the items newer than the given time (ms since the epoch),
/// and an [`ErrorKind::CatchUp`] error to hand out after them when the answer reached the
/// query's limits without reaching back to the second time (where the gap began, by the
/// newest item handed out before it): the gap may hold more than it found.
pub(crate) type CatchUpDecode<T> = fn(&str, f64, f64) -> Result<(Vec<T>, Option<Error>), Error>;
/// The service's timestamp of an item (ms since the epoch), when it has one.
pub(crate) type StampOf<T> = fn(&T) -> Option<f64>;

/// How a subscription fetches what it missed during a gap.
pub(crate) struct CatchUp<T> {
    pub(crate) decode: CatchUpDecode<T>,
    pub(crate) stamp_of: StampOf<T>,
    /// How far before the newest item handed out it looks again, in ms.
    pub(crate) overlap_ms: f64,
}

/// The items of one live subscription.
///
/// The subscription survives reconnects and session restarts: the session resubscribes and
/// this stream keeps going. It ends when the session closes. Dropping it sends
/// `stop_subscription`.
///
/// Repeats (an item the service sends again around a reconnect, or one a catch-up finds
/// again) are dropped only by the streams of [`AgentSession::messages`] and
/// [`AgentSession::chat_activity`], which know their items' ids (the last
/// [`Config::dedup_window`] are remembered). The streams of [`AgentSession::subscribe`],
/// [`AgentSession::subscribe_document`] and [`AgentSession::subscribe_raw`] hand out every
/// event the service sends, repeats included.
///
/// [`AgentSession::messages`]: crate::AgentSession::messages
/// [`AgentSession::chat_activity`]: crate::AgentSession::chat_activity
/// [`AgentSession::subscribe`]: crate::AgentSession::subscribe
/// [`AgentSession::subscribe_document`]: crate::AgentSession::subscribe_document
/// [`AgentSession::subscribe_raw`]: crate::AgentSession::subscribe_raw
/// [`Config::dedup_window`]: crate::Config::dedup_window
///
/// # Cancel safety
/// `next()` is cancel safe: an item is only taken when it is returned.
pub struct Subscription<T> {
    rx: mpsc::Receiver<SubEvent>,
    /// Why the subscription ended, handed out once its channel is drained and closed.
    ending: Arc<Ending>,
    /// Stops the subscription when this stream is dropped.
    guard: Handover,
    decode: Decode<T>,
    key_of: Option<KeyOf<T>>,
    dedup: Dedup,
    catch_up: Option<CatchUp<T>>,
    /// When the subscription started (this machine's clock): nothing older, less the
    /// overlap, is caught up.
    since_ms: f64,
    /// The newest service timestamp of an item handed out.
    newest_ms: f64,
    /// `newest_ms` when the first gap not yet caught up began.
    gap_newest_ms: Option<f64>,
    backlog: VecDeque<T>,
    /// Handed out once `backlog` is drained: a catch-up's note that it was cut off.
    after_backlog: Option<Error>,
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("key", &self.guard.key)
            .finish_non_exhaustive()
    }
}

impl<T> Subscription<T> {
    pub(crate) fn new(
        rx: mpsc::Receiver<SubEvent>,
        ending: Arc<Ending>,
        guard: Handover,
        decode: Decode<T>,
        key_of: Option<KeyOf<T>>,
        dedup_window: usize,
    ) -> Self {
        let since_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        Self {
            rx,
            ending,
            guard,
            decode,
            key_of,
            dedup: Dedup::new(dedup_window),
            catch_up: None,
            since_ms,
            newest_ms: f64::NEG_INFINITY,
            gap_newest_ms: None,
            backlog: VecDeque::new(),
            after_backlog: None,
        }
    }

    pub(crate) fn with_catch_up(mut self, catch_up: CatchUp<T>) -> Self {
        self.catch_up = Some(catch_up);
        self
    }

    /// Whether `item` is handed out (not a repeat); if so, its stamp is noted for the next
    /// catch-up.
    fn fresh(&mut self, item: &T) -> bool {
        let fresh = match self.key_of.and_then(|k| k(item)) {
            Some(id) => self.dedup.first_time(id),
            None => true,
        };
        if fresh && let Some(stamp) = self.catch_up.as_ref().and_then(|c| (c.stamp_of)(item)) {
            self.newest_ms = self.newest_ms.max(stamp);
        }
        fresh
    }

    /// The time from which a catch-up's items count as missed: what came before the newest
    /// item handed out before the gap was delivered live, but for the overlap. (Items that
    /// came live after the gap do not count: the catch-up answers later than they come.)
    ///
    /// With nothing handed out before the gap, the bound is this host's clock at the
    /// subscription, which may run ahead of the service's: the overlap is its allowance too.
    ///
    /// Returns that time and the one the gap began at (the overlap not taken off).
    fn missed_since(&mut self, overlap_ms: f64) -> (f64, f64) {
        let before_gap = self.gap_newest_ms.take().unwrap_or(self.newest_ms);
        let gap_start = self.since_ms.max(before_gap);
        (gap_start - overlap_ms, gap_start)
    }

    /// The local id of this subscription (stable across reconnects).
    #[must_use]
    pub fn key(&self) -> u64 {
        self.guard.key
    }
}

// Items are owned plain data; the stream never pins them.
impl<T> Unpin for Subscription<T> {}

impl<T> Stream for Subscription<T> {
    type Item = Result<T, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            while let Some(item) = this.backlog.pop_front() {
                if this.fresh(&item) {
                    return Poll::Ready(Some(Ok(item)));
                }
            }
            if let Some(cut_off) = this.after_backlog.take() {
                return Poll::Ready(Some(Err(cut_off)));
            }
            let event = match this.rx.poll_recv(cx) {
                Poll::Ready(Some(event)) => event,
                Poll::Ready(None) => return Poll::Ready(this.ending.take().map(Err)),
                Poll::Pending => return Poll::Pending,
            };
            match event {
                SubEvent::Error(e) => return Poll::Ready(Some(Err(e))),
                SubEvent::Data(raw) => match (this.decode)(&raw) {
                    Err(e) => return Poll::Ready(Some(Err(e))),
                    Ok(None) => {}
                    Ok(Some(item)) => {
                        if this.fresh(&item) {
                            return Poll::Ready(Some(Ok(item)));
                        }
                        tracing::debug!(
                            key = this.guard.key,
                            "dropped a repeated subscription item"
                        );
                    }
                },
                SubEvent::Gap => {
                    // The earliest gap not caught up counts: a catch-up lost with a second
                    // socket leaves the first gap open.
                    this.gap_newest_ms.get_or_insert(this.newest_ms);
                }
                SubEvent::CatchUp(data) => match this
                    .catch_up
                    .as_ref()
                    .map(|c| (c.decode, c.overlap_ms))
                    .map(|(decode, overlap)| {
                        let (since, gap_start) = this.missed_since(overlap);
                        decode(&data, since, gap_start)
                    }) {
                    Some(Ok((items, cut_off))) => {
                        // Both are empty here: the loop hands them out before it reads an event.
                        this.backlog.extend(items);
                        this.after_backlog = cut_off;
                    }
                    Some(Err(e)) => {
                        return Poll::Ready(Some(Err(Error::with_source(ErrorKind::CatchUp, e))));
                    }
                    None => {}
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use tokio::sync::mpsc;

    use super::{CatchUp, Handover, SubEvent, Subscription};
    use crate::error::{Error, ErrorKind};

    fn decode(text: &str) -> Result<Option<u32>, Error> {
        #[derive(serde::Deserialize)]
        struct Payload {
            data: Option<u32>,
        }
        crate::session::decode_json::<Payload>(text).map(|p| p.data)
    }

    /// DATA payloads reach the subscriber unvalidated (the driver only finds their outline),
    /// so the subscriber's parse is what must catch a broken one: as an error item, after
    /// which the stream goes on.
    #[tokio::test]
    async fn a_broken_payload_is_an_error_item_and_the_stream_goes_on() {
        let (tx, mut sub) = plain();
        for text in [r#"{"data":tru}"#, r#"{"data":7}"#] {
            tx.send(SubEvent::Data(text.into())).await.expect("open");
        }
        let first = sub.next().await.expect("an item");
        assert!(matches!(first, Err(ref e) if matches!(e.kind(), ErrorKind::Decode)));
        assert_eq!(sub.next().await.expect("an item").expect("decoded"), 7);
    }

    /// The items of a catch-up here are their own stamps.
    /// A catch-up of more than three stamps counts as cut off.
    fn stamps_since(
        text: &str,
        since_ms: f64,
        _gap_start_ms: f64,
    ) -> Result<(Vec<u32>, Option<Error>), Error> {
        let stamps = crate::session::decode_json::<Vec<u32>>(text)?;
        let cut_off = (stamps.len() > 3).then(|| Error::new(ErrorKind::CatchUp));
        let items = stamps
            .into_iter()
            .filter(|t| f64::from(*t) >= since_ms)
            .collect();
        Ok((items, cut_off))
    }

    /// A subscription of `u32`s without catch-up, and the sender of its events.
    fn plain() -> (mpsc::Sender<SubEvent>, Subscription<u32>) {
        let (tx, rx) = mpsc::channel(8);
        let (drop_tx, _drop_rx) = mpsc::unbounded_channel();
        let sub = Subscription::new(
            rx,
            Default::default(),
            Handover::new(1, drop_tx),
            decode,
            None,
            16,
        );
        (tx, sub)
    }

    fn stamped(overlap_ms: f64) -> (mpsc::Sender<SubEvent>, Subscription<u32>) {
        let (tx, sub) = plain();
        let sub = sub.with_catch_up(CatchUp {
            decode: stamps_since,
            stamp_of: |t| Some(f64::from(*t)),
            overlap_ms,
        });
        (tx, sub)
    }

    /// A catch-up that cannot be used (here: undecodable; the driver sends the same kind when
    /// the query fails) tells the subscriber its items may have a hole, and the stream goes on.
    #[tokio::test]
    async fn a_failed_catch_up_is_reported_and_the_stream_goes_on() {
        let (tx, mut sub) = stamped(0.0);
        sub.since_ms = 0.0;
        for event in [
            SubEvent::CatchUp("[1, tru".into()),
            SubEvent::CatchUp("[2, 3]".into()),
            SubEvent::Data(r#"{"data":4}"#.into()),
        ] {
            tx.send(event).await.expect("open");
        }
        let first = sub.next().await.expect("an item");
        assert!(
            matches!(first, Err(ref e) if matches!(e.kind(), ErrorKind::CatchUp)),
            "{first:?}"
        );
        let rest: Vec<u32> = sub.take(3).map(|i| i.expect("an item")).collect().await;
        assert_eq!(rest, [2, 3, 4]);
    }

    /// A catch-up takes what is newer than the subscription and than the newest item handed
    /// out before the gap, less the overlap: what the subscriber had before the gap does not
    /// come again, and what came live after it does not hide the gap.
    #[tokio::test]
    async fn a_catch_up_keeps_only_items_from_the_gap() {
        let (tx, mut sub) = stamped(20.0);
        // Stamps are small numbers here; the subscription started at 100.
        sub.since_ms = 100.0;
        for event in [
            SubEvent::CatchUp("[50, 150, 250]".into()),
            SubEvent::Data(r#"{"data":300}"#.into()),
            SubEvent::Gap,
            SubEvent::Data(r#"{"data":400}"#.into()),
            SubEvent::CatchUp("[250, 290, 300, 350]".into()),
        ] {
            tx.send(event).await.expect("open");
        }
        let items: Vec<u32> = sub.take(7).map(|i| i.expect("an item")).collect().await;
        // The second catch-up starts 20 before 300, the newest handed out before the gap (these
        // items have no ids, so nothing is dropped as a repeat).
        assert_eq!(items, [150, 250, 300, 400, 290, 300, 350]);
    }

    /// A catch-up that reached its limits hands out what it found, then says it may have
    /// missed more, and the stream goes on.
    #[tokio::test]
    async fn a_cut_off_catch_up_says_so_after_its_items() {
        let (tx, mut sub) = stamped(0.0);
        sub.since_ms = 0.0;
        for event in [
            SubEvent::CatchUp("[1, 2, 3, 4]".into()),
            SubEvent::Data(r#"{"data":5}"#.into()),
        ] {
            tx.send(event).await.expect("open");
        }
        drop(tx);
        let items: Vec<_> = sub.collect().await;
        let shown: Vec<String> = items
            .iter()
            .map(|i| match i {
                Ok(n) => n.to_string(),
                Err(e) => format!("{:?}", e.kind()),
            })
            .collect();
        assert_eq!(shown, ["1", "2", "3", "4", "CatchUp", "5"]);
    }

    /// The host clock may run ahead of the service's: with nothing handed out before the first
    /// gap, the catch-up still looks back the overlap from when the subscription started.
    #[tokio::test]
    async fn a_first_gap_looks_back_the_overlap_before_the_subscription() {
        let (tx, mut sub) = stamped(5_000.0);
        // The host clock read 10 000 at the subscription; the service's clock is 2 000 behind.
        sub.since_ms = 10_000.0;
        for event in [SubEvent::Gap, SubEvent::CatchUp("[4000, 8500]".into())] {
            tx.send(event).await.expect("open");
        }
        drop(tx);
        let items: Vec<u32> = sub.map(|i| i.expect("an item")).collect().await;
        // 8 500 came after the subscription on the service's clock; 4 000 is older than it
        // even with the overlap.
        assert_eq!(items, [8500]);
    }
}
