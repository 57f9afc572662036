//! The in-memory state of the service: apps and everything that lives inside them.

use std::collections::{BTreeMap, HashMap};

use super::error::{ApiError, Missing};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

/// A key id with its secret (app, account or custom integration key).
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) id: String,
    pub(crate) display_name: Option<String>,
    pub(crate) secret: String,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Key {
    pub(crate) fn render(&self) -> Value {
        json!({ "id": self.id, "displayName": self.display_name, "secret": self.secret })
    }
}

/// Everything the service holds.
#[derive(Default)]
pub(crate) struct Store {
    pub(crate) account_keys: Vec<Key>,
    pub(crate) apps: BTreeMap<String, App>,
    /// OAuth bridge tokens: token -> (app id, integration id).
    pub(crate) bridge_tokens: HashMap<String, (String, String)>,
    /// OAuth bridge codes: code -> app id.
    pub(crate) bridge_codes: HashMap<String, String>,
}

impl Store {
    /// The app with this id, or the API's 404.
    pub(crate) fn app(&self, id: &str) -> Result<&App, ApiError> {
        self.apps
            .get(id)
            .ok_or_else(|| ApiError::not_found(Missing::App))
    }

    /// The app with this id for a change, or the API's 404.
    pub(crate) fn app_mut(&mut self, id: &str) -> Result<&mut App, ApiError> {
        self.apps
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found(Missing::App))
    }
}

/// Bearer tokens and OAuth codes are credentials: Debug shows how many there are, never them.
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("account_keys", &self.account_keys)
            .field("apps", &self.apps)
            .field(
                "bridge_tokens",
                &format_args!("<{} redacted>", self.bridge_tokens.len()),
            )
            .field(
                "bridge_codes",
                &format_args!("<{} redacted>", self.bridge_codes.len()),
            )
            .finish()
    }
}

/// An app.
#[derive(Debug, Default)]
pub(crate) struct App {
    pub(crate) id: String,
    pub(crate) display_name: String,
    pub(crate) settings: Map<String, Value>,
    pub(crate) metadata: Value,
    pub(crate) keys: BTreeMap<String, Key>,
    /// Change through [`App::insert_user`] and [`App::remove_user`], which keep
    /// `external_ids` in step.
    pub(crate) users: BTreeMap<String, User>,
    /// externalId -> user id: a lookup per request (create, user authors, `{userIdOrExternalId}`
    /// paths) must not scan every user, which grows with every user a client creates.
    pub(crate) external_ids: HashMap<String, String>,
    pub(crate) conversations: BTreeMap<String, Conversation>,
    pub(crate) integrations: BTreeMap<String, Integration>,
    pub(crate) switchboards: BTreeMap<String, Switchboard>,
    /// The uploads, by media URL.
    pub(crate) uploads: Uploads,
}

/// An app's uploads by media URL, with what they hold in all kept in step: every upload checks
/// the app's limit against it, and summing every stored upload each time (under the store's
/// lock) would cost the app's every upload per upload. Its fields are private: every change
/// goes through the methods below, which add a footprint once and take it back once.
#[derive(Debug, Default)]
pub(crate) struct Uploads {
    by_url: BTreeMap<String, Attachment>,
    /// The sum of `by_url`'s [`Attachment::footprint`]s.
    held: usize,
}

impl Uploads {
    pub(crate) fn get(&self, url: &str) -> Option<&Attachment> {
        self.by_url.get(url)
    }

    /// What the uploads hold in all.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held
    }

    /// Stores `attachment` at `url` if the uploads then hold at most `limit`; otherwise gives
    /// it back. An upload at a URL already taken replaces it.
    pub(crate) fn insert(
        &mut self,
        url: String,
        attachment: Attachment,
        limit: usize,
    ) -> Result<(), Attachment> {
        let replaced = self.by_url.get(&url).map_or(0, |a| a.footprint(&url));
        let held = (self.held - replaced).saturating_add(attachment.footprint(&url));
        if held > limit {
            return Err(attachment);
        }
        self.held = held;
        self.by_url.insert(url, attachment);
        Ok(())
    }

    /// Removes the upload at `url`.
    pub(crate) fn remove(&mut self, url: &str) -> Option<Attachment> {
        let (url, attachment) = self.by_url.remove_entry(url)?;
        self.held -= attachment.footprint(&url);
        Some(attachment)
    }

    /// Removes the uploads `drop` picks.
    fn remove_where(&mut self, mut drop: impl FnMut(&str, &Attachment) -> bool) {
        let mut freed = 0;
        self.by_url.retain(|url, a| {
            let gone = drop(url, a);
            if gone {
                freed += a.footprint(url);
            }
            !gone
        });
        self.held -= freed;
    }
}

