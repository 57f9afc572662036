//! The five structured messages (quick replies, button, panel, carousel and list templates),
//! built with their documented limits checked before anything is sent.
//!
//! Limits (Zendesk's "Using structured messages in Zendesk Chat"): at most 11 quick replies; a
//! button template has 1 to 3 buttons; a panel (alone or as a carousel item) has 0 to 3; a
//! carousel has 2 to 10 items; a list template has 2 to 4 items and at most one button. Every
//! text shown (message, labels, headings, list paragraphs) and every action value must not be
//! blank. Quick replies only answer (a [`ActionType::LinkAction`] is refused), panels and list
//! rows only link (a [`ActionType::QuickReplyAction`] is refused), buttons do either. An action
//! without a type takes the one its context implies (answer for quick replies and buttons, link
//! for panels and list rows). Every one accepts a fallback (`msg` plus `options`) that visitors
//! whose widget cannot render structured content see instead.

use crate::schema;

/// Most quick replies one message may carry.
pub const MAX_QUICK_REPLIES: usize = 11;
/// Fewest and most buttons of a button template.
pub const BUTTONS: std::ops::RangeInclusive<usize> = 1..=3;
/// Fewest and most buttons under a panel (a panel template or a carousel item).
pub const PANEL_BUTTONS: std::ops::RangeInclusive<usize> = 0..=3;
/// Fewest and most items of a panel carousel.
pub const CAROUSEL_ITEMS: std::ops::RangeInclusive<usize> = 2..=10;
/// Fewest and most items of a list template.
pub const LIST_ITEMS: std::ops::RangeInclusive<usize> = 2..=4;
/// Most buttons under a list template.
pub const MAX_LIST_BUTTONS: usize = 1;

/// A structured message broke one of its documented limits; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// Quick replies must number 1 to 11.
    #[error("a quick replies message needs 1 to {MAX_QUICK_REPLIES} replies, got {0}")]
    QuickReplies(usize),
    /// A button template needs 1 to 3 buttons; a panel takes 0 to 3.
    #[error("too many or too few buttons: a button template holds 1 to 3, a panel 0 to 3; got {0}")]
    Buttons(usize),
    /// A carousel needs 2 to 10 items.
    #[error("a carousel needs 2 to 10 items, got {0}")]
    CarouselItems(usize),
    /// A list template needs 2 to 4 items.
    #[error("a list template needs 2 to 4 items, got {0}")]
    ListItems(usize),
    /// A list template carries at most one button.
    #[error("a list template carries at most {MAX_LIST_BUTTONS} button, got {0}")]
    ListButtons(usize),
    /// A text that must not be empty was empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// An action of a type its context does not take: quick replies only answer, panels and
    /// list rows only link.
    #[error("a {context} does not take a {kind:?}")]
    ActionNotAllowed {
        /// Where the action was (`"quick reply"`, `"panel"`, `"list item"`).
        context: &'static str,
        /// The refused type.
        kind: ActionType,
    },
}

/// What happens when the visitor clicks.
#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cynic(graphql_type = "ACTION_TYPE")]
#[non_exhaustive]
pub enum ActionType {
    /// The visitor sends the action's value back as a message.
    QuickReplyAction,
    /// The value is a URL opened in a new tab.
    LinkAction,
}

/// A click action: a reply value or a URL.
#[derive(cynic::InputObject, Debug, Clone, PartialEq, Eq)]
#[cynic(graphql_type = "ActionInput", rename_all = "None")]
pub struct Action {
    /// Quick reply or link; omitted where the context implies it.
    #[cynic(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<ActionType>,
    /// The reply text or the URL.
    pub value: String,
}

impl Action {
    /// The visitor answers with `value`.
    #[must_use]
    pub fn reply(value: impl Into<String>) -> Self {
        Self {
            kind: Some(ActionType::QuickReplyAction),
            value: value.into(),
        }
    }

    /// Opens `url`.
    #[must_use]
    pub fn link(url: impl Into<String>) -> Self {
        Self {
            kind: Some(ActionType::LinkAction),
            value: url.into(),
        }
    }

    /// A bare value, as quick replies and panel clicks send it.
    #[must_use]
    pub fn value(value: impl Into<String>) -> Self {
        Self {
            kind: None,
            value: value.into(),
        }
    }
}

