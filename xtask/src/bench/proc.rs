//! A child process measured from outside: CPU seconds (user + system, all threads, ended ones
//! included) and peak resident memory (`VmHWM`), with its JSON lines collected.
//!
//! CPU is read from the child's process CPU clock (`clock_getcpuclockid`), in nanoseconds, the
//! moment it prints `ready` and `done`. That clock counts threads that have already ended (a
//! Python pool's, a Node helper's) and can still be read while the exited child waits as a
//! zombie to be reaped. `/proc/<pid>/stat` ticks (10 ms steps) stand in where the clock cannot
//! be read, and the run records which ([`CpuSource`]) so the report can say so. The poller reads `stat` and `/proc/<pid>/status` every few milliseconds; `VmHWM` is
//! a high-water mark kept by the kernel, so polling misses at most the growth of the last
//! interval.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

const POLL: Duration = Duration::from_millis(10);
const STDERR_KEEP: usize = 4000;
/// How long the last stdout lines may take to arrive after the exit.
const STDOUT_DRAIN: Duration = Duration::from_secs(5);
/// How long the stderr reader may take to hang up once what held its pipe was killed.
const PIPE_CLOSE: Duration = Duration::from_secs(1);
/// How long a driver may take to exit after its `done` line: its figures are in, and one
/// hanging on shutdown must not hold the harness for the whole run's timeout.
pub(crate) const AFTER_DONE: Duration = Duration::from_secs(30);

/// Where a run's CPU figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CpuSource {
    /// The process CPU clock (nanoseconds), read at `ready` and at `done`.
    Clock,
    /// `/proc/<pid>/stat` ticks (10 ms steps) for at least one of the figures: the clock could
    /// not be read at one of its ends.
    Ticks,
}

/// What was measured of one finished process.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    /// CPU seconds from its start to its `done` line (or its exit), from the process CPU clock
    /// where it can be read, else `stat` ticks; never below `cpu_work_s`.
    pub(crate) cpu_total_s: f64,
    /// CPU seconds from its `ready` line to its `done` line: the workload alone, from the
    /// process CPU clock where it can be read, else `stat` ticks.
    pub(crate) cpu_work_s: f64,
    /// Which of the two the figures above come from.
    pub(crate) cpu_source: CpuSource,
    /// Peak resident set, KiB.
    pub(crate) peak_rss_kib: u64,
    /// Wall time from spawn to exit.
    pub(crate) wall_s: f64,
    /// Its `done` line, if it printed one.
    pub(crate) done: Option<Value>,
    /// How it ended.
    pub(crate) exit: String,
    /// Whether it was killed (at the timeout, or for not exiting after its `done` line).
    pub(crate) killed: bool,
    /// Whether it exited by itself with status 0.
    pub(crate) exited_ok: bool,
    /// The end of its stderr, for the report when it failed.
    pub(crate) stderr_tail: String,
}

#[derive(Debug, Default)]
struct Readings {
    /// The latest `stat` ticks the poller saw.
    cpu_ticks: u64,
    /// CPU when `ready` and `done` were printed.
    at_ready: CpuReading,
    at_done: CpuReading,
    /// When the `done` line was read.
    done_at: Option<Instant>,
    peak_rss_kib: u64,
    exited: bool,
}

/// A process's CPU used so far, by both clocks; either may be missing.
#[derive(Debug, Default, Clone, Copy)]
struct CpuReading {
    /// `stat` ticks (10 ms steps).
    ticks: Option<u64>,
    /// The process CPU clock, in nanoseconds.
    ns: Option<u64>,
}

impl CpuReading {
    fn now(pid: u32) -> Self {
        Self {
            ticks: read_stat(pid).map(|(t, _)| t),
            ns: process_cpu_ns(pid),
        }
    }
}

