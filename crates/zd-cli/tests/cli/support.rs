//! Helpers: a `zd` command with a clean environment, and an in-process emulator.

use std::path::Path;

use assert_cmd::Command;

/// Longest a `zd` run in a test may take: a regression that hangs fails instead.
pub(crate) const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(60);

/// `zd` with no credentials from the environment and an empty config directory.
pub(crate) fn zd(config_home: &Path) -> Command {
    Command::from_std(zd_process(config_home))
}

/// [`zd`] as a plain process command, for a test that spawns it and reads it as it runs.
pub(crate) fn zd_process(config_home: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("zd"));
    for var in [
        "ZENDESK_CHAT_TOKEN",
        "ZENDESK_CHAT_URL",
        "ZENDESK_METRICS_URL",
        "SUNSHINE_KEY_ID",
        "SUNSHINE_KEY_SECRET",
        "SUNSHINE_APP_ID",
        "SUNSHINE_URL",
        "ZD_PROFILE",
        "ZD_CONFIG",
        "ZD_EMULATOR",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("XDG_CONFIG_HOME", config_home)
        .env("HOME", config_home);
    cmd
}

/// Writes `text` as the config file `zd` finds under `config_home`; returns its path.
pub(crate) fn write_config(config_home: &Path, text: &str) -> std::path::PathBuf {
    let file = config_home.join("zd").join("config.toml");
    std::fs::create_dir_all(config_home.join("zd")).unwrap();
    std::fs::write(&file, text).unwrap();
    file
}

/// Runs a blocking `zd` invocation without starving the emulator's runtime.
pub(crate) async fn output(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

pub(crate) fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every stdout line as JSON.
pub(crate) fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// Runs `zd args`, where `"{url}"` stands for `http://{a listener that never answers}{path}`,
/// and checks that it is a usage error (exit 2) whose message holds every one of `says`, and
/// that nothing connected to that address: a credential must not reach it.
pub(crate) async fn usage_error_without_connecting(path: &str, args: &[&str], says: &[&str]) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}{path}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = zd(dir.path());
    cmd.args(
        args.iter()
            .map(|a| if *a == "{url}" { url.as_str() } else { a }),
    )
    .timeout(HANG_GUARD);
    let out = output(cmd).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    for words in says {
        assert!(err.contains(words), "{args:?}: {err}");
    }
    assert_eq!(
        listener.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "zd connected to {url}"
    );
}
