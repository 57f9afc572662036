//! However many tasks ask at once, one refresh request reaches the token endpoint.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, Semaphore};
use zd_auth::chat::{ChatScope, ChatToken, OAuthClient};
use zd_auth::{Credentials, ErrorKind};

use crate::server::{Reply, TestServer};

const CALLERS: usize = 64;

/// A token endpoint that announces each request and holds its answer until released.
async fn gated_server(
    status: u16,
    body: &'static str,
) -> (TestServer, Arc<Notify>, Arc<Semaphore>) {
    let arrived = Arc::new(Notify::new());
    let gate = Arc::new(Semaphore::new(0));
    let (a, g) = (arrived.clone(), gate.clone());
    let server = TestServer::start(move |_| {
        let (a, g) = (a.clone(), g.clone());
        async move {
            a.notify_one();
            g.acquire().await.unwrap().forget();
            Reply::json(status, body)
        }
    })
    .await;
    (server, arrived, gate)
}

/// Spawns `CALLERS` tasks asking for a header and returns once every one of them has been
/// polled up to its first wait (single-threaded runtime: a task runs until it waits).
async fn spawn_callers(
    creds: Arc<dyn Credentials>,
) -> Vec<tokio::task::JoinHandle<Result<zd_auth::Secret, zd_auth::Error>>> {
    let started = Arc::new(AtomicUsize::new(0));
    let handles = (0..CALLERS)
        .map(|_| {
            let creds = creds.clone();
            let started = started.clone();
            tokio::spawn(async move {
                started.fetch_add(1, Ordering::SeqCst);
                creds.authorization().await
            })
        })
        .collect();
    while started.load(Ordering::SeqCst) < CALLERS {
        tokio::task::yield_now().await;
    }
    handles
}

#[tokio::test(flavor = "current_thread")]
async fn many_concurrent_callers_share_one_refresh() {
    let (server, arrived, gate) = gated_server(
        200,
        r#"{"access_token":"only-one","token_type":"Bearer","expires_in":3600}"#,
    )
    .await;
    let client = OAuthClient::new("id")
        .unwrap()
        .with_secret("secret")
        .unwrap()
        .with_base_url(&server.url())
        .unwrap();
    let creds: Arc<dyn Credentials> =
        Arc::new(client.into_client_credentials(vec![ChatScope::Read]));

    let handles = spawn_callers(creds.clone()).await;
    // The leader's request is at the server and every other caller is waiting.
    arrived.notified().await;
    gate.add_permits(CALLERS);
    for handle in handles {
        assert_eq!(
            handle.await.unwrap().unwrap().expose_secret(),
            "Bearer only-one"
        );
    }
    assert_eq!(server.count(), 1);
    // And later callers reuse the token.
    creds.authorization().await.unwrap();
    assert_eq!(server.count(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_refresh_is_reported_to_every_waiter_once() {
    let (server, arrived, gate) = gated_server(
        400,
        r#"{"error":"invalid_client","error_description":"public client"}"#,
    )
    .await;
    let client = OAuthClient::new("id")
        .unwrap()
        .with_secret("secret")
        .unwrap()
        .with_base_url(&server.url())
        .unwrap();
    let creds: Arc<dyn Credentials> = Arc::new(client.into_client_credentials(vec![]));

    let handles = spawn_callers(creds.clone()).await;
    arrived.notified().await;
    gate.add_permits(CALLERS);
    for handle in handles {
        let err = handle.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OAuth);
        assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
    }
    assert_eq!(server.count(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_caller_does_not_lose_the_rotated_refresh_token() {
    // Refresh tokens are single-use: every answer rotates `r<n>` to `r<n+1>` and the server
    // refuses a token it has already consumed.
    let arrived = Arc::new(Notify::new());
    let gate = Arc::new(Semaphore::new(0));
    let live = Arc::new(Mutex::new(1_u32));
    let (a, g) = (arrived.clone(), gate.clone());
    let server = TestServer::start(move |r| {
        let (a, g, live) = (a.clone(), g.clone(), live.clone());
        async move {
            let sent = url::form_urlencoded::parse(r.body.as_bytes())
                .find(|(k, _)| k == "refresh_token")
                .map(|(_, v)| v.into_owned());
            let next = {
                let mut live = live.lock().unwrap();
                if sent.as_deref() != Some(format!("r{live}").as_str()) {
                    return Reply::json(400, r#"{"error":"invalid_grant"}"#);
                }
                *live += 1;
                *live
            };
            a.notify_one();
            g.acquire().await.unwrap().forget();
            Reply::json(
                200,
                format!(
                    r#"{{"access_token":"a{next}","refresh_token":"r{next}","token_type":"Bearer","expires_in":3600}}"#
                ),
            )
        }
    })
    .await;
    let client = OAuthClient::new("id")
        .unwrap()
        .with_base_url(&server.url())
        .unwrap();
    // Already expired, so the first caller refreshes.
    let token =
        ChatToken::from_implicit_fragment("access_token=a1&refresh_token=r1&expires_in=0").unwrap();
    let creds = Arc::new(client.into_refreshing(&token).unwrap());

    let leader = tokio::spawn({
        let creds = creds.clone();
        async move { creds.authorization().await }
    });
    // The server has consumed r1; the caller goes away before the answer.
    arrived.notified().await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    gate.add_permits(8);

    assert_eq!(
        creds.authorization().await.unwrap().expose_secret(),
        "Bearer a2"
    );
    // And the next refresh uses the rotated r2.
    creds.invalidate();
    assert_eq!(
        creds.authorization().await.unwrap().expose_secret(),
        "Bearer a3"
    );
    assert_eq!(server.count(), 2);
}
