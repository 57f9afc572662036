//! Recovery from a lost socket: reconnect, or restart the session, and pick up again.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use zd_wire::chat::ErrorName;

use crate::error::{Error, ErrorKind};
use crate::session::StartWait;
use crate::state::{LifecycleEvent, SessionState};
use crate::subscription::SubEvent;

use super::{Cause, DriverInner, Pending, Replay};

/// Catch-ups in a row lost with their socket after which the gap's catch-up is given up: an
/// answer that kills the socket every time (one larger than `max_frame_bytes`) would otherwise
/// reconnect for ever.
const CATCH_UP_LOSSES: u8 = 2;

impl DriverInner {
    pub(super) async fn recover(&mut self, cause: Cause) -> Result<(), Error> {
        if let Some(kind) = cause.fatal {
            return Err(Error::new(kind));
        }
        self.catch_ups_lost(&cause);
        self.fail_unreplayable(&cause);
        let shared = Arc::clone(&self.shared);
        let config = &shared.config;
        if !cause.restart {
            let mut backoff = config.reconnect.build();
            let mut attempt = 0u32;
            loop {
                attempt += 1;
                self.set_state(SessionState::Reconnecting { attempt });
                self.emit(LifecycleEvent::Reconnecting {
                    attempt,
                    cause: cause.to_string(),
                });
                let url = self.started.websocket_url.clone();
                // Boxed: opening a socket is a large future, and a rare one.
                match self.meanwhile_future(Box::pin(shared.open(&url))).await {
                    Ok(socket) => {
                        self.socket = Some(socket);
                        self.on_new_socket(false);
                        self.set_state(SessionState::Active);
                        self.emit(LifecycleEvent::Connected {
                            session_id: self.started.session_id.clone(),
                        });
                        return Ok(());
                    }
                    Err(e) => {
                        tracing::debug!(error = %e.with_causes(), attempt, "reconnect failed");
                        match backoff.next() {
                            Some(delay) => self.pause(delay).await?,
                            None => break,
                        }
                    }
                }
            }
        }
        let mut failures = 0usize;
        let mut renewed = false;
        let mut backoff = config.reconnect.build_unbounded();
        loop {
            self.set_state(SessionState::Restarting);
            match self.restart().await {
                Ok(()) => {
                    self.set_state(SessionState::Active);
                    self.emit(LifecycleEvent::Restarted {
                        session_id: self.started.session_id.clone(),
                    });
                    return Ok(());
                }
                // The refusal invalidated the credentials: renewable ones (a refreshing
                // token) get one more try with a fresh token, at once.
                Err(e) if !renewed && e.error_name() == Some(&ErrorName::Unauthorized) => {
                    renewed = true;
                    tracing::warn!(error = %e, "session restart refused; retrying with renewed credentials");
                }
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e.with_causes(), failures, "session restart failed");
                    if failures > config.max_restarts {
                        return Err(e);
                    }
                    let delay = e
                        .retry_after()
                        .or_else(|| backoff.next())
                        .unwrap_or_default();
                    self.pause(delay).await?;
                }
            }
        }
    }

    async fn restart(&mut self) -> Result<(), Error> {
        let shared = Arc::clone(&self.shared);
        let wait = StartWait::AtMost(shared.config.max_start_wait);
        let (started, socket) = self
            .meanwhile_future(Box::pin(shared.start_and_open(wait)))
            .await?;
        tracing::Span::current().record("session_id", started.session_id.as_str());
        self.started = started;
        self.socket = Some(socket);
        self.on_new_socket(true);
        Ok(())
    }

    /// Catch-ups the dying socket never answered. One lost once is sent again on the next
    /// socket (it covers both gaps); one lost again, or lost to a frame too large to read
    /// (its own answer, most likely: it would come back as large every time), is given up
    /// like a failed one: the subscriber gets an [`ErrorKind::CatchUp`] item, and the next
    /// socket runs no catch-up for it, so the session does not reconnect for ever.
    fn catch_ups_lost(&mut self, cause: &Cause) {
        let lost: Vec<(u64, u64)> = self
            .pending
            .iter()
            .filter_map(|(id, p)| match p {
                Pending::CatchUp { key } => Some((*id, *key)),
                _ => None,
            })
            .collect();
        for (id, key) in lost {
            self.pending.remove(&id);
            let Some(sub) = self.subs.get_mut(&key) else {
                continue;
            };
            sub.catch_up_losses = sub.catch_up_losses.saturating_add(1);
            if !cause.too_big && sub.catch_up_losses < CATCH_UP_LOSSES {
                continue;
            }
            tracing::warn!(%cause, "catch-up lost with its socket; given up");
            sub.catch_up_losses = 0;
            sub.skip_catch_up = true;
            let gap = std::mem::take(&mut sub.gap);
            if gap {
                self.offer(key, SubEvent::Gap);
            }
            let e = Error::with_source(ErrorKind::CatchUp, CatchUpLost(cause.to_string()));
            self.offer(key, SubEvent::Error(e));
        }
    }

    /// Requests already sent that may not be repeated fail now, with a retryable error whose
    /// source is why the socket went.
    fn fail_unreplayable(&mut self, cause: &Cause) {
        let max = self.shared.config.retry.connection_lost_retries;
        let doomed: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| {
                matches!(p, Pending::Request { replay, sent: true, resends, .. }
                    if *replay == Replay::Fail || *resends >= max)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in doomed {
            if let Some(Pending::Request { reply, status, .. }) = self.pending.remove(&id) {
                let _ = reply.send(Err(cause.connection_lost()));
                if status.is_some() {
                    self.status_request_failed();
                }
            }
        }
    }

    fn on_new_socket(&mut self, restarted: bool) {
        self.resumed = !restarted;
        self.restart_for = None;
        self.readable.set();
        self.ping_out = None;
        self.timers.clear();
        self.outbox.clear();
        // A restore not answered yet is still owed: the agent shows whatever the new
        // session started with until it is.
        let restore = self.pending.values().find_map(|p| match p {
            Pending::StatusRestore { tries } => Some(*tries),
            _ => None,
        });
        self.pending
            .retain(|_, p| matches!(p, Pending::Request { .. }));
        let mut requests: Vec<u64> = self.pending.keys().copied().collect();
        requests.sort_unstable();
        if restarted {
            self.routes.clear();
        }
        for sub in self.subs.values_mut() {
            // Only a catch-up needs to know where the gap began.
            sub.gap |= sub.catch_up.is_some();
            sub.server_id = None;
            sub.start_tries = 1;
            // A first start still awaited keeps its caller's clock (see `start_deadline`).
            if sub.ack.is_none() {
                sub.first_try = Instant::now();
            }
            sub.backoff = None;
            sub.unanswered = 0;
        }
        if !restarted {
            // A resumed session may still serve every id routed so far (the docs' "resume the
            // session without needing to set up again"), including stops an earlier socket
            // did not see answered. They are stopped before anything is started again, in that
            // order on the one socket, so the session never holds more than its ten; what they
            // might have delivered in between, the catch-up query fetches.
            let stale: Vec<String> = self.routes.keys().cloned().collect();
            for old in stale {
                self.queue_stop(old);
            }
        }
        if self.agent_status.is_some() {
            match (restarted, restore) {
                (true, _) => self.queue_restore(0, Duration::ZERO),
                (false, Some(tries)) => self.queue_restore(tries, Duration::ZERO),
                (false, None) => {}
            }
        }
        let keys: Vec<u64> = self.subs.keys().copied().collect();
        for key in keys {
            let id = self.queue(Pending::SubStart { key });
            self.start_deadline(id, key, Duration::ZERO);
        }
        for id in requests {
            if let Some(Pending::Request { resends, sent, .. }) = self.pending.get_mut(&id) {
                if *sent {
                    *resends += 1;
                }
                *sent = false;
            }
            self.outbox.push_back(id);
        }
        self.publish_facts();
    }
}

/// Why a catch-up was given up when its socket died before the answer.
#[derive(Debug)]
struct CatchUpLost(String);

impl std::fmt::Display for CatchUpLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the socket died before the catch-up's answer ({})",
            self.0
        )
    }
}

impl std::error::Error for CatchUpLost {}
