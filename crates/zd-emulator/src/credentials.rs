//! The two `Authorization` schemes the services take, read in one place so that every route
//! reads them alike: the scheme name is case-insensitive (RFC 7235 section 2.1), so `bearer`
//! and `BASIC` are the same schemes as `Bearer` and `Basic`.

use base64::Engine as _;

/// The credentials of an `Authorization` value of `scheme` (compared case-insensitively).
fn of_scheme<'v>(value: &'v str, scheme: &str) -> Option<&'v str> {
    let (named, rest) = value.trim_start().split_once(' ')?;
    named.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// The token of a `Bearer` value; `None` for another scheme or an empty token.
pub(crate) fn bearer(value: &str) -> Option<&str> {
    of_scheme(value, "bearer").filter(|token| !token.is_empty())
}

/// The user id and password of a `Basic` value (base64 of `id:password`); `None` for another
/// scheme or credentials that do not decode to that.
pub(crate) fn basic(value: &str) -> Option<(String, String)> {
    let encoded = of_scheme(value, "basic")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, password) = text.split_once(':')?;
    Some((id.to_owned(), password.to_owned()))
}

/// The `Authorization` header of `headers`, if it is text.
pub(crate) fn header(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::{basic, bearer};

    #[test]
    fn schemes_are_read_whatever_their_case() {
        for value in ["Bearer tok", "bearer tok", "BEARER  tok ", "BeArEr tok"] {
            assert_eq!(bearer(value), Some("tok"), "{value}");
        }
        // "id:se:cret" in base64: the password is what follows the first colon.
        for value in ["Basic aWQ6c2U6Y3JldA==", "basic aWQ6c2U6Y3JldA=="] {
            assert_eq!(
                basic(value),
                Some(("id".to_owned(), "se:cret".to_owned())),
                "{value}"
            );
        }
    }

    #[test]
    fn other_schemes_and_empty_credentials_are_none() {
        for value in ["Bearer", "Bearer ", "Token tok", "Bearertok", ""] {
            assert_eq!(bearer(value), None, "{value}");
        }
        for value in ["Bearer aWQ6c2VjcmV0", "Basic !!", "Basic aWQ="] {
            assert_eq!(basic(value), None, "{value}");
        }
    }
}
