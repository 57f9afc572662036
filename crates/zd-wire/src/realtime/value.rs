//! Metric values: a count or duration, null, or a per-window object.

use std::fmt;

use serde::{Serialize, Serializer, ser::SerializeMap};
use serde_json::value::RawValue;

use super::{Window, entries::entries};
use crate::{chat::redact::Shape, raw};

/// The value of one metric in an update.
///
/// `Debug` shows a [`MetricValue::Other`] value by shape only.
#[derive(Clone)]
#[non_exhaustive]
pub enum MetricValue {
    /// A count or a number of seconds; `None` when the service sent `null` (not computed yet,
    /// or not applicable, e.g. waiting time with nobody queued). May be negative.
    Scalar(Option<i64>),
    /// A windowed metric: `{"30": n, "60": n}` (either key may be absent).
    Windowed(Windowed),
    /// Any other JSON (a float, a string, ...), kept raw.
    Other(Box<RawValue>),
}

impl fmt::Debug for MetricValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scalar(v) => f.debug_tuple("Scalar").field(v).finish(),
            Self::Windowed(w) => f.debug_tuple("Windowed").field(w).finish(),
            Self::Other(raw) => f.debug_tuple("Other").field(&Shape(raw)).finish(),
        }
    }
}

/// The per-window values of a windowed metric, in wire order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Windowed(pub Vec<(Window, Option<i64>)>);

impl Windowed {
    /// The value for `window`: `None` if the window is absent, `Some(None)` if it is `null`.
    #[must_use]
    pub fn get(&self, window: Window) -> Option<Option<i64>> {
        self.0.iter().find(|(w, _)| *w == window).map(|(_, v)| *v)
    }
}

impl MetricValue {
    /// The scalar value, if this is a non-null scalar.
    #[must_use]
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Scalar(v) => *v,
            _ => None,
        }
    }

    /// The per-window values, if this is a windowed value.
    #[must_use]
    pub fn as_windowed(&self) -> Option<&Windowed> {
        match self {
            Self::Windowed(w) => Some(w),
            _ => None,
        }
    }

    pub(super) fn from_raw(value: &RawValue) -> Self {
        Self::classify(value).unwrap_or_else(|| Self::Other(value.to_owned()))
    }

    fn classify(value: &RawValue) -> Option<Self> {
        let text = value.get();
        if raw::is_null(value) {
            return Some(Self::Scalar(None));
        }
        if text.starts_with('{') {
            let mut windows = Vec::new();
            for (key, v) in entries(value)? {
                // Only canonical digits, so that re-encoding gives back the same key.
                let canonical = !key.is_empty()
                    && key.bytes().all(|b| b.is_ascii_digit())
                    && (key.len() == 1 || !key.starts_with('0'));
                if !canonical {
                    return None;
                }
                let window = Window::from_minutes(key.parse().ok()?);
                windows.push((window, scalar(v)?));
            }
            return Some(Self::Windowed(Windowed(windows)));
        }
        scalar(value).map(Self::Scalar)
    }
}

/// `null` or an integer that fits i64; anything else is not a scalar.
fn scalar(value: &RawValue) -> Option<Option<i64>> {
    if raw::is_null(value) {
        Some(None)
    } else {
        value.get().parse::<i64>().ok().map(Some)
    }
}

impl Serialize for MetricValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Scalar(v) => v.serialize(s),
            Self::Windowed(w) => w.serialize(s),
            Self::Other(raw) => raw.serialize(s),
        }
    }
}

impl Serialize for Windowed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (window, value) in &self.0 {
            map.serialize_entry(&window.minutes().to_string(), value)?;
        }
        map.end()
    }
}
