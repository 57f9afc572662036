//! Starting an emulator: [`Emulator::builder`], and the handle that stops it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::serve::ListenerExt;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zd_auth::Secret;

use crate::account::AccountConfig;
use crate::chat::{self, limits::Limits};
use crate::clock::Clock;
use crate::control::Control;
use crate::control::origin::LocalHosts;
use crate::ids::{self, IdKind};
use crate::realtime::{RealtimeLimits, SubscribeAnswer};
use crate::server::{self, App};
use crate::state::{AgentStatus, ChatState, DepartmentStatus, Retention};
use crate::sunshine::{Sunshine, SunshineAccount, SunshineConfig};

/// Why an emulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The address could not be bound.
    #[error("cannot bind {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The account is invalid.
    #[error("invalid account")]
    Account(#[source] crate::account::AccountError),
}

/// Configures an emulator.
#[derive(Debug, Clone)]
#[must_use]
pub struct EmulatorBuilder {
    account: AccountConfig,
    addr: SocketAddr,
    limits: Limits,
    realtime_limits: RealtimeLimits,
    realtime_subscribe_answer: SubscribeAnswer,
    clock: Option<Clock>,
    retention: Retention,
    sunshine: SunshineConfig,
    allowed_hosts: Vec<String>,
}

/// A running emulator. Dropping it tells the server and its sockets to stop, without waiting
/// for them; [`Emulator::shutdown`] waits.
#[derive(Debug)]
pub struct Emulator {
    base_url: String,
    addr: SocketAddr,
    control: Control,
    app: App,
    shutdown: watch::Sender<bool>,
    /// The task that owns the listener. `None` only once [`Emulator::shutdown`] took it.
    server: Option<JoinHandle<()>>,
}

