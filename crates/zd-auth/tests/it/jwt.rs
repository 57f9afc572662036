//! JWT shapes (snapshots, iat/exp redacted) and verification failures.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use zd_auth::sunshine::{ApiKey, JwtCredentials, Scope, UserJwt, Verifier, sign_jwt};
use zd_auth::{Credentials, ErrorKind, Secret};

fn key(id: &str) -> ApiKey {
    ApiKey::new(id, format!("secret-of-{id}")).unwrap()
}

/// The header and claims of a JWT, decoded without checking anything.
fn parts(jwt: &Secret) -> Value {
    let mut segments = jwt.expose_secret().split('.');
    let mut decode = || -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segments.next().unwrap()).unwrap()).unwrap()
    };
    let header = decode();
    let claims = decode();
    json!({ "header": header, "claims": claims })
}

macro_rules! snapshot {
    ($name:expr, $jwt:expr) => {
        insta::assert_json_snapshot!($name, parts(&$jwt), {
            ".claims.iat" => "[iat]",
            ".claims.exp" => "[exp]",
        });
    };
}

/// Signs arbitrary header/claims, for tokens our API refuses to make.
fn forge(kid: Option<&str>, alg: Algorithm, secret: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn in_secs(secs: u64) -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + secs
}

#[tokio::test]
async fn shapes() {
    snapshot!(
        "jwt_app",
        sign_jwt(&key("app_1"), Scope::App, None).unwrap()
    );
    snapshot!(
        "jwt_account_act",
        sign_jwt(&key("act_1"), Scope::Account, None).unwrap()
    );
    snapshot!(
        "jwt_account_svc",
        sign_jwt(&key("svc_1"), Scope::Account, None).unwrap()
    );
    snapshot!(
        "jwt_integration",
        sign_jwt(&key("int_1"), Scope::Integration, None).unwrap()
    );
    let creds = JwtCredentials::new(&key("app_1"), Scope::App)
        .unwrap()
        .with_expiry(Duration::from_secs(600))
        .unwrap();
    let header = creds.authorization().await.unwrap();
    let jwt = Secret::new(header.expose_secret().strip_prefix("Bearer ").unwrap());
    let claims = &parts(&jwt)["claims"];
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        600
    );
    snapshot!("jwt_app_with_exp", jwt);
    snapshot!(
        "jwt_user_minimal",
        UserJwt::new("customer-42")
            .unwrap()
            .sign(&key("app_1"))
            .unwrap()
    );
    snapshot!(
        "jwt_user_full",
        UserJwt::new("customer-42")
            .unwrap()
            .name("Ada Lovelace")
            .email("ada@example.org")
            .email_verified(false)
            .expires_at(SystemTime::now() + Duration::from_secs(60))
            .sign(&key("app_1"))
            .unwrap()
    );
}

#[test]
fn everything_we_sign_verifies() {
    let keys = vec![key("app_1"), key("act_1"), key("svc_1"), key("int_1")];
    let verifier = Verifier::new(keys.clone());
    for (k, scope) in [
        (&keys[0], Scope::App),
        (&keys[1], Scope::Account),
        (&keys[2], Scope::Account),
        (&keys[3], Scope::Integration),
    ] {
        let jwt = sign_jwt(k, scope, Some(SystemTime::now() + Duration::from_secs(60))).unwrap();
        let v = verifier.verify_scope(jwt.expose_secret(), scope).unwrap();
        assert_eq!((v.key_id.as_str(), v.scope), (k.id(), scope));
        assert!(v.expires_at.is_some() && v.issued_at.is_some() && v.user.is_none());
    }
    let jwt = UserJwt::new("u-1")
        .unwrap()
        .name("N")
        .email("e@x")
        .email_verified(true);
    let v = verifier
        .verify(jwt.sign(&keys[0]).unwrap().expose_secret())
        .unwrap();
    let user = v.user.unwrap();
    assert_eq!(
        (
            user.external_id.as_str(),
            user.name.as_deref(),
            user.email.as_deref(),
            user.email_verified
        ),
        ("u-1", Some("N"), Some("e@x"), Some(true))
    );
}