/// A running, measured process.
#[derive(Debug)]
pub(crate) struct Monitored {
    child: Child,
    started: Instant,
    readings: Arc<Mutex<Readings>>,
    lines: Receiver<Value>,
    early: Vec<Value>,
    poller: Option<JoinHandle<()>>,
    /// The end of its stderr, sent once the pipe closes.
    stderr: Option<Receiver<String>>,
    /// How /proc names its stdout and stderr pipes, to find what still holds them.
    pipes: Vec<PathBuf>,
    /// How long its pipes may stay open after the exit ([`STDOUT_DRAIN`]).
    drain: Duration,
}

impl Monitored {
    /// Spawns `command` with piped stdout/stderr and starts measuring it.
    pub(crate) fn spawn(command: &mut Command) -> Result<Self, String> {
        Self::spawn_with(command, read_stat)
    }

    /// [`Monitored::spawn`], with `stat` reading `/proc/<pid>/stat` for the poller.
    fn spawn_with(
        command: &mut Command,
        stat: fn(u32) -> Option<(u64, char)>,
    ) -> Result<Self, String> {
        let mut child = super::deadline::spawn_piped(command)?;
        let pid = child.id();
        let pipes = [
            child.stdout.as_ref().and_then(super::deadline::pipe_name),
            child.stderr.as_ref().and_then(super::deadline::pipe_name),
        ]
        .into_iter()
        .flatten()
        .collect();
        let readings = Arc::new(Mutex::new(Readings::default()));
        let (tx, lines) = channel();
        if let Some(stdout) = child.stdout.take() {
            let readings = Arc::clone(&readings);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let Ok(value) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    // Read now, not when the harness gets round to it.
                    let (ready, done) = (value["event"] == "ready", value["event"] == "done");
                    if ready || done {
                        let reading = CpuReading::now(pid);
                        if let Ok(mut r) = readings.lock() {
                            if ready {
                                r.at_ready = reading;
                            } else {
                                r.at_done = reading;
                                r.done_at = Some(Instant::now());
                            }
                        }
                    }
                    if tx.send(value).is_err() {
                        break;
                    }
                }
            });
        }
        let stderr = child.stderr.take().map(|mut err| {
            let (tx, rx) = channel();
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = err.read_to_string(&mut text);
                let cut = text.len().saturating_sub(STDERR_KEEP);
                let cut = (cut..text.len())
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                let _ = tx.send(text[cut..].to_owned());
            });
            rx
        });
        let poller = {
            let readings = Arc::clone(&readings);
            std::thread::spawn(move || poll(pid, &readings, stat))
        };
        Ok(Self {
            child,
            started: Instant::now(),
            readings,
            lines,
            early: Vec::new(),
            poller: Some(poller),
            stderr,
            pipes,
            drain: STDOUT_DRAIN,
        })
    }

    /// Waits for the `ready` line; an error if the process exits or `timeout` passes first.
    pub(crate) fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let ready = line["event"] == "ready";
                    self.early.push(line);
                    if ready {
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("not ready within {} s", timeout.as_secs()));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err("exited before it was ready".to_owned());
                }
            }
        }
    }

    /// Waits for the exit (killing the process after `timeout`, or [`AFTER_DONE`] after its
    /// `done` line if that comes first) and returns the measurements.
    pub(crate) fn finish(self, timeout: Duration) -> Measured {
        self.finish_within(timeout, AFTER_DONE)
    }

    /// [`Monitored::finish`], with `after_done` for [`AFTER_DONE`].
    fn finish_within(mut self, timeout: Duration, after_done: Duration) -> Measured {
        let deadline = Instant::now() + timeout;
        let mut killed: Option<Kill> = None;
        while !self.readings.lock().map_or(true, |r| r.exited) {
            self.kill_when_due(&mut killed, deadline, after_done);
            std::thread::sleep(POLL);
        }
        if let Some(poller) = self.poller.take() {
            let _ = poller.join();
        }
        let wall_s = self.started.elapsed().as_secs_f64();
        let mut lines = std::mem::take(&mut self.early);
        // The stdout reader may still be on the last lines when the exit is seen: read until
        // it hangs up (the pipe closed), bounded in case a grandchild keeps the pipe open.
        // Only then reap: the reader reads the CPU clock at `done`, which a reaped process
        // no longer has.
        let drain_until = Instant::now() + self.drain;
        let mut stdout_open = true;
        loop {
            let left = drain_until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(RecvTimeoutError::Disconnected) => {
                    stdout_open = false;
                    break;
                }
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        // The poller takes a `stat` it cannot read for the exit, which it may not be: the
        // reap is bounded by the same deadlines as the run, like the wait above.
        let status: Option<ExitStatus> = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if killed.is_some() => break self.child.wait().ok(),
                Ok(None) => {
                    self.kill_when_due(&mut killed, deadline, after_done);
                    if killed.is_none() {
                        std::thread::sleep(POLL);
                    }
                }
                Err(_) => {
                    super::deadline::kill_tree(&mut self.child);
                    break self.child.wait().ok();
                }
            }
        };
        lines.extend(self.lines.try_iter());
        let stderr_left = drain_until.saturating_duration_since(Instant::now());
        let mut stderr_tail = self.stderr.as_ref().map(|rx| rx.recv_timeout(stderr_left));
        let stderr_open = matches!(stderr_tail, Some(Err(RecvTimeoutError::Timeout)));
        if stdout_open || stderr_open {
            // What still holds the pipes now was left behind by the driver (its children
            // were handed to init when it exited, out of `kill_tree`'s reach): killed, so it
            // neither outlives the run nor keeps the stderr reader waiting.
            super::deadline::kill_pipe_holders(&self.pipes);
            lines.extend(self.lines.try_iter());
            if stderr_open {
                stderr_tail = self.stderr.as_ref().map(|rx| rx.recv_timeout(PIPE_CLOSE));
            }
        }
        let stderr_tail = stderr_tail.and_then(Result::ok).unwrap_or_default();
        let done = lines.into_iter().find(|l| l["event"] == "done");
        let hz = clock_ticks_per_second();
        let r = self.readings.lock().map(|r| {
            let ticks_work = r
                .at_done
                .ticks
                .unwrap_or(r.cpu_ticks)
                .saturating_sub(r.at_ready.ticks.unwrap_or(0)) as f64
                / hz;
            let ns_work = match (r.at_ready.ns, r.at_done.ns) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1e9),
                _ => None,
            };
            let work = work_seconds(ticks_work, ns_work);
            let ns_total = r.at_done.ns.map(|ns| ns as f64 / 1e9);
            let ticks_total = r.at_done.ticks.unwrap_or(r.cpu_ticks) as f64 / hz;
            let total = total_seconds(ticks_total, ns_total, work);
            let source = cpu_source(ns_work, ns_total);
            (total, r.peak_rss_kib, work, source)
        });
        let (cpu_total_s, peak, cpu_work_s, cpu_source) =
            r.unwrap_or((0.0, 0, 0.0, CpuSource::Ticks));
        let exit = match (killed, status) {
            (Some(Kill::Timeout), _) => format!("killed after {} s", timeout.as_secs()),
            (Some(Kill::AfterDone), _) => format!(
                "killed {} s after its `done` line",
                after_done.as_secs_f64()
            ),
            (None, Some(s)) => s.to_string(),
            (None, None) => "unknown".to_owned(),
        };
        Measured {
            cpu_total_s,
            cpu_work_s,
            cpu_source,
            peak_rss_kib: peak,
            wall_s,
            done,
            exit,
            killed: killed.is_some(),
            exited_ok: killed.is_none() && status.is_some_and(|s| s.success()),
            stderr_tail,
        }
    }

    /// Kills the process and what it started once one of its deadlines has passed (`deadline`,
    /// or `after_done` after its `done` line), and records which in `killed`; only once.
    fn kill_when_due(
        &mut self,
        killed: &mut Option<Kill>,
        deadline: Instant,
        after_done: Duration,
    ) {
        if killed.is_some() {
            return;
        }
        let done_at = self.readings.lock().ok().and_then(|r| r.done_at);
        let now = Instant::now();
        let kill = if done_at.is_some_and(|t| now >= t + after_done) {
            Some(Kill::AfterDone)
        } else if now >= deadline {
            Some(Kill::Timeout)
        } else {
            None
        };
        if kill.is_some() {
            super::deadline::kill_tree(&mut self.child);
            *killed = kill;
        }
    }
}