impl Emulator {
    /// A builder with the demo account, 127.0.0.1 on a free port, and the documented limits.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder {
            account: AccountConfig::demo(),
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            limits: Limits::documented(),
            retention: Retention::default(),
            realtime_limits: RealtimeLimits::documented(),
            realtime_subscribe_answer: SubscribeAnswer::default(),
            clock: None,
            sunshine: SunshineConfig::default(),
            allowed_hosts: Vec::new(),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/graphql/request`.
    pub fn graphql_url(&self) -> String {
        format!("{}/graphql/request", self.base_url)
    }

    /// In-process control (the same operations as the HTTP control API).
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// The account: agents with tokens and ids, departments, URLs.
    pub fn account(&self) -> AccountInfo {
        self.app.account(None)
    }

    /// Serves until `signal` completes, then stops as [`Emulator::shutdown`] does.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }

    /// Stops the server and waits until it has stopped: when this returns the listener is
    /// closed, so the port can be bound again (by a new emulator, say, to test a client that
    /// reconnects to a restarted service), and every HTTP connection has ended, once its
    /// request in progress (if any) was answered. The WebSocket connections are told to end
    /// at the same time, and do so on their own tasks without a close frame, as when a
    /// service goes away.
    ///
    /// Dropping the handle instead only tells the server to stop: the port stays bound until
    /// the runtime next runs the server's task.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes still stops the server, without waiting.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(server) = self.server.take() {
            // A panic of the server task was reported where it happened; the port is free
            // either way.
            let _ = server.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

impl EmulatorBuilder {
    /// Serves `account` instead of the demo account.
    pub fn account(mut self, account: AccountConfig) -> Self {
        self.account = account;
        self
    }

    /// Binds 127.0.0.1 on `port` (0 picks a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.addr.set_port(port);
        self
    }

    /// Binds `addr`.
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Enforces `limits` instead of the documented ones.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How the Real Time Chat service answers a subscribe (at once with the current value by
    /// default; the docs do not say).
    pub fn realtime_subscribe_answer(mut self, answer: SubscribeAnswer) -> Self {
        self.realtime_subscribe_answer = answer;
        self
    }

    /// Enforces `limits` on the Real Time Chat service instead of the documented ones.
    pub fn realtime_limits(mut self, limits: RealtimeLimits) -> Self {
        self.realtime_limits = limits;
        self
    }

    /// Uses `clock` (e.g. anchored at a fixed time for snapshots).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How much chat history to keep (see [`Retention`]; the default keeps 10,000 entries a
    /// chat and 10,000 chats that ended over an hour ago).
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Configures the Sunshine Conversations service (webhook time scale, limits).
    pub fn sunshine(mut self, config: SunshineConfig) -> Self {
        self.sunshine = config;
        self
    }

    /// Also answers requests whose `Host` names `host` (a name such as a container's service
    /// name, or an address the emulator is reached at, without the port). By default the
    /// emulator answers only requests for `localhost`, a loopback address or the address it is
    /// bound to, and refuses others with 403: a site can point its own name at 127.0.0.1 once
    /// its page has loaded (DNS rebinding), and that page would then count as of the
    /// emulator's origin and could read its tokens. Allow only names that no website you visit
    /// controls. The names allowed with [`SunshineConfig::allow_host`] count too.
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts.push(host.into());
        self
    }

    /// Binds and starts serving on the current tokio runtime.
    ///
    /// # Errors
    /// When the account is invalid or the address cannot be bound.
    pub async fn start(self) -> Result<Emulator, StartError> {
        self.account.validate().map_err(StartError::Account)?;
        let listener = TcpListener::bind(self.addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: self.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: self.addr,
            source,
        })?;
        let base_url = format!("http://{addr}");
        let clock = self.clock.unwrap_or_default();
        let state = Arc::new(ChatState::with_retention(
            &self.account,
            clock,
            self.retention,
        ));
        let (shutdown, mut stopped) = watch::channel(false);
        let service = chat::Service::new(state.clone(), self.limits, shutdown.subscribe());
        service.core.set_ws_base(format!("ws://{addr}"));
        let agents = state.clone();
        let issuer = state.clone();
        let sunshine = Sunshine::new(
            self.sunshine
                .chat_agents(Arc::new(move || {
                    agents
                        .agents()
                        .into_iter()
                        .map(|a| (a.name, a.access_token.expose_secret().to_owned()))
                        .collect()
                }))
                .chat_token_issuer(Arc::new(move |token, scopes| {
                    issuer.issue_token(token, scopes)
                })),
        );
        let realtime = crate::realtime::Realtime::new(
            state.clone(),
            self.realtime_limits,
            self.realtime_subscribe_answer,
            shutdown.subscribe(),
        );
        let control = Control {
            state,
            core: service.core.clone(),
            realtime,
        };
        let app = App {
            service,
            control: control.clone(),
            base_url: Arc::from(base_url.as_str()),
            sunshine,
        };
        // The names allowed for the Sunshine service alone count here too: the emulator checks
        // its routes once, all together.
        let mut allowed_hosts = self.allowed_hosts;
        allowed_hosts.extend_from_slice(app.sunshine.config().allowed_hosts());
        let hosts = LocalHosts::new(addr.ip(), &allowed_hosts);
        let router = server::router(app.clone(), hosts);
        let server = tokio::spawn(async move {
            let serve = axum::serve(
                // Small frames (PONG, acks, metric updates) must not wait on Nagle + delayed ACK.
                listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                }),
                router,
            )
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "emulator server stopped");
            }
        });
        Ok(Emulator {
            base_url,
            addr,
            control,
            app,
            shutdown,
            server: Some(server),
        })
    }
}

/// The account as JSON: what a client needs to connect.
#[derive(Debug, Clone, Serialize)]
pub struct AccountInfo {
    /// `POST` here to start an agent session.
    pub graphql_url: String,
    /// The visitor page.
    pub widget_url: String,
    /// The control API root.
    pub control_url: String,
    /// The agents.
    pub agents: Vec<AgentInfo>,
    /// The departments.
    pub departments: Vec<DepartmentInfo>,
    /// The Sunshine Conversations app, keys and OAuth clients.
    pub sunshine: SunshineAccount,
}

/// An agent of [`AccountInfo`].
#[derive(Debug, Clone, Serialize)]
pub struct AgentInfo {
    /// Public id.
    pub id: String,
    /// Raw id.
    pub raw_id: String,
    /// Name.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// The access token for `startAgentSession` (a local, made-up credential).
    #[serde(serialize_with = "crate::secret_field::serialize")]
    pub access_token: Secret,
    /// Public ids of its departments.
    pub departments: Vec<String>,
    /// Status.
    pub status: AgentStatus,
}

/// A department of [`AccountInfo`].
#[derive(Debug, Clone, Serialize)]
pub struct DepartmentInfo {
    /// Public id.
    pub id: String,
    /// Raw id.
    pub raw_id: String,
    /// Name.
    pub name: String,
    /// Status.
    pub status: DepartmentStatus,
}

impl AccountInfo {
    pub(crate) fn of(state: &ChatState, base_url: &str, sunshine: &Sunshine) -> Self {
        Self {
            sunshine: sunshine.account(base_url),
            graphql_url: format!("{base_url}/graphql/request"),
            widget_url: format!("{base_url}/"),
            control_url: format!("{base_url}/_emulator"),
            agents: state
                .agents()
                .into_iter()
                .map(|a| AgentInfo {
                    id: ids::encode(IdKind::Agent, &a.key),
                    raw_id: a.key.clone(),
                    name: a.name.clone(),
                    display_name: a.display_name.clone(),
                    access_token: a.access_token.clone(),
                    departments: a
                        .departments
                        .iter()
                        .map(|d| ids::encode(IdKind::Department, d))
                        .collect(),
                    status: a.status,
                })
                .collect(),
            departments: state
                .departments()
                .into_iter()
                .map(|d| DepartmentInfo {
                    id: ids::encode(IdKind::Department, &d.key),
                    raw_id: d.key,
                    name: d.name,
                    status: d.status,
                })
                .collect(),
        }
    }
}
