//! Queries that read only the schema, as a GraphQL IDE sends them.
//!
//! The getting-started guide tells users to point ChromiQL or the GraphQL IDE at
//! `/graphql/request` for autocompletion, so the service answers introspection. The query those
//! tools send nests `ofType` deeper than the documented depth limit of 11 (13 levels for
//! graphql-js 16's, more for later ones), so the emulator runs a query that selects only
//! `__schema`, `__type` and `__typename` on a schema of its own: deeper queries pass, and a bound
//! on the values the query can resolve replaces the depth limit. Depth alone would not bound
//! them: `types { fields { type { fields { … } } } }` multiplies at every list, so every query
//! is held to that bound, also one that reads the schema beside data (and runs on the
//! service's schema, within depth 11).

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};

use super::expansion::weighted_fields;

/// Depth limit for queries that read only the schema (the IDEs' queries nest up to about 20).
pub(crate) const MAX_DEPTH: usize = 32;

/// Values a schema-only query may resolve at most, counting every list at its longest
/// (see [`longest_list`]). graphql-js 16's standard IDE query counts about 190,000; later
/// ones nest `ofType` deeper and count about a third more.
pub(crate) const MAX_RESOLVED: usize = 500_000;

/// The longest list each introspection field returns in this schema, so that
/// [`weighted_fields`] bounds what a query resolves. A test runs the full introspection and
/// checks every figure against the schema, so they change with it.
pub(crate) mod longest {
    /// `__Schema.types`.
    pub(crate) const TYPES: usize = 68;
    /// `__Type.fields`.
    pub(crate) const FIELDS: usize = 15;
    /// `__Field.args` and `__Directive.args`.
    pub(crate) const ARGS: usize = 5;
    /// `__Type.inputFields`.
    pub(crate) const INPUT_FIELDS: usize = 4;
    /// `__Type.enumValues`.
    pub(crate) const ENUM_VALUES: usize = 19;
    /// `__Type.interfaces`.
    pub(crate) const INTERFACES: usize = 1;
    /// `__Type.possibleTypes`.
    pub(crate) const POSSIBLE_TYPES: usize = 4;
    /// `__Schema.directives`.
    pub(crate) const DIRECTIVES: usize = 5;
}

/// How many values a field of an introspection type can hold: its longest list, or 1.
fn longest_list(field: &str) -> usize {
    match field {
        "types" => longest::TYPES,
        "fields" => longest::FIELDS,
        "args" => longest::ARGS,
        "inputFields" => longest::INPUT_FIELDS,
        "enumValues" => longest::ENUM_VALUES,
        "interfaces" => longest::INTERFACES,
        "possibleTypes" => longest::POSSIBLE_TYPES,
        "directives" => longest::DIRECTIVES,
        // `locations` is a list of enum values: it selects nothing below it.
        _ => 1,
    }
}

/// Where a parsed document runs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// The service's schema, with the documented limits.
    Engine,
    /// A query that reads only the schema: the introspection schema.
    Introspection,
    /// A query that reads only the schema but could resolve this many values, past
    /// [`MAX_RESOLVED`].
    TooLarge(usize),
}

impl Route {
    /// The error of a [`Route::TooLarge`] query.
    pub(crate) fn refusal(resolved: usize) -> String {
        format!(
            "the introspection query could resolve {resolved} values; the emulator answers at \
             most {MAX_RESOLVED}"
        )
    }
}

/// Where `doc` runs when `operation_name` (or its only operation) is executed.
pub(crate) fn route(doc: &ExecutableDocument, operation_name: Option<&str>) -> Route {
    let Some(op) = selected_operation(doc, operation_name) else {
        // The engine reports the missing or ambiguous operation.
        return Route::Engine;
    };
    if op.ty != OperationType::Query {
        return Route::Engine;
    }
    // Counted for every query, not only those that read only the schema: `__schema` beside a
    // data field runs on the engine's schema, within depth 11 but multiplied just the same.
    // The data fields of this schema bear none of the introspection lists' names, so a query
    // without introspection counts its expanded fields, at most 10,000.
    let resolved = weighted_fields(doc, &op.selection_set.node, longest_list);
    if resolved > MAX_RESOLVED {
        Route::TooLarge(resolved)
    } else if reads_only_schema(doc, &op.selection_set.node, 0) {
        Route::Introspection
    } else {
        Route::Engine
    }
}

/// The operation the engine executes for `name`, as the engine picks it.
pub(crate) fn selected_operation<'a>(
    doc: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    named_operation(doc, name).map(|(_, op)| op)
}

/// [`selected_operation`] with its name (`None` when the document holds one anonymous
/// operation).
pub(crate) fn named_operation<'a>(
    doc: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<(Option<&'a str>, &'a OperationDefinition)> {
    match &doc.operations {
        DocumentOperations::Single(op) => Some((None, &op.node)),
        DocumentOperations::Multiple(ops) => {
            let (name, op) = match name {
                Some(wanted) => ops.iter().find(|(n, _)| n.as_str() == wanted)?,
                None if ops.len() == 1 => ops.iter().next()?,
                None => return None,
            };
            Some((Some(name.as_str()), &op.node))
        }
    }
}

/// Fragments spread into fragments at the top of a query, at most (a deeper chain is not an
/// IDE's query; it runs with the documented limits).
const MAX_TOP_SPREADS: usize = 8;

