//! What a body that does not match its model is reported with: where it failed and why, never
//! the value that failed. serde's messages quote the value they met (`invalid type: string
//! "…"`), and a success body can hold fresh credentials.

use std::fmt;

/// A decode failure: the JSON path and serde's message with every quoted value taken out.
#[derive(Debug)]
pub(crate) struct DecodeFailure {
    path: String,
    message: String,
}

impl DecodeFailure {
    pub(crate) fn new(error: &serde_path_to_error::Error<serde_json::Error>) -> Self {
        Self {
            path: error.path().to_string(),
            message: scrub(&error.inner().to_string()),
        }
    }
}

impl fmt::Display for DecodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for DecodeFailure {}

/// `message` (serde's) with the values it quotes taken out: `invalid type: string "…",
/// expected …` reads `invalid type: string, expected …`; an unknown variant's name goes too.
/// Field names stay: they are the model's or the body's keys, not its values.
pub(crate) fn scrub(message: &str) -> String {
    let mut out = message.to_owned();
    for marker in ["invalid type: ", "invalid value: "] {
        let mut from = 0;
        while let Some(found) = out[from..].find(marker) {
            let start = from + found + marker.len();
            let rest = &out[start..];
            let end = rest.find(", expected").unwrap_or(rest.len());
            // `string "…"`, `integer `5``: the kind is what comes before the quote.
            let kind = rest[..end]
                .split(['"', '`'])
                .next()
                .unwrap_or_default()
                .trim_end()
                .to_owned();
            out.replace_range(start..start + end, &kind);
            from = start + kind.len();
        }
    }
    let marker = "unknown variant `";
    let mut from = 0;
    while let Some(found) = out[from..].find(marker) {
        let start = from + found + "unknown variant".len();
        let rest = &out[start..];
        let end = rest.find(", expected").unwrap_or(rest.len());
        out.replace_range(start..start + end, "");
        from = start;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn quoted_values_are_taken_out_and_the_rest_kept() {
        let cases = [
            (
                r#"invalid type: string "s3cr3t, still", expected a boolean at line 1 column 9"#,
                "invalid type: string, expected a boolean at line 1 column 9",
            ),
            (
                "invalid type: integer `987654321`, expected a string",
                "invalid type: integer, expected a string",
            ),
            (
                "invalid value: floating point `1.5`, expected u8",
                "invalid value: floating point, expected u8",
            ),
            (
                "unknown variant `s3cr3t`, expected `a` or `b`",
                "unknown variant, expected `a` or `b`",
            ),
            ("missing field `id`", "missing field `id`"),
            (
                "type `text`: at text: invalid type: map, expected a string",
                "type `text`: at text: invalid type: map, expected a string",
            ),
            (
                r#"invalid type: string "a", expected x; invalid type: string "b""#,
                "invalid type: string, expected x; invalid type: string",
            ),
        ];
        for (message, scrubbed) in cases {
            assert_eq!(scrub(message), scrubbed, "{message}");
        }
    }
}
