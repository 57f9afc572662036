//! GraphQL payloads carried inside chat frames.

use std::borrow::Cow;

use serde::{Deserialize, Serialize, Serializer, ser::SerializeStruct};
use serde_json::value::RawValue;

use crate::raw;

/// The `payload` of a request frame: a GraphQL request.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// A GraphQL response (`payload` of a response or DATA frame): `data` stays raw.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GraphQlResponse<'a> {
    /// The result, undecoded; decode it into the operation's own type.
    #[serde(
        default,
        borrow,
        deserialize_with = "raw::some_raw",
        skip_serializing_if = "Option::is_none"
    )]
    pub data: Option<&'a RawValue>,
    /// Errors reported alongside (or instead of) `data`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
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

/// One GraphQL error, as the Chat Conversations API reports it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GraphQlError<'a> {
    /// The error name used for handling (absent on plain GraphQL errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<ErrorName>,
    /// Human-readable detail.
    #[serde(default, borrow)]
    pub message: Cow<'a, str>,
    /// Globally unique id of this error occurrence, for support requests.
    #[serde(rename = "UUID", default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<Cow<'a, str>>,
    /// Standard GraphQL `locations`, raw.
    #[serde(
        default,
        borrow,
        deserialize_with = "raw::some_raw",
        skip_serializing_if = "Option::is_none"
    )]
    pub locations: Option<&'a RawValue>,
    /// Standard GraphQL `path`, raw.
    #[serde(
        default,
        borrow,
        deserialize_with = "raw::some_raw",
        skip_serializing_if = "Option::is_none"
    )]
    pub path: Option<&'a RawValue>,
    /// Standard GraphQL `extensions`, raw.
    #[serde(
        default,
        borrow,
        deserialize_with = "raw::some_raw",
        skip_serializing_if = "Option::is_none"
    )]
    pub extensions: Option<&'a RawValue>,
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
#[derive(Debug, Clone)]
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

#[derive(Deserialize)]
struct ErrorPayloadPeek<'a> {
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    errors: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    body: Option<&'a RawValue>,
}

impl<'a> ErrorPayload<'a> {
    /// Classifies a raw error payload. Shapes other than the two documented ones (including
    /// documented keys with unexpected types) become [`ErrorPayload::Unknown`].
    pub(crate) fn classify(raw: &'a RawValue) -> Self {
        let Ok(peek) = serde_json::from_str::<ErrorPayloadPeek<'a>>(raw.get()) else {
            return Self::Unknown(raw);
        };
        match (peek.errors, peek.body) {
            (Some(errors), None) => serde_json::from_str(errors.get())
                .map(Self::GraphQl)
                .unwrap_or(Self::Unknown(raw)),
            (None, Some(body)) => raw::as_str(body)
                .map(|body| Self::Protocol { body })
                .unwrap_or(Self::Unknown(raw)),
            _ => Self::Unknown(raw),
        }
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
