//! Routes about the service itself: `/`, `/health`, `/openapi.json`, `/api/v1/auth/verify`,
//! and the JSON answers for unknown paths and methods.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::AppState;
use crate::commands::CommandError;
use crate::http::error::ApiError;
use crate::http::extract::Caller;

pub async fn root() -> Json<Value> {
    Json(json!({
        "message": "Switchboard",
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": {
            "api": "/api/v1/* (REST API endpoints)",
            "mcp": "/mcp (MCP tools via Streamable HTTP)",
            "health": "/health",
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