#[test]
fn oauth_bridge_style_tokens_verify() {
    // The shape of the spec's example bridge token: an app key's `kid` and the OAuth client
    // (`azp`) in the header; `integration` scope, `appId` and `iat` in the claims, no `exp`.
    let bridge = |azp: Option<&str>, claims: Value| {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("app_67a240ecc4997903584a3c48".to_owned());
        if let Some(azp) = azp {
            header.extras.insert("azp".to_owned(), azp.to_owned());
        }
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(b"secret-of-app_67a240ecc4997903584a3c48"),
        )
        .unwrap()
    };
    let verifier = Verifier::new(key("app_67a240ecc4997903584a3c48"));
    let claims =
        json!({"scope": "integration", "appId": "5698edbf2a43bd081be982f1", "iat": 1_738_686_701});
    let jwt = bridge(Some("shoplifter"), claims.clone());
    let v = verifier.verify(&jwt).unwrap();
    assert_eq!(v.scope, Scope::Integration);
    assert_eq!(v.key_id, "app_67a240ecc4997903584a3c48");
    assert_eq!(v.app_id.as_deref(), Some("5698edbf2a43bd081be982f1"));
    assert!(v.expires_at.is_none());
    assert_eq!(
        verifier
            .verify_scope(&jwt, Scope::Integration)
            .unwrap()
            .app_id
            .as_deref(),
        Some("5698edbf2a43bd081be982f1")
    );

    // An app key's `integration` token without what the bridge puts in is still refused.
    let kind = |jwt: &str| verifier.verify(jwt).unwrap_err().kind();
    assert_eq!(kind(&bridge(None, claims)), ErrorKind::JwtWrongScope);
    let no_app = json!({"scope": "integration", "iat": 1_738_686_701});
    assert_eq!(
        kind(&bridge(Some("shoplifter"), no_app)),
        ErrorKind::JwtWrongScope
    );
    let empty_app = json!({"scope": "integration", "appId": ""});
    assert_eq!(
        kind(&bridge(Some("shoplifter"), empty_app)),
        ErrorKind::JwtWrongScope
    );
    // ... and the bridge's extras do not widen an app key to `account`.
    let account = json!({"scope": "account", "appId": "5698edbf2a43bd081be982f1"});
    assert_eq!(
        kind(&bridge(Some("shoplifter"), account)),
        ErrorKind::JwtWrongScope
    );
    // Other scopes from an app key are unchanged.
    let app = bridge(Some("shoplifter"), json!({"scope": "app", "appId": "5d8c"}));
    assert_eq!(verifier.verify(&app).unwrap().scope, Scope::App);
}

