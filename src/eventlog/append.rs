//! Appending: one transaction per command, holding the tenant's row lock from the first read
//! to the commit.
//!
//! The lock is what makes the log trustworthy: while it is held no other append of the
//! tenant can run, so the tenant sequence and hash chain continue exactly from the head read
//! under it (gap-free, in commit order), the session state a command decides on cannot
//! change underneath it (optimistic concurrency is checked against it), and the inline
//! projection update sees every earlier event. Tenants do not block each other.
//!
//! The write itself is a single statement: events, tenant head, `sessions` and `inbox` rows.

use std::collections::HashMap;

use projections::{Event, InboxMessage, Metadata, RecordedEvent, Session, SessionState};
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use super::chain::{self, Hash, Link};
use super::{LogError, read};

/// An event about to be appended, with the id that makes appending it idempotent.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event: Event,
}

/// What the caller believes the stream's version to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version.
    Exact(i32),
}

/// An event as it will be written: positioned, hashed, serialised.
#[derive(Clone, Debug)]
struct Row {
    seq: i64,
    stream_id: Uuid,
    stream_version: i32,
    event_id: Uuid,
    event_type: &'static str,
    data: String,
    metadata: String,
    recorded_at: OffsetDateTime,
    prev_hash: Hash,
    hash: Hash,
}

/// What an append wrote, enough to notify and to answer the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendedEvent {
    pub seq: i64,
    pub stream_id: Uuid,
    pub stream_version: i32,
    pub event_id: Uuid,
    pub event_type: &'static str,
    pub recorded_at: OffsetDateTime,
}

/// A committed append.
#[derive(Clone, Debug, Default)]
pub struct Committed {
    pub tenant_id: Uuid,
    pub events: Vec<AppendedEvent>,
}

impl Committed {
    /// The highest tenant sequence number written, if anything was.
    pub fn last_seq(&self) -> Option<i64> {
        self.events.last().map(|e| e.seq)
    }
}

/// A tenant's log, locked and open for appending. Dropping it without [`TenantTxn::commit`]
/// rolls everything back.
pub struct TenantTxn {
    tx: Transaction<'static, Postgres>,
    tenant_id: Uuid,
    head_seq: i64,
    head_hash: Hash,
    /// Session states read or produced in this transaction; `None` = no such session.
    sessions: HashMap<Uuid, Option<SessionState>>,
    /// Sessions as they were loaded, to write only what changed.
    loaded: HashMap<Uuid, Option<SessionState>>,
    rows: Vec<Row>,
}

const LOCK_TENANT: &str = "SELECT last_seq, last_hash FROM tenants WHERE id = $1 FOR UPDATE";
const CREATE_TENANT: &str = "INSERT INTO tenants (id) VALUES ($1) ON CONFLICT (id) DO NOTHING";

impl TenantTxn {
    pub(super) async fn begin(pool: &PgPool, tenant_id: Uuid) -> Result<TenantTxn, LogError> {
        let mut tx = pool.begin().await?;
        let mut head: Option<(i64, Vec<u8>)> = sqlx::query_as(LOCK_TENANT)
            .bind(tenant_id)
            .fetch_optional(&mut *tx)
            .await?;
        if head.is_none() {
            sqlx::query(CREATE_TENANT)
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?;
            head = sqlx::query_as(LOCK_TENANT)
                .bind(tenant_id)
                .fetch_optional(&mut *tx)
                .await?;
        }
        let (head_seq, head_hash) =
            head.ok_or_else(|| LogError::Corrupt("tenant row vanished".into()))?;
        let head_hash = chain::from_bytes(&head_hash).ok_or_else(|| {
            LogError::Corrupt(format!("tenant {tenant_id} has a malformed head hash"))
        })?;
        Ok(TenantTxn {
            tx,
            tenant_id,
            head_seq,
            head_hash,
            sessions: HashMap::new(),
            loaded: HashMap::new(),
            rows: Vec::new(),
        })
    }

    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    /// The session's projected state, including anything appended in this transaction.
    pub async fn session(&mut self, session_id: Uuid) -> Result<Option<&SessionState>, LogError> {
        if !self.sessions.contains_key(&session_id) {
            let state = read::session_state(&mut self.tx, self.tenant_id, session_id).await?;
            self.loaded.insert(session_id, state.clone());
            self.sessions.insert(session_id, state);
        }
        Ok(self.sessions[&session_id].as_ref())
    }

