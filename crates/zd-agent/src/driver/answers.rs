//! What an answer (or its failure) settles, by the kind of request it answers.

use crate::error::{CatchUpRefused, Error, ErrorKind};
use crate::subscription::SubEvent;

use super::{Answer, DriverInner, Pending};

/// Refused catch-ups in a row after which a subscription stops sending its catch-up: a query
/// the service cannot run (it selects fields the reference only infers) comes back the same
/// after every gap, while one execution failure between good ones is a hiccup.
const CATCH_UP_REFUSALS: u8 = 3;

impl DriverInner {
    pub(super) fn on_answer(&mut self, id: u64, pending: Pending, outcome: Answer) {
        self.settle_deadline(id);
        match pending {
            Pending::Request { reply, status, .. } => {
                match (status, &outcome) {
                    (Some(status), Ok(_)) => {
                        self.agent_status = Some(status);
                        self.superseded_restore = None;
                        self.publish_facts();
                    }
                    (Some(_), Err(_)) => self.status_request_failed(),
                    (None, _) => {}
                }
                let _ = reply.send(outcome);
            }
            // Another try of this start was taken already (it was sent again after going
            // unanswered): whatever this one says, the subscription runs on the other's id.
            Pending::SubStart { key }
                if self
                    .subs
                    .get(&key)
                    .is_some_and(|sub| sub.server_id.is_some()) =>
            {
                tracing::debug!(
                    ok = outcome.is_ok(),
                    "answer of a superseded subscription start"
                );
            }
            Pending::SubStart { key } => match outcome {
                Ok(_) => {
                    let e = Error::new(ErrorKind::Decode);
                    self.sub_failed(key, e);
                }
                Err(e) => self.sub_start_error(key, e),
            },
            Pending::SubStop { server_id, tries } => {
                self.on_stop_answer(server_id, tries, outcome);
            }
            Pending::CatchUp { key } => {
                let Some(sub) = self.subs.get_mut(&key) else {
                    return;
                };
                let gap = std::mem::take(&mut sub.gap);
                sub.catch_up_losses = 0;
                let refused = matches!(&outcome, Err(e) if matches!(e.kind(), ErrorKind::Service(_)) && !e.is_retryable());
                sub.catch_up_refusals = if refused {
                    sub.catch_up_refusals.saturating_add(1)
                } else {
                    0
                };
                let event = match outcome {
                    Ok(Some(data)) => SubEvent::CatchUp(data),
                    Ok(None) => return,
                    Err(e) if sub.catch_up_refusals >= CATCH_UP_REFUSALS => {
                        tracing::warn!(error = %e.with_causes(), "catch-up query refused again; catch-up off");
                        sub.catch_up = None;
                        SubEvent::Error(Error::with_source(ErrorKind::CatchUp, CatchUpRefused(e)))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e.with_causes(), "catch-up query failed");
                        // The subscriber hears of it: its items may have a hole.
                        SubEvent::Error(Error::with_source(ErrorKind::CatchUp, e))
                    }
                };
                // The gap's items exist nowhere else: a full reader gets them once it has
                // room, as live items do (see `deliver_held`).
                if gap {
                    self.offer(key, SubEvent::Gap);
                }
                self.offer(key, event);
            }
            Pending::StatusRestore { tries } => {
                if let Err(e) = outcome {
                    self.restore_failed(tries, &e);
                }
            }
        }
    }
}
