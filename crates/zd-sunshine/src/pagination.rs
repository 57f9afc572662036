//! Cursor pagination: list operations become `Stream`s that follow `meta.hasMore` and
//! `meta.afterCursor` (sent back as `page[after]`), or `meta.beforeCursor` (`page[before]`)
//! for messages, which the API pages backwards.

use std::collections::VecDeque;
use std::future::Future;

use futures_core::Stream;

use crate::{Client, Error};

/// One page: its items and the cursor of the next page, if the server says there is one.
#[derive(Debug)]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// The cursor to follow (`meta.afterCursor`, or `meta.beforeCursor` for messages) when
    /// `meta.hasMore` is true.
    pub next: Option<String>,
}

/// A list request that can fetch a page and move to the next one (implemented by the
/// generated list operations).
pub trait Paged: Clone + Send + Sync + 'static {
    /// The listed item.
    type Item: Send + 'static;
    /// Points the request at the page `cursor` names: `page[after]` for lists paged forwards,
    /// `page[before]` for `ListMessages`, which the API pages backwards from the latest page
    /// (the other cursor is cleared).
    fn set_cursor(&mut self, cursor: String);
    /// Fetches the current page.
    fn fetch_page<'a>(
        &'a self,
        client: &'a Client,
    ) -> impl Future<Output = Result<Page<Self::Item>, Error>> + Send + 'a;
}

struct State<R: Paged> {
    client: Client,
    next: Option<R>,
    buffer: VecDeque<R::Item>,
    last_cursor: Option<String>,
}

/// Streams every item of every page. The stream ends after the last page, after an error, or
/// if the server hands back the same cursor twice (which would otherwise loop forever).
pub fn paginate<R: Paged>(
    client: Client,
    first: R,
) -> impl Stream<Item = Result<R::Item, Error>> + Send + 'static {
    let state = State {
        client,
        next: Some(first),
        buffer: VecDeque::new(),
        last_cursor: None,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.buffer.pop_front() {
                return Some((Ok(item), st));
            }
            let mut request = st.next.take()?;
            match request.fetch_page(&st.client).await {
                Ok(page) => {
                    st.buffer.extend(page.items);
                    if let Some(cursor) = page.next
                        && st.last_cursor.as_deref() != Some(cursor.as_str())
                    {
                        request.set_cursor(cursor.clone());
                        st.last_cursor = Some(cursor);
                        st.next = Some(request);
                    }
                }
                Err(e) => return Some((Err(e), st)),
            }
        }
    })
}
