#![doc = include_str!("../README.md")]

#[cynic::schema("chat")]
#[allow(
    missing_debug_implementations,
    unreachable_pub,
    missing_docs,
    non_camel_case_types
)]
mod schema {}

mod api;
mod config;
mod deadlines;
mod dedup;
pub mod depth;
mod driver;
mod error;
mod fast_hash;
mod msg_id;
pub mod ops;
pub mod rate_limit;
pub mod retry;
mod session;
mod state;
pub mod structured;
mod subscription;
mod transport;

pub use api::{OutgoingMessage, SendMessageBuilder};
pub use config::{Config, DEFAULT_ENDPOINT, OnConcurrentSession};
pub use driver::Driver;
pub use error::{Error, ErrorKind, ServiceError};
pub use ops::{AgentStatus, Message};
pub use session::AgentSession;
pub use state::{LifecycleEvent, ResumableFacts, SessionState, SubscriptionFacts};
pub use subscription::Subscription;
/// The credential types a session needs, re-exported so users need not name `zd-auth`.
pub use zd_auth::{Credentials, Secret, StaticToken};
/// Error names of the service, re-exported from `zd-wire`.
pub use zd_wire::chat::ErrorName;
