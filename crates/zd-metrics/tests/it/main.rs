//! Integration tests of zd-metrics over loopback sockets.
// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod feed;
mod rest;
mod server;
