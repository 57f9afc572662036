//! Relay connections, sliced the way graphql-relay-js slices arrays (the evidence points at
//! that server), with `arrayconnection:N` cursors.

use async_graphql::SimpleObject;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::errors::exec_error;
use super::types::{Agent, Channel, ChatLog, Department};

/// Relay page info.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct PageInfo {
    has_next_page: bool,
    has_previous_page: bool,
    start_cursor: Option<String>,
    end_cursor: Option<String>,
}

/// The Relay connection arguments.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectionArgs {
    pub(crate) after: Option<String>,
    pub(crate) first: Option<i32>,
    pub(crate) before: Option<String>,
    pub(crate) last: Option<i32>,
}

const PREFIX: &str = "arrayconnection:";

fn cursor(offset: usize) -> String {
    STANDARD.encode(format!("{PREFIX}{offset}"))
}

fn offset_of(cursor: Option<&str>) -> Result<Option<i64>, async_graphql::Error> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    STANDARD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix(PREFIX).and_then(|n| n.parse::<i64>().ok()))
        .map(Some)
        .ok_or_else(|| exec_error(format!("invalid cursor {cursor:?}")))
}

/// Slices `items` and returns the edges (node, cursor) and page info.
///
/// `items` are the entries from position `window_start` of their list (0 for a whole list; a
/// chat log whose first entries fell out starts later), as graphql-relay-js's
/// `connectionFromArraySlice` takes them: cursors are positions in the whole list, so a
/// client's cursor keeps pointing at the same entry.
pub(crate) fn slice_window<T, I>(
    items: I,
    window_start: usize,
    args: &ConnectionArgs,
) -> Result<(Vec<(T, String)>, PageInfo), async_graphql::Error>
where
    I: IntoIterator<Item = T>,
    I::IntoIter: ExactSizeIterator,
{
    let items = items.into_iter();
    let first_kept = i64::try_from(window_start).unwrap_or(i64::MAX);
    let len = i64::try_from(items.len())
        .unwrap_or(i64::MAX)
        .saturating_add(first_kept);
    // Cursors come from the client: clamp them into the list so no arithmetic can overflow.
    let after = offset_of(args.after.as_deref())?.map(|a| a.clamp(-1, len));
    let before = offset_of(args.before.as_deref())?.map(|b| b.clamp(-1, len));
    let after_offset = after.unwrap_or(-1);
    let before_offset = before.unwrap_or(len);
    let mut start = after_offset.saturating_add(1).max(first_kept);
    let mut end = before_offset.min(len);
    if let Some(first) = args.first {
        if first < 0 {
            return Err(exec_error(
                "Argument \"first\" must be a non-negative integer",
            ));
        }
        end = end.min(start.saturating_add(i64::from(first)));
    }
    if let Some(last) = args.last {
        if last < 0 {
            return Err(exec_error(
                "Argument \"last\" must be a non-negative integer",
            ));
        }
        start = start.max(end.saturating_sub(i64::from(last)));
    }
    // Entries before the window are gone for good: nothing lies before the first one kept.
    let lower = if after.is_some() {
        after_offset.saturating_add(1)
    } else {
        0
    }
    .max(first_kept);
    let upper = if before.is_some() { before_offset } else { len };
    let start = start.max(0);
    let end = end.max(start);
    let edges: Vec<(T, String)> = items
        .enumerate()
        .skip(usize::try_from(start.saturating_sub(first_kept)).unwrap_or(usize::MAX))
        .take(usize::try_from(end.saturating_sub(start)).unwrap_or(0))
        .map(|(i, item)| (item, cursor(i.saturating_add(window_start))))
        .collect();
    let info = PageInfo {
        has_previous_page: args.last.is_some() && start > lower,
        has_next_page: args.first.is_some() && end < upper,
        start_cursor: edges.first().map(|(_, c)| c.clone()),
        end_cursor: edges.last().map(|(_, c)| c.clone()),
    };
    Ok((edges, info))
}

macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ty) => {
        #[doc = concat!("A Relay connection of `", stringify!($node), "`.")]
        #[derive(SimpleObject)]
        pub(crate) struct $conn {
            edges: Option<Vec<Option<$edge>>>,
            page_info: PageInfo,
        }

        #[doc = concat!("An edge to a `", stringify!($node), "`.")]
        #[derive(SimpleObject)]
        pub(crate) struct $edge {
            node: Option<$node>,
            cursor: String,
        }

        impl $conn {
            /// A page of `items`, the entries from position `window_start` of their list (0
            /// for a whole list; see [`slice_window`]).
            #[allow(
                dead_code,
                reason = "chat logs are sliced before their nodes are built, with from_edges"
            )]
            pub(crate) fn window(
                items: Vec<$node>,
                window_start: usize,
                args: &ConnectionArgs,
            ) -> Result<Self, async_graphql::Error> {
                let (edges, page_info) = slice_window(items, window_start, args)?;
                Ok(Self::from_edges(edges, page_info))
            }

            /// A page already sliced by [`slice_window`].
            pub(crate) fn from_edges(edges: Vec<($node, String)>, page_info: PageInfo) -> Self {
                Self {
                    edges: Some(
                        edges
                            .into_iter()
                            .map(|(node, cursor)| {
                                Some($edge {
                                    node: Some(node),
                                    cursor,
                                })
                            })
                            .collect(),
                    ),
                    page_info,
                }
            }
        }
    };
}

