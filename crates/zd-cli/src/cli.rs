//! The command line, as clap types. Parsing touches nothing else, so `zd --help` stays fast.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use zd_auth::Secret;

/// Zendesk chat and messaging from the terminal, with a local emulator when no account is set.
///
/// With no credentials configured, every command talks to an embedded emulator (or to a
/// running one given with --emulator; `demo` and `emulator` always start their own). With ZENDESK_CHAT_TOKEN, SUNSHINE_KEY_ID /
/// SUNSHINE_KEY_SECRET / SUNSHINE_APP_ID, a base-URL override or a profile in
/// $XDG_CONFIG_HOME/zd/config.toml, it talks to Zendesk. An environment variable set to the
/// empty string counts as unset.
#[derive(Debug, Parser)]
#[command(name = "zd", version, propagate_version = true, max_term_width = 100)]
#[command(after_help = "Start here: `zd demo` runs a bot, visitors and a live dashboard locally.")]
pub(crate) struct Cli {
    /// More logs on stderr: -v info, -vv debug, -vvv trace (RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// Profile of the config file to use.
    #[arg(long, global = true, env = "ZD_PROFILE", value_name = "NAME")]
    pub(crate) profile: Option<String>,
    /// Config file (default: $XDG_CONFIG_HOME/zd/config.toml or ~/.config/zd/config.toml).
    #[arg(long, global = true, env = "ZD_CONFIG", value_name = "FILE")]
    pub(crate) config_file: Option<PathBuf>,
    /// Talk to a running emulator at this base URL instead of an embedded one.
    #[arg(long, global = true, env = "ZD_EMULATOR", value_name = "URL")]
    pub(crate) emulator: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

impl Cli {
    /// Parses the process's command line as `Parser::parse` does, except that an environment
    /// variable set to the empty string counts as unset.
    ///
    /// `ZD_CONFIG= zd ...` or `export ZENDESK_CHAT_TOKEN=` are how a shell clears a setting;
    /// clap would take them as set, to the empty string: a config path it refuses, a token
    /// that sends the command to Zendesk instead of the emulator. Only the environment is
    /// filtered: an empty value given on the command line is not ignored.
    pub(crate) fn parse_ignoring_empty_env() -> Self {
        let mut command = without_empty_env(Self::command());
        let matches = command.get_matches_mut();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command).exit())
    }
}

/// `command` with every argument read from an environment variable that is set but empty no
/// longer reading it, in every subcommand too.
fn without_empty_env(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            let empty = arg
                .get_env()
                .and_then(std::env::var_os)
                .is_some_and(|value| value.is_empty());
            if empty { arg.env(None) } else { arg }
        })
        .mut_subcommands(without_empty_env)
}

/// The longest `zd demo --duration`: a week. Much longer is surely a typo, and the run's
/// deadlines are instants that must not overflow; 0 runs until stopped anyway.
pub(crate) const MAX_DEMO_SECS: u64 = 7 * 24 * 60 * 60;

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a bot, simulated visitors and a live dashboard on the embedded emulator.
    Demo(DemoArgs),
    /// Serve the emulator until Ctrl-C (prints the account JSON on stdout).
    Emulator(EmulatorArgs),
    /// Act as a chat agent: tail messages, run an echo bot, send, list.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Real Time Chat metrics: watch, get, export to Prometheus.
    #[command(subcommand)]
    Metrics(MetricsCommand),
    /// Sunshine Conversations: apps, users, conversations, messages.
    #[command(subcommand)]
    Sunshine(SunshineCommand),
    /// Make tokens and URLs: Sunshine JWTs, Chat OAuth tokens and authorize URLs.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `zd demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// How long to run, in seconds, at most a week (604800); 0: until Ctrl-C, SIGTERM or
    /// SIGHUP.
    #[arg(
        long,
        default_value_t = 60,
        value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(..=MAX_DEMO_SECS)
    )]
    pub(crate) duration: u64,
    /// How many simulated visitors arrive over the run (at most 1,000; 0 leaves the bot to
    /// the visitors you bring from a browser).
    #[arg(long, default_value_t = 40)]
    pub(crate) visitors: u32,
    /// Seed of the visitor simulator, for a repeatable run.
    #[arg(long, default_value_t = 7)]
    pub(crate) seed: u64,
    /// Inject faults (dropped sockets, EOS, stalls, RATE_LIMITED) and show they are survived;
    /// EOS at most once every 3 minutes, to stay under the 50 session starts an hour.
    #[arg(long)]
    pub(crate) faults: bool,
    /// Emulator port (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub(crate) port: u16,
    /// Output style: the live dashboard needs a terminal; plain prints periodic lines.
    #[arg(long, value_enum, default_value_t = DemoOutput::Auto)]
    pub(crate) output: DemoOutput,
}

