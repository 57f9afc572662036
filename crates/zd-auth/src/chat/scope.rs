//! Chat OAuth scopes.

use std::fmt;

/// A Chat OAuth scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChatScope {
    /// `read`
    Read,
    /// `write`
    Write,
    /// `chat`: needed by the Chat Conversations API.
    Chat,
    /// A scope this crate does not know, kept verbatim.
    Unknown(String),
}

impl ChatScope {
    /// The wire form.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Chat => "chat",
            Self::Unknown(s) => s,
        }
    }

    /// Parses one scope.
    pub fn from_wire(s: &str) -> Self {
        match s {
            "read" => Self::Read,
            "write" => Self::Write,
            "chat" => Self::Chat,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// Parses a space-separated scope list (`"read write chat"`).
    pub fn parse_list(s: &str) -> Vec<Self> {
        s.split_ascii_whitespace().map(Self::from_wire).collect()
    }

    /// Joins scopes with spaces, the wire form of a list.
    pub fn join(scopes: &[Self]) -> String {
        scopes
            .iter()
            .map(Self::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Display for ChatScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
