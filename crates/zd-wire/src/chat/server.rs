//! Frames the server sends: responses, subscription acks, DATA, errors, EOS and PONG.

use std::{borrow::Cow, fmt};

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{IgnoredAny, MapAccess, Visitor},
    ser::SerializeStruct,
};
use serde_json::value::RawValue;

use super::{ErrorPayload, GraphQlResponse, RequestId, client::encode_methods, envelope};
use crate::{DecodeLimits, Error, raw};

/// A frame sent by the server (decoded by the client).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ServerFrame<'a> {
    /// `{"id":..,"payload":{"data":..,"errors":..}}`: the answer to a query or mutation.
    Response(Response<'a>),
    /// `{"id":..,"payload":{"data":{"subscription_id":..}}}`: a subscription started.
    SubscriptionAck(SubscriptionAck<'a>),
    /// `{"sig":"DATA","subscription_id":..,"payload":..}`: one subscription event.
    Data(Data<'a>),
    /// `{"error_code":..,"sig":"DATA","subscription_id":..,"payload":..}`: a subscription failed.
    DataError(DataError<'a>),
    /// `{"errorCode":..,"payload":..,"id":..}`: a request failed.
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
#[derive(Debug, Clone)]
pub struct Data<'a> {
    /// The subscription this event belongs to; route by it.
    pub subscription_id: Cow<'a, str>,
    /// The GraphQL response, undecoded.
    pub payload: &'a RawValue,
}

/// A subscription-level failure.
#[derive(Debug, Clone)]
pub struct DataError<'a> {
    /// An HTTP status code.
    pub error_code: u16,
    /// The subscription that failed.
    pub subscription_id: Cow<'a, str>,
    /// What failed.
    pub payload: ErrorPayload<'a>,
}

/// A request-level failure.
#[derive(Debug, Clone)]
pub struct ErrorResponse<'a> {
    /// An HTTP status code.
    pub error_code: u16,
    /// The id of the failed request (absent on errors not tied to one).
    pub id: Option<RequestId>,
    /// What failed.
    pub payload: ErrorPayload<'a>,
}

/// End of service: the session is no longer valid.
#[derive(Debug, Clone, Default)]
pub struct Eos<'a> {
    /// Why, as free text (e.g. `"unexpected session state"`).
    pub reason: Option<Cow<'a, str>>,
}

/// The echo of a ping.
#[derive(Debug, Clone, Default)]
pub struct Pong<'a> {
    /// The ping's payload.
    pub payload: Option<&'a RawValue>,
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

impl Eos<'_> {
    /// The one reason known to need operator attention rather than a new session: another
    /// session logged in with the same credentials.
    pub const CONCURRENT_SESSION_LIMIT: &'static str = "concurrent session limit reached";

    /// True when the reason says another session with the same credentials took over, in
    /// which case starting a new session would only fight it.
    #[must_use]
    pub fn is_concurrent_session_limit(&self) -> bool {
        self.reason.as_deref() == Some(Self::CONCURRENT_SESSION_LIMIT)
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
                    let payload = raw::require(env.payload, FRAME, "payload")?;
                    match present(env.error_code) {
                        None => Ok(Self::Data(Data {
                            subscription_id,
                            payload,
                        })),
                        Some(code) => Ok(Self::DataError(DataError {
                            error_code: envelope::status_code(code, FRAME, "error_code")?,
                            subscription_id,
                            payload: ErrorPayload::classify(payload),
                        })),
                    }
                }
                Some("EOS") => {
                    let reason = match env.reason {
                        Some(r) if !raw::is_null(r) => {
                            Some(raw::as_str(r).ok_or_else(|| Error::invalid("EOS", "reason"))?)
                        }
                        _ => None,
                    };
                    Ok(Self::Eos(Eos { reason }))
                }
                Some("PONG") => Ok(Self::Pong(Pong {
                    payload: env.payload,
                })),
                _ => peeked.raw().map(Self::Unknown),
            };
        }
        if let Some(code) = present(env.error_code_camel) {
            const FRAME: &str = "error";
            let id = env
                .id
                .filter(|id| !raw::is_null(id))
                .map(|id| envelope::request_id(id, FRAME))
                .transpose()?;
            return Ok(Self::Error(ErrorResponse {
                error_code: envelope::status_code(code, FRAME, "errorCode")?,
                id,
                payload: ErrorPayload::classify(raw::require(env.payload, FRAME, "payload")?),
            }));
        }
        match (env.id, env.payload) {
            (Some(id), Some(payload)) => {
                const FRAME: &str = "response";
                let id = envelope::request_id(id, FRAME)?;
                let payload: GraphQlResponse<'a> = raw::parse_object(payload, FRAME, "payload")?;
                if let Some(subscription_id) = ack_subscription_id(&payload) {
                    return Ok(Self::SubscriptionAck(SubscriptionAck {
                        id,
                        subscription_id,
                    }));
                }
                Ok(Self::Response(Response { id, payload }))
            }
            _ => peeked.raw().map(Self::Unknown),
        }
    }

    /// Encodes the frame as JSON text.
    ///
    /// # Errors
    /// Only if serde_json refuses a value, which the frame types never produce.
    pub fn encode(&self) -> Result<String, Error> {
        serde_json::to_string(self).map_err(Error::encode)
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

/// A response is an ack when it has no errors and its `data` is exactly
/// `{"subscription_id": "<string>"}`: no root field of the schema has that name, so a query
/// result can never look like this.
fn ack_subscription_id<'a>(payload: &GraphQlResponse<'a>) -> Option<Cow<'a, str>> {
    if payload.errors.is_some() || payload.extensions.is_some() {
        return None;
    }
    let data = payload.data?;
    serde_json::from_str::<OnlySubscriptionId<'a>>(data.get())
        .ok()
        .and_then(|only| only.0)
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
    Response,
    SubscriptionAck,
    Data,
    DataError,
    ErrorResponse,
    Eos,
    Pong
);
