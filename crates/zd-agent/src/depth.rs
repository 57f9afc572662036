//! The query depth check run before a raw document is sent.
//!
//! The service refuses documents nested deeper than 11 levels. Depth counts nested fields with
//! fragments expanded in place, the way the GraphQL engines that enforce such limits count it:
//! `{ a { b } }` has depth 2.

use std::collections::HashSet;

use async_graphql_parser::types::{ExecutableDocument, SelectionSet};
use async_graphql_parser::{Positioned, parse_query};

/// The documented maximum query depth.
pub const MAX_QUERY_DEPTH: usize = 11;

/// A document that cannot be sent as it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The text is not a GraphQL executable document.
    #[error("the query is not valid GraphQL")]
    Parse(#[source] Box<async_graphql_parser::Error>),
    /// Deeper than the service allows.
    #[error("query depth {depth} exceeds the limit of {limit}")]
    TooDeep {
        /// The depth found.
        depth: usize,
        /// The limit.
        limit: usize,
    },
    /// A fragment spreads itself, directly or through others.
    #[error("fragment {0} spreads itself")]
    FragmentCycle(String),
    /// A spread names a fragment the document does not define.
    #[error("unknown fragment {0}")]
    UnknownFragment(String),
}

/// The depth of the deepest operation of `query`.
///
/// # Errors
/// [`DocumentError`] when the text does not parse or its fragments are broken.
pub fn query_depth(query: &str) -> Result<usize, DocumentError> {
    let doc = parse_query(query).map_err(|e| DocumentError::Parse(Box::new(e)))?;
    let mut deepest = 0;
    for (_, op) in doc.operations.iter() {
        let mut active = HashSet::new();
        deepest = deepest.max(selection_depth(&doc, &op.node.selection_set, &mut active)?);
    }
    Ok(deepest)
}

/// Checks `query` against `limit`.
///
/// # Errors
/// [`DocumentError::TooDeep`] past the limit, or a parse or fragment error.
pub fn check_depth(query: &str, limit: usize) -> Result<usize, DocumentError> {
    let depth = query_depth(query)?;
    if depth > limit {
        Err(DocumentError::TooDeep { depth, limit })
    } else {
        Ok(depth)
    }
}

fn selection_depth<'a>(
    doc: &'a ExecutableDocument,
    set: &'a Positioned<SelectionSet>,
    active: &mut HashSet<&'a str>,
) -> Result<usize, DocumentError> {
    use async_graphql_parser::types::Selection;
    let mut deepest = 0;
    for item in &set.node.items {
        let depth = match &item.node {
            Selection::Field(field) => 1 + selection_depth(doc, &field.node.selection_set, active)?,
            Selection::InlineFragment(fragment) => {
                selection_depth(doc, &fragment.node.selection_set, active)?
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                let Some(def) = doc.fragments.get(&spread.node.fragment_name.node) else {
                    return Err(DocumentError::UnknownFragment(name.to_owned()));
                };
                if !active.insert(name) {
                    return Err(DocumentError::FragmentCycle(name.to_owned()));
                }
                let depth = selection_depth(doc, &def.node.selection_set, active)?;
                active.remove(name);
                depth
            }
        };
        deepest = deepest.max(depth);
    }
    Ok(deepest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        let mut q = String::from("query ");
        for i in 0..levels {
            q.push_str(&format!("{{ f{i} "));
        }
        q.push_str(&"}".repeat(levels));
        q
    }

    #[test]
    fn counts_nested_fields() {
        assert_eq!(query_depth("{ a { b } c }").unwrap(), 2);
        assert_eq!(query_depth(&nested(11)).unwrap(), 11);
        assert!(check_depth(&nested(11), MAX_QUERY_DEPTH).is_ok());
        assert!(matches!(
            check_depth(&nested(12), MAX_QUERY_DEPTH),
            Err(DocumentError::TooDeep {
                depth: 12,
                limit: 11
            })
        ));
    }

    #[test]
    fn expands_fragments() {
        let q = "query { a { ...F } } fragment F on T { b { c { ... on U { d } } } }";
        assert_eq!(query_depth(q).unwrap(), 4);
    }

    #[test]
    fn takes_the_deepest_operation() {
        let q = "query A { a } query B { a { b { c } } }";
        assert_eq!(query_depth(q).unwrap(), 3);
    }

    #[test]
    fn rejects_cycles_unknown_fragments_and_garbage() {
        let cyc = "query { a { ...F } } fragment F on T { b { ...F } }";
        assert!(matches!(
            query_depth(cyc),
            Err(DocumentError::FragmentCycle(_))
        ));
        assert!(matches!(
            query_depth("{ a { ...G } }"),
            Err(DocumentError::UnknownFragment(_))
        ));
        assert!(matches!(query_depth("{ a {"), Err(DocumentError::Parse(_))));
    }
}
