//! The real session against the real emulator over loopback.

// Helpers outside #[test] functions panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, Stream, StreamExt, TryStreamExt};
use zd_agent::rate_limit::StartLimiter;
use zd_agent::structured::{
    Button, ButtonTemplate, CarouselItem, Fallback, LimitError, ListItem, ListTemplate, Panel,
    PanelCarousel, PanelTemplate, QuickReplies,
};
use zd_agent::{
    AgentSession, AgentStatus, Config, Driver, ErrorKind, ErrorName, LifecycleEvent, Message,
    OnConcurrentSession, ResumableFacts, SessionState, StaticToken, Subscription,
};
use zd_emulator::Emulator;
use zd_emulator::state::Arrival;

/// Generous bound so a broken test fails instead of hanging; never reached when green.
const PATIENCE: Duration = Duration::from_secs(20);

struct Bot {
    emu: Emulator,
    session: AgentSession,
    driver: tokio::task::JoinHandle<()>,
}

/// A bot's config: its own start limiter, as the bot of its own process it plays (emulators
/// of other tests may reuse a port, and their agents have the same tokens).
fn config_for(emu: &Emulator) -> Config {
    let mut config = Config::with_endpoint(emu.graphql_url().parse().unwrap());
    config.reconnect.min_delay = Duration::from_millis(5);
    config.start_limiter = Some(Arc::new(StartLimiter::default()));
    config
}

async fn start_with(emu: Emulator, config: Config) -> Bot {
    let token = emu.account().agents[0].access_token.clone();
    let creds = Arc::new(StaticToken::bearer(token).unwrap());
    let (session, driver) = AgentSession::connect(config, creds).await.unwrap();
    let driver = tokio::spawn(driver);
    Bot {
        emu,
        session,
        driver,
    }
}

async fn bot() -> Bot {
    bot_with(|_| {}).await
}

/// A bot on a fresh emulator, its config changed by `change` first.
async fn bot_with(change: impl FnOnce(&mut Config)) -> Bot {
    let emu = Emulator::builder().start().await.unwrap();
    let mut config = config_for(&emu);
    change(&mut config);
    start_with(emu, config).await
}

async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, f).await.expect("timed out")
}

/// The visitor of `channel` says `text`, and `messages` hears it.
async fn heard(bot: &Bot, channel: &str, messages: &mut Subscription<Message>, text: &str) {
    say(bot, channel, text);
    assert_eq!(next_visitor_message(messages).await.content, text);
}

/// Waits (within the test's patience) until `done` holds.
async fn until(done: impl Fn() -> bool) {
    within(async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

async fn next_visitor_message(sub: &mut Subscription<Message>) -> Message {
    within(async {
        loop {
            let m = sub
                .next()
                .await
                .expect("subscription ended")
                .expect("subscription error");
            if m.is_from_visitor() {
                return m;
            }
        }
    })
    .await
}

async fn next_event(events: &mut (impl Stream<Item = LifecycleEvent> + Unpin)) -> LifecycleEvent {
    within(events.next()).await.expect("lifecycle ended")
}

/// The first lifecycle event `pick` takes, the others skipped.
async fn first_event<T>(
    events: &mut (impl Stream<Item = LifecycleEvent> + Unpin),
    mut pick: impl FnMut(LifecycleEvent) -> Option<T>,
) -> T {
    within(async {
        loop {
            if let Some(found) = pick(next_event(events).await) {
                return found;
            }
        }
    })
    .await
}

/// An operation nested 12 levels deep, one more than the service allows.
fn twelve_deep(operation: &str) -> String {
    let mut deep = format!("{operation} ");
    for i in 0..12 {
        deep.push_str(&format!("{{ f{i} "));
    }
    deep.push_str(&"}".repeat(12));
    deep
}

/// Whether every subscription of the bot is started on the current socket.
fn subscriptions_live(bot: &Bot) -> bool {
    bot.session
        .resumable()
        .subscriptions
        .iter()
        .all(|s| s.server_id.is_some())
}

/// The session's next `count` requests meet the documented "GraphQL server unavailable" and
/// its socket drops; returns once it is back with every subscription live.
async fn unavailable_then_drop(
    bot: &Bot,
    events: &mut (impl Stream<Item = LifecycleEvent> + Unpin),
    count: u32,
) {
    let sid = session_id(bot);
    let control = bot.emu.control();
    control
        .fault_protocol_error(&sid, count, 503, "GraphQL server unavailable")
        .unwrap();
    control.fault_drop(&sid).await.unwrap();
    until_connected(events).await;
    until_live(bot).await;
}

/// The visitor of `channel` says `text`.
fn say(bot: &Bot, channel: &str, text: &str) {
    bot.emu.control().visitor_message(channel, text).unwrap();
}

/// The bot says `text` in `channel`, which makes it serve the chat (so the chat is among its
/// channels, where a catch-up looks).
async fn bot_says(bot: &Bot, channel: &str, text: &str) {
    let message = zd_agent::OutgoingMessage::new(cynic::Id::new(channel), text);
    bot.session.send_message(message).await.unwrap();
}

/// Waits until every subscription of the bot is started on the current socket.
async fn until_live(bot: &Bot) {
    within(async {
        while !subscriptions_live(bot) {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// Waits for the next `Connected` event, skipping the others.
async fn until_connected(events: &mut (impl Stream<Item = LifecycleEvent> + Unpin)) {
    first_event(events, |e| {
        matches!(e, LifecycleEvent::Connected { .. }).then_some(())
    })
    .await;
}

/// Puts the bot online, then drops its socket; returns the session id.
async fn online_then_drop(bot: &Bot) -> String {
    bot.session
        .update_agent_status(AgentStatus::Online)
        .await
        .unwrap();
    let sid = session_id(bot);
    bot.emu.control().fault_drop(&sid).await.unwrap();
    sid
}

fn session_id(bot: &Bot) -> String {
    bot.session.resumable().session_id.unwrap()
}

/// Fails the bot session's next `count` requests with the error `name` (0: no more).
fn fail_next(bot: &Bot, count: u32, name: &str) {
    bot.emu
        .control()
        .fault_fail(&session_id(bot), count, name)
        .unwrap();
}

fn visitor(bot: &Bot) -> String {
    bot.emu
        .control()
        .visitor_arrive(Arrival::default())
        .unwrap()
        .channel_id
}

fn transcript_texts(bot: &Bot, channel: &str) -> Vec<String> {
    let t = bot.emu.control().transcript(channel).unwrap();
    t.entries
        .iter()
        .filter(|e| e.kind == "message")
        .map(|e| e.text.clone())
        .collect()
}

#[tokio::test]
async fn echo_round_trip() {
    let bot = bot().await;
    let mut messages = bot.session.messages().await.unwrap();
    bot.session
        .update_agent_status(AgentStatus::Online)
        .await
        .unwrap();
    let channel = visitor(&bot);
    say(&bot, &channel, "hello");
    let m = next_visitor_message(&mut messages).await;
    assert_eq!(m.content, "hello");
    assert_eq!(m.channel.id.inner(), channel);
    let msg_id = bot
        .session
        .say(m.channel.id.clone(), "echo: hello")
        .await
        .unwrap();
    // The agent's own message comes back on the subscription, with our msg_id.
    let own = within(async {
        loop {
            let m = messages.next().await.unwrap().unwrap();
            if !m.is_from_visitor() {
                return m;
            }
        }
    })
    .await;
    assert_eq!(own.msg_id.as_deref(), Some(msg_id.as_str()));
    assert_eq!(
        transcript_texts(&bot, &channel),
        vec!["hello", "echo: hello"]
    );
    drop(messages);
    bot.session.stop().await.unwrap();
    within(bot.driver).await.unwrap();
}

#[tokio::test]
async fn queries_paginate() {
    let bot = bot().await;
    let account = bot.emu.account();
    let agents: Vec<_> = within(bot.session.agents().try_collect()).await.unwrap();
    let mut ids: Vec<_> = agents.iter().map(|a| a.id.inner().to_owned()).collect();
    let mut want: Vec<_> = account.agents.iter().map(|a| a.id.clone()).collect();
    ids.sort();
    want.sort();
    assert_eq!(ids, want);
    let departments: Vec<_> = within(bot.session.departments().try_collect())
        .await
        .unwrap();
    assert_eq!(departments.len(), account.departments.len());
    let channel = visitor(&bot);
    bot.session
        .say(cynic::Id::new(&channel), "hi")
        .await
        .unwrap();
    let channels: Vec<_> = within(bot.session.channels().try_collect()).await.unwrap();
    assert!(
        channels.iter().any(|c| c.id().inner() == channel),
        "{channels:?}"
    );
}

#[tokio::test]
async fn every_mutation_reaches_the_chat() {
    let bot = bot().await;
    let s = &bot.session;
    let account = bot.emu.account();
    let channel = visitor(&bot);
    let cid = || cynic::Id::new(&channel);
    s.update_agent_status(AgentStatus::Online).await.unwrap();
    s.listen_visitor_channel(cid()).await.unwrap();
    s.set_typing(cid(), true).await.unwrap();
    s.say(cid(), "plain").await.unwrap();
    s.add_tags(cid(), vec!["vip".into(), "a-b_c".into()])
        .await
        .unwrap();
    let bad = s
        .add_tags(cid(), vec!["no spaces".into()])
        .await
        .unwrap_err();
    assert!(matches!(bad.kind(), ErrorKind::InvalidTag(_)));
    assert_eq!(
        bot.emu.control().transcript(&channel).unwrap().tags,
        vec!["vip", "a-b_c"]
    );

    let quick = QuickReplies::new("Flavor?")
        .reply("Chocolate", "chocolate")
        .reply("Vanilla", "vanilla");
    s.send_quick_replies(cid(), quick.with_default_fallback())
        .await
        .unwrap();
    let buttons = ButtonTemplate::new("Pick")
        .button(Button::reply("Yes", "yes"))
        .button(Button::link("Docs", "https://example.com"))
        .fallback(Fallback::new("Pick").option("Yes"));
    s.send_button_template(cid(), buttons).await.unwrap();
    let panel = PanelTemplate::new(
        Panel::new("Title")
            .paragraph("Body")
            .link("https://example.com"),
    )
    .button(Button::link("Open", "https://example.com"));
    s.send_panel_template(cid(), panel).await.unwrap();
    let item = |h: &str| CarouselItem::new(Panel::new(h)).button(Button::reply("Pick", h));
    let carousel = PanelCarousel::new()
        .item(item("one"))
        .item(item("two"))
        .fallback(Fallback::new("Pick one"));
    s.send_panel_carousel(cid(), carousel).await.unwrap();
    let list = ListTemplate::new()
        .item(ListItem::new("A", "first", "https://example.com/a"))
        .item(ListItem::new("B", "second", "https://example.com/b"))
        .button(Button::link("More", "https://example.com"));
    s.send_list_template(cid(), list).await.unwrap();
    // Limits are checked locally.
    let too_few = s
        .send_panel_carousel(cid(), PanelCarousel::new().item(item("x")))
        .await
        .unwrap_err();
    assert!(matches!(too_few.kind(), ErrorKind::Limit(_)));
    let t = bot.emu.control().transcript(&channel).unwrap();
    let structured = t.entries.iter().filter(|e| e.structured.is_some()).count();
    assert_eq!(structured, 5, "{t:?}");
    // The visitor answers a quick reply by its label.
    bot.emu
        .control()
        .visitor_choose(&channel, "Chocolate")
        .unwrap();
    assert!(transcript_texts(&bot, &channel).contains(&"chocolate".to_owned()));

    let other = account
        .agents
        .iter()
        .find(|a| a.id != account.agents[0].id)
        .unwrap();
    s.invite_agent(cid(), cynic::Id::new(&other.id), Some(false))
        .await
        .unwrap();
    let department = cynic::Id::new(&account.departments[0].id);
    s.transfer_to_department(cid(), department, None)
        .await
        .unwrap();
    s.set_typing(cid(), false).await.unwrap();
    s.leave_channel(cid()).await.unwrap();
}

/// `data` of a `message` subscription with a selection set of the caller's own.
#[derive(Debug, serde::Deserialize)]
struct LeanData {
    message: Option<LeanEdge>,
}

#[derive(Debug, serde::Deserialize)]
struct LeanEdge {
    node: Option<LeanNode>,
}

#[derive(Debug, serde::Deserialize)]
struct LeanNode {
    content: String,
    channel: LeanChannel,
    from: LeanSender,
}

#[derive(Debug, serde::Deserialize)]
struct LeanChannel {
    id: String,
}

#[derive(Debug, serde::Deserialize)]
struct LeanSender {
    #[serde(rename = "__typename")]
    typename: String,
    display_name: Option<String>,
}

/// A type whose `content` must be a number: no message fits it. (Never read: decoding fails.)
#[allow(dead_code)]
#[derive(Debug, serde::Deserialize)]
struct Misfit {
    message: Option<MisfitEdge>,
}

#[allow(dead_code)]
#[derive(Debug, serde::Deserialize)]
struct MisfitEdge {
    node: MisfitNode,
}

#[allow(dead_code)]
#[derive(Debug, serde::Deserialize)]
struct MisfitNode {
    content: u64,
}

#[tokio::test]
async fn a_document_subscription_decodes_into_the_callers_type() {
    let bot = bot().await;
    const LEAN: &str = "subscription { message { node { content channel { id } from { __typename display_name } } } }";
    let mut lean = bot
        .session
        .subscribe_document::<LeanData>(LEAN, None)
        .await
        .unwrap();
    let mut misfit = bot
        .session
        .subscribe_document::<Misfit>("subscription { message { node { content } } }", None)
        .await
        .unwrap();
    bot.session
        .update_agent_status(AgentStatus::Online)
        .await
        .unwrap();
    let channel = visitor(&bot);
    for text in ["first", "second"] {
        say(&bot, &channel, text);
    }
    for text in ["first", "second"] {
        let node = within(async {
            loop {
                let data = lean.next().await.unwrap().unwrap();
                let node = data.message.and_then(|e| e.node).unwrap();
                if node.from.typename == "Visitor" {
                    return node;
                }
            }
        })
        .await;
        assert_eq!(node.content, text);
        assert_eq!(node.channel.id, channel);
        assert!(node.from.display_name.is_some());
    }
    // Both messages reach the misfit as decode errors, one each, and the stream stays open.
    for _ in 0..2 {
        let err = within(misfit.next()).await.unwrap().unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Decode), "{err:?}");
    }
    // The document is depth-checked before anything is sent.
    let deep = twelve_deep("subscription");
    let err = bot
        .session
        .subscribe_document::<serde_json::Value>(&deep, None)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Document));
}

/// A typed subscription 12 fields deep (one more than the service allows), built with cynic:
/// `message { node { channel { logs { edges { node { ... on Message { channel { logs { edges {
/// node { ... on Message { channel { id } } } } } } } } } } } } }`.
#[allow(missing_debug_implementations, unreachable_pub, dead_code)]
mod deep {
    #[cynic::schema("chat")]
    mod schema {}

    #[derive(cynic::QueryFragment, Debug)]
    #[cynic(graphql_type = "Subscription")]
    pub struct DeepSubscription {
        pub message: Option<Event>,
    }

    #[derive(cynic::QueryFragment, Debug)]
    #[cynic(graphql_type = "MessageSubscriptionPayload")]
    pub struct Event {
        pub node: Option<Message1>,
    }

    #[derive(cynic::QueryFragment, Debug)]
    #[cynic(graphql_type = "Message")]
    pub struct Message1 {
        pub channel: Channel1,
    }

    #[derive(cynic::QueryFragment, Debug)]
    #[cynic(graphql_type = "Channel")]
    pub struct Channel1 {
        pub logs: Option<Logs1>,
    }

    #[derive(cynic::QueryFragment, Debug)]
    #[cynic(graphql_type = "ChatLogConnection")]
    pub struct Logs1 {
        pub edges: Option<Vec<Option<Edge1>>>,
    }

    #[derive(cynic::QueryFragment, Debug)]
    #[cynic(graphql_type = "ChatLogEdge")]
    pub struct Edge1 {
        pub node: Option<Log1>,
    }

    #[derive(cynic::InlineFragments, Debug)]
    #[cynic(graphql_type = "ChatLog")]
    pub enum Log1 {
        Message(Message2),
        #[cynic(fallback)]
        Other,
    }

    #[derive(cynic::QueryFragment, Debug)]
    #[cynic(graphql_type = "Message")]
    pub struct Message2 {
        pub channel: Channel2,
    }

    #[derive(cynic::QueryFragment, Debug)]
    #[cynic(graphql_type = "Channel")]
    pub struct Channel2 {
        pub logs: Option<Logs2>,
    }

    #[derive(cynic::QueryFragment, Debug)]
    #[cynic(graphql_type = "ChatLogConnection")]
    pub struct Logs2 {
        pub edges: Option<Vec<Option<Edge2>>>,
    }

    #[derive(cynic::QueryFragment, Debug)]
    #[cynic(graphql_type = "ChatLogEdge")]
    pub struct Edge2 {
        pub node: Option<Log2>,
    }

    #[derive(cynic::InlineFragments, Debug)]
    #[cynic(graphql_type = "ChatLog")]
    pub enum Log2 {
        Message(Message3),
        #[cynic(fallback)]
        Other,
    }

    #[derive(cynic::QueryFragment, Debug)]
    #[cynic(graphql_type = "Message")]
    pub struct Message3 {
        pub channel: Channel3,
    }

    #[derive(cynic::QueryFragment, Debug)]
    #[cynic(graphql_type = "Channel")]
    pub struct Channel3 {
        pub id: cynic::Id,
    }
}

/// The service would refuse it with GRAPHQL_SUB_START_ERROR, which is retried for 30 s: the
/// typed path refuses it at once instead, and sends nothing.
#[tokio::test]
async fn a_too_deep_typed_subscription_is_refused_before_anything_is_sent() {
    use cynic::SubscriptionBuilder;
    let bot = bot().await;
    let op = deep::DeepSubscription::build(());
    assert_eq!(zd_agent::depth::query_depth(op.query()).unwrap(), 12);
    let sid = session_id(&bot);
    let before = session_report(&bot.emu, &sid).counts;
    let err = within(bot.session.subscribe(op)).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Document), "{err:?}");
    let after = session_report(&bot.emu, &sid).counts;
    assert_eq!(after.requests, before.requests);
    assert_eq!(after.subscriptions_started, before.subscriptions_started);
}

