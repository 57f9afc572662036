//! GraphQL payloads carried inside chat frames.

use std::{borrow::Cow, fmt};

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{IgnoredAny, MapAccess, SeqAccess, Visitor},
    ser::SerializeStruct,
};
use serde_json::value::RawValue;

use super::redact;
use crate::raw;

/// The `payload` of a request frame: a GraphQL request.
///
/// `Debug` shows the query with its string literals elided and only the names of the
/// variables: `startAgentSession` carries the access token in one or the other.
#[derive(Clone, Serialize, Deserialize)]
pub struct GraphQlRequest<'a> {
    /// The GraphQL document.
    #[serde(borrow)]
    pub query: Cow<'a, str>,
    /// Variables, kept as raw JSON (normally an object).
    #[serde(
        default,
        borrow,
        deserialize_with = "raw::some_raw",
        skip_serializing_if = "Option::is_none"
    )]
    pub variables: Option<&'a RawValue>,
    /// The operation to run when the document holds several.
    #[serde(
        rename = "operationName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub operation_name: Option<Cow<'a, str>>,
}

impl<'a> GraphQlRequest<'a> {
    /// A request with only a document.
    #[must_use]
    pub fn new(query: impl Into<Cow<'a, str>>) -> Self {
        Self {
            query: query.into(),
            variables: None,
            operation_name: None,
        }
    }

    /// Sets the variables (raw JSON, e.g. from [`serde_json::value::to_raw_value`]).
    #[must_use]
    pub fn variables(mut self, variables: &'a RawValue) -> Self {
        self.variables = Some(variables);
        self
    }

    /// Sets the operation name.
    #[must_use]
    pub fn operation_name(mut self, name: impl Into<Cow<'a, str>>) -> Self {
        self.operation_name = Some(name.into());
        self
    }
}

impl fmt::Debug for GraphQlRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphQlRequest")
            .field("query", &redact::Query(&self.query))
            .field("variables", &self.variables.map(redact::Shape))
            .field("operation_name", &self.operation_name)
            .finish()
    }
}

/// A GraphQL response (`payload` of a response or DATA frame): `data` stays raw.
///
/// `errors` is read leniently, so that an answer whose errors are not quite as documented
/// (a bare string, an object, an entry with a number where a string belongs) still reads as a
/// failed answer to its request rather than as an undecodable frame: see [`GraphQlError`].
///
/// `Debug` shows only the top-level keys and size of `data` and `extensions`: the
/// `startAgentSession` answer holds the websocket URL and session id, which act as credentials.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct GraphQlResponse<'a> {
    /// The result, undecoded; decode it into the operation's own type.
    #[serde(
        default,
        borrow,
        deserialize_with = "raw::some_raw",
        skip_serializing_if = "Option::is_none"
    )]
    pub data: Option<&'a RawValue>,
    /// Errors reported alongside (or instead of) `data`. A single error given without the
    /// array (an object, a string, a number or a boolean) is read as a list of one; `null` as
    /// none. Only the first 64 entries of a longer list are kept; the rest are skipped.
    #[serde(
        default,
        borrow,
        deserialize_with = "loose_errors",
        skip_serializing_if = "Option::is_none"
    )]
    pub errors: Option<Vec<GraphQlError<'a>>>,
    /// GraphQL `extensions`, raw.
    #[serde(
        default,
        borrow,
        deserialize_with = "raw::some_raw",
        skip_serializing_if = "Option::is_none"
    )]
    pub extensions: Option<&'a RawValue>,
}

impl<'a> GraphQlResponse<'a> {
    /// Decodes a raw GraphQL response.
    ///
    /// # Errors
    /// When the text is not an object of that shape.
    pub fn from_raw(raw: &'a RawValue) -> Result<Self, crate::Error> {
        raw::parse_object(raw, "response", "payload")
    }

    /// Decodes `data` into `T`; `None` when the response has no (or null) data.
    ///
    /// # Errors
    /// When `data` does not match `T`.
    pub fn decode_data<T: Deserialize<'a>>(&self) -> Result<Option<T>, crate::Error> {
        match self.data {
            Some(data) if !raw::is_null(data) => raw::parse(data, "response", "data").map(Some),
            _ => Ok(None),
        }
    }
}

