//! `zd sunshine apps | users | conversations | messages ...` over the generated client.

use std::io::Write;
use std::path::Path;

use futures_util::{FutureExt as _, Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use zd_sunshine::operations::{
    CreateApp, CreateConversation, CreateUser, GetApp, GetConversation, GetUser, ListApps,
    ListConversations, ListMessages, ListUsers, PostMessage,
};
use zd_sunshine::pagination::{Page, Paged};
use zd_sunshine::{Client, Region};

use crate::cli::{
    AppsAction, ConversationsAction, MessagesAction, Paging, SunshineCommand, SunshineTarget,
    UsersAction,
};
use crate::config;
use crate::error::{CliError, Context as _, Kind, Result};
use crate::out;
use crate::target::{Context, EmulatorLink};

fn api_err(what: &'static str) -> impl FnOnce(zd_sunshine::Error) -> CliError {
    move |e| CliError::with(api_kind(&e), what, e)
}

/// The kind of a zd-sunshine failure. The client refuses some requests before sending them
/// (an id that names no resource, a body over the API's limits): those are the user's input
/// (exit 2), not a failure of the service, and have no status to tell them by.
fn api_kind(error: &zd_sunshine::Error) -> Kind {
    use zd_sunshine::ErrorKind as K;
    match error.kind() {
        K::Encode | K::RequestTooLarge | K::UploadTooLarge => Kind::Usage,
        // As for the agent commands: credentials that cannot make a header are the config's.
        // So is a client that cannot be built (its TLS setup): the base URL, the one setting a
        // user gives it, was checked as a usage error before.
        K::Credentials | K::Config => Kind::Config,
        K::Unauthorized | K::Forbidden => Kind::Auth,
        K::Io => Kind::Io,
        _ => Kind::Service,
    }
}

/// A client, its app id, and the emulator it may need alive.
struct Connected {
    client: Client,
    app_id: String,
    _emulator: Option<EmulatorLink>,
}

/// `account` asks for the emulator's account key (app operations need one); with configured
/// credentials the configured key is used either way.
async fn connect(ctx: &Context, flags: &SunshineTarget, account_key: bool) -> Result<Connected> {
    let p = &ctx.profile;
    let key = match config::given_sunshine_key(flags.key_id.clone(), flags.key_secret.clone())? {
        Some(key) => Some(key),
        None => config::profile_sunshine_key(p)?,
    };
    let app_id = flags.app_id.clone().or_else(|| p.sunshine_app_id.clone());
    let url = flags
        .sunshine_url
        .clone()
        .or_else(|| p.sunshine_url.clone());
    let (key_id, secret, app_id, region, emulator) = match key {
        Some((id, secret)) => {
            let region = url.map_or(Region::Us, Region::Custom);
            // A malformed URL is a bad value (exit 2), as a malformed --chat-url is, not a
            // failure of the service.
            region
                .base_url()
                .context(Kind::Usage, "invalid Sunshine URL")?;
            (id, secret, app_id.unwrap_or_default(), region, None)
        }
        None => {
            if let Some(url) = url {
                // The emulator's keys are never sent to another host.
                return Err(CliError::new(
                    Kind::Usage,
                    format!(
                        "the Sunshine URL {url} (--sunshine-url, SUNSHINE_URL or the profile's \
                         sunshine_url) needs a key (SUNSHINE_KEY_ID and SUNSHINE_KEY_SECRET, or \
                         the profile's); without one, zd talks to the emulator"
                    ),
                ));
            }
            let emulator = ctx.emulator().await?;
            let account = emulator.account().await?;
            let app = &account["sunshine"];
            let field = |name: &str| {
                app[name].as_str().map(str::to_owned).ok_or_else(|| {
                    CliError::new(
                        Kind::Service,
                        format!(
                            "the emulator's account has no sunshine.{name} (no Sunshine service?)"
                        ),
                    )
                })
            };
            let (id, secret) = if account_key {
                (field("account_key_id")?, field("account_key_secret")?)
            } else {
                (field("key_id")?, field("key_secret")?)
            };
            let app_id = match app_id {
                Some(a) => a,
                None => field("app_id")?,
            };
            let region = Region::Custom(emulator.base_url().to_owned());
            (
                id,
                zd_auth::Secret::new(secret),
                app_id,
                region,
                Some(emulator),
            )
        }
    };
    let key = zd_auth::sunshine::ApiKey::new(key_id, secret)
        .map_err(|e| CliError::with(crate::error::auth_kind(&e), "invalid Sunshine API key", e))?;
    let client = Client::new(region, zd_auth::sunshine::BasicAuth::new(&key))
        .map_err(api_err("cannot build the Sunshine client"))?;
    Ok(Connected {
        client,
        app_id,
        _emulator: emulator,
    })
}

fn require_app(c: &Connected) -> Result<&str> {
    if c.app_id.is_empty() {
        return Err(CliError::new(
            Kind::Config,
            "missing --app-id or SUNSHINE_APP_ID",
        ));
    }
    Ok(&c.app_id)
}

fn print<T: Serialize>(value: &T) -> Result<()> {
    let line = serde_json::to_string(value).context(Kind::Io, "cannot encode the answer")?;
    out::line(line)
}

fn body<T: DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).context(Kind::Usage, "invalid request body")
}

