//! The five structured messages and their documented limits.

use serde::{Deserialize, Serialize};

use super::StateError;

/// Quick replies per message, at most.
pub const MAX_QUICK_REPLIES: usize = 11;
/// Buttons of a button template: at least 1, at most 3.
pub const BUTTON_TEMPLATE_BUTTONS: std::ops::RangeInclusive<usize> = 1..=3;
/// Items of a carousel: 2 to 10.
pub const CAROUSEL_ITEMS: std::ops::RangeInclusive<usize> = 2..=10;
/// Items of a list template: 2 to 4.
pub const LIST_ITEMS: std::ops::RangeInclusive<usize> = 2..=4;
/// Buttons of a list template, at most.
pub const MAX_LIST_BUTTONS: usize = 1;
/// Buttons under a panel, at most (same as a button template).
pub const MAX_PANEL_BUTTONS: usize = 3;

/// What clicking an element does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[graphql(name = "ACTION_TYPE", rename_items = "SCREAMING_SNAKE_CASE")]
pub enum ActionType {
    /// The visitor sends `value` as a message.
    QuickReplyAction,
    /// The visitor's browser opens `value` (a URL).
    LinkAction,
}

/// An element's action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// What it does.
    #[serde(rename = "type")]
    pub kind: ActionType,
    /// The message to send or the URL to open.
    pub value: String,
}

/// A quick reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuickReply {
    /// The label.
    pub text: String,
    /// Its action (always a quick-reply action).
    pub action: Action,
}

/// A button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// The label.
    pub text: String,
    /// Its action.
    pub action: Action,
}

/// A panel: heading, paragraph, image; clicking it opens a URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Panel {
    /// Heading.
    pub heading: String,
    /// Paragraph.
    pub paragraph: Option<String>,
    /// Image URL.
    pub image_url: Option<String>,
    /// Link opened on click.
    pub action: Option<Action>,
}

/// A panel with buttons (a carousel item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanelItem {
    /// The panel.
    pub panel: Panel,
    /// Its buttons.
    pub buttons: Vec<Button>,
}

/// A list item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListItem {
    /// Heading.
    pub heading: String,
    /// Paragraph.
    pub paragraph: String,
    /// Image URL.
    pub image_url: Option<String>,
    /// Link opened on click.
    pub action: Action,
}

/// A structured message, tagged with the visitor-side `structured_msg.type` names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Structured {
    /// Text with reply suggestions.
    QuickReplies {
        /// The text.
        msg: String,
        /// The suggestions.
        quick_replies: Vec<QuickReply>,
    },
    /// Text with 1-3 buttons.
    ButtonTemplate {
        /// The text.
        msg: String,
        /// The buttons.
        buttons: Vec<Button>,
    },
    /// One panel with buttons.
    PanelTemplate {
        /// The panel.
        panel: Panel,
        /// Its buttons.
        buttons: Vec<Button>,
    },
    /// 2-10 panels side by side.
    PanelTemplateCarousel {
        /// The items.
        items: Vec<PanelItem>,
    },
    /// 2-4 list items and at most one button.
    ListTemplate {
        /// The items.
        items: Vec<ListItem>,
        /// The buttons.
        buttons: Vec<Button>,
    },
}

/// What a visitor without structured-message support sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fallback {
    /// The text.
    pub msg: String,
    /// Discrete answers.
    #[serde(default)]
    pub options: Vec<String>,
}

fn invalid(message: String) -> StateError {
    StateError::Invalid(message)
}

fn check_text(what: &str, text: &str) -> Result<(), StateError> {
    if text.trim().is_empty() {
        return Err(invalid(format!("{what} must not be empty")));
    }
    Ok(())
}

fn check_action(what: &str, action: &Action, allowed: &[ActionType]) -> Result<(), StateError> {
    check_text(&format!("{what}.action.value"), &action.value)?;
    if !allowed.contains(&action.kind) {
        return Err(invalid(format!(
            "{what}.action.type {:?} is not allowed here",
            action.kind
        )));
    }
    Ok(())
}

