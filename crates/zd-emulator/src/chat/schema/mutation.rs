//! Mutation root.

use async_graphql::{Context, ID, Object};
use zd_wire::chat::ErrorName;

use super::errors::{exec_error, named, state_error};
use super::inputs::{
    ButtonInput, FallbackInput, ListItemInput, PanelInput, PanelTemplateInput, QuickReplyInput,
    buttons,
};
use super::types::{
    AddTagsPayload, Agent, InviteAgentPayload, LeaveChannelPayload, ListenVisitorChannelPayload,
    SendButtonTemplatePayload, SendListTemplatePayload, SendMessagePayload,
    SendPanelTemplateCarouselPayload, SendPanelTemplatePayload, SendQuickRepliesPayload,
    SetTypingIndicatorPayload, StartAgentSessionPayload, StopAgentSessionPayload,
    TransferToDepartmentPayload, UpdateAgentStatusPayload,
};
use super::{Caller, core, session, state};
use crate::ids::{self, IdKind};
use crate::state::{AgentStatus, OutgoingMessage, SendOutcome, Structured};

/// Mutation root.
#[derive(Debug, Default)]
pub(crate) struct MutationRoot;

fn decode(kind: IdKind, id: &ID, arg: &str) -> async_graphql::Result<String> {
    ids::decode(kind, id).ok_or_else(|| exec_error(format!("invalid {arg}: {:?}", id.as_str())))
}

/// Sends a structured message and reports success.
fn send_structured(
    ctx: &Context<'_>,
    channel_id: &ID,
    structured: Structured,
    fallback: Option<FallbackInput>,
) -> async_graphql::Result<bool> {
    let session = session(ctx)?;
    let channel = decode(IdKind::VisitorChannel, channel_id, "channel_id")?;
    let message = OutgoingMessage {
        structured: Some(structured),
        fallback: fallback.map(Into::into),
        ..OutgoingMessage::default()
    };
    let outcome = state(ctx)?
        .agent_send(&session.agent, &channel, message, false)
        .map_err(|e| state_error(&e))?;
    Ok(!matches!(outcome, SendOutcome::BackedOff))
}

#[Object(name = "Mutation", rename_args = "snake_case")]
impl MutationRoot {
    /// Starts an agent session with an OAuth access token (HTTP only).
    async fn start_agent_session(
        &self,
        ctx: &Context<'_>,
        access_token: String,
    ) -> async_graphql::Result<StartAgentSessionPayload> {
        let Some(Caller::Http { host }) = ctx.data_opt::<Caller>() else {
            return Err(exec_error(
                "startAgentSession is served over HTTP at /graphql/request only",
            ));
        };
        let core = core(ctx)?;
        let session = core
            .start_session(&access_token)
            .map_err(|name| match name {
                ErrorName::Unauthorized => named(&name, "Invalid access token"),
                ErrorName::Forbidden => named(
                    &name,
                    "The access token does not have the chat scope the Conversations API needs",
                ),
                _ => named(&name, "too many startAgentSession requests for this agent"),
            })?;
        Ok(StartAgentSessionPayload {
            websocket_url: Some(core.websocket_url(&session, host.as_deref())),
            session_id: Some(session.id.clone()),
            client_id: Some(session.client_id.clone()),
        })
    }

