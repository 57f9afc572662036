//! The client against the emulator's Real Time Chat service: metrics move as simulated chats
//! progress, the snapshot follows, REST agrees, and the emulator's refusals are typed.
//!
//! These run on the real clock and never wait for a duration: every wait is for a frame the
//! emulator sends because of a state change the test made. Conditions the emulator cannot be
//! made to produce (a cut socket, a silent peer, a 500 frame, lag) are in `feed.rs`.

use std::time::Duration;

use futures_util::StreamExt;
use zd_emulator::Emulator;
use zd_emulator::state::{AgentStatus, Arrival, ChatState, OutgoingMessage, Rating};
use zd_metrics::{
    ErrorKind, ExponentialBuilder, Feed, FeedConfig, FeedEvent, Metric, MetricsClient, Series,
    StaticToken, Window,
};

const ALICE: &str = "demo-alice-token";

struct Setup {
    emu: Emulator,
    support: u64,
    alice: String,
}

async fn setup() -> Setup {
    setup_with(Emulator::builder()).await
}

async fn setup_with(builder: zd_emulator::EmulatorBuilder) -> Setup {
    let emu = builder.start().await.unwrap();
    let account = emu.account();
    let support = account
        .departments
        .iter()
        .find(|d| d.name == "Support")
        .unwrap()
        .raw_id
        .parse()
        .unwrap();
    let alice = account
        .agents
        .iter()
        .find(|a| a.name == "Alice")
        .unwrap()
        .raw_id
        .clone();
    Setup {
        emu,
        support,
        alice,
    }
}

impl Setup {
    fn state(&self) -> &ChatState {
        self.emu.control().state()
    }

    fn client(&self, token: &str) -> MetricsClient {
        self.client_with(token, |_| {})
    }

    fn client_with(&self, token: &str, configure: impl FnOnce(&mut FeedConfig)) -> MetricsClient {
        let mut config = FeedConfig::default();
        config.reconnect = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(5))
            .with_max_delay(Duration::from_millis(50))
            .with_jitter();
        configure(&mut config);
        MetricsClient::builder(StaticToken::bearer(token).unwrap())
            .base_url(self.emu.base_url())
            .feed_config(config)
            .build()
            .unwrap()
    }

    fn arrive(&self) -> String {
        self.state()
            .visitor_arrive(Arrival {
                department: Some("Support".into()),
                ..Default::default()
            })
            .unwrap()
            .key
    }
}

/// The next update, as (series, value).
async fn update(feed: &mut Feed) -> (String, Option<i64>) {
    loop {
        match feed.next().await.expect("feed ended") {
            FeedEvent::Update(u) => return (u.series.to_string(), u.value),
            FeedEvent::Closed(e) => panic!("closed: {e}"),
            _ => {}
        }
    }
}

async fn updates(feed: &mut Feed, n: usize) -> Vec<(String, Option<i64>)> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(update(feed).await);
    }
    out.sort();
    out
}

