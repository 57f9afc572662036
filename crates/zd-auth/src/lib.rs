#![doc = include_str!("../README.md")]

mod credentials;
mod error;
mod refreshing;
mod secret;
mod transport;

pub mod chat;
pub mod retry_after;
pub mod sunshine;

pub use credentials::{BoxFuture, Credentials, StaticToken};
pub use error::{
    BODY_EXCERPT_LIMIT, Error, ErrorKind, OAuthError, OAuthErrorCode, blank_controls,
    drop_partial_tail, redact_sent,
};
pub use refreshing::{FetchedToken, RefreshingToken, TokenSource};
pub use secret::Secret;
pub use transport::{HttpConfig, without_split_char};
