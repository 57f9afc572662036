//! `Subscription<T>`: a stream of one subscription's items that stops it when dropped.

use std::collections::VecDeque;
use std::pin::Pin;
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
}

/// Turns a DATA payload into an item; `Ok(None)` skips it.
pub(crate) type Decode<T> = fn(&str) -> Result<Option<T>, Error>;
/// The id used to drop repeats.
pub(crate) type KeyOf<T> = fn(&T) -> Option<&str>;
/// Turns a catch-up answer into the items newer than the given time (ms since the epoch).
pub(crate) type CatchUpDecode<T> = fn(&str, f64) -> Result<Vec<T>, Error>;

/// The items of one live subscription.
///
/// The subscription survives reconnects and session restarts: the session resubscribes and
/// this stream keeps going, without repeats (items carrying an id are remembered for a bounded
/// window). It ends when the session closes. Dropping it sends `stop_subscription`.
///
/// # Cancel safety
/// `next()` is cancel safe: an item is only taken when it is returned.
pub struct Subscription<T> {
    rx: mpsc::Receiver<SubEvent>,
    key: u64,
    drop_tx: mpsc::UnboundedSender<u64>,
    decode: Decode<T>,
    key_of: Option<KeyOf<T>>,
    dedup: Dedup,
    catch_up: Option<CatchUpDecode<T>>,
    since_ms: f64,
    backlog: VecDeque<T>,
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<T> Subscription<T> {
    pub(crate) fn new(
        rx: mpsc::Receiver<SubEvent>,
        key: u64,
        drop_tx: mpsc::UnboundedSender<u64>,
        decode: Decode<T>,
        key_of: Option<KeyOf<T>>,
        dedup_window: usize,
    ) -> Self {
        let since_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        Self {
            rx,
            key,
            drop_tx,
            decode,
            key_of,
            dedup: Dedup::new(dedup_window),
            catch_up: None,
            since_ms,
            backlog: VecDeque::new(),
        }
    }

    pub(crate) fn with_catch_up(mut self, decode: CatchUpDecode<T>) -> Self {
        self.catch_up = Some(decode);
        self
    }

    fn fresh(&mut self, item: &T) -> bool {
        match self.key_of.and_then(|k| k(item)) {
            Some(id) => self.dedup.first_time(id),
            None => true,
        }
    }

    /// The local id of this subscription (stable across reconnects).
    #[must_use]
    pub fn key(&self) -> u64 {
        self.key
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
            let event = match this.rx.poll_recv(cx) {
                Poll::Ready(Some(event)) => event,
                Poll::Ready(None) => return Poll::Ready(None),
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
                        tracing::debug!(key = this.key, "dropped a repeated subscription item");
                    }
                },
                SubEvent::CatchUp(raw) => match this.catch_up.map(|f| f(&raw, this.since_ms)) {
                    Some(Ok(items)) => this.backlog.extend(items),
                    Some(Err(e)) => {
                        return Poll::Ready(Some(Err(Error::with_source(ErrorKind::CatchUp, e))));
                    }
                    None => {}
                },
            }
        }
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        // The driver may be gone already; then there is nothing left to stop.
        let _ = self.drop_tx.send(self.key);
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use tokio::sync::mpsc;

    use super::{SubEvent, Subscription};
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
        let (tx, rx) = mpsc::channel(4);
        let (drop_tx, _drop_rx) = mpsc::unbounded_channel();
        let mut sub = Subscription::new(rx, 1, drop_tx, decode, None, 16);
        for text in [r#"{"data":tru}"#, r#"{"data":7}"#] {
            tx.send(SubEvent::Data(text.into())).await.expect("open");
        }
        let first = sub.next().await.expect("an item");
        assert!(matches!(first, Err(ref e) if matches!(e.kind(), ErrorKind::Decode)));
        assert_eq!(sub.next().await.expect("an item").expect("decoded"), 7);
    }

    /// A catch-up that cannot be used (here: undecodable; the driver sends the same kind when
    /// the query fails) tells the subscriber its items may have a hole, and the stream goes on.
    #[tokio::test]
    async fn a_failed_catch_up_is_reported_and_the_stream_goes_on() {
        fn catch_up(text: &str, _since_ms: f64) -> Result<Vec<u32>, Error> {
            crate::session::decode_json::<Vec<u32>>(text)
        }
        let (tx, rx) = mpsc::channel(4);
        let (drop_tx, _drop_rx) = mpsc::unbounded_channel();
        let mut sub = Subscription::new(rx, 1, drop_tx, decode, None, 16).with_catch_up(catch_up);
        tx.send(SubEvent::CatchUp("[1, tru".into()))
            .await
            .expect("open");
        tx.send(SubEvent::CatchUp("[2, 3]".into()))
            .await
            .expect("open");
        tx.send(SubEvent::Data(r#"{"data":4}"#.into()))
            .await
            .expect("open");
        let first = sub.next().await.expect("an item");
        assert!(
            matches!(first, Err(ref e) if matches!(e.kind(), ErrorKind::CatchUp)),
            "{first:?}"
        );
        let rest: Vec<u32> = sub.take(3).map(|i| i.expect("an item")).collect().await;
        assert_eq!(rest, [2, 3, 4]);
    }
}
