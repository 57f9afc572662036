//! The Sunshine Conversations v2 service: REST over in-memory state, webhook delivery, the
//! OAuth bridge and the Chat OAuth token endpoint, and a control API under
//! `/_emulator/sunshine/` that plays end users.
#![allow(
    clippy::collapsible_if,
    clippy::collapsible_match,
    clippy::too_many_arguments,
    clippy::needless_pass_by_value,
    clippy::match_like_matches_macro,
    reason = "handlers read best as flat validation steps over owned JSON values"
)]

mod api;
mod auth;
mod chat_oauth;
mod content;
mod control;
mod delivery;
mod error;
mod events;
mod http;
mod merge;
mod metadata;
mod multipart;
mod redirect;
mod server;
mod store;
mod throttle;
mod util;
mod webhooks;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Map, Value};
use zd_auth::Secret;

pub use chat_oauth::CHAT_AGENT_PASSWORD;
pub use server::SunshineServer;
pub use webhooks::{Attempt, Delivery, Outcome};

use crate::control::origin::LocalHosts;
use store::{App, Key, Store};

/// The demo app's id.
pub const DEMO_APP_ID: &str = "5e1f00000000000000000001";
/// The demo app key's id (Basic user name, or JWT `kid` with scope `app`).
pub const DEMO_APP_KEY_ID: &str = "app_5e1f0000000000000000d001";
/// The demo app key's secret (a local, made-up credential).
pub const DEMO_APP_KEY_SECRET: &str = "demo-sunshine-app-secret";
/// The demo account key's id (reaches every app; JWT scope `account`).
pub const DEMO_ACCOUNT_KEY_ID: &str = "act_5e1f0000000000000000a001";
/// The demo account key's secret.
pub const DEMO_ACCOUNT_KEY_SECRET: &str = "demo-sunshine-account-secret";
/// The Chat OAuth client of the emulator (`POST /oauth2/token`).
pub const CHAT_OAUTH_CLIENT_ID: &str = "zd-emulator";
/// Its secret.
pub const CHAT_OAUTH_CLIENT_SECRET: &str = "demo-chat-client-secret";
/// The OAuth bridge client (`/oauth/authorize`, `/oauth/token`).
pub const BRIDGE_CLIENT_ID: &str = "zd-emulator-bridge";
/// Its secret.
pub const BRIDGE_CLIENT_SECRET: &str = "demo-bridge-client-secret";
/// The first redirect URI configured for the OAuth bridge client: where `/oauth/authorize`
/// sends the browser back when the request names no `redirect_uri` ("If this option is not
/// passed, the first URI present in the list will be used").
pub const BRIDGE_REDIRECT_URI: &str = "http://localhost/cb";

/// What an app's stored attachment uploads may hold in all by default: the emulator's choice,
/// as the service documents no such limit, so that an emulator left running holds bounded
/// memory. Five uploads of the largest size (50 MB) fit.
pub const DEFAULT_UPLOAD_STORAGE: usize = 256 * 1024 * 1024;

/// The agents the Chat OAuth endpoint can issue tokens for, as `(name, access token)`.
pub type ChatAgents = Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

/// Issues the access token a Chat OAuth grant hands out: given an agent's own token and the
/// granted scopes, the token to give (`None` for an unknown agent). The emulator's is
/// [`crate::state::ChatState::issue_token`]; on its own the Sunshine service hands out the
/// agent's token whatever the scopes, having no chat service to enforce them.
pub type ChatTokenIssuer =
    Arc<dyn Fn(&str, crate::state::ChatScopes) -> Option<String> + Send + Sync>;

