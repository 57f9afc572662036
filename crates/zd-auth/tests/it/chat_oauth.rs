//! Chat OAuth2 against a loopback token endpoint.

use std::time::Duration;

use zd_auth::chat::{ChatScope, OAuthClient, ResponseType};
use zd_auth::{Credentials, ErrorKind, HttpConfig, OAuthErrorCode, Secret};

use crate::server::{Reply, TestServer, raw_once, silent};

const TOKEN: &str = r#"{"access_token":"acc-1","refresh_token":"ref-1","token_type":"Bearer","scope":"read write chat","expires_in":3600}"#;

fn client(url: &str) -> OAuthClient {
    OAuthClient::new("client-id")
        .unwrap()
        .with_secret("client-secret-value")
        .unwrap()
        .with_base_url(url)
        .unwrap()
}

#[tokio::test]
async fn every_grant_posts_a_form_to_oauth2_token() {
    let server = TestServer::fixed(|| Reply::json(200, TOKEN)).await;
    let client = client(&server.url());
    let scopes = [ChatScope::Read, ChatScope::Write, ChatScope::Chat];

    let token = client
        .exchange_code("the-code", "https://example.org/cb")
        .await
        .unwrap();
    assert_eq!(token.access_token().expose_secret(), "acc-1");
    assert_eq!(token.refresh_token().unwrap().expose_secret(), "ref-1");
    assert_eq!(token.scopes(), &scopes);
    assert_eq!(token.expires_in(), Some(Duration::from_secs(3600)));

    client
        .password("agent@example.org", &Secret::new("pw value"), &scopes)
        .await
        .unwrap();
    client.client_credentials(&scopes).await.unwrap();
    client.refresh(&Secret::new("ref-0")).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/oauth2/token");
        assert_eq!(
            r.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert!(r.header("authorization").is_none());
    }
    let bodies: Vec<&str> = requests.iter().map(|r| r.body.as_str()).collect();
    insta::assert_debug_snapshot!("chat_token_request_bodies", bodies);
}

#[tokio::test]
async fn authorize_url_has_every_parameter() {
    let client = client("http://127.0.0.1:9");
    let url = client
        .authorize_url(ResponseType::Token)
        .redirect_uri("https://example.org/cb?x=1")
        .scopes([ChatScope::Read, ChatScope::Chat])
        .state("s+1 2")
        .subdomain("acme")
        .build()
        .unwrap();
    insta::assert_snapshot!("chat_authorize_url", url.as_str());
}

