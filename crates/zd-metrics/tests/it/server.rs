//! A small scriptable Real Time Chat server (hyper + tokio-tungstenite) for conditions the
//! emulator cannot be made to produce on demand: a socket cut mid-stream, a silent peer, an
//! HTTP 429 on the upgrade with a `Retry-After`, a status-500 frame.
//!
//! Each accepted WebSocket is handed to the test as a [`ServerConn`] that shows what the
//! client sent and lets the test push frames or cut the connection.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

pub(crate) const UNAUTHORIZED_FRAME: &str =
    r#"{"status_code":401,"message":"Unable to verify the identity of the client"}"#;

/// A canned HTTP answer.
#[derive(Clone, Debug)]
pub(crate) struct Canned {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<u64>,
    pub(crate) body: String,
}

#[derive(Default)]
struct Shared {
    tokens: Mutex<HashSet<String>>,
    reject_upgrade: Mutex<Option<Canned>>,
    rest: Mutex<HashMap<String, Canned>>,
}

/// A REST request the server saw.
#[derive(Debug)]
pub(crate) struct SeenRequest {
    pub(crate) path_and_query: String,
    pub(crate) authorization: Option<String>,
}

pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    shared: Arc<Shared>,
    connections: mpsc::UnboundedReceiver<ServerConn>,
    requests: mpsc::UnboundedReceiver<SeenRequest>,
}

enum Control {
    Send(String),
    Stall,
    Cut,
}

/// One accepted, authenticated WebSocket.
pub(crate) struct ServerConn {
    pub(crate) authorization: String,
    received: mpsc::UnboundedReceiver<String>,
    control: mpsc::UnboundedSender<Control>,
}

impl ServerConn {
    /// The next text frame the client sent.
    pub(crate) async fn recv(&mut self) -> String {
        self.received.recv().await.expect("connection ended")
    }

    /// Sends a text frame.
    pub(crate) fn send(&self, text: impl Into<String>) {
        self.control
            .send(Control::Send(text.into()))
            .expect("connection ended");
    }

    /// Stops reading the socket (so pings go unanswered) while keeping it open.
    pub(crate) fn stall(&self) {
        let _ = self.control.send(Control::Stall);
    }

    /// Drops the socket without a close frame, as a network failure would.
    pub(crate) fn cut(self) {
        let _ = self.control.send(Control::Cut);
    }
}

impl TestServer {
    /// Binds 127.0.0.1:0 first, then serves; `tokens` are the accepted bearer tokens.
    pub(crate) async fn start(tokens: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        shared
            .tokens
            .lock()
            .unwrap()
            .extend(tokens.iter().map(|t| (*t).to_owned()));
        let (conn_tx, connections) = mpsc::unbounded_channel();
        let (req_tx, requests) = mpsc::unbounded_channel();
        let accept_shared = Arc::clone(&shared);
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                socket.set_nodelay(true).unwrap();
                let shared = Arc::clone(&accept_shared);
                let conn_tx = conn_tx.clone();
                let req_tx = req_tx.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        handle(req, Arc::clone(&shared), conn_tx.clone(), req_tx.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Self {
            addr,
            shared,
            connections,
            requests,
        }
    }

    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next WebSocket the server accepted with a valid token.
    pub(crate) async fn next_connection(&mut self) -> ServerConn {
        self.connections.recv().await.expect("server stopped")
    }

    /// The next REST request.
    pub(crate) async fn next_request(&mut self) -> SeenRequest {
        self.requests.recv().await.expect("server stopped")
    }

    /// Answers every upgrade with this HTTP response until cleared.
    pub(crate) fn reject_upgrades(&self, canned: Option<Canned>) {
        *self.shared.reject_upgrade.lock().unwrap() = canned;
    }

    /// Answers `GET {path}` (path and query) with this response.
    pub(crate) fn rest(&self, path_and_query: &str, canned: Canned) {
        self.shared
            .rest
            .lock()
            .unwrap()
            .insert(path_and_query.to_owned(), canned);
    }
}

fn canned_response(canned: &Canned) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(canned.status)
        .header("content-type", "application/json");
    if let Some(seconds) = canned.retry_after {
        builder = builder.header("retry-after", seconds.to_string());
    }
    builder
        .body(Full::new(Bytes::from(canned.body.clone())))
        .unwrap()
}

async fn handle(
    mut req: Request<Incoming>,
    shared: Arc<Shared>,
    conn_tx: mpsc::UnboundedSender<ServerConn>,
    req_tx: mpsc::UnboundedSender<SeenRequest>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_upgrade = req
        .headers()
        .get("upgrade")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !is_upgrade {
        let path_and_query = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let canned = shared.rest.lock().unwrap().get(&path_and_query).cloned();
        let _ = req_tx.send(SeenRequest {
            path_and_query,
            authorization,
        });
        return Ok(match canned {
            Some(canned) => canned_response(&canned),
            None => canned_response(&Canned {
                status: 404,
                retry_after: None,
                body: r#"{"error":"not found"}"#.into(),
            }),
        });
    }
    if let Some(canned) = shared.reject_upgrade.lock().unwrap().clone() {
        return Ok(canned_response(&canned));
    }
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return Ok(canned_response(&Canned {
            status: 400,
            retry_after: None,
            body: String::new(),
        }));
    };
    let token = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let valid = shared.tokens.lock().unwrap().contains(&token);
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        if !valid {
            // As the service does: a 401 status frame, then a close.
            let _ = ws.send(Message::text(UNAUTHORIZED_FRAME)).await;
            let _ = ws.close(None).await;
            return;
        }
        let (received_tx, received) = mpsc::unbounded_channel();
        let (control, mut control_rx) = mpsc::unbounded_channel();
        let _ = conn_tx.send(ServerConn {
            authorization: authorization.unwrap_or_default(),
            received,
            control,
        });
        loop {
            tokio::select! {
                message = ws.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        let _ = received_tx.send(text.as_str().to_owned());
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                },
                control = control_rx.recv() => match control {
                    Some(Control::Send(text)) => {
                        if ws.send(Message::text(text)).await.is_err() {
                            return;
                        }
                    }
                    Some(Control::Stall) => {
                        // Hold the socket, read nothing, until cut.
                        while let Some(c) = control_rx.recv().await {
                            if matches!(c, Control::Cut) {
                                return;
                            }
                        }
                        return;
                    }
                    Some(Control::Cut) | None => return,
                },
            }
        }
    });
    let response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
        .body(Full::new(Bytes::new()))
        .unwrap();
    Ok(response)
}

/// An update frame for one department (or account-wide).
pub(crate) fn update(family: &str, data: &str, department_id: Option<u64>) -> String {
    let dept = department_id.map_or_else(|| "null".to_owned(), |d| d.to_string());
    format!(
        r#"{{"content":{{"topic":"{family}","data":{data},"type":"update","department_id":{dept}}},"status_code":200}}"#
    )
}