/// What a visitor without structured-message support sees instead.
#[derive(cynic::InputObject, Debug, Clone, PartialEq, Eq)]
#[cynic(graphql_type = "FallbackInput", rename_all = "None")]
pub struct Fallback {
    /// The text shown.
    pub msg: String,
    /// The choices offered as plain options.
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
}

impl Fallback {
    /// A fallback text with no options.
    #[must_use]
    pub fn new(msg: impl Into<String>) -> Self {
        Self {
            msg: msg.into(),
            options: None,
        }
    }

    /// Adds one option.
    #[must_use]
    pub fn option(mut self, option: impl Into<String>) -> Self {
        self.options
            .get_or_insert_with(Vec::new)
            .push(option.into());
        self
    }
}

/// One quick reply.
#[derive(cynic::InputObject, Debug, Clone, PartialEq, Eq)]
#[cynic(graphql_type = "QuickReplyInput", rename_all = "None")]
pub struct QuickReply {
    /// The value sent back when chosen.
    pub action: Action,
    /// The label.
    pub text: String,
}

/// One button.
#[derive(cynic::InputObject, Debug, Clone, PartialEq, Eq)]
#[cynic(graphql_type = "ButtonInput", rename_all = "None")]
pub struct Button {
    /// What the click does.
    pub action: Action,
    /// The label.
    pub text: String,
}

impl Button {
    /// A button that answers with `value`.
    #[must_use]
    pub fn reply(text: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            action: Action::reply(value),
            text: text.into(),
        }
    }

    /// A button that opens `url`.
    #[must_use]
    pub fn link(text: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            action: Action::link(url),
            text: text.into(),
        }
    }
}

/// A panel: heading, optional paragraph and image, optional click-through link.
#[derive(cynic::InputObject, Debug, Clone, PartialEq, Eq)]
#[cynic(graphql_type = "PanelInput", rename_all = "None")]
pub struct Panel {
    /// Title.
    pub heading: String,
    /// Subtitle.
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub paragraph: Option<String>,
    /// Image URL.
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Link opened on click.
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

impl Panel {
    /// A panel with a heading only.
    #[must_use]
    pub fn new(heading: impl Into<String>) -> Self {
        Self {
            heading: heading.into(),
            paragraph: None,
            image_url: None,
            action: None,
        }
    }

    /// Sets the paragraph.
    #[must_use]
    pub fn paragraph(mut self, text: impl Into<String>) -> Self {
        self.paragraph = Some(text.into());
        self
    }

    /// Sets the image.
    #[must_use]
    pub fn image_url(mut self, url: impl Into<String>) -> Self {
        self.image_url = Some(url.into());
        self
    }

    /// Opens `url` on click.
    #[must_use]
    pub fn link(mut self, url: impl Into<String>) -> Self {
        self.action = Some(Action::value(url));
        self
    }
}

/// One carousel item: a panel and its buttons.
#[derive(cynic::InputObject, Debug, Clone, PartialEq, Eq)]
#[cynic(graphql_type = "PanelTemplateInput", rename_all = "None")]
pub struct CarouselItem {
    /// The panel.
    pub panel: Panel,
    /// Up to three buttons.
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub buttons: Option<Vec<Button>>,
}

impl CarouselItem {
    /// An item with no buttons.
    #[must_use]
    pub fn new(panel: Panel) -> Self {
        Self {
            panel,
            buttons: None,
        }
    }

    /// Adds a button.
    #[must_use]
    pub fn button(mut self, button: Button) -> Self {
        self.buttons.get_or_insert_with(Vec::new).push(button);
        self
    }
}

/// One list-template row.
#[derive(cynic::InputObject, Debug, Clone, PartialEq, Eq)]
#[cynic(graphql_type = "ListItemInput", rename_all = "None")]
pub struct ListItem {
    /// Title.
    pub heading: String,
    /// Subtitle.
    pub paragraph: String,
    /// Image URL.
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Link opened on click.
    pub action: Action,
}

impl ListItem {
    /// A row linking to `url`.
    #[must_use]
    pub fn new(
        heading: impl Into<String>,
        paragraph: impl Into<String>,
        url: impl Into<String>,
    ) -> Self {
        Self {
            heading: heading.into(),
            paragraph: paragraph.into(),
            image_url: None,
            action: Action::value(url),
        }
    }