connection!(AgentConnection, AgentEdge, Agent);
connection!(DepartmentConnection, DepartmentEdge, Department);
connection!(ChannelConnection, ChannelEdge, Channel);
connection!(ChatLogConnection, ChatLogEdge, ChatLog);

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole list.
    fn slice<T>(
        items: Vec<T>,
        args: &ConnectionArgs,
    ) -> Result<(Vec<(T, String)>, PageInfo), async_graphql::Error> {
        slice_window(items, 0, args)
    }

    #[test]
    fn a_window_keeps_the_cursors_of_the_whole_list() {
        // Entries 0..3 are gone; 3..8 remain.
        let kept: Vec<i32> = (3..8).collect();
        let (edges, info) = slice_window(kept.clone(), 3, &args(Some(2), Some(4), None)).unwrap();
        assert_eq!(edges, [(5, cursor(5)), (6, cursor(6))]);
        assert!(info.has_next_page);
        // A cursor from before the window starts at its first entry.
        let (edges, _) = slice_window(kept.clone(), 3, &args(Some(1), Some(0), None)).unwrap();
        assert_eq!(edges, [(3, cursor(3))]);
        // The last entries, by absolute cursor.
        let (edges, info) = slice_window(kept.clone(), 3, &args(None, None, Some(2))).unwrap();
        assert_eq!(edges, [(6, cursor(6)), (7, cursor(7))]);
        assert!(info.has_previous_page);
        // Paging back reaches the first entry kept, and says nothing lies before it.
        let back = ConnectionArgs {
            before: Some(cursor(5)),
            last: Some(5),
            ..ConnectionArgs::default()
        };
        let (edges, info) = slice_window(kept, 3, &back).unwrap();
        assert_eq!(edges, [(3, cursor(3)), (4, cursor(4))]);
        assert!(!info.has_previous_page);
    }

    fn args(first: Option<i32>, after: Option<usize>, last: Option<i32>) -> ConnectionArgs {
        ConnectionArgs {
            after: after.map(cursor),
            first,
            before: None,
            last,
        }
    }

    #[test]
    fn first_and_after_page_forward() {
        let (edges, info) = slice((0..5).collect(), &args(Some(2), None, None)).unwrap();
        assert_eq!(edges.iter().map(|e| e.0).collect::<Vec<_>>(), [0, 1]);
        assert!(info.has_next_page && !info.has_previous_page);
        let (edges, info) = slice((0..5).collect(), &args(Some(2), Some(3), None)).unwrap();
        assert_eq!(edges.iter().map(|e| e.0).collect::<Vec<_>>(), [4]);
        assert!(!info.has_next_page);
    }

    #[test]
    fn last_pages_backward_and_bad_cursor_fails() {
        let (edges, info) = slice((0..5).collect(), &args(None, None, Some(2))).unwrap();
        assert_eq!(edges.iter().map(|e| e.0).collect::<Vec<_>>(), [3, 4]);
        assert!(info.has_previous_page);
        let bad = ConnectionArgs {
            after: Some("nope".into()),
            ..ConnectionArgs::default()
        };
        assert!(slice(vec![1], &bad).is_err());
    }

    fn raw_cursor(offset: &str) -> String {
        STANDARD.encode(format!("{PREFIX}{offset}"))
    }

    #[test]
    fn extreme_cursors_and_sizes_are_clamped() {
        for offset in [i64::MAX, i64::MIN, -2, 5, 6, 1_000] {
            for (first, last) in [
                (Some(i32::MAX), None),
                (None, Some(i32::MAX)),
                (Some(i32::MAX), Some(i32::MAX)),
                (Some(0), Some(0)),
                (None, None),
            ] {
                let both = ConnectionArgs {
                    after: Some(raw_cursor(&offset.to_string())),
                    first,
                    before: Some(raw_cursor(&offset.to_string())),
                    last,
                };
                let (edges, _) = slice((0..5).collect::<Vec<i32>>(), &both).unwrap();
                assert!(edges.is_empty(), "{offset} {first:?} {last:?}");
                let after = ConnectionArgs {
                    after: Some(raw_cursor(&offset.to_string())),
                    first,
                    before: None,
                    last,
                };
                slice((0..5).collect::<Vec<i32>>(), &after).unwrap();
                let before = ConnectionArgs {
                    after: None,
                    first,
                    before: Some(raw_cursor(&offset.to_string())),
                    last,
                };
                slice((0..5).collect::<Vec<i32>>(), &before).unwrap();
            }
        }
        let huge_after = ConnectionArgs {
            after: Some(raw_cursor(&i64::MAX.to_string())),
            first: Some(i32::MAX),
            ..ConnectionArgs::default()
        };
        let (edges, info) = slice((0..5).collect::<Vec<i32>>(), &huge_after).unwrap();
        assert!(edges.is_empty() && !info.has_next_page);
        let negative_after = ConnectionArgs {
            after: Some(raw_cursor(&i64::MIN.to_string())),
            first: Some(i32::MAX),
            ..ConnectionArgs::default()
        };
        let (edges, _) = slice((0..5).collect::<Vec<i32>>(), &negative_after).unwrap();
        assert_eq!(edges.len(), 5);
    }
}
