//! Property round trips: encode, decode, encode again gives the same text.

use proptest::prelude::*;
use serde_json::{
    Value,
    value::{RawValue, to_raw_value},
};
use zd_wire::{
    chat::{
        self, ErrorName, ErrorPayload, GraphQlError, GraphQlRequest, GraphQlResponse, RequestId,
    },
    realtime::{
        self, Action, Family, Metric, MetricValue, Status, StatusMessage, Subscription, Topic,
        Update, Window, Windowed,
    },
};

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn request_id() -> impl Strategy<Value = RequestId> {
    prop_oneof![
        any::<u64>().prop_map(RequestId::from),
        any::<i64>().prop_map(RequestId::from),
        ".{0,10}".prop_map(RequestId::from),
    ]
}

fn error_name() -> impl Strategy<Value = ErrorName> {
    prop_oneof![
        prop::sample::select(ErrorName::KNOWN.to_vec()),
        "[A-Z_]{0,10}".prop_map(|n| ErrorName::from_name(&n)),
    ]
}

#[derive(Debug, Clone)]
struct ErrorSpec {
    name: Option<ErrorName>,
    message: String,
    uuid: Option<String>,
    path: Option<Value>,
}

fn error_spec() -> impl Strategy<Value = ErrorSpec> {
    (
        proptest::option::of(error_name()),
        ".{0,16}",
        proptest::option::of("[0-9a-f-]{0,36}"),
        proptest::option::of(json()),
    )
        .prop_map(|(name, message, uuid, path)| ErrorSpec {
            name,
            message,
            uuid,
            path,
        })
}

fn raw(v: &Value) -> Box<RawValue> {
    to_raw_value(v).unwrap()
}

fn graphql_errors<'a>(
    specs: &'a [ErrorSpec],
    paths: &'a [Option<Box<RawValue>>],
) -> Vec<GraphQlError<'a>> {
    specs
        .iter()
        .zip(paths)
        .map(|(s, path)| GraphQlError {
            name: s.name.clone(),
            message: s.message.as_str().into(),
            uuid: s.uuid.as_deref().map(Into::into),
            path: path.as_deref(),
            ..GraphQlError::default()
        })
        .collect()
}

#[derive(Debug, Clone)]
enum PayloadSpec {
    GraphQl(Vec<ErrorSpec>),
    Protocol(String),
}

fn payload_spec() -> impl Strategy<Value = PayloadSpec> {
    prop_oneof![
        prop::collection::vec(error_spec(), 0..3).prop_map(PayloadSpec::GraphQl),
        ".{0,20}".prop_map(PayloadSpec::Protocol),
    ]
}

fn error_payload<'a>(
    spec: &'a PayloadSpec,
    paths: &'a [Option<Box<RawValue>>],
) -> ErrorPayload<'a> {
    match spec {
        PayloadSpec::GraphQl(errors) => ErrorPayload::GraphQl(graphql_errors(errors, paths)),
        PayloadSpec::Protocol(body) => ErrorPayload::Protocol {
            body: body.as_str().into(),
        },
    }
}

fn paths_of(spec: &PayloadSpec) -> Vec<Option<Box<RawValue>>> {
    match spec {
        PayloadSpec::GraphQl(errors) => errors.iter().map(|e| e.path.as_ref().map(raw)).collect(),
        PayloadSpec::Protocol(_) => Vec::new(),
    }
}

