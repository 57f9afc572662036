//! The feed against the scriptable server: subscribe frames, typed updates, the snapshot,
//! reconnect with resubscribe, 401 / 429, local limits, lag.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use futures_util::StreamExt;
use zd_metrics::{
    ErrorKind, Family, Feed, FeedConfig, FeedEvent, FeedState, LimitConfig, Limits, Metric,
    MetricUpdate, MetricsClient, Report, Series, StateReceiver, StaticToken, Window,
};

use crate::creds::Rotating;
use crate::server::{Canned, TestServer, UNAUTHORIZED_FRAME, update};

fn client(server: &TestServer, token: &str) -> MetricsClient {
    MetricsClient::builder(StaticToken::bearer(token).unwrap())
        .base_url(server.base_url())
        .build()
        .unwrap()
}

async fn next(feed: &mut Feed) -> FeedEvent {
    feed.next().await.expect("feed ended")
}

fn rotating_client(server: &TestServer, creds: &Arc<Rotating>) -> MetricsClient {
    MetricsClient::builder(Arc::clone(creds))
        .base_url(server.base_url())
        .build()
        .unwrap()
}

/// A feed whose connection is cut while the server refuses every upgrade with `refusal`; the
/// server and client are returned to be kept alive (and the client asked).
async fn cut_under_refusal(refusal: Canned) -> (TestServer, MetricsClient, Feed) {
    let mut server = TestServer::start(&["good"]).await;
    let client = client(&server, "good");
    let feed = client.connect().await.unwrap();
    let conn = server.next_connection().await;
    server.reject_upgrades(Some(refusal));
    conn.cut();
    (server, client, feed)
}

/// The next event, which must be `Closed`, and the feed must then be over: no further event,
/// state `Closed`, its connection slot free. Its error is returned for the caller to check.
async fn closed(feed: &mut Feed, client: &MetricsClient, why: &str) -> zd_metrics::Error {
    let FeedEvent::Closed(error) = next(feed).await else {
        panic!("{why}")
    };
    assert!(feed.next().await.is_none());
    assert_eq!(feed.handle().state().get(), FeedState::Closed);
    assert_eq!(client.open_feeds(), 0);
    error
}

/// The next event, which must be `Reconnecting`: (attempt, delay, error kind).
async fn reconnecting(feed: &mut Feed) -> (u32, Duration, ErrorKind) {
    match next(feed).await {
        FeedEvent::Reconnecting {
            attempt,
            delay,
            error,
        } => (attempt, delay, error.kind()),
        other => panic!("expected Reconnecting, got {other:?}"),
    }
}

/// Longer than a connection takes to count as working without an update (it has outlived
/// the moment a refusal comes), and than a ping interval, so pings are exchanged meanwhile.
const SETTLED: Duration = Duration::from_secs(30);

