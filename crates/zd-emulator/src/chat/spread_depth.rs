//! How deep a query nests once its fragment spreads are spread out.
//!
//! The bracket bound (`zd_wire::chat::nests_deeper_than`) holds for each fragment on its own
//! text, not for a chain: 158 fragments that each nest 63 levels and spread the next fit in
//! 64 KB and nest 10,000 levels once followed. Everything that walks a document spread by
//! spread (the emulator's own size count, the engine's validation) recurses that deep and
//! overflows its thread's stack, which aborts the process. This measures the depth without
//! recursing through spreads: each fragment's own shape first (bounded by the bracket limit),
//! then the fragments in an order where each comes after those it spreads.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// A selection set's own nesting, and the fragments it spreads with the level of each spread.
#[derive(Default)]
struct Shape<'a> {
    own: usize,
    spreads: Vec<(usize, &'a str)>,
}

impl<'a> Shape<'a> {
    fn of(set: &'a SelectionSet) -> Self {
        let mut shape = Self::default();
        shape.walk(set, 0);
        shape
    }

    /// Recurses as deep as the set's own brackets, which the caller has bounded.
    fn walk(&mut self, set: &'a SelectionSet, level: usize) {
        self.own = self.own.max(level);
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => self.walk(&field.node.selection_set.node, level + 1),
                Selection::InlineFragment(inline) => {
                    self.walk(&inline.node.selection_set.node, level + 1);
                }
                Selection::FragmentSpread(spread) => self
                    .spreads
                    .push((level, spread.node.fragment_name.node.as_str())),
            }
        }
    }

    /// The nesting with spreads followed, given the depth of every fragment it spreads
    /// (spreads of fragments the document does not define count as leaves: validation
    /// refuses them).
    fn depth(&self, deep: &HashMap<&str, usize>) -> usize {
        self.spreads
            .iter()
            .map(|(level, name)| level.saturating_add(deep.get(name).copied().unwrap_or(0)))
            .fold(self.own, usize::max)
    }
}

/// The deepest nesting of `doc` with every fragment spread out; `None` when fragments spread
/// each other in a cycle (which GraphQL forbids).
///
/// Only the walk of one selection set recurses, as deep as its own brackets; fragments are
/// taken in a loop.
pub(crate) fn nesting_through_spreads(doc: &ExecutableDocument) -> Option<usize> {
    let shapes: HashMap<&str, Shape<'_>> = doc
        .fragments
        .iter()
        .map(|(name, fragment)| (name.as_str(), Shape::of(&fragment.node.selection_set.node)))
        .collect();
    // Kahn's algorithm: a fragment is measured once every fragment it spreads is.
    let mut waiting: HashMap<&str, usize> = HashMap::new();
    let mut spread_by: HashMap<&str, Vec<&str>> = HashMap::new();
    for (&name, shape) in &shapes {
        let defined = shape
            .spreads
            .iter()
            .filter(|(_, target)| shapes.contains_key(target));
        for (_, target) in defined {
            *waiting.entry(name).or_default() += 1;
            spread_by.entry(target).or_default().push(name);
        }
    }
    let mut ready: Vec<&str> = shapes
        .keys()
        .copied()
        .filter(|name| !waiting.contains_key(name))
        .collect();
    let mut deep: HashMap<&str, usize> = HashMap::new();
    while let Some(name) = ready.pop() {
        let depth = shapes.get(name).map_or(0, |shape| shape.depth(&deep));
        deep.insert(name, depth);
        for &spreader in spread_by.get(name).into_iter().flatten() {
            if let Some(left) = waiting.get_mut(spreader) {
                *left -= 1;
                if *left == 0 {
                    ready.push(spreader);
                }
            }
        }
    }
    if deep.len() < shapes.len() {
        return None;
    }
    let operations = doc
        .operations
        .iter()
        .map(|(_, op)| Shape::of(&op.node.selection_set.node).depth(&deep));
    Some(operations.fold(0, usize::max))
}

#[cfg(test)]
mod tests {
    use super::nesting_through_spreads;

    fn depth(query: &str) -> Option<usize> {
        let doc = async_graphql::parser::parse_query(query).expect("a valid document");
        nesting_through_spreads(&doc)
    }

    #[test]
    fn spreads_add_their_fragments_nesting_at_the_level_they_are_made() {
        assert_eq!(depth("{ a { b } }"), Some(2));
        assert_eq!(
            depth("{ a { ...F } } fragment F on A { b { c { d } } }"),
            Some(4)
        );
        assert_eq!(
            depth("{ ...F x } fragment F on Q { a { ...G } } fragment G on Q { b { c } }"),
            Some(3)
        );
        assert_eq!(depth("{ ... on Q { a } }"), Some(2));
    }

    #[test]
    fn a_long_chain_is_measured_without_following_it_on_the_stack() {
        // 1,000 fragments each nesting 60 levels and spreading the next: 60,000 levels.
        let mut query = String::from("query { ...F0 }");
        for i in 0..1_000 {
            let open = "a { ".repeat(60);
            let close = "} ".repeat(60);
            query.push_str(&format!(
                " fragment F{i} on Q {{ {open} ...F{} {close} }}",
                i + 1
            ));
        }
        query.push_str(" fragment F1000 on Q { b }");
        assert_eq!(depth(&query), Some(60_001));
    }

    #[test]
    fn a_cycle_has_no_depth() {
        assert_eq!(
            depth("{ ...A } fragment A on Q { x ...B } fragment B on Q { y ...A }"),
            None
        );
    }
}