/// Prints every item of `items` as a JSON line; with a progress bar on stderr when asked.
async fn print_all<T: Serialize>(
    items: impl Stream<Item = Result<T, zd_sunshine::Error>>,
    limit: Option<usize>,
    mut output: impl Write,
) -> Result<u64> {
    let progress = crate::progress::Counter::new("items");
    let mut items = std::pin::pin!(items);
    let mut count = 0u64;
    while let Some(item) = items.next().await {
        let item = item.map_err(api_err("listing failed"))?;
        let line = serde_json::to_string(&item).context(Kind::Io, "cannot encode an item")?;
        out::write_line(&mut output, line)?;
        count += 1;
        progress.tick(count);
        if limit.is_some_and(|l| count >= l as u64) {
            break;
        }
    }
    progress.finish(count);
    Ok(count)
}

const fn limit(paging: Paging) -> Option<usize> {
    if paging.all {
        None
    } else {
        Some(paging.page_size as usize)
    }
}

/// One page of messages at a time, through zd-sunshine's pagination (which reports a
/// `hasMore` without a cursor and a cursor handed out twice as errors, where stopping or
/// looping would pass a partial or endless listing off as the whole). `ListMessages::paginate`
/// flattens the pages, but they come newest first while each page is oldest first, so putting
/// the conversation in order needs to know where each page ends.
#[derive(Debug, Clone)]
struct MessagePages(ListMessages);

impl Paged for MessagePages {
    type Item = Vec<zd_sunshine::models::Message>;

    fn set_cursor(&mut self, cursor: String) {
        self.0.set_cursor(cursor);
    }

    fn cursor(&self) -> Option<&str> {
        self.0.cursor()
    }

    async fn fetch_page(&self, client: &Client) -> Result<Page<Self::Item>, zd_sunshine::Error> {
        let page = self.0.fetch_page(client).await?;
        // An empty page is no item, so the stream's guard against endless empty pages that
        // each say more follow counts it.
        let items = if page.items.is_empty() {
            Vec::new()
        } else {
            vec![page.items]
        };
        Ok(Page {
            items,
            has_more: page.has_more,
            next: page.next,
        })
    }
}

/// Every message of a conversation, oldest first. The pages come newest first, so nothing can
/// be written before the last (oldest) one is in: the whole conversation is held, which the
/// API bounds (a conversation holds at most 30,000 messages).
async fn all_messages(
    client: &Client,
    first: ListMessages,
) -> Result<Vec<zd_sunshine::models::Message>> {
    let progress = crate::progress::Counter::new("messages");
    let mut pages = std::pin::pin!(zd_sunshine::pagination::paginate(
        client.clone(),
        MessagePages(first)
    ));
    let mut newest_first = Vec::new();
    let mut count = 0u64;
    while let Some(page) = pages.next().await {
        let page = page.map_err(api_err("cannot list messages"))?;
        count += page.len() as u64;
        progress.tick(count);
        newest_first.push(page);
    }
    progress.finish(count);
    Ok(newest_first.into_iter().rev().flatten().collect())
}

