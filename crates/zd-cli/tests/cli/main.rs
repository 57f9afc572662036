//! The `zd` binary against the emulator: every command, real processes, real sockets.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod agent;
mod auth;
mod basics;
mod demo;
mod emulator;
mod metrics;
mod sunshine;
mod support;
