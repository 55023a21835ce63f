//! Routes about the service itself: the service description at `/` (for clients that are not
//! browsers), `/health`, `/metrics`, `/openapi.json`, `/api/v1/auth/verify`, and the JSON
//! answers for unknown paths and methods.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::request;
use crate::commands::CommandError;
use crate::http::error::ApiError;
use crate::http::extract::Caller;
use crate::metrics;

/// What `/` answers clients that do not ask for a web page (browsers get the inbox).
pub fn service_info() -> axum::response::Response {
    info().into_response()
}

fn info() -> Json<Value> {
    Json(json!({
        "message": "Switchboard",
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": {
            "api": "/api/v1/* (REST API endpoints)",
            "mcp": "/mcp (MCP tools via Streamable HTTP)",
            "health": "/health",
            "metrics": "/metrics (Prometheus text format)",
            "openapi": "/openapi.json",
        }
    }))
}

/// 200 when the database answers within two seconds, else 503.
pub async fn health(State(app): State<AppState>) -> impl IntoResponse {
    let check = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(app.log.pool());
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(_)) => (StatusCode::OK, Json(json!({ "status": "healthy" }))),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unhealthy", "detail": "the database is unavailable" })),
        ),
    }
}

/// Every metric in the Prometheus text format; with `--metrics-token`, only for its Bearer.
pub async fn metrics(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(expected) = &app.config.metrics_token {
        let given = request::bearer_token(&headers)?;
        // Compared in constant time: the token is a shared secret.
        let same = given.len() == expected.len()
            && given
                .bytes()
                .zip(expected.bytes())
                .fold(0, |diff, (a, b)| diff | (a ^ b))
                == 0;
        if !same {
            return Err(ApiError::unauthorized("Invalid metrics token"));
        }
    }
    Ok((
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render(app.log.pool()),
    ))
}

pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
}

#[derive(Debug, Serialize)]
pub struct VerifyResponse {
    success: bool,
    user_id: Uuid,
    /// Extension: the user's name, when the user was created with one.
    user_name: Option<String>,
    message: &'static str,
}

pub async fn verify_auth(
    State(app): State<AppState>,
    Caller(ctx): Caller,
) -> Result<Json<VerifyResponse>, ApiError> {
    let account = app
        .log
        .account(ctx.tenant_id)
        .await
        .map_err(CommandError::from)?;
    Ok(Json(VerifyResponse {
        success: true,
        user_id: ctx.tenant_id,
        user_name: account.map(|a| a.name),
        message: "Authentication successful",
    }))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("Not Found")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}