/// How `zd demo` shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DemoOutput {
    /// Dashboard when stdout is a terminal, plain lines otherwise.
    Auto,
    /// The live terminal dashboard.
    Dashboard,
    /// Plain periodic lines.
    Plain,
}

/// `zd emulator`.
#[derive(Debug, Args)]
pub(crate) struct EmulatorArgs {
    /// Port to bind on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8090)]
    pub(crate) port: u16,
    /// Account file (TOML, or JSON with a .json extension) instead of the demo account.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Scenario file (JSON, or TOML with a .toml extension) of timed visitor actions.
    #[arg(long, value_name = "FILE")]
    pub(crate) scenario: Option<PathBuf>,
    /// Real Time Chat: REST calls plus new `/stream` connections admitted per rolling minute
    /// (documented: 200), or `off` for no budget; for load tests that open many feeds at once.
    #[arg(long, value_name = "N|off", value_parser = requests_per_minute)]
    pub(crate) realtime_requests_per_minute: Option<MinuteBudget>,
    /// Real Time Chat: answer a subscribe with nothing until the value changes, instead of the
    /// current value at once (the docs do not say which the service does).
    #[arg(long)]
    pub(crate) realtime_wait_for_change: bool,
}

/// `--realtime-requests-per-minute`: `None` lifts the budget.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MinuteBudget(pub(crate) Option<usize>);

/// Keeps a token, key secret or password argument as a [`Secret`]: the parsed command line's
/// `Debug` then shows `Secret([REDACTED])`, and the value is wiped when dropped.
fn secret(text: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(text))
}

fn requests_per_minute(text: &str) -> Result<MinuteBudget, String> {
    zd_emulator::RealtimeLimits::parse_requests_per_minute(text).map(MinuteBudget)
}

/// Where an agent command connects.
#[derive(Debug, Args, Clone)]
pub(crate) struct AgentTarget {
    /// Agent access token (default: ZENDESK_CHAT_TOKEN, the profile, or the emulator's bot).
    #[arg(
        long,
        env = "ZENDESK_CHAT_TOKEN",
        hide_env_values = true,
        value_parser = secret,
        value_name = "TOKEN"
    )]
    pub(crate) token: Option<Secret>,
    /// startAgentSession endpoint (default: Zendesk's, or the emulator's).
    #[arg(long, env = "ZENDESK_CHAT_URL", value_name = "URL")]
    pub(crate) chat_url: Option<String>,
}

/// `zd agent ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Print every message the agent sees, one JSON object per line.
    Tail {
        /// Where to connect.
        #[command(flatten)]
        target: AgentTarget,
        /// Stop after this many messages.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
    },
    /// Go online and echo every visitor message back (Ctrl-C to stop).
    Echo {
        /// Where to connect.
        #[command(flatten)]
        target: AgentTarget,
        /// Stop after answering this many messages.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
    },
    /// Send one message to a channel.
    Send {
        /// Where to connect.
        #[command(flatten)]
        target: AgentTarget,
        /// The channel id.
        channel: String,
        /// The text.
        text: String,
    },
    /// List departments.
    Departments {
        /// Where to connect.
        #[command(flatten)]
        target: AgentTarget,
    },
    /// List agents.
    Agents {
        /// Where to connect.
        #[command(flatten)]
        target: AgentTarget,
    },
    /// Show or set this agent's status.
    Status {
        /// Where to connect.
        #[command(flatten)]
        target: AgentTarget,
        /// Set this status.
        #[arg(value_enum)]
        set: Option<StatusArg>,
    },
}