/// An uploaded file.
#[derive(Debug, Clone)]
pub(crate) struct Attachment {
    pub(crate) media_type: String,
    pub(crate) bytes: bytes::Bytes,
    /// The conversation an upload `for=message` was linked to: the attachment goes with it.
    pub(crate) conversation_id: Option<String>,
}

impl Attachment {
    /// What the attachment stored under `url` holds in memory, near enough to bound it: an
    /// empty upload costs its map entry and strings too, or uploads of nothing would be
    /// unbounded in number.
    pub(crate) fn footprint(&self, url: &str) -> usize {
        const ENTRY: usize = 256;
        ENTRY + self.bytes.len() + self.media_type.len() + url.len()
    }
}

impl App {
    pub(crate) fn render(&self) -> Value {
        json!({
            "id": self.id,
            "displayName": self.display_name,
            "settings": self.settings,
            "metadata": self.metadata,
        })
    }

    /// Finds a user by id, then by external id.
    pub(crate) fn user_id(&self, id_or_external: &str) -> Option<String> {
        if self.users.contains_key(id_or_external) {
            return Some(id_or_external.to_owned());
        }
        self.external_ids.get(id_or_external).cloned()
    }

    /// Adds (or replaces) a user, indexing its external id.
    pub(crate) fn insert_user(&mut self, user: User) {
        if let Some(old) = self.users.remove(&user.id) {
            self.unindex(&old);
        }
        if let Some(ext) = &user.external_id {
            self.external_ids.insert(ext.clone(), user.id.clone());
        }
        self.users.insert(user.id.clone(), user);
    }

    /// Removes a user and its external id from the index.
    pub(crate) fn remove_user(&mut self, id: &str) -> Option<User> {
        let user = self.users.remove(id)?;
        self.unindex(&user);
        Some(user)
    }

    fn unindex(&mut self, user: &User) {
        if let Some(ext) = &user.external_id {
            if self.external_ids.get(ext) == Some(&user.id) {
                self.external_ids.remove(ext);
            }
        }
    }

    /// Drops the attachments uploaded for messages of the conversation `conversation_id`.
    pub(crate) fn drop_attachments_of(&mut self, conversation_id: &str) {
        self.uploads
            .remove_where(|_, a| a.conversation_id.as_deref() == Some(conversation_id));
    }

    /// Drops the attachments uploaded for messages of the conversation `conversation_id` that
    /// are served at one of `media_urls`: those of a deleted message.
    pub(crate) fn drop_attachments_at(
        &mut self,
        conversation_id: &str,
        media_urls: &std::collections::HashSet<String>,
    ) {
        self.uploads.remove_where(|url, a| {
            a.conversation_id.as_deref() == Some(conversation_id) && media_urls.contains(url)
        });
    }

    /// Links the attachments of the conversation `from` to the conversation `to`, which took
    /// over its messages: they go when `to` does.
    pub(crate) fn relink_attachments(&mut self, from: &str, to: &str) {
        for a in self.uploads.by_url.values_mut() {
            if a.conversation_id.as_deref() == Some(from) {
                a.conversation_id = Some(to.to_owned());
            }
        }
    }

    pub(crate) fn active_switchboard(&self) -> Option<&Switchboard> {
        self.switchboards.values().find(|s| s.enabled)
    }

    pub(crate) fn switchboard_integration(&self, id: &str) -> Option<&SwitchboardIntegration> {
        self.switchboards
            .values()
            .find_map(|s| s.integrations.get(id))
    }
}

/// An end user.
#[derive(Debug, Default, Clone)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) external_id: Option<String>,
    pub(crate) signed_up_at: String,
    pub(crate) to_be_retained: bool,
    pub(crate) profile: Map<String, Value>,
    pub(crate) metadata: Value,
    pub(crate) clients: BTreeMap<String, Value>,
    pub(crate) devices: BTreeMap<String, Value>,
    pub(crate) zendesk_id: Option<String>,
    /// Connected identities (`{type, value, verification}`), such as the email a user
    /// authenticated with; the API cannot set them, the control API's end users can.
    pub(crate) identities: Vec<Value>,
}

