//! `zd auth jwt | oauth-url | chat-token`.

use predicates::str::contains;
use zd_auth::sunshine::{ApiKey, Scope, Verifier};

use crate::support::{stdout, write_config, zd};

/// `zd auth jwt` with an app key on the command line.
const JWT_WITH_KEY: [&str; 6] = [
    "auth",
    "jwt",
    "--key-id",
    "app_5963ceb97cde542d000dbdb1",
    "--key-secret",
    "s3cr3t",
];

#[test]
fn jwt_is_signed_with_the_key_id() {
    let dir = tempfile::tempdir().unwrap();
    let out = zd(dir.path()).args(JWT_WITH_KEY).output().unwrap();
    assert!(out.status.success());
    let jwt = stdout(&out);
    let jwt = jwt.trim();
    assert!(!jwt.contains("s3cr3t"));
    // The header names the key and the algorithm.
    let header = base64url(jwt.split('.').next().unwrap());
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    assert_eq!(header["kid"], "app_5963ceb97cde542d000dbdb1", "{header}");
    assert_eq!(header["alg"], "HS256", "{header}");
    // And the key's secret signed it, for the app.
    let verifier = Verifier::new(key());
    let verified = verifier.verify_scope(jwt, Scope::App).unwrap();
    assert_eq!(verified.key_id, "app_5963ceb97cde542d000dbdb1");
    // The same key from the environment, for a user.
    let out = zd(dir.path())
        .env("SUNSHINE_KEY_ID", "app_5963ceb97cde542d000dbdb1")
        .env("SUNSHINE_KEY_SECRET", "s3cr3t")
        .args(["auth", "jwt", "--scope", "user", "--external-id", "user-1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let verified = verifier
        .verify_scope(stdout(&out).trim(), Scope::User)
        .unwrap();
    assert_eq!(verified.user.unwrap().external_id, "user-1");
}

/// The key of [`JWT_WITH_KEY`].
fn key() -> ApiKey {
    ApiKey::new("app_5963ceb97cde542d000dbdb1", "s3cr3t").unwrap()
}

/// Decodes unpadded base64url, as a JWT's parts are encoded.
fn base64url(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c).unwrap();
        acc = (acc << 6) | u32::try_from(value).unwrap();
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push(u8::try_from((acc >> bits) & 0xff).unwrap());
        }
    }
    bytes
}

#[test]
fn jwt_scope_mismatch_and_missing_key_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    zd(dir.path())
        .args([
            "auth",
            "jwt",
            "--key-id",
            "app_abc",
            "--key-secret",
            "s",
            "--scope",
            "account",
        ])
        .assert()
        .code(2)
        .stderr(contains("cannot sign the JWT"));
    zd(dir.path())
        .args(["auth", "jwt"])
        .assert()
        .code(3)
        .stderr(contains("SUNSHINE_KEY_ID"));
    zd(dir.path())
        .args([
            "auth",
            "jwt",
            "--key-id",
            "app_abc",
            "--key-secret",
            "s",
            "--scope",
            "user",
        ])
        .assert()
        .code(2)
        .stderr(contains("--scope user needs --external-id"));
    // An external id with another scope would be dropped from the token asked for.
    zd(dir.path())
        .args(JWT_WITH_KEY)
        .args(["--external-id", "user-1"])
        .assert()
        .code(2)
        .stderr(contains("--external-id goes with --scope user only"));
    // A usage error is one before any key is looked for.
    zd(dir.path())
        .args(["auth", "jwt", "--scope", "user"])
        .env_remove("SUNSHINE_KEY_ID")
        .env_remove("SUNSHINE_KEY_SECRET")
        .assert()
        .code(2)
        .stderr(contains("--scope user needs --external-id"));
    zd(dir.path())
        .args(["auth", "jwt", "--scope", "user", "--external-id", ""])
        .env_remove("SUNSHINE_KEY_ID")
        .env_remove("SUNSHINE_KEY_SECRET")
        .assert()
        .code(2)
        .stderr(contains("invalid --external-id"));
}

