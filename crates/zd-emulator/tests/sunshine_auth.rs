//! Authentication and scope: Basic, HS256 JWTs with `kid`, app/account/integration keys, the
//! 401 error body; and the Chat OAuth token endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "helpers of tests")]

#[path = "sunshine/client.rs"]
mod client;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use client::{Api, basic};
use serde_json::json;
use zd_auth::sunshine::{ApiKey, Scope, sign_jwt};
use zd_emulator::sunshine::{self as sun, SunshineConfig, SunshineServer};

fn bearer(id: &str, secret: &str, scope: Scope, exp: Option<SystemTime>) -> String {
    let key = ApiKey::new(id, secret).unwrap();
    format!(
        "Bearer {}",
        sign_jwt(&key, scope, exp).unwrap().expose_secret()
    )
}

#[tokio::test]
async fn credentials_and_scopes() {
    let server = SunshineServer::start(SunshineConfig::default())
        .await
        .unwrap();
    let api = Api::new(server.base_url());
    let app = format!("/v2/apps/{}", sun::DEMO_APP_ID);
    let app_jwt = bearer(
        sun::DEMO_APP_KEY_ID,
        sun::DEMO_APP_KEY_SECRET,
        Scope::App,
        None,
    );
    let acct_jwt = bearer(
        sun::DEMO_ACCOUNT_KEY_ID,
        sun::DEMO_ACCOUNT_KEY_SECRET,
        Scope::Account,
        None,
    );

    let (st, v) = api.call("GET", &app, None, None).await;
    assert_eq!(
        (st, &v),
        (
            401,
            &json!({"errors":[{"code":"unauthorized","title":"Authorization is required"}]})
        )
    );
    assert_eq!(api.call("GET", &app, Some(&app_jwt), None).await.0, 200);
    assert_eq!(api.call("GET", &app, Some(&acct_jwt), None).await.0, 200);
    assert_eq!(
        api.call("GET", "/v2/apps", Some(&acct_jwt), None).await.0,
        200
    );
    assert_eq!(
        api.call("GET", "/v2/apps", Some(&app_jwt), None).await.0,
        403
    );
    // Wrong secret, unknown kid, expired, garbage.
    let forged = bearer(sun::DEMO_APP_KEY_ID, "not-the-secret", Scope::App, None);
    let unknown = bearer("app_000000000000000000000000", "x", Scope::App, None);
    let expired = bearer(
        sun::DEMO_APP_KEY_ID,
        sun::DEMO_APP_KEY_SECRET,
        Scope::App,
        Some(SystemTime::now() - Duration::from_secs(3600)),
    );
    for auth in [
        forged,
        unknown,
        expired,
        "Bearer a.b.c".into(),
        "Digest x".into(),
        basic(sun::DEMO_APP_KEY_ID, "nope"),
    ] {
        let (st, v) = api.call("GET", &app, Some(&auth), None).await;
        assert_eq!(st, 401, "{auth}");
        assert_eq!(v["errors"][0]["code"], "unauthorized");
    }

    // An app key reaches its own app only.
    let acct = basic(sun::DEMO_ACCOUNT_KEY_ID, sun::DEMO_ACCOUNT_KEY_SECRET);
    let (_, other) = api
        .call(
            "POST",
            "/v2/apps",
            Some(&acct),
            Some(json!({"displayName":"Other"})),
        )
        .await;
    let other = format!("/v2/apps/{}", other["app"]["id"].as_str().unwrap());
    assert_eq!(api.call("GET", &other, Some(&app_jwt), None).await.0, 403);
    assert_eq!(api.call("GET", &other, Some(&acct_jwt), None).await.0, 200);

    // A custom integration key (JWT scope integration) reaches data but not app administration.
    let (_, i) = api
        .call("POST", &format!("{app}/integrations"), Some(&app_jwt), Some(json!({"type":"custom","webhooks":[{"target":"http://127.0.0.1:9/","triggers":["*"]}]})))
        .await;
    let iid = i["integration"]["id"].as_str().unwrap();
    let (_, k) = api
        .call(
            "POST",
            &format!("{app}/integrations/{iid}/keys"),
            Some(&app_jwt),
            Some(json!({"displayName":"int"})),
        )
        .await;
    let int_jwt = bearer(
        k["key"]["id"].as_str().unwrap(),
        k["key"]["secret"].as_str().unwrap(),
        Scope::Integration,
        None,
    );
    assert_eq!(
        api.call(
            "POST",
            &format!("{app}/users"),
            Some(&int_jwt),
            Some(json!({}))
        )
        .await
        .0,
        201
    );
    assert_eq!(
        api.call("GET", &format!("{app}/keys"), Some(&int_jwt), None)
            .await
            .0,
        403
    );
    // GetApp takes app and account credentials only.
    assert_eq!(api.call("GET", &app, Some(&int_jwt), None).await.0, 403);
    assert_eq!(
        api.call(
            "GET",
            &format!("{app}/integrations/{iid}/webhooks"),
            Some(&int_jwt),
            None
        )
        .await
        .0,
        200
    );
}

