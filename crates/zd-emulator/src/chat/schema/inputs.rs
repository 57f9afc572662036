//! Input types of the structured-message mutations and the activity filter.

use async_graphql::{Enum, InputObject};

use crate::state::{Action, ActionType, Button, Fallback, ListItem, Panel, PanelItem, QuickReply};

/// Chat activity kinds a `chatActivity` subscription can filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "CHAT_ACTIVITY_TYPE", rename_items = "SCREAMING_SNAKE_CASE")]
pub(crate) enum ChatActivityType {
    MemberJoin,
    MemberLeave,
}

/// `chatActivity(filter:)`.
#[derive(Debug, Clone, InputObject)]
#[graphql(rename_fields = "snake_case")]
pub(crate) struct ChatActivityFilter {
    pub(crate) chat_activity_types: Option<Vec<ChatActivityType>>,
}

/// A fallback for visitors without structured-message support.
#[derive(Debug, Clone, InputObject)]
#[graphql(rename_fields = "snake_case")]
pub(crate) struct FallbackInput {
    msg: String,
    options: Option<Vec<String>>,
}

impl From<FallbackInput> for Fallback {
    fn from(f: FallbackInput) -> Self {
        Self {
            msg: f.msg,
            options: f.options.unwrap_or_default(),
        }
    }
}

/// An element's action; `type` defaults by context (quick reply for replies and buttons, link
/// for panels and list items), as the samples that omit it expect.
#[derive(Debug, Clone, InputObject)]
#[graphql(rename_fields = "snake_case")]
pub(crate) struct ActionInput {
    #[graphql(name = "type")]
    kind: Option<ActionType>,
    value: String,
}

impl ActionInput {
    fn into_action(self, default: ActionType) -> Action {
        Action {
            kind: self.kind.unwrap_or(default),
            value: self.value,
        }
    }
}

/// A quick reply.
#[derive(Debug, Clone, InputObject)]
#[graphql(rename_fields = "snake_case")]
pub(crate) struct QuickReplyInput {
    action: ActionInput,
    text: String,
}

impl From<QuickReplyInput> for QuickReply {
    fn from(q: QuickReplyInput) -> Self {
        Self {
            text: q.text,
            action: q.action.into_action(ActionType::QuickReplyAction),
        }
    }
}

/// A button.
#[derive(Debug, Clone, InputObject)]
#[graphql(rename_fields = "snake_case")]
pub(crate) struct ButtonInput {
    action: ActionInput,
    text: String,
}

impl From<ButtonInput> for Button {
    fn from(b: ButtonInput) -> Self {
        Self {
            text: b.text,
            action: b.action.into_action(ActionType::QuickReplyAction),
        }
    }
}

/// A panel.
#[derive(Debug, Clone, InputObject)]
#[graphql(rename_fields = "snake_case")]
pub(crate) struct PanelInput {
    heading: String,
    paragraph: Option<String>,
    image_url: Option<String>,
    action: Option<ActionInput>,
}

impl From<PanelInput> for Panel {
    fn from(p: PanelInput) -> Self {
        Self {
            heading: p.heading,
            paragraph: p.paragraph,
            image_url: p.image_url,
            action: p.action.map(|a| a.into_action(ActionType::LinkAction)),
        }
    }
}

/// A carousel item.
#[derive(Debug, Clone, InputObject)]
#[graphql(rename_fields = "snake_case")]
pub(crate) struct PanelTemplateInput {
    panel: PanelInput,
    buttons: Option<Vec<ButtonInput>>,
}

impl From<PanelTemplateInput> for PanelItem {
    fn from(p: PanelTemplateInput) -> Self {
        Self {
            panel: p.panel.into(),
            buttons: buttons(p.buttons),
        }
    }
}

/// A list item.
#[derive(Debug, Clone, InputObject)]
#[graphql(rename_fields = "snake_case")]
pub(crate) struct ListItemInput {
    heading: String,
    paragraph: String,
    image_url: Option<String>,
    action: ActionInput,
}

impl From<ListItemInput> for ListItem {
    fn from(i: ListItemInput) -> Self {
        Self {
            heading: i.heading,
            paragraph: i.paragraph,
            image_url: i.image_url,
            action: i.action.into_action(ActionType::LinkAction),
        }
    }
}

/// Converts optional button inputs.
pub(crate) fn buttons(input: Option<Vec<ButtonInput>>) -> Vec<Button> {
    input
        .unwrap_or_default()
        .into_iter()
        .map(Into::into)
        .collect()
}
