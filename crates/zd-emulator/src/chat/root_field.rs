//! The one field at the root of a subscription document.
//!
//! The engine (async-graphql 7.2) makes a stream only of the fields written out at the root of
//! a subscription: it passes over fragment spreads and inline fragments there, and runs every
//! root field side by side. So a subscription whose root is a fragment would be acknowledged
//! and never deliver, and one with two root fields would be one subscription answering two
//! things. The service (graphql-js, by its error texts) accepts fragments at the root and
//! refuses more than one root field ("Anonymous Subscription must select only one top level
//! field."). The emulator counts the root fields as graphql-js does (fragments spread out,
//! `@skip` and `@include` applied, fields of one response key merged), refuses any count but
//! one, and hands the engine a document whose root is that field, written out.

use std::collections::HashSet;
use std::convert::Infallible;

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, Field, OperationDefinition, Selection,
    SelectionSet,
};
use async_graphql::{Name, Value as ConstValue};

use super::introspection::{named_operation, selected_operation};

/// The document to run for a subscription, or why it is refused.
#[derive(Debug)]
pub(crate) enum Root {
    /// Its root is one field as written: the engine runs it as it is.
    AsWritten,
    /// Its one root field came through fragments, directives or repeats: this document has
    /// it written out alone.
    Rewritten(ExecutableDocument),
    /// It selects no field, or more than one, or fields that cannot merge: the message says
    /// which. graphql-js reports this among the document's other validation errors.
    Refused(String),
    /// A `@skip`/`@include` at its root takes a variable, which graphql-js 16 cannot decide
    /// while it counts root fields: it throws, in place of any other validation error.
    Undecidable(String),
}

/// The root of operation `operation_name` of `doc` (a subscription). The variables the
/// request sends play no part: graphql-js counts root fields without them.
pub(crate) fn subscription_root(doc: &ExecutableDocument, operation_name: Option<&str>) -> Root {
    let Some((name, op)) = named_operation(doc, operation_name) else {
        // No such operation: the engine answers that.
        return Root::AsWritten;
    };
    let mut collector = Collector {
        doc,
        spread: HashSet::new(),
        fields: Vec::new(),
        undecided: None,
    };
    collector.collect(&op.selection_set.node);
    if let Some(why) = collector.undecided {
        return Root::Undecidable(why);
    }
    let fields = collector.fields;
    let subject = match name {
        Some(name) => format!("Subscription \"{name}\""),
        None => "Anonymous Subscription".to_owned(),
    };
    match fields.as_slice() {
        [] => Root::Refused(format!(
            "{subject} must select one top level field, and selects none once @skip and \
             @include are applied."
        )),
        [(key, same_key)] => {
            if let Some(why) = conflict(key, same_key) {
                return Root::Refused(why);
            }
            let written_out = matches!(
                op.selection_set.node.items.as_slice(),
                [item] if matches!(&item.node, Selection::Field(f) if !conditional(&f.node.directives))
            );
            if written_out {
                return Root::AsWritten;
            }
            Root::Rewritten(rewrite(doc, operation_name, same_key))
        }
        _ => Root::Refused(format!("{subject} must select only one top level field.")),
    }
}

/// graphql-js's refusal of a request that leaves out a variable of a non-null type without a
/// default, or sends one `null` (default or not): "Variable "$x" of required type "Boolean!"
/// was not provided." The engine checks only the variables a root field's arguments use, in
/// words of its own, and runs a condition below the root whose variable is missing as false.
pub(crate) fn missing_variable(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &async_graphql::Variables,
) -> Option<String> {
    let (_, op) = named_operation(doc, operation_name)?;
    op.variable_definitions.iter().find_map(|d| {
        let d = &d.node;
        let sent = variables.get(&d.name.node);
        let sent_null = matches!(sent, Some(ConstValue::Null));
        let left_out = sent.is_none() && d.default_value.is_none();
        (!d.var_type.node.nullable && (sent_null || left_out)).then(|| {
            let ty = &d.var_type.node;
            if sent_null {
                format!(
                    "Variable \"${}\" of non-null type \"{ty}\" must not be null.",
                    d.name.node
                )
            } else {
                format!(
                    "Variable \"${}\" of required type \"{ty}\" was not provided.",
                    d.name.node
                )
            }
        })
    })
}

fn selected_mut<'a>(
    doc: &'a mut ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'a mut OperationDefinition> {
    match &mut doc.operations {
        DocumentOperations::Single(op) => Some(&mut op.node),
        DocumentOperations::Multiple(ops) => {
            let op = match operation_name {
                Some(wanted) => ops
                    .iter_mut()
                    .find(|(n, _)| n.as_str() == wanted)
                    .map(|(_, op)| op),
                None => ops.values_mut().next(),
            }?;
            Some(&mut op.node)
        }
    }
}

