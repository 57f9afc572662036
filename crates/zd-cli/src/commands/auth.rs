//! `zd auth jwt | chat-token | oauth-url`.

use zd_auth::Secret;
use zd_auth::chat::{ChatScope, OAuthClient, ResponseType};
use zd_auth::sunshine::{ApiKey, Scope, UserJwt, sign_jwt};

use crate::cli::{AuthCommand, JwtScope};
use crate::config::{self, Profile};
use crate::error::{CliError, Kind, Result, auth_kind};

fn auth_err(message: &str) -> impl FnOnce(zd_auth::Error) -> CliError + '_ {
    move |e| CliError::with(auth_kind(&e), message, e)
}

/// Runs one auth command; tokens go to stdout alone, so they can be captured. `profile`
/// loads the profile, read only for a Sunshine key not given by flag or environment.
pub(crate) async fn run(cmd: AuthCommand, profile: impl FnOnce() -> Result<Profile>) -> Result<()> {
    match cmd {
        AuthCommand::Jwt {
            key_id,
            key_secret,
            scope,
            external_id,
        } => {
            // Flags first: a usage error is one whatever the key and the config file.
            let subject = match (scope, external_id) {
                (JwtScope::App, None) => Subject::App,
                (JwtScope::Account, None) => Subject::Account,
                // Checked here too (an empty id, say): it needs no key.
                (JwtScope::User, Some(id)) => {
                    Subject::User(UserJwt::new(id).map_err(auth_err("invalid --external-id"))?)
                }
                (JwtScope::User, None) => {
                    return Err(CliError::new(
                        Kind::Usage,
                        "--scope user needs --external-id",
                    ));
                }
                // Signed without it, the token would not be the one asked for.
                (JwtScope::App | JwtScope::Account, Some(_)) => {
                    return Err(CliError::new(
                        Kind::Usage,
                        "--external-id goes with --scope user only",
                    ));
                }
            };
            let (key_id, secret) = match config::given_sunshine_key(key_id, key_secret)? {
                Some(key) => key,
                None => config::profile_sunshine_key(&profile()?)?.ok_or_else(|| {
                    missing(
                        "a Sunshine key: --key-id and --key-secret, SUNSHINE_KEY_ID and \
                         SUNSHINE_KEY_SECRET, or the profile's sunshine_key_id and \
                         sunshine_key_secret",
                    )
                })?,
            };
            let key = ApiKey::new(key_id, secret).map_err(auth_err("invalid API key"))?;
            let jwt = match subject {
                Subject::App => sign_jwt(&key, Scope::App, None),
                Subject::Account => sign_jwt(&key, Scope::Account, None),
                Subject::User(user) => user.sign(&key),
            }
            .map_err(auth_err("cannot sign the JWT"))?;
            crate::out::line(jwt.expose_secret())?;
        }
        AuthCommand::ChatToken {
            client_id,
            client_secret,
            username,
            password,
            code,
            redirect_uri,
            scope,
            oauth_url,
        } => {
            let mut client = OAuthClient::new(client_id)
                .and_then(|c| c.with_secret(client_secret))
                .map_err(auth_err("invalid OAuth client"))?;
            if let Some(url) = oauth_url {
                client = client
                    .with_base_url(&url)
                    .map_err(auth_err("invalid OAuth URL"))?;
            }
            let scopes = ChatScope::parse_list(&scope);
            let token = match (username, code) {
                (Some(user), None) => {
                    let password = match password {
                        Some(password) => password,
                        None => password_from_env()?
                            .ok_or_else(|| missing("--password or ZENDESK_CHAT_PASSWORD"))?,
                    };
                    client.password(&user, &password, &scopes).await
                }
                (None, Some(code)) => {
                    let redirect =
                        redirect_uri.ok_or_else(|| missing("--redirect-uri with --code"))?;
                    client.exchange_code(&code, &redirect).await
                }
                (None, None) => client.client_credentials(&scopes).await,
                (Some(_), Some(_)) => {
                    return Err(CliError::new(
                        Kind::Usage,
                        "give either --username or --code, not both",
                    ));
                }
            }
            .map_err(auth_err("the token request failed"))?;
            let json = serde_json::json!({
                "access_token": token.access_token().expose_secret(),
                "token_type": token.token_type(),
                "refresh_token": token.refresh_token().map(Secret::expose_secret),
                "expires_in": token.expires_in().map(|d| d.as_secs()),
                "scope": ChatScope::join(token.scopes()),
            });
            crate::out::line(json)?;
        }
        AuthCommand::OauthUrl {
            client_id,
            redirect_uri,
            scope,
            state,
            implicit,
        } => {
            let client = OAuthClient::new(client_id).map_err(auth_err("invalid OAuth client"))?;
            let kind = if implicit {
                ResponseType::Token
            } else {
                ResponseType::Code
            };
            let mut url = client
                .authorize_url(kind)
                .redirect_uri(redirect_uri)
                .scopes(ChatScope::parse_list(&scope));
            if let Some(state) = state {
                url = url.state(state);
            }
            crate::out::line(url.build().map_err(auth_err("cannot build the URL"))?)?;
        }
    }
    Ok(())
}

/// `ZENDESK_CHAT_PASSWORD`, unless unset or empty (as other variables, see
/// `Cli::parse_ignoring_empty_env`). Read here rather than by clap: see `--password`.
fn password_from_env() -> Result<Option<Secret>> {
    match std::env::var("ZENDESK_CHAT_PASSWORD") {
        Ok(value) if !value.is_empty() => Ok(Some(Secret::new(value))),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        // Changing a password to make it text would only earn a refusal from the service.
        Err(std::env::VarError::NotUnicode(_)) => Err(CliError::new(
            Kind::Usage,
            "ZENDESK_CHAT_PASSWORD is not valid UTF-8",
        )),
    }
}

/// Whom `zd auth jwt` signs for.
enum Subject {
    App,
    Account,
    User(UserJwt),
}

fn missing(what: &str) -> CliError {
    CliError::new(Kind::Config, format!("missing {what}"))
}
