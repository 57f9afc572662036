//! A credentials source whose token changes each time it is invalidated, as a refreshing
//! source's would, and which can be made to fail: `Bearer t1`, then `Bearer t2` after the
//! first [`Credentials::invalidate`], and so on. It records which token each refusal named,
//! and, as a refreshing source does, ignores the refusal of a token already replaced.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use zd_auth::BoxFuture;
use zd_metrics::{Credentials, Secret, StaticToken};

#[derive(Debug, Default)]
pub(crate) struct Rotating {
    invalidated: AtomicUsize,
    failing: AtomicBool,
    rejected: Mutex<Vec<String>>,
}

impl Rotating {
    /// How many times the client said the token was refused.
    pub(crate) fn invalidated(&self) -> usize {
        self.invalidated.load(Ordering::SeqCst)
    }

    /// The tokens the client named as refused, in order.
    pub(crate) fn rejected(&self) -> Vec<String> {
        self.rejected.lock().unwrap().clone()
    }

    fn current(&self) -> String {
        format!("Bearer t{}", self.invalidated() + 1)
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
            Ok(Secret::new(self.current()))
        };
        Box::pin(async move { result })
    }

    fn invalidate(&self) {
        self.invalidated.fetch_add(1, Ordering::SeqCst);
    }

    fn invalidate_if_current(&self, rejected: &Secret) {
        let rejected = rejected.expose_secret().to_owned();
        if rejected == self.current() {
            self.invalidate();
        }
        self.rejected.lock().unwrap().push(rejected);
    }
}
