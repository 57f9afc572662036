//! Decoding a 100-message ListMessages page, and requests per second over loopback with
//! keep-alive (one connection, sequential) and with 16 requests in flight.

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use zd_auth::StaticToken;
use zd_sunshine::{Client, Region, RetryPolicy, models, operations};

fn page_of_100() -> Vec<u8> {
    let messages: Vec<_> = (0..100)
        .map(|i| {
            let content = match i % 4 {
                0 => json!({"type": "text", "text": format!("Hello number {i}"), "actions": [{"type": "reply", "text": "Yes", "payload": "YES"}]}),
                1 => json!({"type": "image", "mediaUrl": "https://example.com/a.png", "mediaType": "image/png", "altText": "a"}),
                2 => json!({"type": "carousel", "items": [{"title": "One", "actions": [{"type": "link", "text": "Open", "uri": "https://example.com"}]}]}),
                _ => json!({"type": "file", "mediaUrl": "https://example.com/f.pdf", "mediaSize": 1234}),
            };
            json!({"id": format!("67a10c0bf0305f4a391e{i:04}"), "received": "2025-02-03T18:33:47.466Z",
                   "author": {"type": if i % 2 == 0 { "business" } else { "user" }, "userId": "5963c0d619a30a2e00de36b8", "displayName": "Jane", "avatarUrl": "https://example.com/a.png"},
                   "content": content, "source": {"type": "web", "integrationId": "5e4af71a81966cfff3ef6550"},
                   "metadata": {"lang": "en-ca"}})
        })
        .collect();
    serde_json::to_vec(&json!({"messages": messages, "meta": {"hasMore": true, "afterCursor": "67a10c0bf0305f4a391e0099"}, "links": {"next": "https://x"}})).unwrap()
}

fn decode(c: &mut Criterion) {
    let body = page_of_100();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("list_messages_100", |b| {
        b.iter(|| {
            black_box(
                serde_json::from_slice::<models::MessageListResponse>(black_box(&body)).unwrap(),
            )
        })
    });
    g.finish();
}

fn requests(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let body = Bytes::from(json!({"app": {"id": "a1", "displayName": "Bench"}}).to_string());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let body = body.clone();
                let svc = service_fn(move |_req: http::Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(body)))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc),
                );
            }
        });
        format!("http://{addr}")
    });
    let client = Client::builder(Region::Custom(base), StaticToken::bearer("t").unwrap())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let mut g = c.benchmark_group("loopback");
    g.throughput(Throughput::Elements(1));
    g.bench_function("get_app_keepalive_1_conn", |b| {
        b.to_async(&rt)
            .iter(|| async { operations::GetApp::new("a1").send(&client).await.unwrap() })
    });
    g.throughput(Throughput::Elements(16));
    g.bench_function("get_app_16_concurrent", |b| {
        b.to_async(&rt).iter(|| async {
            let futs = (0..16).map(|_| async { operations::GetApp::new("a1").send(&client).await });
            futures_util::future::try_join_all(futs).await.unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, decode, requests);
criterion_main!(benches);
