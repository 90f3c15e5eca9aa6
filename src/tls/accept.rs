//! One port for HTTP and HTTPS: each accepted connection's first byte tells a TLS handshake
//! (0x16) from plain HTTP; TLS connections are handed to rustls first. Both are then served
//! by the same service with HTTP/1.1 and upgrades (WebSocket). Graceful shutdown as
//! `axum::serve` does it: stop accepting, let every connection finish its request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What each connection task holds: the shutdown signal, and a receiver whose drop says
/// "this connection is done".
#[derive(Clone)]
struct Watcher {
    signal: watch::Receiver<()>,
    _open: watch::Receiver<()>,
}

/// How long a new connection may take to send its first byte, and to finish a TLS handshake.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a connection may take to send a request's headers (slowloris).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// The first byte of a TLS record carrying a handshake.
const TLS_HANDSHAKE: u8 = 0x16;

/// Serves `service` on `listener` until `shutdown` completes; then stops accepting and waits
/// for open connections to finish (the caller bounds that wait).
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    tls: std::sync::Arc<super::Tls>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()>
where
    S: tower::Service<axum::extract::Request<Incoming>, Response = axum::response::Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let (signal_tx, signal_rx) = watch::channel(());
    let (open_tx, open_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, as axum::serve does.
                    if !matches!(e.kind(), std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset) {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let service = service.clone();
        let tls = tls.acceptor();
        let watcher = Watcher { signal: signal_rx.clone(), _open: open_rx.clone() };
        tokio::spawn(async move {
            if let Err(e) = connection(tcp, peer, service, tls, watcher).await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    let _ = signal_tx.send(());
    drop((signal_rx, open_rx));
    open_tx.closed().await;
    Ok(())
}

async fn connection<S>(
    tcp: TcpStream,
    peer: SocketAddr,
    service: S,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut watcher: Watcher,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: tower::Service<axum::extract::Request<Incoming>, Response = axum::response::Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    // A connection that has not sent a request yet is simply closed on shutdown.
    let mut stop = watcher.signal.clone();
    let mut first = [0u8; 1];
    let n = tokio::select! {
        r = tokio::time::timeout(FIRST_BYTE_TIMEOUT, tcp.peek(&mut first)) => r??,
        _ = stop.changed() => return Ok(()),
    };
    if n == 0 {
        return Ok(()); // closed without a byte
    }
    match tls {
        Some(acceptor) if first[0] == TLS_HANDSHAKE => {
            let stream = tokio::select! {
                r = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => r??,
                _ = watcher.signal.changed() => return Ok(()),
            };
            http(stream, peer, service, watcher).await
        }
        _ => http(tcp, peer, service, watcher).await,
    }
}

async fn http<I, S>(io: I, peer: SocketAddr, service: S, mut watcher: Watcher) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<axum::extract::Request<Incoming>, Response = axum::response::Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let service = tower::ServiceExt::map_request(service, move |mut req: axum::extract::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => return Ok(r?),
        _ = watcher.signal.changed() => conn.as_mut().graceful_shutdown(),
    }
    conn.await?;
    Ok(())
}
