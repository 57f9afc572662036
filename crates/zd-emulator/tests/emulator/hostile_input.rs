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
