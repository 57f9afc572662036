//! Every mutation of the schema, with its variables.

// cynic's QueryVariables derive adds a `...Fields` marker struct without Debug.
#![allow(missing_debug_implementations)]

use super::fragments::{Agent, AgentStatus};
use crate::schema;
use crate::structured::{Button, CarouselItem, Fallback, ListItem, Panel, QuickReply};

macro_rules! success_payload {
    ($($name:ident = $gql:literal;)*) => {$(
        #[doc = concat!("The `", $gql, "` answer.")]
        #[derive(cynic::QueryFragment, Debug, Clone)]
        #[cynic(graphql_type = $gql)]
        pub struct $name {
            /// Whether the service did it.
            pub success: Option<bool>,
        }
    )*};
}

success_payload! {
    StopAgentSessionPayload = "StopAgentSessionPayload";
    AddTagsPayload = "AddTagsPayload";
    InviteAgentPayload = "InviteAgentPayload";
    LeaveChannelPayload = "LeaveChannelPayload";
    ListenVisitorChannelPayload = "ListenVisitorChannelPayload";
    SendMessagePayload = "SendMessagePayload";
    TransferToDepartmentPayload = "TransferToDepartmentPayload";
    SetTypingIndicatorPayload = "SetTypingIndicatorPayload";
    SendQuickRepliesPayload = "SendQuickRepliesPayload";
    SendButtonTemplatePayload = "SendButtonTemplatePayload";
    SendPanelTemplatePayload = "SendPanelTemplatePayload";
    SendPanelTemplateCarouselPayload = "SendPanelTemplateCarouselPayload";
    SendListTemplatePayload = "SendListTemplatePayload";
}

/// Variables of `startAgentSession`.
#[derive(cynic::QueryVariables, Clone)]
pub struct StartAgentSessionVariables {
    /// The OAuth access token (never logged: this struct is only built right before sending).
    pub access_token: String,
}

impl std::fmt::Debug for StartAgentSessionVariables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartAgentSessionVariables")
            .field("access_token", &"[REDACTED]")
            .finish()
    }
}

/// What `startAgentSession` returns.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "StartAgentSessionPayload", rename_all = "None")]
pub struct StartAgentSessionPayload {
    /// The authenticated WebSocket URL.
    pub websocket_url: Option<String>,
    /// The session id.
    pub session_id: Option<String>,
    /// The client id.
    pub client_id: Option<String>,
}

/// `mutation { startAgentSession(access_token) }` (sent over HTTP only).
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Mutation", variables = "StartAgentSessionVariables")]
pub struct StartAgentSession {
    /// The new session.
    #[arguments(access_token: $access_token)]
    pub start_agent_session: StartAgentSessionPayload,
}

/// `mutation { stopAgentSession }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Mutation")]
pub struct StopAgentSession {
    /// The answer.
    pub stop_agent_session: StopAgentSessionPayload,
}

/// Variables of `addTags`.
#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct AddTagsVariables {
    /// Target visitor channel.
    pub channel_id: cynic::Id,
    /// Tags (letters, digits, `-`, `_`).
    pub tags: Vec<String>,
}

/// `mutation { addTags }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Mutation", variables = "AddTagsVariables")]
pub struct AddTags {
    /// The answer.
    #[arguments(channel_id: $channel_id, tags: $tags)]
    pub add_tags: AddTagsPayload,
}

/// Variables of `inviteAgent`.
#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct InviteAgentVariables {
    /// The agent to invite.
    pub agent_id: cynic::Id,
    /// Target channel.
    pub channel_id: cynic::Id,
    /// Leave once the other agent is in.
    pub leave: Option<bool>,
}

/// `mutation { inviteAgent }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Mutation", variables = "InviteAgentVariables")]
pub struct InviteAgent {
    /// The answer.
    #[arguments(agent_id: $agent_id, channel_id: $channel_id, leave: $leave)]
    pub invite_agent: InviteAgentPayload,
}

/// Variables of the mutations that take only a channel.
#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct ChannelVariables {
    /// Target channel.
    pub channel_id: cynic::Id,
}

/// `mutation { leaveChannel }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Mutation", variables = "ChannelVariables")]
pub struct LeaveChannel {
    /// The answer.
    #[arguments(channel_id: $channel_id)]
    pub leave_channel: LeaveChannelPayload,
}

/// `mutation { listenVisitorChannel }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Mutation", variables = "ChannelVariables")]
pub struct ListenVisitorChannel {
    /// The answer.
    #[arguments(channel_id: $channel_id)]
    pub listen_visitor_channel: ListenVisitorChannelPayload,
}

/// Variables of `sendMessage`.
#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct SendMessageVariables {
    /// Do not send when another agent serves the channel.
    pub backoff: Option<bool>,
    /// Target channel.
    pub channel_id: cynic::Id,
    /// The text.
    pub msg: String,
    /// Custom id "to identify this message" (the schema's words). The emulator takes a repeated
    /// id for the same message; the service does not document whether it does.
    pub msg_id: Option<String>,
    /// Options the visitor may pick.
    pub options: Option<Vec<String>>,
}

/// `mutation { sendMessage }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Mutation", variables = "SendMessageVariables")]
pub struct SendMessage {
    /// The answer.
    #[arguments(backoff: $backoff, channel_id: $channel_id, msg: $msg, msg_id: $msg_id, options: $options)]
    pub send_message: SendMessagePayload,
}