/// The root fields of an operation, by response key, in the order first met.
struct Collector<'a> {
    doc: &'a ExecutableDocument,
    /// Fragments already spread at the root: spread again, they add no field.
    spread: HashSet<&'a str>,
    fields: Vec<(&'a Name, Vec<&'a Field>)>,
    /// Why a `@skip` or `@include` at the root cannot be decided (its `if` is a variable),
    /// once one cannot.
    undecided: Option<String>,
}

impl<'a> Collector<'a> {
    fn collect(&mut self, set: &'a SelectionSet) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if !self.included(&field.directives) {
                        continue;
                    }
                    let key = &field.response_key().node;
                    match self.fields.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, same)) => same.push(field),
                        None => self.fields.push((key, vec![field])),
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let spread = &spread.node;
                    let name = spread.fragment_name.node.as_str();
                    // Spread before, it is passed over whatever its directives say.
                    if self.spread.contains(name) || !self.included(&spread.directives) {
                        continue;
                    }
                    self.spread.insert(name);
                    // An unknown fragment is the engine's to refuse.
                    if let Some(fragment) = self.doc.fragments.get(name) {
                        self.collect(&fragment.node.selection_set.node);
                    }
                }
                Selection::InlineFragment(inline) => {
                    if self.included(&inline.node.directives) {
                        self.collect(&inline.node.selection_set.node);
                    }
                }
            }
        }
    }

    /// Whether `@skip` and `@include` keep a selection, as graphql-js 16 decides it for the
    /// one-root-field rule: `@skip` first, then `@include`. That rule runs with no variable
    /// values, so a condition given by a variable is an error there whatever the request
    /// sends (noted in `undecided`, and the request refused for it); a literal decides.
    fn included(&mut self, directives: &[Positioned<Directive>]) -> bool {
        for (name, keeps_when) in [("skip", false), ("include", true)] {
            let Some(argument) = directives
                .iter()
                .find(|d| d.node.name.node == name)
                .and_then(|d| d.node.get_argument("if"))
            else {
                continue;
            };
            match argument.node.clone().into_const() {
                Some(ConstValue::Boolean(b)) if b != keeps_when => return false,
                Some(ConstValue::Boolean(_)) => {}
                // Not a boolean literal: a variable (the engine refuses anything else).
                _ => {
                    let written = argument.node.to_string();
                    self.undecided.get_or_insert_with(|| {
                        format!(
                            "Argument \"if\" of required type \"Boolean!\" was provided the \
                             variable \"{written}\" which was not provided a runtime value."
                        )
                    });
                }
            }
        }
        true
    }
}

/// Why fields of one response key cannot be merged, in graphql-js's words: they name
/// different fields, or give different arguments (compared as written, as graphql-js does).
fn conflict(key: &Name, same_key: &[&Field]) -> Option<String> {
    let (first, rest) = same_key.split_first()?;
    let arguments = |f: &Field| {
        let mut args: Vec<(String, String)> = f
            .arguments
            .iter()
            .map(|(n, v)| (n.node.to_string(), v.node.to_string()))
            .collect();
        args.sort();
        args
    };
    let reason = rest.iter().find_map(|other| {
        if other.name.node != first.name.node {
            Some(format!(
                "\"{}\" and \"{}\" are different fields",
                first.name.node, other.name.node
            ))
        } else if arguments(other) != arguments(first) {
            Some("they have differing arguments".to_owned())
        } else {
            None
        }
    })?;
    Some(format!(
        "Fields \"{key}\" conflict because {reason}. Use different aliases on the fields to \
         fetch both if this was intentional."
    ))
}

fn conditional(directives: &[Positioned<Directive>]) -> bool {
    directives
        .iter()
        .any(|d| matches!(d.node.name.node.as_str(), "skip" | "include"))
}

/// `doc` with the root of the selected operation replaced by the one field `same_key` makes
/// (their selections merged, as graphql-js merges fields of one response key), and with the
/// fragments and variables that no longer serve dropped: the engine refuses a document that
/// defines either without using it.
fn rewrite(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    same_key: &[&Field],
) -> ExecutableDocument {
    let mut out = doc.clone();
    let Some((first, rest)) = same_key.split_first() else {
        return out;
    };
    let mut field = (*first).clone();
    // Every condition on the way held: the field is selected whatever they say.
    field
        .directives
        .retain(|d| !matches!(d.node.name.node.as_str(), "skip" | "include"));
    for other in rest {
        field
            .selection_set
            .node
            .items
            .extend(other.selection_set.node.items.iter().cloned());
    }
    let Some(op) = selected_mut(&mut out, operation_name) else {
        return out;
    };
    let pos = op.selection_set.pos;
    op.selection_set.node.items = vec![Positioned::new(
        Selection::Field(Positioned::new(field, pos)),
        pos,
    )];

    let mut reachable = HashSet::new();
    for (_, op) in out.operations.iter() {
        spreads_of(&out, &op.node.selection_set.node, &mut reachable);
    }
    out.fragments.retain(|name, _| reachable.contains(name));

    let Some(op) = selected_operation(&out, operation_name) else {
        return out;
    };
    let mut used = HashSet::new();
    for d in &op.directives {
        variables_of_directive(&d.node, &mut used);
    }
    variables_of_set(&out, &op.selection_set.node, &mut HashSet::new(), &mut used);
    if let Some(op) = selected_mut(&mut out, operation_name) {
        op.variable_definitions
            .retain(|d| used.contains(&d.node.name.node));
    }
    out
}

