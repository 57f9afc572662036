//! Keepalive: PINGs, and a socket that went silent after one.

use std::task::{Context, Poll};

use futures_util::SinkExt;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
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
        let text = self.next_ping()?;
        self.write(text).await
    }

    /// The next PING frame.
    pub(super) fn next_ping(&mut self) -> Result<String, Cause> {
        self.ping_seq += 1;
        let payload = serde_json::value::to_raw_value(&self.ping_seq)
            .map_err(|e| Cause::failed("ping encoding", e))?;
        Ping::new(&payload)
            .encode()
            .map_err(|e| Cause::failed("ping encoding", e))
    }

    /// Keeps PINGs going while the driver waits on a slow subscriber (see `meanwhile`): the
    /// service closes a socket it hears nothing from, however long the wait. `ping` is a
    /// PING due but not yet written, `flushing` one written but not yet flushed. Returns
    /// whether anything moved.
    ///
    /// Nothing else is written meanwhile (the loop writes only between its steps), so a PING
    /// cannot land inside another frame. Silence is not judged here: frames are not read
    /// meanwhile, so the PONGs wait unread. A failed write is left for the loop, whose next
    /// read or write meets the same dead socket.
    pub(super) fn poll_keepalive(
        &mut self,
        cx: &mut Context<'_>,
        ping: &mut Option<String>,
        flushing: &mut bool,
    ) -> bool {
        let mut progress = false;
        if ping.is_none() && self.keepalive.poll_tick(cx).is_ready() {
            // An encoding failure cannot happen for a number; the tick is skipped if it does.
            *ping = self.next_ping().ok();
            progress = true;
        }
        let Some(socket) = self.socket.as_mut() else {
            *ping = None;
            *flushing = false;
            return progress;
        };
        if ping.is_some() {
            match socket.poll_ready_unpin(cx) {
                Poll::Pending => {}
                Poll::Ready(Err(_)) => *ping = None,
                Poll::Ready(Ok(())) => {
                    if let Some(text) = ping.take() {
                        *flushing = socket.start_send_unpin(WsMessage::text(text)).is_ok();
                        progress = true;
                    }
                }
            }
        }
        if *flushing && socket.poll_flush_unpin(cx).is_ready() {
            *flushing = false;
            progress = true;
        }
        progress
    }
}

pub(super) fn silence() -> Cause {
    Cause::lost("no PONG or other traffic within the keepalive deadline after a PING")
}
