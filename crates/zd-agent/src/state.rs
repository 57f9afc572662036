//! The session's state machine and the facts needed to resume it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ops::AgentStatus;

/// Where a session is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SessionState {
    /// Opening the first socket.
    Connecting,
    /// Socket open, requests flowing.
    Active,
    /// The socket dropped; reconnecting to the same URL.
    Reconnecting {
        /// 1 for the first try.
        attempt: u32,
    },
    /// The session could not be resumed; starting a new one.
    Restarting,
    /// Finished for good.
    Closed,
}

impl SessionState {
    /// Whether moving from `self` to `next` is a transition the driver may make.
    #[must_use]
    pub fn can_become(&self, next: &SessionState) -> bool {
        use SessionState::*;
        match (self, next) {
            (Closed, _) => false,
            (_, Closed) => true,
            (Connecting, Active) => true,
            (Active, Reconnecting { attempt }) => *attempt == 1,
            (Active, Restarting) => true,
            (Reconnecting { attempt: a }, Reconnecting { attempt: b }) => *b == a + 1,
            (Reconnecting { .. }, Active | Restarting) => true,
            (Restarting, Active | Restarting) => true,
            _ => false,
        }
    }
}

/// How `mapped` a local subscription is, kept so it can be restarted on a new socket.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionFacts {
    /// The local key (stable across reconnects).
    pub key: u64,
    /// The GraphQL document.
    pub query: String,
    /// Its variables (JSON text).
    pub variables: Option<String>,
    /// The server's current id for it, when acknowledged on the current socket.
    pub server_id: Option<String>,
}

impl fmt::Debug for SubscriptionFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionFacts")
            .field("key", &self.key)
            .field("server_id", &self.server_id)
            .finish_non_exhaustive()
    }
}

/// Everything needed to resume a session elsewhere: one serializable struct.
///
/// The WebSocket URL and client id authenticate the socket, so `Debug` hides them; treat a
/// serialized copy like a credential.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumableFacts {
    /// The authenticated WebSocket URL of the current session.
    pub websocket_url: Option<String>,
    /// The session id.
    pub session_id: Option<String>,
    /// The client id.
    pub client_id: Option<String>,
    /// Live subscriptions.
    pub subscriptions: Vec<SubscriptionFacts>,
    /// The last agent status set through this session, restored after a restart.
    pub agent_status: Option<AgentStatus>,
}

impl fmt::Debug for ResumableFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumableFacts")
            .field(
                "websocket_url",
                &self.websocket_url.as_ref().map(|_| "[REDACTED]"),
            )
            .field("session_id", &self.session_id)
            .field("client_id", &self.client_id.as_ref().map(|_| "[REDACTED]"))
            .field("subscriptions", &self.subscriptions)
            .field("agent_status", &self.agent_status)
            .finish()
    }
}

/// What the session went through, in order; see [`crate::AgentSession::lifecycle`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LifecycleEvent {
    /// A socket is open and the session is active.
    Connected {
        /// The session id.
        session_id: String,
    },
    /// The socket dropped; trying to get it back.
    Reconnecting {
        /// 1 for the first try.
        attempt: u32,
        /// What happened.
        cause: String,
    },
    /// A new session replaced the old one. Restoring the last agent status and restarting the
    /// live subscriptions on it begins now: they are sent right after this event, not yet
    /// answered. A restore that fails for good is reported with [`Self::StatusNotRestored`];
    /// a subscription that cannot be restarted ends with an error item.
    Restarted {
        /// The new session id.
        session_id: String,
    },
    /// The last agent status could not be set again on a new session: the service refused
    /// it, or kept failing for reasons worth retrying until the tries ran out. The agent
    /// shows whatever the new session started with until the status is set again.
    StatusNotRestored {
        /// The status that was to be restored.
        status: AgentStatus,
        /// What the last try met.
        cause: String,
    },
    /// Finished for good.
    Closed {
        /// Why.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        use SessionState::*;
        assert!(Connecting.can_become(&Active));
        assert!(Active.can_become(&Reconnecting { attempt: 1 }));
        assert!(!Active.can_become(&Reconnecting { attempt: 3 }));
        assert!(Reconnecting { attempt: 1 }.can_become(&Reconnecting { attempt: 2 }));
        assert!(Reconnecting { attempt: 2 }.can_become(&Restarting));
        assert!(Restarting.can_become(&Active));
        assert!(Active.can_become(&Closed));
        assert!(!Closed.can_become(&Active));
        assert!(!Connecting.can_become(&Restarting));
    }

    #[test]
    fn facts_round_trip_and_hide_secrets_in_debug() {
        let facts = ResumableFacts {
            websocket_url: Some("wss://h/stream/0.1/graphql/s:c".into()),
            session_id: Some("s".into()),
            client_id: Some("c".into()),
            subscriptions: vec![SubscriptionFacts {
                key: 1,
                query: "subscription { message { node { id } } }".into(),
                variables: None,
                server_id: Some("sub1".into()),
            }],
            agent_status: Some(AgentStatus::Online),
        };
        let json = serde_json::to_string(&facts).unwrap();
        let back: ResumableFacts = serde_json::from_str(&json).unwrap();
        assert_eq!(back, facts);
        let dbg = format!("{facts:?}");
        assert!(!dbg.contains("wss://"), "{dbg}");
        assert!(!dbg.contains("\"c\""), "{dbg}");
        insta::assert_json_snapshot!("resumable_facts", serde_json::to_value(&facts).unwrap());
    }
}
