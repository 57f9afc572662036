//! Client-supplied numbers at their extremes: cursors and page sizes are answered (or
//! refused), never a panic that kills the socket.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::common::*;

fn cursor(offset: &str) -> String {
    STANDARD.encode(format!("arrayconnection:{offset}"))
}

#[tokio::test]
async fn extreme_cursors_and_page_sizes_page_without_killing_the_socket() {
    // Hundreds of requests: without the per-second limit, so none is refused for rate.
    let emu = emulator_with(|l| l.requests_per_second = None).await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    visitor(&emu, "Ann").await;
    let offsets = [
        i64::MAX.to_string(),
        i64::MIN.to_string(),
        "-2".to_owned(),
        "-1".to_owned(),
        "0".to_owned(),
        "1000000".to_owned(),
    ];
    let sizes = [
        String::new(),
        format!("first: {}", i32::MAX),
        format!("last: {}", i32::MAX),
        format!("first: {}, last: {}", i32::MAX, i32::MAX),
        "first: 0, last: 0".to_owned(),
    ];
    for field in ["agents", "departments", "channels"] {
        for offset in &offsets {
            for size in &sizes {
                let c = cursor(offset);
                for args in [
                    format!("after: \"{c}\""),
                    format!("before: \"{c}\""),
                    format!("after: \"{c}\", before: \"{c}\""),
                ] {
                    let sep = if size.is_empty() { "" } else { ", " };
                    let query = format!(
                        "{{ {field}({args}{sep}{size}) {{ edges {{ node {{ id }} cursor }} \
                         pageInfo {{ hasNextPage hasPreviousPage }} }} }}"
                    );
                    let resp = bot.request(&query).await;
                    let edges = &resp["payload"]["data"][field]["edges"];
                    assert!(edges.is_array(), "{query}: {resp}");
                }
            }
        }
    }
    // Past the end: nothing; before the start: everything.
    let resp = bot
        .request(&format!(
            "{{ departments(after: \"{}\", first: {}) {{ edges {{ node {{ id }} }} }} }}",
            cursor(&i64::MAX.to_string()),
            i32::MAX
        ))
        .await;
    assert_eq!(resp["payload"]["data"]["departments"]["edges"], json!([]));
    let all = bot
        .request("{ departments { edges { node { id } } } }")
        .await;
    let resp = bot
        .request(&format!(
            "{{ departments(after: \"{}\") {{ edges {{ node {{ id }} }} }} }}",
            cursor(&i64::MIN.to_string())
        ))
        .await;
    assert_eq!(
        resp["payload"]["data"]["departments"]["edges"],
        all["payload"]["data"]["departments"]["edges"]
    );
    bot.ping(json!("still here")).await;
}

/// `query { ...F0 }` where each fragment spreads the next four times: 4^15 fields once
/// expanded, from a few hundred bytes.
fn fragment_bomb() -> String {
    let mut query = String::from("query { ...F0 }");
    for i in 0..15 {
        let next = format!("...F{} ", i + 1).repeat(4);
        query.push_str(&format!(" fragment F{i} on Query {{ {next} }}"));
    }
    query.push_str(" fragment F15 on Query { __typename }");
    query
}

#[tokio::test]
async fn a_fragment_bomb_is_refused_before_the_engine_walks_it() {
    let emu = emulator().await;
    // Over the socket: an error answer, and the socket goes on.
    let mut bot = Agent::connect(&emu, "Bot").await;
    let answer = bot.request(&fragment_bomb()).await;
    assert_eq!(error_name(&answer), "GRAPHQL_EXEC_ERROR", "{answer}");
    assert!(answer.to_string().contains("fragments"), "{answer}");
    assert_eq!(bot.ping(json!("still here")).await["payload"], "still here");
    // Over HTTP, where no session or token is needed to send it.
    let url = format!("{}/graphql/request", emu.base_url());
    let (status, body) = http("POST", &url, Some(json!({ "query": fragment_bomb() }))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"][0]["name"], "GRAPHQL_EXEC_ERROR", "{body}");
}

#[tokio::test]
async fn a_long_chain_of_fragments_is_refused_not_followed_off_the_stack() {
    let emu = emulator().await;
    // Each fragment spreads the next: one field in all, 1.9 MB of text, and fifty thousand
    // levels for whatever follows spreads recursively (it overflowed the emulator's stack).
    let links = 50_000;
    let mut query = String::from("query { ...F0 }");
    for i in 0..links {
        query.push_str(&format!(" fragment F{i} on Query {{ ...F{} }}", i + 1));
    }
    query.push_str(&format!(" fragment F{links} on Query {{ __typename }}"));
    refused_and_still_there(&emu, &[query], "fragments").await;
}

/// Each of `queries`, sent over HTTP, is refused with an error naming `cause`, and the
/// emulator still answers afterwards (a stack overflow would have aborted it).
async fn refused_and_still_there(emu: &zd_emulator::Emulator, queries: &[String], cause: &str) {
    let url = format!("{}/graphql/request", emu.base_url());
    for query in queries {
        let (status, body) = http("POST", &url, Some(json!({ "query": query }))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["errors"][0]["name"], "GRAPHQL_EXEC_ERROR", "{body}");
        assert!(body.to_string().contains(cause), "{body}");
    }
    let (status, body) = http("POST", &url, Some(json!({ "query": "{ __typename }" }))).await;
    assert_eq!(
        (status, &body["data"]["__typename"]),
        (200, &json!("Query")),
        "{body}"
    );
}

#[tokio::test]
async fn a_chain_of_deep_fragments_is_refused_not_followed_off_the_stack() {
    let emu = emulator().await;
    // Each fragment nests 62 levels (within the bracket bound) and spreads the next: ten
    // thousand levels once followed, from 64 KB, within the fragment count too.
    let chain = |links: usize| {
        let mut query = String::from("query { ...F0 }");
        for i in 0..links {
            let open = "a { ".repeat(62);
            let close = "} ".repeat(62);
            query.push_str(&format!(
                " fragment F{i} on Query {{ {open} ...F{} {close} }}",
                i + 1
            ));
        }
        query.push_str(&format!(" fragment F{links} on Query {{ __typename }}"));
        query
    };
    refused_and_still_there(&emu, &[chain(158), chain(255)], "spread out").await;
}

#[tokio::test]
async fn a_runaway_nesting_is_refused_with_its_cause() {
    let emu = emulator().await;
    let deep = |open: &str, close: &str| {
        format!(
            "{{ agents(after: {}1{}) {{ edges {{ node {{ id }} }} }} }}",
            open.repeat(50_000),
            close.repeat(50_000)
        )
    };
    // Over HTTP, where no session or token is needed to send it.
    let url = format!("{}/graphql/request", emu.base_url());
    let (status, body) = http("POST", &url, Some(json!({ "query": deep("[", "]") }))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"][0]["name"], "GRAPHQL_EXEC_ERROR", "{body}");
    assert!(body.to_string().contains("nests"), "{body}");
    // Over the socket: an error answer naming the cause, and the socket goes on.
    let mut bot = Agent::connect(&emu, "Bot").await;
    let selections = format!("{}{}", "{ a ".repeat(50_000), "}".repeat(50_000));
    for query in [deep("{a: ", "}"), selections] {
        let answer = bot.request(&query).await;
        assert_eq!(error_name(&answer), "GRAPHQL_EXEC_ERROR", "{answer}");
        assert!(answer.to_string().contains("nests"), "{answer}");
    }
    assert_eq!(bot.ping(json!("still here")).await["payload"], "still here");
}
