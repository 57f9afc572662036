//! Message content shapes and actions, checked as the service checks them.

use serde_json::{Map, Value};

use super::error::ApiError;

const TYPES: [&str; 9] = [
    "text",
    "carousel",
    "file",
    "form",
    "formResponse",
    "image",
    "list",
    "location",
    "template",
];

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

fn string_field<'a>(o: &'a Map<String, Value>, path: &str, f: &str) -> Result<&'a str, ApiError> {
    o.get(f)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{path} should have required string property '{f}'")))
}

fn array_field<'a>(
    o: &'a Map<String, Value>,
    path: &str,
    f: &str,
    min: usize,
    max: usize,
) -> Result<&'a Vec<Value>, ApiError> {
    let a = o
        .get(f)
        .and_then(Value::as_array)
        .ok_or_else(|| bad(format!("{path} should have required array property '{f}'")))?;
    if a.len() < min || a.len() > max {
        return Err(bad(format!(
            "{path}.{f} should have between {min} and {max} items"
        )));
    }
    Ok(a)
}

/// An optional rich-text alternative to `text` (`htmlText`, `markdownText`): a string of at
/// most 4096 characters.
fn rich_text<'a>(o: &'a Map<String, Value>, f: &str) -> Result<Option<&'a str>, ApiError> {
    match o.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= 4096 => Ok(Some(s)),
        Some(_) => Err(bad(format!(
            "content.{f} should be a string of 1 to 4096 characters"
        ))),
    }
}

