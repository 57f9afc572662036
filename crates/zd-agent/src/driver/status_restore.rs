//! Keeping the agent status the caller chose across restarts.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;
use crate::state::LifecycleEvent;

use super::{DriverInner, Pending};

/// Most tries of a status restore that keeps failing with an error worth retrying.
const RESTORE_TRIES: u32 = 8;

impl DriverInner {
    /// Queues the restore of the last agent status, sent `delay` from now, with a deadline.
    pub(super) fn queue_restore(&mut self, tries: u32, delay: Duration) {
        let id = self.new_id();
        self.pending.insert(id, Pending::StatusRestore { tries });
        if delay.is_zero() {
            self.outbox.push_back(id);
        } else {
            self.timers.push((Instant::now() + delay, id));
        }
        let deadline = Instant::now() + delay + self.shared.config.request_timeout;
        self.deadlines.push(deadline, id);
    }

    /// A restore that failed is tried again while the failure may pass (rate limited, the
    /// service unavailable, no answer), up to [`RESTORE_TRIES`]; then the listeners of the
    /// lifecycle hear of it, since the agent now shows a status nobody chose.
    pub(super) fn restore_failed(&mut self, tries: u32, e: &Error) {
        let Some(status) = self.agent_status else {
            return;
        };
        if e.is_retryable() && tries + 1 < RESTORE_TRIES {
            let delay = e
                .retry_after()
                .unwrap_or_else(|| self.shared.config.retry.rate_limited.nth_delay(tries));
            tracing::debug!(error = %e, ?delay, "retrying the agent status restore");
            self.queue_restore(tries + 1, delay);
            return;
        }
        tracing::error!(error = %e.with_causes(), "could not restore the agent status");
        self.emit(LifecycleEvent::StatusNotRestored {
            status,
            cause: e.with_causes().to_string(),
        });
    }

    /// A caller's status request set nothing: the restore it replaced is owed again, once no
    /// other status request of the caller's is pending (a restore sent now would go out after
    /// it and undo it; if it sets nothing either, the restore is owed then).
    pub(super) fn status_request_failed(&mut self) {
        let another = self.pending.values().any(|p| {
            matches!(
                p,
                Pending::Request {
                    status: Some(_),
                    ..
                }
            )
        });
        if another {
            return;
        }
        if let Some(tries) = self.superseded_restore.take() {
            self.queue_restore(tries, Duration::ZERO);
        }
    }
}
