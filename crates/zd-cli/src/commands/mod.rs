//! One module per top-level command.

pub(crate) mod agent;
pub(crate) mod auth;
pub(crate) mod completions;
pub(crate) mod emulator;
pub(crate) mod metrics;
pub(crate) mod sunshine;