/// Why the harness killed a process.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// The run's timeout passed.
    Timeout,
    /// It had not exited [`AFTER_DONE`] after its `done` line.
    AfterDone,
}

impl Drop for Monitored {
    fn drop(&mut self) {
        // A run abandoned on an error path must not leave its process behind.
        if self.poller.is_some() {
            super::deadline::kill_tree(&mut self.child);
            let _ = self.child.wait();
        }
    }
}

fn poll(pid: u32, readings: &Mutex<Readings>, read_stat: fn(u32) -> Option<(u64, char)>) {
    loop {
        let stat = read_stat(pid);
        let hwm = read_hwm(pid);
        let Ok(mut r) = readings.lock() else { return };
        match stat {
            Some((ticks, state)) => {
                r.cpu_ticks = r.cpu_ticks.max(ticks);
                if let Some(kib) = hwm {
                    r.peak_rss_kib = r.peak_rss_kib.max(kib);
                }
                if state == 'Z' || state == 'X' {
                    r.exited = true;
                    return;
                }
            }
            None => {
                r.exited = true;
                return;
            }
        }
        drop(r);
        std::thread::sleep(POLL);
    }
}

/// `utime + stime` in clock ticks and the state letter, from `/proc/<pid>/stat`.
fn read_stat(pid: u32) -> Option<(u64, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// The fields of a `/proc/<pid>/stat` line after the command name, which may hold spaces and
/// parentheses: the state (field 3 of the whole line) first, then the parent's pid.
pub(crate) fn stat_fields(text: &str) -> Option<Vec<&str>> {
    let (_, rest) = text.rsplit_once(')')?;
    Some(rest.split_whitespace().collect())
}

/// `utime + stime` (fields 14 and 15 of the whole line) and the state letter.
pub(crate) fn parse_stat(text: &str) -> Option<(u64, char)> {
    let fields = stat_fields(text)?;
    let state = fields.first()?.chars().next()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime, state))
}

