#![doc = include_str!("../README.md")]

mod error;
mod refusal;
mod socket;
mod upgrade;

pub use error::{Error, Refusal};
pub use refusal::MAX_REFUSAL_BODY;
pub use socket::{Socket, connect, connector};
/// Re-exported: the stream [`upgrade`] returns.
pub use tokio_tungstenite::WebSocketStream;
/// Re-exported: what [`upgrade`] takes.
pub use tokio_tungstenite::tungstenite::handshake::client::Request;
/// Re-exported: the configuration [`upgrade`] takes.
pub use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
pub use upgrade::{
    MAX_RESPONSE_HEAD, Secrets, request_hiding_target, upgrade, upgrade_skipping_refusal_body,
};
