//! The typed operations as methods of [`AgentSession`].

use std::collections::VecDeque;
use std::sync::OnceLock;

use cynic::{MutationBuilder, QueryBuilder, SubscriptionBuilder};
use futures_core::Stream;

use crate::driver::QueryText;
use crate::driver::Replay;
use crate::error::{Error, ErrorKind};
use crate::ops::*;
use crate::session::{AgentSession, cached_query, decode_data};
use crate::structured::{
    ButtonTemplate, ListTemplate, PanelCarousel, PanelTemplate, QuickReplies, non_empty,
    validate_tags,
};
use crate::subscription::{CatchUp, Subscription};

/// Page size of the pagination streams.
const PAGE_SIZE: i32 = 50;

/// A message to send. It always carries a `msg_id` (one is generated when
/// [`SendMessageBuilder::msg_id`] gives none), with which a send cut off by a reconnect is sent
/// again; whether the service drops such a repeat is not documented, see
/// [`Config::resend_messages`](crate::Config::resend_messages).
#[derive(Debug, Clone)]
#[must_use]
pub struct OutgoingMessage {
    channel_id: cynic::Id,
    msg: String,
    msg_id: Option<String>,
    backoff: Option<bool>,
    options: Option<Vec<String>>,
}

/// Alias kept for readability at call sites.
pub type SendMessageBuilder = OutgoingMessage;

impl OutgoingMessage {
    /// `msg` to `channel_id`.
    pub fn new(channel_id: impl Into<cynic::Id>, msg: impl Into<String>) -> Self {
        Self {
            channel_id: channel_id.into(),
            msg: msg.into(),
            msg_id: None,
            backoff: None,
            options: None,
        }
    }

    /// The custom message id; a repeated id creates one message.
    pub fn msg_id(mut self, id: impl Into<String>) -> Self {
        self.msg_id = Some(id.into());
        self
    }

    /// Do not send if another agent serves the channel; a message held back that way fails
    /// with [`ErrorKind::BackedOff`].
    pub fn backoff(mut self, backoff: bool) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Options the visitor may pick from.
    pub fn options(mut self, options: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options = Some(options.into_iter().map(Into::into).collect());
        self
    }
}

fn succeeded(success: Option<bool>) -> Result<(), Error> {
    if success == Some(false) {
        return Err(Error::new(ErrorKind::Service(vec![
            crate::error::ServiceError {
                name: None,
                message: "the service answered success: false".into(),
                uuid: None,
            },
        ])));
    }
    Ok(())
}

fn paginate<T, F, Fut>(fetch: F) -> impl Stream<Item = Result<T, Error>> + Send
where
    T: Send + 'static,
    F: Fn(Option<String>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), Error>> + Send,
{
    struct State<T, F> {
        fetch: F,
        buffer: VecDeque<T>,
        cursor: Option<String>,
        done: bool,
    }
    let state = State {
        fetch,
        buffer: VecDeque::new(),
        cursor: None,
        done: false,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.buffer.pop_front() {
                return Some((Ok(item), st));
            }
            if st.done {
                return None;
            }
            match (st.fetch)(st.cursor.take()).await {
                Ok((items, next)) => {
                    st.done = next.is_none() || items.is_empty();
                    st.cursor = next;
                    st.buffer.extend(items);
                }
                Err(e) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
            }
        }
    })
}

/// How many channels a catch-up covers (the first page of `channels`; one more is asked for,
/// to tell a page of exactly this many from a longer list).
const CATCH_UP_CHANNELS: i32 = 100;
/// How many of each channel's latest log entries a catch-up fetches.
const CATCH_UP_LOGS: i32 = 50;

