//! No secret shows through `{:?}`, `{:#?}`, `{}` or a tracing subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zd_auth::chat::{ChatToken, ClientCredentialsGrant, OAuthClient, RefreshGrant};
use zd_auth::sunshine::bridge::OAuthBridge;
use zd_auth::sunshine::{ApiKey, BasicAuth, JwtCredentials, Scope, UserJwt, sign_jwt};
use zd_auth::{Credentials, FetchedToken, Secret, StaticToken};

use crate::server::{Reply, TestServer};

const ACCESS: &str = "sek-ACCESS-4f1d";
const REFRESH: &str = "sek-REFRESH-9a2b";
const CLIENT: &str = "sek-CLIENT-77c0";
const KEY: &str = "sek-KEYSECRET-31ee";
const PASSWORD: &str = "sek-PASSWORD-0b5a";

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Formats a value every way a program might print it.
macro_rules! print_all {
    ($out:ident, $($value:expr),+ $(,)?) => {{
        $(
            let v = &$value;
            $out.push(format!("{v:?}"));
            $out.push(format!("{v:#?}"));
            $out.push(format!("{v}"));
            tracing::info!(debug = ?v, display = %v, "credential");
        )+
    }};
}

#[tokio::test(flavor = "current_thread")]
async fn no_secret_is_ever_printed() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = TestServer::fixed(|| {
        Reply::json(
            200,
            format!(r#"{{"access_token":"{ACCESS}","refresh_token":"{REFRESH}","token_type":"Bearer","expires_in":0}}"#),
        )
    })
    .await;
    let client = OAuthClient::new("client-id")
        .unwrap()
        .with_secret(CLIENT)
        .unwrap()
        .with_base_url(&server.url())
        .unwrap();
    let token = client
        .password("agent", &Secret::new(PASSWORD), &[])
        .await
        .unwrap();
    let refreshing = client.clone().into_refreshing(&token).unwrap();
    let header = refreshing.authorization().await.unwrap(); // refreshes (expires_in 0), with debug logs
    let implicit = ChatToken::from_implicit_fragment(&format!("access_token={ACCESS}")).unwrap();

    let key = ApiKey::new("app_1", KEY).unwrap();
    let basic = BasicAuth::new(&key);
    let jwt_creds = JwtCredentials::new(&key, Scope::App).unwrap();
    let jwt = jwt_creds.token().unwrap();
    let user_jwt = UserJwt::new("u").unwrap().sign(&key).unwrap();
    let account_jwt = sign_jwt(&ApiKey::new("act_1", KEY).unwrap(), Scope::Account, None).unwrap();
    let bridge_server = TestServer::fixed(|| {
        Reply::json(
            200,
            format!(r#"{{"access_token":"{ACCESS}","token_type":"Bearer"}}"#),
        )
    })
    .await;
    let bridge = OAuthBridge::new()
        .unwrap()
        .with_base_url(&bridge_server.url())
        .unwrap();
    let bridge_token = bridge
        .exchange_code("code", "id", &Secret::new(CLIENT))
        .await
        .unwrap();
    let fetched = FetchedToken {
        access_token: Secret::new(ACCESS),
        expires_in: None,
    };
    let error = client.refresh(&Secret::new("")).await.unwrap_err();

    // A server (or a gateway in front of it) that echoes the request in its error answer:
    // the secrets we sent come back in the OAuth description and in the body excerpt.
    let echo = TestServer::start(|r| async move {
        if r.body.contains("grant_type=password") {
            Reply::text(503, format!("<pre>upstream refused: {}</pre>", r.body))
        } else {
            let body = serde_json::json!({
                "error": "invalid_client",
                "error_description": format!("cannot accept {}", r.body),
            });
            Reply::json(400, body.to_string())
        }
    })
    .await;
    let echo_client = client.clone().with_base_url(&echo.url()).unwrap();
    let echoed_refresh = echo_client
        .refresh(&Secret::new(REFRESH))
        .await
        .unwrap_err();
    assert!(echoed_refresh.oauth().unwrap().description.is_some());
    let echoed_password = echo_client
        .password("agent", &Secret::new(PASSWORD), &[])
        .await
        .unwrap_err();
    assert!(
        echoed_password
            .body_excerpt()
            .unwrap()
            .contains("client_id=client-id"),
        "the server echoed the request"
    );
    let echoed_exchange = OAuthBridge::new()
        .unwrap()
        .with_base_url(&echo.url())
        .unwrap()
        .exchange_code("code", "id", &Secret::new(CLIENT))
        .await
        .unwrap_err();
    let excerpts: Vec<String> = [&echoed_refresh, &echoed_password, &echoed_exchange]
        .iter()
        .filter_map(|e| e.body_excerpt().map(str::to_owned))
        .collect();

    let mut out = Vec::new();
    print_all!(
        out,
        Secret::new(ACCESS),
        header,
        StaticToken::bearer(ACCESS).unwrap(),
        refreshing,
        token,
        implicit,
        client,
        RefreshGrant::new(client.clone(), Secret::new(REFRESH)),
        ClientCredentialsGrant::new(client.clone(), vec![]),
        key,
        basic,
        jwt_creds,
        jwt,
        user_jwt,
        account_jwt,
        bridge_token,
        error,
        echoed_refresh,
        echoed_password,
        echoed_exchange,
    );
    out.extend(excerpts);
    out.push(format!("{fetched:?}"));
    out.push(format!("{bridge:?}"));
    drop(_guard);
    out.push(String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap());
    let printed = out.join("\n");

    assert!(printed.contains("Secret([REDACTED])"));
    assert!(
        printed.contains("refreshing access token"),
        "tracing output was captured"
    );
    let basic_value = STANDARD.encode(format!("app_1:{KEY}"));
    let jwt_signature = jwt.expose_secret().rsplit('.').next().unwrap().to_owned();
    for secret in [
        ACCESS,
        REFRESH,
        CLIENT,
        KEY,
        PASSWORD,
        basic_value.as_str(),
        jwt.expose_secret(),
        jwt_signature.as_str(),
        user_jwt.expose_secret(),
        account_jwt.expose_secret(),
    ] {
        assert!(!printed.contains(secret), "leaked {secret}:\n{printed}");
    }
}
