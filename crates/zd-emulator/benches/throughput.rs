//! Emulator throughput with plain tokio-tungstenite clients over loopback:
//! - `data_frames`: subscription DATA frames published (10 agents share one `message` query;
//!   each visitor message fans out to all of them);
//! - `mutation_round_trips`: `sendMessage` request/response pairs, 8 sessions pipelining.

#![allow(missing_docs, reason = "criterion_main generates an undocumented main")]
#![allow(clippy::unwrap_used, reason = "bench setup")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use zd_emulator::account::{AgentConfig, DepartmentConfig};
use zd_emulator::state::{AgentStatus, Arrival, DepartmentStatus};
use zd_emulator::{AccountConfig, Emulator, Limits};

const AGENTS: usize = 10;
const MESSAGES_PER_ITER: usize = 100;
const SESSIONS: usize = 8;
const REQUESTS_PER_ITER: usize = 256;

fn account(agents: usize) -> AccountConfig {
    AccountConfig {
        account_id: 1,
        departments: vec![DepartmentConfig {
            name: "Bench".into(),
            status: DepartmentStatus::Online,
        }],
        agents: (0..agents)
            .map(|i| AgentConfig {
                name: format!("agent{i}"),
                display_name: None,
                access_token: format!("token-{i}").into(),
                departments: vec!["Bench".into()],
                status: AgentStatus::Online,
            })
            .collect(),
        routing: zd_emulator::account::Routing::Broadcast,
    }
}

async fn start(agents: usize) -> Emulator {
    let limits = Limits {
        requests_per_second: None,
        start_session_interval: Duration::ZERO,
        ..Limits::documented()
    };
    Emulator::builder()
        .account(account(agents))
        .limits(limits)
        .start()
        .await
        .unwrap()
}

async fn websocket_url(emu: &Emulator, token: &str) -> String {
    use http_body_util::{BodyExt as _, Full};
    use hyper_util::client::legacy::Client;
    let client =
        Client::builder(hyper_util::rt::TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let body = json!({ "query": format!("mutation {{ startAgentSession(access_token: \"{token}\") {{ websocket_url }} }}") });
    let req = http::Request::post(emu.graphql_url())
        .body(Full::new(bytes::Bytes::from(body.to_string())))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["data"]["startAgentSession"]["websocket_url"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn data_frames(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (emu, received, channel) = rt.block_on(async {
        let emu = start(AGENTS).await;
        let received = Arc::new(Semaphore::new(0));
        for i in 0..AGENTS {
            let url = websocket_url(&emu, &format!("token-{i}")).await;
            let (mut ws, _) = connect_async(url.as_str()).await.unwrap();
            let sub = json!({ "type": "request", "id": 1, "payload": { "query":
                "subscription { message { node { id content timestamp channel { id } from { __typename display_name } } } }" } });
            ws.send(Message::text(sub.to_string())).await.unwrap();
            let ack = ws.next().await.unwrap().unwrap();
            assert!(ack.to_text().unwrap().contains("subscription_id"));
            let received = received.clone();
            tokio::spawn(async move {
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Text(t) = m
                        && t.as_str().starts_with("{\"sig\":\"DATA\"")
                    {
                        received.add_permits(1);
                    }
                }
            });
        }
        let channel = emu
            .control()
            .visitor_arrive(Arrival {
                department: Some("Bench".into()),
                ..Arrival::default()
            })
            .unwrap()
            .channel_id;
        (emu, received, channel)
    });
    let mut group = c.benchmark_group("emulator");
    group.throughput(Throughput::Elements((MESSAGES_PER_ITER * AGENTS) as u64));
    group.bench_function("data_frames", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let control = emu.control().clone();
            let received = received.clone();
            let channel = channel.clone();
            async move {
                let start = Instant::now();
                for _ in 0..iters {
                    for _ in 0..MESSAGES_PER_ITER {
                        control
                            .visitor_message(&channel, "hello from the bench")
                            .unwrap();
                    }
                    let all = u32::try_from(MESSAGES_PER_ITER * AGENTS).unwrap();
                    received.acquire_many(all).await.unwrap().forget();
                }
                start.elapsed()
            }
        });
    });
    group.finish();
    drop(emu);
}

fn mutation_round_trips(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (emu, clients) = rt.block_on(async {
        let emu = start(SESSIONS).await;
        let mut clients = Vec::new();
        for i in 0..SESSIONS {
            let channel = emu
                .control()
                .visitor_arrive(Arrival {
                    department: Some("Bench".into()),
                    ..Arrival::default()
                })
                .unwrap()
                .channel_id;
            let url = websocket_url(&emu, &format!("token-{i}")).await;
            let (ws, _) = connect_async(url.as_str()).await.unwrap();
            let frame = json!({ "type": "request", "id": i, "payload": {
                "query": "mutation Send($c: ID!, $m: String!) { sendMessage(channel_id: $c, msg: $m) { success } }",
                "variables": { "c": channel, "m": "bench" } } })
            .to_string();
            clients.push(Arc::new(tokio::sync::Mutex::new((ws, frame))));
        }
        (emu, clients)
    });
    let mut group = c.benchmark_group("emulator");
    group.throughput(Throughput::Elements((SESSIONS * REQUESTS_PER_ITER) as u64));
    group.bench_function("mutation_round_trips", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let clients = clients.clone();
            async move {
                let start = Instant::now();
                for _ in 0..iters {
                    let tasks: Vec<_> = clients
                        .iter()
                        .cloned()
                        .map(|client| {
                            tokio::spawn(async move {
                                let mut guard = client.lock().await;
                                let (ws, frame) = &mut *guard;
                                let frame = frame.clone();
                                let (mut tx, mut rx) = ws.split();
                                let send = async {
                                    for _ in 0..REQUESTS_PER_ITER {
                                        tx.feed(Message::text(frame.clone())).await.unwrap();
                                    }
                                    tx.flush().await.unwrap();
                                };
                                let recv = async {
                                    let mut got = 0;
                                    while got < REQUESTS_PER_ITER {
                                        match rx.next().await {
                                            Some(Ok(Message::Text(t))) => {
                                                assert!(
                                                    t.as_str().contains("\"success\":true"),
                                                    "{t}"
                                                );
                                                got += 1;
                                            }
                                            Some(Ok(_)) => {}
                                            other => panic!("{other:?}"),
                                        }
                                    }
                                };
                                tokio::join!(send, recv);
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                }
                start.elapsed()
            }
        });
    });
    group.finish();
    drop(emu);
}

criterion_group!(benches, data_frames, mutation_round_trips);
criterion_main!(benches);
