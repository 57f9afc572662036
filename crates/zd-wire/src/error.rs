//! The crate's one error type.

use std::fmt;

/// Longest excerpt of an offending frame kept in an [`Error`].
const EXCERPT_BYTES: usize = 256;

/// A frame could not be decoded or encoded.
///
/// Branch on [`Error::kind`]. When serde_json refused the text, a summary of its error (the
/// kind of mistake, what the Rust type expected or which of its fields is missing, line and
/// column) is the
/// [`source`](std::error::Error::source). A bounded excerpt of the frame is kept for diagnosis;
/// it is left out of `Debug`, `Display` and the source chain because frames may carry tokens.
#[derive(thiserror::Error)]
#[error("{kind}")]
pub struct Error {
    kind: ErrorKind,
    #[source]
    source: Option<JsonError>,
    excerpt: Option<Box<str>>,
}

/// What serde_json reported, without the frame content its messages quote: `invalid type:
/// string "<the value>"` would put a token into every log line that prints the error chain.
#[derive(Debug, Clone)]
struct JsonError {
    description: Box<str>,
    line: usize,
    column: usize,
}

impl From<serde_json::Error> for JsonError {
    fn from(e: serde_json::Error) -> Self {
        let full = e.to_string();
        let message = match full.rfind(" at line ") {
            Some(at) if e.line() != 0 => full.get(..at).unwrap_or_default(),
            _ => full.as_str(),
        };
        let description = match e.classify() {
            // Syntax and end-of-input messages are serde_json's own fixed texts.
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                message.into()
            }
            serde_json::error::Category::Data | serde_json::error::Category::Io => {
                data_description(message)
            }
        };
        Self {
            description: description.into_boxed_str(),
            line: e.line(),
            column: e.column(),
        }
    }
}

/// A serde data error's message without the frame values it quotes.
///
/// serde's messages name the offending value (`string "…"`, ``integer `…` ``, ``unknown
/// variant `…` ``, ``unknown field `…` ``), which comes from the frame, and then what was
/// expected (`, expected u16`), which comes from the Rust type, as do the field names of
/// ``missing field `…` `` and ``duplicate field `…` ``. The parts from the Rust types are kept;
/// of the value, only its JSON kind. A message of any other form keeps only the words before
/// its first quote, backtick or colon.
fn data_description(message: &str) -> String {
    for prefix in ["missing field `", "duplicate field `"] {
        if let Some(name) = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix('`'))
            && !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return message.to_owned();
        }
    }
    // `<what> <value>, expected <the Rust type's words>`: the value may hold anything, even
    // ", expected ", but the type's words come last, so the last one is the separator.
    let expected = message
        .rfind(", expected ")
        .and_then(|at| message.get(at + 2..));
    let with_expected = |what: &str| match expected {
        Some(expected) => format!("{what}, {expected}"),
        None => what.to_owned(),
    };
    for (prefix, what) in [
        ("invalid type: ", "invalid type"),
        ("invalid value: ", "invalid value"),
    ] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let value = match expected {
                Some(expected) => rest.get(..rest.len().saturating_sub(expected.len() + 2)),
                None => Some(rest),
            };
            let kind = value
                .and_then(|v| v.split(['"', '`']).next())
                .map(str::trim)
                .filter(|kind| VALUE_KINDS.contains(kind));
            return match kind {
                Some(kind) => with_expected(&format!("{what}: {kind}")),
                None => with_expected(what),
            };
        }
    }
    if let Some(rest) = message.strip_prefix("invalid length ") {
        let length = rest.split(',').next().unwrap_or_default();
        return if !length.is_empty() && length.bytes().all(|b| b.is_ascii_digit()) {
            with_expected(&format!("invalid length {length}"))
        } else {
            with_expected("invalid length")
        };
    }
    for (prefix, what) in [
        ("unknown variant `", "unknown variant"),
        ("unknown field `", "unknown field"),
    ] {
        if message.starts_with(prefix) {
            // Without a list to offer serde says so instead, and the value's text then holds
            // the last ", expected " if any.
            for none in [", there are no variants", ", there are no fields"] {
                if message.ends_with(none) {
                    return format!("{what}{none}");
                }
            }
            return with_expected(what);
        }
    }
    message
        .split(['"', '`', ':'])
        .next()
        .map(str::trim_end)
        .filter(|words| !words.is_empty())
        .unwrap_or("invalid data")
        .to_owned()
}

/// The kinds of value serde's `Unexpected` names (serde_json says `null` for unit), the only
/// words of the value part of a message that are kept.
const VALUE_KINDS: [&str; 18] = [
    "boolean",
    "integer",
    "floating point",
    "character",
    "string",
    "byte array",
    "unit value",
    "Option value",
    "newtype struct",
    "sequence",
    "map",
    "enum",
    "unit variant",
    "newtype variant",
    "tuple variant",
    "struct variant",
    "null",
    "number",
];

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)?;
        if self.line != 0 {
            write!(f, " at line {} column {}", self.line, self.column)?;
        }
        Ok(())
    }
}

impl std::error::Error for JsonError {}

