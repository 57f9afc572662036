//! Topics: `chats.<key>`, `agents.<key>`, or a bare family in updates.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Family, Metric};

/// A subscription topic (`chats.incoming_chats`) or the bare family an update names
/// (`chats`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Topic {
    /// The part before the dot.
    pub family: Family,
    /// The part after the dot, if any.
    pub metric: Option<Metric>,
}

impl Topic {
    /// The topic of one known metric, e.g. `chats.missed_chats`. Unknown metrics get the
    /// `chats` family; build the struct directly to choose another.
    #[must_use]
    pub fn metric(metric: Metric) -> Self {
        Self {
            family: metric.family().unwrap_or(Family::Chats),
            metric: Some(metric),
        }
    }

    /// A bare family topic, as updates carry.
    #[must_use]
    pub const fn family(family: Family) -> Self {
        Self {
            family,
            metric: None,
        }
    }

    /// Parses a topic string. Never fails: unknown parts become `Unknown`.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        match text.split_once('.') {
            Some((family, key)) => Self {
                family: Family::from_name(family),
                metric: Some(Metric::from_key(key)),
            },
            None => Self::family(Family::from_name(text)),
        }
    }

    /// True when the metric, if any, is known and belongs to the topic's family.
    #[must_use]
    pub fn is_consistent(&self) -> bool {
        match &self.metric {
            None => !matches!(self.family, Family::Unknown(_)),
            Some(metric) => metric.family().as_ref() == Some(&self.family),
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.metric {
            Some(metric) => write!(f, "{}.{}", self.family, metric),
            None => write!(f, "{}", self.family),
        }
    }
}

impl Serialize for Topic {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Topic {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Self::parse(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let t = Topic::parse("chats.missed_chats");
        assert_eq!(t, Topic::metric(Metric::MissedChats));
        assert_eq!(t.to_string(), "chats.missed_chats");
        assert!(t.is_consistent());
        assert_eq!(Topic::parse("agents"), Topic::family(Family::Agents));
        assert!(!Topic::parse("agents.missed_chats").is_consistent());
        assert_eq!(Topic::parse("x.y.z").to_string(), "x.y.z");
    }
}
