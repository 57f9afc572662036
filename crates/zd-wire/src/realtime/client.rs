//! Frames the client sends: subscribe and unsubscribe.

use std::fmt;

use serde::{Serialize, Serializer, ser::SerializeStruct};
use serde_json::value::RawValue;

use super::{Metric, Topic, Window, envelope};
use crate::{DecodeLimits, Error, chat::redact::Shape, raw};

/// A frame sent by the client (decoded by a server such as the emulator).
///
/// `Debug` shows an Unknown frame by shape only: it may hold anything.
#[derive(Clone)]
#[non_exhaustive]
pub enum ClientFrame {
    /// `{"topic":..,"action":..,"window"?:..,"department_id"?:..}`.
    Subscription(Subscription),
    /// Any other frame, kept raw.
    Unknown(Box<RawValue>),
}

impl fmt::Debug for ClientFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Subscription(s) => f.debug_tuple("Subscription").field(s).finish(),
            Self::Unknown(raw) => f.debug_tuple("Unknown").field(&Shape(raw)).finish(),
        }
    }
}

/// What a subscription frame asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// `subscribe`.
    Subscribe,
    /// `unsubscribe`.
    Unsubscribe,
    /// Anything else, kept verbatim.
    Unknown(String),
}

impl Action {
    /// Classifies an action from the wire.
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        match name {
            "subscribe" => Self::Subscribe,
            "unsubscribe" => Self::Unsubscribe,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The action as it appears on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Unsubscribe => "unsubscribe",
            Self::Unknown(name) => name,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Subscribe to or unsubscribe from one metric.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subscription {
    /// Subscribe or unsubscribe.
    pub action: Action,
    /// `chats.<key>` or `agents.<key>`.
    pub topic: Topic,
    /// The time window, required by windowed metrics.
    pub window: Option<Window>,
    /// Restrict to one department; `None` for the whole account.
    pub department_id: Option<u64>,
}

impl Subscription {
    /// Subscribes to `metric` account-wide, without a window.
    #[must_use]
    pub fn subscribe(metric: Metric) -> Self {
        Self {
            action: Action::Subscribe,
            topic: Topic::metric(metric),
            window: None,
            department_id: None,
        }
    }

    /// Unsubscribes from `metric` account-wide, without a window.
    #[must_use]
    pub fn unsubscribe(metric: Metric) -> Self {
        Self {
            action: Action::Unsubscribe,
            ..Self::subscribe(metric)
        }
    }

    /// Sets the time window.
    #[must_use]
    pub fn window(mut self, window: Window) -> Self {
        self.window = Some(window);
        self
    }

    /// Restricts to one department.
    #[must_use]
    pub fn department(mut self, department_id: u64) -> Self {
        self.department_id = Some(department_id);
        self
    }

    /// Encodes the frame as JSON text.
    ///
    /// # Errors
    /// Only if serde_json refuses a value, which this type never produces.
    pub fn encode(&self) -> Result<String, Error> {
        serde_json::to_string(self).map_err(Error::encode)
    }
}

impl ClientFrame {
    /// Decodes a client frame under the default [`DecodeLimits`].
    ///
    /// # Errors
    /// When the text is too large, not JSON, or a subscription frame has a field of the wrong
    /// type.
    pub fn decode(text: &str) -> Result<Self, Error> {
        Self::decode_with(text, &DecodeLimits::default())
    }

    /// Decodes a client frame under `limits`.
    ///
    /// # Errors
    /// As [`ClientFrame::decode`].
    pub fn decode_with(text: &str, limits: &DecodeLimits) -> Result<Self, Error> {
        const FRAME: &str = "subscription";
        let env = match envelope::peek(text, limits)? {
            Some(env) => env,
            None => return envelope::unknown(text).map(Self::Unknown),
        };
        let (Some(topic), Some(action)) = (env.topic, env.action) else {
            return envelope::unknown(text).map(Self::Unknown);
        };
        let classify = || {
            let topic = raw::as_str(topic).ok_or_else(|| Error::invalid(FRAME, "topic"))?;
            let action = raw::as_str(action).ok_or_else(|| Error::invalid(FRAME, "action"))?;
            let window = match env.window {
                Some(w) if !raw::is_null(w) => Some(raw::parse::<Window>(w, FRAME, "window")?),
                _ => None,
            };
            Ok(Self::Subscription(Subscription {
                action: Action::from_name(&action),
                topic: Topic::parse(&topic),
                window,
                department_id: envelope::department_id(env.department_id, FRAME)?,
            }))
        };
        classify().map_err(|e: Error| e.with_frame(text))
    }

    /// Encodes the frame as JSON text.
    ///
    /// # Errors
    /// Only if serde_json refuses a value, which the frame types never produce.
    pub fn encode(&self) -> Result<String, Error> {
        serde_json::to_string(self).map_err(Error::encode)
    }
}

impl ClientFrame {
    /// A short name of the frame's kind, for logs and metrics.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Subscription(_) => "subscription",
            Self::Unknown(_) => "unknown",
        }
    }
}

impl Serialize for ClientFrame {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Subscription(sub) => sub.serialize(s),
            Self::Unknown(raw) => raw.serialize(s),
        }
    }
}

impl Serialize for Subscription {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Subscription", 4)?;
        st.serialize_field("topic", &self.topic)?;
        st.serialize_field("action", self.action.as_str())?;
        if let Some(window) = &self.window {
            st.serialize_field("window", window)?;
        }
        if let Some(department_id) = &self.department_id {
            st.serialize_field("department_id", department_id)?;
        }
        st.end()
    }
}
