//! `Debug` views of GraphQL requests and answers that leave out what may be a credential.
//!
//! `startAgentSession(access_token: "…")` carries the OAuth token in the query text (or in
//! `variables`), and its answer carries the websocket URL and session id, which let anyone
//! take over the session. A `{:?}` in a log line must show neither.

use std::fmt;

use serde::{
    Deserialize, Deserializer,
    de::{IgnoredAny, MapAccess, Visitor},
};
use serde_json::value::RawValue;

/// Longest redacted query text shown; the full length is printed beside it.
const QUERY_CHARS: usize = 160;

/// A GraphQL document with every string literal (and comment) replaced by `…`, cut to
/// [`QUERY_CHARS`] characters.
pub(super) struct Query<'q>(pub(super) &'q str);

impl fmt::Debug for Query<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = redact_literals(self.0).chars().take(QUERY_CHARS).collect();
        fmt::Debug::fmt(&shown, f)?;
        write!(f, " ({} bytes)", self.0.len())
    }
}

/// The document with the contents of strings, block strings and comments elided. An
/// unterminated literal is elided to the end, so a cut-off token is not shown either.
fn redact_literals(query: &str) -> String {
    let mut out = String::with_capacity(query.len().min(QUERY_CHARS * 2));
    let mut rest = query;
    while let Some(at) = rest.find(['"', '#']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(body) = tail.strip_prefix("\"\"\"") {
            out.push_str("\"\"\"…\"\"\"");
            rest = block_string_end(body).map_or("", |end| &body[end..]);
        } else if let Some(body) = tail.strip_prefix('"') {
            out.push_str("\"…\"");
            rest = string_end(body).map_or("", |end| &body[end..]);
        } else {
            // A comment runs to the end of the line; the line break stays.
            out.push_str("#…");
            rest = tail.find(['\n', '\r']).map_or("", |end| &tail[end..]);
        }
    }
    out.push_str(rest);
    out
}

/// Where a string's text after its closing quote starts, if it is closed on its line.
fn string_end(body: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i + 1),
            '\n' | '\r' => return None,
            _ => {}
        }
    }
    None
}

/// Where a block string's text after its closing `"""` starts; `\"""` does not close it.
fn block_string_end(body: &str) -> Option<usize> {
    let mut from = 0;
    loop {
        let at = from + body.get(from..)?.find("\"\"\"")?;
        if body[..at].ends_with('\\') {
            from = at + 3;
        } else {
            return Some(at + 3);
        }
    }
}

/// Most top-level keys of an object [`Shape`] lists; how many more there were follows them.
const SHOWN_KEYS: usize = 16;

/// Longest key [`Shape`] shows, in characters; a longer one is cut and marked with `…`.
const KEY_CHARS: usize = 64;

/// A raw JSON value shown by shape: an object's top-level keys (the first [`SHOWN_KEYS`], each
/// cut to [`KEY_CHARS`] characters) with every value elided, or only the kind and size of
/// anything else. What it prints is bounded whatever the value holds, so a log line stays short.
pub(crate) struct Shape<'r>(pub(crate) &'r RawValue);

impl fmt::Debug for Shape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.get();
        let kind = match text.as_bytes().first() {
            Some(b'{') => match serde_json::from_str::<Keys>(text) {
                Ok(keys) => {
                    f.debug_map()
                        .entries(keys.shown.iter().map(|k| (k, Elided)))
                        .finish()?;
                    if keys.more > 0 {
                        return write!(f, " (+{} keys, {} bytes)", keys.more, text.len());
                    }
                    return write!(f, " ({} bytes)", text.len());
                }
                Err(_) => "object",
            },
            Some(b'[') => "array",
            Some(b'"') => "string",
            Some(b'n') => return f.write_str("null"),
            Some(b't' | b'f') => "boolean",
            _ => "number",
        };
        write!(f, "<{kind}, {} bytes>", text.len())
    }
}