/// The workload's CPU seconds: the clock's figure when it was read at both ends, else ticks.
fn work_seconds(ticks_work: f64, ns_work: Option<f64>) -> f64 {
    ns_work.unwrap_or(ticks_work)
}

/// The process's CPU seconds up to its `done` line, chosen like [`work_seconds`] and never
/// below the workload's own figure (the two may come from different clocks).
fn total_seconds(ticks_total: f64, ns_total: Option<f64>, work: f64) -> f64 {
    work_seconds(ticks_total, ns_total).max(work)
}

/// [`CpuSource::Clock`] only when both figures came from the clock.
fn cpu_source(ns_work: Option<f64>, ns_total: Option<f64>) -> CpuSource {
    if ns_work.is_some() && ns_total.is_some() {
        CpuSource::Clock
    } else {
        CpuSource::Ticks
    }
}

/// The CPU nanoseconds `pid` has used so far, all its threads together, ended ones included.
#[cfg(target_os = "linux")]
fn process_cpu_ns(pid: u32) -> Option<u64> {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).ok()?);
    let now = nix::time::clock_getcpuclockid(pid).ok()?.now().ok()?;
    let secs = u64::try_from(now.tv_sec()).ok()?;
    let nanos = u64::try_from(now.tv_nsec()).ok()?;
    Some(secs * 1_000_000_000 + nanos)
}

/// Elsewhere there is no such clock to read; the ticks stand in.
#[cfg(not(target_os = "linux"))]
fn process_cpu_ns(_pid: u32) -> Option<u64> {
    None
}

fn read_hwm(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_kib(&text, "VmHWM:")
}