    /// Sets the image.
    #[must_use]
    pub fn image_url(mut self, url: impl Into<String>) -> Self {
        self.image_url = Some(url.into());
        self
    }
}

pub(crate) fn non_empty(s: &str, what: &'static str) -> Result<(), LimitError> {
    if s.trim().is_empty() {
        Err(LimitError::Empty(what))
    } else {
        Ok(())
    }
}

/// Checks an action as the service does in a `context` that takes `only` one type: a
/// non-blank value, and that type (an action without one takes it).
fn check_action(
    action: &Action,
    context: &'static str,
    only: ActionType,
) -> Result<(), LimitError> {
    non_empty(&action.value, "action value")?;
    match action.kind.unwrap_or(only) {
        kind if kind == only => Ok(()),
        kind => Err(LimitError::ActionNotAllowed { context, kind }),
    }
}

/// A button: labelled, answering or linking (either type, so only its value is checked).
fn check_button(button: &Button) -> Result<(), LimitError> {
    non_empty(&button.text, "button text")?;
    non_empty(&button.action.value, "action value")
}

/// A button row of `range` buttons.
fn check_buttons(
    buttons: &[Button],
    range: std::ops::RangeInclusive<usize>,
) -> Result<(), LimitError> {
    if !range.contains(&buttons.len()) {
        return Err(LimitError::Buttons(buttons.len()));
    }
    buttons.iter().try_for_each(check_button)
}

/// A panel: a heading and, if it links, a link.
fn check_panel(panel: &Panel) -> Result<(), LimitError> {
    non_empty(&panel.heading, "panel heading")?;
    match &panel.action {
        Some(action) => check_action(action, "panel", ActionType::LinkAction),
        None => Ok(()),
    }
}

/// A message with up to 11 quick-reply suggestions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct QuickReplies {
    pub(crate) msg: String,
    pub(crate) replies: Vec<QuickReply>,
    pub(crate) fallback: Option<Fallback>,
}

impl QuickReplies {
    /// Quick replies under the text `msg`.
    pub fn new(msg: impl Into<String>) -> Self {
        Self {
            msg: msg.into(),
            replies: Vec::new(),
            fallback: None,
        }
    }

    /// Adds a reply labelled `text` that sends `value`.
    pub fn reply(mut self, text: impl Into<String>, value: impl Into<String>) -> Self {
        self.replies.push(QuickReply {
            action: Action::value(value),
            text: text.into(),
        });
        self
    }

    /// Sets the fallback.
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// A fallback made from the text and the reply labels, when none was given.
    pub fn with_default_fallback(mut self) -> Self {
        if self.fallback.is_none() {
            let options = self.replies.iter().map(|r| r.text.clone()).collect();
            self.fallback = Some(Fallback {
                msg: self.msg.clone(),
                options: Some(options),
            });
        }
        self
    }

    /// Checks the documented limits.
    ///
    /// # Errors
    /// [`LimitError`] naming the broken limit.
    pub fn validate(&self) -> Result<(), LimitError> {
        non_empty(&self.msg, "msg")?;
        if self.replies.is_empty() || self.replies.len() > MAX_QUICK_REPLIES {
            return Err(LimitError::QuickReplies(self.replies.len()));
        }
        self.replies.iter().try_for_each(|r| {
            non_empty(&r.text, "quick reply text")?;
            check_action(&r.action, "quick reply", ActionType::QuickReplyAction)
        })
    }
}

/// A text with one to three buttons.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct ButtonTemplate {
    pub(crate) msg: String,
    pub(crate) buttons: Vec<Button>,
    pub(crate) fallback: Option<Fallback>,
}

impl ButtonTemplate {
    /// Buttons under the text `msg`.
    pub fn new(msg: impl Into<String>) -> Self {
        Self {
            msg: msg.into(),
            buttons: Vec::new(),
            fallback: None,
        }
    }

    /// Adds a button.
    pub fn button(mut self, button: Button) -> Self {
        self.buttons.push(button);
        self
    }

