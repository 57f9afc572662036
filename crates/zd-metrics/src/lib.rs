#![doc = include_str!("../README.md")]

mod client;
mod commands;
mod driver;
mod error;
mod events;
mod feed;
mod limits;
mod live;
#[cfg(feature = "prometheus")]
pub mod prometheus;
mod rest;
mod series;
mod snapshot;
mod transport;
mod update;

/// Retry policy type used by [`FeedConfig::reconnect`].
pub use backon::ExponentialBuilder;
pub use client::{DEFAULT_BASE_URL, FeedConfig, MetricsClient, MetricsClientBuilder};
pub use error::{BODY_EXCERPT_LIMIT, Error, ErrorKind};
pub use feed::{Feed, FeedEvent, FeedHandle, FeedState};
pub use limits::{
    LimitConfig, Limits, MAX_ACCOUNT_CONNECTIONS, MAX_AGENT_CONNECTIONS, REQUESTS_PER_MINUTE,
};
pub use live::{SnapshotReceiver, SnapshotRef, StateReceiver};
pub use rest::{Pull, Report};
pub use series::Series;
pub use snapshot::{DepartmentValues, Snapshot};
pub use update::MetricUpdate;
/// Re-exported so users never need to name `zd-wire` or `zd-auth`.
pub use zd_auth::{Credentials, Secret, StaticToken};
/// Re-exported metric catalogue and wire frames.
pub use zd_wire::realtime::{Family, Metric, MetricUnit, Update, Window};
