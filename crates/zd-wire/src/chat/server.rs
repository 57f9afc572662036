//! Frames the server sends: responses, subscription acks, DATA, errors, EOS and PONG.

use std::{borrow::Cow, fmt};

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{IgnoredAny, MapAccess, Visitor},
    ser::SerializeStruct,
};
use serde_json::value::RawValue;

use super::{ErrorPayload, GraphQlResponse, RequestId, client::encode_methods, envelope, redact};
use crate::{DecodeLimits, Error, raw};

/// A frame sent by the server (decoded by the client).
///
/// `Debug` shows raw JSON (a DATA payload, a PONG's payload, an Unknown frame) by shape only:
/// events carry visitors' messages, and an unrecognised frame may hold anything.
#[derive(Clone)]
#[non_exhaustive]
pub enum ServerFrame<'a> {
    /// `{"id":..,"payload":{"data":..,"errors":..}}`: the answer to a query or mutation.
    Response(Response<'a>),
    /// `{"id":..,"payload":{"data":{"subscription_id":..}}}`: a subscription started. A query
    /// answer of exactly that shape (through an alias) reads as this too; tell them apart by
    /// what the request with that id asked.
    SubscriptionAck(SubscriptionAck<'a>),
    /// `{"sig":"DATA","subscription_id":..,"payload":..}`: one subscription event.
    Data(Data<'a>),
    /// `{"error_code":..,"sig":"DATA","subscription_id":..,"payload":..}`: a subscription failed
    /// (`errorCode` marks it too).
    DataError(DataError<'a>),
    /// `{"errorCode":..,"payload":..,"id":..}`: a request failed (`error_code` marks it too). An
    /// answer whose payload has a `body` but neither `data` nor `errors` reads as this too, of
    /// unknown status.
    Error(ErrorResponse<'a>),
    /// `{"sig":"EOS","reason":..}`: the agent session is over.
    Eos(Eos<'a>),
    /// `{"sig":"PONG","payload":..}`: the echo of a PING.
    Pong(Pong<'a>),
    /// Any other frame (unknown `sig`, or no envelope keys), kept raw.
    Unknown(&'a RawValue),
}

/// The answer to a query or mutation.
#[derive(Debug, Clone)]
pub struct Response<'a> {
    /// The id of the request, exactly as sent.
    pub id: RequestId,
    /// The GraphQL response; `data` is still raw.
    pub payload: GraphQlResponse<'a>,
}

/// The answer to a subscription request.
#[derive(Debug, Clone)]
pub struct SubscriptionAck<'a> {
    /// The id of the subscription request.
    pub id: RequestId,
    /// The id later DATA frames carry, and that stop_subscription names.
    pub subscription_id: Cow<'a, str>,
}

/// One event of a subscription.
///
/// `Debug` shows the payload's top-level keys and size only: it holds visitors' messages.
#[derive(Clone)]
pub struct Data<'a> {
    /// The subscription this event belongs to; route by it.
    pub subscription_id: Cow<'a, str>,
    /// The GraphQL response, undecoded.
    pub payload: &'a RawValue,
}

/// A subscription-level failure.
#[derive(Debug, Clone)]
pub struct DataError<'a> {
    /// An HTTP status code, or [`DataError::UNKNOWN_STATUS`] when the frame's `error_code` was
    /// not a usable one (see [`DataError::status`]).
    pub error_code: u16,
    /// The subscription that failed.
    pub subscription_id: Cow<'a, str>,
    /// What failed.
    pub payload: ErrorPayload<'a>,
}

/// A request-level failure.
#[derive(Debug, Clone)]
pub struct ErrorResponse<'a> {
    /// An HTTP status code, or [`ErrorResponse::UNKNOWN_STATUS`] when the frame's `errorCode`
    /// was not a usable one (see [`ErrorResponse::status`]).
    pub error_code: u16,
    /// The id of the failed request (absent on errors not tied to one).
    pub id: Option<RequestId>,
    /// What failed.
    pub payload: ErrorPayload<'a>,
}

/// End of service: the session is no longer valid.
#[derive(Debug, Clone, Default)]
pub struct Eos<'a> {
    /// Why, as free text (e.g. `"unexpected session state"`, the example the API
    /// documentation gives). A reason sent as another JSON type is kept as its JSON text.
    pub reason: Option<Cow<'a, str>>,
}

/// The echo of a ping.
///
/// `Debug` shows the payload's shape only.
#[derive(Clone, Default)]
pub struct Pong<'a> {
    /// The ping's payload.
    pub payload: Option<&'a RawValue>,
}

