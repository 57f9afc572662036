//! `zd auth jwt | oauth-url | chat-token`.

use predicates::str::contains;

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
    let parts: Vec<&str> = jwt.trim().split('.').collect();
    assert_eq!(parts.len(), 3);
    // The header names the key.
    let header = parts[0];
    assert!(!header.is_empty());
    assert!(!jwt.contains("s3cr3t"));
    // The same key from the environment, for a user.
    zd(dir.path())
        .env("SUNSHINE_KEY_ID", "app_5963ceb97cde542d000dbdb1")
        .env("SUNSHINE_KEY_SECRET", "s3cr3t")
        .args(["auth", "jwt", "--scope", "user", "--external-id", "user-1"])
        .assert()
        .success();
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
        .code(3)
        .stderr(contains("--external-id"));
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
    assert!(!out.status.success());
    let stderr = crate::support::stderr(&out);
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