#[tokio::test(start_paused = true)]
async fn subscribe_update_snapshot_unsubscribe() {
    let mut server = TestServer::start(&["good"]).await;
    let client = client(&server, "good");
    let mut feed = client.connect().await.unwrap();
    let mut conn = server.next_connection().await;
    assert_eq!(conn.authorization, "Bearer good");

    let incoming = Series::metric(Metric::IncomingChats);
    let missed = Series::windowed(Metric::MissedChats, Window::Minutes30).department(5);
    let online = Series::metric(Metric::AgentsOnline).department(5);
    feed.subscribe(incoming.clone()).await.unwrap();
    feed.subscribe(missed.clone()).await.unwrap();
    feed.subscribe(online.clone()).await.unwrap();
    feed.subscribe(online.clone()).await.unwrap(); // already subscribed: no second frame
    insta::assert_snapshot!(conn.recv().await, @r#"{"topic":"chats.incoming_chats","action":"subscribe"}"#);
    insta::assert_snapshot!(conn.recv().await, @r#"{"topic":"chats.missed_chats","action":"subscribe","window":30,"department_id":5}"#);
    insta::assert_snapshot!(conn.recv().await, @r#"{"topic":"agents.agents_online","action":"subscribe","department_id":5}"#);

    let snapshot = feed.snapshot();
    assert_eq!(snapshot.borrow().get_tracked(&incoming), Some(None));

    conn.send(update("chats", r#"{"incoming_chats":2}"#, None));
    conn.send(update("chats", r#"{"missed_chats":{"30":1}}"#, Some(5)));
    conn.send(update("agents", r#"{"agents_online":26}"#, Some(5)));
    // A series nobody subscribed to is not reported.
    conn.send(update("chats", r#"{"active_chats":9}"#, None));
    conn.send(update("chats", r#"{"incoming_chats":null}"#, None));

    let mut seen = Vec::new();
    for _ in 0..4 {
        match next(&mut feed).await {
            FeedEvent::Update(u) => seen.push((u.series.to_string(), u.value)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        seen,
        vec![
            ("chats.incoming_chats".to_owned(), Some(2)),
            ("chats.missed_chats[30m]@5".to_owned(), Some(1)),
            ("agents.agents_online@5".to_owned(), Some(26)),
            ("chats.incoming_chats".to_owned(), None),
        ]
    );
    {
        let snap = snapshot.borrow();
        assert_eq!(snap.get(&missed), Some(1));
        assert_eq!(snap.get(&online), Some(26));
        assert_eq!(snap.get_tracked(&incoming), Some(None));
        assert_eq!(snap.len(), 3);
    }

    feed.unsubscribe(missed.clone()).await.unwrap();
    insta::assert_snapshot!(conn.recv().await, @r#"{"topic":"chats.missed_chats","action":"unsubscribe","window":30,"department_id":5}"#);
    assert_eq!(snapshot.borrow().get_tracked(&missed), None);
    assert_eq!(
        feed.handle().subscriptions().await.unwrap(),
        vec![incoming, online]
    );

    feed.handle().close().await;
    match next(&mut feed).await {
        FeedEvent::Closed(e) => assert_eq!(e.kind(), ErrorKind::Closed),
        other => panic!("unexpected {other:?}"),
    }
    assert!(feed.next().await.is_none());
    assert_eq!(client.open_feeds(), 0);
}

#[tokio::test(start_paused = true)]
async fn invalid_series_is_refused_locally() {
    let mut server = TestServer::start(&["good"]).await;
    let feed = client(&server, "good").connect().await.unwrap();
    let _conn = server.next_connection().await;
    let err = feed
        .subscribe(Series::metric(Metric::MissedChats))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSubscription);
}

#[tokio::test(start_paused = true)]
async fn reconnects_with_backoff_and_resubscribes_everything() {
    let mut server = TestServer::start(&["good"]).await;
    let client = client(&server, "good");
    let mut feed = client.connect().await.unwrap();
    let mut conn = server.next_connection().await;
    let waiting = Series::metric(Metric::WaitingTimeMax);
    let good = Series::windowed(Metric::SatisfactionGood, Window::Minutes60).department(2);
    feed.subscribe(waiting.clone()).await.unwrap();
    feed.subscribe(good.clone()).await.unwrap();
    conn.recv().await;
    conn.recv().await;
    conn.send(update("chats", r#"{"waiting_time_max":40}"#, None));
    assert!(matches!(next(&mut feed).await, FeedEvent::Update(_)));
    let snapshot = feed.snapshot();
    assert_eq!(snapshot.borrow().get(&waiting), Some(40));

    let mut state = feed.handle().state();
    conn.cut();
    let FeedEvent::Reconnecting {
        attempt,
        delay,
        error,
    } = next(&mut feed).await
    else {
        panic!("expected Reconnecting")
    };
    assert_eq!(attempt, 1);
    assert!(
        delay >= Duration::from_secs(1) && delay <= Duration::from_secs(2),
        "{delay:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Transport);
    state
        .wait_for(|s| matches!(s, FeedState::Reconnecting { attempt: 1 }))
        .await
        .unwrap();
    // Values seen on the lost connection are no longer known.
    assert_eq!(snapshot.borrow().get_tracked(&waiting), Some(None));

    // While disconnected a new subscription is recorded and sent with the others.
    let away = Series::metric(Metric::AgentsAway);
    feed.subscribe(away.clone()).await.unwrap();

    let mut conn = server.next_connection().await;
    let frames = [conn.recv().await, conn.recv().await, conn.recv().await];
    insta::assert_snapshot!(frames.join("\n"), @r#"
    {"topic":"chats.waiting_time_max","action":"subscribe"}
    {"topic":"chats.satisfaction_good","action":"subscribe","window":60,"department_id":2}
    {"topic":"agents.agents_away","action":"subscribe"}
    "#);
    assert!(matches!(next(&mut feed).await, FeedEvent::Reconnected));
    state.wait_for(|s| s == FeedState::Active).await.unwrap();
    conn.send(update(
        "chats",
        r#"{"satisfaction_good":{"60":3}}"#,
        Some(2),
    ));
    assert!(matches!(next(&mut feed).await, FeedEvent::Update(_)));
    assert_eq!(snapshot.borrow().get(&good), Some(3));
}

#[tokio::test(start_paused = true)]
async fn failed_attempts_back_off_exponentially() {
    let (mut server, _client, mut feed) = cut_under_refusal(Canned {
        status: 503,
        retry_after: None,
        body: "maintenance".into(),
    })
    .await;
    let mut delays = Vec::new();
    for expected_attempt in 1..=4 {
        let FeedEvent::Reconnecting {
            attempt,
            delay,
            error,
        } = next(&mut feed).await
        else {
            panic!("expected Reconnecting")
        };
        assert_eq!(attempt, expected_attempt);
        if attempt > 1 {
            assert_eq!(error.kind(), ErrorKind::HttpStatus);
            assert_eq!(error.status(), Some(503));
        }
        delays.push(delay);
    }
    // 1 s doubling, each with up to 100% jitter added.
    for (i, delay) in delays.iter().enumerate() {
        let base = Duration::from_secs(1 << i);
        assert!(
            *delay >= base && *delay <= base * 2,
            "attempt {i}: {delay:?}"
        );
    }
    server.reject_upgrades(None);
    let _conn = server.next_connection().await;
    assert!(matches!(next(&mut feed).await, FeedEvent::Reconnected));
}

#[tokio::test(start_paused = true)]
async fn bad_token_gets_the_401_frame_and_ends_the_feed() {
    let server = TestServer::start(&["good"]).await;
    let client = client(&server, "revoked");
    let mut feed = client.connect().await.unwrap();
    // First refusal: the credentials are invalidated and one retry is made.
    let FeedEvent::Reconnecting { error, .. } = next(&mut feed).await else {
        panic!("expected Reconnecting")
    };
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert_eq!(error.status(), Some(401));
    assert_eq!(
        error.body(),
        Some("Unable to verify the identity of the client")
    );
    // The upgrade succeeds again (the service refuses with a frame after it)...
    assert!(matches!(next(&mut feed).await, FeedEvent::Reconnected));
    // ...and the second refusal in a row ends the feed with the typed error.
    let error = closed(&mut feed, &client, "expected Closed").await;
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert!(!error.is_retryable());
}

#[tokio::test(start_paused = true)]
async fn http_429_on_upgrade_is_typed_with_retry_after() {
    let server = TestServer::start(&["good"]).await;
    server.reject_upgrades(Some(Canned {
        status: 429,
        retry_after: Some(7),
        body: r#"{"error":"too many connections for this agent"}"#.into(),
    }));
    let client = client(&server, "good");
    let err = client.connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(
        err.body(),
        Some(r#"{"error":"too many connections for this agent"}"#)
    );
    assert!(err.is_retryable());
    assert_eq!(
        client.open_feeds(),
        0,
        "a refused connect releases its slot"
    );
}

#[tokio::test(start_paused = true)]
async fn reconnect_honours_retry_after_of_a_429() {
    let (_server, _client, mut feed) = cut_under_refusal(Canned {
        status: 429,
        retry_after: Some(90),
        body: "slow down".into(),
    })
    .await;
    assert!(matches!(
        next(&mut feed).await,
        FeedEvent::Reconnecting { attempt: 1, .. }
    ));
    let FeedEvent::Reconnecting {
        attempt,
        delay,
        error,
    } = next(&mut feed).await
    else {
        panic!("expected Reconnecting")
    };
    assert_eq!((attempt, error.kind()), (2, ErrorKind::RateLimited));
    assert!(delay >= Duration::from_secs(90), "{delay:?}");
}

#[tokio::test(start_paused = true)]
async fn per_agent_cap_is_enforced_locally() {
    let mut server = TestServer::start(&["alice", "bob"]).await;
    let alice = client(&server, "alice");
    let mut feeds = Vec::new();
    for _ in 0..10 {
        feeds.push(alice.clone().connect().await.unwrap());
        server.next_connection().await;
    }
    let err = alice.connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AgentConnectionCap);
    assert!(!err.is_retryable());
    // Another agent of the same account is not affected.
    let bob = MetricsClient::builder(StaticToken::bearer("bob").unwrap())
        .base_url(server.base_url())
        .limits(alice.limits().clone())
        .build()
        .unwrap();
    let _bob_feed = bob.connect().await.unwrap();
    assert_eq!(alice.limits().open_connections(), 11);
    // Closing one of Alice's feeds frees a slot.
    let closed = feeds.pop().unwrap();
    closed.handle().close().await;
    let mut state = closed.handle().state();
    state.wait_for(|s| s == FeedState::Closed).await.unwrap();
    drop(closed);
    alice.connect().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn account_cap_and_request_budget_are_enforced_locally() {
    let server = TestServer::start(&["a", "b"]).await;
    let limits = Limits::new(LimitConfig::new(NonZeroU32::new(3), 2, 10));
    let make = |token: &str| {
        MetricsClient::builder(StaticToken::bearer(token).unwrap())
            .base_url(server.base_url())
            .limits(limits.clone())
            .build()
            .unwrap()
    };
    let (a, b) = (make("a"), make("b"));
    let _f1 = a.connect().await.unwrap();
    let _f2 = b.connect().await.unwrap();
    assert_eq!(
        a.connect().await.unwrap_err().kind(),
        ErrorKind::AccountConnectionCap
    );
    // The budget is shared with REST: the third request of the minute passes, the fourth not.
    server.rest(
        "/stream/agents",
        Canned {
            status: 200,
            retry_after: None,
            body: r#"{"status_code":200,"message":"Not Computed!"}"#.into(),
        },
    );
    a.agents().await.unwrap();
    let err = b.agents().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LocalRateLimited);
    // Free again once the minute's first request leaves the window.
    let wait = err.retry_after().unwrap();
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    tokio::time::advance(wait).await;
    b.agents().await.unwrap();
}

/// A REST pull fills what the stream has not given yet, never over a value (or `null`) it
/// gave, and nothing while the feed reconnects.
#[tokio::test(start_paused = true)]
async fn a_rest_pull_seeds_the_values_the_stream_has_not_given() {
    let mut server = TestServer::start(&["good"]).await;
    let mut feed = client(&server, "good").connect().await.unwrap();
    let conn = server.next_connection().await;
    let active = Series::metric(Metric::ActiveChats);
    let missed = Series::metric(Metric::MissedChats);
    feed.subscribe(active.clone()).await.unwrap();
    let report = |value| Report {
        department_id: None,
        computed: true,
        values: vec![
            MetricUpdate {
                series: active.clone(),
                value: Some(value),
            },
            MetricUpdate {
                series: missed.clone(),
                value: Some(9),
            },
        ],
    };
    let handle = feed.handle();
    let snapshot = handle.snapshot();
    assert_eq!(handle.seed(&report(4)).await.unwrap(), 1);
    assert_eq!(snapshot.borrow().get(&active), Some(4));
    assert_eq!(snapshot.borrow().get_tracked(&missed), None);
    conn.send(update("chats", r#"{"active_chats":7}"#, None));
    assert!(matches!(next(&mut feed).await, FeedEvent::Update(_)));
    assert_eq!(handle.seed(&report(4)).await.unwrap(), 0);
    assert_eq!(snapshot.borrow().get(&active), Some(7));
    // A `null` from the stream is as new as a number: a pull does not go over it.
    conn.send(update("chats", r#"{"active_chats":null}"#, None));
    assert!(matches!(next(&mut feed).await, FeedEvent::Update(_)));
    assert_eq!(handle.seed(&report(4)).await.unwrap(), 0);
    assert_eq!(snapshot.borrow().get_tracked(&active), Some(None));
    conn.cut();
    reconnecting(&mut feed).await;
    assert_eq!(handle.seed(&report(4)).await.unwrap(), 0);
    assert_eq!(snapshot.borrow().get_tracked(&active), Some(None));
}

/// One metric key in two families would share one snapshot entry: the second is refused, and
/// the first goes on being fed.
#[tokio::test]
async fn a_metric_already_followed_in_the_other_family_is_refused() {
    let mut server = TestServer::start(&["good"]).await;
    let mut feed = client(&server, "good").connect().await.unwrap();
    let conn = server.next_connection().await;
    let queued = || Metric::Unknown("agents_queued".into());
    feed.subscribe(Series::agent_metric(queued()))
        .await
        .unwrap();
    let refused = feed.subscribe(Series::metric(queued())).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidSubscription, "{refused}");
    assert_eq!(
        feed.handle().subscriptions().await.unwrap(),
        [Series::agent_metric(queued())]
    );
    conn.send(update("agents", r#"{"agents_queued":3}"#, None));
    let FeedEvent::Update(update) = next(&mut feed).await else {
        panic!("expected Update")
    };
    assert_eq!(update.value, Some(3));
}

/// What a feed subscribed to active_chats reports when the server sends `bad`, then an update
/// of `good`: the error, then the value of the update that follows.
async fn reported_after(bad: &str, good: i64) -> (zd_metrics::Error, Option<i64>) {
    let mut server = TestServer::start(&["good"]).await;
    let mut feed = client(&server, "good").connect().await.unwrap();
    let conn = server.next_connection().await;
    feed.subscribe(Series::metric(Metric::ActiveChats))
        .await
        .unwrap();
    conn.send(bad);
    conn.send(update(
        "chats",
        &format!(r#"{{"active_chats":{good}}}"#),
        None,
    ));
    let FeedEvent::Rejected(error) = next(&mut feed).await else {
        panic!("expected Rejected")
    };
    let FeedEvent::Update(update) = next(&mut feed).await else {
        panic!("expected Update")
    };
    (error, update.value)
}

#[tokio::test(start_paused = true)]
async fn an_update_whose_status_is_not_200_is_not_applied() {
    let bad = r#"{"content":{"topic":"chats","data":{"active_chats":7},"type":"update","department_id":null},"status_code":500}"#;
    let (error, value) = reported_after(bad, 3).await;
    assert_eq!(error.status(), Some(500));
    assert_eq!(value, Some(3), "the 500 frame's 7 was never applied");
}

#[tokio::test(start_paused = true)]
async fn status_500_is_reported_and_the_connection_stays() {
    let bad = r#"{"status_code":500,"message":"unsupported message"}"#;
    let (error, value) = reported_after(bad, -1).await;
    assert_eq!(
        (error.kind(), error.status()),
        (ErrorKind::ServerStatus, Some(500))
    );
    assert_eq!(value, Some(-1), "negative counts are passed through");
}

#[tokio::test(start_paused = true)]
async fn quiet_but_healthy_feed_stays_up() {
    let mut server = TestServer::start(&["good"]).await;
    let client = client(&server, "good");
    let mut feed = client.connect().await.unwrap();
    let _conn = server.next_connection().await;
    // No updates for three idle timeouts: pings are answered, so nothing happens.
    let idle = FeedConfig::default().idle_timeout;
    let event = tokio::time::timeout(idle * 3, feed.next()).await;
    assert!(event.is_err(), "a quiet feed must not reconnect: {event:?}");
}

#[tokio::test(start_paused = true)]
async fn silent_socket_is_replaced_after_the_idle_timeout() {
    let mut server = TestServer::start(&["good"]).await;
    let client = client(&server, "good");
    let mut feed = client.connect().await.unwrap();
    let conn = server.next_connection().await;
    conn.stall();
    let started = tokio::time::Instant::now();
    let FeedEvent::Reconnecting { error, .. } = next(&mut feed).await else {
        panic!("expected Reconnecting")
    };
    assert_eq!(error.kind(), ErrorKind::Timeout);
    let idle = FeedConfig::default().idle_timeout;
    assert!(started.elapsed() >= idle, "{:?}", started.elapsed());
    let _conn = server.next_connection().await;
    assert!(matches!(next(&mut feed).await, FeedEvent::Reconnected));
}

/// A feed of `event_buffer` events following active chats, whose reader has read nothing
/// while `updates` updates (1, 2, ...) came, the snapshot holding the last; with its server,
/// client (which the feed needs alive) and connection.
async fn behind_on_updates(
    event_buffer: usize,
    updates: u64,
) -> (TestServer, MetricsClient, Feed, crate::server::ServerConn) {
    let mut server = TestServer::start(&["good"]).await;
    let mut config = FeedConfig::default();
    config.event_buffer = event_buffer;
    let client = MetricsClient::builder(StaticToken::bearer("good").unwrap())
        .base_url(server.base_url())
        .feed_config(config)
        .build()
        .unwrap();
    let feed = client.connect().await.unwrap();
    let mut conn = server.next_connection().await;
    let active = Series::metric(Metric::ActiveChats);
    feed.subscribe(active.clone()).await.unwrap();
    conn.recv().await;
    let mut snapshot = feed.snapshot();
    for n in 1..=updates {
        conn.send(update("chats", &format!(r#"{{"active_chats":{n}}}"#), None));
    }
    let last = i64::try_from(updates).unwrap();
    snapshot
        .wait_for(|s| s.get(&active) == Some(last))
        .await
        .unwrap();
    (server, client, feed, conn)
}

#[tokio::test(start_paused = true)]
async fn slow_reader_gets_lagged_and_snapshot_stays_current() {
    let (_server, _client, mut feed, conn) = behind_on_updates(2, 10).await;
    let mut events = Vec::new();
    // Two buffered updates, then the lag report once there is room again.
    events.push(next(&mut feed).await);
    events.push(next(&mut feed).await);
    conn.send(update("chats", r#"{"active_chats":11}"#, None));
    events.push(next(&mut feed).await);
    events.push(next(&mut feed).await);
    let lagged: u64 = events
        .iter()
        .filter_map(|e| match e {
            FeedEvent::Lagged(n) => Some(*n),
            _ => None,
        })
        .sum();
    assert_eq!(lagged, 8);
    assert!(matches!(events.last(), Some(FeedEvent::Update(u)) if u.value == Some(11)));
}

/// A feed whose driver never reaches its own end (its runtime shut down under it) reads as
/// ended, not as a live connection.
#[test]
fn a_feed_whose_runtime_shut_down_is_closed() {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut server = server_rt.block_on(TestServer::start(&["good"]));
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let feed = client_rt
        .block_on(client(&server, "good").connect())
        .unwrap();
    let _conn = server_rt.block_on(server.next_connection());
    let state = feed.handle().state();
    assert_eq!(state.get(), FeedState::Active);
    // Drops the driver's task mid-session: no `finish`, no `Closed` event.
    drop(client_rt);
    assert_eq!(state.get(), FeedState::Closed);
}

/// A reader that fell behind on updates still learns of a reconnect (it re-seeds on
/// `Reconnected`): events about the connection take the place of updates, whose values the
/// snapshot holds.
#[tokio::test(start_paused = true)]
async fn a_slow_reader_still_gets_reconnecting_and_reconnected() {
    let (mut server, _client, mut feed, conn) = behind_on_updates(1, 3).await;
    let mut state = feed.handle().state();
    conn.cut();
    let mut conn = server.next_connection().await;
    conn.recv().await; // the resubscription, sent before the connection counts as up
    state.wait_for(|s| s == FeedState::Active).await.unwrap();
    feed.handle().close().await;

    let mut events = Vec::new();
    while let Some(event) = feed.next().await {
        events.push(match event {
            FeedEvent::Update(u) => format!("update {:?}", u.value),
            FeedEvent::Reconnecting { attempt, .. } => format!("reconnecting {attempt}"),
            FeedEvent::Reconnected => "reconnected".to_owned(),
            FeedEvent::Lagged(n) => format!("lagged {n}"),
            FeedEvent::Closed(e) => format!("closed {:?}", e.kind()),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(
        events,
        ["reconnecting 1", "reconnected", "lagged 3", "closed Closed"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_refusal_retrying_cannot_fix_ends_the_feed() {
    let (_server, client, mut feed) = cut_under_refusal(Canned {
        status: 403,
        retry_after: None,
        body: "agent may not stream".into(),
    })
    .await;
    assert_eq!(reconnecting(&mut feed).await.0, 1);
    let error = closed(
        &mut feed,
        &client,
        "a 403 must end the feed, not be retried",
    )
    .await;
    assert_eq!(
        (error.kind(), error.status()),
        (ErrorKind::HttpStatus, Some(403))
    );
    assert_eq!(error.body(), Some("agent may not stream"));
}

#[tokio::test(start_paused = true)]
async fn credentials_that_cannot_be_produced_end_the_feed() {
    let mut server = TestServer::start(&["t1"]).await;
    let creds = Arc::new(Rotating::default());
    let mut feed = rotating_client(&server, &creds).connect().await.unwrap();
    let conn = server.next_connection().await;
    creds.fail();
    conn.cut();
    assert_eq!(reconnecting(&mut feed).await.2, ErrorKind::Transport);
    let FeedEvent::Closed(error) = next(&mut feed).await else {
        panic!("expected Closed")
    };
    assert_eq!(error.kind(), ErrorKind::Credentials);
    assert!(feed.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_token_expiring_on_a_quiet_feed_is_refreshed_again() {
    let mut server = TestServer::start(&["t1", "t2", "t3"]).await;
    let creds = Arc::new(Rotating::default());
    let mut feed = rotating_client(&server, &creds).connect().await.unwrap();
    let first = server.next_connection().await;
    assert_eq!(first.authorization, "Bearer t1");
    first.send(UNAUTHORIZED_FRAME);
    assert_eq!(reconnecting(&mut feed).await.2, ErrorKind::Unauthorized);
    let second = server.next_connection().await;
    assert_eq!(second.authorization, "Bearer t2");
    assert!(matches!(next(&mut feed).await, FeedEvent::Reconnected));

    // No update at all, yet the connection has worked: the token was accepted.
    tokio::time::sleep(SETTLED).await;
    second.send(UNAUTHORIZED_FRAME);
    let (attempt, _, kind) = reconnecting(&mut feed).await;
    assert_eq!((attempt, kind), (1, ErrorKind::Unauthorized));
    let third = server.next_connection().await;
    assert_eq!(third.authorization, "Bearer t3");
    assert!(matches!(next(&mut feed).await, FeedEvent::Reconnected));
    assert_eq!(creds.invalidated(), 2);
    // Each refusal names the token its connection was opened with.
    assert_eq!(creds.rejected(), ["Bearer t1", "Bearer t2"]);
    drop(first);
}

#[tokio::test(start_paused = true)]
async fn backoff_starts_over_after_a_connection_that_worked() {
    let mut server = TestServer::start(&["good"]).await;
    let mut feed = client(&server, "good").connect().await.unwrap();
    let mut conn = server.next_connection().await;
    for round in 0..4 {
        // Quiet: the connection works without delivering an update.
        tokio::time::sleep(SETTLED).await;
        conn.cut();
        let (attempt, delay, kind) = reconnecting(&mut feed).await;
        assert_eq!((attempt, kind), (1, ErrorKind::Transport), "round {round}");
        assert!(
            delay >= Duration::from_secs(1) && delay <= Duration::from_secs(2),
            "round {round}: {delay:?}"
        );
        conn = server.next_connection().await;
        assert!(matches!(next(&mut feed).await, FeedEvent::Reconnected));
    }
}

#[tokio::test(start_paused = true)]
async fn connections_dropped_as_soon_as_they_open_keep_backing_off() {
    let mut server = TestServer::start(&["good"]).await;
    let mut feed = client(&server, "good").connect().await.unwrap();
    let mut conn = server.next_connection().await;
    for round in 0..4 {
        conn.cut();
        let (attempt, delay, _) = reconnecting(&mut feed).await;
        // None of these connections worked, so neither the backoff nor the count starts over.
        assert_backed_off(round, attempt, delay);
        conn = server.next_connection().await;
        assert!(matches!(next(&mut feed).await, FeedEvent::Reconnected));
    }
}

/// The `round`-th failed reconnect in a row (from 0) is attempt `round + 1`, after 2^round
/// seconds up to twice that (the jitter).
fn assert_backed_off(round: u32, attempt: u32, delay: Duration) {
    assert_eq!(attempt, round + 1, "round {round}");
    let base = Duration::from_secs(1 << round);
    assert!(
        delay >= base && delay <= base * 2,
        "round {round}: {delay:?}"
    );
}

/// A server that accepts, sends one update and closes has not shown that connections stay
/// up: reconnecting to it at the first attempt's delay forever would spend the account's
/// shared connection budget. Only uptime starts backoff over.
#[tokio::test(start_paused = true)]
async fn connections_that_deliver_one_update_and_drop_keep_backing_off() {
    let mut server = TestServer::start(&["good"]).await;
    let mut feed = client(&server, "good").connect().await.unwrap();
    let active = Series::metric(Metric::ActiveChats);
    feed.subscribe(active.clone()).await.unwrap();
    let mut conn = server.next_connection().await;
    for round in 0..4_u32 {
        conn.recv().await; // the (re)subscription
        conn.send(update("chats", r#"{"active_chats":1}"#, None));
        assert!(
            matches!(next(&mut feed).await, FeedEvent::Update(u) if u.series == active),
            "round {round}"
        );
        conn.cut();
        let (attempt, delay, kind) = reconnecting(&mut feed).await;
        assert_eq!(kind, ErrorKind::Transport, "round {round}");
        assert_backed_off(round, attempt, delay);
        conn = server.next_connection().await;
        assert!(matches!(next(&mut feed).await, FeedEvent::Reconnected));
    }
}

/// Uptime counts when the connection ends, not only when a ping is due: one that stayed up
/// past the settling time and dropped before the next ping has worked too.
#[tokio::test(start_paused = true)]
async fn a_connection_that_settles_between_pings_starts_backoff_over() {
    let mut server = TestServer::start(&["good"]).await;
    let mut feed = client(&server, "good").connect().await.unwrap();
    let conn = server.next_connection().await;
    conn.cut();
    assert_eq!(reconnecting(&mut feed).await.0, 1);
    let conn = server.next_connection().await;
    assert!(matches!(next(&mut feed).await, FeedEvent::Reconnected));
    conn.cut();
    assert_eq!(reconnecting(&mut feed).await.0, 2);
    let conn = server.next_connection().await;
    assert!(matches!(next(&mut feed).await, FeedEvent::Reconnected));
    // Past the 10 s a refusal takes at most, short of the 15 s ping.
    let settled = Duration::from_secs(12);
    assert!(
        settled < FeedConfig::default().ping_interval,
        "no longer between pings"
    );
    tokio::time::sleep(settled).await;
    conn.cut();
    let (attempt, delay, _) = reconnecting(&mut feed).await;
    assert_eq!(attempt, 1);
    assert!(delay <= Duration::from_secs(2), "{delay:?}");
}

#[tokio::test(start_paused = true)]
async fn an_unknown_agent_metric_is_subscribed_and_tracked_as_one() {
    let mut server = TestServer::start(&["good"]).await;
    let mut feed = client(&server, "good").connect().await.unwrap();
    let mut conn = server.next_connection().await;
    let queued = Series::agent_metric(Metric::Unknown("agents_queued".into())).department(4);
    assert_eq!(queued.family(), Family::Agents);
    feed.subscribe(queued.clone()).await.unwrap();
    insta::assert_snapshot!(conn.recv().await, @r#"{"topic":"agents.agents_queued","action":"subscribe","department_id":4}"#);
    conn.send(update("agents", r#"{"agents_queued":6}"#, Some(4)));
    let FeedEvent::Update(got) = next(&mut feed).await else {
        panic!("expected Update")
    };
    assert_eq!(got.series, queued);
    assert_eq!(got.value, Some(6));
    let snapshot = feed.snapshot().borrow().clone();
    assert_eq!(snapshot.get(&queued), Some(6));
    assert_eq!(
        snapshot.iter().collect::<Vec<_>>(),
        vec![(queued.clone(), Some(6))]
    );
    feed.unsubscribe(queued).await.unwrap();
    insta::assert_snapshot!(conn.recv().await, @r#"{"topic":"agents.agents_queued","action":"unsubscribe","department_id":4}"#);
}

/// The service's refusal is `{"status_code":500,"message":..}` and an accepted subscribe
/// gets no answer of its own: nothing ties a refusal to a subscription, so none is dropped.
#[tokio::test(start_paused = true)]
async fn a_refused_subscription_is_kept_and_sent_again() {
    let mut server = TestServer::start(&["good"]).await;
    let mut feed = client(&server, "good").connect().await.unwrap();
    let mut conn = server.next_connection().await;
    let odd = Series::metric(Metric::Unknown("no_such_metric".into()));
    feed.subscribe(odd.clone()).await.unwrap();
    conn.recv().await;
    conn.send(r#"{"status_code":500,"message":"unsupported topic chats.no_such_metric"}"#);
    let FeedEvent::Rejected(error) = next(&mut feed).await else {
        panic!("expected Rejected")
    };
    assert_eq!(error.body(), Some("unsupported topic chats.no_such_metric"));
    assert_eq!(feed.handle().subscriptions().await.unwrap(), vec![odd]);
    conn.cut();
    reconnecting(&mut feed).await;
    let mut conn = server.next_connection().await;
    insta::assert_snapshot!(conn.recv().await, @r#"{"topic":"chats.no_such_metric","action":"subscribe"}"#);
}

#[tokio::test(start_paused = true)]
async fn an_oversized_frame_is_too_large_and_backs_off_until_the_feed_ends() {
    let mut server = TestServer::start(&["good"]).await;
    let mut feed = client(&server, "good").connect().await.unwrap();
    let padding = "x".repeat(70 * 1024);
    let big = update(
        "chats",
        &format!(r#"{{"active_chats":1,"padding":"{padding}"}}"#),
        None,
    );
    let mut conns = vec![server.next_connection().await];
    let mut delays = Vec::new();
    for round in 0..2 {
        conns.last().unwrap().send(big.clone());
        let (attempt, delay, kind) = reconnecting(&mut feed).await;
        assert_eq!((attempt, kind), (round + 1, ErrorKind::TooLarge));
        delays.push(delay);
        conns.push(server.next_connection().await);
        assert!(matches!(next(&mut feed).await, FeedEvent::Reconnected));
    }
    // Backoff is not started over by a connection an oversized frame ended before it worked.
    assert!(delays[0] >= Duration::from_secs(1), "{delays:?}");
    assert!(delays[1] >= Duration::from_secs(2), "{delays:?}");
    conns.last().unwrap().send(big);
    let FeedEvent::Closed(error) = next(&mut feed).await else {
        panic!("expected Closed after three oversized frames in a row")
    };
    assert_eq!(error.kind(), ErrorKind::TooLarge);
    assert!(feed.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn oversized_frames_count_within_ten_minutes_whatever_came_between() {
    let mut server = TestServer::start(&["good"]).await;
    let mut feed = client(&server, "good").connect().await.unwrap();
    let padding = "x".repeat(70 * 1024);
    let big = update(
        "chats",
        &format!(r#"{{"active_chats":1,"padding":"{padding}"}}"#),
        None,
    );
    let mut conn = server.next_connection().await;
    // One a day, between connections that worked: never enough to end the feed.
    for round in 0..4 {
        tokio::time::sleep(Duration::from_secs(86_400)).await;
        conn.send(big.clone());
        let (_, _, kind) = reconnecting(&mut feed).await;
        assert_eq!(kind, ErrorKind::TooLarge, "round {round}");
        conn = server.next_connection().await;
        assert!(matches!(next(&mut feed).await, FeedEvent::Reconnected));
    }
    // Three within minutes, though each connection worked first: the server sends it for
    // the subscriptions themselves, and the feed ends.
    tokio::time::sleep(Duration::from_secs(601)).await;
    for round in 0..3 {
        tokio::time::sleep(SETTLED).await;
        conn.send(big.clone());
        if round == 2 {
            break;
        }
        let (_, _, kind) = reconnecting(&mut feed).await;
        assert_eq!(kind, ErrorKind::TooLarge, "round {round}");
        conn = server.next_connection().await;
        assert!(matches!(next(&mut feed).await, FeedEvent::Reconnected));
    }
    let FeedEvent::Closed(error) = next(&mut feed).await else {
        panic!("expected Closed after three oversized frames within ten minutes")
    };
    assert_eq!(error.kind(), ErrorKind::TooLarge);
}

/// Endings at 0, 9, 11 and 13 minutes: the last three are within four minutes of each other,
/// though no ten-minute window counted from the first ending holds three.
#[tokio::test(start_paused = true)]
async fn oversized_frames_count_in_a_sliding_window() {
    let mut server = TestServer::start(&["good"]).await;
    let mut feed = client(&server, "good").connect().await.unwrap();
    let padding = "x".repeat(70 * 1024);
    let big = update(
        "chats",
        &format!(r#"{{"active_chats":1,"padding":"{padding}"}}"#),
        None,
    );
    let mut conn = server.next_connection().await;
    let start = tokio::time::Instant::now();
    for minute in [0, 9, 11] {
        tokio::time::sleep_until(start + Duration::from_secs(minute * 60)).await;
        conn.send(big.clone());
        let (_, _, kind) = reconnecting(&mut feed).await;
        assert_eq!(kind, ErrorKind::TooLarge, "minute {minute}");
        conn = server.next_connection().await;
        assert!(matches!(next(&mut feed).await, FeedEvent::Reconnected));
    }
    tokio::time::sleep_until(start + Duration::from_secs(13 * 60)).await;
    conn.send(big);
    let FeedEvent::Closed(error) = next(&mut feed).await else {
        panic!("expected Closed after three oversized frames within four minutes")
    };
    assert_eq!(error.kind(), ErrorKind::TooLarge);
    assert!(feed.next().await.is_none());
}

/// A capped policy counts from the last working connection, whatever ended it: working
/// connections that each end on an oversized frame, hours apart, do not use it up.
#[tokio::test(start_paused = true)]
async fn oversized_frames_far_apart_do_not_use_up_a_capped_policy() {
    let mut server = TestServer::start(&["good"]).await;
    let mut config = FeedConfig::default();
    config.reconnect = config.reconnect.with_max_times(1);
    let client = MetricsClient::builder(StaticToken::bearer("good").unwrap())
        .base_url(server.base_url())
        .feed_config(config)
        .build()
        .unwrap();
    let mut feed = client.connect().await.unwrap();
    let padding = "x".repeat(70 * 1024);
    let big = update(
        "chats",
        &format!(r#"{{"active_chats":1,"padding":"{padding}"}}"#),
        None,
    );
    let mut conn = server.next_connection().await;
    let start = tokio::time::Instant::now();
    for hour in 1..=3 {
        tokio::time::sleep_until(start + Duration::from_secs(hour * 3600)).await;
        conn.send(big.clone());
        let (attempt, _, kind) = reconnecting(&mut feed).await;
        assert_eq!((attempt, kind), (1, ErrorKind::TooLarge), "hour {hour}");
        conn = server.next_connection().await;
        assert!(
            matches!(next(&mut feed).await, FeedEvent::Reconnected),
            "hour {hour}"
        );
    }
}

/// A policy the application capped ends the feed once it has no delay left, with the
/// failure of the last attempt, rather than retrying on a schedule of the crate's own.
#[tokio::test(start_paused = true)]
async fn a_capped_reconnect_policy_ends_the_feed_when_it_runs_out() {
    let mut server = TestServer::start(&["good"]).await;
    let mut config = FeedConfig::default();
    config.reconnect = config.reconnect.with_max_times(2);
    let client = MetricsClient::builder(StaticToken::bearer("good").unwrap())
        .base_url(server.base_url())
        .feed_config(config)
        .build()
        .unwrap();
    let mut feed = client.connect().await.unwrap();
    let conn = server.next_connection().await;
    server.reject_upgrades(Some(Canned {
        status: 503,
        retry_after: None,
        body: "maintenance".into(),
    }));
    conn.cut();
    let (attempt, _, kind) = reconnecting(&mut feed).await;
    assert_eq!((attempt, kind), (1, ErrorKind::Transport));
    let (attempt, _, kind) = reconnecting(&mut feed).await;
    assert_eq!((attempt, kind), (2, ErrorKind::HttpStatus));
    let why = "a policy capped at two attempts must end the feed after the second";
    let error = closed(&mut feed, &client, why).await;
    assert_eq!(
        (error.kind(), error.status()),
        (ErrorKind::HttpStatus, Some(503))
    );
    assert_eq!(error.body(), Some("maintenance"));
}

/// `close().await` promises the feed has ended; a `connect()` right after it must find the
/// feed's connection slot free. Checked at the very moment the feed's state turns `Closed`
/// (the waker of the `close()` future runs inside that change, on the driver's side), which
/// is when a `close()` polled on another worker thread may return.
#[tokio::test(start_paused = true)]
async fn the_connection_slot_is_free_when_close_returns() {
    let mut server = TestServer::start(&["good"]).await;
    let client = client(&server, "good");
    let feed = client.connect().await.unwrap();
    let _conn = server.next_connection().await;
    let handle = feed.handle();
    // Answered by the driver: it has started, and announced its first state, before the
    // recording waker is registered, so the only change it sees is the end.
    handle.subscriptions().await.unwrap();
    assert_eq!(client.open_feeds(), 1);

    let recorder = Arc::new(OpenFeedsAtWake {
        client: client.clone(),
        state: handle.state(),
        seen: Mutex::new(Vec::new()),
        outer: Mutex::new(None),
    });
    let waker = Waker::from(Arc::clone(&recorder));
    let mut closing = std::pin::pin!(handle.close());
    std::future::poll_fn(|cx| {
        *recorder.outer.lock().unwrap() = Some(cx.waker().clone());
        closing.as_mut().poll(&mut Context::from_waker(&waker))
    })
    .await;
    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [(FeedState::Closed, 0)],
        "state and open feeds at each wake"
    );
    assert_eq!(client.open_feeds(), 0);
}

/// A waker that records the feed's state and how many feeds the client holds whenever it is
/// woken, then wakes the task that polls on its behalf.
struct OpenFeedsAtWake {
    client: MetricsClient,
    state: StateReceiver,
    seen: Mutex<Vec<(FeedState, usize)>>,
    outer: Mutex<Option<Waker>>,
}

impl Wake for OpenFeedsAtWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let seen = (self.state.get(), self.client.open_feeds());
        self.seen.lock().unwrap().push(seen);
        if let Some(outer) = self.outer.lock().unwrap().take() {
            outer.wake();
        }
    }
}
