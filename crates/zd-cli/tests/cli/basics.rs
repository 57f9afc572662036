//! Help, completions, usage errors, config errors and exit codes.

use predicates::str::contains;

use crate::support::{write_config, zd};

/// The command names of a `--help` page's `Commands:` section, in order.
fn commands_of(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        // A wrapped description is indented further than a command name.
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn help_of(dir: &std::path::Path, args: &[&str]) -> String {
    let out = zd(dir).args(args).arg("--help").assert().success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

#[test]
fn help_lists_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let pages: [(&[&str], &[&str]); 4] = [
        (
            &[],
            &[
                "demo",
                "emulator",
                "agent",
                "metrics",
                "sunshine",
                "auth",
                "completions",
                "help",
            ],
        ),
        (
            &["agent"],
            &[
                "tail",
                "echo",
                "send",
                "departments",
                "agents",
                "status",
                "help",
            ],
        ),
        (&["metrics"], &["watch", "get", "export", "help"]),
        (
            &["sunshine"],
            &["apps", "users", "conversations", "messages", "help"],
        ),
    ];
    for (args, commands) in pages {
        let help = help_of(dir.path(), args);
        assert_eq!(commands_of(&help), commands, "zd {args:?} --help:\n{help}");
    }
    let demo = help_of(dir.path(), &["demo"]);
    assert!(
        demo.contains("--faults") && demo.contains("--seed"),
        "{demo}"
    );
}

#[test]
fn sunshine_flags_are_shown_in_the_help_of_each_action() {
    let dir = tempfile::tempdir().unwrap();
    let help = help_of(dir.path(), &["sunshine", "users", "get"]);
    for flag in ["--key-id", "--key-secret", "--app-id", "--sunshine-url"] {
        assert!(help.contains(flag), "{flag} missing:\n{help}");
    }
}

#[test]
fn completions_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = zd(dir.path())
            .args(["completions", shell])
            .assert()
            .success();
        let script = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        for command in [
            "demo",
            "emulator",
            "agent",
            "metrics",
            "sunshine",
            "auth",
            "completions",
            "departments",
            "export",
        ] {
            assert!(script.contains(command), "{shell}: {command} missing");
        }
    }
}

#[test]
fn completions_into_a_closed_pipe_exit_7() {
    let dir = tempfile::tempdir().unwrap();
    // A pipe whose reading end is closed before zd writes: its first write fails.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = crate::support::zd_process(dir.path())
        .args(["completions", "bash"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = crate::support::stderr(&out);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(err.contains("cannot write to stdout"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    zd(dir.path()).arg("nope").assert().code(2);
    zd(dir.path())
        .args(["metrics", "get", "--window", "45"])
        .assert()
        .code(2)
        .stderr(contains("30 or 60"));
}

#[test]
fn config_errors_exit_3_saying_what_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(dir.path(), "[profiles.work]\nchat_token = \"t\"\n");
    zd(dir.path())
        .args(["--profile", "home", "agent", "agents"])
        .assert()
        .code(3)
        .stderr(contains("no profile \"home\""))
        .stderr(contains("work"));
    std::fs::write(&file, "[profiles.work\n").unwrap();
    zd(dir.path())
        .args(["agent", "agents"])
        .assert()
        .code(3)
        .stderr(contains("invalid config file"))
        // What and where, from toml's message (its own display quotes the line, secrets
        // and all).
        .stderr(contains("unclosed table"))
        .stderr(contains("(line 1, column 15)"));
    zd(dir.path())
        .args(["--config-file", "/nonexistent/zd.toml", "agent", "agents"])
        .assert()
        .code(3)
        .stderr(contains("cannot read /nonexistent/zd.toml"));
}

#[test]
fn unreachable_service_exits_5() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: bind, take the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    zd(dir.path())
        .args([
            "agent",
            "agents",
            "--token",
            "t",
            "--chat-url",
            &format!("http://127.0.0.1:{port}/graphql/request"),
        ])
        .assert()
        .code(5)
        .stderr(contains("cannot start an agent session"))
        .stderr(contains("caused by:"));
}

#[test]
fn an_empty_environment_variable_counts_as_unset() {
    // `VAR= zd ...` is how a shell clears a setting for one command: the default applies, as
    // if the variable were not there (the embedded emulator here, as nothing else is set).
    let dir = tempfile::tempdir().unwrap();
    let out = zd(dir.path())
        .env("ZD_CONFIG", "")
        .env("ZD_PROFILE", "")
        .env("ZD_EMULATOR", "")
        .env("ZENDESK_CHAT_TOKEN", "")
        .env("ZENDESK_CHAT_URL", "")
        .args(["agent", "departments"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Support"),
        "{out:?}"
    );
    let out = zd(dir.path())
        .env("SUNSHINE_KEY_ID", "")
        .env("SUNSHINE_KEY_SECRET", "")
        .env("SUNSHINE_APP_ID", "")
        .env("SUNSHINE_URL", "")
        .args(["sunshine", "apps", "list"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An empty RUST_LOG leaves the level to -v (tracing would read it as "log nothing").
    let out = zd(dir.path())
        .env("RUST_LOG", "")
        .args(["-v", "agent", "departments"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("using an embedded emulator"), "{err}");
    // An empty value given on the command line is still refused.
    zd(dir.path())
        .args(["--config-file", "", "agent", "departments"])
        .assert()
        .code(2)
        .stderr(contains("--config-file"));
}
