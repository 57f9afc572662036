//! `zd sunshine ...` against the emulator's Sunshine Conversations service.

use zd_emulator::Emulator;

use crate::support::{
    HANG_GUARD, fails_without_connecting, fake_service, json_lines, output, send_signal, stderr,
    usage_error_without_connecting, write_config, zd,
};

async fn run(base: &str, dir: &std::path::Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut cmd = zd(dir);
    cmd.args(["--emulator", base, "sunshine"]).args(args);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "zd sunshine {args:?}: {}",
        stderr(&out)
    );
    json_lines(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_users_conversations_messages_and_export() {
    let emu = Emulator::builder().start().await.unwrap();
    let base = emu.base_url().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let apps = run(&base, d, &["apps", "list", "--all"]).await;
    assert!(!apps.is_empty());
    let app_id = apps[0]["id"].as_str().unwrap().to_owned();
    let app = run(&base, d, &["apps", "get", &app_id]).await;
    assert_eq!(app[0]["app"]["id"], app_id.as_str());

    let user = run(
        &base,
        d,
        &["users", "create", "zd-cli-user", "--given-name", "Ada"],
    )
    .await;
    let user_id = user[0]["user"]["id"].as_str().unwrap().to_owned();
    let fetched = run(&base, d, &["users", "get", "zd-cli-user"]).await;
    assert_eq!(fetched[0]["user"]["id"], user_id.as_str());
    // The app flags go after the action as well as before it.
    let fetched = run(
        &base,
        d,
        &["users", "get", "zd-cli-user", "--app-id", &app_id],
    )
    .await;
    assert_eq!(fetched[0]["user"]["id"], user_id.as_str());
    let mut cmd = zd(d);
    cmd.args([
        "--emulator",
        &base,
        "sunshine",
        "users",
        "get",
        "zd-cli-user",
    ])
    .args(["--app-id", "app_nope"]);
    let out = output(cmd).await;
    // Used, not ignored: the key may not act for that app.
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("403"), "{err}");
    // Users are listed by email identity (a web user who signed in with one).
    let signed_in = end_user_with_email(&base, &app_id, "ada@example.org").await;
    let found = run(&base, d, &["users", "list", "--email", "ada@example.org"]).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"], signed_in.as_str());
    let none = run(
        &base,
        d,
        &["users", "list", "--email", "nobody@example.org"],
    )
    .await;
    assert!(none.is_empty(), "{none:?}");

    let conv = run(&base, d, &["conversations", "create", "--user", &user_id]).await;
    let conv_id = conv[0]["conversation"]["id"].as_str().unwrap().to_owned();
    let listed = run(
        &base,
        d,
        &["conversations", "list", "--user", &user_id, "--all"],
    )
    .await;
    assert!(listed.iter().any(|c| c["id"] == conv_id.as_str()));

    // A few through the command, the rest (past one page of 100) straight through the client.
    for i in 0..5 {
        run(
            &base,
            d,
            &["messages", "create", &conv_id, &format!("message {i}")],
        )
        .await;
    }
    post_messages(&emu, &conv_id, 5..130).await;
    // Message pages hold 100, so `--all` follows the cursor back once.
    let all = run(&base, d, &["messages", "list", &conv_id, "--all"]).await;
    let texts: Vec<&str> = all
        .iter()
        .filter_map(|m| m["content"]["text"].as_str())
        .collect();
    assert_eq!(texts.len(), 130, "{texts:?}");
    assert_eq!(
        (texts[0], texts[129]),
        ("message 0", "message 129"),
        "oldest first"
    );
    let newest = run(&base, d, &["messages", "list", &conv_id]).await;
    let texts: Vec<&str> = newest
        .iter()
        .filter_map(|m| m["content"]["text"].as_str())
        .collect();
    assert_eq!(texts.len(), 100);
    assert_eq!((texts[0], texts[99]), ("message 30", "message 129"));

    let file = d.join("conv.jsonl");
    run(
        &base,
        d,
        &["messages", "export", &conv_id, "-o", file.to_str().unwrap()],
    )
    .await;
    let exported = std::fs::read_to_string(&file).unwrap();
    assert_eq!(exported.lines().count(), 130);
    for line in exported.lines() {
        let m: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(m["id"].is_string());
    }
}

