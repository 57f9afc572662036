//! `-v` levels through tracing-subscriber, on stderr so stdout stays data.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Warnings by default; `-v` info, `-vv` debug, `-vvv` trace. `RUST_LOG` wins when set and
/// not empty (an empty variable counts as unset, as every other; tracing would read it as
/// "log nothing").
pub(crate) fn init(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = std::env::var(EnvFilter::DEFAULT_ENV)
        .ok()
        .filter(|directives| !directives.is_empty())
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Stderr)
        .with_target(verbose >= 2)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Holds log lines back from stderr until [`release`]: while the dashboard owns the terminal,
/// a line written to stderr would be drawn over it (and erased by the next frame).
pub(crate) fn hold() {
    SINK.hold();
}

/// Writes the lines held since [`hold`] to stderr, and sends later ones there at once.
pub(crate) fn release() {
    SINK.release(&mut std::io::stderr().lock());
}

/// The most log lines held while the dashboard is shown; older ones are dropped (and
/// counted), so a noisy run cannot grow without bound.
const HELD_LINES: usize = 500;
/// The most bytes held, for the same reason: a line can be long.
const HELD_BYTES: usize = 256 * 1024;

static SINK: Sink = Sink::new();

/// Where log lines go: straight to their output, or held while a screen owns the terminal.
#[derive(Debug)]
struct Sink {
    held: Mutex<Option<Held>>,
}

#[derive(Debug, Default)]
struct Held {
    lines: VecDeque<Vec<u8>>,
    bytes: usize,
    dropped: usize,
}

impl Sink {
    const fn new() -> Self {
        Self {
            held: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Held>> {
        // A panic while the lock was held leaves at worst a line too many or too few.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn hold(&self) {
        self.lock().get_or_insert_with(Held::default);
    }

    fn release(&self, out: &mut impl Write) {
        let Some(held) = self.lock().take() else {
            return;
        };
        if held.dropped > 0 {
            let _ = writeln!(
                out,
                "zd: {} earlier log lines were dropped while the dashboard was shown",
                held.dropped
            );
        }
        for line in held.lines {
            let _ = out.write_all(&line);
        }
        let _ = out.flush();
    }

    /// One formatted event: held, or written to `out`. A closed stderr loses it, as
    /// `out::note` does.
    fn write_event(&self, event: &[u8], out: &mut impl Write) {
        let mut held = self.lock();
        let Some(held) = held.as_mut() else {
            drop(held);
            let _ = out.write_all(event);
            return;
        };
        held.lines.push_back(event.to_vec());
        held.bytes += event.len();
        while held.lines.len() > HELD_LINES || held.bytes > HELD_BYTES {
            let Some(oldest) = held.lines.pop_front() else {
                break;
            };
            held.bytes -= oldest.len();
            held.dropped += 1;
        }
    }
}

/// Makes the writer of one log event.
#[derive(Debug, Clone, Copy)]
struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Event;

    fn make_writer(&'a self) -> Self::Writer {
        Event(Vec::new())
    }
}

/// One log event, collected whole so that it is held or written as one line.
#[derive(Debug)]
struct Event(Vec<u8>);

impl Write for Event {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            SINK.write_event(&self.0, &mut std::io::stderr().lock());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_go_out_at_once_unless_held_and_then_after_release() {
        let sink = Sink::new();
        let mut out = Vec::new();
        sink.write_event(b"before\n", &mut out);
        assert_eq!(out, b"before\n");
        sink.hold();
        sink.write_event(b"during 1\n", &mut out);
        sink.write_event(b"during 2\n", &mut out);
        // Nothing reaches the terminal while the dashboard is on it.
        assert_eq!(out, b"before\n");
        sink.release(&mut out);
        assert_eq!(out, b"before\nduring 1\nduring 2\n");
        sink.write_event(b"after\n", &mut out);
        assert_eq!(out, b"before\nduring 1\nduring 2\nafter\n");
        // A second release has nothing to give.
        sink.release(&mut out);
        assert_eq!(out, b"before\nduring 1\nduring 2\nafter\n");
    }

    #[test]
    fn held_lines_are_bounded_and_the_dropped_counted() {
        let sink = Sink::new();
        sink.hold();
        for i in 0..HELD_LINES + 3 {
            sink.write_event(format!("line {i}\n").as_bytes(), &mut std::io::sink());
        }
        let mut out = Vec::new();
        sink.release(&mut out);
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("zd: 3 earlier log lines were dropped while the dashboard was shown")
        );
        assert_eq!(lines.next(), Some("line 3"));
        assert_eq!(lines.count(), HELD_LINES - 1);

        sink.hold();
        let long = vec![b'x'; HELD_BYTES / 2 + 1];
        for _ in 0..3 {
            sink.write_event(&long, &mut std::io::sink());
        }
        let mut out = Vec::new();
        sink.release(&mut out);
        assert!(out.starts_with(b"zd: 2 earlier"), "{:?}", &out[..20]);
        assert_eq!(
            out.len() - out.iter().position(|&b| b == b'x').unwrap(),
            long.len()
        );
    }
}