impl fmt::Debug for GraphQlResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphQlResponse")
            .field("data", &self.data.map(redact::Shape))
            .field("errors", &self.errors)
            .field("extensions", &self.extensions.map(redact::Shape))
            .finish()
    }
}

/// One GraphQL error, as the Chat Conversations API reports it.
///
/// Decoding never refuses an error for its shape: whoever reads an answer must learn that its
/// request failed even when the error is malformed, or the request would wait for an answer
/// that already came (and a retried mutation could run twice). So:
///
/// - a string, number or boolean where an error object belongs becomes its `message` (the
///   number or boolean as its JSON text); `null` or an array, an error with no name and an
///   empty message;
/// - in an object, a `name`, `message` or `UUID` that is `null` reads as absent (an empty
///   message), and one of a type other than a string is kept as that value's JSON text (a
///   `name` then classifies as [`ErrorName::Unknown`], which is never retried by its name);
///   `locations`, `path` and `extensions` are kept raw whatever their type; other keys are
///   skipped.
///
/// An error without a documented name says nothing about retrying: callers that have the
/// status code of the frame it came in should decide by that.
///
/// `Debug` shows `locations`, `path` and `extensions` by shape only: servers put arbitrary
/// detail there, and the first two are kept raw whatever their type.
#[derive(Clone, Default, Serialize)]
pub struct GraphQlError<'a> {
    /// The error name used for handling (absent on plain GraphQL errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<ErrorName>,
    /// Human-readable detail.
    pub message: Cow<'a, str>,
    /// Globally unique id of this error occurrence, for support requests.
    #[serde(rename = "UUID", skip_serializing_if = "Option::is_none")]
    pub uuid: Option<Cow<'a, str>>,
    /// Standard GraphQL `locations`, raw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locations: Option<&'a RawValue>,
    /// Standard GraphQL `path`, raw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<&'a RawValue>,
    /// Standard GraphQL `extensions`, raw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<&'a RawValue>,
}

impl fmt::Debug for GraphQlError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphQlError")
            .field("name", &self.name)
            .field("message", &self.message)
            .field("uuid", &self.uuid)
            .field("locations", &self.locations.map(redact::Shape))
            .field("path", &self.path.map(redact::Shape))
            .field("extensions", &self.extensions.map(redact::Shape))
            .finish()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for GraphQlError<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Captured raw first: a string read directly is refused for an escape that is no
        // character (a lone surrogate, `"\ud800"`), which would refuse the whole answer.
        <&'de RawValue>::deserialize(d).map(loose_error)
    }
}

/// `deserialize_with` for [`GraphQlResponse::errors`]: the documented array in one pass, and
/// any other shape read as well as it can be.
fn loose_errors<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<GraphQlError<'a>>>, D::Error> {
    let raw = <&'de RawValue>::deserialize(d)?;
    if raw::is_null(raw) {
        return Ok(None);
    }
    match raw.get().as_bytes().first() {
        Some(b'[') => serde_json::from_str::<ErrorList<'de>>(raw.get())
            .map(|list| Some(list.0))
            .map_err(serde::de::Error::custom),
        // Any other value is one error: the service said something failed, so the answer must
        // not read as a success.
        _ => Ok(Some(vec![loose_error(raw)])),
    }
}

/// One error of any shape (see [`GraphQlError`]).
fn loose_error(raw: &RawValue) -> GraphQlError<'_> {
    match raw.get().as_bytes().first() {
        // The text is valid JSON and every key and value is read leniently, so this parse
        // cannot fail; were it to, the entry must still count as an error.
        Some(b'{') => serde_json::from_str::<ErrorObject<'_>>(raw.get())
            .map(|object| object.0)
            .unwrap_or_default(),
        Some(b'[') => GraphQlError::default(),
        _ => GraphQlError {
            message: loose_text(raw).unwrap_or_default(),
            ..GraphQlError::default()
        },
    }
}

/// Most errors of one answer kept: the rest of the list is read (the text must still be valid
/// JSON) but not stored, so a frame of half a million tiny entries cannot take hundreds of MB.
const MAX_ERRORS: usize = 64;

