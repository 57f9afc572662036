//! Decoding of the generated tagged enums (used by generated code).
//!
//! A derived `#[serde(tag)]` enum with an `#[serde(untagged)]` catch-all silently turns a known
//! `type` whose payload does not decode into the catch-all, losing the data and the error. The
//! generated `Deserialize` impls read the tag first and call [`arm`] for a known one, so only an
//! unknown tag lands in `Unknown`, and a bad known payload is an error naming where it failed.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// The string value of `tag` in `value`, when `value` is an object carrying one.
pub(crate) fn tag_of(value: &Value, tag: &str) -> Option<String> {
    value.get(tag).and_then(Value::as_str).map(str::to_owned)
}

/// Decodes the payload of the arm `tag_field: tag`, reporting the JSON path of a failure.
///
/// The payload decodes straight from the value; only a payload that fails is decoded a second
/// time with path tracking, so the common case (a page of 100 messages, each with tagged
/// content and actions) pays nothing for the error it does not have.
///
/// # Errors
/// `E::custom` naming the arm and the path inside it when the payload does not decode.
pub(crate) fn arm<T: DeserializeOwned, E: serde::de::Error>(
    tag_field: &str,
    tag: &str,
    value: Value,
) -> Result<T, E> {
    if let Ok(decoded) = T::deserialize(&value) {
        return Ok(decoded);
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        E::custom(format_args!(
            "{tag_field} `{tag}`: at {path}: {}",
            e.into_inner()
        ))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::models;

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
}
