//! The structural scan the frame splitters share: whitespace, delimiters, plain strings and
//! container outlines, found without parsing values (the parse that follows validates them).

/// Walks the members of the object opening at `at`, whose keys must be plain strings: `visit`
/// gets each key and the position of its value, and returns the position after that value, or
/// `None` to give up. Gives the position after the closing brace (an empty object is refused).
pub(super) fn walk_object(
    bytes: &[u8],
    at: usize,
    mut visit: impl FnMut(&[u8], usize) -> Option<usize>,
) -> Option<usize> {
    let mut at = after_byte(bytes, skip_ws(bytes, at), b'{')?;
    loop {
        let (key, next) = plain_string(bytes, skip_ws(bytes, at))?;
        at = skip_ws(bytes, after_byte(bytes, skip_ws(bytes, next), b':')?);
        at = skip_ws(bytes, visit(key, at)?);
        match bytes.get(at)? {
            b',' => at += 1,
            b'}' => return Some(at + 1),
            _ => return None,
        }
    }
}

/// Walks the object opening at `at` whose only member is `data`, itself an object: the
/// position after that object and the span of `data` (brackets included).
pub(super) fn data_member(bytes: &[u8], at: usize) -> Option<(usize, (usize, usize))> {
    let mut data = None;
    let end = walk_object(bytes, at, |key, at| match key {
        b"data" if data.is_none() => {
            let end = object_end(bytes, at)?;
            data = Some((at, end));
            Some(end)
        }
        _ => None,
    })?;
    Some((end, data?))
}

/// The position after the object opening at `at` (see [`skip_container`]); `None` when no
/// object opens there.
pub(super) fn object_end(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    skip_container(bytes, at)
}

/// JSON's four whitespace bytes.
pub(super) fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// The position after `byte`, if it is at `at`.
pub(super) fn after_byte(bytes: &[u8], at: usize, byte: u8) -> Option<usize> {
    (bytes.get(at) == Some(&byte)).then_some(at + 1)
}

/// A string at `at` without escapes or control characters: its contents and the position
/// after its closing quote.
pub(super) fn plain_string(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let start = after_byte(bytes, at, b'"')?;
    let len = bytes.get(start..)?.iter().position(|&b| b == b'"')?;
    let contents = &bytes[start..start + len];
    if contents.iter().any(|&b| b == b'\\' || b < 0x20) {
        return None;
    }
    Some((contents, start + len + 1))
}

/// The position after the object or array opening at `at`, found by tracking strings (with
/// their escapes) and bracket depth only. Mismatched bracket kinds and bad tokens are left for
/// the parse that follows; an unterminated container or one nested past serde_json's limit
/// (128) gives `None`.
pub(super) fn skip_container(bytes: &[u8], at: usize) -> Option<usize> {
    const MAX_DEPTH: usize = 128;
    let mut depth = 0usize;
    let mut i = at;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return None;
                }
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b'"' => i = string_end(bytes, i + 1)?,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The position of the quote closing a string whose contents start at `at`: the next quote
/// not escaped by an odd run of backslashes before it.
fn string_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let quote = at + memchr::memchr(b'"', bytes.get(at..)?)?;
        let backslashes = bytes[at..quote]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 0 {
            return Some(quote);
        }
        at = quote + 1;
    }
}

/// The recorded server frames (`fixtures/chat/server`) the splitters' tests check against the
/// full decoder.
#[cfg(test)]
pub(super) mod fixtures {
    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/chat/server");

    /// One fixture's text, by file name.
    pub(in crate::chat) fn server_frame(name: &str) -> String {
        std::fs::read_to_string(format!("{DIR}/{name}")).expect(name)
    }

    /// Runs `check` on every fixture; gives how many it answered true for.
    pub(in crate::chat) fn count_server_frames(mut check: impl FnMut(&str) -> bool) -> usize {
        let entries = std::fs::read_dir(DIR).expect("fixtures");
        entries
            .map(|entry| std::fs::read_to_string(entry.expect("entry").path()).expect("fixture"))
            .filter(|text| check(text))
            .count()
    }
}