/// A web user of `app` whose identity is `email`, through the emulator's control API; its id.
async fn end_user_with_email(base: &str, app: &str, email: &str) -> String {
    use http_body_util::{BodyExt as _, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let body = serde_json::json!({ "identities": [{ "type": "email", "value": email }] });
    let request = hyper::Request::post(format!("{base}/_emulator/sunshine/apps/{app}/end-users"))
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(body.to_string())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 201);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let made: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    made["user"]["id"].as_str().unwrap().to_owned()
}

/// Posts `message {i}` for each `i` as the business, through zd-sunshine.
async fn post_messages(emu: &Emulator, conversation: &str, range: std::ops::Range<usize>) {
    use zd_auth::sunshine::{ApiKey, BasicAuth};
    use zd_sunshine::{Client, Region, models, operations};
    let acct = emu.account().sunshine;
    let key = ApiKey::new(acct.key_id.clone(), acct.key_secret.clone()).unwrap();
    let client = Client::new(
        Region::Custom(emu.base_url().to_owned()),
        BasicAuth::new(&key),
    )
    .unwrap();
    for i in range {
        let text = models::MessagePost::business_text(format!("message {i}"));
        operations::PostMessage::new(&acct.app_id, conversation, text)
            .send(&client)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sunshine_url_without_a_key_is_a_usage_error() {
    // Whatever listens there must not receive the emulator's keys.
    usage_error_without_connecting(
        "",
        &["sunshine", "apps", "--sunshine-url", "{url}", "list"],
        &["--sunshine-url", "SUNSHINE_KEY_ID"],
    )
    .await;
}

/// `zd sunshine NOUN ACTION` with a key, an app and `base` as the Sunshine URL.
fn with_key(dir: &std::path::Path, base: &str, noun: &str, action: &[&str]) -> assert_cmd::Command {
    let mut cmd = zd(dir);
    cmd.args(["sunshine", noun])
        .args(["--key-id", "app_fake", "--key-secret", "s3cr3t"])
        .args(["--app-id", "app", "--sunshine-url", base])
        .args(action);
    cmd
}

/// A messages page: one message, and `hasMore` with `beforeCursor` when given.
fn page(id: &str, before: Option<&str>) -> (u16, String) {
    let meta = match before {
        Some(cursor) => serde_json::json!({ "hasMore": true, "beforeCursor": cursor }),
        None => serde_json::json!({ "hasMore": true }),
    };
    let body = serde_json::json!({ "messages": [{ "id": id }], "meta": meta });
    (200, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_cannot_be_finished_is_an_error() {
    // More pages said to follow, but no cursor to them: stopping would pass one page off as
    // the whole conversation.
    let no_cursor = fake_service(|_| page("m1", None));
    // Cursors that come round again (first page, one, two, one...): following them never ends.
    let cycle = fake_service(|target| {
        if target.contains("cursor-one") {
            page("m2", Some("cursor-two"))
        } else if target.contains("cursor-two") {
            page("m3", Some("cursor-one"))
        } else {
            page("m1", Some("cursor-one"))
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (base, says) in [(&no_cursor, "gave no cursor"), (&cycle, "already returned")] {
        let out = output(with_key(d, base, "messages", &["list", "conv", "--all"])).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(5), "{err}");
        assert!(
            err.contains("cannot list messages") && err.contains(says),
            "{err}"
        );

        // An export that fails leaves no file that would read as a short conversation...
        let file = d.join("new.jsonl");
        let file_arg = file.to_str().unwrap();
        let export = ["export", "conv", "-o", file_arg];
        let out = output(with_key(d, base, "messages", &export)).await;
        assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
        assert!(!file.exists());
        // ...and leaves a file that was there as it was.
        let kept = d.join("kept.jsonl");
        std::fs::write(&kept, "earlier export\n").unwrap();
        let kept_arg = kept.to_str().unwrap();
        let export = ["export", "conv", "-o", kept_arg];
        let out = output(with_key(d, base, "messages", &export)).await;
        assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "earlier export\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_to_a_file_it_cannot_write_fails_before_downloading() {
    let dir = tempfile::tempdir().unwrap();
    let unwritable = dir.path().join("no-such-dir").join("out.jsonl");
    fails_without_connecting(
        "",
        &[
            "sunshine",
            "messages",
            "--key-id",
            "app_fake",
            "--key-secret",
            "s3cr3t",
            "--app-id",
            "app",
            "--sunshine-url",
            "{url}",
            "export",
            "conv",
            "-o",
            unwritable.to_str().unwrap(),
        ],
        7,
        &["cannot create", "no-such-dir"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_sunshine_url_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for url in ["not-a-url", "http://example.com"] {
        let out = output(with_key(dir.path(), url, "apps", &["list"])).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{url}: {err}");
        assert!(err.contains("invalid Sunshine URL"), "{url}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_comes_whole_from_one_place() {
    let emu = Emulator::builder().start().await.unwrap();
    let acct = emu.account().sunshine;
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &format!(
            "[profiles.default]\nsunshine_key_id = {:?}\nsunshine_key_secret = {:?}\nsunshine_app_id = {:?}\nsunshine_url = {:?}\n",
            acct.key_id,
            acct.key_secret.expose_secret(),
            acct.app_id,
            emu.base_url(),
        ),
    );
    let create = |key_id: Option<&str>, user: &str| {
        let mut cmd = zd(dir.path());
        if let Some(id) = key_id {
            cmd.env("SUNSHINE_KEY_ID", id);
        }
        cmd.args(["sunshine", "users", "create", user]);
        output(cmd)
    };
    // The profile's key, whole.
    let out = create(None, "from-the-profile").await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        json_lines(&out)[0]["user"]["externalId"],
        "from-the-profile"
    );
    // Another key's id in the environment is not paired with the profile's secret (which
    // would sign requests the service refuses, 401, with nothing to say why).
    let out = create(Some("app_other"), "mixed").await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("missing --key-secret or SUNSHINE_KEY_SECRET"),
        "{err}"
    );
}

/// Ctrl-C while an export downloads: a new file is not left behind (it would read as an empty
/// conversation), a file that was there is left as it was, and no partial file remains.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_an_export_leaves_the_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (file, before) in [
        ("new.jsonl", None),
        ("kept.jsonl", Some("earlier export\n")),
    ] {
        // A new service for each run, so a request of the first cannot stand for the second's.
        let (base, requests) = stalling_service();
        let path = d.join(file);
        if let Some(text) = before {
            std::fs::write(&path, text).unwrap();
        }
        let zd = crate::support::Running::spawn(export_process(d, &base, &path));
        // zd listens for Ctrl-C before it sends the first request.
        requests.recv_timeout(HANG_GUARD).unwrap();
        // Ctrl-C for the new file, SIGTERM (`kill`, a service manager) for the old one.
        let signal = if before.is_none() { "-INT" } else { "-TERM" };
        send_signal(zd.pid(), signal);
        let out = tokio::task::spawn_blocking(move || zd.finish())
            .await
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(7), "{file}: {err}");
        assert!(err.contains("export interrupted"), "{file}: {err}");
        match before {
            None => assert!(!path.exists(), "{file} was left behind"),
            Some(text) => assert_eq!(std::fs::read_to_string(&path).unwrap(), text),
        }
        let partial: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
            .collect();
        assert!(partial.is_empty(), "{partial:?}");
    }
}

/// A service that takes each request and never answers, and says on the channel when it has
/// one; gives its base URL.
fn stalling_service() -> (String, std::sync::mpsc::Receiver<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (got, requests) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
            let _ = got.send(());
        }
    });
    (base, requests)
}

/// `zd sunshine messages export conv -o PATH` with a key, an app and `base` as the Sunshine
/// URL, as a process to spawn.
fn export_process(
    dir: &std::path::Path,
    base: &str,
    path: &std::path::Path,
) -> std::process::Command {
    let mut cmd = crate::support::zd_process(dir);
    cmd.args(["sunshine", "messages"])
        .args(["--key-id", "app_fake", "--key-secret", "s3cr3t"])
        .args(["--app-id", "app", "--sunshine-url", base])
        .args(["export", "conv", "-o", path.to_str().unwrap()]);
    cmd
}

/// The temporary file of an export holds the conversation for as long as the listing takes:
/// no one but its owner may open it in that time.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_temporary_file_of_an_export_is_private_while_it_is_listed() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // zd inherits this process's umask: one that already keeps group and others out would
    // make the check below pass whatever zd does.
    let probe = d.join("probe");
    std::fs::write(&probe, "").unwrap();
    let probe_mode = probe.metadata().unwrap().permissions().mode();
    assert_ne!(
        probe_mode & 0o077,
        0,
        "the umask leaves nothing to check: {probe_mode:o}"
    );
    let (base, requests) = stalling_service();
    let zd = crate::support::Running::spawn(export_process(d, &base, &d.join("conv.jsonl")));
    // The temporary file is made before the first request.
    requests.recv_timeout(HANG_GUARD).unwrap();
    let partial: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert_eq!(partial.len(), 1, "{partial:?}");
    let mode = partial[0].metadata().unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    send_signal(zd.pid(), "-TERM");
    let out = tokio::task::spawn_blocking(move || zd.finish())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
}

/// An export replaces the file a symbolic link names, not the link, and keeps that file's
/// permissions: a conversation exported to a private file stays private.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_writes_through_a_link_and_keeps_the_permissions() {
    use std::os::unix::fs::PermissionsExt as _;
    let base = two_messages();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let real = d.join("a.jsonl");
    std::fs::write(&real, "earlier export\n").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = d.join("latest.jsonl");
    std::os::unix::fs::symlink("a.jsonl", &link).unwrap();
    let export = ["export", "conv", "-o", link.to_str().unwrap()];
    let out = output(with_key(d, &base, "messages", &export)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    let ids: Vec<String> = std::fs::read_to_string(&real)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .collect();
    assert_eq!(ids, ["\"m1\"", "\"m2\""]);
    let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

/// `-o /dev/stdout` into a pipe: written directly, as the README says. Followed as links, the
/// path ends at `pipe:[N]`, which is no file a temporary could be put beside.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_to_dev_stdout_writes_into_the_pipe() {
    let base = two_messages();
    let dir = tempfile::tempdir().unwrap();
    let export = ["export", "conv", "-o", "/dev/stdout"];
    let out = output(with_key(dir.path(), &base, "messages", &export)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let ids: Vec<String> = json_lines(&out)
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["m1", "m2"]);
}

/// `-o /dev/stdout` with stdout a file opened for appending (`>> all.jsonl`, once per
/// conversation): each export goes after what the file held, which is never replaced.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_to_dev_stdout_appends_to_the_file_stdout_appends_to() {
    let base = two_messages();
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.jsonl");
    std::fs::write(&all, "earlier\n").unwrap();
    // However the path names stdout: as written, through a link, or spelt otherwise.
    let link = dir.path().join("out");
    std::os::unix::fs::symlink("/dev/stdout", &link).unwrap();
    let ways = [
        std::path::PathBuf::from("/dev/stdout"),
        link,
        "/dev/./stdout".into(),
    ];
    for way in &ways {
        let mut cmd = export_process(dir.path(), &base, way);
        let appending = std::fs::OpenOptions::new().append(true).open(&all).unwrap();
        cmd.stdout(appending);
        let (status, err) = tokio::task::spawn_blocking(move || run_to_end(cmd))
            .await
            .unwrap();
        assert!(status.success(), "{err}");
    }
    let text = std::fs::read_to_string(&all).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert_eq!(lines[0], "earlier");
    let ids: Vec<String> = lines[1..]
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .collect();
    assert_eq!(ids, ["\"m1\"", "\"m2\""].repeat(3));
}

