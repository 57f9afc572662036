//! The live terminal dashboard (ratatui), shown when stdout is a terminal.

use std::io::Stdout;
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table};
use zd_emulator::state::AgentStatus;

use super::stats::ms;
use super::view::Frame;
use crate::error::{Context, Kind, Result};

/// The terminal in raw mode on the alternate screen; restored when dropped.
pub(crate) struct Dashboard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    widget_url: String,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard").finish_non_exhaustive()
    }
}

impl Dashboard {
    pub(crate) fn enter(widget_url: String) -> Result<Self> {
        enable_raw_mode().context(Kind::Io, "cannot put the terminal in raw mode")?;
        // Until the Dashboard exists, its Drop cannot restore the terminal: a failure below
        // must not leave the user's shell in raw mode (or on the alternate screen).
        let mut undo = Undo {
            armed: true,
            screen: false,
        };
        let mut stdout = std::io::stdout();
        execute!(stdout, EnterAlternateScreen)
            .context(Kind::Io, "cannot open the alternate screen")?;
        undo.screen = true;
        let terminal = Terminal::new(CrosstermBackend::new(stdout))
            .context(Kind::Io, "cannot draw on the terminal")?;
        undo.armed = false;
        // Only once the value exists whose drop releases them.
        crate::logging::hold();
        Ok(Self {
            terminal,
            widget_url,
        })
    }

    /// True when the user asked to quit (q, Esc or Ctrl-C; raw mode swallows the signal).
    pub(crate) fn quit_requested(&self) -> bool {
        while event::poll(Duration::ZERO).unwrap_or(false) {
            if let Ok(Event::Key(key)) = event::read() {
                let ctrl_c =
                    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                if ctrl_c || matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) {
                    return true;
                }
            }
        }
        false
    }

    pub(crate) fn draw(&mut self, f: &Frame, finishing: bool) -> Result<()> {
        let url = self.widget_url.clone();
        self.terminal
            .draw(|frame| render(frame, f, &url, finishing))
            .map(|_| ())
            .context(Kind::Io, "cannot draw the dashboard")
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = disable_raw_mode();
        let _ = execute!(self.terminal.backend_mut(), LeaveAlternateScreen);
        let _ = self.terminal.show_cursor();
        // Back on the main screen, where the lines logged meanwhile stay readable.
        crate::logging::release();
    }
}

/// Restores what [`Dashboard::enter`] changed when it fails part way.
#[derive(Debug)]
struct Undo {
    armed: bool,
    screen: bool,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self.screen {
            let _ = execute!(std::io::stdout(), LeaveAlternateScreen);
        }
        let _ = disable_raw_mode();
    }
}

fn block(title: impl Into<String>) -> Block<'static> {
    Block::default().borders(Borders::ALL).title(Span::styled(
        title.into(),
        Style::default().add_modifier(Modifier::BOLD),
    ))
}

fn kv(key: &str, value: String) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{key:<18}"), Style::default().fg(Color::Gray)),
        Span::raw(value),
    ])
}

