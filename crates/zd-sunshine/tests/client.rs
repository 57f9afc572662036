//! The client against a small scripted HTTP server on loopback, for what the emulator
//! (`tests/emulator.rs`) cannot produce on demand or show: exact wire bytes (auth headers,
//! `page[...]` encoding, multipart), 429 with `Retry-After`, 5xx and retries, repeated cursors,
//! error bodies of every shape (including 413 from the server and bodies that are not JSON),
//! truncated or undecodable bodies, and the webhook service fed by hand.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::needless_pass_by_value
)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde_json::json;
use zd_auth::StaticToken;
use zd_auth::sunshine::{ApiKey, BasicAuth};
use zd_sunshine::{Client, ErrorKind, Region, RetryPolicy, models, operations};

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    authorization: String,
    content_type: String,
    body: Bytes,
}

/// A scripted reply.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
}

fn reply(status: u16, body: serde_json::Value) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.to_string(),
    }
}

struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// Binds 127.0.0.1:0 first, then serves `script` in order (500 once it runs out).
async fn serve(script: Vec<Reply>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            let script = script.clone();
            let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let log = log.clone();
                let script = script.clone();
                async move {
                    let header = |name: http::header::HeaderName| {
                        req.headers()
                            .get(name)
                            .map(|v| v.to_str().unwrap().to_owned())
                            .unwrap_or_default()
                    };
                    let mut entry = Seen {
                        method: req.method().to_string(),
                        uri: req.uri().to_string(),
                        authorization: header(http::header::AUTHORIZATION),
                        content_type: header(http::header::CONTENT_TYPE),
                        body: Bytes::new(),
                    };
                    entry.body = req.into_body().collect().await.unwrap().to_bytes();
                    log.lock().push(entry);
                    let next = script.lock().pop_front();
                    let r = next.unwrap_or_else(|| {
                        reply(500, json!({"errors": [{"code": "script_exhausted"}]}))
                    });
                    let mut resp = http::Response::new(Full::new(Bytes::from(r.body)));
                    *resp.status_mut() = http::StatusCode::from_u16(r.status).unwrap();
                    for (k, v) in r.headers {
                        resp.headers_mut()
                            .insert(k, http::HeaderValue::from_static(v));
                    }
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc),
            );
        }
    });
    Server {
        base: format!("http://{addr}"),
        seen,
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        // Room for the `Retry-After: 1` that `retries_429_with_retry_after_then_succeeds`
        // waits out (a longer hint is returned, not retried).
        max_retry_after: Duration::from_secs(2),
        retry_non_idempotent: false,
    }
}

fn client(server: &Server, policy: RetryPolicy) -> Client {
    Client::builder(
        Region::Custom(server.base.clone()),
        StaticToken::bearer("tok").unwrap(),
    )
    .retry(policy)
    .build()
    .unwrap()
}

fn message(id: &str) -> serde_json::Value {
    json!({"id": id, "received": "2025-02-03T18:33:47.466Z", "author": {"type": "business"},
           "content": {"type": "text", "text": format!("hello {id}")}, "source": {"type": "api:conversations"}})
}

#[tokio::test]
async fn basic_and_bearer_auth_headers() {
    let server = serve(vec![
        reply(200, json!({"app": {"id": "a1"}})),
        reply(200, json!({"app": {"id": "a1"}})),
    ])
    .await;
    let key = ApiKey::new("app_5963ceb97cde542d000dbdb1", "s3cret").unwrap();
    let basic = Client::new(Region::Custom(server.base.clone()), BasicAuth::new(&key)).unwrap();
    let app = operations::GetApp::new("a1").send(&basic).await.unwrap();
    assert_eq!(app.app.and_then(|a| a.id).as_deref(), Some("a1"));
    client(&server, RetryPolicy::none())
        .execute_json::<serde_json::Value>(operations::GetApp::new("a1").to_request().unwrap())
        .await
        .unwrap();
    let seen = server.seen.lock().clone();
    // base64("app_5963ceb97cde542d000dbdb1:s3cret")
    assert_eq!(
        seen[0].authorization,
        "Basic YXBwXzU5NjNjZWI5N2NkZTU0MmQwMDBkYmRiMTpzM2NyZXQ="
    );
    assert_eq!(seen[1].authorization, "Bearer tok");
    assert_eq!(seen[0].uri, "/v2/apps/a1");
    assert_eq!(seen[0].method, "GET");
}

