//! The query depth check run before a raw document is sent.
//!
//! The service refuses documents nested deeper than 11 levels. Depth counts nested fields with
//! fragments expanded in place, the way the GraphQL engines that enforce such limits count it:
//! `{ a { b } }` has depth 2.

use std::collections::HashSet;

use async_graphql_parser::types::{ExecutableDocument, OperationType, SelectionSet};
use async_graphql_parser::{Positioned, parse_query};
use zd_wire::chat::{MAX_BRACKET_NESTING, nests_deeper_than};

/// The documented maximum query depth.
pub const MAX_QUERY_DEPTH: usize = 11;

/// A document that cannot be sent as it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The text is not a GraphQL executable document.
    #[error("the query is not valid GraphQL")]
    Parse(#[source] Box<async_graphql_parser::Error>),
    /// Brackets nested deeper than any real query: refused before parsing, which would
    /// recurse once per level.
    #[error("the query nests brackets more than {0} levels deep")]
    Nested(usize),
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
    /// A document given to subscribe to whose operation is not a subscription.
    #[error("the operation to subscribe to is not a subscription")]
    NotASubscription,
    /// The document holds several operations and no operation name says which to run (the
    /// service requires `operationName` then).
    #[error("the document holds several operations: name the one to run")]
    OperationNameNeeded,
    /// The operation name given is not one of the document's operations.
    #[error("the document has no operation named {0}")]
    UnknownOperation(String),
}

/// The operations of a document, by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Operations {
    ops: Vec<(Option<String>, OperationType)>,
}

impl Operations {
    /// The kind of the operation that runs: the one named, or the only one.
    pub(crate) fn selected(&self, name: Option<&str>) -> Result<OperationType, DocumentError> {
        match (name, self.ops.as_slice()) {
            (None, [(_, kind)]) => Ok(*kind),
            (None, _) => Err(DocumentError::OperationNameNeeded),
            (Some(name), ops) => ops
                .iter()
                .find(|(n, _)| n.as_deref() == Some(name))
                .map(|(_, kind)| *kind)
                .ok_or_else(|| DocumentError::UnknownOperation(name.to_owned())),
        }
    }
}

/// Checks `query` against the depth `limit` and lists its operations.
///
/// # Errors
/// As [`check_depth`].
pub(crate) fn inspect(query: &str, limit: usize) -> Result<Operations, DocumentError> {
    let doc = parse(query)?;
    let depth = document_depth(&doc)?;
    if depth > limit {
        return Err(DocumentError::TooDeep { depth, limit });
    }
    let ops = doc
        .operations
        .iter()
        .map(|(name, op)| (name.map(|n| n.to_string()), op.node.ty))
        .collect();
    Ok(Operations { ops })
}

/// The depth of the deepest operation of `query`.
///
/// # Errors
/// [`DocumentError`] when the text does not parse or its fragments are broken.
pub fn query_depth(query: &str) -> Result<usize, DocumentError> {
    document_depth(&parse(query)?)
}

/// Parses `query`, refusing first a runaway nesting the parser would recurse into.
fn parse(query: &str) -> Result<ExecutableDocument, DocumentError> {
    if nests_deeper_than(query, MAX_BRACKET_NESTING) {
        return Err(DocumentError::Nested(MAX_BRACKET_NESTING));
    }
    parse_query(query).map_err(|e| DocumentError::Parse(Box::new(e)))
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
    fn a_runaway_nesting_is_refused_before_parsing() {
        let deep = format!("{{ a(x: {}1{}) }}", "[".repeat(50_000), "]".repeat(50_000));
        assert!(matches!(
            query_depth(&deep),
            Err(DocumentError::Nested(MAX_BRACKET_NESTING))
        ));
        assert!(matches!(
            inspect(&"{ a ".repeat(50_000), MAX_QUERY_DEPTH),
            Err(DocumentError::Nested(_))
        ));
    }

    #[test]
    fn selects_the_operation_that_runs() {
        let two = inspect("# a comment first\nquery A { a } mutation B { b }", 11).unwrap();
        assert!(matches!(
            two.selected(None),
            Err(DocumentError::OperationNameNeeded)
        ));
        assert_eq!(two.selected(Some("A")).unwrap(), OperationType::Query);
        assert_eq!(two.selected(Some("B")).unwrap(), OperationType::Mutation);
        assert!(matches!(
            two.selected(Some("C")),
            Err(DocumentError::UnknownOperation(name)) if name == "C"
        ));
        let sub = inspect("subscription { message { node { id } } }", 11).unwrap();
        assert_eq!(sub.selected(None).unwrap(), OperationType::Subscription);
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
