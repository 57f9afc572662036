//! Waiting outside the loop while requests still time out and commands are taken in.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;

use super::DriverInner;

/// Commands other than requests held while the driver waits outside its loop; past this many,
/// further commands wait in the channel.
const HELD_COMMANDS: usize = 64;

impl DriverInner {
    /// Waits for `step` outside the loop (a reconnect, a full subscriber, a blocked write),
    /// doing meanwhile what the loop cannot: requests whose time is up fail on time, and new
    /// commands are taken in. A step that is done at once costs no timer.
    pub(super) async fn meanwhile<T>(
        &mut self,
        step: impl FnMut(&mut Self, &mut Context<'_>) -> Poll<T>,
    ) -> T {
        self.meanwhile_pinging(false, step).await
    }

    /// [`DriverInner::meanwhile`], sending PINGs too when `ping` (see `poll_keepalive`): only
    /// where nothing else writes to the socket meanwhile.
    async fn meanwhile_pinging<T>(
        &mut self,
        ping: bool,
        mut step: impl FnMut(&mut Self, &mut Context<'_>) -> Poll<T>,
    ) -> T {
        let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
        let mut due: Option<String> = None;
        let mut flushing = false;
        std::future::poll_fn(|cx| {
            loop {
                if let Poll::Ready(out) = step(&mut *self, cx) {
                    return Poll::Ready(out);
                }
                let mut progress = ping && self.poll_keepalive(cx, &mut due, &mut flushing);
                if !self.handles_gone && self.held.len() < HELD_COMMANDS {
                    match self.cmd_rx.poll_recv(cx) {
                        Poll::Ready(Some(cmd)) => {
                            self.take_in(cmd);
                            progress = true;
                        }
                        // The step may end early for this (see `pause`); else the loop finds
                        // the channel closed too, once the step is done.
                        Poll::Ready(None) => {
                            self.handles_gone = true;
                            progress = true;
                        }
                        Poll::Pending => {}
                    }
                }
                if let Some(at) = self.deadlines.earliest() {
                    let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                    if timer.deadline() != at {
                        timer.as_mut().reset(at);
                    }
                    if timer.as_mut().poll(cx).is_ready() {
                        // At least `at`: the front always leaves, so this loop moves on.
                        self.expire_requests(Instant::now().max(at));
                        progress = true;
                    }
                }
                if !progress {
                    return Poll::Pending;
                }
            }
        })
        .await
    }

    /// A recovery's wait between attempts; `Err` when every handle is dropped meanwhile (nobody
    /// could use the session, so recovering it is pointless).
    pub(super) async fn pause(&mut self, delay: Duration) -> Result<(), Error> {
        let mut sleep = std::pin::pin!(tokio::time::sleep(delay));
        self.meanwhile(|driver, cx| {
            if driver.handles_gone {
                return Poll::Ready(Err(Error::closed("every handle was dropped")));
            }
            sleep.as_mut().poll(cx).map(Ok)
        })
        .await
    }

    /// [`DriverInner::meanwhile`] for a future that does not borrow the driver.
    pub(super) async fn meanwhile_future<F: Future>(&mut self, step: F) -> F::Output {
        let mut step = std::pin::pin!(step);
        self.meanwhile(|_, cx| step.as_mut().poll(cx)).await
    }

    /// [`DriverInner::meanwhile_future`] for a wait on a subscriber's room, which may last as
    /// long as its reader is away: PINGs go on meanwhile, or the service would close the socket
    /// as idle.
    pub(super) async fn meanwhile_subscriber<F: Future>(&mut self, step: F) -> F::Output {
        let mut step = std::pin::pin!(step);
        self.meanwhile_pinging(true, |_, cx| step.as_mut().poll(cx))
            .await
    }
}
