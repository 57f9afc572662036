//! Frames the client sends: request, stop_subscription and PING.

use std::{borrow::Cow, fmt};

use serde::{Serialize, Serializer, ser::SerializeStruct};
use serde_json::value::RawValue;

use super::{GraphQlRequest, RequestId, envelope, redact};
use crate::{DecodeLimits, Error, raw};

/// A frame sent by the client (decoded by a server such as the emulator).
///
/// `Debug` shows raw JSON (a PING's payload, an Unknown frame) by shape only: a frame the
/// decoder does not recognise, e.g. a request with a misspelt `type`, may carry an access token.
#[derive(Clone)]
#[non_exhaustive]
pub enum ClientFrame<'a> {
    /// `{"type":"request","id":..,"payload":{"query":..}}`: a query, mutation or subscription.
    Request(Request<'a>),
    /// `{"type":"stop_subscription","id":..,"payload":{"subscription_id":..}}`.
    StopSubscription(StopSubscription<'a>),
    /// `{"sig":"PING","payload":..}`: keepalive; the server echoes the payload in a PONG.
    Ping(Ping<'a>),
    /// Any other frame (unknown `type` or `sig`, or no envelope keys), kept raw.
    Unknown(&'a RawValue),
}

/// A GraphQL request with the id the response will echo.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// Client-chosen id.
    pub id: RequestId,
    /// The GraphQL request.
    pub payload: GraphQlRequest<'a>,
}

/// Stops a subscription.
#[derive(Debug, Clone)]
pub struct StopSubscription<'a> {
    /// Client-chosen id of this request.
    pub id: RequestId,
    /// The id from the subscription ack.
    pub subscription_id: Cow<'a, str>,
}

/// A keepalive ping.
///
/// `Debug` shows the payload's shape only.
#[derive(Clone, Default)]
pub struct Ping<'a> {
    /// Any JSON value; absent when the frame had none.
    pub payload: Option<&'a RawValue>,
}

impl fmt::Debug for ClientFrame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Request(r) => f.debug_tuple("Request").field(r).finish(),
            Self::StopSubscription(s) => f.debug_tuple("StopSubscription").field(s).finish(),
            Self::Ping(p) => f.debug_tuple("Ping").field(p).finish(),
            Self::Unknown(raw) => f.debug_tuple("Unknown").field(&redact::Shape(raw)).finish(),
        }
    }
}

impl fmt::Debug for Ping<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ping")
            .field("payload", &self.payload.map(redact::Shape))
            .finish()
    }
}

impl<'a> Request<'a> {
    /// A request for `query` with no variables.
    #[must_use]
    pub fn new(id: impl Into<RequestId>, query: impl Into<Cow<'a, str>>) -> Self {
        Self {
            id: id.into(),
            payload: GraphQlRequest::new(query),
        }
    }
}

impl<'a> StopSubscription<'a> {
    /// Stops `subscription_id`, as request `id`.
    #[must_use]
    pub fn new(id: impl Into<RequestId>, subscription_id: impl Into<Cow<'a, str>>) -> Self {
        Self {
            id: id.into(),
            subscription_id: subscription_id.into(),
        }
    }
}

impl<'a> Ping<'a> {
    /// A ping carrying `payload`.
    #[must_use]
    pub fn new(payload: &'a RawValue) -> Self {
        Self {
            payload: Some(payload),
        }
    }
}

impl<'a> ClientFrame<'a> {
    /// Decodes a client frame under the default [`DecodeLimits`].
    ///
    /// # Errors
    /// When the text is too large, not JSON, or a recognised frame lacks a required field.
    pub fn decode(text: &'a str) -> Result<Self, Error> {
        Self::decode_with(text, &DecodeLimits::default())
    }

    /// Decodes a client frame under `limits`.
    ///
    /// # Errors
    /// As [`ClientFrame::decode`].
    pub fn decode_with(text: &'a str, limits: &DecodeLimits) -> Result<Self, Error> {
        let peeked = envelope::peek(text, limits)?;
        Self::classify(&peeked).map_err(|e| e.with_frame(text))
    }

    fn classify(peeked: &envelope::Peeked<'a>) -> Result<Self, Error> {
        let Some(env) = &peeked.envelope else {
            return peeked.raw().map(Self::Unknown);
        };
        // `"sig": null` says as little as a missing key, as on the server side.
        if let Some(sig) = env.sig.filter(|s| !raw::is_null(s)) {
            return match raw::as_str(sig).as_deref() {
                Some("PING") => Ok(Self::Ping(Ping {
                    payload: env.payload,
                })),
                _ => peeked.raw().map(Self::Unknown),
            };
        }
        let Some(kind) = env.kind else {
            return peeked.raw().map(Self::Unknown);
        };
        match raw::as_str(kind).as_deref() {
            Some("request") => {
                const FRAME: &str = "request";
                let id = envelope::request_id(raw::require(env.id, FRAME, "id")?, FRAME)?;
                let payload = raw::parse_object(
                    raw::require(env.payload, FRAME, "payload")?,
                    FRAME,
                    "payload",
                )?;
                Ok(Self::Request(Request { id, payload }))
            }
            Some("stop_subscription") => {
                const FRAME: &str = "stop_subscription";
                let id = envelope::request_id(raw::require(env.id, FRAME, "id")?, FRAME)?;
                let payload: StopPayload<'a> = raw::parse_object(
                    raw::require(env.payload, FRAME, "payload")?,
                    FRAME,
                    "payload",
                )?;
                Ok(Self::StopSubscription(StopSubscription {
                    id,
                    subscription_id: payload.subscription_id,
                }))
            }
            _ => peeked.raw().map(Self::Unknown),
        }
    }

    /// A short name of the frame's kind, for logs and metrics.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Request(_) => "request",
            Self::StopSubscription(_) => "stop_subscription",
            Self::Ping(_) => "PING",
            Self::Unknown(_) => "unknown",
        }
    }
}

