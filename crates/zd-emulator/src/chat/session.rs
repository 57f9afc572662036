//! Agent sessions: created by `startAgentSession`, used by at most one socket at a time, ended
//! by a newer session of the same agent, by `stopAgentSession`, or by the control API.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use zd_wire::chat::ErrorName;

use super::counters::SessionCounters;
use super::fanout::Class;
use super::limits::{MAX_QUEUED_DATA_BYTES, RequestWindow};
use crate::ids;
use crate::state::ChatState;

/// Something for a socket's writer to do, in order.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// Send a text frame.
    Text(Utf8Bytes),
    /// Send a text frame (a DATA frame or an answer) that holds its share of one of the
    /// socket's byte budgets until it is written or dropped.
    Counted(Utf8Bytes, QueuedBytes),
    /// Send a close frame with this code and reason, then stop (the control API's `close`:
    /// at once, ahead of answers the `delay` fault holds).
    Close(u16, String),
    /// As `Close`, but in turn: after every frame queued before it, held answers included (a
    /// session's end, an idle socket, a client's close).
    Finish(u16, String),
    /// Drop the connection without a close frame.
    Drop,
    /// Send nothing for this long.
    Stall(Duration),
}

/// Bytes of a socket's byte budget that a queued frame holds: given back when the frame is
/// dropped, whether written or lost with its socket, so no path can leak them.
#[derive(Debug)]
pub(crate) struct QueuedBytes {
    _permit: OwnedSemaphorePermit,
}

impl QueuedBytes {
    /// Takes `len` bytes of `budget` (or what is left of it) while any is left. What is left is
    /// looked at rather than `len` so that one frame larger than the room left still goes
    /// (the budget then bounds the bytes to itself plus one frame).
    pub(crate) fn take(budget: &Arc<Semaphore>, len: usize) -> Option<Self> {
        let left = budget.available_permits();
        if left == 0 {
            return None;
        }
        let n = u32::try_from(len.min(left)).unwrap_or(u32::MAX);
        let permit = budget.clone().try_acquire_many_owned(n).ok()?;
        Some(Self { _permit: permit })
    }

    /// Waits until `len` bytes of `budget` are free (all of it, for a frame larger than the
    /// whole budget, which otherwise would never go), and takes them.
    pub(crate) async fn wait(budget: &Arc<Semaphore>, len: usize, whole: usize) -> Option<Self> {
        let n = u32::try_from(len.min(whole)).unwrap_or(u32::MAX);
        let permit = budget.clone().acquire_many_owned(n).await.ok()?;
        Some(Self { _permit: permit })
    }
}

/// The socket currently attached to a session.
#[derive(Debug, Clone)]
pub(crate) struct SocketLink {
    pub(crate) conn: u64,
    pub(crate) outbox: mpsc::Sender<Outgoing>,
    /// Drops the connection at once, even while its writer waits on a client that stopped
    /// reading (the outbox would never be read then).
    pub(crate) kill: Arc<Notify>,
    /// The bytes of DATA the outbox may still take ([`MAX_QUEUED_DATA_BYTES`] in all): its
    /// room in frames alone lets frames of a megabyte each add up to gigabytes.
    pub(crate) data_bytes: Arc<Semaphore>,
    /// The `deaf` fault for this socket. The socket's own, not the session's: a socket being
    /// replaced still reads until its successor's upgrade completes, and must not take a
    /// deafness meant for that one.
    pub(crate) deafness: Arc<Deafness>,
}

impl SocketLink {
    /// Queues `close` (a close or finish frame) for the socket, or ends the socket at once when
    /// its queue is full: its client reads nothing, so no close frame could reach it, and the
    /// socket would otherwise linger for as long as that client stays silent.
    pub(crate) fn close_or_kill(&self, close: Outgoing) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.outbox.try_send(close) {
            self.kill.notify_one();
        }
    }

    /// A link to a socket with this outbox and kill switch, its DATA budget whole.
    pub(crate) fn new(conn: u64, outbox: mpsc::Sender<Outgoing>, kill: Arc<Notify>) -> Self {
        Self {
            conn,
            outbox,
            kill,
            data_bytes: Arc::new(Semaphore::new(MAX_QUEUED_DATA_BYTES)),
            deafness: Arc::default(),
        }
    }
}

/// A socket's pending `deaf` fault: how long its reader is to read nothing, from when it
/// takes it, and the wake-up that makes a waiting reader take it at once.
#[derive(Debug, Default)]
pub(crate) struct Deafness {
    ms: AtomicU64,
    /// The reader's own: a permit is kept for a reader not yet waiting, and no other
    /// socket's reader can take it.
    pub(crate) wake: Notify,
}

