//! Subscriptions: `message` and `chatActivity`.

// cynic's QueryVariables derive adds a `...Fields` marker struct without Debug.
#![allow(missing_debug_implementations)]

use super::fragments::{ChatActivityType, ChatLog, Message};
use crate::schema;

/// One `message` event.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "MessageSubscriptionPayload")]
pub struct MessageEvent {
    /// The message.
    pub node: Option<Message>,
}

/// `subscription { message { node { ... } } }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Subscription")]
pub struct MessageSubscription {
    /// The event.
    pub message: Option<MessageEvent>,
}

/// Which activity to receive.
#[derive(cynic::InputObject, Debug, Clone, Default)]
#[cynic(graphql_type = "ChatActivityFilter", rename_all = "None")]
pub struct ChatActivityFilter {
    /// Activity kinds (all when absent).
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub chat_activity_types: Option<Vec<ChatActivityType>>,
}

/// Variables of `chatActivity`.
#[derive(cynic::QueryVariables, Debug, Clone, Default)]
pub struct ChatActivityVariables {
    /// The filter.
    pub filter: Option<ChatActivityFilter>,
}

/// One `chatActivity` event.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "ChatActivitySubscriptionPayload")]
pub struct ChatActivityEvent {
    /// The log entry.
    pub node: Option<ChatLog>,
}

/// `subscription { chatActivity(filter) { node { ... } } }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Subscription", variables = "ChatActivityVariables")]
pub struct ChatActivitySubscription {
    /// The event.
    #[arguments(filter: $filter)]
    pub chat_activity: Option<ChatActivityEvent>,
}

#[allow(dead_code)]
fn _schema_is_used(_: schema::Subscription) {}