struct Elided;

impl fmt::Debug for Elided {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("…")
    }
}

/// The first top-level keys of an object and the count of the rest, values skipped.
struct Keys {
    shown: Vec<String>,
    more: usize,
}

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Keys;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut keys = Keys {
                    shown: Vec::new(),
                    more: 0,
                };
                while keys.shown.len() < SHOWN_KEYS {
                    let Some(key) = map.next_key::<String>()? else {
                        return Ok(keys);
                    };
                    map.next_value::<IgnoredAny>()?;
                    keys.shown.push(cut(&key));
                }
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    keys.more += 1;
                }
                Ok(keys)
            }
        }
        d.deserialize_map(V)
    }
}

/// The key, or its first [`KEY_CHARS`] characters and `…` when it is longer.
fn cut(key: &str) -> String {
    match key.char_indices().nth(KEY_CHARS) {
        Some((at, _)) => format!("{}…", &key[..at]),
        None => key.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Query, Shape, redact_literals};

    #[test]
    fn string_literals_block_strings_and_comments_are_elided() {
        assert_eq!(
            redact_literals(r#"mutation { startAgentSession(access_token: "SE\"CRET") { a } }"#),
            r#"mutation { startAgentSession(access_token: "…") { a } }"#
        );
        assert_eq!(
            redact_literals("{ a(t: \"\"\"SE\\\"\"\"CRET\"\"\") # SECRET\n b }"),
            "{ a(t: \"\"\"…\"\"\") #…\n b }"
        );
        assert_eq!(redact_literals(r#"{ a(t: "SECRET"#), r#"{ a(t: "…""#);
        assert_eq!(
            redact_literals("{ a(t: \"\"\"SECRET\""),
            "{ a(t: \"\"\"…\"\"\""
        );
        assert_eq!(redact_literals("{ a(n: 1) }"), "{ a(n: 1) }");
    }

    #[test]
    fn long_queries_are_cut_and_their_length_shown() {
        let query = format!("{{ {} }}", "field ".repeat(100));
        let shown = format!("{:?}", Query(&query));
        assert!(
            shown.ends_with(&format!(" ({} bytes)", query.len())),
            "{shown}"
        );
        assert!(shown.len() < 200, "{shown}");
    }

    #[test]
    fn values_show_only_their_shape() {
        let raw = |t: &str| serde_json::value::RawValue::from_string(t.to_owned()).unwrap();
        let object = raw(r#"{"t":"SECRET","n":{"x":"SECRET"}}"#);
        assert_eq!(
            format!("{:?}", Shape(&object)),
            r#"{"t": …, "n": …} (33 bytes)"#
        );
        assert_eq!(
            format!("{:?}", Shape(&raw(r#""SECRET""#))),
            "<string, 8 bytes>"
        );
        assert_eq!(format!("{:?}", Shape(&raw("[1]"))), "<array, 3 bytes>");
        assert_eq!(format!("{:?}", Shape(&raw("null"))), "null");
    }

    #[test]
    fn many_or_long_keys_are_cut() {
        let raw = |t: String| serde_json::value::RawValue::from_string(t).unwrap();
        let many = raw(format!(
            "{{{}\"SECRET\":1}}",
            (0..200).map(|i| format!("\"k{i}\":0,")).collect::<String>()
        ));
        let shown = format!("{:?}", Shape(&many));
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains(r#""k15": …}"#), "{shown}");
        assert!(!shown.contains("k16"), "{shown}");
        assert!(
            shown.ends_with(&format!(" (+185 keys, {} bytes)", many.get().len())),
            "{shown}"
        );
        let long = raw(format!(r#"{{"{}SECRET":1}}"#, "é".repeat(64)));
        let shown = format!("{:?}", Shape(&long));
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(
            shown.contains(&format!(r#"{{"{}…": …}}"#, "é".repeat(64))),
            "{shown}"
        );
    }
}