/// Runs `cmd` (no stdin, stderr read) until it exits, killing it past [`HANG_GUARD`]; gives
/// its status and stderr.
fn run_to_end(mut cmd: std::process::Command) -> (std::process::ExitStatus, String) {
    use std::io::Read as _;
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > HANG_GUARD {
            let _ = child.kill();
            panic!("zd did not finish");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    (status, reader.join().unwrap())
}

/// A service whose conversation holds two messages, m1 and m2, on one page.
fn two_messages() -> String {
    fake_service(|_| {
        let body = serde_json::json!({
            "messages": [{ "id": "m1" }, { "id": "m2" }],
            "meta": { "hasMore": false },
        });
        (200, body.to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_that_names_no_resource_is_a_usage_error() {
    // zd-sunshine refuses these before sending (a normalising proxy would drop or climb the
    // segment and reach another resource): the input is wrong, not the service.
    let dir = tempfile::tempdir().unwrap();
    for id in ["", ".", ".."] {
        let mut cmd = zd(dir.path());
        cmd.args(["sunshine", "apps", "get", id]);
        let out = output(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{id:?}: {err}");
        assert!(err.contains("cannot get the app"), "{err}");
    }
    usage_error_without_connecting(
        "",
        &[
            "sunshine",
            "users",
            "--key-id",
            "app_fake",
            "--key-secret",
            "s3cr3t",
            "--app-id",
            "app",
            "--sunshine-url",
            "{url}",
            "get",
            "..",
        ],
        &["cannot get the user"],
    )
    .await;
}
