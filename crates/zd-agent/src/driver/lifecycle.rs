//! What the driver tells the session's owner (state, lifecycle events, facts), and how it ends.

use crate::error::Error;
use crate::state::{LifecycleEvent, SessionState, SubscriptionFacts};
use crate::transport::close_within;

use super::{DriverInner, Pending};

impl DriverInner {
    pub(super) fn set_state(&self, state: SessionState) {
        self.shared.state.send_replace(state);
    }

    pub(super) fn emit(&self, event: LifecycleEvent) {
        tracing::info!(?event, "lifecycle");
        // No receiver is fine: lifecycle events are for whoever listens.
        let _ = self.shared.lifecycle.send(event);
    }

    pub(super) fn publish_facts(&self) {
        let mut facts = self.shared.lock_facts();
        facts.websocket_url = Some(self.started.websocket_url.clone());
        facts.session_id = Some(self.started.session_id.clone());
        facts.client_id = Some(self.started.client_id.clone());
        facts.agent_status = self.agent_status;
        facts.subscriptions = self
            .subs
            .iter()
            .map(|(key, s)| SubscriptionFacts {
                key: *key,
                query: s.payload.query.text.to_string(),
                variables: s.payload.variables.as_ref().map(|v| v.get().to_owned()),
                server_id: s.server_id.clone(),
            })
            .collect();
    }

    pub(super) async fn shutdown_socket(&mut self) {
        if let Some(mut socket) = self.socket.take() {
            // Closing is a courtesy: whether or not the frame got out, the socket is gone.
            let _ = close_within(&mut socket, self.shared.config.keepalive_deadline).await;
        }
    }

    pub(super) fn close(&mut self, e: &Error) {
        let reason = e.with_causes().to_string();
        tracing::info!(%reason, "session closed");
        self.set_state(SessionState::Closed);
        self.emit(LifecycleEvent::Closed { reason });
        self.deadlines.clear();
        for (_, p) in self.pending.drain() {
            if let Pending::Request { reply, .. } = p {
                let _ = reply.send(Err(e.share()));
            }
        }
        for (_, mut sub) in std::mem::take(&mut self.subs) {
            sub.end(e.share());
        }
        self.routes.clear();
    }
}
