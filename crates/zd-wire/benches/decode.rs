//! Decoding and classifying a real `message` DATA frame (477 bytes) and a 510-byte variant of it
//! with a longer message, against two serde_json baselines; and finding an answer's request id
//! and `data` the two ways a client can.
//!
//! Run: `cargo bench -p zd-wire --bench decode -- --warm-up-time 1 --measurement-time 3`

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::{collections::HashMap, hint::black_box};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::Deserialize;
use serde_json::value::RawValue;
use zd_wire::chat::ServerFrame;

/// The real frame of protocol-notes.md F.1 in its DATA wrapper.
const FRAME: &str = include_str!("../../../fixtures/chat/server/data_message_f1.json");

/// The real frame's message text, and a longer one that brings the frame to 510 bytes (the
/// size the performance target names) without changing its shape.
const REAL_CONTENT: &str = r#""content":"hi""#;
const LONGER_CONTENT: &str = r#""content":"Hi, my order #45213 has not arrived""#;

/// The floor: a borrowed decode of exactly the DATA shape, with no classification.
#[derive(Deserialize)]
struct Bare<'a> {
    sig: &'a str,
    subscription_id: &'a str,
    #[serde(borrow)]
    payload: &'a RawValue,
}

fn bench(c: &mut Criterion) {
    let real = FRAME.trim_end();
    assert_eq!(real.matches(REAL_CONTENT).count(), 1);
    let longer = real.replacen(REAL_CONTENT, LONGER_CONTENT, 1);
    assert_eq!(longer.len(), 510);
    for frame in [real, longer.as_str()] {
        bench_frame(c, frame);
    }
    bench_answer(c, ANSWER.trim_end());
}

/// An answer with a real shape (`departments`, two edges), as the service numbers them.
const ANSWER: &str = include_str!("../../../fixtures/chat/server/response_departments.json");

/// What a client needs of an answer: the request id to match, and the `data` text to hand on.
fn bench_answer(c: &mut Criterion, frame: &str) {
    let mut group = c.benchmark_group(format!("chat_answer_frame_{}B", frame.len()));
    group.throughput(Throughput::Elements(1));
    group.bench_function("zd_wire_classify", |b| {
        b.iter(|| match ServerFrame::decode(black_box(frame)) {
            Ok(ServerFrame::Response(resp)) => {
                black_box((resp.id.as_u64(), resp.payload.data.map(|d| d.get().len())))
            }
            _ => black_box((None, None)),
        });
    });
    // The client's hot path: the outline only, `data` left to the caller's typed parse.
    let limits = zd_wire::DecodeLimits::new();
    group.bench_function("zd_wire_split_response", |b| {
        b.iter(|| {
            let parts = zd_wire::chat::split_response(black_box(frame), &limits);
            black_box(parts.map(|p| (p.id, p.data.len())))
        });
    });
    group.finish();
}

fn bench_frame(c: &mut Criterion, frame: &str) {
    // Ten live subscriptions, the per-session maximum.
    let routes: HashMap<String, usize> = (0..9)
        .map(|i| (format!("sub{i:08}"), i))
        .chain([("a1gf13bjz13".to_owned(), 9)])
        .collect();

    let mut group = c.benchmark_group(format!("chat_data_frame_{}B", frame.len()));
    group.throughput(Throughput::Elements(1));
    group.bench_function("zd_wire_classify_and_route", |b| {
        b.iter(|| {
            let frame = ServerFrame::decode(black_box(frame));
            let routed = match &frame {
                Ok(ServerFrame::Data(data)) => routes
                    .get(data.subscription_id.as_ref())
                    .map(|slot| (*slot, data.payload.get().len())),
                _ => None,
            };
            black_box(routed)
        });
    });
    // The client's hot path: the payload's outline only, its parse left to the subscriber.
    let limits = zd_wire::DecodeLimits::new();
    group.bench_function("zd_wire_split_data_and_route", |b| {
        b.iter(|| {
            let routed = zd_wire::chat::split_data(black_box(frame), &limits).and_then(|data| {
                routes
                    .get(data.subscription_id)
                    .map(|slot| (*slot, data.payload.len()))
            });
            black_box(routed)
        });
    });
    group.bench_function("zd_wire_classify", |b| {
        b.iter(|| {
            let frame = ServerFrame::decode(black_box(frame));
            black_box(matches!(frame, Ok(ServerFrame::Data(_))))
        });
    });
    // A session holds at most 10 subscriptions, so a linear scan of short ids is a fair router.
    let table: Vec<(String, usize)> = routes.iter().map(|(k, v)| (k.clone(), *v)).collect();
    group.bench_function("zd_wire_classify_and_route_linear", |b| {
        b.iter(|| {
            let frame = ServerFrame::decode(black_box(frame));
            let routed = match &frame {
                Ok(ServerFrame::Data(data)) => table
                    .iter()
                    .find(|(id, _)| *id == data.subscription_id)
                    .map(|(_, slot)| (*slot, data.payload.get().len())),
                _ => None,
            };
            black_box(routed)
        });
    });
    group.bench_function("baseline_borrowed_struct", |b| {
        b.iter(|| {
            let bare: Result<Bare<'_>, _> = serde_json::from_str(black_box(frame));
            black_box(bare.map(|b| (b.sig.len(), b.subscription_id.len(), b.payload.get().len())))
        });
    });
    group.bench_function("baseline_value", |b| {
        b.iter(|| black_box(serde_json::from_str::<serde_json::Value>(black_box(frame))));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