#[derive(serde::Deserialize)]
struct StopPayload<'a> {
    #[serde(borrow)]
    subscription_id: Cow<'a, str>,
}

impl Serialize for ClientFrame<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Request(f) => f.serialize(s),
            Self::StopSubscription(f) => f.serialize(s),
            Self::Ping(f) => f.serialize(s),
            Self::Unknown(raw) => raw.serialize(s),
        }
    }
}

impl Serialize for Request<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Request", 3)?;
        st.serialize_field("type", "request")?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("payload", &self.payload)?;
        st.end()
    }
}

impl Serialize for StopSubscription<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Payload<'p> {
            subscription_id: &'p str,
        }
        let mut st = s.serialize_struct("StopSubscription", 3)?;
        st.serialize_field("type", "stop_subscription")?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field(
            "payload",
            &Payload {
                subscription_id: &self.subscription_id,
            },
        )?;
        st.end()
    }
}

impl Serialize for Ping<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Ping", 2)?;
        st.serialize_field("sig", "PING")?;
        if let Some(payload) = self.payload {
            st.serialize_field("payload", payload)?;
        }
        st.end()
    }
}

macro_rules! encode_methods {
    ($($ty:ident),*) => {$(
        impl $ty<'_> {
            /// Encodes the frame as JSON text.
            ///
            /// # Errors
            /// Only if serde_json refuses a value, which the frame types never produce.
            pub fn encode(&self) -> Result<String, Error> {
                serde_json::to_string(self).map_err(Error::encode)
            }
        }
    )*};
}
pub(super) use encode_methods;

encode_methods!(ClientFrame, Request, StopSubscription, Ping);

#[cfg(test)]
mod tests {
    use super::ClientFrame;
    use crate::chat::{GraphQlRequest, Request, RequestId};

    #[test]
    fn a_null_sig_reads_as_absent() {
        let text = r#"{"sig":null,"type":"request","id":1,"payload":{"query":"{a}"}}"#;
        let frame = ClientFrame::decode(text);
        let Ok(ClientFrame::Request(request)) = frame else {
            panic!("not a request: {frame:?}");
        };
        assert_eq!(request.id, RequestId::from(1_u64));
        assert_eq!(request.payload.query, "{a}");
    }

    #[test]
    fn debug_of_a_request_hides_tokens_in_query_and_variables() {
        let variables = serde_json::value::RawValue::from_string(r#"{"t":"SECRET"}"#.to_owned())
            .expect("valid JSON");
        let query = r#"mutation { startAgentSession(access_token: "SECRET") { websocket_url } }"#;
        let request = Request {
            id: RequestId::from(1_u64),
            payload: GraphQlRequest::new(query)
                .variables(&variables)
                .operation_name("Start"),
        };
        let shown = format!("{:?}", ClientFrame::Request(request));
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("startAgentSession(access_token"), "{shown}");
        assert!(shown.contains(r#"{"t": …}"#), "{shown}");
        assert!(shown.contains("Start"), "{shown}");

        let text = r#"{"type":"request","id":2,"payload":{"query":"{ a(t: \"SECRET\") }","variables":{"t":"SECRET"}}}"#;
        let shown = format!("{:?}", ClientFrame::decode(text).expect("a request"));
        assert!(!shown.contains("SECRET"), "{shown}");
    }

    #[test]
    fn debug_of_pings_and_unknown_frames_shows_only_their_shape() {
        use super::Ping;

        for text in [
            r#"{"type":"Request","id":1,"payload":{"query":"mutation{startAgentSession(access_token:\"SECRET\"){websocket_url}}"}}"#,
            r#"{"access_token":"SECRET"}"#,
            r#""SECRET""#,
            r#"{"sig":"PING","payload":"SECRET"}"#,
            r#"{"sig":"PING","payload":{"t":"SECRET"}}"#,
        ] {
            let frame = ClientFrame::decode(text).expect("decodes");
            let shown = format!("{frame:?}");
            assert!(!shown.contains("SECRET"), "{shown}");
        }
        let frame = ClientFrame::decode(r#"{"type":"Request","id":1,"payload":{}}"#);
        let shown = format!("{frame:?}");
        assert!(shown.starts_with("Ok(Unknown("), "{shown}");
        assert!(shown.contains(r#""type": …"#), "{shown}");
        let raw =
            serde_json::value::RawValue::from_string("1675666127859".to_owned()).expect("JSON");
        assert_eq!(
            format!("{:?}", Ping::new(&raw)),
            "Ping { payload: Some(<number, 13 bytes>) }"
        );
    }
}
