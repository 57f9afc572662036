//! How much chat history the state keeps, so an emulator left running for days (a laptop, a
//! long CI job, a bot that never stops talking) holds bounded memory.
//!
//! The service documents no limit on a chat's length or on how long ended chats stay readable,
//! so both figures are the emulator's choice. What falls out is history nobody is served by any
//! more: the oldest entries of a very long chat, and chats whose visitor left over an hour ago
//! (the longest window of the real-time metrics, which therefore never change because of it).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Inner;
use super::model::{ChannelRecord, ChannelState, LogRecord};

/// The longest metric window: an ended chat younger than this still counts in some metric.
const METRICS_WINDOW: Duration = Duration::from_secs(60 * 60);

/// Bounds on the history the chat state keeps.
///
/// ```
/// use zd_emulator::state::Retention;
///
/// // Keep a short history, as a soak test of a bot that runs for days might.
/// let retention = Retention {
///     log_entries_per_chat: 500,
///     log_bytes_per_chat: 256 * 1024,
///     ended_chats: 100,
/// };
/// assert!(retention.log_entries_per_chat < Retention::default().log_entries_per_chat);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Entries (messages, joins, leaves) kept in one chat's log. Past it, the oldest fall out of
    /// the chat's history and their `msg_id`s out of its duplicate check; the chat goes on.
    pub log_entries_per_chat: usize,
    /// Bytes of message text ([`LogRecord::content_bytes`]) kept in one chat's log. Past it
    /// the oldest entries fall out as they do past `log_entries_per_chat`; the newest entry is
    /// kept whatever its size.
    pub log_bytes_per_chat: usize,
    /// Chats kept once they ended, or their visitor left, more than an hour ago (and were not
    /// rated within the hour). Past it the oldest by arrival are forgotten with their visitors,
    /// and reading them answers "not found". The pass that forgets them runs as chats arrive,
    /// each time half this number more have arrived, so more may be held in between: at most
    /// what arrives in an hour and between two passes, bounded by the arrival rate.
    pub ended_chats: usize,
}

/// The default [`Retention::log_bytes_per_chat`]: 4 MiB.
///
/// Ten thousand entries of 400 bytes each, several times a usual chat line, so an ordinary chat
/// reaches the entry bound first; a bot sending frame-sized messages (up to 256 KiB each) is
/// what reaches this one. It also keeps a chat's whole kept log within one answer: its content
/// and the entries' own fields stay under the 16 MiB answer cap and the answer's log budget.
const LOG_BYTES_PER_CHAT: usize = 4 * 1024 * 1024;

impl Default for Retention {
    /// 10,000 entries and 4 MiB of message text a chat, and 10,000 chats that ended over an
    /// hour ago.
    fn default() -> Self {
        Self {
            log_entries_per_chat: 10_000,
            log_bytes_per_chat: LOG_BYTES_PER_CHAT,
            ended_chats: 10_000,
        }
    }
}

/// Appends `record` to `channel`'s log, dropping the oldest entries past the entry and byte
/// bounds of `retention` (never the entry just appended).
pub(super) fn push_log(channel: &mut ChannelRecord, record: Arc<LogRecord>, retention: &Retention) {
    channel.log_bytes += record.content_bytes();
    channel.logs.push_back(record);
    let entries = retention.log_entries_per_chat.max(1);
    while channel.logs.len() > entries
        || (channel.log_bytes > retention.log_bytes_per_chat && channel.logs.len() > 1)
    {
        let Some(old) = channel.logs.pop_front() else {
            break;
        };
        channel.log_bytes = channel.log_bytes.saturating_sub(old.content_bytes());
        channel.log_start += 1;
        if let LogRecord::Message(m) = old.as_ref()
            && let Some(id) = &m.msg_id
        {
            channel.msg_ids.remove(id);
        }
    }
}

