//! What the inbox reads that no other interface needs: the list of a tenant's sessions with
//! what each agent last said, waiting ones first. It reads the `sessions` read model and, per
//! listed session, one event found through the stream-version key (newest agent message).

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::eventlog::LogError;
use crate::eventlog::read::{Page, StoredEvent};
use projections::SessionStatus;

/// Characters of an agent message the list shows (the session page shows all of it).
pub const PREVIEW_CHARS: i32 = 240;

/// The sessions a list shows at most; older ones are reached by their link.
pub const LIST_LIMIT: i64 = 200;

const INBOX_LIST: &str = "\
SELECT s.id, s.agent_type, s.status, s.last_activity_at, s.unread_count,
       m.event_id AS message_id, m.preview, m.question
FROM sessions s
LEFT JOIN LATERAL (
    SELECT e.event_id, left(e.data->>'content', $2) AS preview,
           (e.data->>'requires_user_input')::boolean AS question
    FROM events e
    WHERE e.tenant_id = s.tenant_id AND e.stream_id = s.id AND e.event_type = 'agent_message'
    ORDER BY e.stream_version DESC
    LIMIT 1
) m ON true
WHERE s.tenant_id = $1
ORDER BY s.status = 'AWAITING_INPUT' DESC, s.last_activity_at DESC, s.id DESC
LIMIT $3";

const WAITING: &str =
    "SELECT count(*) FROM sessions WHERE tenant_id = $1 AND status = 'AWAITING_INPUT'";

/// A session as the inbox lists it.
#[derive(Debug, sqlx::FromRow)]
pub struct Listed {
    pub id: Uuid,
    pub agent_type: String,
    status: String,
    pub last_activity_at: OffsetDateTime,
    /// Replies the agent has not received yet.
    pub unread_count: i32,
    /// The agent's latest message: its id, its beginning, and whether it asked something.
    pub message_id: Option<Uuid>,
    pub preview: Option<String>,
    pub question: Option<bool>,
}

impl Listed {
    pub fn status(&self) -> SessionStatus {
        SessionStatus::parse(&self.status).unwrap_or(SessionStatus::Active)
    }
}

/// The tenant's sessions, waiting for an answer first, then by last activity.
pub async fn sessions(pool: &PgPool, tenant_id: Uuid) -> Result<Vec<Listed>, LogError> {
    Ok(sqlx::query_as(INBOX_LIST)
        .bind(tenant_id)
        .bind(PREVIEW_CHARS)
        .bind(LIST_LIMIT)
        .fetch_all(pool)
        .await?)
}

/// How many of the tenant's sessions wait for an answer.
pub async fn waiting(pool: &PgPool, tenant_id: Uuid) -> Result<i64, LogError> {
    Ok(sqlx::query_scalar(WAITING)
        .bind(tenant_id)
        .fetch_one(pool)
        .await?)
}

/// A session's newest events, newest first: at most `$3`, fewer when they would carry more than
/// `$4` bytes (always at least one), as [`crate::eventlog::read::events_after`] bounds its pages.
const LATEST_EVENTS: &str = "\
SELECT tenant_id, seq, stream_id, stream_version, event_id, event_type, data::text AS data,
       metadata::text AS metadata, recorded_at, txid, prev_hash, hash
FROM (SELECT *, sum(octet_length(data::text) + octet_length(metadata::text))
                    OVER (ORDER BY stream_version DESC) AS upto
      FROM events WHERE tenant_id = $1 AND stream_id = $2
      ORDER BY stream_version DESC LIMIT $3) e
WHERE upto - octet_length(data::text) - octet_length(metadata::text) < $4
ORDER BY stream_version DESC";

/// A session's newest events within `page`, oldest first, and whether there are earlier ones.
pub async fn latest_events(
    pool: &PgPool,
    tenant_id: Uuid,
    session_id: Uuid,
    page: Page,
) -> Result<(Vec<StoredEvent>, bool), LogError> {
    let mut events: Vec<StoredEvent> = sqlx::query_as(LATEST_EVENTS)
        .bind(tenant_id)
        .bind(session_id)
        .bind(page.rows)
        .bind(page.bytes)
        .fetch_all(pool)
        .await?;
    let earlier = events
        .last()
        .is_some_and(|oldest| oldest.stream_version > 1);
    events.reverse();
    Ok((events, earlier))
}

/// Whether a page of events read with `page` may have stopped short of the end.
pub fn filled(events: &[StoredEvent], page: Page) -> bool {
    let bytes: usize = events.iter().map(|e| e.data.len() + e.metadata.len()).sum();
    events.len() as i64 >= page.rows || bytes as i64 >= page.bytes
}
