//! The exact text of every frame shape this crate writes, both protocols, both directions.

use insta::assert_snapshot;
use serde_json::value::{RawValue, to_raw_value};
use zd_wire::{
    chat::{
        self, Data, DataError, Eos, ErrorName, ErrorPayload, ErrorResponse, GraphQlError,
        GraphQlRequest, GraphQlResponse, Ping, Pong, Request, RequestId, StopSubscription,
        SubscriptionAck,
    },
    realtime::{
        self, Metric, MetricValue, Status, StatusMessage, Subscription, Topic, Update, Window,
        Windowed,
    },
};

fn raw(json: &str) -> &RawValue {
    serde_json::from_str(json).unwrap()
}

#[test]
fn chat_client_frames() {
    let variables = to_raw_value(&serde_json::json!({"access_token": "placeholder"})).unwrap();
    let frames = [
        (
            "request",
            chat::ClientFrame::Request(Request::new(
                1_u64,
                "query { agents { edges { node { id } } } }",
            )),
        ),
        (
            "request_string_id_variables_operation",
            chat::ClientFrame::Request(Request {
                id: RequestId::from("UPDATE_AGENT_STATUS"),
                payload: GraphQlRequest::new(
                    "mutation a { x } mutation b($access_token: String!) { y }",
                )
                .variables(&variables)
                .operation_name("b"),
            }),
        ),
        (
            "stop_subscription",
            chat::ClientFrame::StopSubscription(StopSubscription::new(9_u64, "a1gf13bjz13")),
        ),
        (
            "ping_number",
            chat::ClientFrame::Ping(Ping::new(raw("1675666127859"))),
        ),
        (
            "ping_string",
            chat::ClientFrame::Ping(Ping::new(raw(r#""pingPong""#))),
        ),
        ("ping_empty", chat::ClientFrame::Ping(Ping::default())),
    ];
    for (name, frame) in frames {
        assert_snapshot!(format!("chat_client_{name}"), frame.encode().unwrap());
    }
}

#[test]
fn chat_server_frames() {
    let errors = vec![GraphQlError::new(
        ErrorName::GraphQlExecError,
        "unknown error when resolve hello field",
        "f4706a5c-5022-4dcf-b113-2baa0c848557",
    )];
    let frames = [
        (
            "response",
            chat::ServerFrame::Response(chat::Response {
                id: RequestId::from(9_u64),
                payload: GraphQlResponse {
                    data: Some(raw(r#"{"success":true}"#)),
                    ..Default::default()
                },
            }),
        ),
        (
            "response_errors",
            chat::ServerFrame::Response(chat::Response {
                id: RequestId::from("x"),
                payload: GraphQlResponse {
                    errors: Some(errors.clone()),
                    ..Default::default()
                },
            }),
        ),
        (
            "subscription_ack",
            chat::ServerFrame::SubscriptionAck(SubscriptionAck {
                id: RequestId::from(456_u64),
                subscription_id: "a1gf13bjz13".into(),
            }),
        ),
        (
            "data",
            chat::ServerFrame::Data(Data {
                subscription_id: "a1gf13bjz13".into(),
                payload: raw(r#"{"data":{"message":{"node":{"content":"hi"}}}}"#),
            }),
        ),
        (
            "data_error",
            chat::ServerFrame::DataError(DataError {
                error_code: 429,
                subscription_id: "a1gf13bjz13".into(),
                payload: ErrorPayload::GraphQl(vec![GraphQlError::new(
                    ErrorName::RateLimited,
                    "slow down",
                    "u-1",
                )]),
            }),
        ),
        (
            "error_graphql",
            chat::ServerFrame::Error(ErrorResponse {
                error_code: 400,
                id: Some(RequestId::from(4_u64)),
                payload: ErrorPayload::GraphQl(errors),
            }),
        ),
        (
            "error_protocol",
            chat::ServerFrame::Error(ErrorResponse {
                error_code: 503,
                id: None,
                payload: ErrorPayload::Protocol {
                    body: "GraphQL server is unavailable".into(),
                },
            }),
        ),
        (
            "eos",
            chat::ServerFrame::Eos(Eos {
                reason: Some("unexpected session state".into()),
            }),
        ),
        (
            "pong",
            chat::ServerFrame::Pong(Pong {
                payload: Some(raw(r#""pingPong""#)),
            }),
        ),
    ];
    for (name, frame) in frames {
        assert_snapshot!(format!("chat_server_{name}"), frame.encode().unwrap());
    }
}

#[test]
fn realtime_client_frames() {
    let frames = [
        ("subscribe", Subscription::subscribe(Metric::IncomingChats)),
        (
            "subscribe_agents_department",
            Subscription::subscribe(Metric::AgentsOnline).department(5),
        ),
        (
            "subscribe_window",
            Subscription::subscribe(Metric::MissedChats).window(Window::Minutes60),
        ),
        (
            "subscribe_window_department",
            Subscription::subscribe(Metric::SatisfactionBad)
                .window(Window::Minutes30)
                .department(123),
        ),
        (
            "unsubscribe",
            Subscription::unsubscribe(Metric::WaitingTimeMax),
        ),
    ];
    for (name, sub) in frames {
        let frame = realtime::ClientFrame::Subscription(sub);
        assert_snapshot!(format!("realtime_client_{name}"), frame.encode().unwrap());
    }
}

#[test]
fn realtime_server_frames() {
    let frames = [
        (
            "update",
            realtime::ServerFrame::Update(Update {
                topic: Topic::family(realtime::Family::Chats),
                data: vec![
                    (Metric::IncomingChats, MetricValue::Scalar(Some(2))),
                    (Metric::WaitingTimeAvg, MetricValue::Scalar(None)),
                    (
                        Metric::MissedChats,
                        MetricValue::Windowed(Windowed(vec![
                            (Window::Minutes30, Some(1)),
                            (Window::Minutes60, Some(2)),
                        ])),
                    ),
                ],
                department_id: None,
                status_code: 200,
            }),
        ),
        (
            "update_department",
            realtime::ServerFrame::Update(Update {
                topic: Topic::family(realtime::Family::Agents),
                data: vec![(Metric::AgentsOnline, MetricValue::Scalar(Some(26)))],
                department_id: Some(5),
                status_code: 200,
            }),
        ),
        ("not_computed", realtime::ServerFrame::NotComputed),
        (
            "status_401",
            realtime::ServerFrame::Status(Status {
                status_code: 401,
                message: Some(StatusMessage::Text(
                    "Unable to verify the identity of the client".into(),
                )),
            }),
        ),
    ];
    for (name, frame) in frames {
        assert_snapshot!(format!("realtime_server_{name}"), frame.encode().unwrap());
    }
}
