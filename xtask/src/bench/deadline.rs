//! Running a helper command (an installer, the visitors, the seeding step, `cargo bench`) that
//! must not hold the harness forever: it is killed at a deadline, and its output is kept for
//! the report like that of any other failure.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(20);
/// How long its pipes may stay open after it ended: a grandchild that inherited them (npm's,
/// cargo's bench binary) must not hold the harness either.
const PIPE_GRACE: Duration = Duration::from_secs(5);

/// Whether the command's output is also shown as it comes (for the long `cargo bench`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Echo {
    /// Only collected.
    Quiet,
    /// Collected and copied to our stdout and stderr.
    Shown,
}

/// How a command ended, and what it printed.
#[derive(Debug)]
pub(crate) struct Finished {
    /// Its exit status (that of the kill when `killed`), if it could be read.
    pub(crate) status: Option<ExitStatus>,
    /// Whether the deadline killed it.
    pub(crate) killed: bool,
    /// The deadline it had.
    pub(crate) limit: Duration,
    /// Its stdout, lossily decoded.
    pub(crate) stdout: String,
    /// Its stderr, lossily decoded.
    pub(crate) stderr: String,
}

impl Finished {
    /// Whether it exited by itself with success.
    pub(crate) fn success(&self) -> bool {
        !self.killed && self.status.is_some_and(|s| s.success())
    }

    /// `exit status: 1`, or that the deadline killed it.
    pub(crate) fn describe(&self) -> String {
        match (self.killed, self.status) {
            (true, _) => format!("killed at its deadline of {}", human(self.limit)),
            (false, Some(s)) => s.to_string(),
            (false, None) => "exit status unknown".to_owned(),
        }
    }

    /// The last `n` lines of its stderr, joined with ` | `.
    pub(crate) fn stderr_tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.stderr.trim().lines().rev().take(n).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }
}

/// `90 s`, `10 min`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else if s > 0 {
        format!("{s} s")
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Runs `command` (stdin closed, stdout and stderr collected) until it exits or `limit`
/// passes, when it is killed. An error only when it cannot be started.
pub(crate) fn run(command: &mut Command, limit: Duration, echo: Echo) -> Result<Finished, String> {
    run_within(command, limit, echo, PIPE_GRACE)
}

/// [`run`], with `grace` for [`PIPE_GRACE`].
fn run_within(
    command: &mut Command,
    limit: Duration,
    echo: Echo,
    grace: Duration,
) -> Result<Finished, String> {
    let mut child = spawn_piped(command)?;
    let pipes = [
        child.stdout.as_ref().and_then(pipe_name),
        child.stderr.as_ref().and_then(pipe_name),
    ];
    let deadline = Instant::now() + limit;
    let (closed_tx, closed) = channel::<()>();
    let shown = echo == Echo::Shown;
    let stdout = child.stdout.take().map(|pipe| {
        collect(pipe, closed_tx.clone(), move |chunk| {
            if shown {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(chunk);
                let _ = out.flush();
            }
        })
    });
    let stderr = child.stderr.take().map(|pipe| {
        collect(pipe, closed_tx.clone(), move |chunk| {
            if shown {
                let _ = std::io::stderr().lock().write_all(chunk);
            }
        })
    });
    drop(closed_tx);
    let mut killed = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            Ok(None) => {
                killed = true;
                kill_tree(&mut child);
                break child.wait().ok();
            }
            Err(_) => {
                // Its state cannot be read: it must not outlive the harness either way.
                kill_tree(&mut child);
                break child.wait().ok();
            }
        }
    };
    // Each reader hangs up at the end of its pipe; a grandchild holding one open is not waited
    // for beyond the grace, and what was read so far is kept. The grandchild itself is killed
    // then: left, it would go on holding a core (an install script, a bench binary).
    let grace_end = Instant::now() + grace;
    let open = usize::from(stdout.is_some()) + usize::from(stderr.is_some());
    let all_closed = (0..open).all(|_| {
        let left = grace_end.saturating_duration_since(Instant::now());
        closed.recv_timeout(left).is_ok()
    });
    if !all_closed {
        kill_pipe_holders(&pipes.into_iter().flatten().collect::<Vec<_>>());
    }
    let text = |buf: Option<Arc<Mutex<Vec<u8>>>>| {
        buf.and_then(|b| {
            b.lock()
                .ok()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        })
        .unwrap_or_default()
    };
    Ok(Finished {
        status,
        killed,
        limit,
        stdout: text(stdout),
        stderr: text(stderr),
    })
}