/// Writes `items` as JSON lines to `output`, which `to` names in errors.
fn write_lines<T: Serialize>(items: &[T], mut output: impl Write, to: &str) -> Result<()> {
    // The message is built only on failure: an export writes up to 30,000 lines.
    let failed = |e: std::io::Error| CliError::with(Kind::Io, format!("cannot write to {to}"), e);
    for item in items {
        serde_json::to_writer(&mut output, item).context(Kind::Io, "cannot encode an item")?;
        output.write_all(b"\n").map_err(failed)?;
    }
    output.flush().map_err(failed)
}

/// Writes every message of a conversation to the file `path`; gives how many.
///
/// A regular file (or a new one) is written whole or not at all: the messages go to a
/// temporary file beside it, created before anything is downloaded (so a directory that
/// cannot be written fails at once rather than after a long listing), and renamed over
/// `path` once complete. A failure, a Ctrl-C or a stop signal at any point before the rename
/// removes the temporary file and leaves `path` as it was: a truncated export would read as a
/// shorter conversation. The temporary file is readable by its owner alone; the complete file
/// is synced before the rename and takes the replaced file's permissions (an export kept
/// private stays private); a symbolic link is written through. A path that names an
/// inherited descriptor (`/dev/stdout`) writes to that descriptor, and anything else that is
/// not a regular file (a named pipe) is opened first; both are written once the listing is in.
async fn export_to_file(client: &Client, first: ListMessages, path: &Path) -> Result<usize> {
    let name = path.display().to_string();
    // Before anything follows links: `/dev/stdout` leads to the file a shell redirected
    // stdout to, which renaming a temporary over would replace (`>> all.jsonl` in a loop
    // keeping the last export alone).
    if let Some(inherited) = Inherited::open(path)? {
        let messages = all_messages(client, first).await?;
        inherited.write(&messages, &name)?;
        return Ok(messages.len());
    }
    let existing = std::fs::metadata(path).ok();
    if existing.as_ref().is_some_and(|m| !m.is_file()) {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .context(Kind::Io, format!("cannot open {name}"))?;
        let messages = all_messages(client, first).await?;
        write_lines(&messages, std::io::BufWriter::new(file), &name)?;
        return Ok(messages.len());
    }
    let path = &through_links(path);
    // Listening before the file exists: a Ctrl-C or a stop signal from here on removes it.
    let mut interrupted = std::pin::pin!(crate::interrupt::stop_requested()?);
    let mut part = Part::create(path)?;
    let messages = tokio::select! {
        listed = all_messages(client, first) => listed?,
        () = &mut interrupted => return Err(export_interrupted(&name)),
    };
    let file = part.write_whole(&messages)?;
    if let Some(replaced) = existing {
        file.set_permissions(replaced.permissions()).context(
            Kind::Io,
            format!("cannot set the permissions of {}", part.name()),
        )?;
    }
    part.commit_unless_stopped(path, interrupted, &name)?;
    Ok(messages.len())
}

/// The error of an export a stop signal ended before it replaced `name`.
fn export_interrupted(name: &str) -> CliError {
    CliError::new(
        Kind::Io,
        format!("export interrupted; {name} left as it was"),
    )
}

/// A descriptor zd inherited, which an export path names: written through as it is, never
/// replaced by a file.
enum Inherited {
    Stdout,
    Stderr,
    /// Another descriptor, opened again through its path.
    Other(std::fs::File),
}

impl Inherited {
    /// The descriptor `path` names (`/dev/stdout`, `/dev/stderr`, `/dev/fd/N`,
    /// `/proc/self/fd/N`), or the standard stream whose file it leads to however it is
    /// written (a link to `/dev/stdout`, `/dev/./stdout`, `/proc/<pid>/fd/1`), checked or
    /// opened before the listing so that one that cannot be written fails at once; `None` for
    /// any other path.
    fn open(path: &Path) -> Result<Option<Self>> {
        let Some(descriptor) = descriptor_named(path).or_else(|| standard_stream_at(path)) else {
            return Ok(None);
        };
        Ok(Some(match descriptor {
            1 | 2 => {
                // A closed one (`>&-`) fails here, not after the whole listing.
                standard_stream_open(descriptor)
                    .context(Kind::Io, format!("cannot write to {}", path.display()))?;
                if descriptor == 1 {
                    Self::Stdout
                } else {
                    Self::Stderr
                }
            }
            // No safe call wraps a bare descriptor. Opened again, a regular file gets a new
            // offset of its own, at 0: appending writes after what is there instead of over
            // it, as a shell's `>>` would, and changes nothing for a pipe or a terminal.
            _ => Self::Other(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(path)
                    .context(Kind::Io, format!("cannot open {}", path.display()))?,
            ),
        }))
    }

