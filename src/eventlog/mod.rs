//! The event log: an append-only `events` table with a gap-free, hash-chained sequence per
//! tenant, and the projections kept in step with it inside each append's transaction.

pub mod append;
pub mod cache;
pub mod chain;
pub mod export;
mod group_commit;
pub mod messages;
pub mod read;
pub mod rebuild;
pub mod replay;
pub mod verify;
mod write;

use std::sync::Arc;
use std::time::Duration;

use projections::{RecordedEvent, SessionState};
use sqlx::PgPool;
use uuid::Uuid;

pub use append::{AppendedEvent, Committed, ExpectedVersion, NewEvent, Remembered, TenantTxn};
pub use group_commit::NotifyMode;
pub use messages::MessageRef;

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
    /// Another process appended to the tenant first; reload and decide again.
    Stale,
    /// The database could not be reached or refused the work.
    Database(Arc<sqlx::Error>),
    /// What is stored contradicts the rules the log keeps (a bug or tampering).
    Corrupt(String),
}

impl LogError {
    /// True when the database is unreachable (as opposed to refusing a statement).
    pub fn is_unavailable(&self) -> bool {
        match self {
            LogError::Database(e) => {
                matches!(
                    **e,
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
            LogError::Stale => write!(f, "the tenant's log moved on; retry"),
            LogError::Database(e) => write!(f, "database: {e}"),
            LogError::Corrupt(e) => write!(f, "inconsistent log: {e}"),
        }
    }
}

impl std::error::Error for LogError {}

impl From<sqlx::Error> for LogError {
    fn from(e: sqlx::Error) -> Self {
        LogError::Database(Arc::new(e))
    }
}

/// How many times an append is decided again after losing a race to another process.
pub const MAX_ATTEMPTS: u32 = 50;

/// Handle to the log. Cheap to clone; clones share what they know about tenants.
#[derive(Clone, Debug)]
pub struct EventLog {
    pool: PgPool,
    tenants: Arc<cache::Tenants>,
    group: Arc<group_commit::GroupCommit>,
}

impl EventLog {
    /// A log on `pool`. Starts the group-commit writers, so call it inside the runtime.
    pub fn new(pool: PgPool) -> EventLog {
        EventLog::with_notify(pool, NotifyMode::default())
    }

    /// A log that announces commits in the given way.
    pub fn with_notify(pool: PgPool, notify: NotifyMode) -> EventLog {
        EventLog {
            group: Arc::new(group_commit::GroupCommit::start(pool.clone(), notify)),
            pool,
            tenants: Arc::default(),
        }
    }

    /// Wake `hub`'s waiters at each commit of this process, without waiting for its NOTIFY to
    /// come back through the database (other processes still hear the NOTIFY).
    pub fn announce_locally(&self, hub: Arc<crate::push::Hub>) {
        self.group.announce_locally(hub);
    }

    /// Bytes of session state this process remembers now (bounded; for tests and metrics).
    pub fn remembered_bytes(&self) -> usize {
        self.tenants.remembered_bytes()
    }

    /// Forget everything known about tenants (after the projections were rebuilt).
    pub async fn forget_all(&self) {
        self.tenants.forget_all().await;
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Take this process's turn on the tenant's log for one unit of work.
    pub async fn begin(&self, tenant_id: Uuid) -> TenantTxn {
        let knowledge = self.tenants.lock(tenant_id).await;
        TenantTxn::new(self.pool.clone(), self.group.clone(), tenant_id, knowledge)
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

    /// The person's messages `refs` name, with their text from the log, whole.
    pub async fn user_messages(
        &self,
        tenant_id: Uuid,
        refs: &[MessageRef],
    ) -> Result<Vec<projections::Message>, LogError> {
        messages::load(&self.pool, tenant_id, refs).await
    }

    /// The person's messages `refs` name, a page at a time (see [`messages::pages`]).
    pub fn user_message_pages(
        &self,
        tenant_id: Uuid,
        refs: Vec<MessageRef>,
    ) -> impl futures::Stream<Item = Result<Vec<projections::Message>, LogError>> + Send + 'static
    {
        messages::pages(self.pool.clone(), tenant_id, refs)
    }

    /// A question of a session, open or closed.
    pub async fn question(
        &self,
        tenant_id: Uuid,
        session_id: Uuid,
        question_id: Uuid,
    ) -> Result<Option<projections::Question>, LogError> {
        let mut conn = self.pool.acquire().await?;
        read::question(&mut conn, tenant_id, session_id, question_id).await
    }

    /// A session's questions, oldest first (those with these ids, when given).
    pub async fn questions(
        &self,
        tenant_id: Uuid,
        session_id: Uuid,
        only: Option<&[Uuid]>,
    ) -> Result<Vec<projections::Question>, LogError> {
        let mut conn = self.pool.acquire().await?;
        read::questions(&mut conn, tenant_id, session_id, only).await
    }

    /// A session's questions that can still be answered at `now`, oldest first.
    pub async fn answerable_questions(
        &self,
        tenant_id: Uuid,
        session_id: Uuid,
        now: time::OffsetDateTime,
    ) -> Result<Vec<projections::Question>, LogError> {
        let mut conn = self.pool.acquire().await?;
        let open = read::open_questions(&mut conn, tenant_id, session_id).await?;
        Ok(open.into_iter().filter(|q| q.answerable_at(now)).collect())
    }

    /// The tenant's account (`users` row), if it was created.
    pub async fn account(&self, tenant_id: Uuid) -> Result<Option<projections::Account>, LogError> {
        let mut conn = self.pool.acquire().await?;
        Ok(read::account_with_generation(&mut conn, tenant_id).await?.1)
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

    /// The tenant's event with this id, if it has one.
    pub async fn event(
        &self,
        tenant_id: Uuid,
        event_id: Uuid,
    ) -> Result<Option<RecordedEvent>, LogError> {
        let mut conn = self.pool.acquire().await?;
        read::event_by_id(&mut conn, tenant_id, event_id).await
    }

    /// The events of one stream from the event `from_event` on (none when the stream has no
    /// such event).
    pub async fn stream_from(
        &self,
        tenant_id: Uuid,
        stream_id: Uuid,
        from_event: Uuid,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let mut conn = self.pool.acquire().await?;
        read::stream_from(&mut conn, tenant_id, stream_id, from_event).await
    }

    /// Append `events` to one stream. Appending ids that are already in the log writes
    /// nothing and returns the events as first appended.
    pub async fn append(
        &self,
        tenant_id: Uuid,
        stream_id: Uuid,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        metadata: &projections::Metadata,
    ) -> Result<Committed, LogError> {
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        for attempt in 1.. {
            let mut txn = self.begin(tenant_id).await;
            if let Some(existing) = self.already_appended(&txn, &ids).await? {
                return Ok(existing);
            }
            let outcome = match txn
                .append(stream_id, expected, events.clone(), metadata)
                .await
            {
                Ok(_) => txn.commit().await,
                Err(e) => Err(e),
            };
            match outcome {
                Err(LogError::Stale | LogError::DuplicateEvent) if attempt < MAX_ATTEMPTS => {
                    backoff(attempt).await;
                }
                other => return other,
            }
        }
        unreachable!("the loop returns")
    }

    async fn already_appended(
        &self,
        txn: &TenantTxn,
        ids: &[Uuid],
    ) -> Result<Option<Committed>, LogError> {
        let mut events = Vec::new();
        let mut conn = self.pool.acquire().await?;
        for id in ids {
            if let Some(e) = read::event_by_id(&mut conn, txn.tenant_id(), *id).await? {
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

/// A short, growing, jittered pause before deciding again, so that processes contending for
/// one tenant do not keep colliding in lockstep.
pub async fn backoff(attempt: u32) {
    crate::metrics::append_retried();
    let ceiling_us = 200u64 << attempt.min(6);
    let jitter = u64::from(Uuid::new_v4().as_fields().0) % ceiling_us;
    tokio::time::sleep(Duration::from_micros(jitter)).await;
}
