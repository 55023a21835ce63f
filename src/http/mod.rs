//! The HTTP interface: REST at `/api/v1`, plus `/health`, `/openapi.json` and the service
//! description ([`routes::service::service_info`], which the composition root serves at `/` to
//! clients that are not browsers). Handlers parse, call a command or a read, and render; errors
//! are [`error::ApiError`].

mod body;
pub mod error;
pub mod extract;
mod observe;
pub mod routes;
pub mod server;
mod streamed;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::routing::{delete, get, patch, post, put};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::app::{AppState, Config};
use routes::{
    actions, apps, audit, hooks, messages, notifications, questions, service, sessions, streams,
};

/// The REST service with `others` (interfaces of their own, such as MCP) mounted beside it,
/// under the layers every request passes (body limit, CORS, request id, its log line and
/// metrics).
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
        .route(
            "/sessions/{session_id}",
            get(sessions::get).patch(sessions::describe),
        )
        .route("/sessions/{session_id}/messages", get(sessions::messages))
        .route("/sessions/{session_id}/exited", post(sessions::exited))
        .route("/sessions/{session_id}/receive", post(sessions::receive))
        .route("/sessions/{session_id}/questions", get(questions::list))
        .route(
            "/sessions/{session_id}/questions/{question_id}/withdraw",
            post(questions::withdraw),
        )
        .route(
            "/sessions/{session_id}/stream",
            get(streams::session_stream),
        )
        .route("/stream", get(streams::tenant_stream))
        .route(
            "/agents/instances/{agent_instance_id}/heartbeat",
            post(sessions::heartbeat),
        )
        .route("/hooks/claude-code", post(hooks::claude_code))
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
        .route("/notifications/presence", put(notifications::put_presence))
        .route(
            "/notifications/vapid-public-key",
            get(notifications::vapid_public_key),
        )
        .route("/actions/{capability}", post(actions::answer))
        .route("/apps", get(apps::list))
        .route("/apps/{app_id}", delete(apps::disconnect));

    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route("/health", get(service::health))
        .route("/openapi.json", get(service::openapi))
        .route("/metrics", get(service::metrics))
        .nest("/api/v1", api)
        .merge(others)
        .fallback(service::not_found)
        .method_not_allowed_fallback(service::method_not_allowed)
        // One layer, so that a request's future is one allocation for all of them, not one
        // per layer (axum boxes each `Router::layer`); the first is the outermost.
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(observe::ObserveLayer)
                .layer(cors(&config))
                .layer(body::InTimeLayer {
                    limit: config.body_limit,
                    timeout: config.body_timeout,
                })
                .layer(DefaultBodyLimit::max(config.body_limit)),
        )
        .with_state(state)
}

/// Same-origin by default (the public URL's origin: the inbox is served from it), a list when
/// configured. Browsers may send cookies to this server, so a page elsewhere must not read
/// its answers unless the operator says so.
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
    let origins = if config.cors_origins.is_empty() {
        let own =
            HeaderValue::from_str(&config.public_url.origin()).expect("an origin is a header");
        vec![own]
    } else {
        config.cors_origins.clone()
    };
    // The OAuth metadata and token endpoints take no cookies: pages of any origin may call
    // them (browser-based MCP clients do).
    layer.allow_origin(AllowOrigin::predicate(move |origin, request| {
        crate::oauth::is_public_path(request.uri.path()) || origins.contains(origin)
    }))
}
