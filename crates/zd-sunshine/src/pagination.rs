//! Cursor pagination: list operations become `Stream`s that follow `meta.hasMore` and
//! `meta.afterCursor` (sent back as `page[after]`), or `meta.beforeCursor` (`page[before]`)
//! for messages, which the API pages backwards.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::{Client, Error, ErrorKind};

/// One page: its items, whether more pages follow and the cursor to them.
#[derive(Debug)]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// Whether the server says more pages follow (`meta.hasMore`).
    pub has_more: bool,
    /// The cursor to follow (`meta.afterCursor`, or `meta.beforeCursor` for messages); only
    /// followed when `has_more` is true.
    pub next: Option<String>,
}

/// A list request that can fetch a page and move to the next one (implemented by the
/// generated list operations).
pub trait Paged: Clone + Send + Sync + 'static {
    /// The listed item.
    type Item: Send + 'static;
    /// Points the request at the page `cursor` names, keeping the direction the request
    /// started with: `page[after]` if it was started with `page_after` (or with no cursor on a
    /// list paged forwards), `page[before]` if started with `page_before` (or with no cursor
    /// on `ListMessages`, which the API pages backwards from the latest page). The other
    /// cursor is cleared.
    fn set_cursor(&mut self, cursor: String);
    /// The cursor the request starts from (`page[after]` or `page[before]`), if any; the
    /// stream counts it as followed already, so a page handing it back is a loop at once.
    fn cursor(&self) -> Option<&str> {
        None
    }
    /// Fetches the current page.
    fn fetch_page<'a>(
        &'a self,
        client: &'a Client,
    ) -> impl Future<Output = Result<Page<Self::Item>, Error>> + Send + 'a;
}

/// The stream of a listing (what `.paginate(&client)` returns): every item of every page,
/// as [`paginate`] describes.
///
/// When a page cannot be fetched the stream yields that error and ends, and
/// [`Listing::resume`] hands back the request for that page, so a new listing picks up
/// where this one stopped without fetching again what was yielded:
///
/// ```no_run
/// use futures_util::StreamExt;
/// use zd_sunshine::Client;
/// use zd_sunshine::operations::ListMessages;
///
/// # async fn run(client: Client) -> Result<(), zd_sunshine::Error> {
/// let mut messages = ListMessages::new("app", "conversation").paginate(&client);
/// let mut retried = false;
/// while let Some(message) = messages.next().await {
///     match message {
///         Ok(message) => println!("{:?}", message.id),
///         Err(e) if e.is_retryable() && !retried => {
///             let Some(rest) = messages.resume() else { return Err(e) };
///             retried = true;
///             messages = rest.paginate(&client);
///         }
///         Err(e) => return Err(e),
///     }
/// }
/// # Ok(()) }
/// ```
#[must_use = "a listing does nothing until it is polled"]
pub struct Listing<R: Paged> {
    items: Pin<Box<dyn Stream<Item = Result<R::Item, Error>> + Send>>,
    failed: Arc<Mutex<Option<R>>>,
}

impl<R: Paged> Listing<R> {
    /// The request for the page whose fetch failed, its cursor and direction kept, once the
    /// stream has yielded that error, whatever the error (whether a new try can help is the
    /// error's to say: [`Error::is_retryable`]); `None` before, and after the errors a new
    /// try would only repeat (a cursor loop, a missing cursor). A listing started from it
    /// knows only its own starting cursor: the loop and empty-page guards start over.
    pub fn resume(&self) -> Option<R> {
        self.failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl<R: Paged> Stream for Listing<R> {
    type Item = Result<R::Item, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.items.as_mut().poll_next(cx)
    }
}

impl<R: Paged> fmt::Debug for Listing<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listing").finish_non_exhaustive()
    }
}