#[tokio::test]
async fn oauth_error_bodies_are_typed() {
    let server = TestServer::fixed(|| {
        Reply::json(
            400,
            r#"{"error":"invalid_grant","error_description":"code expired"}"#,
        )
    })
    .await;
    let err = client(&server.url())
        .exchange_code("old", "https://x/cb")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OAuth);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
    let oauth = err.oauth().unwrap();
    assert_eq!(oauth.code, OAuthErrorCode::InvalidGrant);
    assert_eq!(oauth.description.as_deref(), Some("code expired"));
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        "OAuth error (HTTP 400): invalid_grant (code expired): POST /oauth2/token (authorization_code)"
    );

    let server = TestServer::fixed(|| Reply::json(401, r#"{"error":"invalid_client"}"#)).await;
    let err = client(&server.url())
        .client_credentials(&[])
        .await
        .unwrap_err();
    assert_eq!(err.oauth().unwrap().code, OAuthErrorCode::InvalidClient);
}

#[tokio::test]
async fn http_errors_keep_status_and_a_bounded_excerpt() {
    let server = TestServer::fixed(|| {
        Reply::text(503, format!("<html>{}</html>", "x".repeat(5000))).header("retry-after", "7")
    })
    .await;
    let err = client(&server.url())
        .refresh(&Secret::new("r"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HttpStatus);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    let excerpt = err.body_excerpt().unwrap();
    assert!(excerpt.starts_with("<html>xxx"));
    assert_eq!(excerpt.len(), zd_auth::BODY_EXCERPT_LIMIT);
}

#[tokio::test]
async fn an_oversized_error_answer_keeps_its_status_and_retry_after() {
    let server =
        TestServer::fixed(|| Reply::text(503, "x".repeat(300_000)).header("retry-after", "30"))
            .await;
    let err = client(&server.url())
        .refresh(&Secret::new("r"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HttpStatus);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(
        err.body_excerpt().unwrap().len(),
        zd_auth::BODY_EXCERPT_LIMIT
    );

    // A client error too stays what the status says, not a complaint about the body's size.
    let server = TestServer::fixed(|| Reply::text(400, "y".repeat(4096))).await;
    let err = client(&server.url())
        .with_http_config(HttpConfig {
            max_body: 1024,
            ..HttpConfig::default()
        })
        .unwrap()
        .refresh(&Secret::new("r"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HttpStatus);
    assert!(!err.is_retryable());
    assert!(err.body_excerpt().unwrap().starts_with("yyy"));
}

#[tokio::test]
async fn a_secret_at_the_cut_of_an_oversized_error_answer_does_not_show() {
    const REFRESH: &str = "sek-REFRESH-31ee";
    // The server echoes the refresh token right where the client stops reading.
    let server = TestServer::fixed(|| {
        Reply::text(
            503,
            format!("{}{REFRESH}{}", "a".repeat(100), "b".repeat(4096)),
        )
    })
    .await;
    let err = client(&server.url())
        .with_http_config(HttpConfig {
            max_body: 106,
            ..HttpConfig::default()
        })
        .unwrap()
        .refresh(&Secret::new(REFRESH))
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    let printed = format!("{err} {err:?} {:?}", err.body_excerpt());
    assert!(!printed.contains("sek-RE"), "{printed}");
    assert_eq!(err.body_excerpt(), Some("a".repeat(100).as_str()));
}

/// Everything an error shows: `Debug`, `Display` and its whole source chain.
pub(crate) fn everything_shown(err: &zd_auth::Error) -> String {
    let mut shown = format!("{err:?} {err}");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        shown.push_str(&format!(" {s:?} {s}"));
        source = s.source();
    }
    shown
}

#[tokio::test]
async fn malformed_bodies_are_decode_errors_without_the_body() {
    // A token of the wrong type is still a token: serde's message would quote it.
    for (body, path) in [
        (
            r#"{"access_token":987654321,"token_type":"Bearer"}"#,
            "access_token",
        ),
        (
            r#"{"access_token":"a","refresh_token":987654321}"#,
            "refresh_token",
        ),
        (
            r#"{"access_token":[987654321],"token_type":"Bearer"}"#,
            "access_token",
        ),
    ] {
        let server = TestServer::fixed(move || Reply::json(200, body)).await;
        let err = client(&server.url())
            .refresh(&Secret::new("r"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode);
        assert_eq!(err.json_path(), Some(path));
        assert!(err.body_excerpt().is_none());
        assert!(!format!("{err:?}").contains("987654321"), "{err:?}");
        assert!(!err.to_string().contains("987654321"), "{err}");
        let shown = everything_shown(&err);
        assert!(!shown.contains("987654321"), "{shown}");
        assert!(std::error::Error::source(&err).is_some(), "{shown}");
    }

    let server = TestServer::fixed(|| Reply::json(200, r#"{"access_token":"partial-sec"#)).await;
    let err = client(&server.url())
        .refresh(&Secret::new("r"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(!format!("{err:?} {err}").contains("partial-sec"));

    let server = TestServer::fixed(|| Reply::json(200, r#"{"token_type":"Bearer"}"#)).await;
    let err = client(&server.url())
        .refresh(&Secret::new("r"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.json_path()),
        (ErrorKind::Decode, Some("access_token"))
    );

    let server = TestServer::fixed(|| Reply::json(200, "not json")).await;
    let err = client(&server.url())
        .refresh(&Secret::new("r"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
}

#[tokio::test]
async fn truncated_transfer_is_a_transport_error() {
    let addr = raw_once(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{\"access_token\":\"ab",
    )
    .await;
    let err = client(&format!("http://{addr}"))
        .refresh(&Secret::new("r"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let server = TestServer::fixed(|| Reply::json(200, format!("\"{}\"", "a".repeat(4096)))).await;
    let client = client(&server.url())
        .with_http_config(HttpConfig {
            max_body: 1024,
            ..HttpConfig::default()
        })
        .unwrap();
    let err = client.refresh(&Secret::new("r")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BodyTooLarge);
}

/// Paused time: the runtime jumps to the deadline once nothing else can happen, so the full
/// (default, 30 s) timeout is exercised without waiting for the wall clock.
#[tokio::test(start_paused = true)]
async fn a_silent_server_times_out() {
    let addr = silent().await;
    let client = client(&format!("http://{addr}"))
        .with_http_config(HttpConfig {
            timeout: Duration::from_secs(30),
            ..HttpConfig::default()
        })
        .unwrap();
    let started = tokio::time::Instant::now();
    let err = client.refresh(&Secret::new("r")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.is_retryable());
    assert!(started.elapsed() >= Duration::from_secs(30));
}

#[tokio::test]
async fn refused_connection_is_a_transport_error() {
    // Bind then drop, so the port is (almost certainly) closed.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let err = client(&format!("http://{addr}"))
        .refresh(&Secret::new("r"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
}

#[tokio::test]
async fn bad_input_is_refused_before_any_request() {
    assert_eq!(
        OAuthClient::new("").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let public = OAuthClient::new("id").unwrap();
    assert_eq!(
        public.clone().with_secret("").unwrap_err().kind(),
        ErrorKind::EmptySecret
    );
    assert_eq!(
        public
            .clone()
            .with_base_url("http://www.zopim.com")
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    let err = public.client_credentials(&[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::EmptySecret);
    let err = public.refresh(&Secret::new("")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::EmptySecret);
    let err = public
        .password("a", &Secret::new(""), &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::EmptySecret);
}

#[tokio::test]
async fn a_rotated_refresh_token_is_kept_from_an_answer_refused_for_the_rest() {
    use zd_auth::TokenSource;
    use zd_auth::chat::RefreshGrant;

    // (answer to ref-1, whether it is accepted): each rotates ref-1 into ref-2, which the
    // server has then consumed.
    let cases = [
        (
            r#"{"access_token":"a2","refresh_token":"ref-2","expires_in":-1}"#,
            true,
        ),
        (
            r#"{"access_token":"a2","refresh_token":"ref-2","expires_in":-1.5}"#,
            true,
        ),
        (
            r#"{"access_token":"a2","refresh_token":"ref-2","expires_in":""}"#,
            true,
        ),
        (
            r#"{"access_token":"a2","refresh_token":"ref-2","expires_in":"NaN"}"#,
            true,
        ),
        (
            r#"{"access_token":"a2","refresh_token":"ref-2","expires_in":"3600s"}"#,
            true,
        ),
        (
            r#"{"access_token":"a2","refresh_token":"ref-2","scope":["read"]}"#,
            true,
        ),
        (r#"{"access_token":"","refresh_token":"ref-2"}"#, false),
        (r#"{"refresh_token":"ref-2","token_type":"Bearer"}"#, false),
        (
            r#"{"access_token":"a2","refresh_token":"ref-2","token_type":"mac"}"#,
            false,
        ),
        (r#"{"access_token":12,"refresh_token":"ref-2"}"#, false),
        (
            r#"{"refresh_token":"ref-2","access_token":{"v":"a2"}}"#,
            false,
        ),
    ];
    for (first, accepted) in cases {
        let server = TestServer::start(move |r| async move {
            if r.body.contains("refresh_token=ref-1") {
                Reply::json(200, first)
            } else if r.body.contains("refresh_token=ref-2") {
                Reply::json(200, r#"{"access_token":"a3","refresh_token":"ref-3"}"#)
            } else {
                Reply::json(400, r#"{"error":"invalid_grant"}"#)
            }
        })
        .await;
        // Called directly, the client hands the rotated token over in its answer or error.
        let direct = client(&server.url()).refresh(&Secret::new("ref-1")).await;
        let handed = match &direct {
            Ok(token) => token.refresh_token(),
            Err(e) => {
                assert!(!everything_shown(e).contains("ref-2"), "{first}: {e:?}");
                e.rotated_refresh_token()
            }
        };
        assert_eq!(handed, Some(&Secret::new("ref-2")), "{first}: {direct:?}");
        let grant = RefreshGrant::new(client(&server.url()), Secret::new("ref-1"));
        let answer = grant.fetch().await;
        assert_eq!(answer.is_ok(), accepted, "{first}: {answer:?}");
        // The grant holds it; the error, shared with every waiting caller, does not.
        if let Err(e) = &answer {
            assert_eq!(e.rotated_refresh_token(), None, "{first}");
        }
        if let Ok(fetched) = answer {
            assert_eq!(fetched.access_token.expose_secret(), "a2");
            // An unreadable lifetime is no lifetime, as when the server gives none.
            assert_eq!(fetched.expires_in, None, "{first}");
        }
        let next = grant.fetch().await;
        assert_eq!(
            next.map(|t| t.access_token.expose_secret().to_owned()).ok(),
            Some("a3".to_owned()),
            "{first}"
        );
        let bodies: Vec<String> = server.requests().into_iter().map(|r| r.body).collect();
        assert!(bodies[2].contains("refresh_token=ref-2"), "{first}");
    }
}

#[tokio::test]
async fn overlapping_refreshes_keep_the_latest_refresh_token() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use zd_auth::TokenSource;
    use zd_auth::chat::RefreshGrant;

    // Two fetches send ref-1; the first one's answer (ref-x) is held back until the second
    // one's (ref-y) has been stored, and, in the second case, rotated again (ref-z).
    for rotated_again in [false, true] {
        let gate = Arc::new(tokio::sync::Notify::new());
        let ref_1_seen = Arc::new(AtomicUsize::new(0));
        let (held, seen) = (Arc::clone(&gate), Arc::clone(&ref_1_seen));
        let server = TestServer::start(move |r| {
            let (held, seen) = (Arc::clone(&held), Arc::clone(&seen));
            async move {
                let answer = |access: &str, refresh: &str| {
                    Reply::json(
                        200,
                        format!(r#"{{"access_token":"{access}","refresh_token":"{refresh}"}}"#),
                    )
                };
                let body = r.body;
                if body.contains("refresh_token=ref-1") {
                    if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                        held.notified().await;
                        answer("a-x", "ref-x")
                    } else {
                        answer("a-y", "ref-y")
                    }
                } else if body.contains("refresh_token=ref-y") {
                    answer("a-z", "ref-z")
                } else if body.contains("refresh_token=ref-z")
                    || body.contains("refresh_token=ref-x")
                {
                    answer("a-last", "ref-last")
                } else {
                    Reply::json(400, r#"{"error":"invalid_grant"}"#)
                }
            }
        })
        .await;
        let grant = Arc::new(RefreshGrant::new(
            client(&server.url()),
            Secret::new("ref-1"),
        ));
        let late = tokio::spawn({
            let grant = Arc::clone(&grant);
            async move { grant.fetch().await }
        });
        // Bounded: a regression must fail, not hang.
        tokio::time::timeout(Duration::from_secs(30), async {
            while ref_1_seen.load(Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the late refresh was never sent");
        let token = |t: Result<zd_auth::FetchedToken, zd_auth::Error>| {
            t.map(|t| t.access_token.expose_secret().to_owned()).ok()
        };
        assert_eq!(token(grant.fetch().await).as_deref(), Some("a-y"));
        if rotated_again {
            assert_eq!(token(grant.fetch().await).as_deref(), Some("a-z"));
        }
        gate.notify_one();
        assert_eq!(token(late.await.unwrap()).as_deref(), Some("a-x"));
        assert_eq!(token(grant.fetch().await).as_deref(), Some("a-last"));
        let bodies: Vec<String> = server.requests().into_iter().map(|r| r.body).collect();
        // Two answers to ref-1: the one that arrived last (ref-x) is kept. An answer to ref-1
        // arriving after ref-y was rotated into ref-z would put back a token older than ref-z.
        let expected = if rotated_again {
            "refresh_token=ref-z"
        } else {
            "refresh_token=ref-x"
        };
        let last = bodies.last().cloned().unwrap_or_default();
        assert!(last.contains(expected), "{rotated_again}: {bodies:?}");
    }
}

#[tokio::test]
async fn an_error_answer_or_a_blank_refresh_token_leaves_the_one_in_hand() {
    use zd_auth::TokenSource;
    use zd_auth::chat::RefreshGrant;

    // Refused answers whose refresh token is no new token: an OAuth error sent with a 200
    // (an echo of the field, a masked value) and a blank one, also where the body fails.
    let cases = [
        r#"{"error":"invalid_request","refresh_token":"***"}"#,
        r#"{"error":"invalid_request","refresh_token":"***","access_token":12}"#,
        r#"{"access_token":"","refresh_token":"   "}"#,
        r#"{"access_token":12,"refresh_token":" "}"#,
    ];
    for first in cases {
        let server = TestServer::start(move |r| async move {
            if r.body.contains("refresh_token=ref-1") {
                Reply::json(200, first)
            } else {
                Reply::json(400, r#"{"error":"invalid_grant"}"#)
            }
        })
        .await;
        let direct = client(&server.url()).refresh(&Secret::new("ref-1")).await;
        assert_eq!(
            direct
                .as_ref()
                .err()
                .map(zd_auth::Error::rotated_refresh_token),
            Some(None),
            "{first}"
        );
        let grant = RefreshGrant::new(client(&server.url()), Secret::new("ref-1"));
        assert!(grant.fetch().await.is_err(), "{first}");
        let _ = grant.fetch().await;
        let bodies: Vec<String> = server.requests().into_iter().map(|r| r.body).collect();
        assert!(
            bodies[2].contains("refresh_token=ref-1"),
            "{first}: {}",
            bodies[2]
        );
    }
}

#[tokio::test]
async fn a_blank_refresh_token_in_an_accepted_answer_is_no_refresh_token() {
    use zd_auth::TokenSource;
    use zd_auth::chat::RefreshGrant;

    let server = TestServer::start(|r| async move {
        if r.body.contains("refresh_token=ref-1") {
            Reply::json(200, r#"{"access_token":"a2","refresh_token":"  "}"#)
        } else {
            Reply::json(400, r#"{"error":"invalid_grant"}"#)
        }
    })
    .await;
    let token = client(&server.url())
        .refresh(&Secret::new("ref-1"))
        .await
        .unwrap();
    assert_eq!(token.access_token().expose_secret(), "a2");
    assert_eq!(token.refresh_token(), None);
    let err = client(&server.url()).into_refreshing(&token).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    // The grant renews with the token in hand, not the blank one.
    let grant = RefreshGrant::new(client(&server.url()), Secret::new("ref-1"));
    grant.fetch().await.unwrap();
    grant.fetch().await.unwrap();
    let bodies: Vec<String> = server.requests().into_iter().map(|r| r.body).collect();
    assert!(bodies[2].contains("refresh_token=ref-1"), "{bodies:?}");
}

#[tokio::test]
async fn a_code_exchange_refused_for_the_rest_hands_over_its_refresh_token() {
    let server = TestServer::fixed(|| {
        Reply::json(
            200,
            r#"{"access_token":"a1","refresh_token":"ref-9","token_type":"mac"}"#,
        )
    })
    .await;
    let err = client(&server.url())
        .exchange_code("the-code", "https://example.org/cb")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!(err.rotated_refresh_token(), Some(&Secret::new("ref-9")));
    assert!(!everything_shown(&err).contains("ref-9"), "{err:?}");
}

#[tokio::test]
async fn each_rotated_refresh_token_is_handed_over_for_saving() {
    use std::sync::{Arc, Mutex};
    use zd_auth::TokenSource;
    use zd_auth::chat::RefreshGrant;

    let server = TestServer::start(|r| async move {
        if r.body.contains("refresh_token=ref-1") {
            Reply::json(200, r#"{"access_token":"a2","refresh_token":"ref-2"}"#)
        } else if r.body.contains("refresh_token=ref-2") {
            // Not rotated this time: the same token comes back.
            Reply::json(200, r#"{"access_token":"a3","refresh_token":"ref-2"}"#)
        } else {
            Reply::json(400, r#"{"error":"invalid_grant"}"#)
        }
    })
    .await;
    let saved = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&saved);
    let grant = RefreshGrant::new(client(&server.url()), Secret::new("ref-1"))
        .on_rotation(move |next| sink.lock().unwrap().push(next.expose_secret().to_owned()));
    assert_eq!(grant.refresh_token(), Secret::new("ref-1"));
    grant.fetch().await.unwrap();
    assert_eq!(grant.refresh_token(), Secret::new("ref-2"));
    grant.fetch().await.unwrap();
    assert_eq!(*saved.lock().unwrap(), ["ref-2"]);
    assert!(!format!("{grant:?}").contains("ref-2"));
}

/// Two refreshes of one token overlap; the first is answered with a rotated token, the second
/// (answered after it) with the token it sent: nothing rotated there, so the rotated one stays
/// in hand and is the only one handed over for saving.
#[tokio::test]
async fn an_overlapping_answer_echoing_the_token_sent_is_no_rotation() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};
    use zd_auth::TokenSource;
    use zd_auth::chat::RefreshGrant;

    let grant_cell: Arc<OnceLock<Arc<RefreshGrant>>> = Arc::new(OnceLock::new());
    let both_sent = Arc::new(tokio::sync::Barrier::new(2));
    let answered = Arc::new(AtomicUsize::new(0));
    let (cell, barrier) = (Arc::clone(&grant_cell), Arc::clone(&both_sent));
    let server = TestServer::start(move |_| {
        let (cell, barrier, answered) = (cell.clone(), barrier.clone(), answered.clone());
        async move {
            barrier.wait().await;
            if answered.fetch_add(1, Ordering::SeqCst) == 0 {
                return Reply::json(200, r#"{"access_token":"a2","refresh_token":"ref-2"}"#);
            }
            // Answered once the first answer is stored.
            let grant = cell.get().unwrap();
            while grant.refresh_token() != Secret::new("ref-2") {
                tokio::task::yield_now().await;
            }
            Reply::json(200, r#"{"access_token":"a3","refresh_token":"ref-1"}"#)
        }
    })
    .await;
    let saved = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&saved);
    let grant = Arc::new(
        RefreshGrant::new(client(&server.url()), Secret::new("ref-1"))
            .on_rotation(move |next| sink.lock().unwrap().push(next.expose_secret().to_owned())),
    );
    assert!(grant_cell.set(Arc::clone(&grant)).is_ok());
    // Bounded: fetches that never overlap leave the server's barrier waiting.
    let (first, second) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(grant.fetch(), grant.fetch())
    })
    .await
    .expect("the two refreshes did not overlap");
    first.unwrap();
    second.unwrap();
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.body.contains("refresh_token=ref-1"))
    );
    assert_eq!(grant.refresh_token(), Secret::new("ref-2"));
    assert_eq!(*saved.lock().unwrap(), ["ref-2"]);
}

#[tokio::test]
async fn the_server_words_of_an_error_are_bounded_and_on_one_line() {
    let description = format!("{}\\nFAKE 2026-12-06 INFO login ok", "x".repeat(20_000));
    let body = format!(r#"{{"error":"invalid_grant","error_description":"{description}"}}"#);
    let server = TestServer::fixed(move || Reply::json(400, &body)).await;
    let err = client(&server.url())
        .refresh(&Secret::new("ref-1"))
        .await
        .unwrap_err();
    assert_eq!(
        err.oauth().map(|o| &o.code),
        Some(&OAuthErrorCode::InvalidGrant)
    );
    let shown = err.to_string();
    assert!(shown.len() < 1024, "{} bytes", shown.len());
    assert!(!shown.contains('\n'), "{shown}");
    let long = r#"{"error":"invalid_grant","error_description":"ok\nFAKE line"}"#;
    let server = TestServer::fixed(move || Reply::json(400, long)).await;
    let err = client(&server.url())
        .refresh(&Secret::new("ref-1"))
        .await
        .unwrap_err();
    let description = err.oauth().and_then(|o| o.description.clone());
    assert_eq!(description.as_deref(), Some("ok FAKE line"));
}

#[tokio::test]
async fn a_negative_expires_in_does_not_kill_refreshing_credentials() {
    let server = TestServer::start(|r| async move {
        if r.body.contains("refresh_token=ref-1") {
            Reply::json(
                200,
                r#"{"access_token":"acc-2","refresh_token":"ref-2","expires_in":-1}"#,
            )
        } else if r.body.contains("refresh_token=ref-2") {
            Reply::json(200, r#"{"access_token":"acc-3","refresh_token":"ref-3"}"#)
        } else {
            Reply::json(400, r#"{"error":"invalid_grant"}"#)
        }
    })
    .await;
    let first = zd_auth::chat::ChatToken::from_implicit_fragment(
        "access_token=acc-0&refresh_token=ref-1&expires_in=0",
    )
    .unwrap();
    let creds = client(&server.url()).into_refreshing(&first).unwrap();
    assert_eq!(
        creds.authorization().await.unwrap().expose_secret(),
        "Bearer acc-2"
    );
    // Without a lifetime, acc-2 is used until it is refused.
    assert_eq!(
        creds.authorization().await.unwrap().expose_secret(),
        "Bearer acc-2"
    );
    creds.invalidate();
    assert_eq!(
        creds.authorization().await.unwrap().expose_secret(),
        "Bearer acc-3"
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn refreshing_credentials_rotate_the_refresh_token() {
    // expires_in 0: every authorization() must refresh, so each request shows which refresh
    // token was used.
    let server = TestServer::start(|r| async move {
        let next = if r.body.contains("refresh_token=ref-1") { "ref-2" } else { "ref-3" };
        Reply::json(
            200,
            format!(r#"{{"access_token":"acc-{next}","refresh_token":"{next}","token_type":"Bearer","expires_in":0}}"#),
        )
    })
    .await;
    let client = client(&server.url());
    let first = zd_auth::chat::ChatToken::from_implicit_fragment(
        "access_token=acc-0&refresh_token=ref-1&expires_in=0",
    )
    .unwrap();
    let creds = client.into_refreshing(&first).unwrap();
    assert_eq!(
        creds.authorization().await.unwrap().expose_secret(),
        "Bearer acc-ref-2"
    );
    assert_eq!(
        creds.authorization().await.unwrap().expose_secret(),
        "Bearer acc-ref-3"
    );
    let bodies: Vec<String> = server.requests().into_iter().map(|r| r.body).collect();
    assert!(
        bodies[0].contains("grant_type=refresh_token") && bodies[0].contains("refresh_token=ref-1")
    );
    assert!(bodies[1].contains("refresh_token=ref-2"));
}

#[tokio::test]
async fn long_lived_tokens_are_not_refreshed() {
    let server = TestServer::fixed(|| Reply::json(200, TOKEN)).await;
    let creds = client(&server.url()).into_client_credentials(vec![ChatScope::Read]);
    for _ in 0..5 {
        assert_eq!(
            creds.authorization().await.unwrap().expose_secret(),
            "Bearer acc-1"
        );
    }
    assert_eq!(server.count(), 1);
    creds.invalidate();
    creds.authorization().await.unwrap();
    assert_eq!(server.count(), 2);
    assert!(
        server.requests()[0]
            .body
            .contains("grant_type=client_credentials")
    );
}
