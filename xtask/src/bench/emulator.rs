//! The emulator under the benchmark: a release build in a process of its own, with an account
//! that has the echo bot plus enough agents for the metrics feeds (10 feeds per agent).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::Duration;

use serde_json::Value;

use super::http;

/// Agents that only hold metrics feeds.
pub(crate) const FEED_AGENTS: usize = 100;
/// The echo bot's token.
pub(crate) const BOT_TOKEN: &str = "bench-bot-token";

/// A running emulator; dropping it stops the process.
#[derive(Debug)]
pub(crate) struct Emulator {
    process: Process,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
}

/// The emulator's process, killed and reaped on drop: std's `Child` is not, and every return
/// after the spawn (a start-up that failed or timed out, an account that does not parse) must
/// not leave it running.
#[derive(Debug)]
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How long the emulator may take to print its account: seconds normally.
const STARTUP_LIMIT: Duration = Duration::from_secs(120);

/// The account file: departments Support and Sales, the bot, and the feed agents.
pub(crate) fn account_toml() -> String {
    let mut toml = String::from(
        "# Written by cargo xtask bench.\n\
         [[departments]]\nname = \"Support\"\n\n[[departments]]\nname = \"Sales\"\n\n\
         [[agents]]\nname = \"Bench bot\"\naccess_token = \"bench-bot-token\"\n\
         departments = [\"Support\", \"Sales\"]\n",
    );
    for i in 0..FEED_AGENTS {
        toml.push_str(&format!(
            "\n[[agents]]\nname = \"Feed {i}\"\naccess_token = \"{}\"\ndepartments = [\"Support\"]\n",
            feed_token(i)
        ));
    }
    toml
}

/// The token of feed agent `i`.
pub(crate) fn feed_token(i: usize) -> String {
    format!("bench-feed-{i}")
}

impl Emulator {
    /// Starts `binary` on a free port with the bench account and reads the account it prints.
    pub(crate) fn start(binary: &Path, bench_dir: &Path) -> Result<Self, String> {
        Self::start_within(binary, bench_dir, STARTUP_LIMIT)
    }

