//! Runs all four decoders over deterministic mutations of every fixture, so the decoders see
//! hostile input on stable Rust in every CI run (the cargo-fuzz targets go further on nightly).
//!
//! Each mutated frame must decode to `Ok` or `Err` without panicking, and any `Ok` must encode,
//! and encoding must be a fixed point: decode(encode(frame)) encodes to the same text. The chat
//! splitters (`split_data`, `split_response`, `payload_data`) must agree with the full decoder
//! on every frame they accept.

use zd_wire::{DecodeLimits, ErrorKind, chat, realtime};

use crate::corpus;

const KEYS: &[&str] = &[
    "sig",
    "id",
    "type",
    "payload",
    "subscription_id",
    "error_code",
    "errorCode",
    "reason",
    "data",
    "errors",
    "body",
    "name",
    "UUID",
    "message",
    "topic",
    "action",
    "window",
    "department_id",
    "content",
    "status_code",
    "query",
    "variables",
    "operationName",
];

const VALUES: &[&str] = &[
    "\"DATA\"",
    "\"EOS\"",
    "\"PONG\"",
    "\"PING\"",
    "\"request\"",
    "\"stop_subscription\"",
    "\"update\"",
    "\"subscribe\"",
    "\"30\"",
    "null",
    "true",
    "[]",
    "{}",
    "\"\"",
    "\"\\u0000\"",
];

const NUMBERS: &[&str] = &[
    "1e400",
    "-1e400",
    "18446744073709551616",
    "-9223372036854775809",
    "0.5",
    "-0",
    "65536",
    "4294967296",
    "-1",
    "1e2",
];

/// Applies `check` to every decoder, and the splitters' agreement check; gives how many
/// splitters accepted the text.
fn exercise(text: &str) -> usize {
    check("chat client", text, |t| {
        chat::ClientFrame::decode(t).map(|f| f.encode().map(|e| (f.kind(), e)))
    });
    check("chat server", text, |t| {
        chat::ServerFrame::decode(t).map(|f| f.encode().map(|e| (f.kind(), e)))
    });
    check("realtime client", text, |t| {
        realtime::ClientFrame::decode(t).map(|f| f.encode().map(|e| (f.kind(), e)))
    });
    check("realtime server", text, |t| {
        realtime::ServerFrame::decode(t).map(|f| f.encode().map(|e| (f.kind(), e)))
    });
    splitters_agree(text)
}

/// The text as a JSON value; `None` when not JSON, or JSON only a raw read takes (a number
/// past f64's range).
fn json(text: &str) -> Option<serde_json::Value> {
    serde_json::from_str(text).ok()
}

/// Whatever a splitter accepts, the full decoder reads as the same frame kind with the same id
/// and the same payload or `data`, or refuses only because that span is not valid JSON. Gives
/// how many splitters accepted the text.
fn splitters_agree(text: &str) -> usize {
    let limits = DecodeLimits::new();
    let mut accepted = 0;
    if let Some(parts) = chat::split_data(text, &limits) {
        accepted += 1;
        match chat::ServerFrame::decode(text) {
            Ok(chat::ServerFrame::Data(data)) => {
                assert_eq!(data.subscription_id, parts.subscription_id, "{text}");
                assert_eq!(json(data.payload.get()), json(parts.payload), "{text}");
                assert_eq!(data.payload.get(), parts.payload, "{text}");
                payload_agrees(parts.payload, data.response().ok());
            }
            Ok(other) => panic!("split_data took a {} frame: {text}", other.kind()),
            Err(_) => assert!(
                json(parts.payload).is_none(),
                "the decoder refused a frame whose payload is valid: {text}"
            ),
        }
    }
    if let Some(parts) = chat::split_response(text, &limits) {
        accepted += 1;
        match chat::ServerFrame::decode(text) {
            Ok(chat::ServerFrame::Response(response)) => {
                assert_eq!(response.id.as_u64(), Some(parts.id), "{text}");
                assert!(response.payload.errors.is_none(), "{text}");
                assert!(response.payload.extensions.is_none(), "{text}");
                let data = response.payload.data.map(|d| d.get());
                assert_eq!(data.and_then(json), json(parts.data), "{text}");
                assert_eq!(data, Some(parts.data), "{text}");
            }
            Ok(chat::ServerFrame::SubscriptionAck(ack)) => {
                assert_eq!(ack.id.as_u64(), Some(parts.id), "{text}");
                let data = json(parts.data).unwrap_or_else(|| panic!("an ack's data: {text}"));
                assert_eq!(data["subscription_id"], *ack.subscription_id, "{text}");
            }
            Ok(other) => panic!("split_response took a {} frame: {text}", other.kind()),
            Err(_) => assert!(
                json(parts.data).is_none(),
                "the decoder refused a frame whose data is valid: {text}"
            ),
        }
    }
    // The text as a DATA payload on its own.
    let raw = serde_json::from_str::<&zd_wire::RawValue>(text).ok();
    accepted
        + usize::from(payload_agrees(
            text,
            raw.and_then(|r| chat::GraphQlResponse::from_raw(r).ok()),
        ))
}

