//! The end-of-run summary, counted from both ends of every conversation.

use std::fmt::Write;

use zd_emulator::Control;
use zd_emulator::state::Sender;

use super::stats::{Stats, ms};
use super::view::Frame;
use super::visitors::Channels;
use crate::cli::DemoArgs;

/// What the run did, from the demo's counters and the emulator's transcripts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Report {
    /// Simulated visitors asked for (`--visitors`); with none, only browser visitors chat.
    pub(crate) planned: u64,
    pub(crate) visitors: u64,
    pub(crate) served: u64,
    pub(crate) visitor_sent: u64,
    pub(crate) bot_received: u64,
    pub(crate) repeats_dropped: u64,
    pub(crate) bot_sent: u64,
    pub(crate) bot_send_failed: u64,
    pub(crate) unanswered: u64,
    /// Visitor messages in the transcripts.
    pub(crate) transcript_visitor: u64,
    /// Bot messages in the transcripts, as the visitors saw them.
    pub(crate) transcript_bot: u64,
    pub(crate) structured: u64,
    pub(crate) transfers: u64,
    pub(crate) rt_count: usize,
    pub(crate) rt_p50: Option<std::time::Duration>,
    pub(crate) rt_p99: Option<std::time::Duration>,
    pub(crate) faults_injected: u64,
    pub(crate) faults_survived: u64,
    /// Faults whose recovery check finished and failed.
    pub(crate) faults_failed: u64,
    pub(crate) reconnects: u64,
    pub(crate) restarts: u64,
    /// Messages the bot got from visitors the simulator did not create (the browser).
    pub(crate) foreign_received: u64,
    pub(crate) foreign_sent: u64,
    pub(crate) foreign_send_failed: u64,
    /// The user stopped the wait for the last replies and fault checks.
    pub(crate) cut_short: bool,
}

impl Report {
    /// Messages the simulated visitors sent all reached the bot, once, and every reply
    /// reached them. Every figure here is about the simulator's channels only: other
    /// visitors' messages are not in `visitor_sent`, so they are counted apart.
    pub(crate) fn nothing_lost(&self) -> bool {
        self.visitor_sent == self.bot_received
            && self.bot_received == self.transcript_visitor
            && self.bot_sent == self.transcript_bot
            && self.bot_sent == self.bot_received
            && self.bot_send_failed == 0
            && self.unanswered == 0
    }

    /// Injected faults whose check had not finished when the run ended: neither survived
    /// nor failed.
    pub(crate) fn faults_unchecked(&self) -> u64 {
        self.faults_injected
            .saturating_sub(self.faults_survived)
            .saturating_sub(self.faults_failed)
    }

    pub(crate) fn ok(&self) -> bool {
        !self.none_served()
            && self.nothing_lost()
            && self.faults_failed == 0
            && (self.planned > 0 || self.browser_answered())
    }

    /// Without simulated visitors the browser's are all there is to check: no reply to them
    /// failed. (Not that every message got its reply: a browser visitor may write during the
    /// last moments, and the demo does not know what one saw. With simulated visitors the
    /// browser's are reported, not checked.)
    fn browser_answered(&self) -> bool {
        self.foreign_send_failed == 0
    }

    /// Simulated visitors were asked for, yet the bot served none of them.
    fn none_served(&self) -> bool {
        self.planned > 0 && self.served == 0
    }
}

pub(crate) fn collect(
    control: &Control,
    channels: &Channels,
    stats: &Stats,
    frame: &Frame,
    cut_short: bool,
    planned: u64,
) -> Report {
    let ids = channels.ids();
    let mut r = Report {
        cut_short,
        planned,
        visitors: ids.len() as u64,
        ..Report::default()
    };
    for id in &ids {
        let Ok(t) = control.transcript(id) else {
            continue;
        };
        let mut bot = 0;
        for e in t.entries.iter().filter(|e| e.kind == "message") {
            match e.from {
                Sender::Visitor { .. } => r.transcript_visitor += 1,
                Sender::Agent { .. } => bot += 1,
            }
        }
        if bot > 0 {
            r.served += 1;
        }
        r.transcript_bot += bot;
    }
    r.visitor_sent = Stats::get(&stats.visitor_sent);
    r.bot_received = stats.bot_received_count();
    r.repeats_dropped = Stats::get(&stats.bot_items).saturating_sub(r.bot_received);
    r.bot_sent = Stats::get(&stats.bot_sent);
    r.bot_send_failed = Stats::get(&stats.bot_send_failed);
    r.unanswered = Stats::get(&stats.unanswered);
    r.structured = Stats::get(&stats.structured);
    r.transfers = Stats::get(&stats.transfers);
    (r.rt_count, r.rt_p50, r.rt_p99) = (frame.rt_count, frame.rt_p50, frame.rt_p99);
    // Injected first: a check still running (the wait was cut short) can only move a fault
    // from unchecked to survived or failed, never past the injected count.
    r.faults_injected = Stats::get(&stats.faults_injected);
    r.faults_survived = Stats::get(&stats.faults_survived);
    r.faults_failed = Stats::get(&stats.faults_failed);
    r.foreign_received = stats.foreign_received_count();
    r.foreign_sent = Stats::get(&stats.foreign_sent);
    r.foreign_send_failed = Stats::get(&stats.foreign_send_failed);
    r.reconnects = frame.reconnects;
    r.restarts = frame.restarts;
    r
}

