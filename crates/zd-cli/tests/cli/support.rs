//! Helpers: a `zd` command with a clean environment, and an in-process emulator.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout, Stdio};
use std::sync::{Arc, Mutex, mpsc};

use assert_cmd::Command;

/// Longest a `zd` run in a test may take: a regression that hangs fails instead.
pub(crate) const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(60);

/// `zd` with no credentials from the environment and an empty config directory, killed if it
/// runs past [`HANG_GUARD`].
pub(crate) fn zd(config_home: &Path) -> Command {
    let mut cmd = Command::from_std(zd_process(config_home));
    cmd.timeout(HANG_GUARD);
    cmd
}

/// [`zd`] as a plain process command, for a test that spawns it and reads it as it runs.
pub(crate) fn zd_process(config_home: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("zd"));
    clean_env(&mut cmd, config_home);
    cmd
}

/// [`zd_process`] started with `signal` (`HUP`, `INT`) ignored, as `nohup` or a script's `&`
/// leave it: through `sh`, whose `trap ''` ignores it and whose `exec` keeps it ignored, so
/// zd has the shell's process id. Arguments added to it go to zd.
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) fn zd_process_ignoring(config_home: &Path, signal: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("trap '' {signal}; exec \"$0\" \"$@\""))
        .arg(assert_cmd::cargo::cargo_bin("zd"));
    clean_env(&mut cmd, config_home);
    cmd
}

/// Clears what zd would read from the developer's environment, and points it at an empty
/// config directory.
fn clean_env(cmd: &mut std::process::Command, config_home: &Path) {
    // Every variable zd (or a crate under it) might read for credentials, targets or logs:
    // a developer's own setup must not change what a test sees.
    for (var, _) in std::env::vars_os() {
        let name = var.to_string_lossy();
        if ["ZENDESK_", "SUNSHINE_", "ZD_"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            || name == "RUST_LOG"
        {
            cmd.env_remove(&var);
        }
    }
    cmd.env("XDG_CONFIG_HOME", config_home)
        .env("HOME", config_home);
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
    fails_without_connecting(path, args, 2, says).await;
}

/// As [`usage_error_without_connecting`], for a failure with exit code `code`.
pub(crate) async fn fails_without_connecting(path: &str, args: &[&str], code: i32, says: &[&str]) {
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
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    for words in says {
        assert!(err.contains(words), "{args:?}: {err}");
    }
    assert_eq!(
        listener.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "zd connected to {url}"
    );
}

/// A `zd` process a test reads as it runs. It is killed if still running after
/// [`HANG_GUARD`] (or when dropped): a regression that hangs then fails the test, whose reads
/// see the end of the output, instead of hanging it.
pub(crate) struct Running {
    child: Arc<Mutex<Child>>,
    disarm: Option<mpsc::Sender<()>>,
    stdout: Option<BufReader<ChildStdout>>,
    stderr: Option<BufReader<ChildStderr>>,
}

impl Running {
    /// Spawns `cmd` (made by [`zd_process`]) with stdout and stderr piped.
    pub(crate) fn spawn(mut cmd: std::process::Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().map(BufReader::new);
        let stderr = child.stderr.take().map(BufReader::new);
        let child = Arc::new(Mutex::new(child));
        let (disarm, armed) = mpsc::channel::<()>();
        let watched = Arc::clone(&child);
        std::thread::spawn(move || {
            if armed.recv_timeout(HANG_GUARD) == Err(mpsc::RecvTimeoutError::Timeout) {
                let _ = watched.lock().unwrap().kill();
            }
        });
        Self {
            child,
            disarm: Some(disarm),
            stdout,
            stderr,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// Reads stderr until a line holds `needle`; gives what it read.
    pub(crate) fn stderr_until(&mut self, needle: &str) -> String {
        let err = self.stderr.as_mut().expect("stderr was read to the end");
        let mut read = String::new();
        loop {
            let mut line = String::new();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "zd's stderr ended before {needle:?}:\n{read}"
            );
            read.push_str(&line);
            if line.contains(needle) {
                return read;
            }
        }
    }

    /// The next stdout line, without its newline.
    pub(crate) fn stdout_line(&mut self) -> String {
        let out = self.stdout.as_mut().expect("stdout was closed");
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "zd's stdout ended");
        line.trim_end_matches('\n').to_owned()
    }

    /// Closes this end of zd's stdout, as `head -n1` does once it has its line.
    pub(crate) fn close_stdout(&mut self) {
        self.stdout = None;
    }

    /// Waits for zd to exit; gives the rest of its output and its status.
    pub(crate) fn finish(mut self) -> std::process::Output {
        fn rest(reader: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut reader) = reader {
                    reader.read_to_end(&mut bytes).unwrap();
                }
                bytes
            })
        }
        let stdout = rest(self.stdout.take());
        let stderr = rest(self.stderr.take());
        let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
        // The lock is not held while waiting, so the guard can still kill a process that
        // closed its output and hangs.
        let status = loop {
            if let Some(status) = self.child.lock().unwrap().try_wait().unwrap() {
                break status;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        std::process::Output {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.disarm.take();
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A local HTTP server answering each request with `answer(target)` (target: the path and
/// query) as a status and a JSON body, one connection at a time, until the test process
/// ends: for answers the emulator does not give. Gives its base URL.
pub(crate) fn fake_service(answer: impl Fn(&str) -> (u16, String) + Send + 'static) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            let mut length = 0;
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
                if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let target = request_line.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = answer(target);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} Fake\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    base
}

/// Sends `signal` (`-INT`, `-TERM`, `-HUP`) to process `pid`, as a terminal, a service manager
/// or a closing terminal would.
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) fn send_signal(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {signal} {pid}");
}