    /// The stored event with this id, if the tenant has one.
    pub async fn event(&mut self, event_id: Uuid) -> Result<Option<RecordedEvent>, LogError> {
        read::event_by_id(&mut self.tx, self.tenant_id, event_id).await
    }

    /// Has this agent message been turned into a question after it was sent?
    pub async fn input_requested(
        &mut self,
        stream_id: Uuid,
        message_id: Uuid,
    ) -> Result<bool, LogError> {
        read::input_requested(&mut self.tx, self.tenant_id, stream_id, message_id).await
    }

    /// The events of one stream, in order.
    pub async fn stream(&mut self, stream_id: Uuid) -> Result<Vec<RecordedEvent>, LogError> {
        read::stream(&mut self.tx, self.tenant_id, stream_id).await
    }

    /// Direct access for bookkeeping that lives beside the log (idempotency records).
    pub fn connection(&mut self) -> &mut sqlx::PgConnection {
        &mut self.tx
    }

    /// Position, hash and project `events` on `stream_id`. Nothing is written until commit.
    pub async fn append(
        &mut self,
        stream_id: Uuid,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        metadata: &Metadata,
    ) -> Result<Vec<AppendedEvent>, LogError> {
        let current = self.session(stream_id).await?.map(|s| s.session.version);
        match (expected, current) {
            (ExpectedVersion::Any, _) | (ExpectedVersion::NoStream, None) => {}
            (ExpectedVersion::Exact(v), Some(actual)) if v == actual => {}
            (expected, actual) => {
                return Err(LogError::VersionConflict {
                    stream_id,
                    expected,
                    actual: actual.unwrap_or(0),
                });
            }
        }
        let metadata = serde_json::to_string(metadata).expect("metadata serializes");
        let recorded_at = chain::now_micros();
        let mut state = self.sessions.remove(&stream_id).flatten();
        let mut appended = Vec::with_capacity(events.len());
        for new in events {
            let seq = self.head_seq + 1;
            let stream_version = state.as_ref().map_or(0, |s| s.session.version) + 1;
            let recorded = RecordedEvent {
                tenant_id: self.tenant_id,
                seq,
                stream_id,
                stream_version,
                event_id: new.event_id,
                recorded_at,
                event: new.event,
            };
            state = Some(projections::apply(state, &recorded).map_err(|e| {
                LogError::Corrupt(format!("appending to session {stream_id}: {e}"))
            })?);
            let data = recorded.event.data_json();
            let event_type = recorded.event.event_type();
            let hash = Link {
                tenant_id: self.tenant_id,
                seq,
                stream_id,
                stream_version,
                event_id: recorded.event_id,
                recorded_at,
                event_type,
                data: &data,
                metadata: &metadata,
            }
            .hash(&self.head_hash);
            self.rows.push(Row {
                seq,
                stream_id,
                stream_version,
                event_id: recorded.event_id,
                event_type,
                data,
                metadata: metadata.clone(),
                recorded_at,
                prev_hash: self.head_hash,
                hash,
            });
            appended.push(AppendedEvent {
                seq,
                stream_id,
                stream_version,
                event_id: recorded.event_id,
                event_type,
                recorded_at,
            });
            self.head_seq = seq;
            self.head_hash = hash;
        }
        self.sessions.insert(stream_id, state);
        Ok(appended)
    }

    /// Write everything appended and commit. Appending an event id the tenant already has
    /// writes nothing and yields [`LogError::DuplicateEvent`].
    pub async fn commit(mut self) -> Result<Committed, LogError> {
        if !self.rows.is_empty() {
            let write = Write::new(
                self.tenant_id,
                &self.rows,
                self.head_seq,
                self.head_hash,
                &self.loaded,
                &self.sessions,
            );
            if let Err(e) = write.query().execute(&mut *self.tx).await {
                return Err(match duplicate_event(&e) {
                    true => LogError::DuplicateEvent,
                    false => e.into(),
                });
            }
        }
        self.tx.commit().await?;
        Ok(Committed {
            tenant_id: self.tenant_id,
            events: self
                .rows
                .iter()
                .map(|r| AppendedEvent {
                    seq: r.seq,
                    stream_id: r.stream_id,
                    stream_version: r.stream_version,
                    event_id: r.event_id,
                    event_type: r.event_type,
                    recorded_at: r.recorded_at,
                })
                .collect(),
        })
    }
}

