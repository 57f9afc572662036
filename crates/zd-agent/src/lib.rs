#![doc = include_str!("../README.md")]

#[cynic::schema("chat")]
#[allow(
    missing_debug_implementations,
    unreachable_pub,
    missing_docs,
    non_camel_case_types
)]
mod schema {}

pub mod depth;
pub mod rate_limit;
pub mod retry;
pub mod structured;