    /// Sets the fallback.
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// Checks the documented limits.
    ///
    /// # Errors
    /// [`LimitError`] naming the broken limit.
    pub fn validate(&self) -> Result<(), LimitError> {
        non_empty(&self.msg, "msg")?;
        check_buttons(&self.buttons, BUTTONS)
    }
}

/// One panel with optional buttons.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct PanelTemplate {
    pub(crate) panel: Panel,
    pub(crate) buttons: Vec<Button>,
    pub(crate) fallback: Option<Fallback>,
}

impl PanelTemplate {
    /// A panel template.
    pub fn new(panel: Panel) -> Self {
        Self {
            panel,
            buttons: Vec::new(),
            fallback: None,
        }
    }

    /// Adds a button.
    pub fn button(mut self, button: Button) -> Self {
        self.buttons.push(button);
        self
    }

    /// Sets the fallback.
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// Checks the documented limits.
    ///
    /// # Errors
    /// [`LimitError`] naming the broken limit.
    pub fn validate(&self) -> Result<(), LimitError> {
        check_panel(&self.panel)?;
        check_buttons(&self.buttons, PANEL_BUTTONS)
    }
}

/// Two to ten panels side by side.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct PanelCarousel {
    pub(crate) items: Vec<CarouselItem>,
    pub(crate) fallback: Option<Fallback>,
}

impl PanelCarousel {
    /// An empty carousel; add 2 to 10 items.
    pub fn new() -> Self {
        Self {
            items: Vec::new(),
            fallback: None,
        }
    }

    /// Adds an item.
    pub fn item(mut self, item: CarouselItem) -> Self {
        self.items.push(item);
        self
    }

    /// Sets the fallback.
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// Checks the documented limits.
    ///
    /// # Errors
    /// [`LimitError`] naming the broken limit.
    pub fn validate(&self) -> Result<(), LimitError> {
        if !CAROUSEL_ITEMS.contains(&self.items.len()) {
            return Err(LimitError::CarouselItems(self.items.len()));
        }
        for item in &self.items {
            check_panel(&item.panel)?;
            // `Some(vec![])` is sent as an empty list, which a panel takes like no buttons.
            check_buttons(item.buttons.as_deref().unwrap_or_default(), PANEL_BUTTONS)?;
        }
        Ok(())
    }
}

impl Default for PanelCarousel {
    fn default() -> Self {
        Self::new()
    }
}

/// Two to four linked rows and at most one button.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct ListTemplate {
    pub(crate) items: Vec<ListItem>,
    pub(crate) buttons: Vec<Button>,
    pub(crate) fallback: Option<Fallback>,
}

impl ListTemplate {
    /// An empty list; add 2 to 4 items.
    pub fn new() -> Self {
        Self {
            items: Vec::new(),
            buttons: Vec::new(),
            fallback: None,
        }
    }

    /// Adds a row.
    pub fn item(mut self, item: ListItem) -> Self {
        self.items.push(item);
        self
    }

    /// Adds the button (one at most).
    pub fn button(mut self, button: Button) -> Self {
        self.buttons.push(button);
        self
    }

    /// Sets the fallback.
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// Checks the documented limits.
    ///
    /// # Errors
    /// [`LimitError`] naming the broken limit.
    pub fn validate(&self) -> Result<(), LimitError> {
        if !LIST_ITEMS.contains(&self.items.len()) {
            return Err(LimitError::ListItems(self.items.len()));
        }
        if self.buttons.len() > MAX_LIST_BUTTONS {
            return Err(LimitError::ListButtons(self.buttons.len()));
        }
        for item in &self.items {
            non_empty(&item.heading, "list item heading")?;
            non_empty(&item.paragraph, "list item paragraph")?;
            check_action(&item.action, "list item", ActionType::LinkAction)?;
        }
        self.buttons.iter().try_for_each(check_button)
    }
}

impl Default for ListTemplate {
    fn default() -> Self {
        Self::new()
    }
}

/// Tags may only hold ASCII letters, digits, `-` and `_` (the service rejects anything else).
///
/// # Errors
/// The first offending tag.
pub fn validate_tags(tags: &[String]) -> Result<(), InvalidTag> {
    for tag in tags {
        if tag.is_empty()
            || !tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(InvalidTag(tag.clone()));
        }
    }
    Ok(())
}