struct State<R: Paged> {
    client: Client,
    next: Option<R>,
    /// Where the request of a page that failed goes, for [`Listing::resume`].
    failed: Arc<Mutex<Option<R>>>,
    buffer: VecDeque<R::Item>,
    /// Every cursor followed so far, the starting one included: a server that cycles
    /// (A, B, A) would loop forever.
    seen: HashSet<String>,
    /// Set when a repeated cursor was found; reported once the buffered items are out.
    looped: bool,
    /// Set when a page said more follow but gave no cursor; reported likewise.
    truncated: bool,
    /// Pages in a row that were empty yet said more follow.
    empty_run: usize,
    /// Set when `empty_run` reached [`MAX_EMPTY_PAGES`]; reported likewise.
    stalled: bool,
}

/// The most pages in a row a listing follows that hold no items yet say more follow
/// (`meta.hasMore` with a fresh cursor each time). A server doing that forever would keep one
/// poll of the stream fetching without ever yielding; past this the stream ends with an
/// [`ErrorKind::CursorLoop`] error.
pub const MAX_EMPTY_PAGES: usize = 16;

/// Streams every item of every page. The stream ends after the last page, or after an error;
/// a cursor the server already handed out in this listing (or the one the listing started
/// from) is an [`ErrorKind::CursorLoop`] error, and `meta.hasMore` without a cursor an
/// [`ErrorKind::MissingCursor`] error (the items of the page that carried either are yielded
/// first). [`MAX_EMPTY_PAGES`] empty pages in a row that each say more follow are also an
/// [`ErrorKind::CursorLoop`] error: a server can otherwise keep the stream fetching forever
/// with fresh cursors. A page that cannot be fetched is an error too; [`Listing::resume`] then
/// gives the request for it.
pub fn paginate<R: Paged>(client: Client, first: R) -> Listing<R> {
    let seen: HashSet<String> = first.cursor().map(str::to_owned).into_iter().collect();
    let failed = Arc::new(Mutex::new(None));
    let state = State {
        client,
        next: Some(first),
        failed: Arc::clone(&failed),
        buffer: VecDeque::new(),
        seen,
        looped: false,
        truncated: false,
        empty_run: 0,
        stalled: false,
    };
    let items = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.buffer.pop_front() {
                return Some((Ok(item), st));
            }
            if std::mem::take(&mut st.looped) {
                let e = Error::new(
                    ErrorKind::CursorLoop,
                    "the server returned a page cursor it had already returned",
                );
                return Some((Err(e), st));
            }
            if std::mem::take(&mut st.truncated) {
                // Ending here would pass a partial list off as the whole.
                let e = Error::new(
                    ErrorKind::MissingCursor,
                    "the server said more pages follow (`meta.hasMore`) but gave no cursor",
                );
                return Some((Err(e), st));
            }
            if std::mem::take(&mut st.stalled) {
                let e = Error::new(
                    ErrorKind::CursorLoop,
                    format!(
                        "the server returned {MAX_EMPTY_PAGES} empty pages in a row, each \
                         saying more pages follow"
                    ),
                );
                return Some((Err(e), st));
            }
            let mut request = st.next.take()?;
            match request.fetch_page(&st.client).await {
                Ok(page) => {
                    if page.items.is_empty() && page.has_more {
                        st.empty_run += 1;
                        if st.empty_run >= MAX_EMPTY_PAGES {
                            st.stalled = true;
                            continue;
                        }
                    } else {
                        st.empty_run = 0;
                    }
                    st.buffer.extend(page.items);
                    if page.has_more {
                        match page.next.filter(|c| !c.is_empty()) {
                            Some(cursor) if st.seen.insert(cursor.clone()) => {
                                request.set_cursor(cursor);
                                st.next = Some(request);
                            }
                            Some(_) => st.looped = true,
                            None => st.truncated = true,
                        }
                    }
                }
                Err(e) => {
                    *st.failed
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(request);
                    return Some((Err(e), st));
                }
            }
        }
    });
    Listing {
        items: Box::pin(items),
        failed,
    }
}
