#![doc = include_str!("../README.md")]

pub mod chat;
mod error;
mod limits;
mod raw;
pub mod realtime;

pub use error::{Error, ErrorKind};
pub use limits::DecodeLimits;
/// Re-exported so callers can name the raw JSON type that frames borrow.
pub use serde_json::value::RawValue;