impl fmt::Debug for ServerFrame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Response(r) => f.debug_tuple("Response").field(r).finish(),
            Self::SubscriptionAck(a) => f.debug_tuple("SubscriptionAck").field(a).finish(),
            Self::Data(d) => f.debug_tuple("Data").field(d).finish(),
            Self::DataError(e) => f.debug_tuple("DataError").field(e).finish(),
            Self::Error(e) => f.debug_tuple("Error").field(e).finish(),
            Self::Eos(e) => f.debug_tuple("Eos").field(e).finish(),
            Self::Pong(p) => f.debug_tuple("Pong").field(p).finish(),
            Self::Unknown(raw) => f.debug_tuple("Unknown").field(&redact::Shape(raw)).finish(),
        }
    }
}

impl fmt::Debug for Data<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Data")
            .field("subscription_id", &self.subscription_id)
            .field("payload", &redact::Shape(self.payload))
            .finish()
    }
}

impl fmt::Debug for Pong<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pong")
            .field("payload", &self.payload.map(redact::Shape))
            .finish()
    }
}

impl<'a> Data<'a> {
    /// Splits the payload into `data` (still raw) and `errors`.
    ///
    /// # Errors
    /// When the payload is not a GraphQL response object.
    pub fn response(&self) -> Result<GraphQlResponse<'a>, Error> {
        raw::parse_object(self.payload, "DATA", "payload")
    }

    /// Decodes the whole payload (e.g. `{"data":{"message":..}}`) into `T` in one pass.
    ///
    /// # Errors
    /// When the payload does not match `T`.
    pub fn decode_payload<T: Deserialize<'a>>(&self) -> Result<T, Error> {
        raw::parse(self.payload, "DATA", "payload")
    }
}

impl DataError<'_> {
    /// The `error_code` a frame reads with when its code is present but no usable status code
    /// (`"503 Service Unavailable"`, `true`, `70000`, ...): the frame is still an error, of a
    /// status nobody can know. No HTTP status is 0, so this is never a real one.
    pub const UNKNOWN_STATUS: u16 = envelope::UNKNOWN_STATUS;

    /// The status code, `None` when the frame's code was not usable.
    #[must_use]
    pub const fn status(&self) -> Option<u16> {
        known_status(self.error_code)
    }
}

impl ErrorResponse<'_> {
    /// The `error_code` a frame reads with when its `errorCode` is present but no usable
    /// status code (`"503 Service Unavailable"`, `true`, `70000`, ...): the frame is still an
    /// error, of a status nobody can know. No HTTP status is 0, so this is never a real one.
    pub const UNKNOWN_STATUS: u16 = envelope::UNKNOWN_STATUS;

    /// The status code, `None` when the frame's code was not usable.
    #[must_use]
    pub const fn status(&self) -> Option<u16> {
        known_status(self.error_code)
    }
}

const fn known_status(code: u16) -> Option<u16> {
    if code == envelope::UNKNOWN_STATUS {
        None
    } else {
        Some(code)
    }
}

impl Eos<'_> {
    /// The one reason known to need operator attention rather than a new session: another
    /// session logged in with the same credentials.
    pub const CONCURRENT_SESSION_LIMIT: &'static str = "concurrent session limit reached";

    /// True when the reason says another session with the same credentials took over, in
    /// which case starting a new session would only fight it.
    ///
    /// Only [`Self::CONCURRENT_SESSION_LIMIT`] was seen, in one client's code: any reason that
    /// names a concurrent session counts, whatever its case, spacing or punctuation
    /// (`CONCURRENT_SESSION_LIMIT`, `concurrent-session limit`), since missing it means two
    /// processes evicting each other for ever.
    #[must_use]
    pub fn is_concurrent_session_limit(&self) -> bool {
        self.reason.as_deref().is_some_and(|reason| {
            // Words only, lower case: every run of other characters, and a camelCase hump,
            // reads as one space.
            let mut words = String::with_capacity(reason.len());
            let mut lower_before = false;
            for c in reason.chars() {
                if c.is_alphanumeric() {
                    if c.is_uppercase() && lower_before {
                        words.push(' ');
                    }
                    lower_before = c.is_lowercase();
                    words.extend(c.to_lowercase());
                } else {
                    lower_before = false;
                    if !words.ends_with(' ') {
                        words.push(' ');
                    }
                }
            }
            // "sessions" too.
            words.contains("concurrent session")
        })
    }
}

