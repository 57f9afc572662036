//! Reconnect attempts against a raw TCP server scripted connection by connection, for what
//! the WebSocket test server cannot do: accept a connection and never answer the upgrade (a
//! peer that drops packets), or answer it and reset the socket before reading a byte.
//!
//! Each test's server answers its connections in order and reports through channels; the
//! tests wait on those, never on sleeps. The clock is paused, so a 1 s `timeout` is a bound
//! no slow machine can miss: time moves only when every task is idle.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use zd_metrics::{
    ErrorKind, Feed, FeedEvent, FeedState, Metric, MetricsClient, Series, StaticToken,
};

use crate::server::update;

/// Far below the 30 s `connect_timeout` an attempt that hangs would wait for.
const PROMPTLY: Duration = Duration::from_secs(1);

fn client(listener: &TcpListener) -> MetricsClient {
    MetricsClient::builder(StaticToken::bearer("good").unwrap())
        .base_url(format!("http://{}", listener.local_addr().unwrap()))
        .build()
        .unwrap()
}

async fn next(feed: &mut Feed) -> FeedEvent {
    feed.next().await.expect("feed ended")
}

/// Reads an upgrade request's head and returns the 101 that accepts it.
async fn read_upgrade(stream: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut chunk = [0_u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the client hung up during the upgrade");
        head.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8(head).unwrap();
    let key = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .expect("a Sec-WebSocket-Key");
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    )
    .into_bytes()
}

async fn accept_ws(listener: &TcpListener) -> WebSocketStream<TcpStream> {
    let (mut stream, _) = listener.accept().await.unwrap();
    let answer = read_upgrade(&mut stream).await;
    stream.write_all(&answer).await.unwrap();
    WebSocketStream::from_raw_socket(stream, Role::Server, None).await
}

/// The next text frame the client sent.
async fn recv_text(ws: &mut WebSocketStream<TcpStream>) -> String {
    loop {
        if let Message::Text(text) = ws.next().await.expect("the client hung up").unwrap() {
            return text.as_str().to_owned();
        }
    }
}

/// A text frame as a server sends it (unmasked).
fn text_frame(text: &str) -> Vec<u8> {
    let len = u16::try_from(text.len()).unwrap();
    let mut frame = vec![0x81];
    if len < 126 {
        frame.push(u8::try_from(len).unwrap());
    } else {
        frame.push(126);
        frame.extend_from_slice(&len.to_be_bytes());
    }
    frame.extend_from_slice(text.as_bytes());
    frame
}

/// A server whose first connection is upgraded and dropped at once, and whose second is
/// accepted and never answered. `hanging` fires once the second is accepted: the feed's
/// first reconnect attempt is then under way, and would wait `connect_timeout` (30 s).
fn drop_then_hang(listener: TcpListener) -> oneshot::Receiver<()> {
    let (hanging, hanging_rx) = oneshot::channel();
    tokio::spawn(async move {
        drop(accept_ws(&listener).await);
        let (held, _) = listener.accept().await.unwrap();
        let _ = hanging.send(());
        // Holds the connection open, answering nothing.
        std::future::pending::<()>().await;
        drop(held);
    });
    hanging_rx
}