/// How the Sunshine service behaves.
#[derive(Clone)]
#[must_use]
pub struct SunshineConfig {
    /// Seed the demo app and keys.
    pub demo: bool,
    /// Multiplies the webhook retry schedule (1.0 = the service's ~15 minutes in all); set through
    /// [`SunshineConfig::webhook_time_scale`], which refuses what is not finite and positive.
    webhook_time_scale: f64,
    /// How long one webhook attempt may take.
    pub webhook_timeout: Duration,
    /// Messages a conversation may hold before `PostMessage` answers 423.
    pub message_limit: usize,
    /// What an app's stored uploads may hold in all before `UploadAttachment` answers 400
    /// ([`DEFAULT_UPLOAD_STORAGE`] unless set).
    pub upload_storage: usize,
    /// Agents for the Chat OAuth token endpoint.
    pub chat_agents: ChatAgents,
    /// The tokens the Chat OAuth token endpoint hands out.
    pub chat_token_issuer: ChatTokenIssuer,
    /// Names (and addresses) requests may give in their `Host` besides `localhost` and the
    /// loopback addresses; set through [`SunshineConfig::allow_host`].
    allowed_hosts: Vec<String>,
    /// The redirect URIs both OAuth clients are configured with, beside the loopback and
    /// own-origin ones every client takes; set through [`SunshineConfig::allow_redirect_uri`].
    redirect_uris: Vec<String>,
}

/// A [`SunshineConfig`] setting that cannot work.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The webhook time scale must be finite and above zero.
    #[error("webhook time scale must be finite and above zero, got {0}")]
    TimeScale(f64),
}

impl fmt::Debug for SunshineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SunshineConfig")
            .field("demo", &self.demo)
            .field("webhook_time_scale", &self.webhook_time_scale)
            .field("webhook_timeout", &self.webhook_timeout)
            .field("message_limit", &self.message_limit)
            .field("upload_storage", &self.upload_storage)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("redirect_uris", &self.redirect_uris)
            .finish_non_exhaustive()
    }
}

impl Default for SunshineConfig {
    fn default() -> Self {
        Self {
            demo: true,
            webhook_time_scale: 1.0,
            webhook_timeout: Duration::from_secs(20),
            message_limit: 30_000,
            upload_storage: DEFAULT_UPLOAD_STORAGE,
            chat_agents: Arc::new(Vec::new),
            chat_token_issuer: Arc::new(|token, _| Some(token.to_owned())),
            allowed_hosts: Vec::new(),
            redirect_uris: vec![BRIDGE_REDIRECT_URI.to_owned()],
        }
    }
}

impl SunshineConfig {
    /// Sets the webhook retry time scale (e.g. `0.001` squeezes 15 minutes into 0.9 s).
    ///
    /// # Errors
    ///
    /// [`ConfigError::TimeScale`] when `scale` is not finite or not above zero.
    pub fn webhook_time_scale(mut self, scale: f64) -> Result<Self, ConfigError> {
        if !scale.is_finite() || scale <= 0.0 {
            return Err(ConfigError::TimeScale(scale));
        }
        self.webhook_time_scale = scale;
        Ok(self)
    }

    /// The webhook retry time scale.
    #[must_use]
    pub fn time_scale(&self) -> f64 {
        self.webhook_time_scale
    }

    /// Sets the timeout of one webhook attempt.
    pub fn webhook_timeout(mut self, timeout: Duration) -> Self {
        self.webhook_timeout = timeout;
        self
    }

    /// Sets the per-conversation message limit.
    pub fn message_limit(mut self, limit: usize) -> Self {
        self.message_limit = limit;
        self
    }

    /// Sets what an app's stored uploads may hold in all (bytes, counting each upload's URL,
    /// media type and a little bookkeeping with its bytes).
    pub fn upload_storage(mut self, bytes: usize) -> Self {
        self.upload_storage = bytes;
        self
    }

    /// Sets the agents the Chat OAuth endpoint issues tokens for.
    pub fn chat_agents(mut self, agents: ChatAgents) -> Self {
        self.chat_agents = agents;
        self
    }

    /// Sets how the Chat OAuth endpoint turns an agent and granted scopes into a token.
    pub fn chat_token_issuer(mut self, issuer: ChatTokenIssuer) -> Self {
        self.chat_token_issuer = issuer;
        self
    }