/// An `errors` array, its entries read leniently, the first [`MAX_ERRORS`] kept and the rest
/// skipped.
struct ErrorList<'a>(Vec<GraphQlError<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for ErrorList<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ErrorList<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of GraphQL errors")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // No allocation for `[]`, the usual answer; serde_json gives no size hint.
                let mut errors = match seq.size_hint() {
                    Some(n) => Vec::with_capacity(n.min(MAX_ERRORS)),
                    None => Vec::new(),
                };
                while errors.len() < MAX_ERRORS {
                    match seq.next_element::<GraphQlError<'de>>()? {
                        Some(error) => errors.push(error),
                        None => return Ok(ErrorList(errors)),
                    }
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ErrorList(errors))
            }
        }
        d.deserialize_seq(V)
    }
}

/// An error given as an object.
struct ErrorObject<'a>(GraphQlError<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for ErrorObject<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ErrorObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a GraphQL error")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut error = GraphQlError::default();
                while let Some(field) = map.next_key::<ErrorField>()? {
                    if field == ErrorField::Other {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                    let value: &'de RawValue = map.next_value()?;
                    match field {
                        ErrorField::Name => {
                            error.name = loose_text(value).map(|name| ErrorName::from_name(&name));
                        }
                        ErrorField::Message => {
                            error.message = loose_text(value).unwrap_or_default()
                        }
                        ErrorField::Uuid => error.uuid = loose_text(value),
                        ErrorField::Locations => error.locations = Some(value),
                        ErrorField::Path => error.path = Some(value),
                        ErrorField::Extensions => error.extensions = Some(value),
                        ErrorField::Other => {}
                    }
                }
                Ok(ErrorObject(error))
            }
        }
        d.deserialize_map(V)
    }
}

/// A string's text, `None` for `null`, and the JSON text of any other value.
fn loose_text(raw: &RawValue) -> Option<Cow<'_, str>> {
    if raw::is_null(raw) {
        return None;
    }
    Some(raw::as_str(raw).unwrap_or(Cow::Borrowed(raw.get())))
}

#[derive(PartialEq, Eq)]
enum ErrorField {
    Name,
    Message,
    Uuid,
    Locations,
    Path,
    Extensions,
    Other,
}

impl<'de> Deserialize<'de> for ErrorField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ErrorField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ErrorField, E> {
                Ok(match v {
                    b"name" => ErrorField::Name,
                    b"message" => ErrorField::Message,
                    b"UUID" => ErrorField::Uuid,
                    b"locations" => ErrorField::Locations,
                    b"path" => ErrorField::Path,
                    b"extensions" => ErrorField::Extensions,
                    _ => ErrorField::Other,
                })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ErrorField, E> {
                self.visit_bytes(v.as_bytes())
            }
        }
        // As bytes, so that a key with an escape that is no character (`"\ud800"`) is only
        // an unknown key, not a refused answer.
        d.deserialize_bytes(V)
    }
}

use super::ErrorName;

impl<'a> GraphQlError<'a> {
    /// An error with a name, message and UUID, as the server sends them.
    #[must_use]
    pub fn new(
        name: ErrorName,
        message: impl Into<Cow<'a, str>>,
        uuid: impl Into<Cow<'a, str>>,
    ) -> Self {
        Self {
            name: Some(name),
            message: message.into(),
            uuid: Some(uuid.into()),
            ..Self::default()
        }
    }

    /// True when the documented retry rule for this error's name allows a retry.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.name.as_ref().is_some_and(ErrorName::is_retryable)
    }
}

/// The payload of an error response or DATA error.
///
/// `Debug` shows an [`ErrorPayload::Unknown`] payload by shape only.
#[derive(Clone)]
#[non_exhaustive]
pub enum ErrorPayload<'a> {
    /// `graphQLErrorPayload`: `{"errors":[...]}`.
    GraphQl(Vec<GraphQlError<'a>>),
    /// `protocolErrorPayload`: `{"body":"..."}`, e.g. the GraphQL server is unavailable.
    Protocol {
        /// The error text.
        body: Cow<'a, str>,
    },
    /// Any other shape, kept raw.
    Unknown(&'a RawValue),
}

impl fmt::Debug for ErrorPayload<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GraphQl(errors) => f.debug_tuple("GraphQl").field(errors).finish(),
            Self::Protocol { body } => f.debug_struct("Protocol").field("body", body).finish(),
            Self::Unknown(raw) => f.debug_tuple("Unknown").field(&redact::Shape(raw)).finish(),
        }
    }
}

