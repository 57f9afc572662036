//! Handing events to subscribers without losing any to a full buffer.

use tokio::sync::mpsc;

use crate::subscription::SubEvent;

use super::DriverInner;

impl DriverInner {
    pub(super) async fn route(&mut self, subscription_id: &str, event: SubEvent) {
        let Some(key) = self.routes.get(subscription_id).copied() else {
            tracing::debug!("DATA for an unknown subscription dropped");
            return;
        };
        let Some(sub) = self.subs.get_mut(&key) else {
            return;
        };
        if std::mem::take(&mut sub.gap) {
            self.deliver(key, SubEvent::Gap).await;
            self.deliver(key, event).await;
            return;
        }
        // The common case, on the subscriber already found: room in its buffer.
        match sub.tx.try_send(event) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(event)) => self.deliver(key, event).await,
        }
    }

    /// Hands `event` to subscriber `key`, waiting for room rather than losing it.
    async fn deliver(&mut self, key: u64, event: SubEvent) {
        let Some(sub) = self.subs.get(&key) else {
            return;
        };
        match sub.tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                // The reader is behind: wait for it rather than lose an item.
                let tx = sub.tx.clone();
                let _ = self.meanwhile_subscriber(tx.send(event)).await;
            }
            // The Subscription was dropped; its stop is already queued.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Hands `event` to subscriber `key` now, or keeps it for `deliver_held` (in order) when
    /// the subscriber's buffer is full or earlier events wait there already.
    pub(super) fn offer(&mut self, key: u64, event: SubEvent) {
        if self.undelivered.iter().any(|(k, _)| *k == key) {
            self.undelivered.push((key, event));
            return;
        }
        let Some(sub) = self.subs.get(&key) else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(event)) = sub.tx.try_send(event) {
            self.undelivered.push((key, event));
        }
    }

    /// Hands over the events that found their subscriber's buffer full, waiting for room as
    /// `route` does; a subscriber dropped meanwhile loses nothing it could still read.
    pub(super) async fn deliver_held(&mut self) {
        for (key, event) in std::mem::take(&mut self.undelivered) {
            let Some(tx) = self.subs.get(&key).map(|s| s.tx.clone()) else {
                continue;
            };
            let _ = self.meanwhile_subscriber(tx.send(event)).await;
        }
    }
}
