//! zd-wire's integration tests: fixtures, snapshots, property round trips, mutated corpus.

// Helpers outside #[test] fns are test code too; a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corpus;
mod fixtures;
mod mutations;
mod props;
mod request_ids;
mod snapshots;
