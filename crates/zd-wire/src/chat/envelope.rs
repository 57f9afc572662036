//! The one-pass peek at a chat frame's top-level keys.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{DecodeLimits, Error, chat::RequestId, raw};

/// Every top-level key either direction uses, each captured raw and borrowed.
///
/// Deserializing this struct is the only full pass over a frame: serde_json validates the whole
/// text while it records where each value starts and ends. Values are interpreted afterwards,
/// and only the ones the frame's kind needs. Unknown keys are skipped.
#[derive(Deserialize)]
pub(super) struct Envelope<'a> {
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    pub(super) sig: Option<&'a RawValue>,
    #[serde(rename = "type", default, borrow, deserialize_with = "raw::some_raw")]
    pub(super) kind: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    pub(super) id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    pub(super) payload: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    pub(super) subscription_id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    pub(super) error_code: Option<&'a RawValue>,
    #[serde(
        rename = "errorCode",
        default,
        borrow,
        deserialize_with = "raw::some_raw"
    )]
    pub(super) error_code_camel: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw::some_raw")]
    pub(super) reason: Option<&'a RawValue>,
}

/// The validated frame text plus its peeked envelope.
pub(super) struct Peeked<'a> {
    text: &'a str,
    /// `None` when the frame is valid JSON but not an object.
    pub(super) envelope: Option<Envelope<'a>>,
}

impl<'a> Peeked<'a> {
    /// The whole frame as a raw value, for Unknown frames. Only this cold path pays for the
    /// second look at the text.
    pub(super) fn raw(&self) -> Result<&'a RawValue, Error> {
        let trimmed = self.text.trim_matches(|c: char| c.is_ascii_whitespace());
        raw::from_valid(trimmed)
    }
}

pub(super) fn peek<'a>(text: &'a str, limits: &DecodeLimits) -> Result<Peeked<'a>, Error> {
    limits.check(text)?;
    // Objects are the only frames with meaning; anything else is an Unknown frame, but it
    // must still be valid JSON, so it goes through the raw-value check.
    if text.trim_start().starts_with('{') {
        let envelope: Envelope<'a> = serde_json::from_str(text).map_err(|e| {
            if e.is_data() {
                // Valid JSON but e.g. a duplicated key: report it as a shape problem.
                Error::invalid("chat", "envelope")
                    .with_source(e)
                    .with_frame(text)
            } else {
                Error::syntax(e).with_frame(text)
            }
        })?;
        Ok(Peeked {
            text,
            envelope: Some(envelope),
        })
    } else {
        raw::from_valid(text).map_err(|e| e.with_frame(text))?;
        Ok(Peeked {
            text,
            envelope: None,
        })
    }
}

pub(super) fn request_id(raw: &RawValue, frame: &'static str) -> Result<RequestId, Error> {
    RequestId::from_raw(raw).ok_or_else(|| Error::invalid(frame, "id"))
}

/// The `errorCode`/`error_code` of a frame that has one (present and not `null`): a JSON
/// number, or a string of digits (`"429"`), that fits a `u16`. Any other value (another type,
/// `"503 Service Unavailable"`, `" 429"`, `-1`, `70000`, `5.0`) is no usable status, but the key
/// still says the frame is an error: it reads as [`UNKNOWN_STATUS`], so the frame stays an error
/// for its request or subscription instead of reading as a success or being refused.
pub(super) fn status_code(raw: &RawValue) -> u16 {
    let text = raw.get();
    let digits = match text.as_bytes().first() {
        Some(b'0'..=b'9') => Cow::Borrowed(text),
        Some(b'"') => match raw::as_str(raw) {
            Some(digits) => digits,
            None => return UNKNOWN_STATUS,
        },
        _ => return UNKNOWN_STATUS,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return UNKNOWN_STATUS;
    }
    digits.parse::<u16>().unwrap_or(UNKNOWN_STATUS)
}

/// The status an error frame reads with when its code is not a usable status code (see
/// [`status_code`]); no HTTP status is 0.
pub(super) const UNKNOWN_STATUS: u16 = 0;
