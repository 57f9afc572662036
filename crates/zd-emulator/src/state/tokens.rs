//! Chat OAuth scopes, and the access tokens issued for fewer scopes than an agent's own.
//!
//! Each agent has one access token with every scope (`read write chat`). A grant that asks for
//! fewer gets a token of its own, so the services can refuse what its scopes do not cover: the
//! Conversations API answers `FORBIDDEN` to a token without `chat` (its docs name "your access
//! token not having enough scope" as a cause), and the Real Time Chat API refuses a token
//! without `read`.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use super::ChatState;
use super::model::AgentRecord;
use crate::ids;

/// Narrowed tokens kept at once; past it the oldest stops working (a client asking for a new
/// token per call would otherwise grow the emulator without bound).
const MAX_ISSUED: usize = 4096;

/// The scopes of a chat OAuth token.
///
/// ```
/// use zd_emulator::state::ChatScopes;
///
/// let scopes = ChatScopes::parse("read write")?;
/// assert!(scopes.read && !scopes.chat);
/// assert_eq!(scopes.to_string(), "read write");
/// assert_eq!(ChatScopes::parse("")?, ChatScopes::ALL);
/// assert!(ChatScopes::parse("read admin").is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatScopes {
    /// `read`: reading data, the Real Time Chat API among it.
    pub read: bool,
    /// `write`: changing data.
    pub write: bool,
    /// `chat`: acting as an agent through the Conversations API.
    pub chat: bool,
}

impl ChatScopes {
    /// `read write chat`, what an agent's own token carries.
    pub const ALL: Self = Self {
        read: true,
        write: true,
        chat: true,
    };

    /// Parses a space-separated scope list. An empty list means every scope the emulator's
    /// OAuth client allows, which is all three.
    ///
    /// # Errors
    /// The first word that is not `read`, `write` or `chat`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut words = list.split_whitespace().peekable();
        if words.peek().is_none() {
            return Ok(Self::ALL);
        }
        let mut scopes = Self {
            read: false,
            write: false,
            chat: false,
        };
        for word in words {
            match word {
                "read" => scopes.read = true,
                "write" => scopes.write = true,
                "chat" => scopes.chat = true,
                other => return Err(other.to_owned()),
            }
        }
        Ok(scopes)
    }
}

impl fmt::Display for ChatScopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words = [
            (self.read, "read"),
            (self.write, "write"),
            (self.chat, "chat"),
        ];
        let mut first = true;
        for (_, word) in words.iter().filter(|(held, _)| *held) {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(word)?;
            first = false;
        }
        Ok(())
    }
}

/// Tokens issued for fewer scopes than every one, oldest first.
#[derive(Default)]
pub(super) struct IssuedTokens {
    by_token: HashMap<String, (String, ChatScopes)>,
    order: VecDeque<String>,
}

impl fmt::Debug for IssuedTokens {
    /// The tokens are secrets: only their number is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedTokens")
            .field("len", &self.order.len())
            .finish_non_exhaustive()
    }
}

impl IssuedTokens {
    fn insert(&mut self, token: String, agent: String, scopes: ChatScopes) {
        while self.order.len() >= MAX_ISSUED {
            if let Some(old) = self.order.pop_front() {
                self.by_token.remove(&old);
            }
        }
        self.order.push_back(token.clone());
        self.by_token.insert(token, (agent, scopes));
    }
}

impl ChatState {
    /// An access token acting as the agent whose own token is `agent_token`, with `scopes`:
    /// the agent's own token for every scope, else a new token. `None` for an unknown agent.
    pub fn issue_token(&self, agent_token: &str, scopes: ChatScopes) -> Option<String> {
        let agent = self.agent_by_own_token(agent_token)?;
        if scopes == ChatScopes::ALL {
            return Some(agent.access_token.expose_secret().to_owned());
        }
        let token = format!("zd-scoped-{}", ids::random_token(32));
        self.inner
            .lock()
            .issued
            .insert(token.clone(), agent.key, scopes);
        Some(token)
    }

    /// The agent `token` acts as, and the scopes it carries.
    pub fn token_grant(&self, token: &str) -> Option<(AgentRecord, ChatScopes)> {
        if let Some(agent) = self.agent_by_own_token(token) {
            return Some((agent, ChatScopes::ALL));
        }
        let inner = self.inner.lock();
        let (key, scopes) = inner.issued.by_token.get(token)?;
        let agent = inner.agents.iter().find(|a| &a.key == key)?.clone();
        Some((agent, *scopes))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::ChatScopes;
    use crate::account::AccountConfig;
    use crate::clock::Clock;
    use crate::state::ChatState;

    #[test]
    fn issued_tokens_never_show_in_debug_output() {
        let state = ChatState::new(&AccountConfig::demo(), Clock::new());
        let scopes = ChatScopes::parse("read").unwrap();
        let token = state.issue_token("demo-bot-token", scopes).unwrap();
        assert_eq!(state.token_grant(&token).unwrap().1, scopes);
        let shown = format!("{state:?}");
        assert!(!shown.contains(&token), "{shown}");
        assert!(!shown.contains("demo-bot-token"), "{shown}");
    }

    #[test]
    fn the_oldest_narrowed_token_stops_working_past_the_bound() {
        let state = ChatState::new(&AccountConfig::demo(), Clock::new());
        let scopes = ChatScopes::parse("read").unwrap();
        let issue = || state.issue_token("demo-bot-token", scopes).unwrap();
        let first = issue();
        let second = issue();
        for _ in 2..super::MAX_ISSUED {
            issue();
        }
        assert!(state.token_grant(&first).is_some());
        issue();
        assert!(state.token_grant(&first).is_none());
        assert!(state.token_grant(&second).is_some());
    }
}
