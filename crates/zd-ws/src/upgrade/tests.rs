use std::time::Duration;

use http::header::AUTHORIZATION;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use futures_util::StreamExt;

use super::*;
use crate::Socket;
use crate::refusal::REFUSAL_BODY_WAIT;

const HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k\r\n\r\n";

fn no_headers() -> std::iter::Empty<(&'static [u8], &'static [u8])> {
    std::iter::empty()
}

#[test]
fn the_target_replaces_the_placeholder_and_headers_go_last() {
    let spliced = splice(
        HEAD,
        Some(b"/stream/0.1/graphql/s:c?x=1"),
        [(&b"authorization"[..], &b"Bearer t"[..]), (b"x-a", b"")].into_iter(),
    )
    .unwrap();
    assert_eq!(
        spliced,
        b"GET /stream/0.1/graphql/s:c?x=1 HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k\r\n\
          authorization: Bearer t\r\nx-a: \r\n\r\n"
    );
    // The capacity was computed, not grown into.
    assert_eq!(spliced.capacity(), spliced.len());
    // Without a secret target the request line stays as built.
    let spliced = splice(
        b"GET /stream HTTP/1.1\r\n\r\n",
        None,
        [(&b"authorization"[..], &b"Bearer t"[..])].into_iter(),
    )
    .unwrap();
    assert_eq!(
        spliced,
        b"GET /stream HTTP/1.1\r\nauthorization: Bearer t\r\n\r\n"
    );
}

#[test]
fn secrets_are_added_through_the_typed_api() {
    let secrets = Secrets::new()
        .with_target(PathAndQuery::from_static("/a:b"))
        .with_header(AUTHORIZATION, HeaderValue::from_static("Bearer t"));
    assert_eq!(
        with_secrets(HEAD.to_vec(), &secrets).unwrap(),
        b"GET /a:b HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k\r\nauthorization: Bearer t\r\n\r\n"
    );
    // No secrets: the head as tungstenite built it.
    assert_eq!(with_secrets(HEAD.to_vec(), &Secrets::new()).unwrap(), HEAD);
    let shown = format!("{secrets:?}");
    assert!(
        !shown.contains("/a:b") && !shown.contains("Bearer"),
        "{shown}"
    );
}

#[test]
fn a_cr_or_lf_in_a_secret_is_refused() {
    for target in [
        &b"/a\r\nX-Evil: 1"[..],
        b"/a\nb",
        b"/a\rb",
        b"/a b",
        b"/a\0",
        b"",
    ] {
        let err = splice(HEAD, Some(target), no_headers()).unwrap_err();
        assert!(matches!(err, Error::InvalidSecret), "{target:?}: {err:?}");
    }
    for (name, value) in [
        (&b"authorization"[..], &b"Bearer t\r\nX-Evil: 1"[..]),
        (b"authorization", b"t\n"),
        (b"authorization", b"t\r"),
        (b"authorization", b"t\0"),
        (b"x\r\ny", b"v"),
        (b"x:y", b"v"),
        (b"x y", b"v"),
        (b"", b"v"),
    ] {
        let err = splice(HEAD, None, [(name, value)].into_iter()).unwrap_err();
        assert!(matches!(err, Error::InvalidSecret), "{name:?}: {err:?}");
    }
}

#[test]
fn a_head_not_in_the_expected_shape_is_an_error() {
    let header = [(&b"authorization"[..], &b"Bearer t"[..])];
    for head in [
        &b""[..],
        b"GET / HTTP/1.1",
        b"GET / HTTP/1.1\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n",
        b"GET / HTTP/1.1\r\nHost: h\n\n",
        b"POST / HTTP/1.1\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"GET  HTTP/1.1\r\n\r\n",
        b"GET / FTP\r\n\r\n",
        // `upgrade` sends HTTP/1.1 only.
        b"GET / HTTP/1.0\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
    ] {
        let err = splice(head, Some(b"/s"), header.into_iter()).unwrap_err();
        assert!(
            matches!(err, Error::MalformedHead),
            "{:?}: {err:?}",
            String::from_utf8_lossy(head)
        );
    }
    // A secret target goes only where the placeholder is: a real target there may have been
    // logged already.
    let err = splice(b"GET /real HTTP/1.1\r\n\r\n", Some(b"/s"), no_headers()).unwrap_err();
    assert!(matches!(err, Error::MalformedHead), "{err:?}");
}

