//! One log line and one metrics observation per HTTP request (REST, streams, MCP, the rest).
//!
//! The line names the route template (`/api/v1/sessions/{session_id}`, never the raw path),
//! the status, the time to the response head, the request id and, once authentication has
//! said who called, the tenant. Never headers, tokens, query strings or bodies: those carry
//! keys and what people wrote. A client that hangs up before its answer (a long-poll given up,
//! a stream closed early) is an ordinary event, logged and counted as status 499, as nginx
//! does; it is not an error.
//!
//! Everything the request's handler logs runs inside a `request` span carrying its id, so
//! the lines a request causes can be found from its request line.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method};
use axum::response::Response;
use futures::future::BoxFuture;
use tower::{Layer, Service};
use tracing::Instrument;
use uuid::Uuid;

use crate::auth::request;
use crate::metrics;

/// The route label of requests no route matched (their paths are not labels: unbounded).
const UNMATCHED: &str = "unmatched";
/// The status recorded when the client hung up before the response head.
const CLIENT_CLOSED: u16 = 499;

/// The layer: serve each request inside its span, then write its line.
#[derive(Clone, Copy, Debug, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner }
    }
}

#[derive(Clone, Debug)]
pub struct Observe<S> {
    inner: S,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // What the line needs, without copying: a parked request keeps it for its whole wait.
        let line = RequestLine {
            method: req.method().clone(),
            route: req.extensions().get::<MatchedPath>().cloned(),
            request_id: req.headers().get("x-request-id").cloned(),
            tenant: Arc::default(),
            started: Instant::now(),
            status: None,
        };
        let span = tracing::info_span!("request", request_id = line.request_id());
        let served = request::noting_tenant(line.tenant.clone(), self.inner.call(req));
        let served = served.instrument(span);
        Box::pin(async move {
            let mut line = line;
            let response = served.await?;
            line.status = Some(response.status().as_u16());
            Ok(response)
        })
    }
}

/// What the line says; written when dropped, so a request whose client hung up (its future
/// dropped mid-way) still gets one.
struct RequestLine {
    method: Method,
    route: Option<MatchedPath>,
    request_id: Option<HeaderValue>,
    tenant: Arc<OnceLock<Uuid>>,
    started: Instant,
    status: Option<u16>,
}

impl RequestLine {
    fn request_id(&self) -> &str {
        self.request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

impl Drop for RequestLine {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let status = self.status.unwrap_or(CLIENT_CLOSED);
        let route = self.route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
        metrics::http_request(self.method.as_str(), route, status, elapsed);
        tracing::info!(
            method = %self.method,
            route = %route,
            status,
            duration_ms = (elapsed.as_secs_f64() * 1e5).round() / 100.0,
            request_id = %self.request_id(),
            tenant = self.tenant.get().map(tracing::field::display),
            "request"
        );
    }
}
