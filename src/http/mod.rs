//! The HTTP interface: REST at `/api/v1`, plus `/`, `/health` and `/openapi.json`. Handlers
//! parse, call a command or a read, and render; errors are [`error::ApiError`].

pub mod error;
pub mod extract;
pub mod routes;
pub mod server;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Method, Request};
use axum::routing::{delete, get, patch, post};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::app::{AppState, Config};
use routes::{audit, messages, notifications, service, sessions, streams};

/// The REST service with `others` (interfaces of their own, such as MCP) mounted beside it,
/// under the layers every request passes (body limit, CORS, request id, tracing).
pub fn router(state: AppState, others: Router<AppState>) -> Router {
    let config = state.config.clone();
    let api = Router::new()
        .route("/messages/agent", post(messages::agent_message))
        .route("/messages/user", post(messages::user_message))
        .route("/messages/pending", get(messages::pending))
        .route(
            "/messages/{message_id}/request-input",
            patch(messages::request_input),
        )
        .route("/sessions/end", post(sessions::end))
        .route("/sessions", get(sessions::list))
        .route("/sessions/{session_id}", get(sessions::get))
        .route("/sessions/{session_id}/messages", get(sessions::messages))
        .route(
            "/sessions/{session_id}/stream",
            get(streams::session_stream),
        )
        .route("/stream", get(streams::tenant_stream))
        .route(
            "/agents/instances/{agent_instance_id}/heartbeat",
            post(sessions::heartbeat),
        )
        .route("/auth/verify", get(service::verify_auth))
        .route("/events", get(audit::events))
        .route("/events/export", get(audit::export))
        .route("/events/verify", get(audit::verify))
        .route(
            "/notifications/channels",
            post(notifications::add_channel).get(notifications::list_channels),
        )
        .route(
            "/notifications/channels/{channel_id}",
            delete(notifications::remove_channel),
        )
        .route(
            "/notifications/channels/{channel_id}/test",
            post(notifications::test_channel),
        )
        .route("/notifications/deliveries", get(notifications::deliveries))
        .route(
            "/notifications/settings",
            get(notifications::get_settings).put(notifications::put_settings),
        )
        .route(
            "/notifications/vapid-public-key",
            get(notifications::vapid_public_key),
        );

    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route("/", get(service::root))
        .route("/health", get(service::health))
        .route("/openapi.json", get(service::openapi))
        .nest("/api/v1", api)
        .merge(others)
        .fallback(service::not_found)
        .method_not_allowed_fallback(service::method_not_allowed)
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(cors(&config))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id = %id,
                )
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Any origin by default, like the system this replaces; a list when configured.
fn cors(config: &Config) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(Any)
        .expose_headers([HeaderName::from_static("x-request-id")]);
    if config.cors_origins.is_empty() {
        layer.allow_origin(Any)
    } else {
        layer.allow_origin(AllowOrigin::list(config.cors_origins.clone()))
    }
}