/// An agent status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StatusArg {
    /// Online.
    Online,
    /// Away.
    Away,
    /// Invisible.
    Invisible,
    /// Offline.
    Offline,
}

/// Where a metrics command connects.
#[derive(Debug, Args, Clone)]
pub(crate) struct MetricsTarget {
    /// Bearer token of the Real Time Chat API (default: ZENDESK_CHAT_TOKEN or the profile).
    #[arg(
        long,
        env = "ZENDESK_CHAT_TOKEN",
        hide_env_values = true,
        value_parser = secret,
        value_name = "TOKEN"
    )]
    pub(crate) token: Option<Secret>,
    /// Base URL of the Real Time Chat API (default: Zendesk's, or the emulator's).
    #[arg(long, env = "ZENDESK_METRICS_URL", value_name = "URL")]
    pub(crate) metrics_url: Option<String>,
    /// Only this department (numeric id).
    #[arg(long, value_name = "ID")]
    pub(crate) department: Option<u64>,
    /// Window of the windowed metrics, in minutes.
    #[arg(long, value_parser = parse_window, default_value = "30", value_name = "30|60")]
    pub(crate) window: u32,
}

/// `zd metrics ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum MetricsCommand {
    /// Stream metric updates, one line each.
    Watch {
        /// Where to connect.
        #[command(flatten)]
        target: MetricsTarget,
        /// Stop after this many updates.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
    },
    /// Pull the chat and agent metrics once (REST) and print them as JSON.
    Get {
        /// Where to connect.
        #[command(flatten)]
        target: MetricsTarget,
    },
    /// Serve the live metrics for Prometheus at http://ADDR/metrics.
    Export {
        /// Where to connect.
        #[command(flatten)]
        target: MetricsTarget,
        /// Address to serve on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
        prometheus: SocketAddr,
    },
}

/// Sunshine credentials and app. Global, so they are taken after the action too (`zd sunshine
/// users get ID --app-id X`, where a flag goes after what it is about) and shown in the
/// action's --help.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Sunshine credentials and app")]
pub(crate) struct SunshineTarget {
    /// API key id.
    #[arg(long, env = "SUNSHINE_KEY_ID", value_name = "ID", global = true)]
    pub(crate) key_id: Option<String>,
    /// API key secret.
    #[arg(
        long,
        env = "SUNSHINE_KEY_SECRET",
        hide_env_values = true,
        value_parser = secret,
        value_name = "SECRET",
        global = true
    )]
    pub(crate) key_secret: Option<Secret>,
    /// App id.
    #[arg(long, env = "SUNSHINE_APP_ID", value_name = "ID", global = true)]
    pub(crate) app_id: Option<String>,
    /// Base URL (default: the US region; with no key at all, the emulator is used instead).
    #[arg(long, env = "SUNSHINE_URL", value_name = "URL", global = true)]
    pub(crate) sunshine_url: Option<String>,
}

/// `zd sunshine ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum SunshineCommand {
    /// Apps.
    Apps {
        /// Credentials.
        #[command(flatten)]
        target: SunshineTarget,
        /// What to do.
        #[command(subcommand)]
        action: AppsAction,
    },
    /// Users of the app.
    Users {
        /// Credentials.
        #[command(flatten)]
        target: SunshineTarget,
        /// What to do.
        #[command(subcommand)]
        action: UsersAction,
    },
    /// Conversations of the app.
    Conversations {
        /// Credentials.
        #[command(flatten)]
        target: SunshineTarget,
        /// What to do.
        #[command(subcommand)]
        action: ConversationsAction,
    },
    /// Messages of a conversation.
    Messages {
        /// Credentials.
        #[command(flatten)]
        target: SunshineTarget,
        /// What to do.
        #[command(subcommand)]
        action: MessagesAction,
    },
}