#[tokio::test]
async fn raw_execute_checks_depth_first() {
    let bot = bot().await;
    let data = bot
        .session
        .execute("query { departments { edges { node { id name } } } }", None)
        .await
        .unwrap();
    assert!(
        data["departments"]["edges"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    );
    let deep = twelve_deep("query");
    let err = bot.session.execute(&deep, None).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Document));
    let exec = bot
        .session
        .execute("query { nope }", None)
        .await
        .unwrap_err();
    assert_eq!(
        exec.error_name(),
        Some(&ErrorName::GraphQlExecError),
        "{exec:?}"
    );
}

#[tokio::test]
async fn an_eleventh_subscription_is_refused_locally() {
    let bot = bot().await;
    let mut subs = Vec::new();
    for _ in 0..10 {
        subs.push(bot.session.messages().await.unwrap());
    }
    let err = bot.session.messages().await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::TooManySubscriptions));
    assert_eq!(bot.session.live_subscriptions().await.unwrap().len(), 10);
    // Dropping one frees its slot at once (and stops it on the server), even on a
    // single-threaded runtime where the driver has not run since the drop.
    subs.pop();
    let again = within(bot.session.messages()).await.unwrap();
    drop(again);
    subs.pop();
    let again = within(bot.session.messages()).await;
    assert!(again.is_ok(), "{again:?}");
}

#[tokio::test]
async fn an_abrupt_close_reconnects_to_the_same_session() {
    let bot = bot().await;
    let mut events = Box::pin(bot.session.lifecycle());
    let mut messages = bot.session.messages().await.unwrap();
    let sid = online_then_drop(&bot).await;
    let first = next_event(&mut events).await;
    assert!(
        matches!(first, LifecycleEvent::Reconnecting { attempt: 1, .. }),
        "{first:?}"
    );
    assert!(matches!(
        next_event(&mut events).await,
        LifecycleEvent::Connected { .. }
    ));
    assert_eq!(session_id(&bot), sid);
    // Wait until the subscription is live again on the new socket.
    within(bot.session.wait_for_state(|s| *s == SessionState::Active)).await;
    let channel = visitor(&bot);
    until_live(&bot).await;
    heard(&bot, &channel, &mut messages, "after the drop").await;
}

