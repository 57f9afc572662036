//! The length of a value as JSON text, counted without building the text.

use serde::Serialize;

/// The bytes `serde_json::to_string(value)` would take.
///
/// Webhook batches and chat retention are bounded in bytes; counting them this way costs no
/// copy of what may be a large value.
pub(crate) fn json_len(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Ignored: a counter never fails to write, and the values counted here (JSON values,
    // strings, lists, enums) always serialize.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_length_is_that_of_the_text() {
        let v = serde_json::json!({ "text": "é😀\"x", "n": [1, 2, null], "b": { "c": true } });
        assert_eq!(super::json_len(&v), v.to_string().len());
    }
}
