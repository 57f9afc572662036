//! The Sunshine OAuth bridge against a loopback server.

use zd_auth::sunshine::bridge::OAuthBridge;
use zd_auth::{Credentials, ErrorKind, Secret};

use crate::server::{Reply, TestServer};

fn bridge(server: &TestServer) -> OAuthBridge {
    // The bridge base has a path (`/sc`); endpoints go under it.
    OAuthBridge::new()
        .unwrap()
        .with_base_url(&format!("{}/sc", server.url()))
        .unwrap()
}

#[tokio::test]
async fn code_exchange_token_info_and_revoke() {
    let server = TestServer::start(|r| async move {
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/sc/oauth/token") => {
                Reply::json(200, r#"{"access_token":"bridge-token-value","token_type":"Bearer"}"#)
            }
            ("GET", "/sc/v2/tokenInfo") => Reply::json(
                200,
                r#"{"app":{"id":"5d8cff3cd55b040010928b5b","displayName":"My App","settings":{"echoPostback":true},"metadata":{"lang":"en-ca"},"subdomain":"test-domain"}}"#,
            ),
            _ => Reply::json(404, r#"{"errors":[{"code":"not_found","title":"Not found"}]}"#),
        }
    })
    .await;
    // The account's own API host, where revocation goes (not the bridge).
    let api = TestServer::start(|r| async move {
        match (r.method.as_str(), r.path.as_str()) {
            ("DELETE", "/sc/oauth/authorization") => Reply::json(204, ""),
            _ => Reply::json(
                404,
                r#"{"errors":[{"code":"not_found","title":"Not found"}]}"#,
            ),
        }
    })
    .await;
    let bridge = bridge(&server)
        .with_api_base_url(&format!("{}/sc", api.url()))
        .unwrap();

    let token = bridge
        .exchange_code(
            "the-code",
            "my-integration",
            &Secret::new("client-secret-value"),
        )
        .await
        .unwrap();
    assert_eq!(token.access_token().expose_secret(), "bridge-token-value");
    let creds = token.to_credentials().unwrap();
    assert_eq!(
        creds.authorization().await.unwrap().expose_secret(),
        "Bearer bridge-token-value"
    );

    let info = bridge.token_info(token.access_token()).await.unwrap();
    assert_eq!(info.id, "5d8cff3cd55b040010928b5b");
    assert_eq!(info.display_name.as_deref(), Some("My App"));
    assert_eq!(info.subdomain.as_deref(), Some("test-domain"));

    bridge
        .revoke(info.subdomain.as_deref().unwrap(), token.access_token())
        .await
        .unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 2, "the bridge saw only token and tokenInfo");
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    let exchange: serde_json::Value = serde_json::from_str(&requests[0].body).unwrap();
    insta::assert_json_snapshot!("bridge_exchange_body", exchange);
    assert_eq!(
        requests[1].header("authorization"),
        Some("Bearer bridge-token-value")
    );
    let revoked = api.requests();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].method, "DELETE");
    assert_eq!(
        revoked[0].header("authorization"),
        Some("Bearer bridge-token-value")
    );
}

#[tokio::test]
async fn bridge_errors_are_typed() {
    let server = TestServer::start(|r| async move {
        match r.path.as_str() {
            "/sc/oauth/token" => Reply::json(400, r#"{"error":"invalid_grant"}"#),
            "/sc/v2/tokenInfo" => Reply::json(
                401,
                r#"{"errors":[{"code":"unauthorized","title":"Authorization is required"}]}"#,
            ),
            _ => Reply::json(200, r#"{"unexpected":true}"#),
        }
    })
    .await;
    let bridge = bridge(&server);
    let err = bridge
        .exchange_code("c", "id", &Secret::new("s"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OAuth);

    let err = bridge
        .token_info(&Secret::new("revoked"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HttpStatus);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
    assert!(err.body_excerpt().unwrap().contains("unauthorized"));

    // A token of the wrong type is still a token: serde's message would quote it.
    let server = TestServer::fixed(|| {
        Reply::json(200, r#"{"access_token":987654321,"token_type":"Bearer"}"#)
    })
    .await;
    let err = OAuthBridge::new()
        .unwrap()
        .with_base_url(&server.url())
        .unwrap()
        .exchange_code("c", "id", &Secret::new("s"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!(err.json_path(), Some("access_token"));
    let shown = crate::chat_oauth::everything_shown(&err);
    assert!(!shown.contains("987654321"), "{shown}");

    // 200 without the `app` object.
    let server = TestServer::fixed(|| Reply::json(200, r#"{"app":{"displayName":"x"}}"#)).await;
    let err = OAuthBridge::new()
        .unwrap()
        .with_base_url(&server.url())
        .unwrap()
        .token_info(&Secret::new("t"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!(err.json_path(), Some("app"));

    assert_eq!(
        bridge
            .exchange_code("c", "id", &Secret::new(""))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::EmptySecret
    );
    assert_eq!(
        bridge
            .token_info(&Secret::new(""))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::EmptySecret
    );
}

#[test]
fn authorize_url() {
    let bridge = OAuthBridge::new().unwrap();
    let url = bridge
        .authorize_url("my id", Some("st&ate"), Some("https://example.org/cb"))
        .unwrap();
    insta::assert_snapshot!("bridge_authorize_url", url.as_str());
    assert_eq!(
        bridge.authorize_url("", None, None).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}