impl User {
    pub(crate) fn render(&self) -> Value {
        json!({
            "id": self.id,
            "externalId": self.external_id,
            "zendeskId": self.zendesk_id,
            "authenticated": self.external_id.is_some(),
            "signedUpAt": self.signed_up_at,
            "toBeRetained": self.to_be_retained,
            "profile": self.profile,
            // Users' metadata is not nullable in the spec: no metadata reads as `{}`.
            "metadata": if self.metadata.is_null() { json!({}) } else { self.metadata.clone() },
            "identities": self.identities,
        })
    }

    /// Whether one of the user's identities is this email address.
    pub(crate) fn has_email_identity(&self, email: &str) -> bool {
        self.identities
            .iter()
            .any(|i| i["type"] == "email" && i["value"] == email)
    }

    /// The user as the `userTruncated` schema shows it: what events carry unless the webhook
    /// asked for full users (see [`truncated_user`]).
    pub(crate) fn render_truncated(&self) -> Value {
        let mut o = Map::new();
        o.insert("id".into(), json!(self.id));
        // Absent rather than null, as in the spec's examples.
        if let Some(external_id) = &self.external_id {
            o.insert("externalId".into(), json!(external_id));
        }
        if let Some(zendesk_id) = &self.zendesk_id {
            o.insert("zendeskId".into(), json!(zendesk_id));
        }
        o.insert("authenticated".into(), json!(self.external_id.is_some()));
        Value::Object(o)
    }
}

/// A rendered user cut down to what [`User::render_truncated`] shows.
pub(crate) fn truncated_user(full: &Map<String, Value>) -> Map<String, Value> {
    ["id", "externalId", "zendeskId", "authenticated"]
        .into_iter()
        .filter_map(|f| {
            full.get(f)
                .filter(|v| !v.is_null())
                .map(|v| (f.to_owned(), v.clone()))
        })
        .collect()
}

/// A participant of a conversation.
#[derive(Debug, Clone)]
pub(crate) struct Participant {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) unread_count: u64,
    pub(crate) last_read: Option<String>,
}

/// A conversation.
#[derive(Debug, Default)]
pub(crate) struct Conversation {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) is_default: bool,
    pub(crate) display_name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) icon_url: Option<String>,
    pub(crate) metadata: Value,
    pub(crate) created_at: String,
    pub(crate) last_updated_at: Option<String>,
    pub(crate) business_last_read: Option<String>,
    pub(crate) participants: Vec<Participant>,
    /// Messages never change once posted, so each is kept serialized: a page of 100 is
    /// written out by copying bytes instead of rendering 100 JSON trees.
    pub(crate) messages: BTreeMap<String, Box<RawValue>>,
    pub(crate) active_switchboard_integration: Option<String>,
    pub(crate) pending_switchboard_integration: Option<String>,
}

impl Conversation {
    pub(crate) fn render_truncated(&self, app: &App) -> Value {
        let sbi = |id: &Option<String>| {
            id.as_deref()
                .and_then(|id| app.switchboard_integration(id))
                .map(SwitchboardIntegration::render_webhook)
        };
        let mut v = json!({
            "id": self.id,
            "type": self.kind,
            "metadata": self.metadata,
        });
        // "Omitted if no activeSwitchboardIntegration exists" (and likewise pending).
        if let Some(o) = v.as_object_mut() {
            for (key, id) in [
                (
                    "activeSwitchboardIntegration",
                    &self.active_switchboard_integration,
                ),
                (
                    "pendingSwitchboardIntegration",
                    &self.pending_switchboard_integration,
                ),
            ] {
                if let Some(seat) = sbi(id) {
                    o.insert(key.into(), seat);
                }
            }
        }
        v
    }

    pub(crate) fn render(&self, app: &App) -> Value {
        let mut v = self.render_truncated(app);
        if let Some(o) = v.as_object_mut() {
            o.insert("isDefault".into(), json!(self.is_default));
            o.insert("displayName".into(), json!(self.display_name));
            o.insert("description".into(), json!(self.description));
            o.insert("iconUrl".into(), json!(self.icon_url));
            o.insert("businessLastRead".into(), json!(self.business_last_read));
            o.insert("lastUpdatedAt".into(), json!(self.last_updated_at));
            o.insert("createdAt".into(), json!(self.created_at));
        }
        v
    }

