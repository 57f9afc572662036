//! [`Secret`]: a string that never prints.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::error::{Error, ErrorKind};

/// A token, key secret, password or signed JWT.
///
/// `Debug` and `Display` print `Secret([REDACTED])`, so a secret that ends up in a log line,
/// a `tracing` field or a panic message shows nothing. Comparison is constant-time (a timing
/// side channel could otherwise reveal a webhook secret byte by byte), and the bytes are
/// overwritten when the value is dropped. Read the value only where it goes on the wire, with
/// [`Secret::expose_secret`].
///
/// `Secret` implements `Deserialize` (for configuration files) but deliberately not
/// `Serialize`: writing a secret out must be an explicit [`Secret::expose_secret`] call.
///
/// ```
/// use zd_auth::Secret;
///
/// let token = Secret::new("abc123");
/// assert_eq!(format!("{token:?}"), "Secret([REDACTED])");
/// assert_eq!(token.to_string(), "Secret([REDACTED])");
/// assert_eq!(token.expose_secret(), "abc123");
/// assert_eq!(token, Secret::new("abc123"));
/// ```
pub struct Secret(String);

impl Secret {
    /// Wraps a value. The value may be empty; constructors that need a usable secret check
    /// with [`Secret::non_empty`] or [`Secret::require`].
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Wraps a value, refusing an empty one with [`ErrorKind::EmptySecret`].
    ///
    /// `what` names the secret in the error ("client_secret", "api key secret", ...).
    ///
    /// # Errors
    /// [`ErrorKind::EmptySecret`] when `value` is empty.
    pub fn non_empty(what: &'static str, value: impl Into<String>) -> Result<Self, Error> {
        Self::new(value).require(what)
    }

    /// Returns `self` unless it is empty.
    ///
    /// # Errors
    /// [`ErrorKind::EmptySecret`] when the secret is empty.
    pub fn require(self, what: &'static str) -> Result<Self, Error> {
        if self.0.is_empty() {
            Err(Error::new(
                ErrorKind::EmptySecret,
                format!("{what} is empty"),
            ))
        } else {
            Ok(self)
        }
    }

    /// The secret value. Call this only where the value is put on the wire.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Length in bytes (not secret: it shows on the wire anyway).
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl Clone for Secret {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        // Length is compared in the clear (subtle does the same); the content is not.
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// A string; anything else is refused by its kind alone: serde's own message quotes the value
/// (``invalid type: integer `12345678` ``), which would put a numeric password from a config
/// file into the log line reporting it. So in a human-readable format (JSON, TOML, YAML) a
/// secret that reads as a number must be quoted. Binary formats are asked for a string, as
/// before; bytes are taken when they are UTF-8.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Unexpected;

        struct Text;

        impl serde::de::Visitor<'_> for Text {
            type Value = Secret;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::new(v))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret(v))
            }

            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::invalid_type(Unexpected::Other("a boolean"), &self))
            }

            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
                Err(E::invalid_type(Unexpected::Other("a number"), &self))
            }

            fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<Secret, E> {
                Err(E::invalid_type(Unexpected::Other("a number"), &self))
            }

            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
                Err(E::invalid_type(Unexpected::Other("a number"), &self))
            }

            fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<Secret, E> {
                Err(E::invalid_type(Unexpected::Other("a number"), &self))
            }

            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::invalid_type(Unexpected::Other("a number"), &self))
            }

            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Secret, E> {
                std::str::from_utf8(v)
                    .map(Secret::new)
                    .map_err(|_| E::invalid_type(Unexpected::Other("bytes"), &self))
            }
        }

        // `any` where the format can tell: asked for a string, serde_json reports a number
        // itself, quoting it, without asking the visitor. A binary format cannot be asked for
        // `any`, and quotes nothing it was not sent as a string.
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(Text)
        } else {
            deserializer.deserialize_string(Text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_refused_where_required() {
        let err = Secret::non_empty("client_secret", "").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::EmptySecret);
        assert!(err.to_string().contains("client_secret"));
        assert!(Secret::non_empty("client_secret", "x").is_ok());
    }

    #[test]
    fn equality_is_by_content() {
        assert_eq!(Secret::new("abc"), Secret::new("abc"));
        assert_ne!(Secret::new("abc"), Secret::new("abd"));
        assert_ne!(Secret::new("abc"), Secret::new("abcd"));
    }

    #[test]
    fn deserializes_from_a_string() {
        let s: Secret = serde_json::from_str(r#""tok""#).unwrap();
        assert_eq!(s.expose_secret(), "tok");
        assert!(serde_json::from_str::<Secret>("12").is_err());
    }

    #[test]
    fn a_value_that_is_no_string_is_refused_without_being_quoted() {
        for text in [
            "12345678",
            "-12345678",
            "12345678.5",
            "true",
            "[\"12345678\"]",
        ] {
            let err = serde_json::from_str::<Secret>(text)
                .unwrap_err()
                .to_string();
            assert!(!err.contains("12345678") && !err.contains("true"), "{err}");
            assert!(err.contains("expected a string"), "{err}");
        }
        // Escaped and borrowed strings, and a form body, still read.
        let s: Secret = serde_json::from_str(r#""a\"b\u00e9""#).unwrap();
        assert_eq!(s.expose_secret(), "a\"bé");
        let form: std::collections::HashMap<String, Secret> =
            serde_urlencoded::from_str("token=12345678").unwrap();
        assert_eq!(form["token"].expose_secret(), "12345678");
    }

    #[test]
    fn clone_keeps_value() {
        let a = Secret::new("value");
        let b = a.clone();
        drop(a);
        assert_eq!(b.expose_secret(), "value");
    }
}
