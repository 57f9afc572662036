//! The CLI's error: one line, the cause chain, and an exit code per kind of failure.

use std::fmt;
use std::process::ExitCode;

/// What went wrong, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Bad flags or config values (2, like clap's usage errors).
    Usage,
    /// The config file or credentials are missing or invalid (3).
    Config,
    /// The service refused the credentials (4).
    Auth,
    /// A network or service failure (5).
    Service,
    /// The demo finished but its checks failed: something was lost (6).
    Check,
    /// Local I/O (7).
    Io,
}

impl Kind {
    pub(crate) const fn exit_code(self) -> u8 {
        match self {
            Self::Usage => 2,
            Self::Config => 3,
            Self::Auth => 4,
            Self::Service => 5,
            Self::Check => 6,
            Self::Io => 7,
        }
    }
}

/// A failed command.
#[derive(Debug)]
pub(crate) struct CliError {
    kind: Kind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

pub(crate) type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn with(
        kind: Kind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// Prints `zd: message` and one `caused by:` line per source, then gives the exit code.
    pub(crate) fn report(&self) -> ExitCode {
        crate::out::note(format_args!("zd: {}", self.message));
        print_causes(std::error::Error::source(self));
        ExitCode::from(self.kind.exit_code())
    }

    /// What went wrong, which decides the exit code.
    #[cfg(test)]
    pub(crate) const fn kind(&self) -> Kind {
        self.kind
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Prints `zd: message` and one `caused by:` line for `cause` and each of its sources, as
/// [`CliError::report`] does, for a failure the command goes on after.
pub(crate) fn warn(message: &str, cause: &(dyn std::error::Error + 'static)) {
    crate::out::note(format_args!("zd: {message}"));
    print_causes(Some(cause));
}

fn print_causes(mut source: Option<&(dyn std::error::Error + 'static)>) {
    while let Some(cause) = source {
        crate::out::note(format_args!("  caused by: {cause}"));
        if let Some(body) = auth_answer(cause) {
            crate::out::note(format_args!("  the service answered: {body}"));
        }
        source = cause.source();
    }
}

/// The body of an error answer without an OAuth error in it, which a zd-auth error keeps (with
/// the values zd-auth sent hidden) but does not display: often the only words of why a
/// service refused.
fn auth_answer(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    let error = cause.downcast_ref::<zd_auth::Error>()?;
    if error.kind() != zd_auth::ErrorKind::HttpStatus {
        return None;
    }
    error.body_excerpt().and_then(one_line)
}

/// The body of `startAgentSession`'s error answer, which zd-agent keeps but does not display,
/// with the values of `sent` (the token that request carried, which a gateway may echo)
/// hidden; `None` for any other error or an empty body.
pub(crate) fn agent_answer(error: &zd_agent::Error, sent: &[&str]) -> Option<String> {
    match error.kind() {
        // zd-agent cuts the body to a bound, which may split a value: its beginning goes too.
        zd_agent::ErrorKind::HttpStatus { body, .. } => one_line(zd_auth::drop_partial_tail(
            &zd_auth::redact_sent(body, sent),
            sent,
        )),
        _ => None,
    }
}

/// A service's text as one line of a message: its control characters (line breaks, the
/// escapes a terminal would act on) and line or direction marks as spaces, as zd-auth blanks
/// a service's text. `None` when nothing is left.
fn one_line(text: &str) -> Option<String> {
    let line = zd_auth::blank_controls(text);
    let line = line.trim();
    (!line.is_empty()).then(|| line.to_owned())
}

/// Attaches a kind and a message to any error.
pub(crate) trait Context<T> {
    fn context(self, kind: Kind, message: impl Into<String>) -> Result<T>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Context<T> for std::result::Result<T, E> {
    fn context(self, kind: Kind, message: impl Into<String>) -> Result<T> {
        self.map_err(|e| CliError::with(kind, message, e))
    }
}

/// The kind of an agent-session failure. FORBIDDEN (a token without the `chat` scope, or an
/// account without API access) is the service refusing the credentials as much as
/// UNAUTHORIZED is: a retry will not help, other credentials will. So is a 401 or 403 that
/// `startAgentSession` answers without GraphQL errors (a gateway's `invalid_token`).
pub(crate) fn agent_kind(error: &zd_agent::Error) -> Kind {
    match error.kind() {
        zd_agent::ErrorKind::Credentials => Kind::Config,
        zd_agent::ErrorKind::HttpStatus { status, .. } if refused(*status) => Kind::Auth,
        _ if matches!(
            error.error_name(),
            Some(zd_agent::ErrorName::Unauthorized | zd_agent::ErrorName::Forbidden)
        ) =>
        {
            Kind::Auth
        }
        _ => Kind::Service,
    }
}

/// The kind of a zd-auth failure. A 401 or 403 without an OAuth error body is a refusal of the
/// credentials all the same.
pub(crate) fn auth_kind(error: &zd_auth::Error) -> Kind {
    use zd_auth::ErrorKind as K;
    match error.kind() {
        K::InvalidInput | K::EmptySecret | K::KeyScopeMismatch => Kind::Usage,
        K::OAuth => Kind::Auth,
        K::HttpStatus if error.status().is_some_and(|s| refused(s.as_u16())) => Kind::Auth,
        _ => Kind::Service,
    }
}

/// Whether an HTTP status is a refusal of the credentials (401 Unauthorized, 403 Forbidden).
const fn refused(status: u16) -> bool {
    matches!(status, 401 | 403)
}
