//! [`Patch`]: a request field that can be left out, sent as `null`, or sent with a value.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A nullable field of a request body, in three states: the update bodies leave out a field
/// to keep it, and send `null` to unset it (`displayName`, `metadata`, `profile.*`, ...),
/// which an `Option` cannot tell apart.
///
/// ```
/// use zd_sunshine::Patch;
/// let keep: Patch<String> = Patch::Unset;
/// let clear: Patch<String> = Patch::Null;
/// let set: Patch<String> = "Ann".to_owned().into();
/// assert!(keep.is_unset() && !clear.is_unset());
/// assert_eq!(set.as_option().map(String::as_str), Some("Ann"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Patch<T> {
    /// Left out of the JSON: the API keeps the current value.
    #[default]
    Unset,
    /// Sent as `null`: the API unsets the field.
    Null,
    /// Sent with this value.
    Value(T),
}

impl<T> Patch<T> {
    /// Whether the field is left out (used by the generated `skip_serializing_if`).
    pub fn is_unset(&self) -> bool {
        matches!(self, Self::Unset)
    }

    /// The value, if there is one.
    pub fn as_option(&self) -> Option<&T> {
        match self {
            Self::Value(v) => Some(v),
            Self::Unset | Self::Null => None,
        }
    }
}

impl<T> From<T> for Patch<T> {
    fn from(value: T) -> Self {
        Self::Value(value)
    }
}

impl<T: Serialize> Serialize for Patch<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            // `Unset` is skipped by the field attribute; if it is serialized anyway (for
            // example inside a map), `null` is the closest meaning.
            Self::Unset | Self::Null => serializer.serialize_none(),
            Self::Value(v) => v.serialize(serializer),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    /// A missing field is `Unset` (through `#[serde(default)]`), `null` is `Null`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer)? {
            Some(v) => Self::Value(v),
            None => Self::Null,
        })
    }
}