    /// [`Emulator::start`], the account awaited for at most `limit`.
    fn start_within(binary: &Path, bench_dir: &Path, limit: Duration) -> Result<Self, String> {
        let config = bench_dir.join("account.toml");
        std::fs::write(&config, account_toml())
            .map_err(|e| format!("{}: {e}", config.display()))?;
        let log = std::fs::File::create(bench_dir.join("emulator.log"))
            .map_err(|e| format!("emulator.log: {e}"))?;
        let child = Command::new(binary)
            .args(["--port", "0", "--config"])
            .arg(&config)
            // The metrics workload opens 1,000 feeds at once; the documented 200 new
            // connections a minute would make it wait five minutes per client.
            .args(["--realtime-requests-per-minute", "off"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        // Owned by the guard before anything else can fail.
        let mut process = Process(child);
        let stdout = process.0.stdout.take().ok_or("emulator stdout not piped")?;
        let account = read_account(stdout, limit)
            .map_err(|e| format!("emulator start-up: {e} (see target/bench/emulator.log)"))?;
        let graphql = account["graphql_url"].as_str().unwrap_or_default();
        let base = graphql.trim_end_matches("/graphql/request").to_owned();
        let addr: SocketAddr = base
            .trim_start_matches("http://")
            .parse()
            .map_err(|e| format!("emulator printed graphql_url {graphql:?}: {e}"))?;
        Ok(Self {
            process,
            addr,
            base,
        })
    }

    /// `{base}/graphql/request`.
    pub(crate) fn graphql_url(&self) -> String {
        format!("{}/graphql/request", self.base)
    }

    /// Waits (up to 10 s) until the emulator holds no Real Time Chat connection, so the next
    /// client's feeds fit under the account's cap of 1,000 whatever the last one left open.
    pub(crate) fn await_no_feeds(&self) -> Result<(), String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let answer = http::request(self.addr, "GET", "/_emulator/counters", &[], None)?;
            let counters: Value = serde_json::from_str(&answer.body)
                .map_err(|e| format!("counters: {e} ({})", answer.excerpt()))?;
            let open = counters["realtime_connections"].as_u64().unwrap_or(0);
            if open == 0 {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(format!(
                    "{open} Real Time Chat connections still open after 10 s"
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// `POST /_emulator/reset`: forgets chats and start-limit history between runs.
    pub(crate) fn reset(&self) -> Result<(), String> {
        let answer = http::request(self.addr, "POST", "/_emulator/reset", &[], None)?;
        if answer.status / 100 == 2 {
            Ok(())
        } else {
            Err(format!(
                "reset answered {}: {}",
                answer.status,
                answer.excerpt()
            ))
        }
    }

    /// Whether the process is still alive.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.process.0.try_wait(), Ok(None))
    }
}

/// The account the emulator prints on `stdout` at start-up, read on a thread of its own so a
/// start-up that hangs without printing it fails after `limit`; that thread then keeps draining
/// `stdout`, so the emulator never blocks on a full pipe.
fn read_account(stdout: impl Read + Send + 'static, limit: Duration) -> Result<Value, String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        // The caller may have given up waiting already; the drain below is still needed.
        let _ = tx.send(read_json_object(&mut reader));
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink);
    });
    match rx.recv_timeout(limit) {
        Ok(account) => account,
        Err(RecvTimeoutError::Timeout) => Err(format!(
            "no account printed within {} s",
            limit.as_secs_f64()
        )),
        Err(RecvTimeoutError::Disconnected) => Err("its stdout reader ended".to_owned()),
    }
}

/// Reads lines until they form one complete JSON object (the emulator pretty-prints it).
fn read_json_object(reader: &mut impl BufRead) -> Result<Value, String> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| format!("reading its stdout: {e}"))?;
        if n == 0 {
            return Err("it exited without printing the account".to_owned());
        }
        if text.is_empty() && !line.trim_start().starts_with('{') {
            continue;
        }
        text.push_str(&line);
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            return Ok(value);
        }
        if text.len() > 1 << 20 {
            return Err("account JSON larger than 1 MiB".to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_pretty_printed_object_after_noise() {
        let mut input = "starting\n{\n  \"a\": [1,\n 2]\n}\nlater\n".as_bytes();
        let value = read_json_object(&mut input).unwrap();
        assert_eq!(value["a"][1], 2);
        assert!(read_json_object(&mut "{\n".as_bytes()).is_err());
    }

    /// A stand-in for the emulator binary: a script that writes its pid next to itself, then
    /// runs `body`.
    #[cfg(unix)]
    fn fake_emulator(dir: &Path, body: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("fake-emulator");
        let script = format!("#!/bin/sh\necho $$ > \"$(dirname \"$0\")/pid\"\n{body}\n");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// [`Emulator::start_within`], retried while another test's fork still holds the script
    /// open for writing (ETXTBSY).
    fn start_fake(binary: &Path, dir: &Path, limit: Duration) -> Result<Emulator, String> {
        loop {
            match Emulator::start_within(binary, dir, limit) {
                Err(e) if e.contains("Text file busy") => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => return other,
            }
        }
    }

    /// Whether the process whose pid the fake wrote is gone (killed and reaped); `None` when
    /// it wrote none.
    #[cfg(target_os = "linux")]
    fn gone(dir: &Path) -> Option<bool> {
        let pid = std::fs::read_to_string(dir.join("pid")).unwrap_or_default();
        let pid = pid.trim();
        (!pid.is_empty()).then(|| !Path::new(&format!("/proc/{pid}")).exists())
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn an_account_that_does_not_parse_stops_the_emulator() {
        let dir = tempfile::tempdir().unwrap();
        let fake = fake_emulator(
            dir.path(),
            "echo '{\"graphql_url\": \"not a url\"}'\nexec sleep 30",
        );
        let err = start_fake(&fake, dir.path(), STARTUP_LIMIT).unwrap_err();
        assert!(err.contains("graphql_url"), "{err}");
        assert_eq!(
            gone(dir.path()),
            Some(true),
            "the emulator was left running"
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_start_up_that_prints_nothing_fails_at_its_deadline_and_stops_the_emulator() {
        let dir = tempfile::tempdir().unwrap();
        let fake = fake_emulator(dir.path(), "exec sleep 30");
        let err = start_fake(&fake, dir.path(), Duration::from_millis(100)).unwrap_err();
        assert!(err.contains("no account printed within"), "{err}");
        // Killed before it even wrote its pid, it is gone too; if it did, it must be.
        assert_ne!(
            gone(dir.path()),
            Some(false),
            "the emulator was left running"
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn an_emulator_that_prints_its_account_is_up_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let fake = fake_emulator(
            dir.path(),
            "echo '{\"graphql_url\": \"http://127.0.0.1:9/graphql/request\"}'\nexec sleep 30",
        );
        let mut emulator = start_fake(&fake, dir.path(), STARTUP_LIMIT).unwrap();
        assert_eq!(emulator.base, "http://127.0.0.1:9");
        assert!(emulator.alive());
        drop(emulator);
        assert_eq!(gone(dir.path()), Some(true));
    }

    #[test]
    fn account_has_the_bot_and_every_feed_agent() {
        let toml = account_toml();
        assert!(toml.contains(BOT_TOKEN));
        assert!(toml.contains(&feed_token(FEED_AGENTS - 1)));
        assert_eq!(toml.matches("[[agents]]").count(), FEED_AGENTS + 1);
    }
}