/// Starts `command` with stdin closed and stdout and stderr piped to the harness.
pub(crate) fn spawn_piped(command: &mut Command) -> Result<Child, String> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))
}

/// Kills `child` and every process it started. What hangs is often not the child but one of
/// its own (the bench binary under `cargo bench`, an install script under npm): killed alone,
/// the child would leave it running, holding a core and the pipes. The child keeps the
/// harness's process group (a Ctrl-C in the terminal reaches all of them), so the tree is
/// found in /proc: each process is stopped before its children are read, so none can start
/// another unseen, then all are killed. A process is taken only while /proc still names its
/// parent as the one it was found under: a pid reaped and reused meanwhile is let go. What a
/// process left behind by exiting (a daemon it detached) is no longer in the tree: only
/// [`kill_pipe_holders`] reaches it, if it still holds the command's output.
pub(crate) fn kill_tree(child: &mut Child) {
    if let Ok(root) = i32::try_from(child.id()) {
        kill_tree_of(root);
    }
    // The direct child through std as well: it is the one the caller reaps.
    let _ = child.kill();
}

/// [`kill_tree`] for the process `root`, whoever its parent.
fn kill_tree_of(root: i32) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    if !std::path::Path::new(&format!("/proc/{root}/task/{root}/children")).exists() {
        eprintln!(
            "xtask bench: this kernel does not list a process's children in /proc; only the \
             command itself is killed, not what it started"
        );
    }
    let mut found = vec![root];
    let mut next = 0;
    while next < found.len() {
        let pid = found[next];
        next += 1;
        let _ = kill(Pid::from_raw(pid), Signal::SIGSTOP);
        for child_pid in children_of(pid) {
            // Bounded, and a pid seen twice (reused while we read) is not walked again.
            if found.len() >= 4096 || found.contains(&child_pid) {
                continue;
            }
            // Checked before it is stopped (a pid reaped and given to another process is left
            // alone) and again after (reused in between: let go again).
            if parent_of(child_pid) != Some(pid) {
                continue;
            }
            let _ = kill(Pid::from_raw(child_pid), Signal::SIGSTOP);
            if parent_of(child_pid) == Some(pid) {
                found.push(child_pid);
            } else {
                let _ = kill(Pid::from_raw(child_pid), Signal::SIGCONT);
            }
        }
    }
    for pid in found.iter().rev() {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
}

/// How /proc names the pipe behind one of our ends of a child's stdout or stderr: the same
/// name (`pipe:[inode]`) as in the fd table of every process holding either end.
pub(crate) fn pipe_name(end: &impl std::os::fd::AsRawFd) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", end.as_raw_fd())).ok()
}

/// Kills every process but ours that holds one of `pipes` open, with what it started. Called
/// once a command has exited and its pipes stayed open past a grace: the holders are what it
/// left behind (a grandchild that inherited its output), and [`kill_tree`] can no longer reach
/// them through it, as the kernel hands a process's children to init (or a subreaper) when
/// it exits. Each holder is stopped, then checked again before the kill: a pid that ended
/// and was reused meanwhile is let go.
pub(crate) fn kill_pipe_holders(pipes: &[PathBuf]) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    if pipes.is_empty() {
        return;
    }
    // As /proc numbers it, which in another pid namespace is not `getpid()`.
    let me = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|p| p.parse::<i32>().ok()))
        .or_else(|| i32::try_from(std::process::id()).ok());
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in processes.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if Some(pid) == me || !writes_any(pid, pipes) {
            continue;
        }
        let _ = kill(Pid::from_raw(pid), Signal::SIGSTOP);
        if writes_any(pid, pipes) {
            kill_tree_of(pid);
        } else {
            let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
        }
    }
}

