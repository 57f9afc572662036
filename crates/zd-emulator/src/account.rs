//! The account an emulator serves: agents (with access tokens) and departments.
//!
//! A demo account is seeded by default; a TOML or JSON file can define another one.

use std::path::Path;

use serde::{Deserialize, Serialize};
use zd_auth::Secret;

use crate::state::{AgentStatus, DepartmentStatus};

/// An account definition, as read from a `--config` file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The numeric account id that appears inside channel ids.
    #[serde(default = "default_account_id")]
    pub account_id: u64,
    /// The departments.
    #[serde(default)]
    pub departments: Vec<DepartmentConfig>,
    /// The agents.
    pub agents: Vec<AgentConfig>,
    /// How waiting chats reach agents (`broadcast`, the service's default, or `assigned`).
    #[serde(default)]
    pub routing: Routing,
}

/// Chat routing mode of an account.
///
/// In broadcast mode a new chat waits as `INCOMING` and every available agent of its
/// department is offered it. In assigned mode the chat goes to one online agent of its
/// department (the one serving or holding the fewest chats) and waits as `ASSIGNED` until
/// that agent joins it; with nobody online it waits as `INCOMING` until someone comes online.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Routing {
    /// Offer every waiting chat to all available agents (the default).
    #[default]
    Broadcast,
    /// Assign every waiting chat to one online agent.
    Assigned,
}

/// A department of an [`AccountConfig`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentConfig {
    /// Its name, also used to refer to it from agents and the control API.
    pub name: String,
    /// Its initial status.
    #[serde(default = "online_department")]
    pub status: DepartmentStatus,
}

/// An agent of an [`AccountConfig`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The agent's name.
    pub name: String,
    /// The name shown to visitors; defaults to `name`.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The OAuth access token that starts a session as this agent.
    #[serde(serialize_with = "crate::secret_field::serialize")]
    pub access_token: Secret,
    /// Names of the departments the agent belongs to.
    #[serde(default)]
    pub departments: Vec<String>,
    /// The initial status.
    #[serde(default = "offline_agent")]
    pub status: AgentStatus,
}

const fn default_account_id() -> u64 {
    1_179_974
}

const fn online_department() -> DepartmentStatus {
    DepartmentStatus::Online
}

const fn offline_agent() -> AgentStatus {
    AgentStatus::Offline
}

/// Why an account file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The file could not be read.
    #[error("cannot read account file {path}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("invalid TOML account file {path}: {problem}")]
    Toml {
        /// The file.
        path: String,
        /// What is wrong and where, without the file's text (see [`describe_toml_error`]).
        problem: String,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("invalid JSON account file {path}: {problem}")]
    Json {
        /// The file.
        path: String,
        /// What is wrong and where, without the file's text.
        problem: String,
    },
    /// The account is inconsistent.
    #[error("invalid account: {0}")]
    Invalid(String),
}

impl AccountConfig {
    /// The demo account: two departments, three agents, tokens that are easy to type.
    pub fn demo() -> Self {
        Self {
            account_id: default_account_id(),
            departments: vec![
                DepartmentConfig {
                    name: "Support".into(),
                    status: DepartmentStatus::Online,
                },
                DepartmentConfig {
                    name: "Sales".into(),
                    status: DepartmentStatus::Online,
                },
            ],
            agents: vec![
                AgentConfig {
                    name: "Bot".into(),
                    display_name: Some("Support Bot".into()),
                    access_token: "demo-bot-token".into(),
                    departments: vec!["Support".into(), "Sales".into()],
                    status: AgentStatus::Offline,
                },
                AgentConfig {
                    name: "Alice".into(),
                    display_name: Some("Alice (Support)".into()),
                    access_token: "demo-alice-token".into(),
                    departments: vec!["Support".into()],
                    status: AgentStatus::Offline,
                },
                AgentConfig {
                    name: "Bob".into(),
                    display_name: Some("Bob (Sales)".into()),
                    access_token: "demo-bob-token".into(),
                    departments: vec!["Sales".into()],
                    status: AgentStatus::Offline,
                },
            ],
            routing: Routing::Broadcast,
        }
    }

    /// Reads an account from a `.json` file, or TOML for any other extension.
    ///
    /// # Errors
    /// When the file cannot be read or parsed, or when [`AccountConfig::validate`] fails.
    pub fn from_file(path: &Path) -> Result<Self, AccountError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| AccountError::Read {
            path: shown.clone(),
            source,
        })?;
        // The parsers' own errors are not kept: toml's display quotes the failing line and
        // serde quotes a refused value, either of which may be an access token.
        let config: Self = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| AccountError::Json {
                path: shown,
                problem: describe_json_error(&e),
            })?
        } else {
            toml::from_str(&text).map_err(|e| AccountError::Toml {
                path: shown,
                problem: describe_toml_error(&text, &e),
            })?
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks that names and tokens are unique and departments exist.
    ///
    /// # Errors
    /// [`AccountError::Invalid`] naming the first problem.
    pub fn validate(&self) -> Result<(), AccountError> {
        let mut seen = std::collections::HashSet::new();
        for d in &self.departments {
            if !seen.insert(d.name.as_str()) {
                return Err(AccountError::Invalid(format!(
                    "department {:?} is defined twice",
                    d.name
                )));
            }
        }
        let mut tokens = std::collections::HashSet::new();
        for a in &self.agents {
            if a.access_token.is_empty() || !tokens.insert(a.access_token.expose_secret()) {
                return Err(AccountError::Invalid(format!(
                    "agent {:?} has an empty or duplicate access token",
                    a.name
                )));
            }
            if let Some(missing) = a.departments.iter().find(|d| !seen.contains(d.as_str())) {
                return Err(AccountError::Invalid(format!(
                    "agent {:?} names unknown department {missing:?}",
                    a.name
                )));
            }
        }
        if self.agents.is_empty() {
            return Err(AccountError::Invalid("an account needs an agent".into()));
        }
        Ok(())
    }
}

