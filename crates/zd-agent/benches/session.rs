//! Client costs: DATA frame routing, pipelined sendMessage acks, sequential round trips.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::{SinkExt, StreamExt};
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use zd_agent::{AgentSession, Config, OutgoingMessage, StaticToken};

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn unlimited(endpoint: &str) -> Config {
    let mut config = Config::with_endpoint(endpoint.parse().unwrap());
    // Benchmarks measure the protocol work, not the 100/s ceiling.
    config.requests_per_second = None;
    // Nor the start limits this process shares by endpoint and token.
    config.start_limiter = Some(Arc::new(zd_agent::rate_limit::StartLimiter::default()));
    config.subscription_buffer = 8192;
    config
}

async fn session(endpoint: &str) -> AgentSession {
    let creds = Arc::new(StaticToken::bearer("bench").unwrap());
    let (session, driver) = AgentSession::connect(unlimited(endpoint), creds)
        .await
        .unwrap();
    tokio::spawn(driver);
    session
}

fn data_routing(c: &mut Criterion) {
    let rt = runtime();
    let (fake, session) = rt.block_on(async {
        let fake = support::start().await;
        let s = session(&fake.endpoint).await;
        (fake, s)
    });
    let mut messages = rt.block_on(session.messages()).unwrap();
    let mut next_id = 0u64;
    c.bench_function("data_frame_to_typed_subscriber", |b| {
        b.iter_custom(|iters| {
            let frames: Vec<String> = (0..iters)
                .map(|i| support::data_frame(next_id + i))
                .collect();
            next_id += iters;
            let blast = fake.blast.lock().unwrap().clone().unwrap();
            rt.block_on(async {
                let start = Instant::now();
                blast.send(frames).unwrap();
                for _ in 0..iters {
                    messages.next().await.unwrap().unwrap();
                }
                start.elapsed()
            })
        });
    });
}

/// CPU time this thread has run, from the scheduler's own accounting (nanoseconds).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    Duration::from_nanos(stat.split_whitespace().next().unwrap().parse().unwrap())
}

/// The same routing, timed as the client's CPU: the server runs on its own runtime thread and
/// the client (driver and subscriber) on a current-thread runtime, so the figure is the CPU that
/// thread spent reading, decoding, routing and delivering each frame to the Stream, without the
/// server's share of two shared cores in it.
fn data_routing_client_cpu(c: &mut Criterion) {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fake = server_rt.block_on(support::start());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let session = rt.block_on(session(&fake.endpoint));
    let mut messages = rt.block_on(session.messages()).unwrap();
    let mut next_id = 0u64;
    c.bench_function("data_frame_to_typed_subscriber_client_cpu", |b| {
        b.iter_custom(|iters| {
            let frames: Vec<String> = (0..iters)
                .map(|i| support::data_frame(next_id + i))
                .collect();
            next_id += iters;
            let blast = fake.blast.lock().unwrap().clone().unwrap();
            rt.block_on(async {
                let start = thread_cpu();
                blast.send(frames).unwrap();
                for _ in 0..iters {
                    messages.next().await.unwrap().unwrap();
                }
                thread_cpu() - start
            })
        });
    });
    drop(server_rt);
}

/// The echo bot's loop, one visitor message at a time: DATA(message) read, decoded and handed to
/// the Stream, `sendMessage` of its echo sent and its answer read. Timed as the client thread's
/// CPU (the server runs on its own runtime thread).
fn echo_client_cpu(c: &mut Criterion) {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fake = server_rt.block_on(support::start());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let session = rt.block_on(session(&fake.endpoint));
    let mut messages = rt.block_on(session.messages()).unwrap();
    let mut next_id = 0u64;
    c.bench_function("echo_message_client_cpu", |b| {
        b.iter_custom(|iters| {
            let blast = fake.blast.lock().unwrap().clone().unwrap();
            next_id += 1;
            rt.block_on(async {
                let start = thread_cpu();
                // One kick-off message; the server answers each echo that counts down to zero
                // with the next one.
                blast.send(vec![support::data_frame(next_id)]).unwrap();
                for left in (0..iters).rev() {
                    let m = messages.next().await.unwrap().unwrap();
                    session
                        .send_message(OutgoingMessage::new(m.channel.id, format!("echo: {left}")))
                        .await
                        .unwrap();
                }
                thread_cpu() - start
            })
        });
    });
    drop(server_rt);
}