fn duplicate_event(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.constraint())
        .is_some_and(|c| c == "events_tenant_event_id_key")
}

/// Events, tenant head and projection rows of one append, as one statement.
const WRITE: &str = r#"
WITH new_events AS (
    INSERT INTO events (tenant_id, seq, stream_id, stream_version, event_id, event_type,
                        data, metadata, recorded_at, prev_hash, hash)
    SELECT $1, e.seq, e.stream_id, e.stream_version, e.event_id, e.event_type,
           e.data::json, e.metadata::json, e.recorded_at, e.prev_hash, e.hash
    FROM unnest($2::bigint[], $3::uuid[], $4::int[], $5::uuid[], $6::text[],
                $7::text[], $8::text[], $9::timestamptz[], $10::bytea[], $11::bytea[])
         AS e(seq, stream_id, stream_version, event_id, event_type,
              data, metadata, recorded_at, prev_hash, hash)
),
new_head AS (
    UPDATE tenants SET last_seq = $12, last_hash = $13 WHERE id = $1
),
session_rows AS (
    INSERT INTO sessions (tenant_id, id, agent_type, status, started_at, ended_at,
                          last_activity_at, git_diff, version, last_seq, step_count,
                          read_cursor, unread_count)
    SELECT $1, s.* FROM unnest($14::uuid[], $15::text[], $16::text[], $17::timestamptz[],
                               $18::timestamptz[], $19::timestamptz[], $20::text[], $21::int[],
                               $22::bigint[], $23::int[], $24::uuid[], $25::int[]) AS s
    ON CONFLICT (tenant_id, id) DO UPDATE SET
        agent_type = EXCLUDED.agent_type, status = EXCLUDED.status,
        started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at,
        last_activity_at = EXCLUDED.last_activity_at, git_diff = EXCLUDED.git_diff,
        version = EXCLUDED.version, last_seq = EXCLUDED.last_seq,
        step_count = EXCLUDED.step_count, read_cursor = EXCLUDED.read_cursor,
        unread_count = EXCLUDED.unread_count
),
read_rows AS (
    DELETE FROM inbox i
    USING unnest($26::uuid[], $27::int[]) AS r(session_id, stream_version)
    WHERE i.tenant_id = $1 AND i.session_id = r.session_id AND i.stream_version = r.stream_version
)
INSERT INTO inbox (tenant_id, session_id, stream_version, message_id, seq, content, created_at)
SELECT $1, u.* FROM unnest($28::uuid[], $29::int[], $30::uuid[], $31::bigint[], $32::text[],
                           $33::timestamptz[]) AS u
"#;

/// The parameters of [`WRITE`], column by column.
struct Write {
    tenant_id: Uuid,
    events: EventColumns,
    head_seq: i64,
    head_hash: Hash,
    sessions: SessionColumns,
    read: (Vec<Uuid>, Vec<i32>),
    unread: InboxColumns,
}

#[derive(Default)]
struct EventColumns {
    seq: Vec<i64>,
    stream_id: Vec<Uuid>,
    stream_version: Vec<i32>,
    event_id: Vec<Uuid>,
    event_type: Vec<&'static str>,
    data: Vec<String>,
    metadata: Vec<String>,
    recorded_at: Vec<OffsetDateTime>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}

#[derive(Default)]
pub(crate) struct SessionColumns {
    pub id: Vec<Uuid>,
    pub agent_type: Vec<String>,
    pub status: Vec<&'static str>,
    pub started_at: Vec<OffsetDateTime>,
    pub ended_at: Vec<Option<OffsetDateTime>>,
    pub last_activity_at: Vec<OffsetDateTime>,
    pub git_diff: Vec<Option<String>>,
    pub version: Vec<i32>,
    pub last_seq: Vec<i64>,
    pub step_count: Vec<i32>,
    pub read_cursor: Vec<Option<Uuid>>,
    pub unread_count: Vec<i32>,
}

