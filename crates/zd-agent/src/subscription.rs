//! `Subscription<T>`: a stream of one subscription's items that stops it when dropped.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::dedup::Dedup;
use crate::error::Error;

/// What the driver hands a subscriber.
#[derive(Debug)]
pub(crate) enum SubEvent {
    /// A DATA payload (a GraphQL response), undecoded.
    Data(Box<RawValue>),
    /// A DATA error or a failure to restart the subscription.
    Error(Error),
}

/// Turns a DATA payload into an item; `Ok(None)` skips it.
pub(crate) type Decode<T> = fn(&str) -> Result<Option<T>, Error>;
/// The id used to drop repeats.
pub(crate) type KeyOf<T> = fn(&T) -> Option<&str>;

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
        Self {
            rx,
            key,
            drop_tx,
            decode,
            key_of,
            dedup: Dedup::new(dedup_window),
        }
    }

    /// The local id of this subscription (stable across reconnects).
    #[must_use]
    pub fn key(&self) -> u64 {
        self.key
    }
}

impl<T> Stream for Subscription<T> {
    type Item = Result<T, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let event = match this.rx.poll_recv(cx) {
                Poll::Ready(Some(event)) => event,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            match event {
                SubEvent::Error(e) => return Poll::Ready(Some(Err(e))),
                SubEvent::Data(raw) => match (this.decode)(raw.get()) {
                    Err(e) => return Poll::Ready(Some(Err(e))),
                    Ok(None) => {}
                    Ok(Some(item)) => {
                        let fresh = match this.key_of.and_then(|k| k(&item)) {
                            Some(id) => this.dedup.first_time(id),
                            None => true,
                        };
                        if fresh {
                            return Poll::Ready(Some(Ok(item)));
                        }
                        tracing::debug!(key = this.key, "dropped a repeated subscription item");
                    }
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