fn render(frame: &mut ratatui::Frame<'_>, f: &Frame, url: &str, finishing: bool) {
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(3),
            Constraint::Length(10),
            Constraint::Min(6),
            Constraint::Length(7),
        ])
        .split(frame.area());
    let status = if finishing {
        "finishing: waiting for the last replies"
    } else {
        "running (q to stop)"
    };
    let header = Paragraph::new(vec![Line::from(vec![
        Span::styled(
            "zd demo ",
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            "{}s  {status}   chat as a visitor: ",
            f.elapsed.as_secs()
        )),
        Span::styled(url.to_owned(), Style::default().fg(Color::Yellow)),
    ])])
    .block(block("Zendesk chat emulator"));
    frame.render_widget(header, rows[0]);

    let top = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([
            Constraint::Percentage(34),
            Constraint::Percentage(33),
            Constraint::Percentage(33),
        ])
        .split(rows[1]);
    let chats = Paragraph::new(vec![
        kv("queue", f.queued.to_string()),
        kv("active chats", f.active.to_string()),
        kv("served", f.served.to_string()),
        kv("closed", f.closed.to_string()),
        kv("waiting avg", ms(f.wait_avg)),
        kv("waiting max", ms(f.wait_max)),
        kv(
            "visitors",
            format!("{} arrived, {} left", f.arrived, f.left),
        ),
    ])
    .block(block("Chats"));
    frame.render_widget(chats, top[0]);
    let messages = Paragraph::new(vec![
        kv(
            "visitor -> bot",
            format!("{} / {} sent", f.bot_received, f.visitor_sent),
        ),
        kv(
            "bot -> visitor",
            format!("{} / {} sent", f.visitor_saw, f.bot_sent),
        ),
        kv("response p50", ms(f.rt_p50)),
        kv("response p99", ms(f.rt_p99)),
        kv("round trips", f.rt_count.to_string()),
        kv("bot session", f.session.clone()),
        kv(
            "reconnects",
            format!("{} (restarts {})", f.reconnects, f.restarts),
        ),
        kv(
            "faults",
            format!(
                "{} survived of {}{}",
                f.faults_survived,
                f.faults_injected,
                f.last_fault
                    .map(|l| format!(", last: {l}"))
                    .unwrap_or_default()
            ),
        ),
    ])
    .block(block("Messages and response times"));
    frame.render_widget(messages, top[1]);
    let agent_rows = f.agents.iter().map(|(name, status)| {
        let color = match status {
            AgentStatus::Online => Color::Green,
            AgentStatus::Away => Color::Yellow,
            AgentStatus::Invisible => Color::Blue,
            AgentStatus::Offline => Color::DarkGray,
        };
        Row::new(vec![
            Cell::from(name.clone()),
            Cell::from(Span::styled(
                format!("{status:?}").to_lowercase(),
                Style::default().fg(color),
            )),
        ])
    });
    let agents = Table::new(
        agent_rows,
        [Constraint::Percentage(65), Constraint::Percentage(35)],
    )
    .block(block("Agents by status"));
    frame.render_widget(agents, top[2]);

    let middle = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(50), Constraint::Percentage(50)])
        .split(rows[2]);
    let dept_rows = f.departments.iter().map(|d| {
        Row::new(vec![
            d.name.clone(),
            d.queued.to_string(),
            d.active.to_string(),
            d.served.to_string(),
        ])
    });
    let depts = Table::new(
        dept_rows,
        [
            Constraint::Percentage(40),
            Constraint::Percentage(20),
            Constraint::Percentage(20),
            Constraint::Percentage(20),
        ],
    )
    .header(
        Row::new(vec!["department", "queue", "active", "served"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(block("Per department"));
    frame.render_widget(depts, middle[0]);
    let feed_lines: Vec<Line<'static>> = match &f.feed {
        Some(values) if !values.is_empty() => values
            .iter()
            .map(|(k, v)| kv(k, v.map_or_else(|| "-".to_owned(), |v| v.to_string())))
            .collect(),
        Some(_) => vec![Line::raw("subscribed; waiting for the first values")],
        None => vec![Line::raw("not available from this emulator")],
    };
    frame.render_widget(
        Paragraph::new(feed_lines).block(block("Real Time Chat feed (zd-metrics)")),
        middle[1],
    );

    render_sparkline(frame, f, rows[3]);
}

fn render_sparkline(frame: &mut ratatui::Frame<'_>, f: &Frame, area: Rect) {
    let width = usize::from(area.width.saturating_sub(2));
    let data: Vec<u64> = f
        .rate_history
        .iter()
        .rev()
        .take(width)
        .rev()
        .copied()
        .collect();
    let peak = data.iter().max().copied().unwrap_or(0);
    let spark = Sparkline::default()
        .block(block(format!("messages per second (peak {peak})")))
        .data(&data)
        .style(Style::default().fg(Color::Cyan));
    frame.render_widget(spark, area);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ratatui::backend::TestBackend;

    use super::*;
    use crate::demo::view::DepartmentRow;

    #[test]
    fn every_panel_shows_its_figures() {
        let frame = Frame {
            elapsed: Duration::from_secs(12),
            queued: 3,
            active: 7,
            served: 21,
            wait_avg: Some(Duration::from_millis(1500)),
            rt_p50: Some(Duration::from_micros(2500)),
            rt_p99: Some(Duration::from_millis(9)),
            agents: vec![
                ("Support Bot".into(), AgentStatus::Online),
                ("Alice".into(), AgentStatus::Away),
            ],
            departments: vec![DepartmentRow {
                name: "Sales".into(),
                queued: 1,
                active: 2,
                served: 5,
            }],
            faults_injected: 4,
            faults_survived: 4,
            last_fault: Some("EOS"),
            session: "active".into(),
            rate_history: vec![1, 5, 9, 4],
            ..Frame::default()
        };
        let mut terminal = Terminal::new(TestBackend::new(140, 30)).unwrap();
        terminal
            .draw(|f| render(f, &frame, "http://127.0.0.1:9/", false))
            .unwrap();
        let buffer = terminal.backend().buffer();
        let text: String = buffer.content().iter().map(|c| c.symbol()).collect();
        for needle in [
            "http://127.0.0.1:9/",
            "queue",
            "21",
            "1500.00 ms",
            "2.50 ms",
            "Support Bot",
            "online",
            "away",
            "Sales",
            "4 survived of 4, last: EOS",
            "peak 9",
            "not available from this emulator",
        ] {
            assert!(text.contains(needle), "{needle:?} not on screen");
        }
    }
}
