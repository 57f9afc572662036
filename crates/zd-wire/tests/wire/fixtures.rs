//! Every fixture decodes to its expected kind and re-encodes to equivalent JSON.

use std::collections::BTreeSet;

use serde_json::Value;
use zd_wire::{
    chat::{self, ErrorName, ErrorPayload, RequestId, RetryPolicy},
    realtime::{self, Family, Metric, MetricValue, Window},
};

use crate::corpus::{self, decode_and_encode};

#[test]
fn every_fixture_decodes_to_its_kind_and_re_encodes_equivalently() {
    let fixtures = corpus::all();
    assert!(fixtures.len() >= 20, "only {} fixtures", fixtures.len());
    for f in &fixtures {
        let name = format!("{}/{}", f.protocol, f.entry.file);
        assert!(!f.entry.source.is_empty(), "{name} has no source");
        let (kind, encoded) = decode_and_encode(f.protocol, &f.entry.decoder, &f.text)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(kind, f.entry.kind, "{name}");
        let original: Value = serde_json::from_str(&f.text).unwrap();
        let again: Value = serde_json::from_str(&encoded).unwrap();
        assert_eq!(original, again, "{name} re-encoded differently:\n{encoded}");
    }
}

#[test]
fn every_fixture_file_is_in_a_manifest() {
    for protocol in ["chat", "realtime"] {
        let listed: BTreeSet<String> = corpus::load(protocol)
            .into_iter()
            .map(|f| f.entry.file)
            .collect();
        let dir = corpus::fixtures_dir().join(protocol);
        let mut on_disk = BTreeSet::new();
        for sub in std::fs::read_dir(&dir).unwrap() {
            let sub = sub.unwrap().path();
            if sub.is_dir() {
                for file in std::fs::read_dir(&sub).unwrap() {
                    let file = file.unwrap().path();
                    let rel = file
                        .strip_prefix(&dir)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    on_disk.insert(rel);
                }
            }
        }
        assert_eq!(listed, on_disk, "{protocol}: manifest and files differ");
    }
}

fn fixture(protocol: &'static str, file: &str) -> String {
    corpus::load(protocol)
        .into_iter()
        .find(|f| f.entry.file == file)
        .unwrap()
        .text
}

