//! The query depth check run before a raw document is sent.
//!
//! The service refuses documents nested deeper than 11 levels. Depth counts nested fields with
//! fragments expanded in place, the way the GraphQL engines that enforce such limits count it:
//! `{ a { b } }` has depth 2.

use std::collections::HashSet;

use async_graphql_parser::types::{ExecutableDocument, OperationType, SelectionSet};
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
    /// A subscription given where a query or mutation is run once: its events would reach
    /// nobody. Subscriptions go through `AgentSession::subscribe_document`.
    #[error("a subscription cannot be executed once; subscribe to it instead")]
    Subscription,
    /// A document given to subscribe to that holds no subscription, or more than one
    /// operation (which the service could not tell apart without an operation name).
    #[error("the document must hold exactly one operation, a subscription")]
    NotOneSubscription,
}

/// The kinds of operation a document holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Operations {
    pub(crate) queries: usize,
    pub(crate) mutations: usize,
    pub(crate) subscriptions: usize,
}

impl Operations {
    /// Only queries: safe to send again after a lost connection.
    pub(crate) fn read_only(self) -> bool {
        self.queries > 0 && self.mutations == 0 && self.subscriptions == 0
    }
}

/// Checks `query` against the depth `limit` and tells what operations it holds.
///
/// # Errors
/// As [`check_depth`].
pub(crate) fn inspect(query: &str, limit: usize) -> Result<Operations, DocumentError> {
    let doc = parse_query(query).map_err(|e| DocumentError::Parse(Box::new(e)))?;
    let depth = document_depth(&doc)?;
    if depth > limit {
        return Err(DocumentError::TooDeep { depth, limit });
    }
    let mut ops = Operations::default();
    for (_, op) in doc.operations.iter() {
        match op.node.ty {
            OperationType::Query => ops.queries += 1,
            OperationType::Mutation => ops.mutations += 1,
            OperationType::Subscription => ops.subscriptions += 1,
        }
    }
    Ok(ops)
}

/// The depth of the deepest operation of `query`.
///
/// # Errors
/// [`DocumentError`] when the text does not parse or its fragments are broken.
pub fn query_depth(query: &str) -> Result<usize, DocumentError> {
    let doc = parse_query(query).map_err(|e| DocumentError::Parse(Box::new(e)))?;
    document_depth(&doc)
}

fn document_depth(doc: &ExecutableDocument) -> Result<usize, DocumentError> {
    let mut deepest = 0;
    for (_, op) in doc.operations.iter() {
        let mut active = HashSet::new();
        deepest = deepest.max(selection_depth(doc, &op.node.selection_set, &mut active)?);
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
    fn tells_the_kinds_of_operation() {
        let ops = inspect("# a comment first\nquery A { a } query B { b }", 11).unwrap();
        assert!(ops.read_only());
        assert_eq!(ops.queries, 2);
        assert!(
            !inspect("query Q { a } mutation M { m }", 11)
                .unwrap()
                .read_only()
        );
        let sub = inspect("subscription { message { node { id } } }", 11).unwrap();
        assert_eq!((sub.subscriptions, sub.read_only()), (1, false));
        assert!(matches!(
            inspect(&nested(12), 11),
            Err(DocumentError::TooDeep { depth: 12, .. })
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
