//! Turning JSON names from the spec into Rust identifiers.

/// Words that cannot be plain identifiers and take the raw `r#` form.
const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "else", "enum", "extern", "false", "fn", "for", "if",
    "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "static",
    "struct", "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn",
    "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof", "unsized",
    "virtual", "yield", "try", "gen",
];

/// Keywords that cannot be raw identifiers either (`r#self` is refused): they take a trailing
/// `_` instead.
const NOT_RAW: &[&str] = &["crate", "super", "self", "Self"];

/// `ident`, made usable when it is a keyword: `r#ident`, or `ident_` where `r#` is refused.
fn unkeyword(mut ident: String) -> String {
    if NOT_RAW.contains(&ident.as_str()) {
        ident.push('_');
    } else if KEYWORDS.contains(&ident.as_str()) {
        ident.insert_str(0, "r#");
    }
    ident
}

/// Splits `camelCase`, `snake_case`, `kebab-case`, `dotted.names` and `a:b` into lowercase words.
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if c.is_ascii_uppercase() && !cur.is_empty() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push(std::mem::take(&mut cur));
            }
        }
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `UpperCamelCase` type or variant name; never empty, never starting with a digit, never
/// `Self` (which becomes `Self_`).
pub(crate) fn upper_camel(name: &str) -> String {
    let mut s = String::new();
    for w in words(name) {
        let mut cs = w.chars();
        if let Some(f) = cs.next() {
            s.push(f.to_ascii_uppercase());
            s.extend(cs);
        }
    }
    if s.is_empty() {
        s.push_str("Empty");
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, 'V');
    }
    unkeyword(s)
}

/// `snake_case` field or argument name, with `r#` for keywords (a trailing `_` for those that
/// cannot be raw: `crate_`, `super_`, `self_`).
pub(crate) fn snake(name: &str) -> String {
    let mut s = words(name).join("_");
    if s.is_empty() {
        s.push_str("value");
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    unkeyword(s)
}

/// The snake name without a raw prefix, for use inside other identifiers.
pub(crate) fn bare(ident: &str) -> &str {
    ident.strip_prefix("r#").unwrap_or(ident)
}

/// A Rust string literal for `s`.
pub(crate) fn lit(s: &str) -> String {
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        assert_eq!(upper_camel("appResponse"), "AppResponse");
        assert_eq!(upper_camel("ticket:closed"), "TicketClosed");
        assert_eq!(upper_camel("AI"), "Ai");
        assert_eq!(snake("displayName"), "display_name");
        assert_eq!(snake("identities.email"), "identities_email");
        assert_eq!(snake("type"), "r#type");
        assert_eq!(snake("URL"), "url");
        assert_eq!(snake("HTMLText"), "html_text");
        assert_eq!(snake("client_id"), "client_id");
    }

    /// `r#crate`, `r#super`, `r#self` and `r#Self` are not identifiers: those keywords take a
    /// trailing `_`, as field, argument, type and variant names.
    #[test]
    fn keywords_that_cannot_be_raw_take_a_trailing_underscore() {
        for word in ["crate", "super", "self"] {
            assert_eq!(snake(word), format!("{word}_"));
        }
        assert_eq!(snake("Self"), "self_");
        assert_eq!(upper_camel("self"), "Self_");
        assert_eq!(upper_camel("Self"), "Self_");
        // Only `Self` is a keyword among the upper-camel forms.
        assert_eq!(upper_camel("crate"), "Crate");
        assert_eq!(upper_camel("super"), "Super");
        assert_eq!(bare(&snake("self")), "self_");
        // The others stay raw.
        assert_eq!(snake("match"), "r#match");
        assert_eq!(snake("gen"), "r#gen");
    }
}