impl<'a> ServerFrame<'a> {
    /// Decodes a server frame under the default [`DecodeLimits`].
    ///
    /// # Errors
    /// When the text is too large, not JSON, or a recognised frame lacks a required field or
    /// has one of the wrong type.
    pub fn decode(text: &'a str) -> Result<Self, Error> {
        Self::decode_with(text, &DecodeLimits::default())
    }

    /// Decodes a server frame under `limits`.
    ///
    /// # Errors
    /// As [`ServerFrame::decode`].
    pub fn decode_with(text: &'a str, limits: &DecodeLimits) -> Result<Self, Error> {
        let peeked = envelope::peek(text, limits)?;
        Self::classify(&peeked).map_err(|e| e.with_frame(text))
    }

    fn classify(peeked: &envelope::Peeked<'a>) -> Result<Self, Error> {
        let Some(env) = &peeked.envelope else {
            return peeked.raw().map(Self::Unknown);
        };
        // An explicit `null` says as little as a missing key: a frame that sends
        // `"error_code": null` or `"errorCode": null` carries no error.
        let present = |raw: Option<&'a RawValue>| raw.filter(|r| !raw::is_null(r));
        if let Some(sig) = present(env.sig) {
            return match raw::as_str(sig).as_deref() {
                Some("DATA") => {
                    const FRAME: &str = "DATA";
                    let subscription_id =
                        raw::require_str(env.subscription_id, FRAME, "subscription_id")?;
                    // Any code but `null` makes the frame an error, a code of no usable value
                    // one of unknown status: it must not read as an event. The documented key
                    // is `error_code`, but the request-level spelling must not let a failure
                    // through as an event either.
                    match present(env.error_code).or_else(|| present(env.error_code_camel)) {
                        None => Ok(Self::Data(Data {
                            subscription_id,
                            payload: raw::require(env.payload, FRAME, "payload")?,
                        })),
                        Some(code) => Ok(Self::DataError(DataError {
                            error_code: envelope::status_code(code),
                            subscription_id,
                            payload: error_payload(env.payload),
                        })),
                    }
                }
                Some("EOS") => {
                    // The end of the session must reach the caller whatever the reason looks
                    // like; a reason that is not text is kept as its JSON text.
                    let reason = present(env.reason)
                        .map(|r| raw::as_str(r).unwrap_or(Cow::Borrowed(r.get())));
                    Ok(Self::Eos(Eos { reason }))
                }
                Some("PONG") => Ok(Self::Pong(Pong {
                    payload: env.payload,
                })),
                _ => peeked.raw().map(Self::Unknown),
            };
        }
        // The documented key is `errorCode`, but one sent in the DATA frames' spelling says the
        // same: read as a plain response, the failure would pass for a success.
        if let Some(code) = present(env.error_code_camel).or_else(|| present(env.error_code)) {
            const FRAME: &str = "error";
            // A code of no usable value still makes an error, of unknown status.
            let id = env
                .id
                .filter(|id| !raw::is_null(id))
                .map(|id| envelope::request_id(id, FRAME))
                .transpose()?;
            return Ok(Self::Error(ErrorResponse {
                error_code: envelope::status_code(code),
                id,
                payload: error_payload(env.payload),
            }));
        }
        match (env.id, env.payload) {
            (Some(id), Some(raw_payload)) => {
                const FRAME: &str = "response";
                let id = envelope::request_id(id, FRAME)?;
                let payload: GraphQlResponse<'a> =
                    raw::parse_object(raw_payload, FRAME, "payload")?;
                if let Some(subscription_id) = ack_subscription_id(&payload) {
                    return Ok(Self::SubscriptionAck(SubscriptionAck {
                        id,
                        subscription_id,
                    }));
                }
                if let Some(payload) = protocol_error_without_code(&payload, raw_payload) {
                    return Ok(Self::Error(ErrorResponse {
                        error_code: envelope::UNKNOWN_STATUS,
                        id: Some(id),
                        payload,
                    }));
                }
                Ok(Self::Response(Response { id, payload }))
            }
            _ => peeked.raw().map(Self::Unknown),
        }
    }

    /// A short name of the frame's kind, for logs and metrics.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Response(_) => "response",
            Self::SubscriptionAck(_) => "subscription_ack",
            Self::Data(_) => "DATA",
            Self::DataError(_) => "DATA_error",
            Self::Error(_) => "error",
            Self::Eos(_) => "EOS",
            Self::Pong(_) => "PONG",
            Self::Unknown(_) => "unknown",
        }
    }
}