impl Deafness {
    /// Arms `ms` of deafness (0 disarms) and wakes the reader to take it.
    pub(crate) fn set(&self, ms: u64) {
        self.ms.store(ms, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Takes the pending deafness, if any.
    pub(crate) fn take(&self) -> Option<Duration> {
        // A load first: the reader asks before every frame, and it is almost always 0.
        if self.ms.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let ms = self.ms.swap(0, Ordering::Relaxed);
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    /// Drops a deafness not yet taken (one under way runs its course).
    fn clear(&self) {
        self.ms.store(0, Ordering::Relaxed);
    }
}

/// Faults injected through the control API.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Fail this many next requests with this error name.
    pub(crate) fail_next: Mutex<Option<(u32, ErrorName)>>,
    /// Ignore PINGs.
    pub(crate) ignore_pings: AtomicBool,
    /// Delay every response by this many milliseconds.
    pub(crate) response_delay_ms: AtomicU64,
    /// Turn this many next DATA frames into DATA errors with this error name.
    pub(crate) fail_data: Mutex<Option<(u32, ErrorName)>>,
    /// Answer this many next requests with a protocol error payload.
    pub(crate) protocol_next: Mutex<Option<(u32, ProtocolFault)>>,
    /// Break the `data` of this many next answers.
    pub(crate) garble_next: Mutex<Option<(u32, ())>>,
    /// Cut the socket as the next request or stop takes effect, before its answer is written.
    pub(crate) cut_next: AtomicBool,
    /// Write no answer to this many next requests or stops (they still take effect).
    pub(crate) mute_next: Mutex<Option<(u32, ())>>,
}

/// What the `garble` fault puts first in an answer's `data`: a literal cut short, as a
/// corrupting hop might leave it. The frame's outline (quotes and brackets) stays intact, so a
/// client sees a well-formed answer whose `data` fails to parse.
const GARBLE: &str = "\"garbled\":tru,";

/// A request-level failure outside GraphQL: `{"errorCode":..,"payload":{"body":..},"id":..}`.
#[derive(Debug, Clone)]
pub(crate) struct ProtocolFault {
    /// The `errorCode`.
    pub(crate) code: u16,
    /// The payload's `body`.
    pub(crate) body: String,
}

impl Faults {
    /// Clears every injected fault. Destructured so that a new fault cannot be left out.
    /// A deafness or held answer already under way runs its course: the socket holds those.
    pub(crate) fn clear(&self) {
        let Self {
            fail_next,
            ignore_pings,
            response_delay_ms,
            fail_data,
            protocol_next,
            garble_next,
            cut_next,
            mute_next,
        } = self;
        *fail_next.lock() = None;
        ignore_pings.store(false, Ordering::Relaxed);
        response_delay_ms.store(0, Ordering::Relaxed);
        *fail_data.lock() = None;
        *protocol_next.lock() = None;
        *garble_next.lock() = None;
        cut_next.store(false, Ordering::Relaxed);
        *mute_next.lock() = None;
    }

    /// Takes one injected failure, if any is pending.
    pub(crate) fn take_failure(&self) -> Option<ErrorName> {
        Self::take(&self.fail_next)
    }

    /// Takes one injected DATA failure, if any is pending.
    pub(crate) fn take_data_failure(&self) -> Option<ErrorName> {
        Self::take(&self.fail_data)
    }

    /// Takes one pending `mute`: whether the answer to the request at hand is to be withheld.
    pub(crate) fn take_mute(&self) -> bool {
        Self::take(&self.mute_next).is_some()
    }

    /// Takes one injected protocol error, if any is pending.
    pub(crate) fn take_protocol_failure(&self) -> Option<ProtocolFault> {
        Self::take(&self.protocol_next)
    }

    /// Breaks the `data` of `answer` if a garbling is pending and the answer has a `data`
    /// object (error answers pass untouched and leave the fault armed).
    pub(crate) fn garble(&self, answer: &mut String) {
        const DATA: &str = "\"data\":{";
        if let Some(((), at)) = Self::take_when(&self.garble_next, || answer.find(DATA)) {
            answer.insert_str(at + DATA.len(), GARBLE);
        }
    }

    fn take<T: Clone>(slot: &Mutex<Option<(u32, T)>>) -> Option<T> {
        Self::take_when(slot, || Some(())).map(|(value, ())| value)
    }

    /// Takes one injected fault if one is pending and `applies` finds where it applies; the
    /// search runs only while a fault is armed.
    fn take_when<T: Clone, U>(
        slot: &Mutex<Option<(u32, T)>>,
        applies: impl FnOnce() -> Option<U>,
    ) -> Option<(T, U)> {
        let mut slot = slot.lock();
        let (left, value) = slot.as_mut()?;
        let found = applies()?;
        let value = value.clone();
        *left = left.saturating_sub(1);
        if *left == 0 {
            *slot = None;
        }
        Some((value, found))
    }
}

/// One agent session.
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) client_id: String,
    pub(crate) agent: String,
    /// Why the session ended; set once. Read on every frame the socket reads, so without a lock.
    ended: std::sync::OnceLock<String>,
    /// Wakes the socket's reader to look at the session again: it ended, or a fault changed
    /// how it reads.
    pub(crate) reader_wake: Notify,
    /// The sockets on the session's URL, the attached one last. Those before it are sockets it
    /// replaces, kept open until its upgrade completes: a socket whose upgrade fails hands the
    /// session, and what was queued for it, back to them instead of leaving it with none.
    sockets: Mutex<Vec<SocketLink>>,
    pub(crate) subscriptions: Mutex<HashMap<String, Arc<Class>>>,
    pub(crate) limiter: Option<Mutex<RequestWindow>>,
    pub(crate) counters: SessionCounters,
    pub(crate) faults: Faults,
}