/// The messages of a catch-up answer sent at or after `since_ms`, and an
/// [`ErrorKind::CatchUp`] error when the answer reached the query's limits without reaching
/// back to `gap_start_ms`.
fn missed_messages(
    text: &str,
    since_ms: f64,
    gap_start_ms: f64,
) -> Result<(Vec<Message>, Option<Error>), Error> {
    let data: CatchUpQuery = crate::session::decode_json(text)?;
    let cut_off = cut_off(&data, gap_start_ms).map(|c| Error::with_source(ErrorKind::CatchUp, c));
    let newer = |m: &Message| m.timestamp_ms().is_none_or(|t| t >= since_ms);
    let missed = data.into_messages().into_iter().filter(newer).collect();
    Ok((missed, cut_off))
}

/// Whether a catch-up answer may have left part of the gap out: the channel page is full, or
/// a channel's log page is full with no message from before the gap began (one would show
/// the page holds all of the channel's gap). The gap's start, not the overlap before it,
/// counts: what came in the overlap was handed out live, and a busy chat fills 50 entries
/// of overlap without missing anything.
fn cut_off(data: &CatchUpQuery, gap_start_ms: f64) -> Option<crate::error::CatchUpCutOff> {
    use crate::error::CatchUpCutOff;
    let edges = data.channels.as_ref().and_then(|c| c.edges.as_deref())?;
    // One more is asked for than the limit: a full page of exactly the limit is no cut-off.
    if edges.len() > CATCH_UP_CHANNELS as usize {
        return Some(CatchUpCutOff::Channels(CATCH_UP_CHANNELS));
    }
    let channels = edges.iter().flatten().filter_map(|e| e.node.as_ref());
    for channel in channels {
        let CatchUpChannel::VisitorChannel(channel) = channel else {
            continue;
        };
        let logs = channel
            .logs
            .as_ref()
            .and_then(|l| l.edges.as_deref())
            .unwrap_or_default();
        if logs.len() < CATCH_UP_LOGS as usize {
            continue;
        }
        let mut messages = logs.iter().flatten().filter_map(|e| match &e.node {
            Some(ChatLog::Message(m)) => Some(m),
            _ => None,
        });
        let reaches_back = messages
            .clone()
            .any(|m| m.timestamp_ms().is_some_and(|t| t <= gap_start_ms));
        if !reaches_back {
            // The query selects no channel id (its text stays as it was); a message has it.
            let id = messages.next().map_or_else(
                || "(unknown)".to_owned(),
                |m| m.channel.id.inner().to_owned(),
            );
            return Some(CatchUpCutOff::Logs(CATCH_UP_LOGS, id));
        }
    }
    None
}

