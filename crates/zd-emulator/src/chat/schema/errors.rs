//! GraphQL errors carrying the documented error names.

use async_graphql::ErrorExtensions as _;
use zd_wire::chat::ErrorName;

use crate::state::StateError;

/// The extension key that carries the error name until the response is rendered.
pub(crate) const NAME_KEY: &str = "name";

/// An error with a documented name.
pub(crate) fn named(name: &ErrorName, message: impl Into<String>) -> async_graphql::Error {
    let name = name.as_str().to_owned();
    async_graphql::Error::new(message.into()).extend_with(|_, e| e.set(NAME_KEY, name.clone()))
}

/// A `GRAPHQL_EXEC_ERROR`.
pub(crate) fn exec_error(message: impl Into<String>) -> async_graphql::Error {
    named(&ErrorName::GraphQlExecError, message)
}

/// The error for a refused state operation.
pub(crate) fn state_error(e: &StateError) -> async_graphql::Error {
    exec_error(e.to_string())
}
