//! How deeply a GraphQL text nests its brackets, measured before a parser sees it.
//!
//! `async-graphql-parser` descends once per level of `[`, `{` or `(`. On a text nested
//! thousands deep it stops only after several hundred levels of recursion, with a syntax error
//! pointing at a column, which says nothing of the cause; how deep it may go before the
//! thread's stack runs out depends on the build and the stack. A linear scan that skips
//! strings and comments finds the depth first, so a text past a bound no real query comes
//! near is refused with a message that names the cause, without relying on the parser's own
//! limits.

/// Deepest bracket nesting to accept. The service's own selection depth limit is 11, and the
/// parser allows 64 levels of selection sets; values nest no deeper in any real query.
pub const MAX_BRACKET_NESTING: usize = 64;

/// Whether `query` nests `[`, `{` or `(` deeper than `max` anywhere outside strings and
/// comments. Unbalanced closers are left for the parser to report.
///
/// ```
/// use zd_wire::chat::{MAX_BRACKET_NESTING, nests_deeper_than};
///
/// assert!(!nests_deeper_than("{ agents { edges { node { id } } } }", MAX_BRACKET_NESTING));
/// assert!(nests_deeper_than(&"[".repeat(50_000), MAX_BRACKET_NESTING));
/// ```
#[must_use]
pub fn nests_deeper_than(query: &str, max: usize) -> bool {
    let bytes = query.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'[' | b'{' | b'(' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' | b')' => depth = depth.saturating_sub(1),
            b'#' => {
                // A comment runs to the end of the line.
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => i = block_string_end(bytes, i + 3),
            b'"' => i = string_end(bytes, i + 1),
            _ => {}
        }
        i += 1;
    }
    false
}

/// The index of the `"` closing a string whose text starts at `from` (or the last index).
fn string_end(bytes: &[u8], mut from: usize) -> usize {
    while from < bytes.len() {
        match bytes[from] {
            b'\\' => from += 2,
            b'"' | b'\n' | b'\r' => return from,
            _ => from += 1,
        }
    }
    bytes.len()
}

/// The index of the last `"` of the `"""` closing a block string whose text starts at `from`.
fn block_string_end(bytes: &[u8], mut from: usize) -> usize {
    while from < bytes.len() {
        if bytes[from..].starts_with(b"\\\"\"\"") {
            from += 4;
        } else if bytes[from..].starts_with(b"\"\"\"") {
            return from + 2;
        } else {
            from += 1;
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_kind_of_bracket() {
        assert!(!nests_deeper_than("{ a(x: [1]) { b } }", 4));
        assert!(nests_deeper_than("{ a(x: [[1]]) { b } }", 3));
        assert!(nests_deeper_than(&"[".repeat(50_000), MAX_BRACKET_NESTING));
        assert!(!nests_deeper_than(
            &"{a".repeat(MAX_BRACKET_NESTING),
            MAX_BRACKET_NESTING
        ));
        assert!(nests_deeper_than(
            &"{a".repeat(MAX_BRACKET_NESTING + 1),
            MAX_BRACKET_NESTING
        ));
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let q = format!(
            "{{ a(s: \"{}\\\"[[\", b: \"\"\"{}\\\"\"\"[[\"\"\") # {}\n }}",
            "[".repeat(100),
            "{".repeat(100),
            "(".repeat(100)
        );
        assert!(!nests_deeper_than(&q, 2), "{q}");
    }

    #[test]
    fn an_unclosed_string_or_closers_first_end_the_scan() {
        assert!(!nests_deeper_than("{ a(s: \"[[[[", 2));
        assert!(!nests_deeper_than("{ a(s: \"\"\"[[[[", 2));
        assert!(!nests_deeper_than("]]]]{", 1));
    }
}