/// `client_id` is left out: with the session id it is the session's URL, which is all a
/// socket needs to take the session from its bot.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("client_id", &"[REDACTED]")
            .field("agent", &self.agent)
            .field("ended", &self.ended.get())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The EOS reason once the session has ended.
    pub(crate) fn ended(&self) -> Option<&str> {
        self.ended.get().map(String::as_str)
    }

    /// Whether the agent stopped the session itself (`stopAgentSession`).
    pub(crate) fn was_stopped(&self) -> bool {
        self.ended() == Some(STOPPED)
    }

    /// Ends the session; its socket (if any) will send EOS with `reason` and close. False when
    /// it had already ended (the first reason stays).
    pub(crate) fn end(&self, reason: &str) -> bool {
        if self.ended.set(reason.to_owned()).is_err() {
            return false;
        }
        self.reader_wake.notify_waiters();
        self.reader_wake.notify_one();
        true
    }

    /// Attaches socket `link`, as the one the session's frames and faults go to from now on.
    /// The socket it replaces stays open until [`Session::upgraded`] says the new one's
    /// upgrade completed, or takes over again if [`Session::abandon`] says it failed.
    pub(crate) fn attach(&self, link: SocketLink) {
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        self.sockets.lock().push(link);
    }

    /// Socket `conn` has been upgraded: takes the sockets it replaces, for the caller to
    /// close. None when a newer socket, upgraded first, has already taken it to be closed.
    pub(crate) fn upgraded(&self, conn: u64) -> Vec<SocketLink> {
        let mut sockets = self.sockets.lock();
        match sockets.iter().position(|s| s.conn == conn) {
            Some(at) => sockets.drain(..at).collect(),
            None => Vec::new(),
        }
    }

    /// Undoes [`Session::attach`] for socket `conn`, whose upgrade failed: it is no longer
    /// counted, and if it was the attached one the socket it replaced (still open, since
    /// sockets are closed only once their replacement is upgraded) is attached again.
    ///
    /// `queue` is its outbox, which no writer ever read. What it holds was meant for the
    /// session's socket, so it goes to the socket before it in the list, the one that takes
    /// over: that socket's own frames all predate the failed one's attaching, so appending
    /// keeps DATA in order, and a socket left in place must not miss frames without a sign
    /// (its client could not tell). Faults of the control API go along, as does a `drop`:
    /// they were asked of the session's socket, and the control API said they were done.
    /// DATA that does not fit, has no socket to go to (none before it, or it had already
    /// been replaced), or would land behind a close (the session has ended, or a close fault
    /// went first) is dropped and counted as the fan-out counts a full queue. A `fail_data`
    /// fault that made one of those frames stays used up.
    pub(crate) fn abandon(&self, conn: u64, mut queue: mpsc::Receiver<Outgoing>) {
        self.counters.connections.fetch_sub(1, Ordering::Relaxed);
        let mut lost = 0_u64;
        // An ended session's socket sends EOS and closes; its writer stops there, so frames
        // handed on behind that would count as sent and never be.
        let mut closing = self.ended().is_some();
        {
            // Held throughout: frames and faults are queued under this lock too, so none
            // reaches the failed socket after its queue is emptied, and none reaches the one
            // taking over ahead of the older frames handed to it.
            let mut sockets = self.sockets.lock();
            let at = sockets.iter().position(|s| s.conn == conn);
            let failed = at.map(|at| sockets.remove(at));
            let takeover = at
                .and_then(|at| at.checked_sub(1))
                .and_then(|at| sockets.get(at));
            queue.close();
            while let Ok(out) = queue.try_recv() {
                if !hand_on(out, takeover, &mut closing) {
                    lost += 1;
                }
            }
            // A `drop` asked before the upgrade failed is a kill no writer took.
            if let (Some(failed), Some(takeover)) = (&failed, takeover)
                && std::pin::pin!(failed.kill.notified()).enable()
            {
                takeover.kill.notify_one();
            }
        }
        if lost > 0 {
            tracing::warn!(
                session = %self.id,
                frames = lost,
                "socket upgrade failed, DATA frames queued for it dropped"
            );
            self.counters.data_frames.fetch_sub(lost, Ordering::Relaxed);
            self.counters
                .data_dropped
                .fetch_add(lost, Ordering::Relaxed);
        }
    }

    /// Detaches socket `conn`, which has ended, wherever it stands.
    pub(crate) fn detach(&self, conn: u64) {
        self.sockets.lock().retain(|s| s.conn != conn);
    }

    /// Whether a socket is attached.
    pub(crate) fn connected(&self) -> bool {
        !self.sockets.lock().is_empty()
    }

    /// Queues the DATA frame `frame` builds; frames for a session without a socket, or whose
    /// socket has fallen too far behind (in frames or in bytes), are dropped (a real
    /// subscriber would have missed them too). Room is taken first, so `frame` runs (and may
    /// use up a fault) only for a frame that is then queued.
    pub(crate) fn push_data(&self, frame: impl FnOnce() -> Option<Utf8Bytes>) {
        {
            // Queued under the lock, not on a copy of the socket's handle: a failed upgrade
            // hands the socket's queue on under the same lock ([`Session::abandon`]), and a
            // frame queued on a copy could land in that queue after it was emptied, or on the
            // socket taking over ahead of the older frames handed to it.
            let sockets = self.sockets.lock();
            let Some(link) = sockets.last() else {
                return;
            };
            match link.outbox.try_reserve() {
                // Bytes are taken only under this lock, so what is left now is still left
                // once the frame is built.
                Ok(permit) if link.data_bytes.available_permits() > 0 => {
                    let Some(frame) = frame() else {
                        return;
                    };
                    if let Some(bytes) = QueuedBytes::take(&link.data_bytes, frame.len()) {
                        permit.send(Outgoing::Counted(frame, bytes));
                        self.counters.data_frames.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
                Ok(_) | Err(mpsc::error::TrySendError::Full(())) => {}
                Err(mpsc::error::TrySendError::Closed(())) => return,
            }
        }
        tracing::warn!(session = %self.id, "socket backlog full, DATA frame dropped");
        self.counters.data_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Queues `out` (a fault of the control API) for the attached socket, without waiting.
    /// Under the lock for the reason [`Session::push_data`] is.
    pub(crate) fn to_socket(&self, out: Outgoing) -> Result<(), Unsent> {
        let sockets = self.sockets.lock();
        let link = sockets.last().ok_or(Unsent::NotConnected)?;
        link.outbox.try_send(out).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Unsent::Backlogged,
            mpsc::error::TrySendError::Closed(_) => Unsent::NotConnected,
        })
    }

    /// Has the attached socket's reader read nothing for `ms` milliseconds from when it next
    /// looks (at once if it is waiting); false when none is attached. Under the lock, as
    /// [`Session::kill`], so it is the newest socket's.
    pub(crate) fn deafen(&self, ms: u64) -> bool {
        let sockets = self.sockets.lock();
        let Some(link) = sockets.last() else {
            return false;
        };
        link.deafness.set(ms);
        true
    }

    /// Drops the attached socket's connection at once; false when none is attached. Under
    /// the lock so that a socket whose upgrade fails meanwhile hands the kill on.
    pub(crate) fn kill(&self) -> bool {
        let sockets = self.sockets.lock();
        let link = sockets.last();
        if let Some(link) = link {
            link.kill.notify_one();
        }
        link.is_some()
    }

    /// Takes a request token (always succeeds when the rate limit is off).
    pub(crate) fn take_request_token(&self, now: Instant) -> bool {
        self.limiter.as_ref().is_none_or(|l| l.lock().try_take(now))
    }
}