    /// Also answers requests whose `Host` names `host`: a name (a container's service name,
    /// say) or an address the service is reached at, without the port. By default
    /// [`Sunshine::router`] answers only requests for `localhost` or a loopback address, and
    /// refuses others with 403, as the emulator does (see [`crate::EmulatorBuilder::allow_host`]
    /// for why); inside the emulator, the names allowed here are allowed there too. Allow only
    /// names that no website you visit controls.
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts.push(host.into());
        self
    }

    /// The names allowed with [`SunshineConfig::allow_host`].
    #[must_use]
    pub fn allowed_hosts(&self) -> &[String] {
        &self.allowed_hosts
    }

    /// Adds `uri` to the redirect URIs the OAuth clients (Chat OAuth's
    /// `/oauth2/authorizations/new` and the bridge's `/oauth/authorize`) are configured with;
    /// it matches only as written. Without it they send the browser back only to
    /// [`BRIDGE_REDIRECT_URI`], to an `http(s)` URI on a loopback host (`localhost`,
    /// `127.0.0.0/8`, `[::1]`) with any port and path, as RFC 8252 asks for native apps, and to
    /// the emulator's own origin; any other `redirect_uri` is refused with 400 and no redirect,
    /// as the services refuse one their client does not list.
    pub fn allow_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uris.push(uri.into());
        self
    }

    /// The redirect URIs configured with [`SunshineConfig::allow_redirect_uri`], after
    /// [`BRIDGE_REDIRECT_URI`], the first, where the bridge sends a request naming none.
    #[must_use]
    pub fn allowed_redirect_uris(&self) -> &[String] {
        &self.redirect_uris
    }
}

/// The Sunshine part of the account, for `GET /_emulator/account`.
#[derive(Debug, Clone, Serialize)]
pub struct SunshineAccount {
    /// `{base}/v2`: the API root.
    pub api_url: String,
    /// The demo app's id.
    pub app_id: String,
    /// The app key's id.
    pub key_id: String,
    /// The app key's secret (a local, made-up credential).
    #[serde(serialize_with = "crate::secret_field::serialize")]
    pub key_secret: Secret,
    /// The account key's id.
    pub account_key_id: String,
    /// The account key's secret.
    #[serde(serialize_with = "crate::secret_field::serialize")]
    pub account_key_secret: Secret,
    /// Client id for `POST /oauth2/token` (Chat OAuth).
    pub chat_oauth_client_id: String,
    /// Its secret.
    #[serde(serialize_with = "crate::secret_field::serialize")]
    pub chat_oauth_client_secret: Secret,
    /// Client id for the OAuth bridge.
    pub bridge_client_id: String,
    /// Its secret.
    #[serde(serialize_with = "crate::secret_field::serialize")]
    pub bridge_client_secret: Secret,
    /// The control API of the Sunshine service.
    pub control_url: String,
}

/// The Sunshine service: cheap to clone, shared by its routes and the control API.
#[derive(Clone)]
pub struct Sunshine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Mutex<Store>,
    ids: util::IdGen,
    config: SunshineConfig,
    hub: Arc<webhooks::Hub>,
    chat: chat_oauth::ChatOAuth,
    throttle: throttle::Throttle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The workers hold the hub; dropping their senders lets them finish what is queued
        // and end, instead of waiting for events that can no longer come.
        self.hub.stop();
    }
}

