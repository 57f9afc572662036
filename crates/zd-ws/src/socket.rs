//! The byte stream under a WebSocket: TCP, or TLS over TCP, opened through hyper-rustls.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use http::uri::Scheme;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tower_service::Service;

use crate::Error;

/// TCP, or TLS over TCP. The TLS state (a rustls connection, about 1 KiB) is boxed so a
/// `ws://` socket does not carry its size inline.
pub enum Socket {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`.
    Tls(Box<TokioIo<MaybeHttpsStream<TokioIo<TcpStream>>>>),
}

impl From<TcpStream> for Socket {
    fn from(tcp: TcpStream) -> Self {
        Self::Plain(tcp)
    }
}

impl From<MaybeHttpsStream<TokioIo<TcpStream>>> for Socket {
    fn from(stream: MaybeHttpsStream<TokioIo<TcpStream>>) -> Self {
        match stream {
            MaybeHttpsStream::Http(tcp) => Self::Plain(tcp.into_inner()),
            tls @ MaybeHttpsStream::Https(_) => Self::Tls(Box::new(TokioIo::new(tls))),
        }
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plain(_) => "Socket::Plain",
            Self::Tls(_) => "Socket::Tls",
        })
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}

/// A connector for [`connect`]: TCP with `TCP_NODELAY`, TLS with `tls` for `wss://`.
///
/// Frames are small and latency-sensitive: without `TCP_NODELAY`, Nagle's algorithm holds a
/// frame sent right after another until the peer's delayed ACK (~40 ms). `tls` is shared,
/// not copied (its root store and session cache are the large part), and used as it is: no
/// ALPN is added, a WebSocket upgrade being HTTP/1.1. Cheap enough to build per connect.
pub fn connector(tls: Arc<rustls::ClientConfig>) -> HttpsConnector<HttpConnector> {
    let mut tcp = HttpConnector::new();
    // The connector checks the scheme itself (see `connect`).
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    HttpsConnector::from((tcp, tls))
}

/// Opens TCP to the host and port of `url` (a `ws://` or `wss://` URL; 80 or 443 unless it
/// names a port), then TLS for `wss://`, with `connector`: one from [`connector`], or one
/// the caller shares with its HTTP client (set `TCP_NODELAY` and `enforce_http(false)` on
/// its `HttpConnector`).
///
/// Only the scheme and authority of `url` are used; its path and query never reach the
/// connector or an error.
///
/// # Errors
/// [`Error::InvalidUrl`] for another scheme or no host, [`Error::Connect`] when TCP or TLS
/// fails. No timeout is applied: wrap the call (and the upgrade) in one.
pub async fn connect(
    connector: &HttpsConnector<HttpConnector>,
    url: &Uri,
) -> Result<Socket, Error> {
    // hyper-rustls picks TLS by the `https` scheme alone, and the default port by it too.
    let (scheme, default_port) = match url.scheme_str() {
        Some("wss") => (Scheme::HTTPS, 443),
        Some("ws") => (Scheme::HTTP, 80),
        _ => return Err(Error::InvalidUrl),
    };
    let (Some(authority), Some(host)) = (url.authority(), url.host()) else {
        return Err(Error::InvalidUrl);
    };
    if host.is_empty() {
        return Err(Error::InvalidUrl);
    }
    let origin = format!(
        "{}://{host}:{}",
        url.scheme_str().unwrap_or_default(),
        url.port_u16().unwrap_or(default_port)
    );
    let dst = Uri::builder()
        .scheme(scheme)
        .authority(authority.clone())
        .path_and_query("/")
        .build()
        .map_err(|_| Error::InvalidUrl)?;
    let connect_error = |source| Error::Connect {
        origin: origin.clone(),
        source,
    };
    let mut connector = connector.clone();
    std::future::poll_fn(|cx| connector.poll_ready(cx))
        .await
        .map_err(connect_error)?;
    let stream = connector.call(dst).await.map_err(connect_error)?;
    Ok(Socket::from(stream))
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    fn tls() -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        )
    }

    #[tokio::test]
    async fn ws_connects_over_plain_tcp_without_nagle() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url: Uri = format!("ws://{addr}/secret/path?q=1").parse().unwrap();
        let socket = connect(&connector(tls()), &url).await.unwrap();
        let Socket::Plain(tcp) = socket else {
            panic!("ws:// is plain TCP: {socket:?}");
        };
        assert!(tcp.nodelay().unwrap());
    }

    #[tokio::test]
    async fn failures_name_the_origin_but_never_the_path() {
        // A port nothing listens on: bound, then released.
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let url: Uri = format!("ws://{addr}/secret").parse().unwrap();
        let err = connect(&connector(tls()), &url).await.unwrap_err();
        assert!(matches!(err, Error::Connect { .. }), "{err:?}");
        assert_eq!(err.to_string(), format!("connecting to ws://{addr}"));
        assert!(!format!("{err:?}").contains("secret"), "{err:?}");

        // Another scheme, no scheme or host, and an empty host (`http` parses `ws://:80` as
        // authority `:80` with host ``; `wss:///x` it does not parse at all).
        for url in ["http://h/", "/relative", "ws://:80/x", "wss://:443"] {
            let url: Uri = url.parse().unwrap_or_else(|e| panic!("{url}: {e}"));
            let err = connect(&connector(tls()), &url).await.unwrap_err();
            assert!(matches!(err, Error::InvalidUrl), "{url}: {err:?}");
        }
        let url: Uri = "ws://:80/x".parse().unwrap();
        assert_eq!(
            url.host(),
            Some(""),
            "the empty-host branch is the one taken"
        );
    }
}
