//! Bounds applied before a frame is parsed.

/// Limits a decoder enforces on untrusted input.
///
/// The size cap is checked before any parsing, so an oversized frame costs nothing but a length
/// comparison. Nesting is not limited: values kept raw (payloads, ids) are skipped over without
/// recursion, and anything parsed into a tree is parsed under serde_json's recursion limit
/// (128), so a deep frame costs time and memory in proportion to its size, which the cap bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeLimits {
    /// Largest accepted frame, in bytes of UTF-8 text.
    pub max_frame_bytes: usize,
}

impl DecodeLimits {
    /// The default cap: 1 MiB, far above any documented frame yet small enough to bound memory.
    pub const DEFAULT_MAX_FRAME_BYTES: usize = 1024 * 1024;

    /// Limits with the default cap.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            max_frame_bytes: Self::DEFAULT_MAX_FRAME_BYTES,
        }
    }

    /// Replaces the frame size cap.
    #[must_use]
    pub const fn with_max_frame_bytes(mut self, max_frame_bytes: usize) -> Self {
        self.max_frame_bytes = max_frame_bytes;
        self
    }

    pub(crate) fn check(&self, text: &str) -> Result<(), crate::Error> {
        if text.len() > self.max_frame_bytes {
            return Err(crate::Error::new(crate::ErrorKind::FrameTooLarge {
                len: text.len(),
                max: self.max_frame_bytes,
            }));
        }
        Ok(())
    }
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self::new()
    }
}
