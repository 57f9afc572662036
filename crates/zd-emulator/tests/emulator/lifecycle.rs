//! Stopping an emulator, a socket right after its upgrade, and the requests a browser may send
//! from pages of other sites.

use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use zd_emulator::Emulator;

use crate::common::*;

/// Restarting a service on the same port, as a test of a client that reconnects does. On a
/// current-thread runtime nothing else runs between the drop and the bind, so only a stop
/// that is waited for frees the port.
#[tokio::test]
async fn a_shut_down_emulator_frees_its_port() {
    let emu = emulator().await;
    let port = emu.addr().port();
    let mut bot = Agent::connect(&emu, "Bot").await;
    emu.shutdown().await;
    let again = Emulator::builder().port(port).start().await.unwrap();
    assert_eq!(again.addr().port(), port);
    // The old socket ended with its server; the new service answers on the port.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match bot.ws.next().await {
                None | Some(Err(_) | Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the old socket outlived its server");
    let (status, body) = start_session(&again, &token(&again, "Bot")).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn run_until_returns_once_the_server_has_stopped() {
    let emu = emulator().await;
    let port = emu.addr().port();
    emu.run_until(async {}).await;
    let again = Emulator::builder().port(port).start().await.unwrap();
    assert_eq!(again.addr().port(), port);
}

/// A session started and its socket connected, with nothing sent on it yet.
async fn fresh_socket(emu: &Emulator) -> (String, Ws) {
    let (status, body) = start_session(emu, &token(emu, "Bot")).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"]["startAgentSession"];
    let url = data["websocket_url"].as_str().unwrap();
    let (ws, _) = connect_async(url).await.unwrap();
    (data["session_id"].as_str().unwrap().to_owned(), ws)
}

/// The close frame (code, reason) that ends `ws`, if one does within 10 s.
async fn close_of(ws: &mut Ws) -> Option<(u16, String)> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return Some((u16::from(frame.code), frame.reason.as_str().to_owned()));
                }
                Some(Ok(Message::Close(None)) | Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// A client's connect returns on the 101, and a test may act on the socket at once: the
/// socket is the session's by then, not only once the server's task has taken it over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_takes_faults_as_soon_as_its_upgrade_is_answered() {
    let emu = emulator_with(|l| *l = relaxed_starts()).await;
    for i in 0..100 {
        let (session_id, mut ws) = fresh_socket(&emu).await;
        emu.control()
            .fault_close(&session_id, 4000, "bye")
            .await
            .unwrap_or_else(|e| panic!("close, try {i}: {e}"));
        assert_eq!(
            close_of(&mut ws).await,
            Some((4000, "bye".to_owned())),
            "try {i}"
        );

        let (session_id, mut ws) = fresh_socket(&emu).await;
        emu.control()
            .fault_drop(&session_id)
            .await
            .unwrap_or_else(|e| panic!("drop, try {i}: {e}"));
        let dropped = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match ws.next().await {
                    None | Some(Err(_)) => return true,
                    Some(Ok(Message::Close(_))) => return false,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        assert_eq!(dropped, Ok(true), "try {i}");
    }
}

/// A socket attached to its session whose upgrade then fails leaves the session as it found
/// it: the socket it was to replace is still open and the session's (its frames and faults
/// reach it), and the failed one is not counted. The failure here: an HTTP/1.0 request, which
/// hyper never upgrades, though its headers ask for a WebSocket and get a 101.
#[tokio::test]
async fn a_failed_upgrade_leaves_the_socket_it_was_to_replace_in_place() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let session = bot.session_id.clone();
    assert_eq!(session_counters(&emu, &session).await["connections"], 1);

    let base = format!("ws://{}", emu.addr());
    let path = bot.url.strip_prefix(&base).unwrap();
    let mut tcp = TcpStream::connect(emu.addr()).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        emu.addr()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0; 1];
        assert_eq!(tcp.read(&mut byte).await.unwrap(), 1, "no answer: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.contains(" 101 "), "{head}");

    // The failed socket is uncounted once the server's task has seen its upgrade fail.
    tokio::time::timeout(Duration::from_secs(10), async {
        while session_counters(&emu, &session).await["connections"] != 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the failed upgrade is still counted");
    assert_eq!(session_counters(&emu, &session).await["connected"], true);
    // The socket it was to replace was not closed, and answers.
    bot.ping(json!("still here")).await;
    // It is the session's socket again: a fault reaches it.
    emu.control()
        .fault_close(&session, 4000, "bye")
        .await
        .unwrap();
    assert_eq!(close_of(&mut bot.ws).await, Some((4000, "bye".to_owned())));
}

/// Sends `method path` to the emulator with the given headers (see [`send_raw`]).
async fn send(
    emu: &Emulator,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    send_raw(method, &format!("{}{path}", emu.base_url()), headers, body).await
}

/// A page of `rebind.example`, whose name the attacker's DNS then points at 127.0.0.1, is of
/// the same origin as the emulator in the browser's eyes: only the `Host` tells them apart.
#[tokio::test]
async fn requests_for_another_host_name_are_refused() {
    let emu = emulator().await;
    let port = emu.addr().port();
    let host = format!("rebind.example:{port}");
    let origin = format!("http://{host}");
    let rebound = [("host", host.as_str()), ("origin", origin.as_str())];
    let start = json!({
        "query": format!(
            "mutation {{ startAgentSession(access_token: \"{}\") {{ session_id }} }}",
            token(&emu, "Bot")
        )
    })
    .to_string();
    let visitor = json!({ "name": "Eve" }).to_string();
    for (method, path, body) in [
        ("GET", "/_emulator/account", ""),
        ("POST", "/_emulator/reset", ""),
        ("POST", "/_emulator/visitors", visitor.as_str()),
        ("POST", "/graphql/request", start.as_str()),
        ("GET", "/", ""),
        ("GET", "/v2/apps/demo/users", ""),
    ] {
        let (status, body) = send(&emu, method, path, &rebound, body).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert!(body["error"].as_str().is_some(), "{method} {path}: {body}");
        assert!(!body.to_string().contains("demo-bot-token"), "{body}");
    }
    // Even without an Origin (a program, or a browser's GET): the Host alone decides.
    let (status, _) = send(&emu, "GET", "/_emulator/account", &rebound[..1], "").await;
    assert_eq!(status, 403);
    let counters = control_get(&emu, "/counters").await;
    assert_eq!(counters["sessions"], json!([]), "{counters}");
    assert!(emu.control().state().channels().is_empty());

    // The names the emulator goes by still work, with or without the port.
    for host in [
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "localhost".to_owned(),
        format!("localhost.:{port}"),
        "localhost.".to_owned(),
    ] {
        let (status, body) = send(&emu, "GET", "/_emulator/account", &[("host", &host)], "").await;
        assert_eq!(status, 200, "{host}: {body}");
    }
    // So do the WebSocket upgrade and the visitor page through `localhost`.
    let url = format!("ws://localhost:{port}/stream/0.1/graphql/none:0");
    assert!(connect_async(url).await.is_ok());
    let (status, _) = get_text(&format!("http://localhost:{port}/")).await;
    assert_eq!(status, 200);
}

/// Bound to every interface in a container and reached by its service name (or through a
/// published port), the emulator hands out URLs naming it as its client did: the bound
/// `0.0.0.0` would send a client in another container to itself.
#[tokio::test]
async fn urls_handed_out_name_the_emulator_as_its_client_reached_it() {
    let emu = zd_emulator::Emulator::builder()
        .addr(std::net::SocketAddr::from(([0, 0, 0, 0], 0)))
        .allow_host("emulator")
        .limits(relaxed_starts())
        .start()
        .await
        .unwrap();
    let port = emu.addr().port();
    let url = format!("http://127.0.0.1:{port}");
    let host = format!("emulator:{port}");
    let start = json!({
        "query": format!(
            "mutation {{ startAgentSession(access_token: \"{}\") {{ websocket_url }} }}",
            token(&emu, "Bot")
        )
    })
    .to_string();
    let named = [
        ("host", host.as_str()),
        ("content-type", "application/json"),
    ];
    let (status, body) = send_raw("POST", &format!("{url}/graphql/request"), &named, &start).await;
    assert_eq!(status, 200, "{body}");
    let ws = body["data"]["startAgentSession"]["websocket_url"]
        .as_str()
        .unwrap();
    assert!(
        ws.starts_with(&format!("ws://{host}/stream/0.1/graphql/")),
        "{ws}"
    );
    let (status, account) =
        send_raw("GET", &format!("{url}/_emulator/account"), &named[..1], "").await;
    assert_eq!(status, 200, "{account}");
    assert_eq!(
        account["graphql_url"],
        format!("http://{host}/graphql/request")
    );
    assert_eq!(account["widget_url"], format!("http://{host}/"));
    assert_eq!(account["control_url"], format!("http://{host}/_emulator"));
    // Through a published port, the port the client used.
    let published = "emulator:18090";
    let (_, body) = send_raw(
        "POST",
        &format!("{url}/graphql/request"),
        &[("host", published), ("content-type", "application/json")],
        &start,
    )
    .await;
    let ws = body["data"]["startAgentSession"]["websocket_url"]
        .as_str()
        .unwrap();
    assert!(ws.starts_with("ws://emulator:18090/"), "{ws}");
    // The emulator's own view (no request) keeps the bound address.
    assert!(emu.account().graphql_url.starts_with("http://0.0.0.0:"));
}

/// A form or `fetch` with a `text/plain` body needs no preflight, so without this any site
/// could start a session with the documented demo token, ending the running bot's session
/// and spending its hourly start budget.
#[tokio::test]
async fn other_sites_pages_cannot_start_agent_sessions() {
    let emu = emulator_with(|l| *l = relaxed_starts()).await;
    let query = json!({
        "query": format!(
            "mutation {{ startAgentSession(access_token: \"{}\") {{ session_id }} }}",
            token(&emu, "Bot")
        )
    })
    .to_string();
    let text = ("content-type", "text/plain");
    let (status, body) = send(
        &emu,
        "POST",
        "/graphql/request",
        &[text, ("origin", "https://evil.example")],
        &query,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("cross-site"),
        "{body}"
    );
    let (status, body) = send(
        &emu,
        "POST",
        "/graphql/request",
        &[text, ("sec-fetch-site", "cross-site")],
        &query,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let counters = control_get(&emu, "/counters").await;
    assert_eq!(counters["sessions"], json!([]), "{counters}");

    // A GraphQL IDE extension names its origin and sends JSON, which a page of another site
    // cannot without a CORS preflight the emulator does not answer: it loads the schema.
    let (status, body) = send(
        &emu,
        "POST",
        "/graphql/request",
        &[
            ("content-type", "application/json"),
            ("origin", "chrome-extension://chromiql"),
        ],
        &json!({ "query": "{ __schema { queryType { name } } }" }).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");

    // Programs send no origin; a page of the emulator's own origin sends its own.
    let own = format!("http://{}", emu.addr());
    for headers in [vec![], vec![("origin", own.as_str())]] {
        let mut headers = headers;
        headers.push(("content-type", "application/json"));
        let (status, body) = send(&emu, "POST", "/graphql/request", &headers, &query).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            body["data"]["startAgentSession"]["session_id"].is_string(),
            "{body}"
        );
    }
}
