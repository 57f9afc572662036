//! Where commands connect: Zendesk when credentials are configured, else an emulator.

use std::sync::Arc;
use std::time::Duration;

use zd_emulator::Emulator;

use crate::cli::AgentTarget;
use crate::config::Profile;
use crate::error::{CliError, Context as _, Kind, Result};

/// What every command shares: the profile and the `--emulator` choice.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) profile: Profile,
    emulator_url: Option<String>,
}

/// An emulator in use: embedded (kept alive by this value) or running elsewhere.
#[derive(Debug)]
pub(crate) enum EmulatorLink {
    /// Started in this process; stops when dropped.
    Embedded(Emulator),
    /// Running at this base URL.
    Remote(String),
}

impl EmulatorLink {
    pub(crate) fn base_url(&self) -> &str {
        match self {
            Self::Embedded(e) => e.base_url(),
            Self::Remote(url) => url,
        }
    }

    /// The account JSON (`GET /_emulator/account`).
    pub(crate) async fn account(&self) -> Result<serde_json::Value> {
        match self {
            Self::Embedded(e) => {
                serde_json::to_value(e.account()).context(Kind::Io, "cannot encode the account")
            }
            Self::Remote(url) => {
                crate::http::json(
                    hyper::Method::GET,
                    &format!("{url}/_emulator/account"),
                    None,
                )
                .await
            }
        }
    }
}

/// How often a rate-limited startAgentSession is tried again.
const START_RETRIES: u32 = 5;

/// A resolved agent connection.
#[derive(Debug)]
pub(crate) struct ChatTarget {
    pub(crate) endpoint: url::Url,
    pub(crate) token: zd_auth::Secret,
    /// Keeps an embedded emulator alive as long as the target is used.
    pub(crate) emulator: Option<EmulatorLink>,
    /// The agent the token belongs to, when known: the Chat API has no query for "this
    /// agent", but the emulator's account says whose token it hands out.
    pub(crate) agent_id: Option<String>,
}

impl Context {
    pub(crate) fn new(profile: Profile, emulator_url: Option<String>) -> Self {
        let emulator_url = emulator_url.or_else(|| profile.emulator.clone());
        Self {
            profile,
            emulator_url: emulator_url.map(|u| u.trim_end_matches('/').to_owned()),
        }
    }

    /// The base URL given with `--emulator` (or `ZD_EMULATOR`, or the profile's `emulator`).
    pub(crate) fn emulator_url(&self) -> Option<&str> {
        self.emulator_url.as_deref()
    }

    /// The running emulator given with `--emulator`, or a new embedded one.
    pub(crate) async fn emulator(&self) -> Result<EmulatorLink> {
        match &self.emulator_url {
            Some(url) => Ok(EmulatorLink::Remote(url.clone())),
            None => {
                let emulator = Emulator::builder()
                    .start()
                    .await
                    .context(Kind::Io, "cannot start the embedded emulator")?;
                tracing::info!(
                    url = emulator.base_url(),
                    "no credentials: using an embedded emulator"
                );
                Ok(EmulatorLink::Embedded(emulator))
            }
        }
    }

    /// Resolves an agent connection: a token from the flag, env or profile talks to the
    /// configured endpoint (Zendesk by default); no token uses the emulator's first agent.
    pub(crate) async fn chat(&self, flags: &AgentTarget) -> Result<ChatTarget> {
        let token = flags
            .token
            .clone()
            .or_else(|| self.profile.chat_token.clone());
        let endpoint = flags
            .chat_url
            .clone()
            .or_else(|| self.profile.chat_url.clone());
        if let Some(token) = token {
            let endpoint = match endpoint {
                Some(e) => e,
                None if self.emulator_url.is_some() => format!(
                    "{}/graphql/request",
                    self.emulator_url.as_deref().unwrap_or_default()
                ),
                None => zd_agent::DEFAULT_ENDPOINT.to_owned(),
            };
            let endpoint = url::Url::parse(&endpoint)
                .context(Kind::Usage, format!("invalid chat URL {endpoint:?}"))?;
            return Ok(ChatTarget {
                endpoint,
                token,
                emulator: None,
                agent_id: None,
            });
        }
        if let Some(endpoint) = endpoint {
            // The emulator's made-up token is never sent to another host.
            return Err(CliError::new(
                Kind::Usage,
                format!(
                    "the chat endpoint {endpoint} (--chat-url, ZENDESK_CHAT_URL or the profile's \
                     chat_url) needs a token (--token, ZENDESK_CHAT_TOKEN or the profile's \
                     chat_token); without one, zd talks to the emulator"
                ),
            ));
        }
        let emulator = self.emulator().await?;
        let account = emulator.account().await?;
        let agent = &account["agents"][0];
        let token = agent["access_token"]
            .as_str()
            .ok_or_else(|| CliError::new(Kind::Service, "the emulator's account has no agent"))?;
        let agent_id = agent["id"].as_str().map(str::to_owned);
        let graphql = format!("{}/graphql/request", emulator.base_url());
        let endpoint = url::Url::parse(&graphql)
            .context(Kind::Usage, format!("invalid chat URL {graphql:?}"))?;
        Ok(ChatTarget {
            endpoint,
            token: zd_auth::Secret::new(token),
            emulator: Some(emulator),
            agent_id,
        })
    }
}

impl ChatTarget {
    /// The error of a `startAgentSession` that failed for good, with what the service answered
    /// when zd-agent keeps it without displaying it.
    fn start_failed(&self, error: zd_agent::Error) -> CliError {
        let mut message = format!("cannot start an agent session at {}", self.endpoint);
        if let Some(body) = crate::error::agent_answer(&error, &[self.token.expose_secret()]) {
            message = format!("{message}; the service answered: {body}");
        }
        CliError::with(crate::error::agent_kind(&error), message, error)
    }

    /// Connects an agent session and spawns its driver.
    pub(crate) async fn connect(&self) -> Result<zd_agent::AgentSession> {
        let credentials = zd_auth::StaticToken::bearer(self.token.clone())
            .context(Kind::Config, "the chat token is empty")?;
        let credentials: Arc<dyn zd_auth::Credentials> = Arc::new(credentials);
        let mut attempt = 0;
        loop {
            let config = zd_agent::Config::with_endpoint(self.endpoint.clone());
            match zd_agent::AgentSession::connect(config, Arc::clone(&credentials)).await {
                Ok((session, driver)) => {
                    tokio::spawn(driver);
                    return Ok(session);
                }
                // The service allows one startAgentSession per second per agent, so two
                // commands in a row would collide: wait it out a few times, whether the
                // service refused the start or zd-agent's own start limits held it back.
                Err(e)
                    if attempt < START_RETRIES
                        && (e.error_name() == Some(&zd_agent::ErrorName::RateLimited)
                            || matches!(e.kind(), zd_agent::ErrorKind::StartLimited { .. })) =>
                {
                    attempt += 1;
                    let wait = e.retry_after().unwrap_or(Duration::from_millis(1100));
                    tracing::info!(attempt, ?wait, "startAgentSession rate limited; waiting");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(self.start_failed(e)),
            }
        }
    }
}
