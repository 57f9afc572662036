//! The metric catalogue: keys, families, units and time windows.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The two metric families, which are also the first part of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Family {
    /// `chats`: chat metrics.
    Chats,
    /// `agents`: agent metrics.
    Agents,
    /// A family this crate does not know, kept verbatim.
    Unknown(String),
}

impl Family {
    /// Classifies a family name from the wire.
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        match name {
            "chats" => Self::Chats,
            "agents" => Self::Agents,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The family as it appears on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Chats => "chats",
            Self::Agents => "agents",
            Self::Unknown(name) => name,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a metric counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetricUnit {
    /// A number of chats, ratings or agents.
    Count,
    /// A duration in whole seconds.
    Seconds,
}

impl MetricUnit {
    /// The unit's name in the catalogue file.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Seconds => "seconds",
        }
    }
}

/// A metric key of the Real Time Chat API.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Metric {
    /// `incoming_chats`: requests not yet assigned to an agent.
    IncomingChats,
    /// `assigned_chats`: assigned but not yet served.
    AssignedChats,
    /// `missed_chats`: not served before the visitor left (windowed).
    MissedChats,
    /// `active_chats`: being served now.
    ActiveChats,
    /// `waiting_time_avg`: average wait for service, seconds.
    WaitingTimeAvg,
    /// `waiting_time_max`: longest current wait, seconds.
    WaitingTimeMax,
    /// `chat_duration_avg`: average duration of chats being served, seconds.
    ChatDurationAvg,
    /// `chat_duration_max`: longest duration of a chat being served, seconds.
    ChatDurationMax,
    /// `response_time_avg`: average wait for an agent reply, seconds.
    ResponseTimeAvg,
    /// `response_time_max`: longest wait for an agent reply, seconds.
    ResponseTimeMax,
    /// `satisfaction_good`: chats rated good (windowed).
    SatisfactionGood,
    /// `satisfaction_bad`: chats rated bad (windowed).
    SatisfactionBad,
    /// `agents_online`: agents logged in as online.
    AgentsOnline,
    /// `agents_away`: agents logged in as away.
    AgentsAway,
    /// `agents_invisible`: agents logged in as invisible.
    AgentsInvisible,
    /// A key this crate does not know, kept verbatim.
    Unknown(String),
}

impl Metric {
    /// Every documented metric, chat metrics first, in catalogue order.
    pub const KNOWN: [Metric; 15] = [
        Self::IncomingChats,
        Self::AssignedChats,
        Self::MissedChats,
        Self::ActiveChats,
        Self::WaitingTimeAvg,
        Self::WaitingTimeMax,
        Self::ChatDurationAvg,
        Self::ChatDurationMax,
        Self::ResponseTimeAvg,
        Self::ResponseTimeMax,
        Self::SatisfactionGood,
        Self::SatisfactionBad,
        Self::AgentsOnline,
        Self::AgentsAway,
        Self::AgentsInvisible,
    ];

    /// Classifies a key from the wire.
    #[must_use]
    pub fn from_key(key: &str) -> Self {
        match key {
            "incoming_chats" => Self::IncomingChats,
            "assigned_chats" => Self::AssignedChats,
            "missed_chats" => Self::MissedChats,
            "active_chats" => Self::ActiveChats,
            "waiting_time_avg" => Self::WaitingTimeAvg,
            "waiting_time_max" => Self::WaitingTimeMax,
            "chat_duration_avg" => Self::ChatDurationAvg,
            "chat_duration_max" => Self::ChatDurationMax,
            "response_time_avg" => Self::ResponseTimeAvg,
            "response_time_max" => Self::ResponseTimeMax,
            "satisfaction_good" => Self::SatisfactionGood,
            "satisfaction_bad" => Self::SatisfactionBad,
            "agents_online" => Self::AgentsOnline,
            "agents_away" => Self::AgentsAway,
            "agents_invisible" => Self::AgentsInvisible,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The key as it appears on the wire.
    #[must_use]
    pub fn key(&self) -> &str {
        match self {
            Self::IncomingChats => "incoming_chats",
            Self::AssignedChats => "assigned_chats",
            Self::MissedChats => "missed_chats",
            Self::ActiveChats => "active_chats",
            Self::WaitingTimeAvg => "waiting_time_avg",
            Self::WaitingTimeMax => "waiting_time_max",
            Self::ChatDurationAvg => "chat_duration_avg",
            Self::ChatDurationMax => "chat_duration_max",
            Self::ResponseTimeAvg => "response_time_avg",
            Self::ResponseTimeMax => "response_time_max",
            Self::SatisfactionGood => "satisfaction_good",
            Self::SatisfactionBad => "satisfaction_bad",
            Self::AgentsOnline => "agents_online",
            Self::AgentsAway => "agents_away",
            Self::AgentsInvisible => "agents_invisible",
            Self::Unknown(key) => key,
        }
    }

    /// The family the metric belongs to; `None` for unknown keys.
    #[must_use]
    pub const fn family(&self) -> Option<Family> {
        match self {
            Self::AgentsOnline | Self::AgentsAway | Self::AgentsInvisible => Some(Family::Agents),
            Self::Unknown(_) => None,
            _ => Some(Family::Chats),
        }
    }

    /// True for metrics that are counted within a time window and must be subscribed to with
    /// one ([`Window`]).
    #[must_use]
    pub const fn is_windowed(&self) -> bool {
        matches!(
            self,
            Self::MissedChats | Self::SatisfactionGood | Self::SatisfactionBad
        )
    }

    /// What the metric measures; `None` for unknown keys.
    #[must_use]
    pub const fn unit(&self) -> Option<MetricUnit> {
        match self {
            Self::WaitingTimeAvg
            | Self::WaitingTimeMax
            | Self::ChatDurationAvg
            | Self::ChatDurationMax
            | Self::ResponseTimeAvg
            | Self::ResponseTimeMax => Some(MetricUnit::Seconds),
            Self::Unknown(_) => None,
            _ => Some(MetricUnit::Count),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl Serialize for Metric {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.key())
    }
}

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let key = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Self::from_key(&key))
    }
}

