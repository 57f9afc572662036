//! Turns engine responses into the service's frames and payloads, with documented error names
//! and a UUID per error.

use serde_json::value::RawValue;
use zd_wire::chat::{
    ErrorName, ErrorPayload, ErrorResponse, GraphQlError, GraphQlResponse, RequestId, Response,
};

use super::schema::errors::NAME_KEY;

/// An error with owned parts, rendered into a [`GraphQlError`] on demand.
#[derive(Debug, Clone)]
pub(crate) struct OwnedError {
    pub(crate) name: ErrorName,
    pub(crate) message: String,
    pub(crate) uuid: String,
    pub(crate) path: Option<Box<RawValue>>,
}

impl OwnedError {
    pub(crate) fn new(name: ErrorName, message: impl Into<String>) -> Self {
        Self {
            name,
            message: message.into(),
            uuid: uuid::Uuid::new_v4().to_string(),
            path: None,
        }
    }

    pub(crate) fn wire(&self) -> GraphQlError<'_> {
        let mut e = GraphQlError::new(self.name.clone(), self.message.as_str(), self.uuid.as_str());
        e.path = self.path.as_deref();
        e
    }
}

/// The HTTP status an error name travels with in `errorCode`.
pub(crate) fn status_of(name: &ErrorName) -> u16 {
    match name {
        ErrorName::Unauthorized => 401,
        ErrorName::Forbidden => 403,
        ErrorName::RateLimited => 429,
        ErrorName::MaxSub | ErrorName::GraphQlExecError | ErrorName::GraphQlSubStartError => 400,
        _ => 500,
    }
}

/// An engine response split into raw data and named errors.
#[derive(Debug)]
pub(crate) struct Rendered {
    pub(crate) data: Option<Box<RawValue>>,
    pub(crate) errors: Vec<OwnedError>,
}

impl Rendered {
    pub(crate) fn from_engine(resp: &async_graphql::Response) -> Self {
        let data = match &resp.data {
            async_graphql::Value::Null => None,
            value => serde_json::to_string(value)
                .ok()
                .and_then(|s| RawValue::from_string(s).ok()),
        };
        let errors = resp
            .errors
            .iter()
            .map(|e| {
                let name = e
                    .extensions
                    .as_ref()
                    .and_then(|x| x.get(NAME_KEY))
                    .and_then(|v| match v {
                        async_graphql::Value::String(s) => Some(ErrorName::from_name(s)),
                        _ => None,
                    })
                    .unwrap_or(ErrorName::GraphQlExecError);
                let mut owned = OwnedError::new(name, e.message.clone());
                if !e.path.is_empty() {
                    owned.path = serde_json::to_string(&e.path)
                        .ok()
                        .and_then(|s| RawValue::from_string(s).ok());
                }
                owned
            })
            .collect();
        Self { data, errors }
    }

    /// The GraphQL response payload as JSON (`{"data":..,"errors":[..]}`).
    pub(crate) fn payload_json(&self) -> String {
        let payload = GraphQlResponse {
            data: self.data.as_deref(),
            errors: (!self.errors.is_empty())
                .then(|| self.errors.iter().map(OwnedError::wire).collect()),
            extensions: None,
        };
        serde_json::to_string(&payload).unwrap_or_default()
    }

    /// The frame answering request `id`: an error response when nothing was resolved, else a
    /// response carrying data and any field errors.
    pub(crate) fn frame(&self, id: RequestId) -> String {
        if self.data.is_none()
            && let Some(first) = self.errors.first()
        {
            return error_frame(Some(id), &self.errors, status_of(&first.name));
        }
        let response = Response {
            id,
            payload: GraphQlResponse {
                data: self.data.as_deref(),
                errors: (!self.errors.is_empty())
                    .then(|| self.errors.iter().map(OwnedError::wire).collect()),
                extensions: None,
            },
        };
        response.encode().unwrap_or_default()
    }
}

/// An error response frame.
pub(crate) fn error_frame(id: Option<RequestId>, errors: &[OwnedError], code: u16) -> String {
    ErrorResponse {
        error_code: code,
        id,
        payload: ErrorPayload::GraphQl(errors.iter().map(OwnedError::wire).collect()),
    }
    .encode()
    .unwrap_or_default()
}

/// An error response frame with a protocol error payload (`{"body":..}`), as the service
/// sends when the request never reached GraphQL (e.g. its GraphQL server is unavailable).
pub(crate) fn protocol_error_frame(id: Option<RequestId>, code: u16, body: &str) -> String {
    ErrorResponse {
        error_code: code,
        id,
        payload: ErrorPayload::Protocol { body: body.into() },
    }
    .encode()
    .unwrap_or_default()
}

/// An error response frame for one named error.
pub(crate) fn named_error_frame(
    id: Option<RequestId>,
    name: ErrorName,
    message: impl Into<String>,
) -> String {
    let code = status_of(&name);
    error_frame(id, &[OwnedError::new(name, message)], code)
}

/// The HTTP body of a GraphQL response (`{"data":..,"errors":[..]}`).
pub(crate) fn http_body(rendered: &Rendered) -> String {
    rendered.payload_json()
}
