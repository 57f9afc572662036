//! Cold start of `zd --help` and `zd --version`: a fresh process each iteration, so the figure
//! includes exec, dynamic linking, argument parsing and printing (target: at most 20 ms).

#![allow(missing_docs)]

use std::process::{Command, Stdio};

use criterion::{Criterion, criterion_group, criterion_main};

fn run(args: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_zd"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(status.is_ok_and(|s| s.success()), "zd {args:?} failed");
}

fn cold_start(c: &mut Criterion) {
    c.bench_function("zd --help", |b| b.iter(|| run(&["--help"])));
    c.bench_function("zd demo --help", |b| b.iter(|| run(&["demo", "--help"])));
    c.bench_function("zd --version", |b| b.iter(|| run(&["--version"])));
}

criterion_group!(benches, cold_start);
criterion_main!(benches);