#[tokio::test]
async fn seven_subscriptions_survive_a_reconnect_within_the_ten_allowed() {
    let bot = bot().await;
    let mut events = Box::pin(bot.session.lifecycle());
    let mut subs = Vec::new();
    for _ in 0..7 {
        subs.push(bot.session.messages().await.unwrap());
    }
    let sid = online_then_drop(&bot).await;
    until_connected(&mut events).await;
    // The old seven are stopped before the new seven start: never more than ten at once, so
    // none is refused with MAX_SUB and the service ends up serving exactly seven.
    within(async {
        loop {
            let live = bot.session.resumable().subscriptions;
            let report = session_report(&bot.emu, &sid);
            if live.len() == 7 && subscriptions_live(&bot) && report.subscriptions == 7 {
                break;
            }
            assert_eq!(live.len(), 7, "a subscription was lost: {live:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let channel = visitor(&bot);
    say(&bot, &channel, "to all seven");
    for sub in &mut subs {
        assert_eq!(next_visitor_message(sub).await.content, "to all seven");
    }
}

#[tokio::test]
async fn with_resends_off_a_message_lost_with_its_socket_fails_instead() {
    let bot = bot_with(|config| {
        config.resend_messages = false;
    })
    .await;
    bot.session
        .update_agent_status(AgentStatus::Online)
        .await
        .unwrap();
    let channel = visitor(&bot);
    let sid = session_id(&bot);
    let requests = |bot: &Bot| session_report(&bot.emu, &sid).counts.requests;
    // The service takes the message and holds its answer; the socket drops meanwhile.
    bot.emu.control().fault_delay(&sid, 2_000).unwrap();
    let before = requests(&bot);
    let session = bot.session.clone();
    let message = zd_agent::OutgoingMessage::new(cynic::Id::new(&channel), "once at most");
    let send = tokio::spawn(async move { session.send_message(message).await });
    until(|| requests(&bot) != before).await;
    bot.emu.control().fault_drop(&sid).await.unwrap();
    let err = within(send).await.unwrap().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::ConnectionLost), "{err:?}");
    assert!(err.is_retryable());
    bot.emu.control().fault_delay(&sid, 0).unwrap();
    // It had arrived: at most once, not "not at all", and never twice.
    assert_eq!(
        transcript_texts(&bot, &channel)
            .iter()
            .filter(|t| *t == "once at most")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_message_lost_with_every_socket_is_sent_at_most_once_plus_the_retries() {
    const RETRIES: usize = 2;
    let bot = bot_with(|config| config.retry.connection_lost_retries = RETRIES).await;
    go_online(&bot.session).await;
    let channel = visitor(&bot);
    let sid = session_id(&bot);
    let requests = || session_report(&bot.emu, &sid).counts.requests;
    // The service takes every copy of the message and holds its answer; each socket drops
    // as soon as its copy arrives. Only the message is sent on the resumed sockets.
    bot.emu.control().fault_delay(&sid, 600_000).unwrap();
    let session = bot.session.clone();
    let message = zd_agent::OutgoingMessage::new(cynic::Id::new(&channel), "lost every time");
    let mut send = tokio::spawn(async move { session.send_message(message).await });
    let mut seen = requests();
    let mut sends = 0;
    let result = within(async {
        loop {
            tokio::select! {
                result = &mut send => return result.unwrap(),
                () = until(|| requests() > seen) => {
                    sends += 1;
                    seen = requests();
                    bot.emu.control().fault_drop(&sid).await.unwrap();
                }
            }
        }
    })
    .await;
    let err = result.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::ConnectionLost), "{err:?}");
    assert_eq!(sends, 1 + RETRIES, "sends of one sendMessage");
}

/// What a bot writes to disk before it exits, read back as its next process would.
fn stored(facts: &ResumableFacts) -> ResumableFacts {
    serde_json::from_str(&serde_json::to_string(facts).unwrap()).unwrap()
}

async fn resume_with(emu: &Emulator, facts: ResumableFacts) -> (AgentSession, Driver) {
    let token = emu.account().agents[0].access_token.clone();
    let creds = Arc::new(StaticToken::bearer(token).unwrap());
    AgentSession::resume(config_for(emu), creds, facts)
        .await
        .unwrap()
}

/// What the emulator counts of session `sid`.
fn session_report(emu: &Emulator, sid: &str) -> zd_emulator::chat::SessionReport {
    emu.control()
        .counters()
        .sessions
        .into_iter()
        .find(|s| s.session_id == sid)
        .expect("the session is known to the emulator")
}

fn sessions_started(emu: &Emulator) -> u64 {
    emu.control()
        .counters()
        .agents
        .iter()
        .map(|a| a.counts.sessions_started)
        .sum()
}

fn agent_status(emu: &Emulator) -> String {
    format!("{:?}", emu.account().agents[0].status).to_ascii_lowercase()
}

/// Waits until the emulator shows the bot's agent with `status` (lowercase).
async fn status_becomes(emu: &Emulator, status: &str) {
    within(async {
        while agent_status(emu) != status {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_stored_session_is_resumed_without_a_new_start() {
    let first = bot().await;
    let _old_messages = first.session.messages().await.unwrap();
    first
        .session
        .update_agent_status(AgentStatus::Online)
        .await
        .unwrap();
    let facts = stored(&first.session.resumable());
    let sid = facts.session_id.clone().unwrap();
    assert_eq!(facts.subscriptions.len(), 1);
    // The first process dies without a word to the service.
    first.driver.abort();
    let emu = first.emu;
    assert_eq!(sessions_started(&emu), 1);

    let (session, driver) = resume_with(&emu, facts).await;
    let driver = tokio::spawn(driver);
    assert_eq!(
        session.resumable().session_id.as_deref(),
        Some(sid.as_str())
    );
    assert_eq!(session.resumable().agent_status, Some(AgentStatus::Online));
    let mut messages = session.messages().await.unwrap();
    let bot = Bot {
        emu,
        session,
        driver,
    };
    // Same session, a second socket on it, no second start; the dead process's subscription
    // is stopped, so only the new one is left.
    within(async {
        loop {
            let report = session_report(&bot.emu, &sid);
            if report.subscriptions == 1 {
                assert!(report.connected && report.ended.is_none());
                assert_eq!(report.counts.connections, 2);
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(sessions_started(&bot.emu), 1);
    assert_eq!(agent_status(&bot.emu), "online");
    let channel = visitor(&bot);
    say(&bot, &channel, "to the resumed bot");
    let m = next_visitor_message(&mut messages).await;
    assert_eq!(m.content, "to the resumed bot");
    bot.session.say(m.channel.id, "heard you").await.unwrap();
    assert_eq!(
        transcript_texts(&bot, &channel),
        vec!["to the resumed bot", "heard you"]
    );
}

#[tokio::test]
async fn resuming_an_ended_session_starts_a_new_one_with_the_stored_status() {
    let first = bot().await;
    first
        .session
        .update_agent_status(AgentStatus::Invisible)
        .await
        .unwrap();
    let facts = stored(&first.session.resumable());
    let old = facts.session_id.clone().unwrap();
    first.session.stop().await.unwrap();
    within(first.driver).await.unwrap();
    let emu = first.emu;

    let (session, driver) = resume_with(&emu, facts).await;
    let mut events = Box::pin(session.lifecycle());
    let _driver = tokio::spawn(driver);
    // The old URL answers with end-of-service; the driver starts over.
    let restarted = first_event(&mut events, |e| match e {
        LifecycleEvent::Restarted { session_id } => Some(session_id),
        _ => None,
    })
    .await;
    assert_ne!(restarted, old);
    status_becomes(&emu, "invisible").await;
    assert_eq!(sessions_started(&emu), 2);
}

#[tokio::test]
async fn facts_without_a_session_start_a_new_one_with_the_stored_status() {
    let emu = Emulator::builder().start().await.unwrap();
    let facts = ResumableFacts {
        agent_status: Some(AgentStatus::Away),
        ..ResumableFacts::default()
    };
    let (session, driver) = resume_with(&emu, facts).await;
    let _driver = tokio::spawn(driver);
    assert!(session.resumable().session_id.is_some());
    status_becomes(&emu, "away").await;
    assert_eq!(sessions_started(&emu), 1);
}

#[tokio::test]
async fn a_subscription_whose_caller_gave_up_is_not_started_late() {
    let bot = bot_with(|config| {
        // The first start is refused and tried again a minute later; the caller waits 200 ms.
        config.request_timeout = Duration::from_millis(200);
        config.retry.subscription_start.min_delay = Duration::from_secs(60);
        config.retry.subscription_start.max_delay = Duration::from_secs(60);
        config.retry.subscription_start_window = Duration::from_secs(120);
    })
    .await;
    fail_next(&bot, 1, "GRAPHQL_SUB_START_ERROR");
    let err = within(bot.session.messages()).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Timeout), "{err:?}");
    go_online(&bot.session).await;
    let mut messages = within(bot.session.messages()).await.unwrap();
    // Forgotten once its caller stopped waiting: it holds none of the ten, and a session
    // resumed from these facts would not start it again for nobody.
    until_subscriptions(&bot, 1).await;
    let channel = visitor(&bot);
    heard(&bot, &channel, &mut messages, "after the give-up").await;
}

#[tokio::test]
async fn a_start_the_service_never_answers_is_given_up_with_a_timeout() {
    let bot = bot_with(|config| config.request_timeout = Duration::from_millis(300)).await;
    let sid = session_id(&bot);
    bot.emu.control().fault_mute(&sid, 1).unwrap();
    let err = within(bot.session.messages()).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Timeout), "{err:?}");
    let _messages = within(bot.session.messages()).await.unwrap();
    until_subscriptions(&bot, 1).await;
}

#[tokio::test]
async fn a_start_awaited_across_a_socket_change_is_given_up_on_its_callers_clock() {
    let bot = bot_with(|config| config.request_timeout = Duration::from_secs(1)).await;
    let mut events = Box::pin(bot.session.lifecycle());
    let sid = session_id(&bot);
    let counts = || session_report(&bot.emu, &sid).counts;
    // A start, then a status change, then both again on the resumed socket: none answered.
    bot.emu.control().fault_mute(&sid, 4).unwrap();
    let session = bot.session.clone();
    let subscriber = tokio::spawn(async move { session.messages().await.map(|_| ()) });
    until(|| counts().subscriptions_started >= 1).await;
    let session = bot.session.clone();
    let status = tokio::spawn(async move { session.update_agent_status(AgentStatus::Away).await });
    until(|| counts().requests >= 2).await;
    bot.emu.control().fault_drop(&sid).await.unwrap();
    until_connected(&mut events).await;
    // The status change was asked after the start, so by the time it times out the start,
    // though sent again on the new socket, has been given up on its caller's clock.
    let err = within(status).await.unwrap().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Timeout), "{err:?}");
    let err = within(subscriber).await.unwrap().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Timeout), "{err:?}");
    // So the next socket starts nothing for nobody.
    bot.emu.control().fault_drop(&sid).await.unwrap();
    until_connected(&mut events).await;
    go_online(&bot.session).await;
    assert_eq!(counts().subscriptions_started, 2);
}

#[tokio::test]
async fn a_subscription_acked_after_its_caller_gave_up_is_stopped() {
    let bot = bot_with(|config| config.request_timeout = Duration::from_millis(300)).await;
    let sid = session_id(&bot);
    // The ack waits in the service's queue past the caller's timeout.
    bot.emu.control().fault_stall(&sid, 1_000).await.unwrap();
    let err = within(bot.session.messages()).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Timeout), "{err:?}");
    // The late ack's id is stopped, so it holds no slot for nobody.
    until(|| session_report(&bot.emu, &sid).counts.stops != 0).await;
    service_holds(&bot.emu, &sid, 0).await;
}

/// Waits until the bot's resumable facts list `want` subscriptions.
async fn until_subscriptions(bot: &Bot, want: usize) {
    until(|| bot.session.resumable().subscriptions.len() == want).await;
}

/// The agent's token until sealed, then the error a secret store gives when it has none.
#[derive(Debug)]
struct Vault {
    token: String,
    sealed: std::sync::atomic::AtomicBool,
}

impl zd_auth::Credentials for Vault {
    fn authorization(&self) -> zd_auth::BoxFuture<'_, Result<zd_auth::Secret, zd_auth::Error>> {
        let sealed = self.sealed.load(std::sync::atomic::Ordering::SeqCst);
        let token = if sealed {
            String::new()
        } else {
            format!("Bearer {}", self.token)
        };
        Box::pin(async move { zd_auth::Secret::new(token).require("the vault's token") })
    }
}

#[tokio::test]
async fn a_restart_that_fails_for_good_reports_its_cause_to_every_waiter() {
    let emu = Emulator::builder().start().await.unwrap();
    let vault = Arc::new(Vault {
        token: emu.account().agents[0]
            .access_token
            .expose_secret()
            .to_owned(),
        sealed: false.into(),
    });
    let (session, driver) = AgentSession::connect(config_for(&emu), vault.clone())
        .await
        .unwrap();
    let driver = tokio::spawn(driver);
    let mut events = Box::pin(session.lifecycle());
    let mut messages = session.messages().await.unwrap();
    vault
        .sealed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    emu.control()
        .fault_eos(
            &session.resumable().session_id.unwrap(),
            "unexpected session state",
        )
        .unwrap();

    let closed = first_event(&mut events, |e| match e {
        LifecycleEvent::Closed { reason } => Some(reason),
        _ => None,
    })
    .await;
    assert!(closed.contains("credentials"), "{closed}");
    assert!(
        closed.contains("the vault's token is empty"),
        "the cause: {closed}"
    );
    within(driver).await.unwrap();
    // The subscriber's error carries the same cause, not only its kind.
    let err = within(messages.next()).await.unwrap().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Credentials), "{err:?}");
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert!(
        cause
            .as_deref()
            .is_some_and(|c| c.contains("the vault's token is empty")),
        "{cause:?}"
    );
}

