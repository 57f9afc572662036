#![doc = include_str!("../README.md")]

pub mod account;
pub mod chat;
pub mod clock;
pub mod control;
mod credentials;
mod emulator;
mod ids;
mod json_len;
mod realtime;
mod secret_field;
mod server;
pub mod state;
pub mod sunshine;
mod web;

pub use account::{AccountConfig, describe_toml_error};
pub use chat::limits::Limits;
pub use clock::Clock;
pub use control::{Control, ControlError};
pub use emulator::{AccountInfo, AgentInfo, DepartmentInfo, Emulator, EmulatorBuilder, StartError};
pub use realtime::{RealtimeLimits, SubscribeAnswer};
