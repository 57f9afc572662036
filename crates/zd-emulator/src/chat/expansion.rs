//! The size of a query once its fragment spreads are spread out.
//!
//! A document of a few hundred bytes can name a fragment that spreads another four times,
//! which spreads another four times, and so on: fifteen levels select about 4^15 fields. The
//! GraphQL engine walks such a document spread by spread before it validates anything, so a
//! single request would hold a worker thread for minutes. Counting each fragment once (and
//! reusing its count wherever it is spread) measures the expanded size in time linear in the
//! document, and the emulator refuses documents past a bound no real client comes near.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// Fields a document may select once expanded (the clients' real queries select tens).
pub(crate) const MAX_EXPANDED_FIELDS: usize = 10_000;

/// The number of fields `doc` selects with every fragment spread out, saturating.
pub(crate) fn expanded_fields(doc: &ExecutableDocument) -> usize {
    let mut sizes = Sizes::new(doc, |_| 1);
    doc.operations
        .iter()
        .map(|(_, op)| sizes.of_set(&op.node.selection_set.node))
        .fold(0, usize::saturating_add)
}

/// The fields `set` (of `doc`) selects with every fragment spread out, each field's own
/// selection counted `repeats(field name)` times, saturating.
///
/// With `repeats` giving the longest list a field can return (1 for a single value), this
/// bounds the values an execution of `set` can resolve.
pub(crate) fn weighted_fields(
    doc: &ExecutableDocument,
    set: &SelectionSet,
    repeats: fn(&str) -> usize,
) -> usize {
    Sizes::new(doc, repeats).of_set(set)
}

struct Sizes<'a> {
    doc: &'a ExecutableDocument,
    /// How many times a field's selection runs, by the field's name.
    repeats: fn(&str) -> usize,
    /// Expanded size of each fragment counted so far.
    known: HashMap<&'a str, usize>,
    /// Fragments being counted: met again, they form a cycle (which validation refuses).
    open: HashSet<&'a str>,
}

impl<'a> Sizes<'a> {
    fn new(doc: &'a ExecutableDocument, repeats: fn(&str) -> usize) -> Self {
        Self {
            doc,
            repeats,
            known: HashMap::new(),
            open: HashSet::new(),
        }
    }

    fn of_set(&mut self, set: &'a SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let inner = self.of_set(&field.selection_set.node);
                    let repeats = (self.repeats)(field.name.node.as_str());
                    1_usize.saturating_add(inner.saturating_mul(repeats))
                }
                Selection::InlineFragment(inline) => self.of_set(&inline.node.selection_set.node),
                Selection::FragmentSpread(spread) => {
                    self.of_fragment(spread.node.fragment_name.node.as_str())
                }
            })
            .fold(0, usize::saturating_add)
    }

    fn of_fragment(&mut self, name: &'a str) -> usize {
        if let Some(size) = self.known.get(name) {
            return *size;
        }
        if !self.open.insert(name) {
            return 0;
        }
        let size = self
            .doc
            .fragments
            .get(name)
            .map_or(0, |fragment| self.of_set(&fragment.node.selection_set.node));
        self.open.remove(name);
        self.known.insert(name, size);
        size
    }
}

#[cfg(test)]
mod tests {
    use super::expanded_fields;

    fn parse(query: &str) -> async_graphql::parser::types::ExecutableDocument {
        async_graphql::parser::parse_query(query).expect("a valid document")
    }

    #[test]
    fn counts_fields_with_fragments_spread() {
        let doc = parse(
            "query { agents { edges { node { ...A } } } } fragment A on Agent { id display_name }",
        );
        assert_eq!(expanded_fields(&doc), 5);
        let doc = parse("query { a { ... on X { b c } } }");
        assert_eq!(expanded_fields(&doc), 3);
    }

    #[test]
    fn a_fragment_bomb_is_measured_in_linear_time() {
        // F0 spreads F1 four times, ..., F29 selects one field: 4^29 fields once expanded.
        let mut query = String::from("query { ...F0 }");
        for i in 0..29 {
            let next = format!("...F{} ", i + 1).repeat(4);
            query.push_str(&format!(" fragment F{i} on Query {{ {next} }}"));
        }
        query.push_str(" fragment F29 on Query { __typename }");
        assert_eq!(expanded_fields(&parse(&query)), 4_usize.pow(29));
    }

    #[test]
    fn a_fragment_cycle_ends() {
        let doc =
            parse("query { ...A } fragment A on Query { x ...B } fragment B on Query { y ...A }");
        assert_eq!(expanded_fields(&doc), 2);
    }
}
