//! Bounds that keep an emulator's memory in check when a bot sends large arguments: a tag's
//! length, the text a chat's log keeps, and the text one answer's logs may carry.

use serde_json::{Value, json};
use zd_emulator::state::MAX_TAG_LEN;

use crate::common::*;

/// The text of one large message: under the 256 KiB frame cap with the request around it.
const BIG: usize = 200_000;

async fn add_tags(bot: &mut Agent, channel: &str, tags: &[String]) -> Value {
    bot.request_with(json!({
        "query": "mutation($c: ID!, $t: [String!]!) { addTags(channel_id: $c, tags: $t) { success } }",
        "variables": { "c": channel, "t": tags },
    }))
    .await
}

fn error_message(resp: &Value) -> &str {
    resp["payload"]["errors"][0]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error: {resp}"))
}

/// The keys of the first error of `resp`: the shape of a refusal, whatever its message.
fn error_keys(resp: &Value) -> Vec<String> {
    let mut keys: Vec<String> = resp["payload"]["errors"][0]
        .as_object()
        .unwrap_or_else(|| panic!("not an error: {resp}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn a_tag_longer_than_the_bound_is_refused_as_an_invalid_tag() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let channel = served_channel(&emu, &mut bot).await;
    let invalid = add_tags(&mut bot, &channel, &["bad tag!".into()]).await;
    assert_eq!(error_name(&invalid), "GRAPHQL_EXEC_ERROR", "{invalid}");

    let longest = "a".repeat(MAX_TAG_LEN);
    for long in ["b".repeat(MAX_TAG_LEN + 1), "c".repeat(BIG)] {
        let resp = add_tags(&mut bot, &channel, &[longest.clone(), long]).await;
        assert_eq!(error_name(&resp), "GRAPHQL_EXEC_ERROR", "{resp}");
        assert_eq!(error_keys(&resp), error_keys(&invalid), "{resp}");
        let message = error_message(&resp);
        assert!(message.contains("at most 140"), "{message}");
        // The refusal shows the start of the tag, not all of it.
        assert!(message.len() < 400, "{} bytes", message.len());
    }
    // None of a refused request's tags was added; the longest allowed one is.
    assert_eq!(transcript(&emu, &channel).await["tags"], json!([]));
    let resp = add_tags(&mut bot, &channel, std::slice::from_ref(&longest)).await;
    assert_eq!(
        resp["payload"]["data"]["addTags"]["success"], true,
        "{resp}"
    );
    assert_eq!(transcript(&emu, &channel).await["tags"], json!([longest]));
}

/// Has the Bot serve a chat of Ann's and send it `count` messages of [`BIG`] bytes, with
/// `msg_id`s `big0`, `big1`...; returns the channel id.
async fn chat_of_big_messages(
    emu: &zd_emulator::Emulator,
    bot: &mut Agent,
    count: usize,
) -> String {
    let channel = served_channel(emu, bot).await;
    for i in 0..count {
        let resp = send_big(bot, &channel, &format!("big{i}")).await;
        assert_eq!(
            resp["payload"]["data"]["sendMessage"]["success"], true,
            "{resp}"
        );
    }
    channel
}

async fn send_big(bot: &mut Agent, channel: &str, msg_id: &str) -> Value {
    bot.request_with(json!({
        "query": "mutation($c: ID!, $m: String!, $i: String) { sendMessage(channel_id: $c, msg: $m, msg_id: $i) { success } }",
        "variables": { "c": channel, "m": "x".repeat(BIG), "i": msg_id },
    }))
    .await
}

/// The `msg_id`s of the messages a chat's log keeps, oldest first (joins show as `null`).
async fn kept_msg_ids(bot: &mut Agent) -> Vec<Value> {
    let resp = bot
        .request("{ channels { edges { node { ... on VisitorChannel { logs { edges { node { ... on Message { msg_id } } } } } } } } }")
        .await;
    resp["payload"]["data"]["channels"]["edges"][0]["node"]["logs"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{resp}"))
        .iter()
        .map(|e| e["node"]["msg_id"].clone())
        .collect()
}

/// A chat keeps at most 4 MiB of message text: 20 of the 200 kB messages (21 would pass it),
/// the newest, and older entries fall out as they do past the entry bound.
#[tokio::test]
async fn a_chat_keeps_a_bounded_amount_of_message_text() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let channel = chat_of_big_messages(&emu, &mut bot, 30).await;
    let kept = kept_msg_ids(&mut bot).await;
    let newest: Vec<Value> = (10..30).map(|i| json!(format!("big{i}"))).collect();
    assert_eq!(kept, newest);

    // A kept msg_id is still a duplicate; one that fell out makes a new message.
    send_big(&mut bot, &channel, "big29").await;
    send_big(&mut bot, &channel, "big0").await;
    let kept = kept_msg_ids(&mut bot).await;
    assert_eq!(kept.len(), 20);
    assert_eq!(kept.last(), Some(&json!("big0")));
    assert_eq!(kept.first(), Some(&json!("big11")));
}

/// Logs whose text passes the answer cap are refused by the log budget, before the answer is
/// built, with the log budget's error; one chat's whole log still fits in an answer.
#[tokio::test]
async fn logs_carrying_more_text_than_an_answer_holds_spend_the_log_budget() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    chat_of_big_messages(&emu, &mut bot, 20).await;
    let logs = |alias: &str| {
        format!("{alias}: logs {{ edges {{ node {{ ... on Message {{ content }} }} }} }}")
    };
    let query = |aliases: &[&str]| {
        let fields: Vec<String> = aliases.iter().map(|a| logs(a)).collect();
        format!(
            "{{ channels {{ edges {{ node {{ ... on VisitorChannel {{ {} }} }} }} }} }}",
            fields.join(" ")
        )
    };

    let resp = bot.request(&query(&["a"])).await;
    let edges = resp["payload"]["data"]["channels"]["edges"][0]["node"]["a"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", error_message(&resp)))
        .len();
    assert_eq!(edges, 23, "two joins, the greeting and twenty messages");

    // Five copies of 4 MB of text: 20 MB, past the 16 MiB answer cap.
    let resp = bot.request(&query(&["a", "b", "c", "d", "e"])).await;
    assert_eq!(error_name(&resp), "GRAPHQL_EXEC_ERROR");
    assert_eq!(resp["payload"]["errors"].as_array().map(Vec::len), Some(1));
    let message = error_message(&resp);
    assert!(message.contains("50000 chat log entries"), "{message}");
}

/// `current_tags` of a message's sender, read only when the document asks for it now, is
/// still the chat's tags as they are when the message is delivered.
#[tokio::test]
async fn a_visitors_current_tags_are_still_answered_through_message_from() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let channel = served_channel(&emu, &mut bot).await;
    let with_tags = bot
        .subscribe("subscription { message { node { content from { __typename display_name ... on Visitor { current_tags } } } } }")
        .await;
    let without = bot.subscribe(MESSAGE_SUB).await;
    let resp = add_tags(&mut bot, &channel, &["vip".into(), "order-42".into()]).await;
    assert_eq!(
        resp["payload"]["data"]["addTags"]["success"], true,
        "{resp}"
    );
    visitor_says(&emu, &channel, "hello").await;

    let frame = bot.data(&with_tags).await;
    let from = &frame["payload"]["data"]["message"]["node"]["from"];
    assert_eq!(from["__typename"], "Visitor", "{frame}");
    assert_eq!(from["current_tags"], json!(["vip", "order-42"]), "{frame}");
    let frame = bot.data(&without).await;
    let node = &frame["payload"]["data"]["message"]["node"];
    assert_eq!(node["content"], "hello", "{frame}");
    assert_eq!(node["from"]["display_name"], "Ann", "{frame}");
}