/// Whatever `payload_data` takes from `payload`, the decoder's reading of the same payload
/// (`None` when it refused it) has as its `data`, and nothing else.
/// Gives whether `payload_data` accepted it.
fn payload_agrees(payload: &str, decoded: Option<chat::GraphQlResponse<'_>>) -> bool {
    let Some(data) = chat::payload_data(payload) else {
        return false;
    };
    match decoded {
        Some(response) => {
            assert!(response.errors.is_none(), "{payload}");
            assert!(response.extensions.is_none(), "{payload}");
            let decoded = response.data.map(|d| d.get());
            assert_eq!(decoded.and_then(json), json(data), "{payload}");
            assert_eq!(decoded, Some(data), "{payload}");
        }
        None => assert!(
            json(data).is_none(),
            "the decoder refused a payload whose data is valid: {payload}"
        ),
    }
    true
}

type Decoded = Result<Result<(&'static str, String), zd_wire::Error>, zd_wire::Error>;

fn check(decoder: &str, text: &str, run: impl Fn(&str) -> Decoded) {
    let Ok(encoded) = run(text) else { return };
    let (_, first) =
        encoded.unwrap_or_else(|e| panic!("{decoder}: decoded but cannot encode {text:?}: {e}"));
    let (_, second) = run(&first)
        .unwrap_or_else(|e| panic!("{decoder}: own output {first:?} does not decode: {e}"))
        .unwrap();
    assert_eq!(
        first, second,
        "{decoder}: encoding of {text:?} is not a fixed point"
    );
}

fn mutations(text: &str) -> Vec<String> {
    let text = text.trim_end();
    let mut out = Vec::new();
    // Truncations at every character boundary.
    out.extend(
        (0..text.len())
            .filter(|&i| text.is_char_boundary(i))
            .map(|i| text[..i].to_owned()),
    );
    // Single-byte replacements with structurally significant ASCII.
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if !b.is_ascii() {
            continue;
        }
        for &r in b"\"}]\\0 " {
            if r != b {
                let mut m = bytes.to_vec();
                m[i] = r;
                out.push(String::from_utf8(m).unwrap());
            }
        }
    }
    // Key swaps: each known key renamed to each other known key (first occurrence).
    for from in KEYS {
        let quoted = format!("\"{from}\"");
        if let Some(pos) = text.find(&quoted) {
            for to in KEYS {
                if to != from {
                    let mut m = text.to_owned();
                    m.replace_range(pos..pos + quoted.len(), &format!("\"{to}\""));
                    out.push(m);
                }
            }
            // A duplicated key.
            let mut m = text.to_owned();
            m.insert_str(pos, &format!("{quoted}:1,"));
            out.push(m);
        }
    }
    // Value swaps: every value after a key replaced with typed oddities.
    for (pos, _) in text.match_indices("\":") {
        let start = pos + 2;
        let end = value_end(text, start);
        for v in VALUES.iter().chain(NUMBERS) {
            let mut m = text.to_owned();
            m.replace_range(start..end, v);
            out.push(m);
        }
    }
    // Deep nesting around and inside the frame.
    for depth in [127, 128, 129, 20_000] {
        out.push(format!("{}{text}{}", "[".repeat(depth), "]".repeat(depth)));
        out.push(format!(
            "{}{text}{}",
            "{\"payload\":".repeat(depth),
            "}".repeat(depth)
        ));
        out.push(format!(
            "{{\"sig\":\"DATA\",\"subscription_id\":\"s\",\"payload\":{}1{}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        ));
        out.push(format!(
            "{{\"content\":{{\"topic\":\"chats\",\"type\":\"update\",\"data\":{{\"missed_chats\":{}1{}}}}},\"status_code\":200}}",
            "[".repeat(depth),
            "]".repeat(depth)
        ));
    }
    out
}

/// End of a scalar or container value starting at `start` (a rough scanner is enough here:
/// mutations only need to land somewhere plausible).
fn value_end(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0_i32;
    let mut in_string = false;
    let mut i = start;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => {
                    in_string = false;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => return i,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                b',' if depth == 0 => return i,
                _ => {}
            }
        }
        i += 1;
    }
    bytes.len().min(start.max(i))
}