    /// Stops the current agent session.
    async fn stop_agent_session(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<StopAgentSessionPayload> {
        let session = session(ctx)?;
        core(ctx)?
            .sessions
            .end(session, crate::chat::session::STOPPED);
        Ok(StopAgentSessionPayload::of(true))
    }

    /// Adds tags to a channel the agent serves.
    async fn add_tags(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
        tags: Vec<String>,
    ) -> async_graphql::Result<AddTagsPayload> {
        let session = session(ctx)?;
        let channel = decode(IdKind::VisitorChannel, &channel_id, "channel_id")?;
        state(ctx)?
            .add_tags(&session.agent, &channel, &tags)
            .map_err(|e| state_error(&e))?;
        Ok(AddTagsPayload::of(true))
    }

    /// Invites an agent into the channel.
    async fn invite_agent(
        &self,
        ctx: &Context<'_>,
        agent_id: ID,
        channel_id: ID,
        leave: Option<bool>,
    ) -> async_graphql::Result<InviteAgentPayload> {
        let session = session(ctx)?;
        let invitee = decode(IdKind::Agent, &agent_id, "agent_id")?;
        let channel = decode(IdKind::VisitorChannel, &channel_id, "channel_id")?;
        state(ctx)?
            .invite_agent(&session.agent, &invitee, &channel, leave.unwrap_or(false))
            .map_err(|e| state_error(&e))?;
        Ok(InviteAgentPayload::of(true))
    }

    /// Leaves (or stops listening to) a channel.
    async fn leave_channel(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
    ) -> async_graphql::Result<LeaveChannelPayload> {
        let session = session(ctx)?;
        let channel = decode(IdKind::VisitorChannel, &channel_id, "channel_id")?;
        state(ctx)?
            .leave_channel(&session.agent, &channel)
            .map_err(|e| state_error(&e))?;
        Ok(LeaveChannelPayload::of(true))
    }

    /// Listens to a channel without joining it.
    async fn listen_visitor_channel(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
    ) -> async_graphql::Result<ListenVisitorChannelPayload> {
        let session = session(ctx)?;
        let channel = decode(IdKind::VisitorChannel, &channel_id, "channel_id")?;
        state(ctx)?
            .listen(&session.agent, &channel)
            .map_err(|e| state_error(&e))?;
        Ok(ListenVisitorChannelPayload::of(true))
    }

    /// Sends a message.
    async fn send_message(
        &self,
        ctx: &Context<'_>,
        backoff: Option<bool>,
        channel_id: ID,
        msg: String,
        msg_id: Option<String>,
        options: Option<Vec<String>>,
    ) -> async_graphql::Result<SendMessagePayload> {
        let session = session(ctx)?;
        let channel = decode(IdKind::VisitorChannel, &channel_id, "channel_id")?;
        let message = OutgoingMessage {
            msg,
            msg_id,
            options: options.unwrap_or_default(),
            ..OutgoingMessage::default()
        };
        let outcome = state(ctx)?
            .agent_send(&session.agent, &channel, message, backoff.unwrap_or(false))
            .map_err(|e| state_error(&e))?;
        Ok(SendMessagePayload::of(!matches!(
            outcome,
            SendOutcome::BackedOff
        )))
    }

    /// Transfers a channel to a department.
    async fn transfer_to_department(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
        department_id: ID,
        leave: Option<bool>,
    ) -> async_graphql::Result<TransferToDepartmentPayload> {
        let session = session(ctx)?;
        let channel = decode(IdKind::VisitorChannel, &channel_id, "channel_id")?;
        let department = decode(IdKind::Department, &department_id, "department_id")?;
        state(ctx)?
            .transfer(
                &session.agent,
                &channel,
                &department,
                leave.unwrap_or(false),
            )
            .map_err(|e| state_error(&e))?;
        Ok(TransferToDepartmentPayload::of(true))
    }

    /// Sets the agent's status.
    async fn update_agent_status(
        &self,
        ctx: &Context<'_>,
        status: AgentStatus,
    ) -> async_graphql::Result<UpdateAgentStatusPayload> {
        let session = session(ctx)?;
        let agent = state(ctx)?
            .set_agent_status(&session.agent, status)
            .map_err(|e| state_error(&e))?;
        Ok(UpdateAgentStatusPayload {
            node: Some(Agent(agent)),
        })
    }

    /// Shows or hides the typing indicator.
    async fn set_typing_indicator(
        &self,
        ctx: &Context<'_>,
        backoff: Option<bool>,
        channel_id: ID,
        typing: bool,
    ) -> async_graphql::Result<SetTypingIndicatorPayload> {
        let session = session(ctx)?;
        let channel = decode(IdKind::VisitorChannel, &channel_id, "channel_id")?;
        let done = state(ctx)?
            .agent_typing(&session.agent, &channel, typing, backoff.unwrap_or(false))
            .map_err(|e| state_error(&e))?;
        Ok(SetTypingIndicatorPayload::of(done))
    }

    /// Sends quick replies (at most 11).
    async fn send_quick_replies(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
        msg: String,
        quick_replies: Vec<QuickReplyInput>,
        fallback: Option<FallbackInput>,
    ) -> async_graphql::Result<SendQuickRepliesPayload> {
        let structured = Structured::QuickReplies {
            msg,
            quick_replies: quick_replies.into_iter().map(Into::into).collect(),
        };
        send_structured(ctx, &channel_id, structured, fallback).map(SendQuickRepliesPayload::of)
    }

    /// Sends a button template (1 to 3 buttons).
    async fn send_button_template(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
        msg: String,
        buttons: Vec<ButtonInput>,
        fallback: Option<FallbackInput>,
    ) -> async_graphql::Result<SendButtonTemplatePayload> {
        let structured = Structured::ButtonTemplate {
            msg,
            buttons: buttons.into_iter().map(Into::into).collect(),
        };
        send_structured(ctx, &channel_id, structured, fallback).map(SendButtonTemplatePayload::of)
    }

    /// Sends a panel template.
    async fn send_panel_template(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
        panel: PanelInput,
        buttons: Option<Vec<ButtonInput>>,
        fallback: Option<FallbackInput>,
    ) -> async_graphql::Result<SendPanelTemplatePayload> {
        let structured = Structured::PanelTemplate {
            panel: panel.into(),
            buttons: self::buttons(buttons),
        };
        send_structured(ctx, &channel_id, structured, fallback).map(SendPanelTemplatePayload::of)
    }

    /// Sends a carousel of panels (2 to 10 items).
    async fn send_panel_template_carousel(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
        items: Vec<PanelTemplateInput>,
        fallback: Option<FallbackInput>,
    ) -> async_graphql::Result<SendPanelTemplateCarouselPayload> {
        let structured = Structured::PanelTemplateCarousel {
            items: items.into_iter().map(Into::into).collect(),
        };
        send_structured(ctx, &channel_id, structured, fallback)
            .map(SendPanelTemplateCarouselPayload::of)
    }

    /// Sends a list template (2 to 4 items, at most one button).
    async fn send_list_template(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
        items: Vec<ListItemInput>,
        buttons: Option<Vec<ButtonInput>>,
        fallback: Option<FallbackInput>,
    ) -> async_graphql::Result<SendListTemplatePayload> {
        let structured = Structured::ListTemplate {
            items: items.into_iter().map(Into::into).collect(),
            buttons: self::buttons(buttons),
        };
        send_structured(ctx, &channel_id, structured, fallback).map(SendListTemplatePayload::of)
    }
}
