//! Query root.

use async_graphql::{Context, ID, Object};

use super::connection::{AgentConnection, ChannelConnection, ConnectionArgs, DepartmentConnection};
use super::types::{Agent, Channel, Department, GraphQlSubscription, VisitorChannel};
use super::{session, state};

/// Query root.
#[derive(Debug, Default)]
pub(crate) struct QueryRoot;

#[Object(name = "Query", rename_args = "snake_case")]
impl QueryRoot {
    /// The account's agents.
    async fn agents(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
        before: Option<String>,
        last: Option<i32>,
    ) -> async_graphql::Result<Option<AgentConnection>> {
        session(ctx)?;
        let agents = state(ctx)?.agents().into_iter().map(Agent).collect();
        let args = ConnectionArgs {
            after,
            first,
            before,
            last,
        };
        AgentConnection::window(agents, 0, &args).map(Some)
    }

    /// The account's departments.
    async fn departments(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
        before: Option<String>,
        last: Option<i32>,
    ) -> async_graphql::Result<Option<DepartmentConnection>> {
        session(ctx)?;
        let departments = state(ctx)?
            .departments()
            .into_iter()
            .map(Department)
            .collect();
        let args = ConnectionArgs {
            after,
            first,
            before,
            last,
        };
        DepartmentConnection::window(departments, 0, &args).map(Some)
    }

    /// The channels the agent serves or listens to.
    async fn channels(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
        before: Option<String>,
        last: Option<i32>,
    ) -> async_graphql::Result<Option<ChannelConnection>> {
        let session = session(ctx)?;
        let channels = state(ctx)?
            .channels_of(&session.agent)
            .into_iter()
            .map(|c| Channel::VisitorChannel(VisitorChannel(c)))
            .collect();
        let args = ConnectionArgs {
            after,
            first,
            before,
            last,
        };
        ChannelConnection::window(channels, 0, &args).map(Some)
    }

    /// The session's active subscriptions.
    #[graphql(name = "graphQLSubscriptions")]
    async fn graphql_subscriptions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<Vec<GraphQlSubscription>>> {
        let session = session(ctx)?;
        let mut ids: Vec<String> = session.subscriptions.lock().keys().cloned().collect();
        ids.sort();
        Ok(Some(
            ids.into_iter()
                .map(|id| GraphQlSubscription {
                    subscription_id: ID(id),
                })
                .collect(),
        ))
    }
}
