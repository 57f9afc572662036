//! Percent-encoding for path segments and query strings.
//!
//! Query keys such as `page[after]` are encoded too (`page%5Bafter%5D`): brackets are not
//! allowed unescaped in a query by RFC 3986, and some proxies reject or rewrite them.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::{Error, ErrorKind};

/// Everything but the RFC 3986 unreserved characters.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One path segment: `/` and everything else outside the unreserved set is escaped.
///
/// # Errors
/// [`ErrorKind::Encode`] for an empty value, `.` or `..`: no escaping keeps those one segment
/// naming one resource (servers and proxies that normalise paths drop or climb them, so
/// `DeleteMessage` with id `.` would become `DeleteAllMessages`), and ids can come from users.
pub(crate) fn path_segment(
    value: &str,
    name: &'static str,
    operation: &'static str,
) -> Result<String, Error> {
    if matches!(value, "" | "." | "..") {
        let detail = format!("path parameter `{name}` is {value:?}, which names no resource");
        return Err(Error::new(ErrorKind::Encode, detail).at(operation));
    }
    Ok(utf8_percent_encode(value, COMPONENT).to_string())
}

/// A query string (without the leading `?`) from ordered key/value pairs.
pub(crate) fn query(pairs: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.extend(utf8_percent_encode(key, COMPONENT));
        out.push('=');
        out.extend(utf8_percent_encode(value, COMPONENT));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_and_reserved_characters_are_escaped() {
        let q = query(&[
            ("page[after]", "5e16/06&x=1".to_owned()),
            ("page[size]", "10".to_owned()),
            ("filter[identities.email]", "sue+1@example.org".to_owned()),
        ]);
        assert_eq!(
            q,
            "page%5Bafter%5D=5e16%2F06%26x%3D1&page%5Bsize%5D=10&filter%5Bidentities.email%5D=sue%2B1%40example.org"
        );
        let segment = |v: &str| path_segment(v, "userIdOrExternalId", "GetUser");
        assert_eq!(segment("a/b c").unwrap(), "a%2Fb%20c");
        assert_eq!(segment("ext-id_1.x~").unwrap(), "ext-id_1.x~");
        assert_eq!(segment("...").unwrap(), "...");
    }

    #[test]
    fn segments_that_name_no_resource_are_refused() {
        for value in ["", ".", ".."] {
            let e = path_segment(value, "messageId", "DeleteMessage").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Encode, "{value:?}");
            assert!(e.to_string().contains("messageId"), "{e}");
        }
    }
}
