//! `/api/v1/apps`: the caller's connected apps (MCP hosts signed in by OAuth), and
//! disconnecting one (`crate::commands::connected_apps`).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::api_keys::ApiKey;
use crate::commands::connected_apps;
use crate::domain;
use crate::http::error::ApiError;
use crate::http::extract::{Caller, PathParams};

/// A connected app as REST shows it (never a token).
#[derive(Serialize)]
pub struct AppView {
    /// The app's API key: what `keys revoke` and this API's DELETE name.
    pub id: Uuid,
    pub name: String,
    pub client_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub connected_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub disconnected_at: Option<OffsetDateTime>,
}

impl From<ApiKey> for AppView {
    fn from(key: ApiKey) -> AppView {
        AppView {
            id: key.id,
            name: key.name,
            client_id: key.app_client_id.unwrap_or_default(),
            connected_at: key.created_at,
            last_used_at: key.last_used_at,
            disconnected_at: key.revoked_at,
        }
    }
}

#[derive(Serialize)]
pub struct AppList {
    pub apps: Vec<AppView>,
}

/// `GET /api/v1/apps`: the apps connected now, newest first.
pub async fn list(
    State(app): State<AppState>,
    Caller(ctx): Caller,
) -> Result<Json<AppList>, ApiError> {
    let apps = connected_apps::apps(app.log.pool(), ctx.tenant_id, false).await?;
    Ok(Json(AppList {
        apps: apps.into_iter().map(AppView::from).collect(),
    }))
}

/// `DELETE /api/v1/apps/{app_id}`: disconnect it, on every node at once. A retry answers the
/// same (the app stays disconnected).
pub async fn disconnect(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    PathParams(id): PathParams<String>,
) -> Result<Json<AppView>, ApiError> {
    let id = domain::parse_uuid("app_id", &id)?;
    let key = connected_apps::disconnect_own(&app.log, &ctx, id).await?;
    Ok(Json(AppView::from(key)))
}
