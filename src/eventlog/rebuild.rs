//! Rebuilding the projections from the log, and checking that the live tables equal a
//! rebuild. Both fold the whole log with [`projections::apply`], the function the append path
//! uses, so any difference is a bug (or tampering), never a matter of two implementations.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use projections::{InboxMessage, SessionState};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::LogError;
use super::read::{self, EventRow, InboxRecord, SessionRecord};
use super::write::{InboxColumns, SessionColumns};

const ALL_EVENTS: &str = "\
SELECT tenant_id, seq, stream_id, stream_version, event_id, event_type, data::text, recorded_at
FROM events ORDER BY tenant_id, seq";

const ALL_SESSIONS: &str = "\
SELECT tenant_id, id, agent_type, status, started_at, ended_at, last_activity_at, git_diff,
       version, last_seq, step_count, read_cursor, unread_count
FROM sessions";

const ALL_INBOX: &str = "\
SELECT tenant_id, session_id, stream_version, message_id, seq, content, created_at FROM inbox";

const INSERT_SESSIONS: &str = "\
INSERT INTO sessions (tenant_id, id, agent_type, status, started_at, ended_at, last_activity_at,
                      git_diff, version, last_seq, step_count, read_cursor, unread_count)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[],
                     $6::timestamptz[], $7::timestamptz[], $8::text[], $9::int[], $10::bigint[],
                     $11::int[], $12::uuid[], $13::int[])";

const INSERT_INBOX: &str = "\
INSERT INTO inbox (tenant_id, session_id, stream_version, message_id, seq, content, created_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::uuid[], $5::bigint[], $6::text[],
                     $7::timestamptz[])";

/// Rows per INSERT when writing rebuilt projections.
const BATCH: usize = 5_000;

/// The projections as a fold of the log, keyed by (tenant, session).
pub type Projection = BTreeMap<(Uuid, Uuid), SessionState>;

/// Fold every event in the log. Reads in the transaction `conn` is in (which must be one).
pub async fn fold_log(conn: &mut PgConnection) -> Result<(Projection, u64), LogError> {
    // The primary key already holds the order: stream from it rather than sort first.
    sqlx::query("SET LOCAL enable_sort = off")
        .execute(&mut *conn)
        .await?;
    let mut projection = Projection::new();
    let mut events = 0u64;
    let mut rows = sqlx::query_as::<_, EventRow>(ALL_EVENTS).fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        let recorded = read::recorded(row)?;
        let key = (recorded.tenant_id, recorded.stream_id);
        let state = projection.remove(&key);
        let state = projections::apply(state, &recorded)
            .map_err(|e| LogError::Corrupt(format!("tenant {}: {e}", recorded.tenant_id)))?;
        projection.insert(key, state);
        events += 1;
    }
    Ok((projection, events))
}

/// The live `sessions` and `inbox` tables.
pub async fn load_live(conn: &mut PgConnection) -> Result<Projection, LogError> {
    let mut live = Projection::new();
    let mut sessions = sqlx::query_as::<_, SessionRecord>(ALL_SESSIONS).fetch(&mut *conn);
    while let Some(record) = sessions.try_next().await? {
        let session = record.into_session()?;
        let key = (session.tenant_id, session.id);
        let inbox = Vec::new();
        live.insert(key, SessionState { session, inbox });
    }
    drop(sessions);
    let mut orphans = Vec::new();
    let mut inbox = sqlx::query_as::<_, InboxRecord>(ALL_INBOX).fetch(&mut *conn);
    while let Some(record) = inbox.try_next().await? {
        let message = InboxMessage::from(record);
        match live.get_mut(&(message.tenant_id, message.session_id)) {
            Some(state) => state.inbox.push(message),
            None => orphans.push(message),
        }
    }
    for state in live.values_mut() {
        state.inbox.sort_by_key(|m| m.stream_version);
    }
    if let Some(orphan) = orphans.first() {
        return Err(LogError::Corrupt(format!(
            "inbox holds message {} of session {} which has no sessions row",
            orphan.message_id, orphan.session_id
        )));
    }
    Ok(live)
}

/// One way in which the live projections differ from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub tenant_id: Uuid,
    pub session_id: Uuid,
    pub what: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tenant {} session {}: {}",
            self.tenant_id, self.session_id, self.what
        )
    }
}

