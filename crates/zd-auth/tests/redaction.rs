//! No secret shows through `{:?}`, `{:#?}`, `{}` or a tracing subscriber.
//!
//! This test has its own binary, so its process holds no other test threads: tracing caches
//! each log site's interest process-wide, and a site first reached by a concurrent test with
//! no subscriber could otherwise stay silenced for this test's thread-local subscriber.

// Test helpers outside #[test] functions may unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "it/server.rs"]
mod server;

#[path = "it/redaction.rs"]
mod redaction;