    pub(crate) fn render_participant(&self, p: &Participant, app: &App) -> Value {
        let user = app.users.get(&p.user_id);
        let associations: Vec<Value> = user
            .map(|u| {
                u.clients
                    .values()
                    .map(|c| json!({ "type": c["type"], "clientId": c["id"] }))
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "id": p.id,
            "userId": p.user_id,
            "unreadCount": p.unread_count,
            "clientAssociations": associations,
            "userExternalId": user.and_then(|u| u.external_id.clone()),
            "lastRead": p.last_read,
        })
    }
}

/// An integration (custom ones carry webhooks and keys).
#[derive(Debug, Default)]
pub(crate) struct Integration {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) display_name: Option<String>,
    /// Channel-specific fields as given, minus secrets we do not echo.
    pub(crate) extra: Map<String, Value>,
    pub(crate) keys: BTreeMap<String, Key>,
    pub(crate) webhooks: BTreeMap<String, Webhook>,
}

impl Integration {
    pub(crate) fn render(&self) -> Value {
        let mut o = self.extra.clone();
        o.insert("id".into(), json!(self.id));
        o.insert("type".into(), json!(self.kind));
        o.insert("status".into(), json!("active"));
        o.insert("displayName".into(), json!(self.display_name));
        if self.kind == "custom" {
            let hooks: Vec<Value> = self.webhooks.values().map(Webhook::render).collect();
            o.insert("webhooks".into(), Value::Array(hooks));
        }
        Value::Object(o)
    }
}

/// A webhook of a custom integration.
#[derive(Clone)]
pub(crate) struct Webhook {
    pub(crate) id: String,
    pub(crate) target: String,
    pub(crate) triggers: Vec<String>,
    pub(crate) secret: String,
    pub(crate) include_full_user: bool,
    pub(crate) include_full_source: bool,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("target", &self.target)
            .field("triggers", &self.triggers)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    pub(crate) fn render(&self) -> Value {
        json!({
            "id": self.id,
            "version": "v2",
            "target": self.target,
            "triggers": self.triggers,
            "secret": self.secret,
            "includeFullUser": self.include_full_user,
            "includeFullSource": self.include_full_source,
        })
    }
}

/// A switchboard.
#[derive(Debug, Default)]
pub(crate) struct Switchboard {
    pub(crate) id: String,
    pub(crate) enabled: bool,
    pub(crate) default_integration: Option<String>,
    pub(crate) integrations: BTreeMap<String, SwitchboardIntegration>,
}

impl Switchboard {
    pub(crate) fn render(&self) -> Value {
        let mut v = json!({ "id": self.id, "enabled": self.enabled });
        if let (Some(o), Some(d)) = (v.as_object_mut(), &self.default_integration) {
            o.insert("defaultSwitchboardIntegrationId".into(), json!(d));
        }
        v
    }
}

/// An integration's seat on a switchboard.
#[derive(Debug, Default, Clone)]
pub(crate) struct SwitchboardIntegration {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) integration_id: Option<String>,
    pub(crate) integration_type: String,
    pub(crate) deliver_standby_events: bool,
    pub(crate) next: Option<String>,
    pub(crate) message_history_count: Option<u64>,
}