/// A tag with characters the service does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tag {0:?} may only contain letters, digits, '-' and '_'")]
pub struct InvalidTag(pub String);

#[allow(dead_code)]
fn _schema_is_used(_: schema::ACTION_TYPE) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_replies_are_one_to_eleven() {
        assert_eq!(
            QuickReplies::new("pick").validate(),
            Err(LimitError::QuickReplies(0))
        );
        let mut q = QuickReplies::new("pick");
        for i in 0..11 {
            q = q.reply(format!("r{i}"), format!("v{i}"));
        }
        assert_eq!(q.validate(), Ok(()));
        assert_eq!(
            q.reply("x", "y").validate(),
            Err(LimitError::QuickReplies(12))
        );
    }

    #[test]
    fn quick_replies_default_fallback_lists_the_labels() {
        let q = QuickReplies::new("pick")
            .reply("A", "a")
            .reply("B", "b")
            .with_default_fallback();
        let fb = q.fallback.unwrap();
        assert_eq!(fb.msg, "pick");
        assert_eq!(fb.options.unwrap(), vec!["A", "B"]);
    }

    #[test]
    fn button_templates_hold_one_to_three() {
        let b = || Button::reply("b", "v");
        assert_eq!(
            ButtonTemplate::new("m").validate(),
            Err(LimitError::Buttons(0))
        );
        let t = ButtonTemplate::new("m").button(b()).button(b()).button(b());
        assert_eq!(t.validate(), Ok(()));
        assert_eq!(t.button(b()).validate(), Err(LimitError::Buttons(4)));
        assert_eq!(
            ButtonTemplate::new(" ").button(b()).validate(),
            Err(LimitError::Empty("msg"))
        );
    }

    #[test]
    fn panels_allow_no_buttons_but_not_four() {
        let p = PanelTemplate::new(Panel::new("h").paragraph("p").link("https://x"));
        assert_eq!(p.validate(), Ok(()));
        let b = || Button::link("b", "https://x");
        let p = p.button(b()).button(b()).button(b()).button(b());
        assert_eq!(p.validate(), Err(LimitError::Buttons(4)));
    }

    #[test]
    fn carousels_hold_two_to_ten() {
        let item = || CarouselItem::new(Panel::new("h")).button(Button::reply("b", "v"));
        let mut c = PanelCarousel::new().item(item());
        assert_eq!(c.validate(), Err(LimitError::CarouselItems(1)));
        for _ in 0..9 {
            c = c.item(item());
        }
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(
            c.item(item()).validate(),
            Err(LimitError::CarouselItems(11))
        );
    }

    #[test]
    fn lists_hold_two_to_four_and_one_button() {
        let item = || ListItem::new("h", "p", "https://x");
        let l = ListTemplate::new().item(item());
        assert_eq!(l.validate(), Err(LimitError::ListItems(1)));
        let l = l.item(item()).item(item()).item(item());
        assert_eq!(l.validate(), Ok(()));
        assert_eq!(
            l.clone().item(item()).validate(),
            Err(LimitError::ListItems(5))
        );
        let l = l.button(Button::link("more", "https://x"));
        assert_eq!(l.validate(), Ok(()));
        assert_eq!(
            l.button(Button::link("x", "y")).validate(),
            Err(LimitError::ListButtons(2))
        );
    }

    /// Two carousel items built by `item`.
    fn carousel(item: impl Fn() -> CarouselItem) -> PanelCarousel {
        PanelCarousel::new().item(item()).item(item())
    }

    #[test]
    fn a_blank_message_text_is_refused() {
        assert_eq!(
            QuickReplies::new(" \n").reply("A", "a").validate(),
            Err(LimitError::Empty("msg"))
        );
        assert_eq!(
            ButtonTemplate::new("")
                .button(Button::reply("b", "v"))
                .validate(),
            Err(LimitError::Empty("msg"))
        );
    }

    #[test]
    fn a_blank_action_value_is_refused_everywhere() {
        let empty = Err(LimitError::Empty("action value"));
        assert_eq!(QuickReplies::new("m").reply("A", " ").validate(), empty);
        assert_eq!(
            ButtonTemplate::new("m")
                .button(Button::reply("b", ""))
                .validate(),
            empty
        );
        assert_eq!(
            ButtonTemplate::new("m")
                .button(Button::link("b", ""))
                .validate(),
            empty
        );
        assert_eq!(
            PanelTemplate::new(Panel::new("h").link("")).validate(),
            empty
        );
        assert_eq!(
            PanelTemplate::new(Panel::new("h"))
                .button(Button::link("b", " "))
                .validate(),
            empty
        );
        assert_eq!(
            carousel(|| CarouselItem::new(Panel::new("h").link(""))).validate(),
            empty
        );
        assert_eq!(
            carousel(|| CarouselItem::new(Panel::new("h")).button(Button::reply("b", "")))
                .validate(),
            empty
        );
        let row = |url: &str| ListItem::new("h", "p", url);
        assert_eq!(
            ListTemplate::new()
                .item(row("https://x"))
                .item(row(""))
                .validate(),
            empty
        );
        assert_eq!(
            ListTemplate::new()
                .item(row("https://x"))
                .item(row("https://y"))
                .button(Button::link("more", ""))
                .validate(),
            empty
        );
    }

    #[test]
    fn a_blank_list_item_paragraph_is_refused() {
        let l = ListTemplate::new()
            .item(ListItem::new("h", "p", "https://x"))
            .item(ListItem::new("h", "  ", "https://x"));
        assert_eq!(l.validate(), Err(LimitError::Empty("list item paragraph")));
    }

    #[test]
    fn quick_replies_only_answer() {
        let mut q = QuickReplies::new("m").reply("A", "a");
        q.replies.push(QuickReply {
            action: Action::link("https://x"),
            text: "B".into(),
        });
        assert_eq!(
            q.validate(),
            Err(LimitError::ActionNotAllowed {
                context: "quick reply",
                kind: ActionType::LinkAction
            })
        );
        q.replies[1].action = Action::reply("b");
        assert_eq!(q.validate(), Ok(()));
    }

    #[test]
    fn panels_and_list_rows_only_link() {
        let answering = || Some(Action::reply("v"));
        let refused = |context| {
            Err(LimitError::ActionNotAllowed {
                context,
                kind: ActionType::QuickReplyAction,
            })
        };
        let mut panel = Panel::new("h");
        panel.action = answering();
        assert_eq!(
            PanelTemplate::new(panel.clone()).validate(),
            refused("panel")
        );
        assert_eq!(
            carousel(|| CarouselItem::new(panel.clone())).validate(),
            refused("panel")
        );
        panel.action = Some(Action::link("https://x"));
        assert_eq!(PanelTemplate::new(panel).validate(), Ok(()));
        let mut row = ListItem::new("h", "p", "https://x");
        let l = ListTemplate::new().item(row.clone());
        row.action = Action::reply("v");
        assert_eq!(l.clone().item(row.clone()).validate(), refused("list item"));
        row.action = Action::link("https://y");
        assert_eq!(l.item(row).validate(), Ok(()));
    }

    #[test]
    fn buttons_answer_or_link() {
        let t = ButtonTemplate::new("m")
            .button(Button::reply("a", "a"))
            .button(Button::link("b", "https://x"))
            .button(Button {
                action: Action::value("c"),
                text: "c".into(),
            });
        assert_eq!(t.validate(), Ok(()));
    }

    #[test]
    fn a_carousel_item_takes_zero_to_three_buttons() {
        let empty = || CarouselItem {
            panel: Panel::new("h"),
            buttons: Some(vec![]),
        };
        assert_eq!(carousel(empty).validate(), Ok(()));
        let four = || {
            (0..4).fold(CarouselItem::new(Panel::new("h")), |i, n| {
                i.button(Button::reply(format!("b{n}"), "v"))
            })
        };
        assert_eq!(carousel(four).validate(), Err(LimitError::Buttons(4)));
    }

    #[test]
    fn tags_are_letters_digits_dash_underscore() {
        assert!(validate_tags(&["vip".into(), "a-b_c9".into()]).is_ok());
        assert!(validate_tags(&["no spaces".into()]).is_err());
        assert!(validate_tags(&["".into()]).is_err());
        assert!(validate_tags(&["é".into()]).is_err());
    }
}