/// The payload of a frame an error code marks as an error. Without one the frame is still that
/// error: refused, it would lose the request or subscription it names, whose caller would then
/// wait for an answer that already came. It reads as a `null` payload does.
fn error_payload(payload: Option<&RawValue>) -> ErrorPayload<'_> {
    ErrorPayload::classify(payload.unwrap_or(RawValue::NULL))
}

/// A response is an ack when it has no errors and its `data` is exactly
/// `{"subscription_id": "<string>"}`. No root field of the schema has that name, but a query
/// can alias one to it (`query { subscription_id: __typename }`), and its answer then reads as
/// an ack too: the frame alone cannot tell them apart, so callers must go by what they asked
/// with that request id.
fn ack_subscription_id<'a>(payload: &GraphQlResponse<'a>) -> Option<Cow<'a, str>> {
    if payload.errors.is_some() || payload.extensions.is_some() {
        return None;
    }
    let data = payload.data?;
    serde_json::from_str::<OnlySubscriptionId<'a>>(data.get())
        .ok()
        .and_then(|only| only.0)
}

/// The error payload of an answer that carries a `body` (the documented protocolErrorPayload)
/// and neither `data` nor `errors`, when its error code was lost. No documented answer has
/// that shape: a GraphQL response holds `data`, `errors` or both, and `body` is the text of a
/// failure ("GraphQL server unavailable"), so read as a response the failure would complete its
/// request as a success with no data. Only that rare shape pays for the second look.
fn protocol_error_without_code<'a>(
    payload: &GraphQlResponse<'a>,
    raw_payload: &'a RawValue,
) -> Option<ErrorPayload<'a>> {
    let no_data = payload.data.is_none_or(raw::is_null);
    if !no_data || payload.errors.is_some() {
        return None;
    }
    ErrorPayload::has_body(raw_payload).then(|| ErrorPayload::classify(raw_payload))
}

struct OnlySubscriptionId<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for OnlySubscriptionId<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OnlySubscriptionId<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut found = None;
                let mut other = false;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "subscription_id" && found.is_none() {
                        let value: &'de RawValue = map.next_value()?;
                        match raw::as_str(value) {
                            Some(id) => found = Some(id),
                            None => other = true,
                        }
                    } else {
                        other = true;
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(OnlySubscriptionId(if other { None } else { found }))
            }
        }
        d.deserialize_map(V)
    }
}

impl Serialize for ServerFrame<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Response(f) => f.serialize(s),
            Self::SubscriptionAck(f) => f.serialize(s),
            Self::Data(f) => f.serialize(s),
            Self::DataError(f) => f.serialize(s),
            Self::Error(f) => f.serialize(s),
            Self::Eos(f) => f.serialize(s),
            Self::Pong(f) => f.serialize(s),
            Self::Unknown(raw) => raw.serialize(s),
        }
    }
}

impl Serialize for Response<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Response", 2)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("payload", &self.payload)?;
        st.end()
    }
}

impl Serialize for SubscriptionAck<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Inner<'p> {
            subscription_id: &'p str,
        }
        #[derive(Serialize)]
        struct Payload<'p> {
            data: Inner<'p>,
        }
        let mut st = s.serialize_struct("SubscriptionAck", 2)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field(
            "payload",
            &Payload {
                data: Inner {
                    subscription_id: &self.subscription_id,
                },
            },
        )?;
        st.end()
    }
}

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Data", 3)?;
        st.serialize_field("sig", "DATA")?;
        st.serialize_field("subscription_id", &self.subscription_id)?;
        st.serialize_field("payload", self.payload)?;
        st.end()
    }
}

impl Serialize for DataError<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("DataError", 4)?;
        st.serialize_field("error_code", &self.error_code)?;
        st.serialize_field("sig", "DATA")?;
        st.serialize_field("subscription_id", &self.subscription_id)?;
        st.serialize_field("payload", &self.payload)?;
        st.end()
    }
}

impl Serialize for ErrorResponse<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ErrorResponse", 3)?;
        st.serialize_field("errorCode", &self.error_code)?;
        st.serialize_field("payload", &self.payload)?;
        if let Some(id) = &self.id {
            st.serialize_field("id", id)?;
        }
        st.end()
    }
}

impl Serialize for Eos<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Eos", 2)?;
        st.serialize_field("sig", "EOS")?;
        if let Some(reason) = &self.reason {
            st.serialize_field("reason", reason)?;
        }
        st.end()
    }
}

impl Serialize for Pong<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Pong", 2)?;
        st.serialize_field("sig", "PONG")?;
        if let Some(payload) = self.payload {
            st.serialize_field("payload", payload)?;
        }
        st.end()
    }
}

