//! Request ids come back exactly as they were sent, whatever the number's form or size.

use insta::assert_snapshot;
use zd_wire::chat::{self, RequestId};

/// Ids whose text a lossy number type would change (`1e2` -> `100.0`, `-0` -> `0`,
/// 2^64 -> `18446744073709552000`), plus a string id for contrast.
const IDS: [&str; 4] = ["1e2", "-0", "18446744073709551616", r#""abc""#];

#[test]
fn ids_round_trip_byte_for_byte_both_directions() {
    let mut report = String::new();
    for id in IDS {
        let request = format!(
            r#"{{"type":"request","id":{id},"payload":{{"query":"query {{ agents {{ id }} }}"}}}}"#
        );
        let chat::ClientFrame::Request(decoded) = chat::ClientFrame::decode(&request).unwrap()
        else {
            panic!("not a request: {request}");
        };
        let sent = decoded.encode().unwrap();
        assert!(sent.contains(&format!(r#""id":{id}"#)), "{sent}");

        // The server answers with the id it was given.
        let answer = chat::Response {
            id: decoded.id.clone(),
            payload: chat::GraphQlResponse::default(),
        }
        .encode()
        .unwrap();
        let chat::ServerFrame::Response(back) = chat::ServerFrame::decode(&answer).unwrap() else {
            panic!("not a response: {answer}");
        };
        assert_eq!(back.id, decoded.id);
        assert_eq!(back.id.to_string(), id);

        report.push_str(&format!("{id}\n  request:  {sent}\n  response: {answer}\n"));
    }
    assert_snapshot!("request_ids_echoed", report);
}

#[test]
fn ids_compare_by_their_text() {
    let n = |t: &str| RequestId::number(t).unwrap();
    assert_eq!(n("100"), RequestId::from(100_u64));
    assert_ne!(n("1e2"), RequestId::from(100_u64));
    assert_ne!(n("-0"), RequestId::from(0_u64));
    assert_eq!(n("-0").as_u64(), None);
    assert_eq!(n("18446744073709551616").as_u64(), None);
    assert_eq!(RequestId::from(u64::MAX).as_u64(), Some(u64::MAX));
    assert_ne!(RequestId::from("abc"), n("1"));
}

#[test]
fn ids_that_are_neither_number_nor_string_are_refused() {
    for id in ["true", "null", "[1]", "{}"] {
        let text = format!(r#"{{"payload":{{"data":null}},"id":{id}}}"#);
        assert!(chat::ServerFrame::decode(&text).is_err(), "{text}");
    }
}