/// Why [`Session::to_socket`] queued nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unsent {
    /// No socket is attached, or it has ended.
    NotConnected,
    /// The socket's queue is full: its client reads nothing.
    Backlogged,
}

/// Hands `out`, queued for a socket whose upgrade failed, to `takeover`, the socket that takes
/// its place; false for a DATA frame that is dropped. `closing` says a close is queued ahead
/// (the socket's writer stops there), and is set once one is handed on.
fn hand_on(out: Outgoing, takeover: Option<&SocketLink>, closing: &mut bool) -> bool {
    let Some(takeover) = takeover else {
        return !matches!(out, Outgoing::Text(_) | Outgoing::Counted(..));
    };
    match out {
        Outgoing::Text(_) | Outgoing::Counted(..) if *closing => false,
        Outgoing::Text(text) => takeover.outbox.try_send(Outgoing::Text(text)).is_ok(),
        // Its bytes move to the budget of the socket taking over, where it must fit too.
        Outgoing::Counted(text, _) => QueuedBytes::take(&takeover.data_bytes, text.len())
            .is_some_and(|bytes| {
                takeover
                    .outbox
                    .try_send(Outgoing::Counted(text, bytes))
                    .is_ok()
            }),
        Outgoing::Drop => {
            takeover.kill.notify_one();
            true
        }
        out @ (Outgoing::Close(..) | Outgoing::Finish(..)) => {
            *closing = true;
            takeover.close_or_kill(out);
            true
        }
        // A stall of a socket whose queue is full changes nothing its client would see.
        out @ Outgoing::Stall(_) => {
            let _ = takeover.outbox.try_send(out);
            true
        }
    }
}

