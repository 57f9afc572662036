//! `metadata`: the flat object of custom properties that apps, users, conversations, messages
//! and switchboard actions carry. The spec limits it to strings, numbers and booleans and to
//! 4KB; a user merge keeps what fits and reports the rest as `discardedMetadata`.

use serde_json::{Map, Value};

use super::error::ApiError;
use super::http;

/// The documented size limit, taken as the bytes of the object's compact JSON.
pub(crate) const LIMIT: usize = 4 * 1024;

/// The optional `metadata` field of a request body, checked. `null` reads as absent; a `null`
/// property is let through (removing a key that way is common practice and the spec is silent).
pub(crate) fn opt(
    body: &Map<String, Value>,
    field: &str,
) -> Result<Option<Map<String, Value>>, ApiError> {
    let Some(object) = http::opt_object(body, field)? else {
        return Ok(None);
    };
    if let Some((key, _)) = object
        .iter()
        .find(|(_, v)| matches!(v, Value::Object(_) | Value::Array(_)))
    {
        return Err(ApiError::bad_request(format!(
            "{field}.{key} should be a string, number or boolean: {field} is a flat object"
        )));
    }
    let size = size_of(&object);
    if size > LIMIT {
        return Err(ApiError::bad_request(format!(
            "{field} is limited to 4KB in size ({size} bytes given)"
        )));
    }
    Ok(Some(object))
}

/// The object's size as the limit counts it: its compact JSON.
fn size_of(object: &Map<String, Value>) -> usize {
    serde_json::to_vec(object).map_or(usize::MAX, |json| json.len())
}

/// Adds the properties of `theirs` that `ours` lacks, in order, while the result stays within
/// the limit; returns the ones left out (empty when everything fit).
pub(crate) fn merge_into(
    ours: &mut Map<String, Value>,
    theirs: Map<String, Value>,
) -> Map<String, Value> {
    let mut discarded = Map::new();
    for (key, value) in theirs {
        if ours.contains_key(&key) {
            continue;
        }
        ours.insert(key.clone(), value);
        if size_of(ours) > LIMIT {
            if let Some(value) = ours.remove(&key) {
                discarded.insert(key, value);
            }
        }
    }
    discarded
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::{LIMIT, merge_into, opt, size_of};

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(o) => o,
            _ => Map::new(),
        }
    }

    #[test]
    fn flat_objects_within_4kb_pass() {
        let body = object(json!({"metadata": {"lang": "en-ca", "vip": true, "score": 3.5}}));
        let metadata = opt(&body, "metadata").map_err(|e| e.title).unwrap();
        assert_eq!(metadata.map(|m| m.len()), Some(3));
        assert_eq!(
            opt(&object(json!({"metadata": null})), "metadata"),
            Ok(None)
        );
        assert_eq!(opt(&object(json!({})), "metadata"), Ok(None));
        // Exactly at the limit: `{"k":"…"}` is 8 bytes around the value.
        let at_limit = object(json!({"metadata": {"k": "x".repeat(LIMIT - 8)}}));
        assert!(opt(&at_limit, "metadata").is_ok());
    }

    #[test]
    fn nested_values_and_oversize_objects_are_refused() {
        for v in [json!({"a": {"b": 1}}), json!({"a": [1]}), json!("text")] {
            let err = opt(&object(json!({ "metadata": v })), "metadata").unwrap_err();
            assert_eq!((err.status.as_u16(), err.code), (400, "bad_request"));
        }
        let over = object(json!({"metadata": {"k": "x".repeat(LIMIT - 7)}}));
        let err = opt(&over, "metadata").unwrap_err();
        assert!(err.title.contains("4KB"), "{}", err.title);
    }

    #[test]
    fn merging_keeps_ours_and_adds_what_fits() {
        let mut ours = object(json!({"plan": "gold", "big": "y".repeat(LIMIT - 40)}));
        let theirs = object(json!({"plan": "free", "lang": "fr", "note": "z".repeat(64)}));
        let discarded = merge_into(&mut ours, theirs);
        assert_eq!(ours["plan"], "gold");
        assert_eq!(ours["lang"], "fr");
        assert!(!ours.contains_key("note"));
        assert_eq!(discarded, object(json!({"note": "z".repeat(64)})));
        assert!(size_of(&ours) <= LIMIT);
    }
}