#[tokio::test]
async fn eos_restarts_restores_status_and_resubscribes() {
    let bot = bot().await;
    let mut events = Box::pin(bot.session.lifecycle());
    let mut messages = bot.session.messages().await.unwrap();
    bot.session
        .update_agent_status(AgentStatus::Invisible)
        .await
        .unwrap();
    let old = session_id(&bot);
    bot.emu
        .control()
        .fault_eos(&old, "unexpected session state")
        .unwrap();
    let restarted = first_event(&mut events, |e| match e {
        LifecycleEvent::Restarted { session_id } => Some(session_id),
        _ => None,
    })
    .await;
    assert_ne!(restarted, old);
    let agent = bot.emu.account().agents[0].clone();
    within(async {
        loop {
            let now = bot
                .emu
                .account()
                .agents
                .into_iter()
                .find(|a| a.id == agent.id)
                .unwrap();
            if format!("{:?}", now.status).eq_ignore_ascii_case("invisible")
                && subscriptions_live(&bot)
            {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    let channel = visitor(&bot);
    heard(&bot, &channel, &mut messages, "after EOS").await;
}

#[tokio::test]
async fn a_concurrent_session_is_surfaced_not_fought() {
    let mut limits = zd_emulator::Limits::documented();
    limits.start_session_interval = Duration::ZERO;
    let emu = Emulator::builder().limits(limits).start().await.unwrap();
    let mut config = config_for(&emu);
    config.on_concurrent_session = OnConcurrentSession::Surface;
    let first = start_with(emu, config.clone()).await;
    let mut events = Box::pin(first.session.lifecycle());
    // The same agent logs in elsewhere (another process: its own start limits); the
    // emulator's start spacing is off for this test.
    config.start_limiter = Some(Arc::new(StartLimiter::default()));
    let token = first.emu.account().agents[0].access_token.clone();
    let creds = Arc::new(StaticToken::bearer(token).unwrap());
    let (_second, driver) = AgentSession::connect(config, creds).await.unwrap();
    let _second_driver = tokio::spawn(driver);
    match next_event(&mut events).await {
        LifecycleEvent::Closed { reason } => assert!(reason.contains("concurrent"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let err = first
        .session
        .say(cynic::Id::new("x"), "late")
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Closed { .. }), "{err:?}");
}

#[tokio::test]
async fn back_to_back_connects_with_the_same_credentials_share_the_start_limits() {
    let emu = Emulator::builder().start().await.unwrap();
    let token = emu.account().agents[0].access_token.clone();
    // Process-wide limits (no limiter of the test's own), an hour apart: however slow the
    // first connect, the second comes within the interval.
    let connect = || {
        let mut config = Config::with_endpoint(emu.graphql_url().parse().unwrap());
        config.start_limits.min_interval = Duration::from_secs(3600);
        let creds = Arc::new(StaticToken::bearer(token.clone()).unwrap());
        AgentSession::connect(config, creds)
    };
    let (_first, driver) = connect().await.unwrap();
    let _driver = tokio::spawn(driver);
    let err = connect().await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::StartLimited { .. }),
        "{err:?}"
    );
    let wait = err.retry_after().unwrap();
    assert!(
        wait > Duration::from_secs(3500) && wait <= Duration::from_secs(3600),
        "{wait:?}"
    );
    // Refused before anything was sent.
    assert_eq!(sessions_started(&emu), 1);
}

#[tokio::test]
async fn an_unknown_status_is_refused_before_anything_is_sent() {
    let bot = bot().await;
    let sid = session_id(&bot);
    let before = session_report(&bot.emu, &sid).counts.requests;
    let err = bot
        .session
        .update_agent_status(AgentStatus::Unknown)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::UnknownStatus), "{err:?}");
    assert!(!err.is_retryable());
    go_online(&bot.session).await;
    assert_eq!(session_report(&bot.emu, &sid).counts.requests, before + 1);
}

/// What the emulator refuses with a vague execution error is refused locally, by name, and
/// nothing reaches the service.
#[tokio::test]
async fn a_blank_reply_value_or_message_is_refused_before_anything_is_sent() {
    let bot = bot().await;
    let sid = session_id(&bot);
    let channel = visitor(&bot);
    let before = session_report(&bot.emu, &sid).counts.requests;
    let blank_value = QuickReplies::new("Flavor?").reply("Chocolate", "");
    let err = bot
        .session
        .send_quick_replies(cynic::Id::new(&channel), blank_value)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Limit(LimitError::Empty("action value"))
    );
    let err = bot
        .session
        .say(cynic::Id::new(&channel), " ")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Limit(LimitError::Empty("msg")));
    assert_eq!(session_report(&bot.emu, &sid).counts.requests, before);
    assert!(transcript_texts(&bot, &channel).is_empty());
}

/// "Prevent sending the message when the channel is served by another agent": the bot learns
/// it backed off, distinct from a failure, and nothing reaches the visitor.
#[tokio::test]
async fn a_message_held_back_by_backoff_is_reported_as_backed_off() {
    let bot = bot().await;
    let channel = visitor(&bot);
    let account = bot.emu.account();
    let token = account.agents[1].access_token.clone();
    let creds = Arc::new(StaticToken::bearer(token).unwrap());
    let (colleague, driver) = AgentSession::connect(config_for(&bot.emu), creds)
        .await
        .unwrap();
    let colleague_driver = tokio::spawn(driver);
    colleague
        .say(cynic::Id::new(&channel), "I have this one")
        .await
        .unwrap();

    let held = zd_agent::OutgoingMessage::new(cynic::Id::new(&channel), "me too").backoff(true);
    let err = bot.session.send_message(held).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::BackedOff, "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(transcript_texts(&bot, &channel), ["I have this one"]);

    colleague.stop().await.unwrap();
    colleague_driver.await.unwrap();
}

#[tokio::test]
async fn rate_limited_requests_are_retried() {
    let bot = bot().await;
    fail_next(&bot, 3, "RATE_LIMITED");
    let departments: Vec<_> = within(bot.session.departments().try_collect())
        .await
        .unwrap();
    assert!(!departments.is_empty());
    fail_next(&bot, 1, "UNAUTHORIZED");
    let err = bot
        .session
        .update_agent_status(AgentStatus::Online)
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), Some(&ErrorName::Unauthorized));
}

#[tokio::test]
async fn subscription_start_errors_are_retried_a_few_times() {
    let bot = bot_with(|config| {
        config.retry.subscription_start.min_delay = Duration::from_millis(10);
    })
    .await;
    fail_next(&bot, 2, "GRAPHQL_SUB_START_ERROR");
    let sub = within(bot.session.messages()).await.unwrap();
    drop(sub);
    fail_next(&bot, 50, "GRAPHQL_SUB_START_ERROR");
    let err = within(bot.session.messages()).await.unwrap_err();
    assert_eq!(err.error_name(), Some(&ErrorName::GraphQlSubStartError));
    fail_next(&bot, 0, "GRAPHQL_SUB_START_ERROR");
}

#[tokio::test]
async fn silence_past_the_deadline_is_a_dead_socket() {
    let bot = bot_with(|config| {
        config.keepalive_interval = Duration::from_millis(50);
        config.keepalive_deadline = Duration::from_millis(200);
    })
    .await;
    let mut events = Box::pin(bot.session.lifecycle());
    let sid = session_id(&bot);
    bot.emu.control().fault_pings(&sid, false).unwrap();
    match next_event(&mut events).await {
        LifecycleEvent::Reconnecting { cause, .. } => {
            assert!(cause.contains("keepalive"), "{cause}")
        }
        other => panic!("{other:?}"),
    }
    bot.emu.control().fault_pings(&sid, true).unwrap();
    until_connected(&mut events).await;
}

#[tokio::test]
async fn a_bad_token_is_unauthorized() {
    let emu = Emulator::builder().start().await.unwrap();
    let creds = Arc::new(StaticToken::bearer("not-a-token").unwrap());
    let err = AgentSession::connect(config_for(&emu), creds)
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), Some(&ErrorName::Unauthorized), "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_token_without_the_chat_scope_is_forbidden() {
    use zd_auth::Secret;
    use zd_auth::chat::{ChatScope, OAuthClient};
    use zd_emulator::sunshine::{CHAT_AGENT_PASSWORD, CHAT_OAUTH_CLIENT_ID};

    let emu = Emulator::builder().start().await.unwrap();
    let oauth = OAuthClient::new(CHAT_OAUTH_CLIENT_ID)
        .unwrap()
        .with_base_url(emu.base_url())
        .unwrap();
    let password = Secret::new(CHAT_AGENT_PASSWORD);
    // `read write`, as the OAuth Clients page suggests: not enough for the Conversations API.
    let narrow = oauth
        .password("Bot", &password, &[ChatScope::Read, ChatScope::Write])
        .await
        .unwrap();
    assert_eq!(narrow.scopes(), [ChatScope::Read, ChatScope::Write]);
    let creds = Arc::new(StaticToken::bearer(narrow.access_token().expose_secret()).unwrap());
    let err = AgentSession::connect(config_for(&emu), creds)
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), Some(&ErrorName::Forbidden), "{err:?}");
    assert!(!err.is_retryable());

    let full = oauth
        .password(
            "Bot",
            &password,
            &[ChatScope::Read, ChatScope::Write, ChatScope::Chat],
        )
        .await
        .unwrap();
    let creds = Arc::new(StaticToken::bearer(full.access_token().expose_secret()).unwrap());
    let (session, driver) = AgentSession::connect(config_for(&emu), creds)
        .await
        .unwrap();
    tokio::spawn(driver);
    session
        .update_agent_status(AgentStatus::Online)
        .await
        .unwrap();
}

/// One fault of the soak's cycle; returns whether it was injected.
async fn inject(emu: &Emulator, session: &AgentSession, n: usize) -> bool {
    let Some(sid) = session.resumable().session_id else {
        return false;
    };
    let c = emu.control();
    let done = match n % 10 {
        0 | 6 => c.fault_drop(&sid).await,
        1 | 8 => c.fault_close(&sid, 1011, "going away").await,
        2 | 7 => c.fault_fail(&sid, 3, "RATE_LIMITED"),
        // Below the keepalive deadline: only a delay.
        3 => c.fault_stall(&sid, 100).await,
        // The first request on the next socket is a subscription start, and it fails.
        4 => match c.fault_fail(&sid, 1, "GRAPHQL_SUB_START_ERROR") {
            Ok(()) => c.fault_drop(&sid).await,
            Err(e) => Err(e),
        },
        // Past the keepalive deadline: a dead socket.
        5 => c.fault_stall(&sid, 450).await,
        _ => c.fault_eos(&sid, "unexpected session state"),
    };
    done.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_soak_delivers_exactly_once_both_ways() {
    const CHANNELS: usize = 10;
    const MESSAGES: usize = 2000;
    const WINDOW: usize = 8;
    let bot = bot_with(|config| {
        config.keepalive_interval = Duration::from_millis(60);
        config.keepalive_deadline = Duration::from_millis(300);
        config.retry.rate_limited.min_delay = Duration::from_millis(20);
    })
    .await;
    let session = bot.session.clone();
    let mut messages = session.messages().await.unwrap();
    session
        .update_agent_status(AgentStatus::Online)
        .await
        .unwrap();

    // The bot: echo every visitor message, with a msg_id derived from the message it answers.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let replier = session.clone();
    let bot_task = tokio::spawn(async move {
        while let Some(item) = messages.next().await {
            let m = match item {
                Ok(m) if m.is_from_visitor() => m,
                Ok(_) => continue,
                Err(e) => panic!("subscription error: {e:?}"),
            };
            let reply = zd_agent::OutgoingMessage::new(
                m.channel.id.clone(),
                format!("echo: {}", m.content),
            )
            .msg_id(format!("re-{}", m.id.inner()));
            loop {
                match replier.send_message(reply.clone()).await {
                    Ok(_) => break,
                    Err(e) if e.is_retryable() => continue,
                    Err(e) => panic!("reply failed: {e:?}"),
                }
            }
            if seen_tx.send(m.content).is_err() {
                return;
            }
        }
    });

    let control = bot.emu.control().clone();
    let channels: Vec<String> = (0..CHANNELS).map(|_| visitor(&bot)).collect();
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut received = 0usize;
    let mut wait_one = async |counts: &mut std::collections::HashMap<String, usize>| {
        let content = within(seen_rx.recv()).await.expect("bot stopped");
        *counts.entry(content).or_default() += 1;
    };
    // Greetings first, so the bot serves every channel before the faults start.
    for (i, c) in channels.iter().enumerate() {
        control.visitor_message(c, &format!("hello {i}")).unwrap();
    }
    for _ in 0..CHANNELS {
        wait_one(&mut counts).await;
        received += 1;
    }
    let mut injected = 0usize;
    let mut attempts = 0usize;
    for i in 0..MESSAGES {
        control
            .visitor_message(&channels[i % CHANNELS], &format!("m{i}"))
            .unwrap();
        if i % 9 == 4 {
            if inject(&bot.emu, &session, attempts).await {
                injected += 1;
            }
            attempts += 1;
        }
        while (CHANNELS + i + 1) - received > WINDOW {
            wait_one(&mut counts).await;
            received += 1;
        }
    }
    while received < CHANNELS + MESSAGES {
        wait_one(&mut counts).await;
        received += 1;
    }
    assert!(injected >= 200, "only {injected} faults injected");

    // Every visitor message reached the bot exactly once.
    assert_eq!(counts.len(), CHANNELS + MESSAGES);
    assert!(
        counts.values().all(|n| *n == 1),
        "duplicates: {:?}",
        counts.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    // Every reply reached the visitor exactly once.
    for c in &channels {
        let texts = transcript_texts(&bot, c);
        let visitor_msgs: Vec<_> = texts.iter().filter(|t| !t.starts_with("echo: ")).collect();
        for v in &visitor_msgs {
            let echo = format!("echo: {v}");
            assert_eq!(
                texts.iter().filter(|t| **t == echo).count(),
                1,
                "reply to {v:?} in {c}"
            );
        }
    }
    // The documented rates were never exceeded.
    let counters = control.counters();
    for s in &counters.sessions {
        assert!(s.counts.peak_requests_per_second <= 100, "{s:?}");
    }
    for a in &counters.agents {
        assert!(a.counts.sessions_started <= 50, "{a:?}");
        assert_eq!(a.counts.starts_rate_limited, 0, "{a:?}");
    }
    assert!(
        counters.sessions.len() > 1,
        "EOS faults restarted the session"
    );
    eprintln!(
        "soak: {injected} faults, {} sessions",
        counters.sessions.len()
    );
    bot_task.abort();
}

#[tokio::test]
async fn an_answer_whose_data_is_broken_fails_that_call_only() {
    let bot = bot().await;
    let sid = session_id(&bot);
    let agents = || {
        bot.session
            .execute("{ agents { edges { node { id } } } }", None)
    };
    bot.emu.control().fault_garble(&sid, 2).unwrap();
    // Well-formed frames with broken `data`: each call fails at once with a decode error
    // (`within` is shorter than the request timeout, so waiting it out would fail the test).
    let err = within(bot.session.update_agent_status(AgentStatus::Online))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Decode), "{err:?}");
    let err = within(agents()).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Decode), "{err:?}");
    // The session goes on: the next answers are whole again.
    let data = within(agents()).await.unwrap();
    assert!(data["agents"]["edges"].is_array(), "{data}");
    within(bot.session.update_agent_status(AgentStatus::Online))
        .await
        .unwrap();
    assert!(matches!(bot.session.state(), SessionState::Active));
}

