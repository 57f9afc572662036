//! Error names of the Chat Conversations API and how each may be retried.

use std::{fmt, time::Duration};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The `name` of a GraphQL error, as documented, with its retry rule attached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorName {
    /// `UNAUTHORIZED`: the credentials are invalid or the agent is disabled.
    Unauthorized,
    /// `FORBIDDEN`: the account or token may not use the API.
    Forbidden,
    /// `RATE_LIMITED`: too many requests; retry with backoff.
    RateLimited,
    /// `MAX_SUB`: the session already holds the maximum number of subscriptions.
    MaxSub,
    /// `GRAPHQL_EXEC_ERROR`: the request could not be executed.
    GraphQlExecError,
    /// `GRAPHQL_SUB_START_ERROR`: a subscription could not start; a few retries are allowed.
    GraphQlSubStartError,
    /// A name this crate does not know, kept verbatim.
    Unknown(String),
}

/// How an operation that failed with a given [`ErrorName`] may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryPolicy {
    /// The same call will fail the same way: do not retry.
    Never,
    /// Retry with exponential backoff, without a fixed attempt cap.
    Backoff,
    /// Retry with exponential backoff, but only a few times within a time window.
    Limited {
        /// The documented minimum number of retries worth making.
        min_attempts: u8,
        /// The documented maximum number of retries.
        max_attempts: u8,
        /// All retries must fall within this window.
        within: Duration,
    },
}

impl RetryPolicy {
    /// True unless the policy is [`RetryPolicy::Never`].
    #[must_use]
    pub const fn allows_retry(&self) -> bool {
        !matches!(self, Self::Never)
    }
}

impl ErrorName {
    /// Every documented name (without `Unknown`).
    pub const KNOWN: [ErrorName; 6] = [
        Self::Unauthorized,
        Self::Forbidden,
        Self::RateLimited,
        Self::MaxSub,
        Self::GraphQlExecError,
        Self::GraphQlSubStartError,
    ];

    /// Classifies a name from the wire.
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        match name {
            "UNAUTHORIZED" => Self::Unauthorized,
            "FORBIDDEN" => Self::Forbidden,
            "RATE_LIMITED" => Self::RateLimited,
            "MAX_SUB" => Self::MaxSub,
            "GRAPHQL_EXEC_ERROR" => Self::GraphQlExecError,
            "GRAPHQL_SUB_START_ERROR" => Self::GraphQlSubStartError,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The name as it appears on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Forbidden => "FORBIDDEN",
            Self::RateLimited => "RATE_LIMITED",
            Self::MaxSub => "MAX_SUB",
            Self::GraphQlExecError => "GRAPHQL_EXEC_ERROR",
            Self::GraphQlSubStartError => "GRAPHQL_SUB_START_ERROR",
            Self::Unknown(name) => name,
        }
    }

    /// The documented retry rule. Unknown names are never retried: repeating a call whose
    /// failure we cannot classify risks hammering the service for nothing.
    #[must_use]
    pub const fn retry_policy(&self) -> RetryPolicy {
        match self {
            Self::RateLimited => RetryPolicy::Backoff,
            Self::GraphQlSubStartError => RetryPolicy::Limited {
                min_attempts: 3,
                max_attempts: 5,
                within: Duration::from_secs(30),
            },
            Self::Unauthorized
            | Self::Forbidden
            | Self::MaxSub
            | Self::GraphQlExecError
            | Self::Unknown(_) => RetryPolicy::Never,
        }
    }

    /// True when the documented rule allows any retry.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        self.retry_policy().allows_retry()
    }
}

impl From<&str> for ErrorName {
    fn from(name: &str) -> Self {
        Self::from_name(name)
    }
}

impl fmt::Display for ErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Self::from_name(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_keeps_text() {
        for name in ErrorName::KNOWN {
            assert_eq!(ErrorName::from_name(name.as_str()), name);
        }
        let odd = ErrorName::from_name("TEAPOT");
        assert_eq!(odd, ErrorName::Unknown("TEAPOT".into()));
        assert_eq!(odd.as_str(), "TEAPOT");
    }

    #[test]
    fn retryability_follows_the_documented_table() {
        assert_eq!(ErrorName::RateLimited.retry_policy(), RetryPolicy::Backoff);
        assert_eq!(
            ErrorName::GraphQlSubStartError.retry_policy(),
            RetryPolicy::Limited {
                min_attempts: 3,
                max_attempts: 5,
                within: Duration::from_secs(30)
            }
        );
        for never in [
            ErrorName::Unauthorized,
            ErrorName::Forbidden,
            ErrorName::MaxSub,
            ErrorName::GraphQlExecError,
            ErrorName::Unknown("X".into()),
        ] {
            assert!(!never.is_retryable(), "{never}");
        }
        // Usable in const context, so a retry layer can build tables at compile time.
        const { assert!(ErrorName::RateLimited.is_retryable()) };
    }
}