/// All live sessions.
#[derive(Debug)]
pub(crate) struct Sessions {
    /// Told which agents have a live session: assigned routing treats them apart.
    state: Arc<ChatState>,
    by_id: DashMap<String, Arc<Session>>,
    by_agent: Mutex<HashMap<String, String>>,
    ended: Mutex<std::collections::VecDeque<Arc<Session>>>,
    next_conn: AtomicU64,
}

/// How many ended sessions the counters remember.
const ENDED_HISTORY: usize = 256;

/// The default body of the protocol error fault (wording ours; the documentation names the
/// situation, an unavailable GraphQL server, not its text).
pub(crate) const GRAPHQL_UNAVAILABLE: &str = "GraphQL server unavailable";

/// The EOS reason when the same agent starts another session.
pub(crate) const CONCURRENT: &str = "concurrent session limit reached";
/// Why a session ended after `stopAgentSession`, in the emulator's reports. Its EOS says
/// [`UNEXPECTED`]: the documentation lists stopAgentSession among the causes of EOS and gives
/// that one reason as the signal's structure (see [`eos_reason`]).
pub(crate) const STOPPED: &str = "agent session stopped";
/// The EOS reason for a socket on an unknown or ended session URL.
pub(crate) const UNEXPECTED: &str = "unexpected session state";

/// The reason an EOS frame carries for a session ended for `cause`.
pub(crate) fn eos_reason(cause: &str) -> &str {
    if cause == STOPPED { UNEXPECTED } else { cause }
}

impl Sessions {
    pub(crate) fn new(state: Arc<ChatState>) -> Self {
        Self {
            state,
            by_id: DashMap::new(),
            by_agent: Mutex::new(HashMap::new()),
            ended: Mutex::new(std::collections::VecDeque::new()),
            next_conn: AtomicU64::new(0),
        }
    }

    /// Starts a session for `agent`, ending the agent's previous one.
    pub(crate) fn start(&self, agent: &str, requests_per_second: Option<u32>) -> Arc<Session> {
        let session = loop {
            let id = ids::random_token(6).to_ascii_lowercase();
            if !self.by_id.contains_key(&id) {
                break Arc::new(Session {
                    id,
                    client_id: ids::random_digits(10),
                    agent: agent.to_owned(),
                    ended: std::sync::OnceLock::new(),
                    reader_wake: Notify::new(),
                    sockets: Mutex::new(Vec::new()),
                    subscriptions: Mutex::new(HashMap::new()),
                    limiter: requests_per_second.map(|rate| Mutex::new(RequestWindow::new(rate))),
                    counters: SessionCounters::default(),
                    faults: Faults::default(),
                });
            }
        };
        self.by_id.insert(session.id.clone(), session.clone());
        let previous = {
            let mut by_agent = self.by_agent.lock();
            // Marked under the lock that decides which session is the agent's: an end that
            // races with this start then cannot unmark a live session. (The state's lock is
            // only ever taken after this one.)
            self.state.set_conversations_api(agent, true);
            by_agent.insert(agent.to_owned(), session.id.clone())
        };
        if let Some(previous) = previous.and_then(|id| self.by_id.get(&id).map(|s| s.clone())) {
            self.end(&previous, CONCURRENT);
        }
        session
    }