const DEPARTMENT_IDS: &str = "query { departments { edges { node { id } } } }";

#[tokio::test]
async fn an_unanswered_request_times_out_and_the_session_goes_on() {
    let bot = bot_with(|config| {
        config.request_timeout = Duration::from_millis(300);
    })
    .await;
    let sid = session_id(&bot);
    // Answers now come 3 s late, ten times the request timeout.
    bot.emu.control().fault_delay(&sid, 3_000).unwrap();
    let late = within(bot.session.execute(DEPARTMENT_IDS, None)).await;
    assert!(
        matches!(late, Err(ref e) if matches!(e.kind(), ErrorKind::Timeout)),
        "{late:?}"
    );
    bot.emu.control().fault_delay(&sid, 0).unwrap();
    // The emulator answers in order, so calls made while it still sits on the late answer
    // time out too; then one gets its own answer (the late one is dropped when it comes).
    let data = within(async {
        loop {
            match bot.session.execute(DEPARTMENT_IDS, None).await {
                Ok(data) => return data,
                Err(e) if matches!(e.kind(), ErrorKind::Timeout) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
    })
    .await;
    assert!(
        data["departments"]["edges"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    );
    assert_eq!(bot.session.state(), SessionState::Active);
}

#[tokio::test]
async fn a_request_made_while_reconnecting_times_out_on_time() {
    let emu = Emulator::builder().start().await.unwrap();
    let mut config = config_for(&emu);
    config.request_timeout = Duration::from_millis(300);
    // Reconnect attempts 5 s apart: the request's deadline passes while the driver waits.
    config.reconnect.min_delay = Duration::from_secs(5);
    config.reconnect.max_delay = Duration::from_secs(5);
    let Bot { emu, session, .. } = start_with(emu, config).await;
    drop(emu);
    within(session.wait_for_state(|s| matches!(s, SessionState::Reconnecting { .. }))).await;
    let result = within(session.execute(DEPARTMENT_IDS, None)).await;
    assert!(
        matches!(result, Err(ref e) if matches!(e.kind(), ErrorKind::Timeout)),
        "{result:?}"
    );
    assert!(
        matches!(session.state(), SessionState::Reconnecting { .. }),
        "failed on its own deadline, not because the session gave up: {:?}",
        session.state()
    );
}

#[tokio::test]
async fn dropping_every_handle_while_reconnecting_ends_the_driver() {
    let emu = Emulator::builder().start().await.unwrap();
    let mut config = config_for(&emu);
    // Minutes of attempts if the driver went on: reconnects, then restarts, 5 s apart.
    config.reconnect.min_delay = Duration::from_secs(5);
    config.reconnect.max_delay = Duration::from_secs(5);
    let Bot {
        emu,
        session,
        driver,
    } = start_with(emu, config).await;
    let mut events = Box::pin(session.lifecycle());
    drop(emu);
    within(session.wait_for_state(|s| matches!(s, SessionState::Reconnecting { .. }))).await;
    drop(session);
    within(driver).await.unwrap();
    let closed = first_event(&mut events, |e| match e {
        LifecycleEvent::Closed { reason } => Some(reason),
        _ => None,
    })
    .await;
    assert!(closed.contains("every handle was dropped"), "{closed}");
}

/// A bot whose service (deaf for ten minutes) reads nothing, and a visitor's channel. Its
/// keepalive never ticks within a test: only the bound on a waiting write can notice.
async fn deaf_bot() -> (Bot, String) {
    // The flood below is 6.4 MB of text in one chat: past the 4 MiB a chat keeps by default,
    // the transcript would have forgotten its first messages.
    let emu = Emulator::builder()
        .retention(zd_emulator::state::Retention {
            log_bytes_per_chat: 16 * 1024 * 1024,
            ..zd_emulator::state::Retention::default()
        })
        .start()
        .await
        .unwrap();
    let mut config = config_for(&emu);
    config.keepalive_interval = Duration::from_secs(600);
    config.keepalive_deadline = Duration::from_millis(500);
    let bot = start_with(emu, config).await;
    let channel = visitor(&bot);
    bot.emu
        .control()
        .fault_deaf(&session_id(&bot), 600_000)
        .unwrap();
    (bot, channel)
}

/// 100 messages `"{i} xxx…"` of 64 KiB each, sent from their own tasks: 6.4 MB, far more than
/// the socket buffers between bot and service hold.
fn flood(
    session: &AgentSession,
    channel: &str,
) -> Vec<tokio::task::JoinHandle<Result<String, zd_agent::Error>>> {
    let pad = "x".repeat(64 * 1024);
    (0..100)
        .map(|i| {
            let session = session.clone();
            let text = format!("{i} {pad}");
            let message = zd_agent::OutgoingMessage::new(cynic::Id::new(channel), text);
            tokio::spawn(async move { session.send_message(message).await })
        })
        .collect()
}

#[tokio::test]
async fn a_write_the_service_never_reads_is_a_dead_socket_and_nothing_is_lost() {
    let (bot, channel) = deaf_bot().await;
    let mut events = Box::pin(bot.session.lifecycle());
    let sends = flood(&bot.session, &channel);
    let cause = first_event(&mut events, |e| match e {
        LifecycleEvent::Reconnecting { cause, .. } => Some(cause),
        _ => None,
    })
    .await;
    assert!(cause.contains("write waited"), "{cause}");
    // The unanswered messages go again on the new socket, each once (same msg_id).
    for send in sends {
        within(send).await.unwrap().unwrap();
    }
    let texts = transcript_texts(&bot, &channel);
    assert_eq!(texts.len(), 100);
    let mut firsts: Vec<usize> = texts
        .iter()
        .map(|t| t.split(' ').next().unwrap().parse().unwrap())
        .collect();
    firsts.sort_unstable();
    assert_eq!(firsts, (0..100).collect::<Vec<_>>());
}

#[tokio::test]
async fn stopping_while_the_service_reads_nothing_ends_within_the_deadline() {
    let (bot, channel) = deaf_bot().await;
    let mut events = Box::pin(bot.session.lifecycle());
    // The stop request and the messages wait on writes the service never reads.
    let sends = flood(&bot.session, &channel);
    // Lets the sends' tasks queue their messages first (the test holds in either order).
    tokio::task::yield_now().await;
    within(bot.session.stop()).await.unwrap();
    within(bot.driver).await.unwrap();
    assert_eq!(bot.session.state(), SessionState::Closed);
    let closed = first_event(&mut events, |e| match e {
        LifecycleEvent::Closed { reason } => Some(reason),
        _ => None,
    })
    .await;
    assert!(closed.contains("stopped"), "{closed}");
    // Nothing waits forever: every message the service never read fails, none hangs.
    for send in sends {
        let err = within(send).await.unwrap().unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::Closed { .. } | ErrorKind::ConnectionLost
            ),
            "{err:?}"
        );
    }
}

/// Puts the agent online, so visitors' chats are routed to it.
async fn go_online(session: &AgentSession) {
    session
        .update_agent_status(AgentStatus::Online)
        .await
        .unwrap();
}

/// How many subscriptions the emulator holds for session `sid`, once that settles at `want`.
async fn service_holds(emu: &Emulator, sid: &str, want: usize) {
    until(|| session_report(emu, sid).subscriptions == want).await;
}

#[tokio::test]
async fn a_subscription_dropped_as_its_socket_dies_is_still_stopped_on_the_service() {
    let bot = bot().await;
    let mut events = Box::pin(bot.session.lifecycle());
    let messages = bot.session.messages().await.unwrap();
    let sid = session_id(&bot);
    service_holds(&bot.emu, &sid, 1).await;
    // The service reads nothing more from this socket: the stop never reaches it.
    bot.emu.control().fault_deaf(&sid, 600_000).unwrap();
    drop(messages);
    until_subscriptions(&bot, 0).await;
    bot.emu.control().fault_drop(&sid).await.unwrap();
    until_connected(&mut events).await;
    // The resumed session is asked again, so the dropped subscription holds no slot.
    service_holds(&bot.emu, &sid, 0).await;
    assert_eq!(session_id(&bot), sid);
}

#[tokio::test]
async fn a_stop_the_service_never_answers_is_given_up_and_not_sent_again() {
    let bot = bot_with(|config| config.request_timeout = Duration::from_secs(1)).await;
    let mut events = Box::pin(bot.session.lifecycle());
    let messages = bot.session.messages().await.unwrap();
    let sid = session_id(&bot);
    // The service acts on the stop and on the request after it, but answers neither.
    bot.emu.control().fault_mute(&sid, 2).unwrap();
    drop(messages);
    service_holds(&bot.emu, &sid, 0).await;
    // Every request shares one timeout, so by the time this one has timed out the stop,
    // sent before it, has been given up too.
    let err = within(bot.session.update_agent_status(AgentStatus::Away))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Timeout), "{err:?}");
    bot.emu.control().fault_drop(&sid).await.unwrap();
    until_connected(&mut events).await;
    go_online(&bot.session).await;
    assert_eq!(session_id(&bot), sid);
    // The resumed session is not asked to stop it again (the online request came after any
    // such stop on the same socket).
    assert_eq!(session_report(&bot.emu, &sid).counts.stops, 1);
}

