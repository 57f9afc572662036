//! REST requests per second against the Sunshine service over loopback with keep-alive:
//! `GetConversation` and `PostMessage` from 16 concurrent connections.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "test and bench code"
)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use zd_emulator::sunshine::{self as sun, SunshineConfig, SunshineServer};

const CONNECTIONS: u64 = 16;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

async fn send(
    client: &HttpClient,
    method: &str,
    url: &str,
    auth: &str,
    body: Option<&Value>,
) -> (u16, Bytes) {
    let mut req = http::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", auth);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let res = client
        .request(req.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.into_body().collect().await.unwrap().to_bytes())
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = SunshineConfig::default().message_limit(usize::MAX);
    let server = rt.block_on(SunshineServer::start(config)).unwrap();
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            sun::DEMO_APP_KEY_ID,
            sun::DEMO_APP_KEY_SECRET
        ))
    );
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CONNECTIONS as usize)
        .build(HttpConnector::new());
    let base = format!("{}/v2/apps/{}", server.base_url(), sun::DEMO_APP_ID);
    let conversation = rt.block_on(async {
        let (st, body) = send(
            &client,
            "POST",
            &format!("{base}/conversations"),
            &auth,
            Some(&json!({"type":"sdkGroup"})),
        )
        .await;
        assert_eq!(st, 201);
        let v: Value = serde_json::from_slice(&body).unwrap();
        v["conversation"]["id"].as_str().unwrap().to_owned()
    });
    let get_url = format!("{base}/conversations/{conversation}");
    let post_url = format!("{get_url}/messages");
    let message = json!({"author":{"type":"business"},"content":{"type":"text","text":"hello"}});

    let mut group = c.benchmark_group("sunshine_rest");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    for (name, method, url, body) in [
        ("get_conversation", "GET", get_url.clone(), None),
        (
            "post_message",
            "POST",
            post_url.clone(),
            Some(message.clone()),
        ),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let client = client.clone();
                let auth = auth.clone();
                let url = url.clone();
                let body = body.clone();
                async move {
                    let start = Instant::now();
                    let per = iters.div_ceil(CONNECTIONS);
                    let tasks: Vec<_> = (0..CONNECTIONS)
                        .map(|_| {
                            let (client, auth, url, body) =
                                (client.clone(), auth.clone(), url.clone(), body.clone());
                            tokio::spawn(async move {
                                for _ in 0..per {
                                    let (st, _) =
                                        send(&client, method, &url, &auth, body.as_ref()).await;
                                    assert!(st == 200 || st == 201, "{st}");
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                    let elapsed = start.elapsed();
                    // Scale to exactly `iters` requests.
                    Duration::from_secs_f64(
                        elapsed.as_secs_f64() * iters as f64 / (per * CONNECTIONS) as f64,
                    )
                }
            });
        });
    }
    group.finish();
    drop(server);
}

criterion_group!(benches, bench);
criterion_main!(benches);
