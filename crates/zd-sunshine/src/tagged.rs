//! Decoding of the generated tagged enums (used by generated code).
//!
//! A derived `#[serde(tag)]` enum with an `#[serde(untagged)]` catch-all silently turns a known
//! `type` whose payload does not decode into the catch-all, losing the data and the error. The
//! generated `Deserialize` impls read the tag first and call [`arm`] for a known one, so only an
//! unknown tag lands in `Unknown`, and a bad known payload is an error naming where it failed.

use std::cell::Cell;

use serde::de::DeserializeOwned;
use serde_json::Value;

thread_local! {
    /// Set while an arm tries its quick decode: a failure below is then decoded again, with its
    /// path, by that arm, so arms inside it must not retry on their own as well. Each level
    /// retrying would cost 2^depth decodes for a payload that nests tagged values (a quoted
    /// message quoting a message quoting …) and fails deep down.
    static QUICK: Cell<bool> = const { Cell::new(false) };
}

/// Marks a quick decode for the arms inside it; restores the outer state when dropped (even
/// on unwinding).
struct QuickScope {
    outer: bool,
}

impl QuickScope {
    fn enter() -> Self {
        Self {
            outer: QUICK.with(|quick| quick.replace(true)),
        }
    }
}

impl Drop for QuickScope {
    fn drop(&mut self) {
        QUICK.with(|quick| quick.set(self.outer));
    }
}

/// The string value of `tag` in `value`, when `value` is an object carrying one.
pub(crate) fn tag_of(value: &Value, tag: &str) -> Option<String> {
    value.get(tag).and_then(Value::as_str).map(str::to_owned)
}

/// Decodes the payload of the arm `tag_field: tag`, reporting the JSON path of a failure.
///
/// The payload decodes straight from the value; only a payload that fails is decoded a second
/// time with path tracking, so the common case (a page of 100 messages, each with tagged
/// content and actions) pays nothing for the error it does not have. Only the outermost failing
/// arm decodes again (the arms inside it fail at once), so a failure costs decodes in the
/// square of the nesting depth, not 2^depth.
///
/// # Errors
/// `E::custom` naming the arm and the path inside it when the payload does not decode.
pub(crate) fn arm<T: DeserializeOwned, E: serde::de::Error>(
    tag_field: &str,
    tag: &str,
    value: Value,
) -> Result<T, E> {
    #[cfg(test)]
    tests::ARMS.with(|n| n.set(n.get() + 1));
    let quick = {
        let _scope = QuickScope::enter();
        T::deserialize(&value)
    };
    match quick {
        Ok(decoded) => return Ok(decoded),
        // An arm outside is in its quick decode and will find the path itself.
        Err(e) if QUICK.with(Cell::get) => return Err(E::custom(e)),
        Err(_) => {}
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        // Without the values serde quotes: this message ends up in a decode error's source.
        E::custom(format_args!(
            "{tag_field} `{tag}`: at {path}: {}",
            crate::decode_failure::scrub(&e.into_inner().to_string())
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use serde_json::{Value, json};

    use crate::models;

    thread_local! {
        /// How many times `arm` ran on this thread.
        pub(super) static ARMS: Cell<u64> = const { Cell::new(0) };
    }

    /// A message quoting a message `depth` times over, the innermost one broken.
    fn quoting(depth: usize) -> Value {
        let mut message = json!({ "id": "m0", "deleted": "not a bool" });
        for i in 1..=depth {
            message = json!({
                "id": format!("m{i}"),
                "content": { "type": "text", "text": "see below" },
                "quotedMessage": { "type": "message", "message": message },
            });
        }
        message
    }

    #[test]
    fn known_arm_with_a_bad_payload_names_the_path() {
        let bad =
            json!({ "type": "text", "text": "hi", "actions": [{ "type": "link", "text": 5 }] });
        let err = serde_json::from_value::<models::Content>(bad)
            .expect_err("text must be a string")
            .to_string();
        assert!(err.contains("type `text`"), "{err}");
        assert!(err.contains("actions[0]"), "{err}");
    }

    #[test]
    fn a_deeply_quoted_bad_message_fails_in_polynomial_work_with_its_path() {
        let depth = 16;
        ARMS.with(|n| n.set(0));
        let err = serde_json::from_value::<models::Message>(quoting(depth))
            .expect_err("the innermost message is broken")
            .to_string();
        let arms = ARMS.with(Cell::get);
        // Each level's content is one arm; the quoted messages fail and are retried once per
        // level above them: about depth^2 / 2 arms. Retrying at every level was 2^depth.
        assert!(
            arms <= (depth * depth) as u64 + 4 * depth as u64,
            "{arms} arms"
        );
        assert!(err.contains("type `message`"), "{err}");
        assert!(err.contains("deleted"), "{err}");

        // As deep as serde_json lets a body nest, it still ends (2^60 decodes did not).
        let deep = quoting(40).to_string();
        let err = serde_json::from_str::<models::Message>(&deep)
            .expect_err("the innermost message is broken")
            .to_string();
        assert!(err.contains("deleted"), "{err}");
    }

    #[test]
    fn a_deeply_quoted_good_message_decodes() {
        let mut good = quoting(30);
        let mut inner = &mut good;
        while inner.get("quotedMessage").is_some() {
            inner = &mut inner["quotedMessage"]["message"];
        }
        inner["deleted"] = json!(false);
        let message: models::Message = serde_json::from_value(good).expect("a valid chain");
        let mut depth = 0;
        let mut at = &message;
        while let Some(quoted) = at.quoted_message.as_deref() {
            let models::QuotedMessage::Message(quoted) = quoted else {
                panic!("a quoted message");
            };
            at = quoted.message.as_deref().expect("the quoted message");
            depth += 1;
        }
        assert_eq!((depth, at.deleted), (30, Some(false)));
    }
}
