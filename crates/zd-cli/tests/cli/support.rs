//! Helpers: a `zd` command with a clean environment, and an in-process emulator.

use std::path::Path;

use assert_cmd::Command;

/// `zd` with no credentials from the environment and an empty config directory.
pub(crate) fn zd(config_home: &Path) -> Command {
    let mut cmd = Command::cargo_bin("zd").unwrap();
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