    /// Writes `items` as JSON lines; `to` names the path in errors.
    fn write<T: Serialize>(self, items: &[T], to: &str) -> Result<()> {
        use std::io::BufWriter;
        match self {
            Self::Stdout => write_lines(items, BufWriter::new(std::io::stdout().lock()), to),
            Self::Stderr => write_lines(items, BufWriter::new(std::io::stderr().lock()), to),
            Self::Other(file) => write_lines(items, BufWriter::new(file), to),
        }
    }
}

/// Whether standard descriptor 1 or 2 is open (a duplicate of it can be made).
#[cfg(unix)]
fn standard_stream_open(descriptor: u32) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    let duplicate = if descriptor == 1 {
        std::io::stdout().as_fd().try_clone_to_owned()
    } else {
        std::io::stderr().as_fd().try_clone_to_owned()
    };
    duplicate.map(drop)
}

#[cfg(not(unix))]
fn standard_stream_open(_: u32) -> std::io::Result<()> {
    Ok(())
}

/// The standard stream (1 or 2) whose open file `path` leads to once links are followed: the
/// same device and inode. However the path is written, renaming a temporary over that file
/// would replace what the stream appends to.
#[cfg(unix)]
fn standard_stream_at(path: &Path) -> Option<u32> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let target = std::fs::metadata(path).ok()?;
    let is_target = |fd: std::os::fd::BorrowedFd<'_>| {
        let open = std::fs::File::from(fd.try_clone_to_owned().ok()?);
        let meta = open.metadata().ok()?;
        Some(meta.dev() == target.dev() && meta.ino() == target.ino())
    };
    if is_target(std::io::stdout().as_fd()) == Some(true) {
        return Some(1);
    }
    (is_target(std::io::stderr().as_fd()) == Some(true)).then_some(2)
}

#[cfg(not(unix))]
fn standard_stream_at(_: &Path) -> Option<u32> {
    None
}

/// The number of the descriptor `path` names as written, links not followed.
fn descriptor_named(path: &Path) -> Option<u32> {
    let path = path.to_str()?;
    let number = match path {
        "/dev/stdout" => return Some(1),
        "/dev/stderr" => return Some(2),
        _ => path
            .strip_prefix("/dev/fd/")
            .or_else(|| path.strip_prefix("/proc/self/fd/"))?,
    };
    // Digits alone: `parse` takes a sign, which no descriptor's name has.
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number.parse().ok()
}

/// Where `path` leads once symbolic links are followed (a dangling link: where it points),
/// so an export replaces the file a link names rather than the link.
fn through_links(path: &Path) -> std::path::PathBuf {
    let mut path = path.to_path_buf();
    // Bounded: a loop of links ends up with the path as it is, which then fails to open.
    for _ in 0..40 {
        let Ok(target) = std::fs::read_link(&path) else {
            break;
        };
        path = match path.parent() {
            Some(dir) => dir.join(target),
            None => target,
        };
    }
    path
}

/// The temporary file an export is written to, removed unless committed.
struct Part {
    path: std::path::PathBuf,
    /// The file as created, until it is taken to be written.
    file: Option<std::fs::File>,
    committed: bool,
}