#[derive(Deserialize)]
struct ErrorPayloadPeek<'a> {
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    errors: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    body: Option<&'a RawValue>,
}

impl<'a> ErrorPayload<'a> {
    /// Classifies a raw error payload (keys other than `errors` and `body` are ignored). One
    /// with `errors`, an array, and no `body` is [`ErrorPayload::GraphQl`] whatever its entries
    /// look like (each is read as [`GraphQlError`] reads it, at most 64 kept); one with `body`,
    /// a string, and no `errors` is [`ErrorPayload::Protocol`]. Anything else becomes
    /// [`ErrorPayload::Unknown`]: a payload that is not an object, both keys or neither,
    /// `errors` that is not an array (`null` included), `body` that is not a string.
    pub(crate) fn classify(raw: &'a RawValue) -> Self {
        // A derived struct also reads an array of its fields in order (`[["boom"]]` as
        // `errors: ["boom"]`), so the object check must come first.
        let Ok(peek) = raw::parse_object::<ErrorPayloadPeek<'a>>(raw, "error", "payload") else {
            return Self::Unknown(raw);
        };
        match (peek.errors, peek.body) {
            (Some(errors), None) => serde_json::from_str::<ErrorList<'a>>(errors.get())
                .map(|list| Self::GraphQl(list.0))
                .unwrap_or(Self::Unknown(raw)),
            (None, Some(body)) => raw::as_str(body)
                .map(|body| Self::Protocol { body })
                .unwrap_or(Self::Unknown(raw)),
            _ => Self::Unknown(raw),
        }
    }

    /// True when `raw` is an object with a `body` that is not `null`: the mark of a
    /// protocolErrorPayload.
    pub(crate) fn has_body(raw: &RawValue) -> bool {
        raw::parse_object::<ErrorPayloadPeek<'_>>(raw, "error", "payload")
            .is_ok_and(|peek| peek.body.is_some_and(|body| !raw::is_null(body)))
    }

    /// The GraphQL errors, if this is a GraphQL error payload.
    #[must_use]
    pub fn errors(&self) -> &[GraphQlError<'a>] {
        match self {
            Self::GraphQl(errors) => errors,
            _ => &[],
        }
    }
}

