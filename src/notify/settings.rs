//! A tenant's notification settings. Today one switch: whether questions notify every channel
//! (`questions`, on by default). Messages whose `send_*` flags ask for a notification are
//! delivered either way: the agent asked for them explicitly.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::Notifier;
use super::channels::database;
use crate::commands::{CommandError, Context};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub questions: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { questions: true }
    }
}

const GET: &str = "SELECT questions FROM notification_settings WHERE tenant_id = $1";

const SET: &str = "\
INSERT INTO notification_settings (tenant_id, questions) VALUES ($1, $2)
ON CONFLICT (tenant_id) DO UPDATE SET questions = excluded.questions";

pub async fn get(conn: &mut PgConnection, tenant_id: Uuid) -> Result<Settings, sqlx::Error> {
    let questions: Option<bool> = sqlx::query_scalar(GET)
        .bind(tenant_id)
        .fetch_optional(conn)
        .await?;
    Ok(questions.map_or_else(Settings::default, |questions| Settings { questions }))
}

impl Notifier {
    pub async fn settings(&self, tenant_id: Uuid) -> Result<Settings, CommandError> {
        let mut conn = self.pool.acquire().await.map_err(database)?;
        get(&mut conn, tenant_id).await.map_err(database)
    }

    pub async fn set_settings(
        &self,
        ctx: &Context,
        settings: Settings,
    ) -> Result<Settings, CommandError> {
        ctx.require_write()?;
        sqlx::query(SET)
            .bind(ctx.tenant_id)
            .bind(settings.questions)
            .execute(&self.pool)
            .await
            .map_err(database)?;
        Ok(settings)
    }
}
