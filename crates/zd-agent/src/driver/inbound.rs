//! The way in: frames read from the socket, told apart and dispatched.

use std::collections::hash_map::Entry;

use tokio_tungstenite::tungstenite::Message as WsMessage;
use zd_wire::chat::{ErrorPayload, ServerFrame, split_data, split_response};

use crate::config::OnConcurrentSession;
use crate::error::{Error, ErrorKind, ServiceError, excerpt, names_documented, status_retryable};
use crate::subscription::SubEvent;

use super::{Cause, DriverInner, Pending};

impl DriverInner {
    pub(super) async fn on_message(&mut self, msg: WsMessage) -> Result<(), Cause> {
        self.ping_out = None;
        match msg {
            WsMessage::Text(text) => {
                let outcome = self.on_text(text.as_str()).await;
                if !self.undelivered.is_empty() {
                    self.deliver_held().await;
                }
                outcome
            }
            WsMessage::Close(frame) => {
                let code = frame.map(|f| u16::from(f.code));
                Err(Cause::lost(format!("closed by the server (code {code:?})")))
            }
            _ => Ok(()),
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<(), Cause> {
        // Most frames are subscription events: their payload is parsed once, by the
        // subscriber, instead of being validated here first and parsed there again.
        if let Some(data) = split_data(text, &self.limits) {
            self.route(data.subscription_id, SubEvent::Data(data.payload.into()))
                .await;
            return Ok(());
        }
        // Answers to requests come next; the caller parses `data` anyway. Other pending kinds
        // (subscription acks among them) take the full decoder below, which tells them apart.
        if let Some(resp) = split_response(text, &self.limits)
            && let Entry::Occupied(entry) = self.pending.entry(resp.id)
            && matches!(entry.get(), Pending::Request { .. })
        {
            let pending = entry.remove();
            self.on_answer(resp.id, pending, Ok(Some(resp.data.into())));
            return Ok(());
        }
        let frame = match ServerFrame::decode_with(text, &self.limits) {
            Ok(frame) => frame,
            Err(e) => {
                // Frames may hold visitor data: log the error kind, not the text.
                tracing::warn!(error = %e, "undecodable frame ignored");
                return Ok(());
            }
        };
        match frame {
            ServerFrame::Data(data) => {
                self.route(
                    &data.subscription_id,
                    SubEvent::Data(data.payload.get().into()),
                )
                .await;
            }
            ServerFrame::DataError(err) => {
                let e = payload_error(err.error_code, &err.payload);
                self.route(&err.subscription_id, SubEvent::Error(e)).await;
            }
            ServerFrame::SubscriptionAck(ack) => {
                let Some(id) = ack.id.as_u64() else {
                    return Ok(());
                };
                match self.pending.remove(&id) {
                    Some(Pending::SubStart { key }) => {
                        self.settle_deadline(id);
                        self.on_ack(key, ack.subscription_id.into_owned());
                    }
                    Some(Pending::Request { reply, .. }) => {
                        let raw = serde_json::json!({ "subscription_id": ack.subscription_id });
                        let _ = reply.send(Ok(Some(raw.to_string().into())));
                    }
                    Some(other) => tracing::debug!(?other, "unexpected subscription ack"),
                    None => {}
                }
            }
            ServerFrame::Response(resp) => {
                let Some(id) = resp.id.as_u64() else {
                    return Ok(());
                };
                let Some(pending) = self.pending.remove(&id) else {
                    return Ok(());
                };
                let errors = resp.payload.errors.as_ref().filter(|e| !e.is_empty());
                let outcome = match errors {
                    Some(errors) => Err(Error::new(ErrorKind::Service(
                        errors.iter().map(ServiceError::from_wire).collect(),
                    ))),
                    None => Ok(resp.payload.data.map(|d| d.get().into())),
                };
                self.on_answer(id, pending, outcome);
            }
            ServerFrame::Error(err) => {
                let e = payload_error(err.error_code, &err.payload);
                match err.id.as_ref().and_then(|id| id.as_u64()) {
                    Some(id) => {
                        if let Some(pending) = self.pending.remove(&id) {
                            self.on_answer(id, pending, Err(e));
                        }
                    }
                    None => tracing::warn!(error = %e, "error frame without a request id"),
                }
            }
            ServerFrame::Eos(eos) => {
                let reason = eos.reason.as_deref().unwrap_or("").to_owned();
                let concurrent = eos.is_concurrent_session_limit();
                tracing::info!(reason = %reason, "end of service");
                let fatal = (concurrent
                    && self.shared.config.on_concurrent_session == OnConcurrentSession::Surface)
                    .then_some(ErrorKind::ConcurrentSession);
                return Err(Cause {
                    restart: true,
                    fatal,
                    ..Cause::lost(format!("EOS: {reason}"))
                });
            }
            ServerFrame::Pong(_) => {}
            _ => tracing::debug!(kind = frame.kind(), "ignored frame"),
        }
        Ok(())
    }
}

/// The error an error frame (status `status`, 0 when unusable) reports.
///
/// GraphQL errors become [`ErrorKind::Service`] when one of them carries a documented name,
/// which then decides retrying. Without one (odd-shaped entries, a bare message, an unknown
/// name) the names say nothing, so the frame's status decides, as for a protocol error: a
/// 429, a 5xx or an unusable status gives a retryable [`ErrorKind::Protocol`] with the
/// messages as its body.
pub(super) fn payload_error(status: u16, payload: &ErrorPayload<'_>) -> Error {
    match payload {
        ErrorPayload::GraphQl(errors) if !names_documented(errors) && status_retryable(status) => {
            let service = ErrorKind::Service(errors.iter().map(ServiceError::from_wire).collect());
            Error::new(ErrorKind::Protocol {
                status,
                body: excerpt(&service.to_string()),
            })
        }
        ErrorPayload::GraphQl(errors) => Error::new(ErrorKind::Service(
            errors.iter().map(ServiceError::from_wire).collect(),
        )),
        ErrorPayload::Protocol { body } => Error::new(ErrorKind::Protocol {
            status,
            body: excerpt(body),
        }),
        ErrorPayload::Unknown(raw) => Error::new(ErrorKind::Protocol {
            status,
            body: excerpt(&unknown_payload_text(raw)),
        }),
        other => Error::new(ErrorKind::Protocol {
            status,
            body: excerpt(&format!("{other:?}")),
        }),
    }
}

/// What an error payload of no known shape says: its `message` when it has one (the words a
/// service writes for people), else its shape only. The rest may be anything the service
/// echoed (a visitor's message, a token), and the error is logged.
fn unknown_payload_text(raw: &serde_json::value::RawValue) -> String {
    #[derive(serde::Deserialize)]
    struct Said<'a> {
        #[serde(borrow)]
        message: Option<std::borrow::Cow<'a, str>>,
    }
    // An object only: serde reads a struct from an array too, its first item as `message`.
    let object = raw.get().trim_start().starts_with('{');
    match object.then(|| serde_json::from_str::<Said<'_>>(raw.get())) {
        Some(Ok(Said {
            message: Some(message),
        })) => message.into_owned(),
        _ => format!("{:?}", ErrorPayload::Unknown(raw)),
    }
}
