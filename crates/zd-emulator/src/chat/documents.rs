//! Parsed query documents by text, so a repeated query is parsed once.
//!
//! Query texts come from clients and may be up to a frame long (256 KiB), so the cache keeps
//! only short texts (clients reuse a handful of short queries) and bounds its total size: when
//! a new entry would pass either bound, it starts over.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use parking_lot::Mutex;

use super::expansion::{MAX_EXPANDED_FIELDS, expanded_fields};
use super::spread_depth::nesting_through_spreads;
use zd_wire::chat::{MAX_BRACKET_NESTING, nests_deeper_than};

/// Longest query text kept; longer ones are parsed every time.
pub(crate) const MAX_CACHED_TEXT: usize = 8 * 1024;
/// Total bytes of query text kept (a parsed document is a small multiple of its text).
pub(crate) const MAX_CACHED_BYTES: usize = 512 * 1024;
/// Documents kept.
const MAX_DOCUMENTS: usize = 1024;
/// Fragments a document may define (an IDE's introspection query defines four).
pub(crate) const MAX_FRAGMENTS: usize = 256;

/// Why a query text cannot be executed.
#[derive(Debug)]
pub(crate) enum DocumentError {
    /// Not GraphQL.
    Parse(async_graphql::parser::Error),
    /// Too many fields once its fragments are spread out.
    TooLarge(usize),
    /// Brackets nested deeper than any real query (see `zd_wire::chat::nests_deeper_than`).
    TooDeep,
    /// More fragments than any real query defines.
    TooManyFragments(usize),
    /// Nested deeper than any real query once its fragments are spread out.
    SpreadTooDeep(usize),
    /// Fragments that spread each other in a cycle.
    FragmentCycle,
}

impl std::fmt::Display for DocumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Parse(e) => write!(f, "{e}"),
            Self::TooLarge(fields) => write!(
                f,
                "the query selects {fields} fields once its fragments are spread out; the \
                 emulator accepts at most {MAX_EXPANDED_FIELDS}"
            ),
            Self::SpreadTooDeep(depth) => write!(
                f,
                "the query nests {depth} levels deep once its fragments are spread out; the \
                 emulator accepts at most {MAX_BRACKET_NESTING}"
            ),
            Self::FragmentCycle => write!(f, "the query's fragments spread each other in a cycle"),
            Self::TooManyFragments(fragments) => write!(
                f,
                "the query defines {fragments} fragments; the emulator accepts at most \
                 {MAX_FRAGMENTS}"
            ),
            Self::TooDeep => write!(
                f,
                "the query nests brackets more than {MAX_BRACKET_NESTING} levels deep; the emulator \
                 accepts at most {MAX_BRACKET_NESTING}"
            ),
        }
    }
}

/// The cache shared by every socket of an emulator.
#[derive(Debug, Default)]
pub(crate) struct DocumentCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    docs: HashMap<String, Arc<ExecutableDocument>>,
    bytes: usize,
}

impl DocumentCache {
    /// The parsed `query`, from the cache when it was seen before; a document too large once
    /// expanded is refused (and never cached).
    pub(crate) fn parse(&self, query: &str) -> Result<ExecutableDocument, DocumentError> {
        let cached = self.inner.lock().docs.get(query).cloned();
        if let Some(doc) = cached {
            return Ok((*doc).clone());
        }
        if nests_deeper_than(query, MAX_BRACKET_NESTING) {
            return Err(DocumentError::TooDeep);
        }
        let doc = async_graphql::parser::parse_query(query).map_err(DocumentError::Parse)?;
        // Spreads are followed recursively, here and by the engine's validation: a chain of
        // fifty thousand fragments, each spreading the next, fits in a request and overflows
        // the stack.
        if doc.fragments.len() > MAX_FRAGMENTS {
            return Err(DocumentError::TooManyFragments(doc.fragments.len()));
        }
        // Each fragment's own text is within the bracket bound; a chain of them is not.
        match nesting_through_spreads(&doc) {
            Some(depth) if depth > MAX_BRACKET_NESTING => {
                return Err(DocumentError::SpreadTooDeep(depth));
            }
            Some(_) => {}
            None => return Err(DocumentError::FragmentCycle),
        }
        let fields = expanded_fields(&doc);
        if fields > MAX_EXPANDED_FIELDS {
            return Err(DocumentError::TooLarge(fields));
        }
        if query.len() <= MAX_CACHED_TEXT {
            let mut inner = self.inner.lock();
            if inner.docs.len() >= MAX_DOCUMENTS
                || inner.bytes.saturating_add(query.len()) > MAX_CACHED_BYTES
            {
                inner.docs.clear();
                inner.bytes = 0;
            }
            if inner
                .docs
                .insert(query.to_owned(), Arc::new(doc.clone()))
                .is_none()
            {
                inner.bytes = inner.bytes.saturating_add(query.len());
            }
        }
        Ok(doc)
    }

    /// Bytes of query text held.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Documents held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().docs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid query of exactly `len` bytes, distinct per `n`.
    fn query(n: usize, len: usize) -> String {
        let head = format!("query q{n} {{ agents {{ edges {{ node {{ id }} }} }} }}");
        format!("{head}{}", " ".repeat(len - head.len()))
    }

    #[test]
    fn long_texts_are_parsed_but_not_kept() {
        let cache = DocumentCache::default();
        let long = query(0, MAX_CACHED_TEXT + 1);
        cache.parse(&long).unwrap();
        cache.parse(&long).unwrap();
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
        let short = query(1, 100);
        cache.parse(&short).unwrap();
        cache.parse(&short).unwrap();
        assert_eq!((cache.len(), cache.bytes()), (1, 100));
    }

    #[test]
    fn total_bytes_stay_bounded() {
        let cache = DocumentCache::default();
        for n in 0..4 * MAX_CACHED_BYTES / MAX_CACHED_TEXT {
            cache.parse(&query(n, MAX_CACHED_TEXT)).unwrap();
            assert!(cache.bytes() <= MAX_CACHED_BYTES);
            assert!(cache.len() <= MAX_CACHED_BYTES / MAX_CACHED_TEXT);
        }
        assert!(cache.len() > 0);
        for n in 0..2 * MAX_DOCUMENTS {
            cache.parse(&query(n, 64)).unwrap();
            assert!(cache.len() <= MAX_DOCUMENTS);
        }
    }
}
