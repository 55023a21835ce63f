//! Switchboard as the OAuth 2.1 authorization server of its own MCP endpoint, so that hosts
//! which connect to remote MCP servers only through OAuth (claude.ai, Claude Desktop and the
//! mobile apps, ChatGPT) can add it as a connector.
//!
//! - `/.well-known/oauth-protected-resource[/…]` (RFC 9728) names the MCP endpoint as the
//!   resource and this server as its authorization server; `/mcp`'s 401 points there
//!   (`resource_metadata` in `WWW-Authenticate`).
//! - `/.well-known/oauth-authorization-server[/…]` (RFC 8414) lists the endpoints.
//! - `/authorize` (the inbox's consent page, `crate::inbox`): authorization code with PKCE S256
//!   only, for clients known by a metadata document or a registration (`clients`).
//! - `/token`: the code grant and the refresh grant (refresh tokens rotate), tokens bound to
//!   the MCP endpoint (RFC 8707); `/revoke` (RFC 7009); `/register` (RFC 7591).
//!
//! Every token is a connected app's API key underneath (`crate::auth::apps`), so it is listed,
//! revoked and checked on every node like any key; `crate::commands::connected_apps` holds the
//! rules of connecting and disconnecting. No cryptography here: tokens are signed with the
//! server's JWT key (jsonwebtoken), secrets are random and kept as SHA-256 digests.

pub mod authorize;
pub mod clients;
mod endpoints;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::app::{AppState, PublicUrl};
pub use clients::Clients;

/// The paths anyone may call from a browser page of any origin (no cookies are involved):
/// the metadata documents and the token, revocation and registration endpoints.
pub fn is_public_path(path: &str) -> bool {
    path.starts_with("/.well-known/oauth-") || matches!(path, "/token" | "/revoke" | "/register")
}

/// The resource the tokens are for: the MCP endpoint's URL.
pub fn resource(public_url: &PublicUrl) -> String {
    public_url.join("mcp")
}

/// This authorization server's issuer identifier: the public URL without its final slash.
pub fn issuer(public_url: &PublicUrl) -> String {
    public_url.join("").trim_end_matches('/').to_owned()
}

/// Where the protected resource metadata is (what `/mcp`'s 401 points to).
pub fn resource_metadata_url(public_url: &PublicUrl) -> String {
    public_url.join(".well-known/oauth-protected-resource/mcp")
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/{*path}",
            get(protected_resource_at),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(authorization_server),
        )
        .route(
            "/.well-known/oauth-authorization-server/{*path}",
            get(authorization_server_at),
        )
        .route("/token", post(endpoints::token))
        .route("/revoke", post(endpoints::revoke))
        .route("/register", post(endpoints::register))
}

fn document(value: Value) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=3600")],
        Json(value),
    )
        .into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "detail": "no such metadata document on this server" })),
    )
        .into_response()
}

/// The path of `url` without slashes at either end (`mcp`, `team/mcp`, ``).
fn trimmed_path(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.path().trim_matches('/').to_owned())
        .unwrap_or_default()
}

/// `GET /.well-known/oauth-protected-resource` (RFC 9728).
async fn protected_resource(State(app): State<AppState>) -> Response {
    let public = &app.config.public_url;
    document(json!({
        "resource": resource(public),
        "authorization_servers": [issuer(public)],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["agent"],
        "resource_name": "Switchboard",
        "resource_documentation": public.join(""),
    }))
}

/// The same at the resource's own path (`/.well-known/oauth-protected-resource/mcp`).
async fn protected_resource_at(state: State<AppState>, Path(path): Path<String>) -> Response {
    let own = trimmed_path(&resource(&state.config.public_url));
    if path.trim_matches('/') != own {
        return not_found();
    }
    protected_resource(state).await
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
async fn authorization_server(State(app): State<AppState>) -> Response {
    let public = &app.config.public_url;
    document(json!({
        "issuer": issuer(public),
        "authorization_endpoint": public.join("authorize"),
        "token_endpoint": public.join("token"),
        "revocation_endpoint": public.join("revoke"),
        "registration_endpoint": public.join("register"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["agent"],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "service_documentation": public.join(""),
    }))
}

/// The same at the issuer's path, for an issuer with one (RFC 8414 §3.1).
async fn authorization_server_at(state: State<AppState>, Path(path): Path<String>) -> Response {
    let own = trimmed_path(&issuer(&state.config.public_url));
    if path.trim_matches('/') != own {
        return not_found();
    }
    authorization_server(state).await
}
