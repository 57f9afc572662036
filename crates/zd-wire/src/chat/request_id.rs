//! Client-chosen request ids.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _, ser::Error as _};
use serde_json::value::RawValue;

use crate::raw;

/// A request id: a JSON number or string chosen by the client and echoed by the server.
///
/// The id keeps its JSON type and, for numbers, its exact text: a response to `"id": 7`
/// carries `7`, one to `"id": "7"` carries `"7"`, and one to `"id": 1e2` carries `1e2` (not
/// `100.0`). Equality and hashing compare that text, so `1e2` and `100` are different ids,
/// as they are to a client matching responses by the text it sent.
///
/// ```
/// use zd_wire::chat::RequestId;
///
/// assert_eq!(RequestId::from(7_u64).to_string(), "7");
/// assert_eq!(RequestId::from("7").to_string(), r#""7""#);
/// assert_eq!(RequestId::number("1e2").unwrap().to_string(), "1e2");
/// assert!(RequestId::number("1e").is_none());
/// ```
///
/// Deserializing one (outside the frame decoders, which read it themselves) needs the
/// `serde_json` deserializer, since the number is captured as raw JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestId {
    /// A numeric id, exactly as written.
    Number(RawNumber),
    /// A string id.
    String(String),
}

/// The text of a JSON number, kept as written (`1e2`, `-0`, `18446744073709551616`) so that
/// it can be echoed byte for byte, whatever its size or form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RawNumber(Box<str>);

impl RawNumber {
    /// The number when `text` is exactly one JSON number (no sign `+`, no leading zeros, no
    /// surrounding whitespace), else `None`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        is_json_number(text.as_bytes()).then(|| Self(text.into()))
    }

    /// The number's JSON text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number as an unsigned integer, when it is written as one that fits.
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        // JSON forbids `+` and leading zeros, so a successful parse means a plain integer.
        self.0.parse().ok()
    }

    /// The number as a signed integer, when it is written as one that fits.
    #[must_use]
    pub fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }
}

impl fmt::Display for RawNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The JSON grammar for a number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_json_number(text: &[u8]) -> bool {
    fn digits(text: &[u8]) -> usize {
        text.iter().take_while(|b| b.is_ascii_digit()).count()
    }
    let mut rest = text.strip_prefix(b"-").unwrap_or(text);
    match rest.first() {
        Some(b'0') => rest = &rest[1..],
        Some(b'1'..=b'9') => rest = &rest[digits(rest)..],
        _ => return false,
    }
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = digits(fraction);
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    if let Some(exponent) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exponent = exponent
            .strip_prefix(b"+")
            .or_else(|| exponent.strip_prefix(b"-"))
            .unwrap_or(exponent);
        let n = digits(exponent);
        if n == 0 {
            return false;
        }
        rest = &exponent[n..];
    }
    rest.is_empty()
}

impl RequestId {
    /// A numeric id from its JSON text, when `text` is a JSON number.
    #[must_use]
    pub fn number(text: &str) -> Option<Self> {
        RawNumber::parse(text).map(Self::Number)
    }

    /// The id from a raw JSON value, when it is a number or a string.
    pub(crate) fn from_raw(value: &RawValue) -> Option<Self> {
        if let Some(s) = raw::as_str(value) {
            return Some(Self::String(s.into_owned()));
        }
        Self::number(value.get())
    }

    /// The id as an unsigned integer, when it is a number written as one that fits.
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Self::Number(n) => n.as_u64(),
            Self::String(_) => None,
        }
    }

    /// The id as a string, when it is one.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Number(_) => None,
            Self::String(s) => Some(s),
        }
    }
}

impl From<u64> for RequestId {
    fn from(id: u64) -> Self {
        Self::Number(RawNumber(id.to_string().into()))
    }
}

impl From<u32> for RequestId {
    fn from(id: u32) -> Self {
        Self::from(u64::from(id))
    }
}

impl From<i64> for RequestId {
    fn from(id: i64) -> Self {
        Self::Number(RawNumber(id.to_string().into()))
    }
}

impl From<RawNumber> for RequestId {
    fn from(id: RawNumber) -> Self {
        Self::Number(id)
    }
}

impl From<&str> for RequestId {
    fn from(id: &str) -> Self {
        Self::String(id.to_owned())
    }
}

impl From<String> for RequestId {
    fn from(id: String) -> Self {
        Self::String(id)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => f.write_str(n.as_str()),
            Self::String(s) => write!(f, "{s:?}"),
        }
    }
}

impl Serialize for RawNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Integers written canonically go through the plain integer path (no allocation, and
        // any serializer understands them); everything else is written as raw JSON text.
        if let Some(n) = self.as_u64() {
            return s.serialize_u64(n);
        }
        if let Some(n) = self.as_i64().filter(|&n| n != 0) {
            return s.serialize_i64(n);
        }
        RawValue::from_string(self.0.to_string())
            .map_err(S::Error::custom)?
            .serialize(s)
    }
}

impl Serialize for RequestId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Number(n) => n.serialize(s),
            Self::String(id) => s.serialize_str(id),
        }
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Box::<RawValue>::deserialize(d)?;
        Self::from_raw(&value)
            .ok_or_else(|| D::Error::custom("a request id must be a JSON number or string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_number_grammar() {
        for ok in [
            "0",
            "-0",
            "7",
            "1e2",
            "1E+2",
            "-1.5e-3",
            "18446744073709551616",
            "0.0",
        ] {
            assert!(RawNumber::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "", "-", "+1", "01", "1.", ".5", "1e", "1e+", " 1", "1 ", "0x1", "NaN", "1.e2", "--1",
            "\"1\"",
        ] {
            assert!(RawNumber::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn integers_are_read_only_from_integer_text() {
        let n = |t: &str| RawNumber::parse(t).unwrap();
        assert_eq!(n("100").as_u64(), Some(100));
        assert_eq!(n("1e2").as_u64(), None);
        assert_eq!(n("-0").as_i64(), Some(0));
        assert_eq!(n("-5").as_u64(), None);
        assert_eq!(n("18446744073709551616").as_u64(), None);
    }

    #[test]
    fn serializes_exactly() {
        for text in ["1e2", "-0", "18446744073709551616", "7", "-7", "1.50"] {
            let id = RequestId::number(text).unwrap();
            assert_eq!(serde_json::to_string(&id).unwrap(), text);
            let back: RequestId = serde_json::from_str(text).unwrap();
            assert_eq!(back, id);
        }
        assert_eq!(
            serde_json::to_string(&RequestId::from("abc")).unwrap(),
            r#""abc""#
        );
        assert!(serde_json::from_str::<RequestId>("true").is_err());
    }
}
