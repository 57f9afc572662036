#![doc = include_str!("../README.md")]

mod macros;
pub(crate) use macros::string_enum;

mod builders;
mod client;
mod decode_failure;
mod encode;
mod error;
mod generated;
pub mod pagination;
mod patch;
mod request;
mod retry;
mod tagged;
mod transport;
mod upload;
pub mod webhooks;

pub use client::{Client, ClientBuilder, Redirect, Region};
pub use error::{
    API_ERROR_FIELD_LIMIT, API_ERRORS_LIMIT, ApiErrorItem, BODY_EXCERPT_LIMIT, Error, ErrorKind,
};
pub use generated::{SPEC_VERSION, models, operations};
pub use patch::Patch;
pub use request::{ApiRequest, JSON_BODY_LIMIT, RequestBody};
pub use retry::RetryPolicy;
pub use transport::{BoxFuture, HyperTransport, Transport, TransportBody, TransportConfig};
pub use upload::{UPLOAD_LIMIT, Upload};
pub use zd_auth::{Credentials, Secret};

/// Decode-then-encode by schema name or operation id (for the spec-example tests).
#[doc(hidden)]
pub use generated::spec_index;