    /// The live session at `session_id:client_id`.
    pub(crate) fn get(&self, session_id: &str, client_id: &str) -> Option<Arc<Session>> {
        self.by_id
            .get(session_id)
            .filter(|s| s.client_id == client_id && s.ended().is_none())
            .map(|s| s.clone())
    }

    /// A live session by id.
    pub(crate) fn by_id(&self, session_id: &str) -> Option<Arc<Session>> {
        self.by_id.get(session_id).map(|s| s.clone())
    }

    /// Ends a session: forgets it, drops its subscriptions, tells its socket.
    pub(crate) fn end(&self, session: &Arc<Session>, reason: &str) {
        self.by_id.remove(&session.id);
        {
            let mut by_agent = self.by_agent.lock();
            if by_agent.get(&session.agent) == Some(&session.id) {
                by_agent.remove(&session.agent);
                self.state.set_conversations_api(&session.agent, false);
            }
        }
        let subs: Vec<(String, Arc<Class>)> = session.subscriptions.lock().drain().collect();
        for (sub_id, class) in subs {
            class.remove(&sub_id);
        }
        // Ended twice (two stops in one document, a stop racing a new session): listed once.
        if !session.end(reason) {
            return;
        }
        let mut ended = self.ended.lock();
        if ended.len() >= ENDED_HISTORY {
            ended.pop_front();
        }
        ended.push_back(session.clone());
    }

    /// Recently ended sessions, oldest first.
    pub(crate) fn ended_sessions(&self) -> Vec<Arc<Session>> {
        self.ended.lock().iter().cloned().collect()
    }

    /// Every live session.
    pub(crate) fn list(&self) -> Vec<Arc<Session>> {
        let mut all: Vec<Arc<Session>> = self.by_id.iter().map(|s| s.clone()).collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Forgets the ended sessions and clears each live session's faults and request window
    /// (`requests_per_second` is the rate the windows were made with).
    pub(crate) fn reset(&self) {
        self.ended.lock().clear();
        for session in self.list() {
            session.faults.clear();
            // A deafness not yet taken is a pending fault too (one under way runs its course).
            for link in session.sockets.lock().iter() {
                link.deafness.clear();
            }
            if let Some(limiter) = &session.limiter {
                limiter.lock().clear();
            }
        }
    }

    /// A fresh connection number.
    pub(crate) fn next_conn(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }
}

/// What the tests of sessions and of sockets both need.
#[cfg(test)]
pub(crate) mod testing {
    use tokio::sync::mpsc;
    use tokio_tungstenite::tungstenite::Utf8Bytes;

    use super::{Outgoing, Session};

    /// Queues the DATA frame `text` for `session`.
    pub(crate) fn push(session: &Session, text: &'static str) {
        session.push_data(|| Some(Utf8Bytes::from_static(text)));
    }

