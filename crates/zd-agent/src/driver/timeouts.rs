//! Request deadlines, retry timers and what happens when they pass.

use std::collections::hash_map::Entry;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, ErrorKind};

use super::keepalive::silence;
use super::{Cause, DriverInner, Pending};

/// Tries of a restored subscription's start that the service leaves unanswered before the
/// subscriber is told [`ErrorKind::Timeout`].
const RESTART_TRIES: u8 = 3;

impl DriverInner {
    pub(super) fn next_wake(&self) -> Option<Instant> {
        let retry = self.timers.iter().map(|(t, _)| *t).min();
        let at = match (retry, self.deadlines.earliest()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Only between a PING and the next frame: the silence check needs no wake otherwise.
        match self.ping_out {
            Some(sent) => {
                let silence = sent + self.shared.config.keepalive_deadline;
                Some(at.map_or(silence, |at| at.min(silence)))
            }
            None => at,
        }
    }

    /// Every start gets a deadline. A first start is answered within the request timeout,
    /// counted from the caller's call, or its caller is told [`ErrorKind::Timeout`] and the
    /// subscription forgotten: the caller has stopped waiting, and a start nobody reads must
    /// not hold one of the ten. A restored start (sent `delay` from now) that goes unanswered
    /// is sent again (see `expire`): without it, its stream would stay silent for good.
    pub(super) fn start_deadline(&mut self, id: u64, key: u64, delay: Duration) {
        let Some(sub) = self.subs.get(&key) else {
            return;
        };
        let timeout = self.shared.config.request_timeout;
        let deadline = if sub.ack.is_some() {
            sub.first_try + timeout
        } else {
            Instant::now() + delay + timeout
        };
        self.deadlines.push(deadline, id);
    }

    /// Request `id` was answered (it has left `pending`): its deadline goes.
    pub(super) fn settle_deadline(&mut self, id: u64) {
        let pending = &self.pending;
        self.deadlines
            .settle(id, |next| pending.contains_key(&next));
    }

    /// Requests whose deadline has passed fail with [`ErrorKind::Timeout`], in deadline order:
    /// a caller told of its timeout can count on everything due before it being settled too.
    pub(super) fn expire_requests(&mut self, now: Instant) {
        let mut due = Vec::new();
        self.deadlines.expire(now, |id| due.push(id));
        for id in due {
            self.expire(id);
        }
    }

    fn expire(&mut self, id: u64) {
        let Entry::Occupied(entry) = self.pending.entry(id) else {
            return;
        };
        match entry.get() {
            Pending::Request { .. } => {
                if let Pending::Request { reply, status, .. } = entry.remove() {
                    let _ = reply.send(Err(Error::new(ErrorKind::Timeout)));
                    if status.is_some() {
                        self.status_request_failed();
                    }
                }
            }
            Pending::SubStop { .. } => {
                if let Pending::SubStop { server_id, .. } = entry.remove() {
                    tracing::debug!("stop_subscription unanswered; given up");
                    self.routes.remove(&server_id);
                }
            }
            // The entry stays: an ack that still comes has its id stopped, or taken when no
            // later try was answered first (`on_ack`).
            Pending::SubStart { key } => {
                let key = *key;
                let Some(sub) = self.subs.get_mut(&key) else {
                    return;
                };
                // A restart sent on a socket that has died meanwhile is not unanswered: the
                // next socket starts it afresh (`on_new_socket`), however long recovery takes.
                if sub.ack.is_none() && self.socket.is_none() {
                    return;
                }
                if let Some(ack) = sub.ack.take() {
                    tracing::debug!("subscription start unanswered; given up");
                    let _ = ack.send(Err(Error::new(ErrorKind::Timeout)));
                    self.forget_sub(key);
                    return;
                }
                if sub.server_id.is_some() {
                    return;
                }
                sub.unanswered = sub.unanswered.saturating_add(1);
                if sub.unanswered < RESTART_TRIES {
                    tracing::debug!(
                        tries = sub.unanswered,
                        "a subscription restart went unanswered; sending it again"
                    );
                    let id = self.queue(Pending::SubStart { key });
                    self.start_deadline(id, key, Duration::ZERO);
                } else {
                    tracing::warn!("a subscription restart went unanswered; given up");
                    self.sub_failed(key, Error::new(ErrorKind::Timeout));
                }
            }
            // Likewise a restore: kept for the next socket, its tries untouched.
            Pending::StatusRestore { .. } if self.socket.is_none() => {}
            // Unanswered is failed: retried or reported as any other failure.
            Pending::StatusRestore { .. } | Pending::CatchUp { .. } => {
                let pending = entry.remove();
                self.on_answer(id, pending, Err(Error::new(ErrorKind::Timeout)));
            }
        }
    }

    /// Request `id` is answered within the request timeout from now, or `expire` settles it.
    /// A stop unanswered by then is given up, route and all: the documents do not say that the
    /// service answers stops, and routes kept for ever would be stopped again on every resume.
    pub(super) fn timeout_from_now(&mut self, id: u64) {
        let deadline = Instant::now() + self.shared.config.request_timeout;
        self.deadlines.push(deadline, id);
    }

    pub(super) fn fire_timers(&mut self) -> Result<(), Cause> {
        let now = Instant::now();
        if self.silent_too_long(now) {
            return Err(silence());
        }
        self.expire_requests(now);
        let mut due = Vec::new();
        self.timers.retain(|(at, id)| {
            if *at <= now {
                due.push(*id);
                false
            } else {
                true
            }
        });
        self.outbox.extend(due);
        Ok(())
    }
}
