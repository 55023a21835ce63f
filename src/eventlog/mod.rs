//! The event log: an append-only `events` table with a gap-free, hash-chained sequence per
//! tenant, and the projections kept in step with it inside each append's transaction.

pub mod append;
pub mod chain;
pub mod read;
pub mod rebuild;
pub mod verify;

use projections::{RecordedEvent, SessionState};
use sqlx::PgPool;
use uuid::Uuid;

pub use append::{AppendedEvent, Committed, ExpectedVersion, NewEvent, TenantTxn};

#[derive(Debug)]
pub enum LogError {
    /// The stream is not at the version the caller expected.
    VersionConflict {
        stream_id: Uuid,
        expected: ExpectedVersion,
        actual: i32,
    },
    /// An event with one of the appended ids is already in the tenant's log.
    DuplicateEvent,
    /// The database could not be reached or refused the work.
    Database(sqlx::Error),
    /// What is stored contradicts the rules the log keeps (a bug or tampering).
    Corrupt(String),
}

impl LogError {
    /// True when the database is unreachable (as opposed to refusing a statement).
    pub fn is_unavailable(&self) -> bool {
        match self {
            LogError::Database(e) => {
                matches!(
                    e,
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::WorkerCrashed
                        | sqlx::Error::Protocol(_)
                ) || e
                    .as_database_error()
                    .and_then(|d| d.code())
                    .is_some_and(|code| {
                        // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
                        matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
                    })
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogError::VersionConflict {
                stream_id,
                expected,
                actual,
            } => write!(
                f,
                "session {stream_id} is at version {actual}, expected {expected:?}"
            ),
            LogError::DuplicateEvent => write!(f, "an event with this id was already appended"),
            LogError::Database(e) => write!(f, "database: {e}"),
            LogError::Corrupt(e) => write!(f, "inconsistent log: {e}"),
        }
    }
}

impl std::error::Error for LogError {}

impl From<sqlx::Error> for LogError {
    fn from(e: sqlx::Error) -> Self {
        LogError::Database(e)
    }
}

/// Handle to the log. Cheap to clone.
#[derive(Clone, Debug)]
pub struct EventLog {
    pool: PgPool,
}

impl EventLog {
    pub fn new(pool: PgPool) -> EventLog {
        EventLog { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Lock the tenant's log for one append transaction.
    pub async fn begin(&self, tenant_id: Uuid) -> Result<TenantTxn, LogError> {
        TenantTxn::begin(&self.pool, tenant_id).await
    }

    /// A session's projected state, read without locking.
    pub async fn session(
        &self,
        tenant_id: Uuid,
        session_id: Uuid,
    ) -> Result<Option<SessionState>, LogError> {
        let mut conn = self.pool.acquire().await?;
        read::session_state(&mut conn, tenant_id, session_id).await
    }

    /// The tenant's sessions, newest activity first.
    pub async fn sessions(
        &self,
        tenant_id: Uuid,
        filter: read::SessionFilter,
    ) -> Result<Vec<projections::Session>, LogError> {
        let mut conn = self.pool.acquire().await?;
        read::list_sessions(&mut conn, tenant_id, filter).await
    }

    /// When the session's agent last sent a heartbeat.
    pub async fn last_heartbeat(
        &self,
        tenant_id: Uuid,
        session_id: Uuid,
    ) -> Result<Option<time::OffsetDateTime>, LogError> {
        let mut conn = self.pool.acquire().await?;
        read::last_heartbeat(&mut conn, tenant_id, session_id).await
    }

    /// The events of one session, in order.
    pub async fn stream(
        &self,
        tenant_id: Uuid,
        stream_id: Uuid,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let mut conn = self.pool.acquire().await?;
        read::stream(&mut conn, tenant_id, stream_id).await
    }

    /// Append `events` to one stream in their own transaction. Appending ids that are
    /// already in the log writes nothing and returns the events as first appended.
    pub async fn append(
        &self,
        tenant_id: Uuid,
        stream_id: Uuid,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        metadata: &projections::Metadata,
    ) -> Result<Committed, LogError> {
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let mut txn = self.begin(tenant_id).await?;
        if let Some(existing) = self.already_appended(&mut txn, &ids).await? {
            return Ok(existing);
        }
        txn.append(stream_id, expected, events, metadata).await?;
        match txn.commit().await {
            // A concurrent append with the same id won the race after our check.
            Err(LogError::DuplicateEvent) => {
                let mut txn = self.begin(tenant_id).await?;
                self.already_appended(&mut txn, &ids)
                    .await?
                    .ok_or(LogError::DuplicateEvent)
            }
            other => other,
        }
    }

    async fn already_appended(
        &self,
        txn: &mut TenantTxn,
        ids: &[Uuid],
    ) -> Result<Option<Committed>, LogError> {
        let mut events = Vec::new();
        for id in ids {
            if let Some(e) = txn.event(*id).await? {
                events.push(AppendedEvent {
                    seq: e.seq,
                    stream_id: e.stream_id,
                    stream_version: e.stream_version,
                    event_id: e.event_id,
                    event_type: e.event.event_type(),
                    recorded_at: e.recorded_at,
                });
            }
        }
        match events.len() {
            0 => Ok(None),
            n if n == ids.len() => Ok(Some(Committed {
                tenant_id: txn.tenant_id(),
                events,
            })),
            // Some ids are in the log and some not: not a retry of the same append.
            _ => Err(LogError::DuplicateEvent),
        }
    }
}
