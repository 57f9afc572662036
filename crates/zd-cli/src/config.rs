//! Settings from the environment and a profile in `$XDG_CONFIG_HOME/zd/config.toml`.
//!
//! Flags and environment variables win over the profile; a command with no credentials at all
//! uses an emulator instead of Zendesk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use zd_auth::Secret;

use crate::error::{Context, Kind, Result};

/// The config file: `[profiles.NAME]` tables and an optional `default_profile`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    /// The profile used without `--profile`.
    #[serde(default)]
    pub(crate) default_profile: Option<String>,
    /// The profiles.
    #[serde(default)]
    pub(crate) profiles: BTreeMap<String, Profile>,
}

/// One profile. Its secrets are [`Secret`]s: `Debug` shows `Secret([REDACTED])`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Profile {
    /// Chat agent OAuth access token.
    pub(crate) chat_token: Option<Secret>,
    /// startAgentSession endpoint override.
    pub(crate) chat_url: Option<String>,
    /// Real Time Chat API base URL override.
    pub(crate) metrics_url: Option<String>,
    /// Sunshine key id.
    pub(crate) sunshine_key_id: Option<String>,
    /// Sunshine key secret.
    pub(crate) sunshine_key_secret: Option<Secret>,
    /// Sunshine app id.
    pub(crate) sunshine_app_id: Option<String>,
    /// Sunshine base URL override.
    pub(crate) sunshine_url: Option<String>,
    /// A running emulator to use instead of an embedded one.
    pub(crate) emulator: Option<String>,
}

/// Where the config file lives: `$XDG_CONFIG_HOME/zd/config.toml`, else `~/.config/zd/...`.
pub(crate) fn default_path() -> Option<PathBuf> {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from_env("XDG_CONFIG_HOME")
        .or_else(|| from_env("HOME").map(|home| home.join(".config")))
        .map(|dir| dir.join("zd").join("config.toml"))
}

/// Loads the profile to use. A missing default file is an empty profile; a missing file that
/// was named explicitly, a malformed file or an unknown profile are errors.
pub(crate) fn load(explicit: Option<&Path>, profile: Option<&str>) -> Result<Profile> {
    let (path, required) = match explicit {
        Some(p) => (Some(p.to_path_buf()), true),
        None => (default_path(), false),
    };
    let file = match path {
        Some(path) => read(&path, required)?,
        None => ConfigFile::default(),
    };
    select(file, profile)
}

fn read(path: &Path, required: bool) -> Result<ConfigFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(ConfigFile::default());
        }
        Err(e) => {
            return Err(e).context(Kind::Config, format!("cannot read {}", path.display()));
        }
    };
    toml::from_str(&text).map_err(|e| {
        crate::error::CliError::new(
            Kind::Config,
            format!(
                "invalid config file {}: {}",
                path.display(),
                // Not toml's display: it prints the failing line, often a token's.
                zd_emulator::describe_toml_error(&text, &e)
            ),
        )
    })
}

pub(crate) fn select(mut file: ConfigFile, profile: Option<&str>) -> Result<Profile> {
    let wanted = profile.map(str::to_owned).or(file.default_profile.clone());
    match wanted {
        None => Ok(file.profiles.remove("default").unwrap_or_default()),
        Some(name) => file.profiles.remove(&name).ok_or_else(|| {
            let known: Vec<_> = file.profiles.keys().cloned().collect();
            crate::error::CliError::new(
                Kind::Config,
                format!(
                    "no profile {name:?} in the config file (known: {})",
                    known.join(", ")
                ),
            )
        }),
    }
}

/// The Sunshine key given on the command line or in the environment, `None` when neither half
/// is. The two count as one source (clap merges them): `--key-id` with `SUNSHINE_KEY_SECRET`
/// is how a secret stays out of the process list.
pub(crate) fn given_sunshine_key(
    id: Option<String>,
    secret: Option<Secret>,
) -> Result<Option<(String, Secret)>> {
    key_pair(
        id,
        secret,
        "--key-id or SUNSHINE_KEY_ID",
        "--key-secret or SUNSHINE_KEY_SECRET",
    )
}