fn pipelined_acks(c: &mut Criterion) {
    let rt = runtime();
    let (emu, session) = rt.block_on(async {
        let mut limits = zd_emulator::Limits::documented();
        limits.requests_per_second = None;
        let emu = zd_emulator::Emulator::builder()
            .limits(limits)
            .start()
            .await
            .unwrap();
        let token = emu.account().agents[0].access_token.clone();
        let creds = Arc::new(StaticToken::bearer(token).unwrap());
        let (session, driver) = AgentSession::connect(unlimited(&emu.graphql_url()), creds)
            .await
            .unwrap();
        tokio::spawn(driver);
        (emu, session)
    });
    let channel = emu
        .control()
        .visitor_arrive(zd_emulator::state::Arrival::default())
        .unwrap()
        .channel_id;
    let mut group = c.benchmark_group("emulator");
    group.bench_function("pipelined_send_message_ack", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                let sends = (0..iters).map(|i| {
                    let s = session.clone();
                    let ch = channel.clone();
                    async move {
                        s.send_message(OutgoingMessage::new(ch, format!("m{i}")))
                            .await
                            .unwrap()
                    }
                });
                futures_util::stream::iter(sends)
                    .buffer_unordered(256)
                    .for_each(|_| async {})
                    .await;
                start.elapsed()
            })
        });
    });
    group.finish();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn round_trips(c: &mut Criterion) {
    let rt = runtime();
    let fake = rt.block_on(support::start());
    let session = rt.block_on(session(&fake.endpoint));
    let (mut bare, _) = rt
        .block_on(tokio_tungstenite::connect_async(fake.ws_url.as_str()))
        .unwrap();
    let agent_rt = || {
        let s = session.clone();
        async move {
            s.send_message(OutgoingMessage::new("c1", "hi").msg_id("fixed"))
                .await
                .unwrap()
        }
    };
    // Percentiles from one long sequential run of each, measured side by side.
    const N: usize = 5000;
    let (mut agent, mut echo) = (Vec::with_capacity(N), Vec::with_capacity(N));
    rt.block_on(async {
        for _ in 0..N {
            let t = Instant::now();
            agent_rt().await;
            agent.push(t.elapsed());
            let t = Instant::now();
            bare.send(WsMessage::text("echo:{\"id\":1,\"payload\":{}}"))
                .await
                .unwrap();
            bare.next().await.unwrap().unwrap();
            echo.push(t.elapsed());
        }
    });
    agent.sort();
    echo.sort();
    eprintln!(
        "round trip over loopback, {N} sequential: zd-agent sendMessage p50 {:?} p99 {:?}; bare tokio-tungstenite echo p50 {:?} p99 {:?}",
        percentile(&agent, 0.5),
        percentile(&agent, 0.99),
        percentile(&echo, 0.5),
        percentile(&echo, 0.99)
    );
    let mut group = c.benchmark_group("round_trip");
    group.bench_function("zd_agent_send_message", |b| b.to_async(&rt).iter(agent_rt));
    group.bench_function("bare_tungstenite_echo", |b| {
        b.iter(|| {
            rt.block_on(async {
                bare.send(WsMessage::text("echo:{\"id\":1,\"payload\":{}}"))
                    .await
                    .unwrap();
                bare.next().await.unwrap().unwrap();
            })
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    data_routing,
    data_routing_client_cpu,
    echo_client_cpu,
    pipelined_acks,
    round_trips
);
criterion_main!(benches);
