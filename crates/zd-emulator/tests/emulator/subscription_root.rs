//! The root of a subscription: fragments there deliver as the field they hold, and a document
//! with more than one root field (or none) is refused without taking a slot, as graphql-js
//! refuses it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

fn redact(mut frame: Value) -> Value {
    if let Some(errors) = frame
        .pointer_mut("/payload/errors")
        .and_then(Value::as_array_mut)
    {
        for e in errors {
            e["UUID"] = json!("[uuid]");
        }
    }
    frame
}

/// Subscribes `query` and a plain `message` subscription, has a visitor say something, and
/// gives both DATA payloads.
async fn message_data_of(query: &str, variables: Value) -> (Value, Value) {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let resp = bot
        .request_with(json!({ "query": query, "variables": variables }))
        .await;
    let sub = resp["payload"]["data"]["subscription_id"]
        .as_str()
        .unwrap_or_else(|| panic!("not an ack: {resp}"))
        .to_owned();
    let plain = bot
        .subscribe("subscription { message { node { id content } } }")
        .await;
    bot.go_online().await;
    let channel = visitor(&emu, "Ann").await;
    visitor_says(&emu, &channel, "hi").await;
    let plain = bot.data(&plain).await;
    // What the others are compared with: the plain document did deliver the message.
    assert_eq!(
        plain["payload"]["data"]["message"]["node"]["content"], "hi",
        "{plain}"
    );
    // Each document has its own fan-out, so the two DATA frames come in either order. The
    // bound only turns a subscription that never delivers into a failure, not a hang.
    let data = tokio::time::timeout(Duration::from_secs(30), bot.data(&sub))
        .await
        .unwrap_or_else(|_| panic!("no DATA for {query}"));
    (data["payload"].clone(), plain["payload"].clone())
}

#[tokio::test]
async fn a_fragment_spread_at_the_root_delivers_as_the_field_it_holds() {
    let (data, plain) = message_data_of(
        "subscription { ...M } fragment M on Subscription { message { node { id content } } }",
        json!({}),
    )
    .await;
    assert_eq!(data["data"]["message"]["node"]["content"], "hi", "{data}");
    assert_eq!(data, plain);
}

#[tokio::test]
async fn an_inline_fragment_at_the_root_delivers_as_the_field_it_holds() {
    let (data, plain) = message_data_of(
        "subscription { ... on Subscription { message { node { id } } } ... { message { node { content } } } }",
        json!({}),
    )
    .await;
    assert_eq!(data, plain);
}

#[tokio::test]
async fn a_root_field_skipped_by_a_literal_condition_leaves_the_other() {
    // Variables decide conditions below the root only: graphql-js counts root fields without
    // them (a variable condition at the root is refused, below).
    let (data, plain) = message_data_of(
        "subscription($quiet: Boolean!) { chatActivity @include(if: false) { node { __typename } } \
         ...M @skip(if: false) } fragment M on Subscription { message { node { id content @skip(if: $quiet) } } }",
        json!({ "quiet": false }),
    )
    .await;
    assert_eq!(data, plain);
}

/// Refused documents take no slot: the ten a session may have are all still free after them.
#[tokio::test]
async fn more_than_one_root_field_or_none_is_refused_without_taking_a_slot() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let two = bot
        .request("subscription { message { node { id } } chatActivity { node { __typename } } }")
        .await;
    assert_eq!(error_name(&two), "GRAPHQL_SUB_START_ERROR", "{two}");
    insta::assert_json_snapshot!("two_root_fields", redact(two));

    for query in [
        "subscription { a: message { node { id } } b: message { node { id } } }",
        "subscription Two { ...M chatActivity { node { __typename } } } fragment M on Subscription { message { node { id } } }",
        "subscription { ... on Subscription { message { node { id } } chatActivity { node { __typename } } } }",
        "subscription { message @skip(if: true) { node { id } } }",
        "subscription($q: Boolean = true) { message @include(if: $q) { node { id } } }",
        // Decided without $x (@skip first), but $x is required and not sent.
        "subscription($x: Boolean!) { message @include(if: $x) @skip(if: true) { node { id } } chatActivity { node { __typename } } }",
    ] {
        let resp = bot.request(query).await;
        assert_eq!(
            error_name(&resp),
            "GRAPHQL_SUB_START_ERROR",
            "{query}: {resp}"
        );
        assert_eq!(resp["errorCode"], 400, "{resp}");
    }
    // Two root fields are a validation error, reported ahead of a required variable left out.
    let two = bot
        .request(
            "subscription($x: Boolean!) { message { node { id @include(if: $x) } } chatActivity { node { __typename } } }",
        )
        .await;
    assert_eq!(
        two["payload"]["errors"][0]["message"],
        "Anonymous Subscription must select only one top level field.",
        "{two}"
    );
    let named = bot
        .request("subscription Two { a: message { node { id } } b: message { node { id } } }")
        .await;
    assert_eq!(
        named["payload"]["errors"][0]["message"],
        "Subscription \"Two\" must select only one top level field."
    );

    for _ in 0..10 {
        bot.subscribe("subscription { message { node { id } } }")
            .await;
    }
    let resp = bot
        .request("subscription { message { node { id } } }")
        .await;
    assert_eq!(error_name(&resp), "MAX_SUB", "{resp}");
    let counters = session_counters(&emu, &bot.session_id).await;
    assert_eq!(counters["subscriptions_started"], 10, "{counters}");
}