/// The time window of a windowed metric, in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Window {
    /// The last 30 minutes.
    Minutes30,
    /// The last 60 minutes.
    Minutes60,
    /// Any other number of minutes (not accepted by the service, kept for diagnosis).
    Unknown(u32),
}

impl Window {
    /// The documented windows.
    pub const KNOWN: [Window; 2] = [Self::Minutes30, Self::Minutes60];

    /// Classifies a window length.
    #[must_use]
    pub const fn from_minutes(minutes: u32) -> Self {
        match minutes {
            30 => Self::Minutes30,
            60 => Self::Minutes60,
            other => Self::Unknown(other),
        }
    }

    /// The window length in minutes.
    #[must_use]
    pub const fn minutes(self) -> u32 {
        match self {
            Self::Minutes30 => 30,
            Self::Minutes60 => 60,
            Self::Unknown(minutes) => minutes,
        }
    }

    /// True for the windows the service accepts.
    #[must_use]
    pub const fn is_known(self) -> bool {
        !matches!(self, Self::Unknown(_))
    }
}

impl Serialize for Window {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.minutes())
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u32::deserialize(d).map(Self::from_minutes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for metric in Metric::KNOWN {
            assert_eq!(Metric::from_key(metric.key()), metric);
            assert!(metric.family().is_some());
            assert!(metric.unit().is_some());
        }
        assert_eq!(
            Metric::from_key("queue_depth"),
            Metric::Unknown("queue_depth".into())
        );
        assert_eq!(Metric::Unknown("x".into()).family(), None);
    }

    /// The enum and `schemas/metrics/catalogue.json` must describe the same metrics, in the
    /// same order, with the same family, unit and window rule.
    #[test]
    fn enum_matches_the_catalogue_file() {
        #[derive(serde::Deserialize)]
        struct Catalogue {
            windows_minutes: Vec<u32>,
            metrics: Vec<Entry>,
        }
        #[derive(serde::Deserialize)]
        struct Entry {
            key: String,
            family: String,
            unit: String,
            windowed: bool,
        }
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schemas/metrics/catalogue.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let catalogue: Catalogue = serde_json::from_str(&text).unwrap();

        let file: Vec<(String, String, String, bool)> = catalogue
            .metrics
            .into_iter()
            .map(|e| (e.key, e.family, e.unit, e.windowed))
            .collect();
        let code: Vec<(String, String, String, bool)> = Metric::KNOWN
            .iter()
            .map(|m| {
                (
                    m.key().to_owned(),
                    m.family().unwrap().as_str().to_owned(),
                    m.unit().unwrap().as_str().to_owned(),
                    m.is_windowed(),
                )
            })
            .collect();
        assert_eq!(code, file);
        let windows: Vec<u32> = Window::KNOWN.iter().map(|w| w.minutes()).collect();
        assert_eq!(windows, catalogue.windows_minutes);
        for (key, ..) in &file {
            assert!(
                !matches!(Metric::from_key(key), Metric::Unknown(_)),
                "{key}"
            );
        }
    }

    #[test]
    fn windows_classify() {
        assert_eq!(Window::from_minutes(30), Window::Minutes30);
        assert_eq!(Window::from_minutes(60), Window::Minutes60);
        assert_eq!(Window::from_minutes(45), Window::Unknown(45));
        assert!(!Window::Unknown(45).is_known());
    }
}
