//! Short constructors for the values most code sends: text content and message authors.

use crate::models::{Author, AuthorType, Content, MessagePost, TextMessage};

impl Content {
    /// Text content: `{"type": "text", "text": ...}`.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(TextMessage {
            text: Some(text.into()),
            ..TextMessage::default()
        })
    }
}

impl Author {
    /// The business (your app or agent) as author.
    pub fn business() -> Self {
        Self::new(AuthorType::Business)
    }

    /// An end user, by Sunshine user id.
    pub fn user(user_id: impl Into<String>) -> Self {
        let mut author = Self::new(AuthorType::User);
        author.user_id = Some(user_id.into());
        author
    }
}

impl MessagePost {
    /// A text message from the business.
    pub fn business_text(text: impl Into<String>) -> Self {
        Self::new(Author::business(), Content::text(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_text_wire_shape() {
        let v = serde_json::to_value(MessagePost::business_text("hi")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"author": {"type": "business"}, "content": {"type": "text", "text": "hi"}})
        );
        let u = serde_json::to_value(Author::user("u1")).unwrap();
        assert_eq!(u, serde_json::json!({"type": "user", "userId": "u1"}));
    }
}