/// What went wrong, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The frame is larger than [`DecodeLimits::max_frame_bytes`](crate::DecodeLimits).
    FrameTooLarge {
        /// Length of the refused frame in bytes.
        len: usize,
        /// The cap in force.
        max: usize,
    },
    /// The frame is not a single valid JSON value (or a part parsed into a tree nests deeper
    /// than serde_json allows).
    Syntax,
    /// The frame was classified but lacks a field its kind requires.
    MissingField {
        /// The kind of frame, e.g. `"DATA"`.
        frame: &'static str,
        /// The missing key.
        field: &'static str,
    },
    /// The frame was classified but a field has the wrong JSON type or an out-of-range value.
    InvalidField {
        /// The kind of frame, e.g. `"DATA"`.
        frame: &'static str,
        /// The offending key.
        field: &'static str,
    },
    /// A value could not be written as JSON.
    Encode,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the {max}-byte cap")
            }
            Self::Syntax => f.write_str("frame is not a valid JSON value"),
            Self::MissingField { frame, field } => write!(f, "{frame} frame lacks `{field}`"),
            Self::InvalidField { frame, field } => {
                write!(f, "{frame} frame has an invalid `{field}`")
            }
            Self::Encode => f.write_str("frame could not be encoded as JSON"),
        }
    }
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            source: None,
            excerpt: None,
        }
    }

    pub(crate) fn with_source(mut self, source: serde_json::Error) -> Self {
        self.source = Some(source.into());
        self
    }

    pub(crate) fn with_frame(mut self, frame: &str) -> Self {
        let mut end = frame.len().min(EXCERPT_BYTES);
        while !frame.is_char_boundary(end) {
            end -= 1;
        }
        self.excerpt = frame.get(..end).map(Box::from);
        self
    }

    pub(crate) fn syntax(source: serde_json::Error) -> Self {
        Self::new(ErrorKind::Syntax).with_source(source)
    }

    pub(crate) fn missing(frame: &'static str, field: &'static str) -> Self {
        Self::new(ErrorKind::MissingField { frame, field })
    }

    pub(crate) fn invalid(frame: &'static str, field: &'static str) -> Self {
        Self::new(ErrorKind::InvalidField { frame, field })
    }

    pub(crate) fn encode(source: serde_json::Error) -> Self {
        Self::new(ErrorKind::Encode).with_source(source)
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The first bytes (at most 256) of the offending frame, when a frame was involved.
    ///
    /// May contain secrets carried by the frame: log it only where that is acceptable.
    #[must_use]
    pub fn excerpt(&self) -> Option<&str> {
        self.excerpt.as_deref()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .field("excerpt_len", &self.excerpt.as_ref().map(|e| e.len()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use crate::realtime;

    /// Every message of the error and its sources, as a log line that prints the chain would.
    fn chain(e: &crate::Error) -> String {
        let mut text = format!("{e} / {e:?}");
        let mut source = e.source();
        while let Some(s) = source {
            text.push_str(&format!(" / {s} / {s:?}"));
            source = s.source();
        }
        text
    }

    #[test]
    fn quoted_frame_values_stay_out_of_debug_display_and_sources() {
        let e = realtime::ServerFrame::decode(r#"{"status_code":"SECRET"}"#)
            .expect_err("a string status code");
        let text = chain(&e);
        assert!(!text.contains("SECRET"), "{text}");
        // What is left still says what went wrong and where.
        let source = e.source().map(ToString::to_string);
        assert_eq!(
            source.as_deref(),
            Some("invalid type: string, expected u16 at line 1 column 8"),
            "{text}"
        );
        assert!(e.excerpt().is_some_and(|x| x.contains("SECRET")));
    }

    #[test]
    fn words_from_the_rust_types_are_kept() {
        let e = crate::chat::ClientFrame::decode(r#"{"type":"request","id":1,"payload":{}}"#)
            .expect_err("no query");
        let missing = chain(&e);
        assert!(missing.contains("missing field `query`"), "{missing}");

        let e = serde_json::from_str::<Two>(r#"{"a":1,"a":2}"#).expect_err("twice");
        let shown = super::JsonError::from(e).to_string();
        assert_eq!(shown, "duplicate field `a` at line 1 column 10");

        for (text, want) in [
            (
                r#"{"a":"SECRET, expected SECRET"}"#,
                "invalid type: string, expected u16",
            ),
            (r#"{"a":70000}"#, "invalid value: integer, expected u16"),
            (r#"{"a":null}"#, "invalid type: null, expected u16"),
            (
                r#"{"a":1,"k":"SECRET"}"#,
                "unknown variant, expected `One` or `Two`",
            ),
            (
                r#"{"a":1,"SECRET":1}"#,
                "unknown field, expected `a` or `k`",
            ),
        ] {
            let e = serde_json::from_str::<Two>(text).expect_err(text);
            let shown = super::JsonError::from(e).to_string();
            assert!(shown.starts_with(want), "{text}: {shown}");
            assert!(!shown.contains("SECRET"), "{text}: {shown}");
        }
        let e = serde_json::from_str::<NoVariants>(r#""a, expected SECRET""#).expect_err("none");
        let shown = super::JsonError::from(e).to_string();
        assert!(!shown.contains("SECRET"), "{shown}");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Two {
        a: u16,
        #[serde(default)]
        k: Option<Kind>,
    }

    #[derive(Debug, serde::Deserialize)]
    enum Kind {
        One,
        Two,
    }

    #[derive(Debug, serde::Deserialize)]
    enum NoVariants {}

    #[test]
    fn syntax_errors_keep_serde_json_s_own_text() {
        let e = crate::chat::ServerFrame::decode(r#"{"sig":"SECRET"#).expect_err("cut short");
        let source = e.source().map(ToString::to_string);
        assert_eq!(
            source.as_deref(),
            Some("EOF while parsing a string at line 1 column 14")
        );
        assert!(!chain(&e).contains("SECRET"));
    }
}
