//! Typed GraphQL operations for every root field of the chat schema, built with cynic.
//!
//! Each operation is a cynic fragment on a root type plus its variables; [`crate::AgentSession`]
//! sends them and decodes the answers. Their query texts are snapshotted in this module's tests,
//! so a change of wire shape shows up in review.

pub mod fragments;
pub mod mutations;
pub mod queries;
pub mod subscriptions;

pub use fragments::*;
pub use mutations::*;
pub use queries::*;
pub use subscriptions::*;

#[cfg(test)]
mod tests;