#[test]
fn oauth_url_has_the_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let out = zd(dir.path())
        .args([
            "auth",
            "oauth-url",
            "--client-id",
            "my-client",
            "--redirect-uri",
            "https://example.com/cb",
            "--state",
            "xyz",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let url = stdout(&out);
    for part in [
        "response_type=code",
        "client_id=my-client",
        "state=xyz",
        "redirect_uri=https%3A%2F%2Fexample.com%2Fcb",
    ] {
        assert!(url.contains(part), "{part} missing from {url}");
    }
    let implicit = zd(dir.path())
        .args([
            "auth",
            "oauth-url",
            "--client-id",
            "c",
            "--redirect-uri",
            "https://e.com/",
            "--implicit",
        ])
        .output()
        .unwrap();
    assert!(stdout(&implicit).contains("response_type=token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_token_from_the_emulator_starts_a_session() {
    let emu = zd_emulator::Emulator::builder().start().await.unwrap();
    let account = serde_json::to_value(emu.account()).unwrap();
    let client_id = account["sunshine"]["chat_oauth_client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client_secret = account["sunshine"]["chat_oauth_client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = zd(dir.path());
    cmd.args([
        "auth",
        "chat-token",
        "--client-id",
        &client_id,
        "--client-secret",
        &client_secret,
    ])
    .args([
        "--username",
        "Bot",
        "--password",
        "demo-agent-password",
        "--oauth-url",
        emu.base_url(),
    ]);
    let out = crate::support::output(cmd).await;
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    let token: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let access = token["access_token"].as_str().unwrap().to_owned();
    assert!(!access.is_empty());
    // The token works for an agent session.
    let mut cmd = zd(dir.path());
    cmd.args([
        "--emulator",
        emu.base_url(),
        "agent",
        "departments",
        "--token",
        &access,
    ]);
    let out = crate::support::output(cmd).await;
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    assert!(stdout(&out).contains("Support"));
    // A token without the chat scope is refused by the Conversations API, and zd says so.
    let mut cmd = zd(dir.path());
    cmd.args(["auth", "chat-token", "--client-id", &client_id])
        .args(["--client-secret", &client_secret])
        .args(["--username", "Bot", "--password", "demo-agent-password"])
        .args(["--scope", "read", "--oauth-url", emu.base_url()]);
    let out = crate::support::output(cmd).await;
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    let token: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(token["scope"], "read");
    let mut cmd = zd(dir.path());
    cmd.args(["--emulator", emu.base_url(), "agent", "departments"])
        .args(["--token", token["access_token"].as_str().unwrap()]);
    let out = crate::support::output(cmd).await;
    let stderr = crate::support::stderr(&out);
    // The service refused the credentials: exit 4, as for UNAUTHORIZED.
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("FORBIDDEN") && stderr.contains("chat scope"),
        "{stderr}"
    );
    // A wrong secret is an auth failure.
    let mut cmd = zd(dir.path());
    cmd.args([
        "auth",
        "chat-token",
        "--client-id",
        &client_id,
        "--client-secret",
        "wrong",
        "--oauth-url",
        emu.base_url(),
    ]);
    let out = crate::support::output(cmd).await;
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        crate::support::stderr(&out)
    );
}

#[test]
fn jwt_takes_the_key_from_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "[profiles.default]\nsunshine_key_id = \"app_5963ceb97cde542d000dbdb1\"\nsunshine_key_secret = \"s3cr3t\"\n",
    );
    let out = zd(dir.path()).args(["auth", "jwt"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out).trim().split('.').count(), 3);
}

#[test]
fn commands_that_read_no_profile_run_beside_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "[profiles.work\n");
    zd(dir.path())
        .env("ZD_PROFILE", "nope")
        .args(JWT_WITH_KEY)
        .assert()
        .success();
    // A command that reads the profile still says what is wrong with it.
    zd(dir.path())
        .args(["auth", "jwt"])
        .assert()
        .code(3)
        .stderr(contains("config"));
}

