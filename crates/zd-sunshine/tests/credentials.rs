//! What the client does with its credentials, against a small axum server on loopback: the
//! operations the spec marks `security: []` go out without them, and error answers that echo
//! them back do not carry them into the error.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use parking_lot::Mutex;
use serde_json::json;
use zd_auth::StaticToken;
use zd_auth::sunshine::{ApiKey, BasicAuth};
use zd_sunshine::{
    API_ERROR_FIELD_LIMIT, BODY_EXCERPT_LIMIT, Client, Credentials, Region, RetryPolicy, models,
    operations,
};

/// `(method path, Authorization header)` of each request, `None` when the header was absent.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Binds 127.0.0.1:0 first, then answers every request with `answer(method path)` and records
/// what it saw.
async fn serve(answer: fn(&str) -> (StatusCode, String)) -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |req: Request| {
        let log = log.clone();
        async move {
            let target = format!("{} {}", req.method(), req.uri().path());
            let auth = req
                .headers()
                .get(header::AUTHORIZATION)
                .map(|v| v.to_str().unwrap().to_owned());
            log.lock().push((target.clone(), auth));
            let (status, body) = answer(&target);
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            if status == StatusCode::FOUND {
                response.headers_mut().insert(
                    header::LOCATION,
                    HeaderValue::from_static("https://app.example/cb?code=c1"),
                );
            }
            response
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

fn oauth_bridge(target: &str) -> (StatusCode, String) {
    match target {
        "GET /oauth/authorize" => (StatusCode::FOUND, String::new()),
        "POST /oauth/token" => (
            StatusCode::OK,
            json!({"access_token": "at", "token_type": "Bearer"}).to_string(),
        ),
        "GET /v2/tokenInfo" | "GET /v2/apps/a1" => (
            StatusCode::OK,
            json!({"app": {"id": "a1", "subdomain": "acme"}}).to_string(),
        ),
        _ => (StatusCode::NOT_FOUND, String::new()),
    }
}

fn with_creds(base: &str, creds: impl Credentials) -> Client {
    Client::builder(Region::Custom(base.to_owned()), creds)
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

/// Authorize and GetToken (`security: []`) carry no Authorization header, whichever the
/// credentials; GetTokenInfo (`security: []` too, but the bridge reads the OAuth token from
/// that header) and an ordinary operation carry the client's.
#[tokio::test]
async fn operations_without_security_are_sent_without_the_clients_credentials() {
    let (base, seen) = serve(oauth_bridge).await;
    let key = ApiKey::new("app_5963ceb97cde542d000dbdb1", "s3cret").unwrap();
    let basic = "Basic YXBwXzU5NjNjZWI5N2NkZTU0MmQwMDBkYmRiMTpzM2NyZXQ=";
    for (client, header) in [
        (with_creds(&base, BasicAuth::new(&key)), basic),
        (
            with_creds(&base, StaticToken::bearer("oauth-token").unwrap()),
            "Bearer oauth-token",
        ),
    ] {
        seen.lock().clear();
        let redirect = operations::Authorize::new("cid", "code")
            .send(&client)
            .await
            .unwrap();
        assert_eq!(redirect.location, "https://app.example/cb?code=c1");
        let body = models::GetTokenBody::new(
            "cid".to_owned(),
            "client-secret".to_owned(),
            "c1".to_owned(),
            "authorization_code".to_owned(),
        );
        let token = operations::GetToken::new(body).send(&client).await.unwrap();
        assert_eq!(token.access_token.as_deref(), Some("at"));
        operations::GetTokenInfo::new().send(&client).await.unwrap();
        operations::GetApp::new("a1").send(&client).await.unwrap();
        let expected = [
            ("GET /oauth/authorize", None),
            ("POST /oauth/token", None),
            ("GET /v2/tokenInfo", Some(header)),
            ("GET /v2/apps/a1", Some(header)),
        ];
        let seen: Vec<(String, Option<String>)> = seen.lock().clone();
        let seen: Vec<(&str, Option<&str>)> = seen
            .iter()
            .map(|(t, a)| (t.as_str(), a.as_deref()))
            .collect();
        assert_eq!(seen, expected);
    }
}

const KEY_SECRET: &str = "Zx9kEy-SeCrEt_4u7QpLm";
const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzY29wZSI6ImFwcCJ9.c2lnbmF0dXJlLXNlY3JldC12YWx1ZQ";

/// Error answers that quote the credentials, as written and JSON-escaped, in the entries and
/// in the body, with the body and a title each cut part way through a copy.
fn echoes(target: &str) -> (StatusCode, String) {
    let basic = "YXBwXzU5NjNjZWI5N2NkZTU0MmQwMDBkYmRiMTpaeDlrRXktU2VDckV0XzR1N1FwTG0=";
    let escaped: String = KEY_SECRET
        .chars()
        .map(|c| format!("\\u{:04x}", u32::from(c)))
        .collect();
    match target {
        // 401: the secret in the code and title, the header as sent, an escaped copy.
        "GET /v2/apps/a401" => (
            StatusCode::UNAUTHORIZED,
            format!(
                r#"{{"errors":[{{"code":"bad_{KEY_SECRET}","title":"key secret {KEY_SECRET} refused; token {JWT}"}}],"sent":"Basic {basic}","again":"{escaped}"}}"#
            ),
        ),
        "GET /v2/apps/key400" => cut_in(KEY_SECRET),
        "GET /v2/apps/jwt400" => cut_in(JWT),
        _ => (StatusCode::NOT_FOUND, String::new()),
    }
}

/// A 400 whose title is cut (at `API_ERROR_FIELD_LIMIT`) and whose body is cut (at the
/// excerpt limit), each 8 bytes into a copy of `secret`.
fn cut_in(secret: &str) -> (StatusCode, String) {
    let title = format!("{}{secret}", "t".repeat(API_ERROR_FIELD_LIMIT - 8));
    let head = format!(r#"{{"errors":[{{"code":"invalid","title":"{title}"}}],"pad":""#);
    let pad = "p".repeat(BODY_EXCERPT_LIMIT - 8 - head.len());
    (
        StatusCode::BAD_REQUEST,
        format!(r#"{head}{pad}{secret}"}}"#),
    )
}

/// Every view of `err` a log line could take.
fn views(err: &zd_sunshine::Error) -> Vec<String> {
    let mut all = vec![
        err.to_string(),
        format!("{err:?}"),
        format!("{err:#?}"),
        err.body().unwrap_or_default().to_owned(),
    ];
    for e in err.api_errors() {
        all.extend(e.code.clone());
        all.extend(e.title.clone());
    }
    all
}

fn assert_hidden(err: &zd_sunshine::Error, secrets: &[&str]) {
    for view in views(err) {
        for secret in secrets {
            // The first 6 characters: a cut must not leave a copy's beginning either.
            assert!(!view.contains(&secret[..6]), "{secret:?} shows in {view}");
        }
    }
}

#[tokio::test]
async fn error_answers_that_echo_the_credentials_do_not_keep_them() {
    let (base, _) = serve(echoes).await;
    let key = ApiKey::new("app_5963ceb97cde542d000dbdb1", KEY_SECRET).unwrap();
    let basic = with_creds(&base, BasicAuth::new(&key));
    let bearer = with_creds(&base, StaticToken::bearer(JWT).unwrap());

    let err = operations::GetApp::new("a401")
        .send(&basic)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    assert_hidden(&err, &[KEY_SECRET, "YXBwXzU5NjNjZWI5N2Nk"]);
    // The header as sent and the JSON-escaped copy are hidden too; the rest is kept.
    let body = err.body().unwrap();
    assert!(
        body.contains(r#""sent":"Basic [REDACTED]","again":"[REDACTED]"}"#),
        "{body}"
    );
    assert_eq!(err.code(), Some("bad_[REDACTED]"));
    assert!(
        err.to_string().contains("key secret [REDACTED] refused"),
        "{err}"
    );

    let err = operations::GetApp::new("a401")
        .send(&bearer)
        .await
        .unwrap_err();
    assert_hidden(&err, &[JWT]);
    assert!(err.to_string().contains("; token [REDACTED]"), "{err}");

    for (client, path, secret) in [(&basic, "key400", KEY_SECRET), (&bearer, "jwt400", JWT)] {
        let err = operations::GetApp::new(path)
            .send(client)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
        assert_hidden(&err, &[secret]);
        // Cut before the copy's beginning, the rest kept.
        assert!(err.body().unwrap().ends_with("pppp"), "{:?}", err.body());
        let title = err.api_errors()[0].title.as_deref().unwrap();
        assert!(title.ends_with("tttt"), "{title}");
    }
}

const CLIENT_SECRET: &str = "cLiEnT-sEcReT_9f3Kq7Zp";
const AUTH_CODE: &str = "AuThCoDe-7c1e9b2d4f6a";

/// /oauth/token refusing the exchange with a 401 that quotes the body it was sent: the client
/// secret and the code in the title, and the whole request (as written) in the body.
fn token_echo(target: &str) -> (StatusCode, String) {
    match target {
        "POST /oauth/token" => (
            StatusCode::UNAUTHORIZED,
            json!({
                "errors": [{
                    "code": "unauthorized",
                    "title": format!("client_secret {CLIENT_SECRET} does not match code {AUTH_CODE}"),
                }],
                "request": {
                    "client_id": "cid",
                    "client_secret": CLIENT_SECRET,
                    "code": AUTH_CODE,
                    "grant_type": "authorization_code",
                },
            })
            .to_string(),
        ),
        _ => (StatusCode::NOT_FOUND, String::new()),
    }
}

/// GetToken goes without the client's credentials, so what it could leak is in its body: the
/// client secret and the authorization code (a one-time credential, worth a token until it
/// is exchanged).
#[tokio::test]
async fn a_token_exchange_refused_with_its_secrets_echoed_does_not_keep_them() {
    let (base, _) = serve(token_echo).await;
    let client = with_creds(&base, StaticToken::bearer(JWT).unwrap());
    let body = models::GetTokenBody::new(
        "cid".to_owned(),
        CLIENT_SECRET.to_owned(),
        AUTH_CODE.to_owned(),
        "authorization_code".to_owned(),
    );
    let err = operations::GetToken::new(body)
        .send(&client)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    assert_hidden(&err, &[CLIENT_SECRET, AUTH_CODE]);
    // What is not a secret stays readable.
    assert_eq!(err.code(), Some("unauthorized"));
    assert!(
        err.to_string()
            .contains("client_secret [REDACTED] does not match code [REDACTED]"),
        "{err}"
    );
    let body = err.body().unwrap();
    assert!(
        body.contains(r#""client_id":"cid","client_secret":"[REDACTED]","code":"[REDACTED]""#),
        "{body}"
    );
}