/// Checks `content` of a posted message.
pub(crate) fn check(content: &Value) -> Result<(), ApiError> {
    let o = content
        .as_object()
        .ok_or_else(|| bad("content should be object"))?;
    let kind = string_field(o, "content", "type")?;
    if !TYPES.contains(&kind) {
        return Err(bad(format!(
            "content.type should be equal to one of the allowed values: {}",
            TYPES.join(", ")
        )));
    }
    match kind {
        "text" => {
            let text = o.get("text").and_then(Value::as_str).unwrap_or_default();
            let html = rich_text(o, "htmlText")?;
            let markdown = rich_text(o, "markdownText")?;
            if html.is_some() && markdown.is_some() {
                return Err(bad(
                    "content.htmlText cannot be used with content.markdownText",
                ));
            }
            let has_actions = o.get("actions").is_some();
            if text.trim().is_empty() && !has_actions && html.is_none() && markdown.is_none() {
                return Err(bad(
                    "content.text should not be empty unless actions, htmlText or markdownText is given",
                ));
            }
            if text.chars().count() > 4096 {
                return Err(bad("content.text should not exceed 4096 characters"));
            }
            actions(o, "content", 0, usize::MAX, ALL_ACTIONS)?;
        }
        "image" | "file" => {
            let url = string_field(o, "content", "mediaUrl")?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(bad("content.mediaUrl should be a URI"));
            }
            if kind == "image" {
                actions(o, "content", 0, usize::MAX, ALL_ACTIONS)?;
            }
        }
        "carousel" | "list" => {
            if kind == "list" {
                actions(o, "content", 1, 10, ACTION_SUBSET)?;
            }
            for (i, item) in array_field(o, "content", "items", 1, 10)?
                .iter()
                .enumerate()
            {
                let path = format!("content.items[{i}]");
                let item = item
                    .as_object()
                    .ok_or_else(|| bad(format!("{path} should be object")))?;
                let title = string_field(item, &path, "title")?;
                if title.is_empty() || title.chars().count() > 128 {
                    return Err(bad(format!("{path}.title should have 1 to 128 characters")));
                }
                if !item.contains_key("actions") {
                    return Err(bad(format!(
                        "{path} should have required property 'actions'"
                    )));
                }
                actions(item, &path, 1, 3, ACTION_SUBSET)?;
            }
        }
        "location" => {
            let c = o
                .get("coordinates")
                .and_then(Value::as_object)
                .ok_or_else(|| bad("content should have required property 'coordinates'"))?;
            for f in ["lat", "long"] {
                if !c.get(f).is_some_and(Value::is_number) {
                    return Err(bad(format!("content.coordinates.{f} should be number")));
                }
            }
        }
        "form" | "formResponse" => {
            for (i, field) in array_field(o, "content", "fields", 1, 20)?
                .iter()
                .enumerate()
            {
                let path = format!("content.fields[{i}]");
                let field = field
                    .as_object()
                    .ok_or_else(|| bad(format!("{path} should be object")))?;
                let ty = string_field(field, &path, "type")?;
                if !["email", "select", "text"].contains(&ty) {
                    return Err(bad(format!("{path}.type should be email, select or text")));
                }
                string_field(field, &path, "name")?;
                let label = string_field(field, &path, "label")?;
                if label.is_empty() || label.chars().count() > 128 {
                    return Err(bad(format!("{path}.label should have 1 to 128 characters")));
                }
            }
        }
        "template" => {
            if !o.get("template").is_some_and(Value::is_object) {
                return Err(bad("content should have required property 'template'"));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Every action type: what text and image messages may carry.
const ALL_ACTIONS: &[&str] = &[
    "buy",
    "link",
    "locationRequest",
    "postback",
    "reply",
    "webview",
];
/// The spec's `actionSubset`: all carousel and list items, and lists themselves, may carry
/// (no `reply`, no `locationRequest`).
const ACTION_SUBSET: &[&str] = &["buy", "link", "postback", "webview"];

fn actions(
    o: &Map<String, Value>,
    path: &str,
    min: usize,
    max: usize,
    allowed: &[&str],
) -> Result<(), ApiError> {
    let Some(list) = o.get("actions") else {
        return Ok(());
    };
    let list = list
        .as_array()
        .ok_or_else(|| bad(format!("{path}.actions should be array")))?;
    if list.len() < min || list.len() > max {
        return Err(bad(format!(
            "{path}.actions should have {min} to {max} items"
        )));
    }
    for (i, a) in list.iter().enumerate() {
        let p = format!("{path}.actions[{i}]");
        let a = a
            .as_object()
            .ok_or_else(|| bad(format!("{p} should be object")))?;
        let kind = string_field(a, &p, "type")?;
        if ALL_ACTIONS.contains(&kind) && !allowed.contains(&kind) {
            return Err(bad(format!(
                "{p}.type should be one of {}",
                allowed.join(", ")
            )));
        }
        let required: &[&str] = match kind {
            "postback" | "reply" => &["text", "payload"],
            "link" => &["text", "uri"],
            "webview" => &["text", "uri", "fallback"],
            "buy" => &["text", "amount"],
            "locationRequest" => &["text"],
            other => return Err(bad(format!("{p}.type {other:?} is not an action type"))),
        };
        for f in required {
            if !a.contains_key(*f) {
                return Err(bad(format!("{p} should have required property '{f}'")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes() {
        check(&json!({"type":"text","text":"hi"})).unwrap();
        check(&json!({"type":"text","text":""})).unwrap_err();
        check(&json!({"type":"bogus"})).unwrap_err();
        check(&json!({"type":"image","mediaUrl":"https://x/y.png"})).unwrap();
        check(&json!({"type":"image"})).unwrap_err();
        check(&json!({"type":"carousel","items":[]})).unwrap_err();
        check(&json!({"type":"carousel","items":[{"title":"a","actions":[{"type":"postback","text":"t","payload":"p"}]}]})).unwrap();
        check(&json!({"type":"location","coordinates":{"lat":1.0,"long":2}})).unwrap();
        check(&json!({"type":"text","text":"x","actions":[{"type":"link","text":"t"}]}))
            .unwrap_err();
    }

    #[test]
    fn text_has_a_rich_text_alternative_within_4096_characters() {
        check(&json!({"type":"text","htmlText":"<b>hi</b>"})).unwrap();
        check(&json!({"type":"text","markdownText":"**hi**"})).unwrap();
        check(&json!({"type":"text","htmlText":"a","markdownText":"b"})).unwrap_err();
        check(&json!({"type":"text","htmlText":"x".repeat(4096)})).unwrap();
        check(&json!({"type":"text","htmlText":"x".repeat(4097)})).unwrap_err();
        check(&json!({"type":"text","markdownText":"x".repeat(4097)})).unwrap_err();
        check(&json!({"type":"text","text":"é".repeat(4096)})).unwrap();
        check(&json!({"type":"text","text":"é".repeat(4097)})).unwrap_err();
    }

    #[test]
    fn a_list_carries_one_to_ten_actions_of_its_own() {
        let item = json!({"title":"a","actions":[{"type":"postback","text":"t","payload":"p"}]});
        let action = json!({"type":"postback","text":"more","payload":"more"});
        check(&json!({"type":"list","items":[item]})).unwrap();
        check(&json!({"type":"list","items":[item],"actions":[action]})).unwrap();
        check(&json!({"type":"list","items":[item],"actions":[]})).unwrap_err();
        let eleven = vec![action; 11];
        check(&json!({"type":"list","items":[item],"actions":eleven})).unwrap_err();
    }

    #[test]
    fn cards_and_lists_take_only_the_action_subset() {
        let reply = json!({"type":"reply","text":"r","payload":"p"});
        let location = json!({"type":"locationRequest","text":"where?"});
        let link = json!({"type":"link","text":"l","uri":"https://example.com"});
        let item = |action: &Value| json!({"title":"a","actions":[action]});
        for kind in ["carousel", "list"] {
            check(&json!({"type":kind,"items":[item(&link)]})).unwrap();
            for refused in [&reply, &location] {
                check(&json!({"type":kind,"items":[item(refused)]})).unwrap_err();
            }
        }
        for refused in [&reply, &location] {
            check(&json!({"type":"list","items":[item(&link)],"actions":[refused]})).unwrap_err();
        }
        // A text message still takes every action type.
        check(&json!({"type":"text","text":"x","actions":[reply, location]})).unwrap();
    }

    #[test]
    fn form_fields_need_a_label() {
        let field = json!({"type":"text","name":"n","label":"Name"});
        check(&json!({"type":"form","fields":[field]})).unwrap();
        check(&json!({"type":"formResponse","fields":[{"type":"text","name":"n","label":"Name","text":"Ada"}]})).unwrap();
        for bad in [
            json!({"type":"text","name":"n"}),
            json!({"type":"text","name":"n","label":""}),
            json!({"type":"text","name":"n","label":"x".repeat(129)}),
        ] {
            check(&json!({"type":"form","fields":[bad]})).unwrap_err();
            check(&json!({"type":"formResponse","fields":[bad]})).unwrap_err();
        }
    }
}
