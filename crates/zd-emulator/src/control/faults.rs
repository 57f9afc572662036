//! Fault injection on a session's socket.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use zd_wire::chat::ErrorName;

use super::{Control, ControlError};
use crate::chat::session::{Outgoing, ProtocolFault, Session, Unsent};

impl Control {
    fn session(&self, session_id: &str) -> Result<Arc<Session>, ControlError> {
        self.core
            .sessions
            .by_id(session_id)
            .ok_or_else(|| ControlError::NoSession(session_id.to_owned()))
    }

    /// The session, when a socket is attached to it.
    fn connected(&self, session_id: &str) -> Result<Arc<Session>, ControlError> {
        let session = self.session(session_id)?;
        if !session.connected() {
            return Err(ControlError::NotConnected(session_id.to_owned()));
        }
        Ok(session)
    }

    /// Queues `out` behind the socket's frames. A full queue is refused rather than waited
    /// on: it is full only when the client has stopped reading, and would stay so. A socket
    /// still upgrading takes it; if its upgrade then fails, the socket taking the session
    /// back gets it ([`Session::abandon`]), so what is answered Ok here is not lost.
    fn to_socket(&self, session_id: &str, out: Outgoing) -> Result<(), ControlError> {
        self.session(session_id)?
            .to_socket(out)
            .map_err(|unsent| match unsent {
                Unsent::Backlogged => ControlError::Backlogged(session_id.to_owned()),
                Unsent::NotConnected => ControlError::NotConnected(session_id.to_owned()),
            })
    }

    /// Drops the session's TCP connection without a close frame (the session stays valid).
    ///
    /// # Errors
    /// No such session or no socket.
    pub async fn fault_drop(&self, session_id: &str) -> Result<(), ControlError> {
        if self.session(session_id)?.kill() {
            Ok(())
        } else {
            Err(ControlError::NotConnected(session_id.to_owned()))
        }
    }

    /// Closes the session's socket with a close frame (the session stays valid). A `reason`
    /// longer than a close frame holds (123 bytes) is cut to fit, on a char boundary.
    ///
    /// # Errors
    /// A code that may not be sent in a close frame (RFC 6455 section 7.4), no such session, no
    /// socket, or a socket whose client reads nothing ([`ControlError::Backlogged`]).
    pub async fn fault_close(
        &self,
        session_id: &str,
        code: u16,
        reason: &str,
    ) -> Result<(), ControlError> {
        check_close_code(code)?;
        self.to_socket(session_id, Outgoing::Close(code, reason.to_owned()))
    }

    /// Ends the session with EOS and `reason`.
    ///
    /// # Errors
    /// No such session.
    pub fn fault_eos(&self, session_id: &str, reason: &str) -> Result<(), ControlError> {
        let session = self.session(session_id)?;
        self.core.sessions.end(&session, reason);
        Ok(())
    }

    /// Sends nothing on the socket for `ms` milliseconds (frames queue meanwhile).
    ///
    /// # Errors
    /// No such session, no socket, or a socket whose client reads nothing
    /// ([`ControlError::Backlogged`]).
    pub async fn fault_stall(&self, session_id: &str, ms: u64) -> Result<(), ControlError> {
        self.to_socket(session_id, Outgoing::Stall(Duration::from_millis(ms)))
    }

    /// Reads nothing from the session's socket for `ms` milliseconds (0 does nothing): the
    /// client's frames wait in the buffers between, and once those are full its writes wait too.
    ///
    /// # Errors
    /// No such session or no socket.
    pub fn fault_deaf(&self, session_id: &str, ms: u64) -> Result<(), ControlError> {
        if self.connected(session_id)?.deafen(ms) {
            Ok(())
        } else {
            Err(ControlError::NotConnected(session_id.to_owned()))
        }
    }

