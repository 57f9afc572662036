//! The REST pull against the scriptable server: paths, query, auth, Not Computed, errors.

use std::sync::Arc;
use std::time::Duration;

use zd_metrics::{ErrorKind, Metric, MetricsClient, Series, StaticToken, Window};

use crate::creds::Rotating;
use crate::server::{Canned, TestServer};

fn ok(body: &str) -> Canned {
    Canned {
        status: 200,
        retry_after: None,
        body: body.to_owned(),
    }
}

fn client(server: &TestServer) -> MetricsClient {
    MetricsClient::builder(StaticToken::bearer("good").unwrap())
        .base_url(server.base_url())
        .build()
        .unwrap()
}

#[tokio::test]
async fn chats_with_window_and_department() {
    let mut server = TestServer::start(&["good"]).await;
    server.rest(
        "/stream/chats?window=30&department_id=5",
        ok(r#"{"content":{"topic":"chats","data":{"incoming_chats":2,"missed_chats":{"30":0},"waiting_time_avg":null},"type":"update","department_id":5},"status_code":200}"#),
    );
    let report = client(&server)
        .chats()
        .window(Window::Minutes30)
        .department(5)
        .await
        .unwrap();
    let seen = server.next_request().await;
    assert_eq!(seen.authorization.as_deref(), Some("Bearer good"));
    assert!(report.computed);
    assert_eq!(report.department_id, Some(5));
    assert_eq!(
        report.get(&Series::metric(Metric::IncomingChats).department(5)),
        Some(2)
    );
    assert_eq!(
        report.get(&Series::windowed(Metric::MissedChats, Window::Minutes30).department(5)),
        Some(0)
    );
    let waiting = Series::metric(Metric::WaitingTimeAvg).department(5);
    assert!(report.contains(&waiting));
    assert_eq!(report.get(&waiting), None);
}

#[tokio::test]
async fn single_metrics_and_not_computed() {
    let mut server = TestServer::start(&["good"]).await;
    server.rest(
        "/stream/agents/agents_online?department_id=2",
        ok(r#"{"content":{"topic":"agents","data":{"agents_online":3},"type":"update","department_id":2},"status_code":200}"#),
    );
    server.rest(
        "/stream/chats/missed_chats",
        ok(r#"{"status_code":200,"message":"Not Computed!"}"#),
    );
    let client = client(&server);
    let online = client
        .agent_metric(Metric::AgentsOnline)
        .department(2)
        .await
        .unwrap();
    assert_eq!(
        online.get(&Series::metric(Metric::AgentsOnline).department(2)),
        Some(3)
    );
    let missed = client.chat_metric(Metric::MissedChats).await.unwrap();
    assert!(!missed.computed);
    assert!(missed.values.is_empty());
    assert_eq!(
        server.next_request().await.path_and_query,
        "/stream/agents/agents_online?department_id=2"
    );
    assert_eq!(
        server.next_request().await.path_and_query,
        "/stream/chats/missed_chats"
    );
}

/// The report is for the department that was asked for: a body that names none is that
/// department's (its values seed that department's series), and one that names another is
/// refused rather than reported as the department asked for.
#[tokio::test]
async fn the_report_is_for_the_requested_department() {
    let server = TestServer::start(&["good"]).await;
    server.rest(
        "/stream/chats/incoming_chats?department_id=5",
        ok(r#"{"content":{"topic":"chats","data":{"incoming_chats":2},"type":"update","department_id":null},"status_code":200}"#),
    );
    server.rest(
        "/stream/chats/incoming_chats?department_id=6",
        ok(r#"{"content":{"topic":"chats","data":{"incoming_chats":3},"type":"update","department_id":7},"status_code":200}"#),
    );
    server.rest(
        "/stream/chats/incoming_chats",
        ok(r#"{"content":{"topic":"chats","data":{"incoming_chats":4},"type":"update","department_id":8},"status_code":200}"#),
    );
    let client = client(&server);
    let incoming = Series::metric(Metric::IncomingChats);

    let report = client
        .chat_metric(Metric::IncomingChats)
        .department(5)
        .await
        .unwrap();
    assert_eq!(report.department_id, Some(5));
    assert_eq!(report.get(&incoming.clone().department(5)), Some(2));
    assert!(!report.contains(&incoming), "not the account's value");

    let err = client
        .chat_metric(Metric::IncomingChats)
        .department(6)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
    assert!(err.to_string().contains("department 7"), "{err}");

    let err = client.chat_metric(Metric::IncomingChats).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
}

#[tokio::test]
async fn http_errors_are_typed() {
    let server = TestServer::start(&["good"]).await;
    server.rest(
        "/stream/agents",
        Canned {
            status: 401,
            retry_after: None,
            body: r#"{"status_code":401,"message":"Unable to verify the identity of the client"}"#
                .into(),
        },
    );
    server.rest(
        "/stream/chats",
        Canned {
            status: 429,
            retry_after: Some(12),
            body: "Too Many Requests".into(),
        },
    );
    let client = client(&server);
    let err = client.agents().await.unwrap_err();
    assert_eq!(
        (err.kind(), err.status()),
        (ErrorKind::Unauthorized, Some(401))
    );
    let err = client.chats().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(12)));
    assert_eq!(err.body(), Some("Too Many Requests"));
    let err = client.chat_metric(Metric::ActiveChats).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.status()),
        (ErrorKind::HttpStatus, Some(404))
    );
}

/// The feed's rules for a status in a frame hold for the same status in a 200 body: a 401
/// renews refreshable credentials as an HTTP 401 does, and an update whose status is not
/// 200 is refused, not reported as computed values.
#[tokio::test]
async fn a_status_in_a_200_body_is_read_as_the_feed_reads_it() {
    let mut server = TestServer::start(&["t1", "t2"]).await;
    server.rest(
        "/stream/agents",
        ok(r#"{"status_code":401,"message":"Unable to verify the identity of the client"}"#),
    );
    server.rest(
        "/stream/chats",
        ok(r#"{"content":{"topic":"chats","data":{"active_chats":7},"type":"update","department_id":null},"status_code":500}"#),
    );
    let creds = Arc::new(Rotating::default());
    let client = MetricsClient::builder(Arc::clone(&creds))
        .base_url(server.base_url())
        .build()
        .unwrap();
    let err = client.agents().await.unwrap_err();
    assert_eq!(
        (err.kind(), err.status()),
        (ErrorKind::Unauthorized, Some(401))
    );
    assert_eq!(
        server.next_request().await.authorization.as_deref(),
        Some("Bearer t1")
    );
    assert_eq!(creds.invalidated(), 1, "the refusal renews the credentials");

    let err = client.chats().await.unwrap_err();
    assert_eq!(
        (err.kind(), err.status()),
        (ErrorKind::ServerStatus, Some(500))
    );
    assert_eq!(
        server.next_request().await.authorization.as_deref(),
        Some("Bearer t2")
    );
    assert_eq!(creds.invalidated(), 1);
}

/// "Connection refused" alone does not say which endpoint was unreachable: the feed's and the
/// pull's transport errors name it.
#[tokio::test]
async fn unreachable_endpoint_is_named() {
    // Bound then closed: nothing listens on the port.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = MetricsClient::builder(StaticToken::bearer("good").unwrap())
        .base_url(format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let host = format!("127.0.0.1:{port}");
    let err = client.connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert!(err.to_string().contains(&host), "{err}");
    let err = client.chats().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert!(err.to_string().contains(&host), "{err}");
}
