//! Integration tests of the emulator with a plain WebSocket client and plain HTTP.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions"
)]

mod browser;
mod common;
mod control_api;
mod faults;
mod hostile_input;
mod introspection;
mod lifecycle;
mod limits;
mod memory_bounds;
mod oauth_scopes;
mod protocol;
mod schema_file;
mod state;
mod subscription_root;