fn check_buttons(what: &str, buttons: &[Button]) -> Result<(), StateError> {
    for (i, b) in buttons.iter().enumerate() {
        check_text(&format!("{what}[{i}].text"), &b.text)?;
        check_action(
            &format!("{what}[{i}]"),
            &b.action,
            &[ActionType::QuickReplyAction, ActionType::LinkAction],
        )?;
    }
    Ok(())
}

fn check_panel(what: &str, panel: &Panel) -> Result<(), StateError> {
    check_text(&format!("{what}.heading"), &panel.heading)?;
    if let Some(action) = &panel.action {
        check_action(what, action, &[ActionType::LinkAction])?;
    }
    Ok(())
}

fn check_count(
    what: &str,
    len: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<(), StateError> {
    if !range.contains(&len) {
        return Err(invalid(format!(
            "{what} must have between {} and {} items, got {len}",
            range.start(),
            range.end()
        )));
    }
    Ok(())
}

impl Structured {
    /// Checks the documented limits.
    ///
    /// # Errors
    /// [`StateError::Invalid`] naming the offending argument.
    pub fn validate(&self) -> Result<(), StateError> {
        match self {
            Self::QuickReplies { msg, quick_replies } => {
                check_text("msg", msg)?;
                check_count("quick_replies", quick_replies.len(), 1..=MAX_QUICK_REPLIES)?;
                for (i, q) in quick_replies.iter().enumerate() {
                    check_text(&format!("quick_replies[{i}].text"), &q.text)?;
                    check_action(
                        &format!("quick_replies[{i}]"),
                        &q.action,
                        &[ActionType::QuickReplyAction],
                    )?;
                }
                Ok(())
            }
            Self::ButtonTemplate { msg, buttons } => {
                check_text("msg", msg)?;
                check_count("buttons", buttons.len(), BUTTON_TEMPLATE_BUTTONS)?;
                check_buttons("buttons", buttons)
            }
            Self::PanelTemplate { panel, buttons } => {
                check_panel("panel", panel)?;
                check_count("buttons", buttons.len(), 0..=MAX_PANEL_BUTTONS)?;
                check_buttons("buttons", buttons)
            }
            Self::PanelTemplateCarousel { items } => {
                check_count("items", items.len(), CAROUSEL_ITEMS)?;
                for (i, item) in items.iter().enumerate() {
                    check_panel(&format!("items[{i}].panel"), &item.panel)?;
                    check_count(
                        &format!("items[{i}].buttons"),
                        item.buttons.len(),
                        0..=MAX_PANEL_BUTTONS,
                    )?;
                    check_buttons(&format!("items[{i}].buttons"), &item.buttons)?;
                }
                Ok(())
            }
            Self::ListTemplate { items, buttons } => {
                check_count("items", items.len(), LIST_ITEMS)?;
                check_count("buttons", buttons.len(), 0..=MAX_LIST_BUTTONS)?;
                for (i, item) in items.iter().enumerate() {
                    check_text(&format!("items[{i}].heading"), &item.heading)?;
                    check_text(&format!("items[{i}].paragraph"), &item.paragraph)?;
                    check_action(
                        &format!("items[{i}]"),
                        &item.action,
                        &[ActionType::LinkAction],
                    )?;
                }
                check_buttons("buttons", buttons)
            }
        }
    }

    /// The text part shown in the transcript and as `Message.content`.
    pub fn text(&self) -> String {
        match self {
            Self::QuickReplies { msg, .. } | Self::ButtonTemplate { msg, .. } => msg.clone(),
            Self::PanelTemplate { panel, .. } => panel.heading.clone(),
            Self::PanelTemplateCarousel { items } => items
                .iter()
                .map(|i| i.panel.heading.as_str())
                .collect::<Vec<_>>()
                .join(" / "),
            Self::ListTemplate { items, .. } => items
                .iter()
                .map(|i| i.heading.as_str())
                .collect::<Vec<_>>()
                .join(" / "),
        }
    }

    /// The fallback derived from the content, for senders that gave none.
    pub fn default_fallback(&self) -> Fallback {
        let labels = |buttons: &[Button]| buttons.iter().map(|b| b.text.clone()).collect();
        match self {
            Self::QuickReplies { msg, quick_replies } => Fallback {
                msg: msg.clone(),
                options: quick_replies.iter().map(|q| q.text.clone()).collect(),
            },
            Self::ButtonTemplate { msg, buttons } => Fallback {
                msg: msg.clone(),
                options: labels(buttons),
            },
            Self::PanelTemplate { panel, buttons } => Fallback {
                msg: panel.heading.clone(),
                options: labels(buttons),
            },
            Self::PanelTemplateCarousel { items } => Fallback {
                msg: self.text(),
                options: items.iter().map(|i| i.panel.heading.clone()).collect(),
            },
            Self::ListTemplate { items, buttons } => Fallback {
                msg: items
                    .iter()
                    .map(|i| i.heading.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
                options: labels(buttons),
            },
        }
    }

    /// What choosing the element labelled `label` does: a quick reply or quick-reply button
    /// sends its value, a link opens it.
    pub fn choose(&self, label: &str) -> Option<&Action> {
        fn in_buttons<'a>(buttons: &'a [Button], label: &str) -> Option<&'a Action> {
            buttons.iter().find(|b| b.text == label).map(|b| &b.action)
        }
        match self {
            Self::QuickReplies { quick_replies, .. } => quick_replies
                .iter()
                .find(|q| q.text == label)
                .map(|q| &q.action),
            Self::ButtonTemplate { buttons, .. } | Self::PanelTemplate { buttons, .. } => {
                in_buttons(buttons, label)
            }
            Self::PanelTemplateCarousel { items } => {
                items.iter().find_map(|i| in_buttons(&i.buttons, label))
            }
            Self::ListTemplate { buttons, .. } => in_buttons(buttons, label),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qr(n: usize) -> Structured {
        Structured::QuickReplies {
            msg: "pick".into(),
            quick_replies: (0..n)
                .map(|i| QuickReply {
                    text: format!("o{i}"),
                    action: Action {
                        kind: ActionType::QuickReplyAction,
                        value: format!("v{i}"),
                    },
                })
                .collect(),
        }
    }

    fn button(i: usize) -> Button {
        Button {
            text: format!("b{i}"),
            action: Action {
                kind: ActionType::LinkAction,
                value: "https://example.com".into(),
            },
        }
    }

    fn list(items: usize, buttons: usize) -> Structured {
        Structured::ListTemplate {
            items: (0..items)
                .map(|i| ListItem {
                    heading: format!("h{i}"),
                    paragraph: "p".into(),
                    image_url: None,
                    action: Action {
                        kind: ActionType::LinkAction,
                        value: "https://example.com".into(),
                    },
                })
                .collect(),
            buttons: (0..buttons).map(button).collect(),
        }
    }

    #[test]
    fn quick_replies_at_most_eleven() {
        assert!(qr(11).validate().is_ok());
        assert!(qr(12).validate().is_err());
        assert!(qr(0).validate().is_err());
    }

    #[test]
    fn button_template_one_to_three() {
        for (n, ok) in [(0, false), (1, true), (3, true), (4, false)] {
            let s = Structured::ButtonTemplate {
                msg: "m".into(),
                buttons: (0..n).map(button).collect(),
            };
            assert_eq!(s.validate().is_ok(), ok, "{n} buttons");
        }
    }

    #[test]
    fn list_two_to_four_items_and_one_button() {
        assert!(list(1, 0).validate().is_err());
        assert!(list(2, 1).validate().is_ok());
        assert!(list(4, 0).validate().is_ok());
        assert!(list(5, 0).validate().is_err());
        assert!(list(3, 2).validate().is_err());
    }

    #[test]
    fn choose_finds_quick_reply_value() {
        let s = qr(3);
        assert_eq!(s.choose("o1").map(|a| a.value.as_str()), Some("v1"));
        assert!(s.choose("nope").is_none());
    }
}
