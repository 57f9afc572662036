//! The task that keeps the published values current: recompute on every state event (a
//! burst of events is coalesced into one computation) and when a windowed count ages out.
//! It is the only publisher of the values the connections see.
//!
//! The time-based values (waits, chat durations, response times) are recomputed only when
//! an event that affects them is among those coalesced: the docs push them "when a metric
//! changes in response to an event affecting the metric's value", naming a visitor or agent
//! joining, leaving or sending a message, a department transfer and the chat ending. After
//! any other event (typing, tags, a rating, a status change) and when a windowed count ages
//! out, the counts and agent metrics are recomputed and the time-based values stay as last
//! published: recomputing them at that moment would push a wait that merely grew with the
//! clock, which no affecting event changed.

use std::sync::{Arc, Weak};

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tokio::time::Instant;

use super::Realtime;
use crate::state::{EventKind, StateEvent};

/// Whether `kind` is an event that moves the time-based metrics.
fn moves_time_based(kind: &EventKind) -> bool {
    match kind {
        // Arrivals, joins, leaves and messages (log entries), state changes (served, back in
        // the queue, assigned, the chat ending), transfers, and a reset that forgets every chat.
        EventKind::VisitorArrived { .. }
        | EventKind::Log(_)
        | EventKind::ChannelState { .. }
        | EventKind::Transferred { .. }
        | EventKind::Reset => true,
        EventKind::Tagged { .. }
        | EventKind::Rated { .. }
        | EventKind::Typing { .. }
        | EventKind::AgentStatus { .. }
        | EventKind::DepartmentStatus { .. } => false,
    }
}

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
        // Whether the coalesced events include one that moves the time-based values; a lag
        // lost some events, which may have.
        let mut times_moved = false;
        tokio::select! {
            _ = shutdown.changed() => return,
            event = events.recv() => {
                match event {
                    Ok(event) => times_moved |= moves_time_based(&event.kind),
                    Err(RecvError::Lagged(_)) => times_moved = true,
                    Err(RecvError::Closed) => return,
                }
                // Coalesce whatever else is already queued.
                loop {
                    match events.try_recv() {
                        Ok(event) => times_moved |= moves_time_based(&event.kind),
                        Err(broadcast::error::TryRecvError::Lagged(_)) => times_moved = true,
                        Err(broadcast::error::TryRecvError::Empty) => break,
                        Err(broadcast::error::TryRecvError::Closed) => return,
                    }
                }
            }
            () = expiry => {}
        }
        let Some(rt) = realtime.upgrade() else { return };
        next_expiry = rt.publish(times_moved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_joins_leaves_messages_transfers_and_endings_move_time_based_values() {
        let channel = || "c".to_owned();
        assert!(moves_time_based(&EventKind::Transferred {
            channel: channel(),
            department: "d".into(),
        }));
        assert!(!moves_time_based(&EventKind::Typing {
            channel: channel(),
            agent: None,
            typing: true,
        }));
        assert!(!moves_time_based(&EventKind::Tagged {
            channel: channel(),
            tags: Vec::new(),
        }));
    }
}