#[tokio::test]
async fn chat_oauth_issues_agent_tokens() {
    let agents: sun::ChatAgents = Arc::new(|| {
        vec![
            ("Bot".into(), "bot-token".into()),
            ("Alice".into(), "alice-token".into()),
        ]
    });
    let server = SunshineServer::start(SunshineConfig::default().chat_agents(agents))
        .await
        .unwrap();
    let api = Api::new(server.base_url());
    let form = |s: &str| Bytes::from(s.to_owned());
    let ct = "application/x-www-form-urlencoded";
    let creds = format!(
        "client_id={}&client_secret={}",
        sun::CHAT_OAUTH_CLIENT_ID,
        sun::CHAT_OAUTH_CLIENT_SECRET
    );

    let (st, v) = api
        .raw(
            "POST",
            "/oauth2/token",
            None,
            ct,
            form(&format!("grant_type=client_credentials&{creds}")),
        )
        .await;
    assert_eq!((st, v["access_token"].as_str()), (200, Some("bot-token")));
    let (st, v) = api
        .raw(
            "POST",
            "/oauth2/token",
            None,
            ct,
            form("grant_type=client_credentials&client_id=zd-emulator&client_secret=wrong"),
        )
        .await;
    assert_eq!((st, v["error"].as_str()), (401, Some("invalid_client")));

    let (st, v) = api
        .raw(
            "POST",
            "/oauth2/token",
            None,
            ct,
            form(&format!(
                "grant_type=password&client_id=zd-emulator&username=alice&password={}",
                sun::CHAT_AGENT_PASSWORD
            )),
        )
        .await;
    assert_eq!((st, v["access_token"].as_str()), (200, Some("alice-token")));
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();
    let (st, v) = api
        .raw(
            "POST",
            "/oauth2/token",
            None,
            ct,
            form(&format!(
                "grant_type=refresh_token&client_id=zd-emulator&refresh_token={refresh}"
            )),
        )
        .await;
    assert_eq!((st, v["access_token"].as_str()), (200, Some("alice-token")));
    // Refresh tokens rotate.
    let (st, v) = api
        .raw(
            "POST",
            "/oauth2/token",
            None,
            ct,
            form(&format!(
                "grant_type=refresh_token&client_id=zd-emulator&refresh_token={refresh}"
            )),
        )
        .await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_grant")));

    let (st, v) = api.call("GET", "/oauth2/authorizations/new?response_type=code&client_id=zd-emulator&redirect_uri=http://localhost/cb&state=xyz&agent=Alice", None, None).await;
    assert_eq!(st, 302, "{v}");
    let res = api
        .client
        .request(
            http::Request::get(format!("{}/oauth2/authorizations/new?response_type=code&client_id=zd-emulator&redirect_uri=http://localhost/cb&state=xyz", api.base))
                .body(http_body_util::Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("http://localhost/cb?code="),
        "{location}"
    );
    assert!(location.ends_with("&state=xyz"));
    let code = location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    // The exchange names the redirect URI the code was issued for (RFC 6749 section 4.1.3):
    // another, or none, is refused, and spends the code.
    for other in ["&redirect_uri=http://localhost/other", ""] {
        let code = chat_code(&api).await;
        let (st, v) = api
            .raw(
                "POST",
                "/oauth2/token",
                None,
                ct,
                form(&format!(
                    "grant_type=authorization_code&code={code}&{creds}{other}"
                )),
            )
            .await;
        assert_eq!(
            (st, v["error"].as_str()),
            (400, Some("invalid_grant")),
            "{other}"
        );
        let (st, _) = api
            .raw(
                "POST",
                "/oauth2/token",
                None,
                ct,
                form(&format!(
                    "grant_type=authorization_code&code={code}&{creds}&redirect_uri=http://localhost/cb"
                )),
            )
            .await;
        assert_eq!(st, 400, "{other}: the code was spent");
    }
    let (st, v) = api
        .raw(
            "POST",
            "/oauth2/token",
            None,
            ct,
            form(&format!(
                "grant_type=authorization_code&code={code}&{creds}&redirect_uri=http://localhost/cb"
            )),
        )
        .await;
    assert_eq!((st, v["access_token"].as_str()), (200, Some("bot-token")));
    assert!(v["refresh_token"].is_string());
    let (st, _) = api
        .raw(
            "POST",
            "/oauth2/token",
            None,
            ct,
            form(&format!(
                "grant_type=authorization_code&code={code}&{creds}"
            )),
        )
        .await;
    assert_eq!(st, 400, "a code is spent once");
    let (st, v) = api
        .raw("POST", "/oauth2/token", None, ct, form("grant_type=magic"))
        .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

/// Codes and refresh tokens stand for a grant, not for one access token: each hand-out asks
/// the issuer afresh (so a refresh never returns a token the issuer has dropped), and a
/// request refused for a bad password or response type issues nothing.
#[tokio::test]
async fn chat_tokens_are_issued_only_when_handed_out() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let issued = Arc::new(AtomicUsize::new(0));
    let counter = issued.clone();
    let agents: sun::ChatAgents = Arc::new(|| vec![("Bot".into(), "bot-token".into())]);
    let issuer: sun::ChatTokenIssuer = Arc::new(move |own, scopes| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        Some(format!("{own}/{scopes}/{n}"))
    });
    let config = SunshineConfig::default()
        .chat_agents(agents)
        .chat_token_issuer(issuer);
    let server = SunshineServer::start(config).await.unwrap();
    let api = Api::new(server.base_url());
    let ct = "application/x-www-form-urlencoded";
    let token = |form: String| {
        let api = &api;
        async move {
            api.raw("POST", "/oauth2/token", None, ct, Bytes::from(form))
                .await
        }
    };

    let (st, v) = token(format!(
        "grant_type=password&client_id={}&username=Bot&password=wrong&scope=read",
        sun::CHAT_OAUTH_CLIENT_ID
    ))
    .await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_grant")));
    let (st, _) = api
        .call("GET", "/oauth2/authorizations/new?response_type=magic&client_id=zd-emulator&redirect_uri=http://localhost/cb&scope=read", None, None)
        .await;
    assert_eq!(st, 400);
    assert_eq!(issued.load(Ordering::SeqCst), 0);

    let (st, v) = token(format!(
        "grant_type=password&client_id={}&username=Bot&password={}&scope=read",
        sun::CHAT_OAUTH_CLIENT_ID,
        sun::CHAT_AGENT_PASSWORD
    ))
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["access_token"], "bot-token/read/1");
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();
    let (st, v) = token(format!(
        "grant_type=refresh_token&client_id={}&refresh_token={refresh}",
        sun::CHAT_OAUTH_CLIENT_ID
    ))
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["access_token"], "bot-token/read/2");
    assert_eq!(v["scope"], "read");
}

