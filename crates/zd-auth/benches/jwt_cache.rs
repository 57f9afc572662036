//! The cached JWT path against signing a fresh JWT each time.
//!
//! `cached_authorization` is what a Sunshine client pays per request with
//! `JwtCredentials`; `fresh_sign` is what it would pay if it signed per request.

// Bench harness code: a failure here should abort the run; criterion's macros are undocumented.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use zd_auth::Credentials;
use zd_auth::sunshine::{ApiKey, JwtCredentials, Scope, sign_jwt};

fn key() -> ApiKey {
    ApiKey::new(
        "app_5963ceb97cde542d000dbdb1",
        "JWSooRf7mjKYQereu5ueIjxKdclNs7cdCDaT7bGHEitHFUbNxFb8C0Cwi0s7SG0vhjMDef_w5d",
    )
    .unwrap()
}

fn jwt(c: &mut Criterion) {
    let key = key();
    let creds = JwtCredentials::new(&key, Scope::App)
        .unwrap()
        .with_expiry(Duration::from_secs(3600))
        .unwrap();
    let mut cx = Context::from_waker(Waker::noop());

    let mut group = c.benchmark_group("sunshine_jwt");
    group.bench_function("cached_authorization", |b| {
        b.iter(|| {
            // The future is ready on first poll: no executor needed.
            let mut fut = creds.authorization();
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(header) => black_box(header.unwrap()),
                Poll::Pending => unreachable!("cached JWT credentials never wait"),
            }
        });
    });
    group.bench_function("fresh_sign", |b| {
        b.iter(|| black_box(sign_jwt(black_box(&key), Scope::App, None).unwrap()));
    });
    group.finish();
    // Construction and with_expiry signed; the millions of cached calls did not.
    assert_eq!(creds.signatures(), 2, "the cached path signed");
}

criterion_group!(benches, jwt);
criterion_main!(benches);
