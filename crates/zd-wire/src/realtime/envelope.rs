//! The one-pass peek at a Real Time Chat frame's top-level keys.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{DecodeLimits, Error, raw};

/// Every top-level key either direction uses, captured raw and borrowed.
#[derive(Deserialize)]
pub(super) struct Envelope<'a> {
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    pub(super) topic: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    pub(super) action: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    pub(super) window: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    pub(super) department_id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    pub(super) content: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    pub(super) status_code: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    pub(super) message: Option<&'a RawValue>,
}

/// The keys of an update's `content`.
#[derive(Deserialize)]
pub(super) struct Content<'a> {
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    pub(super) topic: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    pub(super) data: Option<&'a RawValue>,
    #[serde(rename = "type", default, borrow, deserialize_with = "raw::some_raw")]
    pub(super) kind: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    pub(super) department_id: Option<&'a RawValue>,
}

/// Peeks at a frame; `Ok(None)` when it is valid JSON but not an object.
pub(super) fn peek<'a>(
    text: &'a str,
    limits: &DecodeLimits,
) -> Result<Option<Envelope<'a>>, Error> {
    limits.check(text)?;
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map(Some).map_err(|e| {
            if e.is_data() {
                Error::invalid("realtime", "envelope").with_source(e)
            } else {
                Error::syntax(e)
            }
            .with_frame(text)
        })
    } else {
        raw::from_valid(text).map_err(|e| e.with_frame(text))?;
        Ok(None)
    }
}

/// The whole frame, owned, for Unknown frames.
pub(super) fn unknown(text: &str) -> Result<Box<RawValue>, Error> {
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
    RawValue::from_string(trimmed.to_owned()).map_err(Error::syntax)
}

/// An optional department id: absent or `null` is `None`.
pub(super) fn department_id(
    raw: Option<&RawValue>,
    frame: &'static str,
) -> Result<Option<u64>, Error> {
    match raw {
        Some(v) if !raw::is_null(v) => raw::parse(v, frame, "department_id").map(Some),
        _ => Ok(None),
    }
}
