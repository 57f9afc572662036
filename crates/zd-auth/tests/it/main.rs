//! Integration tests of zd-auth over real loopback HTTP.

// Test helpers outside #[test] functions may unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bridge;
mod chat_oauth;
mod jwt;
mod server;
mod single_flight;