impl Part {
    /// Creates `.{file name}.{pid}.part` beside `target`; never opens an existing file.
    fn create(target: &Path) -> Result<Self> {
        let file_name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "export".to_owned());
        // The process id and the time: a .part left by a killed export never blocks the next.
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            target.with_file_name(format!(".{file_name}.{}.{nonce}.part", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        // Private from the start: the file holds a conversation for as long as the listing
        // takes, and another user who opened it then could read on after any later chmod.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(&path)
            .context(Kind::Io, format!("cannot create {}", path.display()))?;
        Ok(Self {
            path,
            file: Some(file),
            committed: false,
        })
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// The file to write; taken once.
    fn file(&mut self) -> Result<std::fs::File> {
        self.file
            .take()
            .ok_or_else(|| CliError::new(Kind::Io, format!("{} was taken already", self.name())))
    }

    /// Writes `items` as JSON lines and syncs them; gives the file, to set its permissions.
    fn write_whole<T: Serialize>(&mut self, items: &[T]) -> Result<std::fs::File> {
        let mut out = std::io::BufWriter::new(self.file()?);
        write_lines(items, &mut out, &self.name())?;
        let file = out.into_inner().map_err(|e| {
            CliError::with(
                Kind::Io,
                format!("cannot write to {}", self.name()),
                e.into_error(),
            )
        })?;
        // Whole on disk before it replaces anything: a crash after the rename must not leave
        // an empty file where the earlier export was.
        file.sync_all()
            .context(Kind::Io, format!("cannot write to {}", self.name()))?;
        Ok(file)
    }

    /// Renames the complete file over `target`, unless `stop` (the export's stop signals) has
    /// come, in the time the file took to write: `target` (`name` in the error) is then left as
    /// it was, as it is for a stop during the listing.
    fn commit_unless_stopped(
        self,
        target: &Path,
        stop: std::pin::Pin<&mut impl Future<Output = ()>>,
        name: &str,
    ) -> Result<()> {
        if stop.now_or_never().is_some() {
            return Err(export_interrupted(name));
        }
        self.commit(target)
    }

    /// Renames the complete file over `target`.
    fn commit(mut self, target: &Path) -> Result<()> {
        std::fs::rename(&self.path, target).context(
            Kind::Io,
            format!("cannot rename {} to {}", self.name(), target.display()),
        )?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        if !self.committed
            && let Err(error) = std::fs::remove_file(&self.path)
        {
            tracing::debug!(%error, "cannot remove the partial export");
        }
    }
}

/// Runs one sunshine command.
pub(crate) async fn run(ctx: &Context, cmd: SunshineCommand) -> Result<()> {
    match cmd {
        SunshineCommand::Apps { target, action } => {
            let c = connect(ctx, &target, true).await?;
            match action {
                AppsAction::List { paging } => {
                    let req = ListApps::new().page_size(i64::from(paging.page_size));
                    print_all(
                        req.paginate(&c.client),
                        limit(paging),
                        std::io::stdout().lock(),
                    )
                    .await?;
                }
                AppsAction::Get { id } => print(
                    &GetApp::new(id)
                        .send(&c.client)
                        .await
                        .map_err(api_err("cannot get the app"))?,
                )?,
                AppsAction::Create { name } => {
                    let req = CreateApp::new(body(json!({ "displayName": name }))?);
                    print(
                        &req.send(&c.client)
                            .await
                            .map_err(api_err("cannot create the app"))?,
                    )?;
                }
            }
        }
        SunshineCommand::Users { target, action } => {
            let c = connect(ctx, &target, false).await?;
            let app = require_app(&c)?;
            match action {
                UsersAction::List { email } => {
                    let users = ListUsers::new(app, email)
                        .send(&c.client)
                        .await
                        .map_err(api_err("cannot list the users"))?;
                    for user in users.users.unwrap_or_default() {
                        print(&user)?;
                    }
                }
                UsersAction::Get { id } => print(
                    &GetUser::new(app, id)
                        .send(&c.client)
                        .await
                        .map_err(api_err("cannot get the user"))?,
                )?,
                UsersAction::Create {
                    external_id,
                    given_name,
                } => {
                    let mut b = json!({ "externalId": external_id });
                    if let Some(name) = given_name {
                        b["profile"] = json!({ "givenName": name });
                    }
                    let req = CreateUser::new(app, body(b)?);
                    print(
                        &req.send(&c.client)
                            .await
                            .map_err(api_err("cannot create the user"))?,
                    )?;
                }
            }
        }
        SunshineCommand::Conversations { target, action } => {
            let c = connect(ctx, &target, false).await?;
            let app = require_app(&c)?;
            match action {
                ConversationsAction::List { user, paging } => {
                    let req = ListConversations::new(app)
                        .filter_user_id(user)
                        .page_size(i64::from(paging.page_size));
                    print_all(
                        req.paginate(&c.client),
                        limit(paging),
                        std::io::stdout().lock(),
                    )
                    .await?;
                }
                ConversationsAction::Get { id } => {
                    print(
                        &GetConversation::new(app, id)
                            .send(&c.client)
                            .await
                            .map_err(api_err("cannot get the conversation"))?,
                    )?;
                }
                ConversationsAction::Create { user } => {
                    let b = json!({ "type": "personal", "participants": [{ "userId": user, "subscribeSDKClient": false }] });
                    let req = CreateConversation::new(app, body(b)?);
                    print(
                        &req.send(&c.client)
                            .await
                            .map_err(api_err("cannot create the conversation"))?,
                    )?;
                }
            }
        }
        SunshineCommand::Messages { target, action } => {
            let c = connect(ctx, &target, false).await?;
            let app = require_app(&c)?;
            match action {
                MessagesAction::List { conversation, all } => {
                    let req = ListMessages::new(app, conversation);
                    let messages = if all {
                        all_messages(&c.client, req).await?
                    } else {
                        let page = req
                            .send(&c.client)
                            .await
                            .map_err(api_err("cannot list messages"))?;
                        page.messages.unwrap_or_default()
                    };
                    write_lines(&messages, std::io::stdout().lock(), "stdout")?;
                }
                MessagesAction::Create { conversation, text } => {
                    let b = json!({ "author": { "type": "business" }, "content": { "type": "text", "text": text } });
                    let req = PostMessage::new(app, conversation, body(b)?);
                    print(
                        &req.send(&c.client)
                            .await
                            .map_err(api_err("cannot post the message"))?,
                    )?;
                }
                MessagesAction::Export {
                    conversation,
                    output,
                } => {
                    let req = ListMessages::new(app, &conversation);
                    let count = if output.as_os_str() == "-" {
                        let messages = all_messages(&c.client, req).await?;
                        write_lines(&messages, std::io::stdout().lock(), "stdout")?;
                        messages.len()
                    } else {
                        export_to_file(&c.client, req, &output).await?
                    };
                    crate::out::note(format_args!("exported {count} messages of {conversation}"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_while_the_file_was_written_leaves_the_target_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("conv.jsonl");
        std::fs::write(&target, "earlier export\n").unwrap();
        let mut part = Part::create(&target).unwrap();
        part.write_whole(&["m1", "m2"]).unwrap();
        // The stop came after the listing, while the file was written.
        let stopped = std::pin::pin!(std::future::ready(()));
        let err = part
            .commit_unless_stopped(&target, stopped, "conv.jsonl")
            .unwrap_err();
        assert_eq!(err.kind(), Kind::Io);
        assert!(err.to_string().contains("export interrupted"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "earlier export\n"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "{left:?}");

        // No stop: the export replaces the file.
        let mut part = Part::create(&target).unwrap();
        part.write_whole(&["m1"]).unwrap();
        let going_on = std::pin::pin!(std::future::pending::<()>());
        part.commit_unless_stopped(&target, going_on, "conv.jsonl")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "\"m1\"\n");
    }

    #[test]
    fn descriptors_are_named_by_the_path_as_written() {
        for (path, descriptor) in [
            ("/dev/stdout", Some(1)),
            ("/dev/stderr", Some(2)),
            ("/dev/fd/1", Some(1)),
            ("/dev/fd/7", Some(7)),
            ("/proc/self/fd/12", Some(12)),
            ("/dev/fd/+1", None),
            ("/dev/fd/", None),
            ("/dev/fd/1/x", None),
            ("/dev/null", None),
            ("out/dev/stdout", None),
            ("conv.jsonl", None),
        ] {
            assert_eq!(descriptor_named(Path::new(path)), descriptor, "{path}");
        }
    }
}