/// Paging of a list command.
#[derive(Debug, Args, Clone, Copy)]
pub(crate) struct Paging {
    /// Follow the cursors to the end (with a progress bar on a terminal).
    #[arg(long)]
    pub(crate) all: bool,
    /// Page size (1-100).
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub(crate) page_size: u16,
}

/// `zd sunshine apps ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AppsAction {
    /// List apps (JSON lines).
    List {
        /// Paging.
        #[command(flatten)]
        paging: Paging,
    },
    /// Get one app.
    Get {
        /// The app id.
        id: String,
    },
    /// Create an app.
    Create {
        /// Display name.
        name: String,
    },
}

/// `zd sunshine users ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum UsersAction {
    /// List the users with an email identity (JSON lines); the API lists by email only.
    List {
        /// The email identity to look for (not a profile email).
        #[arg(long)]
        email: String,
    },
    /// Get a user by id or externalId.
    Get {
        /// The user id or externalId.
        id: String,
    },
    /// Create a user.
    Create {
        /// The externalId.
        external_id: String,
        /// Given name.
        #[arg(long)]
        given_name: Option<String>,
    },
}

/// `zd sunshine conversations ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConversationsAction {
    /// List a user's conversations (JSON lines).
    List {
        /// The user id.
        #[arg(long)]
        user: String,
        /// Paging.
        #[command(flatten)]
        paging: Paging,
    },
    /// Get one conversation.
    Get {
        /// The conversation id.
        id: String,
    },
    /// Create a personal conversation for a user.
    Create {
        /// The user id.
        #[arg(long)]
        user: String,
    },
}

/// `zd sunshine messages ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum MessagesAction {
    /// List a conversation's messages (JSON lines): the newest 100, or with `--all` every one.
    List {
        /// The conversation id.
        conversation: String,
        /// Follow the cursors back to the first message (with a progress bar on a terminal).
        /// Message pages hold 100: the API takes no page size here.
        #[arg(long)]
        all: bool,
    },
    /// Post a text message as the business.
    Create {
        /// The conversation id.
        conversation: String,
        /// The text.
        text: String,
    },
    /// Write every message of a conversation to a JSONL file (or stdout with `-`).
    Export {
        /// The conversation id.
        conversation: String,
        /// The output file.
        #[arg(long, short, default_value = "-")]
        output: PathBuf,
    },
}