/// The bridge's `/oauth/authorize` takes `redirect_uri` as optional: "If this option is not
/// passed, the first URI present in the list will be used". The code it hands back there
/// exchanges for a token as usual.
#[tokio::test]
async fn bridge_authorize_without_redirect_uri_goes_to_the_first_configured_uri() {
    let server = SunshineServer::start(SunshineConfig::default())
        .await
        .unwrap();
    let api = Api::new(server.base_url());
    let res = api
        .client
        .request(
            http::Request::get(format!(
                "{}/oauth/authorize?response_type=code&client_id={}&state=s1",
                api.base,
                sun::BRIDGE_CLIENT_ID
            ))
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let query = location
        .strip_prefix(&format!("{}?", sun::BRIDGE_REDIRECT_URI))
        .unwrap_or_else(|| panic!("{location} is not the configured redirect URI"));
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
    assert_eq!(pairs[1], ("state".to_owned(), "s1".to_owned()));
    let code = &pairs[0].1;

    let (st, token) = api
        .call(
            "POST",
            "/oauth/token",
            None,
            Some(json!({
                "code": code,
                "grant_type": "authorization_code",
                "client_id": sun::BRIDGE_CLIENT_ID,
                "client_secret": sun::BRIDGE_CLIENT_SECRET,
            })),
        )
        .await;
    assert_eq!(st, 200, "{token}");
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let (st, info) = api.call("GET", "/v2/tokenInfo", Some(&bearer), None).await;
    assert_eq!((st, &info["app"]["id"]), (200, &json!(sun::DEMO_APP_ID)));
    // The token is the integration's: its app is told by GetTokenInfo, not GetApp.
    let app = format!("/v2/apps/{}", sun::DEMO_APP_ID);
    let (st, v) = api.call("GET", &app, Some(&bearer), None).await;
    assert_eq!((st, &v["errors"][0]["code"]), (403, &json!("forbidden")));
}

/// Both authorize endpoints approve at once, so they send the browser back only to a redirect
/// URI the client is configured with ("This URI must be contained in the list configured by
/// your integration"): another gets a 400 and no `Location`, never a code or a token.
#[tokio::test]
async fn authorize_refuses_a_redirect_uri_the_client_is_not_configured_with() {
    let agents: sun::ChatAgents = Arc::new(|| vec![("Bot".into(), "bot-token".into())]);
    let config = SunshineConfig::default()
        .chat_agents(agents)
        .allow_redirect_uri("https://app.example/cb");
    let server = SunshineServer::start(config).await.unwrap();
    let api = Api::new(server.base_url());
    let get = |path: String| {
        let api = api.clone();
        async move {
            let res = api
                .client
                .request(
                    http::Request::get(format!("{}{path}", api.base))
                        .body(http_body_util::Full::new(Bytes::new()))
                        .unwrap(),
                )
                .await
                .unwrap();
            let location = res
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            (res.status().as_u16(), location)
        }
    };
    let chat = |redirect: &str, kind: &str| {
        format!(
            "/oauth2/authorizations/new?client_id={}&response_type={kind}&redirect_uri={}",
            sun::CHAT_OAUTH_CLIENT_ID,
            urlencode(redirect)
        )
    };
    let bridge = |redirect: &str| {
        format!(
            "/oauth/authorize?client_id={}&response_type=code&redirect_uri={}",
            sun::BRIDGE_CLIENT_ID,
            urlencode(redirect)
        )
    };
    for evil in [
        "https://evil.example/",
        "http://localhost@evil.example/",
        "http://localhost/cb#x",
    ] {
        for path in [chat(evil, "token"), chat(evil, "code"), bridge(evil)] {
            assert_eq!(get(path.clone()).await, (400, None), "{path}");
        }
    }
    // Loopback hosts take any port (RFC 8252), and the configured URI is taken as written.
    for good in ["http://127.0.0.1:8765/cb", "https://app.example/cb"] {
        for path in [chat(good, "token"), bridge(good)] {
            let (status, location) = get(path.clone()).await;
            assert_eq!(status, 302, "{path}");
            assert!(location.unwrap().starts_with(good), "{path}");
        }
    }
}

/// A Chat authorization code, issued for `http://localhost/cb`.
async fn chat_code(api: &Api) -> String {
    let res = api
        .client
        .request(
            http::Request::get(format!("{}/oauth2/authorizations/new?response_type=code&client_id=zd-emulator&redirect_uri=http://localhost/cb&state=xyz", api.base))
                .body(http_body_util::Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let location = res.headers()["location"].to_str().unwrap();
    let query = location.split("code=").nth(1).unwrap();
    query.split('&').next().unwrap().to_owned()
}

fn urlencode(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)]).unwrap()[2..].to_owned()
}