#[test]
fn a_key_is_never_half_from_one_place_and_half_from_another() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "[profiles.default]\nsunshine_key_id = \"app_5963ceb97cde542d000dbdb1\"\nsunshine_key_secret = \"s3cr3t\"\n",
    );
    // The id of another key in the environment: paired with the profile's secret it would
    // sign a token the service refuses.
    zd(dir.path())
        .env("SUNSHINE_KEY_ID", "app_other")
        .args(["auth", "jwt"])
        .assert()
        .code(3)
        .stderr(contains("missing --key-secret or SUNSHINE_KEY_SECRET"));
    zd(dir.path())
        .env("SUNSHINE_KEY_SECRET", "other")
        .args(["auth", "jwt"])
        .assert()
        .code(3)
        .stderr(contains("missing --key-id or SUNSHINE_KEY_ID"));
    // A profile with half a key says which half is missing.
    write_config(
        dir.path(),
        "[profiles.default]\nsunshine_key_id = \"app_5963ceb97cde542d000dbdb1\"\n",
    );
    zd(dir.path())
        .args(["auth", "jwt"])
        .assert()
        .code(3)
        .stderr(contains("missing the profile's sunshine_key_secret"));
    // A whole key given on the command line and in the environment goes together.
    let out = zd(dir.path())
        .env("SUNSHINE_KEY_SECRET", "s3cr3t")
        .args(["auth", "jwt", "--key-id", "app_5963ceb97cde542d000dbdb1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    Verifier::new(key())
        .verify_scope(stdout(&out).trim(), Scope::App)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_token_refuses_a_flag_its_grant_would_ignore() {
    // --password without --username went unused (client_credentials), as did --redirect-uri
    // without --code: the token would be of another grant than asked for. A code without its
    // redirect URI is as incomplete.
    for (flags, names) in [
        (["--password", "p"], "--username"),
        (["--redirect-uri", "https://example.com/cb"], "--code"),
        (["--code", "abc"], "--redirect-uri"),
    ] {
        let mut args = vec![
            "auth",
            "chat-token",
            "--client-id",
            "c",
            "--client-secret",
            "s",
            "--oauth-url",
            "{url}",
        ];
        args.extend(flags);
        crate::support::usage_error_without_connecting("", &args, &[names]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_token_takes_the_password_from_the_environment() {
    let emu = zd_emulator::Emulator::builder().start().await.unwrap();
    let account = serde_json::to_value(emu.account()).unwrap();
    let client_id = account["sunshine"]["chat_oauth_client_id"]
        .as_str()
        .unwrap();
    let client_secret = account["sunshine"]["chat_oauth_client_secret"]
        .as_str()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let chat_token = |extra: &[&str]| {
        let mut cmd = zd(dir.path());
        cmd.env("ZENDESK_CHAT_PASSWORD", "demo-agent-password")
            .args(["auth", "chat-token", "--client-id", client_id])
            .args([
                "--client-secret",
                client_secret,
                "--oauth-url",
                emu.base_url(),
            ])
            .args(extra);
        cmd
    };
    // The password grant, with the password from the environment.
    let out = crate::support::output(chat_token(&["--username", "Bot"])).await;
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    let token: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(!token["access_token"].as_str().unwrap().is_empty());
    // A password exported for that grant does not stop another one.
    let out = crate::support::output(chat_token(&[])).await;
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
}

/// A token endpoint that refuses with a 401 and no OAuth error body (a gateway's page) refuses
/// the credentials all the same: exit 4, with what it answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_401_without_an_oauth_body_exits_4_with_the_answer() {
    let base = crate::support::fake_service(|_| (401, "<h1>gateway says no</h1>".to_owned()));
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = zd(dir.path());
    cmd.args(["auth", "chat-token", "--client-id", "client"])
        .args(["--client-secret", "s3cr3t", "--oauth-url", &base]);
    let out = crate::support::output(cmd).await;
    let err = crate::support::stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("gateway says no"), "{err}");
}
