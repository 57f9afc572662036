//! Serves a feed's live snapshot on `http://127.0.0.1:9898/metrics` for Prometheus/Grafana.
//!
//! ```text
//! cargo run -p zd-metrics --features prometheus --example prometheus -- \
//!     http://127.0.0.1:8080 demo-alice-token
//! ```
//! (the first argument is the service root: the emulator's address, or https://rtm.zopim.com).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use zd_metrics::prometheus::SnapshotCollector;
use zd_metrics::{FeedEvent, Metric, MetricsClient, Series, StaticToken, Window};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let token = args.next().unwrap_or_else(|| "demo-alice-token".to_owned());

    let client = MetricsClient::builder(StaticToken::bearer(token)?)
        .base_url(base)
        .build()?;
    let mut feed = client.connect().await?;
    for metric in Metric::KNOWN {
        if metric.is_windowed() {
            for window in Window::KNOWN {
                feed.subscribe(Series::windowed(metric.clone(), window))
                    .await?;
            }
        } else {
            feed.subscribe(Series::metric(metric)).await?;
        }
    }

    let mut registry = Registry::default();
    SnapshotCollector::new(feed.snapshot()).register(&mut registry);
    let registry = Arc::new(registry);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:9898").await?;
    println!("serving http://{}/metrics", listener.local_addr()?);
    tokio::spawn(async move {
        while let Some(event) = feed.next().await {
            if let FeedEvent::Closed(error) = event {
                eprintln!("feed closed: {error}");
                break;
            }
        }
    });
    loop {
        let (socket, _) = listener.accept().await?;
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            let service = service_fn(move |_request| {
                let registry = Arc::clone(&registry);
                async move {
                    let mut text = String::new();
                    let body = match prometheus_client::encoding::text::encode(&mut text, &registry)
                    {
                        Ok(()) => text,
                        Err(e) => format!("# encoding failed: {e}\n"),
                    };
                    Ok::<_, Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "text/plain; version=0.0.4")
                            .body(Full::new(Bytes::from(body)))
                            .unwrap_or_default(),
                    )
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service)
                .await;
        });
    }
}
