//! A GraphQL IDE pointed at `/graphql/request` loads the schema, as the getting-started guide
//! suggests, and introspection cannot be made to multiply without bound.

use serde_json::{Value, json};

use crate::common::{Agent, emulator, error_name, http};

/// The query graphql-js 16's `getIntrospectionQuery()` builds (what GraphiQL and most IDEs
/// send): `TypeRef` nests `ofType` seven times, 13 levels in all, past the documented 11.
const IDE_QUERY: &str = r"
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description
    args { ...InputValue }
    type { ...TypeRef }
    isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}";

/// The names of the schema's own types (not the built-in scalars or the introspection types).
fn own_types(schema: &Value) -> Vec<String> {
    let mut names: Vec<String> = schema["types"]
        .as_array()
        .expect("types")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .filter(|n| {
            !n.starts_with("__") && !["String", "Int", "Float", "Boolean", "ID"].contains(n)
        })
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// The type names declared in `schemas/chat/chat.graphql`.
fn declared_types() -> Vec<String> {
    let sdl = include_str!("../../../../schemas/chat/chat.graphql");
    let doc = async_graphql::parser::parse_schema(sdl).expect("the schema file parses");
    let mut names: Vec<String> = doc
        .definitions
        .iter()
        .filter_map(|d| match d {
            async_graphql::parser::types::TypeSystemDefinition::Type(t) => {
                Some(t.node.name.node.to_string())
            }
            _ => None,
        })
        .filter(|n| !["String", "Int", "Float", "Boolean", "ID"].contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn an_ide_loads_the_whole_schema_over_http_without_a_token() {
    let emu = emulator().await;
    let (status, body) = http(
        "POST",
        &emu.graphql_url(),
        Some(json!({ "query": IDE_QUERY, "operationName": "IntrospectionQuery" })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let schema = &body["data"]["__schema"];
    assert_eq!(schema["queryType"]["name"], "Query");
    assert_eq!(schema["mutationType"]["name"], "Mutation");
    assert_eq!(schema["subscriptionType"]["name"], "Subscription");
    assert_eq!(own_types(schema), declared_types());
    // The nesting the depth limit would have cut: `[Chat!]!`-style wrappers resolve in full.
    let query = schema["types"]
        .as_array()
        .expect("types")
        .iter()
        .find(|t| t["name"] == "Query")
        .expect("the Query type");
    assert!(
        query["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .any(|f| f["name"] == "channels" && f["type"]["kind"].is_string()),
        "{query}"
    );
}

#[tokio::test]
async fn an_ide_loads_the_schema_over_the_socket_too() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let resp = bot.request(IDE_QUERY).await;
    assert!(resp["payload"].get("errors").is_none(), "{resp}");
    let schema = &resp["payload"]["data"]["__schema"];
    assert_eq!(own_types(schema), declared_types());
}

#[tokio::test]
async fn introspection_that_multiplies_lists_is_refused() {
    let emu = emulator().await;
    // `fields { type { … } }` five times under `types`: each level multiplies by the longest
    // field list, far past anything an IDE asks.
    let mut nested = String::from("name");
    for _ in 0..5 {
        nested = format!("fields {{ type {{ {nested} }} }}");
    }
    let query = format!("{{ __schema {{ types {{ {nested} }} }} }}");
    refused_as_introspection_over_http(&emu, &query).await;

    let mut bot = Agent::connect(&emu, "Bot").await;
    let resp = bot.request(&query).await;
    assert_eq!(error_name(&resp), "GRAPHQL_EXEC_ERROR", "{resp}");
}

#[tokio::test]
async fn introspection_beside_data_is_counted_all_the_same() {
    let emu = emulator().await;
    // Depth 4, under 10,000 fields: passes every other limit, yet each alias runs once per
    // field of every type.
    let names: String = (0..9_000).map(|i| format!("a{i}: name ")).collect();
    let query =
        format!("{{ agents {{ __typename }} __schema {{ types {{ fields {{ {names} }} }} }} }}");
    refused_as_introspection_over_http(&emu, &query).await;
}

/// `query`, sent over HTTP, is refused whole for what its introspection could resolve.
async fn refused_as_introspection_over_http(emu: &zd_emulator::Emulator, query: &str) {
    let (status, body) = http("POST", &emu.graphql_url(), Some(json!({ "query": query }))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"][0]["name"], "GRAPHQL_EXEC_ERROR", "{body}");
    let message = body["errors"][0]["message"].as_str().expect("a message");
    assert!(message.contains("introspection"), "{message}");
    assert!(body["data"].is_null(), "{body}");
}

#[tokio::test]
async fn a_query_reading_data_keeps_the_documented_depth_even_beside_introspection() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let deep_schema = "__schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } }";
    let resp = bot
        .request(&format!(
            "{{ {deep_schema} agents {{ edges {{ node {{ id }} }} }} }}"
        ))
        .await;
    assert_eq!(error_name(&resp), "GRAPHQL_EXEC_ERROR", "{resp}");
    let message = resp["payload"]["errors"][0]["message"]
        .as_str()
        .expect("a message");
    assert!(message.contains("deep"), "{message}");
    // The same selection alone reads only the schema and is answered.
    let resp = bot.request(&format!("{{ {deep_schema} }}")).await;
    assert!(resp["payload"]["data"]["__schema"].is_object(), "{resp}");
}