impl Inner {
    /// Forgets the oldest chats that ended over an hour ago, beyond the retained number.
    ///
    /// Runs as chats arrive, each time the state has grown by half the retained number since
    /// the last pass, so its linear scan costs a constant per chat.
    pub(super) fn forget_ended(&mut self, now: Instant) {
        if self.channels.len() < self.next_forget {
            return;
        }
        let keep = self.retention.ended_chats;
        let stale = |c: &ChannelRecord| {
            // A chat whose visitor left stays CLOSING while an agent is in it; a bot that never
            // leaves would otherwise keep every chat it served.
            let ended = match c.state {
                ChannelState::Closed => c.closed_at,
                ChannelState::Closing => c.left_at,
                _ => None,
            };
            // A rating may come after the end, and counts in the satisfaction windows.
            let last = ended.max(c.rated_at);
            ended.is_some()
                && last.is_some_and(|at| now.saturating_duration_since(at) >= METRICS_WINDOW)
        };
        let mut excess = self
            .channels
            .iter()
            .filter(|c| stale(c))
            .count()
            .saturating_sub(keep);
        if excess > 0 {
            // Channels are in arrival order, so the first stale ones are the oldest.
            let channels = std::mem::take(&mut self.channels);
            let mut kept = Vec::with_capacity(channels.len() - excess);
            for c in channels {
                if excess > 0 && stale(&c) {
                    excess -= 1;
                    self.visitors.remove(&c.visitor);
                } else {
                    kept.push(c);
                }
            }
            self.channels = kept;
            self.channel_index = self
                .channels
                .iter()
                .enumerate()
                .map(|(i, c)| (c.key.clone(), i))
                .collect();
        }
        self.next_forget = self.channels.len() + (keep / 2).max(1);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use super::Retention;
    use crate::account::AccountConfig;
    use crate::clock::Clock;
    use crate::state::{Arrival, ChatState, LogRecord, OutgoingMessage, Rating, SendOutcome};

    fn state(retention: Retention) -> ChatState {
        ChatState::with_retention(&AccountConfig::demo(), Clock::new(), retention)
    }

    fn arrive(state: &ChatState) -> String {
        state.visitor_arrive(Arrival::default()).unwrap().key
    }

    fn send(state: &ChatState, agent: &str, channel: &str, id: &str) -> SendOutcome {
        let message = OutgoingMessage {
            msg: format!("text of {id}"),
            msg_id: Some(id.to_owned()),
            ..OutgoingMessage::default()
        };
        state.agent_send(agent, channel, message, false).unwrap()
    }

    fn texts(state: &ChatState, channel: &str) -> Vec<String> {
        let logs = state.logs(channel).unwrap();
        logs.iter()
            .filter_map(|l| match l.as_ref() {
                LogRecord::Message(m) => Some(m.content.clone()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_long_chat_keeps_its_latest_entries_and_goes_on() {
        let state = state(Retention {
            log_entries_per_chat: 4,
            ..Retention::default()
        });
        let agent = state.agents()[0].key.clone();
        let channel = arrive(&state);
        for i in 0..10 {
            assert!(matches!(
                send(&state, &agent, &channel, &format!("m{i}")),
                SendOutcome::Sent(_)
            ));
        }
        let (start, kept) = state.logs_window(&channel).unwrap();
        // The visitor's and the agent's joins and ten messages: eight entries fell out before
        // the four kept.
        assert_eq!((start, kept.len()), (8, 4));
        assert_eq!(
            texts(&state, &channel),
            ["text of m6", "text of m7", "text of m8", "text of m9"]
        );
        // A retained msg_id is still a duplicate; one that fell out is a new message.
        assert!(matches!(
            send(&state, &agent, &channel, "m9"),
            SendOutcome::Duplicate
        ));
        assert!(matches!(
            send(&state, &agent, &channel, "m0"),
            SendOutcome::Sent(_)
        ));
        assert_eq!(texts(&state, &channel).last().unwrap(), "text of m0");
    }

    #[tokio::test]
    async fn a_chat_keeps_a_bounded_amount_of_text_and_its_newest_entry() {
        let state = state(Retention {
            log_bytes_per_chat: 40,
            ..Retention::default()
        });
        let agent = state.agents()[0].key.clone();
        let channel = arrive(&state);
        // Each message is 12 bytes: "text of mN" and its msg_id "mN".
        for i in 0..6 {
            send(&state, &agent, &channel, &format!("m{i}"));
        }
        // Three messages (36 bytes) fit, a fourth would not; the joins carry no text and went
        // first, being oldest.
        let (start, kept) = state.logs_window(&channel).unwrap();
        assert_eq!((start, kept.len()), (5, 3));
        assert_eq!(
            texts(&state, &channel),
            ["text of m3", "text of m4", "text of m5"]
        );
        assert!(matches!(
            send(&state, &agent, &channel, "m5"),
            SendOutcome::Duplicate
        ));
        assert!(matches!(
            send(&state, &agent, &channel, "m0"),
            SendOutcome::Sent(_)
        ));
        // One message larger than the bound is still kept, alone.
        let long = OutgoingMessage {
            msg: "x".repeat(100),
            ..OutgoingMessage::default()
        };
        state.agent_send(&agent, &channel, long, false).unwrap();
        assert_eq!(texts(&state, &channel), ["x".repeat(100)]);
        send(&state, &agent, &channel, "m1");
        assert_eq!(texts(&state, &channel), ["text of m1"]);
    }

    #[tokio::test(start_paused = true)]
    async fn chats_that_ended_over_an_hour_ago_are_forgotten_oldest_first() {
        let state = state(Retention {
            ended_chats: 2,
            ..Retention::default()
        });
        let agent = state.agents()[0].key.clone();
        // The oldest: served, then left by its visitor while the agent stays (CLOSING).
        let mut old = vec![arrive(&state)];
        send(&state, &agent, &old[0], "hello");
        old.extend((0..4).map(|_| arrive(&state)));
        let rated = arrive(&state);
        let visitors: Vec<String> = old
            .iter()
            .map(|c| state.channel_meta(c).unwrap().visitor)
            .collect();
        for c in old.iter().chain([&rated]) {
            state.visitor_leave(c).unwrap();
        }
        tokio::time::advance(Duration::from_secs(60 * 60)).await;
        // Rated now: it counts in the satisfaction windows for another hour, so it stays.
        state.visitor_rate(&rated, Rating::Good).unwrap();
        // Ended within the hour: they still count in the metrics' windows, so they stay.
        let recent: Vec<String> = (0..3).map(|_| arrive(&state)).collect();
        for c in &recent {
            state.visitor_leave(c).unwrap();
        }
        let open = arrive(&state);

        // Five ended over an hour ago and two may stay: the three oldest by arrival go.
        for (c, v) in old.iter().zip(&visitors).take(3) {
            assert!(state.channel_meta(c).is_none(), "{c} should be forgotten");
            assert!(state.visitor(v).is_none());
        }
        for c in old[3..]
            .iter()
            .chain([&rated])
            .chain(&recent)
            .chain([&open])
        {
            assert!(state.channel_meta(c).is_some(), "{c} should be kept");
        }
        assert_eq!(state.channels().len(), 7);
        // Lookups by key still find the right chats after the index was rebuilt.
        assert_eq!(state.channel_meta(&open).unwrap().key, open);
        state.visitor_message(&open, "still here").unwrap();
    }
}