/// Adds the fragments `set` spreads, directly or through other fragments, to `found`.
fn spreads_of(doc: &ExecutableDocument, set: &SelectionSet, found: &mut HashSet<Name>) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => spreads_of(doc, &field.node.selection_set.node, found),
            Selection::InlineFragment(inline) => {
                spreads_of(doc, &inline.node.selection_set.node, found);
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                if found.insert(name.clone())
                    && let Some(fragment) = doc.fragments.get(name)
                {
                    spreads_of(doc, &fragment.node.selection_set.node, found);
                }
            }
        }
    }
}

/// Adds the variables `set` uses, through its fragments too, to `used`.
fn variables_of_set(
    doc: &ExecutableDocument,
    set: &SelectionSet,
    seen: &mut HashSet<Name>,
    used: &mut HashSet<Name>,
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                for (_, value) in &field.node.arguments {
                    note_variables(value.node.clone().into_const_with(noting(used)));
                }
                for d in &field.node.directives {
                    variables_of_directive(&d.node, used);
                }
                variables_of_set(doc, &field.node.selection_set.node, seen, used);
            }
            Selection::InlineFragment(inline) => {
                for d in &inline.node.directives {
                    variables_of_directive(&d.node, used);
                }
                variables_of_set(doc, &inline.node.selection_set.node, seen, used);
            }
            Selection::FragmentSpread(spread) => {
                for d in &spread.node.directives {
                    variables_of_directive(&d.node, used);
                }
                let name = &spread.node.fragment_name.node;
                if seen.insert(name.clone())
                    && let Some(fragment) = doc.fragments.get(name)
                {
                    for d in &fragment.node.directives {
                        variables_of_directive(&d.node, used);
                    }
                    variables_of_set(doc, &fragment.node.selection_set.node, seen, used);
                }
            }
        }
    }
}

fn variables_of_directive(directive: &Directive, used: &mut HashSet<Name>) {
    for (_, value) in &directive.arguments {
        note_variables(value.node.clone().into_const_with(noting(used)));
    }
}

/// A stand-in for each variable of a value, noting its name in `used` (async-graphql does not
/// re-export the type of values that hold variables, so they are walked by its own method).
fn noting(used: &mut HashSet<Name>) -> impl FnMut(Name) -> Result<ConstValue, Infallible> {
    |name| {
        used.insert(name);
        Ok(ConstValue::Null)
    }
}

