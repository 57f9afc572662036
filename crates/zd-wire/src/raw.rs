//! Small helpers for reading fields that were captured as raw JSON.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// `deserialize_with` for `Option<&RawValue>` fields that must see JSON `null` as a value:
/// a missing key stays `None` (via `#[serde(default)]`), an explicit `null` becomes `Some`.
pub(crate) fn some_raw<'de: 'a, 'a, D>(de: D) -> Result<Option<&'a RawValue>, D::Error>
where
    D: Deserializer<'de>,
{
    <&'a RawValue>::deserialize(de).map(Some)
}

/// Reads a raw JSON string, borrowing it when it has no escapes (the common case).
///
/// Returns `None` when the value is not a string.
pub(crate) fn as_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        // A RawValue is valid JSON, so a quoted span without escapes is the string itself.
        Some(Cow::Borrowed(inner))
    }
}

/// True when the raw value is JSON `null`.
pub(crate) fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// Parses a raw value as `T`, mapping a failure to an invalid-field error.
pub(crate) fn parse<'a, T: Deserialize<'a>>(
    raw: &'a RawValue,
    frame: &'static str,
    field: &'static str,
) -> Result<T, crate::Error> {
    serde_json::from_str(raw.get()).map_err(|e| crate::Error::invalid(frame, field).with_source(e))
}

/// Parses a raw JSON object as `T`. Derived serde structs also accept arrays of their fields;
/// the wire never sends those, so anything but an object is refused here.
pub(crate) fn parse_object<'a, T: Deserialize<'a>>(
    raw: &'a RawValue,
    frame: &'static str,
    field: &'static str,
) -> Result<T, crate::Error> {
    if !raw.get().starts_with('{') {
        return Err(crate::Error::invalid(frame, field));
    }
    parse(raw, frame, field)
}

/// Requires a field to be present.
pub(crate) fn require<'a>(
    raw: Option<&'a RawValue>,
    frame: &'static str,
    field: &'static str,
) -> Result<&'a RawValue, crate::Error> {
    raw.ok_or_else(|| crate::Error::missing(frame, field))
}

/// Requires a field to be present and a string.
pub(crate) fn require_str<'a>(
    raw: Option<&'a RawValue>,
    frame: &'static str,
    field: &'static str,
) -> Result<Cow<'a, str>, crate::Error> {
    as_str(require(raw, frame, field)?).ok_or_else(|| crate::Error::invalid(frame, field))
}

/// Borrows a `&RawValue` out of a `Box<RawValue>`-free JSON text that is already known valid.
pub(crate) fn from_valid(text: &str) -> Result<&RawValue, crate::Error> {
    serde_json::from_str(text).map_err(crate::Error::syntax)
}