impl fmt::Debug for Sunshine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sunshine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Sunshine {
    /// A service configured by `config`.
    pub fn new(config: SunshineConfig) -> Self {
        let hub = webhooks::Hub::new(webhooks::Timing {
            scale: config.webhook_time_scale,
            timeout: config.webhook_timeout,
        });
        let mut store = Store::default();
        if config.demo {
            seed_demo(&mut store);
        }
        Self {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                ids: util::IdGen::new(),
                chat: chat_oauth::ChatOAuth::new(
                    config.chat_agents.clone(),
                    config.chat_token_issuer.clone(),
                ),
                config,
                hub,
                throttle: throttle::Throttle::default(),
            }),
        }
    }

    /// Answers the next `requests` API requests (`/v2/...`) with `429 Too Many Requests`, with
    /// `Retry-After` when `retry_after` is given, so a client's retry code meets a real 429.
    /// Arming again replaces what is left.
    pub fn throttle_requests(&self, requests: u32, retry_after: Option<Duration>) {
        self.inner.throttle.arm(requests, retry_after);
    }

    pub(crate) fn throttle(&self) -> &throttle::Throttle {
        &self.inner.throttle
    }

    /// The routes of the service and its control API (`/v2/...`, `/oauth/...`, `/oauth2/...`,
    /// `/_emulator/sunshine/...`), to serve on their own or beside others. Like every route of
    /// the emulator they refuse, with 403, a request whose `Host` is not `localhost`, a
    /// loopback address or a name allowed with [`SunshineConfig::allow_host`]: a page of any
    /// site could otherwise point its own name at the listener (DNS rebinding) and read the
    /// answers, keys and tokens among them.
    pub fn router(&self) -> axum::Router {
        let hosts = LocalHosts::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            &self.inner.config.allowed_hosts,
        );
        self.routes().layer(axum::middleware::from_fn_with_state(
            hosts,
            crate::control::origin::local_hosts_only,
        ))
    }

    /// [`Sunshine::router`] without the `Host` check, for the emulator's server, which checks
    /// every route once, against the address it is bound to.
    pub(crate) fn routes(&self) -> axum::Router {
        api::router()
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                throttle::layer,
            ))
            .merge(control::router().layer(axum::middleware::from_fn(
                crate::control::origin::same_origin_only,
            )))
            .with_state(self.clone())
    }

    /// The Sunshine part of the account, with URLs under `base_url`.
    pub fn account(&self, base_url: &str) -> SunshineAccount {
        SunshineAccount {
            api_url: format!("{base_url}/v2"),
            app_id: DEMO_APP_ID.into(),
            key_id: DEMO_APP_KEY_ID.into(),
            key_secret: DEMO_APP_KEY_SECRET.into(),
            account_key_id: DEMO_ACCOUNT_KEY_ID.into(),
            account_key_secret: DEMO_ACCOUNT_KEY_SECRET.into(),
            chat_oauth_client_id: CHAT_OAUTH_CLIENT_ID.into(),
            chat_oauth_client_secret: CHAT_OAUTH_CLIENT_SECRET.into(),
            bridge_client_id: BRIDGE_CLIENT_ID.into(),
            bridge_client_secret: BRIDGE_CLIENT_SECRET.into(),
            control_url: format!("{base_url}/_emulator/sunshine"),
        }
    }

    /// Webhook deliveries so far (the latest 1,000), oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.hub.deliveries()
    }

    /// Every delivery that reaches its outcome, as it does.
    pub fn subscribe_deliveries(&self) -> tokio::sync::broadcast::Receiver<Delivery> {
        self.inner.hub.subscribe()
    }

    pub(crate) fn next_id(&self) -> String {
        self.inner.ids.next()
    }

    pub(crate) fn config(&self) -> &SunshineConfig {
        &self.inner.config
    }

    pub(crate) fn store(&self) -> parking_lot::MutexGuard<'_, Store> {
        self.inner.store.lock()
    }

    pub(crate) fn hub(&self) -> &Arc<webhooks::Hub> {
        &self.inner.hub
    }

    pub(crate) fn chat(&self) -> &chat_oauth::ChatOAuth {
        &self.inner.chat
    }
}

fn seed_demo(store: &mut Store) {
    store.account_keys.push(Key {
        id: DEMO_ACCOUNT_KEY_ID.into(),
        display_name: Some("Demo account key".into()),
        secret: DEMO_ACCOUNT_KEY_SECRET.into(),
    });
    let mut app = App {
        id: DEMO_APP_ID.into(),
        display_name: "Demo App".into(),
        settings: default_settings(),
        metadata: Value::Null,
        ..App::default()
    };
    app.keys.insert(
        DEMO_APP_KEY_ID.into(),
        Key {
            id: DEMO_APP_KEY_ID.into(),
            display_name: Some("Demo app key".into()),
            secret: DEMO_APP_KEY_SECRET.into(),
        },
    );
    store.apps.insert(app.id.clone(), app);
}

pub(crate) fn default_settings() -> Map<String, Value> {
    let mut s = Map::new();
    for (k, v) in [
        ("maskCreditCardNumbers", true),
        ("useAnimalNames", false),
        ("echoPostback", false),
        ("ignoreAutoConversationStart", false),
        ("multiConvoEnabled", false),
        ("appLocalizationEnabled", false),
        ("endSessionEnabled", false),
        ("disableConversationReopen", false),
    ] {
        s.insert(k.into(), Value::Bool(v));
    }
    s.insert("conversationRetentionSeconds".into(), Value::from(0));
    s
}