#[test]
fn a_secret_target_must_be_in_origin_form() {
    // `ws://h?t=1` has the path-and-query `?t=1`; `*` is the asterisk form of OPTIONS.
    for target in [&b"?t=1"[..], b"*", b"h.example:443", b"http://h/x"] {
        let err = splice(HEAD, Some(target), no_headers()).unwrap_err();
        assert!(
            matches!(err, Error::InvalidTarget),
            "{:?}: {err:?}",
            String::from_utf8_lossy(target)
        );
        // Not named in the error.
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("t=1") && !shown.contains('*'), "{shown}");
    }
    // Through the typed API too.
    let secrets = Secrets::new().with_target(PathAndQuery::from_static("?t=1"));
    let err = with_secrets(HEAD.to_vec(), &secrets).unwrap_err();
    assert!(matches!(err, Error::InvalidTarget), "{err:?}");
    assert!(splice(HEAD, Some(b"/?t=1"), no_headers()).is_ok());
}

#[test]
fn a_url_without_a_path_hides_a_target_from_the_root() {
    let url: Uri = "wss://h.example?t=1".parse().unwrap();
    assert_eq!(url.path_and_query().map(PathAndQuery::as_str), Some("?t=1"));
    let (request, secrets) = request_hiding_target(&url).unwrap();
    assert_eq!(request.uri().path_and_query().unwrap().as_str(), "/");
    assert_eq!(
        secrets.target.as_ref().map(PathAndQuery::as_str),
        Some("/?t=1")
    );
    let (head, _) = generate_request(request).unwrap();
    let spliced = with_secrets(head, &secrets).unwrap();
    assert!(spliced.starts_with(b"GET /?t=1 HTTP/1.1\r\n"));
}

#[test]
fn a_url_with_user_information_is_refused() {
    for url in [
        "wss://user@h.example:8443/stream",
        "wss://user:pass@h.example/stream?t=1",
    ] {
        let err = request_hiding_target(&url.parse().unwrap()).unwrap_err();
        assert!(matches!(err, Error::UserInfo), "{url}: {err:?}");
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains("pass") && !shown.contains("stream"),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn an_upgrade_refuses_user_information_a_method_or_a_version_it_cannot_send() {
    // Nobody answers: an error other than I/O means nothing was sent.
    let unanswered = || {
        let (ours, theirs) = tokio::io::duplex(64);
        drop(theirs);
        ours
    };
    let request = "ws://user:pass@h/stream".into_client_request().unwrap();
    let err = upgrade(
        unanswered(),
        request,
        &Secrets::new(),
        WebSocketConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::UserInfo), "{err:?}");

    for version in [http::Version::HTTP_10, http::Version::HTTP_2] {
        let mut request = "ws://h/stream".into_client_request().unwrap();
        *request.version_mut() = version;
        let secrets =
            Secrets::new().with_header(AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        let err = upgrade(unanswered(), request, &secrets, WebSocketConfig::default())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Request(WsError::Protocol(ProtocolError::WrongHttpVersion))
            ),
            "{version:?}: {err:?}"
        );
    }
    let mut request = "ws://h/stream".into_client_request().unwrap();
    *request.method_mut() = http::Method::POST;
    let err = upgrade(
        unanswered(),
        request,
        &Secrets::new(),
        WebSocketConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Request(WsError::Protocol(ProtocolError::WrongHttpMethod))
        ),
        "{err:?}"
    );
}