impl SessionColumns {
    pub fn push(&mut self, s: &Session) {
        self.id.push(s.id);
        self.agent_type.push(s.agent_type.clone());
        self.status.push(s.status.as_str());
        self.started_at.push(s.started_at);
        self.ended_at.push(s.ended_at);
        self.last_activity_at.push(s.last_activity_at);
        self.git_diff.push(s.git_diff.clone());
        self.version.push(s.version);
        self.last_seq.push(s.last_seq);
        self.step_count.push(s.step_count);
        self.read_cursor.push(s.read_cursor);
        self.unread_count.push(s.unread_count);
    }
}

#[derive(Default)]
pub(crate) struct InboxColumns {
    pub session_id: Vec<Uuid>,
    pub stream_version: Vec<i32>,
    pub message_id: Vec<Uuid>,
    pub seq: Vec<i64>,
    pub content: Vec<String>,
    pub created_at: Vec<OffsetDateTime>,
}

impl InboxColumns {
    pub fn push(&mut self, m: &InboxMessage) {
        self.session_id.push(m.session_id);
        self.stream_version.push(m.stream_version);
        self.message_id.push(m.message_id);
        self.seq.push(m.seq);
        self.content.push(m.content.clone());
        self.created_at.push(m.created_at);
    }
}

impl Write {
    fn new(
        tenant_id: Uuid,
        rows: &[Row],
        head_seq: i64,
        head_hash: Hash,
        loaded: &HashMap<Uuid, Option<SessionState>>,
        current: &HashMap<Uuid, Option<SessionState>>,
    ) -> Write {
        let mut events = EventColumns::default();
        for r in rows {
            events.seq.push(r.seq);
            events.stream_id.push(r.stream_id);
            events.stream_version.push(r.stream_version);
            events.event_id.push(r.event_id);
            events.event_type.push(r.event_type);
            events.data.push(r.data.clone());
            events.metadata.push(r.metadata.clone());
            events.recorded_at.push(r.recorded_at);
            events.prev_hash.push(r.prev_hash.to_vec());
            events.hash.push(r.hash.to_vec());
        }
        let mut sessions = SessionColumns::default();
        let mut read = (Vec::new(), Vec::new());
        let mut unread = InboxColumns::default();
        for (id, state) in current {
            let Some(state) = state else { continue };
            let before = loaded.get(id).and_then(Option::as_ref);
            if before.is_some_and(|b| b == state) {
                continue;
            }
            sessions.push(&state.session);
            let old_inbox = before.map_or(&[][..], |b| &b.inbox[..]);
            for gone in old_inbox.iter().filter(|m| !state.inbox.contains(m)) {
                read.0.push(gone.session_id);
                read.1.push(gone.stream_version);
            }
            for new in state.inbox.iter().filter(|m| !old_inbox.contains(m)) {
                unread.push(new);
            }
        }
        Write {
            tenant_id,
            events,
            head_seq,
            head_hash,
            sessions,
            read,
            unread,
        }
    }

    fn query(self) -> sqlx::query::Query<'static, Postgres, sqlx::postgres::PgArguments> {
        let Write {
            tenant_id,
            events: e,
            head_seq,
            head_hash,
            sessions: s,
            read,
            unread: u,
        } = self;
        sqlx::query(WRITE)
            .bind(tenant_id)
            .bind(e.seq)
            .bind(e.stream_id)
            .bind(e.stream_version)
            .bind(e.event_id)
            .bind(e.event_type)
            .bind(e.data)
            .bind(e.metadata)
            .bind(e.recorded_at)
            .bind(e.prev_hash)
            .bind(e.hash)
            .bind(head_seq)
            .bind(head_hash.to_vec())
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
            .bind(read.0)
            .bind(read.1)
            .bind(u.session_id)
            .bind(u.stream_version)
            .bind(u.message_id)
            .bind(u.seq)
            .bind(u.content)
            .bind(u.created_at)
    }
}