/// The profile's Sunshine key, `None` when it has neither half.
pub(crate) fn profile_sunshine_key(profile: &Profile) -> Result<Option<(String, Secret)>> {
    key_pair(
        profile.sunshine_key_id.clone(),
        profile.sunshine_key_secret.clone(),
        "the profile's sunshine_key_id",
        "the profile's sunshine_key_secret",
    )
}

/// A key's id and secret from one source. Filling the missing half from another source would
/// pair one key's id with another's secret, which signs tokens the service refuses (401) with
/// nothing to say why.
fn key_pair(
    id: Option<String>,
    secret: Option<Secret>,
    id_from: &str,
    secret_from: &str,
) -> Result<Option<(String, Secret)>> {
    let (missing, present) = match (id, secret) {
        (Some(id), Some(secret)) => return Ok(Some((id, secret))),
        (None, None) => return Ok(None),
        (Some(_), None) => (secret_from, id_from),
        (None, Some(_)) => (id_from, secret_from),
    };
    Err(crate::error::CliError::new(
        Kind::Config,
        format!(
            "missing {missing}: {present} is set, and a Sunshine key's id and secret are taken \
             from the same place (flags and environment, or the profile)"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ConfigFile {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn picks_named_default_or_nothing() {
        let text = r#"
            default_profile = "prod"
            [profiles.prod]
            chat_token = "t1"
            [profiles.staging]
            chat_token = "t2"
            chat_url = "http://127.0.0.1:1/graphql/request"
        "#;
        assert_eq!(
            select(parse(text), None)
                .unwrap()
                .chat_token
                .as_ref()
                .map(Secret::expose_secret),
            Some("t1")
        );
        let staging = select(parse(text), Some("staging")).unwrap();
        assert_eq!(
            staging.chat_token.as_ref().map(Secret::expose_secret),
            Some("t2")
        );
        assert!(select(parse(text), Some("nope")).is_err());
        assert!(
            select(ConfigFile::default(), None)
                .unwrap()
                .chat_token
                .is_none()
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let p =
            parse("[profiles.a]\nchat_token = \"hunter2\"\nsunshine_key_secret = \"swordfish\"")
                .profiles
                .remove("a")
                .unwrap();
        let shown = format!("{p:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("swordfish"),
            "{shown}"
        );
        assert!(shown.contains("Secret([REDACTED])"), "{shown}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(toml::from_str::<ConfigFile>("[profiles.a]\ntypo = 1").is_err());
    }

    #[test]
    fn a_config_error_says_what_and_where_but_shows_no_value() {
        let dir = std::env::temp_dir().join(format!("zd-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        let cases = [
            // A misspelt key on the line of the secret.
            (
                "[profiles.default]\nchat-token = \"tok-SECRET-1\"\n",
                "unknown field `chat-token`",
                "line 2",
            ),
            // A value left unquoted.
            (
                "[profiles.default]\nchat_url = \"http://127.0.0.1:1/\"\nsunshine_key_secret = SECRET2\n",
                "",
                "line 3",
            ),
            // A secret of the wrong type, which serde quotes.
            (
                "[profiles.default]\nchat_token = 123456789\n",
                "invalid type",
                "line 2",
            ),
            // A profile's keys one level up: serde quotes the string, `"` escaped as `\"`.
            (
                "[profiles]\nchat_token = 'ab\"SECRET\"cd'\n",
                "invalid type: string …, expected",
                "line 2",
            ),
        ];
        for (text, what, line) in cases {
            std::fs::write(&path, text).unwrap();
            let err = read(&path, true).expect_err(text);
            let mut shown = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                shown.push_str(&format!(" | {cause}"));
                source = cause.source();
            }
            for secret in ["SECRET", "123456789"] {
                assert!(!shown.contains(secret), "{text}: {shown}");
            }
            assert!(
                shown.contains(what) && shown.contains(line),
                "{text}: {shown}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