/// Whether `pid` has one of `pipes` open for writing (false where its fd table cannot be
/// read: another user's process holds none of ours). Only a writer keeps the reader from its
/// end of file; a process that holds a read end (one forked by another thread of the harness
/// before its exec closes it) is no leftover of the command.
fn writes_any(pid: i32, pipes: &[PathBuf]) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|to| pipes.contains(&to))
            && opened_for_writing(pid, &fd.file_name())
    })
}

/// Whether descriptor `fd` of `pid` is open for writing, from the `flags:` line (octal) of its
/// `/proc/<pid>/fdinfo` entry.
fn opened_for_writing(pid: i32, fd: &std::ffi::OsStr) -> bool {
    let Ok(info) = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.to_string_lossy()))
    else {
        return false;
    };
    info.lines()
        .find_map(|line| line.strip_prefix("flags:"))
        .and_then(|flags| u32::from_str_radix(flags.trim(), 8).ok())
        // O_ACCMODE: 1 is O_WRONLY, 2 O_RDWR.
        .is_some_and(|flags| matches!(flags & 3, 1 | 2))
}

/// The processes `pid` started, as /proc lists them for each of its threads.
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    out
}

/// The parent of `pid` as /proc/PID/stat gives it (the field after the state, which follows
/// the command name in parentheses; the name may hold any character, so the last `)` counts).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    super::proc::stat_fields(&stat)?.get(1)?.parse().ok()
}