#[tokio::test]
async fn a_start_answered_as_its_socket_died_does_not_cost_a_subscription_for_good() {
    let bot = bot().await;
    let mut events = Box::pin(bot.session.lifecycle());
    let mut subs = Vec::new();
    for _ in 0..9 {
        subs.push(bot.session.messages().await.unwrap());
    }
    let sid = session_id(&bot);
    // The tenth starts on the service, but its id never reaches the bot: on the resumed
    // session that one runs on with nobody to stop it, and the ten the bot asks for again
    // make eleven.
    bot.emu.control().fault_cut(&sid).unwrap();
    let tenth = within(bot.session.messages())
        .await
        .expect("the tenth subscription is started, on a new session if need be");
    subs.push(tenth);
    let restarted = first_event(&mut events, |e| match e {
        LifecycleEvent::Restarted { session_id } => Some(session_id),
        _ => None,
    })
    .await;
    assert_ne!(restarted, sid);
    until_live(&bot).await;
    service_holds(&bot.emu, &restarted, 10).await;
    go_online(&bot.session).await;
    let channel = visitor(&bot);
    say(&bot, &channel, "to all ten");
    for sub in &mut subs {
        assert_eq!(next_visitor_message(sub).await.content, "to all ten");
    }
}

#[tokio::test]
async fn a_subscription_restored_while_the_service_is_unavailable_keeps_its_stream() {
    let bot = bot().await;
    let mut events = Box::pin(bot.session.lifecycle());
    let mut messages = bot.session.messages().await.unwrap();
    let sid = session_id(&bot);
    // The first two requests on the new socket (the old subscription's stop, the new start)
    // meet the documented "GraphQL server unavailable".
    unavailable_then_drop(&bot, &mut events, 2).await;
    // The stop was tried again too: the service holds only the new one.
    service_holds(&bot.emu, &sid, 1).await;
    go_online(&bot.session).await;
    let channel = visitor(&bot);
    heard(&bot, &channel, &mut messages, "still here").await;
}

/// Credentials that play a script, one step per `authorization()`, then the good token.
#[derive(Debug)]
struct Scripted {
    token: String,
    script: std::sync::Mutex<std::collections::VecDeque<Step>>,
    invalidated: std::sync::atomic::AtomicBool,
    /// The tokens named as refused.
    rejected: std::sync::Mutex<Vec<String>>,
}

#[derive(Debug)]
enum Step {
    /// A token the service refuses.
    Refused,
    /// A refresh that cannot reach its server.
    Unreachable,
}

impl zd_auth::Credentials for Scripted {
    fn authorization(&self) -> zd_auth::BoxFuture<'_, Result<zd_auth::Secret, zd_auth::Error>> {
        let step = self.script.lock().unwrap().pop_front();
        let token = self.token.clone();
        Box::pin(async move {
            match step {
                None => Ok(zd_auth::Secret::new(format!("Bearer {token}"))),
                Some(Step::Refused) => Ok(zd_auth::Secret::new("Bearer revoked-token")),
                Some(Step::Unreachable) => {
                    // A real transport failure: nothing listens on port 1.
                    let client = zd_auth::chat::OAuthClient::new("zd-agent-test")?
                        .with_secret("secret")?
                        .with_base_url("http://127.0.0.1:1")?;
                    client
                        .client_credentials(&[])
                        .await
                        .map(|_| unreachable!("nothing listens on port 1"))
                }
            }
        })
    }

    fn invalidate(&self) {
        self.invalidated
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn invalidate_if_current(&self, rejected: &zd_auth::Secret) {
        let rejected = rejected.expose_secret().to_owned();
        self.rejected.lock().unwrap().push(rejected);
        self.invalidate();
    }
}

#[tokio::test]
async fn a_restart_outlasts_a_refresh_blip_and_a_refused_token() {
    let emu = Emulator::builder().start().await.unwrap();
    let creds = Arc::new(Scripted {
        token: emu.account().agents[0]
            .access_token
            .expose_secret()
            .to_owned(),
        script: std::sync::Mutex::default(),
        invalidated: false.into(),
        rejected: std::sync::Mutex::default(),
    });
    let (session, driver) = AgentSession::connect(config_for(&emu), creds.clone())
        .await
        .unwrap();
    let _driver = tokio::spawn(driver);
    let mut events = Box::pin(session.lifecycle());
    let mut messages = session.messages().await.unwrap();
    // The restart's first token cannot be fetched, its second is refused; the third works.
    creds
        .script
        .lock()
        .unwrap()
        .extend([Step::Unreachable, Step::Refused]);
    let old = session.resumable().session_id.unwrap();
    emu.control()
        .fault_eos(&old, "unexpected session state")
        .unwrap();
    let new = first_event(&mut events, |e| match e {
        LifecycleEvent::Restarted { session_id } => Some(session_id),
        LifecycleEvent::Closed { reason } => panic!("closed: {reason}"),
        _ => None,
    })
    .await;
    assert_ne!(new, old);
    assert!(creds.invalidated.load(std::sync::atomic::Ordering::SeqCst));
    // The refusal names the token that was sent.
    assert_eq!(*creds.rejected.lock().unwrap(), ["Bearer revoked-token"]);
    assert!(creds.script.lock().unwrap().is_empty());
    within(async {
        while !session
            .resumable()
            .subscriptions
            .iter()
            .all(|s| s.server_id.is_some())
        {
            tokio::task::yield_now().await;
        }
    })
    .await;
    go_online(&session).await;
    let channel = emu
        .control()
        .visitor_arrive(Arrival::default())
        .unwrap()
        .channel_id;
    emu.control()
        .visitor_message(&channel, "after the restart")
        .unwrap();
    assert_eq!(
        next_visitor_message(&mut messages).await.content,
        "after the restart"
    );
}

/// Waits until the emulator's clock has passed `stamp` (ms), so the next message is newer.
async fn clock_passes(emu: &Emulator, stamp: Option<f64>) {
    let stamp = stamp.expect("messages carry their timestamp");
    within(async {
        while emu.control().state().clock().unix_ms() <= stamp {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_catch_up_does_not_hand_out_again_what_came_before_the_gap() {
    // A window of two ids: a catch-up reaching back past them would show the first again.
    let bot = bot_with(|config| {
        config.dedup_window = 2;
        config.catch_up_overlap = Duration::ZERO;
    })
    .await;
    let mut events = Box::pin(bot.session.lifecycle());
    let mut messages = bot.session.messages().await.unwrap();
    go_online(&bot.session).await;
    let channel = visitor(&bot);
    // The bot serves the chat, so the catch-up's query finds it.
    bot_says(&bot, &channel, "hello").await;
    for text in ["one", "two", "three"] {
        say(&bot, &channel, text);
        let m = next_visitor_message(&mut messages).await;
        assert_eq!(m.content, text);
        clock_passes(&bot.emu, m.timestamp).await;
    }
    online_then_drop(&bot).await;
    until_connected(&mut events).await;
    until_live(&bot).await;
    // Answers come in order: once this one is back, so is the catch-up's.
    bot.session
        .execute("{ departments { edges { node { id } } } }", None)
        .await
        .unwrap();
    heard(&bot, &channel, &mut messages, "after the gap").await;
}

/// An error and its causes, as one line.
fn chain(e: &zd_agent::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[tokio::test]
async fn a_catch_up_the_service_refuses_three_gaps_in_a_row_is_not_sent_again() {
    let bot = bot().await;
    let mut events = Box::pin(bot.session.lifecycle());
    let mut messages = bot.session.messages().await.unwrap();
    go_online(&bot.session).await;
    let channel = visitor(&bot);
    let sid = session_id(&bot);
    let requests = || session_report(&bot.emu, &sid).counts.requests;
    for gap in 1..=3 {
        // The resumed socket carries the old subscription's stop and the new start; their
        // answers are held back so that the refusal is armed before the catch-up, which the
        // start's ack sets off, reaches the service. Arming takes microseconds; the hold
        // leaves seconds of room for a loaded machine.
        until_live(&bot).await;
        bot.emu.control().fault_delay(&sid, 3_000).unwrap();
        let before = requests();
        bot.emu.control().fault_drop(&sid).await.unwrap();
        until(|| requests() >= before + 2).await;
        fail_next(&bot, 1, "GRAPHQL_EXEC_ERROR");
        bot.emu.control().fault_delay(&sid, 0).unwrap();
        until_connected(&mut events).await;
        let err = within(messages.next()).await.unwrap().unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::CatchUp),
            "gap {gap}: {err:?}"
        );
        let text = chain(&err);
        assert!(
            text.contains("failure injected by the emulator"),
            "gap {gap}: {text}"
        );
        // A refusal between good catch-ups is a hiccup; three in a row turn it off.
        assert_eq!(
            text.contains("refused the catch-up query after three gaps"),
            gap == 3,
            "gap {gap}: {text}"
        );
    }

    // The next gap sends no catch-up and reports nothing.
    until_live(&bot).await;
    a_gap_sends_no_catch_up(&bot, &mut events, &sid).await;
    heard(&bot, &channel, &mut messages, "after the fourth gap").await;
}

/// Drops the socket and checks that the resumed subscription sent no catch-up: the stop, the
/// start and one query of ours are all the requests.
async fn a_gap_sends_no_catch_up(
    bot: &Bot,
    events: &mut (impl Stream<Item = LifecycleEvent> + Unpin),
    sid: &str,
) {
    let requests = || session_report(&bot.emu, sid).counts.requests;
    let before = requests();
    bot.emu.control().fault_drop(sid).await.unwrap();
    until_connected(events).await;
    until_live(bot).await;
    // Answers come in order: a catch-up set off by the start would be answered before this.
    bot.session.execute(DEPARTMENT_IDS, None).await.unwrap();
    assert_eq!(
        requests(),
        before + 3,
        "the stop, the start and the query only"
    );
}

#[tokio::test]
async fn with_catch_up_off_a_gap_sends_no_catch_up() {
    let bot = bot_with(|config| config.catch_up = false).await;
    let mut events = Box::pin(bot.session.lifecycle());
    let mut messages = bot.session.messages().await.unwrap();
    go_online(&bot.session).await;
    let channel = visitor(&bot);
    let sid = session_id(&bot);
    a_gap_sends_no_catch_up(&bot, &mut events, &sid).await;
    heard(&bot, &channel, &mut messages, "after the gap").await;
}

#[tokio::test]
async fn what_a_gap_missed_reaches_a_reader_whose_buffer_was_full() {
    let bot = bot_with(|config| {
        config.subscription_buffer = 1;
        config.keepalive_interval = Duration::from_millis(100);
        config.keepalive_deadline = Duration::from_secs(2);
    })
    .await;
    let mut events = Box::pin(bot.session.lifecycle());
    let mut messages = bot.session.messages().await.unwrap();
    go_online(&bot.session).await;
    let channel = visitor(&bot);
    let sid = session_id(&bot);
    // The bot serves the chat (so it is among its channels for the catch-up). Its own message
    // comes back through the subscription and fills the buffer of one: it is not read yet.
    bot_says(&bot, &channel, "hello").await;
    // The service goes silent; what the visitor says meanwhile waits behind the silence, and
    // the bot gives the socket up at the keepalive deadline: only the catch-up has it.
    let requests = session_report(&bot.emu, &sid).counts.requests;
    bot.emu.control().fault_stall(&sid, 600_000).await.unwrap();
    say(&bot, &channel, "missed");
    until_connected(&mut events).await;
    until_live(&bot).await;
    // The resumed socket carries three requests: the old subscription's stop, the new start
    // and the catch-up. Once the service has the third, its answer is on the way; reading
    // starts a little later, so the answer finds the buffer still full. (The wait only makes
    // the test sharper: the driver holds the answer until there is room, whenever it comes.)
    until(|| session_report(&bot.emu, &sid).counts.requests >= requests + 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let first = within(messages.next()).await.unwrap().unwrap();
    assert_eq!(first.content, "hello");
    assert_eq!(next_visitor_message(&mut messages).await.content, "missed");
}

#[tokio::test]
async fn raw_documents_go_where_their_operations_belong() {
    let bot = bot().await;
    let sub = "subscription { message { node { id } } }";
    let err = bot.session.execute(sub, None).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Document), "{err:?}");
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert!(
        cause.as_deref().is_some_and(|c| c.contains("subscribe")),
        "{cause:?}"
    );
    let query = "query { departments { edges { node { id } } } }";
    let err = bot
        .session
        .subscribe_document::<serde_json::Value>(query, None)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Document), "{err:?}");
    // A comment before the operation does not hide a query: it runs.
    let data = bot
        .session
        .execute(&format!("# departments\n{query}"), None)
        .await
        .unwrap();
    assert!(data["departments"]["edges"].is_array(), "{data}");
    assert!(bot.session.live_subscriptions().await.unwrap().is_empty());
    // Of several operations, the one named runs (sent as operationName); unnamed, none is sent.
    let two = "query Departments { departments { edges { node { id } } } } \
               mutation Away { updateAgentStatus(status: AWAY) { node { id } } }";
    let err = bot.session.execute(two, None).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Document), "{err:?}");
    let err = bot
        .session
        .execute_operation(two, "Nope", None)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Document), "{err:?}");
    let data = bot
        .session
        .execute_operation(two, "Departments", None)
        .await
        .unwrap();
    assert!(data["departments"]["edges"].is_array(), "{data}");
    assert!(data.get("updateAgentStatus").is_none(), "{data}");
    let data = bot
        .session
        .execute_operation(two, "Away", None)
        .await
        .unwrap();
    assert!(data["updateAgentStatus"].is_object(), "{data}");
    status_becomes(&bot.emu, "away").await;
}

