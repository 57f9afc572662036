//! The queue of commands from [`crate::FeedHandle`]s to a feed's driver: bounded like a tokio
//! mpsc channel, but allocated on demand.
//!
//! A tokio mpsc channel costs about 800 bytes per feed before anything is sent (its shared
//! state is cache-padded, and its first block of 32 slots is allocated up front), although a
//! feed receives a handful of commands in its life. This queue holds its commands in a
//! `VecDeque` that exists only while commands wait, and bounds it with a semaphore so a
//! sender waits, as with a bounded channel, when the driver is behind.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::sync::Semaphore;

use crate::driver::Command;

struct State {
    queue: VecDeque<Box<Command>>,
    senders: usize,
    receiver_alive: bool,
    waker: Option<Waker>,
}

struct Shared {
    state: Mutex<State>,
    /// Free slots; closed when the receiver is dropped.
    slots: Semaphore,
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // The critical sections cannot panic half-way through an update; a poisoned lock still
    // holds a consistent queue.
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A queue of at most `capacity` (at least 1) commands.
pub(crate) fn channel(capacity: usize) -> (CommandSender, CommandReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            senders: 1,
            receiver_alive: true,
            waker: None,
        }),
        slots: Semaphore::new(capacity.max(1)),
    });
    (CommandSender(shared.clone()), CommandReceiver(shared))
}

/// The driver is gone; the command comes back.
#[derive(Debug)]
pub(crate) struct Closed;

/// A handle's end; cloning adds a sender.
pub(crate) struct CommandSender(Arc<Shared>);

impl CommandSender {
    /// Queues a command, waiting for a free slot while the queue is full.
    pub(crate) async fn send(&self, command: Box<Command>) -> Result<(), Closed> {
        let permit = self.0.slots.acquire().await.map_err(|_| Closed)?;
        let waker = {
            let mut state = lock(&self.0);
            if !state.receiver_alive {
                return Err(Closed);
            }
            // The slot is given back by the receiver when it takes the command.
            permit.forget();
            state.queue.push_back(command);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }
}

impl Clone for CommandSender {
    fn clone(&self) -> Self {
        lock(&self.0).senders += 1;
        Self(self.0.clone())
    }
}

impl Drop for CommandSender {
    fn drop(&mut self) {
        let waker = {
            let mut state = lock(&self.0);
            state.senders -= 1;
            if state.senders == 0 {
                state.waker.take()
            } else {
                None
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl fmt::Debug for CommandSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandSender")
            .field("queued", &lock(&self.0).queue.len())
            .finish_non_exhaustive()
    }
}

/// The driver's end: yields queued commands, then `None` once every sender is gone.
pub(crate) struct CommandReceiver(Arc<Shared>);

impl CommandReceiver {
    /// Cancel safe: a command leaves the queue only when it is returned.
    pub(crate) async fn recv(&mut self) -> Option<Box<Command>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Box<Command>>> {
        let mut state = lock(&self.0);
        if let Some(command) = state.queue.pop_front() {
            if state.queue.is_empty() {
                // Commands are rare: hold no memory between them.
                state.queue = VecDeque::new();
            }
            drop(state);
            self.0.slots.add_permits(1);
            return Poll::Ready(Some(command));
        }
        if state.senders == 0 {
            return Poll::Ready(None);
        }
        match &mut state.waker {
            Some(waker) => waker.clone_from(cx.waker()),
            None => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for CommandReceiver {
    fn drop(&mut self) {
        let queued = {
            let mut state = lock(&self.0);
            state.receiver_alive = false;
            state.waker = None;
            std::mem::take(&mut state.queue)
        };
        self.0.slots.close();
        // Dropped outside the lock: a command's reply sender wakes its caller.
        drop(queued);
    }
}

impl fmt::Debug for CommandReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandReceiver")
            .field("queued", &lock(&self.0).queue.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::task::Waker;

    use tokio::sync::oneshot;

    use super::*;

    fn list() -> (Box<Command>, oneshot::Receiver<Vec<crate::Series>>) {
        let (tx, rx) = oneshot::channel();
        (Box::new(Command::List(tx)), rx)
    }

    #[tokio::test]
    async fn in_order_bounded_then_ends_with_the_last_sender() {
        let (tx, mut rx) = channel(1);
        let (first, _r1) = list();
        let (second, _r2) = list();
        tx.send(first).await.unwrap();
        // Full: the second send waits until the receiver takes the first command.
        let mut cx = Context::from_waker(Waker::noop());
        {
            let mut waiting = pin!(tx.send(second));
            assert!(waiting.as_mut().poll(&mut cx).is_pending());
            assert!(rx.recv().await.is_some());
            assert!(waiting.as_mut().poll(&mut cx).is_ready());
        }
        assert!(rx.recv().await.is_some());
        assert_eq!(lock(&rx.0).queue.capacity(), 0);
        let clone = tx.clone();
        drop(tx);
        let mut next = pin!(rx.recv());
        assert!(next.as_mut().poll(&mut cx).is_pending());
        drop(clone);
        assert!(matches!(next.as_mut().poll(&mut cx), Poll::Ready(None)));
    }

    #[tokio::test]
    async fn dropping_the_receiver_closes_senders_and_drops_queued_commands() {
        let (tx, rx) = channel(4);
        let (command, reply) = list();
        tx.send(command).await.unwrap();
        drop(rx);
        assert!(
            reply.await.is_err(),
            "queued command dropped, its reply closed"
        );
        let (command, _reply) = list();
        assert!(tx.send(command).await.is_err());
    }
}
