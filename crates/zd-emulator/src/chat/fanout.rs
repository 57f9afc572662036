//! Subscription fan-out.
//!
//! Subscriptions with the same document, variables and operation name form a class. One task
//! per class reads the state's events, executes the subscription document once per event with
//! the real engine, serializes the payload once, and hands each subscriber whose agent may see
//! the event a frame that differs only in `subscription_id`. So the cost per event is one
//! execution per distinct document, not one per subscriber.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::parser::types::ExecutableDocument;
use futures_util::StreamExt as _;
use parking_lot::{Mutex, RwLock};
use serde_json::value::RawValue;
use tokio::sync::{Notify, broadcast, watch};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use zd_wire::chat::{Data, DataError, ErrorName, ErrorPayload};

use super::limits::{LOG_ENTRIES_SPENT, MAX_DATA_BYTES};
use super::render::{OwnedError, Rendered, status_of};
use super::schema::{ChatSchema, EventSlot, log_entries_spent};
use super::session::Session;
use crate::state::{ChatState, EventKind, StateEvent};

/// What makes two subscriptions share their executions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClassKey {
    pub(crate) query: String,
    pub(crate) variables: String,
    pub(crate) operation_name: Option<String>,
}

#[derive(Debug)]
struct Subscriber {
    id: String,
    session: Arc<Session>,
    /// Set once the ack is queued, so no DATA frame overtakes it.
    active: AtomicBool,
}

/// Subscriptions sharing one document.
#[derive(Debug)]
pub(crate) struct Class {
    key: ClassKey,
    document: ExecutableDocument,
    subscribers: RwLock<Vec<Arc<Subscriber>>>,
    hub: std::sync::Weak<Hub>,
    stop: Notify,
}

/// All subscription classes.
pub(crate) struct Hub {
    classes: Mutex<HashMap<ClassKey, Arc<Class>>>,
    schema: ChatSchema,
    state: Arc<ChatState>,
    shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("classes", &self.classes.lock().len())
            .finish_non_exhaustive()
    }
}

impl Hub {
    pub(crate) fn new(
        schema: ChatSchema,
        state: Arc<ChatState>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        Arc::new(Self {
            classes: Mutex::new(HashMap::new()),
            schema,
            state,
            shutdown,
        })
    }

    /// Registers subscription `id` of `session` (inactive until [`Class::activate`]).
    pub(crate) fn add(
        self: &Arc<Self>,
        key: ClassKey,
        document: ExecutableDocument,
        id: &str,
        session: &Arc<Session>,
    ) -> Arc<Class> {
        let subscriber = Arc::new(Subscriber {
            id: id.to_owned(),
            session: session.clone(),
            active: AtomicBool::new(false),
        });
        let mut classes = self.classes.lock();
        let class = classes
            .entry(key.clone())
            .or_insert_with(|| {
                let class = Arc::new(Class {
                    key,
                    document,
                    subscribers: RwLock::new(Vec::new()),
                    hub: Arc::downgrade(self),
                    stop: Notify::new(),
                });
                // Subscribe before returning, so no event after registration is missed.
                let events = self.state.subscribe();
                tokio::spawn(drive(
                    class.clone(),
                    self.schema.clone(),
                    events,
                    self.shutdown.clone(),
                ));
                class
            })
            .clone();
        class.subscribers.write().push(subscriber);
        class
    }

    /// How many classes run.
    #[cfg(test)]
    pub(crate) fn class_count(&self) -> usize {
        self.classes.lock().len()
    }

    fn remove_class_if_empty(&self, class: &Arc<Class>) {
        let mut classes = self.classes.lock();
        if class.subscribers.read().is_empty()
            && classes
                .get(&class.key)
                .is_some_and(|c| Arc::ptr_eq(c, class))
        {
            classes.remove(&class.key);
            class.stop.notify_one();
        }
    }
}

impl Class {
    /// Lets DATA frames flow to subscription `id`.
    pub(crate) fn activate(&self, id: &str) {
        for s in self.subscribers.read().iter().filter(|s| s.id == id) {
            s.active.store(true, Ordering::Release);
        }
    }