impl Serialize for ErrorPayload<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::GraphQl(errors) => {
                let mut st = s.serialize_struct("graphQLErrorPayload", 1)?;
                st.serialize_field("errors", errors)?;
                st.end()
            }
            Self::Protocol { body } => {
                let mut st = s.serialize_struct("protocolErrorPayload", 1)?;
                st.serialize_field("body", body)?;
                st.end()
            }
            Self::Unknown(raw) => raw.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ErrorPayload, GraphQlError, GraphQlResponse};
    use crate::chat::ErrorName;

    #[test]
    fn documented_errors_read_as_before() {
        let text = r#"{"data":null,"errors":[{"name":"RATE_LIMITED","message":"a\"b","UUID":"u","locations":null,"path":["x"],"extensions":{"k":1},"other":[1]}]}"#;
        let r: GraphQlResponse<'_> = serde_json::from_str(text).expect("a response");
        let e = &r.errors.as_ref().expect("errors")[0];
        assert_eq!(e.name, Some(ErrorName::RateLimited));
        assert_eq!(e.message, "a\"b");
        assert_eq!(e.uuid.as_deref(), Some("u"));
        assert_eq!(e.locations.map(|l| l.get()), Some("null"));
        assert_eq!(e.path.map(|p| p.get()), Some(r#"["x"]"#));
        assert_eq!(e.extensions.map(|x| x.get()), Some(r#"{"k":1}"#));
        assert_eq!(
            serde_json::to_string(&r).expect("encodes"),
            r#"{"data":null,"errors":[{"name":"RATE_LIMITED","message":"a\"b","UUID":"u","locations":null,"path":["x"],"extensions":{"k":1}}]}"#
        );
        let none: GraphQlResponse<'_> =
            serde_json::from_str(r#"{"data":{},"errors":null}"#).expect("a response");
        assert!(none.errors.is_none());
    }

    #[test]
    fn errors_of_any_shape_read_as_errors() {
        // The HTTP answer to startAgentSession goes through serde directly, not a frame decoder.
        let r: GraphQlResponse<'_> =
            serde_json::from_str(r#"{"errors":["Invalid access token"]}"#).expect("a response");
        assert_eq!(r.errors.expect("errors")[0].message, "Invalid access token");
        let r: GraphQlResponse<'_> =
            serde_json::from_str(r#"{"errors":"Invalid access token"}"#).expect("a response");
        assert_eq!(r.errors.expect("errors")[0].message, "Invalid access token");
        let r: GraphQlResponse<'_> =
            serde_json::from_str(r#"{"errors":[{"message":{"text":"x"}},null,[1],true]}"#)
                .expect("a response");
        let errors = r.errors.expect("errors");
        assert_eq!(errors[0].message, r#"{"text":"x"}"#);
        assert_eq!(errors.len(), 4);
        assert!(errors[1..].iter().all(|e| e.name.is_none()));
        assert_eq!(errors[3].message, "true");
    }

    #[test]
    fn text_that_is_no_string_is_kept_raw_in_any_shape() {
        // A lone surrogate escape decodes to no `str`: the text is kept as its JSON instead,
        // whether it comes bare, in a list, as a message or as a key.
        for (text, message) in [
            (r#"{"errors":["bad \ud800"]}"#, r#""bad \ud800""#),
            (r#"{"errors":"bad \ud800"}"#, r#""bad \ud800""#),
            (
                r#"{"errors":[{"message":"bad \ud800"}]}"#,
                r#""bad \ud800""#,
            ),
            (r#"{"errors":[{"\udc00":1,"message":"m"}]}"#, "m"),
            (r#"{"errors":[1.5e3]}"#, "1.5e3"),
        ] {
            let r: GraphQlResponse<'_> = serde_json::from_str(text).expect(text);
            let errors = r.errors.expect(text);
            assert_eq!(errors.len(), 1, "{text}");
            assert_eq!(errors[0].message, message, "{text}");
        }
        let raw = serde_json::value::RawValue::from_string(
            r#"{"errors":["bad \ud800",{"message":"x"}]}"#.to_owned(),
        )
        .expect("valid JSON");
        assert_eq!(ErrorPayload::classify(&raw).errors().len(), 2);
        let frame =
            crate::chat::ServerFrame::decode(r#"{"id":7,"payload":{"errors":["bad \ud800"]}}"#);
        let Ok(crate::chat::ServerFrame::Response(r)) = frame else {
            panic!("not a response: {frame:?}");
        };
        assert_eq!(r.id, crate::chat::RequestId::from(7_u64));
        let errors = r.payload.errors.expect("errors");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].message, r#""bad \ud800""#);
    }

    #[test]
    fn error_frames_keep_odd_entries_as_graphql_errors() {
        let raw = serde_json::value::RawValue::from_string(
            r#"{"errors":[{"message":"x","UUID":42}]}"#.to_owned(),
        )
        .expect("valid JSON");
        let ErrorPayload::GraphQl(errors) = ErrorPayload::classify(&raw) else {
            panic!("not a GraphQL error payload");
        };
        assert_eq!(errors[0].message, "x");
        let error: GraphQlError<'_> = serde_json::from_str(r#""bare""#).expect("an error");
        assert_eq!(error.message, "bare");
    }

    #[test]
    fn long_error_lists_keep_only_the_first_entries() {
        let many = format!("[{}0]", "0,".repeat(199));
        let text = format!(r#"{{"errors":{many}}}"#);
        let r: GraphQlResponse<'_> = serde_json::from_str(&text).expect("a response");
        let errors = r.errors.expect("errors");
        assert_eq!(errors.len(), 64);
        assert!(errors.capacity() <= 128, "{}", errors.capacity());
        let raw = serde_json::value::RawValue::from_string(text).expect("valid JSON");
        assert_eq!(ErrorPayload::classify(&raw).errors().len(), 64);
        // What is skipped must still be valid JSON.
        let broken = format!(r#"{{"errors":[{}{{"a":tru}}]}}"#, "0,".repeat(100));
        assert!(serde_json::from_str::<GraphQlResponse<'_>>(&broken).is_err());

        let r: GraphQlResponse<'_> = serde_json::from_str(r#"{"errors":[]}"#).expect("empty");
        let errors = r.errors.expect("an empty list");
        assert!(errors.is_empty());
        assert_eq!(errors.capacity(), 0, "no allocation for an empty list");
        let raw = serde_json::value::RawValue::from_string(r#"{"errors":null}"#.to_owned())
            .expect("valid JSON");
        assert!(matches!(
            ErrorPayload::classify(&raw),
            ErrorPayload::Unknown(_)
        ));
    }

    #[test]
    fn only_an_object_payload_is_classified() {
        let raw = |t: &str| serde_json::value::RawValue::from_string(t.to_owned()).expect("JSON");
        for text in [
            r#"[["boom"]]"#,
            r#"[["boom"],null]"#,
            r#"[null,"boom"]"#,
            r#""boom""#,
            "7",
            "null",
        ] {
            let payload = raw(text);
            let classified = ErrorPayload::classify(&payload);
            assert!(
                matches!(classified, ErrorPayload::Unknown(r) if r.get() == text),
                "{text}: {classified:?}"
            );
        }
        let payload = raw(r#"{"errors":["boom"]}"#);
        assert_eq!(ErrorPayload::classify(&payload).errors()[0].message, "boom");

        let frame =
            crate::chat::ServerFrame::decode(r#"{"errorCode":400,"id":1,"payload":[["boom"]]}"#);
        let Ok(crate::chat::ServerFrame::Error(e)) = frame else {
            panic!("not an error: {frame:?}");
        };
        assert!(matches!(e.payload, ErrorPayload::Unknown(_)), "{e:?}");
        assert!(e.payload.errors().is_empty());
    }

    #[test]
    fn debug_of_errors_and_unknown_payloads_hides_their_raw_parts() {
        let raw = |t: &str| serde_json::value::RawValue::from_string(t.to_owned()).expect("JSON");
        let payload = raw(r#"{"what":{"token":"SECRET"}}"#);
        let shown = format!("{:?}", ErrorPayload::classify(&payload));
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains(r#"Unknown({"what": …}"#), "{shown}");

        let extensions = raw(r#"{"token":"SECRET"}"#);
        let error = GraphQlError {
            extensions: Some(&extensions),
            ..GraphQlError::new(ErrorName::RateLimited, "slow down", "u-1")
        };
        let shown = format!("{error:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(
            shown.contains("slow down") && shown.contains("u-1"),
            "{shown}"
        );
        assert!(shown.contains(r#"{"token": …}"#), "{shown}");
        let shown = format!("{:?}", ErrorPayload::GraphQl(vec![error]));
        assert!(!shown.contains("SECRET"), "{shown}");
    }

    #[test]
    fn debug_of_an_error_shows_its_path_and_locations_by_shape() {
        let big = "x".repeat(100_000);
        for text in [
            r#"{"id":1,"payload":{"errors":[{"message":"m","path":{"token":"SECRET"}}]}}"#
                .to_owned(),
            format!(
                r#"{{"id":1,"payload":{{"errors":[{{"message":"m","path":["SECRET{big}"],"locations":"SECRET{big}"}}]}}}}"#
            ),
        ] {
            let frame = crate::chat::ServerFrame::decode(&text).expect("a response");
            for shown in [format!("{frame:?}"), format!("{frame:#?}")] {
                assert!(!shown.contains("SECRET"), "{shown}");
                assert!(shown.len() < 1_000, "{} bytes", shown.len());
            }
        }
    }

    #[test]
    fn debug_of_a_response_shows_only_the_shape_of_data() {
        let text = r#"{"data":{"startAgentSession":{"websocket_url":"wss://SECRET","session_id":"SECRET"}},"extensions":{"x":"SECRET"}}"#;
        let r: GraphQlResponse<'_> = serde_json::from_str(text).expect("a response");
        let shown = format!("{r:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains(r#"{"startAgentSession": …}"#), "{shown}");
    }
}