encode_methods!(
    ServerFrame,
    Response,
    SubscriptionAck,
    Data,
    DataError,
    ErrorResponse,
    Eos,
    Pong
);

#[cfg(test)]
mod tests {
    use super::ServerFrame;
    use crate::{ErrorKind, chat::RequestId};

    fn response(text: &str) -> super::Response<'_> {
        match ServerFrame::decode(text) {
            Ok(ServerFrame::Response(r)) => r,
            other => panic!("not a response: {other:?}: {text}"),
        }
    }

    #[test]
    fn odd_errors_still_answer_their_request() {
        let r =
            response(r#"{"id":7,"payload":{"data":null,"errors":[{"message":"x","UUID":42}]}}"#);
        assert_eq!(r.id, RequestId::from(7_u64));
        let errors = r.payload.errors.expect("errors");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].message, "x");
        assert_eq!(errors[0].uuid.as_deref(), Some("42"));
        assert!(errors[0].name.is_none());

        let r = response(r#"{"id":7,"payload":{"errors":["Invalid access token"]}}"#);
        assert_eq!(r.id, RequestId::from(7_u64));
        let errors = r.payload.errors.expect("errors");
        assert_eq!(errors[0].message, "Invalid access token");
        assert!(!errors[0].is_retryable());

        let r = response(r#"{"id":7,"payload":{"errors":{}}}"#);
        assert_eq!(r.id, RequestId::from(7_u64));
        assert_eq!(
            r.payload.errors.map(|e| e.len()),
            Some(1),
            "a failure, not a success"
        );

        let r = response(r#"{"id":"q","payload":{"errors":[{"name":5,"message":null},7]}}"#);
        let errors = r.payload.errors.expect("errors");
        assert_eq!(
            errors[0].name,
            Some(crate::chat::ErrorName::Unknown("5".into()))
        );
        assert_eq!(errors[0].message, "");
        assert_eq!(errors[1].message, "7");
    }

    #[test]
    fn a_concurrent_session_eos_is_known_in_any_spelling() {
        for reason in [
            "concurrent session limit reached",
            "Concurrent session limit reached.",
            "  CONCURRENT SESSION LIMIT REACHED\n",
            "Concurrent session detected",
            "CONCURRENT_SESSION_LIMIT",
            "concurrent-session limit",
            "concurrent  session limit",
            "Too many concurrent sessions",
            "CONCURRENT_SESSIONS_EXCEEDED",
            "concurrentSessionLimit",
        ] {
            let text = serde_json::json!({ "sig": "EOS", "reason": reason }).to_string();
            let Ok(ServerFrame::Eos(eos)) = ServerFrame::decode(&text) else {
                panic!("not EOS: {text}");
            };
            assert!(eos.is_concurrent_session_limit(), "{reason:?}");
        }
        for reason in [
            "unexpected session state",
            "session limit reached",
            "concurrent",
        ] {
            let text = serde_json::json!({ "sig": "EOS", "reason": reason }).to_string();
            let Ok(ServerFrame::Eos(eos)) = ServerFrame::decode(&text) else {
                panic!("not EOS: {text}");
            };
            assert!(!eos.is_concurrent_session_limit(), "{reason:?}");
        }
    }

    #[test]
    fn an_eos_with_an_odd_reason_still_ends_the_session() {
        let frame = ServerFrame::decode(r#"{"sig":"EOS","reason":{"code":1}}"#);
        let Ok(ServerFrame::Eos(eos)) = frame else {
            panic!("not EOS: {frame:?}");
        };
        assert_eq!(eos.reason.as_deref(), Some(r#"{"code":1}"#));
        assert!(!eos.is_concurrent_session_limit());
        let frame = ServerFrame::decode(r#"{"sig":"EOS","reason":null}"#);
        assert!(
            matches!(frame, Ok(ServerFrame::Eos(ref e)) if e.reason.is_none()),
            "{frame:?}"
        );
    }

    #[test]
    fn error_codes_given_as_digit_strings_are_read() {
        let text =
            r#"{"sig":"DATA","subscription_id":"s","payload":{"errors":[]},"error_code":"429"}"#;
        let frame = ServerFrame::decode(text);
        assert!(
            matches!(frame, Ok(ServerFrame::DataError(ref e)) if e.error_code == 429 && e.subscription_id == "s"),
            "{frame:?}"
        );
        let text = r#"{"errorCode":"429","id":3,"payload":{"errors":[{"message":"slow down"}]}}"#;
        let frame = ServerFrame::decode(text);
        assert!(
            matches!(frame, Ok(ServerFrame::Error(ref e)) if e.error_code == 429 && e.id == Some(RequestId::from(3_u64))),
            "{frame:?}"
        );
    }

    #[test]
    fn unusable_error_codes_still_make_errors_of_unknown_status() {
        use super::{DataError, ErrorResponse};
        use crate::chat::ErrorPayload;

        let codes = [
            r#""503 Service Unavailable""#,
            "true",
            "false",
            r#"{"code":503}"#,
            "[429]",
            r#"" 429""#,
            r#""E503""#,
            r#""-1""#,
            r#""abc""#,
            r#""""#,
            "-1",
            "70000",
            r#""70000""#,
            "5.0",
            "0",
        ];
        for code in codes {
            let text =
                format!(r#"{{"errorCode":{code},"id":5,"payload":{{"body":"unavailable"}}}}"#);
            let frame = ServerFrame::decode(&text);
            let Ok(ServerFrame::Error(e)) = frame else {
                panic!("not an error: {frame:?}: {text}");
            };
            assert_eq!(e.error_code, ErrorResponse::UNKNOWN_STATUS, "{text}");
            assert_eq!(e.status(), None, "{text}");
            assert_eq!(e.id, Some(RequestId::from(5_u64)), "{text}");
            assert!(
                matches!(e.payload, ErrorPayload::Protocol { ref body } if body == "unavailable"),
                "{text}"
            );

            let text = format!(r#"{{"errorCode":{code},"id":3,"payload":{{"errors":["x"]}}}}"#);
            let frame = ServerFrame::decode(&text);
            assert!(
                matches!(frame, Ok(ServerFrame::Error(ref e)) if e.status().is_none() && e.payload.errors().len() == 1),
                "{frame:?}: {text}"
            );

            let text = format!(
                r#"{{"sig":"DATA","subscription_id":"s","payload":{{"data":{{}}}},"error_code":{code}}}"#
            );
            let frame = ServerFrame::decode(&text);
            assert!(
                matches!(frame, Ok(ServerFrame::DataError(ref e)) if e.error_code == DataError::UNKNOWN_STATUS && e.status().is_none() && e.subscription_id == "s"),
                "{frame:?}: {text}"
            );
        }
        // `null` says nothing, and a usable code is read as it is.
        let text = r#"{"errorCode":null,"id":3,"payload":{"data":{"a":1}}}"#;
        assert!(matches!(
            ServerFrame::decode(text),
            Ok(ServerFrame::Response(_))
        ));
        let text = r#"{"errorCode":"0503","id":3,"payload":{"body":"x"}}"#;
        let frame = ServerFrame::decode(text);
        assert!(
            matches!(frame, Ok(ServerFrame::Error(ref e)) if e.status() == Some(503)),
            "{frame:?}"
        );
        // An error frame is still refused for an id it cannot answer.
        let e = ServerFrame::decode(r#"{"errorCode":"x","id":[1],"payload":{}}"#)
            .expect_err("a broken id");
        assert_eq!(
            e.kind(),
            &ErrorKind::InvalidField {
                frame: "error",
                field: "id"
            }
        );
    }

    #[test]
    fn either_error_key_marks_either_frame_as_an_error() {
        use crate::DecodeLimits;
        use crate::chat::{ErrorPayload, split_data, split_response};

        let limits = DecodeLimits::new();
        let text = r#"{"error_code":503,"id":5,"payload":{"body":"GraphQL server unavailable"}}"#;
        let frame = ServerFrame::decode(text);
        let Ok(ServerFrame::Error(e)) = frame else {
            panic!("not an error: {frame:?}");
        };
        assert_eq!(e.status(), Some(503));
        assert_eq!(e.id, Some(RequestId::from(5_u64)));
        assert!(
            matches!(e.payload, ErrorPayload::Protocol { ref body } if body == "GraphQL server unavailable"),
            "{e:?}"
        );
        let text = r#"{"error_code":"x","id":5,"payload":{"data":{"a":1}}}"#;
        let frame = ServerFrame::decode(text);
        assert!(
            matches!(frame, Ok(ServerFrame::Error(ref e)) if e.status().is_none()),
            "{frame:?}"
        );

        let text = r#"{"sig":"DATA","subscription_id":"s","errorCode":500,"payload":{"body":"x"}}"#;
        let frame = ServerFrame::decode(text);
        let Ok(ServerFrame::DataError(e)) = frame else {
            panic!("not a DATA error: {frame:?}");
        };
        assert_eq!(e.status(), Some(500));
        assert_eq!(e.subscription_id, "s");
        assert!(matches!(e.payload, ErrorPayload::Protocol { ref body } if body == "x"));

        // The documented spelling wins when both come; `null` in either says nothing.
        let text =
            r#"{"sig":"DATA","subscription_id":"s","errorCode":500,"error_code":429,"payload":{}}"#;
        let frame = ServerFrame::decode(text);
        assert!(
            matches!(frame, Ok(ServerFrame::DataError(ref e)) if e.status() == Some(429)),
            "{frame:?}"
        );
        let text = r#"{"errorCode":429,"error_code":500,"id":1,"payload":{}}"#;
        let frame = ServerFrame::decode(text);
        assert!(
            matches!(frame, Ok(ServerFrame::Error(ref e)) if e.status() == Some(429)),
            "{frame:?}"
        );
        let text = r#"{"sig":"DATA","subscription_id":"s","errorCode":null,"error_code":null,"payload":{"data":{}}}"#;
        assert!(matches!(
            ServerFrame::decode(text),
            Ok(ServerFrame::Data(_))
        ));
        let text = r#"{"error_code":null,"id":1,"payload":{"data":{"a":1}}}"#;
        assert!(matches!(
            ServerFrame::decode(text),
            Ok(ServerFrame::Response(_))
        ));

        // The fast paths leave every frame with an error key, in either spelling, to the
        // decoder.
        for key in ["error_code", "errorCode"] {
            for code in ["500", r#""500""#, "null"] {
                let data = format!(
                    r#"{{"sig":"DATA","subscription_id":"s","{key}":{code},"payload":{{"data":{{}}}}}}"#
                );
                assert_eq!(split_data(&data, &limits), None, "{data}");
                let response = format!(r#"{{"{key}":{code},"id":1,"payload":{{"data":{{}}}}}}"#);
                assert_eq!(split_response(&response, &limits), None, "{response}");
            }
        }
    }

    #[test]
    fn an_error_code_without_a_payload_still_makes_the_error() {
        use crate::chat::ErrorPayload;

        for text in [
            r#"{"errorCode":503,"id":5}"#,
            r#"{"errorCode":503,"id":5,"payload":null}"#,
        ] {
            let frame = ServerFrame::decode(text);
            let Ok(ServerFrame::Error(e)) = frame else {
                panic!("not an error: {frame:?}: {text}");
            };
            assert_eq!(e.status(), Some(503), "{text}");
            assert_eq!(e.id, Some(RequestId::from(5_u64)), "{text}");
            assert!(
                matches!(e.payload, ErrorPayload::Unknown(p) if p.get() == "null"),
                "{text}"
            );
            let encoded = ServerFrame::Error(e).encode().expect("encodes");
            assert_eq!(
                encoded, r#"{"errorCode":503,"payload":null,"id":5}"#,
                "{text}"
            );
        }
        for text in [
            r#"{"sig":"DATA","subscription_id":"s","error_code":500}"#,
            r#"{"sig":"DATA","subscription_id":"s","errorCode":500}"#,
            r#"{"sig":"DATA","subscription_id":"s","error_code":500,"payload":null}"#,
        ] {
            let frame = ServerFrame::decode(text);
            let Ok(ServerFrame::DataError(e)) = frame else {
                panic!("not a DATA error: {frame:?}: {text}");
            };
            assert_eq!(e.status(), Some(500), "{text}");
            assert_eq!(e.subscription_id, "s", "{text}");
            assert!(
                matches!(e.payload, ErrorPayload::Unknown(p) if p.get() == "null"),
                "{text}"
            );
        }
        // Without a code a DATA frame is an event, which needs its payload.
        let e = ServerFrame::decode(r#"{"sig":"DATA","subscription_id":"s"}"#)
            .expect_err("an event without a payload");
        assert_eq!(
            e.kind(),
            &ErrorKind::MissingField {
                frame: "DATA",
                field: "payload"
            }
        );
    }

    #[test]
    fn an_answer_with_a_body_but_no_data_or_errors_is_an_error() {
        use super::ErrorResponse;
        use crate::chat::ErrorPayload;

        for text in [
            r#"{"id":5,"payload":{"body":"GraphQL server unavailable"}}"#,
            r#"{"id":5,"payload":{"data":null,"body":"GraphQL server unavailable"}}"#,
            r#"{"id":5,"payload":{"body":"GraphQL server unavailable","x":1}}"#,
        ] {
            let frame = ServerFrame::decode(text);
            let Ok(ServerFrame::Error(e)) = frame else {
                panic!("not an error: {frame:?}: {text}");
            };
            assert_eq!(e.error_code, ErrorResponse::UNKNOWN_STATUS, "{text}");
            assert_eq!(e.id, Some(RequestId::from(5_u64)), "{text}");
            assert!(
                matches!(e.payload, ErrorPayload::Protocol { ref body } if body == "GraphQL server unavailable"),
                "{text}"
            );
            // Encoding it gives an error frame that reads back the same.
            let encoded = ServerFrame::Error(e).encode().expect("encodes");
            let again = ServerFrame::decode(&encoded).expect("decodes");
            assert_eq!(again.encode().expect("encodes"), encoded);
        }
        // Still an error when the payload is no clean protocolErrorPayload.
        for text in [
            r#"{"id":5,"payload":{"body":{"detail":"x"}}}"#,
            r#"{"id":5,"payload":{"errors":null,"body":"x"}}"#,
        ] {
            let frame = ServerFrame::decode(text);
            assert!(
                matches!(frame, Ok(ServerFrame::Error(ref e)) if matches!(e.payload, ErrorPayload::Unknown(_)) && e.status().is_none()),
                "{frame:?}: {text}"
            );
        }
        // With data or errors, the body is only an extra key of a GraphQL response; `null`
        // and no body at all say nothing.
        for text in [
            r#"{"id":5,"payload":{"data":{"a":1},"body":"x"}}"#,
            r#"{"id":5,"payload":{"errors":[{"message":"m"}],"body":"x"}}"#,
            r#"{"id":5,"payload":{"errors":[],"body":"x"}}"#,
            r#"{"id":5,"payload":{"body":null}}"#,
            r#"{"id":5,"payload":{}}"#,
            r#"{"id":5,"payload":{"data":null}}"#,
        ] {
            let frame = ServerFrame::decode(text);
            assert!(
                matches!(frame, Ok(ServerFrame::Response(_))),
                "{frame:?}: {text}"
            );
        }
    }

    #[test]
    fn debug_of_events_pongs_and_unknown_frames_shows_only_their_shape() {
        use crate::chat::{Data, Pong};

        for text in [
            r#"{"sig":"DATA","subscription_id":"s1","payload":{"data":{"message":{"node":{"content":"SECRET"}}}}}"#,
            r#"{"sig":"PONG","payload":"SECRET"}"#,
            r#"{"sig":"PONG","payload":{"t":"SECRET"}}"#,
            r#"{"sig":"NEW","token":"SECRET"}"#,
            r#"{"what":"SECRET"}"#,
            r#"["SECRET"]"#,
            r#"{"errorCode":400,"id":1,"payload":{"token":"SECRET"}}"#,
            r#"{"error_code":400,"sig":"DATA","subscription_id":"s","payload":["SECRET"]}"#,
            r#"{"errorCode":400,"id":1,"payload":{"errors":[{"message":"m","extensions":{"t":"SECRET"}}]}}"#,
            r#"{"id":1,"payload":{"errors":[{"message":"m","extensions":"SECRET"}]}}"#,
        ] {
            let frame = ServerFrame::decode(text).expect("decodes");
            let shown = format!("{frame:?}");
            assert!(!shown.contains("SECRET"), "{shown}");
            let pretty = format!("{frame:#?}");
            assert!(!pretty.contains("SECRET"), "{pretty}");
        }
        let frame = ServerFrame::decode(
            r#"{"sig":"DATA","subscription_id":"s1","payload":{"data":{"message":"SECRET"}}}"#,
        );
        let Ok(ServerFrame::Data(data)) = frame else {
            panic!("not DATA: {frame:?}");
        };
        let shown = format!("{data:?}");
        assert!(
            shown.contains("s1") && shown.contains(r#"{"data": …}"#),
            "{shown}"
        );
        let raw = serde_json::value::RawValue::from_string(r#""SECRET""#.to_owned()).expect("JSON");
        let shown = format!(
            "{:?}",
            Pong {
                payload: Some(&raw)
            }
        );
        assert_eq!(shown, "Pong { payload: Some(<string, 8 bytes>) }");
        let shown = format!(
            "{:?}",
            Data {
                subscription_id: "s".into(),
                payload: &raw,
            }
        );
        assert!(!shown.contains("SECRET"), "{shown}");
    }

    #[test]
    fn debug_of_an_answer_hides_the_session_credentials() {
        let text = r#"{"id":1,"payload":{"data":{"startAgentSession":{"websocket_url":"wss://SECRET","session_id":"SECRET"}}}}"#;
        let shown = format!("{:?}", ServerFrame::decode(text).expect("a response"));
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("startAgentSession"), "{shown}");
    }
}
