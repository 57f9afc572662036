//! The crate's one error type.

use std::fmt;

/// Longest excerpt of an offending frame kept in an [`Error`].
const EXCERPT_BYTES: usize = 256;

/// A frame could not be decoded or encoded.
///
/// Branch on [`Error::kind`]. The underlying serde_json error, when there is one, is the
/// [`source`](std::error::Error::source). A bounded excerpt of the frame is kept for diagnosis;
/// it is left out of `Debug` and `Display` because frames may carry tokens.
#[derive(thiserror::Error)]
#[error("{kind}")]
pub struct Error {
    kind: ErrorKind,
    #[source]
    source: Option<serde_json::Error>,
    excerpt: Option<Box<str>>,
}

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
        self.source = Some(source);
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