pub(crate) fn render(r: &Report, args: &DemoArgs) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nzd demo summary (seed {}, {} visitors planned)",
        args.seed, args.visitors
    );
    let _ = writeln!(
        s,
        "  chats served:       {} of {} visitors",
        r.served, r.visitors
    );
    let _ = writeln!(
        s,
        "  messages exchanged: {} ({} visitor -> bot, {} bot -> visitor)",
        r.transcript_visitor + r.transcript_bot,
        r.transcript_visitor,
        r.transcript_bot
    );
    let _ = writeln!(
        s,
        "  structured replies: {}; transfers: {}",
        r.structured, r.transfers
    );
    let _ = writeln!(
        s,
        "  round trip:         p50 {}, p99 {} ({} samples)",
        ms(r.rt_p50),
        ms(r.rt_p99),
        r.rt_count
    );
    let unchecked = r.faults_unchecked();
    let _ = writeln!(
        s,
        "  faults survived:    {} of {}{} ({} reconnects, {} session restarts)",
        r.faults_survived,
        r.faults_injected,
        if unchecked > 0 {
            format!("; {unchecked} still being checked when the run ended")
        } else {
            String::new()
        },
        r.reconnects,
        r.restarts
    );
    let _ = writeln!(
        s,
        "  nothing lost:       {}: visitors sent {}, bot received {} (repeats dropped {}); bot sent {}, visitors received {}",
        if r.nothing_lost() { "yes" } else { "NO" },
        r.visitor_sent,
        r.bot_received,
        r.repeats_dropped,
        r.bot_sent,
        r.transcript_bot
    );
    if r.foreign_received > 0 {
        let _ = writeln!(
            s,
            "  other visitors:     also answered {} of {} messages from visitors the demo did not create (the browser){}",
            r.foreign_sent,
            r.foreign_received,
            if r.foreign_send_failed > 0 {
                format!("; {} replies failed", r.foreign_send_failed)
            } else {
                String::new()
            }
        );
    }
    if r.cut_short {
        let _ = writeln!(
            s,
            "  note:               the wait for the last replies was cut short; replies still on their way count as lost"
        );
    }
    s
}

pub(crate) fn failure(r: &Report) -> String {
    let mut message = if r.none_served() {
        "no chat was served".to_owned()
    } else if !r.nothing_lost() {
        format!(
            "messages were lost: visitors sent {}, bot received {}, transcripts hold {}; bot sent {} ({} failed), visitors received {}, unanswered {}",
            r.visitor_sent,
            r.bot_received,
            r.transcript_visitor,
            r.bot_sent,
            r.bot_send_failed,
            r.transcript_bot,
            r.unanswered
        )
    } else if r.planned == 0 && !r.browser_answered() {
        format!(
            "replies to browser visitors failed: the bot got {} messages and sent {} replies ({} failed)",
            r.foreign_received, r.foreign_sent, r.foreign_send_failed
        )
    } else {
        format!(
            "{} of {} faults were not survived",
            r.faults_failed, r.faults_injected
        )
    };
    if r.cut_short {
        message.push_str(" (the wait for the last replies was cut short)");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two chats served, five messages each way, counted the same at both ends.
    fn balanced() -> Report {
        Report {
            served: 2,
            visitor_sent: 5,
            bot_received: 5,
            transcript_visitor: 5,
            bot_sent: 5,
            transcript_bot: 5,
            planned: 5,
            ..Report::default()
        }
    }

    #[test]
    fn a_run_without_simulated_visitors_needs_no_chat_served() {
        // `--visitors 0`: only visitors from the browser, if any, chat with the bot.
        let browser_only = Report {
            foreign_received: 2,
            foreign_sent: 2,
            ..Report::default()
        };
        assert!(browser_only.ok());
        let failed = Report {
            foreign_sent: 1,
            foreign_send_failed: 1,
            ..browser_only.clone()
        };
        assert!(!failed.ok());
        assert!(failure(&failed).starts_with("replies to browser visitors failed"));
        let planned = Report {
            planned: 3,
            ..browser_only
        };
        assert!(!planned.ok());
        assert!(failure(&planned).starts_with("no chat was served"));
    }

    #[test]
    fn lost_messages_fail_the_check() {
        let good = balanced();
        assert!(good.ok());
        assert!(
            !Report {
                transcript_bot: 4,
                ..good.clone()
            }
            .ok()
        );
        assert!(
            !Report {
                bot_received: 4,
                ..good.clone()
            }
            .ok()
        );
        assert!(
            !Report {
                served: 0,
                ..good.clone()
            }
            .ok()
        );
        assert!(
            !Report {
                faults_injected: 1,
                faults_failed: 1,
                ..good
            }
            .ok()
        );
    }

    fn args() -> DemoArgs {
        DemoArgs {
            duration: 10,
            visitors: 2,
            seed: 1,
            faults: true,
            port: 0,
            output: crate::cli::DemoOutput::Plain,
        }
    }

    #[test]
    fn other_visitors_are_reported_without_failing() {
        let r = Report {
            foreign_received: 3,
            foreign_sent: 3,
            ..balanced()
        };
        assert!(r.ok());
        let text = render(&r, &args());
        assert!(text.contains("nothing lost:       yes"), "{text}");
        assert!(
            text.contains("also answered 3 of 3 messages from visitors the demo did not create"),
            "{text}"
        );
    }

    #[test]
    fn a_fault_check_cut_short_is_not_a_failure() {
        let good = Report {
            served: 2,
            faults_injected: 3,
            faults_survived: 2,
            ..Report::default()
        };
        assert_eq!(good.faults_unchecked(), 1);
        assert!(good.ok());
        let text = render(&good, &args());
        assert!(
            text.contains("faults survived:    2 of 3; 1 still being checked when the run ended"),
            "{text}"
        );
        let failed = Report {
            faults_failed: 1,
            ..good
        };
        assert_eq!(failed.faults_unchecked(), 0);
        assert!(!failed.ok());
        assert_eq!(failure(&failed), "1 of 3 faults were not survived");
    }
}