/// Ends a walk of [`noting`]: the value it makes serves nothing.
fn note_variables(_: Result<ConstValue, Infallible>) {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use async_graphql::Variables;

    use super::*;

    fn root(query: &str) -> Root {
        let doc = async_graphql::parser::parse_query(query).unwrap();
        subscription_root(&doc, None)
    }

    /// The rewritten document, printed back as its root field's name and the names of the
    /// fragments and variables it keeps.
    fn rewritten(query: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
        let Root::Rewritten(doc) = root(query) else {
            panic!("not rewritten: {query}");
        };
        let op = selected_operation(&doc, None).unwrap();
        let fields = op
            .selection_set
            .node
            .items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(f) => f.node.response_key().node.to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        let mut fragments: Vec<String> = doc.fragments.keys().map(ToString::to_string).collect();
        fragments.sort();
        let vars = op
            .variable_definitions
            .iter()
            .map(|d| d.node.name.node.to_string())
            .collect();
        (fields, fragments, vars)
    }

    #[test]
    fn one_field_as_written_is_left_alone() {
        assert!(matches!(
            root("subscription { message { node { id } } }"),
            Root::AsWritten
        ));
    }

    #[test]
    fn fragments_at_the_root_are_written_out_and_dropped_when_unused() {
        let (fields, fragments, _) = rewritten(
            "subscription { ...M } fragment M on Subscription { message { node { ...N } } } \
             fragment N on Message { id }",
        );
        assert_eq!(fields, ["message"]);
        assert_eq!(fragments, ["N"]);
    }

    #[test]
    fn conditions_on_the_way_drop_their_unused_variables() {
        let (fields, fragments, vars) = rewritten(
            "subscription($s: Boolean!, $f: ChatActivityFilter) { message @skip(if: true) { node { id @include(if: $s) } } \
             ... @include(if: true) { chatActivity(filter: $f) { node { __typename } } } }",
        );
        assert_eq!(fields, ["chatActivity"]);
        assert!(fragments.is_empty());
        assert_eq!(vars, ["f"]);
    }

    #[test]
    fn more_than_one_root_field_or_none_is_refused() {
        for query in [
            "subscription { message { node { id } } chatActivity { node { __typename } } }",
            "subscription { a: message { node { id } } b: message { node { id } } }",
            "subscription S { ...M message { node { id } } } fragment M on Subscription { chatActivity { node { __typename } } }",
            "subscription { message @skip(if: true) { node { id } } }",
        ] {
            assert!(matches!(root(query), Root::Refused(_)), "{query}");
        }
    }

    #[test]
    fn fields_of_one_response_key_are_one_field() {
        let (fields, _, _) = rewritten(
            "subscription { message { node { id } } ... on Subscription { message { node { content } } } }",
        );
        assert_eq!(fields, ["message"]);
    }

    #[test]
    fn fields_of_one_response_key_that_cannot_merge_are_refused() {
        let refusal = |query: &str| match root(query) {
            Root::Refused(why) => why,
            other => panic!("{query}: {other:?}"),
        };
        let why = refusal(
            "subscription { chatActivity(filter: { chat_activity_types: [MEMBER_JOIN] }) { node { __typename } } \
             ... on Subscription { chatActivity(filter: { chat_activity_types: [MEMBER_LEAVE] }) { node { __typename } } } }",
        );
        assert!(
            why.contains("\"chatActivity\" conflict because they have differing arguments"),
            "{why}"
        );
        let why = refusal(
            "subscription { a: message { node { id } } ... on Subscription { a: chatActivity { node { __typename } } } }",
        );
        assert!(
            why.contains("\"message\" and \"chatActivity\" are different fields"),
            "{why}"
        );
    }

    #[test]
    fn a_root_condition_given_by_a_variable_is_refused_whatever_its_value() {
        // graphql-js 16 counts root fields with no variable values: given, defaulted or not,
        // the variable is "not provided" there.
        for query in [
            "subscription($x: Boolean!) { message @include(if: $x) { node { id } } }",
            "subscription($x: Boolean = true) { ... @skip(if: $x) { message { node { id } } } }",
            "subscription($x: Boolean = true) { ...M @include(if: $x) } fragment M on Subscription { message { node { id } } }",
        ] {
            let Root::Undecidable(why) = root(query) else {
                panic!("{query}");
            };
            assert_eq!(
                why,
                "Argument \"if\" of required type \"Boolean!\" was provided the variable \"$x\" \
                 which was not provided a runtime value.",
                "{query}"
            );
        }
        // @skip decides first, and a fragment spread before is passed over unlooked-at.
        for query in [
            "subscription($x: Boolean!) { message @include(if: $x) @skip(if: true) { node { id } } chatActivity { node { __typename } } }",
            "subscription($x: Boolean!) { ...M ...M @include(if: $x) } fragment M on Subscription { message { node { id } } }",
        ] {
            assert!(matches!(root(query), Root::Rewritten(_)), "{query}");
        }
    }

    #[test]
    fn a_required_variable_left_out_or_null_is_named() {
        let missing = |query: &str, variables: serde_json::Value| {
            let doc = async_graphql::parser::parse_query(query).unwrap();
            missing_variable(&doc, None, &Variables::from_json(variables))
        };
        let query = "subscription($x: Boolean!) { message { node { id @include(if: $x) } } }";
        assert_eq!(
            missing(query, serde_json::json!({})).as_deref(),
            Some("Variable \"$x\" of required type \"Boolean!\" was not provided.")
        );
        assert_eq!(
            missing(query, serde_json::json!({ "x": null })).as_deref(),
            Some("Variable \"$x\" of non-null type \"Boolean!\" must not be null.")
        );
        assert_eq!(missing(query, serde_json::json!({ "x": true })), None);
        // A default does not excuse a `null` sent.
        assert_eq!(
            missing(
                "subscription($x: Boolean! = true) { message { node { id @include(if: $x) } } }",
                serde_json::json!({ "x": null })
            )
            .as_deref(),
            Some("Variable \"$x\" of non-null type \"Boolean!\" must not be null.")
        );
        for query in [
            "subscription($x: Boolean! = true) { message { node { id @include(if: $x) } } }",
            "subscription($x: Boolean) { message { node { id @include(if: $x) } } }",
        ] {
            assert_eq!(missing(query, serde_json::json!({})), None, "{query}");
        }
    }
}