#[tokio::test]
async fn a_catch_up_finds_what_the_gap_missed_though_live_items_came_first() {
    let bot = bot_with(|config| {
        config.catch_up_overlap = Duration::ZERO;
        config.keepalive_interval = Duration::from_millis(100);
        config.keepalive_deadline = Duration::from_secs(1);
    })
    .await;
    let mut events = Box::pin(bot.session.lifecycle());
    let mut messages = bot.session.messages().await.unwrap();
    go_online(&bot.session).await;
    let channel = visitor(&bot);
    let sid = session_id(&bot);
    bot_says(&bot, &channel, "hello").await;
    let own = within(messages.next()).await.unwrap().unwrap();
    assert_eq!(own.content, "hello");
    // The service goes silent and "missed" waits behind the silence; the bot gives the socket
    // up. On the next socket the answers come late, so the catch-up's answer comes after a
    // message said live.
    bot.emu.control().fault_stall(&sid, 600_000).await.unwrap();
    bot.emu.control().fault_delay(&sid, 500).unwrap();
    say(&bot, &channel, "missed");
    until_connected(&mut events).await;
    until_live(&bot).await;
    say(&bot, &channel, "live");
    let mut got = vec![
        next_visitor_message(&mut messages).await.content,
        next_visitor_message(&mut messages).await.content,
    ];
    got.sort();
    assert_eq!(got, ["live", "missed"]);
}

#[tokio::test]
async fn max_sub_while_a_stop_is_pending_waits_for_the_stop_instead_of_restarting() {
    let bot = bot().await;
    let mut events = Box::pin(bot.session.lifecycle());
    let mut subs = Vec::new();
    for _ in 0..10 {
        subs.push(bot.session.messages().await.unwrap());
    }
    let sid = session_id(&bot);
    // On the resumed socket the first old subscription's stop fails for a moment, so the
    // tenth new start meets MAX_SUB: that stop's retry frees the slot.
    unavailable_then_drop(&bot, &mut events, 1).await;
    service_holds(&bot.emu, &sid, 10).await;
    assert_eq!(session_id(&bot), sid, "the session was replaced");
    go_online(&bot.session).await;
    let channel = visitor(&bot);
    say(&bot, &channel, "to all ten");
    for sub in &mut subs {
        assert_eq!(next_visitor_message(sub).await.content, "to all ten");
    }
}

#[tokio::test]
async fn a_ping_period_longer_than_the_deadline_keeps_an_idle_socket() {
    // One official sample pings every 60 s; the deadline counts from each PING.
    let bot = bot_with(|config| {
        config.keepalive_interval = Duration::from_millis(1_500);
        config.keepalive_deadline = Duration::from_secs(1);
    })
    .await;
    let mut events = Box::pin(bot.session.lifecycle());
    // Two pings and more: before the fix the first tick already gave the socket up.
    let idle = tokio::time::timeout(Duration::from_secs(4), events.next()).await;
    assert!(
        idle.is_err(),
        "an idle, healthy socket was given up: {idle:?}"
    );
    // A PING nobody answers still means a dead socket.
    bot.emu
        .control()
        .fault_pings(&session_id(&bot), false)
        .unwrap();
    match next_event(&mut events).await {
        LifecycleEvent::Reconnecting { cause, .. } => {
            assert!(cause.contains("keepalive"), "{cause}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_concurrent_session_eos_worded_otherwise_is_surfaced_too() {
    let bot = bot().await;
    let mut events = Box::pin(bot.session.lifecycle());
    bot.emu
        .control()
        .fault_eos(&session_id(&bot), "Concurrent session limit reached.")
        .unwrap();
    let closed = first_event(&mut events, |e| match e {
        LifecycleEvent::Closed { reason } => Some(reason),
        LifecycleEvent::Restarted { .. } => panic!("restarted instead of closing"),
        _ => None,
    })
    .await;
    assert!(closed.contains("concurrent"), "{closed}");
    within(bot.driver).await.unwrap();
    assert_eq!(sessions_started(&bot.emu), 1);
}

/// A session resumed from facts whose session is gone: a new one, its status still to be
/// restored by the driver returned (not yet running), with the agent offline meanwhile.
async fn resumed_online_but_offline(emu: &Emulator) -> (AgentSession, Driver, String) {
    let facts = ResumableFacts {
        agent_status: Some(AgentStatus::Online),
        ..ResumableFacts::default()
    };
    let (session, driver) = resume_with(emu, facts).await;
    let sid = session.resumable().session_id.unwrap();
    let agent = emu.account().agents[0].id.clone();
    emu.control()
        .set_agent_status(&agent, zd_emulator::state::AgentStatus::Offline)
        .unwrap();
    assert_eq!(agent_status(emu), "offline");
    (session, driver, sid)
}

#[tokio::test]
async fn a_status_restore_that_meets_a_rate_limit_is_tried_again() {
    let emu = Emulator::builder().start().await.unwrap();
    let (_session, driver, sid) = resumed_online_but_offline(&emu).await;
    emu.control().fault_fail(&sid, 1, "RATE_LIMITED").unwrap();
    let _driver = tokio::spawn(driver);
    status_becomes(&emu, "online").await;
}

#[tokio::test]
async fn a_status_restore_lost_with_its_socket_is_sent_again() {
    let emu = Emulator::builder().start().await.unwrap();
    let (session, driver, sid) = resumed_online_but_offline(&emu).await;
    let mut events = Box::pin(session.lifecycle());
    // The emulator stops reading before the driver first runs (on this current-thread
    // runtime, the socket's reader takes the fault before this task goes on), so the restore
    // the driver's first turn writes waits unread in the socket's buffers, and goes with it.
    emu.control().fault_deaf(&sid, 600_000).unwrap();
    tokio::task::yield_now().await;
    let mut driver = Box::pin(driver);
    assert!((&mut driver).now_or_never().is_none());
    emu.control().fault_drop(&sid).await.unwrap();
    until(|| !session_report(&emu, &sid).connected).await;
    assert_eq!(agent_status(&emu), "offline", "the first restore was heard");
    let _driver = tokio::spawn(driver);
    until_connected(&mut events).await;
    status_becomes(&emu, "online").await;
}

#[tokio::test]
async fn a_subscription_restart_left_unanswered_is_sent_again() {
    let bot = bot_with(|config| config.request_timeout = Duration::from_secs(1)).await;
    let mut events = Box::pin(bot.session.lifecycle());
    let mut messages = bot.session.messages().await.unwrap();
    go_online(&bot.session).await;
    let sid = session_id(&bot);
    // On the resumed socket, the stop of the old id and the restart go unanswered (both
    // take effect on the service).
    bot.emu.control().fault_mute(&sid, 2).unwrap();
    bot.emu.control().fault_drop(&sid).await.unwrap();
    until_connected(&mut events).await;
    until_live(&bot).await;
    let channel = visitor(&bot);
    heard(&bot, &channel, &mut messages, "hi").await;
}

#[tokio::test]
async fn a_subscription_restart_never_answered_ends_its_stream_with_a_timeout() {
    let bot = bot_with(|config| config.request_timeout = Duration::from_secs(1)).await;
    let mut events = Box::pin(bot.session.lifecycle());
    let mut messages = bot.session.messages().await.unwrap();
    let sid = session_id(&bot);
    bot.emu.control().fault_mute(&sid, 100).unwrap();
    bot.emu.control().fault_drop(&sid).await.unwrap();
    until_connected(&mut events).await;
    let err = within(messages.next()).await.unwrap().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Timeout), "{err:?}");
    assert!(within(messages.next()).await.is_none());
    bot.emu.control().fault_mute(&sid, 0).unwrap();
    until_subscriptions(&bot, 0).await;
}

#[tokio::test]
async fn a_catch_up_not_answered_in_time_is_an_error_item() {
    let bot = bot_with(|config| config.request_timeout = Duration::from_secs(1)).await;
    let mut events = Box::pin(bot.session.lifecycle());
    let mut messages = bot.session.messages().await.unwrap();
    go_online(&bot.session).await;
    let sid = session_id(&bot);
    // Every answer comes two timeouts late: the restart's first try is still taken, a
    // timeout before the third would give it up (a retry goes out meanwhile), and the
    // catch-up it sends then is a timeout past its deadline when answered.
    bot.emu.control().fault_delay(&sid, 2_000).unwrap();
    bot.emu.control().fault_drop(&sid).await.unwrap();
    until_connected(&mut events).await;
    let err = within(messages.next()).await.unwrap().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::CatchUp), "{err:?}");
    assert!(chain(&err).contains("no answer in time"), "{}", chain(&err));
    bot.emu.control().fault_delay(&sid, 0).unwrap();
    until_live(&bot).await;
    let channel = visitor(&bot);
    heard(&bot, &channel, &mut messages, "after the late catch-up").await;
}

#[tokio::test]
async fn a_catch_up_answer_too_large_to_read_is_given_up_not_fetched_for_ever() {
    let bot = bot().await;
    let mut events = Box::pin(bot.session.lifecycle());
    let mut messages = bot.session.messages().await.unwrap();
    go_online(&bot.session).await;
    let channel = visitor(&bot);
    bot_says(&bot, &channel, "hello").await;
    // 20 logs of 64 KiB: the catch-up's answer is larger than the 1 MiB a frame may be.
    let big = "x".repeat(64 * 1024);
    for _ in 0..20 {
        say(&bot, &channel, &big);
        assert_eq!(
            next_visitor_message(&mut messages).await.content.len(),
            big.len()
        );
    }
    let sid = session_id(&bot);
    bot.emu.control().fault_drop(&sid).await.unwrap();
    let err = within(messages.next()).await.unwrap().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::CatchUp), "{err:?}");
    until_live(&bot).await;
    // The next socket runs no catch-up, so it stays up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut reconnects = 0;
    while let Some(Some(event)) = events.next().now_or_never() {
        if matches!(event, LifecycleEvent::Reconnecting { .. }) {
            reconnects += 1;
        }
    }
    assert!(reconnects <= 2, "{reconnects} reconnects");
    heard(&bot, &channel, &mut messages, "still heard").await;
}

#[tokio::test]
async fn a_status_restore_left_unanswered_is_sent_again() {
    let emu = Emulator::builder().start().await.unwrap();
    let facts = ResumableFacts {
        agent_status: Some(AgentStatus::Online),
        ..ResumableFacts::default()
    };
    let token = emu.account().agents[0].access_token.clone();
    let creds = Arc::new(StaticToken::bearer(token).unwrap());
    let mut config = config_for(&emu);
    config.request_timeout = Duration::from_secs(1);
    let (session, driver) = AgentSession::resume(config, creds, facts).await.unwrap();
    let sid = session.resumable().session_id.unwrap();
    // The restore takes effect but its answer never comes: unanswered counts as failed.
    emu.control().fault_mute(&sid, 1).unwrap();
    let _driver = tokio::spawn(driver);
    until(|| session_report(&emu, &sid).counts.requests >= 1).await;
    // Its effect undone, only a restore sent again brings the agent back online.
    let agent = emu.account().agents[0].id.clone();
    emu.control()
        .set_agent_status(&agent, zd_emulator::state::AgentStatus::Offline)
        .unwrap();
    status_becomes(&emu, "online").await;
}