/// Variables of `transferToDepartment`.
#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct TransferToDepartmentVariables {
    /// Target channel.
    pub channel_id: cynic::Id,
    /// The department.
    pub department_id: cynic::Id,
    /// Leave the channel afterwards.
    pub leave: Option<bool>,
}

/// `mutation { transferToDepartment }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Mutation", variables = "TransferToDepartmentVariables")]
pub struct TransferToDepartment {
    /// The answer.
    #[arguments(channel_id: $channel_id, department_id: $department_id, leave: $leave)]
    pub transfer_to_department: TransferToDepartmentPayload,
}

/// Variables of `updateAgentStatus`.
#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct UpdateAgentStatusVariables {
    /// The new status.
    pub status: AgentStatus,
}

/// The `updateAgentStatus` answer.
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "UpdateAgentStatusPayload")]
pub struct UpdateAgentStatusPayload {
    /// The agent as it now is.
    pub node: Option<Agent>,
}

/// `mutation { updateAgentStatus }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Mutation", variables = "UpdateAgentStatusVariables")]
pub struct UpdateAgentStatus {
    /// The answer.
    #[arguments(status: $status)]
    pub update_agent_status: UpdateAgentStatusPayload,
}

/// Variables of `setTypingIndicator`.
#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct SetTypingIndicatorVariables {
    /// Do not show when another agent serves the channel.
    pub backoff: Option<bool>,
    /// Target channel.
    pub channel_id: cynic::Id,
    /// Typing or not.
    pub typing: bool,
}

/// `mutation { setTypingIndicator }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Mutation", variables = "SetTypingIndicatorVariables")]
pub struct SetTypingIndicator {
    /// The answer.
    #[arguments(backoff: $backoff, channel_id: $channel_id, typing: $typing)]
    pub set_typing_indicator: SetTypingIndicatorPayload,
}

/// Variables of `sendQuickReplies`.
#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct SendQuickRepliesVariables {
    /// Target channel.
    pub channel_id: cynic::Id,
    /// The text above the replies.
    pub msg: String,
    /// The replies.
    pub quick_replies: Vec<QuickReply>,
    /// What visitors without structured messages see.
    pub fallback: Option<Fallback>,
}

/// `mutation { sendQuickReplies }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Mutation", variables = "SendQuickRepliesVariables")]
pub struct SendQuickReplies {
    /// The answer.
    #[arguments(channel_id: $channel_id, msg: $msg, quick_replies: $quick_replies, fallback: $fallback)]
    pub send_quick_replies: SendQuickRepliesPayload,
}

/// Variables of `sendButtonTemplate`.
#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct SendButtonTemplateVariables {
    /// Target channel.
    pub channel_id: cynic::Id,
    /// The text above the buttons.
    pub msg: String,
    /// One to three buttons.
    pub buttons: Vec<Button>,
    /// What visitors without structured messages see.
    pub fallback: Option<Fallback>,
}

/// `mutation { sendButtonTemplate }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Mutation", variables = "SendButtonTemplateVariables")]
pub struct SendButtonTemplate {
    /// The answer.
    #[arguments(channel_id: $channel_id, msg: $msg, buttons: $buttons, fallback: $fallback)]
    pub send_button_template: SendButtonTemplatePayload,
}

/// Variables of `sendPanelTemplate`.
#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct SendPanelTemplateVariables {
    /// Target channel.
    pub channel_id: cynic::Id,
    /// The panel.
    pub panel: Panel,
    /// Buttons under it.
    pub buttons: Option<Vec<Button>>,
    /// What visitors without structured messages see.
    pub fallback: Option<Fallback>,
}

/// `mutation { sendPanelTemplate }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Mutation", variables = "SendPanelTemplateVariables")]
pub struct SendPanelTemplate {
    /// The answer.
    #[arguments(channel_id: $channel_id, panel: $panel, buttons: $buttons, fallback: $fallback)]
    pub send_panel_template: SendPanelTemplatePayload,
}

/// Variables of `sendPanelTemplateCarousel`.
#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct SendPanelTemplateCarouselVariables {
    /// Target channel.
    pub channel_id: cynic::Id,
    /// Two to ten items.
    pub items: Vec<CarouselItem>,
    /// What visitors without structured messages see.
    pub fallback: Option<Fallback>,
}

/// `mutation { sendPanelTemplateCarousel }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(
    graphql_type = "Mutation",
    variables = "SendPanelTemplateCarouselVariables"
)]
pub struct SendPanelTemplateCarousel {
    /// The answer.
    #[arguments(channel_id: $channel_id, items: $items, fallback: $fallback)]
    pub send_panel_template_carousel: SendPanelTemplateCarouselPayload,
}

/// Variables of `sendListTemplate`.
#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct SendListTemplateVariables {
    /// Target channel.
    pub channel_id: cynic::Id,
    /// Two to four items.
    pub items: Vec<ListItem>,
    /// At most one button.
    pub buttons: Option<Vec<Button>>,
    /// What visitors without structured messages see.
    pub fallback: Option<Fallback>,
}

/// `mutation { sendListTemplate }`
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Mutation", variables = "SendListTemplateVariables")]
pub struct SendListTemplate {
    /// The answer.
    #[arguments(channel_id: $channel_id, items: $items, buttons: $buttons, fallback: $fallback)]
    pub send_list_template: SendListTemplatePayload,
}

#[allow(dead_code)]
fn _schema_is_used(_: schema::Mutation) {}
