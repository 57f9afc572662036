//! Client-chosen request ids.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A request id: a JSON number or string chosen by the client and echoed by the server.
///
/// The id keeps its JSON type, so a response to `"id": 7` carries `7` and a response to
/// `"id": "7"` carries `"7"`; the two are different ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// A numeric id (integers are kept exactly; any float is kept as serde_json reads it).
    Number(serde_json::Number),
    /// A string id.
    String(String),
}

impl RequestId {
    /// The id as an unsigned integer, when it is one.
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Self::Number(n) => n.as_u64(),
            Self::String(_) => None,
        }
    }

    /// The id as a string, when it is one.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Number(_) => None,
            Self::String(s) => Some(s),
        }
    }
}

impl From<u64> for RequestId {
    fn from(id: u64) -> Self {
        Self::Number(id.into())
    }
}

impl From<u32> for RequestId {
    fn from(id: u32) -> Self {
        Self::Number(id.into())
    }
}

impl From<i64> for RequestId {
    fn from(id: i64) -> Self {
        Self::Number(id.into())
    }
}

impl From<&str> for RequestId {
    fn from(id: &str) -> Self {
        Self::String(id.to_owned())
    }
}

impl From<String> for RequestId {
    fn from(id: String) -> Self {
        Self::String(id)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::String(s) => write!(f, "{s:?}"),
        }
    }
}
