//! Subscription starts, acks, retries and stops.

use tokio::sync::oneshot;
use tokio::time::Instant;
use zd_wire::chat::ErrorName;

use crate::error::Error;
use crate::retry::RetryClass;
use crate::subscription::Handover;

use super::{Answer, DriverInner, Pending};

/// The subscription key of routes whose subscriber is gone (keys count from 1): their DATA is
/// dropped until the stop is answered.
const NO_SUB: u64 = 0;

/// Live subscriptions the service allows one session.
const SERVICE_SUBSCRIPTIONS: usize = 10;

/// Most tries of a `stop_subscription` that keeps failing with an error worth retrying.
const STOP_TRIES: u32 = 5;

impl DriverInner {
    pub(super) fn unsubscribe(&mut self, key: u64) {
        let Some(sub) = self.subs.remove(&key) else {
            return;
        };
        if let Some(id) = sub.server_id {
            self.queue_stop(id);
        }
        self.publish_facts();
    }

    /// Stops `server_id` on the service. Its route stays until the stop is answered: DATA
    /// still coming for it is dropped (no subscriber has its key), and if the socket goes
    /// first, the resumed session sends the stop again (see `on_new_socket`) instead of
    /// leaving the subscription running on the service, holding one of its ten.
    pub(super) fn queue_stop(&mut self, server_id: String) {
        self.routes.entry(server_id.clone()).or_insert(NO_SUB);
        let id = self.queue(Pending::SubStop {
            server_id,
            tries: 0,
        });
        self.timeout_from_now(id);
    }

    pub(super) fn on_ack(&mut self, key: u64, server_id: String) {
        let Some(sub) = self.subs.get_mut(&key) else {
            // Dropped while starting: stop it right away.
            self.queue_stop(server_id);
            return;
        };
        if sub.server_id.is_some() {
            // Another try of this restart was answered first (it went unanswered for long
            // and was sent again): one id is enough, and this one would hold a slot.
            self.queue_stop(server_id);
            return;
        }
        let resumed = match sub.ack.take() {
            Some(ack) => {
                let handover = Handover::new(key, self.shared.drop_tx.clone());
                if let Err(Ok(handover)) = ack.send(Ok(handover)) {
                    // The caller stopped waiting (its timeout): nobody will read this
                    // subscription, so it must not hold one of the session's ten slots.
                    handover.disarm();
                    self.forget_sub(key);
                    self.queue_stop(server_id);
                    return;
                }
                // From here a caller that stops waiting before it takes the handover drops
                // it, which stops the subscription as a dropped `Subscription` does.
                false
            }
            None => true,
        };
        sub.server_id = Some(server_id.clone());
        sub.start_tries = 1;
        sub.unanswered = 0;
        sub.backoff = None;
        let skip = std::mem::take(&mut sub.skip_catch_up);
        let catch_up = resumed && sub.catch_up.is_some() && !skip;
        self.routes.insert(server_id, key);
        if catch_up {
            let id = self.queue(Pending::CatchUp { key });
            self.timeout_from_now(id);
        }
        self.publish_facts();
    }

    pub(super) fn on_stop_answer(&mut self, server_id: String, tries: u32, outcome: Answer) {
        match outcome {
            Err(e) if e.is_retryable() && tries < STOP_TRIES => {
                // Gone from the service only once a stop is answered: a transient
                // failure (unavailable, rate limited) would otherwise leak the slot.
                let delay = self.shared.config.retry.rate_limited.nth_delay(tries);
                tracing::debug!(error = %e, ?delay, "retrying a stop_subscription");
                let id = self.new_id();
                let tries = tries + 1;
                self.pending
                    .insert(id, Pending::SubStop { server_id, tries });
                self.timers.push((Instant::now() + delay, id));
                self.timeout_from_now(id);
            }
            outcome => {
                // DATA of a stopped id may come until the stop is answered; not after.
                self.routes.remove(&server_id);
                if let Err(e) = outcome {
                    tracing::debug!(error = %e, "stop_subscription refused");
                }
            }
        }
    }

    pub(super) fn sub_start_error(&mut self, key: u64, e: Error) {
        let retry = &self.shared.config.retry;
        let held = self.subs.len();
        // Ids the service may still run that we are stopping (routes of no live start).
        let started = self.subs.values().filter(|s| s.server_id.is_some()).count();
        let stopping = self.routes.len().saturating_sub(started);
        let Some(sub) = self.subs.get_mut(&key) else {
            return;
        };
        if sub.ack.as_ref().is_some_and(oneshot::Sender::is_closed) {
            // The caller stopped waiting: no point in trying again.
            self.forget_sub(key);
            return;
        }
        let max_sub = e.error_name() == Some(&ErrorName::MaxSub);
        if max_sub && stopping == 0 && self.resumed && held <= SERVICE_SUBSCRIPTIONS {
            // We hold no more than the service allows and stop nothing, so it still runs
            // subscriptions of an earlier socket whose ids never reached us (a start answered
            // as the socket died): nothing can stop those but a new session. This one is
            // started there.
            self.restart_for
                .get_or_insert_with(|| "MAX_SUB on a resumed session".to_owned());
            return;
        }
        let class = match e.error_name() {
            Some(ErrorName::RateLimited) => RetryClass::RateLimited,
            Some(ErrorName::GraphQlSubStartError) => RetryClass::SubscriptionStart,
            // Stops not answered yet still count on the service: try again once they are.
            _ if max_sub && stopping > 0 => RetryClass::RateLimited,
            // Unavailable, a timeout, a dropped answer: backed off like a rate limit rather
            // than ending a stream that a reconnect was restoring.
            _ if e.is_retryable() => RetryClass::RateLimited,
            _ => RetryClass::Never,
        };
        let delay = match class {
            RetryClass::RateLimited => sub
                .backoff
                .get_or_insert_with(|| retry.rate_limited.build())
                .next(),
            RetryClass::SubscriptionStart if sub.start_tries < retry.subscription_start_tries => {
                sub.backoff
                    .get_or_insert_with(|| retry.subscription_start.build())
                    .next()
                    .filter(|d| sub.first_try.elapsed() + *d <= retry.subscription_start_window)
            }
            _ => None,
        };
        match delay {
            Some(delay) => {
                sub.start_tries += 1;
                tracing::debug!(
                    ?delay,
                    tries = sub.start_tries,
                    "retrying a subscription start"
                );
                let id = self.new_id();
                self.pending.insert(id, Pending::SubStart { key });
                self.timers.push((Instant::now() + delay, id));
                self.start_deadline(id, key, delay);
            }
            None => self.sub_failed(key, e),
        }
    }

    pub(super) fn sub_failed(&mut self, key: u64, e: Error) {
        let Some(mut sub) = self.subs.remove(&key) else {
            return;
        };
        sub.end(e);
        self.publish_facts();
    }

    /// Forgets a subscription that has no server id of its own (nothing to stop).
    pub(super) fn forget_sub(&mut self, key: u64) {
        if self.subs.remove(&key).is_some() {
            self.publish_facts();
        }
    }
}