/// Whether every field at the top of `set` (through fragments) is `__schema`, `__type` or
/// `__typename`, and there is at least one.
fn reads_only_schema(doc: &ExecutableDocument, set: &SelectionSet, spreads: usize) -> bool {
    if set.items.is_empty() {
        return false;
    }
    set.items.iter().all(|item| match &item.node {
        Selection::Field(field) => matches!(
            field.node.name.node.as_str(),
            "__schema" | "__type" | "__typename"
        ),
        Selection::InlineFragment(inline) => {
            reads_only_schema(doc, &inline.node.selection_set.node, spreads)
        }
        Selection::FragmentSpread(spread) => {
            spreads < MAX_TOP_SPREADS
                && doc
                    .fragments
                    .get(&spread.node.fragment_name.node)
                    .is_some_and(|fragment| {
                        reads_only_schema(doc, &fragment.node.selection_set.node, spreads + 1)
                    })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route_of(query: &str) -> Route {
        let doc = async_graphql::parser::parse_query(query).expect("a valid document");
        route(&doc, None)
    }

    #[test]
    fn only_queries_that_read_only_the_schema_are_introspection() {
        assert_eq!(
            route_of("{ __schema { types { name } } }"),
            Route::Introspection
        );
        assert_eq!(
            route_of("query { ...S } fragment S on Query { __type(name: \"Chat\") { name } }"),
            Route::Introspection
        );
        assert_eq!(
            route_of("{ __schema { types { name } } agents { edges { node { id } } } }"),
            Route::Engine
        );
        assert_eq!(
            route_of("{ ... on Query { __typename me { id } } }"),
            Route::Engine
        );
        // Beside data, introspection is counted all the same.
        let names = (0..9_000)
            .map(|i| format!("a{i}: name "))
            .collect::<String>();
        let mixed = format!(
            "{{ agents {{ __typename }} __schema {{ types {{ fields {{ {names} }} }} }} }}"
        );
        assert!(
            matches!(route_of(&mixed), Route::TooLarge(_)),
            "{:?}",
            route_of(&mixed)
        );
        assert_eq!(route_of("mutation { __typename }"), Route::Engine);
        assert_eq!(route_of("subscription { __typename }"), Route::Engine);
        // Ambiguous: the engine says which operation is missing.
        assert_eq!(
            route_of("query A { __typename } query B { __typename }"),
            Route::Engine
        );
    }

    #[test]
    fn lists_nested_in_lists_are_counted_at_their_longest() {
        // Each list multiplies what it selects by its longest length.
        let nested = "{ __schema { types { fields { args { name } } } } }";
        let doc = async_graphql::parser::parse_query(nested).expect("a valid document");
        let op = selected_operation(&doc, None).expect("one operation");
        assert_eq!(
            weighted_fields(&doc, &op.selection_set.node, longest_list),
            2 + longest::TYPES * (1 + longest::FIELDS * (1 + longest::ARGS))
        );
        assert_eq!(route_of(nested), Route::Introspection);
        // Five levels of `fields { type { … } }` under `types` are past any IDE's query.
        let mut deep = String::from("name");
        for _ in 0..5 {
            deep = format!("fields {{ type {{ {deep} }} }}");
        }
        let Route::TooLarge(resolved) =
            route_of(&format!("{{ __schema {{ types {{ {deep} }} }} }}"))
        else {
            panic!("a query multiplying lists five times is refused");
        };
        assert!(resolved > MAX_RESOLVED);
    }

    /// The longest entry of `list[..][key]`, over every item of `list`.
    fn longest_in(items: &serde_json::Value, key: &str) -> usize {
        items
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| item[key].as_array().map_or(0, Vec::len))
            .max()
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn the_longest_lists_are_the_schemas() {
        let query = "{ __schema { \
            types { fields(includeDeprecated: true) { args { name } } inputFields { name } \
                    enumValues(includeDeprecated: true) { name } interfaces { name } \
                    possibleTypes { name } } \
            directives { args { name } } } }";
        let response = super::super::schema::build_introspection()
            .execute(query)
            .await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let data = response.data.into_json().expect("JSON data");
        let schema = &data["__schema"];
        let types = &schema["types"];
        let fields: Vec<serde_json::Value> = types
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["fields"].as_array())
            .flatten()
            .cloned()
            .collect();
        let measured = [
            types.as_array().map_or(0, Vec::len),
            longest_in(types, "fields"),
            longest_in(&serde_json::Value::from(fields), "args")
                .max(longest_in(&schema["directives"], "args")),
            longest_in(types, "inputFields"),
            longest_in(types, "enumValues"),
            longest_in(types, "interfaces"),
            longest_in(types, "possibleTypes"),
            schema["directives"].as_array().map_or(0, Vec::len),
        ];
        // Equal, not only at least: a bound far above the schema would let through queries
        // that resolve far more than MAX_RESOLVED suggests. Update `longest` with the schema.
        assert_eq!(
            measured,
            [
                longest::TYPES,
                longest::FIELDS,
                longest::ARGS,
                longest::INPUT_FIELDS,
                longest::ENUM_VALUES,
                longest::INTERFACES,
                longest::POSSIBLE_TYPES,
                longest::DIRECTIVES,
            ]
        );
    }
}
