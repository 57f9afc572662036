//! Keepalive: PINGs, and a socket that went silent after one.

use tokio::time::Instant;
use zd_wire::chat::Ping;

use super::{Cause, DriverInner, Pending};

impl DriverInner {
    /// Whether a PING went unanswered, and nothing else came, for the keepalive deadline.
    ///
    /// Measured from the PING, not from the last frame: an idle socket hears nothing between
    /// PINGs, so with a PING period longer than the deadline the last frame is always older.
    pub(super) fn silent_too_long(&self, now: Instant) -> bool {
        self.ping_out
            .is_some_and(|sent| now.duration_since(sent) >= self.shared.config.keepalive_deadline)
    }

    pub(super) async fn on_tick(&mut self) -> Result<(), Cause> {
        let now = Instant::now();
        if self.silent_too_long(now) {
            return Err(silence());
        }
        self.ping_out.get_or_insert(now);
        // Callers that gave up (timeout, dropped future) leave their entries behind. A status
        // request among them that never went out set nothing.
        let mut unsent_status = false;
        self.pending.retain(|_, p| match p {
            Pending::Request {
                reply,
                status,
                sent,
                ..
            } if reply.is_closed() => {
                unsent_status |= status.is_some() && !*sent;
                false
            }
            _ => true,
        });
        if unsent_status {
            self.status_request_failed();
        }
        self.ping_seq += 1;
        let payload = serde_json::value::to_raw_value(&self.ping_seq)
            .map_err(|e| Cause::lost(format!("ping encoding: {e}")))?;
        let text = Ping::new(&payload)
            .encode()
            .map_err(|e| Cause::lost(format!("ping encoding: {e}")))?;
        self.write(text).await
    }
}

pub(super) fn silence() -> Cause {
    Cause::lost("no PONG or other traffic within the keepalive deadline after a PING")
}