fn assert_chat_server_round_trip(frame: &chat::ServerFrame<'_>) {
    let first = frame.encode().unwrap();
    let decoded = chat::ServerFrame::decode(&first).unwrap();
    let ack_lookalike = frame.kind() == "response" && decoded.kind() == "subscription_ack";
    assert!(
        decoded.kind() == frame.kind() || ack_lookalike,
        "{} became {}",
        frame.kind(),
        decoded.kind()
    );
    assert_eq!(first, decoded.encode().unwrap());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn chat_requests_round_trip(
        id in request_id(),
        query in ".{0,40}",
        variables in proptest::option::of(json()),
        operation in proptest::option::of("[A-Za-z_]{0,12}"),
    ) {
        let variables = variables.as_ref().map(raw);
        let mut payload = GraphQlRequest::new(query.as_str());
        payload.variables = variables.as_deref();
        payload.operation_name = operation.as_deref().map(Into::into);
        let frame = chat::ClientFrame::Request(chat::Request { id: id.clone(), payload });
        let first = frame.encode().unwrap();
        let chat::ClientFrame::Request(back) = chat::ClientFrame::decode(&first).unwrap() else {
            panic!("not a request: {first}");
        };
        prop_assert_eq!(&back.id, &id);
        prop_assert_eq!(back.payload.query.as_ref(), query.as_str());
        prop_assert_eq!(back.payload.operation_name.as_deref(), operation.as_deref());
        prop_assert_eq!(&first, &chat::ClientFrame::Request(back).encode().unwrap());
    }

    #[test]
    fn chat_stop_and_ping_round_trip(id in request_id(), sub in ".{0,16}", payload in proptest::option::of(json())) {
        let stop = chat::ClientFrame::StopSubscription(chat::StopSubscription::new(id.clone(), sub.as_str()));
        let text = stop.encode().unwrap();
        let chat::ClientFrame::StopSubscription(back) = chat::ClientFrame::decode(&text).unwrap() else {
            panic!("not stop_subscription: {text}");
        };
        prop_assert_eq!(&back.id, &id);
        prop_assert_eq!(back.subscription_id.as_ref(), sub.as_str());

        let payload = payload.as_ref().map(raw);
        let ping = chat::ClientFrame::Ping(chat::Ping { payload: payload.as_deref() });
        let text = ping.encode().unwrap();
        let back = chat::ClientFrame::decode(&text).unwrap();
        prop_assert_eq!(back.kind(), "PING");
        prop_assert_eq!(&text, &back.encode().unwrap());
    }

    #[test]
    fn chat_responses_and_acks_round_trip(
        id in request_id(),
        data in proptest::option::of(json()),
        errors in proptest::option::of(prop::collection::vec(error_spec(), 0..3)),
        sub in ".{0,16}",
    ) {
        let data = data.as_ref().map(raw);
        let paths: Vec<_> = errors.iter().flatten().map(|e| e.path.as_ref().map(raw)).collect();
        let payload = GraphQlResponse {
            data: data.as_deref(),
            errors: errors.as_ref().map(|e| graphql_errors(e, &paths)),
            extensions: None,
        };
        assert_chat_server_round_trip(&chat::ServerFrame::Response(chat::Response { id: id.clone(), payload }));
        assert_chat_server_round_trip(&chat::ServerFrame::SubscriptionAck(chat::SubscriptionAck {
            id,
            subscription_id: sub.as_str().into(),
        }));
    }

    #[test]
    fn chat_data_and_errors_round_trip(
        sub in ".{0,16}",
        data in json(),
        code in any::<u16>(),
        id in proptest::option::of(request_id()),
        spec in payload_spec(),
        reason in proptest::option::of(".{0,20}"),
        pong in proptest::option::of(json()),
    ) {
        let payload = raw(&serde_json::json!({ "data": data }));
        assert_chat_server_round_trip(&chat::ServerFrame::Data(chat::Data {
            subscription_id: sub.as_str().into(),
            payload: &payload,
        }));
        let paths = paths_of(&spec);
        assert_chat_server_round_trip(&chat::ServerFrame::DataError(chat::DataError {
            error_code: code,
            subscription_id: sub.as_str().into(),
            payload: error_payload(&spec, &paths),
        }));
        assert_chat_server_round_trip(&chat::ServerFrame::Error(chat::ErrorResponse {
            error_code: code,
            id,
            payload: error_payload(&spec, &paths),
        }));
        assert_chat_server_round_trip(&chat::ServerFrame::Eos(chat::Eos { reason: reason.as_deref().map(Into::into) }));
        let pong = pong.as_ref().map(raw);
        assert_chat_server_round_trip(&chat::ServerFrame::Pong(chat::Pong { payload: pong.as_deref() }));
    }
}

fn metric() -> impl Strategy<Value = Metric> {
    prop_oneof![
        prop::sample::select(Metric::KNOWN.to_vec()),
        "x_[a-z_]{0,10}".prop_map(|k| Metric::from_key(&k)),
    ]
}