impl SwitchboardIntegration {
    pub(crate) fn render(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "name": self.name,
            "integrationId": self.integration_id.clone().unwrap_or_default(),
            "integrationType": self.integration_type,
            "deliverStandbyEvents": self.deliver_standby_events,
            "nextSwitchboardIntegrationId": self.next,
        });
        if let (Some(o), Some(n)) = (v.as_object_mut(), self.message_history_count) {
            o.insert("messageHistoryCount".into(), json!(n));
        }
        v
    }

    pub(crate) fn render_webhook(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "integrationId": self.integration_id.clone().unwrap_or_default(),
            "integrationType": self.integration_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{App, Attachment, Store, User, truncated_user};

    fn user(id: &str, ext: Option<&str>) -> User {
        User {
            id: id.into(),
            external_id: ext.map(str::to_owned),
            ..User::default()
        }
    }

    #[test]
    fn external_ids_follow_inserts_and_removals() {
        let mut app = App::default();
        app.insert_user(user("u1", Some("ext-1")));
        app.insert_user(user("u2", None));
        assert_eq!(app.user_id("ext-1").as_deref(), Some("u1"));
        assert_eq!(app.user_id("u2").as_deref(), Some("u2"));
        assert_eq!(app.user_id("ext-2"), None);
        assert!(app.remove_user("u1").is_some());
        assert_eq!(app.user_id("ext-1"), None);
        app.insert_user(user("u3", Some("ext-1")));
        assert_eq!(app.user_id("ext-1").as_deref(), Some("u3"));
        // Replacing a user under the same id drops its old external id.
        app.insert_user(user("u3", Some("ext-3")));
        assert_eq!(app.user_id("ext-1"), None);
        assert_eq!(app.user_id("ext-3").as_deref(), Some("u3"));
        app.insert_user(user("u3", Some("ext-3")));
        assert_eq!(app.user_id("ext-3").as_deref(), Some("u3"));
    }

    #[test]
    fn uploads_count_what_they_hold_once_in_and_once_out() {
        let upload = |size: usize, conversation: Option<&str>| Attachment {
            media_type: "application/octet-stream".into(),
            bytes: bytes::Bytes::from(vec![0; size]),
            conversation_id: conversation.map(str::to_owned),
        };
        let sum = |app: &App| {
            app.uploads
                .by_url
                .iter()
                .map(|(url, a)| a.footprint(url))
                .sum::<usize>()
        };
        let mut app = App::default();
        for (url, size, conversation) in [
            ("a", 10, Some("c1")),
            ("b", 20, Some("c2")),
            ("c", 30, None),
        ] {
            assert!(
                app.uploads
                    .insert(url.into(), upload(size, conversation), usize::MAX)
                    .is_ok()
            );
        }
        assert_eq!(app.uploads.held(), sum(&app));
        // Over the limit: nothing is stored or counted.
        let limit = app.uploads.held();
        assert!(
            app.uploads
                .insert("d".into(), upload(0, None), limit)
                .is_err()
        );
        assert_eq!(app.uploads.held(), sum(&app));
        // A replaced upload counts once.
        assert!(
            app.uploads
                .insert("c".into(), upload(5, None), limit)
                .is_ok()
        );
        assert_eq!(app.uploads.held(), sum(&app));
        app.drop_attachments_of("c1");
        assert_eq!(app.uploads.held(), sum(&app));
        let urls = ["b".to_owned()].into_iter().collect();
        app.drop_attachments_at("c1", &urls);
        assert_eq!(app.uploads.held(), sum(&app));
        app.relink_attachments("c2", "c3");
        app.drop_attachments_at("c3", &urls);
        assert_eq!(app.uploads.held(), sum(&app));
        assert!(app.uploads.remove("c").is_some());
        assert!(app.uploads.remove("c").is_none());
        assert_eq!(app.uploads.held(), 0);
    }

    #[test]
    fn truncating_a_rendered_user_gives_its_truncated_rendering() {
        let mut known = user("u1", Some("ext-1"));
        known.zendesk_id = Some("z-1".into());
        known.profile.insert("givenName".into(), "Ada".into());
        for u in [known, user("u2", None)] {
            let serde_json::Value::Object(full) = u.render() else {
                panic!("a user renders as an object");
            };
            assert_eq!(
                serde_json::Value::Object(truncated_user(&full)),
                u.render_truncated()
            );
        }
        assert_eq!(
            user("u2", None).render_truncated(),
            serde_json::json!({"id": "u2", "authenticated": false})
        );
    }

    #[test]
    fn debug_shows_no_bridge_token_or_code() {
        let mut store = Store::default();
        store
            .bridge_tokens
            .insert("tok-sekrit-1234".into(), ("app-1".into(), "int-1".into()));
        store
            .bridge_codes
            .insert("code-sekrit-5678".into(), "app-1".into());
        let shown = format!("{store:?}");
        assert!(!shown.contains("tok-sekrit-1234"), "{shown}");
        assert!(!shown.contains("code-sekrit-5678"), "{shown}");
        assert!(shown.contains("<1 redacted>"), "{shown}");
    }
}
