//! Commands from the handle: requests, subscriptions, stops.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, ErrorKind};

use super::{Command, DriverInner, Pending, RequestCommand, Sub};

impl DriverInner {
    pub(super) async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Request(request) => self.take_request(request),
            Command::Subscribe {
                payload,
                catch_up,
                tx,
                ending,
                reply,
            } => {
                // The select takes commands before drops, so a subscription dropped just
                // before this call may still be counted: its slot is free to the caller.
                while let Ok(key) = self.drop_rx.try_recv() {
                    self.unsubscribe(key);
                }
                if self.subs.len() >= self.shared.config.max_subscriptions {
                    let _ = reply.send(Err(Error::new(ErrorKind::TooManySubscriptions)));
                    return;
                }
                let key = self.next_key;
                self.next_key += 1;
                self.subs.insert(
                    key,
                    Sub {
                        payload,
                        catch_up,
                        tx,
                        ending,
                        server_id: None,
                        ack: Some(reply),
                        start_tries: 1,
                        first_try: Instant::now(),
                        backoff: None,
                        gap: false,
                        catch_up_refusals: 0,
                        catch_up_losses: 0,
                        skip_catch_up: false,
                        unanswered: 0,
                    },
                );
                let id = self.queue(Pending::SubStart { key });
                self.start_deadline(id, key, Duration::ZERO);
            }
            Command::Stopping => self.stopping = true,
            Command::Shutdown => {
                self.stopping = true;
                self.shutdown_socket().await;
            }
        }
    }

    fn take_request(&mut self, request: RequestCommand) {
        let RequestCommand {
            payload,
            replay,
            status,
            reply,
        } = request;
        if status.is_some() {
            // The caller's status is newer than the one a restore would set again; a retried
            // restore sent after it would undo it. Owed again if this request sets nothing.
            let mut superseded = None;
            self.pending.retain(|_, p| match p {
                Pending::StatusRestore { tries } => {
                    superseded = Some(*tries);
                    false
                }
                _ => true,
            });
            if superseded.is_some() {
                self.superseded_restore = superseded;
            }
        }
        let id = self.queue(Pending::Request {
            payload,
            replay,
            status,
            reply,
            resends: 0,
            sent: false,
        });
        self.timeout_from_now(id);
    }

    /// A command that came while the driver waited outside its loop: requests are queued now
    /// (their deadlines start), and `Stopping` holds at once (the EOS that answers the stop
    /// request queued behind it must not restart the session); the rest wait for the loop.
    pub(super) fn take_in(&mut self, cmd: Command) {
        match cmd {
            Command::Request(request) => self.take_request(request),
            Command::Stopping => self.stopping = true,
            other => self.held.push_back(other),
        }
    }
}
