//! The task that keeps the published values current: recompute on every state event (a
//! burst of events is coalesced into one computation) and when a windowed count ages out.

use std::sync::{Arc, Weak};

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;

use super::{Realtime, compute};
use crate::state::StateEvent;

pub(crate) async fn run(
    realtime: Weak<Realtime>,
    mut events: broadcast::Receiver<Arc<StateEvent>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let next_expiry = {
            let Some(rt) = realtime.upgrade() else { return };
            let (values, next_expiry) = compute::compute(&rt.state, rt.state.clock().now());
            rt.values.send_if_modified(|v| {
                if **v == values {
                    false
                } else {
                    *v = Arc::new(values);
                    true
                }
            });
            next_expiry
        };
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
    }
}