#[tokio::test]
async fn feed_and_snapshot_follow_simulated_chats() {
    let s = setup().await;
    s.state()
        .set_agent_status(&s.alice, AgentStatus::Online)
        .unwrap();
    let client = s.client(ALICE);
    let mut feed = client.connect().await.unwrap();
    let incoming = Series::metric(Metric::IncomingChats).department(s.support);
    let active = Series::metric(Metric::ActiveChats);
    let missed = Series::windowed(Metric::MissedChats, Window::Minutes30);
    let good = Series::windowed(Metric::SatisfactionGood, Window::Minutes60).department(s.support);
    let online = Series::metric(Metric::AgentsOnline).department(s.support);
    for series in [&incoming, &active, &missed, &good, &online] {
        feed.subscribe(series.clone()).await.unwrap();
    }
    // The emulator answers every subscribe with the current value.
    let dept = s.support;
    assert_eq!(
        updates(&mut feed, 5).await,
        vec![
            (format!("agents.agents_online@{dept}"), Some(1)),
            ("chats.active_chats".to_owned(), Some(0)),
            (format!("chats.incoming_chats@{dept}"), Some(0)),
            ("chats.missed_chats[30m]".to_owned(), Some(0)),
            (format!("chats.satisfaction_good[60m]@{dept}"), Some(0)),
        ]
    );

    let first = s.arrive();
    assert_eq!(
        update(&mut feed).await,
        (format!("chats.incoming_chats@{dept}"), Some(1))
    );
    let snapshot = feed.snapshot();
    assert_eq!(snapshot.borrow().get(&incoming), Some(1));

    s.state()
        .agent_send(
            &s.alice,
            &first,
            OutgoingMessage {
                msg: "Hi, how can I help?".into(),
                ..Default::default()
            },
            false,
        )
        .unwrap();
    assert_eq!(
        updates(&mut feed, 2).await,
        vec![
            ("chats.active_chats".to_owned(), Some(1)),
            (format!("chats.incoming_chats@{dept}"), Some(0)),
        ]
    );

    s.state().visitor_rate(&first, Rating::Good).unwrap();
    assert_eq!(
        update(&mut feed).await,
        (format!("chats.satisfaction_good[60m]@{dept}"), Some(1))
    );

    let second = s.arrive();
    assert_eq!(
        update(&mut feed).await,
        (format!("chats.incoming_chats@{dept}"), Some(1))
    );
    s.state().visitor_leave(&second).unwrap();
    assert_eq!(
        updates(&mut feed, 2).await,
        vec![
            ("chats.missed_chats[30m]".to_owned(), Some(1)),
            (format!("chats.incoming_chats@{dept}"), Some(0)),
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );

    s.state()
        .set_agent_status(&s.alice, AgentStatus::Away)
        .unwrap();
    assert_eq!(
        update(&mut feed).await,
        (format!("agents.agents_online@{dept}"), Some(0))
    );
    let snap = snapshot.borrow().clone();
    assert_eq!(snap.get(&active), Some(1));
    assert_eq!(snap.get(&missed), Some(1));
    assert_eq!(snap.get(&good), Some(1));
    assert_eq!(snap.get(&online), Some(0));
    assert_eq!(snap.len(), 5);

    // Unsubscribing stops a series: the next change of it is not reported, the next change of
    // another series is.
    feed.unsubscribe(incoming.clone()).await.unwrap();
    feed.subscribe(Series::metric(Metric::AgentsAway))
        .await
        .unwrap();
    assert_eq!(
        update(&mut feed).await,
        ("agents.agents_away".to_owned(), Some(1))
    );
    s.arrive();
    s.state()
        .set_agent_status(&s.alice, AgentStatus::Online)
        .unwrap();
    assert_eq!(
        updates(&mut feed, 2).await,
        vec![
            (format!("agents.agents_online@{dept}"), Some(1)),
            ("agents.agents_away".to_owned(), Some(0)),
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    assert_eq!(snapshot.borrow().get_tracked(&incoming), None);
}

#[tokio::test]
async fn rest_pull_matches_the_state() {
    let s = setup().await;
    let client = s.client(ALICE);
    let report = client.chats().await.unwrap();
    assert!(!report.computed, "an idle account is Not Computed");
    assert!(report.values.is_empty());

    let channel = s.arrive();
    s.arrive();
    s.state().visitor_leave(&channel).unwrap();
    let report = client
        .chats()
        .window(Window::Minutes30)
        .department(s.support)
        .await
        .unwrap();
    assert!(report.computed);
    let dept = |series: Series| series.department(s.support);
    assert_eq!(
        report.get(&dept(Series::metric(Metric::IncomingChats))),
        Some(1)
    );
    assert_eq!(
        report.get(&dept(Series::windowed(
            Metric::MissedChats,
            Window::Minutes30
        ))),
        Some(1)
    );
    assert!(!report.contains(&dept(Series::windowed(
        Metric::MissedChats,
        Window::Minutes60
    ))));
    assert!(report.contains(&dept(Series::metric(Metric::ChatDurationAvg))));
    assert_eq!(
        report.get(&dept(Series::metric(Metric::ChatDurationAvg))),
        None
    );

    s.state()
        .set_agent_status(&s.alice, AgentStatus::Invisible)
        .unwrap();
    let agents = client.agent_metric(Metric::AgentsInvisible).await.unwrap();
    assert_eq!(
        agents.get(&Series::metric(Metric::AgentsInvisible)),
        Some(1)
    );
}

/// A feed's lifecycle event as `kind:error kind` (values and other events are not expected).
fn lifecycle_kind(event: FeedEvent) -> String {
    match event {
        FeedEvent::Reconnecting { error, .. } => format!("reconnecting:{:?}", error.kind()),
        FeedEvent::Reconnected => "reconnected".into(),
        FeedEvent::Closed(error) => format!("closed:{:?}", error.kind()),
        FeedEvent::Rejected(error) => format!("rejected:{:?}", error.kind()),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn refused_token_ends_the_feed_with_unauthorized() {
    let s = setup().await;
    let client = s.client("not-a-token");
    let mut feed = client.connect().await.unwrap();
    let mut kinds = Vec::new();
    while let Some(event) = feed.next().await {
        kinds.push(lifecycle_kind(event));
    }
    assert_eq!(
        kinds,
        [
            "reconnecting:Unauthorized",
            "reconnected",
            "closed:Unauthorized"
        ]
    );
    let err = client.agents().await.unwrap_err();
    assert_eq!(
        (err.kind(), err.status()),
        (ErrorKind::Unauthorized, Some(401))
    );
}

#[tokio::test]
async fn emulator_429_for_an_eleventh_connection_is_typed() {
    let s = setup().await;
    // Two clients with the same token do not share a local cap, so the server's is reached.
    let first = s.client(ALICE);
    let second = s.client(ALICE);
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(first.connect().await.unwrap());
    }
    assert_eq!(
        first.connect().await.unwrap_err().kind(),
        ErrorKind::AgentConnectionCap,
        "the local cap refuses without asking"
    );
    let err = second.connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.status(), Some(429));
    assert!(
        err.body()
            .is_some_and(|b| b.contains("an agent may hold 10")),
        "{err:?}"
    );
    assert!(err.retry_after().is_some());
}

/// Whether the service answers a subscribe with the current value is undocumented: against an
/// emulator that waits for the next change, the snapshot is unknown until then, and the REST
/// pull the README recommends gives the starting value.
#[tokio::test]
async fn without_a_value_on_subscribe_rest_seeds_and_the_feed_follows() {
    let builder =
        Emulator::builder().realtime_subscribe_answer(zd_emulator::SubscribeAnswer::NextChange);
    let s = setup_with(builder).await;
    s.arrive();
    let client = s.client(ALICE);
    let mut feed = client.connect().await.unwrap();
    let incoming = Series::metric(Metric::IncomingChats);
    feed.subscribe(incoming.clone()).await.unwrap();
    let seeded = client.chats().await.unwrap();
    assert_eq!(
        seeded.get(&incoming),
        Some(1),
        "REST gives the starting value"
    );
    assert_eq!(
        feed.snapshot().borrow().get(&incoming),
        None,
        "the feed has none yet"
    );
    assert_eq!(
        feed.handle().seed(&seeded).await.unwrap(),
        1,
        "the one followed series the feed had no value for"
    );
    assert_eq!(feed.snapshot().borrow().get(&incoming), Some(1));
    // Seeding again fills nothing: the value is known now.
    assert_eq!(feed.handle().seed(&seeded).await.unwrap(), 0);
    s.arrive();
    assert_eq!(update(&mut feed).await, (incoming.to_string(), Some(2)));
    assert_eq!(feed.snapshot().borrow().get(&incoming), Some(2));
}

/// The emulator refuses a bad token right after the upgrade (a 401 frame, then a close): a
/// client that writes its subscriptions first sees its writes fail, yet the refusal it was
/// sent still decides how the feed ends (two in a row), never a transport error.
#[tokio::test]
async fn refused_token_with_many_subscriptions_still_ends_with_unauthorized() {
    let s = setup().await;
    let client = s.client("not-a-token");
    let mut feed = client.connect().await.unwrap();
    for one in all_series() {
        // The feed may already have ended: a subscribe then reports Closed.
        if let Err(e) = feed.subscribe(one).await {
            assert_eq!(e.kind(), ErrorKind::Closed, "{e:?}");
        }
    }
    let mut kinds = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = feed.next().await {
            kinds.push(lifecycle_kind(event));
        }
    })
    .await;
    assert!(ended.is_ok(), "the feed never ended: {kinds:?}");
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("closed:Unauthorized"),
        "{kinds:?}"
    );
    assert!(
        !kinds
            .iter()
            .any(|k| k.starts_with("reconnecting:Transport")),
        "{kinds:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| k.starts_with("reconnecting:"))
            .count(),
        1,
        "one retry after the first refusal: {kinds:?}"
    );
}

/// Every series of the catalogue (15), as `zd metrics watch` subscribes them.
fn all_series() -> Vec<Series> {
    Metric::KNOWN
        .iter()
        .map(|m| {
            if m.is_windowed() {
                Series::windowed(m.clone(), Window::Minutes30)
            } else {
                Series::metric(m.clone())
            }
        })
        .collect()
}

/// A reader that reads nothing until the feed has ended still learns why it ended: the
/// final `Closed` is never dropped for want of room, even with a one-event buffer.
#[tokio::test]
async fn closed_reaches_a_reader_that_fell_behind() {
    let s = setup().await;
    let client = s.client_with("not-a-token", |config| config.event_buffer = 1);
    let mut feed = client.connect().await.unwrap();
    let mut snapshot = feed.snapshot();
    // Fails once the driver is gone, so every event it will ever send has been sent.
    while snapshot.changed().await.is_ok() {}
    let mut events = Vec::new();
    while let Some(event) = feed.next().await {
        events.push(event);
    }
    match events.last() {
        Some(FeedEvent::Closed(error)) => assert_eq!(error.kind(), ErrorKind::Unauthorized),
        other => panic!("the stream ended without Closed: last {other:?} of {events:?}"),
    }
}
