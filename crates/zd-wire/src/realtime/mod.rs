//! Real Time Chat streaming frames and the metric catalogue.
//!
//! The client sends [`ClientFrame`]s (subscribe / unsubscribe to a [`Topic`]) and receives
//! [`ServerFrame`]s (metric updates, status-code frames, and the REST API's "Not Computed!"
//! body). Both directions decode and encode. The metric keys, their families and their time
//! windows are the typed [`Metric`] catalogue, checked against `schemas/metrics/catalogue.json`.

mod client;
mod entries;
mod envelope;
mod metric;
mod server;
mod topic;
mod value;

pub use client::{Action, ClientFrame, Subscription};
pub use metric::{Family, Metric, MetricUnit, Window};
pub use server::{ServerFrame, Status, StatusMessage, Update};
pub use topic::Topic;
pub use value::{MetricValue, Windowed};