impl AgentSession {
    /// Every agent, page by page (Relay pagination), as a stream.
    ///
    /// # Consistency
    /// Each page starts after the position of the previous page's last item. Agents added or
    /// removed while the stream is read shift the ones after them: a removal makes the next
    /// page skip one, an addition yields one twice. Collect the listing before acting on it
    /// when the action changes it.
    pub fn agents(&self) -> impl Stream<Item = Result<Agent, Error>> + Send + 'static {
        self.listing(AgentsQuery::build, |data: AgentsQuery| {
            data.agents
                .map(AgentConnection::into_page)
                .unwrap_or_default()
        })
    }

    /// Every department, as a stream.
    ///
    /// # Consistency
    /// As [`AgentSession::agents`]: departments added or removed while the stream is read
    /// make it skip or repeat one; collect first when acting changes the listing.
    pub fn departments(&self) -> impl Stream<Item = Result<Department, Error>> + Send + 'static {
        self.listing(DepartmentsQuery::build, |data: DepartmentsQuery| {
            data.departments
                .map(DepartmentConnection::into_page)
                .unwrap_or_default()
        })
    }

    /// Every channel this agent serves or listens to, as a stream.
    ///
    /// # Consistency
    /// Each page starts after the position of the previous page's last channel, so the list
    /// must not change while it is read. Leaving, transferring away or joining a channel
    /// while reading shifts the channels after it: a bot that leaves each channel as it reads
    /// it skips one per page after the first. Collect the ids first
    /// (`channels().try_collect::<Vec<_>>()`), then act on them. (Skipping ids already
    /// yielded would only hide the repeats an insertion causes, not the skips of a removal,
    /// so the stream does not pretend to.)
    pub fn channels(&self) -> impl Stream<Item = Result<Channel, Error>> + Send + 'static {
        self.listing(ChannelsQuery::build, |data: ChannelsQuery| {
            data.channels
                .map(ChannelConnection::into_page)
                .unwrap_or_default()
        })
    }

    /// A listing read page by page: `build` makes the query of a page, `page` takes its items
    /// and the next cursor out of the answer.
    fn listing<Q, T>(
        &self,
        build: fn(PageVariables) -> cynic::Operation<Q, PageVariables>,
        page: fn(Q) -> (Vec<T>, Option<String>),
    ) -> impl Stream<Item = Result<T, Error>> + Send + 'static
    where
        Q: serde::de::DeserializeOwned + Send + 'static,
        T: Send + 'static,
    {
        let session = self.clone();
        paginate(move |after| {
            let session = session.clone();
            async move {
                let op = build(PageVariables {
                    first: Some(PAGE_SIZE),
                    after,
                });
                Ok(page(session.run_with(op, Replay::Resend, None).await?))
            }
        })
    }

    /// The ids of this session's live subscriptions, as the service counts them.
    ///
    /// # Errors
    /// As [`AgentSession::run`].
    pub async fn live_subscriptions(&self) -> Result<Vec<String>, Error> {
        let op = GraphQlSubscriptionsQuery::build(());
        let data = self.run_with(op, Replay::Resend, None).await?;
        Ok(data
            .graphql_subscriptions
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.subscription_id.into_inner())
            .collect())
    }

    /// Sends a text message; returns the msg_id used (generated when none was given). A send
    /// whose socket dropped is sent again with the same msg_id after the session recovers,
    /// unless [`Config::resend_messages`](crate::Config::resend_messages) is off.
    ///
    /// # Errors
    /// [`ErrorKind::Limit`] with [`LimitError::Empty`](crate::structured::LimitError::Empty)
    /// for a blank `msg`, before sending (the service refuses it with an unnamed execution
    /// error); [`ErrorKind::BackedOff`] when [`OutgoingMessage::backoff`] held the message back
    /// because another agent serves the channel; otherwise as [`AgentSession::run`].
    #[tracing::instrument(level = "debug", skip_all, fields(channel_id = %message.channel_id.inner()))]
    pub async fn send_message(&self, message: OutgoingMessage) -> Result<String, Error> {
        static QUERY: OnceLock<QueryText> = OnceLock::new();
        non_empty(&message.msg, "msg")?;
        let msg_id = message.msg_id.unwrap_or_else(crate::msg_id::new_msg_id);
        let variables = SendMessageVariables {
            backoff: message.backoff,
            channel_id: message.channel_id,
            msg: message.msg,
            msg_id: Some(msg_id),
            options: message.options,
        };
        let (query, variables) = cached_query(&QUERY, variables, SendMessage::build);
        let replay = if self.resends_messages() {
            Replay::Resend
        } else {
            Replay::Fail
        };
        let answer: SendMessage = self.run_prepared(query, &variables, replay, None).await?;
        // With backoff set, `success: false` is the documented "another agent serves the
        // channel", which a bot acts on (leaves the chat alone) rather than a failure.
        if variables.backoff == Some(true) && answer.send_message.success == Some(false) {
            return Err(Error::new(ErrorKind::BackedOff));
        }
        succeeded(answer.send_message.success)?;
        Ok(variables.msg_id.unwrap_or_default())
    }

    /// Sends `msg` to `channel_id` (shorthand for [`AgentSession::send_message`]).
    ///
    /// # Errors
    /// As [`AgentSession::send_message`].
    pub async fn say(
        &self,
        channel_id: impl Into<cynic::Id>,
        msg: impl Into<String>,
    ) -> Result<String, Error> {
        self.send_message(OutgoingMessage::new(channel_id, msg))
            .await
    }

    /// Sets this agent's status; it is restored after a session restart.
    ///
    /// # Errors
    /// [`ErrorKind::UnknownStatus`] for [`AgentStatus::Unknown`], before sending; otherwise as
    /// [`AgentSession::run`].
    pub async fn update_agent_status(&self, status: AgentStatus) -> Result<Option<Agent>, Error> {
        if status == AgentStatus::Unknown {
            return Err(Error::new(ErrorKind::UnknownStatus));
        }
        let op = UpdateAgentStatus::build(UpdateAgentStatusVariables { status });
        Ok(self
            .run_with(op, Replay::Resend, Some(status))
            .await?
            .update_agent_status
            .node)
    }

    /// Moves a channel to a department.
    ///
    /// # Errors
    /// As [`AgentSession::run`].
    #[tracing::instrument(level = "debug", skip_all, fields(channel_id = %channel_id.inner()))]
    pub async fn transfer_to_department(
        &self,
        channel_id: cynic::Id,
        department_id: cynic::Id,
        leave: Option<bool>,
    ) -> Result<(), Error> {
        let op = TransferToDepartment::build(TransferToDepartmentVariables {
            channel_id,
            department_id,
            leave,
        });
        succeeded(
            self.run_with(op, Replay::Fail, None)
                .await?
                .transfer_to_department
                .success,
        )
    }

    /// Invites another agent into a channel.
    ///
    /// # Errors
    /// As [`AgentSession::run`].
    #[tracing::instrument(level = "debug", skip_all, fields(channel_id = %channel_id.inner()))]
    pub async fn invite_agent(
        &self,
        channel_id: cynic::Id,
        agent_id: cynic::Id,
        leave: Option<bool>,
    ) -> Result<(), Error> {
        let op = InviteAgent::build(InviteAgentVariables {
            agent_id,
            channel_id,
            leave,
        });
        succeeded(
            self.run_with(op, Replay::Fail, None)
                .await?
                .invite_agent
                .success,
        )
    }

    /// Tags a visitor channel (tags are checked locally first).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidTag`] before sending; otherwise as [`AgentSession::run`].
    #[tracing::instrument(level = "debug", skip_all, fields(channel_id = %channel_id.inner()))]
    pub async fn add_tags(&self, channel_id: cynic::Id, tags: Vec<String>) -> Result<(), Error> {
        validate_tags(&tags)?;
        let op = AddTags::build(AddTagsVariables { channel_id, tags });
        succeeded(
            self.run_with(op, Replay::Resend, None)
                .await?
                .add_tags
                .success,
        )
    }

    /// Leaves (or stops listening to) a channel.
    ///
    /// # Errors
    /// As [`AgentSession::run`].
    #[tracing::instrument(level = "debug", skip_all, fields(channel_id = %channel_id.inner()))]
    pub async fn leave_channel(&self, channel_id: cynic::Id) -> Result<(), Error> {
        let op = LeaveChannel::build(ChannelVariables { channel_id });
        succeeded(
            self.run_with(op, Replay::Resend, None)
                .await?
                .leave_channel
                .success,
        )
    }

    /// Listens to a visitor channel without joining it.
    ///
    /// # Errors
    /// As [`AgentSession::run`].
    #[tracing::instrument(level = "debug", skip_all, fields(channel_id = %channel_id.inner()))]
    pub async fn listen_visitor_channel(&self, channel_id: cynic::Id) -> Result<(), Error> {
        let op = ListenVisitorChannel::build(ChannelVariables { channel_id });
        succeeded(
            self.run_with(op, Replay::Resend, None)
                .await?
                .listen_visitor_channel
                .success,
        )
    }

    /// Shows or hides the typing indicator.
    ///
    /// # Errors
    /// As [`AgentSession::run`].
    #[tracing::instrument(level = "debug", skip_all, fields(channel_id = %channel_id.inner()))]
    pub async fn set_typing(&self, channel_id: cynic::Id, typing: bool) -> Result<(), Error> {
        let op = SetTypingIndicator::build(SetTypingIndicatorVariables {
            backoff: None,
            channel_id,
            typing,
        });
        succeeded(
            self.run_with(op, Replay::Resend, None)
                .await?
                .set_typing_indicator
                .success,
        )
    }

    /// Sends quick replies (limits checked first).
    ///
    /// # Errors
    /// [`ErrorKind::Limit`] before sending; otherwise as [`AgentSession::run`].
    #[tracing::instrument(level = "debug", skip_all, fields(channel_id = %channel_id.inner()))]
    pub async fn send_quick_replies(
        &self,
        channel_id: cynic::Id,
        message: QuickReplies,
    ) -> Result<(), Error> {
        message.validate()?;
        let op = SendQuickReplies::build(SendQuickRepliesVariables {
            channel_id,
            msg: message.msg,
            quick_replies: message.replies,
            fallback: message.fallback,
        });
        succeeded(
            self.run_with(op, Replay::Fail, None)
                .await?
                .send_quick_replies
                .success,
        )
    }

    /// Sends a button template (limits checked first).
    ///
    /// # Errors
    /// [`ErrorKind::Limit`] before sending; otherwise as [`AgentSession::run`].
    #[tracing::instrument(level = "debug", skip_all, fields(channel_id = %channel_id.inner()))]
    pub async fn send_button_template(
        &self,
        channel_id: cynic::Id,
        message: ButtonTemplate,
    ) -> Result<(), Error> {
        message.validate()?;
        let op = SendButtonTemplate::build(SendButtonTemplateVariables {
            channel_id,
            msg: message.msg,
            buttons: message.buttons,
            fallback: message.fallback,
        });
        succeeded(
            self.run_with(op, Replay::Fail, None)
                .await?
                .send_button_template
                .success,
        )
    }

    /// Sends a panel template (limits checked first).
    ///
    /// # Errors
    /// [`ErrorKind::Limit`] before sending; otherwise as [`AgentSession::run`].
    #[tracing::instrument(level = "debug", skip_all, fields(channel_id = %channel_id.inner()))]
    pub async fn send_panel_template(
        &self,
        channel_id: cynic::Id,
        message: PanelTemplate,
    ) -> Result<(), Error> {
        message.validate()?;
        let buttons = (!message.buttons.is_empty()).then_some(message.buttons);
        let op = SendPanelTemplate::build(SendPanelTemplateVariables {
            channel_id,
            panel: message.panel,
            buttons,
            fallback: message.fallback,
        });
        succeeded(
            self.run_with(op, Replay::Fail, None)
                .await?
                .send_panel_template
                .success,
        )
    }

    /// Sends a panel carousel (limits checked first).
    ///
    /// # Errors
    /// [`ErrorKind::Limit`] before sending; otherwise as [`AgentSession::run`].
    #[tracing::instrument(level = "debug", skip_all, fields(channel_id = %channel_id.inner()))]
    pub async fn send_panel_carousel(
        &self,
        channel_id: cynic::Id,
        message: PanelCarousel,
    ) -> Result<(), Error> {
        message.validate()?;
        let op = SendPanelTemplateCarousel::build(SendPanelTemplateCarouselVariables {
            channel_id,
            items: message.items,
            fallback: message.fallback,
        });
        succeeded(
            self.run_with(op, Replay::Fail, None)
                .await?
                .send_panel_template_carousel
                .success,
        )
    }

    /// Sends a list template (limits checked first).
    ///
    /// # Errors
    /// [`ErrorKind::Limit`] before sending; otherwise as [`AgentSession::run`].
    #[tracing::instrument(level = "debug", skip_all, fields(channel_id = %channel_id.inner()))]
    pub async fn send_list_template(
        &self,
        channel_id: cynic::Id,
        message: ListTemplate,
    ) -> Result<(), Error> {
        message.validate()?;
        let buttons = (!message.buttons.is_empty()).then_some(message.buttons);
        let op = SendListTemplate::build(SendListTemplateVariables {
            channel_id,
            items: message.items,
            buttons,
            fallback: message.fallback,
        });
        succeeded(
            self.run_with(op, Replay::Fail, None)
                .await?
                .send_list_template
                .success,
        )
    }

    /// Every chat message this agent can see live, visitors' and agents' (its own included),
    /// each once even across reconnects: those of the channels it serves or listens to, and
    /// those of unserved visitor chats it may pick up.
    ///
    /// After a gap (no socket up for a while) a catch-up query fetches what the gap missed,
    /// unless [`Config::catch_up`](crate::Config::catch_up) is off. It covers less than the
    /// live stream:
    /// - only the channels this agent serves or listens to (the `channels` query): messages
    ///   of unserved chats sent during the gap are not found, as the schema offers no way to
    ///   list those chats;
    /// - only the first 100 of those channels, and the last 50 log entries of each.
    ///
    /// When the answer reached those limits (100 channels, or 50 entries of one channel all
    /// from the gap), the messages it found are followed by one [`ErrorKind::CatchUp`] item
    /// saying which limit: the gap may hold more. (An item rather than a log line: a bot that
    /// must not miss a message can then look itself, e.g. through
    /// [`AgentSession::execute`].)
    ///
    /// If the service refuses the catch-up query outright (errors no retry changes, as for a
    /// field it does not have), one [`ErrorKind::CatchUp`] item says so and this subscription
    /// stops catching up: later gaps are not reported again.
    ///
    /// # Errors
    /// As [`AgentSession::subscribe`].
    pub async fn messages(&self) -> Result<Subscription<Message>, Error> {
        fn decode(text: &str) -> Result<Option<Message>, Error> {
            Ok(decode_data::<MessageSubscription>(text)?
                .and_then(|d| d.message)
                .and_then(|m| m.node))
        }
        fn key(m: &Message) -> Option<&str> {
            Some(m.id.inner())
        }
        let op = MessageSubscription::build(());
        let recent = if self.catches_up() {
            let recent = CatchUpQuery::build(CatchUpVariables {
                channels: Some(CATCH_UP_CHANNELS + 1),
                logs: Some(CATCH_UP_LOGS),
            });
            Some(crate::session::payload_of(recent.query, &recent.variables)?)
        } else {
            None
        };
        let catches_up = recent.is_some();
        let sub = self
            .subscribe_with(
                op.query().to_owned(),
                op.variables(),
                decode,
                Some(key),
                recent,
            )
            .await?;
        if !catches_up {
            return Ok(sub);
        }
        Ok(sub.with_catch_up(CatchUp {
            decode: missed_messages,
            stamp_of: Message::timestamp_ms,
            overlap_ms: self.catch_up_overlap_ms(),
        }))
    }

    /// Chat activity (members joining and leaving), optionally filtered.
    ///
    /// # Errors
    /// As [`AgentSession::subscribe`].
    pub async fn chat_activity(
        &self,
        types: Option<Vec<ChatActivityType>>,
    ) -> Result<Subscription<ChatLog>, Error> {
        fn decode(text: &str) -> Result<Option<ChatLog>, Error> {
            Ok(decode_data::<ChatActivitySubscription>(text)?
                .and_then(|d| d.chat_activity)
                .and_then(|a| a.node))
        }
        fn key(log: &ChatLog) -> Option<&str> {
            match log {
                ChatLog::Message(m) => Some(m.id.inner()),
                ChatLog::MemberJoinLog(l) => Some(l.id.inner()),
                ChatLog::MemberLeaveLog(l) => Some(l.id.inner()),
                _ => None,
            }
        }
        let filter = types.map(|t| ChatActivityFilter {
            chat_activity_types: Some(t),
        });
        let op = ChatActivitySubscription::build(ChatActivityVariables { filter });
        self.subscribe_with(
            op.query().to_owned(),
            op.variables(),
            decode,
            Some(key),
            None,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::{CATCH_UP_CHANNELS, CATCH_UP_LOGS, missed_messages};
    use crate::error::ErrorKind;

    /// A catch-up answer of one visitor channel whose messages have these timestamps.
    fn answer(stamps: &[f64]) -> String {
        answer_of(1, stamps)
    }

    /// A catch-up answer of `channels` visitor channels, the first with messages of these
    /// timestamps, the others empty.
    fn answer_of(channels: usize, stamps: &[f64]) -> String {
        let logs: Vec<_> = stamps
            .iter()
            .enumerate()
            .map(|(i, t)| {
                serde_json::json!({ "node": {
                    "__typename": "Message",
                    "id": format!("m{i}"),
                    "content": format!("at {t}"),
                    "msg_id": null,
                    "sender_name": "Visitor",
                    "timestamp": t,
                    "channel": { "id": "c1" },
                    "from": {
                        "__typename": "Visitor",
                        "id": "v1",
                        "display_name": "Visitor",
                        "email": null,
                    },
                }})
            })
            .collect();
        let mut edges = vec![serde_json::json!({ "node": {
            "__typename": "VisitorChannel",
            "logs": { "edges": logs },
        }})];
        edges.extend((1..channels).map(|_| {
            serde_json::json!({ "node": {
                "__typename": "VisitorChannel",
                "logs": { "edges": [] },
            }})
        }));
        serde_json::json!({ "channels": { "edges": edges } }).to_string()
    }

    /// The reference gives milliseconds, the one real message id seconds with a millisecond
    /// fraction: the filter takes either.
    #[test]
    fn a_catch_up_filters_timestamps_in_seconds_or_milliseconds() {
        let since_ms = 1_675_666_127_000.0;
        for (before, after) in [
            (1_675_666_126.5, 1_675_666_127.859),
            (1_675_666_126_500.0, 1_675_666_127_859.0),
        ] {
            let (missed, cut_off) =
                missed_messages(&answer(&[before, after]), since_ms, since_ms).expect("decodes");
            assert!(cut_off.is_none());
            let ids: Vec<_> = missed.iter().map(|m| m.id.inner()).collect();
            assert_eq!(ids, ["m1"], "stamps {before} and {after}");
            assert_eq!(missed[0].timestamp_ms(), Some(1_675_666_127_859.0));
        }
    }

    /// The cause of a catch-up's cut-off note, if any.
    fn cut_off_of(text: &str, gap_start_ms: f64) -> Option<String> {
        let overlap_ms = 5_000.0;
        let (_, cut_off) =
            missed_messages(text, gap_start_ms - overlap_ms, gap_start_ms).expect("decodes");
        cut_off.map(|e| {
            assert_eq!(e.kind(), &ErrorKind::CatchUp);
            std::error::Error::source(&e).expect("a cause").to_string()
        })
    }

    /// A full log page whose entries all fall in the gap may have left older ones of the gap
    /// out, and a full channel page may have left channels out: the subscriber is told.
    #[test]
    fn a_catch_up_that_reached_its_limits_says_so() {
        let since_ms = 1_675_666_127_000.0;
        let full = usize::try_from(CATCH_UP_LOGS).expect("small");
        let in_gap: Vec<f64> = (0..full).map(|i| since_ms + 1.0 + i as f64).collect();
        let cause = cut_off_of(&answer(&in_gap), since_ms).expect("cut off");
        assert!(cause.contains("last 50 entries of channel c1"), "{cause}");
        // The same page reaching back to the gap's start covered all of it; the overlap
        // before the start came live and does not count.
        let mut reaching_back = in_gap.clone();
        reaching_back[0] = since_ms;
        assert_eq!(cut_off_of(&answer(&reaching_back), since_ms), None);
        // A page that is not full holds the whole log.
        assert_eq!(cut_off_of(&answer(&in_gap[1..]), since_ms), None);
        let channels = usize::try_from(CATCH_UP_CHANNELS).expect("small");
        let cause = cut_off_of(&answer_of(channels + 1, &[since_ms]), since_ms).expect("cut off");
        assert!(cause.contains("first 100 channels"), "{cause}");
        // Exactly the limit: nothing was left out.
        let all = answer_of(channels, &[since_ms]);
        assert_eq!(cut_off_of(&all, since_ms), None);
    }
}
