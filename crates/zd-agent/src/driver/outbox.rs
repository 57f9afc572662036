//! The way out: queued frames, rate-limited batches, socket writes, request encoding.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use zd_wire::chat::StopSubscription;

use crate::error::{Error, ErrorKind};
use crate::rate_limit::RequestLimiter;
use crate::transport::Socket;

use super::{Cause, DriverInner, Payload, Pending};

type SinkPoll =
    fn(&mut Socket, &mut Context<'_>) -> Poll<Result<(), tokio_tungstenite::tungstenite::Error>>;

impl DriverInner {
    pub(super) fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub(super) fn queue(&mut self, pending: Pending) -> u64 {
        let id = self.new_id();
        self.pending.insert(id, pending);
        self.outbox.push_back(id);
        id
    }

    /// Waits for the socket's sink to be ready (`poll_ready`) or flushed (`poll_flush`).
    ///
    /// A write that cannot go on for the keepalive deadline counts the socket dead: the peer
    /// reads nothing, and while the driver waits here its keepalive cannot notice.
    async fn on_socket(&mut self, poll: SinkPoll) -> Result<(), Cause> {
        let limit = self.shared.config.keepalive_deadline;
        // Armed only once the write waits: one done at once costs no timer.
        let mut stalled: Option<Pin<Box<tokio::time::Sleep>>> = None;
        self.meanwhile(|driver, cx| {
            let Some(socket) = driver.socket.as_mut() else {
                return Poll::Ready(Err(Cause::lost("no socket")));
            };
            if let Poll::Ready(done) = poll(socket, cx) {
                return Poll::Ready(done.map_err(|e| Cause::failed("write failed", e)));
            }
            let timer = stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
            timer.as_mut().poll(cx).map(|()| {
                Err(Cause::lost(
                    "a write waited longer than the keepalive deadline: the peer reads nothing",
                ))
            })
        })
        .await
    }

    /// Hands one frame to the socket (sent at the next flush).
    async fn feed(&mut self, text: String) -> Result<(), Cause> {
        self.on_socket(|socket, cx| socket.poll_ready_unpin(cx))
            .await?;
        let Some(socket) = self.socket.as_mut() else {
            return Err(Cause::lost("no socket"));
        };
        socket
            .start_send_unpin(WsMessage::text(text))
            .map_err(|e| Cause::failed("write failed", e))
    }

    async fn flush(&mut self) -> Result<(), Cause> {
        self.on_socket(|socket, cx| socket.poll_flush_unpin(cx))
            .await
    }

    /// Sends the frame whose limiter slot was just taken, then every further frame that has a
    /// slot right now (up to a batch), with one flush: pipelined requests cost one syscall.
    pub(super) async fn send_next(&mut self) -> Result<(), Cause> {
        const BATCH: usize = 64;
        let mut fed = 0;
        let mut first = true;
        while fed < BATCH {
            if !first && !batch_more(&self.outbox, self.limiter.as_ref()) {
                break;
            }
            first = false;
            let Some(text) = self.encode_next() else {
                continue;
            };
            self.feed(text).await?;
            fed += 1;
        }
        if fed > 0 { self.flush().await } else { Ok(()) }
    }

    /// The next frame of the outbox, encoded; `None` when that entry is gone or failed.
    fn encode_next(&mut self) -> Option<String> {
        let id = self.outbox.pop_front()?;
        let text = match self.pending.get_mut(&id) {
            None => return None,
            Some(Pending::Request { reply, status, .. }) if reply.is_closed() => {
                // The caller gave up before it was sent; sending it now would surprise them.
                let status = status.is_some();
                self.pending.remove(&id);
                if status {
                    self.status_request_failed();
                }
                return None;
            }
            Some(Pending::Request { payload, sent, .. }) => {
                *sent = true;
                Ok(encode_request(id, payload))
            }
            Some(Pending::SubStart { key }) => match self.subs.get(key) {
                // Not when an earlier try was taken meanwhile: it would start a second id.
                Some(sub) if sub.server_id.is_none() => Ok(encode_request(id, &sub.payload)),
                _ => {
                    self.pending.remove(&id);
                    return None;
                }
            },
            Some(Pending::SubStop { server_id, .. }) => {
                StopSubscription::new(id, server_id.as_str())
                    .encode()
                    .map_err(|e| e.to_string())
            }
            Some(Pending::CatchUp { key }) => {
                match self.subs.get(key).and_then(|s| s.catch_up.as_ref()) {
                    Some(payload) => Ok(encode_request(id, payload)),
                    None => {
                        self.pending.remove(&id);
                        return None;
                    }
                }
            }
            Some(Pending::StatusRestore { .. }) => match self.agent_status {
                Some(status) => Ok(encode_request(id, &crate::session::status_payload(status))),
                None => {
                    self.pending.remove(&id);
                    return None;
                }
            },
        };
        let text = match text {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(error = %e, "could not encode a request");
                if let Some(Pending::Request { reply, .. }) = self.pending.remove(&id) {
                    let _ = reply.send(Err(Error::new(ErrorKind::Decode)));
                }
                return None;
            }
        };
        Some(text)
    }

    pub(super) async fn write(&mut self, text: String) -> Result<(), Cause> {
        self.feed(text).await?;
        self.flush().await
    }
}

/// Whether `send_next` puts one more frame in its batch: only when one waits (checked first,
/// so a lone request does not spend a second limiter slot for nothing), and then it takes a
/// slot.
pub(super) fn batch_more(outbox: &VecDeque<u64>, limiter: Option<&RequestLimiter>) -> bool {
    !outbox.is_empty() && limiter.is_none_or(RequestLimiter::try_acquire)
}

/// The frame `Request { id, payload }.encode()` of zd-wire writes, byte for byte, built from the
/// pre-escaped document (a test pins the two together).
pub(super) fn encode_request(id: u64, payload: &Payload) -> String {
    let vars = payload.variables.as_ref().map(|v| v.get());
    let mut out = String::with_capacity(64 + payload.query.json.len() + vars.map_or(0, str::len));
    out.push_str(r#"{"type":"request","id":"#);
    // itoa, not `write!`: the formatting machinery is a cold detour on every request.
    out.push_str(itoa::Buffer::new().format(id));
    out.push_str(r#","payload":{"query":"#);
    out.push_str(&payload.query.json);
    if let Some(vars) = vars {
        out.push_str(r#","variables":"#);
        out.push_str(vars);
    }
    if let Some(name) = &payload.operation_json {
        out.push_str(r#","operationName":"#);
        out.push_str(name);
    }
    out.push_str("}}");
    out
}
