//! An agent says it is alive. Presence, not conversation: recorded beside the session, not in
//! the log, and without the tenant lock.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{CommandError, Context, session_not_found};
use crate::eventlog::{EventLog, LogError};

/// Records the beat only when the session exists for this tenant.
const BEAT: &str = "\
INSERT INTO session_heartbeats (tenant_id, session_id, last_heartbeat_at)
SELECT tenant_id, id, $3 FROM sessions WHERE tenant_id = $1 AND id = $2
ON CONFLICT (tenant_id, session_id) DO UPDATE SET last_heartbeat_at = EXCLUDED.last_heartbeat_at
RETURNING last_heartbeat_at";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub session_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub last_heartbeat_at: OffsetDateTime,
}

pub async fn heartbeat(
    log: &EventLog,
    ctx: &Context,
    session_id: Uuid,
) -> Result<Heartbeat, CommandError> {
    ctx.require_write()?;
    let at: Option<OffsetDateTime> = sqlx::query_scalar(BEAT)
        .bind(ctx.tenant_id)
        .bind(session_id)
        .bind(crate::eventlog::chain::now_micros())
        .fetch_optional(log.pool())
        .await
        .map_err(LogError::from)?;
    let at = at.ok_or_else(|| session_not_found(session_id))?;
    Ok(Heartbeat {
        session_id,
        last_heartbeat_at: at,
    })
}
