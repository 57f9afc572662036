//! Updates applied to the live snapshot per second.
//!
//! `apply`: typed values into a snapshot behind a mutex (what the feed driver does per
//! value, under the feed's lock). `decode_and_apply`: the whole path from a received
//! text frame (zd-wire decode, then apply). Each iteration applies one value that changes.

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Mutex;
use zd_metrics::{Metric, Series, Snapshot, Window};
use zd_wire::realtime::ServerFrame;

/// 3 scopes x every documented series (both windows of the windowed ones).
fn tracked() -> (Snapshot, Vec<Series>) {
    let mut snapshot = Snapshot::default();
    let mut all = Vec::new();
    for dept in [None, Some(5), Some(7)] {
        for metric in Metric::KNOWN {
            let windows: Vec<Option<Window>> = if metric.is_windowed() {
                Window::KNOWN.iter().copied().map(Some).collect()
            } else {
                vec![None]
            };
            for window in windows {
                let mut series = Series::new(metric.clone(), window, None).unwrap();
                if let Some(d) = dept {
                    series = series.department(d);
                }
                snapshot.track(&series);
                all.push(series);
            }
        }
    }
    (snapshot, all)
}

fn apply(c: &mut Criterion) {
    let (snapshot, series) = tracked();
    let shared = Mutex::new(snapshot);
    let mut group = c.benchmark_group("snapshot");
    group.throughput(Throughput::Elements(1));
    let mut i: usize = 0;
    group.bench_function("apply", |b| {
        b.iter(|| {
            let s = &series[i % series.len()];
            let value = Some((i / series.len()) as i64);
            i += 1;
            let changed =
                shared
                    .lock()
                    .unwrap()
                    .apply(s.department_id(), s.metric_key(), s.window(), value);
            black_box(changed)
        });
    });
    black_box(shared.lock().unwrap().len());

    let frames: Vec<String> = (0..64)
        .map(|n| {
            format!(
                r#"{{"content":{{"topic":"chats","data":{{"incoming_chats":{n}}},"type":"update","department_id":5}},"status_code":200}}"#
            )
        })
        .collect();
    let mut j: usize = 0;
    group.bench_function("decode_and_apply", |b| {
        b.iter(|| {
            let text = &frames[j % frames.len()];
            j += 1;
            let Ok(ServerFrame::Update(update)) = ServerFrame::decode(text) else {
                return false;
            };
            shared.lock().unwrap().apply_update(&update)
        });
    });
    group.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