impl Default for AccountConfig {
    fn default() -> Self {
        Self::demo()
    }
}

/// What is wrong with a TOML file and where (line and column), without any of its text.
///
/// toml's own `Display` prints the line it failed on, and serde's messages quote the value
/// they refused; in a file of tokens and key secrets either can be a secret. Field names are
/// kept (`unknown field `chat-token``), values are not.
///
/// ```
/// let text = "[agents]\naccess_token = 12345\n";
/// let e = toml::from_str::<std::collections::HashMap<String, std::collections::HashMap<String, String>>>(text)
///     .unwrap_err();
/// let shown = zd_emulator::describe_toml_error(text, &e);
/// assert!(!shown.contains("12345") && shown.contains("line 2"), "{shown}");
/// ```
pub fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = without_values(&e.message().trim().replace('\n', " "));
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{message} (line {line}, column {column})")
        }
        None => message,
    }
}

/// [`describe_toml_error`] for JSON.
fn describe_json_error(e: &serde_json::Error) -> String {
    let full = e.to_string();
    // serde_json appends " at line L column C" to the message; it is given apart below.
    let message = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(message, _)| message);
    format!(
        "{} (line {}, column {})",
        without_values(message),
        e.line(),
        e.column()
    )
}

/// serde's "invalid type: string \"…\", expected …", "invalid value: …" and "unknown variant
/// `…`, expected …" with the value cut out (up to ", expected"); other messages name fields
/// or syntax only.
fn without_values(message: &str) -> String {
    let quotes_a_value = ["invalid type", "invalid value", "unknown variant"]
        .iter()
        .any(|p| message.starts_with(p));
    if !quotes_a_value {
        return message.to_owned();
    }
    let Some(quote) = message.find(['"', '`', '\'']) else {
        return message.to_owned();
    };
    // The last one: the value itself may hold ", expected".
    let rest = message
        .rfind(", expected")
        .filter(|&at| at > quote)
        .map_or("", |at| &message[at..]);
    format!("{}…{rest}", &message[..quote])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_is_valid_and_hides_tokens() {
        let demo = AccountConfig::demo();
        demo.validate().unwrap();
        assert!(!format!("{demo:?}").contains("demo-bot-token"));
    }

    #[test]
    fn toml_account_parses() {
        let text = r#"
            account_id = 42
            [[departments]]
            name = "Billing"
            [[agents]]
            name = "Zed"
            access_token = "t"
            departments = ["Billing"]
            status = "ONLINE"
        "#;
        let config: AccountConfig = toml::from_str(text).unwrap();
        config.validate().unwrap();
        assert_eq!(config.agents[0].status, AgentStatus::Online);
        assert_eq!(config.routing, Routing::Broadcast);
        let assigned: AccountConfig =
            toml::from_str(&format!("routing = \"assigned\"\n{text}")).unwrap();
        assert_eq!(assigned.routing, Routing::Assigned);
        assert!(
            toml::from_str::<AccountConfig>(&format!("routing = \"nearest\"\n{text}")).is_err()
        );
    }

    #[test]
    fn a_bad_account_file_is_described_without_its_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            // toml's display would quote the line: the token.
            (
                "a.toml",
                "[[agents]]\nname = \"Zed\"\naccess-token = \"tok-SECRET\"\n",
                "unknown field `access-token`",
            ),
            // serde quotes a refused value.
            (
                "b.toml",
                "[[agents]]\nname = \"Zed\"\naccess_token = 9876543210\n",
                // A token is a `Secret`, which names a wrong value by its kind alone.
                "invalid type: a number, expected a string",
            ),
            (
                "c.json",
                "{\"agents\": [{\"name\": \"Zed\",\n \"access_token\": 9876543210}]}",
                "invalid type: a number, expected a string",
            ),
            (
                "d.json",
                "{\"agents\": [{\"name\": \"Zed\",\n \"access_token\": \"tok-SECRET\", \"status\": \"tok-SECRET\"}]}",
                "(line 2, column",
            ),
        ];
        for (name, text, what) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let e = AccountConfig::from_file(&path).unwrap_err();
            let mut shown = format!("{e} {e:?}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                shown.push_str(&format!(" | {cause} {cause:?}"));
                source = cause.source();
            }
            assert!(shown.contains(what), "{name}: {shown}");
            for secret in ["SECRET", "9876543210"] {
                assert!(!shown.contains(secret), "{name}: {shown}");
            }
        }
    }
}