/// `zd auth ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AuthCommand {
    /// Sign a Sunshine JWT (HS256 with kid) for the app, account or a user.
    Jwt {
        /// Key id (default: SUNSHINE_KEY_ID).
        #[arg(long, env = "SUNSHINE_KEY_ID", value_name = "ID")]
        key_id: Option<String>,
        /// Key secret (default: SUNSHINE_KEY_SECRET).
        #[arg(
            long,
            env = "SUNSHINE_KEY_SECRET",
            hide_env_values = true,
            value_parser = secret,
            value_name = "SECRET"
        )]
        key_secret: Option<Secret>,
        /// Scope of the token.
        #[arg(long, value_enum, default_value_t = JwtScope::App)]
        scope: JwtScope,
        /// For --scope user: the user's externalId.
        #[arg(long, value_name = "ID")]
        external_id: Option<String>,
    },
    /// Exchange Chat OAuth credentials for an access token.
    ChatToken {
        /// OAuth client id.
        #[arg(long, env = "ZENDESK_CHAT_CLIENT_ID")]
        client_id: String,
        /// OAuth client secret.
        #[arg(
            long,
            env = "ZENDESK_CHAT_CLIENT_SECRET",
            hide_env_values = true,
            value_parser = secret
        )]
        client_secret: Secret,
        /// Agent login (password grant); without it, client_credentials is used.
        #[arg(long)]
        username: Option<String>,
        /// Agent password (password grant), with --username (default: ZENDESK_CHAT_PASSWORD).
        // Not `env`: clap would then refuse a password from the environment without
        // --username, where a shell that exports one for the password grant must still run
        // the other grants. The command reads the variable itself, for --username.
        #[arg(long, value_parser = secret, requires = "username")]
        password: Option<Secret>,
        /// Authorization code (authorization_code grant), with --redirect-uri.
        #[arg(long, requires = "redirect_uri")]
        code: Option<String>,
        /// Redirect URI of the authorization code grant, with --code.
        #[arg(long, requires = "code")]
        redirect_uri: Option<String>,
        /// Scopes, space-separated: `chat` to act as an agent (the Conversations API refuses a
        /// token without it), `read` for Real Time Chat metrics, `write`.
        #[arg(long, default_value = "read write chat")]
        scope: String,
        /// Token endpoint base (default: Zendesk's).
        #[arg(long, env = "ZENDESK_OAUTH_URL")]
        oauth_url: Option<String>,
    },
    /// Print the Chat OAuth authorize URL to send a user to.
    OauthUrl {
        /// OAuth client id.
        #[arg(long, env = "ZENDESK_CHAT_CLIENT_ID")]
        client_id: String,
        /// Where Zendesk sends the user back.
        #[arg(long)]
        redirect_uri: String,
        /// Scopes, space-separated: `chat` to act as an agent (the Conversations API refuses a
        /// token without it), `read` for Real Time Chat metrics, `write`.
        #[arg(long, default_value = "read write chat")]
        scope: String,
        /// Opaque state echoed back.
        #[arg(long)]
        state: Option<String>,
        /// Implicit grant (token in the fragment) instead of a code.
        #[arg(long)]
        implicit: bool,
    },
}

/// The scope of a Sunshine JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum JwtScope {
    /// An app key's scope.
    App,
    /// An account key's scope.
    Account,
    /// A user, for SDK login.
    User,
}

fn parse_window(s: &str) -> Result<u32, String> {
    match s {
        "30" => Ok(30),
        "60" => Ok(60),
        _ => Err("the window is 30 or 60 (minutes)".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command, SunshineCommand};

    #[test]
    fn the_parsed_command_line_never_shows_a_secret() {
        let command_lines: [&[&str]; 5] = [
            &["zd", "agent", "agents", "--token", "hunter2"],
            &["zd", "metrics", "get", "--token", "hunter2"],
            &[
                "zd",
                "sunshine",
                "apps",
                "--key-id",
                "k",
                "--key-secret",
                "hunter2",
                "list",
            ],
            &[
                "zd",
                "auth",
                "jwt",
                "--key-id",
                "k",
                "--key-secret",
                "hunter2",
            ],
            &[
                "zd",
                "auth",
                "chat-token",
                "--client-id",
                "c",
                "--client-secret",
                "hunter2",
                "--username",
                "u",
                "--password",
                "hunter2",
            ],
        ];
        for args in command_lines {
            let cli = Cli::try_parse_from(args).unwrap();
            let shown = format!("{cli:?}");
            assert!(!shown.contains("hunter2"), "{args:?} shows {shown}");
            assert!(
                shown.contains("Secret([REDACTED])"),
                "{args:?} shows {shown}"
            );
        }
    }

    #[test]
    fn sunshine_target_flags_go_before_or_after_the_action() {
        for args in [
            ["zd", "sunshine", "users", "--app-id", "app_1", "get", "u"],
            ["zd", "sunshine", "users", "get", "u", "--app-id", "app_1"],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            let Command::Sunshine(SunshineCommand::Users { target, .. }) = cli.command else {
                panic!("{args:?} parsed as {cli:?}");
            };
            assert_eq!(target.app_id.as_deref(), Some("app_1"), "{args:?}");
        }
    }
}