    /// What is queued in `queue`, DATA as its text and the rest by kind.
    pub(crate) fn queued(queue: &mut mpsc::Receiver<Outgoing>) -> Vec<String> {
        std::iter::from_fn(|| queue.try_recv().ok())
            .map(|out| match out {
                Outgoing::Text(text) | Outgoing::Counted(text, _) => text.as_str().to_owned(),
                Outgoing::Close(code, reason) => format!("close {code} {reason}"),
                other => format!("{other:?}"),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::testing::{push, queued};
    use super::*;
    use crate::account::AccountConfig;
    use crate::clock::Clock;

    fn session() -> Arc<Session> {
        let state = Arc::new(ChatState::new(&AccountConfig::demo(), Clock::new()));
        let agent = state.agents()[0].key.clone();
        Sessions::new(state).start(&agent, None)
    }

    fn link(conn: u64) -> SocketLink {
        let (outbox, _) = mpsc::channel(1);
        SocketLink::new(conn, outbox, Arc::new(Notify::new()))
    }

    /// A socket whose outbox the test reads, with room for `room` frames.
    fn socket(conn: u64, room: usize) -> (SocketLink, mpsc::Receiver<Outgoing>) {
        let (outbox, queue) = mpsc::channel(room);
        (
            SocketLink::new(conn, outbox, Arc::new(Notify::new())),
            queue,
        )
    }

    /// The outbox of a socket that nothing was queued for.
    fn nothing_queued() -> mpsc::Receiver<Outgoing> {
        mpsc::channel(1).1
    }

    fn attached(session: &Session) -> Option<u64> {
        session.sockets.lock().last().map(|l| l.conn)
    }

    fn killed(link: &SocketLink) -> bool {
        std::pin::pin!(link.kill.notified()).enable()
    }

    /// (DATA frames queued, DATA frames dropped).
    fn data(session: &Session) -> (u64, u64) {
        let c = &session.counters;
        (
            c.data_frames.load(Ordering::Relaxed),
            c.data_dropped.load(Ordering::Relaxed),
        )
    }

    fn connections(session: &Session) -> u64 {
        session.counters.connections.load(Ordering::Relaxed)
    }

    fn conns(links: Vec<SocketLink>) -> Vec<u64> {
        links.into_iter().map(|l| l.conn).collect()
    }

    /// A socket takes the session as it attaches, and closes the one it replaces only once
    /// upgraded; one whose upgrade fails hands the session back, uncounted.
    #[test]
    fn a_failed_upgrade_hands_the_session_back() {
        let session = session();
        session.attach(link(0));
        assert!(conns(session.upgraded(0)).is_empty());

        session.attach(link(1));
        assert_eq!(attached(&session), Some(1));
        assert_eq!(connections(&session), 2);
        session.abandon(1, nothing_queued());
        assert_eq!(attached(&session), Some(0));
        assert_eq!(connections(&session), 1);

        session.attach(link(2));
        assert_eq!(conns(session.upgraded(2)), [0]);
        assert_eq!(attached(&session), Some(2));
        // The replaced socket ends after being closed: nothing changes.
        session.detach(0);
        assert_eq!(attached(&session), Some(2));
        assert_eq!(connections(&session), 2);
    }

    /// The `deaf` fault is the newest socket's: the socket it replaces still reads until that
    /// one's upgrade completes, and took the deafness when the session held it (then closed,
    /// leaving the new socket hearing everything). A reset clears one not yet taken.
    #[test]
    fn deafness_goes_to_the_newest_socket_and_a_reset_clears_it() {
        let state = Arc::new(ChatState::new(&AccountConfig::demo(), Clock::new()));
        let agent = state.agents()[0].key.clone();
        let sessions = Sessions::new(state);
        let session = sessions.start(&agent, None);
        assert!(!session.deafen(500), "no socket yet");
        let (old, new) = (link(0), link(1));
        let (old_deaf, new_deaf) = (old.deafness.clone(), new.deafness.clone());
        session.attach(old);
        assert!(conns(session.upgraded(0)).is_empty());
        session.attach(new);
        assert!(session.deafen(500));
        // The new socket's reader is woken (a permit kept if it is not waiting yet); the old
        // one's is not.
        assert!(std::pin::pin!(new_deaf.wake.notified()).enable());
        assert!(!std::pin::pin!(old_deaf.wake.notified()).enable());
        assert_eq!(old_deaf.take(), None);
        assert_eq!(new_deaf.take(), Some(Duration::from_millis(500)));
        assert_eq!(new_deaf.take(), None, "taken once");
        assert!(session.deafen(700));
        sessions.reset();
        assert_eq!(new_deaf.take(), None);
    }

    /// The socket to hand back to ended meanwhile: the session has none, not a dead one.
    #[test]
    fn a_failed_upgrade_does_not_bring_back_a_socket_that_ended() {
        let session = session();
        session.attach(link(0));
        session.upgraded(0);
        session.attach(link(1));
        session.detach(0);
        assert_eq!(attached(&session), Some(1));
        session.abandon(1, nothing_queued());
        assert!(!session.connected());
        assert_eq!(connections(&session), 1);
    }

    /// Two upgrades under way: each, once upgraded, closes the sockets before it; the newest
    /// failing hands the session to the one before it, whichever state that one is in.
    #[test]
    fn overlapping_upgrades() {
        let session = session();
        session.attach(link(0));
        session.upgraded(0);
        session.attach(link(1));
        session.attach(link(2));
        assert_eq!(conns(session.upgraded(1)), [0]);
        session.abandon(2, nothing_queued());
        assert_eq!(attached(&session), Some(1));
        assert_eq!(connections(&session), 2);

        session.attach(link(3));
        session.attach(link(4));
        assert_eq!(conns(session.upgraded(4)), [1, 3]);
        // 3, closed by 4, fails its upgrade after all: only its count is undone.
        session.abandon(3, nothing_queued());
        assert_eq!(attached(&session), Some(4));
        assert_eq!(connections(&session), 3);
    }

    /// DATA and faults queued for a socket whose upgrade then fails go, in order, to the one
    /// it was to replace, which takes the session back; those that do not fit there are
    /// dropped and counted so.
    #[test]
    fn a_failed_upgrade_hands_what_was_queued_for_it_to_the_socket_taking_over() {
        let session = session();
        let (s0, mut q0) = socket(0, 6);
        session.attach(s0.clone());
        session.upgraded(0);
        push(&session, "a");
        let (s1, q1) = socket(1, 16);
        session.attach(s1);
        push(&session, "b");
        session
            .to_socket(Outgoing::Stall(Duration::from_millis(1)))
            .unwrap();
        push(&session, "c");
        session
            .to_socket(Outgoing::Close(4000, "bye".into()))
            .unwrap();
        assert!(session.kill());
        push(&session, "d");
        push(&session, "e");
        assert!(!killed(&s0));
        assert_eq!(data(&session), (5, 0));

        session.abandon(1, q1);
        assert_eq!(attached(&session), Some(0));
        // The socket's writer stops at the close: "d" and "e" behind it would never be sent.
        assert_eq!(
            queued(&mut q0),
            ["a", "b", "Stall(1ms)", "c", "close 4000 bye"]
        );
        assert!(killed(&s0));
        assert_eq!(data(&session), (3, 2));
        // Frames published from now on follow the ones handed on.
        push(&session, "f");
        assert_eq!(queued(&mut q0), ["f"]);
    }

    /// What does not fit the queue of the socket taking over is dropped, not sent.
    #[test]
    fn data_handed_on_past_the_room_of_the_socket_taking_over_is_dropped() {
        let session = session();
        let (s0, mut q0) = socket(0, 3);
        session.attach(s0);
        session.upgraded(0);
        push(&session, "a");
        let (s1, q1) = socket(1, 16);
        session.attach(s1);
        for text in ["b", "c", "d"] {
            push(&session, text);
        }
        session.abandon(1, q1);
        assert_eq!(queued(&mut q0), ["a", "b", "c"]);
        assert_eq!(data(&session), (3, 1));
    }

    /// An ended session's socket closes after its EOS: DATA handed to it then is dropped.
    #[test]
    fn data_queued_for_a_failed_upgrade_of_an_ended_session_is_dropped() {
        let session = session();
        let (s0, mut q0) = socket(0, 16);
        session.attach(s0);
        session.upgraded(0);
        let (s1, q1) = socket(1, 16);
        session.attach(s1);
        push(&session, "a");
        assert!(session.end("ENDED"));
        session.abandon(1, q1);
        assert!(queued(&mut q0).is_empty());
        assert_eq!(data(&session), (0, 1));
    }

    /// A first socket whose upgrade fails leaves no socket to hand its DATA to: dropped, not
    /// sent.
    #[test]
    fn data_queued_for_a_failed_upgrade_with_no_socket_to_take_over_is_dropped() {
        let session = session();
        let (s0, q0) = socket(0, 16);
        session.attach(s0);
        push(&session, "a");
        push(&session, "b");
        session
            .to_socket(Outgoing::Close(4000, "bye".into()))
            .unwrap();
        assert_eq!(data(&session), (2, 0));
        session.abandon(0, q0);
        assert!(!session.connected());
        assert_eq!(data(&session), (0, 2));
        assert_eq!(connections(&session), 0);
    }

    /// A socket replaced (by a newer one upgraded first) before its own upgrade fails: its
    /// DATA was for a client that never got the socket, and the newer socket, which has the
    /// session, gets none of it (it has newer frames already).
    #[test]
    fn data_queued_for_a_socket_replaced_before_its_upgrade_failed_is_dropped() {
        let session = session();
        let (s0, q0) = socket(0, 16);
        session.attach(s0);
        push(&session, "a");
        let (s1, mut q1) = socket(1, 16);
        session.attach(s1);
        push(&session, "b");
        assert_eq!(conns(session.upgraded(1)), [0]);
        session.abandon(0, q0);
        assert_eq!(attached(&session), Some(1));
        assert_eq!(queued(&mut q1), ["b"]);
        assert_eq!(data(&session), (1, 1));
    }

    /// Two upgrades under way, the older failing first: its DATA goes to the socket before
    /// it, not to the newer one, whose frames are newer; the newer failing in turn appends
    /// its own behind them.
    #[test]
    fn overlapping_failed_upgrades_hand_frames_back_in_order() {
        let session = session();
        let (s0, mut q0) = socket(0, 16);
        session.attach(s0);
        session.upgraded(0);
        push(&session, "a");
        let (s1, q1) = socket(1, 16);
        session.attach(s1);
        push(&session, "b");
        let (s2, q2) = socket(2, 16);
        session.attach(s2);
        push(&session, "c");

        session.abandon(1, q1);
        assert_eq!(attached(&session), Some(2));
        session.abandon(2, q2);
        assert_eq!(attached(&session), Some(0));
        assert_eq!(queued(&mut q0), ["a", "b", "c"]);
        assert_eq!(data(&session), (3, 0));
        assert_eq!(connections(&session), 1);
    }
}