pub fn compare(expected: &Projection, live: &Projection) -> Vec<Difference> {
    let mut differences = Vec::new();
    let keys: std::collections::BTreeSet<_> = expected.keys().chain(live.keys()).collect();
    for key in keys {
        let difference = |what: String| Difference {
            tenant_id: key.0,
            session_id: key.1,
            what,
        };
        match (expected.get(key), live.get(key)) {
            (Some(e), Some(l)) => {
                if e.session != l.session {
                    differences.push(difference(format!(
                        "sessions row differs\n  from the log: {:?}\n  live:         {:?}",
                        e.session, l.session
                    )));
                }
                if e.inbox != l.inbox {
                    let ids =
                        |m: &[InboxMessage]| m.iter().map(|m| m.message_id).collect::<Vec<_>>();
                    differences.push(difference(format!(
                        "inbox differs\n  from the log: {:?}\n  live:         {:?}",
                        ids(&e.inbox),
                        ids(&l.inbox)
                    )));
                }
            }
            (Some(_), None) => {
                differences.push(difference("missing from the live projections".into()))
            }
            (None, Some(_)) => differences.push(difference(
                "live projections have it, the log does not".into(),
            )),
            (None, None) => unreachable!("key comes from one of the maps"),
        }
    }
    differences
}

/// Result of a rebuild or a check.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    pub events: u64,
    pub sessions: usize,
    pub differences: Vec<Difference>,
}

/// Compare the live projections with a fold of the log, in one snapshot, without blocking
/// writers (the projections are written in the same transactions as the events, so every
/// snapshot sees the two in step).
pub async fn check(pool: &PgPool) -> Result<RebuildReport, LogError> {
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let (expected, events) = fold_log(&mut tx).await?;
    let live = load_live(&mut tx).await?;
    tx.rollback().await?;
    Ok(RebuildReport {
        events,
        sessions: expected.len(),
        differences: compare(&expected, &live),
    })
}

/// Replace the live projections with a fold of the log. Appends wait while it runs; the
/// report lists what the rebuild changed.
pub async fn rebuild(pool: &PgPool) -> Result<RebuildReport, LogError> {
    let mut tx = pool.begin().await?;
    // SHARE conflicts with the ROW EXCLUSIVE lock every append takes on `events`.
    sqlx::query("LOCK TABLE events IN SHARE MODE")
        .execute(&mut *tx)
        .await?;
    let (expected, events) = fold_log(&mut tx).await?;
    let live = load_live(&mut tx).await?;
    let differences = compare(&expected, &live);
    sqlx::query("DELETE FROM inbox").execute(&mut *tx).await?;
    sqlx::query("DELETE FROM sessions")
        .execute(&mut *tx)
        .await?;
    write(&mut tx, &expected).await?;
    // Running servers drop what they cached of the old projections.
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(crate::push::notice::REBUILD_CHANNEL)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(RebuildReport {
        events,
        sessions: expected.len(),
        differences,
    })
}

/// Insert a whole projection into empty tables.
pub async fn write(conn: &mut PgConnection, projection: &Projection) -> Result<(), LogError> {
    let states: Vec<&SessionState> = projection.values().collect();
    for chunk in states.chunks(BATCH) {
        let mut tenants = Vec::with_capacity(chunk.len());
        let mut columns = SessionColumns::default();
        for state in chunk {
            tenants.push(state.session.tenant_id);
            columns.push(&state.session, true);
        }
        insert_sessions(conn, tenants, columns).await?;
    }
    let unread: Vec<&InboxMessage> = states.iter().flat_map(|s| &s.inbox).collect();
    for chunk in unread.chunks(BATCH) {
        let mut tenants = Vec::with_capacity(chunk.len());
        let mut columns = InboxColumns::default();
        for message in chunk {
            tenants.push(message.tenant_id);
            columns.push(message);
        }
        sqlx::query(INSERT_INBOX)
            .bind(tenants)
            .bind(columns.session_id)
            .bind(columns.stream_version)
            .bind(columns.message_id)
            .bind(columns.seq)
            .bind(columns.content)
            .bind(columns.created_at)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn insert_sessions(
    conn: &mut PgConnection,
    tenants: Vec<Uuid>,
    s: SessionColumns,
) -> Result<(), LogError> {
    sqlx::query(INSERT_SESSIONS)
        .bind(tenants)
        .bind(s.id)
        .bind(s.agent_type)
        .bind(s.status)
        .bind(s.started_at)
        .bind(s.ended_at)
        .bind(s.last_activity_at)
        .bind(s.git_diff)
        .bind(s.version)
        .bind(s.last_seq)
        .bind(s.step_count)
        .bind(s.read_cursor)
        .bind(s.unread_count)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