#[tokio::test]
async fn paginate_follows_before_cursor_of_messages_with_encoded_brackets() {
    // Messages page backwards from the latest page: `beforeCursor` goes back as `page[before]`.
    let server = serve(vec![
        reply(200, json!({"messages": [message("m1"), message("m2")], "meta": {"hasMore": true, "afterCursor": "wrong", "beforeCursor": "c/1"}})),
        reply(200, json!({"messages": [message("m3")], "meta": {"hasMore": false}})),
    ])
    .await;
    let c = client(&server, RetryPolicy::none());
    let all: Vec<models::Message> = operations::ListMessages::new("app 1", "conv1")
        .paginate(&c)
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<_> = all.iter().map(|m| m.id.clone().unwrap()).collect();
    assert_eq!(ids, ["m1", "m2", "m3"]);
    let uris: Vec<String> = server.seen.lock().iter().map(|s| s.uri.clone()).collect();
    insta::assert_snapshot!(uris.join("\n"), @r"
    /v2/apps/app%201/conversations/conv1/messages
    /v2/apps/app%201/conversations/conv1/messages?page%5Bbefore%5D=c%2F1
    ");
    if let Some(models::Content::Text(t)) = &all[2].content {
        assert_eq!(t.text.as_deref(), Some("hello m3"));
    } else {
        panic!("expected text content");
    }
}

#[tokio::test]
async fn messages_started_with_page_after_keep_paging_forwards() {
    let server = serve(vec![
        reply(200, json!({"messages": [message("m1")], "meta": {"hasMore": true, "afterCursor": "next", "beforeCursor": "wrong"}})),
        reply(200, json!({"messages": [message("m2")], "meta": {"hasMore": true, "afterCursor": "last", "beforeCursor": "wrong"}})),
        reply(200, json!({"messages": [message("m3")], "meta": {"hasMore": false}})),
    ])
    .await;
    let c = client(&server, RetryPolicy::none());
    let all: Vec<models::Message> = operations::ListMessages::new("app", "conv1")
        .page_after("start")
        .paginate(&c)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    let uris: Vec<String> = server.seen.lock().iter().map(|s| s.uri.clone()).collect();
    insta::assert_snapshot!(uris.join("\n"), @r"
    /v2/apps/app/conversations/conv1/messages?page%5Bafter%5D=start
    /v2/apps/app/conversations/conv1/messages?page%5Bafter%5D=next
    /v2/apps/app/conversations/conv1/messages?page%5Bafter%5D=last
    ");
}

#[tokio::test]
async fn a_forward_list_started_with_page_before_keeps_paging_backwards() {
    let server = serve(vec![
        reply(200, json!({"conversations": [{"id": "c1"}], "meta": {"hasMore": true, "afterCursor": "wrong", "beforeCursor": "older"}})),
        reply(200, json!({"conversations": [{"id": "c2"}], "meta": {"hasMore": false}})),
    ])
    .await;
    let c = client(&server, RetryPolicy::none());
    let all: Vec<_> = operations::ListConversations::new("app")
        .filter_user_id("u1")
        .page_before("start")
        .paginate(&c)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let uris: Vec<String> = server.seen.lock().iter().map(|s| s.uri.clone()).collect();
    assert_eq!(
        uris[1],
        "/v2/apps/app/conversations?page%5Bbefore%5D=older&filter%5BuserId%5D=u1"
    );
}

#[tokio::test]
async fn pagination_errors_on_a_cycling_cursor_and_stops_on_errors() {
    // A -> B -> A: the second A would start the cycle over, forever.
    let server = serve(vec![
        reply(
            200,
            json!({"conversations": [{"id": "c1"}], "meta": {"hasMore": true, "afterCursor": "A"}}),
        ),
        reply(
            200,
            json!({"conversations": [{"id": "c2"}], "meta": {"hasMore": true, "afterCursor": "B"}}),
        ),
        reply(
            200,
            json!({"conversations": [{"id": "c3"}], "meta": {"hasMore": true, "afterCursor": "A"}}),
        ),
        reply(
            200,
            json!({"conversations": [{"id": "c4"}], "meta": {"hasMore": false}}),
        ),
        reply(404, json!({"errors": [{"code": "app_not_found"}]})),
    ])
    .await;
    let c = client(&server, RetryPolicy::none());
    let mut stream = std::pin::pin!(
        operations::ListConversations::new("app")
            .filter_user_id("u1")
            .paginate(&c)
    );
    let first = stream.try_next().await.unwrap().and_then(|c| c.id);
    assert_eq!(first.as_deref(), Some("c1"));
    assert!(stream.resume().is_none(), "nothing failed yet");
    let (ids, err) = ids_then_error(&mut stream, "a cycling cursor must end with an error").await;
    assert_eq!(err.kind(), ErrorKind::CursorLoop);
    assert_eq!(ids, ["c2", "c3"]);
    // Resuming would only loop again.
    assert!(stream.resume().is_none());
    assert!(futures_util::StreamExt::next(&mut stream).await.is_none());
    let uris: Vec<String> = server.seen.lock().iter().map(|s| s.uri.clone()).collect();
    assert_eq!(
        uris,
        [
            "/v2/apps/app/conversations?filter%5BuserId%5D=u1",
            "/v2/apps/app/conversations?page%5Bafter%5D=A&filter%5BuserId%5D=u1",
            "/v2/apps/app/conversations?page%5Bafter%5D=B&filter%5BuserId%5D=u1",
        ]
    );
    // An error ends the stream after being yielded.
    let _ = operations::GetApp::new("skip").send(&c).await; // consumes the c4 page reply
    let mut stream = std::pin::pin!(
        operations::ListConversations::new("app")
            .filter_user_id("u1")
            .paginate(&c)
    );
    assert_eq!(
        stream.try_next().await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(futures_util::StreamExt::next(&mut stream).await.is_none());
    // The first page failed: resuming starts the listing over, filters kept.
    let again = stream.resume().expect("the first page's request");
    assert_eq!(
        again.to_request().unwrap().query_string(),
        "filter%5BuserId%5D=u1"
    );
    let users = operations::ListUsers::new("app", "sue@example.org")
        .to_request()
        .unwrap();
    assert_eq!(
        users.query_string(),
        "filter%5Bidentities.email%5D=sue%40example.org"
    );
}

#[tokio::test]
async fn a_listing_that_failed_on_a_page_resumes_from_that_page() {
    let server = serve(vec![
        reply(200, json!({"messages": [message("m5"), message("m6")], "meta": {"hasMore": true, "beforeCursor": "c/2"}})),
        reply(503, json!({"errors": [{"code": "service_unavailable"}]})),
        reply(200, json!({"messages": [message("m3"), message("m4")], "meta": {"hasMore": true, "beforeCursor": "c/1"}})),
        reply(200, json!({"messages": [message("m1")], "meta": {"hasMore": false}})),
    ])
    .await;
    let c = client(&server, RetryPolicy::none());
    let mut listing = operations::ListMessages::new("app", "conv1").paginate(&c);
    let mut ids = Vec::new();
    let err = loop {
        match listing.try_next().await {
            Ok(Some(m)) => ids.push(m.id.unwrap()),
            Ok(None) => panic!("the failed page must be an error, got {ids:?}"),
            Err(e) => break e,
        }
    };
    assert_eq!(ids, ["m5", "m6"]);
    assert!(err.is_retryable(), "{err:?}");
    assert!(futures_util::StreamExt::next(&mut listing).await.is_none());
    let rest = listing.resume().expect("the failed page's request");
    // The rest keeps paging backwards from the page that failed.
    let rest: Vec<String> = rest
        .paginate(&c)
        .map_ok(|m| m.id.unwrap())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rest, ["m3", "m4", "m1"]);
    let uris: Vec<String> = server.seen.lock().iter().map(|s| s.uri.clone()).collect();
    insta::assert_snapshot!(uris.join("\n"), @r"
    /v2/apps/app/conversations/conv1/messages
    /v2/apps/app/conversations/conv1/messages?page%5Bbefore%5D=c%2F2
    /v2/apps/app/conversations/conv1/messages?page%5Bbefore%5D=c%2F2
    /v2/apps/app/conversations/conv1/messages?page%5Bbefore%5D=c%2F1
    ");
}

#[tokio::test]
async fn retries_429_with_retry_after_then_succeeds() {
    let server = serve(vec![
        Reply {
            status: 429,
            headers: vec![("retry-after", "1")],
            body: json!({"errors": [{"code": "too_many_requests", "title": "Slow down"}]})
                .to_string(),
        },
        reply(
            200,
            json!({"conversation": {"id": "c1", "type": "personal"}}),
        ),
    ])
    .await;
    let c = client(&server, fast_retries());
    let got = operations::GetConversation::new("app", "c1")
        .send(&c)
        .await
        .unwrap();
    assert_eq!(got.conversation.unwrap().id.as_deref(), Some("c1"));
    assert_eq!(server.seen.lock().len(), 2);
}

/// The error of a GetApp answered 429 with `Retry-After: retry_after`, not retried.
async fn rate_limited(retry_after: &'static str) -> zd_sunshine::Error {
    let server = serve(vec![Reply {
        status: 429,
        headers: vec![("retry-after", retry_after)],
        body: json!({"errors": [{"code": "too_many_requests"}]}).to_string(),
    }])
    .await;
    let err = operations::GetApp::new("a")
        .send(&client(&server, RetryPolicy::none()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert!(err.is_retryable());
    err
}

#[tokio::test]
async fn rate_limit_error_carries_retry_after_when_not_retried() {
    let err = rate_limited("7").await;
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
}

/// Proxies in front of the API may send `Retry-After` as an HTTP date (RFC 9110).
#[tokio::test]
async fn an_http_date_retry_after_reaches_the_error_as_a_wait() {
    // Within thirty years: a date further off is cut to zd_auth::retry_after::MAX_RETRY_AFTER.
    let err = rate_limited("Fri, 01 Jan 2049 00:00:00 GMT").await;
    // 2049-01-01T00:00:00Z, less the time now.
    let until =
        Duration::from_secs(2_493_072_000).saturating_sub(std::time::UNIX_EPOCH.elapsed().unwrap());
    let wait = err.retry_after().unwrap();
    assert!(
        wait.abs_diff(until) <= Duration::from_secs(60),
        "{wait:?} vs {until:?}"
    );
}

/// A date already past means the wait is over.
#[tokio::test]
async fn a_past_http_date_retry_after_means_no_wait() {
    let err = rate_limited("Sun, 06 Nov 1994 08:49:37 GMT").await;
    assert_eq!(err.retry_after(), Some(Duration::ZERO));
}

#[tokio::test]
async fn retries_5xx_on_get_until_success() {
    let server = serve(vec![
        reply(503, json!({})),
        reply(502, json!({})),
        reply(200, json!({"app": {"id": "a"}})),
    ])
    .await;
    operations::GetApp::new("a")
        .send(&client(&server, fast_retries()))
        .await
        .unwrap();
    assert_eq!(server.seen.lock().len(), 3);
}

#[tokio::test]
async fn gives_up_after_max_retries() {
    let server = serve(vec![
        reply(500, json!({})),
        reply(500, json!({})),
        reply(500, json!({})),
        reply(500, json!({})),
    ])
    .await;
    let err = operations::GetApp::new("a")
        .send(&client(&server, fast_retries()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(server.seen.lock().len(), 4);
}

fn text_post() -> models::MessagePost {
    serde_json::from_value(
        json!({"author": {"type": "business"}, "content": {"type": "text", "text": "hi"}}),
    )
    .unwrap()
}

#[tokio::test]
async fn post_is_not_retried_unless_opted_in() {
    let server = serve(vec![
        reply(503, json!({})),
        reply(503, json!({})),
        reply(201, json!({"messages": []})),
    ])
    .await;
    let err = operations::PostMessage::new("app", "c1", text_post())
        .send(&client(&server, fast_retries()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(server.seen.lock().len(), 1);

    let opted = RetryPolicy {
        retry_non_idempotent: true,
        ..fast_retries()
    };
    operations::PostMessage::new("app", "c1", text_post())
        .send(&client(&server, opted))
        .await
        .unwrap();
    assert_eq!(server.seen.lock().len(), 3);
    let seen = server.seen.lock().clone();
    assert_eq!(seen[2].content_type, "application/json");
    assert_eq!(seen[2].body, seen[1].body, "the retried body is identical");
}

#[tokio::test]
async fn every_error_shape_is_typed() {
    let cases: Vec<(u16, serde_json::Value, ErrorKind, Option<&str>)> = vec![
        (
            400,
            json!({"errors": [{"code": "bad_request", "title": "a"}, {"code": "bad_request", "title": "b"}]}),
            ErrorKind::BadRequest,
            Some("bad_request"),
        ),
        (
            401,
            json!({"errors": [{"code": "unauthorized", "title": "Authorization is required"}]}),
            ErrorKind::Unauthorized,
            Some("unauthorized"),
        ),
        (
            402,
            json!({"errors": [{"code": "payment_required"}]}),
            ErrorKind::PaymentRequired,
            Some("payment_required"),
        ),
        (
            403,
            json!({"errors": [{"code": "forbidden"}]}),
            ErrorKind::Forbidden,
            Some("forbidden"),
        ),
        (
            404,
            json!({"errors": [{"code": "conversation_not_found", "title": "Conversation not found"}]}),
            ErrorKind::NotFound,
            Some("conversation_not_found"),
        ),
        (
            409,
            json!({"errors": [{"code": "conflict"}]}),
            ErrorKind::Conflict,
            Some("conflict"),
        ),
        (413, json!({}), ErrorKind::PayloadTooLarge, None),
        (
            423,
            json!({"errors": [{"code": "locked", "title": "Conversation is full"}]}),
            ErrorKind::ConversationLocked,
            Some("locked"),
        ),
        (418, json!("not an object"), ErrorKind::Client, None),
        (307, json!({}), ErrorKind::Redirect, None),
        (500, json!(null), ErrorKind::Server, None),
    ];
    let script = cases
        .iter()
        .map(|(s, b, _, _)| reply(*s, b.clone()))
        .collect();
    let server = serve(script).await;
    let c = client(&server, RetryPolicy::none());
    for (status, _, kind, code) in cases {
        let err = operations::DeleteAllMessages::new("app", "c1")
            .send(&c)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "status {status}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
        assert_eq!(err.code(), code);
        assert_eq!(err.operation(), Some("DeleteAllMessages"));
    }
    let bad = operations::DeleteAllMessages::new("app", "c1")
        .send(&c)
        .await
        .unwrap_err();
    assert_eq!(
        bad.kind(),
        ErrorKind::Server,
        "an exhausted script answers 500"
    );
}

#[tokio::test]
async fn two_errors_in_one_400_are_both_kept() {
    let server = serve(vec![reply(400, json!({"errors": [{"code": "bad_request", "title": "a"}, {"code": "invalid", "title": "b"}]}))]).await;
    let err = operations::GetApp::new("a")
        .send(&client(&server, RetryPolicy::none()))
        .await
        .unwrap_err();
    assert_eq!(err.api_errors().len(), 2);
    assert_eq!(err.api_errors()[1].code.as_deref(), Some("invalid"));
    assert_eq!(err.to_string(), "GetApp: HTTP 400 bad_request: a");
}

#[tokio::test]
async fn decode_failures_name_the_json_path() {
    let server = serve(vec![reply(200, json!({"messages": [{"id": 5}]}))]).await;
    let err = operations::ListMessages::new("a", "c")
        .send(&client(&server, RetryPolicy::none()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.starts_with("messages[0].id"), "{source}");
}

/// The error of a `CreateAppKey` the server answers 201 with `body`.
async fn app_key_answered(body: serde_json::Value) -> zd_sunshine::Error {
    let server = serve(vec![reply(201, body)]).await;
    operations::CreateAppKey::new("a", models::CreateAppKeyBody::new("k".to_owned()))
        .send(&client(&server, RetryPolicy::none()))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_success_body_that_fails_to_decode_is_not_kept_in_the_error() {
    // A new key's secret beside a field of the wrong type: the error must not carry the body.
    let err = app_key_answered(json!({"key": {"id": 7, "secret": "fresh-key-secret"}})).await;
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!(err.body(), None);
    let everything = format!("{err} {err:?} {:?}", std::error::Error::source(&err));
    assert!(!everything.contains("fresh-key-secret"), "{everything}");
}

#[tokio::test]
async fn a_value_of_the_wrong_type_is_not_quoted_in_the_decode_error() {
    // A secret sent as a number: serde's message would quote it ("invalid type: integer …").
    let err = app_key_answered(json!({"key": {"id": "k1", "secret": 987_654_321_987_u64}})).await;
    assert_eq!(err.kind(), ErrorKind::Decode);
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(
        source.starts_with("key.secret: invalid type: integer"),
        "{source}"
    );
    let everything = format!("{err} {err:?} {source}");
    assert!(!everything.contains("987654321987"), "{everything}");
}

#[tokio::test]
async fn attachment_upload_is_multipart() {
    let server = serve(vec![reply(
        201,
        json!({"attachment": {"mediaUrl": "https://x/y.png", "mediaType": "image/png"}}),
    )])
    .await;
    let upload =
        zd_sunshine::Upload::from_bytes("pic \"1\".png", "image/png", &b"\x89PNG-data"[..])
            .unwrap();
    let resp = operations::UploadAttachment::new("app", "public", upload)
        .r#for("message")
        .conversation_id("c1")
        .send(&client(&server, RetryPolicy::none()))
        .await
        .unwrap();
    assert_eq!(
        resp.attachment.unwrap().media_url.as_deref(),
        Some("https://x/y.png")
    );
    let seen = server.seen.lock()[0].clone();
    assert_eq!(
        seen.uri,
        "/v2/apps/app/attachments?access=public&for=message&conversationId=c1"
    );
    let boundary = seen
        .content_type
        .strip_prefix("multipart/form-data; boundary=")
        .unwrap();
    let body = String::from_utf8_lossy(&seen.body);
    assert_eq!(
        body,
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"source\"; filename=\"pic _1_.png\"\r\nContent-Type: image/png\r\n\r\n\u{fffd}PNG-data\r\n--{boundary}--\r\n"
        )
    );
}

#[test]
fn oversized_upload_is_refused_before_sending() {
    let err = zd_sunshine::Upload::from_stream(
        "big.bin",
        "application/octet-stream",
        Some(50 * 1024 * 1024 + 1),
        futures_util::stream::empty(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UploadTooLarge);
}

#[tokio::test]
async fn upload_found_oversized_mid_stream_is_upload_too_large_not_retried() {
    let server = serve(Vec::new()).await;
    let chunk = Bytes::from(vec![0u8; 1024 * 1024]);
    let chunks = futures_util::stream::iter((0..51).map(move |_| Ok(chunk.clone())));
    let upload =
        zd_sunshine::Upload::from_stream("big.bin", "application/octet-stream", None, chunks)
            .unwrap();
    let err = operations::UploadAttachment::new("app", "public", upload)
        .send(&client(&server, fast_retries()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UploadTooLarge, "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn authorize_returns_the_redirect_instead_of_an_error() {
    let server = serve(vec![Reply {
        status: 302,
        headers: vec![("location", "https://app.example/cb?code=abc&state=s1")],
        body: String::new(),
    }])
    .await;
    let c = client(&server, RetryPolicy::none());
    let op = operations::Authorize::new("cid", "code")
        .state("s1")
        .redirect_uri("https://app.example/cb");
    assert_eq!(
        op.url(&c).unwrap(),
        format!(
            "{}/oauth/authorize?client_id=cid&response_type=code&state=s1&redirect_uri=https%3A%2F%2Fapp.example%2Fcb",
            server.base
        )
    );
    let redirect = op.send(&c).await.unwrap();
    assert_eq!(redirect.status, http::StatusCode::FOUND);
    assert_eq!(
        redirect.location,
        "https://app.example/cb?code=abc&state=s1"
    );
    // An error answer to Authorize stays an error (the script is exhausted: 500).
    let err = operations::Authorize::new("cid", "code")
        .send(&c)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
}

/// Answers every request with a 302 whose `Location` holds a byte that is not visible ASCII.
#[derive(Debug)]
struct OddLocation;

impl zd_sunshine::Transport for OddLocation {
    fn send(
        &self,
        _request: http::Request<zd_sunshine::TransportBody>,
    ) -> zd_sunshine::BoxFuture<'_, Result<http::Response<Bytes>, zd_sunshine::Error>> {
        Box::pin(async {
            let location = http::HeaderValue::from_bytes(b"https://app.example/cb?x=\xe9").unwrap();
            Ok(http::Response::builder()
                .status(302)
                .header("location", location)
                .body(Bytes::new())
                .unwrap())
        })
    }
}

#[tokio::test]
async fn a_location_that_is_not_ascii_is_named_as_such_with_its_cause() {
    let c = Client::builder(Region::Us, StaticToken::bearer("t").unwrap())
        .transport(OddLocation)
        .build()
        .unwrap();
    let err = operations::Authorize::new("cid", "code")
        .send(&c)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(err.to_string().contains("not visible ASCII"), "{err}");
    assert!(std::error::Error::source(&err).is_some(), "{err:?}");
}

/// Answers every request with one status and body.
#[derive(Debug)]
struct Fixed(u16, &'static str);

impl zd_sunshine::Transport for Fixed {
    fn send(
        &self,
        _request: http::Request<zd_sunshine::TransportBody>,
    ) -> zd_sunshine::BoxFuture<'_, Result<http::Response<Bytes>, zd_sunshine::Error>> {
        let (status, body) = (self.0, self.1);
        Box::pin(async move {
            Ok(http::Response::builder()
                .status(status)
                .body(Bytes::from_static(body.as_bytes()))
                .unwrap())
        })
    }
}

/// A success answer the client cannot use still counts the send that got it: a POST whose
/// answer does not match the model was carried out, and must not be sent again blindly.
#[tokio::test]
async fn an_unusable_success_answer_counts_its_send() {
    let fixed = |status, body| {
        Client::builder(Region::Us, StaticToken::bearer("t").unwrap())
            .transport(Fixed(status, body))
            .build()
            .unwrap()
    };
    let err = operations::PostMessage::new("app", "c1", text_post())
        .send(&fixed(201, r#"{"messages":5}"#))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!(err.sends(), 1);
    let err = operations::Authorize::new("cid", "code")
        .send(&fixed(200, "{}"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!(err.sends(), 1);
}

#[test]
fn regions_resolve_to_base_urls() {
    assert_eq!(Region::Us.base_url().unwrap(), "https://api.smooch.io");
    assert_eq!(Region::Eu.base_url().unwrap(), "https://api.eu-1.smooch.io");
    assert_eq!(
        Region::OAuthBridge.base_url().unwrap(),
        "https://oauth-bridge.zendesk.com/sc"
    );
    assert_eq!(
        Region::Zendesk("acme".into()).base_url().unwrap(),
        "https://acme.zendesk.com/sc"
    );
    assert_eq!(
        Region::Custom("http://127.0.0.1:9/".into())
            .base_url()
            .unwrap(),
        "http://127.0.0.1:9"
    );
    assert_eq!(
        Region::Zendesk("a/b".into()).base_url().unwrap_err().kind(),
        ErrorKind::Config
    );
    assert_eq!(
        Region::Custom("ftp://x".into())
            .base_url()
            .unwrap_err()
            .kind(),
        ErrorKind::Config
    );
}

/// User info in a custom base URL would show in the client's Debug, `base_url()`, `url_for()`
/// and error messages; a query or fragment would swallow every request path. All are refused,
/// and the refusal does not print the password.
#[test]
fn a_custom_base_url_with_user_info_a_query_or_a_fragment_is_refused() {
    for url in [
        "https://u:pw@h",
        "https://u:pw@h/sc",
        "http://u:pw@127.0.0.1:9",
        "https://u:pw@h/sc?x=1",
        "https://u:pw@bad host",
    ] {
        let err = Region::Custom(url.into()).base_url().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{url}");
        let shown = format!("{err} / {err:?}");
        assert!(!shown.contains("pw"), "{url}: {shown}");
        assert!(!shown.contains("u:"), "{url}: {shown}");
        let err = Client::new(
            Region::Custom(url.into()),
            StaticToken::bearer("tok").unwrap(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{url}");
        assert!(!format!("{err} / {err:?}").contains("pw"), "{url}");
    }
    for url in [
        "https://h?x=1",
        "https://h/sc?x=1",
        "https://h#f",
        "https://h/sc/#f",
        "http://127.0.0.1:9/?x=1",
    ] {
        let err = Region::Custom(url.into()).base_url().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{url}");
    }
    // An `@` in the path is not user info.
    assert_eq!(
        Region::Custom("https://h/a@b".into()).base_url().unwrap(),
        "https://h/a@b"
    );
}

/// The wire shape (method, path, query, body) of a representative set of operations.
#[test]
fn request_wire_shapes() {
    let mut out = String::new();
    let mut show = |r: zd_sunshine::ApiRequest| {
        let q = r.query_string();
        out.push_str(&format!(
            "{} {}{}{}\n",
            r.method(),
            r.path(),
            if q.is_empty() { "" } else { "?" },
            q
        ));
        if let Some(b) = r.json_body() {
            out.push_str(&format!("  {}\n", String::from_utf8_lossy(b)));
        }
    };
    show(
        operations::ListApps::new()
            .page_after("5e1606762556d93e9c176f69")
            .page_size(10)
            .filter_service_account_id("svc_1")
            .to_request()
            .unwrap(),
    );
    show(
        operations::ListIntegrations::new("app")
            .filter_types("custom,web")
            .page_before("x")
            .to_request()
            .unwrap(),
    );
    show(
        operations::ListConversations::new("app")
            .filter_user_external_id("ext/1")
            .to_request()
            .unwrap(),
    );
    show(
        operations::PostMessage::new("app", "conv", text_post())
            .to_request()
            .unwrap(),
    );
    let user: models::UserCreateBody = serde_json::from_value(
        json!({"externalId": "your-own-id", "profile": {"givenName": "Jane"}}),
    )
    .unwrap();
    show(
        operations::CreateUser::new("app", user)
            .to_request()
            .unwrap(),
    );
    show(
        operations::DeleteUser::new("app", "ext id/é")
            .to_request()
            .unwrap(),
    );
    show(
        operations::PostActivity::new(
            "app",
            "conv",
            serde_json::from_value(
                json!({"author": {"type": "user", "userId": "u"}, "type": "conversation:read"}),
            )
            .unwrap(),
        )
        .to_request()
        .unwrap(),
    );
    insta::assert_snapshot!(out);
}

#[tokio::test]
async fn webhook_service_verifies_parses_dedupes_and_hands_off() {
    use tower_service::Service;
    use zd_sunshine::webhooks::{Delivery, WebhookService};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Delivery>();
    let mut svc = WebhookService::new(zd_auth::Secret::new("whsec"), move |d| {
        let tx = tx.clone();
        async move {
            tx.send(d).unwrap();
        }
    })
    .unwrap();
    let body = json!({"app": {"id": "app1"}, "webhook": {"id": "wh1", "version": "v2"}, "events": [
        {"id": "e1", "createdAt": "2021-08-27T15:53:06.744Z", "type": "conversation:message",
         "payload": {"conversation": {"id": "c1", "type": "personal"}, "message": message("m1")}},
        {"id": "e2", "type": "conversation:futureEvent", "payload": {"x": 1}},
        {"id": "e1", "type": "conversation:message", "payload": {}}
    ]});
    let request = |key: &'static str, body: String| {
        http::Request::post("/webhooks")
            .header("x-api-key", key)
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let wrong = svc.call(request("nope", body.to_string())).await.unwrap();
    assert_eq!(wrong.status(), 401);
    let bad = svc
        .call(request("whsec", "{not json".to_owned()))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let ok = svc.call(request("whsec", body.to_string())).await.unwrap();
    assert_eq!(ok.status(), 200);
    let first = rx.recv().await.unwrap();
    let second = rx.recv().await.unwrap();
    let mut got = [first, second];
    got.sort_by_key(|d| d.event.id().map(str::to_owned));
    assert_eq!(got[0].app_id.as_deref(), Some("app1"));
    match &got[0].event {
        models::WebhookEvent::ConversationMessage(e) => {
            let msg = e.payload.as_ref().unwrap().message.as_ref().unwrap();
            assert_eq!(msg.id.as_deref(), Some("m1"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(got[1].event.type_name(), "conversation:futureEvent");
    assert!(matches!(got[1].event, models::WebhookEvent::Unknown(_)));
    // The repeated e1 is dropped; the same delivery again is dropped entirely: the next
    // event the handler sees is the one delivered after it, not a repeat.
    let again = svc.call(request("whsec", body.to_string())).await.unwrap();
    assert_eq!(again.status(), 200);
    let later = json!({"app": {"id": "app1"}, "webhook": {"id": "wh1", "version": "v2"},
        "events": [typing("e3")]});
    let ok = svc.call(request("whsec", later.to_string())).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(rx.recv().await.unwrap().event.id(), Some("e3"));
    assert!(rx.try_recv().is_err());
}

fn webhook_request(events: serde_json::Value) -> http::Request<Full<Bytes>> {
    let body = json!({"app": {"id": "app1"}, "webhook": {"id": "wh1"}, "events": events});
    http::Request::post("/webhooks")
        .header("x-api-key", "whsec")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn typing(id: &str) -> serde_json::Value {
    json!({"id": id, "type": "conversation:typing", "payload": {}})
}

/// A webhook service with a queue of 2 whose handler reports each event as it starts, then
/// waits for its own go-ahead (the senders returned, in order; events beyond them run
/// through), so the test decides when the worker is busy and how full the queue is.
fn gated_webhooks(
    gates: usize,
) -> (
    zd_sunshine::webhooks::WebhookService,
    tokio::sync::mpsc::UnboundedReceiver<String>,
    Vec<tokio::sync::oneshot::Sender<()>>,
) {
    let (started_tx, started) = tokio::sync::mpsc::unbounded_channel::<String>();
    let waiting: Arc<Mutex<VecDeque<tokio::sync::oneshot::Receiver<()>>>> = Arc::default();
    let mut go = Vec::new();
    for _ in 0..gates {
        let (tx, rx) = tokio::sync::oneshot::channel();
        waiting.lock().push_back(rx);
        go.push(tx);
    }
    let svc = zd_sunshine::webhooks::WebhookService::with_queue_capacity(
        zd_auth::Secret::new("whsec"),
        2,
        move |d| {
            let started_tx = started_tx.clone();
            let gate = waiting.lock().pop_front();
            async move {
                started_tx.send(d.event.id().unwrap().to_owned()).unwrap();
                if let Some(gate) = gate {
                    let _ = gate.await;
                }
            }
        },
    )
    .unwrap();
    (svc, started, go)
}

/// The status `svc` answers a delivery of `events`.
async fn delivered(svc: &zd_sunshine::webhooks::WebhookService, events: serde_json::Value) -> u16 {
    svc.handle(webhook_request(events)).await.status().as_u16()
}

#[tokio::test]
async fn webhook_events_reach_the_handler_in_delivery_order_and_a_full_queue_answers_503() {
    let (svc, mut started, go) = gated_webhooks(5);
    assert_eq!(delivered(&svc, json!([typing("e1")])).await, 200);
    // e1 is being handled (the worker is blocked on it); the queue (2) is empty.
    assert_eq!(started.recv().await.unwrap(), "e1");
    assert_eq!(
        delivered(&svc, json!([typing("e2"), typing("e3")])).await,
        200
    );
    // No room for e4: 503, and e4 is not marked seen, so the redelivery goes through.
    assert_eq!(delivered(&svc, json!([typing("e4")])).await, 503);
    let mut go = go.into_iter();
    go.next().unwrap().send(()).unwrap();
    assert_eq!(started.recv().await.unwrap(), "e2");
    // e2 left the queue: room for one.
    assert_eq!(delivered(&svc, json!([typing("e4")])).await, 200);
    for tx in go {
        let _ = tx.send(());
    }
    assert_eq!(started.recv().await.unwrap(), "e3");
    assert_eq!(started.recv().await.unwrap(), "e4");
    assert!(started.try_recv().is_err());
}

#[tokio::test]
async fn a_webhook_service_refuses_an_empty_secret() {
    use zd_sunshine::webhooks::WebhookService;
    let err = WebhookService::new(zd_auth::Secret::new(""), |_| async {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("webhook secret"), "{err}");
}

#[tokio::test]
async fn a_webhook_body_that_breaks_off_is_answered_for_a_retry_not_too_large() {
    use zd_sunshine::webhooks::WebhookService;
    let svc = WebhookService::new(zd_auth::Secret::new("whsec"), |_| async {}).unwrap();
    // A body whose stream fails after a few bytes, as a connection that drops mid-upload.
    let chunks: Vec<Result<http_body::Frame<Bytes>, std::io::Error>> = vec![
        Ok(http_body::Frame::data(Bytes::from_static(
            b"{\"events\": [",
        ))),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        )),
    ];
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(chunks));
    let request = http::Request::post("/hooks")
        .header("x-api-key", "whsec")
        .body(body)
        .unwrap();
    // 503, which Sunshine retries: a 400 would lose the delivery for good.
    assert_eq!(svc.handle(request).await.status(), 503);
    // Over the limit is still 413.
    let big = Full::new(Bytes::from(vec![
        b' ';
        zd_sunshine::webhooks::MAX_WEBHOOK_BODY + 1
    ]));
    let request = http::Request::post("/hooks")
        .header("x-api-key", "whsec")
        .body(big)
        .unwrap();
    assert_eq!(svc.handle(request).await.status(), 413);
}

/// A webhook service with room for one queued event, whose handler reports each event's id.
fn one_slot_webhooks() -> (
    zd_sunshine::webhooks::WebhookService,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let svc = zd_sunshine::webhooks::WebhookService::with_queue_capacity(
        zd_auth::Secret::new("whsec"),
        1,
        move |d| {
            let tx = tx.clone();
            async move {
                tx.send(d.event.id().unwrap().to_owned()).unwrap();
            }
        },
    )
    .unwrap();
    (svc, rx)
}

#[tokio::test]
async fn a_webhook_batch_larger_than_the_queue_is_still_handled_in_order() {
    let (svc, mut rx) = one_slot_webhooks();
    let events = json!([typing("b1"), typing("b2"), typing("b3")]);
    let response = svc.handle(webhook_request(events)).await;
    assert_eq!(response.status(), 200);
    for id in ["b1", "b2", "b3"] {
        assert_eq!(rx.recv().await.unwrap(), id);
    }
}

#[tokio::test]
async fn a_large_batch_whose_sender_gave_up_while_it_waited_for_room_is_handled_on_retry() {
    use futures_util::FutureExt as _;
    let (svc, mut rx) = one_slot_webhooks();
    let batch = json!([typing("c1"), typing("c2")]);
    // One poll: c1 takes the queue's only slot and c2 waits for room; then the sender's
    // timeout drops the request.
    assert!(
        svc.handle(webhook_request(batch.clone()))
            .now_or_never()
            .is_none()
    );
    assert_eq!(rx.recv().await.unwrap(), "c1");
    // The retry brings c2 again, and this time it reaches the handler (the bound only turns
    // a lost event into a failure instead of a hang).
    assert_eq!(delivered(&svc, batch).await, 200);
    let next = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
    assert_eq!(next.expect("c2 was lost").unwrap(), "c2");
}

#[tokio::test]
async fn a_webhook_body_limit_can_be_set() {
    use zd_sunshine::webhooks::{MAX_WEBHOOK_BODY, WebhookService};
    let svc = WebhookService::new(zd_auth::Secret::new("whsec"), |_| async {})
        .unwrap()
        .with_max_body(MAX_WEBHOOK_BODY * 2);
    // Over the default, within the set limit: read, then refused only as not an envelope.
    let request = http::Request::post("/hooks")
        .header("x-api-key", "whsec")
        .body(Full::new(Bytes::from(vec![b' '; MAX_WEBHOOK_BODY + 1])))
        .unwrap();
    assert_eq!(svc.handle(request).await.status(), 400);
    let svc = svc.with_max_body(16);
    let request = http::Request::post("/hooks")
        .header("x-api-key", "whsec")
        .body(Full::new(Bytes::from(vec![b' '; 17])))
        .unwrap();
    assert_eq!(svc.handle(request).await.status(), 413);
}

/// An in-memory transport, so retry timing can run on tokio's paused clock.
#[derive(Debug, Default)]
struct Scripted {
    replies: Mutex<VecDeque<(u16, Option<&'static str>)>>,
    sent_at: Mutex<Vec<tokio::time::Instant>>,
}

#[derive(Debug, Clone)]
struct Shared(Arc<Scripted>);

/// A client with the default retry policy over a transport answering `replies` (status and
/// `Retry-After`) in turn.
fn scripted_client(replies: &[(u16, Option<&'static str>)]) -> (Arc<Scripted>, Client) {
    let script = Arc::new(Scripted::default());
    script.replies.lock().extend(replies.iter().copied());
    let c = Client::builder(Region::Us, StaticToken::bearer("t").unwrap())
        .transport(Shared(script.clone()))
        .build()
        .unwrap();
    (script, c)
}

impl zd_sunshine::Transport for Shared {
    fn send(
        &self,
        _request: http::Request<zd_sunshine::TransportBody>,
    ) -> zd_sunshine::BoxFuture<'_, Result<http::Response<Bytes>, zd_sunshine::Error>> {
        self.0.sent_at.lock().push(tokio::time::Instant::now());
        let (status, retry_after) = self.0.replies.lock().pop_front().unwrap_or((500, None));
        Box::pin(async move {
            let mut builder = http::Response::builder().status(status);
            if let Some(ra) = retry_after {
                builder = builder.header("retry-after", ra);
            }
            Ok(builder
                .body(Bytes::from_static(br#"{"app":{"id":"a"}}"#))
                .unwrap())
        })
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_backoff_is_bounded_and_a_longer_hint_is_returned() {
    let script = Arc::new(Scripted::default());
    script.replies.lock().extend([
        (429, Some("30")),
        (503, None),
        (429, Some("3600")),
        (200, None),
    ]);
    let policy = RetryPolicy {
        max_retries: 5,
        min_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(10),
        max_retry_after: Duration::from_secs(60),
        retry_non_idempotent: false,
    };
    let c = Client::builder(Region::Us, StaticToken::bearer("t").unwrap())
        .transport(Shared(script.clone()))
        .retry(policy)
        .build()
        .unwrap();
    let err = operations::GetApp::new("a").send(&c).await.unwrap_err();
    // Retry-After: 3600 is past max_retry_after (60 s): not retried early, but returned with
    // the hint so that the caller can reschedule.
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    let at = script.sent_at.lock().clone();
    assert_eq!(at.len(), 3, "no request after the long Retry-After");
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    // Waited out, plus jitter (up to a tenth, at most 5 s) so that clients told the same
    // Retry-After do not all come back at the same instant.
    assert!(
        gaps[0] > Duration::from_secs(30) && gaps[0] <= Duration::from_secs(33),
        "Retry-After: 30 is waited out, with jitter: {:?}",
        gaps[0]
    );
    assert!(
        gaps[1] >= Duration::from_millis(200) && gaps[1] <= Duration::from_secs(10),
        "backoff {:?}",
        gaps[1]
    );
    // The 200 is still queued: never asked for.
    assert_eq!(script.replies.lock().len(), 1);
}

/// A 429 on a POST whose `Retry-After` is past `max_retry_after` is not retried (early) either:
/// one request, and the error carries the hint.
#[tokio::test(start_paused = true)]
async fn a_rate_limited_post_with_a_long_retry_after_is_returned_not_retried_early() {
    let (script, c) = scripted_client(&[(429, Some("600")), (201, None)]);
    let err = operations::PostMessage::new("app", "c1", text_post())
        .send(&c)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(600)));
    assert_eq!(script.sent_at.lock().len(), 1, "no second request");
}

/// A DELETE whose first attempt was lost (504) and whose retry is answered 404 says it was sent
/// twice: the first may have deleted the message.
#[tokio::test(start_paused = true)]
async fn an_error_says_how_many_times_its_request_was_sent() {
    let (_, c) = scripted_client(&[(504, None), (404, None)]);
    let err = operations::DeleteMessage::new("app", "c1", "m1")
        .send(&c)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.sends(), 2);
    let (_, c) = scripted_client(&[(404, None)]);
    let err = operations::DeleteMessage::new("app", "c1", "m1")
        .send(&c)
        .await
        .unwrap_err();
    assert_eq!(err.sends(), 1);
    // Nothing sent: the request was refused before it went out.
    let err = operations::DeleteMessage::new("app", "c1", "..")
        .send(&c)
        .await
        .unwrap_err();
    assert_eq!(err.sends(), 0);
}

#[test]
fn generated_debug_redacts_secrets() {
    let key: models::ApiKey =
        serde_json::from_value(json!({"id": "int_1", "displayName": "k", "secret": "hunter2"}))
            .unwrap();
    let shown = format!("{key:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("[REDACTED]"), "{shown}");
    assert!(shown.contains("int_1"), "{shown}");
}

#[tokio::test]
async fn a_truncated_body_is_a_transport_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        // Read the request head, answer with fewer bytes than announced, then hang up.
        let mut buf = vec![0_u8; 4096];
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0);
            head.extend_from_slice(&buf[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"app\": {\"id\"")
            .await
            .unwrap();
        stream.shutdown().await.unwrap();
    });
    let c = Client::builder(
        Region::Custom(format!("http://{addr}")),
        StaticToken::bearer("tok").unwrap(),
    )
    .retry(RetryPolicy::none())
    .build()
    .unwrap();
    let err = operations::GetApp::new("a").send(&c).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "keeps its source"
    );
}

/// Valid JSON that is not a v2 payload (a v1 delivery, `{}`, `events: null`, another
/// `webhook.version`) is refused with 400, so the webhook shows as failing rather than served,
/// and the handler never sees it.
#[tokio::test]
async fn a_webhook_body_that_is_not_a_v2_payload_is_refused() {
    use zd_sunshine::webhooks::{Rejection, WebhookService};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let svc = WebhookService::new(zd_auth::Secret::new("whsec"), move |d| {
        let tx = tx.clone();
        async move {
            tx.send(d.event.id().unwrap().to_owned()).unwrap();
        }
    })
    .unwrap();
    let post = |body: serde_json::Value| {
        http::Request::post("/webhooks")
            .header("x-api-key", "whsec")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    };
    let v1 = json!({"trigger": "message:appUser", "app": {"_id": "5698edbf2a43bd081be982f1"},
        "messages": [{"_id": "m1", "type": "text", "text": "hi", "role": "appUser"}],
        "appUser": {"_id": "u1"}, "version": "v1.1"});
    for (body, why) in [
        (v1, Rejection::NoEvents),
        (json!({}), Rejection::NoEvents),
        (json!({"events": null}), Rejection::NoEvents),
        (
            json!({"app": {"id": "app1"}, "webhook": {"id": "wh1", "version": "v2"}}),
            Rejection::NoEvents,
        ),
        (
            json!({"webhook": {"id": "wh1", "version": "v1.1"}, "events": [typing("old")]}),
            Rejection::UnsupportedVersion("v1.1".to_owned()),
        ),
        (json!({"events": {"id": "e1"}}), Rejection::Malformed),
    ] {
        let response = svc.handle(post(body.clone())).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(
            response.extensions().get::<Rejection>(),
            Some(&why),
            "{body}"
        );
        let text = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(text, why.to_string().as_bytes(), "{body}");
    }
    assert!(
        Rejection::NoEvents.to_string().contains("v2"),
        "the reason names what was expected"
    );
    // A v2 payload with no events is nothing to do; with events, they are handed on.
    let empty = json!({"webhook": {"id": "wh1", "version": "v2"}, "events": []});
    assert_eq!(svc.handle(post(empty)).await.status(), 200);
    assert_eq!(
        svc.handle(webhook_request(json!([typing("new")])))
            .await
            .status(),
        200
    );
    assert_eq!(
        rx.recv().await.unwrap(),
        "new",
        "no refused event was handled"
    );
}

/// A 429 means the request was refused, not processed: a POST is retried under the default
/// policy, which does not retry POSTs that may have been processed (5xx, timeouts).
#[tokio::test(start_paused = true)]
async fn a_rate_limited_post_is_retried_under_the_default_policy() {
    let (script, c) = scripted_client(&[(429, Some("2")), (201, None)]);
    operations::PostMessage::new("app", "c1", text_post())
        .send(&c)
        .await
        .unwrap();
    let at = script.sent_at.lock().clone();
    assert_eq!(at.len(), 2);
    assert!(
        at[1] - at[0] >= Duration::from_secs(2),
        "Retry-After waited out"
    );

    // A 5xx on a POST may have been processed: still not retried by default.
    script.sent_at.lock().clear();
    script.replies.lock().extend([(503, None), (201, None)]);
    let err = operations::PostMessage::new("app", "c1", text_post())
        .send(&c)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(script.sent_at.lock().len(), 1);
}

/// The items of a conversation page with the cursor values to follow.
fn conversations_page(ids: &[&str], meta: serde_json::Value) -> Reply {
    let conversations: Vec<_> = ids.iter().map(|id| json!({"id": id})).collect();
    reply(200, json!({"conversations": conversations, "meta": meta}))
}

/// `hasMore: true` without the cursor to follow would end the listing early, silently.
#[tokio::test]
async fn has_more_without_a_cursor_is_an_error_not_the_end_of_the_list() {
    let server = serve(vec![
        conversations_page(&["c1"], json!({"hasMore": true, "afterCursor": "A"})),
        conversations_page(&["c2"], json!({"hasMore": true})),
        conversations_page(&["c3"], json!({"hasMore": false})),
    ])
    .await;
    let c = client(&server, RetryPolicy::none());
    let mut stream = std::pin::pin!(
        operations::ListConversations::new("app")
            .filter_user_id("u1")
            .paginate(&c)
    );
    let (ids, err) =
        ids_then_error(&mut stream, "a listing cut short must end with an error").await;
    assert_eq!(ids, ["c1", "c2"]);
    assert_eq!(err.kind(), ErrorKind::MissingCursor);
    assert!(futures_util::StreamExt::next(&mut stream).await.is_none());
    assert_eq!(server.seen.lock().len(), 2);
    // An empty cursor is no cursor either.
    let server = serve(vec![conversations_page(
        &["c1"],
        json!({"hasMore": true, "afterCursor": ""}),
    )])
    .await;
    let c = client(&server, RetryPolicy::none());
    let got: Result<Vec<models::Conversation>, _> = operations::ListConversations::new("app")
        .filter_user_id("u1")
        .paginate(&c)
        .try_collect()
        .await;
    assert_eq!(got.unwrap_err().kind(), ErrorKind::MissingCursor);
    assert_eq!(server.seen.lock().len(), 1);
}

/// A listing started at cursor X whose page hands X back would fetch page X again: the
/// starting cursor counts as already followed.
#[tokio::test]
async fn a_starting_cursor_handed_back_is_a_loop_at_once() {
    let server = serve(vec![
        conversations_page(&["c1"], json!({"hasMore": true, "afterCursor": "X"})),
        conversations_page(&["c1"], json!({"hasMore": true, "afterCursor": "X"})),
    ])
    .await;
    let c = client(&server, RetryPolicy::none());
    let mut stream = std::pin::pin!(
        operations::ListConversations::new("app")
            .filter_user_id("u1")
            .page_after("X")
            .paginate(&c)
    );
    let (ids, err) = ids_then_error(&mut stream, "a repeated cursor must end with an error").await;
    assert_eq!(err.kind(), ErrorKind::CursorLoop);
    assert_eq!(ids, ["c1"], "page X is yielded once");
    assert_eq!(server.seen.lock().len(), 1);
}

/// A server answering `hasMore: true` with a fresh cursor and no items, forever, would keep one
/// poll of the stream fetching without yielding: the run of empty pages is capped.
#[tokio::test]
async fn endless_empty_pages_with_fresh_cursors_end_with_an_error() {
    let cursors: Vec<String> = (0..40).map(|i| format!("K{i}")).collect();
    let mut script = vec![conversations_page(
        &["c1"],
        json!({"hasMore": true, "afterCursor": "A"}),
    )];
    script.extend(
        cursors
            .iter()
            .map(|c| conversations_page(&[], json!({"hasMore": true, "afterCursor": c}))),
    );
    let server = serve(script).await;
    let c = client(&server, RetryPolicy::none());
    let mut stream = std::pin::pin!(
        operations::ListConversations::new("app")
            .filter_user_id("u1")
            .paginate(&c)
    );
    let (ids, err) =
        ids_then_error(&mut stream, "endless empty pages must end with an error").await;
    assert_eq!(ids, ["c1"]);
    assert_eq!(err.kind(), ErrorKind::CursorLoop);
    assert!(futures_util::StreamExt::next(&mut stream).await.is_none());
    // The first page, then MAX_EMPTY_PAGES empty ones.
    assert_eq!(
        server.seen.lock().len(),
        1 + zd_sunshine::pagination::MAX_EMPTY_PAGES
    );
}

/// Empty pages between full ones are fine: only a run of them is capped.
#[tokio::test]
async fn empty_pages_between_full_ones_do_not_end_the_listing() {
    let mut script = Vec::new();
    for round in 0..3 {
        for i in 0..zd_sunshine::pagination::MAX_EMPTY_PAGES - 1 {
            let cursor = format!("E{round}-{i}");
            script.push(conversations_page(
                &[],
                json!({"hasMore": true, "afterCursor": cursor}),
            ));
        }
        let id = format!("c{round}");
        let cursor = format!("F{round}");
        script.push(conversations_page(
            &[&id],
            json!({"hasMore": round < 2, "afterCursor": cursor}),
        ));
    }
    let server = serve(script).await;
    let c = client(&server, RetryPolicy::none());
    let got: Vec<models::Conversation> = operations::ListConversations::new("app")
        .filter_user_id("u1")
        .paginate(&c)
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<_> = got.into_iter().map(|c| c.id.unwrap()).collect();
    assert_eq!(ids, ["c0", "c1", "c2"]);
}

/// The API's error schema requires no field: an entry without `code` must not cost the others,
/// nor the title in the message.
#[tokio::test]
async fn an_error_entry_without_a_code_keeps_its_title_and_the_others() {
    let server = serve(vec![reply(
        400,
        json!({"errors": [{"title": "Something broke"}, {"code": "invalid", "title": "b"}]}),
    )])
    .await;
    let err = operations::GetApp::new("a")
        .send(&client(&server, RetryPolicy::none()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest);
    assert_eq!(err.api_errors().len(), 2, "{err:?}");
    assert_eq!(err.code(), Some("invalid"));
    assert_eq!(err.to_string(), "GetApp: HTTP 400: Something broke");
}

/// Redelivered events that are already queued are dropped before room is reserved: a full
/// queue does not turn a redelivery of nothing new into a 503 (and another redelivery).
#[tokio::test]
async fn a_redelivery_of_queued_events_is_answered_200_even_when_the_queue_is_full() {
    let (svc, mut started, go) = gated_webhooks(1);
    assert_eq!(delivered(&svc, json!([typing("e1")])).await, 200);
    assert_eq!(started.recv().await.unwrap(), "e1");
    // The worker is busy with e1; e2 and e3 fill the queue.
    assert_eq!(
        delivered(&svc, json!([typing("e2"), typing("e3")])).await,
        200
    );
    // Sunshine sends them again (it did not see the 200 in time, say): nothing new.
    assert_eq!(
        delivered(&svc, json!([typing("e2"), typing("e3")])).await,
        200
    );
    // A new event among them still finds no room.
    assert_eq!(
        delivered(&svc, json!([typing("e3"), typing("e4")])).await,
        503
    );
    for tx in go {
        tx.send(()).unwrap();
    }
    for id in ["e2", "e3"] {
        assert_eq!(started.recv().await.unwrap(), id);
    }
    assert_eq!(
        delivered(&svc, json!([typing("e3"), typing("e4")])).await,
        200
    );
    assert_eq!(started.recv().await.unwrap(), "e4");
    assert!(started.try_recv().is_err());
}

/// An upload streamed over more than `request_timeout` (a 50 MB file on a slow link) is not
/// cut off: the send is bounded by `upload_timeout`, the answer by `request_timeout`.
#[tokio::test(start_paused = true)]
async fn a_slow_upload_is_not_cut_off_by_the_request_timeout() {
    let server = serve(vec![reply(
        201,
        json!({"attachment": {"mediaUrl": "https://x/y.bin", "mediaType": "application/octet-stream"}}),
    )])
    .await;
    let c = client(&server, RetryPolicy::none());
    // Twelve chunks ten seconds apart: two minutes against the default 60 s request timeout.
    let upload = paced_upload(12, Duration::from_secs(10));
    let started = tokio::time::Instant::now();
    let resp = operations::UploadAttachment::new("app", "public", upload)
        .send(&c)
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(120));
    assert_eq!(
        resp.attachment.unwrap().media_url.as_deref(),
        Some("https://x/y.bin")
    );
    assert_eq!(
        server.seen.lock()[0]
            .body
            .windows(10)
            .filter(|w| w == b"0123456789")
            .count(),
        12
    );
}

/// A loopback server that reads each request's body to its end and never answers.
async fn serve_silent() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let svc = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                let _ = req.into_body().collect().await;
                std::future::pending::<Result<http::Response<Full<Bytes>>, std::convert::Infallible>>()
                    .await
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc),
            );
        }
    });
    format!("http://{addr}")
}

/// An upload of `chunks` chunks sent `every` apart.
fn paced_upload(chunks: usize, every: Duration) -> zd_sunshine::Upload {
    let stream = futures_util::stream::unfold(0, move |n| async move {
        if n == chunks {
            return None;
        }
        tokio::time::sleep(every).await;
        Some((Ok(Bytes::from_static(b"0123456789")), n + 1))
    });
    zd_sunshine::Upload::from_stream("paced.bin", "application/octet-stream", None, stream).unwrap()
}

/// Sending an upload is bounded by `upload_timeout`; once it is sent, the answer is bounded by
/// `request_timeout`.
#[tokio::test(start_paused = true)]
async fn an_upload_is_bounded_by_the_upload_timeout_and_its_answer_by_the_request_timeout() {
    let base = serve_silent().await;
    let c = Client::builder(Region::Custom(base), StaticToken::bearer("tok").unwrap())
        .retry(RetryPolicy::none())
        .transport_config(zd_sunshine::TransportConfig {
            upload_timeout: Duration::from_secs(30),
            ..zd_sunshine::TransportConfig::default()
        })
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let err = operations::UploadAttachment::new(
        "app",
        "public",
        paced_upload(12, Duration::from_secs(10)),
    )
    .send(&c)
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(err.to_string().contains("not sent"), "{err}");
    assert_eq!(started.elapsed(), Duration::from_secs(30));

    // Sent in 20 s, within the upload timeout; the silent server then costs the 60 s request
    // timeout, counted from the end of the body.
    let started = tokio::time::Instant::now();
    let err = operations::UploadAttachment::new(
        "app",
        "public",
        paced_upload(2, Duration::from_secs(10)),
    )
    .send(&c)
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(err.to_string().contains("request timed out"), "{err}");
    assert_eq!(started.elapsed(), Duration::from_secs(80));
}

/// Credentials that record which tokens the client named as refused.
#[derive(Debug, Default)]
struct Recording {
    rejected: std::sync::Mutex<Vec<String>>,
}

impl zd_auth::Credentials for Recording {
    fn authorization(&self) -> zd_auth::BoxFuture<'_, Result<zd_auth::Secret, zd_auth::Error>> {
        Box::pin(async { Ok(zd_auth::Secret::new("Bearer sent-token")) })
    }

    fn invalidate(&self) {
        self.rejected.lock().unwrap().push("(unnamed)".to_owned());
    }

    fn invalidate_if_current(&self, rejected: &zd_auth::Secret) {
        let rejected = rejected.expose_secret().to_owned();
        self.rejected.lock().unwrap().push(rejected);
    }
}

#[tokio::test]
async fn a_401_names_the_token_it_refused() {
    let server = serve(vec![reply(
        401,
        json!({"errors": [{"code": "unauthorized"}]}),
    )])
    .await;
    let creds = std::sync::Arc::new(Recording::default());
    let client = Client::builder(Region::Custom(server.base.clone()), creds.clone())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = operations::GetApp::new("a")
        .send(&client)
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
    // Shared credentials may have replaced that token meanwhile: the refusal says which.
    assert_eq!(*creds.rejected.lock().unwrap(), ["Bearer sent-token"]);
}

/// The conversation ids a listing yields before its error; `why` says why it must end in one.
async fn ids_then_error<S>(stream: &mut S, why: &str) -> (Vec<String>, zd_sunshine::Error)
where
    S: futures_util::Stream<Item = Result<models::Conversation, zd_sunshine::Error>> + Unpin,
{
    let mut ids = Vec::new();
    loop {
        match stream.try_next().await {
            Ok(Some(conv)) => ids.push(conv.id.unwrap()),
            Ok(None) => panic!("{why}, got {ids:?}"),
            Err(e) => return (ids, e),
        }
    }
}
