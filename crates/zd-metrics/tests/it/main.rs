//! Integration tests of zd-metrics over loopback sockets: against the emulator, and against a
//! small scriptable server for conditions the emulator cannot produce.
// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attempt;
mod creds;
mod emulator;
mod emulator_drop;
mod feed;
#[cfg(feature = "prometheus")]
mod prometheus;
mod rest;
mod server;