#[test]
fn decoders_survive_a_mutated_corpus() {
    let mut count = 0_usize;
    let mut split = 0_usize;
    for fixture in corpus::all() {
        exercise(&fixture.text);
        for mutated in mutations(&fixture.text) {
            split += exercise(&mutated);
            count += 1;
        }
    }
    assert!(count > 10_000, "only {count} mutations");
    // Most mutations break a frame's outline; the rest must still give the splitters work.
    assert!(
        split > 1_000,
        "the splitters accepted only {split} mutated frames"
    );
}

#[test]
fn oversized_frames_are_refused_before_parsing() {
    for fixture in corpus::all() {
        let text = fixture.text.trim_end();
        let limits = DecodeLimits::new().with_max_frame_bytes(text.len() - 1);
        let expected = ErrorKind::FrameTooLarge {
            len: text.len(),
            max: text.len() - 1,
        };
        let errors = [
            chat::ClientFrame::decode_with(text, &limits).err(),
            chat::ServerFrame::decode_with(text, &limits).err(),
            realtime::ClientFrame::decode_with(text, &limits).err(),
            realtime::ServerFrame::decode_with(text, &limits).err(),
        ];
        for error in errors {
            assert_eq!(error.map(|e| e.kind().clone()), Some(expected.clone()));
        }
        let exact = DecodeLimits::new().with_max_frame_bytes(text.len());
        assert!(
            chat::ServerFrame::decode_with(text, &exact).is_ok()
                || fixture.protocol != "chat"
                || fixture.entry.decoder != "server"
        );
    }
    let huge = format!(
        "{{\"sig\":\"PING\",\"payload\":\"{}\"}}",
        "x".repeat(DecodeLimits::DEFAULT_MAX_FRAME_BYTES)
    );
    let error = chat::ClientFrame::decode(&huge).unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::FrameTooLarge { .. }));
}

#[test]
fn malformed_known_frames_are_typed_errors() {
    let cases = [
        (
            r#"{"sig":"DATA","payload":{}}"#,
            ErrorKind::MissingField {
                frame: "DATA",
                field: "subscription_id",
            },
        ),
        (
            r#"{"sig":"DATA","subscription_id":7,"payload":{}}"#,
            ErrorKind::InvalidField {
                frame: "DATA",
                field: "subscription_id",
            },
        ),
        (
            r#"{"sig":"DATA","subscription_id":"s"}"#,
            ErrorKind::MissingField {
                frame: "DATA",
                field: "payload",
            },
        ),
        (
            r#"{"id":[1],"payload":{}}"#,
            ErrorKind::InvalidField {
                frame: "response",
                field: "id",
            },
        ),
        (
            r#"{"id":1,"payload":[]}"#,
            ErrorKind::InvalidField {
                frame: "response",
                field: "payload",
            },
        ),
        (r#"{"sig":"DATA""#, ErrorKind::Syntax),
    ];
    for (text, kind) in cases {
        let text = text.replacen('{', r#"{"token":"s3cr3t","#, 1);
        let text = text.as_str();
        let error = chat::ServerFrame::decode(text)
            .map(|f| f.kind())
            .expect_err(text);
        assert_eq!(error.kind(), &kind, "{text}");
        assert!(error.excerpt().is_some_and(|e| text.starts_with(e)));
        assert!(
            !format!("{error:?}").contains("s3cr3t"),
            "Debug must not print the frame"
        );
        assert!(
            !error.to_string().contains("s3cr3t"),
            "Display must not print the frame"
        );
    }
    // An error code still makes the frame an error without a payload: it answers its request
    // or ends its subscription, as a `null` payload does.
    let error = chat::ServerFrame::decode(r#"{"token":"s3cr3t","errorCode":400,"id":1}"#);
    assert!(
        matches!(error, Ok(chat::ServerFrame::Error(ref e)) if e.status() == Some(400) && e.id == Some(chat::RequestId::from(1_u64))),
        "{error:?}"
    );
    let error =
        chat::ServerFrame::decode(r#"{"sig":"DATA","subscription_id":"s","error_code":500}"#);
    assert!(
        matches!(error, Ok(chat::ServerFrame::DataError(ref e)) if e.status() == Some(500) && e.subscription_id == "s"),
        "{error:?}"
    );
    let unknown = chat::ServerFrame::decode(r#"{"sig":"NEW","x":1}"#).unwrap();
    assert_eq!(unknown.encode().unwrap(), r#"{"sig":"NEW","x":1}"#);
    let not_object = chat::ServerFrame::decode(" [1,2] ").unwrap();
    assert_eq!(not_object.kind(), "unknown");
    assert_eq!(not_object.encode().unwrap(), "[1,2]");
}
