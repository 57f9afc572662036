//! A credentials source whose token changes each time it is invalidated, as a refreshing
//! source's would, and which can be made to fail: `Bearer t1`, then `Bearer t2` after the
//! first [`Credentials::invalidate`], and so on.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use zd_auth::BoxFuture;
use zd_metrics::{Credentials, Secret, StaticToken};

#[derive(Debug, Default)]
pub(crate) struct Rotating {
    invalidated: AtomicUsize,
    failing: AtomicBool,
}

impl Rotating {
    /// How many times the client said the token was refused.
    pub(crate) fn invalidated(&self) -> usize {
        self.invalidated.load(Ordering::SeqCst)
    }

    /// From now on, producing a value fails as an empty secret does: an error no retry fixes.
    pub(crate) fn fail(&self) {
        self.failing.store(true, Ordering::SeqCst);
    }
}

impl Credentials for Rotating {
    fn authorization(&self) -> BoxFuture<'_, Result<Secret, zd_auth::Error>> {
        let result = if self.failing.load(Ordering::SeqCst) {
            StaticToken::bearer("").map(|_| Secret::new(""))
        } else {
            Ok(Secret::new(format!("Bearer t{}", self.invalidated() + 1)))
        };
        Box::pin(async move { result })
    }

    fn invalidate(&self) {
        self.invalidated.fetch_add(1, Ordering::SeqCst);
    }
}
