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
