//! Frames the server sends: metric updates, status-code frames, "Not Computed!".

use std::fmt;

use serde::{Serialize, Serializer, ser::SerializeMap, ser::SerializeStruct};
use serde_json::value::RawValue;

use super::{Metric, MetricValue, Topic, entries::entries, envelope};
use crate::{DecodeLimits, Error, chat::redact::Shape, raw};

/// A frame sent by the streaming server, or a body of the REST API (same shapes).
///
/// `Debug` shows raw JSON (an Unknown frame, a status message or metric value that is not the
/// documented kind) by shape only: it may hold anything, up to the size of the frame.
#[derive(Clone)]
#[non_exhaustive]
pub enum ServerFrame {
    /// `{"content":{"topic":..,"data":{..},"type":"update","department_id":..},"status_code":..}`.
    Update(Update),
    /// `{"status_code":200,"message":"Not Computed!"}`: the REST API has no data yet.
    NotComputed,
    /// A frame with a `status_code` and no content, e.g. 401 (bad token), 429 (too many
    /// connections) or 500 (unsupported message).
    Status(Status),
    /// Any other frame (including content of a type other than `update`), kept raw.
    Unknown(Box<RawValue>),
}

/// A metric update.
#[derive(Debug, Clone)]
pub struct Update {
    /// The family (`chats` / `agents`) or, possibly, the full `family.key` topic.
    pub topic: Topic,
    /// The metrics that changed, in wire order. A key sent twice is here once, in its first
    /// place, with its last value. An update of more than 10,000 entries (a repeated key
    /// counted each time) is refused.
    pub data: Vec<(Metric, MetricValue)>,
    /// The department, or `None` for the whole account.
    pub department_id: Option<u64>,
    /// The frame's status code (200 in every documented update).
    pub status_code: u16,
}

impl Update {
    /// The value of `metric` in this update, if present.
    #[must_use]
    pub fn get(&self, metric: &Metric) -> Option<&MetricValue> {
        self.data.iter().find(|(m, _)| m == metric).map(|(_, v)| v)
    }
}

/// A status-code frame.
#[derive(Debug, Clone)]
pub struct Status {
    /// An HTTP-like status code.
    pub status_code: u16,
    /// The accompanying message, if any.
    pub message: Option<StatusMessage>,
}

impl Status {
    /// 401: the token is invalid or expired; the server closes the socket.
    #[must_use]
    pub const fn is_unauthorized(&self) -> bool {
        self.status_code == 401
    }

    /// 429: too many connections; retry later with backoff.
    #[must_use]
    pub const fn is_rate_limited(&self) -> bool {
        self.status_code == 429
    }

    /// True for codes worth retrying later (429 and 5xx other than 500, which the service uses
    /// for an unsupported message that would fail the same way again).
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        self.status_code == 429 || (self.status_code > 500 && self.status_code < 600)
    }
}

/// The `message` of a status frame.
///
/// `Debug` shows a JSON message by shape only.
#[derive(Clone)]
#[non_exhaustive]
pub enum StatusMessage {
    /// A text message.
    Text(String),
    /// Any other JSON (e.g. `{"authenticated":true}`), kept raw.
    Json(Box<RawValue>),
}

impl StatusMessage {
    /// The text, if the message is text.
    #[must_use]
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            Self::Json(_) => None,
        }
    }
}

impl fmt::Debug for ServerFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Update(u) => f.debug_tuple("Update").field(u).finish(),
            Self::NotComputed => f.write_str("NotComputed"),
            Self::Status(s) => f.debug_tuple("Status").field(s).finish(),
            Self::Unknown(raw) => f.debug_tuple("Unknown").field(&Shape(raw)).finish(),
        }
    }
}

impl fmt::Debug for StatusMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => f.debug_tuple("Text").field(text).finish(),
            Self::Json(raw) => f.debug_tuple("Json").field(&Shape(raw)).finish(),
        }
    }
}

const NOT_COMPUTED: &str = "Not Computed!";

impl ServerFrame {
    /// Decodes a server frame (or REST body) under the default [`DecodeLimits`].
    ///
    /// # Errors
    /// When the text is too large, not JSON, or an update or status frame has a field of the
    /// wrong type.
    pub fn decode(text: &str) -> Result<Self, Error> {
        Self::decode_with(text, &DecodeLimits::default())
    }

