//! Chat Conversations API frames: GraphQL over Zendesk's own JSON WebSocket protocol.
//!
//! The client sends [`ClientFrame`]s (request, stop_subscription, PING) and receives
//! [`ServerFrame`]s (response, subscription ack, DATA, DATA error, error response, EOS, PONG).
//! Both directions decode and encode, so the same types serve the client and the emulator.
//!
//! Decoding makes one full pass over the frame to peek the envelope keys; every GraphQL `data`
//! stays a borrowed [`RawValue`](serde_json::value::RawValue) until the subscriber decodes it
//! into its own type (a response's `payload` is read again to split `data` from `errors`).

mod client;
mod data_split;
mod envelope;
mod error_name;
#[cfg(test)]
mod frame_gen;
mod graphql;
mod nesting;
mod payload_split;
pub(crate) mod redact;
mod request_id;
mod response_split;
mod scan;
mod server;

pub use client::{ClientFrame, Ping, Request, StopSubscription};
pub use data_split::{DataParts, split_data};
pub use error_name::{ErrorName, RetryPolicy};
pub use graphql::{ErrorPayload, GraphQlError, GraphQlRequest, GraphQlResponse};
pub use nesting::{MAX_BRACKET_NESTING, nests_deeper_than};
pub use payload_split::payload_data;
pub use request_id::{RawNumber, RequestId};
pub use response_split::{ResponseParts, split_response};
pub use server::{
    Data, DataError, Eos, ErrorResponse, Pong, Response, ServerFrame, SubscriptionAck,
};