#[test]
fn a_secret_header_may_not_be_one_the_request_sets_or_has() {
    let head = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: k\r\nUser-Agent: zd\r\n\r\n";
    for name in [
        &b"Host"[..],
        b"connection",
        b"UPGRADE",
        b"sec-websocket-key",
        b"Sec-WebSocket-Version",
        b"content-length",
        b"Transfer-Encoding",
        // Not reserved, but the request has it already.
        b"user-agent",
    ] {
        let err = splice(head, None, [(name, &b"v"[..])].into_iter()).unwrap_err();
        assert!(
            matches!(&err, Error::ReservedHeader(n) if n.as_bytes() == name),
            "{:?}: {err:?}",
            String::from_utf8_lossy(name)
        );
        // The name is shown, the value is not.
        assert!(!format!("{err} {err:?}").contains(": v"), "{err}");
    }
    // Reserved even where the head lacks it (a GET has no body to frame).
    let err = splice(
        HEAD,
        None,
        [(&b"content-length"[..], &b"0"[..])].into_iter(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::ReservedHeader(_)), "{err:?}");
    // Through the typed API too.
    let secrets = Secrets::new().with_header(http::header::HOST, HeaderValue::from_static("evil"));
    let err = with_secrets(head.to_vec(), &secrets).unwrap_err();
    assert!(matches!(err, Error::ReservedHeader(_)), "{err:?}");
    // A name that only starts like one of them is not it.
    assert!(splice(head, None, [(&b"hosts"[..], &b"v"[..])].into_iter()).is_ok());
    assert!(splice(head, None, [(&b"user"[..], &b"v"[..])].into_iter()).is_ok());
}

#[test]
fn a_hidden_target_request_shows_tungstenite_only_the_placeholder() {
    let url: Uri = "wss://h.example:8443/stream/0.1/graphql/s:c?x=1"
        .parse()
        .unwrap();
    let (request, secrets) = request_hiding_target(&url).unwrap();
    assert_eq!(request.uri().path_and_query().unwrap().as_str(), "/");
    assert_eq!(request.headers()["host"], "h.example:8443");
    assert_eq!(
        secrets.target.as_ref().map(PathAndQuery::as_str),
        Some("/stream/0.1/graphql/s:c?x=1")
    );
    let (head, _) = generate_request(request).unwrap();
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("GET / HTTP/1.1\r\n"), "{head}");
    assert!(!head.contains("s:c"), "{head}");

    let (request, secrets) = request_hiding_target(&"ws://h".parse().unwrap()).unwrap();
    assert_eq!(request.uri().path(), "/");
    assert!(
        secrets.target.as_ref().is_none_or(|t| t.as_str() == "/"),
        "{:?}",
        secrets.target
    );
    let err = request_hiding_target(&"/relative".parse().unwrap()).unwrap_err();
    assert!(matches!(err, Error::InvalidUrl), "{err:?}");
}

/// A server on loopback that reads one request head, hands it to `answer` and writes what
/// that returns, each part flushed on its own a moment (of paused time, when paused) after
/// the last, then holds the connection open unless `close`; the client's socket.
async fn serve(
    answer: impl FnOnce(String) -> Vec<Vec<u8>> + Send + 'static,
    close: bool,
) -> (TcpStream, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut peer, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut chunk = [0_u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = peer.read(&mut chunk).await.unwrap();
            assert_ne!(n, 0, "request cut short");
            request.extend_from_slice(&chunk[..n]);
        }
        for part in answer(String::from_utf8(request).unwrap()) {
            peer.write_all(&part).await.unwrap();
            peer.flush().await.unwrap();
            // The client, idle on its read, lets paused time reach this: the next part is a
            // segment of its own, read after the previous one.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !close {
            std::future::pending::<()>().await;
        }
        drop(peer);
    });
    (TcpStream::connect(addr).await.unwrap(), server)
}

