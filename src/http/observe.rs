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

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use uuid::Uuid;

use crate::auth::request;
use crate::metrics;

/// The route label of requests no route matched (their paths are not labels: unbounded).
const UNMATCHED: &str = "unmatched";
/// The status recorded when the client hung up before the response head.
const CLIENT_CLOSED: u16 = 499;

/// The middleware: serve the request inside its span, then write its line.
pub async fn observe(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let span = tracing::info_span!("request", request_id = %request_id);
    let mut line = RequestLine {
        method: req.method().as_str().to_owned(),
        route,
        request_id,
        tenant: Arc::default(),
        started: Instant::now(),
        status: None,
    };
    let served = next.run(req).instrument(span);
    let response = request::noting_tenant(line.tenant.clone(), served).await;
    line.status = Some(response.status().as_u16());
    response
}

/// What the line says; written when dropped, so a request whose client hung up (its future
/// dropped mid-way) still gets one.
struct RequestLine {
    method: String,
    route: String,
    request_id: String,
    tenant: Arc<OnceLock<Uuid>>,
    started: Instant,
    status: Option<u16>,
}

impl Drop for RequestLine {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let status = self.status.unwrap_or(CLIENT_CLOSED);
        metrics::http_request(&self.method, &self.route, status, elapsed);
        tracing::info!(
            method = %self.method,
            route = %self.route,
            status,
            duration_ms = (elapsed.as_secs_f64() * 1e5).round() / 100.0,
            request_id = %self.request_id,
            tenant = self.tenant.get().map(tracing::field::display),
            "request"
        );
    }
}
