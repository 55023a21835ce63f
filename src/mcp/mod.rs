//! MCP: the agent tools over Streamable HTTP at `/mcp` (rmcp), and over stdio through
//! `switchboard mcp-stdio`, which forwards to a remote server's REST API.
//!
//! The HTTP endpoint is stateless: every POST carries its Bearer token and runs on a fresh
//! handler, so there is no MCP session that one tenant could open and another reuse, any node
//! can serve any request, and a client that hangs up cancels its call (and frees its waiter)
//! at once. Progress notifications travel on the POST's own event stream.

pub mod backend;
mod local;
pub mod remote;
mod tools;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;

use crate::app::AppState;
use crate::auth::AuthError;
use crate::auth::request::{self, RequestError};
pub use tools::{AgentTools, PROGRESS_INTERVAL};

/// How the MCP endpoint behaves.
#[derive(Clone, Debug)]
pub struct McpConfig {
    /// How long `ask_question` blocks before answering `pending`.
    pub block_limit: Duration,
    /// Longest silence towards a waiting client that asked for progress.
    pub progress_interval: Duration,
    /// `Host` headers accepted (DNS-rebinding guard); empty accepts any.
    pub allowed_hosts: Vec<String>,
}

impl Default for McpConfig {
    fn default() -> McpConfig {
        McpConfig {
            block_limit: Duration::from_secs(50),
            progress_interval: PROGRESS_INTERVAL,
            allowed_hosts: ["localhost", "127.0.0.1", "::1"]
                .map(str::to_owned)
                .to_vec(),
        }
    }
}

/// `/mcp` and `/mcp/`, each request authenticated by its Bearer token.
pub fn routes<S: Clone + Send + Sync + 'static>(state: AppState) -> Router<S> {
    let mcp = &state.config.mcp;
    let backend: Arc<dyn backend::Backend> = Arc::new(local::Local {
        log: state.log.clone(),
        auth: state.auth.clone(),
        hub: state.hub.clone(),
        shutdown: state.shutdown.clone(),
    });
    let tools = AgentTools::new(backend, mcp.block_limit, mcp.progress_interval, None);
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_sse_keep_alive(Some(PROGRESS_INTERVAL))
        .with_cancellation_token(state.shutdown.child_token());
    config = if mcp.allowed_hosts.is_empty() {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(mcp.allowed_hosts.clone())
    };
    config.max_request_body_bytes = state.config.body_limit;
    let service = StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new()
        .route_service("/mcp", service.clone())
        .route_service("/mcp/", service)
        .layer(middleware::from_fn_with_state(state, authenticate))
}

/// Every MCP request carries a Bearer token; the tools find the caller's context in the
/// request's extensions.
async fn authenticate(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = match request::bearer_token(req.headers()) {
        Ok(token) => token.to_owned(),
        Err(e) => return unauthorized(&e.to_string()),
    };
    match request::context(&app.auth, req.headers(), &token).await {
        Ok(ctx) => {
            req.extensions_mut().insert(ctx);
            next.run(req).await
        }
        Err(RequestError::Auth(AuthError::Missing(m) | AuthError::Unauthorized(m))) => {
            unauthorized(&m)
        }
        Err(RequestError::Auth(e @ AuthError::Unavailable)) => {
            detail(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
        Err(RequestError::Invalid(e)) => detail(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
        Err(RequestError::CrossSite(m)) => detail(StatusCode::FORBIDDEN, &m),
    }
}

fn detail(status: StatusCode, detail: &str) -> Response {
    (status, axum::Json(json!({ "detail": detail }))).into_response()
}

/// A 401 in the shape MCP clients expect (RFC 6750), so they prompt for credentials.
fn unauthorized(detail: &str) -> Response {
    let body = json!({ "error": "invalid_token", "error_description": detail });
    let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}
