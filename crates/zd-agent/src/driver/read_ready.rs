//! The waker that tells the driver when its socket may have something to read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::StreamExt;
use futures_util::task::AtomicWaker;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::transport::Socket;

/// Remembers whether the socket was woken since it last had nothing to read.
///
/// Every pass of the driver loop would otherwise poll the WebSocket, and each poll of an idle
/// socket costs tungstenite a zero-fill of its read buffer and a `WouldBlock` round trip; a
/// message makes the loop turn several times (frame, command, send), so most of those polls
/// were wasted. The socket is polled with a waker that raises this flag, and only while it is up.
#[derive(Debug)]
pub(super) struct ReadReady {
    flag: Arc<ReadFlag>,
    waker: Waker,
}

#[derive(Debug, Default)]
struct ReadFlag {
    ready: AtomicBool,
    task: AtomicWaker,
}

impl Wake for ReadFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl ReadReady {
    pub(super) fn new() -> Self {
        let flag = Arc::new(ReadFlag {
            ready: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(Arc::clone(&flag));
        Self { flag, waker }
    }

    /// A new socket has not been polled yet.
    pub(super) fn set(&self) {
        self.flag.ready.store(true, Ordering::Release);
    }

    /// Polls the socket with the flag's waker if the flag is up, else only registers `cx` for
    /// its next wake. After a frame the flag stays up: more may be buffered already, and only a
    /// `Pending` poll of the socket registers for the next wake.
    pub(super) fn poll_next(
        &self,
        socket: &mut Socket,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>> {
        self.flag.task.register(cx.waker());
        // Lowered before the poll: a wake while polling raises it again.
        if !self.flag.ready.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let mut inner = Context::from_waker(&self.waker);
        let polled = socket.poll_next_unpin(&mut inner);
        if polled.is_ready() {
            self.set();
        }
        polled
    }
}