    /// Cuts the session's socket (no close frame) as its next request or `stop_subscription`
    /// takes effect, before the answer is written: the request is done on the service, but
    /// the client never hears of it, as when a connection dies at that moment. The session
    /// stays valid.
    ///
    /// # Errors
    /// No such session or no socket.
    pub fn fault_cut(&self, session_id: &str) -> Result<(), ControlError> {
        let session = self.connected(session_id)?;
        session.faults.cut_next.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Writes no answer to the session's next `count` requests or `stop_subscription` frames
    /// (0 turns it off): each takes effect on the service, but its answer (a subscription's
    /// ack included) is never sent, as from a service that does not answer. The socket stays
    /// up; DATA of a subscription started so still flows.
    ///
    /// # Errors
    /// No such session.
    pub fn fault_mute(&self, session_id: &str, count: u32) -> Result<(), ControlError> {
        let session = self.session(session_id)?;
        *session.faults.mute_next.lock() = (count > 0).then_some((count, ()));
        Ok(())
    }

    /// Fails the next `count` requests of the session with `error_name`: a documented name, or
    /// another in the same form (capitals, digits, `_`), sent as is to test a client's handling
    /// of names it does not know.
    ///
    /// # Errors
    /// No such session; [`ControlError::BadRequest`] for a name not in that form.
    pub fn fault_fail(
        &self,
        session_id: &str,
        count: u32,
        error_name: &str,
    ) -> Result<(), ControlError> {
        let session = self.session(session_id)?;
        let name = fault_error_name(error_name)?;
        *session.faults.fail_next.lock() = (count > 0).then_some((count, name));
        Ok(())
    }

    /// Turns the next `count` DATA frames of the session into DATA errors named `error_name` (in
    /// the form [`Control::fault_fail`] takes).
    ///
    /// # Errors
    /// No such session; [`ControlError::BadRequest`] for a name not in that form.
    pub fn fault_fail_data(
        &self,
        session_id: &str,
        count: u32,
        error_name: &str,
    ) -> Result<(), ControlError> {
        let session = self.session(session_id)?;
        let name = fault_error_name(error_name)?;
        *session.faults.fail_data.lock() = (count > 0).then_some((count, name));
        Ok(())
    }

    /// Breaks the `data` of the session's next `count` answers that carry one: it starts with
    /// `"garbled":tru,`, which no JSON parser accepts, while the frame's outline stays intact
    /// (0 turns it off).
    ///
    /// # Errors
    /// No such session.
    pub fn fault_garble(&self, session_id: &str, count: u32) -> Result<(), ControlError> {
        let session = self.session(session_id)?;
        *session.faults.garble_next.lock() = (count > 0).then_some((count, ()));
        Ok(())
    }

    /// Answers the next `count` requests of the session with the protocol error payload
    /// `{"errorCode": code, "payload": {"body": body}, "id": ..}` (0 turns it off).
    ///
    /// # Errors
    /// No such session, or a `code` that is not an HTTP error status (400-599).
    pub fn fault_protocol_error(
        &self,
        session_id: &str,
        count: u32,
        code: u16,
        body: &str,
    ) -> Result<(), ControlError> {
        if !(400..=599).contains(&code) {
            return Err(ControlError::BadRequest(format!(
                "error_code {code} is not an HTTP error status (400-599)"
            )));
        }
        let session = self.session(session_id)?;
        *session.faults.protocol_next.lock() = (count > 0).then(|| {
            (
                count,
                ProtocolFault {
                    code,
                    body: body.to_owned(),
                },
            )
        });
        Ok(())
    }

    /// Stops (or resumes) answering PINGs.
    ///
    /// # Errors
    /// No such session.
    pub fn fault_pings(&self, session_id: &str, answer: bool) -> Result<(), ControlError> {
        self.session(session_id)?
            .faults
            .ignore_pings
            .store(!answer, Ordering::Relaxed);
        Ok(())
    }

    /// Delays every answer of the session (to requests and stops, acks and refusals included,
    /// and to frames that do not decode) to `ms` milliseconds after its frame was read (0 turns
    /// it off). Answers keep their order and pipelined ones do not add up; DATA frames queued
    /// behind a held answer wait for it. PONGs go out at once: the fault plays a slow service
    /// behind a live connection.
    ///
    /// # Errors
    /// No such session.
    pub fn fault_delay(&self, session_id: &str, ms: u64) -> Result<(), ControlError> {
        self.session(session_id)?
            .faults
            .response_delay_ms
            .store(ms, Ordering::Relaxed);
        Ok(())
    }
}

/// Refuses a close code that may not go in a close frame: 1004 is reserved, 1005, 1006 and
/// 1015 stand for a close without a code, an abnormal end and a TLS failure and must never be
/// sent (RFC 6455 section 7.4), 1014 and 1016-2999 are reserved or unassigned (1012 and 1013
/// were registered with IANA after the RFC; 1014 too, but tungstenite clients, this project's
/// own among them, still refuse it), and nothing outside 1000-4999 exists. A client meeting
/// such a code fails the connection instead of seeing a close with it.
fn check_close_code(code: u16) -> Result<(), ControlError> {
    match code {
        1000..=1003 | 1007..=1013 | 3000..=4999 => Ok(()),
        1006 => Err(ControlError::BadRequest(
            "close code 1006 is never sent in a close frame: it is what a client reports when \
             the connection ends without one; the `drop` fault does that"
                .into(),
        )),
        _ => Err(ControlError::BadRequest(format!(
            "close code {code} may not be sent in a close frame (one of 1000-1003, \
             1007-1013 or 3000-4999)"
        ))),
    }
}

/// The error names the documents list.
const DOCUMENTED_NAMES: [ErrorName; 6] = [
    ErrorName::Unauthorized,
    ErrorName::Forbidden,
    ErrorName::RateLimited,
    ErrorName::MaxSub,
    ErrorName::GraphQlExecError,
    ErrorName::GraphQlSubStartError,
];

/// The name a `fail` fault answers with. A name in another form (`rate_limited`, blank) is a
/// typo far more often than a test of unknown names, and would exercise none of the client's
/// handling of the documented one it meant: it is refused, naming the documented ones.
fn fault_error_name(name: &str) -> Result<ErrorName, ControlError> {
    let mut chars = name.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 64;
    if !well_formed {
        let documented: Vec<&str> = DOCUMENTED_NAMES.iter().map(ErrorName::as_str).collect();
        return Err(ControlError::BadRequest(format!(
            "error_name {name:?} is not an error name: use one of {} (or another name in \
             capitals, digits and _, sent as is)",
            documented.join(", ")
        )));
    }
    Ok(ErrorName::from_name(name))
}
