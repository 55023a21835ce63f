//! Serving connections: HTTP/1.1 through hyper, tuned for many parked requests, with a
//! graceful shutdown.
//!
//! A parked long-poll or stream costs what its connection costs, so connections are kept lean:
//! hyper's read buffer is capped at its 8 KiB minimum (its default lets it double to 16 KiB
//! per connection; request heads over 8 KiB are refused with 431, bodies still stream), and
//! the router is shared by all connections rather than rebuilt per connection.

use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Request heads must arrive within this; an idle keep-alive connection is closed after it.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve `router` on `listener` until `shutdown` is cancelled, then let requests in flight
/// finish (the caller bounds how long) and return.
pub async fn serve(listener: TcpListener, router: Router, shutdown: CancellationToken) {
    let router = router.with_state(());
    let mut builder = http1::Builder::new();
    builder
        .max_buf_size(8192)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: let connections close, then retry.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