/// A `Key:   123 kB` line of `/proc/*/status` or `/proc/meminfo`.
pub(crate) fn parse_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `CLK_TCK`, asked of `getconf` once; Linux uses 100 nearly everywhere.
fn clock_ticks_per_second() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|hz| *hz > 0.0)
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_tricky_name() {
        let line = "4242 (node (v8) x) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 11 0";
        assert_eq!(parse_stat(line), Some((175, 'S')));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn measures_a_real_child_and_collects_its_lines() {
        let script =
            r#"echo '{"event":"ready"}'; echo 'not json'; echo '{"event":"done","phases":[]}'"#;
        let mut child = Monitored::spawn(Command::new("sh").args(["-c", script])).unwrap();
        child.wait_ready(Duration::from_secs(30)).unwrap();
        let measured = child.finish(Duration::from_secs(30));
        assert_eq!(measured.done.as_ref().unwrap()["event"], "done");
        assert!(measured.exit.contains('0'), "{}", measured.exit);
        #[cfg(target_os = "linux")]
        assert_eq!(measured.cpu_source, CpuSource::Clock, "{measured:?}");
        // Starting a shell costs CPU; where the clock is read, the total shows it.
        assert!(
            measured.cpu_total_s > 0.0 || !cfg!(target_os = "linux"),
            "{measured:?}"
        );

        let mut silent = Monitored::spawn(Command::new("sh").args(["-c", "exit 3"])).unwrap();
        assert!(silent.wait_ready(Duration::from_secs(30)).is_err());
        let measured = silent.finish(Duration::from_secs(30));
        assert!(measured.done.is_none() && measured.exit.contains('3'));
    }

    #[test]
    fn a_driver_hanging_after_its_done_line_is_killed_and_says_so() {
        let script =
            r#"echo '{"event":"ready"}'; echo '{"event":"done","phases":[]}'; exec sleep 30"#;
        let mut child = Monitored::spawn(Command::new("sh").args(["-c", script])).unwrap();
        child.wait_ready(Duration::from_secs(30)).unwrap();
        let measured = child.finish_within(Duration::from_secs(600), Duration::from_millis(100));
        assert!(measured.done.is_some(), "{measured:?}");
        assert!(measured.killed && !measured.exited_ok, "{measured:?}");
        assert!(
            measured.exit.contains("after its `done` line"),
            "{}",
            measured.exit
        );
        // One that exits by itself after `done` is not killed, and its status is kept.
        let script = r#"echo '{"event":"ready"}'; echo '{"event":"done","phases":[]}'; exit 4"#;
        let mut child = Monitored::spawn(Command::new("sh").args(["-c", script])).unwrap();
        child.wait_ready(Duration::from_secs(30)).unwrap();
        let measured = child.finish(Duration::from_secs(600));
        assert!(!measured.killed && !measured.exited_ok, "{measured:?}");
        assert!(measured.exit.contains('4'), "{}", measured.exit);
    }

    #[test]
    fn a_driver_whose_stat_cannot_be_read_is_still_killed_at_its_deadline() {
        // The poller takes the unreadable `stat` for an exit; the driver is in fact running.
        let script = r#"echo '{"event":"ready"}'; exec sleep 30"#;
        let mut child =
            Monitored::spawn_with(Command::new("sh").args(["-c", script]), |_| None).unwrap();
        child.drain = Duration::from_millis(50);
        child.wait_ready(Duration::from_secs(30)).unwrap();
        let measured = child.finish_within(Duration::from_millis(300), AFTER_DONE);
        assert!(measured.killed && !measured.exited_ok, "{measured:?}");
        assert!(
            measured.exit.starts_with("killed after"),
            "{}",
            measured.exit
        );
    }

    #[test]
    fn what_a_driver_leaves_holding_its_output_is_killed() {
        use super::super::deadline::tests::{Reaped, ends};
        // A sleep holding its stdout, then one holding its stderr, each outliving the driver,
        // which says the sleep's pid in its `done` line.
        for redirect in ["2>/dev/null", ">/dev/null"] {
            let script = format!(
                r#"echo '{{"event":"ready"}}'; sleep 300 {redirect} &
                   echo "{{\"event\":\"done\",\"phases\":[],\"pid\":$!}}""#
            );
            let mut child = Monitored::spawn(Command::new("sh").args(["-c", &script])).unwrap();
            child.drain = Duration::from_millis(100);
            child.wait_ready(Duration::from_secs(30)).unwrap();
            let measured = child.finish(Duration::from_secs(600));
            assert!(!measured.killed && measured.exited_ok, "{measured:?}");
            let pid = measured.done.as_ref().and_then(|d| d["pid"].as_i64());
            let pid = i32::try_from(pid.expect("the pid in `done`")).unwrap();
            let mut guard = Reaped(vec![pid]);
            assert!(ends(pid), "the sleep ({redirect}) outlived the driver");
            // Gone: its pid may be another process's now.
            guard.0.clear();
        }
    }

    #[test]
    fn total_seconds_prefers_the_clock_and_never_undercuts_the_work() {
        // A bursty process: ticks saw 0.14 s, the clock 0.152 s, 0.15 s of it working.
        assert_eq!(total_seconds(0.14, Some(0.152), 0.15), 0.152);
        // No clock and the ticks below the work figure: never less than the work.
        assert_eq!(total_seconds(0.0, None, 0.01), 0.01);
        assert_eq!(work_seconds(0.2, None), 0.2);
        // Which clock is said: the ticks as soon as either figure needed them.
        assert_eq!(cpu_source(Some(0.1), Some(0.2)), CpuSource::Clock);
        assert_eq!(cpu_source(None, Some(0.2)), CpuSource::Ticks);
        assert_eq!(cpu_source(Some(0.1), None), CpuSource::Ticks);
    }

    /// Not a test on its own: the child of `counts_cpu_of_threads_that_ended`, run by it.
    #[test]
    #[ignore = "the child process of counts_cpu_of_threads_that_ended"]
    #[cfg(target_os = "linux")]
    fn child_burning_in_a_thread() {
        use nix::sys::time::TimeValLike;
        let go = std::env::var_os(CHILD_ENV).expect("run by its parent test");
        println!(r#"{{"event":"ready"}}"#);
        // Burning before the parent has read the clock at `ready` would hide part of the
        // burn from it: wait for its go-ahead, a file it creates once it has the reading.
        while !std::path::Path::new(&go).exists() {
            std::thread::sleep(Duration::from_millis(2));
        }
        let burned = std::thread::spawn(|| {
            let clock = nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID;
            let start = clock.now().unwrap();
            loop {
                let spent = clock.now().unwrap() - start;
                if spent.num_milliseconds() >= 200 {
                    return spent.num_nanoseconds();
                }
            }
        })
        .join()
        .unwrap();
        println!(r#"{{"event":"done","burned_ns":{burned}}}"#);
    }

    const CHILD_ENV: &str = "XTASK_PROC_TEST_CHILD";

    #[test]
    #[cfg(target_os = "linux")]
    fn counts_cpu_of_threads_that_ended() {
        let dir = tempfile::tempdir().unwrap();
        let go = dir.path().join("go");
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                "bench::proc::tests::child_burning_in_a_thread",
                "--ignored",
                "--nocapture",
            ])
            .env(CHILD_ENV, &go);
        let mut child = Monitored::spawn(&mut command).unwrap();
        // `wait_ready` returns only after the clock was read at `ready`.
        child.wait_ready(Duration::from_secs(30)).unwrap();
        std::fs::write(&go, b"go").unwrap();
        let measured = child.finish(Duration::from_secs(30));
        let burned = measured.done.as_ref().unwrap()["burned_ns"]
            .as_f64()
            .unwrap()
            / 1e9;
        // The thread is gone by `done`, and 10 ms ticks would round its time down.
        assert!(
            measured.cpu_work_s >= burned && measured.cpu_work_s < burned + 0.1,
            "work {} s, burned {burned} s",
            measured.cpu_work_s
        );
        // The total also counts the test binary's start before `ready`.
        assert!(
            measured.cpu_total_s > measured.cpu_work_s,
            "total {} s, work {} s",
            measured.cpu_total_s,
            measured.cpu_work_s
        );
    }

    #[test]
    fn parses_status_kib() {
        let status = "Name:\tx\nVmHWM:\t   20480 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(parse_kib(status, "VmHWM:"), Some(20480));
        assert_eq!(parse_kib(status, "VmPeak:"), None);
    }
}