#[test]
fn verification_failures_are_typed() {
    let verifier = Verifier::new(vec![key("app_1"), key("int_1")]).leeway(Duration::ZERO);
    let kind = |token: &str| verifier.verify(token).unwrap_err().kind();
    let s = "secret-of-app_1";

    // Expired (now, and with leeway at a chosen instant).
    let expired = sign_jwt(
        &key("app_1"),
        Scope::App,
        Some(SystemTime::now() - Duration::from_secs(5)),
    )
    .unwrap();
    assert_eq!(kind(expired.expose_secret()), ErrorKind::JwtExpired);
    let exp = SystemTime::now() + Duration::from_secs(100);
    let soon = sign_jwt(&key("app_1"), Scope::App, Some(exp)).unwrap();
    assert!(
        verifier
            .verify_at(soon.expose_secret(), exp - Duration::from_secs(1))
            .is_ok()
    );
    assert_eq!(
        verifier
            .verify_at(soon.expose_secret(), exp)
            .unwrap_err()
            .kind(),
        ErrorKind::JwtExpired
    );
    let lenient = Verifier::new(key("app_1")).leeway(Duration::from_secs(30));
    assert!(
        lenient
            .verify_at(soon.expose_secret(), exp + Duration::from_secs(10))
            .is_ok()
    );

    // Correctly signed times past what a clock can hold: typed errors, not panics.
    for claims in [
        json!({"scope":"app","exp":9_223_372_036_854_775_808_u64}),
        json!({"scope":"app","exp":u64::MAX}),
        json!({"scope":"app","iat":u64::MAX}),
    ] {
        let token = forge(Some("app_1"), Algorithm::HS256, s, &claims);
        assert_eq!(kind(&token), ErrorKind::JwtInvalidClaims, "{claims}");
        assert_eq!(
            lenient.verify(&token).unwrap_err().kind(),
            ErrorKind::JwtInvalidClaims,
            "{claims}"
        );
    }

    // An exp the clock can hold, but not with the leeway added: a deadline that never comes.
    let edge = forge(
        Some("app_1"),
        Algorithm::HS256,
        s,
        &json!({"scope":"app","exp":i64::MAX as u64 - 10}),
    );
    assert!(lenient.verify(&edge).is_ok());

    // Unknown and missing kid.
    assert_eq!(
        kind(
            sign_jwt(&key("app_2"), Scope::App, None)
                .unwrap()
                .expose_secret()
        ),
        ErrorKind::JwtUnknownKey
    );
    assert_eq!(
        kind(&forge(None, Algorithm::HS256, s, &json!({"scope":"app"}))),
        ErrorKind::JwtUnknownKey
    );

    // Signed with another secret under a known kid.
    assert_eq!(
        kind(&forge(
            Some("app_1"),
            Algorithm::HS256,
            "wrong",
            &json!({"scope":"app"})
        )),
        ErrorKind::JwtBadSignature
    );
    // Tampered claims.
    let good = sign_jwt(&key("app_1"), Scope::App, None).unwrap();
    let mut pieces: Vec<String> = good.expose_secret().split('.').map(str::to_owned).collect();
    pieces[1] = URL_SAFE_NO_PAD.encode(br#"{"scope":"app","iat":1}"#);
    assert_eq!(kind(&pieces.join(".")), ErrorKind::JwtBadSignature);

    // Scope: missing, unknown, not fitting the key, not the one expected.
    assert_eq!(
        kind(&forge(Some("app_1"), Algorithm::HS256, s, &json!({}))),
        ErrorKind::JwtWrongScope
    );
    assert_eq!(
        kind(&forge(
            Some("app_1"),
            Algorithm::HS256,
            s,
            &json!({"scope":"root"})
        )),
        ErrorKind::JwtWrongScope
    );
    assert_eq!(
        kind(&forge(
            Some("app_1"),
            Algorithm::HS256,
            s,
            &json!({"scope":"account"})
        )),
        ErrorKind::JwtWrongScope
    );
    assert_eq!(
        kind(&forge(
            Some("int_1"),
            Algorithm::HS256,
            "secret-of-int_1",
            &json!({"scope":"user","external_id":"u"})
        )),
        ErrorKind::JwtWrongScope
    );
    assert_eq!(
        verifier
            .verify_scope(good.expose_secret(), Scope::User)
            .unwrap_err()
            .kind(),
        ErrorKind::JwtWrongScope
    );

    // Claims of the wrong type.
    let user = |claims: Value| kind(&forge(Some("app_1"), Algorithm::HS256, s, &claims));
    let err = verifier
        .verify(&forge(
            Some("app_1"),
            Algorithm::HS256,
            s,
            &json!({"scope":"user","external_id":42}),
        ))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::JwtInvalidClaims);
    assert!(err.to_string().contains("external_id"));
    assert_eq!(user(json!({"scope":"user"})), ErrorKind::JwtInvalidClaims);
    assert_eq!(
        user(json!({"scope":"user","external_id":""})),
        ErrorKind::JwtInvalidClaims
    );
    assert_eq!(
        user(json!({"scope":"user","external_id":"x".repeat(256)})),
        ErrorKind::JwtInvalidClaims
    );
    assert_eq!(
        user(json!({"scope":"user","external_id":"u","email_verified":"yes"})),
        ErrorKind::JwtInvalidClaims
    );
    assert_eq!(
        user(json!({"scope":"app","exp":"tomorrow"})),
        ErrorKind::JwtInvalidClaims
    );
    assert_eq!(
        user(json!({"scope":"app","exp":-5})),
        ErrorKind::JwtInvalidClaims
    );
    assert!(
        verifier
            .verify(&forge(
                Some("app_1"),
                Algorithm::HS256,
                s,
                &json!({"scope":"app","exp":in_secs(60)})
            ))
            .is_ok()
    );

    // Not HS256, not a JWT.
    assert_eq!(
        kind(&forge(
            Some("app_1"),
            Algorithm::HS512,
            s,
            &json!({"scope":"app"})
        )),
        ErrorKind::JwtMalformed
    );
    assert_eq!(kind("not.a.jwt"), ErrorKind::JwtMalformed);
    assert_eq!(kind(""), ErrorKind::JwtMalformed);
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"app_1"}"#),
        URL_SAFE_NO_PAD.encode(br#"{"scope":"app"}"#)
    );
    assert_eq!(kind(&unsigned), ErrorKind::JwtMalformed);
}

#[test]
fn key_lookup_by_closure_and_map() {
    let jwt = sign_jwt(&key("app_1"), Scope::App, None).unwrap();
    let by_closure =
        Verifier::new(|kid: &str| (kid == "app_1").then(|| Secret::new("secret-of-app_1")));
    assert!(by_closure.verify(jwt.expose_secret()).is_ok());
    let mut map = std::collections::HashMap::new();
    map.insert("app_1".to_owned(), Secret::new("secret-of-app_1"));
    assert!(Verifier::new(map).verify(jwt.expose_secret()).is_ok());
}