async fn first_reconnecting(feed: &mut Feed) {
    match next(feed).await {
        FeedEvent::Reconnecting { attempt: 1, .. } => {}
        other => panic!("expected Reconnecting, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn close_is_served_while_a_connection_attempt_hangs() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = client(&listener);
    let hanging = drop_then_hang(listener);
    let mut feed = client.connect().await.unwrap();
    first_reconnecting(&mut feed).await;
    hanging.await.unwrap();

    timeout(PROMPTLY, feed.handle().close())
        .await
        .expect("close waited for the hanging connection attempt");
    match next(&mut feed).await {
        FeedEvent::Closed(error) => assert_eq!(error.kind(), ErrorKind::Closed),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(feed.next().await.is_none());
    assert_eq!(feed.handle().state().get(), FeedState::Closed);
    assert_eq!(client.open_feeds(), 0);
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_ends_a_hanging_connection_attempt() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = client(&listener);
    let hanging = drop_then_hang(listener);
    let mut feed = client.connect().await.unwrap();
    first_reconnecting(&mut feed).await;
    hanging.await.unwrap();

    // Receivers hold no handle; the snapshot's ends when the driver is gone.
    let mut snapshot = feed.snapshot();
    drop(feed);
    timeout(PROMPTLY, async {
        while snapshot.changed().await.is_ok() {}
    })
    .await
    .expect("the driver outlived its last handle while a connection attempt hung");
    assert_eq!(client.open_feeds(), 0);
}

/// Subscriptions changed while a connection attempt hangs are answered at once, and the new
/// connection is sent the subscriptions as they are when it comes up.
#[tokio::test(start_paused = true)]
async fn subscriptions_change_while_a_connection_attempt_hangs() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = client(&listener);
    let (cut, cut_rx) = oneshot::channel::<()>();
    let (hanging, hanging_rx) = oneshot::channel();
    let (answer, answer_rx) = oneshot::channel::<()>();
    let (frames_tx, mut frames) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut first = accept_ws(&listener).await;
        frames_tx.send(recv_text(&mut first).await).unwrap();
        cut_rx.await.unwrap();
        drop(first);
        let (mut second, _) = listener.accept().await.unwrap();
        let _ = hanging.send(());
        answer_rx.await.unwrap();
        let upgrade = read_upgrade(&mut second).await;
        second.write_all(&upgrade).await.unwrap();
        let mut second = WebSocketStream::from_raw_socket(second, Role::Server, None).await;
        while let Some(Ok(message)) = second.next().await {
            if let Message::Text(text) = message {
                let _ = frames_tx.send(text.as_str().to_owned());
            }
        }
    });

    let mut feed = client.connect().await.unwrap();
    let incoming = Series::metric(Metric::IncomingChats);
    let active = Series::metric(Metric::ActiveChats);
    feed.subscribe(incoming.clone()).await.unwrap();
    insta::assert_snapshot!(frames.recv().await.unwrap(), @r#"{"topic":"chats.incoming_chats","action":"subscribe"}"#);
    cut.send(()).unwrap();
    first_reconnecting(&mut feed).await;
    hanging_rx.await.unwrap();

    let handle = feed.handle();
    timeout(PROMPTLY, handle.subscribe(active.clone()))
        .await
        .expect("subscribe waited for the hanging connection attempt")
        .unwrap();
    timeout(PROMPTLY, handle.unsubscribe(incoming.clone()))
        .await
        .expect("unsubscribe waited for the hanging connection attempt")
        .unwrap();
    let listed = timeout(PROMPTLY, handle.subscriptions())
        .await
        .expect("subscriptions waited for the hanging connection attempt")
        .unwrap();
    assert_eq!(listed, std::slice::from_ref(&active));
    {
        let snapshot = feed.snapshot();
        let snapshot = snapshot.borrow();
        assert_eq!(snapshot.get_tracked(&active), Some(None));
        assert_eq!(snapshot.get_tracked(&incoming), None);
    }

    answer.send(()).unwrap();
    insta::assert_snapshot!(frames.recv().await.unwrap(), @r#"{"topic":"chats.active_chats","action":"subscribe"}"#);
    assert!(matches!(next(&mut feed).await, FeedEvent::Reconnected));
    // Frames arrive in order: a marker sent now is the next one only if nothing else (a stale
    // subscribe of `incoming`, a second one of `active`) went out after the resubscribe.
    feed.subscribe(Series::metric(Metric::AssignedChats))
        .await
        .unwrap();
    insta::assert_snapshot!(frames.recv().await.unwrap(), @r#"{"topic":"chats.assigned_chats","action":"subscribe"}"#);
}

/// A connection whose subscriptions cannot be written is not up: an update it delivered
/// before it broke is neither applied nor reported, and the values stay unknown until one
/// arrives on a connection that is.
#[tokio::test(start_paused = true)]
async fn an_update_from_a_connection_that_failed_to_resubscribe_is_not_applied() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = client(&listener);
    let (cut, cut_rx) = oneshot::channel::<()>();
    let (frames_tx, mut frames) = mpsc::unbounded_channel();
    let (third_tx, third_rx) = oneshot::channel();
    tokio::spawn(async move {
        let mut first = accept_ws(&listener).await;
        frames_tx.send(recv_text(&mut first).await).unwrap();
        cut_rx.await.unwrap();
        drop(first);

        // The 101 and an update in one write, then a reset (SO_LINGER 0) before reading
        // anything: both reach the client's socket before it runs again (one thread), so
        // its subscribe fails while the update waits unread.
        let (mut second, _) = listener.accept().await.unwrap();
        let mut answer = read_upgrade(&mut second).await;
        answer.extend(text_frame(&update(
            "chats",
            r#"{"incoming_chats":5}"#,
            None,
        )));
        second.write_all(&answer).await.unwrap();
        second.set_zero_linger().unwrap();
        drop(second);

        let mut third = accept_ws(&listener).await;
        frames_tx.send(recv_text(&mut third).await).unwrap();
        // Kept open for the rest of the test.
        let _ = third_tx.send(third);
    });

    let mut feed = client.connect().await.unwrap();
    let incoming = Series::metric(Metric::IncomingChats);
    feed.subscribe(incoming.clone()).await.unwrap();
    frames.recv().await.unwrap();
    let snapshot = feed.snapshot();
    cut.send(()).unwrap();
    first_reconnecting(&mut feed).await;

    match next(&mut feed).await {
        FeedEvent::Reconnecting {
            attempt: 2, error, ..
        } => assert_eq!(error.kind(), ErrorKind::Transport, "{error:?}"),
        other => panic!("expected the second Reconnecting, got {other:?}"),
    }
    assert_eq!(snapshot.borrow().get_tracked(&incoming), Some(None));

    insta::assert_snapshot!(frames.recv().await.unwrap(), @r#"{"topic":"chats.incoming_chats","action":"subscribe"}"#);
    assert!(matches!(next(&mut feed).await, FeedEvent::Reconnected));
    assert_eq!(
        snapshot.borrow().get_tracked(&incoming),
        Some(None),
        "no update has arrived on the connection that is up"
    );

    // The connection that is up delivers values as usual.
    let mut third = third_rx.await.unwrap();
    third
        .send(Message::text(update(
            "chats",
            r#"{"incoming_chats":2}"#,
            None,
        )))
        .await
        .unwrap();
    match next(&mut feed).await {
        FeedEvent::Update(got) => assert_eq!((got.series, got.value), (incoming, Some(2))),
        other => panic!("expected Update, got {other:?}"),
    }
}