fn window() -> impl Strategy<Value = Window> {
    prop_oneof![
        prop::sample::select(Window::KNOWN.to_vec()),
        any::<u32>().prop_map(Window::from_minutes)
    ]
}

fn metric_value() -> impl Strategy<Value = MetricValue> {
    prop_oneof![
        proptest::option::of(any::<i64>()).prop_map(MetricValue::Scalar),
        prop::collection::vec((window(), proptest::option::of(any::<i64>())), 0..3)
            .prop_map(|w| MetricValue::Windowed(Windowed(w))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn realtime_subscriptions_round_trip(
        metric in metric(),
        unsubscribe in any::<bool>(),
        other_action in proptest::option::of("x[a-z]{0,8}"),
        window in proptest::option::of(window()),
        department in proptest::option::of(any::<u64>()),
    ) {
        let mut sub = if unsubscribe { Subscription::unsubscribe(metric) } else { Subscription::subscribe(metric) };
        if let Some(action) = other_action {
            sub.action = Action::from_name(&action);
        }
        sub.window = window;
        sub.department_id = department;
        let text = realtime::ClientFrame::Subscription(sub.clone()).encode().unwrap();
        let realtime::ClientFrame::Subscription(back) = realtime::ClientFrame::decode(&text).unwrap() else {
            panic!("not a subscription: {text}");
        };
        prop_assert_eq!(back, sub);
    }

    #[test]
    fn realtime_server_frames_round_trip(
        agents in any::<bool>(),
        full_topic in proptest::option::of(metric()),
        data in prop::collection::vec((metric(), metric_value()), 0..6),
        department in proptest::option::of(any::<u64>()),
        code in any::<u16>(),
        text in proptest::option::of(".{0,20}"),
        json_message in proptest::option::of(json()),
    ) {
        let family = if agents { Family::Agents } else { Family::Chats };
        let topic = Topic { family, metric: full_topic };
        // A key sent twice reads once, in its first place, with its last value: that is the
        // frame a decode must give back.
        let read = realtime::ServerFrame::Update(Update {
            topic: topic.clone(),
            data: last_wins(data.iter().cloned(), |m| m.key().to_owned())
                .into_iter()
                .map(|(m, v)| match v {
                    MetricValue::Windowed(w) => {
                        (m, MetricValue::Windowed(Windowed(last_wins(w.0, |w| w.minutes()))))
                    }
                    v => (m, v),
                })
                .collect(),
            department_id: department,
            status_code: code,
        })
        .encode()
        .unwrap();
        let update = realtime::ServerFrame::Update(Update { topic, data, department_id: department, status_code: code });
        let status = realtime::ServerFrame::Status(Status {
            status_code: code,
            message: match (text, json_message) {
                (Some(t), _) => Some(StatusMessage::Text(t)),
                (None, Some(j)) if !j.is_null() => Some(StatusMessage::Json(raw(&j))),
                _ => None,
            },
        });
        let back = realtime::ServerFrame::decode(&update.encode().unwrap()).unwrap();
        prop_assert_eq!(&read, &back.encode().unwrap());
        for frame in [update, status, realtime::ServerFrame::NotComputed] {
            let first = frame.encode().unwrap();
            let back = realtime::ServerFrame::decode(&first).unwrap();
            let again = back.encode().unwrap();
            if first != again {
                // Only a repeated key changes the text, and only the first time.
                prop_assert_eq!(&again, &read);
            }
            prop_assert_eq!(&again, &realtime::ServerFrame::decode(&again).unwrap().encode().unwrap());
        }
    }
}

/// Each key once, in its first place, with its last value.
fn last_wins<K, V, I: PartialEq>(
    entries: impl IntoIterator<Item = (K, V)>,
    id: impl Fn(&K) -> I,
) -> Vec<(K, V)> {
    let mut out: Vec<(K, V)> = Vec::new();
    for (key, value) in entries {
        match out.iter_mut().find(|(k, _)| id(k) == id(&key)) {
            Some(first) => first.1 = value,
            None => out.push((key, value)),
        }
    }
    out
}