    /// Decodes a server frame under `limits`.
    ///
    /// # Errors
    /// As [`ServerFrame::decode`].
    pub fn decode_with(text: &str, limits: &DecodeLimits) -> Result<Self, Error> {
        let Some(env) = envelope::peek(text, limits)? else {
            return envelope::unknown(text).map(Self::Unknown);
        };
        Self::classify(&env, text).map_err(|e| e.with_frame(text))
    }

    fn classify(env: &envelope::Envelope<'_>, text: &str) -> Result<Self, Error> {
        if let Some(content) = env.content.filter(|c| !raw::is_null(c)) {
            const FRAME: &str = "update";
            let content: envelope::Content<'_> = raw::parse_object(content, FRAME, "content")?;
            let is_update = content
                .kind
                .and_then(raw::as_str)
                .is_some_and(|kind| kind == "update");
            if !is_update {
                return envelope::unknown(text).map(Self::Unknown);
            }
            let topic = raw::require_str(content.topic, FRAME, "topic")?;
            let data = entries(raw::require(content.data, FRAME, "data")?)
                .ok_or_else(|| Error::invalid(FRAME, "data"))?
                .into_iter()
                .map(|(key, value)| (Metric::from_key(&key), MetricValue::from_raw(value)))
                .collect();
            let status_code = raw::parse(
                raw::require(env.status_code, FRAME, "status_code")?,
                FRAME,
                "status_code",
            )?;
            return Ok(Self::Update(Update {
                topic: Topic::parse(&topic),
                data,
                department_id: envelope::department_id(content.department_id, FRAME)?,
                status_code,
            }));
        }
        if let Some(code) = env.status_code {
            const FRAME: &str = "status";
            let status_code: u16 = raw::parse(code, FRAME, "status_code")?;
            let message = match env.message {
                Some(m) if !raw::is_null(m) => Some(match raw::as_str(m) {
                    Some(text) => StatusMessage::Text(text.into_owned()),
                    None => StatusMessage::Json(m.to_owned()),
                }),
                _ => None,
            };
            if status_code == 200
                && message.as_ref().and_then(StatusMessage::as_text) == Some(NOT_COMPUTED)
            {
                return Ok(Self::NotComputed);
            }
            return Ok(Self::Status(Status {
                status_code,
                message,
            }));
        }
        envelope::unknown(text).map(Self::Unknown)
    }

    /// Encodes the frame as JSON text.
    ///
    /// # Errors
    /// Only if serde_json refuses a value, which the frame types never produce.
    pub fn encode(&self) -> Result<String, Error> {
        serde_json::to_string(self).map_err(Error::encode)
    }
}

impl ServerFrame {
    /// A short name of the frame's kind, for logs and metrics.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Update(_) => "update",
            Self::NotComputed => "not_computed",
            Self::Status(_) => "status",
            Self::Unknown(_) => "unknown",
        }
    }
}

impl Serialize for ServerFrame {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Update(update) => update.serialize(s),
            Self::NotComputed => Status {
                status_code: 200,
                message: Some(StatusMessage::Text(NOT_COMPUTED.to_owned())),
            }
            .serialize(s),
            Self::Status(status) => status.serialize(s),
            Self::Unknown(raw) => raw.serialize(s),
        }
    }
}