/// A bridge token for the demo app, by authorize and code exchange.
async fn bridge_token(api: &Api) -> String {
    let path = format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri=http://localhost/cb",
        sun::BRIDGE_CLIENT_ID
    );
    let (st, found) = api.call("GET", &path, None, None).await;
    assert_eq!(st, 302, "{found}");
    let found = found.as_str().unwrap();
    let code = found.split("code=").nth(1).unwrap();
    let (st, token) = api
        .call(
            "POST",
            "/oauth/token",
            None,
            Some(json!({
                "code": code,
                "grant_type": "authorization_code",
                "client_id": sun::BRIDGE_CLIENT_ID,
                "client_secret": sun::BRIDGE_CLIENT_SECRET,
            })),
        )
        .await;
    assert_eq!(st, 200, "{token}");
    token["access_token"].as_str().unwrap().to_owned()
}

/// RevokeAccess takes the spec's `basicAuth` or `bearerAuth` of `integration` scope, and an
/// auth scheme's name is case-insensitive (RFC 7235) there as on every route.
#[tokio::test]
async fn revoke_access_takes_either_scheme_of_integration_scope_in_any_case() {
    let server = SunshineServer::start(SunshineConfig::default())
        .await
        .unwrap();
    let api = Api::new(server.base_url());
    let app_key = basic(sun::DEMO_APP_KEY_ID, sun::DEMO_APP_KEY_SECRET);
    let revoke = |auth: String| {
        let api = api.clone();
        async move {
            api.call("DELETE", "/oauth/authorization", Some(&auth), None)
                .await
                .0
        }
    };

    let token = bridge_token(&api).await;
    let (st, v) = api
        .call(
            "GET",
            "/v2/tokenInfo",
            Some(&format!("bearer {token}")),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(revoke(format!("BEARER {token}")).await, 200);
    assert_eq!(revoke(format!("Bearer {token}")).await, 401);

    // A custom integration's own key, in Basic.
    let app = format!("/v2/apps/{}", sun::DEMO_APP_ID);
    let (st, v) = api
        .call(
            "POST",
            &format!("{app}/integrations"),
            Some(&app_key),
            Some(json!({"type": "custom", "displayName": "Bot", "webhooks": [{"target": "http://127.0.0.1:9/", "triggers": ["conversation:message"]}]})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let integration = v["integration"]["id"].as_str().unwrap().to_owned();
    let (st, key) = api
        .call(
            "POST",
            &format!("{app}/integrations/{integration}/keys"),
            Some(&app_key),
            Some(json!({"displayName": "k"})),
        )
        .await;
    assert_eq!(st, 201, "{key}");
    let int_key = basic(
        key["key"]["id"].as_str().unwrap(),
        key["key"]["secret"].as_str().unwrap(),
    );
    // App credentials have no integration scope.
    assert_eq!(revoke(app_key.clone()).await, 403);
    assert_eq!(revoke(int_key.replacen("Basic", "basic", 1)).await, 200);
    let (st, _) = api
        .call(
            "GET",
            &format!("{app}/integrations/{integration}"),
            Some(&app_key),
            None,
        )
        .await;
    assert_eq!(st, 404);
    assert_eq!(revoke(int_key).await, 401);
}

/// The Chat OAuth token endpoint reads client credentials from `Basic` in any case.
#[tokio::test]
async fn chat_token_client_credentials_take_basic_in_any_case() {
    let agents: sun::ChatAgents = Arc::new(|| vec![("Bot".into(), "bot-token".into())]);
    let server = SunshineServer::start(SunshineConfig::default().chat_agents(agents))
        .await
        .unwrap();
    let api = Api::new(server.base_url());
    let creds = basic(sun::CHAT_OAUTH_CLIENT_ID, sun::CHAT_OAUTH_CLIENT_SECRET)
        .replacen("Basic", "basic", 1);
    let (st, v) = api
        .raw(
            "POST",
            "/oauth2/token",
            Some(&creds),
            "application/x-www-form-urlencoded",
            Bytes::from_static(b"grant_type=client_credentials"),
        )
        .await;
    assert_eq!((st, &v["access_token"]), (200, &json!("bot-token")), "{v}");
}

/// RevokeAccess is documented only as 200, "equivalent to the user removing your integration
/// manually": a switchboard integration naming the integration does not keep it, as it does
/// on DeleteIntegration (400).
#[tokio::test]
async fn revoke_access_removes_an_integration_a_switchboard_names() {
    let server = SunshineServer::start(SunshineConfig::default())
        .await
        .unwrap();
    let api = Api::new(server.base_url());
    let account = basic(sun::DEMO_ACCOUNT_KEY_ID, sun::DEMO_ACCOUNT_KEY_SECRET);
    let call =
        |method: &'static str, path: String, auth: String, body: Option<serde_json::Value>| {
            let api = api.clone();
            async move { api.call(method, &path, Some(&auth), body).await }
        };
    let (st, v) = call(
        "POST",
        "/v2/apps".into(),
        account.clone(),
        Some(json!({"displayName": "Switched"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let app = format!("/v2/apps/{}", v["app"]["id"].as_str().unwrap());
    let mut integrations = Vec::new();
    for name in ["Bot", "Other"] {
        let hook = json!({"target": "http://127.0.0.1:9/", "triggers": ["conversation:message"]});
        let body = json!({"type": "custom", "displayName": name, "webhooks": [hook]});
        let (st, v) = call(
            "POST",
            format!("{app}/integrations"),
            account.clone(),
            Some(body),
        )
        .await;
        assert_eq!(st, 201, "{v}");
        integrations.push(v["integration"]["id"].as_str().unwrap().to_owned());
    }
    let (st, sb) = call("POST", format!("{app}/switchboards"), account.clone(), None).await;
    assert_eq!(st, 201, "{sb}");
    let sbis = format!(
        "{app}/switchboards/{}/switchboardIntegrations",
        sb["switchboard"]["id"].as_str().unwrap()
    );
    for (name, integration) in ["bot", "other"].into_iter().zip(&integrations) {
        let body = json!({"name": name, "integrationId": integration});
        let (st, v) = call("POST", sbis.clone(), account.clone(), Some(body)).await;
        assert_eq!(st, 201, "{v}");
    }
    let (bot, other) = (&integrations[0], &integrations[1]);
    // DeleteIntegration keeps its rule.
    let (st, v) = call(
        "DELETE",
        format!("{app}/integrations/{other}"),
        account.clone(),
        None,
    )
    .await;
    assert_eq!(st, 400, "{v}");

    let (st, key) = call(
        "POST",
        format!("{app}/integrations/{bot}/keys"),
        account.clone(),
        Some(json!({"displayName": "k"})),
    )
    .await;
    assert_eq!(st, 201, "{key}");
    let bot_key = basic(
        key["key"]["id"].as_str().unwrap(),
        key["key"]["secret"].as_str().unwrap(),
    );
    let (st, v) = call(
        "DELETE",
        "/oauth/authorization".into(),
        bot_key.clone(),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = call(
        "GET",
        format!("{app}/integrations/{bot}"),
        account.clone(),
        None,
    )
    .await;
    assert_eq!(st, 404, "{v}");
    let (st, v) = call("DELETE", "/oauth/authorization".into(), bot_key, None).await;
    assert_eq!(st, 401, "{v}");
    let (st, v) = call("GET", format!("{app}/integrations/{other}"), account, None).await;
    assert_eq!(st, 200, "{v}");
}
