//! Queries: agents, departments and channels, each a Relay connection.

// cynic's QueryVariables derive adds a `...Fields` marker struct without Debug.
#![allow(missing_debug_implementations)]

use super::fragments::{Agent, Channel, Department, PageInfo};
use crate::schema;

/// Relay forward-pagination arguments.
#[derive(cynic::QueryVariables, Debug, Clone, Default)]
pub struct PageVariables {
    /// Page size.
    pub first: Option<i32>,
    /// Start after this cursor.
    pub after: Option<String>,
}

macro_rules! connection {
    ($conn:ident, $edge:ident, $gconn:literal, $gedge:literal, $node:ty) => {
        /// One page of a connection.
        #[derive(cynic::QueryFragment, Debug, Clone)]
        #[cynic(graphql_type = $gconn)]
        pub struct $conn {
            /// The items.
            pub edges: Option<Vec<Option<$edge>>>,
            /// Where the page sits.
            #[cynic(rename = "pageInfo")]
            pub page_info: PageInfo,
        }

        /// One item of a connection.
        #[derive(cynic::QueryFragment, Debug, Clone)]
        #[cynic(graphql_type = $gedge)]
        pub struct $edge {
            /// The item.
            pub node: Option<$node>,
            /// Its cursor.
            pub cursor: String,
        }

        impl $conn {
            /// The items and the cursor of the next page (when there is one).
            #[must_use]
            pub fn into_page(self) -> (Vec<$node>, Option<String>) {
                let next = if self.page_info.has_next_page {
                    self.page_info.end_cursor.clone()
                } else {
                    None
                };
                let items = self
                    .edges
                    .unwrap_or_default()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.node)
                    .collect();
                (items, next)
            }
        }
    };
}

connection!(
    AgentConnection,
    AgentEdge,
    "AgentConnection",
    "AgentEdge",
    Agent
);
connection!(
    DepartmentConnection,
    DepartmentEdge,
    "DepartmentConnection",
    "DepartmentEdge",
    Department
);
connection!(
    ChannelConnection,
    ChannelEdge,
    "ChannelConnection",
    "ChannelEdge",
    Channel
);

/// `query { agents(first, after) { ... } }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Query", variables = "PageVariables")]
pub struct AgentsQuery {
    /// The page.
    #[arguments(first: $first, after: $after)]
    pub agents: Option<AgentConnection>,
}

/// `query { departments(first, after) { ... } }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Query", variables = "PageVariables")]
pub struct DepartmentsQuery {
    /// The page.
    #[arguments(first: $first, after: $after)]
    pub departments: Option<DepartmentConnection>,
}

/// `query { channels(first, after) { ... } }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Query", variables = "PageVariables")]
pub struct ChannelsQuery {
    /// The page.
    #[arguments(first: $first, after: $after)]
    pub channels: Option<ChannelConnection>,
}

#[allow(dead_code)]
fn _schema_is_used(_: schema::Query) {}

/// Variables of [`CatchUpQuery`].
#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct CatchUpVariables {
    /// How many channels.
    pub channels: Option<i32>,
    /// How many recent logs per channel.
    pub logs: Option<i32>,
}

/// Recent logs of the channels this agent serves: what `message` may have missed while the
/// socket was down.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Query", variables = "CatchUpVariables")]
pub struct CatchUpQuery {
    /// The channels.
    #[arguments(first: $channels)]
    pub channels: Option<CatchUpChannels>,
}

/// Channels of a catch-up.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "ChannelConnection", variables = "CatchUpVariables")]
pub struct CatchUpChannels {
    /// The channels.
    pub edges: Option<Vec<Option<CatchUpChannelEdge>>>,
}

/// One channel of a catch-up.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "ChannelEdge", variables = "CatchUpVariables")]
pub struct CatchUpChannelEdge {
    /// The channel.
    pub node: Option<CatchUpChannel>,
}

/// A channel's recent logs.
#[derive(cynic::InlineFragments, Debug, Clone)]
#[cynic(graphql_type = "Channel", variables = "CatchUpVariables")]
pub enum CatchUpChannel {
    /// A visitor channel.
    VisitorChannel(ChannelLogs),
    /// Any other channel.
    #[cynic(fallback)]
    Other,
}

/// Recent logs of a visitor channel.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "VisitorChannel", variables = "CatchUpVariables")]
pub struct ChannelLogs {
    /// The logs.
    #[arguments(last: $logs)]
    pub logs: Option<LogConnection>,
}

/// A page of chat logs.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "ChatLogConnection")]
pub struct LogConnection {
    /// The logs.
    pub edges: Option<Vec<Option<LogEdge>>>,
}

/// One chat log.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "ChatLogEdge")]
pub struct LogEdge {
    /// The log.
    pub node: Option<super::fragments::ChatLog>,
}

impl CatchUpQuery {
    /// The messages found, oldest first.
    #[must_use]
    pub fn into_messages(self) -> Vec<super::fragments::Message> {
        let mut out: Vec<_> = self
            .channels
            .and_then(|c| c.edges)
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .filter_map(|e| e.node)
            .filter_map(|c| match c {
                CatchUpChannel::VisitorChannel(c) => c.logs,
                CatchUpChannel::Other => None,
            })
            .flat_map(|l| l.edges.unwrap_or_default())
            .flatten()
            .filter_map(|e| match e.node {
                Some(super::fragments::ChatLog::Message(m)) => Some(m),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| {
            a.timestamp_ms()
                .unwrap_or(0.0)
                .total_cmp(&b.timestamp_ms().unwrap_or(0.0))
        });
        out
    }
}

/// A live subscription of this session, as the service lists it.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "GraphQLSubscription", rename_all = "None")]
pub struct LiveSubscription {
    /// Its id (as in DATA frames).
    pub subscription_id: cynic::Id,
}

/// `query { graphQLSubscriptions { subscription_id } }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Query")]
pub struct GraphQlSubscriptionsQuery {
    /// The session's live subscriptions.
    #[cynic(rename = "graphQLSubscriptions")]
    pub graphql_subscriptions: Option<Vec<LiveSubscription>>,
}