impl Serialize for Update {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Data<'u>(&'u [(Metric, MetricValue)]);
        impl Serialize for Data<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.0.len()))?;
                for (metric, value) in self.0 {
                    map.serialize_entry(metric.key(), value)?;
                }
                map.end()
            }
        }
        struct Content<'u>(&'u Update);
        impl Serialize for Content<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut st = s.serialize_struct("Content", 4)?;
                st.serialize_field("topic", &self.0.topic)?;
                st.serialize_field("data", &Data(&self.0.data))?;
                st.serialize_field("type", "update")?;
                st.serialize_field("department_id", &self.0.department_id)?;
                st.end()
            }
        }
        let mut st = s.serialize_struct("Update", 2)?;
        st.serialize_field("content", &Content(self))?;
        st.serialize_field("status_code", &self.status_code)?;
        st.end()
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Status", 2)?;
        st.serialize_field("status_code", &self.status_code)?;
        match &self.message {
            Some(StatusMessage::Text(text)) => st.serialize_field("message", text)?,
            Some(StatusMessage::Json(raw)) => st.serialize_field("message", raw)?,
            None => {}
        }
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::ServerFrame;
    use crate::realtime::ClientFrame;

    #[test]
    fn a_metric_sent_twice_reads_as_its_last_value() {
        use crate::realtime::{Metric, MetricValue, Window};

        let text = r#"{"content":{"topic":"chats","data":{"missed_chats":{"30":1,"30":2},"chats_count":1,"x":0,"chats_count":3},"type":"update","department_id":null},"status_code":200}"#;
        let Ok(ServerFrame::Update(update)) = ServerFrame::decode(text) else {
            panic!("not an update");
        };
        let missed = update
            .get(&Metric::MissedChats)
            .and_then(MetricValue::as_windowed)
            .expect("windowed");
        assert_eq!(missed.get(Window::Minutes30), Some(Some(2)));
        assert_eq!(missed.0.len(), 1);
        let keys: Vec<_> = update.data.iter().map(|(m, _)| m.key()).collect();
        assert_eq!(keys, ["missed_chats", "chats_count", "x"]);
        assert_eq!(
            update
                .get(&Metric::from_key("chats_count"))
                .and_then(MetricValue::as_i64),
            Some(3)
        );
        assert_eq!(
            serde_json::to_string(&update).expect("encodes"),
            r#"{"content":{"topic":"chats","data":{"missed_chats":{"30":2},"chats_count":3,"x":0},"type":"update","department_id":null},"status_code":200}"#
        );
    }

    #[test]
    fn an_update_of_too_many_metrics_is_refused() {
        use crate::ErrorKind;

        let update = |data: &str| {
            format!(
                r#"{{"content":{{"topic":"chats","data":{{{data}}},"type":"update","department_id":null}},"status_code":200}}"#
            )
        };
        let many: String = (0..10_000).map(|i| format!(r#""k{i}":0,"#)).collect();
        let frame = ServerFrame::decode(&update(many.trim_end_matches(',')));
        assert!(
            matches!(frame, Ok(ServerFrame::Update(ref u)) if u.data.len() == 10_000),
            "{}",
            frame.map(|f| f.kind()).unwrap_or("error")
        );
        let tiny = r#""":0,"#.repeat(200_000);
        let error = ServerFrame::decode(&update(tiny.trim_end_matches(',')))
            .map(|f| f.kind())
            .expect_err("too many entries");
        assert_eq!(
            error.kind(),
            &ErrorKind::InvalidField {
                frame: "update",
                field: "data"
            }
        );
    }

    #[test]
    fn debug_shows_raw_json_by_shape_only_and_bounded() {
        let big = "x".repeat(100_000);
        let many: String = (0..10_000).map(|i| format!(r#""k{i}":0,"#)).collect();
        for text in [
            format!(r#"{{"what":"SECRET{big}"}}"#),
            format!(r#"{{{many}"SECRET":1}}"#),
            format!(r#"["SECRET{big}"]"#),
            format!(r#"{{"status_code":401,"message":{{"token":"SECRET{big}"}}}}"#),
            format!(
                r#"{{"content":{{"topic":"chats","data":{{"missed_chats":{{"t":"SECRET{big}"}},"x":1.5}},"type":"update","department_id":null}},"status_code":200}}"#
            ),
        ] {
            let frame = ServerFrame::decode(&text).expect("decodes");
            for shown in [format!("{frame:?}"), format!("{frame:#?}")] {
                assert!(!shown.contains("SECRET"), "{}", frame.kind());
                assert!(
                    shown.len() < 2_000,
                    "{}: {} bytes",
                    frame.kind(),
                    shown.len()
                );
            }
            let frame = ClientFrame::decode(&text).expect("decodes");
            let shown = format!("{frame:?}");
            assert!(!shown.contains("SECRET"), "{}", frame.kind());
            assert!(
                shown.len() < 2_000,
                "{}: {} bytes",
                frame.kind(),
                shown.len()
            );
        }
    }
}
