//! The task that keeps the published values current: recompute on every state event (a
//! burst of events is coalesced into one computation) and when a windowed count ages out.
//! It is the only publisher of the values the connections see.

use std::sync::{Arc, Weak};

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tokio::time::Instant;

use super::Realtime;
use crate::state::StateEvent;

/// Runs until the emulator shuts down or drops the service. The values were published once
/// before the start; `next_expiry` is when that computation's windowed counts next drop.
pub(crate) async fn run(
    realtime: Weak<Realtime>,
    mut events: broadcast::Receiver<Arc<StateEvent>>,
    mut shutdown: watch::Receiver<bool>,
    mut next_expiry: Option<Instant>,
) {
    loop {
        let expiry = async {
            match next_expiry {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.changed() => return,
            event = events.recv() => match event {
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    // Coalesce whatever else is already queued.
                    loop {
                        match events.try_recv() {
                            Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                            Err(broadcast::error::TryRecvError::Empty) => break,
                            Err(broadcast::error::TryRecvError::Closed) => return,
                        }
                    }
                }
                Err(RecvError::Closed) => return,
            },
            () = expiry => {}
        }
        let Some(rt) = realtime.upgrade() else { return };
        next_expiry = rt.publish();
    }
}