#[test]
fn real_data_frame_routes_by_subscription_id_and_keeps_payload_raw() {
    let text = fixture("chat", "server/data_message_f1.json");
    let chat::ServerFrame::Data(data) = chat::ServerFrame::decode(&text).unwrap() else {
        panic!("not DATA");
    };
    assert_eq!(data.subscription_id, "a1gf13bjz13");
    assert!(matches!(
        data.subscription_id,
        std::borrow::Cow::Borrowed(_)
    ));
    assert!(data.payload.get().starts_with(r#"{"data":{"message""#));
    let response = data.response().unwrap();
    let value: Value = response.decode_data().unwrap().unwrap();
    assert_eq!(value["message"]["node"]["from"]["__typename"], "Visitor");
    assert_eq!(value["message"]["node"]["content"], "hi");
}

#[test]
fn ack_and_ids_are_echoed_with_their_json_type() {
    let ack = fixture("chat", "server/subscription_ack.json");
    let chat::ServerFrame::SubscriptionAck(ack) = chat::ServerFrame::decode(&ack).unwrap() else {
        panic!("not an ack");
    };
    assert_eq!(ack.id, RequestId::from(456_u64));
    assert_eq!(ack.subscription_id, "a1gf13bjz13");

    let large = fixture("chat", "server/response_large_id.json");
    let chat::ServerFrame::Response(r) = chat::ServerFrame::decode(&large).unwrap() else {
        panic!("not a response");
    };
    assert_eq!(r.id.as_u64(), Some(1_675_666_127_859));

    let named = fixture("chat", "server/response_update_agent_status.json");
    let chat::ServerFrame::Response(r) = chat::ServerFrame::decode(&named).unwrap() else {
        panic!("not a response");
    };
    assert_eq!(r.id, RequestId::from("UPDATE_AGENT_STATUS"));
    assert_ne!(RequestId::from("7"), RequestId::from(7_u64));
}

#[test]
fn error_names_classify_with_their_retry_rule() {
    let text = fixture("chat", "server/response_errors_all_names.json");
    let chat::ServerFrame::Response(r) = chat::ServerFrame::decode(&text).unwrap() else {
        panic!("not a response");
    };
    let errors = r.payload.errors.unwrap();
    let names: Vec<ErrorName> = errors.iter().map(|e| e.name.clone().unwrap()).collect();
    assert_eq!(&names[..6], &ErrorName::KNOWN[..]);
    assert_eq!(names[6], ErrorName::Unknown("SOMETHING_NEW".into()));
    let retryable: Vec<bool> = errors.iter().map(|e| e.is_retryable()).collect();
    assert_eq!(retryable, [false, false, true, false, false, true, false]);
    assert_eq!(
        errors[4].uuid.as_deref(),
        Some("f4706a5c-5022-4dcf-b113-2baa0c848557")
    );
    assert!(matches!(
        errors[5].name.as_ref().unwrap().retry_policy(),
        RetryPolicy::Limited {
            max_attempts: 5,
            ..
        }
    ));
}

#[test]
fn error_payloads_are_told_apart() {
    let exec = fixture("chat", "server/error_graphql_exec.json");
    let chat::ServerFrame::Error(e) = chat::ServerFrame::decode(&exec).unwrap() else {
        panic!("not an error response");
    };
    assert_eq!(e.error_code, 400);
    assert_eq!(e.id, Some(RequestId::from(4_u64)));
    assert_eq!(
        e.payload.errors()[0].message,
        "unknown error when resolve hello field"
    );

    let protocol = fixture("chat", "server/data_error_protocol.json");
    let chat::ServerFrame::DataError(e) = chat::ServerFrame::decode(&protocol).unwrap() else {
        panic!("not a DATA error");
    };
    assert_eq!(e.error_code, 503);
    assert!(
        matches!(e.payload, ErrorPayload::Protocol { ref body } if body == "service unavailable")
    );
}

#[test]
fn eos_reasons_are_kept() {
    let text = fixture("chat", "server/eos_concurrent_session_limit.json");
    let chat::ServerFrame::Eos(eos) = chat::ServerFrame::decode(&text).unwrap() else {
        panic!("not EOS");
    };
    assert!(eos.is_concurrent_session_limit());
    let text = fixture("chat", "server/eos_unexpected_session_state.json");
    let chat::ServerFrame::Eos(eos) = chat::ServerFrame::decode(&text).unwrap() else {
        panic!("not EOS");
    };
    assert_eq!(eos.reason.as_deref(), Some("unexpected session state"));
    assert!(!eos.is_concurrent_session_limit());
}

#[test]
fn explicit_null_envelope_keys_read_as_absent() {
    let data = r#"{"sig":"DATA","subscription_id":"s","payload":{"data":{}},"error_code":null}"#;
    let chat::ServerFrame::Data(frame) = chat::ServerFrame::decode(data).unwrap() else {
        panic!("not DATA: {data}");
    };
    assert_eq!(frame.subscription_id, "s");
    let answer = r#"{"id":7,"payload":{"data":{"ok":true}},"errorCode":null,"sig":null}"#;
    let decoded = chat::ServerFrame::decode(answer).unwrap();
    assert!(
        matches!(decoded, chat::ServerFrame::Response(_)),
        "{}: {answer}",
        decoded.kind()
    );
}

#[test]
fn client_frames_decode_for_the_server_side() {
    let text = fixture("chat", "client/request_with_variables.json");
    let chat::ClientFrame::Request(r) = chat::ClientFrame::decode(&text).unwrap() else {
        panic!("not a request");
    };
    assert_eq!(r.id, RequestId::from(2_u64));
    assert_eq!(r.payload.operation_name.as_deref(), Some("startSession"));
    assert!(r.payload.variables.unwrap().get().contains("access_token"));

    let text = fixture("chat", "client/stop_subscription.json");
    let chat::ClientFrame::StopSubscription(s) = chat::ClientFrame::decode(&text).unwrap() else {
        panic!("not stop_subscription");
    };
    assert_eq!(
        (s.id.as_u64(), &*s.subscription_id),
        (Some(9), "a1gf13bjz13")
    );

    let text = fixture("chat", "client/ping_timestamp.json");
    let chat::ClientFrame::Ping(p) = chat::ClientFrame::decode(&text).unwrap() else {
        panic!("not PING");
    };
    assert_eq!(p.payload.unwrap().get(), "1675666127859");
}

#[test]
fn realtime_updates_carry_typed_metrics() {
    let text = fixture("realtime", "server/rest_chats_all_window_30.json");
    let realtime::ServerFrame::Update(u) = realtime::ServerFrame::decode(&text).unwrap() else {
        panic!("not an update");
    };
    assert_eq!(u.topic.family, Family::Chats);
    assert_eq!(u.department_id, None);
    assert_eq!(u.get(&Metric::ActiveChats).unwrap().as_i64(), Some(-1));
    assert!(matches!(
        u.get(&Metric::WaitingTimeAvg),
        Some(MetricValue::Scalar(None))
    ));
    let missed = u.get(&Metric::MissedChats).unwrap().as_windowed().unwrap();
    assert_eq!(missed.get(Window::Minutes30), Some(Some(0)));
    assert_eq!(missed.get(Window::Minutes60), None);
    assert_eq!(u.data.len(), 12);
    assert!(
        u.data
            .iter()
            .all(|(m, _)| m.family() == Some(Family::Chats))
    );

    let text = fixture("realtime", "server/update_agents_online_dept_5.json");
    let realtime::ServerFrame::Update(u) = realtime::ServerFrame::decode(&text).unwrap() else {
        panic!("not an update");
    };
    assert_eq!(u.department_id, Some(5));
    assert_eq!(u.get(&Metric::AgentsOnline).unwrap().as_i64(), Some(26));
}

#[test]
fn realtime_status_frames_classify() {
    let frame = realtime::ServerFrame::decode(&fixture("realtime", "server/not_computed.json"));
    assert!(matches!(frame, Ok(realtime::ServerFrame::NotComputed)));
    let Ok(realtime::ServerFrame::Status(s)) =
        realtime::ServerFrame::decode(&fixture("realtime", "server/status_401.json"))
    else {
        panic!("not a status frame");
    };
    assert!(s.is_unauthorized() && !s.is_retryable());
    assert_eq!(
        s.message.unwrap().as_text(),
        Some("Unable to verify the identity of the client")
    );
    let Ok(realtime::ServerFrame::Status(s)) =
        realtime::ServerFrame::decode(&fixture("realtime", "server/status_429.json"))
    else {
        panic!("not a status frame");
    };
    assert!(s.is_rate_limited() && s.is_retryable());
}

#[test]
fn realtime_subscriptions_decode_for_the_server_side() {
    let text = fixture("realtime", "client/subscribe_window_and_department.json");
    let realtime::ClientFrame::Subscription(s) = realtime::ClientFrame::decode(&text).unwrap()
    else {
        panic!("not a subscription");
    };
    assert_eq!(
        s,
        realtime::Subscription::subscribe(Metric::MissedChats)
            .window(Window::Minutes30)
            .department(123)
    );
    assert!(s.topic.is_consistent());
}