/// Reads `pipe` to its end on a thread of its own into the returned buffer, then says so on
/// `closed`.
fn collect(
    mut pipe: impl Read + Send + 'static,
    closed: std::sync::mpsc::Sender<()>,
    show: impl Fn(&[u8]) + Send + 'static,
) -> Arc<Mutex<Vec<u8>>> {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let filled = Arc::clone(&buffer);
    std::thread::spawn(move || {
        let mut chunk = [0_u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    show(&chunk[..n]);
                    if let Ok(mut b) = filled.lock() {
                        b.extend_from_slice(&chunk[..n]);
                    }
                }
            }
        }
        let _ = closed.send(());
    });
    buffer
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_command_past_its_deadline_is_killed() {
        let mut command = Command::new("sh");
        command.args(["-c", "exec sleep 30"]);
        let finished = run(&mut command, Duration::from_millis(100), Echo::Quiet).unwrap();
        assert!(finished.killed, "{finished:?}");
        assert!(!finished.success());
        assert!(
            finished.describe().contains("killed at its deadline"),
            "{}",
            finished.describe()
        );
    }

    /// Kills what it holds when dropped: a failing test leaves no process behind.
    pub(crate) struct Reaped(pub(crate) Vec<i32>);

    impl Drop for Reaped {
        fn drop(&mut self) {
            for pid in &self.0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }

    #[test]
    fn killing_a_command_kills_what_it_started_too() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("grandchild");
        let mut child = Command::new("sh")
            // The grandchild writes its pid, then the shell waits on it (a hung `cargo bench`).
            // The path goes as an argument: no quoting of it in the script.
            .args([
                "-c",
                r#"sh -c 'echo $$ > "$1.tmp" && mv "$1.tmp" "$1" && exec sleep 3000' sh "$1" & wait"#,
                "sh",
            ])
            .arg(&pid_file)
            // Not the test's own output: a survivor would hold it open.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut guard = Reaped(vec![i32::try_from(child.id()).unwrap()]);
        // Bounded, and given up if the shell ended: only turns a failure into one.
        let pid = (0..1500)
            .find_map(|_| {
                if let Ok(text) = std::fs::read_to_string(&pid_file) {
                    return text.trim().parse::<i32>().ok();
                }
                if child.try_wait().ok().flatten().is_some() {
                    return Some(-1);
                }
                std::thread::sleep(POLL);
                None
            })
            .filter(|pid| *pid > 0)
            .expect("the grandchild started");
        guard.0.push(pid);
        kill_tree(&mut child);
        child.wait().unwrap();
        // Reaped: its pid may be another process's now.
        guard.0.retain(|p| *p == pid);
        // Killed, it is a zombie until init reaps it, then gone.
        assert!(ends(pid), "the grandchild outlived the kill");
        guard.0.clear();
    }

    /// Whether `pid` has ended (gone, or a zombie waiting for whoever inherited it). The bound
    /// only turns a survivor into a failure instead of a hang.
    pub(crate) fn ends(pid: i32) -> bool {
        (0..500).any(|_| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let dead = stat
                .rsplit_once(')')
                .is_none_or(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']));
            if !dead {
                std::thread::sleep(POLL);
            }
            dead
        })
    }

    #[test]
    fn what_a_command_leaves_holding_its_output_is_killed_after_the_grace() {
        // The shell exits at once; the sleep it started inherited its stdout and stderr, and
        // init (not the shell) is its parent now.
        let mut command = Command::new("sh");
        command.args(["-c", "sleep 300 & echo $!"]);
        let finished = run_within(
            &mut command,
            Duration::from_secs(600),
            Echo::Quiet,
            Duration::from_millis(200),
        )
        .unwrap();
        assert!(finished.success(), "{finished:?}");
        let pid: i32 = finished.stdout.trim().parse().unwrap();
        let mut guard = Reaped(vec![pid]);
        assert!(ends(pid), "the sleep outlived the command");
        // Gone: its pid may be another process's now.
        guard.0.clear();
    }

    #[test]
    fn only_a_writer_of_the_pipes_is_killed() {
        // A child holding the read end of a pipe as its stdin, and one holding the write end
        // as its stdout.
        let (read, write) = std::io::pipe().unwrap();
        let pipe = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&read)
        ))
        .unwrap();
        let mut reader = Command::new("sleep")
            .arg("300")
            .stdin(read)
            .spawn()
            .unwrap();
        let mut writer = Command::new("sleep")
            .arg("300")
            .stdout(write)
            .spawn()
            .unwrap();
        let pids = [reader.id(), writer.id()].map(|p| i32::try_from(p).unwrap());
        let _guard = Reaped(pids.to_vec());
        kill_pipe_holders(std::slice::from_ref(&pipe));
        // The writer is killed (and reaped here); the reader goes on.
        assert!(writer.wait().is_ok_and(|status| !status.success()));
        assert!(
            reader.try_wait().unwrap().is_none(),
            "the reader was killed"
        );
    }

    #[test]
    fn the_parent_of_a_process_is_read_from_proc() {
        let me = i32::try_from(std::process::id()).unwrap();
        let parent = i32::try_from(std::os::unix::process::parent_id()).unwrap();
        assert_eq!(parent_of(me), Some(parent));
        assert_eq!(parent_of(-1), None);
    }

    #[test]
    fn a_command_within_its_deadline_reports_its_exit_and_output() {
        let mut ok = Command::new("sh");
        ok.args(["-c", "echo out; echo err >&2"]);
        let finished = run(&mut ok, Duration::from_secs(600), Echo::Quiet).unwrap();
        assert!(finished.success() && !finished.killed, "{finished:?}");
        assert_eq!(
            (finished.stdout.trim(), finished.stderr.trim()),
            ("out", "err")
        );

        let mut failing = Command::new("sh");
        failing.args(["-c", "echo one >&2; echo two >&2; exit 3"]);
        let finished = run(&mut failing, Duration::from_secs(600), Echo::Quiet).unwrap();
        assert!(!finished.success() && !finished.killed);
        assert!(finished.describe().contains('3'), "{}", finished.describe());
        assert_eq!(finished.stderr_tail(1), "two");
        assert_eq!(finished.stderr_tail(5), "one | two");

        let missing = run(
            &mut Command::new("/nonexistent/xtask-test-binary"),
            Duration::from_secs(1),
            Echo::Quiet,
        );
        assert!(missing.is_err());
    }

    #[test]
    fn deadlines_read_in_minutes_or_seconds() {
        assert_eq!(human(Duration::from_secs(600)), "10 min");
        assert_eq!(human(Duration::from_secs(90)), "90 s");
        assert_eq!(human(Duration::from_millis(100)), "100 ms");
    }
}
