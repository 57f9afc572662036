//! The emulator under the benchmark: a release build in a process of its own, with an account
//! that has the echo bot plus enough agents for the metrics feeds (10 feeds per agent).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::http;

/// Agents that only hold metrics feeds.
pub(crate) const FEED_AGENTS: usize = 100;
/// The echo bot's token.
pub(crate) const BOT_TOKEN: &str = "bench-bot-token";

/// A running emulator; dropping it stops the process.
#[derive(Debug)]
pub(crate) struct Emulator {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
}

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
        let config = bench_dir.join("account.toml");
        std::fs::write(&config, account_toml())
            .map_err(|e| format!("{}: {e}", config.display()))?;
        let log = std::fs::File::create(bench_dir.join("emulator.log"))
            .map_err(|e| format!("emulator.log: {e}"))?;
        let mut child = Command::new(binary)
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
        let stdout = child.stdout.take().ok_or("emulator stdout not piped")?;
        let mut reader = BufReader::new(stdout);
        let account = match read_json_object(&mut reader) {
            Ok(account) => account,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "emulator start-up: {e} (see target/bench/emulator.log)"
                ));
            }
        };
        // Keep draining stdout so the emulator never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        let graphql = account["graphql_url"].as_str().unwrap_or_default();
        let base = graphql.trim_end_matches("/graphql/request").to_owned();
        let addr: SocketAddr = base
            .trim_start_matches("http://")
            .parse()
            .map_err(|e| format!("emulator printed graphql_url {graphql:?}: {e}"))?;
        Ok(Self { child, addr, base })
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
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

    #[test]
    fn account_has_the_bot_and_every_feed_agent() {
        let toml = account_toml();
        assert!(toml.contains(BOT_TOKEN));
        assert!(toml.contains(&feed_token(FEED_AGENTS - 1)));
        assert_eq!(toml.matches("[[agents]]").count(), FEED_AGENTS + 1);
    }
}
