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

/// `message` (serde's) with the values it quotes taken out: everything after the kind of an
/// unexpected value goes (`invalid type: string "…", expected …` reads `invalid type:
/// string`), as does an unknown variant's name and what follows. A quoted value ends where
/// serde's text resumes only by its escaping, which a value can imitate (`, expected` inside
/// a string), so the cut is to the end. What comes before stays: the JSON path (kept apart)
/// and the messages that quote only field names (`missing field `id``).
pub(crate) fn scrub(message: &str) -> String {
    let cut = ["invalid type: ", "invalid value: ", "unknown variant"]
        .iter()
        .filter_map(|marker| message.find(marker).map(|at| (at, *marker)))
        .min_by_key(|(at, _)| *at);
    let Some((at, marker)) = cut else {
        return message.to_owned();
    };
    let start = at + marker.len();
    // `string "…"`, `integer `5``: the kind is what comes before the quote.
    let kind = message[start..]
        .split(['"', '`', ','])
        .next()
        .unwrap_or_default()
        .trim_end();
    format!("{}{}", &message[..start], kind)
        .trim_end()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn quoted_values_are_taken_out_and_the_rest_kept() {
        let cases = [
            (
                r#"invalid type: string "s3cr3t, still", expected a boolean at line 1 column 9"#,
                "invalid type: string",
            ),
            (
                r#"invalid type: string "tok, expected SECRETPART", expected a boolean"#,
                "invalid type: string",
            ),
            (
                "invalid type: integer `987654321`, expected a string",
                "invalid type: integer",
            ),
            (
                "invalid value: floating point `1.5`, expected u8",
                "invalid value: floating point",
            ),
            (
                "unknown variant `x, expected SECRET`, expected `a` or `b`",
                "unknown variant",
            ),
            ("missing field `id`", "missing field `id`"),
            (
                "type `text`: at text: invalid type: map, expected a string",
                "type `text`: at text: invalid type: map",
            ),
        ];
        for (message, scrubbed) in cases {
            assert_eq!(scrub(message), scrubbed, "{message}");
        }
    }
}