    /// Removes subscription `id`; the class stops when it was the last one.
    pub(crate) fn remove(self: &Arc<Self>, id: &str) {
        self.subscribers.write().retain(|s| s.id != id);
        if let Some(hub) = self.hub.upgrade() {
            hub.remove_class_if_empty(self);
        }
    }

    /// Executes the document for `event` once and sends the result to every subscriber whose
    /// agent is in the event's audience.
    async fn deliver(&self, schema: &ChatSchema, event: &Arc<StateEvent>) {
        if !matches!(event.kind, EventKind::Log(_)) {
            return;
        }
        let targets: Vec<Arc<Subscriber>> = self
            .subscribers
            .read()
            .iter()
            .filter(|s| s.active.load(Ordering::Acquire))
            .filter(|s| event.audience.iter().any(|a| *a == s.session.agent))
            .cloned()
            .collect();
        if targets.is_empty() {
            return;
        }
        let mut request = async_graphql::Request::new(self.key.query.clone())
            .variables(
                serde_json::from_str(&self.key.variables)
                    .map(async_graphql::Variables::from_json)
                    .unwrap_or_default(),
            )
            .data(EventSlot::new(Some(event.clone())));
        if let Some(name) = &self.key.operation_name {
            request = request.operation_name(name.clone());
        }
        request.set_parsed_query(self.document.clone());
        let Some(response) = schema.execute_stream(request).next().await else {
            // The document's field does not report this kind of event.
            return;
        };
        if log_entries_spent(&response) {
            return refuse(&targets, LOG_ENTRIES_SPENT);
        }
        let payload = Rendered::from_engine(&response).payload_json();
        if payload.len() > MAX_DATA_BYTES {
            let message = format!(
                "the DATA frame would be larger than {MAX_DATA_BYTES} bytes, the most the \
                 emulator sends in one: subscribe to fewer fields"
            );
            return refuse(&targets, &message);
        }
        let Ok(payload) = RawValue::from_string(payload) else {
            return;
        };
        for target in targets {
            target.send(&payload);
        }
    }
}

impl Subscriber {
    /// Queues a DATA frame carrying `payload`, or a DATA error while the `fail_data` fault is
    /// armed. A frame dropped for want of a socket or of room in its outbox does not use the
    /// fault up: it is meant for frames the client gets.
    fn send(&self, payload: &RawValue) {
        self.session.push_data(|| {
            let text = match self.session.faults.take_data_failure() {
                Some(name) => data_error(
                    &self.id,
                    name,
                    "subscription failure injected by the emulator",
                ),
                None => Data {
                    subscription_id: self.id.as_str().into(),
                    payload,
                }
                .encode(),
            };
            text.ok().map(Utf8Bytes::from)
        });
    }
}

/// Sends each of `targets` a `GRAPHQL_EXEC_ERROR` DATA error with `message` in place of an
/// event's DATA frame past the emulator's bounds.
fn refuse(targets: &[Arc<Subscriber>], message: &str) {
    for target in targets {
        target.session.push_data(|| {
            data_error(&target.id, ErrorName::GraphQlExecError, message)
                .ok()
                .map(Utf8Bytes::from)
        });
    }
}

/// A DATA error frame (`error_code` + named error): an injected subscription failure, or an
/// event's frame past the emulator's bounds.
fn data_error(
    subscription_id: &str,
    name: ErrorName,
    message: &str,
) -> Result<String, zd_wire::Error> {
    let error = OwnedError::new(name, message);
    let code = status_of(&error.name);
    let errors = [error];
    DataError {
        error_code: code,
        subscription_id: subscription_id.into(),
        payload: ErrorPayload::GraphQl(errors.iter().map(OwnedError::wire).collect()),
    }
    .encode()
}

async fn drive(
    class: Arc<Class>,
    schema: ChatSchema,
    mut events: broadcast::Receiver<Arc<StateEvent>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = class.stop.notified() => break,
            // The emulator was dropped: nothing will publish again.
            _ = shutdown.changed() => break,
            event = events.recv() => match event {
                Ok(event) => class.deliver(&schema, &event).await,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "subscription fan-out fell behind; events dropped");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
}
