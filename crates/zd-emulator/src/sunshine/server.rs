//! The Sunshine service on a listener of its own, for tests and benches that need nothing else.

use std::net::SocketAddr;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{Sunshine, SunshineConfig};

/// A running Sunshine-only server; dropping it stops the listener.
#[derive(Debug)]
pub struct SunshineServer {
    service: Sunshine,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl SunshineServer {
    /// Binds 127.0.0.1 on a free port and serves `config` on the current tokio runtime.
    ///
    /// # Errors
    /// When the listener cannot be bound.
    pub async fn start(config: SunshineConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let service = Sunshine::new(config);
        let router = service.router();
        let (shutdown, mut stopped) = watch::channel(false);
        tokio::spawn(async move {
            let serve = axum::serve(
                // Small frames (PONG, acks, metric updates) must not wait on Nagle + delayed ACK.
                listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                }),
                router,
            )
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "sunshine server stopped");
            }
        });
        Ok(Self {
            service,
            addr,
            shutdown,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The service, for in-process control.
    pub fn service(&self) -> &Sunshine {
        &self.service
    }
}

impl Drop for SunshineServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