#[tokio::test]
async fn a_status_set_by_the_caller_is_not_undone_by_a_retried_restore() {
    let emu = Emulator::builder().start().await.unwrap();
    let (session, driver, sid) = resumed_online_but_offline(&emu).await;
    // The restore (Online) meets a rate limit and would be tried again 100 ms later; the
    // caller sets Away meanwhile, which is newer.
    emu.control().fault_fail(&sid, 1, "RATE_LIMITED").unwrap();
    let away = tokio::spawn({
        let session = session.clone();
        async move { session.update_agent_status(AgentStatus::Away).await }
    });
    let _driver = tokio::spawn(driver);
    within(away).await.unwrap().unwrap();
    // Past the restore's retry (100 ms): nothing set Online after Away.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(agent_status(&emu), "away");
}

#[tokio::test]
async fn a_late_refusal_of_a_superseded_restart_leaves_the_subscription_running() {
    // One subscription per session: the restart's second try is refused MAX_SUB, as the
    // service already runs the first.
    let mut limits = zd_emulator::Limits::documented();
    limits.max_subscriptions = 1;
    let emu = Emulator::builder().limits(limits).start().await.unwrap();
    let mut config = config_for(&emu);
    config.request_timeout = Duration::from_secs(1);
    let bot = start_with(emu, config).await;
    let mut events = Box::pin(bot.session.lifecycle());
    let mut messages = bot.session.messages().await.unwrap();
    go_online(&bot.session).await;
    let sid = session_id(&bot);
    // Answers come 1.5 s late: the first try of the restart is answered after the second
    // went out (1 s) and before its deadline (2 s); the second's MAX_SUB comes after that.
    bot.emu.control().fault_delay(&sid, 1_500).unwrap();
    bot.emu.control().fault_drop(&sid).await.unwrap();
    until_connected(&mut events).await;
    // The catch-up sent once the first try is taken is answered past its deadline.
    let err = within(messages.next()).await.unwrap().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::CatchUp), "{err:?}");
    bot.emu.control().fault_delay(&sid, 0).unwrap();
    until_live(&bot).await;
    let channel = visitor(&bot);
    heard(&bot, &channel, &mut messages, "still running").await;
    // Past the second try's late MAX_SUB (about 3 s after the drop) and a start's spacing.
    // A restart would have started a second session by now.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(sessions_started(&bot.emu), 1, "the session was restarted");
    while let Some(Some(event)) = events.next().now_or_never() {
        assert!(
            !matches!(event, LifecycleEvent::Restarted { .. }),
            "{event:?}"
        );
    }
}

#[tokio::test]
async fn a_restart_unanswered_when_its_socket_died_waits_for_the_next_socket() {
    // Starts at most every 4 s: the restart after the EOS below waits that long, four request
    // timeouts, with the subscription's restart from the socket before still unanswered.
    let bot = bot_with(|config| {
        config.request_timeout = Duration::from_secs(1);
        config.start_limiter = Some(Arc::new(StartLimiter::new(
            zd_agent::rate_limit::StartLimits {
                min_interval: Duration::from_secs(4),
                ..zd_agent::rate_limit::StartLimits::default()
            },
        )));
    })
    .await;
    let mut events = Box::pin(bot.session.lifecycle());
    let mut messages = bot.session.messages().await.unwrap();
    go_online(&bot.session).await;
    let sid = session_id(&bot);
    // The resumed socket's stop of the old id and its restart go unanswered; then the
    // session ends.
    bot.emu.control().fault_mute(&sid, 2).unwrap();
    bot.emu.control().fault_drop(&sid).await.unwrap();
    until_connected(&mut events).await;
    until(|| session_report(&bot.emu, &sid).counts.requests >= 4).await;
    bot.emu
        .control()
        .fault_eos(&sid, "unexpected session state")
        .unwrap();
    first_event(&mut events, |e| {
        matches!(e, LifecycleEvent::Restarted { .. }).then_some(())
    })
    .await;
    until_live(&bot).await;
    let channel = visitor(&bot);
    heard(&bot, &channel, &mut messages, "after the restart").await;
}

#[tokio::test]
async fn a_status_request_dropped_unsent_leaves_the_restore_owed() {
    let emu = Emulator::builder().start().await.unwrap();
    let (session, driver, _sid) = resumed_online_but_offline(&emu).await;
    // The caller asks for Away and gives up before the driver even runs: nothing is set, so
    // the restore it replaced still brings the agent back online.
    let away = session.update_agent_status(AgentStatus::Away);
    assert!(
        tokio::time::timeout(Duration::from_millis(1), away)
            .await
            .is_err()
    );
    let _driver = tokio::spawn(driver);
    status_becomes(&emu, "online").await;
    // And the dropped Away does not go out after it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(agent_status(&emu), "online");
}

#[tokio::test]
async fn a_dropped_status_request_does_not_undo_a_later_one() {
    let emu = Emulator::builder().start().await.unwrap();
    let (session, driver, _sid) = resumed_online_but_offline(&emu).await;
    // Invisible is given up before the driver runs; Away is queued behind it. The restore
    // owed again must not go out after Away and undo it.
    let invisible = session.update_agent_status(AgentStatus::Invisible);
    assert!(
        tokio::time::timeout(Duration::from_millis(1), invisible)
            .await
            .is_err()
    );
    let away = tokio::spawn({
        let session = session.clone();
        async move { session.update_agent_status(AgentStatus::Away).await }
    });
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let _driver = tokio::spawn(driver);
    within(away).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(agent_status(&emu), "away");
}

#[tokio::test]
async fn a_stop_whose_caller_stops_waiting_still_ends_the_session() {
    let bot = bot().await;
    let mut events = Box::pin(bot.session.lifecycle());
    let sid = session_id(&bot);
    // Polled once, then dropped, as by a `select!` or a timeout that gave up on it.
    let mut stop = Box::pin(bot.session.stop());
    assert!((&mut stop).now_or_never().is_none());
    drop(stop);
    // The stop still reaches the service and ends the session: it is not left running,
    // marked to close at its next socket failure instead of reconnecting.
    let reason = first_event(&mut events, |e| match e {
        LifecycleEvent::Closed { reason } => Some(reason),
        _ => None,
    })
    .await;
    assert!(reason.contains("stopped"), "{reason}");
    assert!(session_report(&bot.emu, &sid).ended.is_some());
    within(bot.driver).await.unwrap();
    assert_eq!(bot.session.state(), SessionState::Closed);
}

#[tokio::test]
async fn a_subscription_handed_to_a_caller_that_stopped_waiting_is_stopped() {
    let bot = bot().await;
    let sid = session_id(&bot);
    // Polled once, so the start goes out; never polled again, as when a `select!` takes
    // another branch after the driver has handed the started subscription over.
    let mut subscribing = Box::pin(bot.session.messages());
    assert!((&mut subscribing).now_or_never().is_none());
    until(|| bot.session.resumable().subscriptions.len() == 1 && subscriptions_live(&bot)).await;
    service_holds(&bot.emu, &sid, 1).await;
    drop(subscribing);
    // Nobody can read it: it holds none of the ten, here or on the service.
    until_subscriptions(&bot, 0).await;
    service_holds(&bot.emu, &sid, 0).await;
}

#[tokio::test]
async fn the_error_that_ends_a_subscription_reaches_a_reader_whose_buffer_was_full() {
    const BUFFER: usize = 2;
    let bot = bot_with(|config| {
        config.subscription_buffer = BUFFER;
        config.catch_up = false;
    })
    .await;
    go_online(&bot.session).await;
    let channel = visitor(&bot);
    let sid = session_id(&bot);
    // Subscribed after the chat is set up, so only what the visitor says reaches it.
    let mut messages = bot.session.messages().await.unwrap();
    let frames = || session_report(&bot.emu, &sid).counts.data_frames;
    let before = frames();
    for i in 0..BUFFER {
        say(&bot, &channel, &format!("unread {i}"));
    }
    until(|| frames() >= before + BUFFER as u64).await;
    // An answer comes behind the DATA frames queued before it: once it is here, they fill
    // the buffer, unread.
    go_online(&bot.session).await;
    // On the resumed socket the old id's stop and the restart are both refused for good.
    fail_next(&bot, 2, "FORBIDDEN");
    bot.emu.control().fault_drop(&sid).await.unwrap();
    until_subscriptions(&bot, 0).await;
    for i in 0..BUFFER {
        let m = within(messages.next()).await.unwrap().unwrap();
        assert_eq!(m.content, format!("unread {i}"));
    }
    // Why the stream ends comes after what it buffered, not lost to the full buffer.
    let err = within(messages.next()).await.unwrap().unwrap_err();
    assert_eq!(err.error_name(), Some(&ErrorName::Forbidden), "{err:?}");
    assert!(within(messages.next()).await.is_none());
}

#[tokio::test]
async fn a_message_lost_with_its_socket_keeps_why_as_its_source() {
    let bot = bot_with(|config| config.resend_messages = false).await;
    go_online(&bot.session).await;
    let channel = visitor(&bot);
    // The service takes the message, and the socket dies before its answer.
    bot.emu.control().fault_cut(&session_id(&bot)).unwrap();
    let message = zd_agent::OutgoingMessage::new(cynic::Id::new(&channel), "cut off");
    let err = within(bot.session.send_message(message)).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::ConnectionLost), "{err:?}");
    let source = std::error::Error::source(&err).expect("why the socket went");
    // The socket's own error, not a text made of it: it can be inspected.
    let socket_error = source.source().expect("the socket's error");
    assert!(
        socket_error
            .downcast_ref::<tokio_tungstenite::tungstenite::Error>()
            .is_some(),
        "{socket_error:?}"
    );
}

#[tokio::test]
async fn pings_go_on_while_the_driver_waits_on_a_reader_that_is_behind() {
    // The idle timeout is 30 PINGs long, so a loaded test machine does not close the socket
    // between two of them; the test still outlasts it twice.
    const IDLE: Duration = Duration::from_millis(1_500);
    const PING: Duration = Duration::from_millis(50);
    let emu = Emulator::builder()
        .limits(zd_emulator::Limits {
            idle_timeout: Some(IDLE),
            ..zd_emulator::Limits::documented()
        })
        .start()
        .await
        .unwrap();
    let mut config = config_for(&emu);
    config.subscription_buffer = 1;
    config.catch_up = false;
    config.keepalive_interval = PING;
    let bot = start_with(emu, config).await;
    go_online(&bot.session).await;
    let channel = visitor(&bot);
    let sid = session_id(&bot);
    let mut messages = bot.session.messages().await.unwrap();
    let frames = || session_report(&bot.emu, &sid).counts.data_frames;
    let before = frames();
    // The first fills the buffer of one; the driver waits for room to hand over the second.
    say(&bot, &channel, "first");
    say(&bot, &channel, "second");
    until(|| frames() >= before + 2).await;
    // Twice the service's idle timeout in PINGs while the reader is away: the socket stays.
    let pings = || session_report(&bot.emu, &sid).counts.pings;
    let start = pings();
    let enough = (2 * IDLE.as_millis() / PING.as_millis()) as u64;
    until(|| pings() >= start + enough).await;
    let report = session_report(&bot.emu, &sid);
    assert!(report.connected, "{report:?}");
    assert_eq!(report.counts.connections, 1, "{report:?}");
    assert_eq!(next_visitor_message(&mut messages).await.content, "first");
    assert_eq!(next_visitor_message(&mut messages).await.content, "second");
}