/// The `Sec-WebSocket-Key` of a request head.
fn key_of(request: &str) -> String {
    request
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_upgrade_sends_the_secrets_and_keeps_frames_that_came_with_the_head() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (tcp, server) = serve(move |request| {
        let accept = derive_accept_key(key_of(&request).as_bytes());
        tx.send(request).unwrap();
        // A text frame "hi" right behind the head, in the same segment.
        let mut answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes();
        answer.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
        vec![answer]
    }, false)
    .await;
    let url: Uri = "ws://127.0.0.1/graphql/s:c".parse().unwrap();
    let (request, secrets) = request_hiding_target(&url).unwrap();
    let secrets = secrets.with_header(AUTHORIZATION, HeaderValue::from_static("Bearer t"));
    let mut ws = upgrade(
        Socket::from(tcp),
        request,
        &secrets,
        WebSocketConfig::default().read_buffer_size(256),
    )
    .await
    .unwrap();
    let request = rx.await.unwrap();
    assert!(
        request.starts_with("GET /graphql/s:c HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
        "{request}"
    );
    assert!(
        request.ends_with("\r\nauthorization: Bearer t\r\n\r\n"),
        "{request}"
    );
    let frame = ws.next().await.unwrap().unwrap();
    assert_eq!(frame, Message::text("hi"));
    server.abort();
}

/// Upgrades against a server that answers with `parts` (see [`serve`]); the error.
async fn failed_with(parts: &[&str]) -> Error {
    failed_with_then(parts, false).await
}

/// As [`failed_with`], the server closing the connection after `parts` if `close`.
async fn failed_with_then(parts: &[&str], close: bool) -> Error {
    failed(parts, close, RefusalBody::Read).await
}

/// As [`failed_with_then`], through [`upgrade`] or [`upgrade_skipping_refusal_body`].
async fn failed(parts: &[&str], close: bool, body: RefusalBody) -> Error {
    let parts: Vec<Vec<u8>> = parts.iter().map(|p| p.as_bytes().to_vec()).collect();
    let (tcp, server) = serve(move |_| parts, close).await;
    let request = "ws://127.0.0.1/stream".into_client_request().unwrap();
    let secrets = Secrets::new().with_header(AUTHORIZATION, HeaderValue::from_static("Bearer t"));
    let (socket, config) = (Socket::from(tcp), WebSocketConfig::default());
    let result = match body {
        RefusalBody::Read => upgrade(socket, request, &secrets, config).await,
        RefusalBody::Skip => upgrade_skipping_refusal_body(socket, request, &secrets, config).await,
    };
    server.abort();
    match result {
        Ok(_) => panic!("the upgrade failed"),
        Err(e) => e,
    }
}

/// The refusal in `err`.
fn refusal(err: &Error) -> &Refusal {
    match err {
        Error::Refused(refusal) => refusal,
        other => panic!("not a refusal: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_refusal_body_sent_after_the_head_is_read_by_its_length() {
    let started = tokio::time::Instant::now();
    let err = failed_with(&[
        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: 32\r\n\r\n",
        r#"{"error":"#,
        r#""agent is not allowed"}"#,
    ])
    .await;
    let refused = refusal(&err);
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(refused.headers()["content-type"], "application/json");
    assert_eq!(refused.body(), br#"{"error":"agent is not allowed"}"#);
    assert_eq!(
        err.to_string(),
        "WebSocket upgrade refused with status 403 Forbidden"
    );
    assert!(
        started.elapsed() < REFUSAL_BODY_WAIT,
        "the length says when the body is complete"
    );
}

#[tokio::test(start_paused = true)]
async fn a_chunked_refusal_body_is_decoded() {
    let err = failed_with(&[
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "5\r\nhello\r\n",
        "6;ext=1\r\n world\r\n0\r\n\r\n",
    ])
    .await;
    let refused = refusal(&err);
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.body(), b"hello world");
    assert_eq!(refused.headers()["retry-after"], "5");
}

#[tokio::test(start_paused = true)]
async fn a_refusal_body_that_never_completes_is_waited_for_briefly() {
    let started = tokio::time::Instant::now();
    let err = failed_with(&[
        "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 100\r\n\r\nslow",
        " down",
    ])
    .await;
    assert_eq!(refusal(&err).body(), b"slow down");
    assert!(started.elapsed() >= REFUSAL_BODY_WAIT);
    assert!(started.elapsed() < REFUSAL_BODY_WAIT * 2);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_that_has_no_body_is_not_waited_for() {
    // Neither says the body is complete by its own framing: a 204 without a length would be
    // read until close, a 304's length is that of the body a 200 would have had.
    for head in [
        "HTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
    ] {
        let started = tokio::time::Instant::now();
        let err = failed_with(&[head]).await;
        let refused = refusal(&err);
        assert!(refused.body().is_empty(), "{head}");
        assert!(started.elapsed() < REFUSAL_BODY_WAIT, "{head}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_refusal_body_may_be_skipped() {
    let started = tokio::time::Instant::now();
    let err = failed(
        &[
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 100\r\n\r\nslow",
            " down",
        ],
        false,
        RefusalBody::Skip,
    )
    .await;
    let refused = refusal(&err);
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "7");
    assert!(refused.body().is_empty());
    assert!(
        started.elapsed() < REFUSAL_BODY_WAIT,
        "the body is not waited for"
    );
}

#[tokio::test(start_paused = true)]
async fn a_response_head_that_never_ends_is_cut_off() {
    let long = format!(
        "HTTP/1.1 101 Switching Protocols\r\nX-Pad: {}",
        "x".repeat(MAX_RESPONSE_HEAD)
    );
    let err = failed_with(&[&long]).await;
    assert!(
        matches!(err, Error::Handshake(WsError::AttackAttempt)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_response_cut_short_or_not_http_is_a_handshake_error() {
    let err = failed_with_then(&["HTTP/1.1 101 Switching"], true).await;
    assert!(
        matches!(
            err,
            Error::Handshake(WsError::Protocol(ProtocolError::HandshakeIncomplete))
        ),
        "{err:?}"
    );
    let err = failed_with(&["SSH-2.0-OpenSSH\r\n\r\n"]).await;
    assert!(matches!(err, Error::Handshake(_)), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
}

fn response(head: &str) -> Response {
    Response::try_parse(head.as_bytes()).unwrap().unwrap().1
}

/// Upgrades `request` (sent with `secrets`) against a server
/// answering a 101 with the right key and `extra` header lines; the result and the request
/// head the server got.
async fn upgraded(
    request: Request,
    secrets: Secrets,
    extra: &'static str,
) -> (Result<WebSocketStream<Socket>, Error>, String) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (tcp, server) = serve(
        move |request| {
            let accept = derive_accept_key(key_of(&request).as_bytes());
            tx.send(request).unwrap();
            vec![
                format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
                )
                .into_bytes(),
            ]
        },
        false,
    )
    .await;
    let result = upgrade(
        Socket::from(tcp),
        request,
        &secrets,
        WebSocketConfig::default(),
    )
    .await;
    let sent = rx.await.unwrap();
    server.abort();
    (result, sent)
}

/// A `ws://` upgrade request offering the subprotocols `offered`, if any.
fn request_offering(offered: Option<&'static str>) -> Request {
    let mut request = "ws://127.0.0.1/stream".into_client_request().unwrap();
    if let Some(offered) = offered {
        request
            .headers_mut()
            .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(offered));
    }
    request
}

#[tokio::test]
async fn a_101_naming_an_extension_is_refused() {
    for extra in [
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
        "sec-websocket-extensions: x-unknown; a=1\r\n",
        "Sec-WebSocket-Extensions: \r\n",
    ] {
        let (result, _) = upgraded(request_offering(None), Secrets::new(), extra).await;
        let err = result
            .err()
            .unwrap_or_else(|| panic!("{extra} was accepted"));
        assert!(
            matches!(
                &err,
                Error::Handshake(WsError::Protocol(ProtocolError::InvalidHeader(name)))
                    if **name == SEC_WEBSOCKET_EXTENSIONS
            ),
            "{extra}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_101_naming_a_subprotocol_the_request_did_not_offer_is_refused() {
    use SubProtocolError::{InvalidSubProtocol, ServerSentSubProtocolNoneRequested};
    for (offered, extra, refused) in [
        (
            None,
            "Sec-WebSocket-Protocol: graphql-ws\r\n",
            Some(ServerSentSubProtocolNoneRequested),
        ),
        (
            Some("a, b"),
            "Sec-WebSocket-Protocol: c\r\n",
            Some(InvalidSubProtocol),
        ),
        // One value, not a list, and matched as sent.
        (
            Some("a, b"),
            "Sec-WebSocket-Protocol: a, b\r\n",
            Some(InvalidSubProtocol),
        ),
        (
            Some("a, b"),
            "Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: a\r\n",
            Some(InvalidSubProtocol),
        ),
        (
            Some("a, b"),
            "Sec-WebSocket-Protocol: B\r\n",
            Some(InvalidSubProtocol),
        ),
        (Some("a, b"), "Sec-WebSocket-Protocol: b\r\n", None),
        // The server may pick none (RFC 6455 section 4.2.2).
        (Some("a, b"), "", None),
        (None, "", None),
    ] {
        let (result, _) = upgraded(request_offering(offered), Secrets::new(), extra).await;
        match (result, refused) {
            (Ok(_), None) => {}
            (
                Err(Error::Handshake(WsError::Protocol(
                    ProtocolError::SecWebSocketSubProtocolError(e),
                ))),
                Some(expected),
            ) if e == expected => {}
            (result, _) => panic!("{offered:?} {extra:?}: {:?}", result.err()),
        }
    }
    // A secret offer counts as one.
    let secrets = Secrets::new().with_header(
        SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static("token.abc, graphql-ws"),
    );
    let (result, sent) = upgraded(
        request_offering(None),
        secrets,
        "Sec-WebSocket-Protocol: graphql-ws\r\n",
    )
    .await;
    assert!(result.is_ok(), "{:?}", result.err());
    assert!(
        sent.contains("sec-websocket-protocol: token.abc, graphql-ws\r\n"),
        "{sent}"
    );
}

#[test]
fn connection_and_upgrade_are_read_over_every_line() {
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let accept = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
    let check = |lines: &str| {
        verify(
            &response(&format!(
                "HTTP/1.1 101 Switching Protocols\r\n{lines}{accept}\r\n"
            )),
            key,
            &[],
        )
    };
    for lines in [
        "Upgrade: websocket\r\nConnection: keep-alive\r\nConnection: Upgrade\r\n",
        "Upgrade: WebSocket\r\nconnection: keep-alive,,UPGRADE \r\n",
        "Upgrade: websocket, websocket\r\nConnection: upgrade\r\n",
    ] {
        assert_eq!(check(lines), Ok(()), "{lines}");
    }
    for lines in [
        "Upgrade: websocket\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n",
        "Upgrade: websocket, h2c\r\nConnection: Upgrade\r\n",
        "Upgrade: h2c\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
        "Upgrade: \r\nConnection: Upgrade\r\n",
    ] {
        assert_eq!(
            check(lines),
            Err(ProtocolError::MissingUpgradeWebSocketHeader),
            "{lines}"
        );
    }
    for lines in [
        "Upgrade: websocket\r\nConnection: keep-alive\r\nConnection: close\r\n",
        "Upgrade: websocket\r\nConnection: upgraded\r\n",
    ] {
        assert_eq!(
            check(lines),
            Err(ProtocolError::MissingConnectionUpgradeHeader),
            "{lines}"
        );
    }
    // Two accept keys, one of them right, are not one right key.
    assert_eq!(
        check("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n"),
        Err(ProtocolError::SecWebSocketAcceptKeyMismatch)
    );
}

#[test]
fn a_101_is_checked_against_the_key() {
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let ok = response(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    );
    assert!(verify(&ok, key, &[]).is_ok());
    let wrong_key = response(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n",
    );
    assert!(matches!(
        verify(&wrong_key, key, &[]),
        Err(ProtocolError::SecWebSocketAcceptKeyMismatch)
    ));
    let no_upgrade = response(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    );
    assert!(matches!(
        verify(&no_upgrade, key, &[]),
        Err(ProtocolError::MissingUpgradeWebSocketHeader)
    ));
    let no_connection = response(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    );
    assert!(matches!(
        verify(&no_connection, key, &[]),
        Err(ProtocolError::MissingConnectionUpgradeHeader)
    ));
}
